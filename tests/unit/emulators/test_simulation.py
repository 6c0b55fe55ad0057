"""Simulation knobs: latency, faults with a seed, scripted faults, simulated execution time."""

from __future__ import annotations

import pytest

from emulators.dataverse.simulation import SimulationConfig, Simulator


def run(sim: Simulator, n: int = 200, kind: str = "read") -> list[object]:
    return [sim.plan(kind, 1).fault for _ in range(n)]


def test_defaults_add_no_delay_and_no_faults() -> None:
    sim = Simulator(SimulationConfig())
    plans = [sim.plan("read", 1) for _ in range(100)]
    assert all(p.delay_s == 0 and p.fault is None for p in plans)


def test_same_seed_gives_the_same_faults_and_delays() -> None:
    cfg = dict(error_rate_500=0.1, error_rate_503=0.1, drop_rate=0.1, jitter_ms=50, seed=7)
    a = Simulator(SimulationConfig(**cfg))  # type: ignore[arg-type]
    b = Simulator(SimulationConfig(**cfg))  # type: ignore[arg-type]
    plans_a = [a.plan("write", 3) for _ in range(300)]
    plans_b = [b.plan("write", 3) for _ in range(300)]
    assert plans_a == plans_b
    c = Simulator(SimulationConfig(**{**cfg, "seed": 8}))  # type: ignore[arg-type]
    assert [c.plan("write", 3) for _ in range(300)] != plans_a


def test_fault_shares_follow_the_rates() -> None:
    sim = Simulator(SimulationConfig(error_rate_500=0.2, error_rate_503=0.1, drop_rate=0.05, seed=1))
    faults = run(sim, 4000)
    assert 0.17 < faults.count(500) / 4000 < 0.23
    assert 0.08 < faults.count(503) / 4000 < 0.12
    assert 0.03 < faults.count("drop") / 4000 < 0.07
    stats = sim.stats()
    assert stats["fault_500"] == faults.count(500)
    assert stats["planned"] == 4000


def test_reseeding_replays_the_sequence() -> None:
    sim = Simulator(SimulationConfig(error_rate_503=0.3, seed=3))
    first = run(sim, 50)
    sim.update(seed=3)
    assert run(sim, 50) == first


def test_latency_jitter_and_per_record_delay() -> None:
    sim = Simulator(SimulationConfig(latency_ms=20, jitter_ms=10, per_record_ms=1, seed=5))
    delays = [sim.plan("bulk", 100).delay_s for _ in range(200)]
    assert all(0.120 <= d < 0.130 for d in delays)
    assert max(delays) - min(delays) > 0.005  # the jitter varies


def test_slow_responses() -> None:
    sim = Simulator(SimulationConfig(slow_rate=0.5, slow_ms=1000, seed=2))
    delays = [sim.plan("read").delay_s for _ in range(400)]
    slow = [d for d in delays if d >= 1.0]
    assert 150 < len(slow) < 250
    assert sim.stats()["slow"] == len(slow)


def test_execution_time_grows_with_records() -> None:
    sim = Simulator(SimulationConfig(exec_ms_per_request=5, exec_ms_per_record=2))
    assert sim.plan("read", 1).execution_ms == 7
    assert sim.plan("bulk", 1000).execution_ms == 2005


def test_fault_kinds_limit_random_faults() -> None:
    sim = Simulator(SimulationConfig(error_rate_503=1.0, fault_kinds=("write",)))
    assert sim.plan("read").fault is None
    assert sim.plan("write").fault == 503


def test_injected_faults_come_first_and_in_order() -> None:
    sim = Simulator()
    sim.inject(503, count=2, kinds=["write"])
    sim.inject("drop")
    assert sim.plan("read").fault == "drop"  # the 503s wait for writes
    assert sim.plan("write").fault == 503
    assert sim.plan("write").fault == 503
    assert sim.plan("write").fault is None
    assert sim.pending_injections() == 0


def test_update_validates_and_reset_clears() -> None:
    sim = Simulator()
    with pytest.raises(ValueError):
        sim.update(error_rate_500=1.5)
    with pytest.raises(ValueError):
        sim.update(latency=3)
    with pytest.raises(ValueError):
        sim.update(error_rate_500=0.6, error_rate_503=0.6)
    assert sim.config.error_rate_500 == 0
    sim.update(latency_ms=100)
    sim.inject(500, 3)
    sim.reset()
    assert sim.plan("read").delay_s == 0
    assert sim.pending_injections() == 0
