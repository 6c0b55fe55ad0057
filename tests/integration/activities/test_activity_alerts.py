"""Activity jobs raise the same alerts as exports: a job paused until Dynamics is reconnected, and one
whose chunk failed for good, each one notification naming the activity job, its counts and its codes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from core.adapters.storage.alert_repository import AlertRepository
from core.adapters.storage.notification_repository import NotificationRepository
from core.domain.config import DynamicsConfig
from core.domain.connection import ReconnectRequired
from core.services.alerts.service import AlertService
from tests.integration.activities.conftest import WS, ActivityHarness
from tests.integration.activities.test_activity_worker import JANE, _config, _event, _jane

pytestmark = pytest.mark.integration


@pytest.fixture()
def alerts(storage_connection_string: str) -> AlertService:
    tables = TableServiceClient.from_connection_string(storage_connection_string)
    repo = AlertRepository(tables, QueueServiceClient.from_connection_string(storage_connection_string))
    repo.ensure_ready()
    notifications = NotificationRepository(tables)
    notifications.ensure_ready()
    for notice in notifications.list(WS, limit=1000):  # the suite shares a workspace
        notifications._table.delete_entity(WS, notice.id)

    def no_vault() -> object:
        raise AssertionError("no webhook here: Key Vault is not needed")

    return AlertService(notifications, repo, no_vault)  # type: ignore[arg-type]


@pytest.fixture()
def env(harness_for: Callable[[DynamicsConfig], ActivityHarness]) -> ActivityHarness:
    return harness_for(_config())


def _job_notices(alerts: AlertService) -> list[tuple[str, str, dict[str, int], list[dict[str, object]]]]:
    return [
        (n.kind, n.job["jobId"], n.job["counts"], n.job["topErrorCodes"])
        for n in alerts.notifications(WS)
        if n.job is not None
    ]


def test_a_paused_activity_job_raises_one_notice(env: ActivityHarness, alerts: AlertService) -> None:
    _jane(env)

    def expired(_ws: str) -> tuple[object, object]:
        raise ReconnectRequired(WS, "inactivity")

    env.worker = env.worker_for(expired, events=alerts)  # type: ignore[arg-type]
    paused = env.run({"events": [_event("e1", "task")], "contacts": [JANE]}, redeliver_first=True)
    assert paused["status"].state == "paused_reconnect"
    [(kind, job_id, _, _)] = _job_notices(alerts)
    assert (kind, job_id) == ("dynamics_job_paused_reconnect", paused["status"].job_id)
    [notice] = [n for n in alerts.notifications(WS) if n.job]
    assert notice.job is not None and notice.job["kind"] == "activity"
    assert notice.job["link"] == f"/api/dynamics/activities/{job_id}"


def test_an_activity_job_that_fails_for_good_raises_one_notice(
    env: ActivityHarness, alerts: AlertService
) -> None:
    _jane(env)

    def broken(_ws: str) -> tuple[object, object]:
        raise RuntimeError("dataverse unreachable")

    env.worker = env.worker_for(broken, max_attempts=1, events=alerts)  # type: ignore[arg-type]
    result = env.run({"events": [_event("e1", "task"), _event("e2", "task")], "contacts": [JANE]})
    assert result["status"].state == "failed"
    [(kind, job_id, counts, codes)] = _job_notices(alerts)
    assert (kind, job_id) == ("dynamics_job_failed", result["status"].job_id)
    assert counts["failed"] == 2 and codes == [{"code": "no_code", "count": 2}]
