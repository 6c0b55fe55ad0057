"""Simulation knobs through HTTPS: seeded fault injection (500, 503, dropped connections), latency.

These are the emulator's own knobs; what a client sees when they fire is what it must
survive against the real service: a 5xx with an error body, a connection closed without an answer, or a
slow response.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session

pytestmark = pytest.mark.integration

MIXED = {"error_rate_500": 0.2, "error_rate_503": 0.2, "drop_rate": 0.1}


def outcomes(dataverse: DataverseEmulator, headers: dict[str, str], count: int) -> list[int | str]:
    """Status of ``count`` sequential GETs, or "drop" when the connection closed without an answer."""
    seen: list[int | str] = []
    with trusting_session() as session:
        session.headers.update(headers)
        for _ in range(count):
            try:
                seen.append(session.get(dataverse.api_url + "WhoAmI", timeout=10).status_code)
            except requests.ConnectionError:
                seen.append("drop")
    return seen


def test_same_fault_seed_replays_the_same_failures(dataverse, dv) -> None:  # type: ignore[no-untyped-def]
    assert dv.post("/_emulator/faults", json={**MIXED, "seed": 11}).status_code == 200
    first = outcomes(dataverse, dict(dv.headers), 30)
    assert {500, 503, "drop", 200} <= set(first)
    dv.post("/_emulator/faults", json={"seed": 11})  # same seed: the sequence starts again
    assert outcomes(dataverse, dict(dv.headers), 30) == first
    dv.post("/_emulator/faults", json={"seed": 12})
    assert outcomes(dataverse, dict(dv.headers), 30) != first


def test_fault_shares_follow_the_configured_rates(dataverse, dv) -> None:  # type: ignore[no-untyped-def]
    dv.post("/_emulator/faults", json={"error_rate_503": 0.5, "seed": 3})
    seen = outcomes(dataverse, dict(dv.headers), 60)
    assert set(seen) == {200, 503}
    assert 15 <= seen.count(503) <= 45
    stats = dv.get("/_emulator/stats").json()
    assert stats["responses_by_status"]["503"] == seen.count(503)
    assert stats["simulation"]["fault_503"] == seen.count(503)


def test_injected_errors_carry_an_error_body(dv) -> None:  # type: ignore[no-untyped-def]
    dv.post("/_emulator/faults", json={"inject": 500})
    dv.post("/_emulator/faults", json={"inject": 503})
    first, second = dv.get("contacts"), dv.get("contacts")
    assert (first.status_code, second.status_code) == (500, 503)
    for r in (first, second):
        error = r.json()["error"]
        assert error["code"].startswith("0x") and error["message"]
    assert dv.get("contacts").status_code == 200


def test_faults_can_target_request_kinds(dv) -> None:  # type: ignore[no-untyped-def]
    dv.post("/_emulator/faults", json={"error_rate_503": 1.0, "fault_kinds": ["write"]})
    assert dv.get("contacts").status_code == 200
    assert dv.post("contacts", json={"lastname": "Nope"}).status_code == 503
    dv.post("/_emulator/faults", json={"error_rate_503": 0})
    assert dv.get("contacts?$select=lastname").json()["value"] == []  # the failed write did nothing


def test_a_dropped_read_is_a_connection_error(dataverse, dv) -> None:  # type: ignore[no-untyped-def]
    dv.post("/_emulator/faults", json={"drop_rate": 1.0})
    assert outcomes(dataverse, dict(dv.headers), 3) == ["drop", "drop", "drop"]
    dv.post("/_emulator/faults", json={"drop_rate": 0})
    assert dv.get("WhoAmI").status_code == 200


def timed(call: Any) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def test_latency_and_per_record_latency_measurably_delay(dv) -> None:  # type: ignore[no-untyped-def]
    # Lower bounds only, plus one upper bound relative to a measured baseline with a wide margin: a busy
    # machine can slow any request, never speed one up.
    baseline = min(timed(lambda: dv.get("WhoAmI"))[1] for _ in range(3))
    dv.post("/_emulator/latency", json={"latency_ms": 300})
    r, elapsed = timed(lambda: dv.get("WhoAmI"))
    assert r.status_code == 200 and elapsed >= 0.3
    dv.post("/_emulator/latency", json={"latency_ms": 0, "per_record_ms": 25})
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": f"L{i}"} for i in range(40)]
    r, elapsed = timed(
        lambda: dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets})
    )
    assert r.status_code == 200, r.text
    assert elapsed >= 1.0  # 40 records x 25 ms
    single = min(timed(lambda: dv.get("WhoAmI"))[1] for _ in range(3))
    assert single < baseline + 0.5  # one record costs 25 ms, not 40 x 25 ms


def test_slow_responses_and_jitter(dv) -> None:  # type: ignore[no-untyped-def]
    dv.post("/_emulator/latency", json={"slow_rate": 1.0, "slow_ms": 400})
    _, elapsed = timed(lambda: dv.get("WhoAmI"))
    assert elapsed >= 0.4
    dv.post("/_emulator/latency", json={"slow_rate": 0, "latency_ms": 50, "jitter_ms": 100, "seed": 5})
    delays = [timed(lambda: dv.get("WhoAmI"))[1] for _ in range(6)]
    assert min(delays) >= 0.05
    assert max(delays) - min(delays) > 0.01  # jitter varies the delay


def test_simulated_latency_counts_as_execution_time(dataverse, dv) -> None:  # type: ignore[no-untyped-def]
    dataverse.clock.freeze()
    dv.post("/_emulator/limits", json={"max_execution_ms": 200})
    dv.post("/_emulator/latency", json={"latency_ms": 250})
    assert dv.get("WhoAmI").status_code == 200
    dv.post("/_emulator/latency", json={"latency_ms": 0})
    refused = dv.get("WhoAmI")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "0x80072321"


def test_bad_knob_values_are_refused(dv) -> None:  # type: ignore[no-untyped-def]
    assert dv.post("/_emulator/faults", json={"error_rate_500": 2}).status_code == 400
    assert dv.post("/_emulator/faults", json={"no_such_knob": 1}).status_code == 400
    assert dv.post("/_emulator/limits", json={"max_concurrent": 0}).status_code == 400
    assert dv.get("WhoAmI").status_code == 200
