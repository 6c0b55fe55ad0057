"""Export jobs persist in real Azure Storage (Azurite): staging, chunk status, per-record results, queue."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from core.adapters.storage.job_store import JobRow, JobStore
from core.domain.jobs import ChunkState, FieldError, RecordAction, RecordOutcome
from core.services.activities.items import StagedEvent
from core.services.exports.items import StagedRecord
from core.services.exports.service import EXPORT_NAMES, EXPORT_QUEUE


@pytest.fixture()
def store(storage_connection_string: str) -> JobStore:
    s = JobStore(
        TableServiceClient.from_connection_string(storage_connection_string),
        BlobServiceClient.from_connection_string(storage_connection_string),
        QueueServiceClient.from_connection_string(storage_connection_string),
        EXPORT_NAMES,
    )
    s.ensure_ready()
    return s


def _job(ws: str, job: str) -> JobRow:
    return JobRow(ws, job, "contacts", "manual", False, "u1", 3, 2, "2026-11-27T00:00:00+00:00", 0)


def test_chunks_staged_by_an_earlier_version_still_load(
    store: JobStore, storage_connection_string: str
) -> None:
    # Messages queued before a deployment are worked by the new code: the blob's JSON is the contract.
    ws, job = "ws-a", uuid.uuid4().hex
    blobs = BlobServiceClient.from_connection_string(storage_connection_string)
    rows = [
        {"seq": 4, "record": {"id": "c4", "lastName": "Ng"}},
        {"seq": 7, "event": {"id": "e7", "contactId": "c1"}, "contact": None},
        {"seq": 9, "event": {"id": "e9", "contactId": "c2"}, "contact": {"id": "c2"}, "exportAs": "c1"},
    ]
    blobs.get_blob_client(EXPORT_NAMES.container, f"{ws}/{job}/chunk-000000.json").upload_blob(
        json.dumps(rows).encode()
    )
    record, plain, aliased = store.load_chunk(ws, job, 0)
    assert StagedRecord.from_row(record) == StagedRecord(4, {"id": "c4", "lastName": "Ng"})
    assert StagedEvent.from_row(plain) == StagedEvent(7, {"id": "e7", "contactId": "c1"}, None)
    assert StagedEvent.from_row(aliased) == StagedEvent(
        9, {"id": "e9", "contactId": "c2"}, {"id": "c2"}, "c1"
    )
    assert [r.seq for r in (record, plain, aliased)] == [4, 7, 9]
    # and what this version stages reads back the same JSON
    store.stage_chunk(
        ws, job, 1, [StagedRecord.from_row(record).to_row(), StagedEvent.from_row(aliased).to_row()]
    )
    staged = blobs.get_blob_client(EXPORT_NAMES.container, f"{ws}/{job}/chunk-000001.json").download_blob()
    assert json.loads(staged.readall()) == [rows[0], rows[2]]


def test_staged_records_and_results_round_trip(store: JobStore, storage_connection_string: str) -> None:
    ws, job = "ws-a", uuid.uuid4().hex
    store.create_job(_job(ws, job))
    store.stage_chunk(ws, job, 0, [StagedRecord(0, {"id": "c1", "firstName": "Zoë"}).to_row()])
    [row] = store.load_chunk(ws, job, 0)
    assert StagedRecord.from_row(row) == StagedRecord(0, {"id": "c1", "firstName": "Zoë"})
    big_note = "x" * 100_000  # larger than one table property: split and joined transparently
    outcomes = [
        RecordOutcome(
            i, f"c{i}", RecordAction.FAILED, errors=[FieldError("emailaddress1", big_note, "0x80044331")]
        )
        for i in range(150)
    ]
    store.save_outcomes(ws, job, outcomes)
    first = store.records_page(ws, job, action=None, cursor=None, limit=100)
    assert len(first.records) == 100 and first.next_cursor is not None
    rest = store.records_page(ws, job, action=None, cursor=first.next_cursor, limit=100)
    assert [r.seq for r in first.records + rest.records] == list(range(150))
    assert rest.records[0].detail["errors"][0]["message"] == big_note
    store.finish_chunk(ws, job, 0, ChunkState.DONE, {"created": 2}, records=2)
    store.put_chunk(ws, job, 1, ChunkState.RUNNING)
    chunks = store.list_chunks(ws, job)
    assert [(c.index, c.state) for c in chunks] == [(0, ChunkState.DONE), (1, ChunkState.RUNNING)]
    assert chunks[0].counts["created"] == 2
    # Another workspace sees nothing of this job.
    assert store.get_job("ws-b", job) is None
    assert store.records_page("ws-b", job, action=None, cursor=None, limit=10).records == []


def test_queue_messages_carry_references_only(store: JobStore, storage_connection_string: str) -> None:
    queues = QueueServiceClient.from_connection_string(storage_connection_string)
    queue = queues.get_queue_client(EXPORT_QUEUE)
    queue.clear_messages()
    store.enqueue_chunks("ws-a", "job1", [0, 1])
    bodies = [json.loads(base64.b64decode(m.content)) for m in queue.receive_messages(max_messages=10)]
    assert sorted(b["chunk"] for b in bodies) == [0, 1]
    assert all(set(b) == {"workspaceId", "jobId", "chunk"} for b in bodies)
