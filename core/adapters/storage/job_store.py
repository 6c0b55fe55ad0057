"""Where chunk jobs live (exports and activities, each kind under its own ``JobNames``): job and chunk
rows and per-record results in Table Storage, the submitted records staged in Blob Storage, and one queue
message per chunk carrying only references.

Layout (workspace ids are validated by ``core.domain.caller`` and safe as keys), e.g. for exports:
- table ``ExportJobs``: PK workspace, RK job id — what was asked, by whom, when, how many chunks.
- table ``ExportChunks``: PK ``<workspace>~<job>``, RK chunk index — state and counts of each chunk. Job
  status is derived from these rows, so concurrent workers never contend on one job row.
- table ``ExportRecords``: PK ``<workspace>~<job>``, RK record position — one row per record (upserted
  in entity-group batches of 100), the per-record account of what happened.
- blob container ``export-staging``: ``<workspace>/<job>/request.json`` (settings of the job, including
  the configuration snapshot it runs with) and ``<workspace>/<job>/chunk-<i>.json`` (the records).
- queue ``dynamics-exports``: ``{"workspaceId", "jobId", "chunk"}``, base64 (host.json messageEncoding).
- table ``ExportJobsByTime``: PK workspace, RK ``<inverted createdAt>~<job>`` — the history index: the job's
  fields, then its status once finished (newest first is a range scan; see ``index_job``).
- blob ``<workspace>/<job>/set-aside.json``: the submitted records no chunk holds (invalid ones, duplicates),
  kept for a retry.
- table ``ExportJobsPaused``: PK ``paused``, RK workspace — a marker written when a chunk of the workspace
  pauses for the Dynamics token, removed by a resume that saw no newer pause; the token timer resumes
  the marked workspaces that are connected again without scanning every job.

What it returns is typed: ``JobRow``, ``ChunkStatus``, ``StagedRow``, ``StoredOutcome`` (pages of them).

Over 400 lines on purpose: one class owns a job's whole layout across three services (tables, blobs,
queue), so the crash-safe write orders (blobs, job row, chunk rows, messages; a paused chunk's row, then
its marker) and the conditional resume live in one place.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableServiceClient, TableTransactionError, UpdateMode
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from core.adapters.storage.table_transactions import replace_entities
from core.domain.jobs import (
    COUNT_KEYS,
    ChunkState,
    ChunkStatus,
    RecordAction,
    RecordOutcome,
    empty_counts,
)
from core.domain.jobs import JobRow as JobRow  # the store's job row, defined with the job states

# Table property values are limited to 64 KiB; JSON columns longer than this are cut into parts.
_PART_CHARS = 30_000
# An entity-group transaction holds at most 100 entities and 4 MiB; stay under both.
_TABLE_BATCH = 100
_TABLE_BATCH_BYTES = 3_000_000


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _job_partition(workspace_id: str, job_id: str) -> str:
    return f"{workspace_id}~{job_id}"


def encode_message(payload: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


@dataclass(frozen=True)
class JobNames:
    """Where a kind of job lives (its service names them): the same layout under each kind's names."""

    jobs_table: str
    chunks_table: str
    records_table: str
    container: str
    queue: str

    @property
    def paused_table(self) -> str:
        """Markers of workspaces with chunks paused for the token (``ExportJobsPaused``)."""
        return f"{self.jobs_table}Paused"

    @property
    def index_table(self) -> str:
        """The jobs of each workspace by time, newest first (``ExportJobsByTime``)."""
        return f"{self.jobs_table}ByTime"


@dataclass(frozen=True)
class StoredOutcome:
    """A record's outcome as saved: the columns a worker decides on, typed, and the whole outcome as the
    records endpoint shows it (``detail``, what ``RecordOutcome.to_json`` wrote)."""

    seq: int
    platform_id: str
    action: RecordAction
    dynamics_id: str | None
    detail: dict[str, Any]

    @property
    def changes(self) -> dict[str, Any] | None:
        changes = self.detail.get("changes")
        return changes if isinstance(changes, dict) else None


@dataclass(frozen=True)
class StagedRow:
    """One staged record of a chunk: its position in the submitted list and what the job kind staged for
    it (the kind reads its own fields: an export's ``record``, an activity's ``event`` and ``contact``).
    Stored as one JSON object, ``{"seq": ..., **fields}``."""

    seq: int
    fields: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {**self.fields, "seq": self.seq}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> StagedRow:
        return cls(int(value["seq"]), {k: v for k, v in value.items() if k != "seq"})


@dataclass(frozen=True)
class RecordsPage:
    records: list[StoredOutcome]
    next_cursor: str | None


@dataclass(frozen=True)
class JobFilter:
    """Which jobs of a workspace a history page holds; every member optional. ``created_from`` inclusive,
    ``created_to`` exclusive (ISO 8601, UTC); ``final`` True: finished jobs whose ``state`` is given,
    False: jobs not finished (their state is derived from their chunks). ``or_unfinished`` with ``final``
    True: the rows not yet marked finished too (a finish whose index write was lost; the caller derives
    their state and keeps those that match)."""

    entity: str | None = None
    trigger: str | None = None
    user_id: str | None = None
    created_from: str | None = None
    created_to: str | None = None
    final: bool | None = None
    state: str | None = None
    or_unfinished: bool = False


@dataclass(frozen=True)
class IndexedJob:
    """A job as its time index holds it: the job, and its status as JSON once it finished."""

    job: JobRow
    final_status: dict[str, Any] | None
    key: str  # the index row key: the position of this job in the newest-first order


# Epoch microseconds run to 16 digits until the year 2286; newest first = smallest key first.
_TIME_KEY_MAX = 10**16 - 1
_INDEXED_MARKER = "~indexed"  # sorts after every time key: the workspace's older jobs are indexed


def time_key(created_at: str) -> str:
    """The inverted-time prefix of a job's index row key (``created_at`` ISO 8601 with an offset)."""
    moment = dt.datetime.fromisoformat(created_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    micros = int((moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1))
    return f"{_TIME_KEY_MAX - micros:016d}"


class JobStore:
    def __init__(
        self,
        tables: TableServiceClient,
        blobs: BlobServiceClient,
        queues: QueueServiceClient,
        names: JobNames,
    ) -> None:
        self.names = names
        self._tables = tables
        self._blobs = blobs
        self._queues = queues
        self._ready = False

    # -- set-up ---------------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        if self._ready:
            return
        names = self.names
        for name in (
            names.jobs_table,
            names.chunks_table,
            names.records_table,
            names.paused_table,
            names.index_table,
        ):
            try:
                self._tables.create_table(name)
            except ResourceExistsError:
                pass
        try:
            self._blobs.create_container(self.names.container)
        except ResourceExistsError:
            pass
        for queue in (self.names.queue, f"{self.names.queue}-poison"):
            try:
                self._queues.create_queue(queue)
            except ResourceExistsError:
                pass
        self._ready = True

    # -- staging --------------------------------------------------------------------------------
    def _blob(self, workspace_id: str, job_id: str, name: str, staging: str = ""):  # type: ignore[no-untyped-def]
        # ``staging`` is a per-request folder recorded in the job row: two requests racing for one job id
        # (one Idempotency-Key) never overwrite each other's records.
        folder = f"{workspace_id}/{job_id}/{staging}/" if staging else f"{workspace_id}/{job_id}/"
        return self._blobs.get_blob_client(self.names.container, folder + name)

    def stage_request(
        self, workspace_id: str, job_id: str, request: Mapping[str, Any], *, staging: str = ""
    ) -> None:
        self._blob(workspace_id, job_id, "request.json", staging).upload_blob(
            json.dumps(request, separators=(",", ":")).encode(), overwrite=True
        )

    def load_request(self, workspace_id: str, job_id: str, *, staging: str = "") -> dict[str, Any]:
        data = self._blob(workspace_id, job_id, "request.json", staging).download_blob().readall()
        result: dict[str, Any] = json.loads(data)
        return result

    def stage_chunk(
        self, workspace_id: str, job_id: str, index: int, rows: Sequence[StagedRow], *, staging: str = ""
    ) -> None:
        self._blob(workspace_id, job_id, f"chunk-{index:06d}.json", staging).upload_blob(
            json.dumps([row.to_json() for row in rows], separators=(",", ":")).encode(), overwrite=True
        )

    def stage_chunks(
        self,
        workspace_id: str,
        job_id: str,
        chunks: Sequence[Sequence[StagedRow]],
        *,
        staging: str = "",
    ) -> None:
        """``stage_chunk`` for every chunk of a job, a few uploads at a time (a 10,000-record submit
        stages 20 blobs: one after another they were most of its time)."""
        self._in_parallel(
            lambda index: self.stage_chunk(workspace_id, job_id, index, chunks[index], staging=staging),
            range(len(chunks)),
        )

    def stage_set_aside(
        self, workspace_id: str, job_id: str, records: list[dict[str, Any]], *, staging: str = ""
    ) -> None:
        """The submitted records no chunk holds (invalid ones, duplicates skipped), each with its "seq":
        kept so that a retry can send them again once the configuration or the data is fixed."""
        self._blob(workspace_id, job_id, "set-aside.json", staging).upload_blob(
            json.dumps(records, separators=(",", ":")).encode(), overwrite=True
        )

    def load_set_aside(self, workspace_id: str, job_id: str, *, staging: str = "") -> list[dict[str, Any]]:
        """``stage_set_aside``'s records; none for a job staged before they were kept."""
        try:
            data = self._blob(workspace_id, job_id, "set-aside.json", staging).download_blob().readall()
        except ResourceNotFoundError:
            return []
        result: list[dict[str, Any]] = json.loads(data)
        return result

    def load_chunk(self, workspace_id: str, job_id: str, index: int, *, staging: str = "") -> list[StagedRow]:
        data = self._blob(workspace_id, job_id, f"chunk-{index:06d}.json", staging).download_blob().readall()
        return [StagedRow.from_json(row) for row in json.loads(data)]

    def try_load_chunk(
        self, workspace_id: str, job_id: str, index: int, *, staging: str = ""
    ) -> list[StagedRow] | None:
        """The staged records of a chunk; ``None`` when the job has no such chunk."""
        try:
            return self.load_chunk(workspace_id, job_id, index, staging=staging)
        except ResourceNotFoundError:
            return None

    # -- jobs -----------------------------------------------------------------------------------
    def create_job(self, job: JobRow) -> None:
        self._tables.get_table_client(self.names.jobs_table).create_entity(
            {"PartitionKey": job.workspace_id, "RowKey": job.job_id, **_submitted(job)}
        )

    def get_job(self, workspace_id: str, job_id: str) -> JobRow | None:
        try:
            row = self._tables.get_table_client(self.names.jobs_table).get_entity(workspace_id, job_id)
        except ResourceNotFoundError:
            return None
        return _job_from_row(row)

    def request_cancel(self, workspace_id: str, job_id: str, *, at: str, by: str) -> JobRow | None:
        """Mark the job cancelled (its chunks look at the job row before running and before each Dynamics
        request); the first request's time and author are kept. The job as it is now; ``None`` when the
        workspace has no such job."""
        job = self.get_job(workspace_id, job_id)
        if job is None:
            return None
        if job.cancel_requested_at is None:
            links = {"cancelRequestedAt": at, "cancelledBy": by}
            self._tables.get_table_client(self.names.jobs_table).update_entity(
                {"PartitionKey": workspace_id, "RowKey": job_id, **links}, mode=UpdateMode.MERGE
            )
            self._merge_index(job, links)
            job = replace(job, cancel_requested_at=at, cancelled_by=by)
        return job

    def set_retried_by(self, job: JobRow, retry_job_id: str) -> None:
        """Link ``job`` to the job that sends its failed records again (both rows: job and index)."""
        links = {"retriedBy": retry_job_id}
        self._tables.get_table_client(self.names.jobs_table).update_entity(
            {"PartitionKey": job.workspace_id, "RowKey": job.job_id, **links}, mode=UpdateMode.MERGE
        )
        self._merge_index(job, links)

    # -- the time index -------------------------------------------------------------------------
    # One row per job, PK workspace, RK <inverted createdAt>~<job id>: newest first is the table's own
    # order, a page is a range scan from the last key seen (jobs submitted meanwhile sort before it, so
    # paging never skips or repeats one), a period is a key range, and entity / trigger / requester /
    # finished state are filters the table applies. A finished job's status is kept in its row.
    def index_job(self, job: JobRow, final_status: Mapping[str, Any] | None = None) -> None:
        """Write the job's index row: without ``final_status``, a new job's (an existing row is left as
        it is: a retried submission must not make a finished job look unfinished); with it, the
        finished job's status is merged in. Links (cancel, retried by) are not written here: they are
        written by ``request_cancel`` and ``set_retried_by`` after the job row."""
        entity: dict[str, Any] = {
            "PartitionKey": job.workspace_id,
            "RowKey": f"{time_key(job.created_at)}~{job.job_id}",
            "jobId": job.job_id,
            **_submitted(job),
            "final": final_status is not None,
            "state": str(final_status["state"]) if final_status is not None else "",
        }
        table = self._tables.get_table_client(self.names.index_table)
        if final_status is None:
            try:
                table.create_entity(entity)
            except ResourceExistsError:
                pass
            return
        entity.update(_split_json("status", final_status))
        table.upsert_entity(entity, mode=UpdateMode.MERGE)

    def _merge_index(self, job: JobRow, values: Mapping[str, Any]) -> None:
        self._tables.get_table_client(self.names.index_table).upsert_entity(
            {
                "PartitionKey": job.workspace_id,
                "RowKey": f"{time_key(job.created_at)}~{job.job_id}",
                **values,
            },
            mode=UpdateMode.MERGE,
        )

    def indexed_jobs(
        self, workspace_id: str, flt: JobFilter, *, after: str | None, page_size: int
    ) -> Iterator[IndexedJob]:
        """The workspace's jobs matching ``flt``, newest first, from after the index key ``after``; the
        table is asked ``page_size`` rows at a time (read lazily: stop iterating to stop reading)."""
        self._index_older_jobs(workspace_id)
        query = ["PartitionKey eq @pk", "RowKey lt @marker"]
        params: dict[str, Any] = {"pk": workspace_id, "marker": _INDEXED_MARKER}
        if after is not None:
            query.append("RowKey gt @after")
            params["after"] = after
        if flt.created_to is not None:  # newer than the period: smaller keys
            query.append("RowKey gt @newest")
            params["newest"] = f"{time_key(flt.created_to)}~~"
        if flt.created_from is not None:
            query.append("RowKey lt @oldest")
            params["oldest"] = f"{time_key(flt.created_from)}~~"
        for name, column in (("entity", "entity"), ("trigger", "trigger"), ("user_id", "userId")):
            value = getattr(flt, name)
            if value is not None:
                query.append(f"{column} eq @{name}")
                params[name] = value
        if flt.final and flt.state is not None and flt.or_unfinished:
            # A space after @state: the SDK takes the word after "@" up to the next space as the name.
            query.append("((final eq true and state eq @state ) or final eq false)")
            params["state"] = flt.state
        else:
            if flt.final is not None:
                query.append("final eq @final")
                params["final"] = flt.final
            if flt.state is not None:
                query.append("state eq @state")
                params["state"] = flt.state
        rows = self._tables.get_table_client(self.names.index_table).query_entities(
            " and ".join(query), parameters=params, results_per_page=page_size
        )
        for row in rows:
            yield IndexedJob(
                job=_job_from_row({**row, "PartitionKey": row["PartitionKey"], "RowKey": row["jobId"]}),
                final_status=_join_json("status", row) if row.get("final") else None,
                key=str(row["RowKey"]),
            )

    def _index_older_jobs(self, workspace_id: str) -> None:
        """Jobs submitted before the time index existed are indexed on the workspace's first history
        read (one partition scan, then a marker row: later reads skip this)."""
        index = self._tables.get_table_client(self.names.index_table)
        try:
            index.get_entity(workspace_id, _INDEXED_MARKER)
            return
        except ResourceNotFoundError:
            pass
        jobs = self._tables.get_table_client(self.names.jobs_table).query_entities(
            "PartitionKey eq @pk", parameters={"pk": workspace_id}
        )
        for row in jobs:
            job = _job_from_row(row)
            self.index_job(job)
            links = {k: row[k] for k in ("retriedBy", "cancelRequestedAt", "cancelledBy") if row.get(k)}
            if links:
                self._merge_index(job, links)
        index.upsert_entity({"PartitionKey": workspace_id, "RowKey": _INDEXED_MARKER})

    def set_job_error(self, workspace_id: str, job_id: str, error: str) -> None:
        self._tables.get_table_client(self.names.jobs_table).update_entity(
            {"PartitionKey": workspace_id, "RowKey": job_id, "error": error}, mode=UpdateMode.MERGE
        )

    def list_jobs(
        self,
        workspace_id: str,
        limit: int = 100,
        *,
        before: tuple[str, str] | None = None,
        since: str | None = None,
    ) -> list[JobRow]:
        """The workspace's jobs, newest first (``createdAt``, then job id, descending): those strictly
        after ``before`` (a ``(createdAt, jobId)`` of an earlier page) and created at ``since`` or later.
        One partition query; the bounds are filters the table applies (ISO timestamps in UTC sort as
        text), so a later page or a recent window reads only the rows it may return."""
        table = self._tables.get_table_client(self.names.jobs_table)
        query = "PartitionKey eq @pk"
        parameters: dict[str, Any] = {"pk": workspace_id}
        if before is not None:
            query += " and createdAt le @before"
            parameters["before"] = before[0]
        if since is not None:
            query += " and createdAt ge @since"
            parameters["since"] = since
        jobs = [_job_from_row(r) for r in table.query_entities(query, parameters=parameters)]
        if before is not None:
            jobs = [j for j in jobs if (j.created_at, j.job_id) < before]
        jobs.sort(key=lambda j: (j.created_at, j.job_id), reverse=True)
        return jobs[:limit]

    # -- chunks ---------------------------------------------------------------------------------
    def put_chunk(self, workspace_id: str, job_id: str, index: int, state: ChunkState, **extra: Any) -> None:
        entity: dict[str, Any] = {
            "PartitionKey": _job_partition(workspace_id, job_id),
            "RowKey": f"{index:06d}",
            "state": state.value,
            "updatedAt": _now(),
        }
        entity.update(extra)
        self._tables.get_table_client(self.names.chunks_table).upsert_entity(entity, mode=UpdateMode.MERGE)

    def finish_chunk(
        self,
        workspace_id: str,
        job_id: str,
        index: int,
        state: ChunkState,
        counts: Mapping[str, int],
        records: int,
        error: str | None = None,
        error_codes: Mapping[str, int] | None = None,
    ) -> None:
        """The chunk's final row: state, counts and its failed records per error code (``errorCodes``,
        a small JSON object: ``core.domain.jobs.error_codes`` bounds it)."""
        extra: dict[str, Any] = {f"count_{k}": int(counts.get(k, 0)) for k in COUNT_KEYS}
        extra["records"] = records
        extra["error"] = error or ""
        extra["errorCodes"] = json.dumps(dict(error_codes or {}), separators=(",", ":"))
        self.put_chunk(workspace_id, job_id, index, state, **extra)

    def get_chunk(self, workspace_id: str, job_id: str, index: int) -> ChunkStatus | None:
        try:
            row = self._tables.get_table_client(self.names.chunks_table).get_entity(
                _job_partition(workspace_id, job_id), f"{index:06d}"
            )
        except ResourceNotFoundError:
            return None
        return _chunk_from_row(row)

    def list_chunks(self, workspace_id: str, job_id: str) -> list[ChunkStatus]:
        rows = self._tables.get_table_client(self.names.chunks_table).query_entities(
            "PartitionKey eq @pk", parameters={"pk": _job_partition(workspace_id, job_id)}
        )
        return sorted((_chunk_from_row(r) for r in rows), key=lambda c: c.index)

    def requeue_paused(
        self,
        workspace_id: str,
        job_id: str,
        index: int,
        states: Collection[ChunkState] = (ChunkState.PAUSED_RECONNECT,),
    ) -> bool:
        """Move a chunk paused (in one of ``states``: for the token by default) back to ``queued`` and send
        its message — only if it is still paused and nobody changed its row meanwhile (ETag), so two
        resumers racing for one chunk (the reconnect's or enable's scan, the pausing worker's re-check,
        the timer) enqueue it once."""
        table = self._tables.get_table_client(self.names.chunks_table)
        try:
            row = table.get_entity(_job_partition(workspace_id, job_id), f"{index:06d}")
        except ResourceNotFoundError:
            return False
        if row.get("state") not in {state.value for state in states}:
            return False
        try:
            table.update_entity(
                {
                    "PartitionKey": row["PartitionKey"],
                    "RowKey": row["RowKey"],
                    "state": ChunkState.QUEUED.value,
                    "updatedAt": _now(),
                },
                mode=UpdateMode.MERGE,
                etag=row.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False  # someone else resumed (or changed) it first
        self.enqueue_chunks(workspace_id, job_id, [index])
        return True

    # -- paused markers -------------------------------------------------------------------------
    def mark_paused(self, workspace_id: str) -> None:
        """Note that this workspace has a chunk paused for the token (written after the chunk's row)."""
        self._tables.get_table_client(self.names.paused_table).upsert_entity(
            {"PartitionKey": "paused", "RowKey": workspace_id, "pausedAt": _now(), "mark": uuid.uuid4().hex},
            mode=UpdateMode.REPLACE,
        )

    def paused_marker(self, workspace_id: str) -> str | None:
        """The ETag of the workspace's marker, or None when it has none."""
        try:
            row = self._tables.get_table_client(self.names.paused_table).get_entity("paused", workspace_id)
        except ResourceNotFoundError:
            return None
        return str(row.metadata["etag"])

    def clear_paused_marker(self, workspace_id: str, etag: str) -> bool:
        """Remove the marker read before a resume — unless a chunk paused again since (new ETag)."""
        try:
            self._tables.get_table_client(self.names.paused_table).delete_entity(
                "paused", workspace_id, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            return False
        except ResourceNotFoundError:
            return True
        return True

    def paused_workspaces(self) -> list[str]:
        rows = self._tables.get_table_client(self.names.paused_table).query_entities(
            "PartitionKey eq @pk", parameters={"pk": "paused"}, select=["RowKey"]
        )
        return [str(r["RowKey"]) for r in rows]

    # -- records --------------------------------------------------------------------------------
    def save_outcomes(self, workspace_id: str, job_id: str, outcomes: Iterable[RecordOutcome]) -> None:
        table = self._tables.get_table_client(self.names.records_table)
        partition = _job_partition(workspace_id, job_id)
        batch: list[dict[str, Any]] = []
        batch_bytes = 0
        for outcome in outcomes:
            entity: dict[str, Any] = {
                "PartitionKey": partition,
                "RowKey": f"{outcome.seq:07d}",
                "action": outcome.action.value,
                "platformId": outcome.platform_id,
                "dynamicsId": outcome.dynamics_id or "",
            }
            entity.update(_split_json("detail", outcome.to_json()))
            size = sum(len(str(v)) * 2 for v in entity.values())  # UTF-16 on the wire, roughly
            if batch and (len(batch) == _TABLE_BATCH or batch_bytes + size > _TABLE_BATCH_BYTES):
                replace_entities(table, batch)
                batch, batch_bytes = [], 0
            batch.append(entity)
            batch_bytes += size
        if batch:
            replace_entities(table, batch)

    def outcomes_between(self, workspace_id: str, job_id: str, low: int, high: int) -> list[StoredOutcome]:
        """The saved outcomes of positions ``low``..``high`` (one chunk's range of row keys): a chunk
        reads only its own rows, never the whole job (that made a job O(records^2))."""
        rows = self._tables.get_table_client(self.names.records_table).query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey le @high",
            parameters={
                "pk": _job_partition(workspace_id, job_id),
                "low": f"{low:07d}",
                "high": f"{high:07d}",
            },
        )
        return [_outcome_from_row(row) for row in rows]

    def records_page(
        self,
        workspace_id: str,
        job_id: str,
        *,
        action: str | None,
        cursor: str | None,
        limit: int,
    ) -> RecordsPage:
        """Per-record results in submission order; ``cursor`` is the last position already seen."""
        flt = "PartitionKey eq @pk"
        params: dict[str, Any] = {"pk": _job_partition(workspace_id, job_id)}
        if cursor:
            flt += " and RowKey gt @after"
            params["after"] = cursor
        if action:
            flt += " and action eq @action"
            params["action"] = action
        rows = self._tables.get_table_client(self.names.records_table).query_entities(
            flt, parameters=params, results_per_page=limit
        )
        page: list[StoredOutcome] = []
        last: str | None = None
        for row in rows:
            page.append(_outcome_from_row(row))
            last = str(row["RowKey"])
            if len(page) >= limit:
                break
        return RecordsPage(page, last if len(page) >= limit else None)

    def iter_outcome_pages(
        self, workspace_id: str, job_id: str, page_size: int = 1000
    ) -> Iterator[list[StoredOutcome]]:
        """Every saved outcome of the job in submission order, a page of ``page_size`` at a time: one
        query followed by its continuation tokens, so only the current page is ever in memory."""
        rows = self._tables.get_table_client(self.names.records_table).query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": _job_partition(workspace_id, job_id)},
            results_per_page=page_size,
        )
        for page in rows.by_page():
            yield [_outcome_from_row(row) for row in page]

    # -- retention ------------------------------------------------------------------------------
    def jobs_created_between(self, low: str, high: str) -> Iterator[JobRow]:
        """Jobs of every workspace created at ``low`` or later and before ``high`` (ISO timestamps), in no
        particular order: one query across partitions, filtered by the table, read a page at a time."""
        rows = self._tables.get_table_client(self.names.jobs_table).query_entities(
            "createdAt ge @low and createdAt lt @high", parameters={"low": low, "high": high}
        )
        for row in rows:
            if "entity" in row:  # a job (not a bookkeeping row)
                yield _job_from_row(row)

    def mark_records_deleted(self, workspace_id: str, job_id: str, *, done: bool) -> None:
        """Note on the job row that its results are being deleted (``recordsDeletedAt``, once: downloads
        stop being offered) or are gone (``recordsDeleted``: retention skips the job from then on)."""
        entity: dict[str, Any] = {"PartitionKey": workspace_id, "RowKey": job_id}
        if done:
            entity["recordsDeleted"] = True
        else:
            entity["recordsDeletedAt"] = _now()
        self._tables.get_table_client(self.names.jobs_table).update_entity(entity, mode=UpdateMode.MERGE)

    def records_deleted(self, workspace_id: str, job_id: str) -> bool:
        try:
            row = self._tables.get_table_client(self.names.jobs_table).get_entity(
                workspace_id, job_id, select=["recordsDeleted"]
            )
        except ResourceNotFoundError:
            return True
        return bool(row.get("recordsDeleted"))

    def delete_job_rows(self, workspace_id: str, job_id: str, table: str, budget: int) -> tuple[int, bool]:
        """Delete up to ``budget`` rows of the job's partitions in ``table`` (its records, with an activity
        job's exported contacts, or its chunks), in entity-group transactions of 100; (how many, whether
        none is left)."""
        client = self._tables.get_table_client(table)
        partition = _job_partition(workspace_id, job_id)
        deleted = 0
        for pk in (partition, f"{partition}~contacts"):
            done, more = self._delete_partition(client, pk, budget - deleted)
            deleted += done
            if more:
                return deleted, False
        return deleted, True

    @staticmethod
    def _delete_partition(client: Any, partition: str, budget: int) -> tuple[int, bool]:
        rows = client.query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": partition},
            select=["PartitionKey", "RowKey"],
            results_per_page=_TABLE_BATCH,
        )
        deleted = 0
        for page in rows.by_page():
            keys = [{"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]} for r in page]
            if not keys:
                continue
            if deleted + len(keys) > budget:
                return deleted, True
            try:
                client.submit_transaction([("delete", key) for key in keys])
            except (TableTransactionError, ResourceNotFoundError):  # one was gone already: one by one
                for key in keys:
                    try:
                        client.delete_entity(key["PartitionKey"], key["RowKey"])
                    except ResourceNotFoundError:
                        pass
            deleted += len(keys)
        return deleted, False

    def delete_staged(self, workspace_id: str, job_id: str, budget: int) -> tuple[int, bool]:
        """Delete up to ``budget`` blobs of the job's folder (request, chunks, download files)."""
        container = self._blobs.get_container_client(self.names.container)
        deleted = 0
        for blob in container.list_blobs(name_starts_with=f"{workspace_id}/{job_id}/"):
            if deleted >= budget:
                return deleted, False
            try:
                container.delete_blob(blob.name)
            except ResourceNotFoundError:
                pass
            deleted += 1
        return deleted, True

    def delete_job_row(self, job: JobRow) -> None:
        """The job's index row, then its job row (the history stops listing it first)."""
        for table, key in (
            (self.names.index_table, f"{time_key(job.created_at)}~{job.job_id}"),
            (self.names.jobs_table, job.job_id),
        ):
            try:
                self._tables.get_table_client(table).delete_entity(job.workspace_id, key)
            except ResourceNotFoundError:
                pass

    def retention_mark(self, name: str) -> str | None:
        """Where retention's scan ``name`` is to resume (an ISO timestamp), kept in the jobs table under a
        partition no workspace can have."""
        try:
            row = self._tables.get_table_client(self.names.jobs_table).get_entity(_RETENTION, name)
        except ResourceNotFoundError:
            return None
        return str(row.get("from") or "") or None

    def set_retention_mark(self, name: str, value: str) -> None:
        self._tables.get_table_client(self.names.jobs_table).upsert_entity(
            {"PartitionKey": _RETENTION, "RowKey": name, "from": value}, mode=UpdateMode.REPLACE
        )

    # -- queue ----------------------------------------------------------------------------------
    def enqueue_chunks(
        self, workspace_id: str, job_id: str, chunk_indexes: Iterable[int], *, delay_seconds: int = 0
    ) -> None:
        """One message per chunk, invisible for ``delay_seconds`` (the queue's initial visibility delay)."""
        queue = self._queues.get_queue_client(self.names.queue)
        for index in chunk_indexes:
            queue.send_message(
                encode_message({"workspaceId": workspace_id, "jobId": job_id, "chunk": index}),
                visibility_timeout=delay_seconds or None,
            )

    def queue_new_chunks(self, workspace_id: str, job_id: str, count: int, *, delay_seconds: int = 0) -> None:
        """A new job's chunk rows (``queued``; up to 100 per table transaction), then its messages (a few
        at a time): what ``put_chunk`` + ``enqueue_chunks`` do, in a handful of round trips. The messages
        become visible after ``delay_seconds``."""
        table = self._tables.get_table_client(self.names.chunks_table)
        now = _now()
        rows = [
            {
                "PartitionKey": _job_partition(workspace_id, job_id),
                "RowKey": f"{index:06d}",
                "state": ChunkState.QUEUED.value,
                "updatedAt": now,
            }
            for index in range(count)
        ]
        for start in range(0, len(rows), _TABLE_BATCH):
            replace_entities(table, rows[start : start + _TABLE_BATCH])
        queue = self._queues.get_queue_client(self.names.queue)
        self._in_parallel(
            lambda index: queue.send_message(
                encode_message({"workspaceId": workspace_id, "jobId": job_id, "chunk": index}),
                visibility_timeout=delay_seconds or None,
            ),
            range(count),
        )

    @staticmethod
    def _in_parallel(call: Callable[[int], object], indexes: Sequence[int]) -> None:
        if len(indexes) <= 1:
            for index in indexes:
                call(index)
            return
        with ThreadPoolExecutor(max_workers=min(_PARALLEL_UPLOADS, len(indexes))) as pool:
            for future in [pool.submit(call, index) for index in indexes]:
                future.result()  # the first failure is raised (the others have finished by then)


_PARALLEL_UPLOADS = 8
# Partition of retention's bookkeeping rows in the jobs table ("~" is not in any workspace id).
_RETENTION = "~retention"


def _split_json(prefix: str, value: Any) -> dict[str, str]:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    parts = [text[i : i + _PART_CHARS] for i in range(0, len(text), _PART_CHARS)] or [""]
    out = {f"{prefix}{i}": part for i, part in enumerate(parts)}
    out[f"{prefix}Parts"] = str(len(parts))
    return out


def _join_json(prefix: str, row: Mapping[str, Any]) -> dict[str, Any]:
    count = int(row.get(f"{prefix}Parts", "0") or 0)
    text = "".join(str(row.get(f"{prefix}{i}", "")) for i in range(count))
    result: dict[str, Any] = json.loads(text) if text else {}
    return result


def _outcome_from_row(row: Mapping[str, Any]) -> StoredOutcome:
    return StoredOutcome(
        seq=int(row["RowKey"]),
        platform_id=str(row.get("platformId") or ""),
        action=RecordAction(str(row["action"])),
        dynamics_id=str(row["dynamicsId"]) if row.get("dynamicsId") else None,
        detail=_join_json("detail", row),
    )


def _submitted(job: JobRow) -> dict[str, Any]:
    """The columns of what was submitted, the same in the job row and its index row."""
    return {
        "entity": job.entity,
        "trigger": job.trigger,
        "dryRun": job.dry_run,
        "userId": job.user_id,
        "totalRecords": job.total_records,
        "totalChunks": job.total_chunks,
        "invalidCount": job.invalid_count,
        "skippedCount": job.skipped_count,
        "staging": job.staging,
        "createdAt": job.created_at,
        **({"retryOf": job.retry_of} if job.retry_of else {}),
    }


def _job_from_row(row: Mapping[str, Any]) -> JobRow:
    return JobRow(
        workspace_id=str(row["PartitionKey"]),
        job_id=str(row["RowKey"]),
        entity=str(row["entity"]),
        trigger=str(row["trigger"]),
        dry_run=bool(row["dryRun"]),
        user_id=str(row["userId"]),
        total_records=int(row["totalRecords"]),
        total_chunks=int(row["totalChunks"]),
        created_at=str(row["createdAt"]),
        invalid_count=int(row.get("invalidCount", 0)),
        skipped_count=int(row.get("skippedCount", 0) or 0),
        staging=str(row.get("staging") or ""),
        error=(str(row["error"]) if row.get("error") else None),
        retry_of=(str(row["retryOf"]) if row.get("retryOf") else None),
        retried_by=(str(row["retriedBy"]) if row.get("retriedBy") else None),
        cancel_requested_at=(str(row["cancelRequestedAt"]) if row.get("cancelRequestedAt") else None),
        cancelled_by=(str(row["cancelledBy"]) if row.get("cancelledBy") else None),
        records_deleted_at=(str(row["recordsDeletedAt"]) if row.get("recordsDeletedAt") else None),
        records_deleted=bool(row.get("recordsDeleted")),
    )


def _chunk_from_row(row: Mapping[str, Any]) -> ChunkStatus:
    counts = empty_counts()
    for key in COUNT_KEYS:
        counts[key] = int(row.get(f"count_{key}", 0) or 0)
    return ChunkStatus(
        index=int(row["RowKey"]),
        state=ChunkState(str(row["state"])),
        counts=counts,
        records=int(row.get("records", 0) or 0),
        error=(str(row["error"]) if row.get("error") else None),
        attempts=int(row.get("attempts", 0) or 0),
        updated_at=str(row.get("updatedAt") or ""),
        error_codes=_error_codes(row.get("errorCodes")),
    )


def _error_codes(value: Any) -> dict[str, int]:
    """A chunk row's ``errorCodes`` (rows written before it existed have none)."""
    if not value:
        return {}
    try:
        parsed = json.loads(str(value))
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): int(v) for k, v in parsed.items() if isinstance(v, int)}
