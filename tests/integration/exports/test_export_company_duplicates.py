"""Contacts exported with "associate with companies" never create a duplicate company: the Dataverse
emulator holds "Acme Corp" with a contact under it, and the platform sends that contact again.

What an admin notices: with the company identifier ``domain``, a platform company without a domain is not
created (Dynamics would get a second "Acme Corp" on every export) and the contact stays where it is; a
contact already under "Acme Corp" is not moved to a new "ACME corp." either; each record says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.domain.config import DynamicsConfig
from tests.integration.exports.conftest import ExportHarness
from tests.support.dataverse import create, rows


def _config(company_identifier: str = "domain") -> DynamicsConfig:
    return DynamicsConfig.model_validate(
        {
            "syncIdentifiers": {
                "contactIdentifier": "name_company",
                "companyIdentifier": company_identifier,
                "columns": {"companyDomain": "websiteurl"},
                "associateContactsWithCompanies": True,
            },
            "fieldMapping": {
                "contacts": [
                    {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                    {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
                    {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": "jobtitle"},
                ],
                "companies": [
                    {"kind": "platform_field", "platformField": "name", "dynamicsField": "name"},
                    {"kind": "platform_field", "platformField": "domain", "dynamicsField": "websiteurl"},
                ],
            },
            "campaignMapping": {},
            "userMapping": {},
        }
    )


def _acme_with_jo(h: ExportHarness) -> tuple[str, str]:
    acme = create(h.emulator, "accounts", {"name": "Acme Corp"})
    jo = create(
        h.emulator,
        "contacts",
        {"firstname": "Jo", "lastname": "Lee", "parentcustomerid_account@odata.bind": f"/accounts({acme})"},
    )
    return acme, jo


def _parents(h: ExportHarness) -> dict[str, str | None]:
    return {c["lastname"]: c["_parentcustomerid_value"] for c in rows(h.emulator, "contacts")}


def _codes(record: dict[str, Any]) -> list[str]:
    return [w["code"] for w in record.get("warnings", [])]


def test_a_company_without_a_domain_is_never_created_and_the_contact_keeps_its_company(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    h = harness_for(_config())
    acme, jo = _acme_with_jo(h)
    company = {"id": "co-acme", "name": "Acme Corp"}  # the platform knows no domain for it
    result = h.run(
        {
            "entity": "contacts",
            "records": [
                {"id": "p-jo", "firstName": "Jo", "lastName": "Lee", "jobTitle": "CTO", "company": company},
                {"id": "p-new", "firstName": "Ann", "lastName": "New", "company": company},
            ],
        }
    )
    accounts = rows(h.emulator, "accounts")
    assert [a["name"] for a in accounts] == ["Acme Corp"]  # no second "Acme Corp"
    assert _parents(h) == {"Lee": acme, "New": None}  # Jo not moved; Ann created without a company
    jo_record, ann_record = result["records"]["p-jo"], result["records"]["p-new"]
    assert jo_record["action"] == "updated" and jo_record["dynamicsId"] == jo
    assert ann_record["action"] == "created"
    for record in (jo_record, ann_record):
        assert _codes(record) == ["company_not_identifiable"]
        message = record["warnings"][0]["message"]
        assert "'Acme Corp'" in message and "domain" in message and "keeps its current company" in message
    assert result["status"].state == "succeeded"
    # Exporting again changes nothing: the same answer, still one company.
    jo_again = {"id": "p-jo", "firstName": "Jo", "lastName": "Lee", "jobTitle": "CTO", "company": company}
    again = h.run({"entity": "contacts", "records": [jo_again]})
    assert again["records"]["p-jo"]["action"] == "unchanged"
    assert len(rows(h.emulator, "accounts")) == 1 and _parents(h)["Lee"] == acme


def test_an_existing_contact_is_not_moved_to_a_new_company_of_the_same_name(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    h = harness_for(_config())
    acme, jo = _acme_with_jo(h)  # Dynamics' Acme Corp has no website: the domain finds no company
    result = h.run(
        {
            "entity": "contacts",
            "records": [
                {
                    "id": "p-jo",
                    "firstName": "Jo",
                    "lastName": "Lee",
                    "company": {"id": "co-acme", "name": "ACME corp.", "domain": "acme.com"},
                }
            ],
        }
    )
    assert [a["name"] for a in rows(h.emulator, "accounts")] == ["Acme Corp"]
    assert _parents(h) == {"Lee": acme}
    record = result["records"]["p-jo"]
    assert record["dynamicsId"] == jo and _codes(record) == ["company_kept"]
    assert "stays under its current company 'Acme Corp'" in record["warnings"][0]["message"]


def test_a_dry_run_reports_the_same_warnings_and_writes_nothing(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    h = harness_for(_config())
    _acme_with_jo(h)
    before = h.emulator.snapshot()
    result = h.run(
        {
            "entity": "contacts",
            "dryRun": True,
            "records": [
                {"id": "p-jo", "firstName": "Jo", "lastName": "Lee", "company": {"name": "Acme Corp"}},
                {"id": "p-new", "firstName": "Ann", "lastName": "New", "company": {"name": "Acme Corp"}},
            ],
        }
    )
    assert h.emulator.snapshot() == before
    assert result["records"]["p-new"]["action"] == "would_create"
    for record in result["records"].values():
        assert _codes(record) == ["company_not_identifiable"]


def test_an_identifiable_company_is_still_created_and_linked(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    h = harness_for(_config("domain_or_name"))
    result = h.run(
        {
            "entity": "contacts",
            "records": [
                {"id": "p-1", "firstName": "Bo", "lastName": "Li", "company": {"name": "Initech"}},
                {"id": "p-2", "firstName": "Cy", "lastName": "Ho", "company": {"domain": "hooli.com"}},
            ],
        }
    )
    accounts = {a["accountid"]: a for a in rows(h.emulator, "accounts")}
    parents = _parents(h)
    assert accounts[str(parents["Li"])]["name"] == "Initech"
    assert "hooli.com" in accounts[str(parents["Ho"])]["websiteurl"]
    assert len(accounts) == 2
    assert all(not _codes(r) for r in result["records"].values())
