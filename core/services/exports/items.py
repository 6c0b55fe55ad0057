"""A record moving through an export run (also the companies and contacts an association touches)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.adapters.storage.job_store import StagedRow
from core.domain.export_plan import DesiredLink, DesiredValue
from core.domain.jobs import FieldError, RecordOutcome, RecordWarning


@dataclass(frozen=True)
class StagedRecord:
    """A submitted record as an export stages it in a chunk: its position and the platform's fields."""

    seq: int
    record: Mapping[str, Any]

    @property
    def platform_id(self) -> str:
        return str(self.record.get("id", ""))

    def to_row(self) -> StagedRow:
        return StagedRow(self.seq, {"record": self.record})

    @classmethod
    def from_row(cls, row: StagedRow) -> StagedRecord:
        return cls(row.seq, row.fields["record"])


@dataclass(eq=False)  # identity semantics: items key the per-record failure maps
class ExportItem:
    seq: int  # position in the submitted list (-1: a company or contact touched by an association)
    platform_id: str
    data: Mapping[str, Any]
    dynamics_id: str | None = None
    current: Mapping[str, Any] | None = None  # its Dynamics row's columns, when matched
    match: dict[str, Any] | None = None
    values: list[DesiredValue] = field(default_factory=list)
    links: list[DesiredLink] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[RecordWarning] = field(default_factory=list)
    outcome: RecordOutcome | None = None
    has_record_value: bool = False  # a value from the record itself (not only fixed/manual constants)
