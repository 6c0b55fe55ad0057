"""Dynamics changes under a saved configuration, through the devhost: an admin deletes a mapped column in
Dynamics. The next export fails as a whole with one reason naming the column, before writing anything, and
the workspace gets one in-app notice saying why; the configuration lists the drift under its step, and
saving another step still works.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.entra import EntraEmulator
from tests.support.azurite import Azurite
from tests.support.dataverse import api_session
from tests.support.live_dynamics import LiveDynamics, live_dynamics, wait_for

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.support.identity"]

MAPPING = [
    {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
    {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
    {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": "new_replyanalysis"},
]
RECORDS = [
    {"id": f"p-{n}", "firstName": "Ada", "lastName": f"Drift {n}", "jobTitle": "CTO"} for n in range(5)
]


@pytest.fixture()
def live(azurite: Azurite, entra: EntraEmulator, tmp_path: Path) -> Iterator[LiveDynamics]:
    yield from live_dynamics(azurite, entra, tmp_path, settings={"EXPORT_CHUNK_SIZE": "2"})


def test_a_deleted_column_fails_the_export_once_with_one_notice_and_other_steps_still_save(
    live: LiveDynamics,
) -> None:
    def map_contacts(config: dict[str, Any]) -> None:
        config["fieldMapping"]["contacts"] = MAPPING

    saved = live.save_config(map_contacts)
    assert saved.status_code == 200, saved.text
    column = "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='new_replyanalysis')"
    assert api_session(live.dataverse).delete(live.dataverse.api_url + column).status_code == 204

    job_id = live.export(RECORDS)
    status = wait_for(lambda: (s := live.status(job_id))["state"] not in ("queued", "running") and s)
    assert status["state"] == "failed", status
    [reason] = status["errors"]
    assert "/fieldMapping/contacts/2/dynamicsField" in reason and "new_replyanalysis" in reason
    assert status["counts"]["failed"] == 5 and status["counts"]["invalid"] == 0
    assert {r["action"] for r in live.records(job_id).values()} == {"failed"}
    assert live.dynamics_rows("contacts") == []  # no record half-written

    notices = live.call("GET", "/api/notifications").json()["notifications"]
    about_job = [n for n in notices if (n.get("job") or {}).get("jobId") == job_id]
    assert len(about_job) == 1, notices
    assert about_job[0]["kind"] == "dynamics_job_failed" and "new_replyanalysis" in about_job[0]["message"]

    # The configuration says what drifted, under its step; saving another step works.
    current = live.call("GET", "/api/dynamics/config")
    drift = current.json()["drift"]
    assert [p["pointer"] for p in drift["fieldMapping"]] == ["/fieldMapping/contacts/2/dynamicsField"]
    other = live.call(
        "PUT",
        "/api/dynamics/config/campaign-mapping",
        json={"campaignOpens": "new_campaignopens"},
        headers={"If-Match": current.headers["ETag"]},
    )
    assert other.status_code == 200, other.text

    # Fixed, the same records export.
    def fix(config: dict[str, Any]) -> None:
        config["fieldMapping"]["contacts"] = MAPPING[:2]

    assert live.save_config(fix).status_code == 200
    again = live.export(RECORDS)
    done = wait_for(lambda: (s := live.status(again))["state"] not in ("queued", "running") and s)
    assert done["state"] == "succeeded" and done["counts"]["created"] == 5, done
