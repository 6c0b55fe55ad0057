"""Every icon of step 2 and step 3 for one Dynamics table at once, compact enough for a table of a few
hundred columns.

The setup window shows an icon next to each Dynamics column for whatever is being mapped to it: a platform
field, a fixed value of a type, a manual-export value of a type, an engagement value of a type, or (contact
table only) a campaign property. ``targets`` lists those, ``icon_matrix`` decides each cell with the same
functions the configuration check uses (``check_compatibility``, ``campaign_compatibility``), and stores
each distinct outcome once: a cell is an index into ``outcomes``. Pure; no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from core.domain.catalog import (
    CAMPAIGN_PROPERTIES,
    COMPANY_PREFIX,
    Entity,
    FieldType,
    PlatformField,
    catalog_for,
)
from core.domain.compatibility import (
    MATRIX,
    Compatibility,
    campaign_compatibility,
    check_compatibility,
)
from core.domain.dynamics_metadata import DynamicsColumn


class TargetKind(StrEnum):
    PLATFORM_FIELD = "platform_field"
    FIXED_VALUE = "fixed_value"
    MANUAL_EXPORT = "manual_export"
    ENGAGEMENT = "engagement"
    CAMPAIGN_PROPERTY = "campaign_property"


_VALUE_KINDS = (TargetKind.FIXED_VALUE, TargetKind.MANUAL_EXPORT, TargetKind.ENGAGEMENT)


@dataclass(frozen=True)
class Target:
    """What may be mapped to a column. ``key``: the platform field (``company.<x>`` in the contacts tab),
    ``<kind>:<valueType>`` for fixed, manual-export and engagement values, ``campaign:<property>``."""

    key: str
    kind: TargetKind
    type: FieldType | None  # None for campaign properties (the property decides)

    def compatibility(self, column: DynamicsColumn) -> Compatibility:
        if self.kind is TargetKind.CAMPAIGN_PROPERTY:
            return campaign_compatibility(self.key.removeprefix("campaign:"), column)
        assert self.type is not None
        return check_compatibility(self.type, column)


def targets(entity: Entity, custom_fields: Iterable[PlatformField] = ()) -> list[Target]:
    """Everything the tab of ``entity`` may map, in a stable order: its fields (contacts: then the
    company's, prefixed), the value kinds by type, and (contacts) the thirteen campaign properties."""
    custom = list(custom_fields)
    out = [Target(name, TargetKind.PLATFORM_FIELD, f.type) for name, f in catalog_for(entity, custom).items()]
    if entity is Entity.CONTACT:
        out += [
            Target(COMPANY_PREFIX + name, TargetKind.PLATFORM_FIELD, f.type)
            for name, f in catalog_for(Entity.COMPANY, custom).items()
        ]
    out += [Target(f"{kind.value}:{t.value}", kind, t) for kind in _VALUE_KINDS for t in FieldType]
    if entity is Entity.CONTACT:
        out += [Target(f"campaign:{p}", TargetKind.CAMPAIGN_PROPERTY, None) for p in CAMPAIGN_PROPERTIES]
    return out


@dataclass(frozen=True)
class IconMatrix:
    columns: tuple[DynamicsColumn, ...]
    targets: tuple[Target, ...]
    outcomes: tuple[Compatibility, ...]  # each distinct (level, reasons) once
    cells: tuple[tuple[int, ...], ...]  # cells[column][target] -> index into outcomes

    def cell(self, column: str, target: str) -> Compatibility:
        c = next(i for i, col in enumerate(self.columns) if col.logical_name == column)
        t = next(i for i, tg in enumerate(self.targets) if tg.key == target)
        return self.outcomes[self.cells[c][t]]


def icon_matrix(columns: Mapping[str, DynamicsColumn], wanted: Sequence[Target]) -> IconMatrix:
    """The icon of every target on every column (columns in logical-name order)."""
    ordered = tuple(column for _, column in sorted(columns.items()))
    index: dict[Compatibility, int] = {}
    rows: list[tuple[int, ...]] = []
    for column in ordered:
        by_type: dict[tuple[TargetKind, FieldType | None, str], int] = {}
        row: list[int] = []
        for target in wanted:
            # Platform fields and value kinds of one type share their icon on a column: decide it once.
            memo = (
                (TargetKind.CAMPAIGN_PROPERTY, None, target.key)
                if target.kind is TargetKind.CAMPAIGN_PROPERTY
                else (TargetKind.PLATFORM_FIELD, target.type, "")
            )
            if memo not in by_type:
                by_type[memo] = index.setdefault(target.compatibility(column), len(index))
            row.append(by_type[memo])
        rows.append(tuple(row))
    return IconMatrix(ordered, tuple(wanted), tuple(index), tuple(rows))


def metadata_version(columns: Mapping[str, DynamicsColumn]) -> str:
    """A short fingerprint of a table's metadata: changes whenever a column is added, removed or changed."""
    digest = hashlib.sha256()
    for name, column in sorted(columns.items()):
        digest.update(f"{name}\x1f{column!r}\x1e".encode())
    return digest.hexdigest()[:16]


def rules_version() -> str:
    """A fingerprint of the compatibility rules themselves (the matrix's cells)."""
    digest = hashlib.sha256()
    for (field_type, attribute_type), (level, why) in sorted(MATRIX.items()):
        digest.update(f"{field_type}\x1f{attribute_type}\x1f{level}\x1f{why}\x1e".encode())
    return digest.hexdigest()[:16]
