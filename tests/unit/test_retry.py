"""The one retry policy: what it retries, how long it waits, and that it is bounded and reproducible."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from core.domain.retry import FailureKind, RetryPolicy, classify_status, parse_retry_after

POLICY = RetryPolicy(
    max_attempts=5, max_throttle_retries=3, base_delay=0.5, max_delay=8.0, max_retry_after=60
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (204, None),
        (304, None),
        (400, FailureKind.CLIENT),
        (401, FailureKind.UNAUTHORIZED),
        (403, FailureKind.CLIENT),
        (404, FailureKind.CLIENT),
        (412, FailureKind.CLIENT),
        (429, FailureKind.THROTTLED),
        (500, FailureKind.SERVER),
        (502, FailureKind.SERVER),
        (503, FailureKind.SERVER),
        (504, FailureKind.SERVER),
        (501, FailureKind.CLIENT),
    ],
)
def test_status_classification(status: int, kind: FailureKind | None) -> None:
    assert classify_status(status) == kind


def test_retry_after_seconds_and_http_date() -> None:
    now = dt.datetime(2026, 11, 27, 10, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Fri, 27 Nov 2026 10:00:30 GMT", now) == 30.0
    assert parse_retry_after("Fri, 27 Nov 2026 09:59:00 GMT", now) == 0.0  # already past
    for unusable in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(unusable, now) is None
    assert parse_retry_after("Fri, 27 Nov 2026 10:00:30 GMT") is None  # a date needs the caller's clock


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    for failures in range(1, 12):
        ceiling = min(8.0, 0.5 * 2 ** (failures - 1))
        delays = [POLICY.backoff(failures, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jittered, not a fixed value
    assert max(POLICY.backoff(30, rng) for _ in range(100)) <= 8.0


def test_decisions_are_reproducible_under_a_seed() -> None:
    def run(seed: int) -> list[float]:
        rng = random.Random(seed)
        kinds = [FailureKind.SERVER, FailureKind.THROTTLED, FailureKind.NETWORK, FailureKind.CONNECT]
        return [
            POLICY.decide(kind, n, idempotent=True, rng=rng, retry_after=None).delay
            for kind in kinds
            for n in (1, 2, 3)
        ]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_throttle_waits_at_least_retry_after_with_small_jitter() -> None:
    rng = random.Random(7)
    for retry_after in (0.0, 2.0, 30.0, 60.0):
        decision = POLICY.decide(FailureKind.THROTTLED, 1, idempotent=False, rng=rng, retry_after=retry_after)
        assert decision.retry
        assert retry_after <= decision.delay <= retry_after + min(1.0, retry_after * 0.1)


def test_throttle_without_retry_after_backs_off_and_is_bounded() -> None:
    rng = random.Random(7)
    first = POLICY.decide(FailureKind.THROTTLED, 1, idempotent=True, rng=rng)
    assert first.retry and 0.25 <= first.delay <= 0.5
    assert POLICY.decide(FailureKind.THROTTLED, 3, idempotent=True, rng=rng).retry
    assert not POLICY.decide(FailureKind.THROTTLED, 4, idempotent=True, rng=rng).retry


def test_retry_after_above_cap_gives_up_instead_of_blocking_or_coming_back_early() -> None:
    decision = POLICY.decide(FailureKind.THROTTLED, 1, idempotent=True, rng=random.Random(), retry_after=61)
    assert not decision.retry
    assert "cap" in decision.reason


@pytest.mark.parametrize("kind", [FailureKind.SERVER, FailureKind.NETWORK])
def test_server_and_network_failures_retry_only_idempotent_requests(kind: FailureKind) -> None:
    rng = random.Random(3)
    assert POLICY.decide(kind, 1, idempotent=True, rng=rng).retry
    assert not POLICY.decide(kind, 1, idempotent=False, rng=rng).retry


def test_failed_connect_is_retried_even_for_non_idempotent_requests() -> None:
    assert POLICY.decide(FailureKind.CONNECT, 1, idempotent=False, rng=random.Random()).retry


def test_transient_attempts_are_bounded() -> None:
    rng = random.Random(3)
    assert POLICY.decide(FailureKind.SERVER, 4, idempotent=True, rng=rng).retry
    assert not POLICY.decide(FailureKind.SERVER, 5, idempotent=True, rng=rng).retry  # 5 attempts made


def test_unauthorized_refreshes_once_then_gives_up() -> None:
    first = POLICY.decide(FailureKind.UNAUTHORIZED, 1, idempotent=False, rng=random.Random())
    assert first.retry and first.refresh_token and first.delay == 0
    assert not POLICY.decide(FailureKind.UNAUTHORIZED, 2, idempotent=True, rng=random.Random()).retry


def test_client_errors_are_never_retried() -> None:
    assert not POLICY.decide(FailureKind.CLIENT, 1, idempotent=True, rng=random.Random()).retry


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=5, max_delay=1)
    with pytest.raises(ValueError):
        POLICY.decide(FailureKind.SERVER, 0, idempotent=True, rng=random.Random())
