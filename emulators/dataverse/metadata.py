"""EntityDefinitions: table, column and key metadata (webapi/query-metadata-web-api.md).

Serves ``EntityDefinitions``, ``EntityDefinitions(LogicalName='x')`` / ``(<MetadataId>)``, ``/Attributes``
(with ``$select``/``$filter``, including the ``Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'`` enum
form), single attributes, typed casts such as ``/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`` with
``$expand=OptionSet,GlobalOptionSet``, ``/Keys`` and ``ManyToOneRelationships``. Metadata is never paged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import errors
from .odata import parse_filter, split_top_level
from .schema import ATTRIBUTE_TYPE_CODES, Column, Schema, Table

CRM = "Microsoft.Dynamics.CRM."
_CAST_BY_TYPE = {
    "String": "StringAttributeMetadata",
    "Memo": "MemoAttributeMetadata",
    "Picklist": "PicklistAttributeMetadata",
    "MultiSelectPicklist": "MultiSelectPicklistAttributeMetadata",
    "State": "StateAttributeMetadata",
    "Status": "StatusAttributeMetadata",
    "Integer": "IntegerAttributeMetadata",
    "BigInt": "BigIntAttributeMetadata",
    "Decimal": "DecimalAttributeMetadata",
    "Money": "MoneyAttributeMetadata",
    "Double": "DoubleAttributeMetadata",
    "DateTime": "DateTimeAttributeMetadata",
    "Boolean": "BooleanAttributeMetadata",
    "Lookup": "LookupAttributeMetadata",
    "Customer": "LookupAttributeMetadata",
    "Owner": "LookupAttributeMetadata",
    "Uniqueidentifier": "UniqueIdentifierAttributeMetadata",
    "EntityName": "EntityNameAttributeMetadata",
}
_CASTS = {*_CAST_BY_TYPE.values(), "EnumAttributeMetadata"}
_ENUM_TYPES = {"Picklist", "MultiSelectPicklist", "State", "Status", "Boolean"}
_BASE_ATTRIBUTE_PROPS = {
    "MetadataId",
    "LogicalName",
    "SchemaName",
    "AttributeType",
    "AttributeTypeName",
    "EntityLogicalName",
    "IsCustomAttribute",
    "IsPrimaryId",
    "IsPrimaryName",
    "IsValidForCreate",
    "IsValidForUpdate",
    "IsValidForRead",
    "RequiredLevel",
    "DisplayName",
    "Description",
    "AttributeOf",
    "IsLogical",
    "ColumnNumber",
    "IsManaged",
    "IsValidForAdvancedFind",
    "IsCustomizable",
    "IsSearchable",
    "IsFilterable",
    "IsRetrievable",
}
_SEGMENT_RE = re.compile(r"([A-Za-z_.]+)(?:\((.*)\))?\Z", re.DOTALL)


def _label(text: str) -> dict[str, Any]:
    localized = {"Label": text, "LanguageCode": 1033, "IsManaged": True}
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


def _schema_name(name: str, custom: bool) -> str:
    if custom:
        prefix, _, rest = name.partition("_")
        return f"{prefix}_{rest[:1].upper()}{rest[1:]}" if rest else name
    return name[:1].upper() + name[1:]


def _plural(name: str) -> str:
    return name[:-1] + "ies" if name.endswith("y") else name + "s"  # ActivityParty -> ActivityParties


def _type_name(column: Column) -> str:
    return f"{column.type}Type"


def attribute(table: Table, column: Column, number: int) -> dict[str, Any]:
    cast = _CAST_BY_TYPE.get(column.type, "AttributeMetadata")
    data: dict[str, Any] = {
        "@odata.type": f"#{CRM}{cast}",
        "MetadataId": column.metadata_id,
        "LogicalName": column.logical_name,
        "SchemaName": column.schema_name or _schema_name(column.logical_name, column.is_custom),
        "AttributeType": column.attribute_type,
        "AttributeTypeName": {"Value": _type_name(column)},
        "EntityLogicalName": table.logical_name,
        "IsCustomAttribute": column.is_custom,
        "IsPrimaryId": column.is_primary_id,
        "IsPrimaryName": column.is_primary_name,
        "IsValidForCreate": column.valid_for_create,
        "IsValidForUpdate": column.valid_for_update,
        "IsValidForRead": column.valid_for_read,
        "IsValidForAdvancedFind": {"Value": True, "CanBeChanged": False},
        "IsLogical": False,
        "IsManaged": not column.is_custom,
        "IsCustomizable": {"Value": True, "CanBeChanged": False},
        "IsSearchable": True,
        "IsFilterable": True,
        "IsRetrievable": True,
        "ColumnNumber": number,
        "AttributeOf": None,
        "RequiredLevel": {
            "Value": column.required_level,
            "CanBeChanged": column.required_level != "SystemRequired",
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
        "DisplayName": _label(
            column.display_name or column.logical_name.replace("new_", "").replace("_", " ").title()
        ),
        "Description": _label(""),
    }
    if column.type in ("String", "Memo"):
        data["MaxLength"] = column.max_length
        data["DatabaseLength"] = (column.max_length or 0) * 2
        data["Format"] = column.format or ("TextArea" if column.type == "Memo" else "Text")
        data["FormatName"] = {"Value": data["Format"]}
    if column.type == "Integer":
        data["Format"] = column.format or "None"  # IntegerFormat: None, Duration, TimeZone, Language, Locale
    if column.type in ("Integer", "BigInt", "Decimal", "Money", "Double"):
        data["MinValue"] = column.min_value if column.min_value is not None else -2147483648
        data["MaxValue"] = column.max_value if column.max_value is not None else 2147483647
        if column.type in ("Decimal", "Money", "Double"):
            data["Precision"] = column.precision if column.precision is not None else 2
    if column.type == "DateTime":
        data["Format"] = "DateOnly" if column.format == "DateOnly" else "DateAndTime"
        data["DateTimeBehavior"] = {"Value": "DateOnly" if column.format == "DateOnly" else "UserLocal"}
    if column.is_lookup:
        data["Targets"] = list(column.targets)
    if column.type in ("Picklist", "MultiSelectPicklist", "State", "Status"):
        data["DefaultFormValue"] = column.default if isinstance(column.default, int) else -1
    if column.type == "Boolean":
        data["DefaultValue"] = bool(column.default)
    return data


def option_set(table: Table, column: Column) -> dict[str, Any]:
    if column.type == "Boolean":
        return {
            "MetadataId": column.metadata_id,
            "Name": f"{table.logical_name}_{column.logical_name}",
            "OptionSetType": "Boolean",
            "IsGlobal": False,
            "TrueOption": {"Value": 1, "Label": _label("Yes")},
            "FalseOption": {"Value": 0, "Label": _label("No")},
        }
    options = []
    for option in column.options:
        item: dict[str, Any] = {"Value": option.value, "Label": _label(option.label), "Color": None}
        if column.type == "Status":
            item["State"] = option.state
        if column.type == "State":
            item["DefaultStatus"] = option.value + 1
            item["InvariantName"] = option.label
        options.append(item)
    kind = {"State": "State", "Status": "Status"}.get(column.type, "Picklist")
    return {
        "MetadataId": column.metadata_id,
        "Name": f"{table.logical_name}_{column.logical_name}",
        "OptionSetType": kind,
        "IsGlobal": False,
        "IsCustomOptionSet": column.is_custom,
        "Options": options,
    }


def entity(table: Table) -> dict[str, Any]:
    return {
        "@odata.type": f"#{CRM}EntityMetadata",
        "MetadataId": table.metadata_id,
        "LogicalName": table.logical_name,
        "SchemaName": table.schema_name or _schema_name(table.logical_name, table.is_custom),
        "EntitySetName": table.entity_set,
        "LogicalCollectionName": table.entity_set,
        "CollectionSchemaName": _plural(table.schema_name)
        if table.schema_name
        else _schema_name(table.entity_set, table.is_custom),
        "PrimaryIdAttribute": table.primary_id,
        "PrimaryNameAttribute": table.primary_name,
        "ObjectTypeCode": table.object_type_code,
        "IsActivity": table.is_activity,
        "IsCustomEntity": table.is_custom,
        "IsManaged": not table.is_custom,
        "OwnershipType": table.ownership,
        "TableType": "Standard",
        "IsValidForAdvancedFind": True,
        "DisplayName": _label(table.display_name),
        "DisplayCollectionName": _label(table.display_collection_name or _plural(table.display_name)),
        "Description": _label(""),
    }


def key(table: Table, index: int) -> dict[str, Any]:
    alt = table.keys[index]
    return {
        "@odata.type": f"#{CRM}EntityKeyMetadata",
        "MetadataId": alt.metadata_id,
        "LogicalName": alt.name,
        "SchemaName": alt.name,
        "EntityLogicalName": table.logical_name,
        "KeyAttributes": list(alt.columns),
        "EntityKeyIndexStatus": "Active",
        "DisplayName": _label(alt.name),
    }


def many_to_one(schema: Schema, table: Table) -> list[dict[str, Any]]:
    result = []
    for nav in table.navigations.values():
        for target in nav.targets:
            referenced = schema.tables[target]
            name = f"{table.logical_name}_{nav.name}_{target}"
            result.append(
                {
                    "@odata.type": f"#{CRM}OneToManyRelationshipMetadata",
                    "MetadataId": _uuid_for(name),
                    "SchemaName": name,
                    "ReferencedEntity": target,
                    "ReferencedAttribute": referenced.primary_id,
                    "ReferencingEntity": table.logical_name,
                    "ReferencingAttribute": nav.column,
                    "ReferencingEntityNavigationPropertyName": nav.name,
                    "RelationshipType": "OneToManyRelationship",
                }
            )
    return result


def _uuid_for(name: str) -> str:
    import uuid

    from .schema import NAMESPACE

    return str(uuid.uuid5(NAMESPACE, "rel/" + name))


def _segments(path: str) -> list[tuple[str, str | None]]:
    parts = split_top_level(path, "/")
    out = []
    for part in parts:
        if not part:
            continue
        match = _SEGMENT_RE.match(part)
        if not match:
            raise errors.bad_request(f"Resource not found for the segment '{part}'.")
        out.append((match.group(1), match.group(2)))
    return out


class MetadataService:
    def __init__(self, schema: Schema, api_url: str) -> None:
        self.schema = schema
        self.api_url = api_url

    def _table(self, key_text: str) -> Table:
        key_text = key_text.strip()
        match = re.fullmatch(r"LogicalName\s*=\s*'([^']*)'", key_text)
        if match:
            table = self.schema.table(match.group(1))
        else:
            guid = key_text.strip("{}").lower()
            table = next((t for t in self.schema.tables.values() if t.metadata_id == guid), None)
        if table is None:
            raise errors.ODataError(
                404, "0x80040217", f"Could not find an entity with key value '{key_text}'."
            )
        return table

    def _column(self, table: Table, key_text: str) -> Column:
        match = re.fullmatch(r"LogicalName\s*=\s*'([^']*)'", key_text.strip())
        if match:
            column = table.columns.get(match.group(1))
        else:
            guid = key_text.strip().strip("{}").lower()
            column = next((c for c in table.columns.values() if c.metadata_id == guid), None)
        if column is None:
            raise errors.ODataError(
                404,
                "0x80040217",
                f"Could not find an attribute with the specified key '{key_text}' on entity "
                f"'{table.logical_name}'.",
            )
        return column

    def handle(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer a GET below ``EntityDefinitions``; ``path`` starts with ``EntityDefinitions``."""
        segments = _segments(path)
        context = f"{self.api_url}$metadata#EntityDefinitions"
        if len(segments) == 1 and segments[0][1] is None:
            items = [entity(t) for t in self.schema.tables.values()]
            expand = self._expand_list(params)
            for item in items:
                self._expand_entity(self.schema.tables[item["LogicalName"]], item, expand)
            return self._collection(context, items, params, base_props=None)
        name, key_text = segments[0]
        if key_text is None:
            raise errors.bad_request(f"Resource not found for the segment '{name}'.")
        table = self._table(key_text)
        rest = segments[1:]
        if not rest:
            item = entity(table)
            self._expand_entity(table, item, self._expand_list(params))
            item = self._select(item, params.get("$select"))
            item["@odata.context"] = f"{context}/$entity"
            return item
        nav, nav_key = rest[0]
        numbered = {c.logical_name: i for i, c in enumerate(table.columns.values(), start=1)}
        if nav == "Attributes":
            cast = None
            if nav_key is not None:
                column = self._column(table, nav_key)
                if len(rest) > 1:
                    cast = self._cast(rest[1][0])
                    if column.type not in self._types_for(cast):
                        raise errors.ODataError(
                            404, "0x80040217", f"The attribute '{column.logical_name}' is not a {cast}."
                        )
                item = attribute(table, column, numbered[column.logical_name])
                self._expand_options(table, column, item, params)
                item = self._select(item, params.get("$select"))
                item["@odata.context"] = f"{context}({table.metadata_id})/Attributes/$entity"
                return item
            columns = list(table.columns.values())
            if len(rest) > 1:
                cast = self._cast(rest[1][0])
                columns = [c for c in columns if c.type in self._types_for(cast)]
            items = []
            for column in columns:
                item = attribute(table, column, numbered[column.logical_name])
                self._expand_options(table, column, item, params)
                items.append(item)
            suffix = f"/{CRM}{cast}" if cast else ""
            return self._collection(
                f"{context}('{table.metadata_id}')/Attributes{suffix}",
                items,
                params,
                base_props=None if cast else _BASE_ATTRIBUTE_PROPS | {"MaxLength", "Targets", "Format"},
            )
        if nav == "Keys":
            items = [key(table, i) for i in range(len(table.keys))]
            return self._collection(f"{context}('{table.metadata_id}')/Keys", items, params, base_props=None)
        if nav in ("ManyToOneRelationships", "OneToManyRelationships", "ManyToManyRelationships"):
            items = many_to_one(self.schema, table) if nav == "ManyToOneRelationships" else []
            if nav == "OneToManyRelationships":
                items = [
                    rel
                    for other in self.schema.tables.values()
                    for rel in many_to_one(self.schema, other)
                    if rel["ReferencedEntity"] == table.logical_name
                ]
            return self._collection(f"{context}('{table.metadata_id}')/{nav}", items, params, base_props=None)
        raise errors.bad_request(f"Resource not found for the segment '{nav}'.")

    @staticmethod
    def _cast(segment: str) -> str:
        name = segment.removeprefix(CRM)
        if name not in _CASTS:
            raise errors.bad_request(f"Resource not found for the segment '{segment}'.")
        return name

    @staticmethod
    def _types_for(cast: str) -> set[str]:
        if cast == "EnumAttributeMetadata":
            return set(_ENUM_TYPES)
        return {t for t, c in _CAST_BY_TYPE.items() if c == cast}

    @staticmethod
    def _expand_list(params: Mapping[str, str]) -> list[str]:
        raw = params.get("$expand")
        return [p.strip().split("(")[0] for p in split_top_level(raw)] if raw else []

    def _expand_entity(self, table: Table, item: dict[str, Any], expand: list[str]) -> None:
        for nav in expand:
            if nav == "Attributes":
                item["Attributes"] = [
                    attribute(table, c, i) for i, c in enumerate(table.columns.values(), start=1)
                ]
            elif nav == "Keys":
                item["Keys"] = [key(table, i) for i in range(len(table.keys))]
            elif nav == "ManyToOneRelationships":
                item[nav] = many_to_one(self.schema, table)
            else:
                raise errors.bad_request(
                    f"Could not find a property named '{nav}' on type '{CRM}EntityMetadata'."
                )

    def _expand_options(
        self, table: Table, column: Column, item: dict[str, Any], params: Mapping[str, str]
    ) -> None:
        for nav in self._expand_list(params):
            if nav not in ("OptionSet", "GlobalOptionSet"):
                raise errors.bad_request(
                    f"Could not find a property named '{nav}' on type '{CRM}AttributeMetadata'."
                )
            if column.type not in _ENUM_TYPES:
                raise errors.bad_request(
                    f"Could not find a property named '{nav}' on type '{CRM}AttributeMetadata'."
                )
            item[nav] = option_set(table, column) if nav == "OptionSet" else None

    @staticmethod
    def _select(
        item: dict[str, Any], select: str | None, base_props: set[str] | None = None
    ) -> dict[str, Any]:
        if not select:
            return item
        names = [n.strip() for n in select.split(",") if n.strip()]
        for name in names:
            if base_props is not None and name not in base_props:
                raise errors.bad_request(
                    f"Could not find a property named '{name}' on type '{CRM}AttributeMetadata'."
                )
        keep = {"@odata.type", "MetadataId", "OptionSet", "GlobalOptionSet", "Attributes", "Keys", *names}
        return {k: v for k, v in item.items() if k in keep}

    def _collection(
        self,
        context: str,
        items: list[dict[str, Any]],
        params: Mapping[str, str],
        base_props: set[str] | None,
    ) -> dict[str, Any]:
        if "$filter" in params:
            aliases = {k: v for k, v in params.items() if k.startswith("@")}
            expr = parse_filter(params["$filter"], aliases)
            items = [item for item in items if expr.evaluate(_Flat(item), lambda row, nav: None)]
        items = [self._select(item, params.get("$select"), base_props) for item in items]
        return {"@odata.context": context, "value": items}


class _Flat(dict[str, Any]):
    """Metadata properties as a filterable row (``RequiredLevel/Value`` style paths are flattened)."""

    def __init__(self, item: Mapping[str, Any]) -> None:
        super().__init__(item)
        for name, value in item.items():
            if isinstance(value, dict) and "Value" in value:
                self[name] = value["Value"]


__all__ = ["ATTRIBUTE_TYPE_CODES", "MetadataService", "attribute", "entity", "option_set"]
