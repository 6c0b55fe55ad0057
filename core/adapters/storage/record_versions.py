"""The order of automatic exports' changes, per record (table ``ExportRecordVersions``).

One row per (workspace, entity, platform record) that an automatic export has carried:
PK ``<workspace>~<entity>``, RK the SHA-256 of the platform id (Table keys may not hold ``/ \\ # ?`` and
are at most 1 KiB; a 200-character id may be longer in UTF-8), the id itself in ``platformId``.

- ``changedAt``: the latest change of the record received (``change_key`` text: its text order is time
  order), and ``jobId``, the job that carries it;
- ``leaseJob`` / ``leaseUntil``: the job writing the record to Dynamics right now;
- ``writtenAt``: the latest change written.

Every update is an ETag-conditional read-modify-write (an insert for a new row), retried when another
instance changed the row in between, so two submissions or two workers deciding about one record at once
cannot both win. The rows are small and kept: a record's next change is compared with its last.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

VERSIONS_TABLE = "ExportRecordVersions"
_PARALLEL = 16  # one small read and write per record: I/O-bound
_MAX_TRIES = 20  # ETag conflicts on one record in a row before giving up (the caller retries the work)

# (the row as stored, or None) -> (the row to store, or None to leave it, and the decision)
Decide = Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, str]]


@dataclass
class Claim:
    """What a worker may write: ``superseded`` records (platform id -> the later change received) are
    not written; ``busy`` ones are being written by another job right now; the rest are claimed."""

    superseded: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    claimed: list[str] = field(default_factory=list)


class RecordVersions:
    def __init__(
        self,
        tables: TableServiceClient,
        table_name: str = VERSIONS_TABLE,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._service = tables
        self._table_name = table_name
        self._table = tables.get_table_client(table_name)
        self._clock = clock
        self._ready = False

    def ensure_ready(self) -> None:
        """Create the table once per instance (the export service calls this before its first receive)."""
        if self._ready:
            return
        try:
            self._service.create_table(self._table_name)
        except ResourceExistsError:
            pass
        self._ready = True

    def receive(
        self, workspace_id: str, entity: str, changes: Mapping[str, str], job_id: str
    ) -> dict[str, str]:
        """Note each change (platform id -> change key) as the record's latest unless a later one was
        received already; those are returned (platform id -> the later change). An equal change is the
        same change sent again: noted, not superseded (writing it again changes nothing)."""

        def decide(change: str) -> Decide:
            def step(row: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
                latest = str((row or {}).get("changedAt") or "")
                if latest > change:
                    return None, latest
                return {**(row or {}), "changedAt": change, "jobId": job_id}, ""

            return step

        results = self._each(workspace_id, entity, {pid: decide(c) for pid, c in changes.items()})
        return {pid: later for pid, later in results.items() if later}

    def claim(
        self,
        workspace_id: str,
        entity: str,
        changes: Mapping[str, str],
        job_id: str,
        lease: dt.timedelta,
    ) -> Claim:
        """Before writing: each record whose latest received change is this one (or older) is claimed for
        ``job_id`` for ``lease``, unless another job's claim has not expired (``busy``: that job may still
        be writing an earlier change, which must land first). A claim by the same job is renewed (its
        redelivery)."""
        now = self._clock()
        until = (now + lease).isoformat()

        def decide(change: str) -> Decide:
            def step(row: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
                current = row or {}
                latest = str(current.get("changedAt") or "")
                if latest > change:
                    return None, f"superseded:{latest}"
                holder = str(current.get("leaseJob") or "")
                expires = str(current.get("leaseUntil") or "")
                if holder and holder != job_id and expires > now.isoformat():
                    return None, "busy"
                return {
                    **current,
                    "changedAt": max(latest, change),
                    "leaseJob": job_id,
                    "leaseUntil": until,
                }, "claimed"

            return step

        claim = Claim()
        results = self._each(workspace_id, entity, {pid: decide(c) for pid, c in changes.items()})
        for pid, result in results.items():
            if result.startswith("superseded:"):
                claim.superseded[pid] = result.removeprefix("superseded:")
            elif result == "busy":
                claim.busy.append(pid)
            else:
                claim.claimed.append(pid)
        return claim

    def release(
        self, workspace_id: str, entity: str, changes: Mapping[str, str], job_id: str, *, written: bool
    ) -> None:
        """The job's claims end; ``written``: its changes reached Dynamics (``writtenAt`` moves on)."""

        def decide(change: str) -> Decide:
            def step(row: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
                if row is None or row.get("leaseJob") != job_id:
                    return None, ""
                out = {**row, "leaseJob": "", "leaseUntil": ""}
                if written:
                    out["writtenAt"] = max(str(row.get("writtenAt") or ""), change)
                return out, ""

            return step

        self._each(workspace_id, entity, {pid: decide(c) for pid, c in changes.items()})

    def get(self, workspace_id: str, entity: str, platform_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._table.get_entity(_partition(workspace_id, entity), _row_key(platform_id)))
        except ResourceNotFoundError:
            return None

    # -- one conditional read-modify-write per record ---------------------------------------------
    def _each(self, workspace_id: str, entity: str, decisions: Mapping[str, Decide]) -> dict[str, str]:
        partition = _partition(workspace_id, entity)
        items = list(decisions.items())
        if len(items) <= 1:
            return {pid: self._update(partition, pid, decide) for pid, decide in items}
        with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(items))) as pool:
            futures = {pid: pool.submit(self._update, partition, pid, decide) for pid, decide in items}
            return {pid: future.result() for pid, future in futures.items()}

    def _update(self, partition: str, platform_id: str, decide: Decide) -> str:
        key = _row_key(platform_id)
        for _ in range(_MAX_TRIES):
            try:
                entity = self._table.get_entity(partition, key)
                row: dict[str, Any] | None = {k: v for k, v in entity.items()}
                etag = str(entity.metadata["etag"])
            except ResourceNotFoundError:
                row, etag = None, ""
            new, result = decide(row)
            if new is None:
                return result
            body = {**new, "PartitionKey": partition, "RowKey": key, "platformId": platform_id}
            try:
                if row is None:
                    self._table.create_entity(body)
                else:
                    self._table.update_entity(
                        body,
                        mode=UpdateMode.REPLACE,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                return result
            except (ResourceExistsError, ResourceModifiedError):
                continue  # another instance decided about this record meanwhile: decide again
        raise RuntimeError(f"record {platform_id}: its version row kept changing; retry the work")


def _partition(workspace_id: str, entity: str) -> str:
    return f"{workspace_id}~{entity}"


def _row_key(platform_id: str) -> str:
    return hashlib.sha256(platform_id.encode()).hexdigest()
