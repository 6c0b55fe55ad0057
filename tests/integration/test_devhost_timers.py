"""Timer triggers through the devhost: NCRONTAB with seconds first, %SETTING% schedules, run_on_startup,
past_due when an invocation overruns its next occurrence."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devhost.config import HostConfigError
from devhost.timers import Schedule
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


def test_timer_runs_on_startup_then_every_second(devhost_factory: DevHostFactory) -> None:
    started = time.time()
    host = devhost_factory(settings={"SAMPLE_TIMER_SCHEDULE": "*/1 * * * * *"})
    runs = wait_for_runs(host, 4)
    host.stop()
    runs = host.records("timer")
    assert runs[0]["past_due"] is False
    assert runs[0]["at"] - started < 5.0  # run_on_startup: at once, not at the first occurrence
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(runs[1:])]
    assert 0.8 < statistics.median(gaps) < 1.2, gaps
    assert all(gap > 0.5 for gap in gaps), gaps


def test_overrunning_timer_never_overlaps_and_catches_up_past_due(devhost_factory: DevHostFactory) -> None:
    host = devhost_factory(settings={"SAMPLE_TIMER_SCHEDULE": "*/1 * * * * *", "SAMPLE_TIMER_SLEEP": "1.2"})
    wait_for_runs(host, 3)
    host.stop()
    runs = host.records("timer")
    starts = [r["at"] for r in runs]
    assert all(b - a >= 1.15 for a, b in itertools.pairwise(starts)), "two runs overlapped"
    assert any(r["past_due"] for r in runs[1:]), "an overrun occurrence should be reported past due"


def test_a_failing_timer_is_retried_per_its_retry_policy(devhost_factory: DevHostFactory) -> None:
    host = devhost_factory(settings={"SAMPLE_RETRY_SCHEDULE": "*/4 * * * * *"})
    deadline = time.monotonic() + 12
    while len(host.records("retry")) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # a successful attempt is not retried: nothing more until the next occurrence (4 s)
    runs = host.records("retry")
    host.stop()
    # fixed_delay 0.5 s, max_retry_count 2: attempts 1 and 2 fail, the third succeeds.
    assert [r["attempt"] for r in runs] == [1, 2, 3]
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(runs)]
    assert all(0.45 <= gap < 2.0 for gap in gaps), f"retries came {gaps} s apart; the schedule is every 4 s"


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
