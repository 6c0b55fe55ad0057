"""A lookup plan (``core.domain.lookup_plan``) written as Dataverse requests: ``$filter`` strings, each
request's URL within the limit as the client really encodes it.

* whole values: ``Microsoft.Dynamics.CRM.In(PropertyName='col',PropertyValues=[...])`` (one indexed lookup)
  or, with ``use_in_function=False``, ``col eq 'a' or col eq 'b'``;
* fragments: ``contains(col,'acme.com') or ...``;
* values a broad clause need not fetch again: ``(...) and Microsoft.Dynamics.CRM.NotIn(...)``.

Each search is split into as few requests as fit ``BATCH_GET_MAX_URL`` (inside ``$batch``, the default) or
``DIRECT_GET_MAX_URL`` (a direct GET), minus ``URL_HEADROOM``, and at most ``max_values`` values or
clauses per request (keeps each SQL query modest). The length measured is the length of the relative URL
encoded by :func:`core.adapters.dataverse.odata.encode_query`, the client's own encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.adapters.dataverse.metadata import STANDARD_TABLES
from core.adapters.dataverse.odata import (
    BATCH_GET_MAX_URL,
    DIRECT_GET_MAX_URL,
    URL_HEADROOM,
    contains_filter,
    encode_query,
    encode_value,
    eq_filter,
    expand_option,
    in_filter,
    in_prefix,
    not_in_filter,
    odata_literal,
    split_clauses,
)
from core.domain.lookup_plan import (
    AllOf,
    AnyOf,
    ClauseSearch,
    Contains,
    LookupPlan,
    OneOf,
    Term,
    ValueSearch,
)
from core.domain.matching import TABLE

DEFAULT_MAX_VALUES = 500  # values (In) or clauses (contains) per request


@dataclass(frozen=True)
class LookupQuery:
    """One GET of a lookup: ``<entity set>?$select=...&$filter=...[&$expand=...]``."""

    entity_set: str
    select: tuple[str, ...]
    filter: str
    expand: str | None
    column: str  # the column (or nav/column) filtered on
    clauses: int  # how many values / clauses this request carries

    def params(self) -> list[tuple[str, str]]:
        params = [("$select", ",".join(self.select)), ("$filter", self.filter)]
        if self.expand:
            params.append(("$expand", self.expand))
        return params

    def query_string(self) -> str:
        """``$select=...&$filter=...[&$expand=...]``, percent-encoded as the client sends it."""
        return encode_query(self.params())

    def relative_url(self) -> str:
        """``<entity set>?<query string>``, to append to ``.../api/data/v9.2/``."""
        return f"{self.entity_set}?{self.query_string()}"

    @property
    def needs_batch(self) -> bool:
        """True when the URL is too long for a direct GET and must go inside ``$batch``."""
        return len(self.relative_url()) > DIRECT_GET_MAX_URL - URL_HEADROOM


@dataclass(frozen=True)
class _Target:
    """What every request of one plan shares, and the limits it is split by."""

    entity_set: str
    select: tuple[str, ...]
    expand: str | None
    max_url: int
    max_values: int
    use_in: bool

    def query(self, column: str, filter_: str, clauses: int) -> LookupQuery:
        return LookupQuery(self.entity_set, self.select, filter_, self.expand, column, clauses)

    def fixed_length(self, column: str, filter_: str) -> int:
        return len(self.query(column, filter_, 0).relative_url())


def lookup_queries(
    plan: LookupPlan,
    *,
    in_batch: bool = True,
    use_in_function: bool = True,
    max_values: int = DEFAULT_MAX_VALUES,
) -> tuple[LookupQuery, ...]:
    """The requests of ``plan``, in the order of its searches.

    ``in_batch``: the requests go into ``$batch`` (URL limit 64 KB) rather than direct GETs (32 KB).
    ``use_in_function``: ``Microsoft.Dynamics.CRM.In`` for whole values, else ``eq`` joined by ``or``.
    A single value too long for any URL raises ValueError.
    """
    target = _Target(
        STANDARD_TABLES[TABLE[plan.entity]].entity_set_name,
        plan.select,
        expand_option(plan.expand),
        (BATCH_GET_MAX_URL if in_batch else DIRECT_GET_MAX_URL) - URL_HEADROOM,
        max_values,
        use_in_function,
    )
    queries: list[LookupQuery] = []
    for search in plan.searches:
        if isinstance(search, ValueSearch):
            queries.extend(_value_queries(target, search))
        elif search.excluded is None:
            queries.extend(_clause_queries(target, search))
        else:
            queries.extend(_excluding_queries(target, search))
    return tuple(queries)


def _value_queries(target: _Target, search: ValueSearch) -> list[LookupQuery]:
    column, values = search.column, search.values
    if search.contains:
        clauses = [contains_filter(column, v) for v in values]
        prefix, separator, suffix = "", " or ", ""
    elif _use_in(target, column):
        clauses = [odata_literal(v) for v in values]
        prefix, separator, suffix = in_prefix(column), ",", "])"
    else:
        clauses = [eq_filter(column, v) for v in values]
        prefix, separator, suffix = "", " or ", ""
    groups = split_clauses(
        clauses,
        fixed_length=target.fixed_length(column, prefix + suffix),
        max_length=target.max_url,
        max_clauses=target.max_values,
        separator=separator,
        what=f"value for {column}",
    )
    return [
        target.query(column, prefix + separator.join(clauses[i] for i in group) + suffix, len(group))
        for group in groups
    ]


def _clause_queries(target: _Target, search: ClauseSearch) -> list[LookupQuery]:
    """``clause or clause ...``."""
    clauses = [_term(target, term) for term in search.clauses]
    groups = split_clauses(
        clauses,
        fixed_length=target.fixed_length(search.column, ""),
        max_length=target.max_url,
        max_clauses=target.max_values,
        separator=" or ",
        what=f"value for {search.column}",
    )
    return [
        target.query(search.column, " or ".join(clauses[i] for i in group), len(group)) for group in groups
    ]


def _excluding_queries(target: _Target, search: ClauseSearch) -> list[LookupQuery]:
    """``(clause or ...) and NotIn(column, [values already fetched])``; each clause's length is counted
    together with the value it excludes."""
    column, excluded = search.column, search.excluded or ()
    clauses = [_term(target, term) for term in search.clauses]
    empty_not_in = not_in_filter(column, [])

    def excluded_length(position: int) -> int:
        value = excluded[position]
        return len(encode_value(odata_literal(value))) + 1 if value is not None else 0

    groups = split_clauses(
        clauses,
        fixed_length=target.fixed_length(column, f"() and {empty_not_in}"),
        max_length=target.max_url,
        max_clauses=target.max_values,
        separator=" or ",
        extra_length=excluded_length,
        what=f"value for {column}",
    )
    queries = []
    for group in groups:
        text = " or ".join(clauses[i] for i in group)
        values = list(dict.fromkeys(v for i in group if (v := excluded[i]) is not None))
        if values:
            text = f"({text}) and {not_in_filter(column, values)}"
        queries.append(target.query(column, text, len(group)))
    return queries


def _use_in(target: _Target, column: str) -> bool:
    # In() names a column of the table itself; a column reached through a lookup (nav/col) needs eq.
    return target.use_in and "/" not in column


def _term(target: _Target, term: Term) -> str:
    if isinstance(term, Contains):
        return contains_filter(term.column, term.fragment)
    if isinstance(term, OneOf):
        if _use_in(target, term.column):
            return in_filter(term.column, term.values)
        return "(" + " or ".join(eq_filter(term.column, v) for v in term.values) + ")"
    if isinstance(term, AllOf):
        return "(" + " and ".join(_term(target, part) for part in term.parts) + ")"
    assert isinstance(term, AnyOf)
    if len(term.parts) == 1:
        return _term(target, term.parts[0])
    return "(" + " or ".join(_term(target, part) for part in term.parts) + ")"
