"""In-memory tables with per-column hash indexes on folded values.

Rows are plain dicts (Web API property name -> JSON value; lookups as ``_x_value`` plus the
``@Microsoft.Dynamics.CRM.lookuplogicalname`` annotation). Indexes are built on first use of a column
and kept up to date afterwards, so equality and ``In`` filters on any column cost one dict lookup per
value. All access goes through one re-entrant lock; ``transaction()`` records an undo log so a failing
change set or bulk call leaves no trace.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Row = dict[str, Any]


class _TableData:
    __slots__ = ("indexes", "position", "rows", "sequence")

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.indexes: dict[str, dict[Any, set[str]]] = {}
        self.position: dict[str, int] = {}  # insertion order, so indexed reads come back in table order
        self.sequence = 0


class Store:
    def __init__(self, tables: list[str], fold: Callable[[Any], Any]) -> None:
        self.lock = threading.RLock()
        self._fold = fold
        self._tables = {name: _TableData() for name in tables}
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
            index = data.indexes.get(column)
            if index is None:
                index = {}
                for record_id, row in data.rows.items():
                    index.setdefault(self._fold(row.get(column)), set()).add(record_id)
                data.indexes[column] = index
            ids: set[str] = set()
            for value in folded_values:
                ids.update(index.get(value, ()))
            if len(ids) == len(data.rows):
                return list(data.rows.values())
            position = data.position
            return [data.rows[i] for i in sorted(ids, key=position.__getitem__)]

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
                index.setdefault(self._fold(row.get(column)), set()).add(record_id)

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
            bucket = index.get(self._fold(old.get(column)))
            if bucket is not None:
                bucket.discard(record_id)
                if not bucket:
                    del index[self._fold(old.get(column))]

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
            for data in self._tables.values():
                data.rows.clear()
                data.indexes.clear()
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
