"""RS256 caller tokens verified against a JWKS endpoint (a loopback HTTP server on a free port that
counts the fetches it answers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest

from core.adapters.identity.auth import AuthConfigurationError, AuthError, JwksKeys, TokenVerifier
from tests.support import tokens
from tests.support.azurite import free_port

pytestmark = pytest.mark.integration


def _jwk(kid: str, key_name: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(
        jwt.algorithms.RSAAlgorithm.to_jwk(tokens.rsa_key(key_name).public_key())
    )
    return jwk | {"kid": kid, "use": "sig", "alg": "RS256"}


class JwksServer:
    def __init__(self) -> None:
        self.keys = [_jwk("k1", "platform")]
        self.fetches = 0
        self.down = False


@pytest.fixture()
def jwks_server() -> Iterator[tuple[str, JwksServer]]:
    state = JwksServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            if state.down:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json", state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def jwks_url(jwks_server: tuple[str, JwksServer]) -> str:
    return jwks_server[0]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _verifier(url: str, clock: Clock | None = None) -> TokenVerifier:
    client = jwt.PyJWKClient(url, cache_keys=False, timeout=2)
    keys = JwksKeys(client, cooldown_s=60, max_age_s=3600, clock=clock or Clock())
    return TokenVerifier(tokens.AUDIENCE, tokens.ISSUER, jwks_client=client, jwks_keys=keys)


def _signed(kid: str | None, key_name: str = "platform", **claims: object) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(tokens.claims(**claims), tokens.rsa_key(key_name), algorithm="RS256", headers=headers)


def test_token_with_a_published_kid_verifies(jwks_url: str) -> None:
    token = jwt.encode(
        tokens.claims(workspace_id="ws-j"), tokens.rsa_key(), algorithm="RS256", headers={"kid": "k1"}
    )
    assert _verifier(jwks_url).verify(token).workspace_id == "ws-j"


def test_unknown_kid_or_foreign_key_is_401(jwks_url: str) -> None:
    v = _verifier(jwks_url)
    unknown = jwt.encode(tokens.claims(), tokens.rsa_key(), algorithm="RS256", headers={"kid": "k9"})
    with pytest.raises(AuthError, match="signing key"):
        v.verify(unknown)
    forged = jwt.encode(tokens.claims(), tokens.rsa_key("attacker"), algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(AuthError, match="signature"):
        v.verify(forged)


def test_unreachable_jwks_is_a_service_problem_not_a_caller_problem() -> None:
    v = _verifier(f"http://127.0.0.1:{free_port()}/jwks.json")
    token = jwt.encode(tokens.claims(), tokens.rsa_key(), algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(AuthConfigurationError):
        v.verify(token)


def test_a_flood_of_unknown_kids_costs_one_fetch_per_cooldown(jwks_server: tuple[str, JwksServer]) -> None:
    url, server = jwks_server
    clock = Clock()
    v = _verifier(url, clock)
    assert v.verify(_signed("k1")).user_id == "user-1"
    assert server.fetches == 1
    for i in range(1000):
        with pytest.raises(AuthError, match="signing key is unknown"):
            v.verify(_signed(f"bogus-{i}", key_name="attacker"))
    assert server.fetches == 1  # every bad kid answered from the keys already fetched (cached negatively)
    clock.now += 61
    for i in range(1000):
        with pytest.raises(AuthError):
            v.verify(_signed(f"bogus-again-{i}", key_name="attacker"))
    assert server.fetches == 2  # one more fetch once the cooldown elapsed, not one per token
    assert v.verify(_signed("k1")).user_id == "user-1"  # good tokens unaffected throughout
    assert server.fetches == 2


def test_a_rotated_key_is_picked_up_after_the_cooldown(jwks_server: tuple[str, JwksServer]) -> None:
    url, server = jwks_server
    clock = Clock()
    v = _verifier(url, clock)
    v.verify(_signed("k1"))
    server.keys = [_jwk("k1", "platform"), _jwk("k2", "rotated")]
    with pytest.raises(AuthError, match="unknown"):
        v.verify(_signed("k2", key_name="rotated"))
    clock.now += 61
    assert v.verify(_signed("k2", key_name="rotated")).user_id == "user-1"
    assert server.fetches == 2


def test_a_token_without_kid_is_refused_without_a_fetch(jwks_server: tuple[str, JwksServer]) -> None:
    url, server = jwks_server
    with pytest.raises(AuthError, match="kid"):
        _verifier(url).verify(_signed(None))
    assert server.fetches == 0


def test_bad_tokens_while_the_jwks_endpoint_is_down_are_401_not_503(
    jwks_server: tuple[str, JwksServer],
) -> None:
    url, server = jwks_server
    clock = Clock()
    v = _verifier(url, clock)
    v.verify(_signed("k1"))
    server.down = True
    clock.now += 61
    for i in range(200):
        with pytest.raises(AuthError):  # not AuthConfigurationError: the known keys still answer
            v.verify(_signed(f"bogus-{i}", key_name="attacker"))
    assert v.verify(_signed("k1")).user_id == "user-1"
    assert server.fetches == 2  # the failed fetch is not retried per token


def test_a_flood_while_no_key_could_ever_be_fetched_costs_one_fetch(
    jwks_server: tuple[str, JwksServer],
) -> None:
    url, server = jwks_server
    server.down = True
    clock = Clock()
    v = _verifier(url, clock)
    for i in range(1000):
        with pytest.raises(AuthConfigurationError):  # nothing can be verified yet: the app's problem
            v.verify(_signed(f"bogus-{i}", key_name="attacker"))
    assert server.fetches == 1  # retried after a short back-off, never once per token
    server.down = False
    clock.now += 6
    assert v.verify(_signed("k1")).user_id == "user-1"
    assert server.fetches == 2
