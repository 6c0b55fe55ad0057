"""The Integrations page's switch really switches: with Dynamics disabled for the workspace nothing more is
written to Dynamics, and enabling it again finishes the work with nothing lost or written twice.

Real Azurite, the Dataverse emulator, the real export service, store and worker. The switch is the
workspace's enabled CRM, read by the worker before each Dynamics write; the test turns it off from inside
a Dynamics write (the company ``CreateMultiple`` of a chunk), as an admin clicking while a chunk runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.domain.export_request import ExportRequest
from core.domain.integration_switch import IntegrationDisabled
from core.domain.jobs import ChunkState
from core.services.exports.service import ExportService
from tests.integration.exports.conftest import CALLER, WS, ExportHarness
from tests.integration.exports.test_export_worker import CONFIG
from tests.support.dataverse import rows

pytestmark = pytest.mark.integration


class Switch:
    """The workspace's enabled CRM, as the Integrations page sets it."""

    def __init__(self) -> None:
        self.active: str | None = "dynamics"

    def __call__(self, workspace_id: str) -> str | None:
        assert workspace_id == WS
        return self.active

    def dynamics_enabled(self, workspace_id: str) -> bool:
        return self(workspace_id) == "dynamics"


def contacts(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"p-{n}",
            "firstName": "Ada",
            "lastName": f"Switch {n:02d}",
            "company": {"id": f"co-{n}", "name": f"Company {n:02d}", "domain": f"company{n:02d}.example"},
        }
        for n in range(count)
    ]


@pytest.fixture()
def env(harness_for: Callable[..., ExportHarness]) -> ExportHarness:
    return harness_for(CONFIG)


def test_disabling_mid_chunk_stops_before_the_next_write_and_enabling_finishes_it_once(
    env: ExportHarness,
) -> None:
    switch = Switch()
    service = ExportService(env.store, lambda _caller: CONFIG, chunk_size=3, active_crm=switch)
    env.worker = env.worker_for(
        lambda _ws: (env.client, env.connection), dynamics_enabled=switch.dynamics_enabled
    )
    job = service.submit(CALLER, ExportRequest.model_validate({"entity": "contacts", "records": contacts(6)}))

    def admin_disables(table: str, _records: Any) -> None:
        if table == "account" and switch.active == "dynamics":
            switch.active = None  # while the first chunk's companies are being created

    env.client.before("create_multiple", admin_disables)
    states = env.drain()
    env.client.clear_hooks()

    # The company write in flight finished; the chunk stopped before writing its contacts; the second
    # chunk never called Dynamics at all.
    assert states == [ChunkState.PAUSED_DISABLED, ChunkState.PAUSED_DISABLED]
    # (the queue hands the chunks over in either order: the first one handled made its companies)
    made = sorted(r["name"] for r in rows(env.emulator, "accounts"))
    assert made in ([f"Company {n:02d}" for n in range(3)], [f"Company {n:02d}" for n in range(3, 6)])
    assert rows(env.emulator, "contacts") == []
    status = service.status(WS, job.job_id)
    assert status is not None and status.state == "paused_disabled", status
    assert any("disabled" in e for e in status.errors)
    page = service.records(WS, job.job_id, None, None, 100)
    assert page is not None
    started = {r["platformId"]: r for r in page.records}  # the records of the chunk that ran
    assert len(started) == 3 and {r["action"] for r in started.values()} == {"pending"}
    assert all("enabled again" in r["note"] for r in started.values())

    # While disabled: a new export is refused, and a resume (the token timer's) leaves the job paused.
    with pytest.raises(IntegrationDisabled) as refused:
        service.submit(CALLER, ExportRequest.model_validate({"entity": "contacts", "records": contacts(1)}))
    assert "enables it" in str(refused.value)
    assert service.resume_paused(WS) == 0
    assert env.store.paused_workspaces().count(WS) == 1  # kept, so a failed resume on enabling is retried

    # Enabled again: the paused chunks resume; every record is created once and reported created.
    switch.active = "dynamics"
    assert service.resume_paused(WS) == 2
    assert env.drain() == [ChunkState.DONE, ChunkState.DONE]
    status = service.status(WS, job.job_id)
    assert status is not None and status.state == "succeeded", status
    assert status.counts["created"] == 6 and status.errors == []
    page = service.records(WS, job.job_id, None, None, 100)
    assert page is not None
    assert sorted((r["platformId"], r["action"]) for r in page.records) == [
        (f"p-{n}", "created") for n in range(6)
    ]
    names = sorted(r["lastname"] for r in rows(env.emulator, "contacts"))
    assert names == [f"Switch {n:02d}" for n in range(6)]  # every record, once
    assert len(rows(env.emulator, "accounts")) == 6  # the companies made before the pause, not again
    assert WS not in env.store.paused_workspaces()


def test_a_chunk_paused_while_the_admin_enables_again_requeues_itself(env: ExportHarness) -> None:
    """The admin enables Dynamics while a chunk is stopping: the enable's resume scan ran before the chunk
    was written paused, so the chunk's own re-read of the switch re-queues it."""
    switch = Switch()
    service = ExportService(env.store, lambda _caller: CONFIG, chunk_size=3, active_crm=switch)
    answers = iter([False])  # the gate sees "disabled" once, then the admin has enabled it again

    def enabled(workspace_id: str) -> bool:
        return next(answers, True)

    env.worker = env.worker_for(lambda _ws: (env.client, env.connection), dynamics_enabled=enabled)
    job = service.submit(CALLER, ExportRequest.model_validate({"entity": "contacts", "records": contacts(3)}))
    assert env.drain() == [ChunkState.QUEUED, ChunkState.DONE]
    status = service.status(WS, job.job_id)
    assert status is not None and status.state == "succeeded" and status.counts["created"] == 3
