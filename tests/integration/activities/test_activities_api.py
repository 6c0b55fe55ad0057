"""The activities HTTP surface against real Azurite, called as the Functions host calls it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from core.entrypoints import activities_api
from core.settings import get_settings
from tests.support import tokens
from tests.support.app import enable_dynamics
from tests.support.azurite import Azurite
from tests.support.http import body_json, call, configure_app, request

pytestmark = pytest.mark.integration


@pytest.fixture()
def ws(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    configure_app(monkeypatch, azurite.connection_string)
    workspace = f"ws-{uuid.uuid4().hex[:12]}"
    enable_dynamics(workspace)
    yield workspace
    get_settings.cache_clear()


def _event(event_id: str, **extra: object) -> dict[str, object]:
    return {"id": event_id, "contactId": "p1", "kind": "task", "at": "2026-11-20T10:00:00Z", **extra}


def test_submit_reports_bad_events_individually_and_serves_status_and_records(ws: str) -> None:
    headers = tokens.service_bearer(ws)
    events = [_event("e1"), _event("e2", kind="carrier_pigeon"), _event("e3", at="soon")]
    resp = call(
        activities_api.post_activities,
        request("POST", "dynamics/activities", json_body={"events": events}, headers=headers),
    )
    assert resp.status_code == 202, resp.get_body()
    accepted = body_json(resp)
    assert (accepted["accepted"], accepted["invalid"]) == (1, 2)
    job_id = accepted["jobId"]
    assert resp.headers["Location"] == f"/api/dynamics/activities/{job_id}"

    status = body_json(
        call(
            activities_api.get_activities,
            request("GET", f"dynamics/activities/{job_id}", headers=headers, route_params={"jobId": job_id}),
        )
    )
    assert status["state"] == "queued"
    assert status["counts"]["invalid"] == 2 and status["progress"]["events"] == 3

    records = body_json(
        call(
            activities_api.get_activity_records,
            request(
                "GET",
                f"dynamics/activities/{job_id}/records",
                headers=headers,
                route_params={"jobId": job_id},
                params={"status": "invalid"},
            ),
        )
    )["records"]
    assert {r["platformId"]: [e["field"] for e in r["errors"]] for r in records} == {
        "e2": ["kind"],
        "e3": ["at"],
    }


def test_envelope_problems_unknown_jobs_and_other_workspaces(ws: str) -> None:
    headers = tokens.service_bearer(ws)
    empty = call(
        activities_api.post_activities,
        request("POST", "dynamics/activities", json_body={"events": []}, headers=headers),
    )
    assert empty.status_code == 400
    resp = call(
        activities_api.post_activities,
        request("POST", "dynamics/activities", json_body={"events": [_event("e1")]}, headers=headers),
    )
    job_id = body_json(resp)["jobId"]
    other = tokens.service_bearer(f"{ws}-other")
    hidden = call(
        activities_api.get_activities,
        request("GET", f"dynamics/activities/{job_id}", headers=other, route_params={"jobId": job_id}),
    )
    assert hidden.status_code == 404
    bad_filter = call(
        activities_api.get_activity_records,
        request(
            "GET",
            f"dynamics/activities/{job_id}/records",
            headers=headers,
            route_params={"jobId": job_id},
            params={"status": "exploded"},
        ),
    )
    assert bad_filter.status_code == 400
    for name, value in (("cursor", "abc"), ("limit", "0")):
        bad = call(
            activities_api.get_activity_records,
            request(
                "GET",
                f"dynamics/activities/{job_id}/records",
                headers=headers,
                route_params={"jobId": job_id},
                params={name: value},
            ),
        )
        assert bad.status_code == 400 and body_json(bad)["errors"][0]["pointer"] == f"/{name}"
    anonymous = call(
        activities_api.post_activities,
        request("POST", "dynamics/activities", json_body={"events": [_event("e1")]}),
    )
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"events": [None, 1, "x", [], {"id": 1}, {"id": "a" * 500, "contactId": ["p"]}]},
        {"events": "not a list"},
        {"events": [{}], "identities": [{"id": ""}]},
        {"events": [_event("e1", contact="not an object", subject={"nested": True})]},
        {"events": [_event("e1")], "unknown": 1},
        [1, 2, 3],
    ],
)
def test_odd_bodies_are_client_errors_never_internal_ones(ws: str, body: object) -> None:
    resp = call(
        activities_api.post_activities,
        request("POST", "dynamics/activities", json_body=body, headers=tokens.service_bearer(ws)),
    )
    assert resp.status_code in (202, 400), resp.get_body()
    if resp.status_code == 202:
        assert body_json(resp)["accepted"] == 0  # every odd event is reported invalid, none is sent
