"""Alerts of exports that end badly, as an admin meets them: one in-app notification per job and event
(counts, the most frequent error codes, the job's link), however often and however concurrently the
chunks are delivered; and the workspace's webhook, signed so that a receiver can verify it, retried on the
receiver's 500s until it answers 200, with every attempt in the delivery log.

Real parts throughout: Azurite, the Dataverse emulator, the Key Vault stand-in holding the signing secret,
and a receiver on 127.0.0.1 (admitted by the local-development setting) checking signatures the way the
README tells receivers to.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from core.adapters.storage.alert_repository import ALERT_QUEUE, AlertRepository, Attempt, Delivery
from core.adapters.storage.notification_repository import NotificationRepository
from core.adapters.webhook_http import WebhookSender
from core.domain.alerts import DeliveryState
from core.domain.config import DynamicsConfig
from core.domain.connection import ReconnectRequired
from core.domain.jobs import ChunkState
from core.domain.notification import Notification
from core.services.alerts.delivery import WebhookDeliveryWorker
from core.services.alerts.service import AlertService, WebhookChanged
from core.services.exports.service import ExportService
from core.services.jobs.messages import ChunkMessage
from emulators.keyvault import KeyVaultEmulator
from tests.integration.exports.conftest import ExportHarness
from tests.support.identity import local_secret_store
from tests.support.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]

CONFIG = DynamicsConfig.model_validate(
    {
        "syncIdentifiers": {
            "contactIdentifier": "custom",
            "contactRule": {
                "operator": "and",
                "conditions": [
                    {"platformField": "firstName", "dynamicsField": "firstname"},
                    {"platformField": "lastName", "dynamicsField": "lastname"},
                ],
            },
        },
        "fieldMapping": {
            "contacts": [
                {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
                {
                    "kind": "platform_field",
                    "platformField": "professionalEmail",
                    "dynamicsField": "emailaddress1",
                },
            ],
            "companies": [],
        },
        "campaignMapping": {},
        "userMapping": {},
    }
)
# Five contacts Dynamics refuses to create (the integration user lacks the privilege) and one caught
# before sending: the export fails with nothing written.
RECORDS = [
    *(
        {"id": f"p-{i}", "firstName": "Ada", "lastName": f"L{i}", "professionalEmail": f"a{i}@x.com"}
        for i in range(5)
    ),
    {"id": "p-bad", "firstName": "Al", "lastName": "Long", "professionalEmail": "a" * 120 + "@example.com"},
]


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as state:
        yield state


@dataclass
class Alerts:
    service: AlertService
    worker: WebhookDeliveryWorker
    repo: AlertRepository
    queues: QueueServiceClient


@pytest.fixture()
def alerts(storage_connection_string: str, keyvault: KeyVaultEmulator) -> Alerts:
    tables = TableServiceClient.from_connection_string(storage_connection_string)
    queues = QueueServiceClient.from_connection_string(storage_connection_string)
    repo = AlertRepository(tables, queues)
    repo.ensure_ready()
    queues.get_queue_client(ALERT_QUEUE).clear_messages()
    notifications = NotificationRepository(tables)
    notifications.ensure_ready()
    store = local_secret_store(keyvault.vault_url, keyvault.issue_token())
    service = AlertService(notifications, repo, lambda: store, allow_local=True)
    worker = WebhookDeliveryWorker(
        repo, lambda: store, WebhookSender(timeout_s=5, allow_local=True), max_attempts=4, backoff_s=1
    )
    return Alerts(service, worker, repo, queues)


@pytest.fixture()
def env(harness_for: Callable[[DynamicsConfig], ExportHarness], alerts: Alerts) -> ExportHarness:
    h = harness_for(CONFIG)
    h.emulator.records.denied[h.integration_user_id] = {("contact", "Create")}
    for notice in alerts.service.notifications(h.caller.workspace_id):  # the suite shares a workspace
        NotificationRepository(h.store._tables)._table.delete_entity(h.caller.workspace_id, notice.id)
    alerts.service.delete_webhook(h.caller.workspace_id)
    h.worker = h.worker_for(lambda _ws: (h.client, h.connection), events=alerts.service)
    return h


def _job_notices(alerts: Alerts, workspace_id: str) -> list[Any]:
    return [n for n in alerts.service.notifications(workspace_id) if n.kind.startswith("dynamics_job_")]


def _deliver_concurrently_twice(h: ExportHarness) -> None:
    """Every chunk message handled by two workers at once, then once more (a redelivery after the host
    died before deleting it): chunks finish together and finished chunks come back."""
    queue = h.queues.get_queue_client(h.kind.names.queue)
    messages = [
        ChunkMessage.parse(base64.b64decode(m.content))
        for m in queue.receive_messages(max_messages=32, visibility_timeout=60)
    ]
    mine = [m for m in messages if m.workspace_id == h.caller.workspace_id]
    assert len(mine) == 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda m: h.worker.handle(m, 1), [*mine, *mine]))
    for message in mine:
        assert h.worker.handle(message, 2) is ChunkState.DONE
    queue.clear_messages()


def _drain_alerts(alerts: Alerts, workspace_id: str, done: Callable[[], bool], timeout_s: float = 60) -> None:
    """Hand the alert queue's messages to the delivery worker, as the host does, until ``done``; a retry's
    message becomes visible only after its backoff, so this waits on queue state, not on a clock."""
    queue = alerts.queues.get_queue_client(ALERT_QUEUE)
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the webhook deliveries did not finish"
        for message in queue.receive_messages(max_messages=16, visibility_timeout=30):
            body = json.loads(base64.b64decode(message.content))
            assert body["workspaceId"] == workspace_id
            alerts.worker.handle(body["workspaceId"], body["deliveryId"])
            queue.delete_message(message)
        time.sleep(0.1)


def test_a_failed_export_raises_one_notification_however_its_chunks_are_delivered(
    env: ExportHarness, alerts: Alerts
) -> None:
    ws = env.caller.workspace_id
    job = env.service(chunk_size=2).submit(
        env.caller, env.kind.request.model_validate({"entity": "contacts", "records": RECORDS})
    )
    _deliver_concurrently_twice(env)

    assert env.service().status(ws, job.job_id).state == "failed"
    [notice] = _job_notices(alerts, ws)
    assert notice.kind == "dynamics_job_failed"
    assert notice.job["jobId"] == job.job_id and notice.job["state"] == "failed"
    assert notice.job["link"] == f"/api/dynamics/exports/{job.job_id}"
    assert notice.job["counts"]["failed"] == 5 and notice.job["counts"]["invalid"] == 1
    assert notice.job["topErrorCodes"] == [
        {"code": "0x80040220", "count": 5},
        {"code": "too_long", "count": 1},
    ]
    assert "0x80040220 (5)" in notice.message and "failed" in notice.title

    # Read, then the job's chunk messages come back once more: nothing new, still read.
    alerts.service.mark_read(ws, notice.id)
    queue = env.queues.get_queue_client(env.kind.names.queue)
    for index in range(3):
        env.worker.handle(ChunkMessage(ws, job.job_id, index), 5)
    [again] = _job_notices(alerts, ws)
    assert again.id == notice.id and again.read_at is not None
    assert queue.peek_messages() == []


def test_a_dry_run_raises_nothing(env: ExportHarness, alerts: Alerts) -> None:
    result = env.run({"entity": "contacts", "records": RECORDS, "dryRun": True})
    assert result["status"].state in ("failed", "partially_failed")
    assert _job_notices(alerts, env.caller.workspace_id) == []


def test_a_job_paused_for_reconnect_raises_its_own_notification_once(
    env: ExportHarness, alerts: Alerts
) -> None:
    ws = env.caller.workspace_id

    def dead(_ws: str) -> Any:
        raise ReconnectRequired(ws, "revoked", "connection-1")

    env.worker = env.worker_for(dead, events=alerts.service)
    job = env.service(chunk_size=2).submit(
        env.caller, env.kind.request.model_validate({"entity": "contacts", "records": RECORDS})
    )
    env.drain(ws, redeliver_first=True)
    [notice] = _job_notices(alerts, ws)
    assert notice.kind == "dynamics_job_paused_reconnect" and notice.job["jobId"] == job.job_id
    assert "reconnect" in notice.message


def test_the_webhook_is_signed_retried_on_500s_until_delivered_once_and_logged(
    env: ExportHarness, alerts: Alerts, receiver: Receiver
) -> None:
    ws = env.caller.workspace_id
    saved = alerts.service.put_webhook(ws, "admin-1", receiver.url, rotate_secret=False)
    assert saved.created and saved.secret and saved.secret.startswith("whsec_")
    receiver.secret = saved.secret
    receiver.statuses = [500, 500]  # then 200

    job = env.service(chunk_size=2).submit(
        env.caller, env.kind.request.model_validate({"entity": "contacts", "records": RECORDS})
    )
    _deliver_concurrently_twice(env)  # chunks finishing together and coming back: one delivery
    delivery_id = f"job-export-failed-{job.job_id}"

    def delivered() -> bool:
        found = alerts.repo.delivery(ws, delivery_id)
        return found is not None and found.state.value == "delivered"

    _drain_alerts(alerts, ws, delivered)

    assert [g["status"] for g in receiver.got] == [500, 500, 200]
    assert all(g["verified"] for g in receiver.got), receiver.got
    assert {g["id"] for g in receiver.got} == {delivery_id}
    body = receiver.got[-1]["body"]
    assert body["type"] == "job.failed" and body["job"]["jobId"] == job.job_id
    assert body["job"]["topErrorCodes"][0] == {"code": "0x80040220", "count": 5}

    attempts, _ = alerts.service.delivery_log(ws, None, 10)
    assert [(a.attempt, a.status_code, a.outcome) for a in attempts] == [
        (3, 200, "delivered"),
        (2, 500, "retry"),
        (1, 500, "retry"),
    ]
    # Backoff: 1 s after the first failure, 2 s after the second (the base doubled).
    waits = [(a.next_attempt_at - a.at).total_seconds() for a in reversed(attempts) if a.next_attempt_at]
    assert waits == [1.0, 2.0]

    # A receiver signing with anything else than the secret the admin was shown would not verify.
    receiver.secret = "whsec_something-else"
    test_id = alerts.service.send_test(ws)
    _drain_alerts(alerts, ws, lambda: any(g["id"] == test_id for g in receiver.got))
    assert [g["verified"] for g in receiver.got if g["id"] == test_id] == [False]


def test_a_receiver_that_keeps_failing_ends_dead_after_the_last_attempt(
    env: ExportHarness, alerts: Alerts, receiver: Receiver
) -> None:
    ws = env.caller.workspace_id
    receiver.secret = (
        alerts.service.put_webhook(ws, "admin-1", receiver.url, rotate_secret=False).secret or ""
    )
    receiver.statuses = [503] * 10
    test_id = alerts.service.send_test(ws)

    def dead() -> bool:
        found = alerts.repo.delivery(ws, test_id)
        return found is not None and found.state.value == "dead"

    _drain_alerts(alerts, ws, dead)
    attempts, _ = alerts.service.delivery_log(ws, None, 10)
    assert [(a.attempt, a.outcome) for a in attempts if a.delivery_id == test_id] == [
        (4, "dead"),
        (3, "retry"),
        (2, "retry"),
        (1, "retry"),
    ]
    assert len([g for g in receiver.got if g["id"] == test_id]) == 4


def test_an_export_with_nothing_valid_to_send_raises_its_notification_at_submission(
    env: ExportHarness, alerts: Alerts
) -> None:
    service = ExportService(env.store, lambda _caller: CONFIG, events=alerts.service)
    bad = [
        {"id": f"p-{i}", "firstName": "Al", "lastName": "Long", "professionalEmail": "a" * 300}
        for i in range(2)
    ]
    job = service.submit(env.caller, env.kind.request.model_validate({"entity": "contacts", "records": bad}))
    assert service.status(env.caller.workspace_id, job.job_id).state == "failed"
    [notice] = _job_notices(alerts, env.caller.workspace_id)
    assert notice.kind == "dynamics_job_failed" and notice.job["jobId"] == job.job_id
    assert notice.job["counts"]["invalid"] == 2 and notice.job["topErrorCodes"] == [
        {"code": "invalid", "count": 2}
    ]


def test_a_new_alert_deletes_the_workspaces_alerts_older_than_90_days(
    env: ExportHarness, alerts: Alerts
) -> None:
    ws = env.caller.workspace_id
    notifications = NotificationRepository(env.store._tables)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=91)
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(days=89)
    for notice_id, kind, created in (
        ("job-export-failed-old", "dynamics_job_failed", old),
        ("job-export-failed-recent", "dynamics_job_failed", recent),
        ("dynamics-reconnect-old", "dynamics_reconnect_required", old),  # ends with its incident only
    ):
        notifications.raise_once(Notification(ws, notice_id, kind, None, "t", "m", created, None))
    for delivery_id, created in (("test-old", old), ("test-recent", recent)):
        alerts.repo.create_delivery(
            Delivery(ws, delivery_id, "webhook.test", None, "{}", DeliveryState.PENDING, 0, created)
        )
        finished = alerts.repo.delivery(ws, delivery_id)
        assert finished is not None
        alerts.repo.update_delivery(replace(finished, state=DeliveryState.DELIVERED, attempts=1))
        alerts.repo.log_attempt(
            Attempt(ws, delivery_id, "webhook.test", None, 1, created, 200, "delivered", None, None)
        )

    env.run({"entity": "contacts", "records": RECORDS})

    kept = {n.id for n in alerts.service.notifications(ws)}
    assert "job-export-failed-old" not in kept
    assert {"job-export-failed-recent", "dynamics-reconnect-old"} <= kept
    assert (
        alerts.repo.delivery(ws, "test-old") is None and alerts.repo.delivery(ws, "test-recent") is not None
    )
    attempts, _ = alerts.service.delivery_log(ws, None, 100)
    logged = {a.delivery_id for a in attempts}
    assert "test-recent" in logged and "test-old" not in logged


class _MeetingStore:
    """The vault, where two saves meet: each puts its secret only once both have read the webhook."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.meet = threading.Barrier(2)
        self.put_names: list[str] = []

    def put(self, name: str, value: str, tags: Any = None) -> None:
        self.meet.wait(timeout=10)
        self.put_names.append(name)
        self.inner.put(name, value, tags)

    def get(self, name: str) -> str | None:
        return self.inner.get(name)

    def delete(self, name: str) -> None:
        self.inner.delete(name)


@pytest.mark.parametrize("rotating", [False, True], ids=["create", "rotate"])
def test_two_saves_at_once_one_wins_and_the_secret_answered_is_the_one_that_signs(
    alerts: Alerts, keyvault: KeyVaultEmulator, rotating: bool
) -> None:
    ws = f"ws-hook-{uuid.uuid4().hex[:8]}"
    plain = local_secret_store(keyvault.vault_url, keyvault.issue_token())
    first = None
    if rotating:
        first = alerts.service.put_webhook(ws, "admin-1", "https://hooks.example.com/a", rotate_secret=False)
    store = _MeetingStore(plain)
    service = AlertService(NotificationRepository.__new__(NotificationRepository), alerts.repo, lambda: store)
    answers: list[Any] = []

    def save(user: str) -> None:
        try:
            answers.append(
                service.put_webhook(ws, user, "https://hooks.example.com/b", rotate_secret=rotating)
            )
        except WebhookChanged as exc:
            answers.append(exc)

    threads = [threading.Thread(target=save, args=(f"admin-{n}",)) for n in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    [won] = [a for a in answers if not isinstance(a, Exception)]
    assert [type(a) for a in answers if isinstance(a, Exception)] == [WebhookChanged]
    stored = alerts.repo.webhook(ws)
    assert stored is not None and stored.updated_by == won.webhook.updated_by
    assert won.secret and plain.get(stored.secret_name) == won.secret  # what the admin saw signs
    [lost_name] = [n for n in store.put_names if n != stored.secret_name]
    assert plain.get(lost_name) is None  # the loser's secret is not left in the vault
    if first is not None:
        assert plain.get(first.webhook.secret_name) is None  # the rotated-out secret is deleted
