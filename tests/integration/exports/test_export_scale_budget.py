"""The shared Dynamics budget itself, against real Table Storage (Azurite), with a fake clock.

Two ``DynamicsBudget`` objects are two instances (they only share the storage). What an operator would
notice: what one instance spends the other sees and waits for; a 429 one of them got holds the others
back for its Retry-After; instances split the concurrency; and when storage is down, exports go on at a
conservative static share instead of stalling.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

import pytest
from azure.data.tables import TableServiceClient

from core.adapters.dataverse.budget import BudgetLimits, DynamicsBudget
from core.adapters.dataverse.client import RequestEvent
from tests.support.azurite import Azurite, free_port

LIMITS = BudgetLimits(max_requests=100, window_s=60, max_execution_s=1000, max_concurrent=52, slots=4)


@dataclass
class FakeTime:
    now: float = 1_800_000_000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture()
def time_() -> FakeTime:
    return FakeTime()


@pytest.fixture()
def workspace() -> str:
    return f"ws-budget-{uuid.uuid4().hex[:8]}"


def instance(azurite: Azurite, fake: FakeTime, limits: BudgetLimits = LIMITS) -> DynamicsBudget:
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    return DynamicsBudget(tables, limits, clock=fake.clock, sleep=fake.sleep)


def event(status: int = 200, retry_after: float | None = None) -> RequestEvent:
    return RequestEvent(
        "GET", "/api/data/v9.2/contacts", 1, status, 0.05, None, retry_after, False, 0.0, 4, None
    )


def test_what_one_instance_spends_the_other_waits_for(
    azurite: Azurite, time_: FakeTime, workspace: str
) -> None:
    a, b = instance(azurite, time_), instance(azurite, time_)
    observe = a.observer(workspace)
    for _ in range(85):  # 90 is the budget (90% headroom of 100)
        observe(event())
    assert b.usage(workspace).requests == pytest.approx(85, abs=1)
    started = time_.now
    with b.working(workspace, expected_requests=8):
        pass
    # B could not send 8 more until A's requests began to slide out of the 60 s window.
    assert time_.now - started > 5
    assert b.stats(workspace)["waits"] >= 1


def test_the_ledger_costs_one_merge_per_batch_of_requests(
    azurite: Azurite, time_: FakeTime, workspace: str
) -> None:
    limits = BudgetLimits(max_requests=6000)  # the real limits: merges every 50 requests
    a = instance(azurite, time_, limits)
    with a.working(workspace):
        before = a.storage_operations
        observe = a.observer(workspace)
        for _ in range(200):
            observe(event())
        per_request = (a.storage_operations - before) / 200
    assert per_request < 0.2  # ~2 operations (read + conditional replace) per 50, plus a window read
    assert a.usage(workspace).requests == pytest.approx(200, abs=1)


def test_a_429_seen_by_one_instance_holds_the_others_back(
    azurite: Azurite, time_: FakeTime, workspace: str
) -> None:
    a, b = instance(azurite, time_), instance(azurite, time_)
    a.record(workspace, 1, 50.0, throttled_for=7)  # what A's observer does on a 429 (before pacing A)
    started = time_.now
    with b.working(workspace):
        pass
    assert 7 <= time_.now - started < 9


def test_instances_split_the_concurrency(azurite: Azurite, time_: FakeTime, workspace: str) -> None:
    limits = BudgetLimits(slots=2, max_wait_s=5)
    a, b, c = (instance(azurite, time_, limits) for _ in range(3))
    with a.working(workspace):
        assert a.share(workspace) == 46  # alone: 90% of 52
    with b.working(workspace):
        assert b.share(workspace) == 23  # two live slots
    started = time_.now
    with c.working(workspace):  # no third slot: waits, then goes ahead gently
        assert c.share(workspace) == 1
    assert time_.now - started >= 5
    time_.now += limits.lease_s + 1  # A and B stop working: their slots expire
    with c.working(workspace):
        assert c.share(workspace) == 46


def test_storage_down_degrades_to_a_static_share(time_: FakeTime, workspace: str) -> None:
    port = free_port()  # nothing listens there
    tables = TableServiceClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
        retry_total=0,
        connection_timeout=1,
    )
    budget = DynamicsBudget(tables, LIMITS, clock=time_.clock, sleep=time_.sleep)
    observe = budget.observer(workspace)
    with budget.working(workspace):
        assert budget.share(workspace) == 11  # 46 / 4 slots
        for _ in range(20):
            observe(event())  # never raises, never blocks while under 90 / 4
    assert budget.storage_failures >= 1
    started = time_.now
    with budget.working(workspace, expected_requests=8):  # 20 + 8 > 22.5: wait for the window
        pass
    assert time_.now - started > 5


def test_calls_outside_a_chunk_are_counted_but_never_held(
    azurite: Azurite, time_: FakeTime, workspace: str
) -> None:
    """An admin listing fields while an export has used the budget up is not made to wait by us."""
    a = instance(azurite, time_)
    observe = a.observer(workspace)
    for _ in range(95):  # beyond the 90 planned
        observe(event())
    assert time_.slept == []
    assert a.usage(workspace).requests == pytest.approx(95, abs=1)
    with a.working(workspace):  # a chunk, however, waits for the window
        pass
    assert sum(time_.slept) > 5


def test_a_request_in_flight_counts_before_it_answers(
    azurite: Azurite, time_: FakeTime, workspace: str
) -> None:
    """The service counts a request when it arrives; the ledger learns of it from its answer. A chunk
    thread cleared to send therefore holds its place meanwhile, or two threads of one instance (and so
    every instance) could overshoot the window by the requests they have in flight."""
    a = instance(azurite, time_)
    observe = a.observer(workspace)
    for _ in range(44):  # counted, outside any chunk: this instance's part of the room is (90 - 44) / 4
        observe(event())
    with a.working(workspace, expected_requests=1):  # this thread is cleared for one request: in flight
        other: list[float] = []

        def second_chunk() -> None:
            started = time_.now
            with a.working(workspace, expected_requests=11):  # 1 in flight + 11 > 11.5
                pass
            other.append(time_.now - started)

        thread = threading.Thread(target=second_chunk)
        thread.start()
        thread.join(30)
    assert other and other[0] > 5  # it waited for the window, not only for storage
    # Once the cleared request has answered, the same ask goes through at once.
    time_.now += 120
    for _ in range(44):
        observe(event())
    started = time_.now
    with a.working(workspace, expected_requests=11):
        pass
    assert time_.now - started < 1


def test_a_429_holds_every_request_of_the_other_instances_until_its_retry_after(
    azurite: Azurite, time_: FakeTime, workspace: str
) -> None:
    """Not only chunk runs: the gate runs before every request of the workspace's client, interactive
    calls and retries included, and reads the pause another instance wrote the moment it got its 429."""
    a, b = instance(azurite, time_), instance(azurite, time_)
    b.gate(workspace)()  # nothing paused: goes at once
    assert time_.slept == []
    a.observer(workspace)(event(429, retry_after=7))
    started = time_.now
    b.gate(workspace)()
    assert time_.now - started == pytest.approx(7, abs=0.1)
    started = time_.now
    b.gate(workspace)()  # elapsed: no more waiting
    assert time_.now == started
