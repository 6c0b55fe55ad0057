"""Jobs whose per-record results are already stored, written straight into the job store (the download
and retention suites and bench.download need finished jobs of many records, not the export that made
them)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from core.adapters.storage.job_store import JobRow, JobStore, StagedRow
from core.domain.jobs import ChunkState, RecordAction, RecordOutcome, count_outcomes

CHUNK = 500


def plain_outcome(seq: int) -> RecordOutcome:
    return RecordOutcome(seq, f"p-{seq}", RecordAction.CREATED, str(uuid.UUID(int=seq + 1)))


def seed_job(
    store: JobStore,
    workspace_id: str,
    records: int,
    *,
    outcome: Callable[[int], RecordOutcome] = plain_outcome,
    finished: bool = True,
    created_at: dt.datetime | None = None,
    staged: bool = False,
) -> str:
    """A job of ``records`` stored outcomes in chunks of 500: every chunk ``done`` (``finished``) or the
    last one still ``running``; ``staged`` also stages each chunk's records in Blob Storage."""
    store.ensure_ready()
    job_id = str(uuid.uuid4())
    chunks = max(1, -(-records // CHUNK))
    created = (created_at or dt.datetime.now(dt.UTC)).isoformat()
    job = JobRow(workspace_id, job_id, "contacts", "manual", False, "user-1", records, chunks, created, 0)
    store.create_job(job)
    store.index_job(job)  # as a submission writes it: the history lists the job
    if staged:
        store.stage_request(workspace_id, job_id, {"entity": "contacts"})

    def one_chunk(index: int) -> None:
        outcomes = [outcome(seq) for seq in range(index * CHUNK, min(records, (index + 1) * CHUNK))]
        store.save_outcomes(workspace_id, job_id, outcomes)
        if staged:
            store.stage_chunk(
                workspace_id,
                job_id,
                index,
                [StagedRow(o.seq, {"record": {"id": o.platform_id}}) for o in outcomes],
            )
        state = ChunkState.RUNNING if not finished and index == chunks - 1 else ChunkState.DONE
        if state is ChunkState.DONE:
            store.finish_chunk(workspace_id, job_id, index, state, count_outcomes(outcomes), len(outcomes))
        else:
            store.put_chunk(workspace_id, job_id, index, state)

    _parallel(one_chunk, range(chunks))
    return job_id


def _parallel(call: Callable[[int], None], indexes: Iterable[int]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(call, i) for i in indexes]:
            future.result()
