"""The real function_app through the devhost (a subprocess, as `func start` would run it) against Azurite:
what the frontend sees over HTTP, and the scripted demo of the README."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from devhost.launcher import REPO_ROOT, DevHostProcess
from tests.support.azurite import Azurite

pytestmark = pytest.mark.e2e

AUDIENCE = "dynamics-integration"
ISSUER = "https://platform.local"


class App:
    def __init__(self, base_url: str, secret: str, log_path: Path) -> None:
        self.base_url = base_url
        self.secret = secret
        self.log_path = log_path
        self.session = requests.Session()
        self.session.trust_env = False

    def token(self, workspace: str, role: str = "admin", **extra: Any) -> str:
        now = int(time.time())
        claims = {"sub": "user-e2e", "workspace_id": workspace, "role": role, "aud": AUDIENCE, "iss": ISSUER}
        claims |= {"iat": now, "nbf": now, "exp": now + 600, **extra}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, f"{self.base_url}{path}", headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def app(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    secret = secrets.token_urlsafe(32)
    log_path = tmp_path_factory.mktemp("e2e") / "devhost.log"
    settings = {
        "AzureWebJobsStorage": azurite.connection_string,
        "PLATFORM_JWT_ALLOW_DEV_HS256": "true",
        "PLATFORM_JWT_DEV_HS256_SECRET": secret,
        "PLATFORM_JWT_AUDIENCE": AUDIENCE,
        "PLATFORM_JWT_ISSUER": ISSUER,
    }
    # The example, not a developer's local.settings.json: what a fresh clone gets.
    host = DevHostProcess(
        "function_app", settings, settings_file=REPO_ROOT / "local.settings.json.example", log_path=log_path
    )
    host.start(timeout=60)
    try:
        yield App(host.base_url, secret, log_path)
    finally:
        assert host.stop() == 0, "the devhost did not stop cleanly"


def workspace() -> str:
    return f"ws-e2e-{secrets.token_hex(6)}"


def test_health_needs_no_token_and_reports_storage(app: App) -> None:
    response = app.call("GET", "/api/health")
    assert response.status_code == 200
    assert response.json()["storage"] == "ok"


def test_endpoints_refuse_callers_without_a_valid_token(app: App) -> None:
    missing = app.call("GET", "/api/dynamics/config")
    assert missing.status_code == 401
    assert missing.headers["Content-Type"].startswith("application/problem+json")
    expired = app.call("GET", "/api/dynamics/config", app.token(workspace(), exp=int(time.time()) - 60))
    assert expired.status_code == 401
    member_write = app.call(
        "PUT", "/api/integrations/dynamics", app.token(workspace(), "member"), json={"enabled": True}
    )
    assert member_write.status_code == 403


def test_configuration_round_trip_with_etags_over_http(app: App) -> None:
    token = app.token(workspace())
    first = app.call("GET", "/api/dynamics/config", token)
    assert first.status_code == 200 and first.headers["ETag"] == '"v0"'
    config = first.json()
    config["syncIdentifiers"]["associateCompaniesWithContacts"] = True
    saved = app.call(
        "PUT", "/api/dynamics/config", token, json=config, headers={"If-Match": first.headers["ETag"]}
    )
    assert saved.status_code == 200, saved.text
    assert saved.headers["ETag"] == '"v1"'
    stale = app.call("PUT", "/api/dynamics/config", token, json=config, headers={"If-Match": '"v0"'})
    assert stale.status_code == 412
    step = app.call("GET", "/api/dynamics/config/sync-identifiers", token)
    assert step.status_code == 200 and step.json()["associateCompaniesWithContacts"] is True
    history = app.call("GET", "/api/dynamics/config/history", token)
    assert [v["version"] for v in history.json()["versions"]] == [1]


def test_workspaces_are_isolated_through_the_host(app: App) -> None:
    a, b = app.token(workspace()), app.token(workspace())
    config = app.call("GET", "/api/dynamics/config", a).json()
    config["syncIdentifiers"]["associateCompaniesWithContacts"] = True
    assert app.call("PUT", "/api/dynamics/config", a, json=config).status_code == 200
    assert app.call("GET", "/api/dynamics/config", b).headers["ETag"] == '"v0"'


def test_bad_bodies_get_4xx_never_500(app: App) -> None:
    token = app.token(workspace())
    malformed = app.call(
        "PUT", "/api/dynamics/config", token, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    wrong_type = app.call(
        "PUT", "/api/dynamics/config", token, data=b"<xml/>", headers={"Content-Type": "application/xml"}
    )
    assert wrong_type.status_code in (400, 415)
    huge = app.call(
        "PUT",
        "/api/dynamics/config",
        token,
        data=b"[" + b"0," * (5 * 1024 * 1024) + b"0]",
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert app.call("DELETE", "/api/dynamics/config", token).status_code == 405
    assert app.call("GET", "/api/dynamics/nothing-here", token).status_code == 404


def test_tokens_never_reach_the_devhost_log(app: App) -> None:
    token = app.token(workspace())
    assert app.call("GET", "/api/integrations", token).status_code == 200
    deadline = time.monotonic() + 5  # the line is written just after the response
    while (
        "GET /api/integrations 200" not in (log := app.log_path.read_text()) and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert "GET /api/integrations 200" in log
    assert token not in log and token.split(".")[2] not in log


def test_the_readme_demo_walks_the_api_successfully(app: App) -> None:
    env = {
        **os.environ,
        "PLATFORM_JWT_ALLOW_DEV_HS256": "true",
        "PLATFORM_JWT_DEV_HS256_SECRET": app.secret,
        "PLATFORM_JWT_AUDIENCE": AUDIENCE,
        "PLATFORM_JWT_ISSUER": ISSUER,
    }
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "demo.py"), "--base-url", app.base_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Done: configuration saved" in result.stdout
    assert "/fieldMapping/contacts/0/platformField" in result.stdout  # the validation errors are shown
