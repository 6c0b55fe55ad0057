"""The devhost's time: when timers are due, how long a poller backs off, when a lease is renewed.

Timers and queue listeners take a ``Clock``; the devhost gives them the system's, and tests a manual one
they advance, so schedules, retries and leases are checked without waiting for real seconds to pass.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current UTC time."""

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Block until ``seconds`` have passed on this clock or ``stop`` is set; True when it was set."""


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        return stop.wait(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()
