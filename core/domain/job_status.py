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
    FINAL_STATES,
    FINISHED_CHUNKS,
    ChunkStatus,
    JobRow,
    JobState,
    empty_counts,
    summarize_job_row,
)


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
    top_errors: tuple[tuple[str, int], ...] = field(default_factory=tuple)
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
            "topErrors": [[code, count] for code, count in self.top_errors],
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
            top_errors=tuple((str(code), int(count)) for code, count in data.get("topErrors") or []),
        )


def status_of(job: JobRow, chunks: Sequence[ChunkStatus]) -> JobStatus:
    """The status of ``job`` from its chunk rows (``summarize_job``, with when it finished)."""
    summary = summarize_job_row(job, chunks)
    finished_at = None
    if summary.state in FINAL_STATES:
        ends = [c.updated_at for c in chunks if c.state in FINISHED_CHUNKS and c.updated_at]
        finished_at = max(ends, default=None) or job.cancel_requested_at or job.created_at
    return _base(
        job,
        state=summary.state,
        counts=summary.counts,
        progress=JobProgress(
            records=job.total_records,
            processed=summary.processed,
            chunks=job.total_chunks,
            chunks_done=summary.chunks_done,
        ),
        errors=summary.errors,
        finished_at=finished_at,
        top_errors=tuple(summary.top_error_codes),
    )


def _base(
    job: JobRow,
    *,
    state: JobState,
    counts: dict[str, int],
    progress: JobProgress,
    errors: list[str],
    finished_at: str | None,
    top_errors: tuple[tuple[str, int], ...],
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
