"""A record moving through an export run (also the companies and contacts an association touches)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.domain.export_plan import DesiredLink, DesiredValue
from core.domain.jobs import FieldError, RecordOutcome, RecordWarning


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
