"""Existing Dynamics records stored with odd whitespace, case, typographic apostrophes or accents are
found and updated, never created a second time (docs/matching.md).

Dataverse's ``In``/``eq`` forgive case, accents and trailing spaces only: ``"  Jane "``, ``"Van  Dyke"``
or a leading no-break space are other values to it, so the exact lookup misses them and the export's
second, broader lookup (``contains`` on each name's longest token) must fetch them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.domain.config import DynamicsConfig
from tests.integration.exports.conftest import ExportHarness
from tests.support.dataverse import create, rows

CONFIG = DynamicsConfig.model_validate(
    {
        "syncIdentifiers": {
            "contactIdentifier": "name_company",
            "companyIdentifier": "domain_or_name",
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

ACME = {"id": "co-acme", "name": "Acme Inc", "domain": "acme.com"}


@pytest.fixture()
def env(harness_for: Callable[[DynamicsConfig], ExportHarness]) -> ExportHarness:
    return harness_for(CONFIG)


def test_contacts_stored_with_extra_whitespace_and_variants_are_updated_not_created(
    env: ExportHarness,
) -> None:
    # Acme has no website: it can only be found by its name, stored with spaces around and inside.
    acme = create(env.emulator, "accounts", {"name": "  Acme,  Inc. "})
    bind = {"parentcustomerid_account@odata.bind": f"/accounts({acme})"}
    stored = {
        "jane": {"firstname": "  Jane ", "lastname": "Van  Dyke", **bind},
        "sean": {"firstname": "SEÁN", "lastname": "  o'NEILL", **bind},
        "zoe": {"firstname": "Zoe", "lastname": "\u00a0Núñez", **bind},
        "curly": {"firstname": "Mary", "lastname": "O’Brien\t", **bind},
    }
    ids = {key: create(env.emulator, "contacts", body) for key, body in stored.items()}
    records = [
        {"id": "p-jane", "firstName": "Jane", "lastName": "Van Dyke", "jobTitle": "CTO", "company": ACME},
        {"id": "p-sean", "firstName": "Seán", "lastName": "O'Neill", "jobTitle": "CFO", "company": ACME},
        {"id": "p-zoe", "firstName": "Zoë", "lastName": "Nunez", "jobTitle": "COO", "company": ACME},
        {"id": "p-mary", "firstName": "mary", "lastName": "O'Brien", "jobTitle": "CEO", "company": ACME},
        {"id": "p-new", "firstName": "Jane", "lastName": "Dyke", "jobTitle": "VP", "company": ACME},
    ]

    result = env.run({"entity": "contacts", "records": records}, chunk_size=10)
    status, outcomes = result["status"], result["records"]

    assert status.counts["created"] == 1 and status.counts["updated"] == 4
    for key, platform_id in [("jane", "p-jane"), ("sean", "p-sean"), ("zoe", "p-zoe"), ("curly", "p-mary")]:
        assert outcomes[platform_id]["action"] == "updated", platform_id
        assert outcomes[platform_id]["dynamicsId"] == ids[key], platform_id
        assert outcomes[platform_id]["match"]["rule"] == "name_company"
    assert {c["value"] for c in outcomes["p-jane"]["match"]["conditions"]} == {"jane", "van dyke", "acme inc"}
    assert outcomes["p-new"]["action"] == "created"

    # Dynamics: one new contact (the new person), no second Acme, everyone linked to the existing one.
    contacts = rows(env.emulator, "contacts")
    assert len(contacts) == len(stored) + 1
    assert {c["_parentcustomerid_value"] for c in contacts} == {acme}
    assert [a["accountid"] for a in rows(env.emulator, "accounts")] == [acme]
    jane = next(c for c in contacts if c["contactid"] == ids["jane"])
    assert (jane["firstname"], jane["lastname"], jane["jobtitle"]) == ("Jane", "Van Dyke", "CTO")


def test_company_stored_with_extra_whitespace_is_found_by_name(env: ExportHarness) -> None:
    acme = create(env.emulator, "accounts", {"name": "\tACME,  Inc. "})
    create(env.emulator, "accounts", {"name": "Acme Industries", "websiteurl": "https://acme-industries.com"})
    result = env.run({"entity": "companies", "records": [ACME]})
    outcome = result["records"]["co-acme"]
    assert outcome["action"] == "updated"
    assert outcome["dynamicsId"] == acme
    assert outcome["match"]["rule"] == "name"
    assert len(rows(env.emulator, "accounts")) == 2
