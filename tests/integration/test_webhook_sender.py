"""What a webhook URL chosen by a customer can make the app do: nothing beyond one bounded POST to a
public address. Redirects are not followed, a name resolving to a private or loopback address is refused
before anything is sent, a receiver that does not answer in time is a failed attempt, not a hung worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.adapters.webhook_http import WebhookSender

pytestmark = pytest.mark.integration


class Server:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.hits.append(self.path)
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
