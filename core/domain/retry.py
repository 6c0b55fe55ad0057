"""The one retry policy for every call to Dynamics (pure: no I/O, no clock, no sleeping).

The Dataverse client asks :meth:`RetryPolicy.decide` after each failed attempt whether to try again and
how long to wait first. The answer depends only on the failure kind, how many failures of that kind the
request has had, whether the request is safe to repeat, the server's ``Retry-After`` and the random
generator passed in, so a seeded ``random.Random`` makes every decision reproducible in tests.

Rules:

* ``THROTTLED`` (HTTP 429, Dataverse service protection): the server rejected the request before running
  it, so it is always safe to send again. Wait exactly ``Retry-After`` plus a small positive jitter (never
  less than the server asked: clients that come back early get longer penalties). A ``Retry-After`` above
  ``max_retry_after`` is not waited in-process: the decision is to give up, so the caller can reschedule
  the work (e.g. a queue message's visibility) instead of blocking a worker for minutes. Without the
  header: the exponential backoff below. At most ``max_throttle_retries`` retries.
* ``SERVER`` (500/502/503/504) and ``NETWORK`` (connection dropped or read timeout after the request may
  have reached the server): retried only when the request is idempotent, with bounded exponential backoff
  and "equal jitter" (uniform in ``[d/2, d]`` where ``d = min(max_delay, base_delay * 2**(n-1))``), at most
  ``max_attempts`` attempts in total.
* ``CONNECT`` (the connection could not be opened: the request never left this process): safe to repeat
  for any request, same backoff and bound as ``SERVER``.
* ``UNAUTHORIZED`` (401): one immediate retry with a force-refreshed token, then give up.
* ``CLIENT`` (any other 4xx, 501, 505...): never retried; repeating cannot change the answer.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from dataclasses import dataclass
from enum import StrEnum


class FailureKind(StrEnum):
    THROTTLED = "throttled"
    SERVER = "server"
    CONNECT = "connect"
    NETWORK = "network"
    UNAUTHORIZED = "unauthorized"
    CLIENT = "client"


RETRYABLE_SERVER_STATUSES = frozenset({500, 502, 503, 504})


def classify_status(status: int) -> FailureKind | None:
    """The failure kind of an HTTP status, or ``None`` when the status is not a failure (1xx-3xx)."""
    if status < 400:
        return None
    if status == 429:
        return FailureKind.THROTTLED
    if status == 401:
        return FailureKind.UNAUTHORIZED
    if status in RETRYABLE_SERVER_STATUSES:
        return FailureKind.SERVER
    return FailureKind.CLIENT


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date; ``None`` if unusable.

    ``now`` is needed only for the HTTP-date form (the caller passes its clock; nothing here reads one).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
            return None
        return max(0.0, seconds)
    if now is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: float
    reason: str
    refresh_token: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry behaviour; see the module docstring for the rules."""

    max_attempts: int = 5
    """Total attempts (first one included) for SERVER / NETWORK / CONNECT failures."""
    max_throttle_retries: int = 8
    """Retries after HTTP 429 (they do not count towards ``max_attempts``)."""
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0
    """Longest ``Retry-After`` waited in-process; a longer one gives up (caller reschedules)."""
    retry_after_jitter: float = 0.1
    """Fraction of ``Retry-After`` (at most 1 s) added at random: throttled workers do not return at once."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_throttle_retries < 0:
            raise ValueError("max_throttle_retries must not be negative")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")
        if self.max_retry_after < 0 or not 0 <= self.retry_after_jitter <= 1:
            raise ValueError("need max_retry_after >= 0 and 0 <= retry_after_jitter <= 1")

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Delay before the retry that follows the ``failures``-th failure (1-based): equal jitter."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, failures - 1)))
        return rng.uniform(ceiling / 2, ceiling)

    def decide(
        self,
        kind: FailureKind,
        failures: int,
        *,
        idempotent: bool,
        rng: random.Random,
        retry_after: float | None = None,
    ) -> RetryDecision:
        """Retry or give up after the ``failures``-th failure (1-based) of ``kind`` for one request."""
        if failures < 1:
            raise ValueError("failures is 1-based")
        if kind is FailureKind.CLIENT:
            return RetryDecision(False, 0.0, "client error: repeating cannot change the answer")
        if kind is FailureKind.UNAUTHORIZED:
            if failures == 1:
                return RetryDecision(True, 0.0, "401: retry once with a refreshed token", refresh_token=True)
            return RetryDecision(False, 0.0, "401 again after a token refresh")
        if kind is FailureKind.THROTTLED:
            if failures > self.max_throttle_retries:
                return RetryDecision(False, 0.0, f"throttled {failures} times")
            if retry_after is None:
                return RetryDecision(True, self.backoff(failures, rng), "429 without Retry-After: backoff")
            if retry_after > self.max_retry_after:
                return RetryDecision(
                    False, 0.0, f"Retry-After {retry_after:g}s exceeds the {self.max_retry_after:g}s cap"
                )
            jitter = rng.uniform(0.0, min(1.0, retry_after * self.retry_after_jitter))
            return RetryDecision(True, retry_after + jitter, "429: waiting Retry-After")
        # SERVER, NETWORK, CONNECT
        if kind is not FailureKind.CONNECT and not idempotent:
            return RetryDecision(False, 0.0, f"{kind.value} failure on a request that is not safe to repeat")
        if failures >= self.max_attempts:
            return RetryDecision(False, 0.0, f"{kind.value} failure, {failures} attempts made")
        return RetryDecision(True, self.backoff(failures, rng), f"{kind.value} failure: backoff")
