"""Harness of the activity tests: a Dataverse emulator, real Azurite, the real service and worker."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from core.adapters.dataverse.client import DataverseClient
from core.adapters.export_store import ExportStore
from core.domain.activities import ActivitiesRequest
from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.export_job import ChunkState
from core.entrypoints.job_queries import ActivitiesStatus, ActivityRecordsPage
from core.services.activity_service import ActivityService
from core.services.activity_worker import ACTIVITY_NAMES, ACTIVITY_QUEUE, ActivityWorker
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.export_worker import ChunkMessage
from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session
from tests.support.dataverse import STATIC_TOKEN

WS = "ws-activities"
CALLER = Caller(WS, "platform-user-1", Role.ADMIN)


@pytest.fixture(scope="module")
def emulator() -> Iterator[DataverseEmulator]:
    instance = DataverseEmulator(accepted_tokens=(STATIC_TOKEN,))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@dataclass
class ActivityHarness:
    emulator: DataverseEmulator
    store: ExportStore
    worker: ActivityWorker
    queues: QueueServiceClient
    config: DynamicsConfig
    integration_user_id: str
    client: DataverseClient

    def service(self, chunk_size: int = 4) -> ActivityService:
        return ActivityService(self.store, lambda _caller: self.config, chunk_size=chunk_size)

    def run(
        self,
        body: dict[str, Any],
        *,
        redeliver_first: bool = False,
        chunk_size: int = 4,
    ) -> dict[str, Any]:
        service = self.service(chunk_size)
        job = service.submit(CALLER, ActivitiesRequest.model_validate(body))
        self.drain(redeliver_first=redeliver_first)
        status = service.status(WS, job.job_id)
        assert status is not None
        records = service.records(WS, job.job_id, None, None, 1000)
        assert records is not None
        # every answer the activity tests read has the shape the OpenAPI document promises
        ActivitiesStatus.model_validate(status)
        ActivityRecordsPage.model_validate(records)
        return {"status": status, "records": {r["platformId"]: r for r in records["records"]}}

    def drain(self, *, redeliver_first: bool = False) -> None:
        queue = self.queues.get_queue_client(ACTIVITY_QUEUE)
        while True:
            messages = list(queue.receive_messages(max_messages=32, visibility_timeout=60))
            if not messages:
                return
            for message in messages:
                chunk = ChunkMessage.parse(base64.b64decode(message.content))
                self.worker.handle(chunk, message.dequeue_count or 1)
                if redeliver_first:
                    # The host died after the work but before deleting the message: it comes back.
                    self.store.put_chunk(chunk.workspace_id, chunk.job_id, chunk.chunk, ChunkState.RUNNING)
                    self.worker.handle(chunk, 2)
                queue.delete_message(message)


@pytest.fixture()
def harness_for(
    emulator: DataverseEmulator, storage_connection_string: str
) -> Callable[[DynamicsConfig], ActivityHarness]:
    def build(config: DynamicsConfig) -> ActivityHarness:
        emulator.reset()
        store = ExportStore(
            TableServiceClient.from_connection_string(storage_connection_string),
            BlobServiceClient.from_connection_string(storage_connection_string),
            QueueServiceClient.from_connection_string(storage_connection_string),
            ACTIVITY_NAMES,
        )
        store.ensure_ready()
        queues = QueueServiceClient.from_connection_string(storage_connection_string)
        queues.get_queue_client(ACTIVITY_QUEUE).clear_messages()
        client = DataverseClient(emulator.url, lambda _force: STATIC_TOKEN, session=trusting_session())
        who = client.who_am_i()
        connection = DynamicsConnection(WS, emulator.url, "integration@contoso.com", who.user_id)
        worker = ActivityWorker(store, lambda _ws: (client, connection), metadata=MetadataCache())
        return ActivityHarness(emulator, store, worker, queues, config, who.user_id.lower(), client)

    return build
