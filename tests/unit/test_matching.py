"""Matching a platform record to Dynamics rows: every identifier option, hard data, ambiguity, speed."""

from __future__ import annotations

from typing import Any

import pytest

from core.domain.catalog import Entity
from core.domain.config import SyncIdentifiers
from core.domain.matching import (
    CandidateIndex,
    Condition,
    IdentifierConfig,
    MatchResult,
    MatchStatus,
    RuleError,
    company_rule,
    contact_rule,
    duplicate_groups,
    match_records,
    parse_rule,
)
from core.domain.normalize import ValueKind


def contact(first: str | None, last: str | None, company: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": extra.pop("id", "p1"),
        "firstName": first,
        "lastName": last,
        "company": {"name": company},
        **extra,
    }


def row(cid: str, first: str | None, last: str | None, account: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "contactid": cid,
        "firstname": first,
        "lastname": last,
        "parentcustomerid_account": {"name": account} if account is not None else None,
        **extra,
    }


NAME_COMPANY = IdentifierConfig.from_json({"contactIdentifier": "name_company"})
LINKEDIN_OR = IdentifierConfig.from_json(
    {"contactIdentifier": "linkedin_or_name_company", "columns": {"contactLinkedinUrl": "new_linkedinurl"}}
)


def match_contact(
    config: IdentifierConfig, record: dict[str, Any], rows: list[dict[str, Any]], **kw: Any
) -> MatchResult:
    return match_records(contact_rule(config), [record], rows, id_column="contactid", **kw)[0]


# ---------------------------------------------------------------------------------------------
# Contacts: first + last + company name
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "dynamics"),
    [
        (("Jane", "O'Brien", "Acme Inc"), ("JANE", "O’Brien ", "ACME, INC.")),
        (("José", "García", "Société Générale"), ("Jose", "Garcia", "SOCIETE GENERALE")),
        (("  Anne  Marie", "Smith", "Acme"), ("Anne Marie", "smith", " acme ")),
    ],
)
def test_name_company_matches_through_case_accents_spaces_and_punctuation(
    platform: tuple[str, str, str], dynamics: tuple[str, str, str]
) -> None:
    result = match_contact(NAME_COMPANY, contact(*platform), [row("c-1", *dynamics)])
    assert result.status is MatchStatus.MATCHED
    assert result.dynamics_id == "c-1"
    assert result.rule == "name_company"
    assert [c.dynamics_field for c in result.conditions] == [
        "firstname",
        "lastname",
        "parentcustomerid_account/name",
    ]


@pytest.mark.parametrize(
    "dynamics",
    [
        ("Janet", "O'Brien", "Acme Inc"),
        ("Jane", "OBrien", "Acme Inc"),
        ("Jane", "O'Brien", "Acme Ltd"),
        ("Jane", "O'Brien", None),
    ],
)
def test_name_company_needs_all_three(dynamics: tuple[str, str, str | None]) -> None:
    result = match_contact(NAME_COMPANY, contact("Jane", "O'Brien", "Acme Inc"), [row("c-1", *dynamics)])
    assert result.status is MatchStatus.NONE
    assert result.dynamics_id is None


def test_empty_values_never_match_each_other() -> None:
    result = match_contact(NAME_COMPANY, contact("", "Doe", None), [row("c-1", None, "Doe", None)])
    assert result.status is MatchStatus.NONE
    assert [c.platform_field for c in result.searched] == ["lastName"]


def test_company_name_from_an_account_map_when_not_expanded() -> None:
    rows = [{"contactid": "c-1", "firstname": "Jane", "lastname": "Doe", "_parentcustomerid_value": "A-1"}]
    result = match_contact(NAME_COMPANY, contact("Jane", "Doe", "Acme"), rows, account_names={"a-1": "ACME"})
    assert result.dynamics_id == "c-1"


# ---------------------------------------------------------------------------------------------
# Contacts: LinkedIn OR first + last + company
# ---------------------------------------------------------------------------------------------


def test_linkedin_matches_a_url_stored_unnormalised() -> None:
    record = contact("Jane", "Doe", "Acme", linkedinUrl="https://es.linkedin.com/in/jane-doe?trk=abc")
    rows = [row("c-9", "J.", "Doe-Smith", "Other", new_linkedinurl="http://www.LinkedIn.com/in/Jane-Doe/")]
    result = match_contact(LINKEDIN_OR, record, rows)
    assert (result.status, result.dynamics_id, result.rule) == (MatchStatus.MATCHED, "c-9", "linkedin")
    assert result.conditions[0].value == "in/jane-doe"


def test_linkedin_or_falls_back_to_names_when_urls_differ_or_are_missing() -> None:
    record = contact("Jane", "Doe", "Acme", linkedinUrl="https://linkedin.com/in/jane-doe-2")
    rows = [row("c-1", "Jane", "Doe", "Acme", new_linkedinurl="https://linkedin.com/in/someone-else")]
    result = match_contact(LINKEDIN_OR, record, rows)
    assert (result.dynamics_id, result.rule) == ("c-1", "name_company")


def test_linkedin_match_is_picked_before_a_name_match_and_both_are_reported() -> None:
    record = contact("Jane", "Doe", "Acme", linkedinUrl="linkedin.com/in/jane-doe")
    rows = [
        row("c-name", "Jane", "Doe", "Acme", modifiedon="2026-11-01T00:00:00Z"),
        row("c-link", "Janie", "Doe", "Acme", new_linkedinurl="https://www.linkedin.com/in/JANE-DOE"),
    ]
    result = match_contact(LINKEDIN_OR, record, rows)
    assert result.status is MatchStatus.AMBIGUOUS
    assert result.dynamics_id == "c-link"
    assert result.candidates == ("c-link", "c-name")


def test_linkedin_identifier_without_a_linkedin_column_uses_names() -> None:
    config = IdentifierConfig.from_json({"contactIdentifier": "linkedin_or_name_company"})
    assert contact_rule(config).label == "name_company"


# ---------------------------------------------------------------------------------------------
# Ambiguity: deterministic pick
# ---------------------------------------------------------------------------------------------


def test_ambiguous_pick_prefers_active_then_most_recent_then_lowest_id() -> None:
    record = contact("Jane", "Doe", "Acme")
    rows = [
        row("c-b", "Jane", "Doe", "Acme", modifiedon="2026-01-01T00:00:00Z"),
        row("c-inactive", "Jane", "Doe", "Acme", modifiedon="2026-12-01T00:00:00Z", statecode=1),
        row("c-c", "Jane", "Doe", "Acme", modifiedon="2026-06-01T00:00:00Z"),
        row("c-a", "Jane", "Doe", "Acme", modifiedon="2026-01-01T00:00:00Z"),
    ]
    result = match_contact(NAME_COMPANY, record, rows)
    assert result.status is MatchStatus.AMBIGUOUS
    assert result.candidates == ("c-c", "c-a", "c-b", "c-inactive")
    # the same answer whatever order Dynamics returned the rows in
    again = match_contact(NAME_COMPANY, record, list(reversed(rows)))
    assert again.candidates == result.candidates


def test_the_same_row_fetched_twice_is_one_candidate() -> None:
    rows = [row("C-1", "Jane", "Doe", "Acme"), row("c-1", "Jane", "Doe", "Acme")]
    result = match_contact(NAME_COMPANY, contact("Jane", "Doe", "Acme"), rows)
    assert result.status is MatchStatus.MATCHED


# ---------------------------------------------------------------------------------------------
# Companies
# ---------------------------------------------------------------------------------------------


def account(aid: str, name: str | None, website: str | None, **extra: Any) -> dict[str, Any]:
    return {"accountid": aid, "name": name, "websiteurl": website, **extra}


def match_company(
    raw_config: dict[str, Any], record: dict[str, Any], rows: list[dict[str, Any]]
) -> MatchResult:
    rule = company_rule(IdentifierConfig.from_json(raw_config))
    return match_records(rule, [record], rows, id_column="accountid")[0]


@pytest.mark.parametrize(
    "website", ["https://www.ACME.com/en/", "acme.com", "http://acme.com:8080", "www.acme.com."]
)
def test_domain_matches_website_variants(website: str) -> None:
    result = match_company(
        {"companyIdentifier": "domain"},
        {"id": "x", "domain": "acme.com"},
        [account("a-1", "Whatever", website)],
    )
    assert (result.dynamics_id, result.rule) == ("a-1", "domain")


def test_domain_falls_back_to_the_website_field() -> None:
    record = {"id": "x", "domain": None, "website": "https://www.acme.com/"}
    result = match_company({"companyIdentifier": "domain"}, record, [account("a-1", "Acme", "acme.com")])
    assert result.dynamics_id == "a-1"


def test_any_extension_relates_country_domains_only_when_enabled() -> None:
    record = {"id": "x", "domain": "acme.es"}
    rows = [account("a-uk", "Acme UK", "https://www.acme.co.uk")]
    assert match_company({"companyIdentifier": "domain"}, record, rows).status is MatchStatus.NONE
    result = match_company({"companyIdentifier": "domain", "companyDomainAnyExtension": True}, record, rows)
    assert (result.dynamics_id, result.rule) == ("a-uk", "domain_any_extension")
    other = [account("a-2", "Acme Corp", "acmecorp.com")]
    assert (
        match_company(
            {"companyIdentifier": "domain", "companyDomainAnyExtension": True}, record, other
        ).status
        is MatchStatus.NONE
    )


def test_domain_or_name() -> None:
    config = {"companyIdentifier": "domain_or_name"}
    record = {"id": "x", "name": "Acme, Inc.", "domain": "acme.io"}
    by_name = match_company(config, record, [account("a-1", "ACME INC", "https://other.com")])
    assert (by_name.dynamics_id, by_name.rule) == ("a-1", "name")
    both = match_company(
        config, record, [account("a-n", "Acme Inc", None), account("a-d", "Acme Holdings", "acme.io")]
    )
    assert both.status is MatchStatus.AMBIGUOUS
    assert both.dynamics_id == "a-d"  # the domain branch comes first


def test_configured_domain_column_and_custom_company_rule_with_any_extension() -> None:
    record = {"id": "x", "name": "Acme", "domain": "acme.es"}
    in_own_column = [account("a-1", "Acme", "https://other.com", new_domain="https://www.acme.es/")]
    result = match_company({"columns": {"companyDomain": "new_domain"}}, record, in_own_column)
    assert (result.dynamics_id, result.rule) == ("a-1", "domain")
    custom = {
        "companyIdentifier": "custom",
        "companyDomainAnyExtension": True,
        "companyRule": {
            "operator": "and",
            "conditions": [{"platformField": "domain", "dynamicsField": "new_domain"}],
        },
    }
    uk = [account("a-uk", "Acme UK", None, new_domain="acme.co.uk")]
    assert match_company(custom, record, uk).dynamics_id == "a-uk"  # the flag reaches the custom rule
    assert (
        match_company({**custom, "companyDomainAnyExtension": False}, record, uk).status is MatchStatus.NONE
    )


def test_identifiers_default_to_name_company_and_domain() -> None:
    config = IdentifierConfig.from_json({})
    assert contact_rule(config).label == "name_company"
    assert company_rule(config).label == "domain"
    result = match_company({}, {"id": "x", "domain": "acme.com"}, [account("a-1", "Other", "acme.com")])
    assert result.dynamics_id == "a-1"


def test_domain_only_does_not_match_by_name() -> None:
    result = match_company(
        {"companyIdentifier": "domain"},
        {"id": "x", "name": "Acme", "domain": "acme.io"},
        [account("a-1", "Acme", None)],
    )
    assert result.status is MatchStatus.NONE


# ---------------------------------------------------------------------------------------------
# Custom rules
# ---------------------------------------------------------------------------------------------


def test_custom_rule_first_and_last_or_email() -> None:
    raw = {
        "contactIdentifier": "custom",
        "contactRule": {
            "operator": "or",
            "conditions": [
                {
                    "operator": "and",
                    "conditions": [
                        {"platformField": "firstName", "dynamicsField": "firstname"},
                        {"platformField": "lastName", "dynamicsField": "lastname"},
                    ],
                },
                {"platformField": "professionalEmail", "dynamicsField": "emailaddress1"},
            ],
        },
    }
    config = IdentifierConfig.from_model(SyncIdentifiers.model_validate(raw))
    by_email = match_contact(
        config,
        contact("X", "Y", None, professionalEmail="Jane.Doe@ACME.com"),
        [row("c-1", "Jane", "Doe", None, emailaddress1=" jane.doe@acme.com")],
    )
    assert (by_email.dynamics_id, by_email.rule) == ("c-1", "custom")
    assert by_email.conditions[0].value == "jane.doe@acme.com"
    by_names = match_contact(config, contact("Jane", "Doe", None), [row("c-1", "jane", "doe", None)])
    assert [c.platform_field for c in by_names.conditions] == ["firstName", "lastName"]


def test_custom_rule_kinds_follow_the_platform_field() -> None:
    rule = parse_rule(
        {
            "operator": "and",
            "conditions": [
                {"platformField": "company.domain", "dynamicsField": "new_domain"},
                {"platformField": "linkedinUrl", "dynamicsField": "new_li"},
                {"platformField": "mobilePhone", "dynamicsField": "mobilephone"},
                {"platformField": "city", "dynamicsField": "address1_city"},
            ],
        },
        Entity.CONTACT,
    )
    kinds = [c.kind for c in rule.conditions if isinstance(c, Condition)]
    assert kinds == [ValueKind.DOMAIN, ValueKind.LINKEDIN, ValueKind.PHONE, ValueKind.TEXT]


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (
            {"operator": "xor", "conditions": [{"platformField": "firstName", "dynamicsField": "a"}]},
            "rule.operator",
        ),
        ({"operator": "and", "conditions": []}, "rule.conditions"),
        (
            {"operator": "and", "conditions": [{"platformField": "nope", "dynamicsField": "a"}]},
            "rule.conditions[0].platformField",
        ),
        (
            {"operator": "and", "conditions": [{"platformField": "firstName", "dynamicsField": " "}]},
            "rule.conditions[0].dynamicsField",
        ),
        (
            {
                "operator": "and",
                "conditions": [
                    {
                        "operator": "or",
                        "conditions": [
                            {
                                "operator": "and",
                                "conditions": [
                                    {
                                        "operator": "or",
                                        "conditions": [
                                            {
                                                "operator": "and",
                                                "conditions": [
                                                    {"platformField": "firstName", "dynamicsField": "a"}
                                                ],
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                    }
                ],
            },
            "rule.conditions[0].conditions[0].conditions[0].conditions[0]",
        ),
        (
            {
                "operator": "or",
                "conditions": [{"platformField": "firstName", "dynamicsField": f"c{i}"} for i in range(21)],
            },
            "rule",
        ),
    ],
)
def test_bad_custom_rules_are_refused_with_a_path(raw: dict[str, Any], path: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(raw, Entity.CONTACT)
    assert info.value.path == path


def test_custom_identifier_without_a_rule_is_refused() -> None:
    with pytest.raises(RuleError):
        contact_rule(IdentifierConfig(contact_identifier="custom"))


def test_report_json_shape() -> None:
    result = match_contact(NAME_COMPANY, contact("Jane", "Doe", "Acme"), [row("c-1", "Jane", "Doe", "Acme")])
    body = result.to_json()
    assert body["status"] == "matched"
    assert body["dynamicsId"] == "c-1"
    assert body["conditions"][2] == {
        "platformField": "company.name",
        "dynamicsField": "parentcustomerid_account/name",
        "value": "acme",
    }


# ---------------------------------------------------------------------------------------------
# Speed: indexed, not pairwise
# ---------------------------------------------------------------------------------------------


class CountingRow(dict[str, Any]):
    """A Dynamics row that counts how often the matcher reads it."""

    reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        CountingRow.reads += 1
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        CountingRow.reads += 1
        return super().__getitem__(key)


def test_ten_thousand_records_are_matched_through_the_index_not_pairwise() -> None:
    # Reads of the candidate rows, not seconds: a pairwise matcher reads every row for every record
    # (10,000 x 3,334), the index reads each row a few times to build and only the picked row per match.
    # The time it takes is printed by `python -m bench.matching`.
    records, rows = [], []
    for i in range(10_000):
        records.append(
            contact(
                f"Jané{i}",
                "O’Brien",
                f"Acme {i % 2000}, Inc.",
                id=f"p{i}",
                linkedinUrl=f"https://www.linkedin.com/in/user-{i}/",
            )
        )
        if i % 3 == 0:
            linkedin = f"http://LinkedIn.com/in/User-{i}?x=1" if i % 2 else None
            rows.append(
                CountingRow(
                    row(f"c{i}", f"JANE{i}", "O'Brien", f"ACME {i % 2000} INC", new_linkedinurl=linkedin)
                )
            )
    CountingRow.reads = 0
    index = CandidateIndex(contact_rule(LINKEDIN_OR), rows, id_column="contactid")
    reads_to_index, CountingRow.reads = CountingRow.reads, 0
    results = [index.match(r) for r in records]
    matched = {
        rec["id"]: res.dynamics_id for rec, res in zip(records, results, strict=True) if res.dynamics_id
    }
    assert matched == {f"p{i}": f"c{i}" for i in range(0, 10_000, 3)}
    assert reads_to_index <= 10 * len(rows)
    assert CountingRow.reads <= 3 * len(matched)


# ---------------------------------------------------------------------------------------------
# Duplicates inside one export batch
# ---------------------------------------------------------------------------------------------


def test_duplicate_groups_inside_a_batch_are_transitive() -> None:
    records = [
        contact("Jane", "Doe", "Acme", id="a", linkedinUrl="linkedin.com/in/jane-doe"),
        contact("Bob", "Roe", "Beta", id="b"),
        contact("J.", "Doe", "Other", id="c", linkedinUrl="https://www.LinkedIn.com/in/Jane-Doe/"),
        contact("J.", "DOE", "other", id="d"),
        contact("Bob", "Roe", "Gamma", id="e"),
        contact(None, None, None, id="f"),
        contact(None, None, None, id="g"),
    ]
    # a~c by LinkedIn, c~d by name+company; b and e differ by company; empty records are not duplicates
    assert duplicate_groups(contact_rule(LINKEDIN_OR), records) == [[0, 2, 3]]
    assert duplicate_groups(contact_rule(NAME_COMPANY), records) == [[2, 3]]


def test_duplicate_companies_by_domain_with_any_extension() -> None:
    records = [
        {"id": "1", "domain": "acme.com"},
        {"id": "2", "website": "https://acme.es"},
        {"id": "3", "domain": "beta.com"},
    ]
    exact = company_rule(IdentifierConfig.from_json({"companyIdentifier": "domain"}))
    assert duplicate_groups(exact, records) == []
    any_ext = company_rule(
        IdentifierConfig.from_json({"companyIdentifier": "domain", "companyDomainAnyExtension": True})
    )
    assert duplicate_groups(any_ext, records) == [[0, 1]]
