"""Timer triggers through the devhost: NCRONTAB with seconds first, %SETTING% schedules, run_on_startup,
past_due when an invocation overruns its next occurrence."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func
import pytest

from devhost.config import HostConfigError
from devhost.index import RetryPolicy, TimerFunction
from devhost.invoke import Invoker
from devhost.timers import Schedule, TimerRunner
from tests.support.clock import ManualClock
from tests.support.devhost import (  # noqa: F401 - fixtures
    DevHostFactory,
    RunningDevHost,
    devhost_factory_fixture,
)

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=dt.UTC)


def test_six_field_schedule_reads_seconds_first() -> None:
    # Read with seconds last (croniter's default) this would fire every second.
    schedule = Schedule("0 */15 * * * *", T0)
    first = schedule.next_after(T0)
    assert first == dt.datetime(2026, 1, 1, 0, 15, tzinfo=dt.UTC)
    assert schedule.next_after(first) == dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.UTC)


def test_timespan_schedule_and_bad_schedules() -> None:
    schedule = Schedule("00:05:00", T0)
    assert schedule.next_after(T0 + dt.timedelta(minutes=7)) == T0 + dt.timedelta(minutes=10)
    for bad in ("every minute", "* * *", "61 * * * * *"):
        with pytest.raises(HostConfigError):
            Schedule(bad, T0)


def wait_for_runs(host: RunningDevHost, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = host.records("timer")
        if len(runs) >= count:
            return runs
        time.sleep(0.1)
    raise AssertionError(f"only {len(host.records('timer'))} timer runs after {timeout}s, expected {count}")


# Schedules, overruns and retries run in-process on a manual clock: each step moves time to the next
# moment the timer waits for, then waits until the timer waits again, and the runs are compared at the
# exact times they were due.


class Runs:
    """A timer function that records when (on the clock) it ran, whether past due, and can take time."""

    def __init__(
        self, clock: ManualClock, takes_s: float = 0.0, slow_runs: int = 0, failures: int = 0
    ) -> None:
        self.clock, self.takes_s, self.slow_runs, self.failures = clock, takes_s, slow_runs, failures
        self.seen: list[tuple[float, bool]] = []

    def __call__(self, timer: func.TimerRequest) -> None:
        self.seen.append(((self.clock.now() - T0).total_seconds(), timer.past_due))
        if len(self.seen) <= self.slow_runs:
            self.clock.advance(self.takes_s)
        if len(self.seen) <= self.failures:
            raise RuntimeError("failing on purpose")


def run_timer(
    runs: Runs, schedule: str, steps: int, *, on_startup: bool = True, retry: RetryPolicy | None = None
) -> list[tuple[float, bool]]:
    function = TimerFunction(
        "tick", runs, "timer", False, schedule=schedule, run_on_startup=on_startup, retry=retry
    )
    runner = TimerRunner(function, {}, Invoker(), clock=runs.clock)
    runner.start()
    try:
        for _ in range(steps):
            runs.clock.blocked(1)
            runs.clock.advance_to_next()
        runs.clock.blocked(1)
    finally:
        runner.stop()
    return runs.seen


def test_timer_runs_on_startup_then_on_each_occurrence() -> None:
    clock = ManualClock(T0 + dt.timedelta(seconds=0.5))
    seen = run_timer(Runs(clock), "*/1 * * * * *", steps=3)
    # run_on_startup at once (not at the first occurrence), then at every whole second, none past due
    assert seen == [(0.5, False), (1.0, False), (2.0, False), (3.0, False)]


def test_overrunning_timer_never_overlaps_and_catches_up_past_due() -> None:
    clock = ManualClock(T0)
    seen = run_timer(Runs(clock, takes_s=1.2, slow_runs=3), "*/1 * * * * *", steps=2)
    # The first three runs take 1.2 s each: the next starts when the last returned, the occurrences
    # missed meanwhile collapse into one run at once, past due; then the schedule is kept again.
    assert seen == [(0.0, False), (2.0, False), (3.2, True), (4.4, True), (5.0, False)]


def test_a_failing_timer_is_retried_per_its_retry_policy() -> None:
    clock = ManualClock(T0)
    retry = RetryPolicy("fixed_delay", max_retries=2, delay=0.5)
    seen = run_timer(Runs(clock, failures=2), "*/4 * * * * *", steps=4, on_startup=False, retry=retry)
    # Attempts 1 and 2 fail, each retried 0.5 s later; the third succeeds and the next run is the
    # next occurrence (8 s), not another retry.
    assert seen == [(3.0, False), (3.5, False), (4.0, False), (7.0, False)]


def test_timer_schedule_from_a_missing_setting_stops_the_devhost(devhost_factory: DevHostFactory) -> None:
    with pytest.raises(RuntimeError, match="exited with status 2"):
        devhost_factory(settings={"SAMPLE_TIMER_SCHEDULE": ""})


def test_a_timer_fires_on_one_of_several_hosts_only(devhost_factory: DevHostFactory) -> None:
    settings = {"SAMPLE_TIMER_SCHEDULE": "*/1 * * * * *"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        hosts = list(pool.map(lambda _: devhost_factory(settings=settings), range(2)))
    runs = wait_for_runs(hosts[0], 4)
    assert len({r["pid"] for r in runs}) == 1, "both hosts fired the timer"
    holder = next(h for h in hosts if h.process.process and h.process.process.pid == runs[0]["pid"])
    other = next(h for h in hosts if h is not holder)
    assert holder.stop() == 0  # a clean stop releases the lock: the other host takes over
    before = len(hosts[0].records("timer"))
    taken_over = wait_for_runs(other, before + 2)
    assert {r["pid"] for r in taken_over[before:]} == {other.process.process.pid}  # type: ignore[union-attr]
