"""Retention against real Table and Blob Storage (Azurite), while an export runs through the real worker:
old finished jobs lose their per-record results and staged records in bounded runs, very old ones their
summary too; the running export, and an old job that has not ended, keep everything."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest

from core.adapters.storage.job_store import JobFilter, JobStore
from core.adapters.storage.result_files import ResultFiles
from core.domain.config import DynamicsConfig
from core.domain.export_request import ExportRequest
from core.domain.jobs import ChunkState
from core.domain.result_files import ResultFormat
from core.services.jobs.downloads import ResultsDownloads, ResultsExpired
from core.services.jobs.messages import ChunkMessage
from core.services.jobs.retention import JobRetention, RetentionPolicy, RetentionReport
from tests.integration.exports.conftest import ExportHarness
from tests.integration.exports.test_export_worker import CONFIG
from tests.support.job_harness import deliver
from tests.support.results import seed_job

LIMIT = 250  # rows and blobs per run


def _records(store: JobStore, ws: str, job_id: str) -> int:
    return sum(len(page) for page in store.iter_outcome_pages(ws, job_id))


def _blobs(store: JobStore, ws: str, job_id: str) -> int:
    container = store._blobs.get_container_client(store.names.container)
    return len(list(container.list_blobs(name_starts_with=f"{ws}/{job_id}/")))


def test_retention_deletes_old_results_in_bounded_runs_while_an_export_runs(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    harness = harness_for(CONFIG)
    store = harness.store
    for scan in ("results", "summaries"):  # the marks of earlier runs against this Azurite
        store.set_retention_mark(scan, "")
    now = dt.datetime.now(dt.UTC)
    old_ws = f"ws-old-{uuid.uuid4().hex[:8]}"
    old = seed_job(store, old_ws, 1_200, created_at=now - dt.timedelta(days=40), staged=True)
    old_running = seed_job(
        store, old_ws, 600, created_at=now - dt.timedelta(days=40), staged=True, finished=False
    )
    ancient = seed_job(store, old_ws, 10, created_at=now - dt.timedelta(days=500), staged=True)
    records_table = store._tables.get_table_client(store.names.records_table)
    # what an activity job keeps of the contacts it exported, beside its records
    records_table.upsert_entity({"PartitionKey": f"{old_ws}~{old}~contacts", "RowKey": "0000000", "x": 1})
    retention = JobRetention([store], RetentionPolicy(results_days=30, summary_days=400, max_deletes=LIMIT))
    runs: list[RetentionReport] = []

    # The export runs one chunk at a time, and retention runs before each of its chunks.
    ws = harness.caller.workspace_id
    records = [{"id": f"r-{i}", "firstName": "Ada", "lastName": f"Keep{i}"} for i in range(9)]
    job = harness.service(3).submit(
        harness.caller, ExportRequest.model_validate({"entity": "contacts", "records": records})
    )

    def handle(chunk: ChunkMessage, dequeue_count: int) -> ChunkState:
        runs.append(retention.run())
        state: ChunkState = harness.worker.handle(chunk, dequeue_count)
        return state

    assert deliver(harness.queues, harness.kind.names.queue, ws, handle) == [ChunkState.DONE] * 3
    while runs[-1].deleted or not runs[-1].complete:
        runs.append(retention.run())
        assert len(runs) < 50

    # Bounded: no run deleted more than its limit, and it took several runs to get through.
    assert max(r.deleted for r in runs) <= LIMIT
    assert sum(1 for r in runs if r.deleted) >= (1_200 + 10) // LIMIT
    assert runs[-1].deleted == 0 and runs[-1].complete  # nothing left; the next run reads no old job

    # The export that ran meanwhile is whole: every record, its outcome, its staged records.
    chunks = store.list_chunks(ws, job.job_id)
    assert [c.state for c in chunks] == [ChunkState.DONE] * 3
    assert sum(c.counts["created"] for c in chunks) == 9
    assert _records(store, ws, job.job_id) == 9
    assert _blobs(store, ws, job.job_id) == 4  # request + 3 chunks

    # The old finished job: results and staged records gone, its summary kept (and downloads say 410).
    assert _records(store, old_ws, old) == 0 and _blobs(store, old_ws, old) == 0
    contacts = records_table.query_entities(
        "PartitionKey eq @pk", parameters={"pk": f"{old_ws}~{old}~contacts"}
    )
    assert list(contacts) == []
    kept = store.get_job(old_ws, old)
    assert kept is not None and kept.records_deleted and kept.records_deleted_at
    assert sum(c.counts["created"] for c in store.list_chunks(old_ws, old)) == 1_200
    downloads = ResultsDownloads(store, ResultFiles(store._blobs, store.names.container), kind="export")
    with pytest.raises(ResultsExpired):
        downloads.link(old_ws, old, ResultFormat.CSV, sees_crm_values=True)

    # An old job that has not ended keeps everything; one older than the summaries' period is gone whole.
    assert _records(store, old_ws, old_running) == 600 and _blobs(store, old_ws, old_running) == 3
    assert store.get_job(old_ws, ancient) is None
    listed = [j.job.job_id for j in store.indexed_jobs(old_ws, JobFilter(), after=None, page_size=100)]
    assert ancient not in listed and old in listed  # the history forgets it with its summary
    assert store.list_chunks(old_ws, ancient) == [] and _records(store, old_ws, ancient) == 0
    assert _blobs(store, old_ws, ancient) == 0
