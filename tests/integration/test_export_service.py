"""Submitting an export: bad rows are reported, good rows staged in chunks, nothing lost or doubled."""

from __future__ import annotations

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from core.adapters.storage.job_store import JobStore
from core.domain.caller import Caller, Role
from core.domain.catalog import FieldType
from core.domain.config import DynamicsConfig, FieldMapping, ManualExportMapping, PlatformFieldMapping
from core.domain.export_request import ExportRequest
from core.domain.job_status import JobProgress
from core.services.exports.service import EXPORT_NAMES, EXPORT_QUEUE, ExportService, InvalidExport

ADMIN_A = Caller("ws-svc-a", "user-1", Role.ADMIN)
ADMIN_B = Caller("ws-svc-b", "user-9", Role.ADMIN)
SERVICE_A = Caller("ws-svc-a", "platform-backend", Role.SERVICE)  # the only one submitting automatic exports


def _config() -> DynamicsConfig:
    manual = ManualExportMapping(
        kind="manual_export", dynamics_field="description", value_type=FieldType.TEXT
    )
    name = PlatformFieldMapping(kind="platform_field", dynamics_field="lastname", platform_field="lastName")
    return DynamicsConfig.default().model_copy(
        update={"field_mapping": FieldMapping(contacts=[name, manual])}
    )


@pytest.fixture()
def service(storage_connection_string: str) -> ExportService:
    store = JobStore(
        TableServiceClient.from_connection_string(storage_connection_string),
        BlobServiceClient.from_connection_string(storage_connection_string),
        QueueServiceClient.from_connection_string(storage_connection_string),
        EXPORT_NAMES,
    )
    return ExportService(store, lambda _caller: _config(), chunk_size=2)


def _request(**kw: object) -> ExportRequest:
    body = {"entity": "contacts", "records": [{"id": f"c{i}", "firstName": f"N{i}"} for i in range(5)]}
    body.update(kw)
    return ExportRequest.model_validate(body)


def test_submit_stages_chunks_and_reports_invalid_rows(
    service: ExportService, storage_connection_string: str
) -> None:
    queue = QueueServiceClient.from_connection_string(storage_connection_string).get_queue_client(
        EXPORT_QUEUE
    )
    service.submit(ADMIN_A, _request())  # creates the queue
    queue.clear_messages()
    records = [{"id": "c1"}, {"id": "c2", "professionalEmail": "bad"}, {"id": "c3"}, {"id": "c4"}]
    result = service.submit(ADMIN_A, _request(records=records, manualValues={"description": "Q4 list"}))
    assert (result.accepted, result.invalid) == (3, 1)
    status = service.status(ADMIN_A.workspace_id, result.job_id)
    assert status is not None
    assert status.state == "queued" and status.counts["invalid"] == 1
    assert status.progress == JobProgress(records=4, processed=1, chunks=2, chunks_done=0)
    assert len(queue.peek_messages(max_messages=32)) == 2
    page = service.records(ADMIN_A.workspace_id, result.job_id, "invalid", None, 10)
    assert page is not None and page.records[0]["platformId"] == "c2"
    assert page.records[0]["errors"][0]["field"] == "professionalEmail"
    # Another workspace cannot see it, whatever id it guesses.
    assert service.status(ADMIN_B.workspace_id, result.job_id) is None
    assert service.records(ADMIN_B.workspace_id, result.job_id, None, None, 10) is None


def test_manual_values_must_be_configured_and_typed(service: ExportService) -> None:
    with pytest.raises(InvalidExport) as err:
        service.submit(ADMIN_A, _request(manualValues={"jobtitle": "x", "description": 5}))
    pointers = {p.pointer for p in err.value.problems}
    assert pointers == {"/manualValues/jobtitle", "/manualValues/description"}
    with pytest.raises(InvalidExport):
        service.submit(SERVICE_A, _request(trigger="automatic", manualValues={"description": "x"}))


def test_idempotency_key_returns_the_same_job(service: ExportService) -> None:
    first = service.submit(ADMIN_A, _request(), idempotency_key="retry-me")
    again = service.submit(ADMIN_A, _request(), idempotency_key="retry-me")
    assert first.job_id == again.job_id and first.created_new and not again.created_new
    other = service.submit(ADMIN_B, _request(), idempotency_key="retry-me")
    assert other.job_id != first.job_id


def test_exporting_with_nothing_mapped_is_refused(storage_connection_string: str) -> None:
    store = JobStore(
        TableServiceClient.from_connection_string(storage_connection_string),
        BlobServiceClient.from_connection_string(storage_connection_string),
        QueueServiceClient.from_connection_string(storage_connection_string),
        EXPORT_NAMES,
    )
    service = ExportService(store, lambda _caller: DynamicsConfig.default())
    with pytest.raises(InvalidExport) as err:
        service.submit(ADMIN_A, _request())
    assert [p.pointer for p in err.value.problems] == ["/entity"]
    assert "maps no platform field" in err.value.problems[0].message
