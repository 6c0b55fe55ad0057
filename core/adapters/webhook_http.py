"""Sends one signed webhook request, with the care a URL chosen by a customer needs (SSRF).

- The host is resolved first and every address it resolves to must be public (``is_public_address``: no
  private, loopback, link-local -- e.g. the 169.254.169.254 metadata endpoint -- or reserved range);
  ``127.0.0.1`` only when local development allows it. The connection is then made to the address that
  was checked, never to a second resolution (a name answering a public address to the check and an
  internal one to the connection -- DNS rebinding -- reaches nothing); HTTPS checks the certificate
  against the name (SNI and hostname check on the name, ``Host`` header the URL's).
- Redirects are not followed (a 3xx is a failed attempt): a public receiver cannot bounce the request to
  an internal address.
- Bounded time: connect and read timeouts; the answer's body is never read (only its status code), so a
  receiver cannot make us download anything.
- No proxy or credentials from the environment: urllib3 connects directly, with the CA bundle requests
  ships (certifi).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, SSLError, TimeoutError

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
        resolver: Resolver = resolve,
    ) -> None:
        self._timeout = urllib3.Timeout(connect=min(5.0, timeout_s), read=timeout_s)
        self._allow_local = allow_local
        self._resolve = resolver

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> WebhookAnswer:
        parts = urlsplit(url)
        host = parts.hostname or ""
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        if self._allow_local and host == LOCAL_HOST:
            address = host
        else:
            try:
                addresses = self._resolve(host, port)
            except OSError:
                return WebhookAnswer(None, "host name does not resolve")
            if not addresses or not all(is_public_address(a) for a in addresses):
                return WebhookAnswer(None, "host resolves to a private or loopback address")
            address = addresses[0]
        pool: urllib3.HTTPConnectionPool
        if https:
            pool = urllib3.HTTPSConnectionPool(
                address,
                port,
                timeout=self._timeout,
                retries=False,
                server_hostname=host,
                assert_hostname=host,
                cert_reqs="CERT_REQUIRED",
                ca_certs=DEFAULT_CA_BUNDLE_PATH,
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=self._timeout, retries=False)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc = f"[{host}]" if ":" in host else host
        sent = {**headers, "Host": netloc if parts.port is None else f"{netloc}:{parts.port}"}
        try:
            response = pool.urlopen(
                "POST", target, body=body, headers=sent, redirect=False, preload_content=False
            )
            status = response.status
            response.release_conn()  # the status line only; the body is never read
        except SSLError:
            return WebhookAnswer(None, "TLS error")
        except (NewConnectionError, ProtocolError):  # before TimeoutError: urllib3 makes it a subclass
            return WebhookAnswer(None, "connection failed")
        except TimeoutError:
            return WebhookAnswer(None, "timeout")
        except HTTPError:
            return WebhookAnswer(None, "request failed")
        finally:
            pool.close()
        if 300 <= status < 400:
            return WebhookAnswer(status, "redirect not followed")
        if 200 <= status < 300:
            return WebhookAnswer(status, None)
        return WebhookAnswer(status, f"HTTP {status}")
