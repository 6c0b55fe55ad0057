"""Service protection limits through HTTPS, as a client sees them.

Follows learn.microsoft.com/power-apps/developer/data-platform/api-limits: per-user limits over a sliding
300 s window (requests, combined execution time) that trip only after being exceeded, a concurrency limit
that trips at once, 429 + Retry-After + the documented codes/messages, a $batch or bulk call counting as
one request, and the x-ms-ratelimit-* / x-ms-dop-hint headers. Limits are scaled down through the control
API; the emulator clock is frozen so that Retry-After values are exact and the window is freed by advancing
the clock instead of waiting.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session

pytestmark = pytest.mark.integration

BURST = "x-ms-ratelimit-burst-remaining-xrm-requests"
TIME_LEFT = "x-ms-ratelimit-time-remaining-xrm-requests"
DOP = "x-ms-dop-hint"


@pytest.fixture()
def frozen(dataverse: DataverseEmulator) -> DataverseEmulator:
    dataverse.clock.freeze()
    return dataverse


def limits(dv: Any, **config: Any) -> None:
    r = dv.post("/_emulator/limits", json=config)
    assert r.status_code == 200, r.text


def batch_of_gets(count: int) -> tuple[str, bytes]:
    boundary = f"batch_{uuid.uuid4()}"
    parts = []
    for _ in range(count):
        parts.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            "GET /api/data/v9.2/WhoAmI HTTP/1.1\r\nAccept: application/json\r\n\r\n"
        )
    body = "".join(parts) + f"--{boundary}--\r\n"
    return f"multipart/mixed; boundary={boundary}", body.encode()


def test_request_limit_trips_after_being_exceeded_with_real_body_and_retry_after(frozen, dv) -> None:  # type: ignore[no-untyped-def]
    """api-limits.md: 0x80072322 after the count is exceeded, Retry-After."""
    limits(dv, max_requests=5)
    served = [dv.get("WhoAmI") for _ in range(6)]  # the 6th exceeds the limit and is still served
    assert [r.status_code for r in served] == [200] * 6
    assert [r.headers[BURST] for r in served] == ["4", "3", "2", "1", "0", "0"]
    refused = dv.get("WhoAmI")
    assert refused.status_code == 429
    assert refused.json() == {
        "error": {
            "code": "0x80072322",
            "message": "Number of requests exceeded the limit of 5 over time window of 300 seconds.",
        }
    }
    # every request was made at the same (frozen) instant: the window frees them all 300 s later
    assert refused.headers["Retry-After"] == "300"


def test_advancing_the_clock_frees_the_window(frozen, dv) -> None:  # type: ignore[no-untyped-def]
    """api-limits.md: the window slides; requests leaving it free the budget."""
    limits(dv, max_requests=2, window_s=60)
    for _ in range(3):
        assert dv.get("WhoAmI").status_code == 200
    assert dv.get("WhoAmI").headers["Retry-After"] == "60"
    dv.post("/_emulator/clock", json={"advance": 45})
    still = dv.get("WhoAmI")
    assert still.status_code == 429
    assert still.headers["Retry-After"] == "15"  # counts down with the clock
    dv.post("/_emulator/clock", json={"advance": 15})
    assert dv.get("WhoAmI").status_code == 200


def test_refused_requests_do_not_extend_the_wait(frozen, dv) -> None:  # type: ignore[no-untyped-def]
    """api-limits.md: a 429 is not an admitted request, so it does not use up the window; the page's longer
    waits for clients that keep sending are off by default (escalation_s, README known differences)."""
    limits(dv, max_requests=1, window_s=30)
    dv.get("WhoAmI")
    dv.get("WhoAmI")
    waits = {dv.get("WhoAmI").headers["Retry-After"] for _ in range(10)}
    assert waits == {"30"}
    stats = dv.get("/_emulator/stats").json()
    assert stats["throttled"] == 10
    assert stats["limits"]["admitted"] == 2


def test_a_batch_is_one_request(frozen, dv) -> None:  # type: ignore[no-untyped-def]
    """api-limits.md, execute-batch-operations-using-web-api.md: a $batch counts as one request."""
    limits(dv, max_requests=2)
    content_type, body = batch_of_gets(25)
    r = dv.post("$batch", data=body, headers={"Content-Type": content_type})
    assert r.status_code == 200, r.text
    assert r.text.count("HTTP/1.1 200") == 25
    assert r.headers[BURST] == "1"  # 25 inner operations, one request
    assert dv.get("WhoAmI").status_code == 200
    assert dv.get("WhoAmI").status_code == 200  # 3 > 2: exceeded now
    assert dv.get("WhoAmI").status_code == 429
    stats = dv.get("/_emulator/stats").json()
    assert stats["inner_operations"]["batch"] == 25


def test_bulk_call_is_one_request_but_accrues_execution_time_per_record(frozen, dv) -> None:  # type: ignore[no-untyped-def]
    # simulated server time: 5 ms per request + 2 ms per record (SimulationConfig defaults)
    """api-limits.md, bulk-operations.md: one request; 0x80072321 on execution time."""
    limits(dv, max_execution_ms=40)
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": f"Bulk {i}"} for i in range(20)]
    r = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets})
    assert r.status_code == 200, r.text
    assert len(r.json()["Ids"]) == 20
    refused = dv.get("WhoAmI")  # 5 + 20 * 2 = 45 ms > 40 ms: exceeded
    assert refused.status_code == 429
    assert refused.json()["error"] == {
        "code": "0x80072321",
        "message": "Combined execution time of incoming requests exceeded limit of 40 milliseconds over time "
        "window of 300 seconds. Decrease number of concurrent requests or reduce the duration of requests "
        "and try again later.",
    }
    assert refused.headers["Retry-After"] == "300"
    usage = frozen.limits.stats()
    assert usage["admitted"] == 1
    assert usage["throttled_execution_time"] == 1


def test_headers_report_the_remaining_budget(frozen, dv) -> None:  # type: ignore[no-untyped-def]
    """api-limits.md: x-ms-ratelimit-burst/time-remaining-xrm-requests and x-ms-dop-hint headers."""
    limits(dv, dop_hint=8)
    first = dv.get("WhoAmI")
    assert first.headers[BURST] == "5999"
    assert first.headers[TIME_LEFT] == "1,200.00"  # nothing has accrued before this response
    assert first.headers[DOP] == "8"
    second = dv.get("WhoAmI")
    assert second.headers[BURST] == "5998"
    assert second.headers[TIME_LEFT] == "1,199.99"  # the first request's 5 + 2 ms
    assert "Retry-After" not in second.headers


def test_concurrency_over_the_limit_is_refused_at_once(dataverse, dv) -> None:  # type: ignore[no-untyped-def]
    """api-limits.md: the concurrency limit trips at once (0x80072326)."""
    limits(dv, max_concurrent=2)
    sessions = []
    for _ in range(6):
        session = trusting_session()
        session.headers.update(dv.headers)
        assert session.get(dataverse.api_url + "WhoAmI").status_code == 200  # TLS set up before the race
        sessions.append(session)
    dv.post("/_emulator/latency", json={"latency_ms": 800})
    barrier = threading.Barrier(len(sessions))
    results: list[tuple[int, dict[str, Any]]] = []  # in the order the answers arrived
    lock = threading.Lock()

    def call(session: requests.Session) -> None:
        barrier.wait()
        r = session.get(dataverse.api_url + "WhoAmI")
        with lock:
            results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=call, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    statuses = [status for status, _ in results]
    # refused at once: every 429 arrives while the two admitted requests still sit in their 800 ms
    assert statuses == [429, 429, 429, 429, 200, 200]
    for _, body in results[:4]:
        assert body["error"] == {
            "code": "0x80072326",
            "message": "Number of concurrent requests exceeded the limit of 2.",
        }
    for session in sessions:
        session.close()
    # once the slow ones are done, the same client gets through again
    assert dv.get("WhoAmI").status_code == 200


def test_impersonation_does_not_escape_the_callers_limit(frozen, dv) -> None:  # type: ignore[no-untyped-def]
    """api-limits.md: limits are per user; impersonation counts against the caller."""
    other = frozen.add_user(firstname="Ima", lastname="Personated")
    limits(dv, max_requests=2)
    for _ in range(3):
        assert dv.get("WhoAmI", headers={"MSCRMCallerID": other}).status_code == 200
    # limits are per authenticated user: the real caller is throttled whoever it acts as
    assert dv.get("WhoAmI", headers={"MSCRMCallerID": other}).status_code == 429
    assert dv.get("WhoAmI").status_code == 429


def test_each_user_has_an_independent_limit(frozen, dv) -> None:  # type: ignore[no-untyped-def]
    """api-limits.md: limits are evaluated per user."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk["kid"] = f"throttling-{uuid.uuid4()}"
    frozen.add_signing_key(jwk)
    object_id = str(uuid.uuid4())
    frozen.add_user(object_id=object_id, firstname="Second", lastname="Caller")
    now = frozen.clock.now()
    token = jwt.encode(
        {"aud": frozen.audience, "oid": object_id, "iat": int(now), "exp": int(now) + 3600},
        key,
        algorithm="RS256",
        headers={"kid": jwk["kid"]},
    )
    limits(dv, max_requests=1)
    dv.get("WhoAmI")
    dv.get("WhoAmI")
    assert dv.get("WhoAmI").status_code == 429
    second = dv.get("WhoAmI", headers={"Authorization": f"Bearer {token}"})
    assert second.status_code == 200, second.text
    assert second.headers[BURST] == "0"  # its own window: 1 allowed, 1 used


def test_limits_can_be_switched_off(frozen, dv) -> None:  # type: ignore[no-untyped-def]
    """api-limits.md (scaled for tests): the emulator's limits can be disabled."""
    limits(dv, max_requests=1, enabled=False)
    assert all(dv.get("WhoAmI").status_code == 200 for _ in range(5))
