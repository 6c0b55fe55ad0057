"""Service protection limits (learn.microsoft.com/power-apps/developer/data-platform/api-limits)."""

from __future__ import annotations

import pytest

from emulators.dataverse.clock import Clock
from emulators.dataverse.limits import (
    BURST_REMAINING_HEADER,
    DOP_HINT_HEADER,
    TIME_REMAINING_HEADER,
    Admission,
    LimitConfig,
    ServiceProtection,
    Throttled,
)


def make(**config: object) -> tuple[ServiceProtection, Clock]:
    clock = Clock(start=1_000_000.0, frozen=True)
    return ServiceProtection(LimitConfig(**config), clock), clock  # type: ignore[arg-type]


def admit_ok(sp: ServiceProtection, caller: str = "u1", execution_ms: float = 0) -> None:
    result = sp.admit(caller)
    assert isinstance(result, Admission), result
    sp.release(result, execution_ms)


def test_defaults_are_microsofts() -> None:
    cfg = LimitConfig()
    assert (cfg.window_s, cfg.max_requests, cfg.max_execution_ms, cfg.max_concurrent) == (
        300,
        6000,
        1_200_000,
        52,
    )


def test_request_limit_trips_only_after_being_exceeded() -> None:
    sp, _ = make(max_requests=5)
    for _ in range(6):  # the 6th exceeds the limit and is still served
        admit_ok(sp)
    refused = sp.admit("u1")
    assert isinstance(refused, Throttled)
    assert refused.status == 429
    assert refused.body() == {
        "error": {
            "code": "0x80072322",
            "message": "Number of requests exceeded the limit of 5 over time window of 300 seconds.",
        }
    }


def test_default_request_message_is_the_documented_one() -> None:
    sp, _ = make()
    for _ in range(6001):
        admit_ok(sp)
    refused = sp.admit("u1")
    assert isinstance(refused, Throttled)
    assert refused.message == "Number of requests exceeded the limit of 6000 over time window of 300 seconds."


def test_retry_after_is_time_until_the_oldest_excess_request_leaves_the_window() -> None:
    sp, clock = make(max_requests=3)
    admit_ok(sp)  # t=0
    clock.advance(100)
    for _ in range(3):  # t=100
        admit_ok(sp)
    clock.advance(50)  # t=150: 4 in window, limit exceeded
    refused = sp.admit("u1")
    assert isinstance(refused, Throttled)
    # dropping the t=0 request is enough; it leaves the window at t=300
    assert refused.retry_after_s == 150
    assert refused.response_headers() == {"Retry-After": "150"}
    clock.advance(149)
    assert isinstance(sp.admit("u1"), Throttled)
    clock.advance(1)  # t=300: the t=0 request has left the window
    admit_ok(sp)


def test_retry_after_is_at_least_one_second() -> None:
    sp, clock = make(max_requests=1, window_s=10)
    admit_ok(sp)
    admit_ok(sp)
    clock.advance(9.9)
    refused = sp.admit("u1")
    assert isinstance(refused, Throttled)
    assert refused.retry_after_s == 1


def test_refused_requests_do_not_count() -> None:
    sp, clock = make(max_requests=2)
    for _ in range(3):
        admit_ok(sp)
    for _ in range(50):
        assert isinstance(sp.admit("u1"), Throttled)
    assert sp.caller_usage("u1")["requests"] == 3
    clock.advance(300)
    admit_ok(sp)


def test_limits_are_per_caller() -> None:
    sp, _ = make(max_requests=1)
    admit_ok(sp, "alice")
    admit_ok(sp, "alice")
    assert isinstance(sp.admit("alice"), Throttled)
    admit_ok(sp, "bob")


def test_execution_time_limit_trips_after_being_exceeded() -> None:
    sp, clock = make(max_execution_ms=1000)
    admit_ok(sp, execution_ms=600)  # t=0
    clock.advance(10)
    admit_ok(sp, execution_ms=400)  # t=10, total 1000: not exceeded yet
    clock.advance(10)
    admit_ok(sp, execution_ms=1)  # t=20, total 1001: exceeded by this one
    clock.advance(10)
    refused = sp.admit("u1")  # t=30
    assert isinstance(refused, Throttled)
    assert refused.code == "0x80072321"
    assert refused.message == (
        "Combined execution time of incoming requests exceeded limit of 1,000 milliseconds over time "
        "window of 300 seconds. Decrease number of concurrent requests or reduce the duration of requests "
        "and try again later."
    )
    # removing the t=0 request (600 ms) brings the sum under the limit: it leaves at t=300
    assert refused.retry_after_s == 270


def test_batch_counts_as_one_request_but_accrues_its_execution_time() -> None:
    sp, _ = make(max_requests=10, max_execution_ms=5000)
    batch = sp.admit("u1")
    assert isinstance(batch, Admission)
    sp.release(batch, execution_ms=1000 * 2 + 5)  # 1,000 inner operations at 2 ms each
    usage = sp.caller_usage("u1")
    assert usage["requests"] == 1
    assert usage["execution_ms"] == 2005


def test_concurrency_limit_trips_at_once_and_frees_on_release() -> None:
    sp, _ = make(max_concurrent=3)
    held = [sp.admit("u1") for _ in range(3)]
    assert all(isinstance(a, Admission) for a in held)
    refused = sp.admit("u1")
    assert isinstance(refused, Throttled)
    assert refused.code == "0x80072326"
    assert refused.message == "Number of concurrent requests exceeded the limit of 3."
    assert refused.retry_after_s >= 1
    first = held[0]
    assert isinstance(first, Admission)
    sp.release(first, 5)
    assert isinstance(sp.admit("u1"), Admission)


def test_double_release_does_not_free_two_slots() -> None:
    sp, _ = make(max_concurrent=2)
    a = sp.admit("u1")
    b = sp.admit("u1")
    assert isinstance(a, Admission) and isinstance(b, Admission)
    sp.release(a, 1)
    sp.release(a, 1)
    assert sp.caller_usage("u1")["in_flight"] == 1
    assert sp.caller_usage("u1")["execution_ms"] == 1


def test_headers_report_remaining_budget_like_the_real_service() -> None:
    sp, _ = make()
    admit_ok(sp, execution_ms=540)
    headers = sp.headers("u1")
    assert headers[BURST_REMAINING_HEADER] == "5999"
    assert headers[TIME_REMAINING_HEADER] == "1,199.46"  # seconds, thousands separator, 2 decimals
    assert headers[DOP_HINT_HEADER] == "4"


def test_headers_never_go_negative() -> None:
    sp, _ = make(max_requests=1, max_execution_ms=10)
    admit_ok(sp, execution_ms=5)
    admit_ok(sp, execution_ms=50)
    headers = sp.headers("u1")
    assert headers[BURST_REMAINING_HEADER] == "0"
    assert headers[TIME_REMAINING_HEADER] == "0.00"


def test_disabled_limits_never_throttle() -> None:
    sp, _ = make(max_requests=1, max_concurrent=1, enabled=False)
    held = [sp.admit("u1") for _ in range(5)]
    assert all(isinstance(a, Admission) for a in held)


def test_configure_scales_limits_at_run_time_and_validates() -> None:
    sp, _ = make()
    admit_ok(sp)
    admit_ok(sp)
    sp.configure(max_requests=1)
    refused = sp.admit("u1")
    assert isinstance(refused, Throttled)
    assert "limit of 1 over" in refused.message
    with pytest.raises(ValueError):
        sp.configure(max_requests=-1)
    with pytest.raises(ValueError):
        sp.configure(no_such_limit=3)
    assert sp.config.max_requests == 1


def test_reset_clears_windows_and_stats() -> None:
    sp, _ = make(max_requests=1)
    admit_ok(sp)
    admit_ok(sp)
    assert isinstance(sp.admit("u1"), Throttled)
    sp.reset()
    assert sp.stats()["throttled"] == 0
    admit_ok(sp)


def test_escalation_extends_the_wait_for_clients_that_keep_sending() -> None:
    sp, clock = make(max_requests=1, escalation_s=10)
    admit_ok(sp)
    admit_ok(sp)
    first = sp.admit("u1")
    assert isinstance(first, Throttled)
    assert first.retry_after_s == 300
    second = sp.admit("u1")  # ignored Retry-After
    assert isinstance(second, Throttled)
    assert second.retry_after_s == 310
    clock.advance(300)  # the window alone would be free now; the penalty is not
    assert isinstance(sp.admit("u1"), Throttled)
    clock.advance(30)
    admit_ok(sp)


def test_stats_count_admissions_and_throttles_by_facet() -> None:
    sp, _ = make(max_requests=1, max_concurrent=5)
    admit_ok(sp)
    admit_ok(sp)
    sp.admit("u1")
    sp.admit("u1")
    stats = sp.stats()
    assert stats["admitted"] == 2
    assert stats["throttled"] == 2
    assert stats["throttled_requests"] == 2
    assert stats["throttled_concurrency"] == 0
    assert stats["in_flight"] == 0


def test_invalid_configs_are_refused() -> None:
    with pytest.raises(ValueError):
        LimitConfig(window_s=0)
    with pytest.raises(ValueError):
        LimitConfig(max_concurrent=0)
