"""Fixtures that run the devhost (a real subprocess, as `func start` would be) against the test Azurite.

``devhost_factory(app_module=..., settings=..., host_overrides=...)`` starts one devhost process and
returns a ``RunningDevHost``; every process is stopped (SIGTERM, graceful) at the end of the test.
``sample_devhost`` is one devhost serving ``tests.support.sample_app`` with fast queue settings.
``start_function_app(azurite, directory, extra_settings)`` runs the real ``function_app`` the same way and
returns an ``AppClient`` that mints caller tokens and calls it (tests/e2e/conftest.py exposes it as the
module-scoped ``live_app`` fixture).
A test module uses the fixtures by importing the ``*_fixture`` functions
(``from tests.support.devhost import sample_devhost_fixture  # noqa: F401``): pytest registers each under
its short name (``sample_devhost``). ``shared_*`` variants are module-scoped, for tests that only read.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from devhost.config import deep_merge
from devhost.launcher import REPO_ROOT, DevHostProcess
from tests.support.azurite import Azurite

SAMPLE_APP = "tests.support.sample_app"
# Queue settings that keep the retry/poison tests to a few seconds.
FAST_QUEUES: dict[str, Any] = {
    "extensions": {
        "queues": {
            "batchSize": 4,
            "newBatchThreshold": 2,
            "maxDequeueCount": 3,
            "visibilityTimeout": "00:00:00",
            "maxPollingInterval": "00:00:00.200",
            "messageEncoding": "base64",
        }
    }
}
# The sample app is a generic Functions app: its routes live under the host's default "api" prefix (the
# repository's host.json has none, since function_app serves the setup window at "/").
SAMPLE_HOST: dict[str, Any] = {"extensions": {"http": {"routePrefix": "api"}}}
RARE_SCHEDULE = "0 0 0 1 1 *"  # once a year: the timer stays quiet unless a test asks for it


@dataclass
class RunningDevHost:
    base_url: str
    log_path: Path
    record_path: Path
    settings: dict[str, str]
    process: DevHostProcess

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.record_path.exists():
            return []
        rows = [json.loads(line) for line in self.record_path.read_text().splitlines() if line.strip()]
        return [r for r in rows if kind is None or r["kind"] == kind]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        return self.process.stop()


DevHostFactory = Callable[..., RunningDevHost]

JWT_AUDIENCE = "dynamics-integration"
JWT_SERVICE_AUDIENCE = "dynamics-integration-service"
JWT_ISSUER = "https://platform.local"


class AppClient:
    """HTTP access to a running function_app: caller tokens (HS256, the test run's dev secret) and calls."""

    def __init__(self, base_url: str, secret: str, log_path: Path, process: DevHostProcess) -> None:
        self.base_url = base_url
        self.secret = secret
        self.log_path = log_path
        self.process = process
        self.session = requests.Session()
        self.session.trust_env = False

    def token(self, workspace: str, role: str = "admin", user_id: str = "user-e2e", **claims: Any) -> str:
        """A person's token (``role`` admin/member), or with ``role="service"`` the platform service's
        (its own audience, no role claim)."""
        now = int(time.time())
        service = role == "service"
        payload: dict[str, Any] = {
            "sub": user_id,
            "workspace_id": workspace,
            **({} if service else {"role": role}),
            "aud": JWT_SERVICE_AUDIENCE if service else JWT_AUDIENCE,
            "iss": JWT_ISSUER,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        return jwt.encode({**payload, **claims}, self.secret, algorithm="HS256")

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, f"{self.base_url}{path}", headers=headers, timeout=30, **kw)

    def jwt_settings(self) -> dict[str, str]:
        """The settings a client process (e.g. scripts/demo.py) needs to mint tokens this app accepts."""
        return {
            "PLATFORM_JWT_ALLOW_DEV_HS256": "true",
            "PLATFORM_JWT_DEV_HS256_SECRET": self.secret,
            "PLATFORM_JWT_AUDIENCE": JWT_AUDIENCE,
            "PLATFORM_JWT_ISSUER": JWT_ISSUER,
        }


def start_function_app(
    azurite: Azurite, directory: Path, extra_settings: Mapping[str, str] | None = None
) -> AppClient:
    """``python -m devhost`` serving the real function_app on Azurite, with the settings a fresh clone has
    (local.settings.json.example) plus a random dev JWT secret and ``extra_settings`` (emulator URLs...).
    Stop it with ``client.process.stop()`` (returns the exit status; 0 = clean)."""
    secret = secrets.token_urlsafe(32)
    settings = {
        "AzureWebJobsStorage": azurite.connection_string,
        "AzureFunctionsWebHost__hostid": f"e2e-{uuid.uuid4().hex[:12]}",
        "PLATFORM_JWT_ALLOW_DEV_HS256": "true",
        "PLATFORM_JWT_DEV_HS256_SECRET": secret,
        "PLATFORM_JWT_AUDIENCE": JWT_AUDIENCE,
        "PLATFORM_JWT_ISSUER": JWT_ISSUER,
        **(extra_settings or {}),
    }
    log_path = directory / f"function-app-{uuid.uuid4().hex[:6]}.log"
    process = DevHostProcess(
        "function_app", settings, settings_file=REPO_ROOT / "local.settings.json.example", log_path=log_path
    )
    process.start(timeout=60)
    return AppClient(process.base_url, secret, log_path, process)


class DevHostStarter:
    """Starts devhost processes against one Azurite; ``stop_all()`` stops them (gracefully)."""

    def __init__(self, azurite: Azurite, directory: Path) -> None:
        self.azurite = azurite
        self.directory = directory
        self.record_path = directory / "records.jsonl"
        self.started: list[RunningDevHost] = []
        # Timer locks are per host id: the processes of one starter share one (they are one app).
        self.host_id = f"test-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._count = 0

    def __call__(
        self,
        app_module: str = SAMPLE_APP,
        settings: Mapping[str, str] | None = None,
        host_overrides: Mapping[str, Any] | None = None,
    ) -> RunningDevHost:
        values = {
            "AzureWebJobsStorage": self.azurite.connection_string,
            "SAMPLE_RECORD_FILE": str(self.record_path),
            "SAMPLE_TIMER_SCHEDULE": RARE_SCHEDULE,
            "SAMPLE_RETRY_SCHEDULE": RARE_SCHEDULE,
            "SAMPLE_QUEUE": f"q{uuid.uuid4().hex[:12]}",
            "AzureFunctionsWebHost__hostid": self.host_id,
            **(settings or {}),
        }
        with self._lock:
            log_path = self.directory / f"devhost-{self._count}.log"
            self._count += 1
        process = DevHostProcess(
            app_module,
            values,
            host_overrides=deep_merge(SAMPLE_HOST, host_overrides or FAST_QUEUES),
            log_path=log_path,
        )
        running = RunningDevHost(process.base_url, log_path, self.record_path, values, process)
        with self._lock:
            self.started.append(running)
        process.start()
        return running

    def stop_all(self) -> None:
        with ThreadPoolExecutor(max_workers=max(1, len(self.started))) as pool:
            list(pool.map(lambda running: running.stop(), self.started))


@pytest.fixture(name="devhost_factory")
def devhost_factory_fixture(azurite: Azurite, tmp_path: Path) -> Iterator[DevHostFactory]:
    starter = DevHostStarter(azurite, tmp_path)
    yield starter
    starter.stop_all()


@pytest.fixture(scope="module", name="shared_devhost_factory")
def shared_devhost_factory_fixture(
    azurite: Azurite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevHostFactory]:
    """Module-scoped starter, for tests that only read from a devhost and can share one process."""
    starter = DevHostStarter(azurite, tmp_path_factory.mktemp("devhost"))
    yield starter
    starter.stop_all()


@pytest.fixture(name="queue_name")
def queue_name_fixture() -> str:
    return f"q{uuid.uuid4().hex[:12]}"


@pytest.fixture(name="sample_devhost")
def sample_devhost_fixture(devhost_factory: DevHostFactory, queue_name: str) -> RunningDevHost:
    """A devhost of its own for the test (which may stop it or use its queue)."""
    return devhost_factory(settings={"SAMPLE_QUEUE": queue_name})


@pytest.fixture(scope="module", name="shared_sample_devhost")
def shared_sample_devhost_fixture(shared_devhost_factory: DevHostFactory) -> RunningDevHost:
    """One sample-app devhost per test module: for tests that do not stop it or touch its queues."""
    return shared_devhost_factory()
