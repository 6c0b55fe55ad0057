"""Timer triggers through the devhost: NCRONTAB with seconds first, %SETTING% schedules, run_on_startup,
past_due when an invocation overruns its next occurrence."""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest

from devhost.config import HostConfigError
from devhost.timers import Schedule
from tests.support.devhost import DevHostFactory, devhost_factory_fixture  # noqa: F401 - fixtures

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


def test_timer_runs_on_startup_then_every_second(devhost_factory: DevHostFactory) -> None:
    started = time.time()
    host = devhost_factory(settings={"SAMPLE_TIMER_SCHEDULE": "*/1 * * * * *"})
    time.sleep(2.3)
    runs = host.records("timer")
    host.stop()
    assert runs, "the timer never fired"
    assert runs[0]["past_due"] is False
    assert runs[0]["at"] - started < 3.0  # run_on_startup: at once, not at the first occurrence
    assert 3 <= len(runs) <= 4
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(runs[1:])]
    assert all(0.7 < gap < 1.3 for gap in gaps), gaps


def test_overrunning_timer_never_overlaps_and_catches_up_past_due(devhost_factory: DevHostFactory) -> None:
    host = devhost_factory(settings={"SAMPLE_TIMER_SCHEDULE": "*/1 * * * * *", "SAMPLE_TIMER_SLEEP": "1.2"})
    time.sleep(3.0)
    runs = host.records("timer")
    host.stop()
    assert len(runs) >= 3
    starts = [r["at"] for r in runs]
    assert all(b - a >= 1.15 for a, b in itertools.pairwise(starts)), "two runs overlapped"
    assert any(r["past_due"] for r in runs[1:]), "an overrun occurrence should be reported past due"


def test_timer_schedule_from_a_missing_setting_stops_the_devhost(devhost_factory: DevHostFactory) -> None:
    with pytest.raises(RuntimeError, match="exited with status 2"):
        devhost_factory(settings={"SAMPLE_TIMER_SCHEDULE": ""})
