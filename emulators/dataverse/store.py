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
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

Row = dict[str, Any]
Index = dict[Any, "str | set[str]"]


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


class _TableData:
    __slots__ = ("indexes", "position", "rows", "sequence")

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.indexes: dict[str, Index] = {}
        self.position: dict[str, int] = {}  # insertion order, so indexed reads come back in table order
        self.sequence = 0


class Store:
    def __init__(
        self,
        tables: list[str],
        fold: Callable[[Any], Any],
        *,
        primary_ids: Mapping[str, str] | None = None,
        eager_indexes: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self._fold = fold
        self._tables = {name: _TableData() for name in tables}
        self._primary_ids = dict(primary_ids or {})
        self._eager = {name: tuple(dict.fromkeys(columns)) for name, columns in (eager_indexes or {}).items()}
        for name, data in self._tables.items():
            data.indexes = {column: {} for column in self._eager.get(name, ())}
        self._undo: list[tuple[str, str, Row | None]] | None = None
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
            ids: set[str] = set()
            if None in folded_values:  # null is not indexed: scan
                fold = self._fold
                return [row for row in data.rows.values() if fold(row.get(column)) in folded_values]
            if column == self._primary_ids.get(table):
                ids.update(v for v in folded_values if isinstance(v, str) and v in data.rows)
            else:
                index = data.indexes.get(column)
                if index is None:
                    index = data.indexes[column] = self._build_index(data, column)
                for value in folded_values:
                    held = index.get(value)
                    if held is None:
                        continue
                    if isinstance(held, str):
                        ids.add(held)
                    else:
                        ids.update(held)
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
            for column, index in data.indexes.items():
                _index_add(index, self._fold(row.get(column)), record_id)

    def delete(self, table: str, record_id: str) -> Row | None:
        with self.lock:
            data = self._tables[table]
            old = data.rows.pop(record_id, None)
            if old is not None:
                data.position.pop(record_id, None)
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
                data.position.clear()

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
                for column in data.indexes:
                    data.indexes[column] = self._build_index(data, column)
