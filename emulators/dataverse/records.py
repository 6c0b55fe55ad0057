"""Records: create, retrieve, update, upsert, delete, associations, activity parties and queries.

Follows webapi/create-entity-web-api.md, update-delete-entities-using-web-api.md,
perform-conditional-operations-using-web-api.md, associate-disassociate-entities-using-web-api.md,
impersonate-another-user-web-api.md and query/*.md. Rows are stored the way the Web API returns them:
lookups as ``_x_value`` plus the ``@Microsoft.Dynamics.CRM.lookuplogicalname`` annotation, and only the
columns that have a value (defaults included), so the width of a table costs nothing per row. Collection-
valued navigation properties: one-to-many through the child's lookup, many-to-many through link rows in the
intersect table (``add_to_collection`` / ``remove_from_collection`` / ``children``).

Over 400 lines: payload validation, the write paths and the read paths share the same row conventions.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from . import errors
from .clock import Clock
from .odata import ODataError, QueryOptions, fold, index_hint, parse_query, sort_rows
from .schema import Collection, Column, ManyToMany, Schema, Table
from .store import Row, Store

LOOKUP_ANNOTATION = "@Microsoft.Dynamics.CRM.lookuplogicalname"
NAV_ANNOTATION = "@Microsoft.Dynamics.CRM.associatednavigationproperty"
FORMATTED = "@OData.Community.Display.V1.FormattedValue"
MAX_PAGE_SIZE = 5000
_GUID_RE = re.compile(
    r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?\Z"
)
_REF_RE = re.compile(r"(?:.*/)?([A-Za-z_][A-Za-z0-9_]*)\((.*)\)\Z", re.DOTALL)
_EDM = {
    "Integer": "Edm.Int32",
    "BigInt": "Edm.Int64",
    "Decimal": "Edm.Decimal",
    "Money": "Edm.Decimal",
    "Double": "Edm.Double",
    "Boolean": "Edm.Boolean",
    "DateTime": "Edm.DateTimeOffset",
    "Uniqueidentifier": "Edm.Guid",
    "Picklist": "Edm.Int32",
    "State": "Edm.Int32",
    "Status": "Edm.Int32",
    "String": "Edm.String",
    "Memo": "Edm.String",
    "MultiSelectPicklist": "Edm.String",
    "EntityName": "Edm.String",
}


@dataclass(frozen=True)
class Caller:
    """Who a request runs as: ``user_id`` (createdby/ownerid) and, when impersonating, the real caller."""

    user_id: str
    on_behalf_of: str | None = None
    key: str = ""  # the identity service protection limits count against
    detect_duplicates: bool = False  # the request sent MSCRM.SuppressDuplicateDetection: false


def parse_guid(text: str) -> str | None:
    match = _GUID_RE.match(text.strip())
    return match.group(1).lower() if match else None


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    guid = parse_guid(text)
    if guid:
        return guid
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise errors.bad_request(f"Bad Request - Error in query syntax: '{text}'.") from None


def split_key(text: str) -> list[tuple[str, str]] | str:
    """``guid`` -> the guid; ``a='x',b=1`` -> [(a, "'x'"), (b, "1")] (quotes kept, commas in quotes ok)."""
    guid = parse_guid(text)
    if guid:
        return guid
    parts: list[tuple[str, str]] = []
    buf: list[str] = []
    in_quote = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            if in_quote and i + 1 < len(text) and text[i + 1] == "'":
                buf.append("''")
                i += 2
                continue
            in_quote = not in_quote
        if ch == "," and not in_quote:
            parts.append(_key_part("".join(buf)))
            buf = []
        else:
            buf.append(ch)
        i += 1
    if in_quote:
        raise errors.bad_request(f"There is an unterminated literal at position {len(text)} in '{text}'.")
    parts.append(_key_part("".join(buf)))
    return parts


def _key_part(part: str) -> tuple[str, str]:
    name, eq, value = part.partition("=")
    if not eq or not name.strip():
        raise errors.bad_request(f"Bad Request - Error in query syntax: '{part}'.")
    return name.strip(), value.strip()


def format_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_datetime(text: str) -> str | None:
    """Normalise an ISO date or date-time to the Web API's output form, or None if it is not one."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.date.fromisoformat(text).isoformat()
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return format_datetime(parsed)


class RecordService:
    def __init__(
        self,
        schema: Schema,
        store: Store,
        clock: Clock,
        api_url: Callable[[], str],
        default_user: Callable[[], str],
    ) -> None:
        self.schema = schema
        self.store = store
        self.clock = clock
        self._api_url = api_url
        self._default_user = default_user
        self._blank: dict[str, dict[str, Any]] = {}
        self._readable: dict[str, list[str]] = {}
        self._required: dict[str, list[Column]] = {}
        self._now_cache: tuple[int, str] = (-1, "")
        # Security roles are not emulated; tests deny single privileges instead: user -> {(table, op)}.
        self.denied: dict[str, set[tuple[str, str]]] = {}
        for table in schema.tables.values():
            # A new row holds only the columns with a default value: rows store what is set (store.py).
            self._blank[table.logical_name] = {
                column.logical_name: column.default
                for column in table.columns.values()
                if column.is_property and not column.is_lookup and column.default is not None
            }
            self._readable[table.logical_name] = [
                c.value_name for c in table.columns.values() if c.valid_for_read and c.is_property
            ]
            self._required[table.logical_name] = [
                c
                for c in table.columns.values()
                if c.required_level == "SystemRequired"
                and c.valid_for_create
                and c.is_property
                and not c.server_filled
                and not c.is_primary_id
            ]

    # ------------------------------------------------------------------------------------------------
    # URLs and keys
    # ------------------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self._api_url()

    def entity_url(self, table: Table, record_id: str) -> str:
        return f"{self.api_url}{table.entity_set}({record_id})"

    def table_for_set(self, entity_set: str) -> Table:
        table = self.schema.table_for_set(entity_set)
        if table is None:
            raise ODataError(404, "0x80060888", f"Resource not found for the segment '{entity_set}'.")
        return table

    def resolve_key(self, table: Table, key_text: str) -> tuple[str | None, dict[str, Any]]:
        """The record id named by ``key_text`` (None if absent) and, for an alternate key, its values."""
        parsed = split_key(unquote(key_text))
        if isinstance(parsed, str):
            return parsed, {}
        values = {name: _literal(raw) for name, raw in parsed}
        if len(values) == 1 and table.primary_id in values:
            guid = values[table.primary_id]
            return (str(guid) if guid else None), {}
        names = set(values)
        for key in table.keys:
            if set(key.columns) == names:
                return self._find_by_values(table, values), values
        raise errors.bad_key(table.logical_name)

    def _find_by_values(
        self, table: Table, values: Mapping[str, Any], exclude: str | None = None
    ) -> str | None:
        first, *rest = list(values)
        for row in self.store.find(table.logical_name, first, values[first]):
            record_id = str(row[table.primary_id])
            if record_id == exclude:
                continue
            if all(fold(row.get(col)) == fold(values[col]) for col in rest):
                return record_id
        return None

    def parse_reference(self, text: str) -> tuple[Table, str]:
        """``/accounts(<id>)``, ``accounts(<id>)``, a full URL or an alternate-key form -> (table, id)."""
        match = _REF_RE.match(text.strip())
        if not match:
            raise errors.bad_request(
                f"The URI '{text}' is not valid because it is not based on '{self.api_url}'."
            )
        table = self.table_for_set(match.group(1))
        record_id, _ = self.resolve_key(table, match.group(2))
        if record_id is None or self.store.get(table.logical_name, record_id) is None:
            raise errors.lookup_missing(table.logical_name, record_id or match.group(2))
        return table, record_id

    # ------------------------------------------------------------------------------------------------
    # Payload -> row changes
    # ------------------------------------------------------------------------------------------------
    def _coerce(self, table: Table, column: Column, value: Any) -> Any:
        if value is None:
            return None
        kind = column.type
        edm = _EDM.get(kind, "Edm.String")

        def wrong() -> ODataError:
            shown = value if not isinstance(value, bool) else str(value).lower()
            if isinstance(value, dict | list):
                return errors.payload_error(
                    table.entity_set,
                    f"Cannot convert a value to target type '{edm}' because of conflict between input format "
                    "string/number and parameter 'IEEE754Compatible' false/true.",
                )
            return errors.payload_error(
                table.entity_set, f"Cannot convert the literal '{shown}' to the expected type '{edm}'."
            )

        if kind in ("String", "Memo", "EntityName"):
            if not isinstance(value, str):
                raise wrong()
            if column.max_length is not None and len(value) > column.max_length:
                raise errors.validation_error(
                    f"The length of the '{column.logical_name}' attribute of the "
                    f"'{table.logical_name}' entity "
                    f"exceeded the maximum allowed length of '{column.max_length}'."
                )
            return value
        if kind in ("Integer", "BigInt", "Picklist", "State", "Status"):
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer() and kind in ("Integer", "BigInt"):
                    value = int(value)
                else:
                    raise wrong()
            if kind in ("Picklist", "State", "Status"):
                if value not in column.option_values:
                    raise errors.bad_request(
                        f"A validation error occurred. The value {value} of '{column.logical_name}' "
                        "on record of "
                        f"type '{table.logical_name}' is outside the valid range. Accepted Values: "
                        + ",".join(str(v) for v in sorted(column.option_values)),
                        code="0x8004431a",
                    )
            else:
                self._range(table, column, value)
            return value
        if kind in ("Decimal", "Money", "Double"):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise wrong()
            self._range(table, column, value)
            return value
        if kind == "Boolean":
            if not isinstance(value, bool):
                raise wrong()
            return value
        if kind == "DateTime":
            normalised = _parse_datetime(value) if isinstance(value, str) else None
            if normalised is None:
                raise wrong()
            if column.format == "DateOnly":
                return normalised[:10]
            return normalised
        if kind == "Uniqueidentifier":
            guid = parse_guid(value) if isinstance(value, str) else None
            if guid is None:
                raise wrong()
            return guid
        if kind == "MultiSelectPicklist":
            if not isinstance(value, str):
                raise wrong()
            chosen = []
            for part in value.split(","):
                try:
                    number = int(part.strip())
                except ValueError:
                    raise wrong() from None
                if number not in column.option_values:
                    raise errors.bad_request(
                        f"A validation error occurred. The value {number} of "
                        f"'{column.logical_name}' on record "
                        f"of type '{table.logical_name}' is outside the valid range. Accepted Values: "
                        + ",".join(str(v) for v in sorted(column.option_values)),
                        code="0x8004431a",
                    )
                chosen.append(number)
            return ",".join(str(n) for n in sorted(set(chosen)))
        raise wrong()

    def _range(self, table: Table, column: Column, value: float) -> None:
        low, high = column.min_value, column.max_value
        if (low is not None and value < low) or (high is not None and value > high):
            raise errors.validation_error(
                f"The value {value} of '{column.logical_name}' on record of type "
                f"'{table.logical_name}' is outside "
                f"the valid range ({low} to {high})."
            )

    def _changes(
        self, table: Table, payload: Mapping[str, Any], *, creating: bool
    ) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
        """Validate a request body; return (row changes, deep inserts as (navigation, JSON value))."""
        if not isinstance(payload, Mapping):
            raise errors.payload_error(table.entity_set, "A JSON object was expected for the entity payload.")
        changes: dict[str, Any] = {}
        deep: list[tuple[str, Any]] = []
        for key, value in payload.items():
            if key.startswith("@"):
                if key == "@odata.type" and value not in (
                    f"Microsoft.Dynamics.CRM.{table.logical_name}",
                    f"#Microsoft.Dynamics.CRM.{table.logical_name}",
                ):
                    raise errors.payload_error(
                        table.entity_set,
                        f"A type named '{str(value).lstrip('#')}' could not be resolved by the model. When a "
                        "model is available, each type name must resolve to a valid type.",
                    )
                continue
            name, at, annotation = key.partition("@")
            if at and annotation == "odata.bind":
                self._bind(table, name, value, changes)
                continue
            if at:
                continue  # other instance annotations (FormattedValue, ...) are ignored like the service does
            if table.is_collection(name):
                if not isinstance(value, list):
                    raise errors.payload_error(table.entity_set, f"A collection was expected for '{name}'.")
                deep.append((name, value))
                continue
            if name in table.navigations and isinstance(value, Mapping):
                deep.append((name, value))
                continue
            column = table.columns.get(name)
            if column is None or not column.is_property:
                raise errors.payload_error(
                    table.entity_set,
                    f"The property '{name}' does not exist on type "
                    f"'Microsoft.Dynamics.CRM.{table.logical_name}'. "
                    "Make sure to only use property names that are defined by the type or mark the "
                    "type as open "
                    "type.",
                )
            if column.is_lookup:
                raise errors.payload_error(
                    table.entity_set, "Does not support untyped value in non-open type."
                )
            if (creating and not column.valid_for_create) or (not creating and not column.valid_for_update):
                if column.is_primary_id and not creating:
                    continue  # the id repeated in an update body is accepted and ignored
                action = "create" if creating else "update"
                raise errors.invalid_argument(
                    f"The '{column.logical_name}' attribute is not valid for {action}. "
                    f"(Entity: {table.logical_name})"
                )
            changes[name] = self._coerce(table, column, value)
        return changes, deep

    def _bind(self, table: Table, nav_name: str, value: Any, changes: dict[str, Any]) -> None:
        nav = table.navigations.get(nav_name)
        if nav is None:
            raise errors.undeclared_property(nav_name)
        column = table.columns[nav.column]
        value_name = column.value_name
        if value is None:
            changes[value_name] = None
            changes[value_name + LOOKUP_ANNOTATION] = None
            return
        if not isinstance(value, str):
            raise errors.payload_error(
                table.entity_set, f"The value of '{nav_name}@odata.bind' must be a URL."
            )
        target, record_id = self.parse_reference(value)
        if target.logical_name not in nav.targets:
            raise errors.bad_request(
                f"The navigation property '{nav_name}' of "
                f"'Microsoft.Dynamics.CRM.{table.logical_name}' cannot "
                f"refer to an entity of type 'Microsoft.Dynamics.CRM.{target.logical_name}'.",
                code="0x80048d19",
            )
        if not column.valid_for_create and not column.valid_for_update:
            raise errors.invalid_argument(
                f"The '{column.logical_name}' attribute is not valid for create or update."
            )
        changes[value_name] = record_id
        changes[value_name + LOOKUP_ANNOTATION] = target.logical_name

    # ------------------------------------------------------------------------------------------------
    # Writes
    # ------------------------------------------------------------------------------------------------
    def _user_row(self, user_id: str) -> Row | None:
        return self.store.get("systemuser", user_id)

    def _now(self) -> str:
        second = int(self.clock.now())
        cached = self._now_cache
        if cached[0] != second:
            cached = (second, format_datetime(dt.datetime.fromtimestamp(second, tz=dt.UTC)))
            self._now_cache = cached
        return cached[1]

    def _apply_system(self, table: Table, row: dict[str, Any], caller: Caller, *, creating: bool) -> None:
        now = self._now()
        if creating:
            row["createdon"] = row.pop("overriddencreatedon", None) or now
            if "overriddencreatedon" in table.columns:
                row["overriddencreatedon"] = row["createdon"] if row["createdon"] != now else None
            self._set_lookup(row, "createdby", caller.user_id, "systemuser")
            self._set_lookup(row, "createdonbehalfby", caller.on_behalf_of, "systemuser")
        row["modifiedon"] = now
        self._set_lookup(row, "modifiedby", caller.user_id, "systemuser")
        self._set_lookup(row, "modifiedonbehalfby", caller.on_behalf_of, "systemuser")
        if table.ownership == "UserOwned" and "ownerid" in table.columns:
            if creating and not row.get("_ownerid_value"):
                self._set_lookup(row, "ownerid", caller.user_id, "systemuser")
            owner_id = row.get("_ownerid_value")
            owner_table = row.get("_ownerid_value" + LOOKUP_ANNOTATION)
            if owner_id and owner_table == "systemuser":
                user = self._user_row(owner_id)
                if user is not None and user.get("isdisabled"):
                    raise errors.user_disabled(owner_id)
                self._set_lookup(row, "owninguser", owner_id, "systemuser")
                self._set_lookup(row, "owningteam", None, "team")
                unit = user.get("_businessunitid_value") if user else None
            else:
                self._set_lookup(row, "owninguser", None, "systemuser")
                self._set_lookup(row, "owningteam", owner_id, "team")
                team = self.store.get("team", owner_id) if owner_id else None
                unit = team.get("_businessunitid_value") if team else None
            self._set_lookup(row, "owningbusinessunit", unit, "businessunit")
        if table.logical_name in ("contact", "systemuser"):
            full = " ".join(p for p in (row.get("firstname"), row.get("lastname")) if p)
            row["fullname"] = full or None
        if table.is_activity:
            row["activitytypecode"] = table.logical_name
        row["versionnumber"] = self.store.next_version()

    @staticmethod
    def _set_lookup(row: dict[str, Any], column: str, value: str | None, target: str) -> None:
        if value:
            row[f"_{column}_value"] = value
            row[f"_{column}_value{LOOKUP_ANNOTATION}"] = target
        else:  # rows hold only what is set
            row.pop(f"_{column}_value", None)
            row.pop(f"_{column}_value{LOOKUP_ANNOTATION}", None)

    def _check_status(
        self, table: Table, row: dict[str, Any], changes: Mapping[str, Any], record_id: str
    ) -> None:
        """statuscode must belong to statecode; a new statecode alone brings its default statuscode."""
        state_column, status_column = table.columns.get("statecode"), table.columns.get("statuscode")
        if state_column is None or status_column is None:
            return
        state = row.get("statecode")
        if "statecode" in changes and "statuscode" not in changes:
            row["statuscode"] = next((o.value for o in status_column.options if o.state == state), None)
            return
        status = row.get("statuscode")
        option = next((o for o in status_column.options if o.value == status), None)
        if option is not None and option.state is not None and option.state != state:
            label = next((o.label for o in state_column.options if o.value == state), str(state))
            type_name = table.logical_name[:1].upper() + table.logical_name[1:]
            raise errors.invalid_argument(
                f"{status} is not a valid status code for state code {type_name}State.{label} on "
                f"{table.logical_name} with Id {record_id}."
            )

    def _check_required(self, table: Table, row: Mapping[str, Any]) -> None:
        for column in self._required[table.logical_name]:
            if row.get(column.value_name) in (None, ""):
                raise errors.required_missing(table.logical_name, column.logical_name)

    def _check_keys(self, table: Table, row: Mapping[str, Any], record_id: str) -> None:
        for key in table.keys:
            values = {col: row.get(col) for col in key.columns}
            if any(v is None for v in values.values()):
                continue
            if self._find_by_values(table, values, exclude=record_id) is not None:
                raise errors.duplicate_key(table.logical_name, key.name, key.columns)

    def _check_duplicates(self, table: Table, row: Mapping[str, Any], record_id: str) -> None:
        """The org's published duplicate detection rules (detect-duplicate-data-with-web-api.md)."""
        for rule in table.duplicate_rules:
            values = {col: row.get(col) for col in rule}
            if any(v in (None, "") for v in values.values()):
                continue
            if self._find_by_values(table, values, exclude=record_id) is not None:
                raise errors.duplicate_detected()

    def _check_privilege(self, caller: Caller, table: Table, privilege: str) -> None:
        if (table.logical_name, privilege) in self.denied.get(caller.user_id, ()):
            raise errors.privilege_denied(caller.user_id, table.logical_name, privilege)

    def create(
        self,
        table: Table,
        payload: Mapping[str, Any],
        caller: Caller,
        *,
        key_values: Mapping[str, Any] | None = None,
        record_id: str | None = None,
    ) -> Row:
        self._check_privilege(caller, table, "Create")
        with self.store.transaction():
            changes, deep = self._changes(table, payload, creating=True)
            self._deep_singles(table, deep, changes, caller)
            record_id = record_id or changes.get(table.primary_id) or str(uuid.uuid4())
            if self.store.get(table.logical_name, record_id) is not None:
                raise errors.duplicate_record(primary_key=True)
            row = dict(self._blank[table.logical_name])
            row.update(changes)
            row.update(key_values or {})
            row[table.primary_id] = record_id
            self._check_status(table, row, changes, record_id)
            self._apply_system(table, row, caller, creating=True)
            self._check_required(table, row)
            self._check_keys(table, row, record_id)
            if caller.detect_duplicates:
                self._check_duplicates(table, row, record_id)
            self.store.put(table.logical_name, record_id, _set_only(row))
            self._deep_collections(table, record_id, deep, caller)
        return row

    def _deep_singles(
        self, table: Table, deep: list[tuple[str, Any]], changes: dict[str, Any], caller: Caller
    ) -> None:
        """Deep insert of single-valued navigation properties: create the related row, then bind it
        (create-entity-web-api.md#create-related-table-rows-in-one-operation)."""
        for name, body in deep:
            nav = table.navigations.get(name)
            if nav is None or table.is_collection(name):
                continue
            if len(nav.targets) != 1:
                raise errors.bad_request(
                    f"Deep insert through '{name}' needs a typed navigation property; bind an "
                    "existing record."
                )
            target = self.schema.tables[nav.targets[0]]
            related = self.create(target, body, caller)
            changes[f"_{nav.column}_value"] = str(related[target.primary_id])
            changes[f"_{nav.column}_value{LOOKUP_ANNOTATION}"] = target.logical_name

    def _deep_collections(
        self, table: Table, record_id: str, deep: list[tuple[str, Any]], caller: Caller
    ) -> None:
        """Deep insert of one-to-many navigation properties (activity parties,
        contact_customer_accounts, ...)."""
        for name, items in deep:
            relationship = table.associations.get(name)
            if relationship is not None:  # create each related row, then link it
                other = self.schema.tables[relationship.other(table.logical_name)[1]]
                for item in items:
                    if not isinstance(item, Mapping):
                        raise errors.payload_error(
                            table.entity_set, f"An entity was expected inside '{name}'."
                        )
                    created = self.create(other, item, caller)
                    reference = f"/{other.entity_set}({created[other.primary_id]})"
                    self.add_to_collection(table, record_id, name, reference, caller)
                continue
            collection = table.collection(name)
            if collection is None:
                continue
            child = self.schema.tables[collection.table]
            bind = next(
                (
                    nav.name
                    for nav in child.navigations.values()
                    if nav.column == collection.column and table.logical_name in nav.targets
                ),
                None,
            )
            if bind is None:
                raise errors.bad_request(f"Deep insert through '{name}' is not supported by the emulator.")
            for item in items:
                if not isinstance(item, Mapping):
                    raise errors.payload_error(table.entity_set, f"An entity was expected inside '{name}'.")
                payload = {**item, f"{bind}@odata.bind": f"/{table.entity_set}({record_id})"}
                self.create(child, payload, caller)

    def update(
        self,
        table: Table,
        record_id: str,
        payload: Mapping[str, Any],
        caller: Caller,
        *,
        if_match: str | None = None,
    ) -> Row:
        self._check_privilege(caller, table, "Write")
        with self.store.transaction():
            existing = self.store.get(table.logical_name, record_id)
            if existing is None:
                raise errors.not_found(table.logical_name, record_id)
            if if_match and if_match != "*" and if_match != etag(existing):
                raise errors.etag_mismatch()
            changes, deep = self._changes(table, payload, creating=False)
            self._deep_singles(table, deep, changes, caller)
            row = dict(existing)
            row.update(changes)
            self._check_status(table, row, changes, record_id)
            self._apply_system(table, row, caller, creating=False)
            self._check_keys(table, row, record_id)
            if caller.detect_duplicates:
                self._check_duplicates(table, row, record_id)
            self.store.put(table.logical_name, record_id, _set_only(row))
            self._deep_collections(table, record_id, deep, caller)
        return row

    def upsert(
        self,
        table: Table,
        key_text: str,
        payload: Mapping[str, Any],
        caller: Caller,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> tuple[Row, bool]:
        """PATCH semantics: update if the record exists, else create it. Returns (row, created)."""
        with self.store.transaction():
            record_id, key_values = self.resolve_key(table, key_text)
            exists = record_id is not None and self.store.get(table.logical_name, record_id) is not None
            if exists and record_id is not None:
                if if_none_match == "*":
                    raise errors.duplicate_record()
                return self.update(table, record_id, payload, caller, if_match=if_match), False
            if if_match:
                if record_id is None:
                    raise errors.not_found(table.logical_name, key_text)
                raise errors.not_found(table.logical_name, record_id)
            row = self.create(table, payload, caller, key_values=key_values, record_id=record_id)
            return row, True

    def delete(self, table: Table, record_id: str, *, if_match: str | None = None) -> None:
        with self.store.transaction():
            existing = self.store.get(table.logical_name, record_id)
            if existing is None:
                raise errors.not_found(table.logical_name, record_id)
            if if_match and if_match != "*" and if_match != etag(existing):
                raise errors.etag_mismatch()
            self.store.delete(table.logical_name, record_id)
            self._remove_links(table, record_id)
            self._remove_associations(table, record_id)

    def _remove_links(self, deleted: Table, record_id: str) -> None:
        """Cascade like the default relationship behaviours: parental lookups (contact.parentcustomerid,
        activity regardingobjectid) delete the referencing rows, every other lookup is cleared (Remove Link),
        and an activity's parties go with it."""
        if deleted.is_activity:
            for party in self.store.find("activityparty", "_activityid_value", record_id):
                self.store.delete("activityparty", str(party["activitypartyid"]))
        for other in self.schema.tables.values():
            for column in other.columns.values():
                if not column.is_lookup or deleted.logical_name not in column.targets:
                    continue
                for row in self.store.find(other.logical_name, column.value_name, record_id):
                    child_id = str(row[other.primary_id])
                    if row.get(column.value_name + LOOKUP_ANNOTATION) != deleted.logical_name:
                        continue
                    if column.cascade_delete:
                        if self.store.delete(other.logical_name, child_id) is not None:
                            self._remove_links(other, child_id)
                        continue
                    updated = dict(row)
                    self._set_lookup(updated, column.logical_name, None, deleted.logical_name)
                    self.store.put(other.logical_name, child_id, updated)

    def _no_property(self, table: Table, name: str) -> ODataError:
        return errors.bad_request(
            f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{table.logical_name}'."
        )

    def associate(self, table: Table, record_id: str, nav_name: str, reference: str, caller: Caller) -> None:
        """PUT .../<single-valued nav>/$ref {"@odata.id": "<url>"}."""
        if nav_name not in table.navigations:
            raise self._no_property(table, nav_name)
        self.update(table, record_id, {f"{nav_name}@odata.bind": reference}, caller)

    def disassociate(self, table: Table, record_id: str, nav_name: str, caller: Caller) -> None:
        """DELETE .../<single-valued nav>/$ref."""
        if nav_name not in table.navigations:
            raise self._no_property(table, nav_name)
        self.update(table, record_id, {f"{nav_name}@odata.bind": None}, caller)

    def _child_bind(self, table: Table, collection: Collection) -> str:
        """The child's single-valued navigation property that points back at ``table`` (its bind name)."""
        child = self.schema.tables[collection.table]
        for nav in child.navigations.values():
            if nav.column == collection.column and table.logical_name in nav.targets:
                return nav.name
        raise errors.bad_request(
            f"The navigation property '{collection.name}' is not supported by the emulator here."
        )

    def add_to_collection(
        self, table: Table, record_id: str, nav_name: str, reference: str, caller: Caller
    ) -> None:
        """POST .../<collection-valued nav>/$ref {"@odata.id": "<url>"}: for a one-to-many relationship the
        referenced row's lookup is set to this record; for a many-to-many one a link row is added
        (associate-disassociate-entities-using-web-api.md#add-a-reference-to-a-collection-valued-navigation-property)."""
        with self.store.transaction():
            other, other_id = self.parse_reference(reference)
            collection = table.collection(nav_name)
            if collection is not None:
                if other.logical_name != collection.table:
                    raise self._wrong_type(table, nav_name, other)
                bind = self._child_bind(table, collection)
                self.update(
                    other, other_id, {f"{bind}@odata.bind": f"/{table.entity_set}({record_id})"}, caller
                )
                return
            relationship = table.associations.get(nav_name)
            if relationship is None:
                raise self._no_property(table, nav_name)
            own_column, other_table, other_column = relationship.other(table.logical_name)
            if other.logical_name != other_table:
                raise self._wrong_type(table, nav_name, other)
            self._check_privilege(caller, table, "Write")
            link_id = self._link_id(relationship, {own_column: record_id, other_column: other_id})
            if self.store.get(relationship.intersect, link_id) is not None:
                # *unconfirmed*: the service refuses a second identical N:N link with DuplicateRecord.
                raise errors.duplicate_record(primary_key=True)
            self.store.put(
                relationship.intersect,
                link_id,
                {f"{relationship.intersect}id": link_id, own_column: record_id, other_column: other_id},
            )

    def remove_from_collection(self, table: Table, record_id: str, nav_name: str, other_text: str) -> None:
        """DELETE .../<collection-valued nav>(<id>)/$ref or .../<nav>/$ref?$id=<url>: the link between the two
        rows goes (a one-to-many child's lookup is cleared when it points at this record). Removing a link
        that does not exist is a no-op here (*unconfirmed*)."""
        with self.store.transaction():
            collection = table.collection(nav_name)
            relationship = table.associations.get(nav_name)
            if collection is None and relationship is None:
                raise self._no_property(table, nav_name)
            if collection is not None:
                target_name = collection.table
            else:
                assert relationship is not None
                target_name = relationship.other(table.logical_name)[1]
            target = self.schema.tables[target_name]
            match = _REF_RE.match(other_text.strip())
            if match:
                target_from_ref, other_id = self.parse_reference(other_text)
                if target_from_ref.logical_name != target_name:
                    raise self._wrong_type(table, nav_name, target_from_ref)
            else:
                found, _ = self.resolve_key(target, other_text)
                if found is None or self.store.get(target_name, found) is None:
                    raise errors.lookup_missing(target_name, other_text)
                other_id = found
            if collection is not None:
                child = self.store.get(target_name, other_id)
                value_name = f"_{collection.column}_value"
                if (
                    child is not None
                    and child.get(value_name) == record_id
                    and child.get(value_name + LOOKUP_ANNOTATION) == table.logical_name
                ):
                    updated = dict(child)
                    self._set_lookup(updated, collection.column, None, table.logical_name)
                    updated["versionnumber"] = self.store.next_version()
                    updated["modifiedon"] = self._now()
                    self.store.put(target_name, other_id, updated)
                return
            assert relationship is not None
            own_column, _, other_column = relationship.other(table.logical_name)
            link_id = self._link_id(relationship, {own_column: record_id, other_column: other_id})
            self.store.delete(relationship.intersect, link_id)

    @staticmethod
    def _link_id(relationship: ManyToMany, ends: Mapping[str, str]) -> str:
        first = ends[relationship.entity1_attribute]
        second = ends[relationship.entity2_attribute]
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{relationship.intersect}/{first}/{second}"))

    def _wrong_type(self, table: Table, nav_name: str, other: Table) -> ODataError:
        return errors.bad_request(
            f"The navigation property '{nav_name}' of 'Microsoft.Dynamics.CRM.{table.logical_name}' cannot "
            f"refer to an entity of type 'Microsoft.Dynamics.CRM.{other.logical_name}'.",
            code="0x80048d19",
        )

    def _remove_associations(self, deleted: Table, record_id: str) -> None:
        for relationship in deleted.associations.values():
            own_column = relationship.other(deleted.logical_name)[0]
            for link in self.store.find(relationship.intersect, own_column, record_id):
                self.store.delete(relationship.intersect, str(link[f"{relationship.intersect}id"]))

    # ------------------------------------------------------------------------------------------------
    # Reads
    # ------------------------------------------------------------------------------------------------
    def navigate(self, table: Table) -> Callable[[Mapping[str, Any], str], Row | None]:
        def resolve(row: Mapping[str, Any], nav_name: str) -> Row | None:
            nav = table.navigations.get(nav_name)
            if nav is None:
                return None
            value_name = f"_{nav.column}_value"
            target_id = row.get(value_name)
            target = row.get(value_name + LOOKUP_ANNOTATION)
            if not target_id or target not in nav.targets:
                return None
            return self.store.get(target, target_id)

        return resolve

    def known_columns(self, table: Table) -> Callable[[str], bool]:
        def known(name: str) -> bool:
            if "/" in name:
                nav_name, _, related = name.partition("/")
                nav = table.navigations.get(nav_name)
                if nav is None:
                    return False
                return any(
                    self.schema.tables[t].column_for_value_name(related) is not None for t in nav.targets
                )
            column = table.column_for_value_name(name)
            return column is not None and column.valid_for_read and column.is_property

        return known

    def parse_options(self, table: Table, params: Mapping[str, str]) -> QueryOptions:
        def expand_columns(nav_name: str) -> Callable[[str], bool] | None:
            nav = table.navigations.get(nav_name)
            if nav is not None:
                return self.known_columns(self.schema.tables[nav.targets[0]])
            collection = table.collection(nav_name)
            if collection is not None:
                return self.known_columns(self.schema.tables[collection.table])
            relationship = table.associations.get(nav_name)
            if relationship is not None:
                return self.known_columns(self.schema.tables[relationship.other(table.logical_name)[1]])
            return None

        options = parse_query(
            params,
            known_columns=self.known_columns(table),
            entity_type=table.logical_name,
            expand_columns=expand_columns,
        )
        for item in options.expand:
            if item.navigation not in table.navigations and not table.is_collection(item.navigation):
                raise errors.bad_request(
                    f"Could not find a property named '{item.navigation}' on type "
                    f"'Microsoft.Dynamics.CRM.{table.logical_name}'."
                )
        return options

    def serialize(
        self,
        table: Table,
        row: Mapping[str, Any],
        options: QueryOptions | None = None,
        *,
        annotations: bool = False,
        formatted: bool = False,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"@odata.etag": etag(row)}
        select = options.select if options else None
        if select:
            names = list(dict.fromkeys([*select, table.primary_id]))
        else:
            names = self._readable[table.logical_name]
        for name in names:
            value = row.get(name)
            column = table.column_for_value_name(name)
            if column is not None and column.is_lookup and value is not None and annotations:
                target = row.get(name + LOOKUP_ANNOTATION)
                out[name + FORMATTED] = self._primary_name(target, value)
                nav = self._nav_for(table, column.logical_name, target)
                if nav:
                    out[name + NAV_ANNOTATION] = nav
                out[name + LOOKUP_ANNOTATION] = target
            elif column is not None and formatted and value is not None and column.options:
                labels = {o.value: o.label for o in column.options}
                if column.type == "MultiSelectPicklist":
                    out[name + FORMATTED] = "; ".join(labels.get(int(v), v) for v in str(value).split(","))
                else:
                    out[name + FORMATTED] = labels.get(value, str(value))
            out[name] = value
        if options:
            for item in options.expand:
                out[item.navigation] = self._expand(table, row, item.navigation, item.select, annotations)
        return out

    def _expand(
        self, table: Table, row: Mapping[str, Any], nav_name: str, select: list[str] | None, annotations: bool
    ) -> Any:
        sub_options = QueryOptions(select=select)
        if table.is_collection(nav_name):
            child, rows = self.children(table, row, nav_name)
            return [self.serialize(child, r, sub_options, annotations=annotations) for r in rows]
        related = self.navigate(table)(row, nav_name)
        if related is None:
            return None
        nav = table.navigations[nav_name]
        target_name = row.get(f"_{nav.column}_value{LOOKUP_ANNOTATION}") or nav.targets[0]
        return self.serialize(self.schema.tables[target_name], related, sub_options, annotations=annotations)

    def children(self, table: Table, row: Mapping[str, Any], nav_name: str) -> tuple[Table, list[Row]]:
        """The rows of a collection-valued navigation property of ``row`` (insertion order)."""
        relationship = table.associations.get(nav_name)
        if relationship is not None:
            own_column, other_name, other_column = relationship.other(table.logical_name)
            links = self.store.find(relationship.intersect, own_column, row[table.primary_id])
            related = (self.store.get(other_name, str(link[other_column])) for link in links)
            return self.schema.tables[other_name], [r for r in related if r is not None]
        collection = table.collections[nav_name]
        child = self.schema.tables[collection.table]
        value_name = f"_{collection.column}_value"
        rows = [
            r
            for r in self.store.find(child.logical_name, value_name, row[table.primary_id])
            if r.get(value_name + LOOKUP_ANNOTATION) == table.logical_name
        ]
        return child, rows

    def _primary_name(self, target: str | None, record_id: str) -> str | None:
        table = self.schema.tables.get(target or "")
        if table is None or not table.primary_name:
            return None
        related = self.store.get(table.logical_name, record_id)
        value = related.get(table.primary_name) if related else None
        return str(value) if value is not None else None

    def _nav_for(self, table: Table, column: str, target: str | None) -> str | None:
        for nav in table.navigations.values():
            if nav.column == column and (target in nav.targets or len(nav.targets) != 1):
                return nav.name
        return None

    def query(self, table: Table, options: QueryOptions) -> list[Mapping[str, Any]]:
        """Every row matching ``options.filter``, ordered (paging is the caller's business)."""
        nav = self.navigate(table)
        hint = index_hint(options.filter)
        hinted = self.store.hinted(table.logical_name, hint) if hint is not None else None
        scanned: Sequence[Mapping[str, Any]] = (
            hinted if hinted is not None else self.store.rows(table.logical_name)
        )
        expr = options.filter
        rows = [r for r in scanned if expr.evaluate(r, nav)] if expr is not None else list(scanned)
        if options.orderby:
            return sort_rows(rows, options.orderby, nav)
        return rows


def _set_only(row: dict[str, Any]) -> dict[str, Any]:
    """The row without its null columns (a cleared column reads back as null all the same)."""
    if None in row.values():
        return {name: value for name, value in row.items() if value is not None}
    return row


def etag(row: Mapping[str, Any]) -> str:
    return f'W/"{row.get("versionnumber")}"'


def skiptoken(page_number: int, last_id: str, first_id: str) -> str:
    """An opaque paging cookie in the Web API's shape (query/page-results.md)."""
    inner = quote(
        f'<cookie page="{page_number - 1}"><id last="{{{last_id.upper()}}}" first="{{{first_id.upper()}}}" />'
        "</cookie>",
        safe="",
    )
    return f'<cookie pagenumber="{page_number}" pagingcookie="{quote(inner, safe="")}" istracking="False" />'


_PAGENUMBER_RE = re.compile(r'pagenumber="(\d+)"')


_LAST_RE = re.compile(r'last="\{([0-9A-Fa-f-]{36})\}"')


def page_number(token: str | None) -> int:
    if not token:
        return 1
    match = _PAGENUMBER_RE.search(token)
    if not match:
        raise errors.bad_request(f"The $skiptoken '{token}' is not valid.")
    return max(1, int(match.group(1)))


def page_start(token: str | None, rows: list[Mapping[str, Any]], primary_id: str, page_size: int) -> int:
    """Where the page named by ``token`` starts: right after the previous page's last row when it is still
    there (so rows created or deleted meanwhile do not shift pages), else by page number."""
    number = page_number(token)
    if number == 1 or token is None:
        return 0
    match = _LAST_RE.search(unquote(unquote(token)))
    if match:
        last = match.group(1).lower()
        for index, row in enumerate(rows):
            if row.get(primary_id) == last:
                return index + 1
    return (number - 1) * page_size
