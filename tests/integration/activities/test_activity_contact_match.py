"""Events for contacts stored in Dynamics with extra spaces or another apostrophe are logged regarding
that contact (docs/matching.md), below HTTP against Azurite and the Dataverse emulator.

``In``/``eq`` forgive case, accents and trailing spaces only: a contact typed ``"  Jane "`` /
``"Van  Dyke"`` is another value to them. The activity worker runs the export's second, broader lookup
for the contacts the exact one leaves unmatched, so such an event is neither skipped nor the reason for
a second contact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.domain.config import DynamicsConfig
from tests.integration.activities.conftest import ActivityHarness
from tests.support.dataverse import create, rows

ACME = {"id": "co-acme", "name": "Acme Inc", "domain": "acme.com"}
PEOPLE: dict[str, dict[str, Any]] = {
    # platform contact -> (how Dynamics stores the person, how the platform sends them)
    "p-jane": {"stored": ("  Jane ", "Van  Dyke"), "sent": ("Jane", "Van Dyke")},
    "p-sean": {"stored": ("SEÁN", "  o'NEILL"), "sent": ("Seán", "O'Neill")},
    "p-mary": {"stored": ("Mary", "O’Brien\t"), "sent": ("mary", "O'Brien")},
}


def _config(*, export_missing: bool) -> DynamicsConfig:
    return DynamicsConfig.model_validate(
        {
            "syncIdentifiers": {
                "contactIdentifier": "name_company",
                "companyIdentifier": "domain_or_name",
                "associateContactsWithCompanies": True,
                "exportMissingContacts": export_missing,
            },
            "fieldMapping": {
                "contacts": [
                    {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                    {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
                    {
                        "kind": "engagement",
                        "dynamicsField": "new_engagement",
                        "value": "Engaged",
                        "valueType": "text",
                    },
                ],
                "companies": [{"kind": "platform_field", "platformField": "name", "dynamicsField": "name"}],
            },
            "campaignMapping": {},
            "userMapping": {},
        }
    )


def _contact(platform_id: str, first: str, last: str) -> dict[str, Any]:
    return {"id": platform_id, "firstName": first, "lastName": last, "company": ACME}


def _event(event_id: str, contact: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "contactId": contact,
        "kind": "task",
        "at": "2026-11-21T09:00:00Z",
        "subject": f"Step {event_id}",
    }


def _seed(env: ActivityHarness) -> tuple[str, dict[str, str]]:
    acme = create(env.emulator, "accounts", {"name": "  Acme,  Inc. "})
    bind = {"parentcustomerid_account@odata.bind": f"/accounts({acme})"}
    ids = {
        platform_id: create(
            env.emulator,
            "contacts",
            {"firstname": person["stored"][0], "lastname": person["stored"][1], **bind},
        )
        for platform_id, person in PEOPLE.items()
    }
    return acme, ids


def _body() -> dict[str, Any]:
    contacts = [_contact(pid, *person["sent"]) for pid, person in PEOPLE.items()]
    # Not in Dynamics: "Jane Dyke" shares the token "dyke" with "Van  Dyke" but is another person.
    contacts.append(_contact("p-new", "Jane", "Dyke"))
    events = [_event(f"e-{pid}", pid) for pid in [*PEOPLE, "p-new"]]
    return {"events": events, "contacts": contacts}


def _activities(env: ActivityHarness) -> list[dict[str, Any]]:
    return [r for s in ("tasks", "emails", "phonecalls") for r in rows(env.emulator, s)]


@pytest.mark.parametrize("export_missing", [False, True], ids=["export-missing-off", "export-missing-on"])
def test_events_are_logged_regarding_contacts_stored_with_extra_spaces_or_another_apostrophe(
    harness_for: Callable[[DynamicsConfig], ActivityHarness], export_missing: bool
) -> None:
    env = harness_for(_config(export_missing=export_missing))
    acme, ids = _seed(env)

    result = env.run(_body(), chunk_size=10)
    records = result["records"]

    for platform_id, dynamics_id in ids.items():
        record = records[f"e-{platform_id}"]
        assert record["action"] == "created", (platform_id, record)
        assert record["contactAction"] == "existing", (platform_id, record)  # found, not exported
        assert record["activity"]["regardingContactId"] == dynamics_id, platform_id
    regarding = {a["_regardingobjectid_value"] for a in _activities(env)}
    assert set(ids.values()) <= regarding
    # Their stored names are left as they are, and the engagement field is written on them.
    stored = {c["contactid"]: c for c in rows(env.emulator, "contacts")}
    assert (stored[ids["p-jane"]]["firstname"], stored[ids["p-jane"]]["lastname"]) == ("  Jane ", "Van  Dyke")
    assert {stored[i]["new_engagement"] for i in ids.values()} == {"Engaged"}

    # The new person is not mistaken for Jane Van Dyke: skipped, or exported as a contact of its own.
    new = records["e-p-new"]
    if export_missing:
        assert new["action"] == "created" and new["contactAction"] == "created"
        assert new["activity"]["regardingContactId"] not in ids.values()
        assert len(stored) == len(ids) + 1
    else:
        assert new["action"] == "skipped" and new["contactAction"] == "not_found"
        assert "p-new is not in Dynamics" in new["note"]
        assert len(stored) == len(ids)
    assert [a["accountid"] for a in rows(env.emulator, "accounts")] == [acme]  # no second Acme


def test_the_broad_lookup_costs_one_request_and_only_when_a_contact_is_unmatched(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    env = harness_for(_config(export_missing=False))
    acme = create(env.emulator, "accounts", {"name": "Acme Inc"})
    bind = {"parentcustomerid_account@odata.bind": f"/accounts({acme})"}
    create(env.emulator, "contacts", {"firstname": "Ada", "lastname": "Lovelace", **bind})
    plain = create(env.emulator, "contacts", {"firstname": "Grace", "lastname": "Hopper", **bind})
    spaced = create(env.emulator, "contacts", {"firstname": "  Jane ", "lastname": "Van  Dyke", **bind})
    grace, jane = _contact("p-grace", "Grace", "Hopper"), _contact("p-jane", "Jane", "Van Dyke")
    # Metadata and the LinkedIn table are looked up once per process: not part of what is compared.
    env.run({"events": [_event("warm-up", "p-ada")], "contacts": [_contact("p-ada", "Ada", "Lovelace")]})

    def requests(event_id: str, contact: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        env.emulator.reset_stats()
        record = env.run({"events": [_event(event_id, contact["id"])], "contacts": [contact]})["records"]
        return int(env.emulator.stats()["requests"]), record[event_id]

    # The same work for each (one task, the engagement field written once), one contact stored oddly.
    found_exactly, grace_record = requests("e-grace", grace)
    found_broadly, jane_record = requests("e-jane", jane)
    assert grace_record["activity"]["regardingContactId"] == plain
    assert jane_record["activity"]["regardingContactId"] == spaced
    assert found_broadly == found_exactly + 1
