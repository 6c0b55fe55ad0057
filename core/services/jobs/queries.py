"""Submitting and reading jobs, the same way for every job kind: the job id of a submission (a retried
``Idempotency-Key`` answers the job it made), opening a staged job (the job row is the lock between two
submissions of one key, then the outcomes known before sending and every chunk queued), status (derived
from the chunk rows), the job list, per-record results, resuming what paused for the Dynamics token, and
the per-workspace cap on jobs in flight.

Status costs one query of the job's chunk rows (no job-row contention: workers never write the job row);
records are read a page at a time in submission order (row key = position), plus one row read per
distinct record that skipped duplicates on the page were merged into; the job list a page at a time,
newest first, with an opaque cursor (the status of the page's jobs only is derived).

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
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from azure.core.exceptions import ResourceExistsError

from core.adapters.storage.job_store import JobRow, JobStore
from core.domain.alerts import job_event
from core.domain.integration_switch import DYNAMICS, IntegrationDisabled
from core.domain.jobs import (
    PAUSED_CHUNK_STATES,
    ChunkState,
    JobState,
    JobSummary,
    RecordOutcome,
    job_state,
    summarize_job,
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


def encode_job_cursor(job: JobRow) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at}|{job.job_id}".encode()).decode("ascii").rstrip("=")


def decode_job_cursor(cursor: str) -> tuple[str, str]:
    if len(cursor) > MAX_JOB_CURSOR:
        raise InvalidCursor(cursor)
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidCursor(cursor) from None
    created_at, bar, job_id = text.partition("|")
    if not bar or not created_at or not job_id:
        raise InvalidCursor(cursor)
    return created_at, job_id


@dataclass(frozen=True)
class SubmitResult:
    job_id: str
    accepted: int
    invalid: int
    created_new: bool  # False when an Idempotency-Key named a job that already exists


def _submitted(job: JobRow, *, created_new: bool) -> SubmitResult:
    accepted = job.total_records - job.invalid_count - job.skipped_count
    return SubmitResult(job.job_id, accepted, job.invalid_count, created_new)


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
                return job_id, _submitted(existing, created_new=False)
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
            return _submitted(existing, created_new=False)
        if known_outcomes:
            self._store.save_outcomes(job.workspace_id, job.job_id, known_outcomes)
        self._store.queue_new_chunks(
            job.workspace_id, job.job_id, job.total_chunks, delay_seconds=delay_seconds
        )
        if job.total_chunks == 0:
            self._tell_ended_at_submission(job)
        return _submitted(job, created_new=True)

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
            if job.total_chunks and job_state(chunks, total_chunks=job.total_chunks) in (
                JobState.QUEUED,
                JobState.RUNNING,
            ):
                active += 1
                if active >= self._max_active_jobs:
                    raise JobQueueFull(self._max_active_jobs)

    def status(self, workspace_id: str, job_id: str) -> dict[str, Any] | None:
        job = self._store.get_job(workspace_id, job_id)
        if job is None:
            return None
        return self._status_of(job)

    def summary(self, job: JobRow) -> JobSummary:
        """The job's state, counts, progress and top error codes, from one query of its chunk rows."""
        return summarize_job(
            self._store.list_chunks(job.workspace_id, job.job_id),
            total_chunks=job.total_chunks,
            total_records=job.total_records,
            invalid=job.invalid_count,
            skipped=job.skipped_count,
            job_error=job.error,
        )

    def _status_of(self, job: JobRow) -> dict[str, Any]:
        summary = self.summary(job)
        return {
            "jobId": job.job_id,
            "entity": job.entity,
            "trigger": job.trigger,
            "dryRun": job.dry_run,
            "state": summary.state.value,
            "createdAt": job.created_at,
            "requestedBy": job.user_id,
            "counts": summary.counts,
            "progress": {
                "records": job.total_records,
                "processed": summary.processed,
                "chunks": job.total_chunks,
                "chunksDone": summary.chunks_done,
            },
            "errors": summary.errors,
        }

    def list_jobs(self, workspace_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.jobs_page(workspace_id, None, limit)["jobs"]  # type: ignore[no-any-return]

    def jobs_page(self, workspace_id: str, cursor: str | None, limit: int = 50) -> dict[str, Any]:
        """A page of the workspace's jobs, newest first: ``{"jobs", "nextCursor"}`` (``None`` on the last
        page). ``InvalidCursor`` for a cursor this method did not return."""
        self._store.ensure_ready()
        before = decode_job_cursor(cursor) if cursor is not None else None
        rows = self._store.list_jobs(workspace_id, limit + 1, before=before)
        page = rows[:limit]
        next_cursor = encode_job_cursor(page[-1]) if len(rows) > limit else None
        return {"jobs": [self._status_of(job) for job in page], "nextCursor": next_cursor}

    def records(
        self, workspace_id: str, job_id: str, status: str | None, cursor: str | None, limit: int
    ) -> dict[str, Any] | None:
        if self._store.get_job(workspace_id, job_id) is None:
            return None
        page = self._store.records_page(workspace_id, job_id, action=status, cursor=cursor, limit=limit)
        details = [r.detail for r in page.records]
        self._join_merged(workspace_id, job_id, details)
        return {"records": details, "nextCursor": page.next_cursor}

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
