"""The switch for activities: Dynamics disabled while an activity chunk is exporting the contact its
events need stops the chunk before its activities are written; enabled again, the contact exists once and
every event is logged once. Real Azurite, the Dataverse emulator, the real activity service and worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.domain.activities import ActivitiesRequest
from core.domain.config import DynamicsConfig
from core.domain.jobs import ChunkState
from core.services.activities.service import ActivityService
from tests.integration.activities.conftest import CALLER, WS, ActivityHarness
from tests.integration.activities.test_activity_contact_export import (
    IDENTITIES,
    NEW,
    NEW_ID,
    _activities,
    _env,
    _event,
)
from tests.support.dataverse import rows


def test_disabling_while_the_contact_is_exported_stops_before_the_activities_and_enabling_logs_them_once(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],
) -> None:
    env = _env(harness_for, export_missing=True)
    active: dict[str, str | None] = {"crm": "dynamics"}
    service = ActivityService(
        env.store, lambda _caller: env.config, chunk_size=5, active_crm=lambda _ws: active["crm"]
    )
    env.worker = env.worker_for(
        lambda _ws: (env.client, env.connection), dynamics_enabled=lambda _ws: active["crm"] == "dynamics"
    )

    def admin_disables(table: str, _records: Any) -> None:
        if table == "contact":
            active["crm"] = None  # while the events' contact is being created

    env.client.before("create_multiple", admin_disables)
    body = {
        "events": [_event("e1", "task"), _event("e2", "call")],
        "contacts": [NEW],
        "identities": IDENTITIES,
    }
    job = service.submit(CALLER, ActivitiesRequest.model_validate(body))
    assert env.drain() == [ChunkState.PAUSED_DISABLED]
    env.client.clear_hooks()
    assert [r["contactid"] for r in rows(env.emulator, "contacts")] == [NEW_ID]  # the write in flight
    assert _activities(env) == []  # nothing after it
    status = service.status(WS, job.job_id)
    assert status is not None and status.state == "paused_disabled"

    active["crm"] = "dynamics"
    assert service.resume_paused(WS) == 1
    assert env.drain() == [ChunkState.DONE]
    status = service.status(WS, job.job_id)
    assert status is not None and status.state == "succeeded" and status.counts["created"] == 2
    assert [r["contactid"] for r in rows(env.emulator, "contacts")] == [NEW_ID]  # still once
    assert sorted(a["subject"] for a in _activities(env)) == ["Step e1", "Step e2"]
