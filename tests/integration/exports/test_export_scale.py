"""Scale-out: several worker processes export one job for one workspace (= one Dynamics user) at once.

Dataverse's service protection limits are per user, so four instances that each discovered the limit by
429s would be throttled about four times as often as one. With the shared budget (storage slots and a
request ledger, core.adapters.dataverse.budget) they divide it up front. The emulator's limits are scaled
down (a few dozen requests per few seconds) so that the budget is what decides, in seconds of test time.

Workers are plain processes running the queue loop of ``bench.export`` (receive, ``ExportWorker.handle``,
delete) against the test Azurite, with the real ExportService / ExportWorker / DataverseClient.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
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
from core.adapters.dataverse.budget import BudgetLimits
from core.adapters.dataverse.client import DataverseClient
from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.export_request import ExportRequest
from core.domain.job_status import JobStatus
from core.domain.jobs import ExportEntity, deterministic_dynamics_id
from core.services.exports.service import EXPORT_QUEUE, ExportService
from core.services.exports.worker import ExportWorker
from core.services.jobs.messages import ChunkMessage
from emulators.dataverse import DataverseEmulator, LimitConfig
from emulators.tls import trusting_session
from tests.support.azurite import Azurite

WINDOW_S = 3.0
MAX_REQUESTS = 36
LIMITS = BudgetLimits(max_requests=MAX_REQUESTS, window_s=WINDOW_S, max_execution_s=3600, slots=4)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    # 240 contacts (30% already in Dynamics in variant forms) of 40 companies, 12 chunks of 20.
    return build_scenario(240, 40, 0.3, 0.5, seed=7)


@dataclass
class Run:
    workspace_id: str
    status: JobStatus
    stats: dict[str, Any]
    reports: list[dict[str, Any]]
    new_contacts: list[dict[str, Any]]  # rows the export added to Dynamics
    new_accounts: list[dict[str, Any]]


def export_with(
    azurite: Azurite,
    scenario: Scenario,
    workers: int,
    *,
    budget: bool = True,
    threads: int = 2,
    emulator_limits: LimitConfig | None = None,
    budget_limits: BudgetLimits = LIMITS,
) -> Run:
    emulator = DataverseEmulator(
        seed=scenario.seed,
        accepted_tokens=(TOKEN,),
        limits=emulator_limits or LimitConfig(window_s=WINDOW_S, max_requests=MAX_REQUESTS),
    )
    emulator.start()
    try:
        before = emulator.snapshot()
        seeded = {t: {str(r[f"{t}id"]) for r in before[t]} for t in ("contact", "account")}
        store = export_store(azurite.connection_string)
        store.ensure_ready()
        caller = Caller(f"ws-scale-{uuid.uuid4().hex[:8]}", "platform-user-1", Role.ADMIN)
        processes = WorkerProcesses(
            WorkerOptions(
                azurite.connection_string, emulator.url, threads=threads, budget=budget, limits=budget_limits
            ),
            workers,
        )
        try:
            # The workers' start-up WhoAmI calls are not in their budget's ledger: age them out of the
            # emulator's window (its clock), so the budget and Dynamics count the same requests.
            emulator.clock.advance(WINDOW_S)
            config = DynamicsConfig.model_validate(CONFIG)
            service = ExportService(store, lambda _caller: config, chunk_size=20)
            job = service.submit(
                caller, ExportRequest.model_validate({"entity": "contacts", "records": scenario.records})
            )
            status = _wait(service, caller.workspace_id, job.job_id)
        finally:
            reports = processes.stop()
        stats = emulator.stats()
        after = emulator.snapshot()
        return Run(
            caller.workspace_id,
            status,
            stats,
            reports,
            [r for r in after["contact"] if str(r["contactid"]) not in seeded["contact"]],
            [r for r in after["account"] if str(r["accountid"]) not in seeded["account"]],
        )
    finally:
        emulator.stop()


def _wait(service: ExportService, workspace_id: str, job_id: str, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = service.status(workspace_id, job_id)
        assert status is not None
        if status.progress.chunks_done == status.progress.chunks:
            return status
        time.sleep(0.2)
    raise AssertionError(f"export did not finish: {service.status(workspace_id, job_id)}")


def assert_exactly_once(run: Run, scenario: Scenario) -> None:
    """Every record landed once: the job's counts add up to the records submitted, Dynamics gained exactly
    the records reported created, each under its deterministic id, and no company twice."""
    counts = run.status.counts
    assert run.status.state == "succeeded", run.status
    assert counts["created"] + counts["updated"] + counts["unchanged"] == len(scenario.records)
    assert len(run.new_contacts) == counts["created"]
    expected_ids = {
        deterministic_dynamics_id(run.workspace_id, ExportEntity.CONTACTS, r["id"]) for r in scenario.records
    }
    assert {str(r["contactid"]) for r in run.new_contacts} <= expected_ids
    # Every new person is among them (existing ones were matched, bar what matching cannot find).
    assert counts["created"] >= scenario.expected_new_contacts
    websites = [str(r["websiteurl"]) for r in run.new_accounts]
    assert len(websites) == len(set(websites)) >= scenario.expected_new_accounts


@pytest.fixture(scope="module")
def one_worker(azurite: Azurite, scenario: Scenario) -> Iterator[Run]:
    yield export_with(azurite, scenario, 1)


def test_one_worker_with_the_budget_lands_every_record_once(one_worker: Run, scenario: Scenario) -> None:
    assert_exactly_once(one_worker, scenario)


def test_four_worker_processes_share_the_budget(
    azurite: Azurite, scenario: Scenario, one_worker: Run
) -> None:
    four = export_with(azurite, scenario, 4)
    assert_exactly_once(four, scenario)
    assert four.status.counts == one_worker.status.counts
    chunks_by_worker = [r["chunks"] for r in four.reports]
    assert len(four.reports) == 4 and sum(chunks_by_worker) >= 12
    assert sum(1 for c in chunks_by_worker if c) >= 2, chunks_by_worker  # the work really was shared
    # Four instances on one user's budget are throttled no more than one instance alone.
    assert four.stats["throttled"] <= one_worker.stats["throttled"], (
        four.stats["throttled"],
        one_worker.stats["throttled"],
    )


def test_without_the_budget_four_workers_find_the_limit_by_429s(
    azurite: Azurite, scenario: Scenario, one_worker: Run
) -> None:
    """The control: the same export without coordination is throttled (so the test above can fail),
    and still lands every record once thanks to Retry-After handling and idempotent writes."""
    uncoordinated = export_with(azurite, scenario, 4, budget=False)
    assert uncoordinated.stats["throttled"] > one_worker.stats["throttled"]
    assert_exactly_once(uncoordinated, scenario)


class _RacingChunk:
    """The real client, except that another chunk creates some of the same companies first (between
    this chunk's lookups and its CreateMultiple), as concurrent chunks sharing companies do."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client
        self.raced = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_multiple(self, table: str, records: Any, **options: Any) -> Any:
        if table == "account" and not self.raced:
            self.raced = len(records[:5])
            self._client.create_multiple(table, records[:5], **options)
        return self._client.create_multiple(table, records, **options)


def test_chunks_racing_to_create_the_same_companies_cost_one_query_not_a_bisection(
    azurite: Azurite, scenario: Scenario
) -> None:
    emulator = DataverseEmulator(seed=scenario.seed, accepted_tokens=(TOKEN,))
    emulator.start()
    try:
        before = emulator.snapshot()
        seeded_accounts = {str(r["accountid"]) for r in before["account"]}
        store = export_store(azurite.connection_string)
        store.ensure_ready()
        caller = Caller(f"ws-race-{uuid.uuid4().hex[:8]}", "platform-user-1", Role.ADMIN)
        real = DataverseClient(emulator.url, lambda _force: TOKEN, session=trusting_session())
        connection = DynamicsConnection(
            caller.workspace_id, emulator.url, "integration@contoso.com", real.who_am_i().user_id
        )
        client = _RacingChunk(real)
        worker = ExportWorker(store, lambda _ws: (client, connection))  # type: ignore[arg-type,return-value]
        config = DynamicsConfig.model_validate(CONFIG)
        service = ExportService(store, lambda _caller: config, chunk_size=len(scenario.records))
        job = service.submit(
            caller, ExportRequest.model_validate({"entity": "contacts", "records": scenario.records})
        )
        queue = QueueServiceClient.from_connection_string(azurite.connection_string).get_queue_client(
            EXPORT_QUEUE
        )
        emulator.control("POST", "/_emulator/stats", b'{"reset": true}')
        for message in queue.receive_messages(max_messages=8):
            worker.handle(ChunkMessage.parse(base64.b64decode(message.content)), message.dequeue_count)
            queue.delete_message(message)
        stats = emulator.stats()
        status = service.status(caller.workspace_id, job.job_id)
        after = emulator.snapshot()
    finally:
        emulator.stop()
    assert client.raced == 5 and status is not None and status.state == "succeeded", status
    new_accounts = [r for r in after["account"] if str(r["accountid"]) not in seeded_accounts]
    websites = [str(r["websiteurl"]) for r in new_accounts]
    assert len(websites) == len(set(websites)) >= scenario.expected_new_accounts
    # Accounts: the racing create, the refused one, one update of the 5, one create of the rest;
    # contacts: one create, one update. Bisecting would have cost ~2 x log2(n) + 5 calls more.
    assert stats["requests_by_kind"].get("bulk", 0) <= 7, stats["requests_by_kind"]
    assert stats["requests_by_kind"].get("write", 0) == 0, stats["requests_by_kind"]
