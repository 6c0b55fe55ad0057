"""Real sockets on 127.0.0.1: how the client tells "never sent" from "maybe executed" network failures.

A refused connection never reached the server, so even a plain create is retried; a connection dropped
after the request was sent, or a read timeout, may have run it, so only idempotent requests are repeated.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator

import pytest

from core.adapters.dataverse import DataverseClient, TransientError
from core.domain.retry import RetryPolicy
from tests.support.azurite import free_port

GUID = "8d2f1a3e-5b6c-4d7e-9f80-112233445566"
POLICY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)


class DroppingServer:
    """Accepts connections, reads the request head, then closes (``drop``) or stays silent (``hang``)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data.split(b"\r\n", 1)[0])
                if self.mode == "hang":
                    self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=3)


@pytest.fixture()
def dropping() -> Iterator[DroppingServer]:
    server = DroppingServer("drop")
    yield server
    server.close()


@pytest.fixture()
def hanging() -> Iterator[DroppingServer]:
    server = DroppingServer("hang")
    yield server
    server.close()


def client_for(port: int, sleeps: list[float], read_timeout: float = 5.0) -> DataverseClient:
    return DataverseClient(
        f"http://127.0.0.1:{port}",
        lambda force: "tok",
        retry=POLICY,
        rng=random.Random(1),
        sleep=sleeps.append,
        timeout=(2.0, read_timeout),
    )


def test_refused_connection_is_retried_even_for_a_plain_create() -> None:
    sleeps: list[float] = []
    client = client_for(free_port(), sleeps)  # nothing listens there
    with pytest.raises(TransientError) as caught:
        client.create("contacts", {"lastname": "x"})
    assert caught.value.attempts == 3 and len(sleeps) == 2
    assert caught.value.status is None


def test_dropped_connection_repeats_reads_but_not_a_plain_create(dropping: DroppingServer) -> None:
    sleeps: list[float] = []
    client = client_for(dropping.port, sleeps)
    with pytest.raises(TransientError):
        client.get("contacts", GUID)
    assert len(dropping.requests) == 3
    dropping.requests.clear()
    with pytest.raises(TransientError):
        client.create("contacts", {"lastname": "x"})
    assert dropping.requests == [b"POST /api/data/v9.2/contacts HTTP/1.1"]
    dropping.requests.clear()
    with pytest.raises(TransientError):
        client.create("contacts", {"lastname": "x"}, record_id=GUID)
    assert len(dropping.requests) == 3  # a client-supplied id makes the create safe to repeat


def test_read_timeout_counts_as_maybe_executed(hanging: DroppingServer) -> None:
    sleeps: list[float] = []
    client = client_for(hanging.port, sleeps, read_timeout=0.2)
    with pytest.raises(TransientError, match="ReadTimeout"):
        client.create("contacts", {"lastname": "x"})
    assert len(hanging.requests) == 1
