"""Faults during an export: every record ends created / updated / failed-with-reason, none lost or doubled.

Dynamics side: the emulator's seeded fault injection (500s, 503s, dropped connections), a throttling storm
(service protection limits scaled down to a handful of requests), Storage/host side: a worker that dies in
the middle of a chunk (after Dynamics accepted the creates, before anything was reported) and a worker
process killed outright while it holds chunks. What is checked each time, against Dynamics itself:
the job's counts add up to the records submitted, Dynamics gained exactly the contacts reported created
(each under its deterministic id), and no company was created twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from bench.export import (
    CONFIG,
    TOKEN,
    Scenario,
    WorkerOptions,
    WorkerProcesses,
    build_scenario,
    export_store,
)
from bench.export_truth import WriteCountingClient, check_outcomes
from core.adapters.dataverse.client import DataverseClient
from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.export_request import ExportRequest
from core.domain.jobs import ChunkState, ExportEntity, deterministic_dynamics_id
from core.domain.retry import RetryPolicy
from core.entrypoints.job_queries import RecordsPage
from core.services.exports.service import EXPORT_QUEUE, ExportService
from core.services.exports.worker import ExportWorker
from core.services.jobs.messages import ChunkMessage
from emulators.dataverse import DataverseEmulator, LimitConfig, SimulationConfig
from emulators.tls import trusting_session
from tests.support.azurite import Azurite
from tests.support.job_harness import deliver

FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    # 80 contacts (30% already in Dynamics, in variant forms) of 20 companies: 8 chunks of 10.
    return build_scenario(80, 20, 0.3, 0.5, seed=11)


@dataclass
class Result:
    workspace_id: str
    status: dict[str, Any]
    records: dict[str, dict[str, Any]]
    new_contacts: list[dict[str, Any]]
    new_accounts: list[dict[str, Any]]
    stats: dict[str, Any]


class Export:
    """One export of ``scenario`` into a fresh emulator, through the real service, store and worker."""

    def __init__(self, azurite: Azurite, scenario: Scenario, emulator: DataverseEmulator) -> None:
        self.azurite = azurite
        self.scenario = scenario
        self.emulator = emulator
        self.store = export_store(azurite.connection_string)
        self.store.ensure_ready()
        self.caller = Caller(f"ws-faults-{uuid.uuid4().hex[:8]}", "platform-user-1", Role.ADMIN)
        before = emulator.snapshot()
        self.seeded = {t: {str(r[f"{t}id"]) for r in before[t]} for t in ("contact", "account")}
        config = DynamicsConfig.model_validate(CONFIG)
        self.service = ExportService(self.store, lambda _caller: config, chunk_size=10)
        self.job_id = ""
        self.redelivered = 0  # messages handled again after an attempt that did not finish

    def submit(self) -> str:
        job = self.service.submit(
            self.caller,
            ExportRequest.model_validate({"entity": "contacts", "records": self.scenario.records}),
        )
        self.job_id = job.job_id
        return job.job_id

    def client(self, retry: RetryPolicy = FAST_RETRY) -> tuple[DataverseClient, DynamicsConnection]:
        client = DataverseClient(
            self.emulator.url, lambda _force: TOKEN, session=trusting_session(), retry=retry
        )
        connection = DynamicsConnection(
            self.caller.workspace_id, self.emulator.url, "integration@contoso.com", client.who_am_i().user_id
        )
        return client, connection

    def drain(self, worker: ExportWorker) -> None:
        """The host's loop in-process: a failed chunk's message comes back, until every chunk is finished."""

        def handle(chunk: ChunkMessage, dequeue_count: int) -> ChunkState:
            self.redelivered += dequeue_count > 1
            return worker.handle(chunk, dequeue_count)

        queues = QueueServiceClient.from_connection_string(self.azurite.connection_string)
        deliver(queues, EXPORT_QUEUE, self.caller.workspace_id, handle, failed_come_back=True)
        assert self.finished(), self.service.status(self.caller.workspace_id, self.job_id)

    def finished(self) -> bool:
        status = self.service.status(self.caller.workspace_id, self.job_id)
        assert status is not None
        return bool(status.progress.chunks_done == status.progress.chunks)

    def result(self) -> Result:
        status = self.service.status(self.caller.workspace_id, self.job_id)
        page = self.service.records(self.caller.workspace_id, self.job_id, None, None, 1000)
        assert status is not None and page is not None
        RecordsPage.model_validate(
            {"records": page.records, "nextCursor": page.next_cursor}
        )  # the documented shape, whatever the faults did
        after = self.emulator.snapshot()
        return Result(
            self.caller.workspace_id,
            status,
            {r["platformId"]: r for r in page.records},
            [r for r in after["contact"] if str(r["contactid"]) not in self.seeded["contact"]],
            [r for r in after["account"] if str(r["accountid"]) not in self.seeded["account"]],
            self.emulator.stats(),
        )


@pytest.fixture()
def export_into(azurite: Azurite, scenario: Scenario) -> Iterator[Callable[..., Export]]:
    started: list[DataverseEmulator] = []

    def make(**emulator_options: Any) -> Export:
        emulator = DataverseEmulator(seed=scenario.seed, accepted_tokens=(TOKEN,), **emulator_options)
        emulator.start()
        started.append(emulator)
        return Export(azurite, scenario, emulator)

    yield make
    for emulator in started:
        emulator.stop()


def assert_every_record_accounted_for(result: Result, scenario: Scenario) -> None:
    counts = result.status.counts
    assert sum(counts.values()) == len(scenario.records), counts
    assert set(result.records) == {r["id"] for r in scenario.records}
    for platform_id, record in result.records.items():
        assert record["action"] in ("created", "updated", "failed"), (platform_id, record)
        if record["action"] == "failed":
            assert record["errors"] and all(e["message"] for e in record["errors"]), record
    # Dynamics gained exactly the contacts reported created, each under its deterministic id: none doubled.
    created = {p for p, r in result.records.items() if r["action"] == "created"}
    assert len(result.new_contacts) == len(created) == counts["created"]
    assert {str(r["contactid"]) for r in result.new_contacts} == {
        deterministic_dynamics_id(result.workspace_id, ExportEntity.CONTACTS, p) for p in created
    }
    websites = [str(r.get("websiteurl")) for r in result.new_accounts]
    assert len(websites) == len(set(websites))


def test_server_errors_and_dropped_connections(
    export_into: Callable[..., Export], scenario: Scenario
) -> None:
    export = export_into(
        simulation=SimulationConfig(error_rate_500=0.07, error_rate_503=0.07, drop_rate=0.07, seed=20261127)
    )
    _, connection = export.client()
    client = WriteCountingClient(
        export.emulator.url, lambda _force: TOKEN, session=trusting_session(), retry=FAST_RETRY
    )
    worker = ExportWorker(export.store, lambda _ws: (client, connection), max_attempts=5)
    export.submit()
    export.drain(worker)
    result = export.result()
    faults = result.stats["simulation"]
    assert faults["fault_500"] and faults["fault_503"] and faults["fault_drop"], faults
    assert_every_record_accounted_for(result, scenario)
    # Retries absorbed the faults: nothing failed for good, and each record is reported as what
    # happened to it: every new person created (none "updated"), every existing one matched.
    assert result.status.state == "succeeded", result.status
    truth = check_outcomes(export.service, export.caller.workspace_id, export.job_id, scenario.seed)
    assert truth["outcomes"] == {
        "existing_matched": scenario.existing_contacts,
        "new_created": scenario.expected_new_contacts,
    }, truth["outcome_examples"]
    assert [c for c, n in client.contact_writes.items() if n > 1] == []  # nobody written twice


def test_throttling_storm(export_into: Callable[..., Export], scenario: Scenario) -> None:
    # A user allowed 12 requests per 2 seconds: most bursts are answered 429 with Retry-After.
    export = export_into(limits=LimitConfig(window_s=2, max_requests=12))
    client, connection = export.client(RetryPolicy(base_delay=0.01, max_delay=0.05, max_throttle_retries=20))
    worker = ExportWorker(export.store, lambda _ws: (client, connection), max_attempts=5)
    export.submit()
    export.drain(worker)
    result = export.result()
    assert result.stats["throttled"] > 0
    assert_every_record_accounted_for(result, scenario)
    assert result.status.state == "succeeded", result.status


class _Crash(Exception):
    """The worker instance dies here (as far as the chunk is concerned)."""


class _CrashAfterCreates:
    """The real client, except that the worker "dies" once right after Dynamics accepted a CreateMultiple
    of contacts: the records exist, nothing about them has been reported, the message is redelivered."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client
        self.crashed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_multiple(self, table: str, records: Any, **options: Any) -> Any:
        result = self._client.create_multiple(table, records, **options)
        if table == "contact" and not self.crashed:
            self.crashed += 1
            raise _Crash
        return result


def test_crash_mid_chunk_after_the_creates(export_into: Callable[..., Export], scenario: Scenario) -> None:
    export = export_into()
    real, connection = export.client()
    client = _CrashAfterCreates(real)
    worker = ExportWorker(export.store, lambda _ws: (client, connection), max_attempts=5)  # type: ignore[arg-type,return-value]
    export.submit()
    export.drain(worker)
    result = export.result()
    assert client.crashed == 1
    assert_every_record_accounted_for(result, scenario)
    assert result.status.state == "succeeded"
    assert result.status.counts["created"] >= scenario.expected_new_contacts  # not turned into "updated"
    assert export.redelivered == 1


def test_worker_process_killed_while_holding_chunks(
    export_into: Callable[..., Export], scenario: Scenario
) -> None:
    # Slow bulk writes so that chunks are in flight when the process dies; messages reappear after 3 s.
    export = export_into(simulation=SimulationConfig(latency_ms=20, per_record_ms=30))
    options = WorkerOptions(export.azurite.connection_string, export.emulator.url, threads=2, visibility_s=3)
    workers = WorkerProcesses(options, 2)
    try:
        export.submit()
        deadline = time.monotonic() + 60
        # Three chunks running at once with two threads per process: both processes hold one, so the
        # process killed below is holding chunks (not still starting up while the other does the work).
        while (
            sum(
                c.state.value == "running"
                for c in export.store.list_chunks(export.caller.workspace_id, export.job_id)
            )
            < 3
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        while not export.emulator.stats()["requests_by_kind"].get("bulk"):  # inside a chunk: writes under way
            assert time.monotonic() < deadline
            time.sleep(0.05)
        workers.kill(0)
        deadline = time.monotonic() + 120
        while not export.finished():
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        reports = workers.stop()
    result = export.result()
    assert_every_record_accounted_for(result, scenario)
    assert result.status.state == "succeeded", result.status
    assert len(reports) == 1 and reports[0]["redelivered"] >= 1, reports  # the survivor took over


class _UpdatesFail:
    """The real client, except that every UpdateMultiple fails as if Dynamics went away: the contacts of
    a chunk are created, then the chunk stops before its report."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_multiple(self, table: str, records: Any, **options: Any) -> Any:
        raise ConnectionError("Dynamics went away")


def test_a_chunk_failing_for_good_after_its_creates_reports_them_created(
    export_into: Callable[..., Export], scenario: Scenario
) -> None:
    export = export_into()
    real, connection = export.client()
    client = _UpdatesFail(real)
    worker = ExportWorker(export.store, lambda _ws: (client, connection), max_attempts=1)  # type: ignore[arg-type,return-value]
    export.submit()
    export.drain(worker)
    result = export.result()
    assert result.status.state != "succeeded", result.status
    # What Dynamics created is reported created (not "failed"), the rest failed with the reason.
    assert_every_record_accounted_for(result, scenario)
    assert result.status.counts["created"] >= scenario.expected_new_contacts
    failed = [r for r in result.records.values() if r["action"] == "failed"]
    assert failed and all("gave up after 1 attempts" in r["errors"][0]["message"] for r in failed)
