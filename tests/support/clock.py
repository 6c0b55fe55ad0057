"""A manual clock for the devhost's timers and queue listeners (``devhost.clock.Clock``): time moves only
when the test advances it, and the test waits until the threads under test are blocked on the clock
(i.e. done with what the last step made due) before it looks at what they did."""

from __future__ import annotations

import datetime as dt
import threading

# A waiter re-checks its stop event this often (real seconds): a threading.Event cannot wake a condition.
_STOP_CHECK_S = 0.02


class ManualClock:
    def __init__(self, start: dt.datetime) -> None:
        self._now = start
        self._changed = threading.Condition()
        self._deadlines: dict[int, dt.datetime] = {}  # waiting thread -> when it wakes

    def now(self) -> dt.datetime:
        with self._changed:
            return self._now

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        me = threading.get_ident()
        with self._changed:
            deadline = self._now + dt.timedelta(seconds=max(0.0, seconds))
            self._deadlines[me] = deadline
            self._changed.notify_all()
            try:
                while not stop.is_set() and self._now < deadline:
                    self._changed.wait(_STOP_CHECK_S)
            finally:
                del self._deadlines[me]
                self._changed.notify_all()
            return stop.is_set()

    def advance(self, seconds: float) -> None:
        """Move time on (a function under test may call this to 'take' time while it runs)."""
        with self._changed:
            self._now += dt.timedelta(seconds=seconds)
            self._changed.notify_all()

    def blocked(self, count: int, timeout: float = 5.0) -> None:
        """Wait (real time, bounded) until ``count`` threads wait on the clock for a moment still ahead."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: sum(d > self._now for d in self._deadlines.values()) >= count, timeout
            ):
                raise AssertionError(f"fewer than {count} threads came to wait on the clock in {timeout} s")

    def next_deadline(self) -> dt.datetime:
        with self._changed:
            return min(d for d in self._deadlines.values() if d > self._now)

    def advance_to_next(self) -> None:
        """Move time to the earliest moment a blocked thread waits for."""
        with self._changed:
            self._now = min(d for d in self._deadlines.values() if d > self._now)
            self._changed.notify_all()
