"""A Dynamics column as the Dataverse metadata API describes it (pure data, parsed from the JSON).

Source: ``GET EntityDefinitions(LogicalName='contact')/Attributes`` (plus the type casts for MaxLength and
option sets), see https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-metadata-web-api.
``DynamicsColumn.from_metadata`` accepts one attribute object of that answer; ``AttributeType`` may be the
name (``"String"``) or the numeric code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class AttributeType(StrEnum):
    """AttributeTypeCode names; ``MULTI_SELECT_PICKLIST`` is Virtual + ``MultiSelectPicklistType``."""

    BOOLEAN = "Boolean"
    CUSTOMER = "Customer"
    DATETIME = "DateTime"
    DECIMAL = "Decimal"
    DOUBLE = "Double"
    INTEGER = "Integer"
    LOOKUP = "Lookup"
    MEMO = "Memo"
    MONEY = "Money"
    OWNER = "Owner"
    PARTY_LIST = "PartyList"
    PICKLIST = "Picklist"
    STATE = "State"
    STATUS = "Status"
    STRING = "String"
    UNIQUEIDENTIFIER = "Uniqueidentifier"
    CALENDAR_RULES = "CalendarRules"
    VIRTUAL = "Virtual"
    BIGINT = "BigInt"
    MANAGED_PROPERTY = "ManagedProperty"
    ENTITY_NAME = "EntityName"
    MULTI_SELECT_PICKLIST = "MultiSelectPicklist"  # not a code of its own: Virtual 17 + type name


ATTRIBUTE_TYPE_CODES: Mapping[int, AttributeType] = {
    0: AttributeType.BOOLEAN,
    1: AttributeType.CUSTOMER,
    2: AttributeType.DATETIME,
    3: AttributeType.DECIMAL,
    4: AttributeType.DOUBLE,
    5: AttributeType.INTEGER,
    6: AttributeType.LOOKUP,
    7: AttributeType.MEMO,
    8: AttributeType.MONEY,
    9: AttributeType.OWNER,
    10: AttributeType.PARTY_LIST,
    11: AttributeType.PICKLIST,
    12: AttributeType.STATE,
    13: AttributeType.STATUS,
    14: AttributeType.STRING,
    15: AttributeType.UNIQUEIDENTIFIER,
    16: AttributeType.CALENDAR_RULES,
    17: AttributeType.VIRTUAL,
    18: AttributeType.BIGINT,
    19: AttributeType.MANAGED_PROPERTY,
    20: AttributeType.ENTITY_NAME,
}

MULTI_SELECT_TYPE_NAME = "MultiSelectPicklistType"


class RequiredLevel(StrEnum):
    NONE = "None"
    SYSTEM_REQUIRED = "SystemRequired"
    APPLICATION_REQUIRED = "ApplicationRequired"
    RECOMMENDED = "Recommended"


@dataclass(frozen=True)
class OptionValue:
    """One option of a Picklist/MultiSelect/State/Status/Boolean column. ``state`` is set for Status."""

    value: int
    label: str
    state: int | None = None


@dataclass(frozen=True)
class DynamicsColumn:
    logical_name: str
    attribute_type: AttributeType
    attribute_type_name: str | None = None
    display_name: str | None = None
    max_length: int | None = None
    options: tuple[OptionValue, ...] = ()
    is_valid_for_create: bool = True
    is_valid_for_update: bool = True
    is_valid_for_read: bool = True
    required_level: RequiredLevel = RequiredLevel.NONE
    targets: tuple[str, ...] = ()
    format: str | None = None  # DateTime: "DateOnly" | "DateAndTime"; String: "Email" | "Url" | ...
    min_value: float | None = None
    max_value: float | None = None
    precision: int | None = None

    @property
    def is_read_only(self) -> bool:
        return not self.is_valid_for_create and not self.is_valid_for_update

    @property
    def is_lookup(self) -> bool:
        return self.attribute_type in LOOKUP_TYPES

    @classmethod
    def from_metadata(cls, attr: Mapping[str, Any]) -> DynamicsColumn:
        """Parse one attribute object of the metadata API answer."""
        type_name = _managed_value(attr.get("AttributeTypeName"))
        attribute_type = _attribute_type(attr.get("AttributeType"), type_name)
        options = _options(attr.get("OptionSet"))
        if not options and isinstance(attr.get("GlobalOptionSet"), Mapping):
            options = _options(attr.get("GlobalOptionSet"))
        required = _managed_value(attr.get("RequiredLevel")) or RequiredLevel.NONE.value
        return cls(
            logical_name=str(attr["LogicalName"]),
            attribute_type=attribute_type,
            attribute_type_name=str(type_name) if type_name is not None else None,
            display_name=_label(attr.get("DisplayName")),
            max_length=_int_or_none(attr.get("MaxLength")),
            options=options,
            is_valid_for_create=bool(attr.get("IsValidForCreate", True)),
            is_valid_for_update=bool(attr.get("IsValidForUpdate", True)),
            is_valid_for_read=bool(attr.get("IsValidForRead", True)),
            required_level=_required_level(required),
            targets=tuple(str(t) for t in attr.get("Targets") or ()),
            format=_format(attr),
            min_value=_float_or_none(attr.get("MinValue")),
            max_value=_float_or_none(attr.get("MaxValue")),
            precision=_int_or_none(attr.get("Precision")),
        )


LOOKUP_TYPES = frozenset(
    {AttributeType.LOOKUP, AttributeType.CUSTOMER, AttributeType.OWNER, AttributeType.PARTY_LIST}
)


def _attribute_type(raw: object, type_name: object) -> AttributeType:
    if type_name == MULTI_SELECT_TYPE_NAME:
        return AttributeType.MULTI_SELECT_PICKLIST
    if isinstance(raw, int) and not isinstance(raw, bool):
        return ATTRIBUTE_TYPE_CODES.get(raw, AttributeType.VIRTUAL)
    if isinstance(raw, str):
        if raw.isascii() and raw.isdigit():  # not "²": a Unicode digit that int() refuses
            return ATTRIBUTE_TYPE_CODES.get(int(raw), AttributeType.VIRTUAL)
        for member in AttributeType:
            if member.value.lower() == raw.lower():
                return member
    return AttributeType.VIRTUAL  # unknown: treated as not writable by compatibility


def _required_level(raw: object) -> RequiredLevel:
    for member in RequiredLevel:
        if member.value == raw:
            return member
    return RequiredLevel.NONE


def _managed_value(raw: object) -> object:
    """``{"Value": x}`` (BooleanManagedProperty, AttributeTypeName, RequiredLevel) or a bare value."""
    if isinstance(raw, Mapping):
        return raw.get("Value")
    return raw


def _label(raw: object) -> str | None:
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, Mapping):
        return None
    user = raw.get("UserLocalizedLabel")
    if isinstance(user, Mapping) and isinstance(user.get("Label"), str):
        return str(user["Label"])
    localized = raw.get("LocalizedLabels")
    if isinstance(localized, Sequence):
        for item in localized:
            if isinstance(item, Mapping) and isinstance(item.get("Label"), str):
                return str(item["Label"])
    return None


def _option(raw: object) -> OptionValue | None:
    if not isinstance(raw, Mapping) or _int_or_none(raw.get("Value")) is None:
        return None
    value = _int_or_none(raw.get("Value"))
    assert value is not None
    return OptionValue(
        value=value, label=_label(raw.get("Label")) or str(value), state=_int_or_none(raw.get("State"))
    )


def _options(raw: object) -> tuple[OptionValue, ...]:
    if not isinstance(raw, Mapping):
        return ()
    found: list[OptionValue] = []
    for item in raw.get("Options") or ():
        option = _option(item)
        if option is not None:
            found.append(option)
    for key in ("FalseOption", "TrueOption"):  # Boolean columns
        option = _option(raw.get(key))
        if option is not None:
            found.append(option)
    return tuple(found)


def _format(attr: Mapping[str, Any]) -> str | None:
    for key in ("DateTimeBehavior", "Format", "FormatName"):
        value = _managed_value(attr.get(key))
        if key == "DateTimeBehavior":
            if value == "DateOnly":
                return "DateOnly"
            continue
        if isinstance(value, str) and value:
            return value
    return None


def _int_or_none(raw: object) -> int | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return None


def _float_or_none(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)
