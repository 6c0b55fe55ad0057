"""The Dataverse queries that fetch every candidate row a batch of platform records could match.

Pure: the plan is data (``$filter``/``$select``/``$expand`` strings and a ready relative URL), the caller
sends it (direct GETs or GET parts of one ``$batch``) and feeds the rows to ``matching.CandidateIndex``,
which decides exactly. The queries therefore only need to be a *superset*: wide enough that no real match
is missed, narrow enough to stay cheap. See docs/matching.md.

- Only the conditions needed to find every possible match are queried: for an AND the most selective one
  (a record matching the AND matches each part), for an OR every branch.
- Dataverse compares strings case- and accent-insensitively (``_CI_AI`` collation) and ignores trailing
  spaces, but not punctuation or URL variants: names and e-mails go through ``In`` over the variant forms
  (typographic apostrophes, ``Acme, Inc.`` vs ``Acme Inc``); LinkedIn URLs through
  ``contains(col,'/in/<slug>')`` (so ``http://www.LinkedIn.com/in/Jane-Doe/?trk=x`` is found);
  domains through ``contains(col,'acme.com')`` (``acme.`` for "any extension").
- Every literal is escaped (``escape_odata_string``) and the URL percent-encoded; queries are split so
  each URL stays under the limit (32 KB for a direct GET, 64 KB inside ``$batch``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import idna

from core.domain.catalog import Entity
from core.domain.matching import (
    ENTITY_SET,
    ID_COLUMN,
    PARENT_ACCOUNT_NAME,
    PARENT_ACCOUNT_VALUE,
    Condition,
    Rule,
    iter_conditions,
    platform_value,
)
from core.domain.normalize import (
    ValueKind,
    domain_any_extension_key,
    linkedin_slug_variants,
    normalize_email,
    normalize_phone,
    registrable_domain,
    strip_accents,
)

DIRECT_GET_MAX_URL = 32_768
BATCH_GET_MAX_URL = 65_536
URL_HEADROOM = 1_024  # room for https://<org>.crm<n>.dynamics.com/api/data/v9.2/ and headers' slack
DEFAULT_MAX_VALUES = 500  # values (In) or clauses (contains) per query: keeps each SQL query modest

_LEGAL_SUFFIXES = frozenset(
    "inc inc. incorporated corp corp. corporation co co. company ltd ltd. limited llc llp lp plc gmbh ag"
    " kg sa s.a. sas sarl sl s.l. srl s.r.l. spa s.p.a. bv b.v. nv n.v. ab as oy pty pty. ltda".split()
)
# Characters kept as-is by the percent-encoder: what a client's URL encoder leaves alone in a query.
_URL_SAFE = "$()',=/:@*!-._~"


def escape_odata_string(value: str) -> str:
    """Escape text for the inside of a single-quoted OData literal: every ``'`` doubled.

    ``O'Brien`` -> ``O''Brien``; ``x' or 1 eq 1 or name eq 'y`` stays one literal. NUL characters (which
    no Dataverse column can hold) are dropped.
    """
    return value.replace("\x00", "").replace("'", "''")


def odata_literal(value: str) -> str:
    """A complete single-quoted OData string literal."""
    return f"'{escape_odata_string(value)}'"


@dataclass(frozen=True)
class LookupQuery:
    entity_set: str
    select: tuple[str, ...]
    filter: str
    expand: str | None
    column: str  # the column (or nav/column) filtered on
    clauses: int  # how many values / contains-clauses this query carries

    def query_string(self) -> str:
        """``$select=...&$filter=...[&$expand=...]``, percent-encoded."""
        parts = [f"$select={','.join(self.select)}", f"$filter={_encode(self.filter)}"]
        if self.expand:
            parts.append(f"$expand={_encode(self.expand)}")
        return "&".join(parts)

    def relative_url(self) -> str:
        """``<entity set>?<query string>``, to append to ``.../api/data/v9.2/``."""
        return f"{self.entity_set}?{self.query_string()}"

    @property
    def needs_batch(self) -> bool:
        """True when the URL is too long for a direct GET and must go inside ``$batch``."""
        return len(self.relative_url()) > DIRECT_GET_MAX_URL - URL_HEADROOM


@dataclass(frozen=True)
class LookupPlan:
    entity: Entity
    entity_set: str
    id_column: str
    select: tuple[str, ...]
    expand: str | None
    queries: tuple[LookupQuery, ...]
    unsearchable: tuple[str, ...]  # platform ids with no value for any queried condition: cannot match


def _encode(text: str) -> str:
    return quote(text, safe=_URL_SAFE)


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


def query_conditions(rule: Rule | Condition) -> list[Condition]:
    """The conditions whose candidates cover every possible match of ``rule``."""
    if isinstance(rule, Condition):
        return [rule]
    covers = [query_conditions(child) for child in rule.conditions]
    if rule.operator == "or":
        seen: dict[tuple[str, ValueKind, bool], Condition] = {}
        for cover in covers:
            for condition in cover:
                seen.setdefault(
                    (condition.dynamics_field, condition.kind, condition.any_extension), condition
                )
        return list(seen.values())
    return min(covers, key=lambda cover: (sum(_cost(c) for c in cover), len(cover)))


def _select_and_expand(entity: Entity, rule: Rule) -> tuple[tuple[str, ...], str | None]:
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
    expand = ",".join(f"{nav}($select={','.join(cols)})" for nav, cols in expands.items()) or None
    return tuple(select), expand


# ------------------------------------------------------------------------------------------------
# Variant values
# ------------------------------------------------------------------------------------------------


def _text_variants(raw: str, *, company: bool) -> list[str]:
    base = raw.strip()
    if not base:
        return []
    collapsed = " ".join(base.split())
    forms = [base, collapsed]
    for form in list(forms):
        if "'" in form:
            forms.append(form.replace("'", "\u2019"))
        if "\u2019" in form:
            forms.append(form.replace("\u2019", "'"))
    if company:
        for form in list(forms):
            forms.extend(_company_suffix_variants(form))
    return forms


def _company_suffix_variants(name: str) -> list[str]:
    """``Acme Inc`` -> ``Acme, Inc.``, ``Acme Inc.``, ``Acme, Inc``: the punctuation the key ignores."""
    head, sep, last = name.rstrip().rpartition(" ")
    if not sep or last.lower() not in _LEGAL_SUFFIXES:
        return []
    head = head.rstrip(", ")
    bare = last.rstrip(".")
    dotted = bare + "."
    return [f"{head} {bare}", f"{head} {dotted}", f"{head}, {bare}", f"{head}, {dotted}"]


def _unicode_domain(ascii_domain: str) -> str | None:
    if "xn--" not in ascii_domain:
        return None
    try:
        return str(idna.decode(ascii_domain))
    except (idna.IDNAError, UnicodeError):
        return None


def condition_values(condition: Condition, record: Mapping[str, Any]) -> tuple[list[str], bool]:
    """The raw strings to look for in ``condition.dynamics_field`` for one record, and whether they are
    ``contains`` fragments (True) or whole values (False)."""
    raws = [platform_value(record, name) for name in (condition.platform_field, *condition.fallback_fields)]
    texts = [r.strip() for r in raws if isinstance(r, str) and r.strip()]
    texts += [str(r) for r in raws if isinstance(r, int | float) and not isinstance(r, bool)]
    if condition.kind is ValueKind.LINKEDIN:
        return [v for t in texts for v in linkedin_slug_variants(t)][:2], True
    if condition.kind is ValueKind.DOMAIN:
        for text in texts:
            if condition.any_extension:
                key = domain_any_extension_key(text)
                registrable = registrable_domain(text)
                if key is None or registrable is None:
                    continue
                fragment = key if key == registrable else key + "."
            else:
                fragment = registrable_domain(text) or ""
            if not fragment:
                continue
            unicode_form = _unicode_domain(fragment)
            return [fragment, *([unicode_form] if unicode_form else [])], True
        return [], True
    if condition.kind is ValueKind.EMAIL:
        out: list[str] = []
        for text in texts[:1]:
            email = normalize_email(text)
            if email is None:
                continue
            local, _, domain = email.partition("@")
            unicode_domain = _unicode_domain(domain)
            out += [text, email] + ([f"{local}@{unicode_domain}"] if unicode_domain else [])
        return out, False
    if condition.kind is ValueKind.PHONE:
        return [v for t in texts[:1] for v in (t, normalize_phone(t) or "") if v], False
    company = condition.kind is ValueKind.COMPANY_NAME
    return [v for t in texts[:1] for v in _text_variants(t, company=company)], False


def _dedupe_key(value: str) -> str:
    # What the _CI_AI collation would treat as equal anyway (case, accents, trailing spaces).
    return strip_accents(value).casefold().rstrip(" ")


# ------------------------------------------------------------------------------------------------
# The plan
# ------------------------------------------------------------------------------------------------


def plan_lookups(
    entity: Entity,
    rule: Rule,
    records: Iterable[Mapping[str, Any]],
    *,
    in_batch: bool = True,
    max_values: int = DEFAULT_MAX_VALUES,
    use_in_function: bool = True,
) -> LookupPlan:
    """The queries fetching every candidate for ``records`` under ``rule``.

    ``in_batch``: the queries go into ``$batch`` (URL limit 64 KB) rather than direct GETs (32 KB).
    ``use_in_function``: ``Microsoft.Dynamics.CRM.In`` for whole values, else ``eq`` joined by ``or``.
    """
    entity_set, id_column = ENTITY_SET[entity], ID_COLUMN[entity]
    select, expand = _select_and_expand(entity, rule)
    conditions = query_conditions(rule)
    per_condition: list[dict[str, str]] = [{} for _ in conditions]
    contains_flags = [False for _ in conditions]
    unsearchable: list[str] = []
    for record in records:
        found = False
        for i, condition in enumerate(conditions):
            record_values, contains = condition_values(condition, record)
            contains_flags[i] = contains
            for value in record_values:
                per_condition[i].setdefault(_dedupe_key(value), value)
                found = True
        if not found:
            unsearchable.append(str(record.get("id", "")))
    limit = (BATCH_GET_MAX_URL if in_batch else DIRECT_GET_MAX_URL) - URL_HEADROOM
    queries: list[LookupQuery] = []
    for condition, values, contains in zip(conditions, per_condition, contains_flags, strict=True):
        if values:
            queries.extend(
                _chunk(
                    entity_set,
                    select,
                    expand,
                    condition.dynamics_field,
                    list(values.values()),
                    contains=contains,
                    use_in=use_in_function and "/" not in condition.dynamics_field,
                    max_url=limit,
                    max_values=max_values,
                )
            )
    return LookupPlan(entity, entity_set, id_column, select, expand, tuple(queries), tuple(unsearchable))


def _chunk(
    entity_set: str,
    select: tuple[str, ...],
    expand: str | None,
    column: str,
    values: Sequence[str],
    *,
    contains: bool,
    use_in: bool,
    max_url: int,
    max_values: int,
) -> list[LookupQuery]:
    if contains:
        clause_of = [f"contains({column},{odata_literal(v)})" for v in values]
        prefix, separator, suffix = "", " or ", ""
    elif use_in:
        clause_of = [odata_literal(v) for v in values]
        prefix = f"Microsoft.Dynamics.CRM.In(PropertyName={odata_literal(column)},PropertyValues=["
        separator, suffix = ",", "])"
    else:
        clause_of = [f"{column} eq {odata_literal(v)}" for v in values]
        prefix, separator, suffix = "", " or ", ""
    fixed = len(LookupQuery(entity_set, select, prefix + suffix, expand, column, 0).relative_url())
    sep_len = len(_encode(separator))
    queries: list[LookupQuery] = []
    current: list[str] = []
    length = fixed
    for clause in clause_of:
        clause_len = len(_encode(clause))
        if fixed + clause_len > max_url:
            raise ValueError(f"a single value for {column} does not fit in a {max_url}-byte URL")
        extra = clause_len + (sep_len if current else 0)
        if current and (length + extra > max_url or len(current) >= max_values):
            queries.append(_query(entity_set, select, expand, column, current, prefix, separator, suffix))
            current, length = [], fixed
            extra = clause_len
        current.append(clause)
        length += extra
    if current:
        queries.append(_query(entity_set, select, expand, column, current, prefix, separator, suffix))
    return queries


def _query(
    entity_set: str,
    select: tuple[str, ...],
    expand: str | None,
    column: str,
    clauses: list[str],
    prefix: str,
    separator: str,
    suffix: str,
) -> LookupQuery:
    return LookupQuery(
        entity_set, select, prefix + separator.join(clauses) + suffix, expand, column, len(clauses)
    )
