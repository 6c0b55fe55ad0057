"""Dynamics column metadata per (environment, table), cached process-wide for a few minutes.

Metadata changes rarely and costs one request per type cast; exports, the fields endpoint and the
configuration checks all read it through one cache. ``invalidate`` forces a refresh (the fields
endpoint's ``refresh=true``).
"""

from __future__ import annotations

import threading
import time

from core.adapters.dataverse.client import DataverseClient
from core.domain.dynamics_metadata import DynamicsColumn

METADATA_TTL_S = 600.0


class MetadataCache:
    """Column metadata per (environment, table), refreshed every ``ttl`` seconds (process-wide)."""

    def __init__(self, ttl: float = METADATA_TTL_S) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, dict[str, DynamicsColumn]]] = {}
        self._loading: dict[tuple[str, str], threading.Lock] = {}

    def columns(self, client: DataverseClient, table: str) -> dict[str, DynamicsColumn]:
        key = (client.environment_url, table)
        with self._lock:
            entry = self._entries.get(key)
            key_lock = self._loading.setdefault(key, threading.Lock())
        if entry and time.monotonic() - entry[0] < self._ttl:
            return entry[1]
        with key_lock:  # chunks starting together read the metadata once, not once each
            with self._lock:
                entry = self._entries.get(key)
            if entry and time.monotonic() - entry[0] < self._ttl:
                return entry[1]
            columns = {
                row["LogicalName"]: DynamicsColumn.from_metadata(row) for row in client.attribute_rows(table)
            }
            with self._lock:
                self._entries[key] = (time.monotonic(), columns)
        return columns

    def invalidate(self, environment_url: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == environment_url]:
                del self._entries[key]
