"""An admin's day-to-day loop through the devhost, the queue workers and the stand-ins: an export fails, the
workspace gets one in-app notice and one signed webhook call (retried after the receiver's 500), the history
finds the failed job, the admin fixes the mapping and retries it, the retry creates each record once, its
results download as CSV through the short-lived link, and the usage view counts the Dynamics requests. And
a cancel while an export runs leaves every record written once or not at all, the counts saying which.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.entra import EntraEmulator
from tests.support.azurite import Azurite
from tests.support.dataverse import api_session
from tests.support.live_dynamics import LiveDynamics, live_dynamics, wait_for
from tests.support.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.support.identity"]

FIRST_NAME_LAST_NAME = [
    {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
    {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
]
RUNNING = ("queued", "running", "cancelling")


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as state:
        yield state


def _live(azurite: Azurite, entra: EntraEmulator, tmp_path: Path, **kw: Any) -> Iterator[LiveDynamics]:
    settings = {
        "EXPORT_CHUNK_SIZE": "2",
        "ALERT_WEBHOOK_ALLOW_LOCAL": "true",
        "ALERT_WEBHOOK_BACKOFF_S": "1",
        "DYNAMICS_BUDGET_ENABLED": "true",
    }
    yield from live_dynamics(azurite, entra, tmp_path, settings=settings, **kw)


@pytest.fixture()
def live(azurite: Azurite, entra: EntraEmulator, tmp_path: Path) -> Iterator[LiveDynamics]:
    yield from _live(azurite, entra, tmp_path)


@pytest.fixture()
def slow_live(azurite: Azurite, entra: EntraEmulator, tmp_path: Path) -> Iterator[LiveDynamics]:
    """One chunk at a time, so a cancel lands while the export is mid-way."""
    yield from _live(azurite, entra, tmp_path, queues={"batchSize": 1, "newBatchThreshold": 0})


def calls_about(receiver: Receiver, job_id: str) -> list[dict[str, Any]]:
    return [g for g in receiver.got if (g["body"].get("job") or {}).get("jobId") == job_id]


def notices_about(live: LiveDynamics, job_id: str) -> list[str]:
    notices = live.call("GET", "/api/notifications").json()["notifications"]
    return [n["kind"] for n in notices if (n.get("job") or {}).get("jobId") == job_id]


def finished(live: LiveDynamics, job_id: str) -> dict[str, Any]:
    return wait_for(lambda: (s := live.status(job_id))["state"] not in RUNNING and s)


def test_a_failed_export_is_told_once_found_retried_after_the_fix_and_its_results_download(
    live: LiveDynamics, receiver: Receiver
) -> None:
    hook = live.call("PUT", "/api/dynamics/alerts/webhook", json={"url": receiver.url})
    assert hook.status_code == 201, hook.text
    receiver.secret = hook.json()["secret"]
    receiver.statuses = [500]  # the receiver's first answer: the delivery is retried

    # The admin maps the job title to a column that is then deleted in Dynamics: the export fails.
    def map_job_title(config: dict[str, Any]) -> None:
        title = {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": "new_replyanalysis"}
        config["fieldMapping"]["contacts"] = [*FIRST_NAME_LAST_NAME, title]

    assert live.save_config(map_job_title).status_code == 200
    column = "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='new_replyanalysis')"
    assert api_session(live.dataverse).delete(live.dataverse.api_url + column).status_code == 204
    records = [
        {"id": f"p-{n}", "firstName": "Ada", "lastName": f"Daily {n}", "jobTitle": "CTO"} for n in range(5)
    ]
    job_id = live.export(records)
    failed = finished(live, job_id)
    assert failed["state"] == "failed" and failed["counts"]["failed"] == 5, failed

    # Told: one in-app notice, one webhook event delivered after one retry, both signed attempts verified.
    assert notices_about(live, job_id) == ["dynamics_job_failed"]
    calls = wait_for(lambda: (got := calls_about(receiver, job_id))[1:] and got)
    assert [(g["status"], g["verified"]) for g in calls] == [(500, True), (200, True)]
    assert len({g["id"] for g in calls}) == 1  # the same event, sent again
    log = live.call("GET", "/api/dynamics/alerts/webhook/deliveries").json()["attempts"]
    assert [(a["attempt"], a["outcome"]) for a in log if a["jobId"] == job_id] == [
        (2, "delivered"),
        (1, "retry"),
    ]

    # Found: the history filtered on failed exports shows it with its counts.
    history = live.call("GET", "/api/dynamics/exports", params={"state": "failed"})
    assert history.status_code == 200, history.text
    [listed] = [j for j in history.json()["jobs"] if j["jobId"] == job_id]
    assert listed["counts"]["failed"] == 5 and listed["requestedBy"] == live.user_id

    # Fixed and retried: the job title goes where it belongs; a second retry call answers the same job.
    def fix(config: dict[str, Any]) -> None:
        title = {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": "jobtitle"}
        config["fieldMapping"]["contacts"] = [*FIRST_NAME_LAST_NAME, title]

    assert live.save_config(fix).status_code == 200
    retry = live.call("POST", f"/api/dynamics/exports/{job_id}/retry")
    assert retry.status_code == 202, retry.text
    retry_id = retry.json()["jobId"]
    assert live.call("POST", f"/api/dynamics/exports/{job_id}/retry").json()["jobId"] == retry_id
    done = finished(live, retry_id)
    assert done["state"] == "succeeded" and done["counts"]["created"] == 5, done
    assert done["retryOf"] == job_id and live.status(job_id)["retriedBy"] == retry_id
    contacts = live.dynamics_rows("contacts")
    assert sorted((c["lastname"], c["jobtitle"]) for c in contacts) == [
        (f"Daily {n}", "CTO") for n in range(5)
    ]

    # Downloaded: the CSV link works without the bearer token and lists each record's outcome.
    link = live.call("GET", f"/api/dynamics/exports/{retry_id}/records.csv", allow_redirects=False)
    assert link.status_code == 302, link.text
    file = live.http.get(link.headers["Location"], timeout=30)
    assert file.status_code == 200
    rows = list(csv.DictReader(io.StringIO(file.content.decode("utf-8-sig"))))
    assert sorted((r["platformId"], r["action"]) for r in rows) == [(f"p-{n}", "created") for n in range(5)]

    # The usage view counts what the integration sent to Dynamics.
    usage = live.call("GET", "/api/dynamics/usage").json()
    assert usage["recorded"] is True and usage["window"]["requests"] > 0
    assert usage["days"][0]["requests"] >= usage["window"]["requests"]
    assert usage["window"]["busiestJob"]["jobId"] in (job_id, retry_id)

    # The successful retry told nobody; the failed job's event came once.
    assert notices_about(live, retry_id) == []
    assert len({g["id"] for g in receiver.got}) == 1


def test_cancel_mid_export_writes_each_record_once_or_not_at_all(slow_live: LiveDynamics) -> None:
    live = slow_live

    def map_contacts(config: dict[str, Any]) -> None:
        config["fieldMapping"]["contacts"] = FIRST_NAME_LAST_NAME

    assert live.save_config(map_contacts).status_code == 200
    live.dataverse.simulator.update(latency_ms=150)
    records = [{"id": f"p-{n:02d}", "firstName": "Ada", "lastName": f"Cancel {n:02d}"} for n in range(16)]
    job_id = live.export(records)
    wait_for(lambda: live.status(job_id)["progress"]["chunksDone"] >= 1)
    asked = live.call("POST", f"/api/dynamics/exports/{job_id}/cancel")
    assert asked.status_code == 200, asked.text
    assert asked.json()["state"] in ("cancelling", "cancelled")
    live.dataverse.simulator.update(latency_ms=0)

    status = finished(live, job_id)
    assert status["state"] == "cancelled", status
    assert status["cancelledBy"] == live.user_id
    created, cancelled = status["counts"]["created"], status["counts"]["cancelled"]
    assert created >= 2 and cancelled >= 2 and created + cancelled == 16, status["counts"]
    in_dynamics = sorted(c["lastname"] for c in live.dynamics_rows("contacts"))
    assert len(in_dynamics) == len(set(in_dynamics)) == created  # written once each
    # Chunks that never started count as cancelled at once; their records are listed once their queue
    # messages arrive (and run nothing).
    outcomes = wait_for(lambda: len(got := live.records(job_id)) == len(records) and got)
    assert {r["action"] for r in outcomes.values()} == {"created", "cancelled"}
    for record in records:
        written = record["lastName"] in in_dynamics
        assert written == (outcomes[record["id"]]["action"] == "created"), record

    history = live.call("GET", "/api/dynamics/exports", params={"state": "cancelled"}).json()["jobs"]
    assert [j["jobId"] for j in history] == [job_id]
    again = live.call("POST", f"/api/dynamics/exports/{job_id}/cancel")
    assert again.status_code == 200 and again.json()["counts"] == status["counts"]
