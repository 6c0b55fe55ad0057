"""In-memory tables with per-column hash indexes on folded values.

Rows are plain dicts holding only the columns that have a value (Web API property name -> JSON value;
lookups as ``_x_value`` plus the ``@Microsoft.Dynamics.CRM.lookuplogicalname`` annotation), so a table of a
few hundred columns costs per row what the row sets. The columns named in ``eager_indexes`` (the
commonly queried ones: primary name, alternate-key and duplicate-rule columns, e-mail, names, URLs) are
indexed from the start and kept up to date by every write, so the first query on them is as fast as the
next; any other column is indexed on first use and kept up to date afterwards. Equality and ``In`` filters
therefore cost one dict lookup per value; on the primary key they read the rows directly. An index maps a
folded value to one record id (a str) or, when several rows share it, a set of ids, which keeps mostly
unique columns small; rows without a value are not indexed (a null lookup scans). All access goes through
one re-entrant lock; ``transaction()`` records an undo log so a failing change set or bulk call leaves no
trace.

Over 400 lines because the hash indexes, the q-gram postings for ``contains`` and the query planner that
picks between them share one lock, one undo log and one row-position map; split apart they would each
need the others' private state.
"""

from __future__ import annotations

import copy
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .odata import AnyHint, ContainsHint, EqHint, Hint

Row = dict[str, Any]
Index = dict[Any, "str | set[str]"]
Grams = dict[str, "array[int]"]  # q-gram -> positions of the rows whose folded text holds it (append-only)
GRAM = 4  # q-gram length: contains() needles of 4+ characters use the q-gram index (3-grams of digits
# are too common to narrow a lookup: "company0012345.example" shares each with ~1,000 of 200,000 rows)
# Low-entropy text (digits, hex) makes even 4-gram postings grow with the table: "3456" is held by ~80 of
# 200,000 "company0123456.example" rows and by ~4 of 10,000. For such needles a second, sampled index of
# 8-grams taken at every 4th position of a value (built for a column the first time a needle needs it) keeps
# a lookup's cost at what it returns: a needle of 8 + 4 - 1 characters or more holds, at one of 4
# consecutive offsets, the 8-gram sampled where its match starts in the row (q-samples, as in Sutinen &
# Tarhio's filtering for approximate matching). Sampling every 4th position keeps it at a quarter of the
# postings a full 8-gram index would hold.
LONG_GRAM = 8
LONG_STEP = 4
LONG_NEEDLE = LONG_GRAM + LONG_STEP - 1  # shortest needle the sampled index can serve
LONG_WHEN = 8  # a needle whose rarest 4-gram more rows hold than this may use the sampled index
LongGrams = dict[str, "int | array[int]"]  # sampled 8-gram -> position, or positions when several rows


def _index_add(index: Index, key: Any, record_id: str) -> None:
    if key is None:  # rows without a value are not indexed (sparse columns stay cheap)
        return
    held = index.get(key)
    if held is None:
        index[key] = record_id
    elif isinstance(held, str):
        if held != record_id:
            index[key] = {held, record_id}
    else:
        held.add(record_id)


def _index_remove(index: Index, key: Any, record_id: str) -> None:
    if key is None:
        return
    held = index.get(key)
    if held is None:
        return
    if isinstance(held, str):
        if held == record_id:
            del index[key]
        return
    held.discard(record_id)
    if len(held) == 1:
        index[key] = next(iter(held))
    elif not held:
        del index[key]


def _grams(text: str) -> set[str]:
    return {text[i : i + GRAM] for i in range(len(text) - GRAM + 1)}


def _sampled_grams(text: str) -> set[str]:
    return {text[i : i + LONG_GRAM] for i in range(0, len(text) - LONG_GRAM + 1, LONG_STEP)}


def _gram_add(postings: Grams, gram: str, pos: int) -> None:
    held = postings.get(gram)
    if held is None:
        held = postings[gram] = array("i")
    held.append(pos)


def _long_add(postings: LongGrams, gram: str, pos: int) -> None:
    held = postings.get(gram)
    if held is None:
        postings[gram] = pos
    elif isinstance(held, int):
        postings[gram] = array("i", (held, pos))
    else:
        held.append(pos)


def _long_size(held: int | array[int] | None) -> int:
    return 0 if held is None else 1 if isinstance(held, int) else len(held)


class _TableData:
    __slots__ = ("by_position", "grams", "indexes", "long_grams", "position", "rows", "sequence")

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.indexes: dict[str, Index] = {}
        self.grams: dict[str, Grams] = {}  # column -> q-gram postings, built on the first contains() query
        self.long_grams: dict[str, LongGrams] = {}  # column -> sampled 8-grams, built when first needed
        self.position: dict[str, int] = {}  # insertion order, so indexed reads come back in table order
        self.by_position: dict[int, str] = {}  # the inverse of ``position`` (q-gram postings hold positions)
        self.sequence = 0


class Store:
    def __init__(
        self,
        tables: list[str],
        fold: Callable[[Any], Any],
        *,
        text_fold: Callable[[str], str] | None = None,
        primary_ids: Mapping[str, str] | None = None,
        eager_indexes: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self._fold = fold
        self._text_fold: Callable[[str], str] = text_fold or str.casefold
        self._tables = {name: _TableData() for name in tables}
        self._primary_ids = dict(primary_ids or {})
        self._eager = {name: tuple(dict.fromkeys(columns)) for name, columns in (eager_indexes or {}).items()}
        for name, data in self._tables.items():
            data.indexes = {column: {} for column in self._eager.get(name, ())}
        self._undo: list[tuple[str, str, Row | None]] | None = None
        self._plans: dict[tuple[str, str], tuple[int, list[array[int]], int | None]] = {}
        self._version = 1000
        self.version_lock = threading.Lock()

    # -- versions (etags) ------------------------------------------------------------------
    def next_version(self) -> int:
        with self.version_lock:
            self._version += 1
            return self._version

    # -- reads -------------------------------------------------------------------------------
    def get(self, table: str, record_id: str) -> Row | None:
        """The stored row (do not mutate it: writes go through ``put``)."""
        return self._tables[table].rows.get(record_id)

    def rows(self, table: str) -> list[Row]:
        with self.lock:
            return list(self._tables[table].rows.values())

    def count(self, table: str) -> int:
        return len(self._tables[table].rows)

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {name: len(data.rows) for name, data in self._tables.items()}

    def candidates(self, table: str, column: str, folded_values: frozenset[Any]) -> list[Row]:
        """Rows whose folded ``column`` value is one of ``folded_values`` (insertion order)."""
        with self.lock:
            data = self._tables[table]
            if None in folded_values:  # null is not indexed: scan
                fold = self._fold
                return [row for row in data.rows.values() if fold(row.get(column)) in folded_values]
            ids = self._ids(table, data, column, folded_values)
            if len(ids) == len(data.rows):
                return list(data.rows.values())
            position = data.position
            return [data.rows[i] for i in sorted(ids, key=position.__getitem__)]

    def _build_index(self, data: _TableData, column: str) -> Index:
        index: Index = {}
        fold = self._fold
        for record_id, row in data.rows.items():
            _index_add(index, fold(row.get(column)), record_id)
        return index

    def indexed_columns(self, table: str) -> list[str]:
        """The columns of ``table`` that have an index now (eager ones first)."""
        with self.lock:
            return list(self._tables[table].indexes)

    def find(self, table: str, column: str, value: Any) -> list[Row]:
        return self.candidates(table, column, frozenset({self._fold(value)}))

    def hinted(self, table: str, hint: Hint) -> list[Row] | None:
        """The rows ``hint`` narrows to (a superset of the matches, insertion order), or None when the
        indexes would not save a full scan. Cost: the postings and index entries it touches, not the table."""
        with self.lock:
            data = self._tables[table]
            self._plans.clear()  # the estimate's needle plans serve the look-up that follows (under the lock)
            estimate = self._estimate(table, data, hint)
            if estimate is None or estimate >= len(data.rows):
                return None
            ids = self._hint_ids(table, data, hint)
            position = data.position
            return [data.rows[i] for i in sorted(ids, key=position.__getitem__)]

    def _estimate(self, table: str, data: _TableData, hint: Hint) -> int | None:
        """An upper bound of the rows ``hint`` yields (cheap: sizes of index entries), None = no index."""
        if isinstance(hint, EqHint):
            if None in hint.values:
                return None
            if hint.column == self._primary_ids.get(table):
                return len(hint.values)
            index = self._index(data, hint.column)
            return sum(
                1 if isinstance(held, str) else len(held)
                for held in (index.get(v) for v in hint.values)
                if held is not None
            )
        if isinstance(hint, ContainsHint):
            if any(len(needle) < GRAM for needle in hint.needles):
                return None
            return sum(self._needle_plan(data, hint.column, needle)[0] for needle in hint.needles)
        if isinstance(hint, AnyHint):
            total = 0
            for part in hint.parts:
                estimate = self._estimate(table, data, part)
                if estimate is None:
                    return None
                total += estimate
            return total
        known = [e for e in (self._estimate(table, data, part) for part in hint.parts) if e is not None]
        return min(known) if known else None

    def _hint_ids(self, table: str, data: _TableData, hint: Hint) -> set[str]:
        if isinstance(hint, EqHint):
            return self._ids(table, data, hint.column, hint.values)
        if isinstance(hint, ContainsHint):
            found: set[str] = set()
            by_position = data.by_position
            for needle in hint.needles:
                positions = self._needle_positions(data, hint.column, needle)
                found.update(by_position[p] for p in positions if p in by_position)
            return found
        if isinstance(hint, AnyHint):
            return set().union(*(self._hint_ids(table, data, part) for part in hint.parts))
        cheapest = min(
            (part for part in hint.parts if self._estimate(table, data, part) is not None),
            key=lambda part: self._estimate(table, data, part) or 0,
        )
        return self._hint_ids(table, data, cheapest)

    def _index(self, data: _TableData, column: str) -> Index:
        index = data.indexes.get(column)
        if index is None:
            index = data.indexes[column] = self._build_index(data, column)
        return index

    def _ids(self, table: str, data: _TableData, column: str, folded_values: frozenset[Any]) -> set[str]:
        ids: set[str] = set()
        if column == self._primary_ids.get(table):
            ids.update(v for v in folded_values if isinstance(v, str) and v in data.rows)
            return ids
        index = self._index(data, column)
        for value in folded_values:
            held = index.get(value)
            if held is None:
                continue
            if isinstance(held, str):
                ids.add(held)
            else:
                ids.update(held)
        return ids

    def _needle_plan(
        self, data: _TableData, column: str, needle: str
    ) -> tuple[int, list[array[int]], int | None]:
        """How to find the rows that may hold ``needle``: an upper bound of their number, the 4-gram
        postings rarest first, and the start of the needle's window of sampled 8-grams when those are the
        cheaper way (the rarest 4-gram is common and the needle long enough), else None. Cost: dict
        look-ups, no posting is copied."""
        plan = self._plans.get((column, needle))
        if plan is None:
            plan = self._plans[column, needle] = self._new_needle_plan(data, column, needle)
        return plan

    def _new_needle_plan(
        self, data: _TableData, column: str, needle: str
    ) -> tuple[int, list[array[int]], int | None]:
        long = data.long_grams.get(column)
        if long is not None and len(needle) >= LONG_NEEDLE:
            # A column known to hold low-entropy text: its sampled 8-grams first, the 4-grams only when
            # no window of them narrows (each probe of a large index is a cache miss, so fewer is cheaper).
            start, sampled = self._sampled_window(long, needle)
            if sampled <= LONG_WHEN:
                return sampled, [], start
        grams = self._gram_index(data, column)
        postings = sorted((grams.get(g, ()) for g in _grams(needle)), key=len)
        rarest = len(postings[0])
        if rarest <= LONG_WHEN or len(needle) < LONG_NEEDLE:
            return rarest, postings, None
        start, sampled = self._sampled_window(self._long_index(data, column), needle)
        return (sampled, postings, start) if sampled < rarest else (rarest, postings, None)

    @staticmethod
    def _sampled_window(long: LongGrams, needle: str) -> tuple[int, int]:
        """The start of the needle's window of 4 offsets whose sampled 8-grams fewest rows hold, and how
        many postings they have together."""
        sizes = [_long_size(long.get(needle[k : k + LONG_GRAM])) for k in range(len(needle) - LONG_GRAM + 1)]
        start = min(range(len(needle) - LONG_NEEDLE + 1), key=lambda w: sum(sizes[w : w + LONG_STEP]))
        return start, sum(sizes[start : start + LONG_STEP])

    def _needle_positions(self, data: _TableData, column: str, needle: str) -> set[int]:
        """The positions of the rows that may hold ``needle`` (a superset of the true matches)."""
        _, postings, start = self._needle_plan(data, column, needle)
        if start is None:
            positions = set(postings[0])
            rest: list[array[int]] = postings[1:3]
        else:
            positions = set()
            long = data.long_grams[column]
            for k in range(start, start + LONG_STEP):
                held = long.get(needle[k : k + LONG_GRAM])
                if isinstance(held, int):
                    positions.add(held)
                elif held is not None:
                    positions.update(held)
            rest = []  # common 4-grams: intersecting with them would cost what the sampled index saved
        for more in rest:  # the rarest q-grams together narrow to the few true matches
            if len(positions) <= 4:
                break
            positions.intersection_update(more)
        return positions

    def _long_index(self, data: _TableData, column: str) -> LongGrams:
        long = data.long_grams.get(column)
        if long is None:
            long = data.long_grams[column] = self._postings_of(data, column, _sampled_grams, _long_add)
        return long

    def _gram_index(self, data: _TableData, column: str) -> Grams:
        grams = data.grams.get(column)
        if grams is None:
            grams = data.grams[column] = self._postings_of(data, column, _grams, _gram_add)
        return grams

    def _postings_of(
        self,
        data: _TableData,
        column: str,
        grams_of: Callable[[str], set[str]],
        add: Callable[[Any, str, int], None],
    ) -> Any:
        """Postings of every row's folded ``column`` value, built in one pass (once per column)."""
        postings: dict[str, Any] = {}
        text_fold = self._text_fold
        position = data.position
        for record_id, row in data.rows.items():
            value = row.get(column)
            if value is not None:
                pos = position[record_id]
                for gram in grams_of(text_fold(str(value))):
                    add(postings, gram, pos)
        return postings

    # -- writes ------------------------------------------------------------------------------
    def put(self, table: str, record_id: str, row: Row) -> None:
        with self.lock:
            data = self._tables[table]
            old = data.rows.get(record_id)
            if self._undo is not None:
                self._undo.append((table, record_id, old))
            self._unindex(data, record_id, old)
            data.rows[record_id] = row
            if old is None:
                data.sequence += 1
                data.position[record_id] = data.sequence
                data.by_position[data.sequence] = record_id
            for column, index in data.indexes.items():
                _index_add(index, self._fold(row.get(column)), record_id)
            pos = data.position[record_id]
            for column, grams in data.grams.items():
                self._add_postings(grams, _grams, _gram_add, pos, row.get(column), old and old.get(column))
            for column, long in data.long_grams.items():
                self._add_postings(
                    long, _sampled_grams, _long_add, pos, row.get(column), old and old.get(column)
                )

    def _add_postings(
        self,
        postings: Any,
        grams_of: Callable[[str], set[str]],
        add: Callable[[Any, str, int], None],
        pos: int,
        value: Any,
        old: Any,
    ) -> None:
        """Postings for the grams the new value has and the old one had not (stale postings of a changed
        or deleted row stay: reads re-check every candidate, and deleted positions have no row)."""
        if value is None or value == old:
            return
        added = grams_of(self._text_fold(str(value)))
        if old is not None:
            added -= grams_of(self._text_fold(str(old)))
        for gram in added:
            add(postings, gram, pos)

    def delete(self, table: str, record_id: str) -> Row | None:
        with self.lock:
            data = self._tables[table]
            old = data.rows.pop(record_id, None)
            if old is not None:
                data.by_position.pop(data.position.pop(record_id, 0), None)
                if self._undo is not None:
                    self._undo.append((table, record_id, old))
                self._unindex(data, record_id, old)
            return old

    def _unindex(self, data: _TableData, record_id: str, old: Row | None) -> None:
        if old is None:
            return
        for column, index in data.indexes.items():
            _index_remove(index, self._fold(old.get(column)), record_id)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside are undone if the block raises. Nested transactions join the outer one."""
        with self.lock:
            if self._undo is not None:
                yield
                return
            self._undo = []
            try:
                yield
            except BaseException:
                undo, self._undo = self._undo, None
                for table, record_id, old in reversed(undo):
                    if old is None:
                        self.delete(table, record_id)
                    else:
                        self.put(table, record_id, old)
                raise
            finally:
                self._undo = None

    # -- whole store -------------------------------------------------------------------------
    def clear(self) -> None:
        with self.lock:
            for name, data in self._tables.items():
                data.rows.clear()
                data.indexes = {column: {} for column in self._eager.get(name, ())}
                data.grams = {}
                data.long_grams = {}
                data.position.clear()
                data.by_position.clear()

    def snapshot(self) -> dict[str, list[Row]]:
        with self.lock:
            return {name: copy.deepcopy(list(data.rows.values())) for name, data in self._tables.items()}

    def restore(self, snapshot: dict[str, list[Row]], primary_ids: dict[str, str]) -> None:
        with self.lock:
            self.clear()
            for name, rows in snapshot.items():
                if name not in self._tables:
                    continue
                data = self._tables[name]
                for row in rows:
                    record_id = str(row[primary_ids[name]])
                    data.rows[record_id] = copy.deepcopy(row)
                    data.sequence += 1
                    data.position[record_id] = data.sequence
                    data.by_position[data.sequence] = record_id
                for column in data.indexes:
                    data.indexes[column] = self._build_index(data, column)
