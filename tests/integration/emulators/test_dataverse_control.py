"""The control API under /_emulator/: reset, seed, snapshot, stats, clock, faults,
latency and limits. It is ours, not Microsoft's; the Web API behaviour it switches on follows
api-limits.md."""

from __future__ import annotations

import time

import pytest
import requests

pytestmark = pytest.mark.integration


def test_reset_keeps_only_the_organisation(dv) -> None:  # type: ignore[no-untyped-def]
    assert dv.post("contacts", json={"lastname": "Temp"}).status_code == 204
    dv.post("/_emulator/latency", json={"latency_ms": 250})
    dv.post("/_emulator/limits", json={"max_requests": 1})
    r = dv.post("/_emulator/reset")
    assert r.status_code == 200
    assert r.json()["records"]["contact"] == 0 and r.json()["records"]["systemuser"] == 1
    assert dv.get("contacts").json()["value"] == []
    assert dv.get("WhoAmI").status_code == 200
    assert dv.get("/_emulator/latency").json()["latency_ms"] == 0
    assert dv.get("/_emulator/limits").json()["max_requests"] == 6000


def test_seed_loads_through_the_create_path(dv) -> None:  # type: ignore[no-untyped-def]
    r = dv.post("/_emulator/seed", json={"accounts": 20, "contacts": 60, "users": 4, "seed": 7})
    assert r.status_code == 200, r.text
    loaded = r.json()["loaded"]
    assert loaded["account"] == 20 and loaded["contact"] == 60 and loaded["systemuser"] == 4
    users = dv.get("systemusers?$select=isdisabled").json()["value"]
    assert sum(1 for u in users if u["isdisabled"]) == 1
    linked = dv.get("contacts?$select=_parentcustomerid_value&$filter=_parentcustomerid_value ne null").json()
    assert linked["value"], "seeded contacts are linked to seeded accounts"


def test_snapshot_export_and_restore(dv) -> None:  # type: ignore[no-untyped-def]
    dv.post("contacts", json={"lastname": "Keep"})
    snapshot = dv.get("/_emulator/snapshot").json()
    assert [row["lastname"] for row in snapshot["contact"]] == ["Keep"]
    dv.post("contacts", json={"lastname": "Later"})
    assert dv.post("/_emulator/snapshot", json=snapshot).status_code == 200
    assert [row["lastname"] for row in dv.get("contacts?$select=lastname").json()["value"]] == ["Keep"]


def test_stats_count_requests_by_method_and_kind(dv) -> None:  # type: ignore[no-untyped-def]
    dv.post("contacts", json={"lastname": "S"})
    dv.get("contacts")
    dv.get("contacts")
    stats = dv.get("/_emulator/stats").json()
    assert stats["requests_by_method"] == {"POST": 1, "GET": 2}
    assert stats["requests_by_kind"] == {"write": 1, "read": 2}
    assert stats["records"]["contact"] == 1


def test_clock_moves_createdon(dataverse, dv) -> None:  # type: ignore[no-untyped-def]
    r = dv.post("/_emulator/clock", json={"set": 1_700_000_000})
    assert r.json()["utc"].startswith("2023-11-14T22:13")
    dv.post("contacts", json={"lastname": "Past"})
    row = dv.get("contacts?$select=createdon").json()["value"][0]
    assert row["createdon"].startswith("2023-11-14T22:13")
    dv.post("/_emulator/clock", json={"advance": 3600})
    assert dataverse.clock.now() >= 1_700_003_600


def test_injected_faults_and_drops(dv) -> None:  # type: ignore[no-untyped-def]
    dv.post("/_emulator/faults", json={"inject": 503, "count": 2})
    assert dv.get("contacts").status_code == 503
    assert dv.get("contacts").status_code == 503
    assert dv.get("contacts").status_code == 200
    dv.post("/_emulator/faults", json={"inject": "drop", "count": 1, "kinds": ["write"]})
    with pytest.raises(requests.ConnectionError):
        dv.post("contacts", json={"lastname": "Dropped"})
    # the write happened before the connection was cut: the classic "retry creates a duplicate" case
    assert [r["lastname"] for r in dv.get("contacts?$select=lastname").json()["value"]] == ["Dropped"]


def test_latency_knob(dv) -> None:  # type: ignore[no-untyped-def]
    dv.post("/_emulator/latency", json={"latency_ms": 150})
    started = time.perf_counter()
    dv.get("WhoAmI")
    assert time.perf_counter() - started >= 0.15
    assert dv.post("/_emulator/latency", json={"latency_ms": -1}).status_code == 400


def test_limits_knob_gives_429_with_retry_after(dv) -> None:  # type: ignore[no-untyped-def]
    dv.post("/_emulator/limits", json={"max_requests": 2, "window_s": 60})
    statuses = [dv.get("WhoAmI") for _ in range(4)]
    assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
    throttled = statuses[3]
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["error"]["code"] == "0x80072322"
    assert "x-ms-ratelimit-burst-remaining-xrm-requests" in statuses[0].headers
    assert dv.get("/_emulator/stats").json()["throttled"] == 1


def test_stats_count_inner_operations_429s_and_records(dv) -> None:  # type: ignore[no-untyped-def]
    """Benchmarks read their counts here: a bulk call is one HTTP request with N inner operations, and
    every 429 served is counted (api-limits.md: bulk calls count as one request)."""
    dv.post("/_emulator/limits", json={"max_requests": 2})
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": f"B{i}"} for i in range(7)]
    assert dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets}).ok
    assert dv.get("WhoAmI").ok
    assert dv.get("WhoAmI").ok  # a third request exceeds the limit of 2: the next one is refused
    assert dv.get("WhoAmI").status_code == 429
    stats = dv.get("/_emulator/stats").json()
    assert stats["requests_by_kind"]["bulk"] == 1
    assert stats["inner_operations"]["bulk"] == 7
    assert stats["throttled"] == 1
    assert stats["responses_by_status"]["429"] == 1
    assert stats["records"]["contact"] == 7
