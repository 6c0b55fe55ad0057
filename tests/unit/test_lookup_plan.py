"""Lookup plans as the requests they become: the $filter strings (``lookup_queries``), evaluated by the
emulator's OData engine (same collation rules as Dataverse: case- and accent-insensitive), must fetch every
stored variant of a match, and every URL must fit the limit as the client sends it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from core.adapters.dataverse.batch import build_batch_body
from core.adapters.dataverse.lookup_queries import LookupQuery, lookup_queries
from core.adapters.dataverse.odata import (
    BATCH_GET_MAX_URL,
    DIRECT_GET_MAX_URL,
    URL_HEADROOM,
    escape_odata_string,
    expand_option,
    in_filter,
    odata_literal,
)
from core.domain.catalog import Entity
from core.domain.lookup_plan import (
    LookupPlan,
    plan_broad_lookups,
    plan_lookups,
    query_conditions,
)
from core.domain.lookup_values import search_tokens
from core.domain.matching import (
    CandidateIndex,
    IdentifierConfig,
    MatchStatus,
    company_rule,
    contact_rule,
    parse_rule,
)
from core.services.jobs.lookups import lookup_operations
from emulators.dataverse.odata import Row, parse_filter

ACCOUNTS: dict[str, Row] = {}


def nav(row: Row, navigation: str) -> Row | None:
    if navigation == "parentcustomerid_account":
        target = row.get("_parentcustomerid_value")
        return ACCOUNTS.get(target) if isinstance(target, str) else None
    return None


@dataclass(frozen=True)
class Planned:
    """A plan and the requests the adapter writes for it."""

    plan: LookupPlan
    queries: tuple[LookupQuery, ...]

    @property
    def select(self) -> tuple[str, ...]:
        return self.plan.select

    @property
    def expand(self) -> str | None:
        return expand_option(self.plan.expand)

    @property
    def unsearchable(self) -> tuple[str, ...]:
        return self.plan.unsearchable


def exact_plan(
    entity: Entity, rule: Any, records: Iterable[Mapping[str, Any]], *, extra_select: Any = (), **options: Any
) -> Planned:
    plan = plan_lookups(entity, rule, records, extra_select=extra_select)
    return Planned(plan, lookup_queries(plan, **options))


def broad_plan(
    entity: Entity, rule: Any, records: Iterable[Mapping[str, Any]], *, extra_select: Any = (), **options: Any
) -> Planned:
    plan = plan_broad_lookups(entity, rule, records, extra_select=extra_select)
    return Planned(plan, lookup_queries(plan, **options))


def fetched(planned: Planned, rows: list[dict[str, Any]]) -> set[str]:
    """Ids of the rows any request of the plan returns (the emulator evaluates each $filter)."""
    out: set[str] = set()
    for query in planned.queries:
        expr = parse_filter(query.filter)
        out |= {str(r[planned.plan.id_column]) for r in rows if expr.evaluate(r, nav)}
    return out


LINKEDIN_OR = IdentifierConfig.from_json(
    {"contactIdentifier": "linkedin_or_name_company", "columns": {"contactLinkedinUrl": "new_linkedinurl"}}
)


# ---------------------------------------------------------------------------------------------
# Escaping
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("O'Brien", "O''Brien"), ("''", "''''"), ("plain", "plain"), ("a\x00b", "ab"), ("", "")],
)
def test_escape_odata_string(raw: str, escaped: str) -> None:
    assert escape_odata_string(raw) == escaped
    assert odata_literal(raw) == f"'{escaped}'"


@pytest.mark.parametrize(
    "attack",
    [
        "x' or 1 eq 1 or lastname eq 'y",
        "x') or contains(lastname,'",
        "O'Brien' or lastname ne '",
        "x'&$top=1&$filter=lastname ne 'x",
        "x'#",
        "'; DROP TABLE contact; --",
    ],
)
def test_injection_attempts_stay_one_literal(attack: str) -> None:
    rows = [
        {"contactid": "victim", "firstname": "A", "lastname": "Smith"},
        {"contactid": "literal", "firstname": "A", "lastname": attack},
    ]
    plan = exact_plan(
        Entity.CONTACT,
        contact_rule(IdentifierConfig()),
        [{"id": "p", "firstName": "A", "lastName": attack, "company": {"name": "C"}}],
    )
    assert fetched(plan, rows) == {"literal"}
    for use_in in (True, False):
        query = exact_plan(
            Entity.CONTACT,
            contact_rule(IdentifierConfig()),
            [{"id": "p", "firstName": "A", "lastName": attack, "company": {"name": "C"}}],
            use_in_function=use_in,
        ).queries[0]
        # the URL carries exactly the three options, whatever the value holds (& # = ' are encoded)
        params = parse_qsl(urlsplit(query.relative_url()).query, keep_blank_values=True)
        assert [k for k, _ in params] == ["$select", "$filter", "$expand"]
        assert dict(params)["$filter"] == query.filter


def test_in_filter_fetches_exactly_the_listed_values_whatever_they_hold() -> None:
    rows = [
        {"contactid": "a", "lastname": "O'Brien"},
        {"contactid": "b", "lastname": "Smith"},
        {"contactid": "c", "lastname": "x',PropertyValues=['Smith"},
    ]
    expr = parse_filter(in_filter("lastname", ["o'brien", "x',PropertyValues=['Smith"]))
    assert {row["contactid"] for row in rows if expr.evaluate(row, nav)} == {"a", "c"}


# ---------------------------------------------------------------------------------------------
# What gets fetched
# ---------------------------------------------------------------------------------------------


def test_linkedin_urls_stored_in_any_form_are_fetched() -> None:
    rows = [
        {"contactid": "upper", "new_linkedinurl": "http://www.LinkedIn.com/in/Jane-Doe/"},
        {"contactid": "country", "new_linkedinurl": "https://es.linkedin.com/in/jane-doe?trk=x"},
        {"contactid": "mobile", "new_linkedinurl": "https://m.linkedin.com/mwlite/in/jane-doe"},
        {"contactid": "encoded", "new_linkedinurl": "linkedin.com/in/jos%c3%a9-garc%c3%ada"},
        {"contactid": "decoded", "new_linkedinurl": "https://linkedin.com/in/josé-garcia/"},
        {"contactid": "other", "new_linkedinurl": "https://linkedin.com/in/john-roe"},
    ]
    records = [
        {"id": "1", "linkedinUrl": "https://www.linkedin.com/in/jane-doe"},
        {"id": "2", "linkedinUrl": "linkedin.com/in/José-García"},
    ]
    plan = exact_plan(Entity.CONTACT, contact_rule(LINKEDIN_OR), records)
    assert fetched(plan, rows) == {"upper", "country", "mobile", "encoded", "decoded"}


def test_last_name_variants_are_fetched() -> None:
    rows = [
        {"contactid": "curly", "firstname": "Jane", "lastname": "O’Brien"},
        {"contactid": "case", "firstname": "Jane", "lastname": "o'brien "},
        {"contactid": "accent", "firstname": "Jane", "lastname": "Ó'Brien"},
        {"contactid": "spaces", "firstname": "Jane", "lastname": "  O'Brien"},
        {"contactid": "no-apostrophe", "firstname": "Jane", "lastname": "OBrien"},
    ]
    record = {"id": "1", "firstName": "Jane", "lastName": "O'Brien", "company": {"name": "Acme"}}
    for use_in in (True, False):
        plan = exact_plan(Entity.CONTACT, contact_rule(IdentifierConfig()), [record], use_in_function=use_in)
        got = fetched(plan, rows)
        assert {"curly", "case", "accent"} <= got
        assert "no-apostrophe" not in got


def test_company_name_legal_suffix_punctuation_is_fetched() -> None:
    rows = [
        {"accountid": "comma", "name": "Acme, Inc."},
        {"accountid": "dot", "name": "ACME INC."},
        {"accountid": "ltd", "name": "Acme Ltd"},
    ]
    config = IdentifierConfig.from_json({"companyIdentifier": "domain_or_name"})
    plan = exact_plan(Entity.COMPANY, company_rule(config), [{"id": "1", "name": "Acme Inc"}])
    assert fetched(plan, rows) == {"comma", "dot"}


def test_domains_are_fetched_from_websites_in_any_form() -> None:
    rows: list[dict[str, Any]] = [
        {"accountid": "url", "websiteurl": "https://www.ACME.com/en/"},
        {"accountid": "bare", "websiteurl": "acme.com"},
        {"accountid": "uk", "websiteurl": "http://acme.co.uk"},
        {"accountid": "idn", "websiteurl": "https://bücher.de"},
        {"accountid": "none", "websiteurl": None},
    ]
    records = [{"id": "1", "domain": "acme.com"}, {"id": "2", "website": "http://xn--bcher-kva.de/shop"}]
    exact = exact_plan(Entity.COMPANY, company_rule(IdentifierConfig()), records)
    assert fetched(exact, rows) == {"url", "bare", "idn"}
    any_ext = IdentifierConfig.from_json({"companyIdentifier": "domain", "companyDomainAnyExtension": True})
    plan = exact_plan(Entity.COMPANY, company_rule(any_ext), records)
    assert fetched(plan, rows) == {"url", "bare", "uk", "idn"}


def test_an_and_rule_queries_only_its_most_selective_column() -> None:
    rule = contact_rule(IdentifierConfig())
    assert [c.dynamics_field for c in query_conditions(rule)] == ["lastname"]
    plan = exact_plan(
        Entity.CONTACT, rule, [{"id": "1", "firstName": "Jane", "lastName": "Doe", "company": {"name": "A"}}]
    )
    assert plan.expand == "parentcustomerid_account($select=name)"
    assert set(plan.select) >= {"contactid", "firstname", "lastname", "_parentcustomerid_value", "modifiedon"}
    assert [q.column for q in plan.queries] == ["lastname"]


def test_or_rule_queries_every_branch() -> None:
    rule = contact_rule(LINKEDIN_OR)
    assert [c.dynamics_field for c in query_conditions(rule)] == ["new_linkedinurl", "lastname"]


def test_records_that_cannot_match_need_no_query() -> None:
    plan = exact_plan(
        Entity.CONTACT,
        contact_rule(LINKEDIN_OR),
        [{"id": "empty", "firstName": "Jane", "lastName": "  ", "linkedinUrl": "not a url"}],
    )
    assert plan.queries == ()
    assert plan.unsearchable == ("empty",)


# ---------------------------------------------------------------------------------------------
# Chunking
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("in_batch", "limit"), [(False, DIRECT_GET_MAX_URL), (True, BATCH_GET_MAX_URL)])
def test_queries_are_split_to_fit_the_url_limit(in_batch: bool, limit: int) -> None:
    records = [
        {
            "id": str(i),
            "firstName": "A",
            "lastName": f"Lastname-{i:05d}-" + "ü" * 40,
            "company": {"name": "C"},
        }
        for i in range(800)
    ]
    plan = exact_plan(
        Entity.CONTACT, contact_rule(IdentifierConfig()), records, in_batch=in_batch, max_values=10_000
    )
    assert len(plan.queries) > 1
    assert all(len(q.relative_url()) <= limit for q in plan.queries)
    direct_limit = DIRECT_GET_MAX_URL - URL_HEADROOM
    assert all(q.needs_batch == (len(q.relative_url()) > direct_limit) for q in plan.queries)
    rows = [{"contactid": r["id"], "firstname": "A", "lastname": r["lastName"]} for r in records]
    assert fetched(plan, rows) == {r["id"] for r in records}  # nothing lost between chunks


def test_max_values_per_query() -> None:
    records = [
        {"id": str(i), "lastName": f"N{i}", "firstName": "A", "company": {"name": "C"}} for i in range(250)
    ]
    plan = exact_plan(Entity.CONTACT, contact_rule(IdentifierConfig()), records, max_values=100)
    assert [q.clauses for q in plan.queries] == [100, 100, 50]


def test_duplicate_values_are_sent_once() -> None:
    names = ["Doe", "DOE", "Doé ", "Doe"]
    records = [
        {"id": str(i), "lastName": name, "firstName": "A", "company": {"name": "C"}}
        for i, name in enumerate(names)
    ]
    plan = exact_plan(Entity.CONTACT, contact_rule(IdentifierConfig()), records)
    assert [q.clauses for q in plan.queries] == [1]


# ---------------------------------------------------------------------------------------------
# Plan + match together: every match the index finds was fetched by the plan
# ---------------------------------------------------------------------------------------------


def test_plan_then_match_finds_stored_variants_end_to_end() -> None:
    ACCOUNTS.clear()
    ACCOUNTS.update(
        {"a1": {"accountid": "a1", "name": "Acme, Inc."}, "a2": {"accountid": "a2", "name": "Other"}}
    )
    rows: list[dict[str, Any]] = [
        {"contactid": "c1", "firstname": "JANE", "lastname": "O’Brien", "_parentcustomerid_value": "a1"},
        {
            "contactid": "c2",
            "firstname": "John",
            "lastname": "Roe",
            "new_linkedinurl": "HTTP://WWW.LINKEDIN.COM/IN/JOHN-ROE/",
        },
        {"contactid": "c3", "firstname": "Jane", "lastname": "O'Brien", "_parentcustomerid_value": "a2"},
    ]
    records = [
        {"id": "p1", "firstName": "Jane", "lastName": "O'Brien", "company": {"name": "Acme Inc"}},
        {
            "id": "p2",
            "firstName": "J",
            "lastName": "R",
            "linkedinUrl": "es.linkedin.com/in/john-roe",
            "company": {},
        },
        {"id": "p3", "firstName": "Nobody", "lastName": "Here", "company": {"name": "Acme"}},
    ]
    rule = contact_rule(LINKEDIN_OR)
    plan = exact_plan(Entity.CONTACT, rule, records)
    got_ids = fetched(plan, rows)
    candidates = [
        {**r, "parentcustomerid_account": ACCOUNTS.get(str(r.get("_parentcustomerid_value")))}
        for r in rows
        if r["contactid"] in got_ids
    ]
    index = CandidateIndex(rule, candidates, id_column="contactid")
    results = [index.match(r) for r in records]
    assert [(r.status, r.dynamics_id) for r in results] == [
        (MatchStatus.MATCHED, "c1"),
        (MatchStatus.MATCHED, "c2"),
        (MatchStatus.NONE, None),
    ]


# ---------------------------------------------------------------------------------------------
# The broad second lookup: records the exact plan left unmatched
# ---------------------------------------------------------------------------------------------

JANE_DOE = {"id": "p", "firstName": "Jane", "lastName": "Doe", "company": {"name": "Acme"}}


def test_exact_plan_misses_names_stored_with_extra_whitespace() -> None:
    """What the broad plan is for: ``In`` compares whole values (only trailing spaces are forgiven)."""
    rows = [
        {"contactid": "leading", "firstname": "Jane", "lastname": "  Doe"},
        {"contactid": "nbsp", "firstname": "Jane", "lastname": "Doe\u00a0"},
        {"contactid": "trailing", "firstname": "Jane", "lastname": "Doe   "},
    ]
    plan = exact_plan(Entity.CONTACT, contact_rule(IdentifierConfig()), [JANE_DOE])
    assert fetched(plan, rows) == {"trailing"}


def test_broad_plan_searches_the_longest_token_of_the_queried_column() -> None:
    records = [
        {"id": "1", "firstName": "Jane", "lastName": "  Jane ", "company": {"name": "A"}},
        {"id": "2", "firstName": "Jo", "lastName": "Van  Dyke", "company": {"name": "A"}},
        {"id": "3", "firstName": "Jo", "lastName": "o'NEILL", "company": {"name": "A"}},
        {"id": "4", "firstName": "Jo", "lastName": "Ó Súilleabháin", "company": {"name": "A"}},
    ]
    plan = broad_plan(Entity.CONTACT, contact_rule(IdentifierConfig()), records)
    [query] = plan.queries
    assert query.column == "lastname" and query.clauses == 4
    # each AND-ed with its first name's token, as the exact plan AND-ed it with the first name
    assert query.filter == (
        "(contains(lastname,'jane') and contains(firstname,'jane'))"
        " or (contains(lastname,'dyke') and contains(firstname,'jo'))"
        " or (contains(lastname,'neill') and contains(firstname,'jo'))"
        " or (contains(lastname,'súilleabháin') and contains(firstname,'jo'))"
    )
    assert plan.expand == "parentcustomerid_account($select=name)"


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ("  Jane ", ["jane"]),
        ("Van  Dyke", ["dyke", "van"]),
        ("O’Neill", ["neill", "o"]),
        ("Acme, Inc.", ["acme", "inc"]),
        ("ＪＡＮＥ", ["jane"]),  # full width: NFKC
        ("Weiß", ["wei"]),  # ß folds to "ss": a stored "WEISS" must still contain the token
        ("Jean-Luc\u00a0Picard", ["picard", "jean", "luc"]),
        ("  ", []),
    ],
)
def test_search_tokens(value: str, tokens: list[str]) -> None:
    assert search_tokens(value) == tokens


def test_broad_plan_fetches_every_stored_variant_and_leaves_out_what_the_exact_plan_fetched() -> None:
    rows = [
        {"contactid": "leading", "firstname": "Jane", "lastname": "  Doe"},
        {"contactid": "inner", "firstname": "Jane", "lastname": "Doe\u00a0 "},
        {"contactid": "tab", "firstname": "Jane", "lastname": "\tDOE"},
        {"contactid": "accent", "firstname": "Jane", "lastname": " Dóe"},
        {"contactid": "width", "firstname": "Jane", "lastname": " Ｄｏｅ"},
        {"contactid": "longer", "firstname": "Jane", "lastname": "Doerr"},  # a superset: the index decides
        {"contactid": "exact", "firstname": "Jane", "lastname": "doe"},  # fetched by the exact plan already
        {"contactid": "other", "firstname": "Jane", "lastname": "Smith"},
    ]
    # the last name alone (no sibling narrows it): the exact plan fetched every "Doe", the broad one
    # leaves them out
    rule = parse_rule(
        {"operator": "and", "conditions": [{"platformField": "lastName", "dynamicsField": "lastname"}]},
        Entity.CONTACT,
    )
    broad = broad_plan(Entity.CONTACT, rule, [JANE_DOE])
    assert fetched(broad, rows) == {"leading", "inner", "tab", "accent", "width", "longer"}
    exact = exact_plan(Entity.CONTACT, rule, [JANE_DOE])
    assert fetched(exact, rows) | fetched(broad, rows) == set(r["contactid"] for r in rows) - {"other"}


def test_exact_plan_narrows_a_last_name_with_the_first_name() -> None:
    """Namesakes are not fetched: with the last name alone every chunk of a large export re-read every
    contact sharing a last name with one of its records (those the earlier chunks created included)."""
    records = [
        {"id": str(i), "firstName": f"Ada{i}", "lastName": "Lovelace", "company": {"name": "C"}}
        for i in range(3)
    ]
    rows = [{"contactid": f"mine-{i}", "firstname": f"ADA{i}", "lastname": "lovelace "} for i in range(3)] + [
        {"contactid": f"namesake-{i}", "firstname": f"Ada{i}0", "lastname": "Lovelace"} for i in range(50)
    ]
    plan = exact_plan(Entity.CONTACT, contact_rule(IdentifierConfig()), records)
    [query] = plan.queries
    assert query.filter == (
        "(Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['Lovelace'])"
        " and Microsoft.Dynamics.CRM.In(PropertyName='firstname',PropertyValues=['Ada0','Ada1','Ada2']))"
    )
    assert fetched(plan, rows) == {"mine-0", "mine-1", "mine-2"}
    for use_in in (True, False):  # ``eq`` joined by ``or`` narrows the same way
        plain = exact_plan(Entity.CONTACT, contact_rule(IdentifierConfig()), records, use_in_function=use_in)
        assert fetched(plain, rows) == {"mine-0", "mine-1", "mine-2"}


def test_exact_plan_pairs_each_last_name_with_its_own_first_names() -> None:
    """Not every last name crossed with every first name: names from a common vocabulary would fetch
    most of the table again."""
    records = [
        {"id": "1", "firstName": "Ann", "lastName": "Smith", "company": {"name": "C"}},
        {"id": "2", "firstName": "Bo", "lastName": "Lee", "company": {"name": "C"}},
    ]
    rows = [
        {"contactid": "ann-smith", "firstname": "ann", "lastname": "SMITH"},
        {"contactid": "bo-lee", "firstname": "Bo", "lastname": "Lee"},
        {"contactid": "bo-smith", "firstname": "Bo", "lastname": "Smith"},
        {"contactid": "ann-lee", "firstname": "Ann", "lastname": "Lee"},
    ]
    plan = exact_plan(Entity.CONTACT, contact_rule(IdentifierConfig()), records)
    assert fetched(plan, rows) == {"ann-smith", "bo-lee"}
    many = [
        {"id": str(i), "firstName": f"F{i % 7}", "lastName": f"L{i % 5}", "company": {"name": "C"}}
        for i in range(10)
    ]
    table = [
        {"contactid": f"{f}-{ln}", "firstname": f"F{f}", "lastname": f"L{ln}"}
        for f in range(7)
        for ln in range(5)
    ]
    wanted = {f"{i % 7}-{i % 5}" for i in range(10)}  # 10 of the 35 combinations
    assert fetched(exact_plan(Entity.CONTACT, contact_rule(IdentifierConfig()), many), table) == wanted


def test_a_first_name_stored_in_a_variant_form_is_found_by_the_narrowed_broad_plan() -> None:
    """The exact plan no longer reads every "Doe": the broad plan must not leave them out (no NotIn) and
    finds a first name stored with extra spaces through its token."""
    rows = [
        {"contactid": "padded", "firstname": "  Jane ", "lastname": "Doe"},
        {"contactid": "namesake", "firstname": "John", "lastname": "Doe"},
    ]
    rule = contact_rule(IdentifierConfig())
    assert fetched(exact_plan(Entity.CONTACT, rule, [JANE_DOE]), rows) == set()
    broad = broad_plan(Entity.CONTACT, rule, [JANE_DOE])
    assert [q.filter for q in broad.queries] == ["(contains(lastname,'doe') and contains(firstname,'jane'))"]
    assert fetched(broad, rows) == {"padded"}


def test_broad_plan_narrows_a_short_token_with_a_sibling_column() -> None:
    rows = [
        {"contactid": "wu", "firstname": " Wei", "lastname": "  Wu"},
        {"contactid": "other-wu", "firstname": "Anna", "lastname": "Wu "},
        {"contactid": "wurst", "firstname": "Hans", "lastname": "Wurst"},
    ]
    record = {"id": "p", "firstName": "Wei", "lastName": "Wu", "company": {"name": "Acme"}}
    plan = broad_plan(Entity.CONTACT, contact_rule(IdentifierConfig()), [record])
    [query] = plan.queries
    # no NotIn: the narrowed clause already excludes most rows, and "Wu" rows were fetched anyway
    assert query.filter == "(contains(lastname,'wu') and contains(firstname,'wei'))"
    assert fetched(plan, rows) == {"wu"}


def test_broad_plan_escapes_apostrophes_in_every_literal() -> None:
    rule = parse_rule(
        {
            "operator": "and",
            "conditions": [{"platformField": "professionalEmail", "dynamicsField": "emailaddress1"}],
        },
        Entity.CONTACT,
    )
    plan = broad_plan(Entity.CONTACT, rule, [{"id": "p", "professionalEmail": " O'Neill@Acme.com"}])
    [query] = plan.queries
    assert query.filter == (
        "(contains(emailaddress1,'o''neill@acme.com'))"
        " and Microsoft.Dynamics.CRM.NotIn(PropertyName='emailaddress1',PropertyValues=['o''neill@acme.com'])"
    )
    rows = [
        {"contactid": "padded", "emailaddress1": "  o'neill@ACME.com "},
        {"contactid": "exact", "emailaddress1": "O'Neill@acme.com"},
    ]
    assert fetched(plan, rows) == {"padded"}


@pytest.mark.parametrize(
    "local",
    ["x'or'1'eq'1", "x')or(contains(emailaddress1,'", "x'&$top=1&$filter=emailaddress1'ne'x", "x'#"],
)
def test_broad_plan_injection_attempts_stay_one_literal(local: str) -> None:
    """Through the broad plan too, a value is one literal: it fetches the row that stores it, no other."""
    rule = parse_rule(
        {
            "operator": "and",
            "conditions": [{"platformField": "professionalEmail", "dynamicsField": "emailaddress1"}],
        },
        Entity.CONTACT,
    )
    plan = broad_plan(Entity.CONTACT, rule, [{"id": "p", "professionalEmail": f"{local}@acme.com"}])
    assert plan.queries
    for query in plan.queries:
        params = parse_qsl(urlsplit(query.relative_url()).query, keep_blank_values=True)
        assert [k for k, _ in params] == ["$select", "$filter"]
        assert dict(params)["$filter"] == query.filter
    rows = [
        {"contactid": "victim", "emailaddress1": "jane@acme.com"},
        {"contactid": "literal", "emailaddress1": f"  {local.upper()}@acme.com"},
    ]
    assert fetched(plan, rows) == {"literal"}


def test_broad_plan_for_companies_searches_the_name_only() -> None:
    rows: list[dict[str, Any]] = [
        {"accountid": "spaces", "name": "  Acme,  Inc. ", "websiteurl": None},
        {"accountid": "other", "name": "Globex", "websiteurl": "acme.com"},
    ]
    config = IdentifierConfig.from_json({"companyIdentifier": "domain_or_name"})
    plan = broad_plan(
        Entity.COMPANY, company_rule(config), [{"id": "1", "name": "Acme Inc", "domain": "acme.com"}]
    )
    assert [q.column for q in plan.queries] == ["name"]  # domains are already found with contains()
    assert fetched(plan, rows) == {"spaces"}
    assert (
        fetched(exact_plan(Entity.COMPANY, company_rule(config), [{"id": "1", "name": "Acme Inc"}]), rows)
        == set()
    )


def test_broad_plan_has_nothing_to_add_to_linkedin_and_domain_lookups() -> None:
    plan = broad_plan(
        Entity.COMPANY, company_rule(IdentifierConfig()), [{"id": "1", "name": "Acme", "domain": "acme.com"}]
    )
    assert plan.queries == () and plan.unsearchable == ("1",)
    only_linkedin = broad_plan(
        Entity.CONTACT, contact_rule(LINKEDIN_OR), [{"id": "2", "linkedinUrl": "linkedin.com/in/jane"}]
    )
    assert only_linkedin.queries == ()


def test_broad_plan_splits_to_fit_the_url_and_clause_limits() -> None:
    records = [
        {
            "id": str(i),
            "firstName": "Ann",
            "lastName": f"Lastname{i:05d}" + "ü" * 40,
            "company": {"name": "C"},
        }
        for i in range(800)
    ]
    rule = contact_rule(IdentifierConfig())
    plan = broad_plan(Entity.CONTACT, rule, records, max_values=10_000)
    assert len(plan.queries) > 1
    assert all(len(q.relative_url()) <= BATCH_GET_MAX_URL - URL_HEADROOM for q in plan.queries)
    rows = [{"contactid": r["id"], "firstname": "Ann", "lastname": f"  {r['lastName']}"} for r in records]
    assert fetched(plan, rows) == {r["id"] for r in records}
    few = broad_plan(Entity.CONTACT, rule, records[:250], max_values=100)
    assert [q.clauses for q in few.queries] == [100, 100, 50]


def test_exact_then_broad_then_match_finds_whitespace_variants_end_to_end() -> None:
    ACCOUNTS.clear()
    ACCOUNTS.update({"a1": {"accountid": "a1", "name": " Acme  Inc."}})
    rows: list[dict[str, Any]] = [
        {"contactid": "c1", "firstname": "  Jane ", "lastname": "Van  Dyke", "_parentcustomerid_value": "a1"},
        {"contactid": "c2", "firstname": "Seán", "lastname": " o'NEILL", "_parentcustomerid_value": "a1"},
        {"contactid": "c3", "firstname": "Zoe", "lastname": "Nunez\u00a0", "_parentcustomerid_value": "a1"},
        {"contactid": "c4", "firstname": "Jane", "lastname": "Van Dyke", "_parentcustomerid_value": None},
    ]
    records = [
        {"id": "p1", "firstName": "Jane", "lastName": "van dyke", "company": {"name": "ACME, Inc"}},
        {"id": "p2", "firstName": "Sean", "lastName": "O’Neill", "company": {"name": "Acme Inc"}},
        {"id": "p3", "firstName": "Zoë", "lastName": "Núñez", "company": {"name": "Acme Inc."}},
        {"id": "p4", "firstName": "New", "lastName": "Person", "company": {"name": "Acme Inc"}},
    ]
    rule = contact_rule(LINKEDIN_OR)

    def candidates(plan: Planned) -> list[dict[str, Any]]:
        got = fetched(plan, rows)
        return [
            {**r, "parentcustomerid_account": ACCOUNTS.get(str(r.get("_parentcustomerid_value")))}
            for r in rows
            if r["contactid"] in got
        ]

    first = candidates(exact_plan(Entity.CONTACT, rule, records))
    exact = [CandidateIndex(rule, first, id_column="contactid").match(r) for r in records]
    assert [r.status for r in exact] == [MatchStatus.NONE] * 4
    broad = broad_plan(Entity.CONTACT, rule, records)
    index = CandidateIndex(rule, first + candidates(broad), id_column="contactid")
    assert [(index.match(r).status, index.match(r).dynamics_id) for r in records] == [
        (MatchStatus.MATCHED, "c1"),
        (MatchStatus.MATCHED, "c2"),
        (MatchStatus.MATCHED, "c3"),
        (MatchStatus.NONE, None),
    ]


def test_a_short_token_reached_through_two_or_branches_is_not_narrowed_by_either() -> None:
    """OR(last+first, last+city): a row may match through either branch, so neither sibling narrows."""
    rule = parse_rule(
        {
            "operator": "or",
            "conditions": [
                {
                    "operator": "and",
                    "conditions": [
                        {"platformField": "lastName", "dynamicsField": "lastname"},
                        {"platformField": "firstName", "dynamicsField": "firstname"},
                    ],
                },
                {
                    "operator": "and",
                    "conditions": [
                        {"platformField": "lastName", "dynamicsField": "lastname"},
                        {"platformField": "city", "dynamicsField": "address1_city"},
                    ],
                },
            ],
        },
        Entity.CONTACT,
    )
    assert [c.dynamics_field for c in query_conditions(rule)] == ["lastname"]
    record = {"id": "p", "firstName": "Wei", "lastName": "Wu", "city": "Seattle"}
    rows = [{"contactid": "by-city", "firstname": "W.", "lastname": "  Wu", "address1_city": "Seattle"}]
    plan = broad_plan(Entity.CONTACT, rule, [record])
    [query] = plan.queries
    assert query.filter.startswith("(contains(lastname,'wu')) and ")
    assert fetched(plan, rows) == {"by-city"}
    # one branch only: its sibling narrows the short token
    narrowed = broad_plan(Entity.CONTACT, contact_rule(IdentifierConfig()), [record])
    assert [q.filter for q in narrowed.queries] == ["(contains(lastname,'wu') and contains(firstname,'wei'))"]


def test_broad_plan_finds_a_non_ascii_slug_percent_encoded_from_another_letter_case() -> None:
    rows = [
        {"contactid": "upper-encoded", "new_linkedinurl": "https://www.linkedin.com/in/%C3%89milie-dupont/"},
        {"contactid": "other", "new_linkedinurl": "https://www.linkedin.com/in/emilie-dupont-2"},
    ]
    record = {"id": "p", "linkedinUrl": "linkedin.com/in/émilie-dupont", "lastName": "Dupont"}
    rule = contact_rule(LINKEDIN_OR)
    assert "upper-encoded" not in fetched(exact_plan(Entity.CONTACT, rule, [record]), rows)
    broad = broad_plan(Entity.CONTACT, rule, [record])
    assert "contains(new_linkedinurl,'milie-dupont')" in [q.filter for q in broad.queries]
    got = fetched(broad, rows)
    assert "upper-encoded" in got
    index = CandidateIndex(rule, [r for r in rows if r["contactid"] in got], id_column="contactid")
    assert index.match(record).dynamics_id == "upper-encoded"  # the index still decides exactly
    ascii_slug = broad_plan(Entity.CONTACT, rule, [{"id": "q", "linkedinUrl": "linkedin.com/in/jane"}])
    assert ascii_slug.queries == ()  # the exact contains() already finds every stored form


def test_queries_fit_the_url_limit_as_the_dataverse_client_sends_them() -> None:
    """The limit must hold for the URL really sent: the request line of each GET inside the ``$batch``
    body the client posts (its encoder percent-encodes '=' in the paired
    ``In(PropertyName='..',PropertyValues=[..])`` clauses) with the caller's whole $select; and the length
    the plan was split by is that request line's."""
    records = [
        {
            "id": str(i),
            "firstName": f"First{i % 7}",
            "lastName": f"Lastname{i:05d}",
            "company": {"name": "C"},
        }
        for i in range(2000)
    ]
    mapped = [f"new_mapped_column_{n:02d}" for n in range(40)]
    rule = contact_rule(IdentifierConfig())
    api_path = "/api/data/v9.2/"
    for plan in (
        plan_lookups(Entity.CONTACT, rule, records, extra_select=mapped),
        plan_broad_lookups(Entity.CONTACT, rule, records, extra_select=mapped),
    ):
        assert set(mapped) <= set(plan.select)
        measured = lookup_queries(plan)
        operations = lookup_operations(plan)
        assert len(operations) == len(measured) > 1
        _, body = build_batch_body(operations, api_path)
        sent = [
            line.removeprefix("GET ").removesuffix(" HTTP/1.1")
            for line in body.decode("utf-8").split("\r\n")
            if line.startswith("GET ")
        ]
        assert sent == [api_path + query.relative_url() for query in measured]
        assert all(
            set(mapped) <= set(dict(parse_qsl(urlsplit(url).query))["$select"].split(",")) for url in sent
        )
        # the URL limit is what split the plan (not the count of values), and it held with the host
        longest = max(len("https://org.crm4.dynamics.com" + url) for url in sent)
        assert BATCH_GET_MAX_URL // 2 < longest <= BATCH_GET_MAX_URL, longest
