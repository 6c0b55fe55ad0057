"""Bulk writes of a chunk: one call for many records, the refused records isolated, creates told apart.

``isolating``: Dataverse runs ``CreateMultiple`` / ``UpdateMultiple`` all-or-nothing on standard tables
(https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations), so one bad record fails
the whole call. The call is split in halves until each refused record stands alone; the others are still
written, at a cost of about 2·log2(n) extra calls per bad record. Failures of the call itself
(throttling, auth, 5xx, network) are not the records' fault and propagate to the retry of the chunk.

``create_with_own_ids``: every create carries its deterministic primary key. A DuplicateRecord
(``0x80040237``, our own key already taken) then has two causes, told apart without writing anything:

- the answer of this very call was lost (a dropped connection or a 5xx after Dynamics committed) and the
  client's retry met the records it had just created. The call is atomic, so the first attempt created
  either every record of the call or none: when ``maybe_applied_earlier`` is set and every id of the
  call exists now, this call created them. They are reported created and not written again.
- another attempt (a redelivered chunk, a concurrent chunk creating the same company, an earlier job)
  created some of them: those are ``taken`` (the caller decides: update, or "already logged"); the rest
  are sent again.

One query (a ``$batch`` GET, ids in the body: no URL length limit) asks which ids exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.adapters.dataverse.batch import BatchOperation
from core.adapters.dataverse.client import DataverseClient
from core.adapters.dataverse.errors import DUPLICATE_RECORD, DataverseError
from core.adapters.dataverse.odata import in_filter
from core.services.jobs import stopping
from core.services.jobs.lookups import PREFER_PAGES, batch_get_rows


def isolating(
    part: Sequence[int],
    send: Callable[[Sequence[int]], None],
    refused: Callable[[int, DataverseError], None],
) -> None:
    """Send ``part`` in one bulk call; when Dynamics refuses records, split in halves until each refused
    record stands alone (``refused`` is told its error), so the others are still written."""
    try:
        send(part)
    except DataverseError as exc:
        if not exc.about_records or exc.unknown_column:
            raise  # a column the table no longer has is the mapping's fault: splitting cannot help
        if len(part) == 1:
            refused(part[0], exc)
            return
        middle = len(part) // 2
        isolating(part[:middle], send, refused)
        isolating(part[middle:], send, refused)


def update_isolating(
    client: DataverseClient,
    table: str,
    records: Sequence[Mapping[str, Any]],
    *,
    caller_object_id: str | None = None,
) -> dict[int, DataverseError]:
    """``UpdateMultiple`` of ``records`` (each carrying its primary key); the refused ones by position."""
    failures: dict[int, DataverseError] = {}
    if not records:
        return failures
    stopping.begin_writes()

    def send(part: Sequence[int]) -> None:
        client.update_multiple(table, [records[i] for i in part], caller_object_id=caller_object_id)

    def refused(index: int, exc: DataverseError) -> None:
        failures[index] = exc

    isolating(list(range(len(records))), send, refused)
    return failures


@dataclass
class CreateReport:
    """What happened to each record of a ``create_with_own_ids`` call, by position."""

    created: list[int] = field(default_factory=list)  # created by this call (answer lost or not)
    taken: list[int] = field(default_factory=list)  # the id existed already: another attempt made it
    refused: dict[int, DataverseError] = field(default_factory=dict)


def create_with_own_ids(
    client: DataverseClient,
    table: str,
    id_column: str,
    records: Sequence[Mapping[str, Any]],
    *,
    caller_object_id: str | None = None,
) -> CreateReport:
    """``CreateMultiple`` of ``records``, each carrying its own primary key in ``id_column``."""
    report = CreateReport()
    if not records:
        return report
    stopping.begin_writes()

    def existing(part: Sequence[int]) -> set[int]:
        ids = sorted({str(records[i][id_column]).lower() for i in part})
        get = BatchOperation(
            "GET",
            client.entity_set_name(table),
            headers=PREFER_PAGES,
            params=[("$select", id_column), ("$filter", in_filter(id_column, ids))],
        )
        found = {str(row[id_column]).lower() for row in batch_get_rows(client, [get])[0]}
        return {i for i in part if str(records[i][id_column]).lower() in found}

    def send(part: Sequence[int]) -> None:
        try:
            client.create_multiple(table, [records[i] for i in part], caller_object_id=caller_object_id)
        except DataverseError as exc:
            # Only our own primary key taken can be our own create. An alternate-key conflict
            # (0x80060892) is another record holding the same key value: the record is refused.
            if exc.code != DUPLICATE_RECORD:
                raise
            there = existing(part)
            if not there:
                raise
            if exc.maybe_applied_earlier and len(there) == len(part):
                report.created.extend(part)  # the lost answer was this call's success
                return
            report.taken.extend(sorted(there))
            rest = [i for i in part if i not in there]
            if rest:
                isolating(rest, send, refused)
            return
        report.created.extend(part)

    def refused(index: int, exc: DataverseError) -> None:
        report.refused[index] = exc

    isolating(list(range(len(records))), send, refused)
    return report
