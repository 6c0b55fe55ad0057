"""One harness for the job suites (exports and activities): a Dataverse emulator, real Azurite, the real
service, store and worker, and the queue delivered as the Functions host would.

A kind (``EXPORTS``, ``ACTIVITIES``) says only what differs: its store names, how its service and worker
are built and which documented models its answers must validate against. Deliveries wait on queue state
(a workspace's messages until none is left), never on the clock.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient
from pydantic import BaseModel

from core.adapters.dataverse.client import DataverseClient
from core.adapters.storage.job_store import JobNames, JobStore
from core.domain.activities import ActivitiesRequest
from core.domain.caller import Caller
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.export_request import ExportRequest
from core.domain.jobs import ChunkState
from core.entrypoints.exports_api import ExportStatus
from core.entrypoints.job_queries import ActivitiesStatus, ActivityRecordsPage, RecordsPage
from core.services.activities.service import ACTIVITY_NAMES, ActivityService
from core.services.activities.worker import ActivityWorker
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.exports.contacts_for_jobs import ContactExport
from core.services.exports.service import EXPORT_NAMES, ExportService
from core.services.exports.worker import ExportWorker
from core.services.jobs.engine import ChunkJobWorker
from core.services.jobs.messages import ChunkMessage, ClientFactory
from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session
from tests.support.dataverse import STATIC_TOKEN, HookedClient


@dataclass(frozen=True)
class JobKind:
    names: JobNames
    request: type[BaseModel]
    status_model: type[BaseModel]
    page_model: type[BaseModel]
    default_chunk_size: int
    service: Callable[[JobStore, DynamicsConfig, int], Any]
    worker: Callable[[JobStore, ClientFactory, dict[str, Any]], ChunkJobWorker]


def _export_worker(store: JobStore, client_for: ClientFactory, options: dict[str, Any]) -> ChunkJobWorker:
    return ExportWorker(store, client_for, **{"metadata": MetadataCache(), **options})


def _activity_worker(store: JobStore, client_for: ClientFactory, options: dict[str, Any]) -> ChunkJobWorker:
    metadata = options.pop("metadata", None) or MetadataCache()
    exporter = options.pop("export_contacts", None) or ContactExport(
        options.pop("contacts_store", store), metadata
    )
    return ActivityWorker(store, client_for, export_contacts=exporter, metadata=metadata, **options)


EXPORTS = JobKind(
    EXPORT_NAMES,
    ExportRequest,
    ExportStatus,
    RecordsPage,
    3,
    lambda store, config, size: ExportService(store, lambda _caller: config, chunk_size=size),
    _export_worker,
)
ACTIVITIES = JobKind(
    ACTIVITY_NAMES,
    ActivitiesRequest,
    ActivitiesStatus,
    ActivityRecordsPage,
    4,
    lambda store, config, size: ActivityService(store, lambda _caller: config, chunk_size=size),
    _activity_worker,
)


@dataclass
class JobHarness:
    kind: JobKind
    caller: Caller
    emulator: DataverseEmulator
    store: JobStore
    queues: QueueServiceClient
    config: DynamicsConfig
    integration_user_id: str
    client: HookedClient  # the worker's client: tests hook its bulk writes
    connection: DynamicsConnection
    worker: Any = field(init=False)

    def __post_init__(self) -> None:
        self.worker = self.worker_for(lambda _ws: (self.client, self.connection))  # type: ignore[return-value]

    def worker_for(self, client_for: ClientFactory, **options: Any) -> Any:
        """A worker of this harness's store reaching Dynamics through ``client_for``."""
        return self.kind.worker(self.store, client_for, dict(options))

    def service(self, chunk_size: int | None = None) -> Any:
        return self.kind.service(self.store, self.config, chunk_size or self.kind.default_chunk_size)

    def run(
        self,
        body: dict[str, Any],
        *,
        caller: Caller | None = None,
        redeliver_first: bool = False,
        chunk_size: int | None = None,
    ) -> dict[str, Any]:
        """Submit ``body``, deliver every chunk, and read back the status and every record (by platform
        id), each checked against the documented model."""
        caller = caller or self.caller
        service = self.service(chunk_size)
        job = service.submit(caller, self.kind.request.model_validate(body))
        self.drain(caller.workspace_id, redeliver_first=redeliver_first)
        status = service.status(caller.workspace_id, job.job_id)
        assert status is not None
        records = service.records(caller.workspace_id, job.job_id, None, None, 1000)
        assert records is not None
        # every answer the job tests read has the shape the OpenAPI document promises
        self.kind.status_model.of(status)  # type: ignore[attr-defined]
        self.kind.page_model.model_validate({"records": records.records, "nextCursor": records.next_cursor})
        return {"status": status, "records": {r["platformId"]: r for r in records.records}}

    def drain(self, workspace_id: str | None = None, *, redeliver_first: bool = False) -> list[ChunkState]:
        """Deliver the workspace's queued chunks until none is left (``redeliver_first``: each message
        comes back once more after its work, as when the host dies before deleting it)."""
        ws = workspace_id or self.caller.workspace_id

        def handle(chunk: ChunkMessage, dequeue_count: int) -> ChunkState:
            state: ChunkState = self.worker.handle(chunk, dequeue_count)
            if redeliver_first:
                self.store.put_chunk(chunk.workspace_id, chunk.job_id, chunk.chunk, ChunkState.RUNNING)
                state = self.worker.handle(chunk, dequeue_count + 1)
            return state

        return deliver(self.queues, self.kind.names.queue, ws, handle)


def deliver(
    queues: QueueServiceClient,
    queue_name: str,
    workspace_id: str,
    handle: Callable[[ChunkMessage, int], ChunkState],
    *,
    failed_come_back: bool = False,
) -> list[ChunkState]:
    """Handle every queued chunk of ``workspace_id`` (other workspaces' messages are put back untouched)
    until none is left; a message is deleted once handled, as the host does. A delivery that raises
    propagates, or with ``failed_come_back`` its message is visible again at once (the host's retry, without
    its visibility timeout) and comes back with the next dequeue count. The states, in order."""
    queue = queues.get_queue_client(queue_name)
    states = []
    while True:
        mine = []
        for message in queue.receive_messages(max_messages=32, visibility_timeout=60):
            chunk = ChunkMessage.parse(base64.b64decode(message.content))
            if chunk.workspace_id == workspace_id:
                mine.append((message, chunk))
            else:
                queue.update_message(message, visibility_timeout=0)  # another test's: leave it
        if not mine:
            return states
        for message, chunk in mine:
            try:
                states.append(handle(chunk, message.dequeue_count or 1))
            except Exception:
                if not failed_come_back:
                    raise
                queue.update_message(message, visibility_timeout=0)
                continue
            queue.delete_message(message)


def build_harness(
    kind: JobKind, caller: Caller, emulator: DataverseEmulator, connection_string: str, config: DynamicsConfig
) -> JobHarness:
    """A fresh emulator state, the kind's store and queue emptied, the real client."""
    emulator.reset()
    store = JobStore(
        TableServiceClient.from_connection_string(connection_string),
        BlobServiceClient.from_connection_string(connection_string),
        QueueServiceClient.from_connection_string(connection_string),
        kind.names,
    )
    store.ensure_ready()
    _forget_jobs(store, caller.workspace_id)
    queues = QueueServiceClient.from_connection_string(connection_string)
    queues.get_queue_client(kind.names.queue).clear_messages()
    client = DataverseClient(emulator.url, lambda _force: STATIC_TOKEN, session=trusting_session())
    who = client.who_am_i()
    connection = DynamicsConnection(caller.workspace_id, emulator.url, "integration@contoso.com", who.user_id)
    return JobHarness(
        kind, caller, emulator, store, queues, config, who.user_id.lower(), HookedClient(client), connection
    )


def _forget_jobs(store: JobStore, workspace_id: str) -> None:
    """The workspace starts without jobs: a chunk an earlier test left paused would be resumed by this
    test's reconnect (the suites share a workspace per kind)."""
    tables = store._tables
    jobs = tables.get_table_client(store.names.jobs_table)
    chunks = tables.get_table_client(store.names.chunks_table)
    for job in store.list_jobs(workspace_id, limit=1000):
        partition = f"{workspace_id}~{job.job_id}"
        for row in chunks.query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey"]
        ):
            chunks.delete_entity(partition, row["RowKey"])
        jobs.delete_entity(workspace_id, job.job_id)
    tables.get_table_client(store.names.paused_table).delete_entity("paused", workspace_id)
    index = tables.get_table_client(store.names.index_table)
    for row in index.query_entities(
        "PartitionKey eq @pk", parameters={"pk": workspace_id}, select=["RowKey"]
    ):
        index.delete_entity(workspace_id, row["RowKey"])


def emulator_fixture() -> Any:
    """A module-scoped Dataverse emulator fixture (each harness resets it)."""

    @pytest.fixture(scope="module")
    def emulator() -> Iterator[DataverseEmulator]:
        instance = DataverseEmulator(accepted_tokens=(STATIC_TOKEN,))
        instance.start()
        try:
            yield instance
        finally:
            instance.stop()

    return emulator


def harness_fixture(kind: JobKind, caller: Caller) -> Any:
    """``harness_for(config)``: a fresh harness of ``kind`` for ``caller``'s workspace."""

    @pytest.fixture()
    def harness_for(
        emulator: DataverseEmulator, storage_connection_string: str
    ) -> Callable[[DynamicsConfig], JobHarness]:
        return lambda config: build_harness(kind, caller, emulator, storage_connection_string, config)

    return harness_for
