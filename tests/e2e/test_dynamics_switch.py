"""The Integrations page's switch through the devhost: an admin disables Dynamics while an export runs in
the devhost's own queue workers; the export pauses, nothing more reaches Dynamics, new exports are refused;
the admin enables Dynamics again and the export finishes with every record written once and reported
``created``, none lost, none doubled.

One chunk at a time (queue batch size 1), two records per chunk, and 150 ms per Dataverse request, so the
admin's click lands while the export is mid-way; every wait is on the job's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.domain.jobs import ChunkState
from emulators.entra import EntraEmulator
from tests.support.azurite import Azurite
from tests.support.live_dynamics import LiveDynamics, live_dynamics, wait_for

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.support.identity"]

RECORDS = [{"id": f"p-{n:02d}", "firstName": "Ada", "lastName": f"Switch {n:02d}"} for n in range(16)]
MAPPING = [
    {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
    {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
]


@pytest.fixture()
def live(azurite: Azurite, entra: EntraEmulator, tmp_path: Path) -> Iterator[LiveDynamics]:
    yield from live_dynamics(
        azurite,
        entra,
        tmp_path,
        settings={"EXPORT_CHUNK_SIZE": "2"},
        queues={"batchSize": 1, "newBatchThreshold": 0},
    )


def contacts_in_dynamics(live: LiveDynamics) -> list[str]:
    return sorted(r["lastname"] for r in live.dynamics_rows("contacts"))


def test_disabling_mid_export_pauses_it_and_enabling_finishes_it_with_nothing_lost_or_doubled(
    live: LiveDynamics, azurite: Azurite
) -> None:
    def map_contacts(config: dict[str, Any]) -> None:
        config["fieldMapping"]["contacts"] = MAPPING

    assert live.save_config(map_contacts).status_code == 200
    live.dataverse.simulator.update(latency_ms=150)
    job_id = live.export(RECORDS)
    wait_for(lambda: live.status(job_id)["progress"]["chunksDone"] >= 1)
    live.switch(False)  # the admin's click, while the export is mid-way

    store = live.job_store(azurite)

    def settled() -> list[Any] | None:
        chunks = store.list_chunks(live.workspace, job_id)
        states = {c.state for c in chunks}
        return (
            chunks if states <= {ChunkState.DONE, ChunkState.PAUSED_DISABLED} and len(chunks) == 8 else None
        )

    chunks = wait_for(settled)
    done = [c for c in chunks if c.state is ChunkState.DONE]
    paused = [c for c in chunks if c.state is ChunkState.PAUSED_DISABLED]
    assert done and paused, [c.state for c in chunks]
    status = live.status(job_id)
    assert status["state"] == "paused_disabled", status
    written = status["counts"]["created"]
    assert written == 2 * len(done)
    assert len(contacts_in_dynamics(live)) == written  # nothing written after the switch went off
    records = live.records(job_id)
    assert sum(1 for r in records.values() if r["action"] == "created") == written
    assert all(r["action"] == "pending" for r in records.values() if r["action"] != "created")

    refused = live.call("POST", "/api/dynamics/exports", json={"entity": "contacts", "records": RECORDS[:1]})
    assert refused.status_code == 409 and refused.json()["code"] == "integration_disabled"

    live.switch(True)
    live.dataverse.simulator.update(latency_ms=0)
    finished = wait_for(
        lambda: (s := live.status(job_id))["state"] not in ("paused_disabled", "queued", "running") and s
    )
    assert finished["state"] == "succeeded", finished
    assert finished["counts"]["created"] == 16 and finished["errors"] == []
    records = live.records(job_id)
    assert sorted((pid, r["action"]) for pid, r in records.items()) == [(r["id"], "created") for r in RECORDS]
    assert contacts_in_dynamics(live) == [r["lastName"] for r in RECORDS]  # each once
