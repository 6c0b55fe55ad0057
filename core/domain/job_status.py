"""A job's status and summary as the job endpoints, the job list and notifications read it (pure): state,
counts by outcome, progress, how long it took, the most frequent error codes, and its links (retry of /
retried by, cancel asked by whom).

Derived from the job row and its chunk rows (``status_of``). A finished job's status never changes again
(apart from its links), so the job store keeps a copy next to the job in its time index
(``to_json`` / ``from_json``) and a page of finished jobs is read without their chunk rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from core.domain.jobs import (
    COUNT_KEYS,
    FINAL_STATES,
    FINISHED_CHUNKS,
    ChunkState,
    ChunkStatus,
    ErrorTally,
    JobRow,
    JobState,
    empty_counts,
    job_state,
    merge_tallies,
)

TOP_ERRORS = 5


@dataclass(frozen=True)
class JobProgress:
    records: int  # records in the job
    processed: int  # records whose outcome is known (invalid and skipped ones included)
    chunks: int
    chunks_done: int  # finished chunks, failed and cancelled ones included


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    entity: str
    trigger: str
    dry_run: bool
    state: JobState
    created_at: str
    requested_by: str
    counts: dict[str, int]
    progress: JobProgress
    errors: list[str]  # job- and chunk-level failures
    finished_at: str | None = None  # when its last chunk finished (a finished job only)
    top_errors: tuple[ErrorTally, ...] = field(default_factory=tuple)
    retry_of: str | None = None
    retried_by: str | None = None
    cancel_requested_at: str | None = None
    cancelled_by: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def duration_s(self) -> float | None:
        """Seconds from submission to the last chunk's end; ``None`` while the job is not finished."""
        if self.finished_at is None:
            return None
        try:
            took = dt.datetime.fromisoformat(self.finished_at) - dt.datetime.fromisoformat(self.created_at)
        except ValueError:
            return None
        return max(0.0, round(took.total_seconds(), 3))

    def with_links(self, job: JobRow) -> JobStatus:
        """This (stored) status with the links the job row has now (they change after a job finished)."""
        return replace(
            self,
            retry_of=job.retry_of,
            retried_by=job.retried_by,
            cancel_requested_at=job.cancel_requested_at,
            cancelled_by=job.cancelled_by,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "counts": self.counts,
            "progress": [
                self.progress.records,
                self.progress.processed,
                self.progress.chunks,
                self.progress.chunks_done,
            ],
            "errors": self.errors,
            "finishedAt": self.finished_at,
            "topErrors": [[t.code, t.count, t.message] for t in self.top_errors],
        }

    @classmethod
    def from_json(cls, job: JobRow, data: Mapping[str, Any]) -> JobStatus:
        """A stored status of ``job`` (``to_json``), with the job row's own fields and links."""
        records, processed, chunks, done = (int(n) for n in data["progress"])
        counts = empty_counts()
        counts.update({k: int(v) for k, v in dict(data.get("counts") or {}).items() if k in counts})
        return _base(
            job,
            state=JobState(str(data["state"])),
            counts=counts,
            progress=JobProgress(records, processed, chunks, done),
            errors=[str(e) for e in data.get("errors") or []],
            finished_at=data.get("finishedAt"),
            top_errors=tuple(
                ErrorTally(code, int(count), str(message))
                for code, count, message in data.get("topErrors") or []
            ),
        )


def status_of(job: JobRow, chunks: Sequence[ChunkStatus]) -> JobStatus:
    """The status of ``job`` from its chunk rows."""
    counts = empty_counts()
    counts["invalid"] = job.invalid_count
    counts["skipped"] = job.skipped_count
    processed = job.invalid_count + job.skipped_count
    finished = [c for c in chunks if c.state in FINISHED_CHUNKS]
    for chunk in chunks:
        for key in COUNT_KEYS:
            counts[key] += chunk.counts.get(key, 0)
    for chunk in finished:
        processed += chunk.records
    cancelled = job.cancel_requested_at is not None
    if job.total_chunks == 0:
        state = JobState.FAILED if job.invalid_count else JobState.SUCCEEDED
    else:
        state = job_state(chunks, total_chunks=job.total_chunks, cancel_requested=cancelled)
    if state is JobState.CANCELLED:
        # Chunks never started (their messages, when they arrive, run nothing): not written.
        unstarted = max(0, job.accepted - sum(c.records for c in finished))
        counts["cancelled"] += unstarted
        processed += unstarted
    errors = sorted({c.error for c in chunks if c.error})
    finished_at = None
    if state in FINAL_STATES:
        finished_at = max((c.updated_at for c in finished if c.updated_at), default=None) or job.created_at
    return _base(
        job,
        state=state,
        counts=counts,
        progress=JobProgress(
            records=job.total_records,
            processed=min(processed, job.total_records),
            chunks=job.total_chunks,
            chunks_done=len(finished)
            + (
                sum(1 for c in chunks if c.state is ChunkState.QUEUED) + job.total_chunks - len(chunks)
                if state is JobState.CANCELLED
                else 0
            ),
        ),
        errors=errors + ([job.error] if job.error else []),
        finished_at=finished_at,
        top_errors=merge_tallies((t for c in chunks for t in c.errors_by_code), limit=TOP_ERRORS),
    )


def _base(
    job: JobRow,
    *,
    state: JobState,
    counts: dict[str, int],
    progress: JobProgress,
    errors: list[str],
    finished_at: str | None,
    top_errors: tuple[ErrorTally, ...],
) -> JobStatus:
    return JobStatus(
        job_id=job.job_id,
        entity=job.entity,
        trigger=job.trigger,
        dry_run=job.dry_run,
        state=state,
        created_at=job.created_at,
        requested_by=job.user_id,
        counts=counts,
        progress=progress,
        errors=errors,
        finished_at=finished_at,
        top_errors=top_errors,
        retry_of=job.retry_of,
        retried_by=job.retried_by,
        cancel_requested_at=job.cancel_requested_at,
        cancelled_by=job.cancelled_by,
    )
