"""What an export request carries, and which of its records can be exported (pure).

Envelope problems (unknown entity, records not a list, manual values on an automatic export) reject the
whole request with 400. Problems of single records do not: those records end ``invalid`` with every
problem listed, and the others are exported — one bad row in a 10,000-row list must not block the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.domain.catalog import Entity, PlatformField, catalog_for
from core.domain.config import MAX_MAPPINGS_PER_TAB
from core.domain.jobs import ExportEntity, FieldError, RecordAction, RecordOutcome
from core.domain.values import check_value, parse_datetime

MAX_RECORDS_PER_EXPORT = 100_000
MAX_PLATFORM_ID_LENGTH = 200
# An automatic export carries the changes of one window; each record's order of changes is kept in Table
# Storage at submit (a read and a write per record), so the request stays a few seconds long.
MAX_AUTOMATIC_RECORDS = 2_000
# Keys a record may carry besides catalog fields: the contact's embedded company and campaign data, the
# company's contacts (for the "associate companies with contacts" toggle).
CONTACT_EXTRA_KEYS = frozenset({"company", "campaigns", "activities", "conversationTags"})
COMPANY_EXTRA_KEYS = frozenset({"contacts"})
# An automatic export's record says when the platform changed it: the order of changes of one record.
CHANGED_AT = "changedAt"


class ExportTrigger(StrEnum):
    MANUAL = "manual"
    AUTOMATIC = "automatic"


class ExportRequest(BaseModel):
    """``POST /api/dynamics/exports``. The exporting platform user comes from the caller's token, or, for
    the platform's service only, from ``userId``."""

    model_config = ConfigDict(extra="forbid")

    entity: ExportEntity
    records: list[Any] = Field(min_length=1, max_length=MAX_RECORDS_PER_EXPORT)
    # One value per manual-export mapping of the tab, so never more than a tab may hold; the cap is
    # checked before any key is looked at (a 500,000-key body is one problem, not 500,000).
    manualValues: dict[str, Any] = Field(default_factory=dict, max_length=MAX_MAPPINGS_PER_TAB)
    trigger: ExportTrigger = Field(
        default=ExportTrigger.MANUAL,
        description=(
            "automatic: the platform's service pushing changed records (service only; docs/platform-"
            "integration.md). Each record then carries `changedAt` (ISO-8601 with a timezone, when the "
            "platform changed it); several changes of one record within the window are one write with the "
            f"latest values, an older change is never written over a newer one; at most "
            f"{MAX_AUTOMATIC_RECORDS} records"
        ),
    )
    dryRun: bool = False
    userId: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PLATFORM_ID_LENGTH,
        description=(
            "The platform user the export is for (who requested it; decides the owner). Only the "
            "platform's service may name it; a person exports as themselves (their token's sub)"
        ),
    )
    identityId: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PLATFORM_ID_LENGTH,
        description=(
            "The campaign identity an export is made for (a campaign's sync or export): the records are "
            "written on behalf of the identity's mapped Dynamics user (step 4, identities mapping), so "
            "Dynamics shows that user as created by / modified by. The owner still follows the users "
            "mapping of `userId`. An identity without a usable mapping is written as the owner's rule "
            "says and each record's note says why. Only the platform's service may name it"
        ),
    )


class RetryInclude(StrEnum):
    SKIPPED = "skipped"
    INVALID = "invalid"


class RetryRequest(BaseModel):
    """``POST /api/dynamics/exports/{jobId}/retry`` (the body is optional). The job's ``failed`` records
    are always sent again; ``include`` adds its ``skipped`` and / or ``invalid`` ones."""

    model_config = ConfigDict(extra="forbid")

    include: list[RetryInclude] = Field(
        default_factory=list,
        max_length=len(RetryInclude),
        description="also send the job's skipped and/or invalid records again (after fixing the "
        "configuration or the data); a retry job already made is answered as it is",
    )


@dataclass(frozen=True)
class ValidRecord:
    seq: int
    platform_id: str
    data: Mapping[str, Any]
    changed_at: str | None = None  # an automatic export's change time, as ``change_key`` orders it


def change_key(value: Any) -> str | None:
    """A change time as a fixed-width UTC string (``2026-12-01T10:00:00.000000Z``) whose text order is
    the order of time, so stored keys compare as strings; ``None`` when ``value`` is not an ISO-8601
    date-time with a zone."""
    parsed = parse_datetime(value) if isinstance(value, str) and len(value) <= 64 else None
    if parsed is None:
        return None
    utc = parsed.astimezone(dt.UTC)
    if utc.year < 1970:
        return None
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_records(
    entity: ExportEntity,
    records: Iterable[Any],
    custom_fields: Iterable[PlatformField] = (),
    *,
    automatic: bool = False,
) -> tuple[list[ValidRecord], list[RecordOutcome]]:
    """Split ``records`` into exportable ones and ``invalid`` outcomes listing every problem. An
    automatic export's records each need ``changedAt``, and one record may appear several times (several
    changes: ``latest_changes`` keeps the last); a manual export sends each record once."""
    custom = list(custom_fields)
    catalog_entity = Entity.CONTACT if entity is ExportEntity.CONTACTS else Entity.COMPANY
    fields = catalog_for(catalog_entity, custom)
    company_fields = catalog_for(Entity.COMPANY, custom)
    valid: list[ValidRecord] = []
    invalid: list[RecordOutcome] = []
    seen_ids: set[str] = set()
    for seq, record in enumerate(records):
        problems: list[FieldError] = []
        platform_id = ""
        if not isinstance(record, dict):
            invalid.append(_invalid(seq, "", [FieldError("", "a record must be a JSON object")]))
            continue
        raw_id = record.get("id")
        if not isinstance(raw_id, str) or not raw_id.strip():
            problems.append(FieldError("id", "required: the platform id of the record"))
        elif len(raw_id) > MAX_PLATFORM_ID_LENGTH:
            problems.append(FieldError("id", f"longer than {MAX_PLATFORM_ID_LENGTH} characters"))
        else:
            platform_id = raw_id
            if platform_id in seen_ids and not automatic:
                problems.append(
                    FieldError("id", "the same platform id appears earlier in this export; sent once only")
                )
        problems.extend(_field_problems(record, fields, "", skip={"id"}))
        changed_at = change_key(record.get(CHANGED_AT)) if automatic else None
        if automatic and changed_at is None:
            problems.append(
                FieldError(
                    CHANGED_AT,
                    "required on an automatic export: when the platform changed the record, ISO-8601 with "
                    "a timezone (e.g. 2026-12-01T10:00:00.250Z); it orders changes of the same record",
                )
            )
        if entity is ExportEntity.CONTACTS:
            company = record.get("company")
            if company is not None:
                if not isinstance(company, dict):
                    problems.append(FieldError("company", "must be an object (the contact's company)"))
                else:
                    problems.extend(_field_problems(company, company_fields, "company.", skip=set()))
        else:
            contacts = record.get("contacts")
            if contacts is not None and (
                not isinstance(contacts, list)
                or not all(isinstance(c, dict) and isinstance(c.get("id"), str) for c in contacts)
            ):
                problems.append(FieldError("contacts", "must be a list of contacts, each with an id"))
        if problems:
            invalid.append(_invalid(seq, platform_id, problems))
            continue
        seen_ids.add(platform_id)
        valid.append(ValidRecord(seq=seq, platform_id=platform_id, data=record, changed_at=changed_at))
    return valid, invalid


def latest_changes(valid: Iterable[ValidRecord]) -> tuple[list[ValidRecord], list[RecordOutcome]]:
    """Several changes of one record in one automatic export are one write, with the latest values: the
    change with the latest ``changedAt`` is kept (the later in the list on a tie) and the others are
    ``skipped``, merged into it (its Dynamics id and action join them when results are read)."""
    valid = list(valid)
    latest: dict[str, ValidRecord] = {}
    for record in valid:
        kept = latest.get(record.platform_id)
        if kept is None or (record.changed_at or "") >= (kept.changed_at or ""):
            latest[record.platform_id] = record
    kept_ids = {id(r) for r in latest.values()}
    superseded = [
        RecordOutcome(
            record.seq,
            record.platform_id,
            RecordAction.SKIPPED,
            note=(
                f"superseded: a later change of this record (changedAt {keeper.changed_at}, position "
                f"{keeper.seq}) is in this export; written once, with the latest values"
            ),
            merged_into=(keeper.seq, keeper.platform_id),
        )
        for record in valid
        if id(record) not in kept_ids and (keeper := latest[record.platform_id])
    ]
    return [r for r in valid if id(r) in kept_ids], superseded


def _field_problems(
    record: Mapping[str, Any], fields: Mapping[str, PlatformField], prefix: str, skip: set[str]
) -> list[FieldError]:
    problems = []
    for name, value in record.items():
        field = fields.get(name)
        if field is None or name in skip:
            continue  # extra keys (campaign data, ids of other systems) are carried, not exported
        message = check_value(field.type, value)
        if message:
            problems.append(FieldError(prefix + name, message))
    return problems


def _invalid(seq: int, platform_id: str, problems: list[FieldError]) -> RecordOutcome:
    return RecordOutcome(seq=seq, platform_id=platform_id, action=RecordAction.INVALID, errors=problems)
