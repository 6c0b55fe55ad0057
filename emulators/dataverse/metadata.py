"""EntityDefinitions: table, column and key metadata (webapi/query-metadata-web-api.md).

Serves ``EntityDefinitions``, ``EntityDefinitions(LogicalName='x')`` / ``(<MetadataId>)``, ``/Attributes``
(with ``$select``/``$filter``, including the ``Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'`` enum
form), single attributes, typed casts such as ``/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`` with
``$expand=OptionSet($select=Options),GlobalOptionSet`` (nested ``$select``/``$filter`` honoured; ``$select``
checked against the cast's own properties), ``/Keys`` and the ``ManyToOneRelationships``,
``OneToManyRelationships`` and ``ManyToManyRelationships`` of a table (by collection or by MetadataId).
Option sets have MetadataIds of their own. Metadata is never paged; every answer is built from the schema on
request (cost: the table's columns, a few hundred dicts).

Over 400 lines: the attribute, option-set, entity, key and relationship shapes and the one query handler
over them belong together.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from . import errors
from .odata import parse_filter, split_top_level
from .schema import ATTRIBUTE_TYPE_CODES, NAMESPACE, Column, Schema, Table

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
    "Image": "ImageAttributeMetadata",
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
# Accepted in $select without a cast although the service wants the cast for them: kept so older
# callers that select them on the base type keep working.
_LOOSE_BASE = frozenset({"MaxLength", "Targets", "Format"})
_COMMON_TYPED = {"DefaultFormValue", "DefaultValue"}
# Type-specific properties per cast (webapi/reference/*attributemetadata.md), beyond the base ones.
_CAST_EXTRA: dict[str, set[str]] = {
    "StringAttributeMetadata": {
        "MaxLength",
        "DatabaseLength",
        "Format",
        "FormatName",
        "IsLocalizable",
        "YomiOf",
    },
    "MemoAttributeMetadata": {"MaxLength", "DatabaseLength", "Format", "FormatName", "IsLocalizable"},
    "IntegerAttributeMetadata": {"MinValue", "MaxValue", "Format"},
    "BigIntAttributeMetadata": {"MinValue", "MaxValue"},
    "DecimalAttributeMetadata": {"MinValue", "MaxValue", "Precision"},
    "DoubleAttributeMetadata": {"MinValue", "MaxValue", "Precision"},
    "MoneyAttributeMetadata": {"MinValue", "MaxValue", "Precision", "PrecisionSource"},
    "DateTimeAttributeMetadata": {"Format", "DateTimeBehavior", "ImeMode"},
    "LookupAttributeMetadata": {"Targets", "Format"},
    "UniqueIdentifierAttributeMetadata": set(),
    "ImageAttributeMetadata": {"MaxHeight", "MaxWidth", "IsPrimaryImage", "CanStoreFullImage"},
    "EntityNameAttributeMetadata": {"DefaultFormValue"},
    "BooleanAttributeMetadata": {"DefaultValue", "OptionSet", "GlobalOptionSet"},
    "EnumAttributeMetadata": {"DefaultFormValue", "OptionSet", "GlobalOptionSet"},
    "PicklistAttributeMetadata": {"DefaultFormValue", "OptionSet", "GlobalOptionSet"},
    "MultiSelectPicklistAttributeMetadata": {"DefaultFormValue", "OptionSet", "GlobalOptionSet"},
    "StateAttributeMetadata": {"DefaultFormValue", "OptionSet", "GlobalOptionSet"},
    "StatusAttributeMetadata": {"DefaultFormValue", "OptionSet", "GlobalOptionSet"},
}
_OPTION_CASTS = frozenset(
    {
        "BooleanAttributeMetadata",
        "EnumAttributeMetadata",
        "PicklistAttributeMetadata",
        "MultiSelectPicklistAttributeMetadata",
        "StateAttributeMetadata",
        "StatusAttributeMetadata",
    }
)
_OPTION_SET_PROPS = frozenset(
    {
        "MetadataId",
        "Name",
        "OptionSetType",
        "IsGlobal",
        "IsCustomOptionSet",
        "Options",
        "TrueOption",
        "FalseOption",
        "DisplayName",
        "Description",
        "IsManaged",
        "IsCustomizable",
        "ExternalTypeName",
    }
)


def _cast_props(cast: str | None) -> frozenset[str]:
    if cast is None:
        return frozenset(_BASE_ATTRIBUTE_PROPS | _LOOSE_BASE)
    return frozenset(_BASE_ATTRIBUTE_PROPS | _CAST_EXTRA[cast])


_SEGMENT_RE = re.compile(r"([A-Za-z_.]+)(?:\((.*)\))?\Z", re.DOTALL)


def _label(text: str) -> dict[str, Any]:
    localized = {"Label": text, "LanguageCode": 1033, "IsManaged": True}
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


def _schema_name(name: str, custom: bool) -> str:
    if custom:
        prefix, _, rest = name.partition("_")
        return f"{prefix}_{rest[:1].upper()}{rest[1:]}" if rest else name
    return name[:1].upper() + name[1:]


def _derived_label(logical_name: str) -> str:
    return logical_name.replace("new_", "").replace("_", " ").title()


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
        "IsLogical": column.attribute_of is not None,
        "IsManaged": not column.is_custom,
        "IsCustomizable": {"Value": True, "CanBeChanged": False},
        "IsSearchable": True,
        "IsFilterable": True,
        "IsRetrievable": True,
        "ColumnNumber": number,
        "AttributeOf": column.attribute_of,
        "RequiredLevel": {
            "Value": column.required_level,
            "CanBeChanged": column.required_level != "SystemRequired",
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
        "DisplayName": _label(
            column.display_name
            or ("" if column.attribute_of is not None else _derived_label(column.logical_name))
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


def option_set_id(table: Table, column: Column) -> str:
    """An option set is metadata of its own, with a MetadataId distinct from its attribute's."""
    return str(uuid.uuid5(NAMESPACE, f"optionset/{table.logical_name}/{column.logical_name}"))


def option_set(table: Table, column: Column) -> dict[str, Any]:
    if column.type == "Boolean":
        labels = {option.value: option.label for option in column.options}  # e.g. 1 "Do Not Allow"
        return {
            "MetadataId": option_set_id(table, column),
            "Name": f"{table.logical_name}_{column.logical_name}",
            "OptionSetType": "Boolean",
            "IsGlobal": False,
            "TrueOption": {"Value": 1, "Label": _label(labels.get(1, "Yes"))},
            "FalseOption": {"Value": 0, "Label": _label(labels.get(0, "No"))},
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
        "MetadataId": option_set_id(table, column),
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


def _relationship_name(schema: Schema, child: Table, column: str, parent: str) -> str:
    """The relationship's SchemaName: the navigation property name it has on the referenced table."""
    for collection in schema.tables[parent].collections.values():
        if collection.table == child.logical_name and collection.column == column:
            return collection.name
    return f"{child.logical_name}_{column}_{parent}"


def many_to_one(schema: Schema, table: Table) -> list[dict[str, Any]]:
    """The one-to-many relationships in which ``table`` is the referencing (child) table."""
    result = []
    for nav in table.navigations.values():
        column = table.columns[nav.column]
        for target in nav.targets:
            referenced = schema.tables[target]
            name = _relationship_name(schema, table, nav.column, target)
            cascade = "Cascade" if column.cascade_delete else "RemoveLink"
            result.append(
                {
                    "@odata.type": f"#{CRM}OneToManyRelationshipMetadata",
                    "MetadataId": _uuid_for(name),
                    "SchemaName": name,
                    "ReferencedEntity": target,
                    "ReferencedAttribute": referenced.primary_id,
                    "ReferencingEntity": table.logical_name,
                    "ReferencingAttribute": nav.column,
                    "ReferencedEntityNavigationPropertyName": name,
                    "ReferencingEntityNavigationPropertyName": nav.name,
                    "RelationshipType": "OneToManyRelationship",
                    "IsCustomRelationship": column.is_custom,
                    "IsManaged": not column.is_custom,
                    "IsValidForAdvancedFind": True,
                    "SecurityTypes": "ParentChild" if column.cascade_delete else "None",
                    "CascadeConfiguration": {
                        "Assign": "Cascade" if column.cascade_delete else "NoCascade",
                        "Delete": cascade,
                        "Merge": "NoCascade",
                        "Reparent": "Cascade" if column.cascade_delete else "NoCascade",
                        "Share": "Cascade" if column.cascade_delete else "NoCascade",
                        "Unshare": "Cascade" if column.cascade_delete else "NoCascade",
                        "RollupView": "NoCascade",
                    },
                }
            )
    return result


def one_to_many(schema: Schema, table: Table) -> list[dict[str, Any]]:
    """The one-to-many relationships in which ``table`` is the referenced (parent) table."""
    return [
        rel
        for other in schema.tables.values()
        for rel in many_to_one(schema, other)
        if rel["ReferencedEntity"] == table.logical_name
    ]


def many_to_many(table: Table) -> list[dict[str, Any]]:
    return [
        {
            "@odata.type": f"#{CRM}ManyToManyRelationshipMetadata",
            "MetadataId": _uuid_for(rel.name),
            "SchemaName": rel.name,
            "Entity1LogicalName": rel.entity1,
            "Entity1IntersectAttribute": rel.entity1_attribute,
            "Entity1NavigationPropertyName": rel.name,
            "Entity2LogicalName": rel.entity2,
            "Entity2IntersectAttribute": rel.entity2_attribute,
            "Entity2NavigationPropertyName": rel.name,
            "IntersectEntityName": rel.intersect,
            "RelationshipType": "ManyToManyRelationship",
            "IsCustomRelationship": False,
            "IsManaged": True,
            "IsValidForAdvancedFind": True,
            "SecurityTypes": "None",
        }
        for rel in table.associations.values()
    ]


_RELATIONSHIPS = ("ManyToOneRelationships", "OneToManyRelationships", "ManyToManyRelationships")


def relationships(schema: Schema, table: Table, nav: str) -> list[dict[str, Any]]:
    if nav == "ManyToOneRelationships":
        return many_to_one(schema, table)
    if nav == "OneToManyRelationships":
        return one_to_many(schema, table)
    return many_to_many(table)


def _uuid_for(name: str) -> str:
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
        self.deleted: list[tuple[Table, Column]] = []  # put back by ``restore_deleted`` (the reset)

    def delete_attribute(self, path: str) -> None:
        """``DELETE EntityDefinitions(<key>)/Attributes(<key>)``: delete a custom column, the Web API form
        of DeleteAttributeRequest
        (https://learn.microsoft.com/dotnet/api/microsoft.xrm.sdk.messages.deleteattributerequest).
        Writing or selecting it afterwards is refused as for any unknown property. The emulator deletes
        custom columns that are not lookups; standard columns cannot be deleted."""
        segments = _segments(path)
        if (
            len(segments) != 2
            or segments[1][0] != "Attributes"
            or segments[0][1] is None
            or segments[1][1] is None
        ):
            raise errors.ODataError(405, "0x80060888", "The HTTP method 'DELETE' is not allowed here.")
        table = self._table(segments[0][1])
        column = self._column(table, segments[1][1])
        if not column.is_custom or column.is_lookup:
            raise errors.ODataError(
                400,
                "0x80040203",
                f"The attribute '{column.logical_name}' cannot be deleted: only custom columns that are not "
                "lookups can be deleted.",
            )
        del table.columns[column.logical_name]
        self.deleted.append((table, column))

    def restore_deleted(self) -> None:
        for table, column in reversed(self.deleted):
            table.columns[column.logical_name] = column
        self.deleted.clear()

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
            cast = self._cast(rest[1][0]) if len(rest) > 1 else None
            allowed = _cast_props(cast)
            type_name = cast or "AttributeMetadata"
            if nav_key is not None:
                column = self._column(table, nav_key)
                if cast is not None and column.type not in self._types_for(cast):
                    raise errors.ODataError(
                        404, "0x80040217", f"The attribute '{column.logical_name}' is not a {cast}."
                    )
                item = attribute(table, column, numbered[column.logical_name])
                self._expand_options(table, column, item, params, cast or _CAST_BY_TYPE.get(column.type))
                item = self._select(item, params.get("$select"), allowed, type_name)
                item["@odata.context"] = f"{context}({table.metadata_id})/Attributes/$entity"
                return item
            columns = list(table.columns.values())
            if cast is not None:
                columns = [c for c in columns if c.type in self._types_for(cast)]
            items = []
            for column in columns:
                item = attribute(table, column, numbered[column.logical_name])
                self._expand_options(table, column, item, params, cast)
                items.append(item)
            suffix = f"/{CRM}{cast}" if cast else ""
            return self._collection(
                f"{context}('{table.metadata_id}')/Attributes{suffix}", items, params, allowed, type_name
            )
        if nav == "Keys":
            items = [key(table, i) for i in range(len(table.keys))]
            return self._collection(f"{context}('{table.metadata_id}')/Keys", items, params, base_props=None)
        if nav in _RELATIONSHIPS:
            items = relationships(self.schema, table, nav)
            if nav_key is not None:
                wanted = nav_key.strip().strip("{}").lower()
                found = next(
                    (
                        i
                        for i in items
                        if i["MetadataId"] == wanted or f"SchemaName='{i['SchemaName']}'" == nav_key
                    ),
                    None,
                )
                if found is None:
                    raise errors.ODataError(
                        404, "0x80040217", f"Could not find a relationship with key '{nav_key}'."
                    )
                found = self._select(found, params.get("$select"))
                found["@odata.context"] = f"{context}('{table.metadata_id}')/{nav}/$entity"
                return found
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
    def _expand_list(params: Mapping[str, str]) -> list[tuple[str, dict[str, str]]]:
        """``$expand=OptionSet($select=Options),GlobalOptionSet`` -> [(name, nested options), ...]."""
        raw = params.get("$expand")
        items: list[tuple[str, dict[str, str]]] = []
        for part in split_top_level(raw) if raw else []:
            part = part.strip()
            name, paren, inner = part.partition("(")
            nested: dict[str, str] = {}
            if paren:
                if not inner.endswith(")"):
                    raise errors.bad_request(f"Syntax error in $expand: '{part}'.")
                for option in split_top_level(inner[:-1], ";"):
                    key, eq, value = option.strip().partition("=")
                    if not eq or key.strip() not in ("$select", "$filter", "$expand"):
                        raise errors.bad_request(f"Syntax error in $expand: '{part}'.")
                    nested[key.strip()] = value.strip()
            items.append((name.strip(), nested))
        return items

    def _expand_entity(
        self, table: Table, item: dict[str, Any], expand: list[tuple[str, dict[str, str]]]
    ) -> None:
        for nav, nested in expand:
            if nav == "Attributes":
                columns = enumerate(table.columns.values(), start=1)
                items = [attribute(table, c, i) for i, c in columns]
                item["Attributes"] = self._collection("", items, nested, _BASE_ATTRIBUTE_PROPS | _LOOSE_BASE)[
                    "value"
                ]
            elif nav == "Keys":
                items = [key(table, i) for i in range(len(table.keys))]
                item["Keys"] = self._collection("", items, nested, None)["value"]
            elif nav in _RELATIONSHIPS:
                items = relationships(self.schema, table, nav)
                item[nav] = self._collection("", items, nested, None)["value"]
            else:
                raise errors.bad_request(
                    f"Could not find a property named '{nav}' on type '{CRM}EntityMetadata'."
                )

    def _expand_options(
        self, table: Table, column: Column, item: dict[str, Any], params: Mapping[str, str], cast: str | None
    ) -> None:
        type_name = f"{CRM}{cast or 'AttributeMetadata'}"
        for nav, nested in self._expand_list(params):
            if nav not in ("OptionSet", "GlobalOptionSet") or cast is None or cast not in _OPTION_CASTS:
                raise errors.bad_request(f"Could not find a property named '{nav}' on type '{type_name}'.")
            if column.type not in _ENUM_TYPES:
                continue  # a cast to EnumAttributeMetadata lists enum columns only
            value = option_set(table, column) if nav == "OptionSet" else None
            if value is not None and nested.get("$select"):
                value = self._select(value, nested["$select"], _OPTION_SET_PROPS, "OptionSetMetadata")
            item[nav] = value

    @staticmethod
    def _select(
        item: dict[str, Any],
        select: str | None,
        allowed: set[str] | frozenset[str] | None = None,
        type_name: str = "AttributeMetadata",
    ) -> dict[str, Any]:
        """Keep the ``$select``ed properties (MetadataId and expanded navigation properties always stay);
        with ``allowed``, a name the metadata type does not have is refused like the service does."""
        if not select:
            return item
        names = [n.strip() for n in select.split(",") if n.strip()]
        for name in names:
            if allowed is not None and name not in allowed:
                raise errors.bad_request(
                    f"Could not find a property named '{name}' on type '{CRM}{type_name}'."
                )
        keep = {
            "@odata.type",
            "MetadataId",
            "OptionSet",
            "GlobalOptionSet",
            "Attributes",
            "Keys",
            *_RELATIONSHIPS,
        }
        keep.update(names)
        return {k: v for k, v in item.items() if k in keep}

    def _collection(
        self,
        context: str,
        items: list[dict[str, Any]],
        params: Mapping[str, str],
        base_props: set[str] | frozenset[str] | None,
        type_name: str = "AttributeMetadata",
    ) -> dict[str, Any]:
        if "$filter" in params:
            aliases = {k: v for k, v in params.items() if k.startswith("@")}
            expr = parse_filter(params["$filter"], aliases)
            items = [item for item in items if expr.evaluate(_Flat(item), lambda row, nav: None)]
        items = [self._select(item, params.get("$select"), base_props, type_name) for item in items]
        return {"@odata.context": context, "value": items}


class _Flat(dict[str, Any]):
    """Metadata properties as a filterable row (``RequiredLevel/Value`` style paths are flattened)."""

    def __init__(self, item: Mapping[str, Any]) -> None:
        super().__init__(item)
        for name, value in item.items():
            if isinstance(value, dict) and "Value" in value:
                self[name] = value["Value"]


__all__ = ["ATTRIBUTE_TYPE_CODES", "MetadataService", "attribute", "entity", "option_set"]
