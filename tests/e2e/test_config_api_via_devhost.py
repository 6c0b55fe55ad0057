"""The real function_app through the devhost (a subprocess, as `func start` would run it) against Azurite:
what the frontend sees over HTTP, and the scripted demo of the README."""

from __future__ import annotations

import secrets
import time

import pytest

from tests.support.devhost import AppClient

pytestmark = pytest.mark.e2e


def workspace() -> str:
    return f"ws-e2e-{secrets.token_hex(6)}"


def test_health_needs_no_token_and_reports_storage(live_app: AppClient) -> None:
    response = live_app.call("GET", "/api/health")
    assert response.status_code == 200
    assert response.json()["storage"] == "ok"


def test_endpoints_refuse_callers_without_a_valid_token(live_app: AppClient) -> None:
    missing = live_app.call("GET", "/api/dynamics/config")
    assert missing.status_code == 401
    assert missing.headers["Content-Type"].startswith("application/problem+json")
    expired = live_app.call(
        "GET", "/api/dynamics/config", live_app.token(workspace(), exp=int(time.time()) - 60)
    )
    assert expired.status_code == 401
    member_write = live_app.call(
        "PUT",
        "/api/integrations/dynamics",
        live_app.token(workspace(), "member"),
        json={"enabled": True},
    )
    assert member_write.status_code == 403


def test_configuration_round_trip_with_etags_over_http(live_app: AppClient) -> None:
    token = live_app.token(workspace())
    first = live_app.call("GET", "/api/dynamics/config", token)
    assert first.status_code == 200 and first.headers["ETag"] == '"v0"'
    config = first.json()
    config["syncIdentifiers"]["associateCompaniesWithContacts"] = True
    saved = live_app.call(
        "PUT", "/api/dynamics/config", token, json=config, headers={"If-Match": first.headers["ETag"]}
    )
    assert saved.status_code == 200, saved.text
    assert saved.headers["ETag"] == '"v1"'
    stale = live_app.call("PUT", "/api/dynamics/config", token, json=config, headers={"If-Match": '"v0"'})
    assert stale.status_code == 412
    step = live_app.call("GET", "/api/dynamics/config/sync-identifiers", token)
    assert step.status_code == 200 and step.json()["associateCompaniesWithContacts"] is True
    history = live_app.call("GET", "/api/dynamics/config/history", token)
    assert [v["version"] for v in history.json()["versions"]] == [1]


def test_workspaces_are_isolated_through_the_host(live_app: AppClient) -> None:
    a, b = live_app.token(workspace()), live_app.token(workspace())
    config = live_app.call("GET", "/api/dynamics/config", a).json()
    config["syncIdentifiers"]["associateCompaniesWithContacts"] = True
    assert live_app.call("PUT", "/api/dynamics/config", a, json=config).status_code == 200
    assert live_app.call("GET", "/api/dynamics/config", b).headers["ETag"] == '"v0"'


def test_bad_bodies_get_4xx_never_500(live_app: AppClient) -> None:
    token = live_app.token(workspace())
    malformed = live_app.call(
        "PUT", "/api/dynamics/config", token, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    wrong_type = live_app.call(
        "PUT", "/api/dynamics/config", token, data=b"<xml/>", headers={"Content-Type": "application/xml"}
    )
    assert wrong_type.status_code in (400, 415)
    huge = live_app.call(
        "PUT",
        "/api/dynamics/config",
        token,
        data=b"[" + b"0," * (5 * 1024 * 1024) + b"0]",
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert live_app.call("DELETE", "/api/dynamics/config", token).status_code == 405
    assert live_app.call("GET", "/api/dynamics/nothing-here", token).status_code == 404


def test_tokens_never_reach_the_devhost_log(live_app: AppClient) -> None:
    token = live_app.token(workspace())
    assert live_app.call("GET", "/api/integrations", token).status_code == 200
    deadline = time.monotonic() + 5  # the line is written just after the response
    while (
        "GET /api/integrations 200" not in (log := live_app.log_path.read_text())
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert "GET /api/integrations 200" in log
    assert token not in log and token.split(".")[2] not in log
