"""Reconnecting always resumes what was paused for the token, including the race the reconnect's own
resume cannot see: a worker met the dead grant, and the admin reconnects while that chunk is still
running (its row says ``running``, so the reconnect's resume scan skips it), then the worker writes it
``paused_reconnect`` and deletes its message. Real msal, real SecretClient, Azurite, the Dataverse emulator
trusting the Entra stand-in's tokens, the real export worker and the real token provider.

Either the pausing worker sees the new connection and re-queues the chunk itself, or (a worker without
that check, or whose check failed) the next token timer run resumes the marked workspace. Either way every
record lands in Dynamics once. And one kind of work failing to resume never stops the other."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from core.adapters.storage.job_store import JobNames, JobStore
from core.bootstrap import build_connection
from core.domain.connection import ConnectionStatus
from core.domain.export_request import ExportRequest
from core.domain.jobs import ChunkState
from core.services.activities.service import ActivityService
from core.services.connection.service import (
    ConnectionComponents,
    PausedWorkSource,
    resume_workspace,
)
from core.services.dynamics.access import DynamicsAccess
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.exports.service import EXPORT_NAMES, ExportService
from core.services.exports.worker import ExportWorker
from core.services.jobs.messages import ChunkMessage, ReconnectCheck
from core.settings import load_settings
from emulators.dataverse.server import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.tls import trusting_session
from tests.integration.exports.test_export_worker import CONFIG
from tests.support.dataverse import STATIC_TOKEN, rows
from tests.support.identity import (
    IdentityStack,
    caller,
    finish_sign_in,
    key_wrapper_for,
    local_secret_store,
)
from tests.support.queues import drain_workspace

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]


@pytest.fixture()
def dataverse(entra: EntraEmulator) -> Iterator[DataverseEmulator]:
    emulator = DataverseEmulator(accepted_tokens=(STATIC_TOKEN,))
    emulator.add_signing_key(entra.public_jwk())
    emulator.start()
    yield emulator
    emulator.stop()


class ReconnectWhilePausing(JobStore):
    """The store of the race: the first time a worker writes a chunk ``paused_reconnect``, the admin
    reconnects just before that write lands (the chunk's row still says ``running``)."""

    reconnect: Callable[[], None] | None = None

    def put_chunk(self, workspace_id: str, job_id: str, index: int, state: ChunkState, **extra: Any) -> None:
        if state is ChunkState.PAUSED_RECONNECT and self.reconnect is not None:
            reconnect, self.reconnect = self.reconnect, None
            assert self.get_chunk(workspace_id, job_id, index).state is ChunkState.RUNNING  # type: ignore[union-attr]
            reconnect()
        super().put_chunk(workspace_id, job_id, index, state, **extra)


class Setup:
    def __init__(
        self,
        stack: IdentityStack,
        dataverse: DataverseEmulator,
        reconnected: Callable[[ConnectionComponents], ReconnectCheck | None],
    ) -> None:
        self.ws = f"ws-resume-{uuid.uuid4().hex[:8]}"
        self.stack, self.dataverse = stack, dataverse
        connection_string = stack.azurite.connection_string
        self.queues = QueueServiceClient.from_connection_string(connection_string)
        self.store = ReconnectWhilePausing(
            stack.tables,
            BlobServiceClient.from_connection_string(connection_string),
            self.queues,
            EXPORT_NAMES,
        )
        self.store.ensure_ready()
        self.exports = ExportService(self.store, lambda _caller: CONFIG, chunk_size=3)
        settings = load_settings(stack.settings_env)
        kinds: list[tuple[str, PausedWorkSource]] = [("export", lambda: self.exports)]

        def on_reconnected(workspace_id: str) -> None:  # what production wires (connection_service)
            resume_workspace(workspace_id, kinds)

        self.components = build_connection(
            settings,
            tables=stack.tables,
            secret_store=local_secret_store(
                stack.keyvault.vault_url, settings.require("KEY_VAULT_LOCAL_TOKEN")
            ),
            key_wrapper=key_wrapper_for(settings),
            http_session=stack.session,
            table_prefix=stack.prefix,
            on_reconnected=on_reconnected,
            paused_work=lambda: kinds,
        )
        self.worker = ExportWorker(
            self.store,
            DynamicsAccess(self.components.tokens, session_factory=trusting_session).client_for,
            metadata=MetadataCache(),
            reconnected=reconnected(self.components),
        )
        user = stack.entra.current_user
        dataverse.add_user(object_id=user.object_id, domainname=user.email)

    def connect(self) -> None:
        service = self.components.service
        admin = caller(self.ws)
        finish_sign_in(
            service, admin, self.stack.browser_sign_in(service.start_connect(admin, self.dataverse.url))
        )

    def drain(self) -> list[ChunkState]:
        return drain_workspace(self.queues, self.worker, self.ws)

    def race(self) -> str:
        """Connect, submit 6 records (2 chunks), the user's password changes; the first chunk meets the
        dead grant and the admin reconnects while it is pausing. Returns the job id."""
        self.stack.entra.access_token_lifetime = 120  # every use of the token goes through a refresh
        self.connect()
        records = [{"id": f"p-{i}", "firstName": "Ada", "lastName": f"Race {i}"} for i in range(6)]
        job = self.exports.submit(
            caller(self.ws), ExportRequest.model_validate({"entity": "contacts", "records": records})
        )
        self.stack.entra.revoke_user(self.stack.entra.current_user.object_id)

        def reconnect() -> None:
            self.stack.entra.access_token_lifetime = 3600
            self.connect()  # its resume scan runs now and finds nothing paused yet

        self.store.reconnect = reconnect
        return job.job_id

    def assert_every_record_once(self, job_id: str) -> None:
        status = self.exports.status(self.ws, job_id)
        assert status is not None and status.state == "succeeded", status
        assert status.counts["created"] == 6
        names = sorted(r["lastname"] for r in rows(self.dataverse, "contacts"))
        assert names == [f"Race {i}" for i in range(6)]  # every record, once


def test_a_chunk_paused_after_the_reconnect_resumed_is_requeued_by_its_worker(
    identity_stack: IdentityStack, dataverse: DataverseEmulator
) -> None:
    setup = Setup(identity_stack, dataverse, lambda c: c.tokens.reconnected_since)
    job_id = setup.race()
    states = setup.drain()
    assert setup.store.reconnect is None, "the race did not happen"
    # the first delivery re-queued its chunk at once; then both chunks ran under the new connection
    assert states == [ChunkState.QUEUED, ChunkState.DONE, ChunkState.DONE], states
    record = setup.components.service.get(setup.ws)
    assert record is not None and record.status is ConnectionStatus.CONNECTED
    setup.assert_every_record_once(job_id)
    assert setup.components.refresher.run().resumed_chunks == 0  # nothing left for the timer


def test_a_chunk_paused_after_the_reconnect_resumed_is_resumed_by_the_next_timer_run(
    identity_stack: IdentityStack, dataverse: DataverseEmulator
) -> None:
    """A worker that cannot re-check (its check failed, or an instance without it): the chunk stays
    paused after the reconnect; the next token timer run resumes it, and the run after finds nothing."""
    setup = Setup(identity_stack, dataverse, lambda _c: None)
    job_id = setup.race()
    assert setup.drain() == [ChunkState.PAUSED_RECONNECT, ChunkState.DONE]
    status = setup.exports.status(setup.ws, job_id)
    assert status is not None and status.state == "paused_reconnect", status
    assert setup.ws in setup.exports.paused_workspaces()

    report = setup.components.refresher.run()  # the token timer's run
    assert (report.resumed_chunks, report.resume_failed) == (1, 0), report
    assert setup.drain() == [ChunkState.DONE]
    setup.assert_every_record_once(job_id)
    assert setup.ws not in setup.exports.paused_workspaces()
    assert setup.components.refresher.run().resumed_chunks == 0


def test_the_timer_leaves_paused_work_of_a_workspace_still_waiting_for_a_reconnect(
    identity_stack: IdentityStack, dataverse: DataverseEmulator
) -> None:
    setup = Setup(identity_stack, dataverse, lambda c: c.tokens.reconnected_since)
    setup.stack.entra.access_token_lifetime = 120
    setup.connect()
    records = [{"id": f"p-{i}", "firstName": "Ada", "lastName": f"Wait {i}"} for i in range(3)]
    job = setup.exports.submit(
        caller(setup.ws), ExportRequest.model_validate({"entity": "contacts", "records": records})
    )
    setup.stack.entra.revoke_user(setup.stack.entra.current_user.object_id)
    assert setup.drain() == [ChunkState.PAUSED_RECONNECT]  # the check sees no reconnect: stays paused
    assert setup.components.refresher.run().resumed_chunks == 0
    assert setup.drain() == []
    assert setup.ws in setup.exports.paused_workspaces()  # kept for when the admin reconnects
    status = setup.exports.status(setup.ws, job.job_id)
    assert status is not None and status.state == "paused_reconnect"
    assert rows(dataverse, "contacts") == []


def test_exports_failing_to_resume_never_stop_activities_from_resuming(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    ws = f"ws-resume-{uuid.uuid4().hex[:8]}"
    connection_string = stack.azurite.connection_string
    blobs = BlobServiceClient.from_connection_string(connection_string)
    queues = QueueServiceClient.from_connection_string(connection_string)
    # Exports' table storage is unreachable (nothing listens on that port); activities' works.
    dead_tables = TableServiceClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={base64.b64encode(b'x' * 64).decode()};TableEndpoint=http://127.0.0.1:9/devstoreaccount1;",
        retry_total=0,
    )
    failing_exports = ExportService(JobStore(dead_tables, blobs, queues, EXPORT_NAMES), lambda _c: CONFIG)
    names = JobNames(
        jobs_table=f"{stack.prefix}AJobs",
        chunks_table=f"{stack.prefix}AChunks",
        records_table=f"{stack.prefix}ARecords",
        container="activity-staging",
        queue=f"q{stack.prefix}",
    )
    activity_store = JobStore(stack.tables, blobs, queues, names)
    activities = ActivityService(activity_store, lambda _c: CONFIG)
    # a job in the activities' layout (the rows and messages resume works on), one chunk
    job = ExportService(activity_store, lambda _c: CONFIG).submit(
        caller(ws),
        ExportRequest.model_validate({"entity": "contacts", "records": [{"id": "p-1", "lastName": "A"}]}),
    )
    queue = queues.get_queue_client(names.queue)
    try:
        assert len(list(queue.receive_messages(max_messages=32, visibility_timeout=1))) == 1
        queue.clear_messages()
        activity_store.put_chunk(ws, job.job_id, 0, ChunkState.PAUSED_RECONNECT, error="reconnect: revoked")
        activity_store.mark_paused(ws)

        kinds: list[tuple[str, PausedWorkSource]] = [
            ("export", lambda: failing_exports),
            ("activity", lambda: activities),
        ]
        assert resume_workspace(ws, kinds) == (1, 1)  # exports failed, activities resumed
        chunk = activity_store.get_chunk(ws, job.job_id, 0)
        assert chunk is not None and chunk.state is ChunkState.QUEUED
        messages = list(queue.receive_messages(max_messages=32, visibility_timeout=1))
        assert [ChunkMessage.parse(base64.b64decode(m.content)).chunk for m in messages] == [0]
        assert ws not in activities.paused_workspaces()
        assert resume_workspace(ws, kinds) == (0, 1)  # resumed once, never enqueued twice
    finally:
        queue.delete_queue()
