"""Simulation knobs: latency, fault injection and simulated server execution time.

The server asks :meth:`Simulator.plan` once per HTTP request, before doing the work, with the request's
kind (free-form label such as ``"read"``, ``"write"``, ``"batch"``, ``"bulk"``, ``"metadata"``) and the
number of records/operations it carries (1 for a plain request, N for a batch or a bulk call). The plan
says how long to wait before answering, whether to fail instead (500, 503 or drop the connection), and
how much *simulated* execution time the request costs (what the service protection limits accrue).

Random choices come from one ``random.Random(seed)``: with a seed, the same sequence of ``plan`` calls
gives the same delays and faults. Faults can also be scripted with :meth:`Simulator.inject` ("the next
two writes answer 503"), which needs no randomness at all.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

Fault = Literal[500, 503, "drop"]
FAULTS: tuple[Fault, ...] = (500, 503, "drop")


@dataclass
class SimulationConfig:
    latency_ms: float = 0  # fixed delay per request
    jitter_ms: float = 0  # plus uniform [0, jitter_ms)
    per_record_ms: float = 0  # plus this per record/operation of a batch or bulk call
    error_rate_500: float = 0  # share of requests answered 500
    error_rate_503: float = 0  # share of requests answered 503 (Service Unavailable)
    drop_rate: float = 0  # share of requests whose connection is closed without an answer
    slow_rate: float = 0  # share of requests delayed by an extra slow_ms
    slow_ms: float = 0
    seed: int | None = None
    exec_ms_per_request: float = 5  # simulated server time of a request ...
    exec_ms_per_record: float = 2  # ... plus this per record/operation it carries
    # Only requests of these kinds are subject to random faults (None = every kind).
    fault_kinds: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("latency_ms", "jitter_ms", "per_record_ms", "slow_ms", "exec_ms_per_request"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.exec_ms_per_record < 0:
            raise ValueError("exec_ms_per_record must not be negative")
        rates = ("error_rate_500", "error_rate_503", "drop_rate", "slow_rate")
        for name in rates:
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.error_rate_500 + self.error_rate_503 + self.drop_rate > 1:
            raise ValueError("error_rate_500 + error_rate_503 + drop_rate must not exceed 1")
        if self.fault_kinds is not None:
            self.fault_kinds = tuple(self.fault_kinds)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.fault_kinds is not None:
            data["fault_kinds"] = list(self.fault_kinds)
        return data


@dataclass(frozen=True)
class Plan:
    delay_s: float
    fault: Fault | None
    execution_ms: float


@dataclass
class _Scripted:
    fault: Fault
    remaining: int
    kinds: tuple[str, ...] | None


class Simulator:
    """Thread-safe; deterministic for a given seed and sequence of calls."""

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config = config or SimulationConfig()
        self._rng = random.Random(self._config.seed)
        self._script: deque[_Scripted] = deque()
        self._stats = {"planned": 0, "fault_500": 0, "fault_503": 0, "fault_drop": 0, "slow": 0}

    @property
    def config(self) -> SimulationConfig:
        return self._config

    def update(self, **changes: Any) -> SimulationConfig:
        """Change knobs at run time. Unknown names or invalid values are a ValueError (nothing changes).

        Passing ``seed`` (even the same value) restarts the random sequence, so a test can replay it.
        """
        known = {f.name for f in fields(SimulationConfig)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown simulation setting(s): {', '.join(unknown)}")
        if "fault_kinds" in changes and changes["fault_kinds"] is not None:
            changes["fault_kinds"] = tuple(changes["fault_kinds"])
        with self._lock:
            self._config = replace(self._config, **changes)
            if "seed" in changes:
                self._rng = random.Random(self._config.seed)
            return self._config

    def reset(self) -> None:
        """Back to no latency and no faults, the random sequence restarted, scripted faults dropped."""
        with self._lock:
            self._config = SimulationConfig()
            self._rng = random.Random(None)
            self._script.clear()
            for key in self._stats:
                self._stats[key] = 0

    def inject(self, fault: Fault, count: int = 1, kinds: tuple[str, ...] | list[str] | None = None) -> None:
        """Make the next ``count`` requests (of ``kinds``, or any kind) fail with ``fault``, in order."""
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._script.append(_Scripted(fault, count, tuple(kinds) if kinds is not None else None))

    def pending_injections(self) -> int:
        with self._lock:
            return sum(item.remaining for item in self._script)

    def _scripted_fault(self, kind: str) -> Fault | None:
        for item in self._script:
            if item.kinds is None or kind in item.kinds:
                item.remaining -= 1
                if item.remaining == 0:
                    self._script.remove(item)
                return item.fault
        return None

    def plan(self, kind: str, records: int = 1) -> Plan:
        records = max(0, records)
        with self._lock:
            cfg = self._config
            rng = self._rng
            self._stats["planned"] += 1
            # Always draw the same number of values so one knob does not shift another's sequence.
            jitter_draw = rng.random()
            fault_draw = rng.random()
            slow_draw = rng.random()
            delay_ms = cfg.latency_ms + jitter_draw * cfg.jitter_ms + cfg.per_record_ms * records
            slow = slow_draw < cfg.slow_rate
            if slow:
                delay_ms += cfg.slow_ms
                self._stats["slow"] += 1
            fault = self._scripted_fault(kind)
            if fault is None and (cfg.fault_kinds is None or kind in cfg.fault_kinds):
                if fault_draw < cfg.error_rate_500:
                    fault = 500
                elif fault_draw < cfg.error_rate_500 + cfg.error_rate_503:
                    fault = 503
                elif fault_draw < cfg.error_rate_500 + cfg.error_rate_503 + cfg.drop_rate:
                    fault = "drop"
            if fault is not None:
                self._stats[f"fault_{fault}"] += 1
            execution_ms = cfg.exec_ms_per_request + cfg.exec_ms_per_record * records + delay_ms
        return Plan(delay_s=delay_ms / 1000.0, fault=fault, execution_ms=execution_ms)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)


def fault_body(fault: Literal[500, 503]) -> dict[str, Any]:
    """A plausible error body for an injected fault (Dataverse answers unexpected errors with this shape)."""
    if fault == 503:
        return {
            "error": {
                "code": "0x80040216",
                "message": "The service is temporarily unavailable. Try the request again later.",
            }
        }
    return {"error": {"code": "0x80040216", "message": "An unexpected error occurred."}}
