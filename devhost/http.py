"""The HTTP side of the devhost: a threaded HTTP/1.1 server that routes to HTTP-triggered functions.

Each request becomes a ``func.HttpRequest`` (method, url, headers, params, route_params, body) and the
function's ``func.HttpResponse`` is written back as is (status, every header including repeated ones,
body). One log line per request on stderr: method, path (never the query string), status, milliseconds.
Headers and bodies are never logged: they carry tokens.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from devhost import dev_signin
from devhost.index import HttpFunction
from devhost.invoke import Invoker

log = logging.getLogger("devhost")

MAX_BODY_BYTES = 100 * 1024 * 1024  # the Functions host's default maxRequestBodySize
IDLE_KEEPALIVE_SECONDS = 30.0


class BodyTooLarge(Exception):
    pass


def problem(status: int, title: str, detail: str | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    doc: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        doc["detail"] = detail
    return status, [("Content-Type", "application/problem+json")], json.dumps(doc).encode()


class FunctionsHttpServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(
        self,
        port: int,
        functions: list[HttpFunction],
        route_prefix: str,
        invoker: Invoker,
        max_body_bytes: int = MAX_BODY_BYTES,
        cors_origins: tuple[str, ...] = (),
    ) -> None:
        self.functions = functions
        self.cors_origins = {o.lower() for o in cors_origins}
        self.route_prefix = route_prefix.strip("/")
        self.invoker = invoker
        self.max_body_bytes = max_body_bytes
        self.stopping = threading.Event()
        self._connections: dict[socket.socket, bool] = {}  # socket -> busy
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), DevHostRequestHandler)

    # Connection bookkeeping, so a graceful stop can close idle keep-alive connections at once
    # while letting busy ones finish their request.
    def track(self, conn: socket.socket, busy: bool) -> None:
        with self._connections_lock:
            self._connections[conn] = busy

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.pop(conn, None)

    def close_idle_connections(self) -> None:
        with self._connections_lock:
            idle = [conn for conn, busy in self._connections.items() if not busy]
        for conn in idle:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def graceful_stop(self) -> None:
        """Stop accepting, close idle connections, wait for in-flight requests, release the port."""
        self.stopping.set()
        self.shutdown()
        self.close_idle_connections()
        self.server_close()  # joins the request threads (block_on_close)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A broken connection is the client's business: one line, no traceback, no request data."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.info("connection closed by the client (%s)", type(error).__name__)
        else:
            log.exception("unexpected error serving a request")

    def cors_origin(self, origin: str | None) -> str | None:
        """The request's Origin when the host's CORS list allows it (``*``: any), else ``None``."""
        if not origin or not self.cors_origins:
            return None
        return origin if "*" in self.cors_origins or origin.lower() in self.cors_origins else None

    def resolve(self, method: str, path: str) -> tuple[HttpFunction, dict[str, str]] | tuple[None, list[str]]:
        """The function for (method, path), or (None, allowed methods) — empty list for unknown paths."""
        prefix = f"/{self.route_prefix}" if self.route_prefix else ""
        if prefix:
            if path.lower() != prefix.lower() and not path.lower().startswith(prefix.lower() + "/"):
                return None, []
            path = path[len(prefix) :]
        allowed: list[str] = []
        for function in self.functions:
            found = function.route.match(path)
            if found is None:
                continue
            if method in function.methods:
                return function, found.params
            allowed.extend(m for m in function.methods if m not in allowed)
        return None, allowed


class DevHostRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devhost"
    sys_version = ""
    timeout = IDLE_KEEPALIVE_SECONDS
    disable_nagle_algorithm = True  # see _write
    server: FunctionsHttpServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, busy=False)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        # The stdlib access log prints the request line (with the query string): replaced by _log.
        return

    def handle_expect_100(self) -> bool:
        """No "100 Continue" for a body that will be refused: the 413 comes without reading it."""
        length = self.headers.get("Content-Length") or ""
        if length.isdigit() and int(length) > self.server.max_body_bytes:
            return True
        return super().handle_expect_100()

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        self.server.track(self.connection, busy=True)
        try:
            if len(self.raw_requestline) > 65536:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.parse_request():
                return
            self._dispatch()
            self.wfile.flush()
        finally:
            if self.server.stopping.is_set():
                self.close_connection = True
            self.server.track(self.connection, busy=False)

    def _read_body(self) -> bytes:
        limit = self.server.max_body_bytes
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > limit:
                    raise BodyTooLarge
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return b""
        length = int(length_header)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > limit:
            raise BodyTooLarge
        return self.rfile.read(length)

    def _dispatch(self) -> None:
        started = time.perf_counter()
        method = self.command.upper()
        self._cors: str | None = None
        split = urlsplit(self.path)
        path = split.path or "/"
        status: int
        headers: list[tuple[str, str]]
        body: bytes
        if path.rstrip("/") == "/admin/host/status" and method in {"GET", "HEAD"}:
            status, headers, body = 200, [("Content-Type", "application/json")], b'{"state":"Running"}'
            self._write(method, status, headers, body)
            return
        # CORS as the Functions host does it (platform CORS on Azure, Host.CORS locally): an allowed origin's
        # preflight is answered before any function, and every answer to that origin says it may read it.
        self._cors = self.server.cors_origin(self.headers.get("Origin"))
        if method == "OPTIONS" and self.headers.get("Access-Control-Request-Method") and self._cors:
            preflight = [
                ("Access-Control-Allow-Methods", self.headers.get("Access-Control-Request-Method") or "GET"),
                ("Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers") or ""),
                ("Access-Control-Max-Age", "600"),
            ]
            self._drain_small_body()
            self._write(method, 204, preflight, b"")
            self._log(method, path, 204, started)
            return
        if path.startswith(dev_signin.PREFIX) and self._dev_signin(method, path, split.query, started):
            return
        # As in ASP.NET Core routing, HEAD is served only by functions that list it (no implicit GET).
        function, found = self.server.resolve(method, path)
        if function is None:
            assert isinstance(found, list)
            if found:
                status, headers, body = problem(405, "Method Not Allowed", f"{method} is not allowed here")
                headers.append(("Allow", ", ".join(found)))
            else:
                status, headers, body = problem(404, "Not Found", "no function serves this path")
            self._drain_small_body()
            self._write(method, status, headers, body)
            self._log(method, path, status, started)
            return
        assert isinstance(found, dict)
        try:
            request_body = self._read_body()
        except BodyTooLarge:
            self.close_connection = True  # the rest of the body is not read: the connection is unusable
            status, headers, body = problem(
                413, "Payload Too Large", f"request bodies are limited to {self.server.max_body_bytes} bytes"
            )
            self._write(method, status, headers, body)
            self._log(method, path, status, started)
            return
        except ValueError:
            self.close_connection = True
            status, headers, body = problem(400, "Bad Request", "malformed Content-Length or chunked body")
            self._write(method, status, headers, body)
            self._log(method, path, status, started)
            return
        request = func.HttpRequest(
            method=method,
            url=f"http://{self.headers.get('Host') or '127.0.0.1'}{self.path}",
            headers=self._request_headers(),
            params=self._params(split.query),
            route_params=found,
            body=request_body,
        )
        try:
            result = self.server.invoker.invoke(function, request)
            status, headers, body = self._from_response(function, result)
        except Exception:
            log.exception("function %s failed", function.name)
            status, headers, body = problem(500, "Internal Server Error")
        self._write(method, status, headers, body)
        self._log(method, path, status, started)

    def _dev_signin(self, method: str, path: str, query: str, started: float) -> bool:
        """The development sign-in (devhost/dev_signin.py) when it answers this request."""
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit() or int(length) > dev_signin.MAX_BODY:
            return False
        body = self.rfile.read(int(length)) if int(length) else b""
        answer = dev_signin.handle(os.environ, method, path, self._params(query), body)
        if answer is None:
            status, headers, payload = problem(404, "Not Found", "no function serves this path")
        else:
            status, headers, payload = answer
        self._write(method, status, headers, payload)
        self._log(method, path, status, started)
        return True

    def _drain_small_body(self) -> None:
        """Consume a small unread body so keep-alive stays usable; close the connection otherwise."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower() or not 0 <= length <= 65536:
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    def _request_headers(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return merged

    @staticmethod
    def _params(query: str) -> dict[str, str]:
        params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(name, value)
        return params

    @staticmethod
    def _from_response(function: HttpFunction, result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        if result is None:
            return 204, [], b""
        if not isinstance(result, func.HttpResponse):
            raise TypeError(
                f"function {function.name} returned {type(result).__name__}, not func.HttpResponse"
            )
        headers = [(str(k), str(v)) for k, v in result.headers.items()]
        body = result.get_body() or b""
        if not any(k.lower() == "content-type" for k, _ in headers) and (body or result.mimetype):
            content_type = result.mimetype or "text/plain"
            if result.charset:
                content_type += f"; charset={result.charset}"
            headers.append(("Content-Type", content_type))
        return int(result.status_code), headers, body

    def _write(self, method: str, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        if any(c in f"{name}{value}" for name, value in headers for c in "\r\n"):
            log.error("a response header holds a line break: answering 500 instead")
            status, headers, body = problem(500, "Internal Server Error")
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        lines = [f"{self.protocol_version} {status} {phrase}", f"Date: {self.date_time_string()}"]
        lines += [
            f"{name}: {value}"
            for name, value in headers
            if name.lower() not in {"content-length", "transfer-encoding", "connection", "date"}
        ]
        origin = getattr(self, "_cors", None)  # set per request by _dispatch
        if origin:
            lines += [
                f"Access-Control-Allow-Origin: {origin}",
                "Access-Control-Expose-Headers: ETag, Location, Retry-After, X-Correlation-Id",
                "Vary: Origin",
            ]
        lines.append(f"Content-Length: {len(body)}")
        if self.close_connection or self.server.stopping.is_set():
            lines.append("Connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        # Status line, headers and body in one write: with small separate writes, Nagle's algorithm and
        # delayed ACKs add about 40 ms to every keep-alive request.
        send_body = method != "HEAD" and status not in (204, 304)
        self.wfile.write(head + body if send_body else head)

    def _log(self, method: str, path: str, status: int, started: float) -> None:
        log.info("%s %s %d %.1fms", method, path, status, (time.perf_counter() - started) * 1000)
