"""Record matching (step 1): does a platform record already exist in Dynamics, and which row is it?

A configured identifier becomes a rule tree (``contact_rule`` / ``company_rule`` / ``parse_rule``) of
``Condition`` leaves — "platform field equals Dynamics column after normalisation" — joined by AND/OR.
``CandidateIndex`` indexes the candidate rows fetched by ``lookup_plan`` once per condition, so matching a
record costs one dictionary look-up per condition (no pairwise comparison). Rules: docs/matching.md.

- A condition holds only when both sides have a value and the normalised values are equal: two empty
  values never match.
- Several rows matching -> ``ambiguous``: the pick is deterministic — the earliest top-level OR branch
  that matched (e.g. LinkedIn before name+company), then active rows (``statecode`` 0 or absent) before
  inactive ones, then the most recently modified (``modifiedon``), then the lowest id.

Over 400 lines on purpose: rules, normalised keys and the candidate index are one decision (does this
record exist, and which row); splitting them would put one invariant across modules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

from core.domain.catalog import Entity, FieldType, resolve_field
from core.domain.config import SyncIdentifiers
from core.domain.normalize import ValueKind, normalize

Operator = Literal["and", "or"]

PARENT_ACCOUNT_NAME = "parentcustomerid_account/name"
"""The contact's company name in Dynamics: the name of the parent account (lookup navigation path)."""
PARENT_ACCOUNT_VALUE = "_parentcustomerid_value"
ID_COLUMN: Mapping[Entity, str] = {Entity.CONTACT: "contactid", Entity.COMPANY: "accountid"}
TABLE: Mapping[Entity, str] = {Entity.CONTACT: "contact", Entity.COMPANY: "account"}
"""Dataverse table (logical name) of each entity; its entity set for URLs comes from the adapter."""
MAX_RULE_DEPTH = 4
MAX_RULE_CONDITIONS = 20


class RuleError(ValueError):
    """A custom rule that cannot be used; ``path`` points into the JSON (e.g. ``conditions[1]``)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Condition:
    platform_field: str  # catalog name; contacts may say ``company.<field>``
    dynamics_field: str  # logical column, or ``nav/column`` for a looked-up row
    kind: ValueKind
    any_extension: bool = False  # domains only: acme.com ~ acme.es
    fallback_fields: tuple[str, ...] = ()  # platform fields tried when ``platform_field`` is empty


@dataclass(frozen=True)
class Rule:
    operator: Operator
    conditions: tuple[Rule | Condition, ...]
    label: str = "custom"


@dataclass(frozen=True)
class IdentifierConfig:
    """The matching part of ``syncIdentifiers`` (docs/contracts.md)."""

    contact_identifier: str = "name_company"
    contact_rule: Rule | None = None
    company_identifier: str = "domain"
    company_domain_any_extension: bool = False
    company_rule: Rule | None = None
    contact_linkedin_column: str | None = None
    company_domain_column: str = "websiteurl"
    company_linkedin_column: str | None = None

    @classmethod
    def from_model(cls, model: SyncIdentifiers) -> IdentifierConfig:
        """From the validated configuration model (``core.domain.config``)."""
        return cls.from_json(model.to_json())

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> IdentifierConfig:
        """Read the camelCase ``syncIdentifiers`` object; raises ``RuleError`` on a bad custom rule."""
        columns = raw.get("columns") or {}
        any_ext = bool(raw.get("companyDomainAnyExtension", False))
        contact_raw, company_raw = raw.get("contactRule"), raw.get("companyRule")
        return cls(
            contact_identifier=str(raw.get("contactIdentifier", "name_company")),
            contact_rule=parse_rule(contact_raw, Entity.CONTACT, any_extension=any_ext)
            if contact_raw
            else None,
            company_identifier=str(raw.get("companyIdentifier", "domain")),
            company_domain_any_extension=any_ext,
            company_rule=parse_rule(company_raw, Entity.COMPANY, any_extension=any_ext)
            if company_raw
            else None,
            contact_linkedin_column=columns.get("contactLinkedinUrl") or None,
            company_domain_column=columns.get("companyDomain") or "websiteurl",
            company_linkedin_column=columns.get("companyLinkedinUrl") or None,
        )


def kind_for_field(entity: Entity, platform_field: str) -> ValueKind:
    """How values of a platform field are normalised for matching."""
    name = platform_field
    target = entity
    if entity is Entity.CONTACT and name.startswith("company."):
        name, target = name[len("company.") :], Entity.COMPANY
    lowered = name.lower()
    if "linkedin" in lowered:
        return ValueKind.LINKEDIN
    if target is Entity.COMPANY and lowered in ("domain", "website"):
        return ValueKind.DOMAIN
    if target is Entity.COMPANY and lowered == "name":
        return ValueKind.COMPANY_NAME
    if target is Entity.CONTACT and lowered in ("firstname", "lastname", "fullname"):
        return ValueKind.PERSON_NAME
    resolved = resolve_field(entity, platform_field)
    if resolved is not None and resolved.type is FieldType.EMAIL:
        return ValueKind.EMAIL
    if resolved is not None and resolved.type is FieldType.PHONE:
        return ValueKind.PHONE
    return ValueKind.TEXT


def _condition(entity: Entity, platform_field: str, dynamics_field: str, *, any_extension: bool) -> Condition:
    kind = kind_for_field(entity, platform_field)
    fallback: tuple[str, ...] = ()
    if kind is ValueKind.DOMAIN and platform_field.endswith("domain"):
        fallback = (platform_field[: -len("domain")] + "website",)
    return Condition(
        platform_field,
        dynamics_field,
        kind,
        any_extension=any_extension and kind is ValueKind.DOMAIN,
        fallback_fields=fallback,
    )


def name_company_rule() -> Rule:
    return Rule(
        "and",
        (
            Condition("firstName", "firstname", ValueKind.PERSON_NAME),
            Condition("lastName", "lastname", ValueKind.PERSON_NAME),
            Condition("company.name", PARENT_ACCOUNT_NAME, ValueKind.COMPANY_NAME),
        ),
        label="name_company",
    )


def contact_rule(config: IdentifierConfig) -> Rule:
    """The rule tree of the configured contact identifier."""
    if config.contact_identifier == "custom":
        if config.contact_rule is None:
            raise RuleError("contactRule", "required when contactIdentifier is custom")
        return config.contact_rule
    if config.contact_identifier == "linkedin_or_name_company" and config.contact_linkedin_column:
        linkedin = Condition("linkedinUrl", config.contact_linkedin_column, ValueKind.LINKEDIN)
        return Rule("or", (Rule("and", (linkedin,), label="linkedin"), name_company_rule()), label="custom")
    if config.contact_identifier not in ("name_company", "linkedin_or_name_company"):
        raise RuleError("contactIdentifier", f"unknown identifier {config.contact_identifier!r}")
    # linkedin_or_name_company without a LinkedIn column configured degrades to name+company.
    return name_company_rule()


def company_rule(config: IdentifierConfig) -> Rule:
    """The rule tree of the configured company identifier."""
    if config.company_identifier == "custom":
        if config.company_rule is None:
            raise RuleError("companyRule", "required when companyIdentifier is custom")
        return config.company_rule
    domain = Condition(
        "domain",
        config.company_domain_column,
        ValueKind.DOMAIN,
        any_extension=config.company_domain_any_extension,
        fallback_fields=("website",),
    )
    domain_rule = Rule("and", (domain,), label="domain_any_extension" if domain.any_extension else "domain")
    if config.company_identifier == "domain":
        return domain_rule
    if config.company_identifier == "domain_or_name":
        name = Rule("and", (Condition("name", "name", ValueKind.COMPANY_NAME),), label="name")
        return Rule("or", (domain_rule, name))
    raise RuleError("companyIdentifier", f"unknown identifier {config.company_identifier!r}")


def rule_for(entity: Entity, config: IdentifierConfig) -> Rule:
    return contact_rule(config) if entity is Entity.CONTACT else company_rule(config)


def parse_rule(raw: object, entity: Entity, *, any_extension: bool = False, path: str = "rule") -> Rule:
    """A custom rule from its JSON (``{"operator", "conditions"}``), validated: depth <= 4, <= 20
    conditions in all, known platform fields, non-empty column names."""
    counter = [0]
    rule = _parse_rule(raw, entity, any_extension, path, 1, counter)
    return rule


def _parse_rule(
    raw: object, entity: Entity, any_extension: bool, path: str, depth: int, counter: list[int]
) -> Rule:
    if depth > MAX_RULE_DEPTH:
        raise RuleError(path, f"rules nest at most {MAX_RULE_DEPTH} levels deep")
    if not isinstance(raw, Mapping):
        raise RuleError(path, "a rule is an object with operator and conditions")
    operator = raw.get("operator")
    if operator not in ("and", "or"):
        raise RuleError(f"{path}.operator", "must be 'and' or 'or'")
    items = raw.get("conditions")
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise RuleError(f"{path}.conditions", "needs at least one condition")
    children: list[Rule | Condition] = []
    for i, item in enumerate(items):
        item_path = f"{path}.conditions[{i}]"
        if isinstance(item, Mapping) and "operator" in item:
            children.append(_parse_rule(item, entity, any_extension, item_path, depth + 1, counter))
            continue
        if not isinstance(item, Mapping):
            raise RuleError(item_path, "a condition is an object with platformField and dynamicsField")
        platform_field, dynamics_field = item.get("platformField"), item.get("dynamicsField")
        if not isinstance(platform_field, str) or resolve_field(entity, platform_field) is None:
            raise RuleError(f"{item_path}.platformField", f"unknown platform field {platform_field!r}")
        if not isinstance(dynamics_field, str) or not dynamics_field.strip():
            raise RuleError(f"{item_path}.dynamicsField", "a Dynamics column is required")
        counter[0] += 1
        if counter[0] > MAX_RULE_CONDITIONS:
            raise RuleError(path, f"at most {MAX_RULE_CONDITIONS} conditions in a rule")
        children.append(
            _condition(entity, platform_field, dynamics_field.strip(), any_extension=any_extension)
        )
    return Rule(operator, tuple(children))


def iter_conditions(rule: Rule) -> Iterable[Condition]:
    for child in rule.conditions:
        if isinstance(child, Condition):
            yield child
        else:
            yield from iter_conditions(child)


def identifiable(rule: Rule, record: Mapping[str, Any]) -> bool:
    """Whether ``record`` has the values ``rule`` compares (every condition of an AND, one branch of an
    OR). A record that is not identifiable can never be found again by the rule: creating it in Dynamics
    would create it again on every export."""
    if rule.operator == "or":
        return any(
            identifiable(c, record) if isinstance(c, Rule) else platform_key(record, c) is not None
            for c in rule.conditions
        )
    return all(
        identifiable(c, record) if isinstance(c, Rule) else platform_key(record, c) is not None
        for c in rule.conditions
    )


# ------------------------------------------------------------------------------------------------
# Values on both sides
# ------------------------------------------------------------------------------------------------


def platform_value(record: Mapping[str, Any], platform_field: str) -> Any:
    """The raw value of ``field`` (``company.<field>`` reads the embedded company)."""
    value: Any = record
    for part in platform_field.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


@lru_cache(maxsize=1 << 14)  # a chunk's working set; bounded so a long-running worker stays flat
def _normalize_str(kind: ValueKind, value: str, any_extension: bool) -> str | None:
    return normalize(kind, value, any_extension=any_extension)


def normalized(kind: ValueKind, value: object, *, any_extension: bool = False) -> str | None:
    """``normalize`` with a cache for strings (names and companies repeat across a batch)."""
    if type(value) is str:
        return _normalize_str(kind, value, any_extension)
    return normalize(kind, value, any_extension=any_extension)


def platform_key(record: Mapping[str, Any], condition: Condition) -> str | None:
    """The normalised platform value of a condition (its fallbacks when the field is empty)."""
    for name in (condition.platform_field, *condition.fallback_fields):
        key = normalized(condition.kind, platform_value(record, name), any_extension=condition.any_extension)
        if key is not None:
            return key
    return None


def dynamics_value(
    row: Mapping[str, Any], column: str, account_names: Mapping[str, str] | None = None
) -> Any:
    """A column of a Web API row; ``nav/column`` reads an ``$expand``-ed row. The parent account name
    falls back to ``account_names[_parentcustomerid_value]`` when the expansion is absent."""
    if "/" not in column:
        return row.get(column)
    nav, _, col = column.rpartition("/")
    expanded = row.get(nav)
    if isinstance(expanded, Mapping):
        return expanded.get(col)
    if column == PARENT_ACCOUNT_NAME and account_names is not None:
        parent = row.get(PARENT_ACCOUNT_VALUE)
        if isinstance(parent, str):
            return account_names.get(parent.lower()) or account_names.get(parent)
    return None


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------


class MatchStatus(StrEnum):
    NONE = "none"
    MATCHED = "matched"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class ConditionMatch:
    platform_field: str
    dynamics_field: str
    value: str  # the normalised value both sides share (or, for searched keys, the platform side)


@dataclass(frozen=True)
class MatchResult:
    status: MatchStatus
    dynamics_id: str | None = None
    rule: str | None = None  # label of the rule that matched: linkedin, name_company, domain, name, custom
    conditions: tuple[ConditionMatch, ...] = ()  # the conditions that held for the picked row
    candidates: tuple[str, ...] = ()  # every matching row id, pick first
    searched: tuple[ConditionMatch, ...] = field(default=())  # normalised platform keys looked for

    def to_json(self) -> dict[str, Any]:
        """camelCase form for the per-record export report."""

        def cond(c: ConditionMatch) -> dict[str, str]:
            return {"platformField": c.platform_field, "dynamicsField": c.dynamics_field, "value": c.value}

        return {
            "status": self.status.value,
            "dynamicsId": self.dynamics_id,
            "rule": self.rule,
            "conditions": [cond(c) for c in self.conditions],
            "candidates": list(self.candidates),
            "searched": [cond(c) for c in self.searched],
        }


_IndexKey = tuple[str, ValueKind, bool]
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def _modified(row: Mapping[str, Any]) -> dt.datetime:
    raw = row.get("modifiedon")
    if not isinstance(raw, str):
        return _EPOCH
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return _EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class CandidateIndex:
    """Candidate Dynamics rows indexed by the normalised value of every column the rule compares."""

    def __init__(
        self,
        rule: Rule,
        rows: Iterable[Mapping[str, Any]],
        *,
        id_column: str,
        account_names: Mapping[str, str] | None = None,
    ) -> None:
        self.rule = rule
        self.id_column = id_column
        self._rows: dict[str, Mapping[str, Any]] = {}
        for row in rows:
            row_id = row.get(id_column)
            if isinstance(row_id, str) and row_id:
                self._rows[row_id.lower()] = row  # the same row may come back from several queries
        names = {k.lower(): v for k, v in account_names.items()} if account_names else None
        self._conditions = tuple(iter_conditions(rule))
        self._index: dict[_IndexKey, dict[str, set[str]]] = {}
        for condition in self._conditions:
            ikey = (condition.dynamics_field, condition.kind, condition.any_extension)
            if ikey in self._index:
                continue
            bucket: dict[str, set[str]] = {}
            for row_id, row in self._rows.items():
                value = dynamics_value(row, condition.dynamics_field, names)
                key = normalized(condition.kind, value, any_extension=condition.any_extension)
                if key is not None:
                    bucket.setdefault(key, set()).add(row_id)
            self._index[ikey] = bucket
        self._order = {
            row_id: (
                0 if row.get("statecode") in (None, 0) else 1,
                -_modified(row).timestamp(),
                row_id,
            )
            for row_id, row in self._rows.items()
        }

    def __len__(self) -> int:
        return len(self._rows)

    def row(self, dynamics_id: str) -> Mapping[str, Any] | None:
        return self._rows.get(dynamics_id.lower())

    def _ids(self, condition: Condition, key: str | None) -> set[str]:
        if key is None:
            return set()
        return self._index[(condition.dynamics_field, condition.kind, condition.any_extension)].get(
            key, set()
        )

    def _eval(self, node: Rule | Condition, keys: Mapping[int, str | None]) -> set[str]:
        if isinstance(node, Condition):
            return self._ids(node, keys[id(node)])
        if node.operator == "and":
            result: set[str] | None = None
            for child in node.conditions:
                ids = self._eval(child, keys)
                result = ids if result is None else result & ids
                if not result:
                    return set()
            return set(result or ())
        union: set[str] = set()
        for child in node.conditions:
            union |= self._eval(child, keys)
        return union

    def _explain(
        self, node: Rule | Condition, keys: Mapping[int, str | None], row_id: str, label: str
    ) -> tuple[str, list[ConditionMatch]] | None:
        """The label and conditions by which ``row_id`` satisfies ``node`` (first OR branch that does)."""
        if isinstance(node, Condition):
            key = keys[id(node)]
            if key is not None and row_id in self._ids(node, key):
                return label, [ConditionMatch(node.platform_field, node.dynamics_field, key)]
            return None
        node_label = node.label if node.label != "custom" else label
        if node.operator == "or":
            for child in node.conditions:
                found = self._explain(child, keys, row_id, node_label)
                if found is not None:
                    return found
            return None
        matched: list[ConditionMatch] = []
        for child in node.conditions:
            found = self._explain(child, keys, row_id, node_label)
            if found is None:
                return None
            matched.extend(found[1])
        return node_label, matched

    def match(self, record: Mapping[str, Any]) -> MatchResult:
        """Match one platform record against the indexed candidates."""
        keys = {id(c): platform_key(record, c) for c in self._conditions}
        searched = tuple(
            ConditionMatch(c.platform_field, c.dynamics_field, k)
            for c in self._conditions
            if (k := keys[id(c)]) is not None
        )
        found = self._eval(self.rule, keys)
        if not found:
            return MatchResult(MatchStatus.NONE, searched=searched)
        ordered = list(found)
        if len(found) > 1:
            tiers = self.rule.conditions if self.rule.operator == "or" else (self.rule,)
            tier_sets = [
                self._eval(child, keys) if isinstance(child, Rule) else self._ids(child, keys[id(child)])
                for child in tiers
            ]

            def tier(row_id: str) -> int:
                return next(i for i, ids in enumerate(tier_sets) if row_id in ids)

            ordered.sort(key=lambda rid: (tier(rid), *self._order[rid]))
        pick = ordered[0]
        explained = self._explain(self.rule, keys, pick, self.rule.label)
        label, conditions = explained if explained is not None else (self.rule.label, [])
        picked_row = self._rows[pick]
        dynamics_id = str(picked_row.get(self.id_column))
        candidate_ids = tuple(str(self._rows[rid].get(self.id_column)) for rid in ordered)
        return MatchResult(
            MatchStatus.AMBIGUOUS if len(ordered) > 1 else MatchStatus.MATCHED,
            dynamics_id=dynamics_id,
            rule=label,
            conditions=tuple(conditions),
            candidates=candidate_ids,
            searched=searched,
        )


def match_records(
    rule: Rule,
    records: Iterable[Mapping[str, Any]],
    rows: Iterable[Mapping[str, Any]],
    *,
    id_column: str,
    account_names: Mapping[str, str] | None = None,
) -> list[MatchResult]:
    """Match a batch: one index over ``rows``, one result per record, in order."""
    index = CandidateIndex(rule, rows, id_column=id_column, account_names=account_names)
    return [index.match(record) for record in records]


# ------------------------------------------------------------------------------------------------
# Duplicates inside one batch
# ------------------------------------------------------------------------------------------------

_Signature = tuple[tuple[int, str], ...]


def _signatures(node: Rule | Condition, record: Mapping[str, Any], ids: Mapping[int, int]) -> set[_Signature]:
    if isinstance(node, Condition):
        key = platform_key(record, node)
        return {((ids[id(node)], key),)} if key is not None else set()
    if node.operator == "or":
        out: set[_Signature] = set()
        for child in node.conditions:
            out |= _signatures(child, record, ids)
        return out
    acc: set[_Signature] = {()}
    for child in node.conditions:
        child_sigs = _signatures(child, record, ids)
        acc = {a + b for a in acc for b in child_sigs}
        if not acc:
            return set()
    return acc


def duplicate_groups(rule: Rule, records: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """Indexes of records in one batch that the rule says are the same record (transitively).

    Two records are the same when the rule holds between their values (e.g. same LinkedIn profile, or
    same first+last+company name). The export must create at most one Dynamics record per group; groups
    of one are omitted. Each group is in input order, groups ordered by their first member.
    """
    ids = {id(c): i for i, c in enumerate(iter_conditions(rule))}
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[_Signature, int] = {}
    for i, record in enumerate(records):
        for signature in _signatures(rule, record, ids):
            j = first_with.setdefault(signature, i)
            if j != i:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(records)):
        groups.setdefault(find(i), []).append(i)
    return [members for _, members in sorted(groups.items()) if len(members) > 1]
