"""Timer triggers: six-field NCRONTAB (``{second} {minute} {hour} {day} {month} {day-of-week}``, UTC) or a
TimeSpan interval, ``%SETTING%`` indirection, ``run_on_startup`` and ``past_due``.

One thread per timer function, so a function never runs twice at once; with a storage connection, only
the devhost holding the function's blob-lease lock fires it (devhost.singleton), as on Azure. When an
invocation overruns its next occurrence(s), the latest missed occurrence fires as soon as it returns,
with ``past_due=True``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from typing import Any

import azure.functions.timer as func_timer
from croniter import croniter

from devhost.clock import SYSTEM_CLOCK, Clock
from devhost.config import HostConfigError, is_timespan, parse_timespan, resolve_setting_refs
from devhost.index import TimerFunction
from devhost.invoke import Invoker
from devhost.singleton import TimerLock

log = logging.getLogger("devhost.timers")

LATE_TOLERANCE = dt.timedelta(seconds=1)


class Schedule:
    """Next occurrence strictly after a moment, for an NCRONTAB expression or a TimeSpan interval."""

    def __init__(self, expression: str, start: dt.datetime) -> None:
        self.expression = expression.strip()
        self._interval: dt.timedelta | None = None
        if is_timespan(self.expression):
            seconds = parse_timespan(self.expression)
            if seconds <= 0:
                raise HostConfigError(f"timer interval must be positive: {expression!r}")
            self._interval = dt.timedelta(seconds=seconds)
            self._start = start
            return
        fields = self.expression.split()
        if len(fields) not in (5, 6):
            raise HostConfigError(f"timer schedule must be six-field NCRONTAB or a TimeSpan: {expression!r}")
        try:
            # second_at_beginning: NCRONTAB's first field is seconds (croniter expects it last otherwise).
            croniter(self.expression, start, second_at_beginning=len(fields) == 6)
        except (ValueError, KeyError) as exc:
            raise HostConfigError(f"invalid NCRONTAB schedule {expression!r}: {exc}") from exc

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        if self._interval is not None:
            elapsed = max(0.0, (moment - self._start).total_seconds())
            steps = int(elapsed // self._interval.total_seconds()) + 1
            return self._start + steps * self._interval
        six = len(self.expression.split()) == 6
        result = croniter(self.expression, moment, second_at_beginning=six).get_next(dt.datetime)
        assert isinstance(result, dt.datetime)
        return result


class TimerRunner:
    def __init__(
        self,
        function: TimerFunction,
        settings: Mapping[str, str],
        invoker: Invoker,
        clock: Clock = SYSTEM_CLOCK,
        lock: TimerLock | None = None,
    ) -> None:
        self.function = function
        self.lock = lock
        self.invoker = invoker
        self.clock = clock
        self.schedule = Schedule(resolve_setting_refs(function.schedule, settings), clock.now())
        self._stop = threading.Event()
        self._last: dt.datetime | None = None
        self._thread = threading.Thread(target=self._run, name=f"devhost-timer-{function.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No further invocations; wait for a running one to finish."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()
        if self.lock is not None:
            self.lock.stop()

    def _fire(self, past_due: bool, next_due: dt.datetime) -> None:
        now = self.clock.now()
        status: dict[str, Any] = {
            "Last": (self._last or now).isoformat(),
            "Next": next_due.isoformat(),
            "LastUpdated": now.isoformat(),
        }
        request = func_timer.TimerRequest(
            past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True}
        )
        self._last = now
        policy = self.function.retry
        attempt = 0
        while True:
            try:
                self.invoker.invoke(self.function, request)
                return
            except Exception:
                log.exception("timer function %s failed", self.function.name)
            attempt += 1
            if policy is None or (policy.max_retries >= 0 and attempt > policy.max_retries):
                return
            delay = policy.delay_before(attempt)
            log.info("timer function %s: retry %d in %.1f s (@app.retry)", self.function.name, attempt, delay)
            if self.clock.wait(self._stop, delay):
                return

    def _run(self) -> None:
        lock = self.lock
        if lock is not None:
            lock.start()
        listening = False  # the timer listener runs only on the host holding the lock
        base = self.clock.now()
        overran = False
        while not self._stop.is_set():
            if not listening:
                if lock is not None and not lock.held():
                    if self.clock.wait(self._stop, 1.0):
                        return
                    continue
                listening = True
                if self.function.run_on_startup:
                    self._fire(past_due=False, next_due=self.schedule.next_after(self.clock.now()))
                base = self.clock.now()
                continue
            due = self.schedule.next_after(base)
            wait = (due - self.clock.now()).total_seconds()
            if wait > 0 and self.clock.wait(self._stop, wait):
                return
            if lock is not None and not lock.held():
                log.info("timer %s: lock lost; another host fires it", self.function.name)
                listening = False
                continue
            past_due = overran or self.clock.now() - due > LATE_TOLERANCE
            self._fire(past_due=past_due, next_due=self.schedule.next_after(due))
            # Occurrences missed while it ran collapse into one immediate, past-due invocation.
            now = self.clock.now()
            missed: dt.datetime | None = None
            candidate = self.schedule.next_after(due)
            for _ in range(100_000):
                if candidate > now:
                    break
                missed = candidate
                candidate = self.schedule.next_after(candidate)
            overran = missed is not None
            base = missed - dt.timedelta(microseconds=1) if missed is not None else due
