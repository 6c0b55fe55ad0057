"""A dead grant never loses an export: the real token provider, the real export worker and the Dataverse
emulator trusting the Entra stand-in's tokens. The integration user's password changes while an export is
queued: its chunks pause ("paused, reconnect needed"), nothing is written or reported done, the workspace
gets one notice; the admin reconnects, the paused chunks resume and every record reaches Dynamics once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from core.adapters.storage.job_store import JobStore
from core.bootstrap import build_connection
from core.domain.connection import ConnectionStatus
from core.domain.export_request import ExportRequest
from core.domain.jobs import ChunkState
from core.services.connection.service import ConnectionComponents
from core.services.dynamics.access import DynamicsAccess
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.exports.service import EXPORT_NAMES, ExportService
from core.services.exports.worker import ExportWorker
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

WS = "ws-export-pause"


@pytest.fixture()
def dataverse(entra: EntraEmulator) -> Iterator[DataverseEmulator]:
    emulator = DataverseEmulator(accepted_tokens=(STATIC_TOKEN,))  # the test's own reads (rows)
    emulator.add_signing_key(entra.public_jwk())
    emulator.start()
    yield emulator
    emulator.stop()


def components_resuming(stack: IdentityStack, exports: ExportService) -> ConnectionComponents:
    """The issue-4 wiring of production: a reconnect resumes the workspace's paused exports."""
    settings = load_settings(stack.settings_env)
    store = local_secret_store(stack.keyvault.vault_url, settings.require("KEY_VAULT_LOCAL_TOKEN"))
    return build_connection(
        settings,
        tables=stack.tables,
        secret_store=store,
        key_wrapper=key_wrapper_for(settings),
        http_session=stack.session,
        table_prefix=stack.prefix,
        on_reconnected=exports.resume_paused,
    )


def test_dead_grant_pauses_the_export_and_reconnect_completes_it(
    identity_stack: IdentityStack, dataverse: DataverseEmulator
) -> None:
    stack = identity_stack
    connection_string = stack.azurite.connection_string
    queues = QueueServiceClient.from_connection_string(connection_string)
    store = JobStore(
        stack.tables, BlobServiceClient.from_connection_string(connection_string), queues, EXPORT_NAMES
    )
    store.ensure_ready()
    exports = ExportService(store, lambda _caller: CONFIG, chunk_size=3)
    components = components_resuming(stack, exports)
    worker = ExportWorker(
        store,
        DynamicsAccess(components.tokens, session_factory=trusting_session).client_for,
        metadata=MetadataCache(),
    )
    user = stack.entra.current_user
    dataverse.add_user(object_id=user.object_id, domainname=user.email)
    # Access tokens live 2 minutes: every use of the connection goes through a refresh (msal renews
    # tokens expiring within 5 minutes), as an export does once its token ages.
    stack.entra.access_token_lifetime = 120
    service = components.service
    finish_sign_in(
        service, caller(WS), stack.browser_sign_in(service.start_connect(caller(WS), dataverse.url))
    )

    records = [{"id": f"p-{i}", "firstName": "Ada", "lastName": f"Pause {i}"} for i in range(6)]
    job = exports.submit(caller(WS), ExportRequest.model_validate({"entity": "contacts", "records": records}))
    stack.entra.revoke_user(user.object_id)  # password change while the export waits in the queue

    assert drain_workspace(queues, worker, WS) == [ChunkState.PAUSED_RECONNECT, ChunkState.PAUSED_RECONNECT]
    status = exports.status(WS, job.job_id)
    assert status is not None and status.state == "paused_reconnect", status
    assert rows(dataverse, "contacts") == []
    page = exports.records(WS, job.job_id, None, None, 100)
    assert page is not None and not [r for r in page.records if r["action"] in ("created", "failed")]
    record = service.get(WS)
    assert record is not None and record.status is ConnectionStatus.RECONNECT_REQUIRED
    assert record.reason == "revoked"
    assert [n.reason for n in components.notifications.list(WS)] == ["revoked"]

    stack.entra.access_token_lifetime = 3600
    finish_sign_in(
        service, caller(WS), stack.browser_sign_in(service.start_connect(caller(WS), dataverse.url))
    )
    assert components.notifications.list(WS) == []
    resumed = drain_workspace(queues, worker, WS)  # the reconnect re-queued the paused chunks
    assert resumed == [ChunkState.DONE, ChunkState.DONE]
    status = exports.status(WS, job.job_id)
    assert status is not None and status.state == "succeeded", status
    assert status.counts["created"] == 6
    names = sorted(r["lastname"] for r in rows(dataverse, "contacts"))
    assert names == [f"Pause {i}" for i in range(6)]  # every record, once
