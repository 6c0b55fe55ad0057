"""Reading jobs, the same way for every job kind: status (derived from the chunk rows), the job list,
per-record results, and resuming what paused for the Dynamics token.

Status costs one query of the job's chunk rows (no job-row contention: workers never write the job row);
records are read a page at a time in submission order (row key = position).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.adapters.job_store import JobRow, JobStore
from core.domain.jobs import COUNT_KEYS, ChunkState, JobState, empty_counts, job_state


@dataclass(frozen=True)
class SubmitResult:
    job_id: str
    accepted: int
    invalid: int
    created_new: bool  # False when an Idempotency-Key named a job that already exists


class JobQueries:
    def __init__(self, store: JobStore) -> None:
        self._store = store

    def status(self, workspace_id: str, job_id: str) -> dict[str, Any] | None:
        job = self._store.get_job(workspace_id, job_id)
        if job is None:
            return None
        return self._status_of(job)

    def _status_of(self, job: JobRow) -> dict[str, Any]:
        chunks = self._store.list_chunks(job.workspace_id, job.job_id)
        counts = empty_counts()
        counts["invalid"] = job.invalid_count
        counts["skipped"] = job.skipped_count
        processed = job.invalid_count + job.skipped_count
        for chunk in chunks:
            for key in COUNT_KEYS:
                counts[key] += chunk.counts.get(key, 0)
            if chunk.state in (ChunkState.DONE, ChunkState.FAILED):
                processed += chunk.records
        if job.total_chunks == 0:
            state = JobState.FAILED if job.invalid_count else JobState.SUCCEEDED
        else:
            state = job_state(chunks, total_chunks=job.total_chunks)
        errors = sorted({c.error for c in chunks if c.error})
        return {
            "jobId": job.job_id,
            "entity": job.entity,
            "trigger": job.trigger,
            "dryRun": job.dry_run,
            "state": state.value,
            "createdAt": job.created_at,
            "requestedBy": job.user_id,
            "counts": counts,
            "progress": {
                "records": job.total_records,
                "processed": min(processed, job.total_records),
                "chunks": job.total_chunks,
                "chunksDone": sum(1 for c in chunks if c.state in (ChunkState.DONE, ChunkState.FAILED)),
            },
            "errors": errors + ([job.error] if job.error else []),
        }

    def list_jobs(self, workspace_id: str, limit: int = 50) -> list[dict[str, Any]]:
        self._store.ensure_ready()
        return [self._status_of(job) for job in self._store.list_jobs(workspace_id, limit)]

    def records(
        self, workspace_id: str, job_id: str, status: str | None, cursor: str | None, limit: int
    ) -> dict[str, Any] | None:
        if self._store.get_job(workspace_id, job_id) is None:
            return None
        page = self._store.records_page(workspace_id, job_id, action=status, cursor=cursor, limit=limit)
        return {"records": [r.detail for r in page.records], "nextCursor": page.next_cursor}

    def resume_paused(self, workspace_id: str) -> int:
        """Re-enqueue every chunk paused for the Dynamics token (called when the workspace reconnects and
        by the token timer for marked workspaces). A chunk is enqueued once even when resumers race
        (``requeue_paused``). The workspace's paused marker, read first, is removed afterwards unless a
        chunk paused again meanwhile: then the next timer run looks again."""
        self._store.ensure_ready()
        marker = self._store.paused_marker(workspace_id)
        resumed = 0
        for job in self._store.list_jobs(workspace_id, limit=1000):
            for chunk in self._store.list_chunks(workspace_id, job.job_id):
                if chunk.state is ChunkState.PAUSED_RECONNECT and self._store.requeue_paused(
                    workspace_id, job.job_id, chunk.index
                ):
                    resumed += 1
        if marker is not None:
            self._store.clear_paused_marker(workspace_id, marker)
        return resumed

    def paused_workspaces(self) -> list[str]:
        """Workspaces marked as having chunks paused for the token."""
        self._store.ensure_ready()
        return self._store.paused_workspaces()
