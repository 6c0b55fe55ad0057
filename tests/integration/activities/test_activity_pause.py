"""An expired Dynamics connection pauses activity jobs (resumed on reconnect); exhausted deliveries fail
the chunk with the reason — the same lifecycle as exports."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.domain.config import DynamicsConfig
from core.domain.connection import ReconnectRequired
from tests.integration.activities.conftest import WS, ActivityHarness
from tests.integration.activities.test_activity_worker import JANE, _config, _event, _jane
from tests.support.dataverse import rows


@pytest.fixture()
def env(harness_for: Callable[[DynamicsConfig], ActivityHarness]) -> ActivityHarness:
    return harness_for(_config())


def test_reconnect_required_pauses_then_resume_logs_the_events(env: ActivityHarness) -> None:
    _jane(env)
    working = env.worker

    def expired(_ws: str) -> tuple[object, object]:
        raise ReconnectRequired(WS, "inactivity")

    env.worker = env.worker_for(expired)  # type: ignore[arg-type]
    paused = env.run({"events": [_event("e1", "task")], "contacts": [JANE]})
    assert paused["status"].state == "paused_reconnect"
    assert paused["status"].errors == ["reconnect: inactivity"]
    assert rows(env.emulator, "tasks") == []

    env.worker = working
    service = env.service()
    assert service.resume_paused(WS) == 1
    env.drain()
    job_id = paused["status"].job_id
    status = service.status(WS, job_id)
    assert status is not None and status.state == "succeeded" and status.counts["created"] == 1
    assert len(rows(env.emulator, "tasks")) == 1


def test_a_chunk_that_keeps_failing_fails_with_its_reason_on_the_last_delivery(env: ActivityHarness) -> None:
    _jane(env)

    def broken(_ws: str) -> tuple[object, object]:
        raise RuntimeError("dataverse unreachable")

    env.worker = env.worker_for(broken, max_attempts=1)  # type: ignore[arg-type]
    result = env.run({"events": [_event("e1", "task")], "contacts": [JANE]})
    assert result["status"].state == "failed"
    record = result["records"]["e1"]
    assert record["action"] == "failed"
    assert "gave up after 1 attempts: RuntimeError" in record["errors"][0]["message"]
