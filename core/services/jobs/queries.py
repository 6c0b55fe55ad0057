"""Submitting and reading jobs, the same way for every job kind: the job id of a submission (a retried
``Idempotency-Key`` answers the job it made), opening a staged job (the job row is the lock between two
submissions of one key, then the outcomes known before sending and every chunk queued), status (derived
from the chunk rows), the job list, per-record results, resuming what paused for the Dynamics token, and
the per-workspace cap on jobs in flight.

Status costs one query of the job's chunk rows (no job-row contention: workers never write the job row
while a job runs; cancel and retry links are written by the API); records are read a page at a time in
submission order (row key = position), plus one row read per distinct record that skipped duplicates on
the page were merged into; the job list (history) a page at a time from the job store's time index,
newest first, filtered, with an opaque cursor: a finished job's status is kept in its index row, so only
unfinished jobs of a page cost a chunk query. Cancel marks the job row; the engine stops its chunks.

The cap counts the workspace's jobs of this kind still queued or running among those submitted in the last
``ACTIVE_JOB_WINDOW`` (one query of their job rows, then one chunk query per job until the cap is
reached): a workspace cannot fill the shared queue for everybody else. A job paused for reconnection does
not count (it holds no queue message), nor one older than the window (a job queued a day is stuck, and the
poison handling ends it).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from azure.core.exceptions import ResourceExistsError

from core.adapters.storage.job_store import IndexedJob, JobFilter, JobRow, JobStore
from core.domain.alerts import job_event
from core.domain.caller import ADMINS, SERVICE, Caller, Role
from core.domain.integration_switch import DYNAMICS, IntegrationDisabled
from core.domain.job_status import JobStatus, status_of
from core.domain.jobs import (
    FINAL_STATES,
    PAUSED_CHUNK_STATES,
    ChunkState,
    JobState,
    JobSummary,
    RecordOutcome,
    job_state,
    summarize_job_row,
)
from core.services.jobs.events import JobEvents
from core.services.jobs.merged import join_merged

log = logging.getLogger(__name__)

DEFAULT_MAX_ACTIVE_JOBS = 20
ACTIVE_JOB_WINDOW = dt.timedelta(hours=24)
# How long a refused client waits before trying again: about a chunk's run, when one job may finish.
QUEUE_FULL_RETRY_AFTER_S = 30
MAX_JOB_CURSOR = 200


class JobQueueFull(Exception):
    """The workspace already has ``limit`` jobs of this kind queued or running."""

    def __init__(self, limit: int, retry_after_s: int = QUEUE_FULL_RETRY_AFTER_S) -> None:
        super().__init__(f"{limit} jobs are already queued or running for this workspace")
        self.limit = limit
        self.retry_after_s = retry_after_s


class InvalidCursor(ValueError):
    """A job-list cursor this API did not hand out."""


class JobFinished(Exception):
    """The job is finished: it cannot be cancelled any more."""

    def __init__(self, status: JobStatus) -> None:
        super().__init__(f"the job is already {status.state.value}")
        self.status = status


# How many not-finished jobs a page filtered by a not-final state looks at (their state is derived from
# their chunks, one query each): beyond that the page ends early, with a cursor to go on from.
MAX_DERIVED_SCAN = 200


def encode_job_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(f"k|{key}".encode()).decode("ascii").rstrip("=")


def decode_job_cursor(cursor: str) -> str:
    if len(cursor) > MAX_JOB_CURSOR:
        raise InvalidCursor(cursor)
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidCursor(cursor) from None
    tag, bar, key = text.partition("|")
    if tag != "k" or not bar or not _INDEX_KEY.fullmatch(key):
        raise InvalidCursor(cursor)
    return key


_INDEX_KEY = re.compile(r"[0-9]{16}~[A-Za-z0-9-]{1,64}")


@dataclass(frozen=True)
class HistoryFilter:
    """Which jobs a history page shows (every member optional; ``created_to`` exclusive)."""

    state: JobState | None = None
    entity: str | None = None
    trigger: str | None = None
    requested_by: str | None = None
    created_from: str | None = None
    created_to: str | None = None


@dataclass(frozen=True)
class JobsPage:
    jobs: list[JobStatus]
    next_cursor: str | None  # None on the last page


@dataclass(frozen=True)
class JobRecords:
    """A page of per-record results, each as the records endpoint shows it."""

    records: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class SubmitResult:
    job_id: str
    accepted: int
    invalid: int
    created_new: bool  # False when an Idempotency-Key named a job that already exists


def submitted_as(job: JobRow, *, created_new: bool) -> SubmitResult:
    """The submission answer of ``job``."""
    return SubmitResult(job.job_id, job.accepted, job.invalid_count, created_new)


def record_if_finished(store: JobStore, workspace_id: str, job_id: str) -> JobStatus | None:
    """Keep a finished job's status in its index row (the job list then reads no chunk rows for it); the
    status, or ``None`` while the job is not finished. Called by the engine when a chunk finishes, and by
    cancel; each computes from fresh reads made after its own write, so whichever runs last writes what
    both would."""
    job = store.get_job(workspace_id, job_id)
    if job is None:
        return None
    status = status_of(job, store.list_chunks(workspace_id, job_id))
    if not status.finished:
        return None
    store.index_job(job, status.to_json())
    return status


class JobQueries:
    # Each job kind's own namespace: one Idempotency-Key names different jobs of different kinds.
    idempotency_namespace: ClassVar[uuid.UUID]

    job_kind: ClassVar[str]  # "export" / "activity": the kind its alerts name

    def __init__(
        self,
        store: JobStore,
        max_active_jobs: int = DEFAULT_MAX_ACTIVE_JOBS,
        active_crm: Callable[[str], str | None] | None = None,
        events: JobEvents | None = None,
    ) -> None:
        self._store = store
        self._max_active_jobs = max_active_jobs
        # workspace -> its enabled CRM; None: the switch is not consulted (every workspace may submit)
        self._active_crm = active_crm
        self._events = events  # told about a job that ends at submission (no chunk to run)

    def dynamics_enabled(self, workspace_id: str) -> bool:
        return self._active_crm is None or self._active_crm(workspace_id) == DYNAMICS

    def require_enabled(self, workspace_id: str, doing: str) -> None:
        """``IntegrationDisabled`` unless Dynamics is the workspace's enabled CRM (one table read)."""
        if self._active_crm is None:
            return
        active = self._active_crm(workspace_id)
        if active != DYNAMICS:
            raise IntegrationDisabled(active, doing)

    def reserve_job_id(
        self, workspace_id: str, idempotency_key: str | None
    ) -> tuple[str, SubmitResult | None]:
        """The id of a new submission's job, and the job a retried ``Idempotency-Key`` already made (then
        nothing else is to be done); a new job must fit the workspace's cap (``JobQueueFull``)."""
        if idempotency_key:
            job_id = str(uuid.uuid5(self.idempotency_namespace, f"{workspace_id}\x1f{idempotency_key}"))
            existing = self._store.get_job(workspace_id, job_id)
            if existing is not None:
                self._store.index_job(existing)  # a lost index write of the first request, made now
                return job_id, submitted_as(existing, created_new=False)
        else:
            job_id = str(uuid.uuid4())
        self.check_capacity(workspace_id)
        return job_id, None

    def open_job(
        self,
        job: JobRow,
        known_outcomes: Sequence[RecordOutcome],
        *,
        idempotent: bool,
        delay_seconds: int = 0,
    ) -> SubmitResult:
        """Start a job whose chunks are staged: the job row first (a concurrent submission of the same key,
        staged elsewhere, loses here and answers the winner's job), then the outcomes known before sending
        (invalid, skipped) and every chunk queued (visible after ``delay_seconds``)."""
        try:
            self._store.create_job(job)
        except ResourceExistsError:
            existing = self._store.get_job(job.workspace_id, job.job_id)
            if existing is None or not idempotent:
                raise
            self._store.index_job(existing)
            return submitted_as(existing, created_new=False)
        self._store.index_job(job)
        if known_outcomes:
            self._store.save_outcomes(job.workspace_id, job.job_id, known_outcomes)
        self._store.queue_new_chunks(
            job.workspace_id, job.job_id, job.total_chunks, delay_seconds=delay_seconds
        )
        if job.total_chunks == 0:
            self._tell_ended_at_submission(job)
        return submitted_as(job, created_new=True)

    def _tell_ended_at_submission(self, job: JobRow) -> None:
        """A job with nothing to send (every record invalid) ended ``failed`` now: no chunk will finish
        to tell it. The job exists whatever happens here, so a failing listener is logged, not raised."""
        if self._events is None:
            return
        summary = self.summary(job)
        event = job_event(summary, [])
        if event is None:
            return
        try:
            self._events.job_event(self.job_kind, job, summary, event)
        except Exception:
            log.exception(
                "job alert at submission failed", extra={"workspace": job.workspace_id, "job": job.job_id}
            )

    def check_capacity(self, workspace_id: str) -> None:
        """``JobQueueFull`` when the workspace already has ``max_active_jobs`` jobs queued or running."""
        since = (dt.datetime.now(dt.UTC) - ACTIVE_JOB_WINDOW).isoformat()
        active = 0
        for job in self._store.list_jobs(workspace_id, limit=10_000, since=since):
            chunks = self._store.list_chunks(workspace_id, job.job_id)
            cancelled = job.cancel_requested_at is not None
            state = job_state(chunks, total_chunks=job.total_chunks, cancel_requested=cancelled)
            if job.total_chunks and state in (
                JobState.QUEUED,
                JobState.RUNNING,
            ):
                active += 1
                if active >= self._max_active_jobs:
                    raise JobQueueFull(self._max_active_jobs)

    def status(self, workspace_id: str, job_id: str) -> JobStatus | None:
        """The job's status and summary (counts, progress, duration, top error codes, links); ``None``
        when the workspace has no such job."""
        job = self._store.get_job(workspace_id, job_id)
        if job is None:
            return None
        return self._status_of(job)

    def summary(self, job: JobRow) -> JobSummary:
        """The job's state, counts, progress and top error codes, from one query of its chunk rows."""
        return summarize_job_row(job, self._store.list_chunks(job.workspace_id, job.job_id))

    def _status_of(self, job: JobRow) -> JobStatus:
        return status_of(job, self._store.list_chunks(job.workspace_id, job.job_id))

    def list_jobs(self, workspace_id: str, limit: int = 50) -> list[JobStatus]:
        return self.jobs_page(workspace_id, None, limit).jobs

    def jobs_page(
        self,
        workspace_id: str,
        cursor: str | None,
        limit: int = 50,
        flt: HistoryFilter | None = None,
    ) -> JobsPage:
        """A page of the workspace's jobs, newest first, matching ``flt``; ``next_cursor`` is ``None`` on
        the last page. ``InvalidCursor`` for a cursor this method did not return.

        One range query of the time index serves the page; a finished job's status is read from its index
        row, an unfinished one's from its chunk rows. A filter on a finished state is applied by the table,
        which also returns the rows not marked finished (a job that finished after its index write was
        lost is listed under its state, and its row written then); one on an unfinished state (queued,
        running, ...) looks at unfinished jobs only. At most ``MAX_DERIVED_SCAN`` unfinished rows that do
        not match are read per page (then the page may be short, and its cursor goes on)."""
        self._store.ensure_ready()
        flt = flt or HistoryFilter()
        after = decode_job_cursor(cursor) if cursor is not None else None
        derived_state = flt.state is not None and flt.state not in FINAL_STATES
        store_filter = JobFilter(
            entity=flt.entity,
            trigger=flt.trigger,
            user_id=flt.requested_by,
            created_from=flt.created_from,
            created_to=flt.created_to,
            final=None if flt.state is None else not derived_state,
            state=flt.state.value if flt.state is not None and not derived_state else None,
            or_unfinished=flt.state is not None and not derived_state,
        )
        jobs: list[JobStatus] = []
        last_key: str | None = None
        scanned = 0
        for item in self._store.indexed_jobs(
            workspace_id, store_filter, after=after, page_size=min(limit + 1, 1000)
        ):
            if len(jobs) == limit:
                return JobsPage(jobs, encode_job_cursor(last_key or item.key))
            status = self._indexed_status(item)
            last_key = item.key
            if status is None:
                continue
            if flt.state is not None and status.state is not flt.state:
                scanned += 1
                if scanned >= MAX_DERIVED_SCAN:
                    return JobsPage(jobs, encode_job_cursor(item.key))
                continue
            jobs.append(status)
        return JobsPage(jobs, None)

    def _indexed_status(self, item: IndexedJob) -> JobStatus | None:
        if item.final_status is not None:
            return JobStatus.from_json(item.job, item.final_status)
        job = self._store.get_job(item.job.workspace_id, item.job.job_id)
        if job is None:
            return None  # the job row is gone (retention): the index row goes with it
        status = self._status_of(job)
        if status.finished:  # a finish whose index write was lost: written now
            self._store.index_job(job, status.to_json())
        return status

    def records(
        self, workspace_id: str, job_id: str, status: str | None, cursor: str | None, limit: int
    ) -> JobRecords | None:
        if self._store.get_job(workspace_id, job_id) is None:
            return None
        page = self._store.records_page(workspace_id, job_id, action=status, cursor=cursor, limit=limit)
        details = [r.detail for r in page.records]
        self._join_merged(workspace_id, job_id, details)
        return JobRecords(details, page.next_cursor)

    def cancel(self, caller: Caller, job_id: str) -> JobStatus | None:
        """Cancel a job: chunks not started never run, a running one stops before its next Dynamics
        request unless it has begun writing (then it finishes those writes), a paused one is closed
        without waiting for Dynamics. Answers the status (``cancelling`` while a chunk finishes, then
        ``cancelled``); again for a job already cancelled. ``JobFinished`` for a job that finished
        first; ``Forbidden`` for a member cancelling someone else's job; ``None``: no such job."""
        ws = caller.workspace_id
        job = self._store.get_job(ws, job_id)
        if job is None:
            return None
        if caller.role is Role.MEMBER and job.user_id != caller.user_id:
            caller.require(ADMINS | SERVICE, "cancelling another user's job")
        if job.cancel_requested_at is None:
            status = self._status_of(job)
            if status.finished:
                raise JobFinished(status)
            at = dt.datetime.now(dt.UTC).isoformat()
            job = self._store.request_cancel(ws, job_id, at=at, by=caller.user_id) or job
        for chunk in self._store.list_chunks(ws, job_id):
            if chunk.state is ChunkState.PAUSED_RECONNECT:
                # Its worker closes it (no Dynamics request); records an earlier attempt may have written
                # are finished first, once Dynamics is reachable again.
                self._store.requeue_paused(ws, job_id, chunk.index)
        status = self._status_of(job)
        if status.finished:
            self._store.index_job(job, status.to_json())
        return status

    def _join_merged(self, workspace_id: str, job_id: str, details: list[dict[str, Any]]) -> None:
        join_merged(self._store, workspace_id, job_id, details)

    def resume_paused(self, workspace_id: str) -> int:
        """Re-enqueue every paused chunk whose cause is gone: those paused for the Dynamics token, and
        those paused while Dynamics was disabled if it is enabled now (called when the workspace
        reconnects, when Dynamics is enabled, and by the token timer for marked workspaces). A chunk is
        enqueued once even when resumers race (``requeue_paused``). The workspace's paused marker, read
        first, is removed afterwards unless a chunk paused again meanwhile: then the next timer run looks
        again; it also stays while chunks wait for Dynamics to be enabled, so the timer resumes them should
        the resume of the enabling itself fail."""
        self._store.ensure_ready()
        marker = self._store.paused_marker(workspace_id)
        states = set(PAUSED_CHUNK_STATES)
        if not self.dynamics_enabled(workspace_id):
            states.discard(ChunkState.PAUSED_DISABLED)
        resumed = 0
        left = False  # chunks still waiting for Dynamics to be enabled: the marker stays
        for job in self._store.list_jobs(workspace_id, limit=1000):
            for chunk in self._store.list_chunks(workspace_id, job.job_id):
                if chunk.state not in states:
                    left = left or chunk.state is ChunkState.PAUSED_DISABLED
                elif self._store.requeue_paused(workspace_id, job.job_id, chunk.index, (chunk.state,)):
                    resumed += 1
        if marker is not None and not left:
            self._store.clear_paused_marker(workspace_id, marker)
        return resumed

    def paused_workspaces(self) -> list[str]:
        """Workspaces marked as having chunks paused for the token."""
        self._store.ensure_ready()
        return self._store.paused_workspaces()
