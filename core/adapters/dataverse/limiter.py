"""Adaptive concurrency for one Dataverse client: AIMD on a counting semaphore, plus a shared pause.

Dataverse allows 52 concurrent requests per user and answers 429 when a user goes over its budget. The
client therefore lowers its own parallelism when throttled instead of rediscovering the limit by more 429s:

* additive increase: after ``limit`` successful requests in a row the limit grows by one (up to the
  ceiling, which an ``x-ms-dop-hint`` response header may lower);
* multiplicative decrease: a 429 halves the limit, once per "generation" so that a burst of 429s from
  requests that were all in flight together counts as one signal, not as N halvings;
* pause: a 429 with ``Retry-After`` blocks *every* new attempt of this client until it has elapsed, so
  the other threads do not keep hitting a user that Dataverse already throttles.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Ticket:
    generation: int


class AdaptiveLimiter:
    def __init__(
        self,
        max_limit: int,
        *,
        min_limit: int = 1,
        initial: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= min_limit <= max_limit:
            raise ValueError("need 1 <= min_limit <= max_limit")
        self._max = max_limit
        self._ceiling = max_limit
        self._min = min_limit
        self._limit = max(min_limit, min(initial if initial is not None else max_limit, max_limit))
        self._in_flight = 0
        self._successes = 0
        self._generation = 0
        self._paused_until = 0.0
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self.throttle_events = 0

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self) -> Ticket:
        """Wait for a free slot (and for any pause to end); returns a ticket for :meth:`release`."""
        waited_for = -1.0  # the pause end already slept through (robust to a sleeper that fakes time)
        while True:
            with self._cond:
                while self._in_flight >= self._limit:
                    self._cond.wait(timeout=1.0)
                remaining = self._paused_until - self._clock()
                if remaining <= 0 or self._paused_until == waited_for:
                    self._in_flight += 1
                    return Ticket(self._generation)
                waited_for = self._paused_until
            self._sleep(remaining)

    def release(
        self, ticket: Ticket, *, throttled: bool = False, succeeded: bool = True, pause: float | None = None
    ) -> None:
        """Free the slot. ``throttled``: the attempt got 429; ``succeeded``: it got a usable answer (only
        those grow the limit); ``pause``: seconds during which no attempt of this client may start."""
        with self._cond:
            self._in_flight -= 1
            if throttled:
                self.throttle_events += 1
                self._successes = 0
                if ticket.generation == self._generation:
                    self._limit = max(self._min, self._limit // 2)
                    self._generation += 1
                if pause:
                    self._paused_until = max(self._paused_until, self._clock() + pause)
            elif succeeded:
                self._successes += 1
                if self._successes >= self._limit and self._limit < self._ceiling:
                    self._limit += 1
                    self._successes = 0
            self._cond.notify_all()

    def cap(self, dop_hint: int) -> None:
        """Lower the ceiling to the server's recommended degree of parallelism (``x-ms-dop-hint``)."""
        with self._cond:
            self._ceiling = max(self._min, min(self._max, dop_hint))
            self._limit = min(self._limit, self._ceiling)
