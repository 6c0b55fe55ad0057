"""The real function_app in the devhost (a subprocess), connected to the Dataverse emulator through the
Entra and Key Vault stand-ins the way an admin connects: enable Dynamics, connect, sign in at Microsoft,
come back through the callback, confirm. For e2e tests that watch jobs run by the devhost's own queue
workers. Polls wait on state (the job's status), never on a fixed delay.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from core.adapters.storage.job_store import JobStore
from core.services.exports.service import EXPORT_NAMES
from devhost.launcher import DevHostProcess
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import ensure_ca, trusting_session
from tests.support.azurite import Azurite
from tests.support.dataverse import STATIC_TOKEN, rows
from tests.support.identity import REDIRECT_URI, identity_settings

AUDIENCE = "dynamics-integration"
ISSUER = "https://platform.local"
T = TypeVar("T")


@dataclass
class LiveDynamics:
    base_url: str
    dev_secret: str
    dataverse: DataverseEmulator
    http: requests.Session
    workspace: str
    user_id: str

    def token(self, role: str = "admin") -> str:
        now = int(time.time())
        claims = {"sub": self.user_id, "workspace_id": self.workspace, "role": role, "aud": AUDIENCE}
        claims |= {"iss": ISSUER, "iat": now, "nbf": now, "exp": now + 600}
        return jwt.encode(claims, self.dev_secret, algorithm="HS256")

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kw.pop("headers", {})}
        return self.http.request(method, self.base_url + path, headers=headers, timeout=30, **kw)

    def switch(self, enabled: bool) -> None:
        answer = self.call("PUT", "/api/integrations/dynamics", json={"enabled": enabled})
        assert answer.status_code == 200, answer.text

    def connect(self) -> None:
        self.switch(True)
        started = self.call("POST", "/api/dynamics/connect", json={"environmentUrl": self.dataverse.url})
        assert started.status_code == 200, started.text
        redirect = trusting_session().get(
            started.json()["authorizationUrl"], allow_redirects=False, timeout=10
        )
        location = redirect.headers["Location"]
        assert location.startswith(REDIRECT_URI)
        callback = self.http.get(
            f"{self.base_url}/api/dynamics/oauth/callback?{urlsplit(location).query}",
            allow_redirects=False,
            timeout=30,
        )
        back = {k: v[-1] for k, v in parse_qs(urlsplit(callback.headers["Location"]).query).items()}
        assert back.get("dynamics") == "confirm", callback.headers["Location"]
        completed = self.call("POST", "/api/dynamics/oauth/complete", json={"handle": back["handle"]})
        assert completed.status_code == 200, completed.text

    def save_config(self, change: Callable[[dict[str, Any]], None]) -> requests.Response:
        current = self.call("GET", "/api/dynamics/config")
        assert current.status_code == 200, current.text
        config = current.json()
        change(config)
        return self.call(
            "PUT", "/api/dynamics/config", json=config, headers={"If-Match": current.headers["ETag"]}
        )

    def export(self, records: list[dict[str, Any]], entity: str = "contacts") -> str:
        submitted = self.call("POST", "/api/dynamics/exports", json={"entity": entity, "records": records})
        assert submitted.status_code == 202, submitted.text
        return str(submitted.json()["jobId"])

    def dynamics_rows(self, entity_set: str) -> list[dict[str, Any]]:
        """What Dynamics holds, read by the test itself."""
        return rows(self.dataverse, entity_set)

    def job_store(self, azurite: Azurite) -> JobStore:
        return JobStore(
            TableServiceClient.from_connection_string(azurite.connection_string),
            BlobServiceClient.from_connection_string(azurite.connection_string),
            QueueServiceClient.from_connection_string(azurite.connection_string),
            EXPORT_NAMES,
        )

    def status(self, job_id: str) -> dict[str, Any]:
        answer = self.call("GET", f"/api/dynamics/exports/{job_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def records(self, job_id: str) -> dict[str, dict[str, Any]]:
        answer = self.call("GET", f"/api/dynamics/exports/{job_id}/records", params={"limit": "1000"})
        assert answer.status_code == 200, answer.text
        return {r["platformId"]: r for r in answer.json()["records"]}


def wait_for(predicate: Callable[[], T | None], timeout: float = 60.0) -> T:
    """The first truthy answer of ``predicate``, polled until ``timeout`` (then the test fails)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the state")


def live_dynamics(
    azurite: Azurite,
    entra: EntraEmulator,
    directory: Path,
    *,
    settings: Mapping[str, str] | None = None,
    queues: Mapping[str, Any] | None = None,
) -> Iterator[LiveDynamics]:
    """A devhost running function_app (its queue workers with ``queues`` settings), a Dataverse emulator
    trusting the Entra stand-in, a workspace connected to it. A generator: use it under a fixture."""
    keyvault = KeyVaultEmulator(authority=entra.authority)
    keyvault.start()
    dataverse = DataverseEmulator(accepted_tokens=(STATIC_TOKEN,))  # the test's own reads (rows)
    dataverse.add_signing_key(entra.public_jwk())
    dataverse.start()
    user = entra.current_user
    dataverse.add_user(object_id=user.object_id, domainname=user.email)
    dev_secret = secrets.token_urlsafe(32)
    values = {
        **identity_settings(entra, keyvault, azurite, keyvault.issue_token()),
        "TOKEN_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "REQUESTS_CA_BUNDLE": str(ensure_ca().bundle_path),
        "PLATFORM_JWT_ALLOW_DEV_HS256": "true",
        "PLATFORM_JWT_DEV_HS256_SECRET": dev_secret,
        "PLATFORM_JWT_AUDIENCE": AUDIENCE,
        "PLATFORM_JWT_ISSUER": ISSUER,
        "DYNAMICS_BUDGET_ENABLED": "false",
        "TOKEN_REFRESH_SCHEDULE": "0 0 0 1 1 *",
        **(settings or {}),
    }
    overrides = {
        "extensions": {
            "queues": {
                "batchSize": 4,
                "newBatchThreshold": 2,
                "maxDequeueCount": 3,
                "visibilityTimeout": "00:00:00",
                "maxPollingInterval": "00:00:00.200",
                "messageEncoding": "base64",
                **(queues or {}),
            }
        }
    }
    host = DevHostProcess(
        "function_app", values, host_overrides=overrides, log_path=directory / "devhost.log"
    )
    host.start(timeout=60)
    http = requests.Session()
    http.trust_env = False
    try:
        live = LiveDynamics(
            host.base_url,
            dev_secret,
            dataverse,
            http,
            f"ws-live-{secrets.token_hex(4)}",
            f"admin-{secrets.token_hex(4)}",
        )
        live.connect()
        yield live
    finally:
        assert host.stop() == 0
        dataverse.stop()
        keyvault.stop()
