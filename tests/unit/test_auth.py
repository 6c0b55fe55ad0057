"""Caller-token verification and the HTTP auth wrapper: what a caller with a bad token sees."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import azure.functions as func
import jwt
import pytest

from core.adapters.auth import AuthError, TokenVerifier
from core.domain.caller import Caller, Role
from core.entrypoints.http_support import authenticated, json_response
from tests.support import tokens
from tests.support.http import body_json, request


def verifier(**kw: Any) -> TokenVerifier:
    base: dict[str, Any] = {
        "audience": tokens.AUDIENCE,
        "issuer": tokens.ISSUER,
        "public_key": tokens.public_pem(),
    }
    base.update(kw)
    return TokenVerifier(**base)


def test_valid_rs256_token_yields_the_caller() -> None:
    caller = verifier().verify(tokens.rs256(workspace_id="ws-1", user_id="u-9", role="member"))
    assert caller == Caller("ws-1", "u-9", Role.MEMBER)
    assert not caller.is_admin


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_rejected() -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(tokens.claims())}."
    with pytest.raises(AuthError, match="algorithm"):
        verifier(dev_hs256_secret=tokens.DEV_SECRET).verify(token)


def test_rsa_public_key_used_as_hmac_secret_is_rejected() -> None:
    # Algorithm confusion: sign HS256 with the public PEM; a naive verifier would accept it.
    import hashlib
    import hmac

    header, payload = _b64({"alg": "HS256", "typ": "JWT"}), _b64(tokens.claims())
    mac = hmac.new(tokens.public_pem().encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(AuthError):
        verifier().verify(forged)


def test_hs256_only_when_dev_mode_allows_it() -> None:
    token = tokens.hs256()
    with pytest.raises(AuthError, match="HS256"):
        verifier().verify(token)
    assert verifier(dev_hs256_secret=tokens.DEV_SECRET).verify(token).workspace_id == "ws-a"
    with pytest.raises(AuthError, match="signature"):
        verifier(dev_hs256_secret="another-secret-entirely-0123456789").verify(token)


def test_token_signed_by_another_key_is_rejected() -> None:
    with pytest.raises(AuthError, match="signature"):
        verifier().verify(tokens.rs256(key_name="attacker"))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"exp": None}, "'exp'"),
        ({"aud": None}, "'aud'"),
        ({"sub": None}, "sub"),
        ({"workspace_id": None}, "workspace_id"),
        ({"workspace_id": "a/b#c"}, "workspace_id"),
        ({"role": "owner"}, "role"),
    ],
)
def test_invalid_claims_are_rejected_with_a_reason(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        verifier().verify(tokens.rs256(tokens.claims(**overrides)))


def test_garbage_token() -> None:
    with pytest.raises(AuthError):
        verifier().verify("not-a-jwt")


@authenticated(admin=True)
def admin_only(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return json_response({"workspace": caller.workspace_id})


@authenticated()
def anyone(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return json_response({"workspace": caller.workspace_id, "role": caller.role.value})


def test_wrapper_401_403_and_success(monkeypatch: pytest.MonkeyPatch) -> None:
    with tokens.configured(monkeypatch):
        resp = anyone(request("GET", "x"))
        assert resp.status_code == 401
        assert resp.mimetype == "application/problem+json"
        assert body_json(resp)["status"] == 401
        assert "Bearer" in resp.headers["WWW-Authenticate"]

        resp = anyone(request("GET", "x", headers={"Authorization": "Basic abc"}))
        assert resp.status_code == 401

        expired = tokens.rs256(tokens.claims(exp=int(time.time()) - 300))
        resp = anyone(request("GET", "x", headers={"Authorization": f"Bearer {expired}"}))
        assert resp.status_code == 401 and "expired" in body_json(resp)["detail"]
        assert expired not in resp.get_body().decode()

        resp = admin_only(request("GET", "x", headers=tokens.bearer(role="member")))
        assert resp.status_code == 403

        resp = anyone(request("GET", "x", headers=tokens.bearer("ws-b", role="member")))
        assert resp.status_code == 200 and body_json(resp) == {"workspace": "ws-b", "role": "member"}


def test_hs256_dev_tokens_accepted_only_with_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    hs = {"Authorization": f"Bearer {tokens.hs256()}"}
    with tokens.configured(monkeypatch):
        assert anyone(request("GET", "x", headers=hs)).status_code == 401
    with tokens.configured(monkeypatch, allow_dev_hs256=True):
        assert anyone(request("GET", "x", headers=hs)).status_code == 200
    with tokens.configured(monkeypatch, extra={"PLATFORM_JWT_DEV_HS256_SECRET": tokens.DEV_SECRET}):
        assert anyone(request("GET", "x", headers=hs)).status_code == 401  # secret alone is not enough


def test_wrapper_looks_like_a_plain_http_function_to_the_indexer() -> None:
    import inspect

    assert list(inspect.signature(admin_only).parameters) == ["req"]
    assert admin_only.__name__ == "admin_only"
    bp = func.Blueprint()
    bp.route(route="x", methods=["GET"])(admin_only)
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(bp)
    (fn,) = app.get_functions()
    assert [b.name for b in fn.get_bindings() if b.type == "httpTrigger"] == ["req"]


def test_pyjwt_would_never_accept_none_even_if_listed() -> None:
    # Guard against a library change: decode with an empty key and alg none must not verify.
    token = f"{_b64({'alg': 'none'})}.{_b64(tokens.claims())}."
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(token, key=tokens.public_pem(), algorithms=["RS256"], audience=tokens.AUDIENCE)
