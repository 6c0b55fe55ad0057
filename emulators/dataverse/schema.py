"""Tables and columns the emulator knows: the standard Dataverse tables plus custom ones from a schema file.

Three layers, later ones winning:

1. ``standard_tables.json``: every column of contact, account, systemuser, team, businessunit, task, email,
   phonecall, appointment and activityparty as Microsoft's table reference pages list them (logical and
   schema name, English display name, type, MaxLength, RequiredLevel, create/update/read validity, ranges,
   lookup targets, every choice option). Facts only; the file names the pages and the commit it reflects.
2. ``default_schema.json``: the emulator's table settings (entity set, ownership, bulk support, duplicate
   rules), the custom columns every test org has (``new_linkedinurl``, ...) and behaviour patches on standard
   columns (``cascade_delete`` for parental relationships, ``server_filled`` for SystemRequired columns the
   service fills itself, ``access`` where the emulator lets tests write what Entra sync writes for real).
3. a schema file given to the emulator (custom columns, tables, alternate keys), the same shape::

    {"tables": {"contact": {"columns": {"new_linkedinurl": {"type": "String", "max_length": 400}},
                            "keys": [{"name": "new_linkedinurl_key", "columns": ["new_linkedinurl"]}]},
                "new_linkedinactivity": {"activity": true, "entity_set": "new_linkedinactivities"}}}

A column spec with a ``type`` replaces the column; one without patches it. Entries for an existing table add
or replace columns and keys; new tables are created. Tables and columns may carry ``schema_name`` /
``display_name``; otherwise standard ones use ``standard_names.py`` and others a name derived from the logical
name. System columns (primary key, created/modified, owner columns of user-owned tables, state/status, the
activitypointer columns of activity tables) are added here for tables the reference data does not cover
(custom tables, sdkmessage/sdkmessagefilter). A lookup's name/type companions (``parentcustomeridname``,
``owneridtype``) carry ``attribute_of``: metadata lists them, records do not have them as properties.
Many-to-many relationships (``STANDARD_MANY_TO_MANY``) link two tables through an intersect table.

A module over 400 lines: the column model, the three loaders and the relationship wiring share the same
dataclasses and are read together.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.dataverse import standard_names

DEFAULT_SCHEMA_PATH = Path(__file__).with_name("default_schema.json")
# Every column of the standard tables as Microsoft's reference pages list them (the file names the pages and
# the commit it reflects). default_schema.json adds the emulator's table settings and custom columns on top.
STANDARD_TABLES_PATH = Path(__file__).with_name("standard_tables.json")

# AttributeTypeCode values (query-metadata-web-api.md).
ATTRIBUTE_TYPE_CODES: dict[str, int] = {
    "Boolean": 0,
    "Customer": 1,
    "DateTime": 2,
    "Decimal": 3,
    "Double": 4,
    "Integer": 5,
    "Lookup": 6,
    "Memo": 7,
    "Money": 8,
    "Owner": 9,
    "PartyList": 10,
    "Picklist": 11,
    "State": 12,
    "Status": 13,
    "String": 14,
    "Uniqueidentifier": 15,
    "CalendarRules": 16,
    "Virtual": 17,
    "BigInt": 18,
    "ManagedProperty": 19,
    "EntityName": 20,
}
LOOKUP_TYPES = frozenset({"Lookup", "Customer", "Owner"})
OPTION_TYPES = frozenset({"Picklist", "State", "Status", "MultiSelectPicklist"})
NAMESPACE = uuid.UUID("6f1d1f53-6e0f-4c4e-9a55-2f3c3b0d0a11")


@dataclass(frozen=True)
class OptionValue:
    value: int
    label: str
    state: int | None = None  # for Status options: the statecode they belong to


@dataclass
class Column:
    logical_name: str
    type: str  # AttributeType name; "MultiSelectPicklist" for multi-select choices (AttributeType Virtual)
    max_length: int | None = None
    required_level: str = "None"
    valid_for_create: bool = True
    valid_for_update: bool = True
    valid_for_read: bool = True
    targets: tuple[str, ...] = ()
    options: tuple[OptionValue, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    precision: int | None = None
    format: str | None = None  # DateTime: "DateOnly" | "DateAndTime"; String: "Email", "Url", ...
    is_custom: bool = False
    is_primary_id: bool = False
    is_primary_name: bool = False
    default: Any = None
    metadata_id: str = ""
    schema_name: str = ""  # empty: derived from the logical name (metadata.py)
    display_name: str = ""
    cascade_delete: bool = False  # parental relationship: deleting the referenced record deletes this one
    attribute_of: str | None = None  # a lookup's name/type companion: metadata only, not an entity property
    server_filled: bool = False  # SystemRequired but set by the service itself: a create need not send it

    @property
    def is_lookup(self) -> bool:
        return self.type in LOOKUP_TYPES

    @property
    def value_name(self) -> str:
        """The name the Web API uses for the column's value (``_x_value`` for lookups)."""
        return f"_{self.logical_name}_value" if self.is_lookup else self.logical_name

    @property
    def attribute_type(self) -> str:
        return "Virtual" if self.type in ("MultiSelectPicklist", "Image", "File") else self.type

    @property
    def is_property(self) -> bool:
        """Whether the Web API exposes the column as a property of the entity type."""
        return self.attribute_of is None and self.type != "PartyList"

    @property
    def option_values(self) -> frozenset[int]:
        return frozenset(option.value for option in self.options)


@dataclass(frozen=True)
class Navigation:
    """A single-valued navigation property: ``parentcustomerid_account`` -> (parentcustomerid, account)."""

    name: str
    column: str
    targets: tuple[str, ...]  # a Customer navigation has one target; Owner may point at systemuser or team


@dataclass(frozen=True)
class Collection:
    """A collection-valued navigation property: ``contact_customer_accounts`` on account lists the contacts
    whose ``parentcustomerid`` points at the account."""

    name: str
    table: str  # the referencing (child) table
    column: str  # its lookup column


@dataclass(frozen=True)
class ManyToMany:
    """A many-to-many relationship: rows of the two tables linked through an intersect table
    (``teammembership_association``: systemuser <-> team through ``teammembership``). Both tables expose it
    as a collection-valued navigation property of the same name."""

    name: str
    intersect: str  # the intersect table's logical name (stored, not served as an entity set)
    entity1: str
    entity1_attribute: str
    entity2: str
    entity2_attribute: str

    def other(self, table: str) -> tuple[str, str, str]:
        """(this side's intersect column, the other table, the other side's intersect column)."""
        if table == self.entity1:
            return self.entity1_attribute, self.entity2, self.entity2_attribute
        return self.entity2_attribute, self.entity1, self.entity1_attribute


# Standard N:N relationships (reference/entities/team.md, "Many-To-Many Relationships": team is Entity1,
# systemuser Entity2, intersect table teammembership).
STANDARD_MANY_TO_MANY = (
    ManyToMany(
        "teammembership_association", "teammembership", "team", "teamid", "systemuser", "systemuserid"
    ),
)


@dataclass(frozen=True)
class AlternateKey:
    name: str
    columns: tuple[str, ...]
    metadata_id: str = ""


@dataclass
class Table:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str | None
    columns: dict[str, Column] = field(default_factory=dict)
    keys: list[AlternateKey] = field(default_factory=list)
    duplicate_rules: list[tuple[str, ...]] = field(default_factory=list)
    navigations: dict[str, Navigation] = field(default_factory=dict)
    collections: dict[str, Collection] = field(default_factory=dict)
    associations: dict[str, ManyToMany] = field(default_factory=dict)  # N:N navigation properties
    is_activity: bool = False
    is_custom: bool = False
    ownership: str = "UserOwned"  # UserOwned | OrganizationOwned | BusinessOwned | None
    supports_bulk: bool = True
    display_name: str = ""
    metadata_id: str = ""
    object_type_code: int = 0
    schema_name: str = ""  # empty: derived from the logical name (metadata.py)
    display_collection_name: str = ""

    def column(self, name: str) -> Column | None:
        return self.columns.get(name)

    def column_for_value_name(self, name: str) -> Column | None:
        """Resolve a Web API property name (``firstname`` or ``_parentcustomerid_value``) to its column."""
        column = self.columns.get(name)
        if column is not None and not column.is_lookup:
            return column
        if name.startswith("_") and name.endswith("_value"):
            column = self.columns.get(name[1:-6])
            if column is not None and column.is_lookup:
                return column
        return None

    def eager_index_columns(self) -> list[str]:
        """Row keys indexed from the start (store.py): the primary name, alternate-key and duplicate-rule
        columns, and the columns integrations look records up by (e-mail, names, URLs, user identities)."""
        wanted = [self.primary_name] if self.primary_name else []
        for key in self.keys:
            wanted.extend(key.columns)
        for rule in self.duplicate_rules:
            wanted.extend(rule)
        wanted.extend(c for c in COMMONLY_QUERIED if c in self.columns)
        out: list[str] = []
        for name in wanted:
            column = self.columns.get(name)
            if column is None or name == self.primary_id:
                continue
            row_key = column.value_name if column.is_lookup else name
            if row_key not in out:
                out.append(row_key)
        return out

    @property
    def parties_navigation(self) -> str | None:
        return f"{self.logical_name}_activity_parties" if self.is_activity else None

    def collection(self, name: str) -> Collection | None:
        return self.collections.get(name)

    def is_collection(self, name: str) -> bool:
        """A collection-valued navigation property: one-to-many or many-to-many."""
        return name in self.collections or name in self.associations


COMMONLY_QUERIED = (
    "emailaddress1",
    "new_linkedinurl",
    "lastname",
    "firstname",
    "websiteurl",
    "name",
    "domainname",
    "internalemailaddress",
    "azureactivedirectoryobjectid",
)


class Schema:
    def __init__(self, tables: dict[str, Table]) -> None:
        self.tables = tables
        self.by_entity_set = {table.entity_set: table for table in tables.values()}
        self.many_to_many = {
            rel.name: rel for table in tables.values() for rel in table.associations.values()
        }

    def table(self, logical_name: str) -> Table | None:
        return self.tables.get(logical_name)

    def table_for_set(self, entity_set: str) -> Table | None:
        return self.by_entity_set.get(entity_set)


def _mid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def _options(raw: list[Any] | None) -> tuple[OptionValue, ...]:
    result = []
    for item in raw or []:
        if isinstance(item, dict):
            result.append(OptionValue(int(item["value"]), str(item["label"]), item.get("state")))
        else:
            result.append(OptionValue(int(item[0]), str(item[1]), item[2] if len(item) > 2 else None))
    return tuple(result)


def _column(table: str, name: str, spec: dict[str, Any], *, custom: bool) -> Column:
    kind = spec["type"]
    access = spec.get("access", "rw")  # rw | create | update | read | none
    is_custom = spec.get("custom", custom or name.startswith("new_"))
    standard = None if is_custom else standard_names.column_names(table, name)
    return Column(
        logical_name=name,
        type=kind,
        max_length=spec.get("max_length", 100 if kind == "String" else 2000 if kind == "Memo" else None),
        required_level=spec.get("required", "None"),
        valid_for_create=access in ("rw", "create"),
        valid_for_update=access in ("rw", "update"),
        valid_for_read=bool(spec.get("readable", True)),
        targets=tuple(spec.get("targets", ())),
        options=_options(spec.get("options")),
        min_value=spec.get("min"),
        max_value=spec.get("max"),
        precision=spec.get("precision"),
        format=spec.get("format"),
        is_custom=is_custom,
        default=spec.get("default"),
        metadata_id=_mid(table, name),
        schema_name=spec.get("schema_name") or (standard[0] if standard else ""),
        display_name=spec.get("display_name") or (standard[1] if standard else ""),
        cascade_delete=bool(spec.get("cascade_delete", False)),
        attribute_of=spec.get("attribute_of"),
        server_filled=bool(spec.get("server_filled", False)),
    )


def _merge_columns(merged: dict[str, dict[str, Any]], columns: dict[str, dict[str, Any]]) -> None:
    """A column spec with a ``type`` replaces the column; one without patches it (``cascade_delete``,
    ``default``, ...), so default_schema.json states only what the emulator adds to the reference."""
    for name, spec in columns.items():
        if "type" in spec or name not in merged:
            merged[name] = dict(spec)
        else:
            merged[name] = {**merged[name], **spec}


_STATE = {"type": "State", "access": "update", "options": [[0, "Active"], [1, "Inactive"]], "default": 0}
_STATUS = {"type": "Status", "options": [[1, "Active", 0], [2, "Inactive", 1]], "default": 1}
_ACTIVITY_STATE = {
    "type": "State",
    "access": "update",
    "options": [[0, "Open"], [1, "Completed"], [2, "Canceled"]],
    "default": 0,
}
_ACTIVITY_STATUS = {
    "type": "Status",
    "options": [[2, "Not Started", 0], [3, "In Progress", 0], [5, "Completed", 1], [6, "Canceled", 2]],
    "default": 2,
}
_REGARDING_TARGETS = ["account", "contact"]


def _system_columns(name: str, spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    activity = bool(spec.get("activity"))
    primary_id = spec.get("primary_id") or ("activityid" if activity else f"{name}id")
    cols: dict[str, dict[str, Any]] = {
        primary_id: {"type": "Uniqueidentifier", "access": "create", "required": "SystemRequired"},
        "createdon": {"type": "DateTime", "access": "read"},
        "modifiedon": {"type": "DateTime", "access": "read"},
        "overriddencreatedon": {"type": "DateTime", "access": "create"},
        "createdby": {"type": "Lookup", "targets": ["systemuser"], "access": "read"},
        "modifiedby": {"type": "Lookup", "targets": ["systemuser"], "access": "read"},
        "createdonbehalfby": {"type": "Lookup", "targets": ["systemuser"], "access": "read"},
        "modifiedonbehalfby": {"type": "Lookup", "targets": ["systemuser"], "access": "read"},
        "versionnumber": {"type": "BigInt", "access": "read"},
    }
    if spec.get("ownership", "UserOwned") == "UserOwned":
        cols["ownerid"] = {"type": "Owner", "targets": ["systemuser", "team"], "required": "SystemRequired"}
        cols["owningbusinessunit"] = {"type": "Lookup", "targets": ["businessunit"], "access": "read"}
        cols["owninguser"] = {"type": "Lookup", "targets": ["systemuser"], "access": "read"}
        cols["owningteam"] = {"type": "Lookup", "targets": ["team"], "access": "read"}
    if activity:
        cols.update(
            {
                # The activitypointer template (reference/entities/activitypointer.md: subject String 400
                # ApplicationRequired, description Memo 2000), which custom activity tables start from
                # (*unconfirmed* for custom tables). The standard activity tables declare their own values
                # in default_schema.json: task and phonecall subject 200 / description 2000, appointment
                # 200 / 1048576, email 800 / 1073741823 (reference/entities/<table>.md).
                "subject": {"type": "String", "max_length": 400, "required": "ApplicationRequired"},
                "description": {"type": "Memo", "max_length": 2000},
                "regardingobjectid": {
                    "type": "Lookup",
                    "targets": _REGARDING_TARGETS,
                    "cascade_delete": True,
                },
                "scheduledstart": {"type": "DateTime"},
                "scheduledend": {"type": "DateTime"},
                "actualstart": {"type": "DateTime"},
                "actualend": {"type": "DateTime"},
                "prioritycode": {"type": "Picklist", "options": [[0, "Low"], [1, "Normal"], [2, "High"]]},
                "activitytypecode": {"type": "EntityName", "access": "read"},
                "statecode": _ACTIVITY_STATE,
                "statuscode": _ACTIVITY_STATUS,
            }
        )
    elif spec.get("state", True):
        cols["statecode"] = _STATE
        cols["statuscode"] = _STATUS
    return cols


def _build_table(
    name: str,
    spec: dict[str, Any],
    *,
    custom: bool,
    code: int,
    standard: dict[str, dict[str, Any]] | None = None,
) -> Table:
    activity = bool(spec.get("activity"))
    primary_id = spec.get("primary_id") or ("activityid" if activity else f"{name}id")
    table = Table(
        logical_name=name,
        entity_set=spec.get("entity_set") or f"{name}s",
        primary_id=primary_id,
        primary_name=spec.get("primary_name", "subject" if activity else "name"),
        is_activity=activity,
        is_custom=custom,
        ownership=spec.get("ownership", "UserOwned"),
        supports_bulk=spec.get("bulk", True),
        display_name=spec.get("display_name")
        or (standard_names.TABLES[name][1] if name in standard_names.TABLES else "")
        or name.replace("new_", "").title(),
        schema_name=spec.get("schema_name")
        or (standard_names.TABLES[name][0] if name in standard_names.TABLES else ""),
        display_collection_name=spec.get("display_collection_name")
        or (standard_names.TABLES[name][2] if name in standard_names.TABLES else ""),
        metadata_id=_mid(name),
        object_type_code=int(spec.get("object_type_code", code)),
    )
    merged = _system_columns(name, spec)
    _merge_columns(merged, standard or {})
    _merge_columns(merged, spec.get("columns", {}))
    for column_name, column_spec in merged.items():
        table.columns[column_name] = _column(name, column_name, column_spec, custom=custom)
    table.columns[primary_id].is_primary_id = True
    if table.primary_name and table.primary_name in table.columns:
        table.columns[table.primary_name].is_primary_name = True
    return table


def _merge(
    tables: dict[str, Table],
    raw: dict[str, Any],
    *,
    custom: bool,
    standard: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> None:
    for name, spec in raw.get("tables", {}).items():
        existing = tables.get(name)
        if existing is None:
            reference = (standard or {}).get(name)
            tables[name] = _build_table(
                name, spec, custom=custom, code=10000 + len(tables), standard=reference
            )
        else:
            for column_name, column_spec in spec.get("columns", {}).items():
                existing.columns[column_name] = _column(name, column_name, column_spec, custom=custom)
        table = tables[name]
        if "duplicate_rules" in spec:
            table.duplicate_rules = [tuple(rule) for rule in spec["duplicate_rules"]]
        for key in spec.get("keys", []):
            table.keys = [k for k in table.keys if k.name != key["name"]]
            table.keys.append(
                AlternateKey(key["name"], tuple(key["columns"]), _mid(name, "key", key["name"]))
            )


_SYSTEM_LOOKUPS = frozenset({"createdby", "modifiedby", "createdonbehalfby", "modifiedonbehalfby"})
_STANDARD_ACTIVITIES = frozenset({"task", "email", "phonecall", "appointment"})


def _collection_name(child: Table, column: str, parent: str) -> str:
    """The name real orgs use for the one-to-many relationship's navigation property on ``parent``."""
    if child.logical_name == "activityparty" and column == "activityid":
        return f"{parent}_activity_parties"
    if column == "parentcustomerid":
        return f"{child.logical_name}_customer_{parent}s"
    if column == "regardingobjectid" and child.logical_name in _STANDARD_ACTIVITIES:
        return f"{parent.capitalize()}_{child.logical_name.capitalize()}s"
    if column == "primarycontactid":
        return "account_primary_contact"
    if column == "parentaccountid":
        return "account_parent_account"
    if column in _SYSTEM_LOOKUPS:
        return f"lk_{child.logical_name}_{column}"
    return f"{child.logical_name}_{column}_{parent}"


def _link_navigations(schema_tables: dict[str, Table]) -> None:
    for table in schema_tables.values():
        table.collections.clear()
    for table in schema_tables.values():
        for column in table.columns.values():
            if not column.is_lookup:
                continue
            for target in column.targets:
                parent = schema_tables.get(target)
                if parent is None:
                    continue
                name = _collection_name(table, column.logical_name, target)
                parent.collections.setdefault(name, Collection(name, table.logical_name, column.logical_name))
    for table in schema_tables.values():
        table.navigations.clear()
        for column in table.columns.values():
            if not column.is_lookup:
                continue
            targets = tuple(t for t in column.targets if t in schema_tables)
            if column.logical_name == "regardingobjectid":
                for target in targets:
                    nav = f"regardingobjectid_{target}_{table.logical_name}"
                    table.navigations[nav] = Navigation(nav, column.logical_name, (target,))
            elif column.type == "Customer" or (column.type == "Lookup" and len(targets) > 1):
                for target in targets:
                    nav = f"{column.logical_name}_{target}"
                    table.navigations[nav] = Navigation(nav, column.logical_name, (target,))
            else:
                table.navigations[column.logical_name] = Navigation(
                    column.logical_name, column.logical_name, targets
                )


def load_schema(path: str | Path | None = None) -> Schema:
    """The default tables, extended by the schema file at ``path`` (if any)."""
    tables: dict[str, Table] = {}
    reference = json.loads(STANDARD_TABLES_PATH.read_text())["tables"]
    standard = {name: table["columns"] for name, table in reference.items()}
    _merge(tables, json.loads(DEFAULT_SCHEMA_PATH.read_text()), custom=False, standard=standard)
    if path:
        _merge(tables, json.loads(Path(path).read_text()), custom=True)
    party = tables.get("activityparty")
    if party is not None:  # every activity table, custom ones included, has activity parties
        column = party.columns["activityid"]
        activities = tuple(t.logical_name for t in tables.values() if t.is_activity)
        column.targets = tuple(dict.fromkeys((*column.targets, *activities)))
    _link_navigations(tables)
    for relationship in STANDARD_MANY_TO_MANY:
        if relationship.entity1 in tables and relationship.entity2 in tables:
            tables[relationship.entity1].associations[relationship.name] = relationship
            tables[relationship.entity2].associations[relationship.name] = relationship
    return Schema(tables)
