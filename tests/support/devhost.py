"""Fixtures that run the devhost (a real subprocess, as `func start` would be) against the test Azurite.

``devhost_factory(app_module=..., settings=..., host_overrides=...)`` starts one devhost process and
returns a ``RunningDevHost``; every process is stopped (SIGTERM, graceful) at the end of the test.
``sample_devhost`` is one devhost serving ``tests.support.sample_app`` with fast queue settings.
A test module uses them by importing the ``*_fixture`` functions
(``from tests.support.devhost import sample_devhost_fixture  # noqa: F401``): pytest registers each under
its short name (``sample_devhost``). ``shared_*`` variants are module-scoped, for tests that only read.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devhost.launcher import DevHostProcess
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
            "SAMPLE_QUEUE": f"q{uuid.uuid4().hex[:12]}",
            "AzureFunctionsWebHost__hostid": self.host_id,
            **(settings or {}),
        }
        with self._lock:
            log_path = self.directory / f"devhost-{self._count}.log"
            self._count += 1
        process = DevHostProcess(
            app_module, values, host_overrides=host_overrides or FAST_QUEUES, log_path=log_path
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
