"""Integrations page: the four CRM cards and the one-active-CRM rule, under concurrency too."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import azure.functions as func
import pytest

from core.entrypoints import activities_api, exports_api, integrations_api
from core.settings import get_settings
from tests.integration.test_caller_kinds import _map_fields
from tests.support import tokens
from tests.support.azurite import Azurite
from tests.support.http import body_json, call, configure_app, request

pytestmark = pytest.mark.integration


@pytest.fixture()
def ws(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    configure_app(monkeypatch, azurite.connection_string)
    yield f"ws-{uuid.uuid4().hex[:12]}"
    get_settings.cache_clear()


def cards(ws: str, role: str = "member") -> dict[str, bool]:
    resp = call(
        integrations_api.list_integrations, request("GET", "integrations", headers=tokens.bearer(ws, role))
    )
    assert resp.status_code == 200
    return {c["crm"]: c["enabled"] for c in body_json(resp)["integrations"]}


def set_crm(ws: str, crm: str, enabled: object, role: str = "admin") -> func.HttpResponse:
    req = request(
        "PUT",
        f"integrations/{crm}",
        json_body={"enabled": enabled},
        headers=tokens.bearer(ws, role),
        route_params={"crm": crm},
    )
    return call(integrations_api.put_integration, req)


def test_cards_and_one_active_crm(ws: str) -> None:
    assert cards(ws) == {"dynamics": False, "hubspot": False, "salesforce": False, "pipedrive": False}
    assert set_crm(ws, "dynamics", True).status_code == 200
    assert set_crm(ws, "dynamics", True).status_code == 200  # idempotent
    assert cards(ws)["dynamics"] is True

    conflict = set_crm(ws, "hubspot", True)
    assert conflict.status_code == 409 and conflict.mimetype == "application/problem+json"
    assert body_json(conflict)["activeCrm"] == "dynamics"
    assert "Dynamics" in body_json(conflict)["detail"]

    assert set_crm(ws, "hubspot", False).status_code == 200  # disabling an inactive one changes nothing
    assert cards(ws)["dynamics"] is True
    assert set_crm(ws, "dynamics", False).status_code == 200
    assert set_crm(ws, "hubspot", True).status_code == 200
    assert cards(ws) == {"dynamics": False, "hubspot": True, "salesforce": False, "pipedrive": False}


def test_members_cannot_change_and_bad_input_is_4xx(ws: str) -> None:
    assert set_crm(ws, "dynamics", True, role="member").status_code == 403
    assert set_crm(ws, "zoho", True).status_code == 404
    assert set_crm(ws, "dÿnamics", True).status_code == 404
    assert set_crm(ws, "dynamics", "yes").status_code == 400
    missing = call(
        integrations_api.put_integration,
        request("PUT", "x", json_body={}, headers=tokens.bearer(ws), route_params={"crm": "dynamics"}),
    )
    assert missing.status_code == 400 and body_json(missing)["errors"][0]["pointer"] == "/enabled"
    assert not any(cards(ws).values())


@pytest.mark.parametrize("round_", range(3))
def test_racing_enables_leave_at_most_one_enabled(ws: str, round_: int) -> None:
    crms = ["dynamics", "hubspot", "salesforce", "pipedrive"] * 4
    barrier = threading.Barrier(len(crms))
    results: list[tuple[str, int, str | None]] = []

    def enable(crm: str) -> None:
        barrier.wait()
        resp = set_crm(ws, crm, True)
        results.append((crm, resp.status_code, body_json(resp).get("activeCrm")))

    threads = [threading.Thread(target=enable, args=(c,)) for c in crms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    enabled = [crm for crm, on in cards(ws).items() if on]
    assert len(enabled) == 1
    winner = enabled[0]
    assert Counter(status for _, status, _ in results) == Counter({200: 4, 409: 12})
    assert all(crm == winner for crm, status, _ in results if status == 200)
    assert all(active == winner for _, status, active in results if status == 409)


def _submit(ws: str, path: str, fn: object, body: object, role: str) -> func.HttpResponse:
    return call(fn, request("POST", path, json_body=body, headers=tokens.bearer(ws, role)))


def test_with_dynamics_disabled_exports_and_activities_are_refused_with_the_reason(ws: str) -> None:
    export = {"entity": "contacts", "records": [{"id": "p-1", "firstName": "Ada", "lastName": "Lovelace"}]}
    events = {"events": [{"id": "e-1", "contactId": "p-1", "kind": "task", "at": "2026-11-20T10:00:00Z"}]}

    def refused(role: str = "admin") -> list[dict[str, object]]:
        answers = [
            _submit(ws, "dynamics/exports", exports_api.post_export, export, role),
            _submit(ws, "dynamics/activities", activities_api.post_activities, events, "service"),
        ]
        assert [a.status_code for a in answers] == [409, 409], [a.get_body() for a in answers]
        assert {a.mimetype for a in answers} == {"application/problem+json"}
        return [body_json(a) for a in answers]

    # Never enabled: nothing is accepted, and the problem says what to do.
    for problem in refused():
        assert problem["code"] == "integration_disabled" and problem["activeCrm"] is None
        assert "enables it on the Integrations page" in str(problem["detail"])

    # Another CRM enabled: Dynamics cannot be enabled until it is disabled; the problem names it.
    assert set_crm(ws, "hubspot", True).status_code == 200
    assert set_crm(ws, "dynamics", True).status_code == 409
    for problem in refused("member"):
        assert problem["activeCrm"] == "hubspot" and "hubspot" in str(problem["detail"])

    # Switched over to Dynamics: accepted.
    _map_fields(ws)
    assert set_crm(ws, "hubspot", False).status_code == 200
    assert set_crm(ws, "dynamics", True).status_code == 200
    accepted = [
        _submit(ws, "dynamics/exports", exports_api.post_export, export, "admin"),
        _submit(ws, "dynamics/activities", activities_api.post_activities, events, "service"),
    ]
    assert [a.status_code for a in accepted] == [202, 202], [a.get_body() for a in accepted]

    # Disabled again: refused again.
    assert set_crm(ws, "dynamics", False).status_code == 200
    refused()


def test_a_retry_with_dynamics_disabled_is_refused_with_the_reason(ws: str) -> None:
    _map_fields(ws)
    assert set_crm(ws, "dynamics", True).status_code == 200
    # One invalid record: the job ends at once, with a record a retry may send again.
    export = {"entity": "contacts", "records": [{"id": "p-1", "firstName": {"x": 1}, "lastName": "L"}]}
    submitted = _submit(ws, "dynamics/exports", exports_api.post_export, export, "admin")
    assert submitted.status_code == 202, submitted.get_body()
    job_id = body_json(submitted)["jobId"]
    assert set_crm(ws, "dynamics", False).status_code == 200

    retry = call(
        exports_api.retry_export,
        request(
            "POST",
            "x",
            json_body={"include": ["invalid"]},
            headers=tokens.bearer(ws, "admin"),
            route_params={"jobId": job_id},
        ),
    )
    assert retry.status_code == 409 and retry.mimetype == "application/problem+json", retry.get_body()
    assert body_json(retry)["code"] == "integration_disabled"
