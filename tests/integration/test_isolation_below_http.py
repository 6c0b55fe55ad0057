"""Workspace isolation below HTTP: a caller (or a queue message) naming workspace B can neither
read nor change anything of workspace A by guessing or replaying A's ids — export/activity job ids,
Idempotency-Keys, chunk messages, notification ids. Real Azurite, the real services and workers.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from azure.data.tables import TableServiceClient

from core.adapters.storage.job_store import JobStore
from core.adapters.storage.notification_repository import NotificationRepository
from core.domain.activities import ActivitiesRequest
from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from core.domain.export_request import ExportRequest
from core.domain.jobs import ChunkState
from core.domain.notification import Notification
from core.services.activities.service import ACTIVITY_NAMES, ActivityService
from core.services.activities.worker import ActivityWorker
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.exports.contacts_for_jobs import ContactExport
from core.services.jobs.messages import ChunkMessage
from tests.integration.exports.conftest import (  # noqa: F401  (fixtures)
    CALLER,
    WS,
    ExportHarness,
    emulator,
    harness_for,
)
from tests.support.azurite import Azurite
from tests.support.dataverse import rows

pytestmark = pytest.mark.integration

OTHER = Caller("ws-isolation-other", "platform-user-9", Role.ADMIN)
CONFIG = DynamicsConfig.model_validate(
    {
        "syncIdentifiers": {"contactIdentifier": "name_company", "companyIdentifier": "domain"},
        "fieldMapping": {
            "contacts": [
                {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
            ],
            "companies": [],
        },
        "campaignMapping": {},
        "userMapping": {},
    }
)
RECORDS = [{"id": "p-1", "firstName": "Ada", "lastName": "Lovelace", "company": {"name": "Acme"}}]


@pytest.fixture()
def env(harness_for: Callable[[DynamicsConfig], ExportHarness]) -> ExportHarness:  # noqa: F811
    return harness_for(CONFIG)


def _submit_a(env: ExportHarness, key: str | None = None) -> str:
    request = ExportRequest.model_validate({"entity": "contacts", "records": RECORDS})
    return env.service().submit(CALLER, request, idempotency_key=key).job_id


def test_b_cannot_read_a_job_by_its_id_nor_list_it(env: ExportHarness) -> None:
    service = env.service()
    job_id = _submit_a(env)
    assert service.status(OTHER.workspace_id, job_id) is None
    assert service.records(OTHER.workspace_id, job_id, None, None, 100) is None
    assert job_id not in {j.job_id for j in service.list_jobs(OTHER.workspace_id)}
    assert service.status(WS, job_id) is not None


def test_b_reusing_a_idempotency_key_gets_its_own_job(env: ExportHarness) -> None:
    key = f"k-{uuid.uuid4().hex}"
    job_a = _submit_a(env, key)
    request = ExportRequest.model_validate({"entity": "contacts", "records": RECORDS * 1})
    job_b = env.service().submit(OTHER, request, idempotency_key=key)
    assert job_b.job_id != job_a and job_b.created_new


def test_a_chunk_message_naming_b_does_not_run_a_job(env: ExportHarness) -> None:
    job_id = _submit_a(env)
    assert env.worker.handle(ChunkMessage(OTHER.workspace_id, job_id, 0), 1) is ChunkState.FAILED
    assert rows(env.emulator, "contacts") == []  # nothing written to anyone's Dynamics
    chunk = env.store.get_chunk(WS, job_id, 0)
    assert chunk is not None and chunk.state is ChunkState.QUEUED  # A's chunk untouched
    assert env.store.get_chunk(OTHER.workspace_id, job_id, 0) is None  # and nothing invented for B


def test_a_poison_message_naming_b_is_dropped_and_leaves_a_alone(env: ExportHarness) -> None:
    job_id = _submit_a(env)
    try:
        env.worker.fail_poisoned(ChunkMessage(OTHER.workspace_id, job_id, 0), "gave up")
    finally:
        chunk = env.store.get_chunk(WS, job_id, 0)
        assert chunk is not None and chunk.state is ChunkState.QUEUED  # isolation itself holds
        assert env.store.get_chunk(OTHER.workspace_id, job_id, 0) is None


def test_an_activity_chunk_message_naming_b_does_not_run_a_job(env: ExportHarness) -> None:
    store = JobStore(env.store._tables, env.store._blobs, env.store._queues, ACTIVITY_NAMES)
    store.ensure_ready()
    service = ActivityService(store, lambda _caller: CONFIG)
    events = {
        "events": [
            {
                "id": f"ev-{uuid.uuid4().hex}",
                "type": "email_sent",
                "occurredAt": "2026-11-01T10:00:00Z",
                "contactId": "p-1",
                "campaign": {"id": "c-1", "name": "Launch"},
            }
        ],
        "contacts": [RECORDS[0]],
    }
    request = ActivitiesRequest.model_validate(events)
    job_id = service.submit(Caller(CALLER.workspace_id, "platform-backend", Role.SERVICE), request).job_id
    worker = ActivityWorker(
        store, lambda _ws: (env.client, env.connection), export_contacts=ContactExport(store, MetadataCache())
    )
    assert worker.handle(ChunkMessage(OTHER.workspace_id, job_id, 0), 1) is ChunkState.FAILED
    assert service.status(OTHER.workspace_id, job_id) is None
    assert store.get_chunk(OTHER.workspace_id, job_id, 0) is None


def test_b_cannot_mark_a_notification_of_a_read(azurite: Azurite) -> None:
    repo = NotificationRepository(
        TableServiceClient.from_connection_string(azurite.connection_string), f"t{uuid.uuid4().hex[:10]}"
    )
    repo.ensure_ready()
    a, b = f"ws-a-{uuid.uuid4().hex[:6]}", f"ws-b-{uuid.uuid4().hex[:6]}"
    now = dt.datetime.now(dt.UTC)
    notice = Notification(a, "reconnect-1", "dynamics_reconnect", "revoked", "Reconnect", "msg", now, None)
    assert repo.raise_once(notice)
    assert repo.mark_read(b, notice.id, now) is None
    assert repo.list(b) == []
    [still] = repo.list(a)
    assert still.read_at is None
    assert repo.mark_read(a, notice.id, now) is not None
