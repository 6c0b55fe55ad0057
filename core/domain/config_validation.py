"""Rules a Dynamics configuration must satisfy before it is saved (pure; no I/O).

``validate_config`` returns every problem at once, each with a JSON pointer into the whole configuration
document (e.g. ``/fieldMapping/contacts/3/platformField``). Checks that need live Dynamics metadata
(column exists, type compatibility, read-only columns) plug in as ``MetadataCheck`` objects: the
configuration service runs them after these rules; their ``error`` problems refuse the save (the red icon)
and their ``warning`` problems are reported but do not block it (the yellow icon).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pydantic import ValidationError

from core.domain.catalog import (
    COMPANY_FIELDS,
    COMPANY_PREFIX,
    CONTACT_FIELDS,
    Entity,
    PlatformField,
    resolve_field,
)
from core.domain.config import (
    MAX_RULE_CONDITIONS,
    MAX_RULE_DEPTH,
    CompanyIdentifier,
    Condition,
    ContactIdentifier,
    DynamicsConfig,
    EngagementMapping,
    FixedValueMapping,
    ManualExportMapping,
    PlatformFieldMapping,
    Rule,
)
from core.domain.config import (
    Mapping as FieldMappingEntry,
)
from core.domain.values import check_value

Path = tuple[str | int, ...]


class Severity(StrEnum):
    ERROR = "error"  # refuses the save
    WARNING = "warning"  # reported; the save goes ahead


@dataclass(frozen=True)
class Problem:
    pointer: str
    message: str
    severity: Severity = Severity.ERROR

    def as_json(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class MetadataCheck(Protocol):
    """A check against live Dynamics metadata (added with the Dataverse work).

    Called with the workspace and a configuration that already passed ``validate_config``; returns its
    problems (pointers into the configuration). It may do I/O; it must not raise for ordinary findings.
    """

    def __call__(self, workspace_id: str, config: DynamicsConfig) -> Sequence[Problem]: ...


def pointer(path: Iterable[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _problem(path: Path, message: str) -> Problem:
    return Problem(pointer(path), message)


def validate_config(config: DynamicsConfig, custom_fields: Iterable[PlatformField] = ()) -> list[Problem]:
    """Every rule of the four steps; an empty list means the configuration may be saved."""
    custom = tuple(custom_fields)
    problems: list[Problem] = []
    problems += _sync_identifiers(config, custom)
    problems += _field_mapping(config, custom)
    problems += _campaign_mapping(config)
    problems += _user_mapping(config)
    return problems


# --- step 1 -----------------------------------------------------------------------------------------


def _sync_identifiers(config: DynamicsConfig, custom: tuple[PlatformField, ...]) -> list[Problem]:
    sync = config.sync_identifiers
    base: Path = ("syncIdentifiers",)
    problems: list[Problem] = []
    if sync.contact_identifier is ContactIdentifier.CUSTOM and sync.contact_rule is None:
        problems.append(_problem((*base, "contactRule"), "required when contactIdentifier is custom"))
    if sync.company_identifier is CompanyIdentifier.CUSTOM and sync.company_rule is None:
        problems.append(_problem((*base, "companyRule"), "required when companyIdentifier is custom"))
    if sync.contact_rule is not None:
        problems += _rule(sync.contact_rule, (*base, "contactRule"), Entity.CONTACT, custom)
    if sync.company_rule is not None:
        problems += _rule(sync.company_rule, (*base, "companyRule"), Entity.COMPANY, custom)
    columns = (*base, "columns")
    if (
        sync.contact_identifier is ContactIdentifier.LINKEDIN_OR_NAME_COMPANY
        and not sync.columns.contact_linkedin_url
    ):
        problems.append(
            _problem(
                (*columns, "contactLinkedinUrl"),
                "name the Dynamics column holding the LinkedIn URL (contactIdentifier uses it)",
            )
        )
    if (
        sync.company_identifier in {CompanyIdentifier.DOMAIN, CompanyIdentifier.DOMAIN_OR_NAME}
        and not sync.columns.company_domain
    ):
        problems.append(
            _problem(
                (*columns, "companyDomain"),
                "name the Dynamics column holding the domain (companyIdentifier uses it)",
            )
        )
    if sync.company_domain_any_extension and sync.company_identifier is CompanyIdentifier.CUSTOM:
        problems.append(
            _problem(
                (*base, "companyDomainAnyExtension"),
                "'any extension' is an option of the domain identifiers, not of a custom rule",
            )
        )
    if sync.export_missing_contacts and not any(
        isinstance(m, PlatformFieldMapping) for m in config.field_mapping.contacts
    ):
        # A warning, not an error: step 1 may be saved before step 2 maps anything.
        problems.append(
            Problem(
                pointer((*base, "exportMissingContacts")),
                "contacts not in Dynamics can be exported only once the contacts tab of the field mapping "
                "(step 2) maps a platform field: until then their events are reported skipped",
                Severity.WARNING,
            )
        )
    return problems


def _rule(rule: Rule, path: Path, entity: Entity, custom: tuple[PlatformField, ...]) -> list[Problem]:
    problems: list[Problem] = []
    count = 0

    def walk(node: Rule, node_path: Path, depth: int) -> None:
        nonlocal count
        if depth > MAX_RULE_DEPTH:
            problems.append(_problem(node_path, f"rule nested deeper than {MAX_RULE_DEPTH} levels"))
            return
        if not node.conditions:
            problems.append(_problem((*node_path, "conditions"), "a rule group needs at least one condition"))
        for index, child in enumerate(node.conditions):
            child_path = (*node_path, "conditions", index)
            if isinstance(child, Rule):
                walk(child, child_path, depth + 1)
                continue
            count += 1
            if count == MAX_RULE_CONDITIONS + 1:
                problems.append(
                    _problem(child_path, f"a rule may have at most {MAX_RULE_CONDITIONS} conditions")
                )
            problems.extend(_condition(child, child_path, entity, custom))

    walk(rule, path, 1)
    return problems


def _condition(
    cond: Condition, path: Path, entity: Entity, custom: tuple[PlatformField, ...]
) -> list[Problem]:
    if resolve_field(entity, cond.platform_field, custom) is None:
        return [_problem((*path, "platformField"), _unknown_field_message(entity, cond.platform_field))]
    return []


def _unknown_field_message(entity: Entity, name: str) -> str:
    shown = name if len(name) <= 60 else name[:57] + "..."
    return f"unknown {entity.value} field {shown!r}"


# --- step 2 -----------------------------------------------------------------------------------------


def _same_mapping(a: FieldMappingEntry, b: FieldMappingEntry) -> bool:
    return type(a) is type(b) and a.dynamics_field == b.dynamics_field and a.mode == b.mode


def _field_mapping(config: DynamicsConfig, custom: tuple[PlatformField, ...]) -> list[Problem]:
    tabs = {Entity.CONTACT: config.field_mapping.contacts, Entity.COMPANY: config.field_mapping.companies}
    problems: list[Problem] = []
    for entity, mappings in tabs.items():
        other = tabs[Entity.COMPANY if entity is Entity.CONTACT else Entity.CONTACT]
        tab: Path = ("fieldMapping", "contacts" if entity is Entity.CONTACT else "companies")
        seen_columns: dict[str, int] = {}
        engagement_at: int | None = None
        for index, mapping in enumerate(mappings):
            path = (*tab, index)
            if mapping.dynamics_field in seen_columns:
                problems.append(
                    _problem(
                        (*path, "dynamicsField"),
                        f"column {mapping.dynamics_field!r} is already mapped at "
                        f"{pointer((*tab, seen_columns[mapping.dynamics_field]))}",
                    )
                )
            else:
                seen_columns[mapping.dynamics_field] = index
            if isinstance(mapping, PlatformFieldMapping):
                problems += _platform_field(mapping, path, entity, other, custom)
            elif isinstance(mapping, FixedValueMapping):
                if mapping.value is None:
                    problems.append(_problem((*path, "value"), "a fixed value is required"))
                elif (why := check_value(mapping.value_type, mapping.value)) is not None:
                    problems.append(
                        _problem((*path, "value"), f"does not fit {mapping.value_type.value}: {why}")
                    )
            elif isinstance(mapping, ManualExportMapping):
                if "value" in mapping.model_fields_set:
                    problems.append(
                        _problem((*path, "value"), "manual-export mappings take their value at export time")
                    )
            elif isinstance(mapping, EngagementMapping):
                if engagement_at is not None:
                    problems.append(
                        _problem(
                            (*path, "kind"),
                            "only one engagement mapping per tab "
                            f"(another is at {pointer((*tab, engagement_at))})",
                        )
                    )
                else:
                    engagement_at = index
                if mapping.value is None:
                    problems.append(
                        _problem((*path, "value"), "an engagement mapping needs the value to export")
                    )
                elif (why := check_value(mapping.value_type, mapping.value)) is not None:
                    problems.append(
                        _problem((*path, "value"), f"does not fit {mapping.value_type.value}: {why}")
                    )
    return problems


def _platform_field(
    mapping: PlatformFieldMapping,
    path: Path,
    entity: Entity,
    other_tab: Sequence[FieldMappingEntry],
    custom: tuple[PlatformField, ...],
) -> list[Problem]:
    name = mapping.platform_field
    field_path = (*path, "platformField")
    crossing: tuple[str, str] | None = None  # (field name in the other tab, what it is)
    if entity is Entity.CONTACT and name.startswith(COMPANY_PREFIX):
        crossing = (name[len(COMPANY_PREFIX) :], "a company field")
    elif entity is Entity.COMPANY and name not in COMPANY_FIELDS and name in CONTACT_FIELDS:
        crossing = (name, "a contact field")
    if crossing is None or entity is Entity.CONTACT:
        if resolve_field(entity, name, custom) is None:
            return [_problem(field_path, _unknown_field_message(entity, name))]
    if crossing is None:
        return []
    other_name, what = crossing
    counterparts = {other_name, other_name if entity is Entity.CONTACT else f"{COMPANY_PREFIX}{other_name}"}
    tab_name = "contacts" if entity is Entity.CONTACT else "companies"
    other_tab_name = "companies" if entity is Entity.CONTACT else "contacts"
    # The setup guide's warning: "Don't map a Company field in the Contacts tab (or a Contact field in the
    # Companies tab). This can cause export errors. If you must map the same field in both tabs, make
    # sure it's mapped the same in both places." Storing the company's name as text on the contact is a
    # common need, so the crossing itself only warns; the same column mapped differently in the other
    # tab is what makes the two exports fight over it, and stays an error.
    same_column = [
        (index, m) for index, m in enumerate(other_tab) if m.dynamics_field == mapping.dynamics_field
    ]
    for index, other in same_column:
        if not (
            isinstance(other, PlatformFieldMapping)
            and other.platform_field in counterparts
            and _same_mapping(other, mapping)
        ):
            return [
                _problem(
                    field_path,
                    f"{name!r} is {what} in the {tab_name} tab and column {mapping.dynamics_field!r} is "
                    f"mapped differently in the {other_tab_name} tab (at "
                    f"{pointer(('fieldMapping', other_tab_name, index))}): map it the same way in both "
                    "tabs, or remove one",
                )
            ]
    if same_column:
        return []  # mapped the same in both places, as the setup guide asks
    return [
        Problem(
            pointer(field_path),
            f"{name!r} is {what} in the {tab_name} tab: this can cause export errors; if the "
            f"{other_tab_name} tab maps column {mapping.dynamics_field!r} too, map it the same way there",
            Severity.WARNING,
        )
    ]


# --- steps 3 and 4 ----------------------------------------------------------------------------------


def _campaign_mapping(config: DynamicsConfig) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for key, column in config.campaign_mapping.to_json().items():
        if column is None:
            continue
        if column in seen:
            problems.append(
                _problem(("campaignMapping", key), f"column {column!r} is already used by {seen[column]!r}")
            )
        else:
            seen[column] = key
    return problems


def _user_mapping(config: DynamicsConfig) -> list[Problem]:
    problems: list[Problem] = []
    um = config.user_mapping
    for member, attr, items in (
        ("identities", "identity_id", um.identities),
        ("users", "user_id", um.users),
    ):
        seen: dict[str, int] = {}
        json_name = "identityId" if attr == "identity_id" else "userId"
        for index, item in enumerate(items):
            key = getattr(item, attr)
            if key in seen:
                problems.append(
                    _problem(
                        ("userMapping", member, index, json_name),
                        f"already mapped at {pointer(('userMapping', member, seen[key]))}",
                    )
                )
            else:
                seen[key] = index
    return problems


def problems_from_validation_error(
    data: Any, exc: ValidationError, prefix: Sequence[str | int] = ()
) -> list[Problem]:
    """Pydantic errors as problems pointing into the *input* (``prefix`` + path in ``data``).

    Pydantic's ``loc`` contains union tags (e.g. ``platform_field``) that are not part of the input; they
    are dropped by walking the input alongside. A bad or missing ``kind`` points at ``.../kind``.
    """
    problems: list[Problem] = []
    for err in exc.errors(include_url=False, include_input=False, include_context=True):
        path: list[str | int] = list(prefix)
        current: Any = data
        loc = err["loc"]
        for position, part in enumerate(loc):
            last = position == len(loc) - 1
            if isinstance(current, dict) and isinstance(part, str) and part in current:
                current = current[part]
                path.append(part)
            elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
                current = current[part]
                path.append(part)
            elif isinstance(current, dict) and isinstance(part, str) and last:
                path.append(part)  # a missing member: point where it belongs
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown member"
        elif err["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            path.append(str(err.get("ctx", {}).get("discriminator", "kind")).strip("'"))
        problems.append(Problem(pointer(path), message))
    return problems
