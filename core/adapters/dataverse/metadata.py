"""Table and column metadata read from ``EntityDefinitions`` (webapi/query-metadata-web-api.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BASE_ATTRIBUTE_SELECT = (
    "LogicalName",
    "SchemaName",
    "AttributeType",
    "AttributeTypeName",
    "RequiredLevel",
    "IsValidForCreate",
    "IsValidForUpdate",
    "IsValidForRead",
    "IsCustomAttribute",
    "AttributeOf",
    "DisplayName",
)

# AttributeType -> (metadata cast, $select, $expand): the type-specific properties the product needs.
TYPE_CASTS: dict[str, tuple[str, str, str | None]] = {
    "String": ("StringAttributeMetadata", "LogicalName,MaxLength,Format", None),
    "Memo": ("MemoAttributeMetadata", "LogicalName,MaxLength", None),
    "Picklist": ("PicklistAttributeMetadata", "LogicalName", "OptionSet,GlobalOptionSet"),
    "State": ("StateAttributeMetadata", "LogicalName", "OptionSet"),
    "Status": ("StatusAttributeMetadata", "LogicalName", "OptionSet"),
    "Boolean": ("BooleanAttributeMetadata", "LogicalName", "OptionSet"),
    "Integer": ("IntegerAttributeMetadata", "LogicalName,MinValue,MaxValue,Format", None),
    "BigInt": ("BigIntAttributeMetadata", "LogicalName,MinValue,MaxValue", None),
    "Decimal": ("DecimalAttributeMetadata", "LogicalName,MinValue,MaxValue,Precision", None),
    "Double": ("DoubleAttributeMetadata", "LogicalName,MinValue,MaxValue,Precision", None),
    "Money": ("MoneyAttributeMetadata", "LogicalName,MinValue,MaxValue,Precision", None),
    "DateTime": ("DateTimeAttributeMetadata", "LogicalName,Format,DateTimeBehavior", None),
    "Lookup": ("LookupAttributeMetadata", "LogicalName,Targets", None),
    "Customer": ("LookupAttributeMetadata", "LogicalName,Targets", None),
    "Owner": ("LookupAttributeMetadata", "LogicalName,Targets", None),
}
MULTI_SELECT_CAST = ("MultiSelectPicklistAttributeMetadata", "LogicalName", "OptionSet,GlobalOptionSet")
MULTI_SELECT_TYPE_NAME = "MultiSelectPicklistType"


@dataclass(frozen=True)
class OptionMetadata:
    value: int
    label: str


@dataclass(frozen=True)
class AttributeMetadata:
    logical_name: str
    attribute_type: str
    """AttributeTypeCode name: String, Memo, Picklist, Lookup, Virtual, ..."""
    type_name: str | None
    """AttributeTypeName.Value, e.g. ``MultiSelectPicklistType`` for a multi-select choice."""
    display_name: str | None
    required_level: str
    valid_for_create: bool
    valid_for_update: bool
    valid_for_read: bool
    is_custom: bool = False
    attribute_of: str | None = None
    max_length: int | None = None
    format: str | None = None
    options: tuple[OptionMetadata, ...] = ()
    targets: tuple[str, ...] = field(default_factory=tuple)
    min_value: float | None = None
    max_value: float | None = None
    precision: int | None = None
    date_time_behavior: str | None = None

    @property
    def is_multi_select(self) -> bool:
        return self.type_name == MULTI_SELECT_TYPE_NAME


@dataclass(frozen=True)
class EntityMetadata:
    logical_name: str
    entity_set_name: str
    primary_id_attribute: str
    primary_name_attribute: str | None


def label_text(label: Any) -> str | None:
    """The user-localized text of a Dataverse ``Label`` (or the first localized one)."""
    if not isinstance(label, Mapping):
        return None
    user = label.get("UserLocalizedLabel")
    if isinstance(user, Mapping) and user.get("Label"):
        return str(user["Label"])
    localized = label.get("LocalizedLabels")
    if isinstance(localized, list):
        for item in localized:
            if isinstance(item, Mapping) and item.get("Label"):
                return str(item["Label"])
    return None


def _managed_value(value: Any) -> Any:
    return value.get("Value") if isinstance(value, Mapping) else value


def parse_options(row: Mapping[str, Any]) -> tuple[OptionMetadata, ...]:
    """Options of a choice, state, status, multi-select (``OptionSet`` or ``GlobalOptionSet``) or boolean."""
    for key in ("OptionSet", "GlobalOptionSet"):
        option_set = row.get(key)
        if not isinstance(option_set, Mapping):
            continue
        options = option_set.get("Options")
        if isinstance(options, list) and options:
            return tuple(
                OptionMetadata(int(o["Value"]), label_text(o.get("Label")) or str(o["Value"]))
                for o in options
                if isinstance(o, Mapping) and o.get("Value") is not None
            )
        found = []
        for name in ("FalseOption", "TrueOption"):
            option = option_set.get(name)
            if isinstance(option, Mapping) and option.get("Value") is not None:
                found.append(OptionMetadata(int(option["Value"]), label_text(option.get("Label")) or name))
        if found:
            return tuple(found)
    return ()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def build_attribute(base: Mapping[str, Any], extra: Mapping[str, Any] | None) -> AttributeMetadata:
    extra = extra or {}
    max_length = extra.get("MaxLength")
    targets = extra.get("Targets")
    precision = extra.get("Precision")
    behavior = _managed_value(extra.get("DateTimeBehavior"))
    return AttributeMetadata(
        logical_name=str(base["LogicalName"]),
        attribute_type=str(base.get("AttributeType") or ""),
        type_name=_managed_value(base.get("AttributeTypeName")),
        display_name=label_text(base.get("DisplayName")),
        required_level=str(_managed_value(base.get("RequiredLevel")) or "None"),
        valid_for_create=bool(base.get("IsValidForCreate")),
        valid_for_update=bool(base.get("IsValidForUpdate")),
        valid_for_read=bool(base.get("IsValidForRead", True)),
        is_custom=bool(base.get("IsCustomAttribute")),
        attribute_of=base.get("AttributeOf") or None,
        max_length=int(max_length) if isinstance(max_length, int | float) else None,
        format=extra.get("Format") if isinstance(extra.get("Format"), str) else None,
        options=parse_options(extra),
        targets=tuple(str(t) for t in targets) if isinstance(targets, list) else (),
        min_value=_number(extra.get("MinValue")),
        max_value=_number(extra.get("MaxValue")),
        precision=int(precision) if isinstance(precision, int) else None,
        date_time_behavior=str(behavior) if behavior else None,
    )
