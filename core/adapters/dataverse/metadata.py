"""What the client reads from ``EntityDefinitions`` (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-metadata-web-api).

Columns are described once, by ``core.domain.dynamics_metadata.DynamicsColumn`` (parsed from
``DataverseClient.attribute_rows``); this module holds the request shapes and the table description.
"""

from __future__ import annotations

from dataclasses import dataclass

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
class EntityMetadata:
    logical_name: str
    entity_set_name: str
    primary_id_attribute: str
    primary_name_attribute: str | None
