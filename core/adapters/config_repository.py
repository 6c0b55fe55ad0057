"""Dynamics configurations in Table Storage, one partition per workspace.

Table ``DynamicsConfig``, PartitionKey = escaped workspace id:
- RowKey ``current``: the saved document (``version``, ``savedAt``, ``savedBy``, ``saveId``) as ASCII JSON
  split over ``d000``, ``d001``… properties (each below the 64 KB property limit); a document too large
  for one entity (1 MB) is staged in Blob (container ``dynamics-config``) and the entity names the blob.
- RowKey ``h-<inverted version>-<saveId>``: the history row of one save attempt (who, when, which step,
  what changed, and ``prevSaveId``, the ``saveId`` of the version it replaced), newest version first.
  Rows ``h-<inverted version>`` without a ``saveId`` are from before saves worked this way.

A save is two single-entity writes (an entity-group transaction costs a multipart ``$batch``, ~3x the
time of two plain writes):
1. insert the attempt's history row (its key is unique to the attempt, so this never conflicts);
2. replace ``current`` conditional on the storage ETag the save started from (insert it, for the first
   save). This write decides the race: of two writers of the same version exactly one succeeds, the
   other gets ``ConfigConflict`` and deletes its history row.

History is the chain that starts at ``current``'s ``saveId`` and follows each row's ``prevSaveId``, so it
holds every saved version (the row is written before its version can become current) and nothing else: the
row of an attempt that lost the race, or whose writer died between the two writes, is on no chain, is never
shown, and is deleted by the next history read once its version is settled (the version is at or below the
current one, so that attempt can no longer succeed).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from core.adapters.tables import Storage, escape_key

log = logging.getLogger(__name__)

TABLE = "DynamicsConfig"
CONTAINER = "dynamics-config"
CURRENT = "current"
HISTORY_PREFIX = "h-"
CHUNK_CHARS = 30_000  # ASCII JSON; 60 KB as UTF-16, under the 64 KB property limit
MAX_INLINE_CHARS = 360_000  # beyond this the document goes to Blob (entity limit is 1 MB as UTF-16)
MAX_HISTORY_CHANGES_CHARS = 30_000
_VERSION_SPAN = 10**10
_HISTORY_COLUMNS = [
    "RowKey",
    "version",
    "saveId",
    "prevSaveId",
    "savedAt",
    "savedBy",
    "step",
    "changes",
    "changeCount",
]
_LEGACY = ""  # the saveId of rows written before saves had one (current and history written atomically)


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
    save_id: str = _LEGACY  # the save that wrote this version (links the history chain)


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


def _history_key(version: int, save_id: str) -> str:
    key = f"{HISTORY_PREFIX}{_VERSION_SPAN - version:010d}"
    return f"{key}-{save_id}" if save_id else key


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
                save_id=str(entity.get("saveId") or _LEGACY),
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
        save_id = uuid.uuid4().hex
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        text = json.dumps(document, ensure_ascii=True, separators=(",", ":"))
        current: dict[str, Any] = {
            "PartitionKey": pk,
            "RowKey": CURRENT,
            "version": version,
            "savedAt": now,
            "savedBy": saved_by,
            "saveId": save_id,
            "size": len(text),
        }
        blob_name: str | None = None
        if len(text) > MAX_INLINE_CHARS:
            blob_name = f"{pk}/{version}-{save_id}.json"
            self._storage.container(CONTAINER).upload_blob(blob_name, text.encode("ascii"), overwrite=True)
            current.update(blob=blob_name, chunks=0)
        else:
            chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
            current["chunks"] = len(chunks)
            current.update({f"d{i:03d}": chunk for i, chunk in enumerate(chunks)})
        history = self._history_row(pk, version, save_id, previous, now, saved_by, step, changes)
        # 1. The attempt's history row, before its version can become current (key unique to the attempt;
        #    "exists" can only be our own insert retried after a lost response).
        try:
            self._table.create_entity(history)
        except ResourceExistsError:
            pass
        # 2. The version itself, conditional on what the save started from: this decides the race.
        try:
            if previous is None:
                result = self._table.create_entity(current)
            else:
                result = self._table.update_entity(
                    current,
                    mode=UpdateMode.REPLACE,
                    etag=previous.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            stored = self.load(workspace_id)
            if stored is not None and stored.save_id == save_id:
                # Our own write, retried after its response was lost: it did land.
                return stored
            self._delete_history_rows(pk, [history["RowKey"]])
            self._delete_blob(blob_name)
            raise ConfigConflict(stored.version if stored else None) from exc
        if previous is not None and previous.blob:
            # The replaced version's blob is garbage once the new entity is in place (best effort; a
            # reader that still holds the old entity re-reads it, see ``load``).
            self._delete_blob(previous.blob)
        return StoredConfig(document, version, now, saved_by, str(result.get("etag", "")), blob_name, save_id)

    def _delete_blob(self, name: str | None) -> None:
        if name is None:
            return
        try:
            self._storage.container(CONTAINER).delete_blob(name)
        except ResourceNotFoundError:
            pass

    def _delete_history_rows(self, pk: str, row_keys: list[str]) -> None:
        """Best effort: a row left behind is on no chain (never shown) and the next history read retries."""
        for row_key in row_keys:
            try:
                self._table.delete_entity(pk, row_key)
            except ResourceNotFoundError:
                pass  # its writer (or another reader) got there first
            except Exception:  # cleanup must not turn a clear answer into a 500
                log.warning("could not delete an unsaved configuration history row", exc_info=True)

    def _history_row(
        self,
        pk: str,
        version: int,
        save_id: str,
        previous: StoredConfig | None,
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
            "RowKey": _history_key(version, save_id),
            "version": version,
            "saveId": save_id,
            "prevSaveId": previous.save_id if previous else _LEGACY,
            "savedAt": now,
            "savedBy": saved_by,
            "step": step or "",
            "changes": json.dumps(kept, ensure_ascii=True, separators=(",", ":")),
            "changeCount": len(changes),
        }

    def history(self, workspace_id: str, limit: int = 50) -> list[HistoryEntry]:
        """Saved versions, newest first: the chain from ``current`` back through each ``prevSaveId``."""
        pk = escape_key(workspace_id)
        try:
            # Read before the rows: a version saved meanwhile is then simply not shown yet.
            head = self._table.get_entity(pk, CURRENT, select=["version", "saveId"])
        except ResourceNotFoundError:
            return []
        current_version = int(head["version"])
        want_version, want_id = current_version, str(head.get("saveId") or _LEGACY)
        entries: list[HistoryEntry] = []
        unsaved: list[str] = []
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        rows = self._table.query_entities(
            query,
            parameters={"pk": pk, "lo": HISTORY_PREFIX, "hi": "h."},
            results_per_page=min(limit + 8, 1000),
            select=_HISTORY_COLUMNS,
        )
        for entity in rows:
            version = int(entity["version"])
            save_id = str(entity.get("saveId") or _LEGACY)
            if version > current_version:
                continue  # an attempt still in flight (or newer than the ``current`` read above)
            if version != want_version or save_id != want_id:
                if version >= want_version:
                    unsaved.append(str(entity["RowKey"]))  # its version is settled: it can never be saved
                    continue
                log.warning("configuration history of a workspace misses version %d", want_version)
                break
            if len(entries) >= limit:
                break
            changes = json.loads(str(entity.get("changes") or "[]"))
            entries.append(
                HistoryEntry(
                    version=version,
                    saved_at=_as_datetime(entity["savedAt"]),
                    saved_by=str(entity["savedBy"]),
                    step=str(entity.get("step") or "") or None,
                    changes=changes,
                    changes_truncated=int(entity.get("changeCount", len(changes))) > len(changes),
                )
            )
            want_version, want_id = version - 1, str(entity.get("prevSaveId") or _LEGACY)
            if want_version < 1:
                break
        self._delete_history_rows(pk, unsaved)
        return entries
