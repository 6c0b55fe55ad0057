"""Events for contacts not in Dynamics: skipped, or exported first when the workspace says so
(``syncIdentifiers.exportMissingContacts``), below HTTP against Azurite and the Dataverse emulator.

What a sales rep sees: with the option off, nothing appears in Dynamics and the result says why; with it
on, the contact appears once (however many events and redeliveries), mapped, linked to its company and
owned as an export would own it, with the campaign's activities on its timeline.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from core.domain.activities import ActivitiesRequest, activity_id
from core.domain.config import DynamicsConfig
from core.domain.jobs import ExportEntity, deterministic_dynamics_id
from core.services.activities.service import ACTIVITY_QUEUE
from core.services.jobs.messages import ChunkMessage
from tests.integration.activities.conftest import CALLER, WS, ActivityHarness
from tests.support.dataverse import create, rows

U_ANA = "a0000000-0000-4000-8000-00000000000a"
U_DEF = "d0000000-0000-4000-8000-00000000000d"
OID_ANA = "11111111-1111-4111-8111-111111111111"


def _config(*, export_missing: bool) -> DynamicsConfig:
    return DynamicsConfig.model_validate(
        {
            "syncIdentifiers": {
                "contactIdentifier": "linkedin_or_name_company",
                "columns": {"contactLinkedinUrl": "new_linkedinurl", "companyDomain": "websiteurl"},
                "associateContactsWithCompanies": True,
                "exportMissingContacts": export_missing,
            },
            "fieldMapping": {
                "contacts": [
                    {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                    {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
                    {
                        "kind": "platform_field",
                        "platformField": "linkedinUrl",
                        "dynamicsField": "new_linkedinurl",
                    },
                    {
                        "kind": "engagement",
                        "dynamicsField": "new_engagement",
                        "value": "Engaged",
                        "valueType": "text",
                    },
                ],
                "companies": [
                    {"kind": "platform_field", "platformField": "domain", "dynamicsField": "websiteurl"}
                ],
            },
            "campaignMapping": {"campaigns": "new_campaigns"},
            "userMapping": {
                "identities": [{"identityId": "id-ana", "dynamicsUserId": U_ANA}],
                "users": [{"userId": "pu-ana", "dynamicsUserId": U_ANA}],
                "defaultOwnerId": U_DEF,
            },
        }
    )


NEW: dict[str, Any] = {
    "id": "p-new",
    "firstName": "Nora",
    "lastName": "Quist",
    "linkedinUrl": "https://www.linkedin.com/in/nora-quist",
    "company": {"id": "co-1", "name": "Quist Labs", "domain": "quistlabs.io"},
    "campaigns": [{"id": "c1", "name": "Winter push", "steps": []}],
}
IDENTITIES = [{"id": "id-ana", "userId": "pu-ana"}]
NEW_ID = deterministic_dynamics_id(WS, ExportEntity.CONTACTS, "p-new")


def _event(event_id: str, kind: str = "task", contact: str = "p-new") -> dict[str, Any]:
    return {
        "id": event_id,
        "contactId": contact,
        "kind": kind,
        "at": "2026-11-21T09:00:00Z",
        "identityId": "id-ana",
        "subject": f"Step {event_id}",
        "campaignId": "c1",
    }


def _env(
    harness_for: Callable[[DynamicsConfig], ActivityHarness], *, export_missing: bool
) -> ActivityHarness:
    env = harness_for(_config(export_missing=export_missing))
    env.emulator.add_user(user_id=U_ANA, object_id=OID_ANA, firstname="Ana", lastname="Ruiz")
    env.emulator.add_user(user_id=U_DEF, firstname="Default", lastname="Owner")
    return env


def _activities(env: ActivityHarness) -> list[dict[str, Any]]:
    return [
        r for s in ("tasks", "emails", "phonecalls", "new_linkedinactivities") for r in rows(env.emulator, s)
    ]


def test_setting_off_skips_the_event_with_the_reason_and_creates_nothing(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    env = _env(harness_for, export_missing=False)
    result = env.run({"events": [_event("e1")], "contacts": [NEW], "identities": IDENTITIES})
    record = result["records"]["e1"]
    assert record["action"] == "skipped"
    assert record["contactAction"] == "not_found"
    assert "p-new is not in Dynamics" in record["note"]
    assert "exportMissingContacts" in record["note"]  # the result says how to have it exported
    assert rows(env.emulator, "contacts") == [] and rows(env.emulator, "accounts") == []
    assert _activities(env) == []


def test_setting_on_creates_the_contact_once_and_logs_every_activity_regarding_it(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    env = _env(harness_for, export_missing=True)
    # Three events for the new contact across two chunks (2 + 1), each chunk delivered twice (the host
    # died after the work, before deleting the message), plus a signal.
    events = [
        _event("e1", "email_sent"),
        _event("e2", "task"),
        _event("e3", "call"),
        _event("e4", "email_opened"),
    ]
    result = env.run(
        {"events": events, "contacts": [NEW], "identities": IDENTITIES}, redeliver_first=True, chunk_size=2
    )
    records = result["records"]
    assert result["status"].counts["created"] == 3 and result["status"].counts["failed"] == 0

    [contact] = rows(env.emulator, "contacts")
    assert contact["contactid"] == NEW_ID  # the id an export of p-new gives it: a later export updates it
    assert (contact["firstname"], contact["lastname"]) == ("Nora", "Quist")
    assert contact["new_linkedinurl"] == "https://www.linkedin.com/in/nora-quist"
    assert contact["new_campaigns"] == "Winter push"  # campaign properties ride along with the export
    assert contact["new_engagement"] == "Engaged"  # and the engagement field, since activities were logged
    # Owner rules of an export: the platform user whose identity ran the campaign is mapped to Ana.
    assert contact["_ownerid_value"] == U_ANA and contact["_createdby_value"] == U_ANA
    # Company association of step 1: the account is created (by domain) and linked.
    [account] = rows(env.emulator, "accounts")
    assert account["websiteurl"] == "quistlabs.io" and account["name"] == "Quist Labs"
    assert contact["_parentcustomerid_value"] == account["accountid"]

    activities = _activities(env)
    assert len(activities) == 3
    assert {a["_regardingobjectid_value"] for a in activities} == {NEW_ID}
    assert {a["activityid"] for a in activities} == {activity_id(WS, e) for e in ("e1", "e2", "e3")}
    for event_id in ("e1", "e2", "e3"):
        assert records[event_id]["action"] == "created"
        assert records[event_id]["activity"]["regardingContactId"] == NEW_ID
    # The chunk that ran first created it (its redelivery still says so); the other chunk found it by its
    # id. The queue does not promise an order, so either chunk [e1, e2] or chunk [e3, e4] may be first.
    first_chunk, second_chunk = ("e1", "e2"), ("e3", "e4")
    by_chunk = [{records[e]["contactAction"] for e in chunk} for chunk in (first_chunk, second_chunk)]
    assert by_chunk in ([{"created"}, {"existing"}], [{"existing"}, {"created"}])
    assert records["e4"]["action"] == "skipped"

    # The platform sends the same events again: nothing new in Dynamics.
    again = env.run({"events": events[:3], "contacts": [NEW], "identities": IDENTITIES})
    assert again["status"].counts["unchanged"] == 3
    assert {r["contactAction"] for r in again["records"].values()} == {"existing"}
    assert len(rows(env.emulator, "contacts")) == 1 and len(_activities(env)) == 3


def test_a_contact_already_in_dynamics_is_matched_not_exported(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    env = _env(harness_for, export_missing=True)
    theirs = create(
        env.emulator,
        "contacts",
        {"firstname": "Nora", "lastname": "Quist", "new_linkedinurl": "http://linkedin.com/in/Nora-Quist/"},
    )
    result = env.run({"events": [_event("e1")], "contacts": [NEW], "identities": IDENTITIES})
    record = result["records"]["e1"]
    assert record["contactAction"] == "existing" and record["activity"]["regardingContactId"] == theirs
    assert len(rows(env.emulator, "contacts")) == 1 and rows(env.emulator, "accounts") == []


def test_two_platform_contacts_of_one_person_make_one_dynamics_contact(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    env = _env(harness_for, export_missing=True)
    twin = {**NEW, "id": "p-twin"}  # the same LinkedIn profile under another platform id
    events = [_event("e1"), _event("e2", contact="p-twin")]
    result = env.run({"events": events, "contacts": [NEW, twin], "identities": IDENTITIES}, chunk_size=10)
    records = result["records"]
    [contact] = rows(env.emulator, "contacts")
    assert contact["contactid"] == NEW_ID
    assert {r["activity"]["regardingContactId"] for r in records.values()} == {NEW_ID}
    assert "same contact as p-new" in records["e2"]["note"]
    assert len(_activities(env)) == 2


def test_two_platform_contacts_of_one_person_in_racing_chunks_make_one_dynamics_contact(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    """The twins land in different chunks, and the chunk of p-new runs whole while the chunk of p-twin
    sits between its lookups (nothing found) and its create: still one contact, both events regard it."""
    env = _env(harness_for, export_missing=True)
    twin = {**NEW, "id": "p-twin", "linkedinUrl": "linkedin.com/in/Nora-Quist/"}
    events = [_event("e1"), _event("e2", contact="p-twin")]
    service = env.service(chunk_size=1)
    job = service.submit(
        CALLER,
        ActivitiesRequest.model_validate(
            {"events": events, "contacts": [NEW, twin], "identities": IDENTITIES}
        ),
    )
    queue = env.queues.get_queue_client(ACTIVITY_QUEUE)
    chunks = {
        chunk.chunk: chunk
        for chunk in (
            ChunkMessage.parse(base64.b64decode(m.content))
            for m in queue.receive_messages(max_messages=32, visibility_timeout=60)
        )
    }
    assert sorted(chunks) == [0, 1]
    raced: list[bool] = []

    def other_chunk_runs_first(table: str, records: Any) -> None:
        if table == "contact" and not raced:
            raced.append(True)
            assert rows(env.emulator, "contacts") == []  # p-twin's chunk found nobody
            env.worker.handle(chunks[0], 1)  # p-new's chunk, whole

    env.client.before("create_multiple", other_chunk_runs_first)
    env.worker.handle(chunks[1], 1)
    assert raced
    [contact] = rows(env.emulator, "contacts")
    assert contact["contactid"] == NEW_ID
    page = service.records(WS, job.job_id, None, None, 10)
    assert page is not None
    records = {r["platformId"]: r for r in page.records}
    assert {r["activity"]["regardingContactId"] for r in records.values()} == {NEW_ID}
    assert records["e1"]["contactAction"] == "created"
    assert "same contact as p-new" in records["e2"]["note"]
    assert len(_activities(env)) == 2


@pytest.mark.parametrize(
    ("contacts", "reason"),
    [
        ([], "no contact data was sent"),
        ([{**NEW, "firstName": 42}], "firstName"),  # not what the catalog says a first name is
        ([{"id": "p-new", "jobTitle": "CTO"}], "none of the mapped platform fields has a value"),
    ],
    ids=["no-data", "invalid-data", "nothing-mapped-has-a-value"],
)
def test_insufficient_contact_data_is_skipped_with_the_reason(
    harness_for: Callable[[DynamicsConfig], ActivityHarness], contacts: list[dict[str, Any]], reason: str
) -> None:
    env = _env(harness_for, export_missing=True)
    result = env.run({"events": [_event("e1")], "contacts": contacts, "identities": IDENTITIES})
    record = result["records"]["e1"]
    assert record["action"] == "skipped" and record["contactAction"] == "not_found"
    assert "p-new is not in Dynamics" in record["note"] and reason in record["note"]
    assert rows(env.emulator, "contacts") == [] and _activities(env) == []


def test_a_contact_sent_inside_its_event_is_exported(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    env = _env(harness_for, export_missing=True)
    result = env.run({"events": [{**_event("e1"), "contact": NEW}], "identities": IDENTITIES})
    assert result["records"]["e1"]["contactAction"] == "created"
    assert [c["contactid"] for c in rows(env.emulator, "contacts")] == [NEW_ID]


def test_config_api_validates_and_saves_the_option(azurite: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.entrypoints import config_api
    from core.settings import get_settings
    from tests.support import tokens
    from tests.support.http import body_json, call, configure_app, request

    configure_app(monkeypatch, azurite.connection_string)
    ws = f"ws-{uuid.uuid4().hex[:12]}"
    try:
        doc = _config(export_missing=True).to_json()
        doc["syncIdentifiers"].pop("integrationUser", None)
        doc["fieldMapping"]["contacts"] = doc["fieldMapping"]["contacts"][3:]  # the engagement field only
        report = call(
            config_api.validate_dynamics_config,
            request("POST", "dynamics/config/validate", json_body=doc, headers=tokens.bearer(ws)),
        )
        body = body_json(report)
        assert body["valid"] is True and body["errors"] == []
        assert [w["pointer"] for w in body["warnings"]] == ["/syncIdentifiers/exportMissingContacts"]
        doc["syncIdentifiers"]["exportMissingContacts"] = "sometimes"
        refused = call(
            config_api.validate_dynamics_config,
            request("POST", "dynamics/config/validate", json_body=doc, headers=tokens.bearer(ws)),
        )
        assert [e["pointer"] for e in body_json(refused)["errors"]] == [
            "/syncIdentifiers/exportMissingContacts"
        ]
        # Step 1 on its own (PUT /api/dynamics/config/sync-identifiers), then read back.
        step = {**doc["syncIdentifiers"], "exportMissingContacts": True}
        saved = call(
            config_api.put_dynamics_config_step,
            request(
                "PUT",
                "dynamics/config/sync-identifiers",
                json_body=step,
                headers=tokens.bearer(ws),
                route_params={"step": "sync-identifiers"},
            ),
        )
        assert saved.status_code == 200, saved.get_body()
        assert saved.headers["X-Config-Warning-Count"] == "1"  # nothing mapped in step 2 yet
        read = call(
            config_api.get_dynamics_config,
            request("GET", "dynamics/config", headers=tokens.bearer(ws)),
        )
        assert body_json(read)["syncIdentifiers"]["exportMissingContacts"] is True
    finally:
        get_settings.cache_clear()


def test_a_chunk_racing_another_to_create_the_contact_ends_with_one_contact(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    env = _env(harness_for, export_missing=True)

    def other_chunk_creates_it_first(table: str, records: Any) -> None:
        # Another chunk with an event for the same contact creates it (same deterministic id) between
        # this chunk's lookups and its create.
        if table == "contact" and not rows(env.emulator, "contacts"):
            create(env.emulator, "contacts", {"contactid": NEW_ID, "firstname": "Nora", "lastname": "Q"})

    env.client.before("create_multiple", other_chunk_creates_it_first)
    result = env.run({"events": [_event("e1")], "contacts": [NEW], "identities": IDENTITIES})
    record = result["records"]["e1"]
    assert record["action"] == "created" and record["contactAction"] == "updated"
    [contact] = rows(env.emulator, "contacts")
    assert contact["contactid"] == NEW_ID and contact["lastname"] == "Quist"  # the mapping written into it
    [task] = rows(env.emulator, "tasks")
    assert task["_regardingobjectid_value"] == NEW_ID


def test_paused_for_reconnect_after_creating_the_contact_resumes_without_a_second_one(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    from core.domain.connection import ReconnectRequired

    env = _env(harness_for, export_missing=True)
    expired = []

    def token_dies_once(table: str, records: Any) -> None:
        if table not in ("contact", "account") and not expired:  # an activity table
            expired.append(1)
            raise ReconnectRequired(WS, "inactivity")  # after the contact's export, before the activities

    env.client.before("create_multiple", token_dies_once)
    paused = env.run({"events": [_event("e1"), _event("e2")], "contacts": [NEW], "identities": IDENTITIES})
    assert paused["status"].state == "paused_reconnect"
    assert [c["contactid"] for c in rows(env.emulator, "contacts")] == [NEW_ID] and _activities(env) == []

    assert env.service().resume_paused(WS) == 1
    env.drain()
    records = env.service().records(WS, paused["status"].job_id, None, None, 10)
    assert records is not None
    assert [(r["action"], r["contactAction"]) for r in records.records] == [("created", "created")] * 2
    assert len(rows(env.emulator, "contacts")) == 1 and len(_activities(env)) == 2


def test_a_contact_dynamics_refuses_fails_its_events_with_dynamics_error(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    from core.adapters.dataverse.errors import DataverseError

    env = _env(harness_for, export_missing=True)

    def refuse_contacts(table: str, records: Any) -> None:
        if table == "contact":
            raise DataverseError(
                "A record with matching key values already exists for attribute 'emailaddress1'",
                status=412,
                code="0x80060892",
            )

    env.client.before("create_multiple", refuse_contacts)
    result = env.run({"events": [_event("e1"), _event("e2")], "contacts": [NEW], "identities": IDENTITIES})
    for record in result["records"].values():
        assert record["action"] == "failed" and record["contactAction"] == "not_found"
        [error] = record["errors"]
        assert error["code"] == "0x80060892" and error["field"] == "emailaddress1"
        assert error["message"].startswith("contact p-new not exported: ")
    assert result["status"].state == "failed"
    assert rows(env.emulator, "contacts") == [] and _activities(env) == []


def test_a_contact_exported_for_an_event_is_written_as_the_events_identity(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    u_sdr, oid_sdr = "5d000000-0000-4000-8000-0000000000b1", "5d5d5d5d-0000-4000-8000-0000000000b2"
    config = _config(export_missing=True).to_json()
    config["userMapping"]["identities"] = [{"identityId": "id-sdr", "dynamicsUserId": u_sdr}]
    env = _env(harness_for, export_missing=True)
    env.config = DynamicsConfig.model_validate(config)
    env.emulator.add_user(user_id=u_sdr, object_id=oid_sdr, firstname="Sam", lastname="Sdr")
    event = {**_event("e1"), "identityId": "id-sdr"}
    result = env.run(
        {"events": [event], "contacts": [NEW], "identities": [{"id": "id-sdr", "userId": "pu-ana"}]}
    )
    assert result["records"]["e1"]["contactAction"] == "created"
    [contact] = rows(env.emulator, "contacts")
    # The identity's Dynamics user executed the export (as it logs the activity); the owner follows the
    # users mapping of the identity's platform user.
    assert contact["_createdby_value"] == u_sdr and contact["_ownerid_value"] == U_ANA
    [activity] = _activities(env)
    assert activity["_createdby_value"] == u_sdr

    # An identity without a mapping: the owner's user writes, and the event says so.
    other = {**_event("e2", contact="p-other"), "identityId": "id-unmapped"}
    contact_data = {**NEW, "id": "p-other", "firstName": "Otto", "lastName": "Berg", "linkedinUrl": None}
    again = env.run(
        {
            "events": [other],
            "contacts": [contact_data],
            "identities": [{"id": "id-unmapped", "userId": "pu-ana"}],
        }
    )
    assert "identity id-unmapped is not mapped" in again["records"]["e2"]["note"]
    otto = next(r for r in rows(env.emulator, "contacts") if r["lastname"] == "Berg")
    assert otto["_createdby_value"] == U_ANA and otto["_ownerid_value"] == U_ANA


def test_a_contact_exported_for_its_events_never_gets_a_company_the_identifier_cannot_find(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    env = _env(harness_for, export_missing=True)
    no_domain = {**NEW, "company": {"id": "co-1", "name": "Quist Labs"}}
    result = env.run({"events": [_event("e1")], "contacts": [no_domain], "identities": IDENTITIES})
    record = result["records"]["e1"]
    assert record["action"] == "created" and record["contactAction"] == "created"
    [contact] = rows(env.emulator, "contacts")
    assert contact["_parentcustomerid_value"] is None and rows(env.emulator, "accounts") == []
    assert "company 'Quist Labs' has none of the values the company identifier" in record["note"]
