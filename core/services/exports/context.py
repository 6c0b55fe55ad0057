"""What the association step of an export run reads from the run. ``ExportRun`` is the one implementation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from core.domain.catalog import Entity
from core.domain.config import DynamicsConfig
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.matching import IdentifierConfig
from core.services.exports.items import ExportItem
from core.services.exports.writes import ExportWrites


class ExportContext(Protocol):
    ws: str
    config: DynamicsConfig
    identifiers: IdentifierConfig
    dry_run: bool
    items: list[ExportItem]
    writes: ExportWrites

    def columns(self, table: str) -> dict[str, DynamicsColumn]: ...

    def match(self, items: Sequence[ExportItem], entity: Entity, mapped: Sequence[str]) -> None: ...

    def account_names(self, ids: Iterable[str]) -> dict[str, str]: ...
