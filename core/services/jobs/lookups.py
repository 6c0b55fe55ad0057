"""Running the identifier's lookups against Dataverse: shared by the export and the activity workers.

The plans are pure (``core.domain.lookup_plan``), the matching too (``core.domain.matching``); the
adapter ``core.adapters.dataverse.lookup_queries`` writes a plan as requests. What is left is sending
them as GET parts of a ``$batch`` and, for the records the exact lookup left
without a match, the second, broader lookup (docs/matching.md "second lookup"): one more ``$batch``, only
when some record has something broader to search for, and those records matched again against its rows.

Cost is bounded: each GET is read for at most ``MAX_LOOKUP_PAGES`` pages of 5,000 rows. A lookup that
matches more rows than that (a fragment common to half the table) stops there and says so
(``CappedRows``); a record it found no match for must not be created on that evidence, since its row may
be among those not read: it ends with ``LOOKUP_TOO_BROAD`` (``too_broad_error``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from core.adapters.dataverse.batch import MAX_BATCH_OPERATIONS, BatchOperation
from core.adapters.dataverse.client import DataverseClient, MorePagesThanRead
from core.adapters.dataverse.lookup_queries import lookup_queries
from core.adapters.dataverse.odata import MAX_PAGE_SIZE, prefer_page_size
from core.domain.catalog import Entity
from core.domain.jobs import FieldError
from core.domain.lookup_plan import LookupPlan, plan_broad_lookups
from core.domain.matching import MatchResult, MatchStatus, Rule, match_records

LOOKUP_PAGE_SIZE = MAX_PAGE_SIZE
PREFER_PAGES: Mapping[str, str] = {"Prefer": prefer_page_size()}
MAX_LOOKUP_PAGES = 4
LOOKUP_TOO_BROAD = "lookup_too_broad"


class CappedRows(list[dict[str, Any]]):
    """The rows of a GET that stopped after ``MAX_LOOKUP_PAGES`` pages: more rows match than were read."""


def capped(pages: Iterable[Sequence[dict[str, Any]]]) -> bool:
    """Did any of these GETs stop at the page cap?"""
    return any(isinstance(page, CappedRows) for page in pages)


def too_broad_error() -> FieldError:
    """The outcome of a record left unmatched by a lookup that stopped at the cap."""
    return FieldError(
        "",
        f"the identifier lookup matched more than {MAX_LOOKUP_PAGES} pages of Dynamics rows and stopped "
        "there; the record was "
        "not created, since its match may be among the rows not read (use a more specific identifier)",
        LOOKUP_TOO_BROAD,
    )


# Sends GET operations in $batch requests; one list of rows per operation, every page followed.
BatchGets = Callable[[Sequence[BatchOperation]], list[list[dict[str, Any]]]]


def _prefer_pages() -> Mapping[str, str]:
    return {"Prefer": prefer_page_size(LOOKUP_PAGE_SIZE)}


def lookup_operations(plan: LookupPlan) -> list[BatchOperation]:
    """One GET part per request of ``plan``, each URL within the ``$batch`` limit as it is sent."""
    return [
        BatchOperation("GET", query.entity_set, headers=_prefer_pages(), params=query.params())
        for query in lookup_queries(plan)
    ]


def match_broadly(
    entity: Entity,
    rule: Rule,
    records: Sequence[Mapping[str, Any]],
    results: list[MatchResult],
    positions: Iterable[int],
    *,
    select: Sequence[str],
    batch_gets: BatchGets,
    id_column: str,
) -> list[dict[str, Any]]:
    """The second lookup for the records at ``positions`` whose exact-lookup result is no match.

    ``records[n]`` was searched by the exact plan and ``results[n]`` is its match against those rows.
    The broad plan's queries go in one more ``$batch`` (none when no such record has a name, text or
    e-mail to search more broadly); each such record's result is replaced by its match against the new
    rows alone (the first lookup's rows did not match it). Returns the new rows, so the caller can read
    a matched record's current values from them.
    """
    unmatched = [n for n in positions if results[n].status is MatchStatus.NONE]
    if not unmatched:
        return []
    broad = plan_broad_lookups(entity, rule, [records[n] for n in unmatched], extra_select=select)
    if not broad.searches:
        return []
    pages = batch_gets(lookup_operations(broad))
    rows: list[dict[str, Any]] = [row for page in pages for row in page]
    if capped(pages):
        rows = CappedRows(rows)
    again = match_records(rule, [records[n] for n in unmatched], rows, id_column=id_column)
    for n, result in zip(unmatched, again, strict=True):
        results[n] = result
    return rows


def batch_get_rows(
    client: DataverseClient, operations: Sequence[BatchOperation], max_pages: int | None = None
) -> list[list[dict[str, Any]]]:
    """The rows of each GET, in order, sent as $batch requests of at most MAX_BATCH_OPERATIONS, each
    answer followed through its @odata.nextLink pages, ``max_pages`` pages at most (then its rows are a
    ``CappedRows``). A refused GET raises its DataverseError."""
    max_pages = max_pages or MAX_LOOKUP_PAGES
    pages: list[list[dict[str, Any]]] = []
    for start in range(0, len(operations), MAX_BATCH_OPERATIONS):
        part = operations[start : start + MAX_BATCH_OPERATIONS]
        for response in client.execute_batch(part, continue_on_error=True):
            response.raise_for_error()
            body = response.body if isinstance(response.body, dict) else {}
            rows = list(body.get("value") or [])
            link = body.get("@odata.nextLink")
            if link:
                try:
                    followed = client.query_pages(
                        str(link), page_size=LOOKUP_PAGE_SIZE, max_pages=max_pages - 1
                    )
                    for page in followed:
                        rows.extend(page)
                except MorePagesThanRead:
                    rows = CappedRows(rows)
            pages.append(rows)
    return pages
