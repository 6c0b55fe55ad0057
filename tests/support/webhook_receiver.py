"""A webhook receiver on 127.0.0.1 for the alert tests: it verifies each request the way the README tells
receivers to (``X-Dynamics-Timestamp`` within 5 minutes, ``X-Dynamics-Signature: v1=<hex HMAC-SHA256 of
"<timestamp>.<body>">``), answers the scripted statuses (then 200) and remembers what it got."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_S = 300  # what the README tells receivers to accept


@dataclass
class Receiver:
    secret: str = ""
    statuses: list[int] = field(default_factory=list)
    got: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def verify(self, headers: Any, body: bytes) -> bool:
        timestamp = headers.get("X-Dynamics-Timestamp", "")
        signature = headers.get("X-Dynamics-Signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_S:
            return False
        expected = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature, f"v1={expected}")


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """A running receiver (``url`` set); stopped on exit."""
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                status = state.statuses.pop(0) if state.statuses else 200
                state.got.append(
                    {
                        "status": status,
                        "verified": state.verify(self.headers, body),
                        "id": self.headers.get("X-Dynamics-Event-Id"),
                        "body": json.loads(body),
                    }
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/dynamics"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
