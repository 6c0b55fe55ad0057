"""Campaign engagement events -> Dynamics activities (pure): validation, ids, tables, actors, payloads.

Decisions (docs/campaign-properties.md "Activities"):

- Each event id is an idempotency key: the activity's primary key is ``uuid5(workspace, event id)``, so a
  redelivered or duplicated event finds (or collides with) the activity an earlier attempt made.
- Kinds: ``email_sent`` -> ``email`` (outgoing), ``email_replied`` -> ``email`` (incoming, the contact is
  the sender); ``linkedin_message`` / ``linkedin_connection`` -> the LinkedIn activity table (the custom
  ``new_linkedinactivity`` when the organisation has it, else ``task`` with a subject saying what happened);
  ``call`` -> ``phonecall``; ``task`` -> ``task``. ``email_opened`` / ``email_clicked`` are signals, not
  activities: they update the campaign properties (opens, clicks, analyses) and log nothing — one
  activity per opened e-mail would bury the timeline.
- Every logged event already happened: the activity is created, then closed (statecode Completed with the
  status of that state that fits: Sent / Received for e-mails, Made / Received for calls, else the first).
  An open activity of ours is an unfinished earlier attempt; a closed one is done (the redelivery no-op).
- A contact not in Dynamics: its events are ``skipped`` with the reason, unless the workspace turned on
  ``syncIdentifiers.exportMissingContacts``: then the contact is exported first by the export pipeline
  (same validation, matching, mapping, company association, owner rules and deterministic id, so a
  retried chunk never creates it twice) from the contact data sent with the events, and each event says
  what happened to its contact (``contactAction``).
- Actor (step 4): the Dynamics user mapped to the event's identity (impersonated with ``CallerObjectId``
  so the log shows that user as creator and owner), else the identity's platform user's mapping, else the
  default CRM owner (owner only), else the integration user. Mapped users that do not exist, are disabled
  or have no Entra object id are passed over, with the reason in the result.

Over 400 lines on purpose: the request model, validation, actor choice and payload building are the
whole pure pipeline of one event, in the order the worker applies them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.domain.catalog import FieldType
from core.domain.config import EngagementMapping
from core.domain.conversion import NO_VALUE, ConversionError, convert, utf16_length
from core.domain.dynamics_metadata import DynamicsColumn, OptionValue
from core.domain.export_plan import DesiredValue
from core.domain.export_request import validate_records
from core.domain.jobs import ExportEntity, FieldError, RecordAction, RecordOutcome
from core.domain.matching import Rule, duplicate_groups
from core.domain.values import parse_datetime

MAX_EVENTS_PER_REQUEST = 50_000
MAX_ID_LENGTH = 200
ACTIVITY_ID_NAMESPACE = uuid.UUID("9f4c2d1e-6a3b-4e58-8c7d-2b1a0f9e8d76")
LINKEDIN_CUSTOM_TABLE = "new_linkedinactivity"
DEFAULT_SUBJECT_LENGTH = 400
DEFAULT_DESCRIPTION_LENGTH = 100_000
COMPLETED_STATE = 1
SENDER, TO_RECIPIENT = 1, 2


class EventKind(StrEnum):
    EMAIL_SENT = "email_sent"
    EMAIL_OPENED = "email_opened"
    EMAIL_CLICKED = "email_clicked"
    EMAIL_REPLIED = "email_replied"
    LINKEDIN_MESSAGE = "linkedin_message"
    LINKEDIN_CONNECTION = "linkedin_connection"
    CALL = "call"
    TASK = "task"


SIGNAL_KINDS = frozenset({EventKind.EMAIL_OPENED, EventKind.EMAIL_CLICKED})
INCOMING_KINDS = frozenset({EventKind.EMAIL_REPLIED})


class IdentityInfo(BaseModel):
    """A platform identity: who runs the campaign, and the platform user behind it."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    userId: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    name: str | None = None
    kind: str | None = None


class ActivitiesRequest(BaseModel):
    """``POST /api/dynamics/activities``.

    ``events``: engagement events as the platform sends them; each is validated on its own. ``contacts``: the
    platform contacts the events are about (matching with the configured identifier, campaign data for
    the campaign properties, and the data a contact not in Dynamics is exported from when
    ``syncIdentifiers.exportMissingContacts`` is on); an event may instead embed its ``contact``.
    ``identities``: the identities the events name, with their platform user (the second step of the
    actor fallback).
    """

    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)
    contacts: list[Any] = Field(
        default_factory=list,
        max_length=MAX_EVENTS_PER_REQUEST,
        description=(
            "The events' contacts as export records (id = the events' contactId, catalog fields, company, "
            "campaign data): matched with the contact identifier, and exported first when "
            "syncIdentifiers.exportMissingContacts is on and they are not in Dynamics"
        ),
    )
    identities: list[IdentityInfo] = Field(default_factory=list, max_length=10_000)


@dataclass(frozen=True)
class ActivityEvent:
    id: str
    contact_id: str
    kind: EventKind
    at: dt.datetime
    identity_id: str | None = None
    user_id: str | None = None
    subject: str | None = None
    body: str | None = None
    campaign_id: str | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ActivityEvent:
        """From a staged event that passed :func:`validate_events`."""
        at = parse_datetime(str(raw["at"]))
        assert at is not None
        return cls(
            id=str(raw["id"]),
            contact_id=str(raw["contactId"]),
            kind=EventKind(str(raw["kind"])),
            at=at,
            identity_id=_opt(raw.get("identityId")),
            user_id=_opt(raw.get("userId")),
            subject=_opt(raw.get("subject")),
            body=_opt(raw.get("body")),
            campaign_id=_opt(raw.get("campaignId")),
        )


def _opt(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def activity_id(workspace_id: str, event_id: str) -> str:
    """The Dynamics primary key of the activity logged for an event (stable across retries)."""
    return str(uuid.uuid5(ACTIVITY_ID_NAMESPACE, f"{workspace_id}\x1f{event_id}"))


@dataclass(frozen=True)
class ValidEvent:
    seq: int
    event: Mapping[str, Any]
    contact: Mapping[str, Any] | None


def _id_problem(name: str, value: Any) -> FieldError | None:
    if not isinstance(value, str) or not value.strip():
        return FieldError(name, "required: a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        return FieldError(name, f"longer than {MAX_ID_LENGTH} characters")
    return None


def event_problems(raw: Any) -> list[FieldError]:
    """Every problem of one event (empty: valid)."""
    if not isinstance(raw, Mapping):
        return [FieldError("", "an event must be a JSON object")]
    problems = [
        p for p in (_id_problem("id", raw.get("id")), _id_problem("contactId", raw.get("contactId"))) if p
    ]
    kind = raw.get("kind")
    if kind not in {k.value for k in EventKind}:
        problems.append(FieldError("kind", f"must be one of {', '.join(k.value for k in EventKind)}"))
    at = raw.get("at")
    parsed = parse_datetime(at) if isinstance(at, str) else None
    if parsed is None or parsed.tzinfo is None:
        problems.append(FieldError("at", "required: an ISO-8601 date-time with a time zone"))
    for name in ("identityId", "userId", "subject", "body", "campaignId"):
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(FieldError(name, "must be a string"))
    for name in ("identityId", "userId", "campaignId"):
        value = raw.get(name)
        if isinstance(value, str) and len(value) > MAX_ID_LENGTH:
            problems.append(FieldError(name, f"longer than {MAX_ID_LENGTH} characters"))
    contact = raw.get("contact")
    if contact is not None and (
        not isinstance(contact, Mapping) or contact.get("id") != raw.get("contactId")
    ):
        problems.append(FieldError("contact", "must be the contact object whose id is contactId"))
    return problems


def validate_events(
    events: Sequence[Any], contacts: Iterable[Any] = ()
) -> tuple[list[ValidEvent], list[RecordOutcome]]:
    """Split events into valid ones (each with its contact's data, if sent) and ``invalid`` outcomes."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for contact in contacts:
        if isinstance(contact, Mapping) and isinstance(contact.get("id"), str):
            by_id[str(contact["id"])] = contact
    valid: list[ValidEvent] = []
    invalid: list[RecordOutcome] = []
    seen: dict[str, int] = {}
    for seq, raw in enumerate(events):
        problems = event_problems(raw)
        event_key = raw.get("id") if isinstance(raw, Mapping) else None
        if not problems and isinstance(event_key, str):
            if event_key in seen:
                problems = [FieldError("id", f"the same event is at position {seen[event_key]}: logged once")]
            else:
                seen[event_key] = seq
        if problems:
            event_id = raw.get("id") if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) else ""
            invalid.append(RecordOutcome(seq, str(event_id), RecordAction.INVALID, errors=problems))
            continue
        event = {k: v for k, v in raw.items() if k != "contact"}
        contact = raw.get("contact") or by_id.get(str(raw["contactId"]))
        valid.append(ValidEvent(seq, event, contact))
    return valid, invalid


def export_aliases(rule: Rule, events: Sequence[ValidEvent]) -> dict[str, str]:
    """Platform contacts of one request that the identifier says are the same person (same LinkedIn
    profile, same name and company, ...): each of the others -> the first one's platform id.

    Exported under that one id (its deterministic Dynamics id), two chunks running at once that both miss
    the person in Dynamics create one contact between them (the second create is a duplicate id, turned
    into an update), not one each. Within a chunk the worker merges them anyway."""
    first: dict[str, Mapping[str, Any]] = {}
    for item in events:
        contact_id = str(item.event.get("contactId"))
        if isinstance(item.contact, Mapping):
            first.setdefault(contact_id, item.contact)
    ids = list(first)
    aliases: dict[str, str] = {}
    for group in duplicate_groups(rule, [first[i] for i in ids]):
        for index in group[1:]:
            aliases[ids[index]] = ids[group[0]]
    return aliases


# --- the regarding contact --------------------------------------------------------------------------


class ContactAction(StrEnum):
    """What happened to an event's contact (``contactAction`` of the event's result)."""

    EXISTING = "existing"  # already in Dynamics (exported by the platform, or matched by the identifier)
    CREATED = "created"  # not in Dynamics: exported first by this job (exportMissingContacts)
    UPDATED = "updated"  # exported first, but the export found it meanwhile and wrote the mapping into it
    NOT_FOUND = "not_found"  # not in Dynamics and not exported: the event's note or errors say why


def contact_export_problem(contact_id: str, data: Mapping[str, Any] | None) -> str | None:
    """Why a contact not in Dynamics cannot be exported from the data sent with its events (None: it
    can be tried; the export itself still refuses a contact none of whose mapped fields has a value)."""
    if data is None:
        return (
            f"contact {contact_id} is not in Dynamics and cannot be exported: no contact data was sent "
            "(send the contact as the event's `contact` or in the request's `contacts`)"
        )
    _, invalid = validate_records(ExportEntity.CONTACTS, [dict(data)])
    if invalid:
        details = "; ".join(f"{e.field or 'contact'}: {e.message}" for e in invalid[0].errors)
        return f"contact {contact_id} is not in Dynamics and its data cannot be exported ({details})"
    return None


# --- actors (step 4) -------------------------------------------------------------------------------


class ActorSource(StrEnum):
    IDENTITY_MAPPING = "identity_mapping"
    USER_MAPPING = "user_mapping"
    DEFAULT_OWNER = "default_owner"
    INTEGRATION_USER = "integration_user"


@dataclass(frozen=True)
class Actor:
    """Who the activity is logged as: owner (and creator when ``caller_object_id`` is set)."""

    systemuser_id: str
    source: ActorSource
    caller_object_id: str | None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source.value,
            "dynamicsUserId": self.systemuser_id,
            "impersonated": self.caller_object_id is not None,
        }
        if self.notes:
            out["passedOver"] = list(self.notes)
        return out


def choose_actor(
    *,
    identity_id: str | None,
    user_id: str | None,
    identity_users: Mapping[str, str],
    user_users: Mapping[str, str],
    default_owner_id: str | None,
    integration_user_id: str,
    systemusers: Mapping[str, Mapping[str, Any]],
) -> Actor:
    """The fallback chain: identity mapping, the identity's platform user mapping, default owner,
    integration user. ``systemusers`` are the Dynamics rows by lower-case id (missing: does not exist)."""
    candidates: list[tuple[str | None, ActorSource, bool]] = [
        (identity_users.get(identity_id) if identity_id else None, ActorSource.IDENTITY_MAPPING, True),
        (user_users.get(user_id) if user_id else None, ActorSource.USER_MAPPING, True),
        (default_owner_id, ActorSource.DEFAULT_OWNER, False),
    ]
    notes: list[str] = []
    for systemuser_id, source, impersonate in candidates:
        if not systemuser_id:
            continue
        row = systemusers.get(systemuser_id.lower())
        if row is None:
            notes.append(f"{source.value}: Dynamics user {systemuser_id} does not exist")
            continue
        if row.get("isdisabled"):
            notes.append(f"{source.value}: Dynamics user {systemuser_id} is disabled")
            continue
        object_id = row.get("azureactivedirectoryobjectid")
        if impersonate and not object_id:
            notes.append(f"{source.value}: Dynamics user {systemuser_id} has no Entra object id")
            continue
        return Actor(systemuser_id.lower(), source, str(object_id) if impersonate else None, tuple(notes))
    return Actor(integration_user_id.lower(), ActorSource.INTEGRATION_USER, None, tuple(notes))


# --- activity payloads -----------------------------------------------------------------------------


def activity_table(kind: EventKind, linkedin_table: str) -> str | None:
    """The Dynamics table an event kind is logged in (None: a signal, nothing is logged)."""
    if kind in SIGNAL_KINDS:
        return None
    if kind in (EventKind.EMAIL_SENT, EventKind.EMAIL_REPLIED):
        return "email"
    if kind in (EventKind.LINKEDIN_MESSAGE, EventKind.LINKEDIN_CONNECTION):
        return linkedin_table
    if kind is EventKind.CALL:
        return "phonecall"
    return "task"


def choose_linkedin_table(configured: str | None, known_tables: Iterable[str]) -> str:
    """``configured`` (a setting) wins; ``auto``/unset: the custom table if it exists, else ``task``."""
    if configured and configured.strip().lower() not in ("", "auto"):
        return configured.strip().lower()
    return LINKEDIN_CUSTOM_TABLE if LINKEDIN_CUSTOM_TABLE in set(known_tables) else "task"


_DEFAULT_SUBJECTS = {
    EventKind.EMAIL_SENT: "Email",
    EventKind.EMAIL_REPLIED: "Email reply",
    EventKind.LINKEDIN_MESSAGE: "LinkedIn message",
    EventKind.LINKEDIN_CONNECTION: "LinkedIn connection request",
    EventKind.CALL: "Call",
    EventKind.TASK: "Task",
}


def subject_for(event: ActivityEvent, table: str) -> str:
    """The subject; LinkedIn events logged as tasks say so (a task named "Hi" would mean nothing)."""
    base = _DEFAULT_SUBJECTS[event.kind]
    if event.kind in (EventKind.LINKEDIN_MESSAGE, EventKind.LINKEDIN_CONNECTION):
        if table == "task" or not event.subject:
            return f"{base}: {event.subject}" if event.subject else base
    return event.subject or base


def shorten(text: str, max_length: int | None) -> str:
    """``text`` cut to ``max_length`` UTF-16 units with an ellipsis (subjects, descriptions)."""
    if max_length is None or utf16_length(text) <= max_length:
        return text
    out = text
    while out and utf16_length(out) > max_length - 1:
        out = out[: -max(1, (utf16_length(out) - max_length + 1) // 2)]
    return out + "…"


@dataclass(frozen=True)
class ActivityWrite:
    table: str
    activity_id: str
    payload: dict[str, Any]
    close: dict[str, int] = field(default_factory=dict)  # statecode (+ statuscode) that closes it


def build_activity(
    event: ActivityEvent,
    *,
    workspace_id: str,
    table: str,
    entity_set: str,
    contact_id: str,
    actor: Actor,
    columns: Mapping[str, DynamicsColumn],
) -> ActivityWrite:
    """The create payload (with its client id and deep-inserted parties) and the closing state."""
    record_id = activity_id(workspace_id, event.id)
    subject_col, description_col = columns.get("subject"), columns.get("description")
    payload: dict[str, Any] = {
        "activityid": record_id,
        "subject": shorten(
            subject_for(event, table), subject_col.max_length if subject_col else DEFAULT_SUBJECT_LENGTH
        ),
        "actualend": event.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        f"regardingobjectid_contact_{table}@odata.bind": f"/contacts({contact_id})",
        "ownerid@odata.bind": f"/systemusers({actor.systemuser_id})",
    }
    if event.body:
        limit = description_col.max_length if description_col else DEFAULT_DESCRIPTION_LENGTH
        payload["description"] = shorten(event.body, limit)
    incoming = event.kind in INCOMING_KINDS
    if "directioncode" in columns:
        payload["directioncode"] = not incoming
    if table in ("email", "phonecall"):
        user = {"partyid_systemuser@odata.bind": f"/systemusers({actor.systemuser_id})"}
        contact = {"partyid_contact@odata.bind": f"/contacts({contact_id})"}
        sender, recipient = (contact, user) if incoming else (user, contact)
        payload[f"{table}_activity_parties"] = [
            {**sender, "participationtypemask": SENDER},
            {**recipient, "participationtypemask": TO_RECIPIENT},
        ]
    status_col = columns.get("statuscode")
    return ActivityWrite(
        table,
        record_id,
        payload,
        closing_state(table, incoming, status_col.options if status_col else ()),
    )


_PREFERRED_STATUS = {
    ("email", False): "sent",
    ("email", True): "received",
    ("phonecall", False): "made",
    ("phonecall", True): "received",
}


def closing_state(table: str, incoming: bool, status_options: Sequence[OptionValue]) -> dict[str, int]:
    """``statecode`` Completed and the statuscode of that state that describes what happened."""
    completed = [o for o in status_options if o.state == COMPLETED_STATE]
    wanted = _PREFERRED_STATUS.get((table, incoming), "completed")
    chosen = next((o for o in completed if o.label.strip().lower() == wanted), None)
    chosen = chosen or next((o for o in completed if o.label.strip().lower() == "completed"), None)
    chosen = chosen or (completed[0] if completed else None)
    out = {"statecode": COMPLETED_STATE}
    if chosen is not None:
        out["statuscode"] = chosen.value
    return out


# --- engagement field (step 2) ---------------------------------------------------------------------


def engagement_value(
    tab: Sequence[Any], columns: Mapping[str, DynamicsColumn]
) -> tuple[DesiredValue | None, FieldError | None]:
    """The tab's engagement mapping (validation allows one per tab) as a value for its column."""
    mapping = next((m for m in tab if isinstance(m, EngagementMapping)), None)
    if mapping is None:
        return None, None
    column = columns.get(mapping.dynamics_field)
    if column is None:
        return None, FieldError(mapping.dynamics_field, "engagement column does not exist in Dynamics")
    try:
        value = convert(mapping.value, FieldType(mapping.value_type), column, field="engagement value")
    except ConversionError as exc:
        return None, FieldError(mapping.dynamics_field, f"engagement value: {exc.reason}", exc.code)
    if value is NO_VALUE:
        return None, None
    return DesiredValue(mapping.dynamics_field, value, mapping.mode), None


class ActivityOutcome(RecordOutcome):
    """A record outcome that also says which activity was logged and as whom."""

    def __init__(
        self,
        seq: int,
        platform_id: str,
        action: RecordAction,
        dynamics_id: str | None = None,
        *,
        table: str | None = None,
        actor: Actor | None = None,
        contact_id: str | None = None,
        contact_action: ContactAction | None = None,
    ) -> None:
        super().__init__(seq, platform_id, action, dynamics_id)
        self.table = table
        self.actor = actor
        self.contact_id = contact_id
        self.contact_action = contact_action

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if self.contact_action is not None:
            out["contactAction"] = self.contact_action.value
        activity: dict[str, Any] = {}
        if self.table:
            activity["table"] = self.table
        if self.contact_id:
            activity["regardingContactId"] = self.contact_id
        if self.actor is not None:
            activity["actor"] = self.actor.to_json()
        if activity:
            out["activity"] = activity
        return out
