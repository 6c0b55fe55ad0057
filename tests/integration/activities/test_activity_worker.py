"""Events -> Dynamics activities end to end below HTTP: submit -> queue -> worker -> emulator -> report.

What a sales rep checks on a contact's timeline: each campaign step appears once, as the right kind of
activity, regarding the right contact, done by the colleague whose identity ran it, and closed; the
engagement field and the campaign properties on the contact reflect the campaign.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.domain.activities import ActivitiesRequest, activity_id
from core.domain.config import DynamicsConfig
from core.services.jobs.messages import ChunkMessage
from tests.integration.activities.conftest import CALLER, WS, ActivityHarness
from tests.support.dataverse import api_session, create, rows

U_ANA = "a0000000-0000-4000-8000-00000000000a"
U_BO = "b0000000-0000-4000-8000-00000000000b"
U_DEF = "d0000000-0000-4000-8000-00000000000d"
U_OFF = "e0000000-0000-4000-8000-00000000000e"
U_GONE = "f0000000-0000-4000-8000-00000000000f"
OID_ANA = "11111111-1111-4111-8111-111111111111"
OID_BO = "22222222-2222-4222-8222-222222222222"


def _config(*, default_owner: bool = True) -> DynamicsConfig:
    return DynamicsConfig.model_validate(
        {
            "syncIdentifiers": {
                "contactIdentifier": "linkedin_or_name_company",
                "columns": {"contactLinkedinUrl": "new_linkedinurl"},
            },
            "fieldMapping": {
                "contacts": [
                    {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                    {
                        "kind": "engagement",
                        "dynamicsField": "new_engagement",
                        "value": "Engaged",
                        "valueType": "text",
                    },
                ],
                "companies": [],
            },
            "campaignMapping": {
                "campaignOpens": "new_campaignopens",
                "campaigns": "new_campaigns",
                "campaignEngagementStatus": "new_campaignstatus",
                "conversationTags": "new_conversationtags",
            },
            "userMapping": {
                "identities": [
                    {"identityId": "id-ana", "dynamicsUserId": U_ANA},
                    {"identityId": "id-gone", "dynamicsUserId": U_GONE},
                    {"identityId": "id-off", "dynamicsUserId": U_OFF},
                ],
                "users": [{"userId": "pu-bo", "dynamicsUserId": U_BO}],
                "defaultOwnerId": U_DEF if default_owner else None,
            },
        }
    )


JANE: dict[str, Any] = {
    "id": "p-jane",
    "firstName": "Jane",
    "lastName": "Doe",
    "linkedinUrl": "https://www.linkedin.com/in/jane-doe",
    "campaigns": [
        {
            "id": "c1",
            "name": "Q4 Outreach",
            "sequenceStatus": "active",
            "engagementStatus": "replied",
            "steps": [{"index": 1, "channel": "email", "name": "Intro", "status": "sent", "opens": 2}],
            "senders": [{"identityId": "id-ana", "name": "Ana"}],
        }
    ],
    "conversationTags": [{"name": "Pricing", "category": "NEUTRAL"}],
}
IDENTITIES = [
    {"id": "id-ana", "userId": "pu-ana"},
    {"id": "id-gone", "userId": "pu-bo"},
    {"id": "id-off", "userId": "pu-nobody"},
]


def _event(event_id: str, kind: str, identity: str = "id-ana", **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "contactId": "p-jane",
        "kind": kind,
        "at": "2026-11-20T10:30:00Z",
        "identityId": identity,
        "subject": f"About {kind}",
        "body": f"Body of {event_id}",
        "campaignId": "c1",
        **extra,
    }


@pytest.fixture()
def env(harness_for: Callable[[DynamicsConfig], ActivityHarness]) -> ActivityHarness:
    harness = harness_for(_config())
    emulator = harness.emulator
    emulator.add_user(user_id=U_ANA, object_id=OID_ANA, firstname="Ana", lastname="Ruiz")
    emulator.add_user(user_id=U_BO, object_id=OID_BO, firstname="Bo", lastname="Li")
    emulator.add_user(user_id=U_DEF, firstname="Default", lastname="Owner")
    emulator.add_user(user_id=U_OFF, firstname="Gone", lastname="Away", disabled=True)
    return harness


def _jane(env: ActivityHarness) -> str:
    return create(
        env.emulator,
        "contacts",
        {"firstname": "Jane", "lastname": "Doe", "new_linkedinurl": "http://linkedin.com/in/Jane-Doe/"},
    )


def _parties(env: ActivityHarness, entity_set: str, table: str, record_id: str) -> list[tuple[str, int]]:
    [row] = rows(
        env.emulator, entity_set, f"?$filter=activityid eq {record_id}&$expand={table}_activity_parties"
    )
    return sorted((p["_partyid_value"], p["participationtypemask"]) for p in row[f"{table}_activity_parties"])


def test_each_event_kind_becomes_the_right_closed_activity_as_the_mapped_user(env: ActivityHarness) -> None:
    jane = _jane(env)
    events = [
        _event("e-sent", "email_sent"),
        _event("e-reply", "email_replied"),
        _event("e-li", "linkedin_message"),
        _event("e-conn", "linkedin_connection", subject=None),
        _event("e-call", "call"),
        _event("e-task", "task"),
        _event("e-open", "email_opened"),
        {**_event("e-ghost", "task"), "contactId": "p-ghost"},
        {"id": "e-bad", "contactId": "p-jane", "kind": "fax"},
    ]
    result = env.run({"events": events, "contacts": [JANE], "identities": IDENTITIES})
    records = result["records"]
    assert result["status"].counts == {
        "created": 6,
        "updated": 0,
        "unchanged": 0,
        "skipped": 2,
        "failed": 0,
        "invalid": 1,
        "cancelled": 0,
    }
    assert {e["field"] for e in records["e-bad"]["errors"]} == {"kind", "at"}
    assert "signal" in records["e-open"]["note"]
    assert "p-ghost is not in Dynamics" in records["e-ghost"]["note"]

    # Closed as Completed (statecode 1) with the status reason that says what happened, from each table's
    # own choices (reference/entities/email.md: 3 Sent, 4 Received; phonecall.md: 2 Made; task.md: 5
    # Completed; the custom activity keeps the activitypointer template's 5 Completed).
    tables = {
        "e-sent": ("emails", "email", 3),
        "e-reply": ("emails", "email", 4),
        "e-li": ("new_linkedinactivities", "new_linkedinactivity", 5),
        "e-conn": ("new_linkedinactivities", "new_linkedinactivity", 5),
        "e-call": ("phonecalls", "phonecall", 2),
        "e-task": ("tasks", "task", 5),
    }
    for event_id, (entity_set, table, status) in tables.items():
        record = records[event_id]
        assert record["action"] == "created"
        assert record["dynamicsId"] == activity_id(WS, event_id)
        assert record["activity"]["table"] == table
        assert record["activity"]["actor"] == {
            "source": "identity_mapping",
            "dynamicsUserId": U_ANA,
            "impersonated": True,
        }
        [row] = rows(env.emulator, entity_set, f"?$filter=activityid eq {record['dynamicsId']}")
        assert row["_regardingobjectid_value"] == jane
        assert row["_createdby_value"] == U_ANA  # the activity log shows the identity's user
        assert row["_ownerid_value"] == U_ANA
        assert row["_createdonbehalfby_value"] == env.integration_user_id
        assert (row["statecode"], row["statuscode"]) == (1, status)
        assert row["actualend"] == "2026-11-20T10:30:00Z"
    email = rows(env.emulator, "emails", f"?$filter=activityid eq {activity_id(WS, 'e-sent')}")[0]
    assert email["directioncode"] is True and email["subject"] == "About email_sent"
    assert email["description"] == "Body of e-sent"
    assert _parties(env, "emails", "email", activity_id(WS, "e-sent")) == sorted([(U_ANA, 1), (jane, 2)])
    reply = rows(env.emulator, "emails", f"?$filter=activityid eq {activity_id(WS, 'e-reply')}")[0]
    assert reply["directioncode"] is False
    assert _parties(env, "emails", "email", activity_id(WS, "e-reply")) == sorted([(jane, 1), (U_ANA, 2)])
    assert _parties(env, "phonecalls", "phonecall", activity_id(WS, "e-call")) == sorted(
        [(U_ANA, 1), (jane, 2)]
    )
    conn = rows(env.emulator, "new_linkedinactivities", f"?$filter=activityid eq {activity_id(WS, 'e-conn')}")
    assert conn[0]["subject"] == "LinkedIn connection request"
    # Nothing else was logged: the signal and the unknown contact made no activity.
    assert sum(len(rows(env.emulator, s)) for s in {t[0] for t in tables.values()}) == 6


def test_linkedin_events_fall_back_to_a_task_with_a_clear_subject(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    env = harness_for(_config())
    # An organisation without the custom LinkedIn table (or an admin's choice): tasks.
    env.worker = env.worker_for(lambda _ws: (env.client, env.connection), linkedin_table="task")
    _jane(env)
    result = env.run({"events": [_event("e-li", "linkedin_message", subject="Hi Jane")], "contacts": [JANE]})
    assert result["records"]["e-li"]["activity"]["table"] == "task"
    [task] = rows(env.emulator, "tasks")
    assert task["subject"] == "LinkedIn message: Hi Jane"
    assert rows(env.emulator, "new_linkedinactivities") == []


def test_duplicate_and_redelivered_events_log_one_activity(env: ActivityHarness) -> None:
    _jane(env)
    events = [_event("e1", "email_sent"), _event("e2", "task"), _event("e1", "email_sent")]
    first = env.run({"events": events, "contacts": [JANE]}, redeliver_first=True, chunk_size=2)
    assert first["status"].counts["created"] == 2
    again = env.run({"events": events[:2], "contacts": [JANE]})
    assert again["status"].counts["unchanged"] == 2
    assert again["records"]["e1"]["dynamicsId"] == activity_id(WS, "e1")
    assert len(rows(env.emulator, "emails")) == 1
    assert len(rows(env.emulator, "tasks")) == 1


def test_a_crash_before_closing_is_finished_by_the_retry_without_a_second_activity(
    env: ActivityHarness,
) -> None:
    _jane(env)
    crashes = []

    def crash_once(table: str, records: Any) -> None:
        if table == "task" and not crashes:  # the close: after the create and the contact's update
            crashes.append(1)
            raise RuntimeError("host died")

    env.client.before("update_multiple", crash_once)
    service = env.service()
    body = {"events": [_event("e1", "task")], "contacts": [JANE]}
    job = service.submit(CALLER, ActivitiesRequest.model_validate(body))
    with pytest.raises(RuntimeError):
        env.drain()  # the first delivery dies after creating the task, before closing it
    [open_task] = rows(env.emulator, "tasks")
    assert open_task["statecode"] == 0
    # The queue delivers the message again (after its visibility timeout; here at once).
    env.worker.handle(ChunkMessage(WS, job.job_id, 0), 2)
    [task] = rows(env.emulator, "tasks")
    assert (task["statecode"], task["statuscode"]) == (1, 5)
    records = service.records(WS, job.job_id, None, None, 10)
    assert records is not None and records.records[0]["action"] == "created"


def test_engagement_field_is_set_once_per_activity(env: ActivityHarness) -> None:
    jane = _jane(env)
    env.run({"events": [_event("e1", "email_sent")], "contacts": [JANE]})
    [row] = rows(env.emulator, "contacts")
    assert row["new_engagement"] == "Engaged"
    # A rep edits the field; the same event delivered again does not overwrite it.
    api_session(env.emulator).patch(
        env.emulator.api_url + f"contacts({jane})", json={"new_engagement": "Cold"}, timeout=10
    ).raise_for_status()
    env.run({"events": [_event("e1", "email_sent")], "contacts": [JANE]})
    assert rows(env.emulator, "contacts")[0]["new_engagement"] == "Cold"
    # A new activity writes it again.
    env.run({"events": [_event("e2", "call")], "contacts": [JANE]})
    assert rows(env.emulator, "contacts")[0]["new_engagement"] == "Engaged"


def test_campaign_properties_after_events_and_no_write_when_unchanged(env: ActivityHarness) -> None:
    _jane(env)
    env.run({"events": [_event("e1", "email_opened")], "contacts": [JANE]})
    [row] = rows(env.emulator, "contacts")
    assert row["new_campaignopens"] == 2
    assert row["new_campaigns"] == "Q4 Outreach"
    assert row["new_campaignstatus"] == "Q4 Outreach: replied"
    assert row["new_conversationtags"] == "Pricing"
    before = env.emulator.stats()["requests_by_kind"].get("bulk", 0)
    env.run({"events": [_event("e2", "email_clicked")], "contacts": [JANE]})
    assert env.emulator.stats()["requests_by_kind"].get("bulk", 0) == before


@pytest.mark.parametrize(
    ("identity", "default_owner", "source", "creator", "owner"),
    [
        ("id-ana", True, "identity_mapping", U_ANA, U_ANA),
        ("id-gone", True, "user_mapping", U_BO, U_BO),  # mapped user missing -> identity's platform user
        ("id-off", True, "default_owner", None, U_DEF),  # mapped user disabled, its user unmapped
        ("id-unmapped", False, "integration_user", None, None),
    ],
)
def test_identity_fallback_chain(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
    identity: str,
    default_owner: bool,
    source: str,
    creator: str | None,
    owner: str | None,
) -> None:
    env = harness_for(_config(default_owner=default_owner))
    env.emulator.add_user(user_id=U_ANA, object_id=OID_ANA)
    env.emulator.add_user(user_id=U_BO, object_id=OID_BO)
    env.emulator.add_user(user_id=U_DEF)
    env.emulator.add_user(user_id=U_OFF, disabled=True)
    _jane(env)
    result = env.run(
        {"events": [_event("e1", "task", identity)], "contacts": [JANE], "identities": IDENTITIES}
    )
    record = result["records"]["e1"]
    assert record["action"] == "created"
    assert record["activity"]["actor"]["source"] == source
    [task] = rows(env.emulator, "tasks")
    assert task["_createdby_value"] == (creator or env.integration_user_id)
    assert task["_ownerid_value"] == (owner or env.integration_user_id)
    if identity in ("id-gone", "id-off"):
        assert record["activity"]["actor"]["passedOver"]  # the result says why the mapping was not used


def test_a_refused_activity_fails_alone_and_the_others_are_logged(env: ActivityHarness) -> None:
    _jane(env)
    url = "https://www.linkedin.com/in/bob-stone"
    bob = create(env.emulator, "contacts", {"firstname": "Bob", "lastname": "Stone", "new_linkedinurl": url})
    bob_data = {"id": "p-bob", "firstName": "Bob", "lastName": "Stone", "linkedinUrl": url}
    deleted = []

    def delete_bob_first(table: str, records: Any) -> None:
        # Someone deletes Bob in Dynamics between our lookup and our write.
        if not deleted:
            deleted.append(1)
            api_session(env.emulator).delete(
                env.emulator.api_url + f"contacts({bob})", timeout=10
            ).raise_for_status()

    env.client.before("create_multiple", delete_bob_first)
    events = [_event(f"e{i}", "task") for i in range(3)]
    events.append({**_event("e-bob", "task"), "contactId": "p-bob"})
    events.append(_event("e3", "task"))
    result = env.run({"events": events, "contacts": [JANE, bob_data]}, chunk_size=10)
    records = result["records"]
    assert records["e-bob"]["action"] == "failed"
    assert records["e-bob"]["errors"][0]["code"] == "0x80040217"  # the regarding contact does not exist
    assert [records[f"e{i}"]["action"] for i in range(4)] == ["created"] * 4
    assert len(rows(env.emulator, "tasks")) == 4
    assert result["status"].state == "partially_failed"


def test_an_activity_create_whose_answer_was_lost_is_reported_created_and_closed(
    env: ActivityHarness,
) -> None:
    # The connection of the first CreateMultiple drops after Dynamics committed it: the client's retry
    # meets the activity it had just created.
    _jane(env)
    env.emulator.simulator.inject("drop", count=1, kinds=["bulk"])
    result = env.run({"events": [_event("e1", "task"), _event("e2", "call")], "contacts": [JANE]})
    assert env.emulator.simulator.stats()["fault_drop"] == 1
    assert {e: r["action"] for e, r in result["records"].items()} == {"e1": "created", "e2": "created"}
    for entity_set in ("tasks", "phonecalls"):
        [activity] = rows(env.emulator, entity_set)
        assert activity["statecode"] == 1  # closed, as every logged activity is
    assert rows(env.emulator, "contacts")[0]["new_engagement"] == "Engaged"
