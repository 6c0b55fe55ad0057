"""Exports end to end below HTTP: submit -> queue -> worker -> Dynamics (emulator) -> per-record report.

What a sales-ops admin checks: existing records are updated (never duplicated) even when Dynamics stores
identifiers in other forms; good data is not erased; companies are created and linked; a bad row fails
alone with the field named; re-exporting the same list writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.domain.config import DynamicsConfig
from emulators.dataverse import DataverseEmulator
from tests.integration.exports.conftest import ExportHarness
from tests.support.dataverse import create, rows

CONFIG = DynamicsConfig.model_validate(
    {
        "syncIdentifiers": {
            "contactIdentifier": "linkedin_or_name_company",
            "companyIdentifier": "domain",
            "columns": {"contactLinkedinUrl": "new_linkedinurl", "companyDomain": "websiteurl"},
            "associateContactsWithCompanies": True,
        },
        "fieldMapping": {
            "contacts": [
                {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
                {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": "jobtitle"},
                {
                    "kind": "platform_field",
                    "platformField": "professionalEmail",
                    "dynamicsField": "emailaddress1",
                },
                {
                    "kind": "platform_field",
                    "platformField": "linkedinUrl",
                    "dynamicsField": "new_linkedinurl",
                },
                {
                    "kind": "platform_field",
                    "platformField": "mobilePhone",
                    "dynamicsField": "mobilephone",
                    "mode": "fill_if_empty",
                },
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


@pytest.fixture()
def env(harness_for: Callable[[DynamicsConfig], ExportHarness]) -> ExportHarness:
    return harness_for(CONFIG)


def _seed(emulator: DataverseEmulator) -> tuple[str, str]:
    acme = create(emulator, "accounts", {"name": "Acme", "websiteurl": "https://www.Acme.com/about"})
    jane = create(
        emulator,
        "contacts",
        {
            "firstname": "Jane",
            "lastname": "Doe",
            "jobtitle": "CTO",
            "mobilephone": "+1 555 0100",
            "new_linkedinurl": "http://www.LinkedIn.com/in/Jane-Doe/",
            "parentcustomerid_account@odata.bind": f"/accounts({acme})",
        },
    )
    return acme, jane


CONTACTS = [
    {
        "id": "p-jane",
        "firstName": "Jane",
        "lastName": "Doe",
        "jobTitle": "",
        "professionalEmail": "jane@acme.com",
        "mobilePhone": "+34 600 000 000",
        "linkedinUrl": "https://es.linkedin.com/in/jane-doe?trk=public",
        "company": {"id": "co-acme", "name": "ACME", "domain": "acme.com"},
    },
    {
        "id": "p-john",
        "firstName": "John",
        "lastName": "Smith",
        "company": {"id": "co-acme", "domain": "acme.com"},
    },
    {
        "id": "p-zoe",
        "firstName": "Zoë",
        "lastName": "O'Brien",
        "company": {"id": "co-newco", "name": "NewCo", "domain": "https://newco.io/"},
    },
    {"id": "p-long", "firstName": "Al", "lastName": "Long", "professionalEmail": "a" * 120 + "@example.com"},
]


def test_contacts_export_updates_creates_links_and_reports_each_record(env: ExportHarness) -> None:
    acme, jane = _seed(env.emulator)
    result = env.run({"entity": "contacts", "records": CONTACTS})
    status, records = result["status"], result["records"]
    assert status.state == "partially_failed"
    assert status.counts == {
        "created": 2,
        "updated": 1,
        "unchanged": 0,
        "skipped": 0,
        "failed": 0,
        "invalid": 1,
        "cancelled": 0,
    }

    # Jane matched through a LinkedIn URL stored in another form; her CTO title and phone survive.
    assert records["p-jane"]["action"] == "updated"
    assert records["p-jane"]["dynamicsId"] == jane
    assert records["p-jane"]["match"]["rule"] == "linkedin"
    [jane_row] = rows(env.emulator, "contacts", f"?$filter=contactid eq {jane}")
    assert jane_row["jobtitle"] == "CTO" and jane_row["mobilephone"] == "+1 555 0100"
    assert jane_row["emailaddress1"] == "jane@acme.com"

    # John is created and linked to the existing Acme (matched by domain); Zoë's company is created.
    contacts = {r["lastname"]: r for r in rows(env.emulator, "contacts")}
    assert set(contacts) == {"Doe", "Smith", "O'Brien"}
    assert contacts["Smith"]["_parentcustomerid_value"] == acme
    accounts = {r["name"]: r for r in rows(env.emulator, "accounts")}
    assert set(accounts) == {"Acme", "NewCo"}
    assert contacts["O'Brien"]["_parentcustomerid_value"] == accounts["NewCo"]["accountid"]
    assert contacts["O'Brien"]["firstname"] == "Zoë"

    # The oversized e-mail fails alone, naming the column, before anything is sent.
    assert records["p-long"]["action"] == "invalid"
    assert records["p-long"]["errors"][0]["field"] == "emailaddress1"


def test_re_exporting_the_same_list_writes_nothing(env: ExportHarness) -> None:
    _seed(env.emulator)
    env.run({"entity": "contacts", "records": CONTACTS[:3]})
    before = env.emulator.stats()
    again = env.run({"entity": "contacts", "records": CONTACTS[:3]})
    after = env.emulator.stats()
    assert again["status"].counts["unchanged"] == 3
    writes = {
        k: after["requests_by_kind"].get(k, 0) - before["requests_by_kind"].get(k, 0)
        for k in ("bulk", "write")
    }
    assert writes == {"bulk": 0, "write": 0}


def test_redelivered_chunk_never_creates_twice(env: ExportHarness) -> None:
    _seed(env.emulator)
    result = env.run({"entity": "contacts", "records": CONTACTS[:3]}, redeliver_first=True)
    assert len(rows(env.emulator, "contacts")) == 3
    assert len(rows(env.emulator, "accounts")) == 2
    assert result["records"]["p-john"]["action"] == "created"


def test_a_create_whose_answer_was_lost_is_reported_created_and_written_once(env: ExportHarness) -> None:
    # The connection of the contacts' CreateMultiple (John, Ann) drops after Dynamics committed it: the
    # client's retry meets the records it had just created.
    _seed(env.emulator)
    ann = {"id": "p-ann", "firstName": "Ann", "lastName": "Lee", "professionalEmail": "ann@lee.dev"}
    env.emulator.simulator.inject("drop", count=1, kinds=["bulk"])
    before = env.emulator.stats()
    result = env.run({"entity": "contacts", "records": [*CONTACTS[:2], ann]})
    after = env.emulator.stats()
    assert env.emulator.simulator.stats()["fault_drop"] == 1
    assert {p: r["action"] for p, r in result["records"].items()} == {
        "p-jane": "updated",
        "p-john": "created",
        "p-ann": "created",
    }
    assert result["status"].counts["created"] == 2 and result["status"].counts["updated"] == 1
    # The create sent twice (the lost answer, the retry), then Jane's update: nothing written again.
    sent = {
        k: after["requests_by_kind"].get(k, 0) - before["requests_by_kind"].get(k, 0)
        for k in ("bulk", "write")
    }
    assert sent == {"bulk": 3, "write": 0}
    assert len(rows(env.emulator, "contacts")) == 3
