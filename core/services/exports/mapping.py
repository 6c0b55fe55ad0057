"""The field mapping of an export (step 2) and campaign properties (step 3): what to write in each column.

Pure per record once the columns' metadata is known: a platform field, a fixed value or a manual-export
value, converted to the column's type (``core.domain.conversion``); an engagement mapping is written when
an activity is logged, never by an export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.domain.campaign_properties import campaign_values
from core.domain.campaign_properties import mapped_columns as mapped_campaign_columns
from core.domain.catalog import Entity, resolve_field
from core.domain.config import (
    DynamicsConfig,
    EngagementMapping,
    FixedValueMapping,
    ManualExportMapping,
    PlatformFieldMapping,
)
from core.domain.conversion import NO_VALUE, ConversionError, convert
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.export_plan import DesiredValue
from core.domain.jobs import FieldError
from core.domain.matching import platform_value
from core.services.exports.items import ExportItem


def mapped_columns(
    config: DynamicsConfig, tab: Sequence[Any], contact_columns: Mapping[str, DynamicsColumn]
) -> list[str]:
    """The Dynamics columns a run reads to compare with what it would write."""
    mapped = [m.dynamics_field for m in tab if not isinstance(m, EngagementMapping)]
    if tab is config.field_mapping.contacts:
        # Step 3: read the campaign property columns too, so unchanged properties cost no write.
        campaign = mapped_campaign_columns(config.campaign_mapping).values()
        mapped += [c for c in campaign if c in contact_columns]
    return mapped


def desired_values(
    item: ExportItem,
    tab: Sequence[Any],
    columns: Mapping[str, DynamicsColumn],
    entity: Entity,
    config: DynamicsConfig,
    manual_values: Mapping[str, Any],
) -> None:
    """Fill ``item.values`` with what the field mapping asks to write (converted to each column's type),
    or ``item.errors`` with why a value cannot be written."""
    for mapping in tab:
        if isinstance(mapping, EngagementMapping):
            continue  # written when an activity is logged, never by an export
        column = columns.get(mapping.dynamics_field)
        if column is None:
            item.errors.append(
                FieldError(
                    mapping.dynamics_field, f"column {mapping.dynamics_field} does not exist in Dynamics"
                )
            )
            continue
        if isinstance(mapping, PlatformFieldMapping):
            field_def = resolve_field(entity, mapping.platform_field)
            if field_def is None:
                item.errors.append(FieldError(mapping.platform_field, "unknown platform field"))
                continue
            raw: Any = platform_value(item.data, mapping.platform_field)
            ftype, source = field_def.type, mapping.platform_field
        elif isinstance(mapping, FixedValueMapping):
            raw, ftype, source = (
                mapping.value,
                mapping.value_type,
                f"fixed value of {mapping.dynamics_field}",
            )
        elif isinstance(mapping, ManualExportMapping):
            if mapping.dynamics_field not in manual_values:
                continue
            raw = manual_values[mapping.dynamics_field]
            ftype, source = mapping.value_type, f"manual value of {mapping.dynamics_field}"
        else:
            continue
        try:
            value = convert(raw, ftype, column, field=source)
        except ConversionError as exc:
            item.errors.append(FieldError(mapping.dynamics_field, f"{source}: {exc.reason}", exc.code))
            continue
        if value is not NO_VALUE:
            item.values.append(DesiredValue(mapping.dynamics_field, value, mapping.mode))
            item.has_record_value |= isinstance(mapping, PlatformFieldMapping)
    if entity is Entity.CONTACT:
        # Step 3: contacts carry their campaign data; the mapped properties ride along with the export.
        campaign, problems = campaign_values(item.data, config.campaign_mapping, columns)
        item.values.extend(campaign)
        item.notes.extend(f"campaign property not written: {p.field}: {p.message}" for p in problems)
