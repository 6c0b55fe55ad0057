"""Lookup plans: the planned $filter strings, evaluated by the emulator's OData engine (same collation
rules as Dataverse: case- and accent-insensitive), must fetch every stored variant of a match."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from core.domain.catalog import Entity
from core.domain.lookup_plan import (
    BATCH_GET_MAX_URL,
    DIRECT_GET_MAX_URL,
    LookupPlan,
    escape_odata_string,
    odata_literal,
    plan_lookups,
    query_conditions,
)
from core.domain.matching import CandidateIndex, IdentifierConfig, MatchStatus, company_rule, contact_rule
from emulators.dataverse.odata import Row, parse_filter

ACCOUNTS: dict[str, Row] = {}


def nav(row: Row, navigation: str) -> Row | None:
    if navigation == "parentcustomerid_account":
        target = row.get("_parentcustomerid_value")
        return ACCOUNTS.get(target) if isinstance(target, str) else None
    return None


def fetched(plan: LookupPlan, rows: list[dict[str, Any]]) -> set[str]:
    """Ids of the rows any query of the plan returns (the emulator evaluates each $filter)."""
    out: set[str] = set()
    for query in plan.queries:
        expr = parse_filter(query.filter)
        out |= {str(r[plan.id_column]) for r in rows if expr.evaluate(r, nav)}
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
        {"contactid": "victim", "lastname": "Smith"},
        {"contactid": "literal", "lastname": attack},
    ]
    plan = plan_lookups(
        Entity.CONTACT,
        contact_rule(IdentifierConfig()),
        [{"id": "p", "firstName": "A", "lastName": attack, "company": {"name": "C"}}],
    )
    assert fetched(plan, rows) == {"literal"}
    for use_in in (True, False):
        query = plan_lookups(
            Entity.CONTACT,
            contact_rule(IdentifierConfig()),
            [{"id": "p", "firstName": "A", "lastName": attack, "company": {"name": "C"}}],
            use_in_function=use_in,
        ).queries[0]
        # the URL carries exactly the three options, whatever the value holds (& # = ' are encoded)
        params = parse_qsl(urlsplit(query.relative_url()).query, keep_blank_values=True)
        assert [k for k, _ in params] == ["$select", "$filter", "$expand"]
        assert dict(params)["$filter"] == query.filter


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
    plan = plan_lookups(Entity.CONTACT, contact_rule(LINKEDIN_OR), records)
    assert fetched(plan, rows) == {"upper", "country", "mobile", "encoded", "decoded"}


def test_last_name_variants_are_fetched() -> None:
    rows = [
        {"contactid": "curly", "lastname": "O’Brien"},
        {"contactid": "case", "lastname": "o'brien "},
        {"contactid": "accent", "lastname": "Ó'Brien"},
        {"contactid": "spaces", "lastname": "  O'Brien"},
        {"contactid": "no-apostrophe", "lastname": "OBrien"},
    ]
    record = {"id": "1", "firstName": "Jane", "lastName": "O'Brien", "company": {"name": "Acme"}}
    for use_in in (True, False):
        plan = plan_lookups(
            Entity.CONTACT, contact_rule(IdentifierConfig()), [record], use_in_function=use_in
        )
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
    plan = plan_lookups(Entity.COMPANY, company_rule(config), [{"id": "1", "name": "Acme Inc"}])
    assert fetched(plan, rows) == {"comma", "dot"}


def test_domains_are_fetched_from_websites_in_any_form() -> None:
    rows = [
        {"accountid": "url", "websiteurl": "https://www.ACME.com/en/"},
        {"accountid": "bare", "websiteurl": "acme.com"},
        {"accountid": "uk", "websiteurl": "http://acme.co.uk"},
        {"accountid": "idn", "websiteurl": "https://bücher.de"},
        {"accountid": "none", "websiteurl": None},
    ]
    records = [{"id": "1", "domain": "acme.com"}, {"id": "2", "website": "http://xn--bcher-kva.de/shop"}]
    exact = plan_lookups(Entity.COMPANY, company_rule(IdentifierConfig()), records)
    assert fetched(exact, rows) == {"url", "bare", "idn"}
    any_ext = IdentifierConfig.from_json({"companyIdentifier": "domain", "companyDomainAnyExtension": True})
    plan = plan_lookups(Entity.COMPANY, company_rule(any_ext), records)
    assert fetched(plan, rows) == {"url", "bare", "uk", "idn"}


def test_an_and_rule_queries_only_its_most_selective_column() -> None:
    rule = contact_rule(IdentifierConfig())
    assert [c.dynamics_field for c in query_conditions(rule)] == ["lastname"]
    plan = plan_lookups(
        Entity.CONTACT, rule, [{"id": "1", "firstName": "Jane", "lastName": "Doe", "company": {"name": "A"}}]
    )
    assert plan.expand == "parentcustomerid_account($select=name)"
    assert set(plan.select) >= {"contactid", "firstname", "lastname", "_parentcustomerid_value", "modifiedon"}
    assert [q.column for q in plan.queries] == ["lastname"]


def test_or_rule_queries_every_branch() -> None:
    rule = contact_rule(LINKEDIN_OR)
    assert [c.dynamics_field for c in query_conditions(rule)] == ["new_linkedinurl", "lastname"]


def test_records_that_cannot_match_need_no_query() -> None:
    plan = plan_lookups(
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
    plan = plan_lookups(
        Entity.CONTACT, contact_rule(IdentifierConfig()), records, in_batch=in_batch, max_values=10_000
    )
    assert len(plan.queries) > 1
    assert all(len(q.relative_url()) <= limit for q in plan.queries)
    assert all(q.needs_batch == (len(q.relative_url()) > DIRECT_GET_MAX_URL - 1024) for q in plan.queries)
    rows = [{"contactid": r["id"], "lastname": r["lastName"]} for r in records]
    assert fetched(plan, rows) == {r["id"] for r in records}  # nothing lost between chunks


def test_max_values_per_query() -> None:
    records = [
        {"id": str(i), "lastName": f"N{i}", "firstName": "A", "company": {"name": "C"}} for i in range(250)
    ]
    plan = plan_lookups(Entity.CONTACT, contact_rule(IdentifierConfig()), records, max_values=100)
    assert [q.clauses for q in plan.queries] == [100, 100, 50]


def test_duplicate_values_are_sent_once() -> None:
    records = [{"id": str(i), "lastName": name} for i, name in enumerate(["Doe", "DOE", "Doé ", "Doe"])]
    records = [{**r, "firstName": "A", "company": {"name": "C"}} for r in records]
    plan = plan_lookups(Entity.CONTACT, contact_rule(IdentifierConfig()), records)
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
    plan = plan_lookups(Entity.CONTACT, rule, records)
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
