"""Events -> activities (pure): validation, idempotency ids, tables, the actor fallback chain, payloads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.domain.activities import (
    ActivityEvent,
    ActorSource,
    EventKind,
    activity_id,
    activity_table,
    build_activity,
    choose_actor,
    choose_linkedin_table,
    closing_state,
    engagement_value,
    shorten,
    subject_for,
    validate_events,
)
from core.domain.config import EngagementMapping
from core.domain.dynamics_metadata import AttributeType, DynamicsColumn, OptionValue
from core.domain.jobs import RecordAction

AT = "2026-11-20T10:30:00+01:00"


def _raw(**extra: Any) -> dict[str, Any]:
    return {"id": "e1", "contactId": "p1", "kind": "email_sent", "at": AT, **extra}


def test_each_bad_event_is_reported_alone_with_every_problem() -> None:
    events = [
        _raw(),
        {"id": "e2", "kind": "fax", "at": "yesterday"},
        "not an object",
        _raw(id="e4", at="2026-11-20T10:30:00"),  # no zone: ambiguous for a CRM elsewhere
        _raw(id="e5", subject=42),
    ]
    valid, invalid = validate_events(events, [{"id": "p1", "firstName": "Jane"}])
    assert [v.seq for v in valid] == [0]
    assert valid[0].contact == {"id": "p1", "firstName": "Jane"}
    by_seq = {o.seq: o for o in invalid}
    assert all(o.action is RecordAction.INVALID for o in invalid)
    assert {e.field for e in by_seq[1].errors} == {"contactId", "kind", "at"}
    assert by_seq[1].platform_id == "e2"
    assert [e.field for e in by_seq[2].errors] == [""]
    assert [e.field for e in by_seq[3].errors] == ["at"]
    assert [e.field for e in by_seq[4].errors] == ["subject"]


def test_a_repeated_event_id_in_one_request_is_logged_once() -> None:
    valid, invalid = validate_events([_raw(), _raw(kind="task"), _raw(id="e2")])
    assert [v.seq for v in valid] == [0, 2]
    assert invalid[0].seq == 1 and "position 0" in invalid[0].errors[0].message


def test_an_embedded_contact_must_be_the_events_contact() -> None:
    valid, invalid = validate_events(
        [_raw(contact={"id": "p1", "lastName": "Doe"}), _raw(contact={"id": "x"})]
    )
    assert valid[0].contact == {"id": "p1", "lastName": "Doe"} and "contact" not in valid[0].event
    assert [e.field for e in invalid[0].errors] == ["contact"]


def test_activity_ids_are_stable_per_workspace_and_event() -> None:
    assert activity_id("ws1", "e1") == activity_id("ws1", "e1")
    assert activity_id("ws1", "e1") != activity_id("ws2", "e1")
    assert activity_id("ws1", "e1") != activity_id("ws1", "e2")


def test_tables_per_kind_and_the_linkedin_choice() -> None:
    assert activity_table(EventKind.EMAIL_SENT, "task") == "email"
    assert activity_table(EventKind.EMAIL_REPLIED, "task") == "email"
    assert activity_table(EventKind.EMAIL_OPENED, "task") is None
    assert activity_table(EventKind.EMAIL_CLICKED, "task") is None
    assert activity_table(EventKind.CALL, "task") == "phonecall"
    assert activity_table(EventKind.TASK, "x") == "task"
    assert activity_table(EventKind.LINKEDIN_CONNECTION, "new_linkedinactivity") == "new_linkedinactivity"
    assert choose_linkedin_table("auto", ["contact", "new_linkedinactivity"]) == "new_linkedinactivity"
    assert choose_linkedin_table(None, ["contact", "task"]) == "task"
    assert choose_linkedin_table("cr9_linkedin", []) == "cr9_linkedin"


USERS = {
    "a": {"systemuserid": "a", "azureactivedirectoryobjectid": "oid-a"},
    "b": {"systemuserid": "b", "azureactivedirectoryobjectid": "oid-b"},
    "off": {"systemuserid": "off", "isdisabled": True, "azureactivedirectoryobjectid": "oid-off"},
    "noid": {"systemuserid": "noid", "azureactivedirectoryobjectid": None},
    "def": {"systemuserid": "def"},
}


def _actor(identity: str | None, user: str | None, default: str | None = "def") -> Any:
    return choose_actor(
        identity_id=identity,
        user_id=user,
        identity_users={"i-a": "A", "i-off": "off", "i-noid": "noid", "i-gone": "gone"},
        user_users={"u-b": "b"},
        default_owner_id=default,
        integration_user_id="INT",
        systemusers=USERS,
    )


def test_actor_fallback_chain() -> None:
    first = _actor("i-a", "u-b")
    assert (first.systemuser_id, first.source, first.caller_object_id) == (
        "a",
        ActorSource.IDENTITY_MAPPING,
        "oid-a",
    )
    second = _actor("i-gone", "u-b")
    assert (second.systemuser_id, second.source, second.caller_object_id) == (
        "b",
        ActorSource.USER_MAPPING,
        "oid-b",
    )
    assert second.notes == ("identity_mapping: Dynamics user gone does not exist",)
    third = _actor("i-off", "u-nobody")
    assert (third.systemuser_id, third.source, third.caller_object_id) == (
        "def",
        ActorSource.DEFAULT_OWNER,
        None,
    )
    assert "disabled" in third.notes[0]
    assert "no Entra object id" in _actor("i-noid", None).notes[0]
    last = _actor(None, None, default=None)
    assert (last.systemuser_id, last.source, last.caller_object_id) == (
        "int",
        ActorSource.INTEGRATION_USER,
        None,
    )


def test_subjects_say_what_happened() -> None:
    event = ActivityEvent("e", "p", EventKind.LINKEDIN_MESSAGE, dt.datetime.now(dt.UTC), subject="Hi")
    assert subject_for(event, "task") == "LinkedIn message: Hi"
    assert subject_for(event, "new_linkedinactivity") == "Hi"
    bare = ActivityEvent("e", "p", EventKind.CALL, dt.datetime.now(dt.UTC))
    assert subject_for(bare, "phonecall") == "Call"


def test_shorten_respects_utf16_length() -> None:
    assert shorten("short", 10) == "short"
    cut = shorten("😀" * 10, 7)
    assert len(cut.encode("utf-16-le")) // 2 <= 7 and cut.endswith("…")


# Real Dataverse status reasons (email: 3 Sent, 4 Received; phonecall: 2 Made, 4 Received; task: 5).
EMAIL_STATUS = (
    OptionValue(1, "Draft", 0),
    OptionValue(2, "Completed", 1),
    OptionValue(3, "Sent", 1),
    OptionValue(4, "Received", 1),
    OptionValue(5, "Canceled", 2),
)
CALL_STATUS = (OptionValue(1, "Open", 0), OptionValue(2, "Made", 1), OptionValue(4, "Received", 1))
TASK_STATUS = (
    OptionValue(2, "Not Started", 0),
    OptionValue(5, "Completed", 1),
    OptionValue(6, "Canceled", 2),
)


def test_closing_state_picks_the_status_that_describes_the_event() -> None:
    assert closing_state("email", False, EMAIL_STATUS) == {"statecode": 1, "statuscode": 3}
    assert closing_state("email", True, EMAIL_STATUS) == {"statecode": 1, "statuscode": 4}
    assert closing_state("phonecall", False, CALL_STATUS) == {"statecode": 1, "statuscode": 2}
    assert closing_state("task", False, TASK_STATUS) == {"statecode": 1, "statuscode": 5}
    assert closing_state("new_custom", False, ()) == {"statecode": 1}


def test_email_payload_with_parties_and_direction() -> None:
    actor = _actor("i-a", None)
    columns = {
        "subject": DynamicsColumn("subject", AttributeType.STRING, max_length=10),
        "directioncode": DynamicsColumn("directioncode", AttributeType.BOOLEAN),
        "statuscode": DynamicsColumn("statuscode", AttributeType.STATUS, options=EMAIL_STATUS),
    }
    at = dt.datetime.fromisoformat(AT)
    sent = ActivityEvent("e1", "p1", EventKind.EMAIL_SENT, at, subject="A long subject line")
    write = build_activity(
        sent,
        workspace_id="ws",
        table="email",
        entity_set="emails",
        contact_id="C",
        actor=actor,
        columns=columns,
    )
    payload = write.payload
    assert payload["activityid"] == activity_id("ws", "e1")
    assert payload["subject"] == "A long su…"
    assert payload["actualend"] == "2026-11-20T09:30:00Z"
    assert payload["directioncode"] is True
    assert payload["regardingobjectid_contact_email@odata.bind"] == "/contacts(C)"
    assert payload["email_activity_parties"] == [
        {"partyid_systemuser@odata.bind": "/systemusers(a)", "participationtypemask": 1},
        {"partyid_contact@odata.bind": "/contacts(C)", "participationtypemask": 2},
    ]
    assert write.close == {"statecode": 1, "statuscode": 3}
    reply = ActivityEvent("e2", "p1", EventKind.EMAIL_REPLIED, at)
    back = build_activity(
        reply,
        workspace_id="ws",
        table="email",
        entity_set="emails",
        contact_id="C",
        actor=actor,
        columns=columns,
    )
    assert back.payload["directioncode"] is False
    assert back.payload["email_activity_parties"][0] == {
        "partyid_contact@odata.bind": "/contacts(C)",
        "participationtypemask": 1,
    }
    assert back.close == {"statecode": 1, "statuscode": 4}


def test_engagement_value_is_the_tabs_single_engagement_mapping() -> None:
    options = (OptionValue(1, "Cold"), OptionValue(2, "Engaged"))
    columns = {"new_stage": DynamicsColumn("new_stage", AttributeType.PICKLIST, options=options)}
    tab = [
        EngagementMapping(kind="engagement", dynamics_field="new_stage", value="Engaged", value_type="choice")
    ]
    value, problem = engagement_value(tab, columns)
    assert problem is None and value is not None and (value.column, value.value) == ("new_stage", 2)
    bad = [EngagementMapping(kind="engagement", dynamics_field="new_stage", value="Hot", value_type="choice")]
    value, problem = engagement_value(bad, columns)
    assert value is None and problem is not None and problem.field == "new_stage"
    assert engagement_value([], columns) == (None, None)
