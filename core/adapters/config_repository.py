"""Dynamics configurations in Table Storage, one partition per workspace.

Table ``DynamicsConfig``, PartitionKey = escaped workspace id:
- RowKey ``current``: the saved document (``version``, ``savedAt``, ``savedBy``) as ASCII JSON split over
  ``d000``, ``d001``… properties (each below the 64 KB property limit); a document too large for one
  entity (1 MB) is staged in Blob (container ``dynamics-config``) and the entity names the blob.
- RowKey ``h-<inverted version>``: one history row per saved version (who, when, which step, what
  changed), newest first. It is written in the same entity-group transaction as ``current``, so a
  version and its history row exist together or not at all.

Optimistic concurrency: a save names the version (and storage ETag) it replaces; the transaction is
conditional on that ETag (or on ``current`` not existing yet), so of two writers of the same version
exactly one succeeds and the other gets ``ConfigConflict``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from core.adapters.tables import Storage, escape_key

TABLE = "DynamicsConfig"
CONTAINER = "dynamics-config"
CURRENT = "current"
HISTORY_PREFIX = "h-"
CHUNK_CHARS = 30_000  # ASCII JSON; 60 KB as UTF-16, under the 64 KB property limit
MAX_INLINE_CHARS = 360_000  # beyond this the document goes to Blob (entity limit is 1 MB as UTF-16)
MAX_HISTORY_CHANGES_CHARS = 30_000
_VERSION_SPAN = 10**10


class ConfigConflict(Exception):
    """Someone else saved first. ``current_version`` is what is stored now (None: nothing)."""

    def __init__(self, current_version: int | None) -> None:
        super().__init__(f"configuration changed concurrently (current version {current_version})")
        self.current_version = current_version


@dataclass(frozen=True)
class StoredConfig:
    document: dict[str, Any]
    version: int
    saved_at: dt.datetime
    saved_by: str
    etag: str  # storage ETag of the ``current`` entity (internal; not the HTTP ETag)
    blob: str | None = None  # staged document, when too large for the entity


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    saved_at: dt.datetime
    saved_by: str
    step: str | None
    changes: list[dict[str, Any]]
    changes_truncated: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "savedAt": self.saved_at.isoformat(),
            "savedBy": self.saved_by,
            "step": self.step,
            "changes": self.changes,
            "changesTruncated": self.changes_truncated,
        }


def _history_key(version: int) -> str:
    return f"{HISTORY_PREFIX}{_VERSION_SPAN - version:010d}"


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value))


class ConfigRepository:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    @property
    def _table(self) -> TableClient:
        return self._storage.table(TABLE)

    def load(self, workspace_id: str) -> StoredConfig | None:
        pk = escape_key(workspace_id)
        for _ in range(3):  # a blob replaced between reading the entity and the blob: read again
            try:
                entity = self._table.get_entity(pk, CURRENT)
            except ResourceNotFoundError:
                return None
            try:
                text = self._document_text(entity)
            except ResourceNotFoundError:
                continue
            return StoredConfig(
                document=json.loads(text),
                version=int(entity["version"]),
                saved_at=_as_datetime(entity["savedAt"]),
                saved_by=str(entity["savedBy"]),
                etag=str(entity.metadata["etag"]),
                blob=str(entity.get("blob") or "") or None,
            )
        raise ConfigConflict(None)

    def _document_text(self, entity: Any) -> str:
        blob = entity.get("blob")
        if blob:
            data = self._storage.container(CONTAINER).download_blob(str(blob)).readall()
            return bytes(data).decode("ascii")
        return "".join(str(entity[f"d{i:03d}"]) for i in range(int(entity["chunks"])))

    def save(
        self,
        workspace_id: str,
        document: dict[str, Any],
        *,
        previous: StoredConfig | None,
        saved_by: str,
        step: str | None,
        changes: list[dict[str, Any]],
    ) -> StoredConfig:
        """Store ``document`` as the version after ``previous`` (None: the first save)."""
        pk = escape_key(workspace_id)
        version = (previous.version if previous else 0) + 1
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        text = json.dumps(document, ensure_ascii=True, separators=(",", ":"))
        current: dict[str, Any] = {
            "PartitionKey": pk,
            "RowKey": CURRENT,
            "version": version,
            "savedAt": now,
            "savedBy": saved_by,
            "size": len(text),
        }
        blob_name: str | None = None
        if len(text) > MAX_INLINE_CHARS:
            blob_name = f"{pk}/{version}-{uuid.uuid4().hex}.json"
            self._storage.container(CONTAINER).upload_blob(blob_name, text.encode("ascii"), overwrite=True)
            current.update(blob=blob_name, chunks=0)
        else:
            chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
            current["chunks"] = len(chunks)
            current.update({f"d{i:03d}": chunk for i, chunk in enumerate(chunks)})
        history = self._history_row(pk, version, now, saved_by, step, changes)
        operations: list[Any]
        if previous is None:
            operations = [("create", current), ("create", history)]
        else:
            operations = [
                (
                    "update",
                    current,
                    {
                        "mode": UpdateMode.REPLACE,
                        "etag": previous.etag,
                        "match_condition": MatchConditions.IfNotModified,
                    },
                ),
                ("create", history),
            ]
        try:
            result = self._table.submit_transaction(operations)
        except TableTransactionError as exc:
            self._delete_blob(blob_name)
            stored = self.load(workspace_id)
            raise ConfigConflict(stored.version if stored else None) from exc
        if previous is not None and previous.blob:
            # The replaced version's blob is garbage once the new entity is in place (best effort; a
            # reader that still holds the old entity re-reads it, see ``load``).
            self._delete_blob(previous.blob)
        return StoredConfig(document, version, now, saved_by, str(result[0].get("etag", "")), blob_name)

    def _delete_blob(self, name: str | None) -> None:
        if name is None:
            return
        try:
            self._storage.container(CONTAINER).delete_blob(name)
        except ResourceNotFoundError:
            pass

    def _history_row(
        self,
        pk: str,
        version: int,
        now: dt.datetime,
        saved_by: str,
        step: str | None,
        changes: list[dict[str, Any]],
    ) -> dict[str, Any]:
        kept: list[dict[str, Any]] = []
        size = 2
        for change in changes:
            encoded = json.dumps(change, ensure_ascii=True)
            if size + len(encoded) + 1 > MAX_HISTORY_CHANGES_CHARS:
                break
            kept.append(change)
            size += len(encoded) + 1
        return {
            "PartitionKey": pk,
            "RowKey": _history_key(version),
            "version": version,
            "savedAt": now,
            "savedBy": saved_by,
            "step": step or "",
            "changes": json.dumps(kept, ensure_ascii=True, separators=(",", ":")),
            "changeCount": len(changes),
        }

    def history(self, workspace_id: str, limit: int = 50) -> list[HistoryEntry]:
        pk = escape_key(workspace_id)
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        entries: list[HistoryEntry] = []
        pages = self._table.query_entities(
            query, parameters={"pk": pk, "lo": HISTORY_PREFIX, "hi": "h."}, results_per_page=min(limit, 1000)
        )
        for entity in pages:
            changes = json.loads(str(entity.get("changes") or "[]"))
            entries.append(
                HistoryEntry(
                    version=int(entity["version"]),
                    saved_at=_as_datetime(entity["savedAt"]),
                    saved_by=str(entity["savedBy"]),
                    step=str(entity.get("step") or "") or None,
                    changes=changes,
                    changes_truncated=int(entity.get("changeCount", len(changes))) > len(changes),
                )
            )
            if len(entries) >= limit:
                break
        return entries
