"""What the client reads about tables: ``EntityDefinitions``
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-metadata-web-api) and which
bulk messages a table supports (``sdkmessagefilters``).

Columns are described once, by ``core.domain.dynamics_metadata.DynamicsColumn`` (parsed from
``DataverseClient.attribute_rows``); this module holds the request shapes, the table description, the
standard tables' names (``STANDARD_TABLES``: the one table -> entity set map) and :class:`TableReader`,
which reads and caches the rest per client. Costs: a standard table's names cost nothing, another's one
request (then cached); a table's columns two requests: the common properties, then one ``$batch`` holding
a GET per attribute type present (a standard table has a dozen types; one request each made the metadata
reads a visible share of an export's requests). Not cached here: ``core.services.dynamics.metadata_cache``
caches them across clients.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.adapters.dataverse.batch import BatchOperation, BatchResponse
from core.adapters.dataverse.errors import DataverseError
from core.adapters.dataverse.odata import odata_literal, prefer_page_size
from core.adapters.dataverse.transport import Transport, read_json
from core.domain.dynamics_metadata import DynamicsColumn

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


# Standard tables whose names never vary between organisations (reference/entities/*.md): the one map of
# table -> entity set and primary columns; any other table is read once from EntityDefinitions.
STANDARD_TABLES: dict[str, EntityMetadata] = {
    m.logical_name: m
    for m in (
        EntityMetadata("account", "accounts", "accountid", "name"),
        EntityMetadata("contact", "contacts", "contactid", "fullname"),
        EntityMetadata("systemuser", "systemusers", "systemuserid", "fullname"),
        EntityMetadata("team", "teams", "teamid", "name"),
        EntityMetadata("businessunit", "businessunits", "businessunitid", "name"),
        EntityMetadata("task", "tasks", "activityid", "subject"),
        EntityMetadata("email", "emails", "activityid", "subject"),
        EntityMetadata("phonecall", "phonecalls", "activityid", "subject"),
        EntityMetadata("appointment", "appointments", "activityid", "subject"),
        EntityMetadata("activitypointer", "activitypointers", "activityid", "subject"),
        EntityMetadata("activityparty", "activityparties", "activitypartyid", None),
        EntityMetadata("sdkmessagefilter", "sdkmessagefilters", "sdkmessagefilterid", None),
    )
}


class TableReader:
    """Names, columns and bulk support of one environment's tables (thread-safe; names cached)."""

    def __init__(
        self,
        transport: Transport,
        batch: Callable[[Sequence[BatchOperation]], list[BatchResponse]] | None = None,
    ) -> None:
        self._transport = transport
        self._batch = batch
        self._lock = threading.Lock()
        self._bulk_support: dict[tuple[str, str], bool] = {}
        self._tables: dict[str, EntityMetadata] = dict(STANDARD_TABLES)

    def entity_metadata(self, table: str) -> EntityMetadata:
        """Names of a table read from ``EntityDefinitions`` (always a request; see :meth:`table`)."""
        body = read_json(
            self._transport.send(
                "GET",
                f"EntityDefinitions(LogicalName={odata_literal(table)})",
                idempotent=True,
                params=[("$select", "LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute")],
            )
        )
        metadata = EntityMetadata(
            logical_name=str(body["LogicalName"]),
            entity_set_name=str(body["EntitySetName"]),
            primary_id_attribute=str(body["PrimaryIdAttribute"]),
            primary_name_attribute=body.get("PrimaryNameAttribute") or None,
        )
        with self._lock:
            self._tables[table] = metadata
        return metadata

    def table(self, table: str) -> EntityMetadata:
        """Entity set, primary id and name of a table: standard ones known, others read once and cached."""
        with self._lock:
            known = self._tables.get(table)
        return known or self.entity_metadata(table)

    def id_attribute_for_set(self, entity_set: str) -> str:
        """The primary key of a table known by its entity set (standard, or read before)."""
        with self._lock:
            for metadata in self._tables.values():
                if metadata.entity_set_name == entity_set:
                    return metadata.primary_id_attribute
        raise ValueError(
            f"pass id_attribute (or call table() first): the primary key of {entity_set!r} is not known"
        )

    def attribute_rows(self, table: str) -> list[dict[str, Any]]:
        """Raw attribute objects of ``table``: the common properties merged with the type-specific ones.

        One request for the common properties, then the type-specific ones of every type cast present
        (String, Memo, Picklist, multi-select, State, Status, Boolean, Lookup/Customer/Owner, Integer,
        BigInt, Decimal, Double, Money, DateTime: MaxLength, options, targets, MinValue/MaxValue/Precision,
        Format and DateTimeBehavior) in one ``$batch`` of GETs when the reader has a batch sender, else one
        request each. Metadata is never paged.
        """
        prefix = f"EntityDefinitions(LogicalName={odata_literal(table)})/Attributes"
        base_rows = self._rows(prefix, [("$select", ",".join(BASE_ATTRIBUTE_SELECT))])
        casts: dict[tuple[str, str, str | None], None] = {}
        for row in base_rows:
            type_name = row.get("AttributeTypeName")
            if isinstance(type_name, Mapping) and type_name.get("Value") == MULTI_SELECT_TYPE_NAME:
                casts[MULTI_SELECT_CAST] = None
            elif str(row.get("AttributeType")) in TYPE_CASTS:
                casts[TYPE_CASTS[str(row["AttributeType"])]] = None
        merged = {str(row["LogicalName"]): dict(row) for row in base_rows}
        for rows in self._cast_rows(prefix, list(casts)):
            for row in rows:
                target = merged.get(str(row["LogicalName"]))
                if target is not None:
                    target.update({k: v for k, v in row.items() if not k.startswith("@odata.")})
        return list(merged.values())

    def attributes(self, table: str) -> list[DynamicsColumn]:
        """Typed columns of ``table`` (see :meth:`attribute_rows` for what is read)."""
        return [DynamicsColumn.from_metadata(row) for row in self.attribute_rows(table)]

    def supports_bulk(self, table: str, message: str = "CreateMultiple") -> bool:
        """Whether ``table`` supports a bulk message (sdkmessagefilters); cached per client."""
        cache_key = (table, message)
        with self._lock:
            cached = self._bulk_support.get(cache_key)
        if cached is not None:
            return cached
        filter_ = (
            f"sdkmessageid/name eq {odata_literal(message)}"
            f" and primaryobjecttypecode eq {odata_literal(table)}"
        )
        rows = self._rows(
            "sdkmessagefilters",
            [("$select", "sdkmessagefilterid"), ("$filter", filter_)],
            prefer=[prefer_page_size(1)],
            what="query",
        )
        supported = bool(rows)
        with self._lock:
            self._bulk_support[cache_key] = supported
        return supported

    def _cast_rows(
        self, prefix: str, casts: Sequence[tuple[str, str, str | None]]
    ) -> list[list[dict[str, Any]]]:
        """The rows of each type cast, in order: one ``$batch`` (a GET per cast) or one request each."""
        requests: list[tuple[str, list[tuple[str, str]]]] = []
        for cast, select, expand in casts:
            params = [("$select", select)]
            if expand:
                params.append(("$expand", expand))
            requests.append((f"{prefix}/Microsoft.Dynamics.CRM.{cast}", params))
        if self._batch is None or len(requests) < 2:
            return [self._rows(path, params) for path, params in requests]
        answers = self._batch([BatchOperation("GET", path, params=params) for path, params in requests])
        results: list[list[dict[str, Any]]] = []
        for answer in answers:
            answer.raise_for_error()
            rows = answer.body.get("value") if isinstance(answer.body, dict) else None
            if not isinstance(rows, list):
                raise DataverseError("metadata response has no 'value' array", status=answer.status)
            results.append(rows)
        if len(results) != len(requests):
            raise DataverseError("metadata $batch answered fewer parts than it was sent", status=200)
        return results

    def _rows(
        self,
        path: str,
        params: Sequence[tuple[str, str]],
        *,
        prefer: Sequence[str] = (),
        what: str = "metadata",
    ) -> list[dict[str, Any]]:
        response = self._transport.send("GET", path, idempotent=True, params=params, prefer=prefer)
        body = read_json(response)
        rows = body.get("value") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise DataverseError(f"{what} response has no 'value' array", status=response.status_code)
        return rows
