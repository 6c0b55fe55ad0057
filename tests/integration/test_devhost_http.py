"""The devhost serves HTTP triggers as the Functions host does: routes, params, methods, headers, bodies."""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.devhost import (  # noqa: F401 - fixtures
    DevHostFactory,
    RunningDevHost,
    devhost_factory_fixture,
    queue_name_fixture,
    sample_devhost_fixture,
    shared_devhost_factory_fixture,
    shared_sample_devhost_fixture,
)

pytestmark = pytest.mark.integration


def test_route_params_query_headers_and_status_reach_the_function(
    shared_sample_devhost: RunningDevHost,
) -> None:
    response = requests.get(
        f"{shared_sample_devhost.base_url}/api/echo/J%C3%BCrgen?x=1&x=2&status=201&empty=",
        headers={"X-Trace": "abc", "Accept-Language": "es"},
        timeout=5,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["method"] == "GET"
    assert body["route_params"] == {"name": "Jürgen"}
    assert body["params"] == {"x": "1", "status": "201", "empty": ""}
    assert body["url"].endswith("/api/echo/J%C3%BCrgen?x=1&x=2&status=201&empty=")
    assert body["headers"]["x-trace"] == "abc"
    assert body["headers"]["accept-language"] == "es"
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["X-Custom"] == "yes"
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]


def test_request_body_is_passed_through_byte_for_byte(shared_sample_devhost: RunningDevHost) -> None:
    payload = "¿Qué tal? 日本語 ✓".encode()
    response = requests.put(f"{shared_sample_devhost.base_url}/api/echo/x", data=payload, timeout=5)
    assert response.status_code == 200
    assert response.json()["body_length"] == len(payload)
    assert response.json()["body"] == payload.decode()


def test_route_templates_optional_constraints_literals_and_catch_all(
    shared_sample_devhost: RunningDevHost,
) -> None:
    base = f"{shared_sample_devhost.base_url}/api"
    guid = str(uuid.uuid4())
    assert requests.get(f"{base}/items", timeout=5).json() == {"route_params": {}}
    assert requests.get(f"{base}/items/{guid}", timeout=5).json() == {"route_params": {"id": guid}}
    # A literal segment wins over a parameter; a value that breaks the guid constraint matches nothing.
    assert requests.get(f"{base}/items/special", timeout=5).json() == {"special": True}
    assert requests.get(f"{base}/items/not-a-guid", timeout=5).status_code == 404
    assert requests.get(f"{base}/files/a/b/c.txt", timeout=5).json() == {"path": "a/b/c.txt"}
    assert requests.get(f"{base}/async/21", timeout=5).json() == {"n": 42}
    assert requests.get(f"{base}/async/x", timeout=5).status_code == 404


def test_unknown_routes_are_404_and_wrong_methods_405_as_problem_json(
    shared_sample_devhost: RunningDevHost,
) -> None:
    missing = requests.get(f"{shared_sample_devhost.base_url}/api/nope", timeout=5)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert missing.json()["status"] == 404
    assert requests.get(f"{shared_sample_devhost.base_url}/echo/x", timeout=5).status_code == 404  # no prefix
    wrong = requests.delete(f"{shared_sample_devhost.base_url}/api/echo/x", timeout=5)
    assert wrong.status_code == 405
    assert wrong.headers["Content-Type"] == "application/problem+json"
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "POST", "PUT"}


def test_a_failing_function_is_a_500_that_leaks_nothing(shared_sample_devhost: RunningDevHost) -> None:
    response = requests.get(f"{shared_sample_devhost.base_url}/api/boom", timeout=5)
    assert response.status_code == 500
    assert "must not leak" not in response.text
    assert response.json()["title"] == "Internal Server Error"


def test_requests_are_served_concurrently(shared_sample_devhost: RunningDevHost) -> None:
    # Each request waits inside the function until all eight are there at once.
    url = f"{shared_sample_devhost.base_url}/api/meet/{uuid.uuid4().hex}?n=8"
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: requests.get(url, timeout=30).status_code, range(8)))
    assert statuses == [200] * 8, "the eight requests were never in the function together"


def test_oversized_body_is_refused_before_it_is_read(shared_sample_devhost: RunningDevHost) -> None:
    port = int(shared_sample_devhost.base_url.rsplit(":", 1)[1])
    for expect in (b"", b"Expect: 100-continue\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            # Announce 200 MB but send nothing: the answer must come without waiting for the body
            # (and with Expect: 100-continue, without inviting the client to send it).
            sock.sendall(
                b"POST /api/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 209715200\r\n" + expect + b"\r\n"
            )
            answer = sock.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 413"), answer[:100]
        assert "application/problem+json" in answer


def test_access_log_has_one_line_per_request_and_no_secrets(shared_sample_devhost: RunningDevHost) -> None:
    secret = "eyJhbGciOiJIUzI1NiJ9.super-secret-token"
    requests.get(
        f"{shared_sample_devhost.base_url}/api/echo/x?code=oauth-code-123",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=5,
    )
    requests.delete(f"{shared_sample_devhost.base_url}/api/echo/x", timeout=5)
    deadline = time.monotonic() + 5  # each line is written just after its response
    while "DELETE /api/echo/x 405" not in shared_sample_devhost.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = shared_sample_devhost.log()
    assert "GET /api/echo/x 200" in log
    assert "DELETE /api/echo/x 405" in log
    assert secret not in log
    assert "oauth-code-123" not in log


def test_settings_reach_the_app_through_the_environment(shared_devhost_factory: DevHostFactory) -> None:
    host = shared_devhost_factory(settings={"SAMPLE_QUEUE": "unused", "MY_SETTING": "from-settings"})
    response = requests.get(f"{host.base_url}/api/settings/MY_SETTING", timeout=5)
    assert response.json() == {"value": "from-settings"}


def test_sigterm_finishes_in_flight_requests_and_exits_zero(sample_devhost: RunningDevHost) -> None:
    results: list[int] = []

    def call() -> None:
        results.append(requests.get(f"{sample_devhost.base_url}/api/slow?ms=1000", timeout=10).status_code)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 10
    while not sample_devhost.records("http") and time.monotonic() < deadline:  # the request is in flight
        time.sleep(0.02)
    assert sample_devhost.records("http"), "the request never reached the function"
    process = sample_devhost.process.process
    assert process is not None
    process.send_signal(signal.SIGTERM)
    worker.join(timeout=10)
    assert results == [200]
    assert process.wait(timeout=10) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sample_devhost.base_url}/api/echo/x", timeout=2)


def test_chunked_request_bodies_are_read(shared_sample_devhost: RunningDevHost) -> None:
    chunks = (part for part in [b"hello ", "wörld".encode(), b"!" * 10_000])
    response = requests.post(f"{shared_sample_devhost.base_url}/api/echo/x", data=chunks, timeout=5)
    assert response.status_code == 200
    assert response.json()["body_length"] == len(b"hello ") + len("wörld".encode()) + 10_000
