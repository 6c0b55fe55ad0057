"""RS256 caller tokens verified against a JWKS endpoint (a loopback HTTP server on a free port)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest

from core.adapters.identity.auth import AuthConfigurationError, AuthError, TokenVerifier
from tests.support import tokens
from tests.support.azurite import free_port

pytestmark = pytest.mark.integration


def _jwk(kid: str, key_name: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(
        jwt.algorithms.RSAAlgorithm.to_jwk(tokens.rsa_key(key_name).public_key())
    )
    return jwk | {"kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture()
def jwks_url() -> Iterator[str]:
    body = json.dumps({"keys": [_jwk("k1", "platform")]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
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
        yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def _verifier(url: str) -> TokenVerifier:
    return TokenVerifier(
        tokens.AUDIENCE, tokens.ISSUER, jwks_client=jwt.PyJWKClient(url, cache_keys=True, timeout=2)
    )


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
