"""A token that cannot be had never loses an export: Microsoft sign-in or Key Vault down, or this
deployment's own setting refused (expired client secret, changed token encryption key). The chunk is
retried like any transient failure, and on its last delivery it is kept, paused and marked, not failed.
Once the outage ends or the setting is fixed, the token timer's resume finishes it."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection, TokenConfigurationError, TransientTokenError
from core.domain.export_request import ExportRequest
from core.domain.jobs import ChunkState
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.exports.service import EXPORT_QUEUE
from core.services.exports.worker import ExportWorker
from core.services.jobs.messages import ChunkMessage
from tests.integration.exports.conftest import CALLER, WS, ExportHarness
from tests.integration.exports.test_export_worker import CONFIG, CONTACTS
from tests.support.dataverse import rows

TROUBLES = {
    "expired client secret": (
        TokenConfigurationError("Entra refused the client: invalid_client", "DYNAMICS_CLIENT_SECRET"),
        "DYNAMICS_CLIENT_SECRET is misconfigured",
    ),
    "sign-in or Key Vault down": (
        TransientTokenError("workspace ws: Key Vault unavailable"),
        "Microsoft sign-in or the token store (Key Vault) did not answer",
    ),
}


@pytest.mark.parametrize("trouble", sorted(TROUBLES))
def test_token_trouble_pauses_the_chunk_on_its_last_delivery_and_the_timer_resume_finishes_it(
    harness_for: Callable[[DynamicsConfig], ExportHarness], trouble: str
) -> None:
    error, said = TROUBLES[trouble]

    def no_token(_ws: str) -> tuple[object, DynamicsConnection]:
        raise error

    env = harness_for(CONFIG)
    service = env.service(chunk_size=10)
    records = CONTACTS[:3]
    job = service.submit(CALLER, ExportRequest.model_validate({"entity": "contacts", "records": records}))
    queue = env.queues.get_queue_client(EXPORT_QUEUE)
    [message] = list(queue.receive_messages(max_messages=32, visibility_timeout=60))
    chunk = ChunkMessage.parse(base64.b64decode(message.content))
    broken = ExportWorker(env.store, no_token, metadata=MetadataCache(), max_attempts=2)  # type: ignore[arg-type]

    with pytest.raises(type(error)):  # an early delivery: the queue retries it
        broken.handle(chunk, 1)
    assert broken.handle(chunk, 2) is ChunkState.PAUSED_RECONNECT  # the last one keeps it
    queue.delete_message(message)
    status = service.status(WS, job.job_id)
    assert status is not None and status.state == "paused_reconnect"
    assert any(said in e for e in status.errors), status.errors
    assert WS in service.paused_workspaces()
    assert rows(env.emulator, "contacts") == []

    # The outage ends (the setting is fixed); the next token timer run resumes the marked workspace.
    assert service.resume_paused(WS) == 1
    env.drain()
    status = service.status(WS, job.job_id)
    assert status is not None and status.state == "succeeded", status
    assert status.counts["created"] == len(records)
    assert len(rows(env.emulator, "contacts")) == len(records)
    assert WS not in service.paused_workspaces()
