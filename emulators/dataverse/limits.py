"""Dataverse service protection API limits, per caller, over a sliding window.

Follows Microsoft's "Service protection API limits" page (power-apps/developer/data-platform/api-limits):

- three facets per user (and per web server; the emulator is one web server): number of requests (6,000)
  and combined execution time (1,200,000 ms) over the preceding 300 s, and concurrent requests (52);
- the request and execution-time limits trip only *after* being exceeded ("you can expect to exceed
  ... before the service protection API limits take effect"), the concurrency limit trips at once;
- the answer is HTTP 429 with ``Retry-After`` (whole seconds) and ``{"error":{"code","message"}}`` with
  the documented hex codes and messages (the numbers in the messages follow the configured limits);
- a ``$batch`` or a ``CreateMultiple``/``UpdateMultiple``/``UpsertMultiple`` call is one request; its
  execution time is the sum over its inner operations (the caller passes it to :meth:`release`);
- every response can carry ``x-ms-ratelimit-burst-remaining-xrm-requests`` (requests left in the window,
  an integer), ``x-ms-ratelimit-time-remaining-xrm-requests`` (execution seconds left, written like the
  real service: ``1,199.46``) and ``x-ms-dop-hint`` (recommended degree of parallelism);
- "if the application continues to send such demanding requests, the duration is extended": optional
  here (``escalation_s`` > 0), off by default so that a parallel client whose in-flight requests all
  bounce is not punished for requests it sent before it saw the first 429.

Requests refused with 429 do not count toward the window. For tests of clients that share a pause, the
stats count ``early`` requests: those that arrive while a Retry-After the same caller was given has not
elapsed, ``early_grace_s`` or more after it was given (the grace covers a client's in-process propagation
of the 429; 0 counts every one). Time comes from :class:`Clock`, so a test
frees the window by advancing the clock instead of waiting 300 s.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from emulators.dataverse.clock import Clock

REQUESTS_CODE = "0x80072322"
EXECUTION_TIME_CODE = "0x80072321"
CONCURRENCY_CODE = "0x80072326"

BURST_REMAINING_HEADER = "x-ms-ratelimit-burst-remaining-xrm-requests"
TIME_REMAINING_HEADER = "x-ms-ratelimit-time-remaining-xrm-requests"
DOP_HINT_HEADER = "x-ms-dop-hint"


@dataclass
class LimitConfig:
    """Limits of one web server. Defaults are Microsoft's documented defaults; scale them down in tests."""

    window_s: float = 300
    max_requests: int = 6000
    max_execution_ms: float = 1_200_000
    max_concurrent: int = 52
    enabled: bool = True
    # Value of x-ms-dop-hint (real environments send e.g. 4 on small ones, 48 on large ones).
    dop_hint: int = 4
    # Retry-After for a request refused by the concurrency limit (the window is not the problem there).
    concurrency_retry_after_s: int = 1
    # Seconds added to a caller's penalty for each request it sends while already told to wait.
    escalation_s: float = 0.0
    # A request arriving this long or longer after a 429 and before its Retry-After counts as ``early``.
    early_grace_s: float = 0.0

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError("window_s must be positive")
        if self.max_requests < 0 or self.max_execution_ms < 0:
            raise ValueError("max_requests and max_execution_ms must not be negative")
        if self.max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if self.dop_hint < 1 or self.concurrency_retry_after_s < 1:
            raise ValueError("dop_hint and concurrency_retry_after_s must be at least 1")
        if self.escalation_s < 0:
            raise ValueError("escalation_s must not be negative")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, **changes: Any) -> LimitConfig:
        """A copy with ``changes`` applied (unknown names are a ValueError, values are validated)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown limit setting(s): {', '.join(unknown)}")
        return replace(self, **changes)


@dataclass(frozen=True)
class Throttled:
    """A refusal: HTTP 429 with ``Retry-After: retry_after_s`` and the error body."""

    retry_after_s: int
    code: str
    message: str
    facet: str  # "requests" | "execution_time" | "concurrency"

    status: int = 429

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


@dataclass(eq=False)
class _Entry:
    """One admitted request inside a caller's window."""

    at: float
    execution_ms: float = 0.0
    in_window: bool = True


@dataclass(eq=False)
class Admission:
    """A request let in; hand it back to :meth:`ServiceProtection.release` when the response is done."""

    caller: str
    admitted_at: float
    _entry: _Entry
    _released: bool = False


@dataclass
class _CallerState:
    entries: deque[_Entry] = field(default_factory=deque)
    execution_ms: float = 0.0  # sum over entries
    in_flight: int = 0
    blocked_until: float = 0.0  # only used when escalation is on
    told: deque[tuple[float, float]] = field(default_factory=deque)  # (429 answered at, Retry-After ends)


def _retry_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds - 1e-9))


class ServiceProtection:
    """Per-caller sliding-window accounting. Thread-safe."""

    def __init__(self, config: LimitConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._callers: dict[str, _CallerState] = {}
        self._stats = {
            "admitted": 0,
            "throttled": 0,
            "throttled_requests": 0,
            "throttled_execution_time": 0,
            "throttled_concurrency": 0,
            "early": 0,
        }

    # -- configuration -------------------------------------------------------------------------------------

    @property
    def config(self) -> LimitConfig:
        return self._config

    def configure(self, **changes: Any) -> LimitConfig:
        """Change limits at run time (control API / tests). Accounting so far is kept."""
        with self._lock:
            self._config = self._config.updated(**changes)
            return self._config

    def reset(self) -> None:
        """Forget every caller's window and the statistics (requests in flight stay tracked)."""
        with self._lock:
            for state in self._callers.values():
                for entry in state.entries:
                    entry.in_window = False
                state.entries.clear()
                state.execution_ms = 0.0
                state.blocked_until = 0.0
                state.told.clear()
            for key in self._stats:
                self._stats[key] = 0

    # -- accounting ----------------------------------------------------------------------------------------

    def _state(self, caller: str) -> _CallerState:
        state = self._callers.get(caller)
        if state is None:
            state = self._callers[caller] = _CallerState()
        return state

    def _prune(self, state: _CallerState, now: float) -> None:
        horizon = now - self._config.window_s
        entries = state.entries
        while entries and entries[0].at <= horizon:
            gone = entries.popleft()
            gone.in_window = False
            state.execution_ms -= gone.execution_ms
        if not entries:
            state.execution_ms = 0.0  # no float drift once the window is empty

    def _count_retry_after(self, state: _CallerState, now: float) -> float:
        # Admitted again once no more than max_requests remain in the window: the oldest
        # (len - max_requests) entries must leave it.
        excess = len(state.entries) - self._config.max_requests
        leaving = state.entries[excess - 1]
        return leaving.at + self._config.window_s - now

    def _time_retry_after(self, state: _CallerState, now: float) -> float:
        remaining = state.execution_ms
        for entry in state.entries:
            remaining -= entry.execution_ms
            if remaining <= self._config.max_execution_ms:
                return entry.at + self._config.window_s - now
        return self._config.window_s  # unreachable while the sum exceeds the limit

    def _throttle(self, state: _CallerState, now: float, facet: str, wait_s: float) -> Throttled:
        cfg = self._config
        if cfg.escalation_s > 0 and facet != "concurrency":
            if state.blocked_until > now:
                state.blocked_until += cfg.escalation_s
            state.blocked_until = max(state.blocked_until, now + wait_s)
            wait_s = state.blocked_until - now
        self._stats["throttled"] += 1
        self._stats[f"throttled_{facet}"] += 1
        self._told(
            state, now, _retry_seconds(wait_s) if facet != "concurrency" else cfg.concurrency_retry_after_s
        )
        window = _fmt_number(cfg.window_s)
        if facet == "requests":
            code = REQUESTS_CODE
            message = (
                f"Number of requests exceeded the limit of {cfg.max_requests} "
                f"over time window of {window} seconds."
            )
            retry = _retry_seconds(wait_s)
        elif facet == "execution_time":
            code = EXECUTION_TIME_CODE
            message = (
                "Combined execution time of incoming requests exceeded limit of "
                f"{_fmt_thousands(cfg.max_execution_ms)} milliseconds over time window of {window} seconds. "
                "Decrease number of concurrent requests or reduce the duration of requests "
                "and try again later."
            )
            retry = _retry_seconds(wait_s)
        else:
            code = CONCURRENCY_CODE
            message = f"Number of concurrent requests exceeded the limit of {cfg.max_concurrent}."
            retry = cfg.concurrency_retry_after_s
        return Throttled(retry_after_s=retry, code=code, message=message, facet=facet)

    def _told(self, state: _CallerState, now: float, retry_after_s: int) -> None:
        state.told.append((now, now + retry_after_s))

    def _count_early(self, state: _CallerState, now: float) -> None:
        while state.told and state.told[0][1] <= now:
            state.told.popleft()
        grace = self._config.early_grace_s
        if any(at + grace <= now < until for at, until in state.told):
            self._stats["early"] += 1

    def admit(self, caller: str) -> Admission | Throttled:
        """Let a request of ``caller`` in, or refuse it. An Admission must be released exactly once."""
        now = self._clock.now()
        with self._lock:
            cfg = self._config
            state = self._state(caller)
            self._count_early(state, now)
            self._prune(state, now)
            if cfg.enabled:
                if cfg.escalation_s > 0 and state.blocked_until > now:
                    facet = "execution_time" if state.execution_ms > cfg.max_execution_ms else "requests"
                    return self._throttle(state, now, facet, state.blocked_until - now)
                if len(state.entries) > cfg.max_requests:
                    return self._throttle(state, now, "requests", self._count_retry_after(state, now))
                if state.execution_ms > cfg.max_execution_ms:
                    return self._throttle(state, now, "execution_time", self._time_retry_after(state, now))
                if state.in_flight >= cfg.max_concurrent:
                    return self._throttle(state, now, "concurrency", 0)
            entry = _Entry(at=now)
            state.entries.append(entry)
            state.in_flight += 1
            self._stats["admitted"] += 1
            return Admission(caller=caller, admitted_at=now, _entry=entry)

    def release(self, admission: Admission, execution_ms: float) -> None:
        """The request is answered; ``execution_ms`` of simulated server time accrue to its window entry.

        For a batch or bulk call pass the total over its inner operations. Releasing twice is a no-op.
        """
        if execution_ms < 0:
            raise ValueError("execution_ms must not be negative")
        with self._lock:
            if admission._released:
                return
            admission._released = True
            state = self._state(admission.caller)
            state.in_flight = max(0, state.in_flight - 1)
            entry = admission._entry
            entry.execution_ms = float(execution_ms)
            if entry.in_window:  # it may have left the window (or been reset) while it ran
                state.execution_ms += entry.execution_ms

    def headers(self, caller: str) -> dict[str, str]:
        """The x-ms-ratelimit-* and x-ms-dop-hint headers for a response to ``caller`` (after admit)."""
        now = self._clock.now()
        with self._lock:
            cfg = self._config
            state = self._state(caller)
            self._prune(state, now)
            burst = max(0, cfg.max_requests - len(state.entries))
            time_left_s = max(0.0, (cfg.max_execution_ms - state.execution_ms) / 1000.0)
            dop = min(cfg.dop_hint, cfg.max_concurrent)
        return {
            BURST_REMAINING_HEADER: str(burst),
            TIME_REMAINING_HEADER: f"{time_left_s:,.2f}",
            DOP_HINT_HEADER: str(dop),
        }

    def stats(self) -> dict[str, int]:
        """Counters for the control API: admitted, throttled (total and per facet), in_flight, callers."""
        with self._lock:
            result = dict(self._stats)
            result["in_flight"] = sum(s.in_flight for s in self._callers.values())
            result["callers"] = len(self._callers)
            return result

    def caller_usage(self, caller: str) -> dict[str, float | int]:
        """One caller's current window: requests, execution_ms, in_flight (for tests and the control API)."""
        now = self._clock.now()
        with self._lock:
            state = self._state(caller)
            self._prune(state, now)
            return {
                "requests": len(state.entries),
                "execution_ms": state.execution_ms,
                "in_flight": state.in_flight,
            }


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _fmt_thousands(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"
