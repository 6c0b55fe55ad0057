"""Which Dataverse rows to fetch so that a batch of platform records finds every candidate match.

Pure decisions only: which conditions to search (here) and which value variants to search for
(``core.domain.lookup_values``). The plan is data
(:class:`ValueSearch` / :class:`ClauseSearch` over :class:`Contains` / :class:`OneOf` terms); the adapter
``core.adapters.dataverse.lookup_queries`` writes it as OData ``$filter`` strings, split so that each
URL fits, and the caller sends them and feeds the rows to ``matching.CandidateIndex``, which decides
exactly. The searches therefore only need to be a *superset*: wide enough that no real match is missed,
narrow enough to stay cheap. See docs/matching.md.

- Only the conditions needed to find every possible match are searched: for an AND the most selective
  one (a record matching the AND matches each part), for an OR every branch. A name searched for an AND
  is paired with a name-like sibling's values (``(lastname in ['Smith'] and firstname in ['Ann']) or
  ...``), so a chunk does not read every namesake in Dynamics (see ``narrowing_sibling``).
- Dataverse compares strings case- and accent-insensitively (``_CI_AI`` collation) and ignores trailing
  spaces, but not punctuation or URL variants: names and e-mails are searched as whole values over their
  variant forms (typographic apostrophes, ``Acme, Inc.`` vs ``Acme Inc``); LinkedIn URLs as the fragment
  ``/in/<slug>`` (so ``http://www.LinkedIn.com/in/Jane-Doe/?trk=x`` is found); domains as the fragment
  ``acme.com`` (``acme.`` for "any extension").

Just over 400 lines: the cover of a rule and the narrowing of its name pairs are one decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.domain.catalog import Entity
from core.domain.lookup_values import (
    BROAD_KINDS,
    SHORT_FRAGMENT,
    broad_fragments,
    collation_key,
    condition_values,
)
from core.domain.matching import (
    ID_COLUMN,
    PARENT_ACCOUNT_NAME,
    PARENT_ACCOUNT_VALUE,
    Condition,
    Rule,
    iter_conditions,
)
from core.domain.normalize import ValueKind

_NAME_KINDS = frozenset({ValueKind.PERSON_NAME, ValueKind.COMPANY_NAME, ValueKind.TEXT})
_NARROWING_KINDS = _NAME_KINDS | {ValueKind.EMAIL}
_PAIRED_PER_CLAUSE = 50  # sibling values under one shared value (keeps each clause a small part of a request)

# ------------------------------------------------------------------------------------------------
# What a plan asks for (the adapter writes it as OData)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contains:
    """Rows whose ``column`` contains ``fragment`` (as Dataverse's collation compares)."""

    column: str
    fragment: str


@dataclass(frozen=True)
class OneOf:
    """Rows whose ``column`` equals one of ``values`` (as Dataverse's collation compares)."""

    column: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Term, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Term, ...]


Term = Contains | OneOf | AllOf | AnyOf


@dataclass(frozen=True)
class ValueSearch:
    """Rows whose ``column`` holds one of ``values`` -- as a fragment when ``contains``. Sent as few
    requests as the URL limit allows (values split between them, none lost)."""

    column: str
    values: tuple[str, ...]
    contains: bool


@dataclass(frozen=True)
class ClauseSearch:
    """Rows satisfying any of ``clauses``, split between requests like a :class:`ValueSearch`.

    ``excluded[n]``, when not ``None``, is a whole value of ``column`` that ``clauses[n]`` need not
    fetch again (the exact lookup read every row holding it); ``excluded`` is ``None`` when no clause
    ever excludes anything."""

    column: str
    clauses: tuple[Term, ...]
    excluded: tuple[str | None, ...] | None = None


Search = ValueSearch | ClauseSearch


@dataclass(frozen=True)
class LookupPlan:
    entity: Entity
    id_column: str
    select: tuple[str, ...]
    expand: tuple[tuple[str, tuple[str, ...]], ...]  # (navigation, its columns) read with each row
    searches: tuple[Search, ...]
    unsearchable: tuple[str, ...]  # platform ids with no value for any queried condition: cannot match


# ------------------------------------------------------------------------------------------------
# Which conditions to query
# ------------------------------------------------------------------------------------------------

_RANK: Mapping[ValueKind, int] = {
    ValueKind.LINKEDIN: 0,
    ValueKind.EMAIL: 1,
    ValueKind.DOMAIN: 2,
    ValueKind.PHONE: 3,
    ValueKind.PERSON_NAME: 4,
    ValueKind.COMPANY_NAME: 6,
    ValueKind.TEXT: 8,
}


def _cost(condition: Condition) -> int:
    cost = _RANK[condition.kind]
    if condition.kind is ValueKind.DOMAIN and condition.any_extension:
        cost += 5  # contains(col,'acme.') is broad
    if condition.kind is ValueKind.PERSON_NAME and condition.platform_field.lower() != "lastname":
        cost += 1  # last names are more selective than first names
    if "/" in condition.dynamics_field:
        cost += 20  # filtering through a lookup joins another table
    return cost


_Cover = list[tuple[Condition, tuple[Condition, ...]]]


def _covers(rule: Rule | Condition) -> _Cover:
    """The conditions to query, each with its *siblings*: the other leaf conditions of the ANDs above it
    (no OR in between), which every row matching through it must also satisfy."""
    if isinstance(rule, Condition):
        return [(rule, ())]
    child_covers = [_covers(child) for child in rule.conditions]
    if rule.operator == "or":
        merged: dict[tuple[str, ValueKind, bool], tuple[Condition, tuple[Condition, ...]]] = {}
        for cover in child_covers:
            for condition, siblings in cover:
                key = (condition.dynamics_field, condition.kind, condition.any_extension)
                if key in merged:  # reached through several branches: only what all of them require
                    first, kept = merged[key]
                    merged[key] = (first, tuple(s for s in kept if s in siblings))
                else:
                    merged[key] = (condition, siblings)
        return list(merged.values())
    best = min(child_covers, key=lambda cover: (sum(_cost(c) for c, _ in cover), len(cover)))
    leaves = [child for child in rule.conditions if isinstance(child, Condition)]
    return [
        (condition, tuple(dict.fromkeys([*siblings, *(leaf for leaf in leaves if leaf != condition)])))
        for condition, siblings in best
    ]


def query_conditions(rule: Rule | Condition) -> list[Condition]:
    """The conditions whose candidates cover every possible match of ``rule``."""
    return [condition for condition, _ in _covers(rule)]


def _select_and_expand(
    entity: Entity, rule: Rule, extra_select: Sequence[str] = ()
) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """The columns the searches read: the rule's, then ``extra_select`` (the caller's mapped columns,
    so each request's URL is measured with the ``$select`` it is really sent with), and the columns of
    related tables by navigation property."""
    select: dict[str, None] = {ID_COLUMN[entity]: None, "modifiedon": None, "statecode": None}
    expands: dict[str, dict[str, None]] = {}
    for condition in iter_conditions(rule):
        if "/" in condition.dynamics_field:
            nav, _, col = condition.dynamics_field.rpartition("/")
            expands.setdefault(nav, {})[col] = None
            if condition.dynamics_field == PARENT_ACCOUNT_NAME:
                select[PARENT_ACCOUNT_VALUE] = None
        else:
            select[condition.dynamics_field] = None
    select.update(dict.fromkeys(extra_select))
    return tuple(select), tuple((nav, tuple(cols)) for nav, cols in expands.items())


# ------------------------------------------------------------------------------------------------
# The plan
# ------------------------------------------------------------------------------------------------


def plan_lookups(
    entity: Entity,
    rule: Rule,
    records: Iterable[Mapping[str, Any]],
    *,
    extra_select: Sequence[str] = (),
) -> LookupPlan:
    """The searches fetching every candidate for ``records`` under ``rule``.

    One :class:`ValueSearch` per searched condition with the values of every record (variants included,
    each collation-equal value once). A name condition with a name-like sibling in its AND is paired with
    that sibling's values instead (one clause per value, see ``_narrowed_search``).
    """
    id_column = ID_COLUMN[entity]
    select, expand = _select_and_expand(entity, rule, extra_select)
    covers = _covers(rule)
    per_condition: list[dict[str, str]] = [{} for _ in covers]
    contains_flags = [False for _ in covers]
    # (cover, narrowing column) -> per record: (its values, the sibling's values)
    narrowed: dict[tuple[int, str], list[tuple[list[str], list[str]]]] = {}
    unsearchable: list[str] = []
    for record in records:
        found = False
        for i, (condition, siblings) in enumerate(covers):
            record_values, contains = condition_values(condition, record)
            contains_flags[i] = contains
            if not record_values:
                continue
            found = True
            sibling = None if contains else narrowing_sibling(condition, siblings, record)
            if sibling is not None:
                narrowed.setdefault((i, sibling.dynamics_field), []).append(
                    (record_values, condition_values(sibling, record)[0])
                )
                continue
            for value in record_values:
                per_condition[i].setdefault(collation_key(value), value)
        if not found:
            unsearchable.append(str(record.get("id", "")))
    searches: list[Search] = [
        ValueSearch(condition.dynamics_field, tuple(values.values()), contains)
        for (condition, _), values, contains in zip(covers, per_condition, contains_flags, strict=True)
        if values
    ]
    for (i, sibling_column), pairs in narrowed.items():
        searches.append(_narrowed_search(covers[i][0].dynamics_field, sibling_column, pairs))
    return LookupPlan(entity, id_column, select, expand, tuple(searches), tuple(unsearchable))


def narrowing_sibling(
    condition: Condition, siblings: Sequence[Condition], record: Mapping[str, Any]
) -> Condition | None:
    """The sibling condition whose values the exact lookup of a name ``condition`` is AND-ed with.

    A last name alone fetches every namesake: searching ``lastname`` only, each chunk of a large
    export re-read every contact sharing a last name with one of its records, those created by the
    earlier chunks included, so the rows (and the worker's memory and time) per chunk grew with the job.
    Any row matching the AND also holds the sibling's value, so ``... and firstname in [...]`` loses
    nothing the exact lookup could find. Only a name-like sibling on the table itself (no lookup join),
    and only one the broad lookup can search too: it narrows the same record the same way (see
    ``plan_broad_lookups``), since rows of the narrowed value are then not all fetched here."""
    if condition.kind not in _NAME_KINDS:
        return None
    best: tuple[Condition, int] | None = None
    for sibling in siblings:
        if "/" in sibling.dynamics_field or sibling.kind not in _NARROWING_KINDS:
            continue
        values, contains = condition_values(sibling, record)
        fragments = broad_fragments(sibling, record)
        if not values or contains or not fragments:
            continue
        if best is None or len(fragments[0]) > best[1]:
            best = (sibling, len(fragments[0]))
    return best[0] if best else None


def _narrowed_search(
    column: str, other: str, pairs: Sequence[tuple[Sequence[str], Sequence[str]]]
) -> ClauseSearch:
    """One clause per value of ``column``, AND-ed with the sibling values of the records holding it,
    OR-ed: ``(lastname in ['Smith'] and firstname in ['Ann','Bo']) or (lastname in ['Lee'] and firstname
    in ['Jo'])``. Pairs, not ``lastname in [all] and firstname in [all]``: a chunk's last names crossed
    with its first names would again fetch most of a table whose names come from a common vocabulary."""
    # collation key of a record's value -> (its variant forms, the sibling values of its records)
    groups: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for values, sibling_values in pairs:
        forms, others = groups.setdefault(collation_key(values[0]), ({}, {}))
        for value in values:
            forms.setdefault(collation_key(value), value)
        for value in sibling_values:
            others.setdefault(collation_key(value), value)
    clauses: list[Term] = []
    for forms, others in groups.values():
        found = list(others.values())
        for start in range(0, len(found), _PAIRED_PER_CLAUSE):
            clauses.append(
                AllOf(
                    (
                        OneOf(column, tuple(forms.values())),
                        OneOf(other, tuple(found[start : start + _PAIRED_PER_CLAUSE])),
                    )
                )
            )
    return ClauseSearch(column, tuple(clauses))


# ------------------------------------------------------------------------------------------------
# The second, broader plan: records the exact plan did not find
# ------------------------------------------------------------------------------------------------


def plan_broad_lookups(
    entity: Entity,
    rule: Rule,
    records: Iterable[Mapping[str, Any]],
    *,
    extra_select: Sequence[str] = (),
) -> LookupPlan:
    """The second lookup, for ``records`` the exact plan (``plan_lookups``) left without a match.

    A whole-value search compares whole values, and the collation forgives only case, accents and
    trailing spaces: a name stored as ``"  Jane "``, ``"Van  Dyke"`` or ``"O’Neill"`` is never fetched by
    it. Here every searched name / text / e-mail condition is searched for its longest token
    (:class:`Contains`) instead, one clause per record, OR-ed and split like the exact plan's searches.
    Rows equal to a value the exact plan already looked for are left out (``ClauseSearch.excluded``), so
    a common last name is not fetched twice. A token shorter than ``SHORT_FRAGMENT`` is AND-ed with a
    sibling condition's token (lastname contains 'wu' and firstname contains 'wei') so a short name does
    not fetch half the table. A condition the exact plan narrowed with a sibling (``narrowing_sibling``)
    is always AND-ed with that sibling's token instead of excluding anything (the exact plan did not read
    every row of its value); records sharing a token share one clause (lastname contains 'lovelace' and
    (firstname contains 'ada' or ...)). Rows are a superset again; ``CandidateIndex`` decides exactly.
    The records must be ones the exact plan searched (the exclusion relies on it). ``unsearchable``
    lists those this plan has nothing broader to search for.
    """
    id_column = ID_COLUMN[entity]
    select, expand = _select_and_expand(entity, rule, extra_select)
    covers = [(c, s) for c, s in _covers(rule) if c.kind in BROAD_KINDS]
    # columns of a clause -> collation key of its fragments -> (clause, value to exclude or None)
    shapes: dict[tuple[str, ...], dict[tuple[str, ...], tuple[Term, str | None]]] = {}
    # (column, sibling column) -> collation key of a token -> (token, sibling tokens by collation key)
    paired: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {}
    unsearchable: list[str] = []
    for record in records:
        found = False
        for condition, siblings in covers:
            fragments = broad_fragments(condition, record)
            if not fragments:
                continue
            found = True
            sibling = narrowing_sibling(condition, siblings, record)
            if sibling is not None:
                # The exact plan narrowed this one with the sibling, so it did not read every row of the
                # value: nothing excluded here, the sibling's token narrows instead.
                pair = paired.setdefault((condition.dynamics_field, sibling.dynamics_field), {})
                token = broad_fragments(sibling, record)[0]
                for fragment in fragments:
                    pair.setdefault(collation_key(fragment), (fragment, {}))[1].setdefault(
                        collation_key(token), token
                    )
                continue
            narrow: tuple[str, str] | None = None
            if condition.kind in _NAME_KINDS and len(fragments[0]) < SHORT_FRAGMENT:
                narrow = _narrowing(siblings, record)
            exact = (
                {collation_key(v): v for v in condition_values(condition, record)[0]}
                if narrow is None and "/" not in condition.dynamics_field
                else {}
            )
            for fragment in fragments:
                parts = [(condition.dynamics_field, fragment), *([narrow] if narrow else [])]
                columns = tuple(column for column, _ in parts)
                key = tuple(collation_key(text) for _, text in parts)
                terms = tuple(Contains(column, text) for column, text in parts)
                shapes.setdefault(columns, {}).setdefault(
                    key, (AllOf(terms) if narrow else terms[0], exact.get(collation_key(fragment)))
                )
        if not found:
            unsearchable.append(str(record.get("id", "")))
    for (column, other), tokens in paired.items():
        # Records sharing a token share its clause: ``(contains(lastname,'lovelace') and
        # (contains(firstname,'ada') or ...))`` rather than one pair per record.
        for fragment, sibling_tokens in tokens.values():
            found_tokens = list(sibling_tokens.values())
            for start in range(0, len(found_tokens), _PAIRED_PER_CLAUSE):
                part = found_tokens[start : start + _PAIRED_PER_CLAUSE]
                clause = AllOf((Contains(column, fragment), AnyOf(tuple(Contains(other, t) for t in part))))
                key = (collation_key(fragment), *(collation_key(t) for t in part))
                shapes.setdefault((column, other), {}).setdefault(key, (clause, None))
    searches = tuple(
        ClauseSearch(
            columns[0],
            tuple(clause for clause, _ in clauses.values()),
            tuple(excluded for _, excluded in clauses.values()),
        )
        for columns, clauses in shapes.items()
    )
    return LookupPlan(entity, id_column, select, expand, searches, tuple(unsearchable))


def _narrowing(siblings: Sequence[Condition], record: Mapping[str, Any]) -> tuple[str, str] | None:
    """The sibling column and fragment that narrow a short fragment best (the longest one), if any."""
    best: tuple[str, str] | None = None
    for sibling in siblings:
        if "/" in sibling.dynamics_field:
            continue  # through a lookup: a join for every row; the short fragment alone is cheaper
        fragments = broad_fragments(sibling, record)
        if fragments and (best is None or len(fragments[0]) > len(best[1])):
            best = (sibling.dynamics_field, fragments[0])
    return best
