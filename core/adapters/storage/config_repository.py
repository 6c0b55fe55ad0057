"""Dynamics configurations in Table Storage, one partition per workspace.

Table ``DynamicsConfig``, PartitionKey = escaped workspace id:
- RowKey ``current``: the saved document (``version``, ``savedAt``, ``savedBy``, ``saveId``) as ASCII JSON
  split over ``d000``, ``d001``… properties (each below the 64 KB property limit); a document too large
  for one entity (1 MB) is staged in Blob (container ``dynamics-config``) and the entity names the blob.
  It also holds the history entries of the latest versions (``recent``: who, when, which step, what
  changed; JSON over ``r000``, ``r001``…), its own version's entry last.
- RowKey ``h-<inverted last version>-<first version>``: a block of older history entries, moved out of
  ``current`` when its ``recent`` entries outgrow ``MAX_RECENT_CHARS``. Rows ``h-<inverted version>``
  hold one version each (written before history moved into ``current``).

A save is one conditional write of ``current`` (replace on the storage ETag the save started from, or
insert for the first save), carrying the new version's history entry with it: of two writers of the same
version exactly one succeeds, the other gets ``ConfigConflict``; a version and its history entry exist
together or not at all, and no row of an attempt that lost or died is ever left behind. Only a save that
finds ``recent`` full first writes those entries as a block (an upsert whose content is fixed by the
``current`` it read, so a writer that then loses, or dies, leaves a copy of saved history and nothing else)
and then starts ``recent`` afresh.

History is ``recent`` followed by the blocks, newest first, each version once (blocks may overlap).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from core.adapters.storage.tables import Storage, escape_key
from core.domain.config import HistoryEntry

TABLE = "DynamicsConfig"
CONTAINER = "dynamics-config"
CURRENT = "current"
HISTORY_PREFIX = "h-"
CHUNK_CHARS = 30_000  # ASCII JSON; 60 KB as UTF-16, under the 64 KB property limit
MAX_INLINE_CHARS = 360_000  # beyond this the document goes to Blob (entity limit is 1 MB as UTF-16)
MAX_HISTORY_CHANGES_CHARS = 30_000
# History kept in ``current`` before it moves to a block row. With the newest entry (changes <= 30,000
# chars) the entity stays under 1 MB even with the largest inline document (360,000 chars).
MAX_RECENT_CHARS = 16_000
_VERSION_SPAN = 10**10
_RECENT_COLUMNS = ["version", "recentChunks", *(f"r{i:03d}" for i in range(4))]  # recent needs <= 2


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
    blob: str | None  # staged document, when too large for the entity
    save_id: str  # the save that wrote this version (tells our own landed write from another's)
    # JSON history entries kept in ``current``, oldest first; a save carries them on, so they are required
    recent: str = field(repr=False)


def _block_key(first: int, last: int) -> str:
    return f"{HISTORY_PREFIX}{_VERSION_SPAN - last:010d}-{first:010d}"


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value))


def _chunked(prefix: str, text: str) -> dict[str, Any]:
    chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
    return {f"{prefix}{i:03d}": chunk for i, chunk in enumerate(chunks)}


def _joined(entity: Any, prefix: str, count: int) -> str:
    return "".join(str(entity.get(f"{prefix}{i:03d}") or "") for i in range(count))


def _entry(raw: dict[str, Any]) -> HistoryEntry:
    changes = raw.get("changes") or []
    if isinstance(changes, str):  # one-version rows keep the list as a JSON string
        changes = json.loads(changes)
    return HistoryEntry(
        version=int(raw["version"]),
        saved_at=_as_datetime(raw["savedAt"]),
        saved_by=str(raw["savedBy"]),
        step=str(raw.get("step") or "") or None,
        changes=changes,
        changes_truncated=int(raw.get("changeCount", len(changes))) > len(changes),
    )


def _kept_changes(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    size = 2
    for change in changes:
        encoded = json.dumps(change, ensure_ascii=True)
        if size + len(encoded) + 1 > MAX_HISTORY_CHANGES_CHARS:
            break
        kept.append(change)
        size += len(encoded) + 1
    return kept


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


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
                save_id=str(entity.get("saveId") or ""),
                recent=_joined(entity, "r", int(entity.get("recentChunks") or 0)) or "[]",
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
        text = _dumps(document)
        entry = _dumps(
            {
                "version": version,
                "savedAt": now.isoformat(),
                "savedBy": saved_by,
                "step": step or "",
                "changes": _kept_changes(changes),
                "changeCount": len(changes),
            }
        )
        older = previous.recent if previous else "[]"
        if older != "[]" and len(older) + len(entry) + 1 > MAX_RECENT_CHARS:
            # ``recent`` is full: its entries (all of saved versions) go to a block row first.
            self._write_block(pk, older)
            older = "[]"
        recent = f"[{entry}]" if older == "[]" else f"{older[:-1]},{entry}]"
        recent_props = _chunked("r", recent)
        current: dict[str, Any] = {
            "PartitionKey": pk,
            "RowKey": CURRENT,
            "version": version,
            "savedAt": now,
            "savedBy": saved_by,
            "saveId": save_id,
            "size": len(text),
            "recentChunks": len(recent_props),
            **recent_props,
        }
        blob_name: str | None = None
        if len(text) > MAX_INLINE_CHARS:
            blob_name = f"{pk}/{version}-{save_id}.json"
            self._storage.container(CONTAINER).upload_blob(blob_name, text.encode("ascii"), overwrite=True)
            current.update(blob=blob_name, chunks=0)
        else:
            document_props = _chunked("d", text)
            current.update(chunks=len(document_props), **document_props)
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
                return stored  # our own write, retried after its answer was lost: it did land
            self._delete_blob(blob_name)
            raise ConfigConflict(stored.version if stored else None) from exc
        if previous is not None and previous.blob:
            # The replaced version's blob is garbage once the new entity is in place (best effort; a
            # reader that still holds the old entity re-reads it, see ``load``).
            self._delete_blob(previous.blob)
        etag = str(result.get("etag", ""))
        return StoredConfig(document, version, now, saved_by, etag, blob_name, save_id, recent)

    def _write_block(self, pk: str, recent: str) -> None:
        versions = [int(e["version"]) for e in json.loads(recent)]
        props = _chunked("e", recent)
        block = {
            "PartitionKey": pk,
            "RowKey": _block_key(min(versions), max(versions)),
            "first": min(versions),
            "last": max(versions),
            "entryChunks": len(props),
            **props,
        }
        # Same versions, same entries (they are saved ones): rewriting a block is harmless.
        self._table.upsert_entity(block, mode=UpdateMode.REPLACE)

    def _delete_blob(self, name: str | None) -> None:
        if name is None:
            return
        try:
            self._storage.container(CONTAINER).delete_blob(name)
        except ResourceNotFoundError:
            pass

    def history(self, workspace_id: str, limit: int = 50) -> list[HistoryEntry]:
        """Saved versions, newest first: ``current``'s recent entries, then the blocks."""
        pk = escape_key(workspace_id)
        try:
            head = self._table.get_entity(pk, CURRENT, select=_RECENT_COLUMNS)
        except ResourceNotFoundError:
            return []
        chunks = int(head.get("recentChunks") or 0)
        if chunks > len(_RECENT_COLUMNS) - 2:  # more than selected (never written so): read them all
            head = self._table.get_entity(pk, CURRENT)
        recent = _joined(head, "r", chunks) or "[]"
        entries = [_entry(raw) for raw in reversed(json.loads(recent))][:limit]
        below = entries[-1].version if entries else int(head["version"]) + 1  # next wanted: below - 1
        if len(entries) >= limit or below <= 1:
            return entries
        rows = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": pk, "lo": HISTORY_PREFIX, "hi": "h."},
            results_per_page=min(limit, 100),
        )
        for row in rows:  # newest last version first
            if "entryChunks" in row:
                block = json.loads(_joined(row, "e", int(row["entryChunks"])))
            else:
                block = [row]  # one version, written before history moved into ``current``
            for raw in reversed(block):
                if int(raw["version"]) < below:
                    entries.append(_entry(raw))
                    below = entries[-1].version
                    if len(entries) >= limit or below <= 1:
                        return entries
        return entries
