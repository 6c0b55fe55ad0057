"""What moves through an activity run: each event, and each contact the events regard."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.adapters.storage.job_store import StagedRow
from core.domain.activities import ActivityEvent, ActivityWrite, Actor, ContactAction
from core.domain.jobs import FieldError, RecordAction


@dataclass(frozen=True)
class StagedEvent:
    """A submitted event as an activity job stages it in a chunk: its position, the event, the platform
    contact it regards (when the request carried one) and, when that contact is exported first, the
    request's first platform contact of the same person (``exportAs``)."""

    seq: int
    event: Mapping[str, Any]
    contact: Mapping[str, Any] | None
    export_as: str | None = None

    @property
    def platform_id(self) -> str:
        return str(self.event.get("id", ""))

    def to_row(self) -> StagedRow:
        fields: dict[str, Any] = {"event": self.event, "contact": self.contact}
        if self.export_as is not None:
            fields["exportAs"] = self.export_as
        return StagedRow(self.seq, fields)

    @classmethod
    def from_row(cls, row: StagedRow) -> StagedEvent:
        return cls(row.seq, row.fields["event"], row.fields.get("contact"), row.fields.get("exportAs"))


@dataclass
class EventItem:
    """One engagement event of the chunk."""

    seq: int
    event: ActivityEvent
    contact_data: Mapping[str, Any] | None
    export_as: str | None = None  # the request's first platform contact of the same person (submit)
    contact_id: str | None = None
    table: str | None = None
    actor: Actor | None = None
    write: ActivityWrite | None = None
    action: RecordAction | None = None
    finishing: bool = False  # an earlier attempt created the activity and crashed before closing it
    errors: list[FieldError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ContactItem:
    """A contact the chunk's events regard."""

    platform_id: str
    data: Mapping[str, Any] | None
    dynamics_id: str | None = None
    current: Mapping[str, Any] | None = None
    match: dict[str, Any] | None = None
    new_activities: int = 0
    action: ContactAction | None = None
    # Not in Dynamics and not exported: why (skipped), or what Dynamics refused (failed).
    export_problem: str | None = None
    export_errors: list[FieldError] = field(default_factory=list)
    export_note: str | None = None
    same_as: str | None = None  # the same person as another contact of the chunk (by the identifier)
    export_as: str | None = None  # ... as another contact of the request: exported under its id

    @property
    def export_id(self) -> str:
        """The platform id the contact is exported under (its deterministic Dynamics id)."""
        return self.export_as or self.platform_id
