"""The configuration check against live Dynamics metadata (a ``MetadataCheck`` for the config service).

Every save and validate of a configuration runs it after the pure rules (``validate_config``). It reads
the ``contact`` and ``account`` columns (shared metadata cache) and the mapped systemusers, then reports,
with a JSON pointer into the configuration:

* step 2, both tabs: the column exists; a platform field's type fits it (``check_compatibility``: red ->
  error, yellow -> warning); fixed and engagement values are converted now (``conversion.convert``), so a
  bad option label or a too-long text is an error on ``.../value``; manual-export types are checked like
  platform fields; read-only columns are errors.
* step 1: the identifier columns (``syncIdentifiers.columns``) and every custom-rule ``dynamicsField``
  exist and can hold the value compared with them.
* step 3: campaign columns exist on ``contact`` and take the property the way the activity writer
  fills them (``campaign_properties.column_value``): text columns always, numbers for the opens/clicks
  counts, choice / multi-select columns for the other properties with a warning (labels must match).
* step 4: every ``dynamicsUserId`` and the default owner are existing, enabled systemusers.

Errors refuse the save (the red icon); warnings are returned with it. A workspace without a connection,
one that must be reconnected, or a Dynamics that does not answer gets one warning ("not verified against
Dynamics: ...") and is not blocked: the configuration can be prepared before connecting.

Wiring: the composition root (``core.bootstrap``) gives the configuration service this check on the
app's ``FieldsService``; tests build their ``App`` with the checks they want.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from core.domain.catalog import Entity, PlatformField, resolve_field
from core.domain.compatibility import Level, campaign_fit, check_compatibility, matrix_cell
from core.domain.config import (
    Condition,
    DynamicsConfig,
    EngagementMapping,
    FixedValueMapping,
    ManualExportMapping,
    PlatformFieldMapping,
    Rule,
)
from core.domain.config_validation import Path, Problem, Severity, pointer
from core.domain.connection import NotConnected, ReconnectRequired
from core.domain.conversion import NO_VALUE, ConversionError, convert
from core.domain.dynamics_metadata import AttributeType, DynamicsColumn
from core.services.dynamics.fields import DynamicsUnavailable, FieldsService, SystemUser

Columns = Mapping[str, DynamicsColumn]

NOT_VERIFIED = "not verified against Dynamics"
_TEXT_TYPES = frozenset({AttributeType.STRING, AttributeType.MEMO})


@dataclass(frozen=True)
class DynamicsMetadata:
    """What the check reads from Dynamics: columns per table and the mapped users that exist."""

    contact: Columns
    account: Columns
    users: Mapping[str, SystemUser]  # lowercase systemuserid -> user

    def table(self, entity: Entity) -> tuple[str, Columns]:
        return ("contact", self.contact) if entity is Entity.CONTACT else ("account", self.account)


def _error(path: Path, message: str) -> Problem:
    return Problem(pointer(path), message, Severity.ERROR)


def _warning(path: Path, message: str) -> Problem:
    return Problem(pointer(path), message, Severity.WARNING)


def _missing(table: str, name: str, columns: Columns) -> str:
    message = f"column {name!r} does not exist in the Dynamics {table} table"
    close = difflib.get_close_matches(name, list(columns), n=1, cutoff=0.75)
    return message + (f" (did you mean {close[0]!r}?)" if close else "")


def _describe(column: DynamicsColumn) -> str:
    return f"{column.logical_name!r} ({column.attribute_type.value})"


def _icon(path: Path, level: Level, head: str, reasons: Sequence[str]) -> list[Problem]:
    if level is Level.OK:
        return []
    message = f"{head}: {'; '.join(reasons)}"
    return [_error(path, message) if level is Level.ERROR else _warning(path, message)]


# --- step 2 -----------------------------------------------------------------------------------------


def _value_problems(
    mapping: FixedValueMapping | EngagementMapping, column: DynamicsColumn, path: Path
) -> list[Problem]:
    """A concrete value: impossible types and read-only columns are errors; otherwise convert it now."""
    what = "fixed value" if isinstance(mapping, FixedValueMapping) else "engagement value"
    field_path = (*path, "dynamicsField")
    level, why = matrix_cell(mapping.value_type, column.attribute_type)
    if level is Level.ERROR:
        return [_error(field_path, f"{what} -> {_describe(column)}: {why}")]
    if column.is_read_only:
        return [_error(field_path, f"{what} -> {_describe(column)}: {column.logical_name} is read-only")]
    try:
        converted = convert(mapping.value, mapping.value_type, column, field=what)
    except ConversionError as exc:
        return [_error((*path, "value"), f"does not fit column {_describe(column)}: {exc.reason}")]
    problems: list[Problem] = []
    if converted is NO_VALUE:
        problems.append(_warning((*path, "value"), "the value is empty: nothing will be written"))
    # What is left of the icon's reasons are the column's own limits (create-only, update-only, date only).
    compat = check_compatibility(mapping.value_type, column)
    for reason in compat.reasons if compat.level is not Level.OK else ():
        if reason != why:
            problems.append(_warning(field_path, f"{what} -> {_describe(column)}: {reason}"))
    return problems


def _mapping_problems(
    config: DynamicsConfig, metadata: DynamicsMetadata, custom: Sequence[PlatformField]
) -> Iterator[Problem]:
    tabs = (
        ("contacts", Entity.CONTACT, config.field_mapping.contacts),
        ("companies", Entity.COMPANY, config.field_mapping.companies),
    )
    for tab, entity, mappings in tabs:
        table, columns = metadata.table(entity)
        for index, mapping in enumerate(mappings):
            path: Path = ("fieldMapping", tab, index)
            column = columns.get(mapping.dynamics_field)
            if column is None:
                yield _error((*path, "dynamicsField"), _missing(table, mapping.dynamics_field, columns))
                continue
            if isinstance(mapping, FixedValueMapping | EngagementMapping):
                yield from _value_problems(mapping, column, path)
                continue
            if isinstance(mapping, PlatformFieldMapping):
                field = resolve_field(entity, mapping.platform_field, custom)
                if field is None:  # validate_config reported it already
                    continue
                field_type, head = field.type, f"{mapping.platform_field!r} -> {_describe(column)}"
            else:
                assert isinstance(mapping, ManualExportMapping)
                field_type, head = mapping.value_type, f"manual-export value -> {_describe(column)}"
            compat = check_compatibility(field_type, column)
            yield from _icon((*path, "dynamicsField"), compat.level, head, compat.reasons)


# --- step 1 -----------------------------------------------------------------------------------------


def _identifier_problems(
    config: DynamicsConfig, metadata: DynamicsMetadata, custom: Sequence[PlatformField]
) -> Iterator[Problem]:
    sync = config.sync_identifiers
    base: Path = ("syncIdentifiers", "columns")
    for key, entity, name in (
        ("contactLinkedinUrl", Entity.CONTACT, sync.columns.contact_linkedin_url),
        ("companyDomain", Entity.COMPANY, sync.columns.company_domain),
        ("companyLinkedinUrl", Entity.COMPANY, sync.columns.company_linkedin_url),
    ):
        if name is None:
            continue
        table, columns = metadata.table(entity)
        column = columns.get(name)
        if column is None:
            yield _error((*base, key), _missing(table, name, columns))
        elif column.attribute_type not in _TEXT_TYPES:
            yield _error(
                (*base, key),
                f"{_describe(column)} cannot hold a URL or domain: identifiers are compared as text, "
                "choose a text column (String or Memo)",
            )
    for key, entity, rule in (
        ("contactRule", Entity.CONTACT, sync.contact_rule),
        ("companyRule", Entity.COMPANY, sync.company_rule),
    ):
        if rule is not None:
            yield from _rule_problems(rule, ("syncIdentifiers", key), entity, metadata, custom)


def _conditions(rule: Rule, path: Path) -> Iterator[tuple[Condition, Path]]:
    for index, child in enumerate(rule.conditions):
        child_path = (*path, "conditions", index)
        if isinstance(child, Rule):
            yield from _conditions(child, child_path)
        else:
            yield child, child_path


def _rule_problems(
    rule: Rule, path: Path, entity: Entity, metadata: DynamicsMetadata, custom: Sequence[PlatformField]
) -> Iterator[Problem]:
    table, columns = metadata.table(entity)
    for condition, at in _conditions(rule, path):
        column = columns.get(condition.dynamics_field)
        if column is None:
            yield _error((*at, "dynamicsField"), _missing(table, condition.dynamics_field, columns))
            continue
        field = resolve_field(entity, condition.platform_field, custom)
        if field is None:  # validate_config reported it already
            continue
        level, why = matrix_cell(field.type, column.attribute_type)
        if level is Level.ERROR:
            yield _error(
                (*at, "dynamicsField"),
                f"{condition.platform_field!r} cannot be compared with {_describe(column)}: {why}",
            )


# --- steps 3 and 4 ----------------------------------------------------------------------------------


def _campaign_problems(config: DynamicsConfig, metadata: DynamicsMetadata) -> Iterator[Problem]:
    for key, name in config.campaign_mapping.to_json().items():
        if name is None:
            continue
        path: Path = ("campaignMapping", key)
        column = metadata.contact.get(name)
        if column is None:
            yield _error(path, _missing("contact", name, metadata.contact))
            continue
        field_type, limits = campaign_fit(key, column)
        if field_type is None:
            yield _error(path, f"{key} -> {_describe(column)}: {limits}")
            continue
        compat = check_compatibility(field_type, column)
        reasons = [*(compat.reasons if compat.level is not Level.OK else ()), *([limits] if limits else [])]
        level = Level.WARNING if limits and compat.level is Level.OK else compat.level
        yield from _icon(path, level, f"{key} -> {_describe(column)}", reasons)


def _user_ids(config: DynamicsConfig) -> Iterator[tuple[Path, str]]:
    um = config.user_mapping
    for index, identity in enumerate(um.identities):
        yield ("userMapping", "identities", index, "dynamicsUserId"), str(identity.dynamics_user_id)
    for index, user in enumerate(um.users):
        yield ("userMapping", "users", index, "dynamicsUserId"), str(user.dynamics_user_id)
    if um.default_owner_id is not None:
        yield ("userMapping", "defaultOwnerId"), str(um.default_owner_id)


def _user_problems(config: DynamicsConfig, metadata: DynamicsMetadata) -> Iterator[Problem]:
    for path, user_id in _user_ids(config):
        user = metadata.users.get(user_id.lower())
        if user is None:
            yield _error(path, f"Dynamics user {user_id} does not exist in the connected environment")
        elif not user.enabled:
            yield _error(path, f"Dynamics user {user.label} is disabled: it cannot own or create records")


# --- the check ----------------------------------------------------------------------------------------


def metadata_problems(
    config: DynamicsConfig, metadata: DynamicsMetadata, custom: Iterable[PlatformField] = ()
) -> list[Problem]:
    """Every problem of ``config`` against ``metadata`` (pure: the metadata was read before)."""
    custom_fields = list(custom)
    problems: list[Problem] = []
    problems += _identifier_problems(config, metadata, custom_fields)
    problems += _mapping_problems(config, metadata, custom_fields)
    problems += _campaign_problems(config, metadata)
    problems += _user_problems(config, metadata)
    return problems


def not_verified(reason: str) -> Problem:
    return Problem("", f"{NOT_VERIFIED}: {reason}", Severity.WARNING)


class DynamicsMetadataCheck:
    """``MetadataCheck`` reading the workspace's Dynamics through ``FieldsService``."""

    def __init__(self, service: FieldsService) -> None:
        self._service = service

    def read(self, workspace_id: str, config: DynamicsConfig) -> DynamicsMetadata:
        service = self._service
        _, contact = service.columns(workspace_id, "contact")
        _, account = service.columns(workspace_id, "account")
        users = service.system_users(workspace_id, (user_id for _, user_id in _user_ids(config)))
        return DynamicsMetadata(contact, account, users)

    def __call__(self, workspace_id: str, config: DynamicsConfig) -> Sequence[Problem]:
        service = self._service
        try:
            metadata = self.read(workspace_id, config)
        except NotConnected:
            return [not_verified("not connected")]
        except ReconnectRequired as exc:
            return [not_verified(f"the Dynamics connection must be reconnected ({exc.reason})")]
        except DynamicsUnavailable as exc:
            return [not_verified(exc.reason)]
        return metadata_problems(config, metadata, service.custom_fields(workspace_id))
