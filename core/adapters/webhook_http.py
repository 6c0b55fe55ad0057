"""Sends one signed webhook request, with the care a URL chosen by a customer needs (SSRF).

- The host is resolved first and every address it resolves to must be public (``is_public_address``: no
  private, loopback, link-local -- e.g. the 169.254.169.254 metadata endpoint -- or reserved range);
  ``127.0.0.1`` only when local development allows it. HTTPS then checks the certificate against the name.
- Redirects are not followed (a 3xx is a failed attempt): a public receiver cannot bounce the request to
  an internal address.
- Bounded time: connect and read timeouts; the answer's body is never read (only its status code), so a
  receiver cannot make us download anything.
- No proxy or credentials from the environment (``trust_env`` off).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from core.domain.alerts import LOCAL_HOST, is_public_address

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


@dataclass(frozen=True)
class WebhookAnswer:
    status_code: int | None  # None: no HTTP answer
    error: str | None  # a short class of the failure; None on a 2xx

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        allow_local: bool = False,
        session: requests.Session | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self._timeout = (min(5.0, timeout_s), timeout_s)
        self._allow_local = allow_local
        self._session = session or requests.Session()
        self._session.trust_env = False
        self._resolve = resolver

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> WebhookAnswer:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not (self._allow_local and host == LOCAL_HOST):
            try:
                addresses = self._resolve(host, port)
            except OSError:
                return WebhookAnswer(None, "host name does not resolve")
            if not addresses or not all(is_public_address(a) for a in addresses):
                return WebhookAnswer(None, "host resolves to a private or loopback address")
        try:
            with self._session.post(
                url,
                data=body,
                headers=dict(headers),
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,  # the status line only; the body is never read
            ) as response:
                status = response.status_code
        except requests.exceptions.SSLError:
            return WebhookAnswer(None, "TLS error")
        except requests.exceptions.Timeout:
            return WebhookAnswer(None, "timeout")
        except requests.exceptions.ConnectionError:
            return WebhookAnswer(None, "connection failed")
        except requests.exceptions.RequestException:
            return WebhookAnswer(None, "request failed")
        if 300 <= status < 400:
            return WebhookAnswer(status, "redirect not followed")
        if 200 <= status < 300:
            return WebhookAnswer(status, None)
        return WebhookAnswer(status, f"HTTP {status}")
