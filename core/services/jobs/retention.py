"""Retention: a finished job's per-record results, staged records and download files are deleted
``results_days`` after it was submitted, its summary (job and chunk rows: state, counts, who, when)
``summary_days`` after; so what a workspace stores is bounded by what it submits in those periods. The
Dynamics usage view's day rows go after the week it shows.

Run by a timer (``core/entrypoints/retention_timer.py``). Each run deletes at most ``max_deletes`` rows
and blobs in all, in entity-group transactions of 100 rows, and goes on where the previous one stopped:
per job kind and per scan (results, summaries) a mark in the jobs table says from which submission time
on jobs may still have something to delete. A run reads the jobs submitted between that mark and the
cutoff (one query across workspaces, filtered by the table), skips those already done, and moves the mark
to the cutoff once it got through all of them; so in steady state a run reads only the jobs that crossed
the cutoff since the last run.

Only jobs that have ended are touched: a job still queued, running or paused (waiting for a reconnect)
keeps everything, however old, and holds the mark back to its submission time until it ends. Before the
first row of a job's results is deleted, its row says so (``recordsDeletedAt``): from then on a download
of it answers 410 instead of a file with rows missing, and a download finishing at that moment is not
handed out.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.adapters.storage.job_store import JobRow, JobStore
from core.domain.jobs import job_state
from core.services.jobs.downloads import UNFINISHED

log = logging.getLogger(__name__)

DEFAULT_RESULTS_DAYS = 30
DEFAULT_SUMMARY_DAYS = 400
DEFAULT_MAX_DELETES = 20_000
USAGE_DAYS = 7  # days GET /api/dynamics/usage shows


@dataclass(frozen=True)
class RetentionPolicy:
    results_days: int = DEFAULT_RESULTS_DAYS
    summary_days: int = DEFAULT_SUMMARY_DAYS
    max_deletes: int = DEFAULT_MAX_DELETES

    def __post_init__(self) -> None:
        if self.results_days < 1 or self.max_deletes < 1:
            raise ValueError("retention days and deletes per run must be at least 1")
        if self.summary_days < self.results_days:
            raise ValueError("job summaries must be kept at least as long as their results")


@dataclass
class RetentionReport:
    deleted: int = 0  # rows and blobs
    results_deleted: list[str] = field(default_factory=list)  # jobs whose results are now gone
    jobs_deleted: list[str] = field(default_factory=list)  # jobs gone altogether
    held: int = 0  # jobs past a cutoff that have not ended
    complete: bool = True  # False: the run stopped at its limit; the next one goes on

    def as_dict(self) -> dict[str, object]:
        return {
            "deleted": self.deleted,
            "resultsDeleted": len(self.results_deleted),
            "jobsDeleted": len(self.jobs_deleted),
            "held": self.held,
            "complete": self.complete,
        }


class JobRetention:
    def __init__(
        self,
        stores: Sequence[JobStore],
        policy: RetentionPolicy,
        *,
        usage_days: Callable[[dt.date, int], int] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._stores = stores
        self._policy = policy
        self._usage_days = usage_days  # deletes the Dynamics usage view's day rows before a date
        self._clock = clock

    def run(self) -> RetentionReport:
        report = RetentionReport()
        now = self._clock()
        for store in self._stores:
            store.ensure_ready()
            self._scan(store, "results", now - dt.timedelta(days=self._policy.results_days), report)
            self._scan(store, "summaries", now - dt.timedelta(days=self._policy.summary_days), report)
        if self._usage_days is not None and self._left(report) > 0:
            # The usage view shows the last USAGE_DAYS days; older day rows have no reader.
            before = (now - dt.timedelta(days=USAGE_DAYS)).date()
            report.deleted += self._usage_days(before, self._left(report))
        log.info("retention: %s", report.as_dict())
        return report

    def _left(self, report: RetentionReport) -> int:
        return self._policy.max_deletes - report.deleted

    def _scan(self, store: JobStore, scan: str, cutoff: dt.datetime, report: RetentionReport) -> None:
        start = store.retention_mark(scan) or ""
        held: list[str] = []
        for job in store.jobs_created_between(start, cutoff.isoformat()):
            if scan == "results" and job.records_deleted:
                continue
            if not self._ended(store, job):
                held.append(job.created_at)
                report.held += 1
                continue
            done = self._delete_results(store, job, report)
            if done and scan == "summaries":
                done = self._delete_summary(store, job, report)
            if not done:
                report.complete = False
                return  # the mark stays: the next run reads this range again
        store.set_retention_mark(scan, min([*held, cutoff.isoformat()]))

    @staticmethod
    def _ended(store: JobStore, job: JobRow) -> bool:
        if not job.total_chunks:
            return True
        chunks = store.list_chunks(job.workspace_id, job.job_id)
        return job_state(chunks, total_chunks=job.total_chunks) not in UNFINISHED

    def _delete_results(self, store: JobStore, job: JobRow, report: RetentionReport) -> bool:
        if job.records_deleted:
            return True
        if self._left(report) <= 0:
            return False
        ws, job_id = job.workspace_id, job.job_id
        if not job.records_deleted_at:
            store.mark_records_deleted(ws, job_id, done=False)
        rows, rows_done = store.delete_job_rows(ws, job_id, store.names.records_table, self._left(report))
        report.deleted += rows
        if not rows_done:
            return False
        blobs, blobs_done = store.delete_staged(ws, job_id, self._left(report))
        report.deleted += blobs
        if not blobs_done:
            return False
        store.mark_records_deleted(ws, job_id, done=True)
        report.results_deleted.append(job_id)
        return True

    def _delete_summary(self, store: JobStore, job: JobRow, report: RetentionReport) -> bool:
        if self._left(report) <= 0:
            return False
        rows, done = store.delete_job_rows(
            job.workspace_id, job.job_id, store.names.chunks_table, self._left(report)
        )
        report.deleted += rows
        if not done:
            return False
        store.delete_job_row(job)  # last: until then a run finds the job again
        report.deleted += 2  # its index row and its job row
        report.jobs_deleted.append(job.job_id)
        return True
