"""The app's logs through the devhost (a subprocess, as `func start` would run it), for a realistic flow:
connect Dynamics (OAuth against the Entra stand-in), save the configuration, export contacts (queue worker
against the Dataverse emulator), and a Dynamics call that fails. Every line is one JSON object, the lines
of a request or a queue invocation carry its ids, the response echoes the correlation id, and no token,
code or secret appears anywhere in the log.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from core.entrypoints.exports_api import ExportStatus
from devhost.launcher import DevHostProcess
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import ensure_ca, trusting_session
from tests.support.azurite import Azurite
from tests.support.devhost import FAST_QUEUES
from tests.support.identity import REDIRECT_URI, identity_settings

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.support.identity"]

AUDIENCE = "dynamics-integration"
ISSUER = "https://platform.local"
CONFIG_MAPPING = {
    "contacts": [
        {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
        {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
        {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": "jobtitle"},
    ],
    "companies": [
        {"kind": "platform_field", "platformField": "name", "dynamicsField": "name"},
        {"kind": "platform_field", "platformField": "domain", "dynamicsField": "websiteurl"},
    ],
}
CONTACTS = [
    {"id": "p-1", "firstName": "Ada", "lastName": "Lovelace", "jobTitle": "CTO", "company": {"name": "Ana"}},
    {"id": "p-2", "firstName": "Alan", "lastName": "Turing", "company": {"name": "Bletchley"}},
]


@dataclass
class Flow:
    base_url: str
    log_path: Path
    dev_secret: str
    settings: dict[str, str]
    entra: EntraEmulator
    dataverse: DataverseEmulator
    http: requests.Session
    workspace: str
    user_id: str
    seen_secrets: list[str]

    def token(self, role: str = "admin") -> str:
        now = int(time.time())
        claims = {"sub": self.user_id, "workspace_id": self.workspace, "role": role, "aud": AUDIENCE}
        claims |= {"iss": ISSUER, "iat": now, "nbf": now, "exp": now + 600}
        token = jwt.encode(claims, self.dev_secret, algorithm="HS256")
        self.seen_secrets.append(token)
        return token

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kw.pop("headers", {})}
        return self.http.request(method, self.base_url + path, headers=headers, timeout=30, **kw)

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in json_lines(self.log_path.read_text())]


def json_lines(text: str) -> list[str]:
    """The lines from the first JSON line on (the devhost's own lines before the app loaded are text)."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("{")), len(lines))
    return [line for line in lines[first:] if line.strip()]


@pytest.fixture(scope="module")
def entra_m() -> Iterator[EntraEmulator]:
    emulator = EntraEmulator(access_token_lifetime=3600)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def flow(
    azurite: Azurite, entra_m: EntraEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flow]:
    keyvault = KeyVaultEmulator(authority=entra_m.authority)
    keyvault.start()
    dataverse = DataverseEmulator(accepted_tokens=())
    dataverse.add_signing_key(entra_m.public_jwk())
    dataverse.start()
    user = entra_m.current_user
    dataverse.add_user(object_id=user.object_id, domainname=user.email)
    dev_secret = secrets.token_urlsafe(32)
    kv_token = keyvault.issue_token()
    settings = {
        **identity_settings(entra_m, keyvault, azurite, kv_token),
        "TOKEN_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "REQUESTS_CA_BUNDLE": str(ensure_ca().bundle_path),
        "PLATFORM_JWT_ALLOW_DEV_HS256": "true",
        "PLATFORM_JWT_DEV_HS256_SECRET": dev_secret,
        "PLATFORM_JWT_AUDIENCE": AUDIENCE,
        "PLATFORM_JWT_ISSUER": ISSUER,
        "EXPORT_MAX_ATTEMPTS": "3",
        "DYNAMICS_BUDGET_ENABLED": "false",
        "TOKEN_REFRESH_SCHEDULE": "0 0 0 1 1 *",
    }
    log_path = tmp_path_factory.mktemp("logs") / "devhost.log"
    host = DevHostProcess("function_app", settings, host_overrides=FAST_QUEUES, log_path=log_path)
    host.start(timeout=60)
    http = requests.Session()
    http.trust_env = False
    known = [dev_secret, kv_token, settings["TOKEN_ENCRYPTION_KEY"], entra_m.client_secret]
    try:
        yield Flow(
            host.base_url,
            log_path,
            dev_secret,
            settings,
            entra_m,
            dataverse,
            http,
            f"ws-logs-{secrets.token_hex(4)}",
            f"user-{secrets.token_hex(4)}",
            known,
        )
    finally:
        assert host.stop() == 0
        dataverse.stop()
        keyvault.stop()


def wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_realistic_flow_logs_json_lines_with_ids_and_no_secrets(flow: Flow) -> None:
    # Connect: the admin starts, signs in at Microsoft, the browser comes back with a code, the callback
    # sends it to the frontend with a one-time handle.
    assert flow.call("PUT", "/api/integrations/dynamics", json={"enabled": True}).status_code == 200
    started = flow.call("POST", "/api/dynamics/connect", json={"environmentUrl": flow.dataverse.url})
    assert started.status_code == 200, started.text
    redirect = trusting_session().get(started.json()["authorizationUrl"], allow_redirects=False, timeout=10)
    location = redirect.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    query = parse_qs(urlsplit(location).query)
    flow.seen_secrets.append(query["code"][0])
    callback = flow.http.get(
        f"{flow.base_url}/api/dynamics/oauth/callback?{urlsplit(location).query}",
        allow_redirects=False,
        timeout=30,
    )
    returned = parse_qs(urlsplit(callback.headers["Location"]).query)
    assert returned["dynamics"] == ["confirm"], callback.headers["Location"]
    flow.seen_secrets.append(returned["handle"][0])
    # The admin who started confirms in the frontend; the answer names what was connected.
    completed = flow.call("POST", "/api/dynamics/oauth/complete", json={"handle": returned["handle"][0]})
    assert completed.status_code == 200, completed.text
    assert completed.json()["environmentUrl"] == flow.dataverse.url

    # Save the field mapping (checked against the environment's live metadata).
    current = flow.call("GET", "/api/dynamics/config")
    config = current.json()
    config["fieldMapping"] = CONFIG_MAPPING
    saved = flow.call(
        "PUT",
        "/api/dynamics/config",
        json=config,
        headers={"If-Match": current.headers["ETag"], "X-Correlation-Id": "save-config-1"},
    )
    assert saved.status_code == 200, saved.text
    assert saved.headers["X-Correlation-Id"] == "save-config-1"

    # Export: submitted over HTTP, run by the queue worker against Dynamics; the status is the documented one.
    submitted = flow.call("POST", "/api/dynamics/exports", json={"entity": "contacts", "records": CONTACTS})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["jobId"]

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = flow.call("GET", f"/api/dynamics/exports/{job_id}").json()
        return body if body["state"] not in ("queued", "running") else None

    status = ExportStatus.model_validate(wait_for(finished))
    assert status.state.value == "succeeded", status
    assert status.counts.created == 2 and status.progress.processed == status.progress.records == 2
    assert status.progress.chunksDone == status.progress.chunks

    # A Dynamics call that fails: the health check of the workspace while Dynamics answers 503.
    flow.dataverse.simulator.update(error_rate_503=1.0)
    try:
        failing = flow.call("GET", "/api/health/dynamics")
    finally:
        flow.dataverse.simulator.update(error_rate_503=0.0)
    assert failing.status_code == 200 and failing.json()["status"] == "unreachable"
    failing_id = failing.headers["X-Correlation-Id"]

    entries = wait_for(
        lambda: (e := flow.entries()) and any("Dynamics health check" in x["message"] for x in e) and e
    )
    text = flow.log_path.read_text()

    # One JSON object per line, each with the fixed keys.
    for entry in entries:
        assert {"timestamp", "level", "logger", "message"} <= set(entry)

    # Request lines carry the correlation id, the workspace and the user.
    save_lines = [e for e in entries if e.get("correlationId") == "save-config-1"]
    assert any("PUT /api/dynamics/config 200" in e["message"] for e in save_lines)
    assert all(e["workspaceId"] == flow.workspace and e["userId"] == flow.user_id for e in save_lines)
    submit = next(e for e in entries if "POST /api/dynamics/exports 202" in e["message"])
    assert submit["workspaceId"] == flow.workspace and submit["correlationId"]

    # Queue invocations carry workspace, job and chunk.
    worker = [e for e in entries if e.get("jobId") == job_id]
    assert any("export chunk handled" in e["message"] for e in worker)
    assert all(e["workspaceId"] == flow.workspace and isinstance(e["chunk"], int) for e in worker)

    # The failing Dynamics call is logged with the request's ids.
    failure = next(e for e in entries if "Dynamics health check" in e["message"])
    assert failure["level"] == "WARNING" and "503" in failure["message"]
    assert failure["correlationId"] == failing_id and failure["workspaceId"] == flow.workspace

    # No token, code or secret anywhere (JWTs of any kind start with eyJ).
    refresh_tokens = list(flow.entra._grants)  # the stand-in's issued refresh tokens
    assert refresh_tokens
    for secret in [*flow.seen_secrets, *refresh_tokens]:
        assert secret not in text, f"a secret starting {secret[:6]!r} reached the log"
    assert "eyJ" not in text

    # No personal data beyond ids: the contacts' names and the integration user's e-mail stay out.
    personal = [c["lastName"] for c in CONTACTS] + [flow.entra.current_user.email]
    leaked = [value for value in personal if value in text]
    assert leaked == [], f"personal data reached the log: {leaked}"
