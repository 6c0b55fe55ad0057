"""What a webhook URL chosen by a customer can make the app do: nothing beyond one bounded POST to a
public address. Redirects are not followed, a name resolving to a private or loopback address is refused
before anything is sent, a receiver that does not answer in time is a failed attempt, not a hung worker."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import urllib3

from core.adapters.webhook_http import WebhookSender

pytestmark = pytest.mark.integration


class Server:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.hosts: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.hits.append(self.path)
                server.hosts.append(self.headers.get("Host", ""))
                if self.path == "/slow":
                    server.release.wait(10)
                if self.path == "/redirect":
                    self.send_response(307)
                    self.send_header("Location", "/internal")
                else:
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture()
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.release.set()
    s.httpd.shutdown()
    s.httpd.server_close()


def test_a_2xx_delivers(server: Server) -> None:
    answer = WebhookSender(allow_local=True).post(server.base + "/ok", b"{}", {})
    assert answer.delivered and answer.status_code == 204


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(server: Server) -> None:
    answer = WebhookSender(allow_local=True).post(server.base + "/redirect", b"{}", {})
    assert not answer.delivered and answer.status_code == 307 and answer.error == "redirect not followed"
    assert server.hits == ["/redirect"]


def test_a_name_resolving_to_a_private_address_is_refused_before_sending(server: Server) -> None:
    for address in ("127.0.0.1", "10.0.0.7", "169.254.169.254"):
        sender = WebhookSender(resolver=lambda _host, _port, a=address: [a])
        answer = sender.post("https://hooks.example.com/x", b"{}", {})
        assert answer.status_code is None and answer.error == "host resolves to a private or loopback address"
    # Without the local-development setting even 127.0.0.1 itself is refused.
    answer = WebhookSender(allow_local=False).post(server.base + "/ok", b"{}", {})
    assert answer.error == "host resolves to a private or loopback address"
    assert server.hits == []


def test_a_receiver_that_does_not_answer_in_time_is_a_timeout(server: Server) -> None:
    answer = WebhookSender(allow_local=True, timeout_s=0.5).post(server.base + "/slow", b"{}", {})
    assert answer.status_code is None and answer.error == "timeout"


def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    # A name that answers a public address to the check and loopback to any later resolution (DNS
    # rebinding, TTL 0): the sender connects to the address it checked, and never resolves the name again.
    connected: list[tuple[str, int]] = []

    def no_second_resolution(host: str, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{host} resolved a second time")

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        connected.append(address)
        raise OSError("no route in this test")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    sender = WebhookSender(timeout_s=1, resolver=lambda _host, _port: ["93.184.216.34"])
    monkeypatch.setattr(socket, "getaddrinfo", no_second_resolution)
    answer = sender.post("https://hooks.example.com/x?k=1", b"{}", {})
    assert connected == [("93.184.216.34", 443)]
    assert answer.status_code is None and answer.error == "connection failed"


def test_the_receiver_sees_its_own_host_and_a_refused_connection_is_reported(server: Server) -> None:
    port = server.base.rsplit(":", 1)[1]
    assert WebhookSender(allow_local=True).post(server.base + "/ok?x=1", b"{}", {}).delivered
    assert server.hits == ["/ok?x=1"] and server.hosts == [f"127.0.0.1:{port}"]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    free = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    answer = WebhookSender(allow_local=True).post(f"http://127.0.0.1:{free}/x", b"{}", {})
    assert answer.status_code is None and answer.error == "connection failed"
