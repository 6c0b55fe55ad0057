"""Caller-token verification and the HTTP auth wrapper: what a caller with a bad token sees."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import azure.functions as func
import jwt
import jwt.algorithms
import pytest
from jwt.utils import force_bytes

from core.adapters.identity.auth import (
    LEEWAY_SECONDS,
    MAX_TOKEN_LENGTH,
    AuthConfigurationError,
    AuthError,
    TokenVerifier,
)
from core.domain.caller import Caller, Role
from core.entrypoints.http_support import authenticated, json_response
from core.settings import load_settings
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


def _hs256_signed_with(secret: bytes, claims: dict[str, Any]) -> str:
    header, payload = _b64({"alg": "HS256", "typ": "JWT"}), _b64(claims)
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _without_pyjwt_pem_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyJWT >= 1.5.1 refuses a PEM key as an HMAC secret itself (CVE-2017-11424); take that guard away
    so only the verifier's own key choice stands between a forged token and a caller."""
    monkeypatch.setattr(jwt.algorithms.HMACAlgorithm, "prepare_key", lambda self, key: force_bytes(key))


def test_rsa_public_key_used_as_hmac_secret_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    # Algorithm confusion: HS256 signed with the platform's public PEM. HS256 is allowed here (dev
    # secret set), so the only thing refusing it is that an HS256 token is checked against the dev
    # secret and never against the RSA key.
    _without_pyjwt_pem_guard(monkeypatch)
    forged = _hs256_signed_with(tokens.public_pem().encode(), tokens.claims())
    # the forgery is real: verified with the public key as HMAC secret, it passes
    assert jwt.decode(forged, key=tokens.public_pem(), algorithms=["HS256"], audience=tokens.AUDIENCE)
    with pytest.raises(AuthError, match="signature"):
        verifier(dev_hs256_secret=tokens.DEV_SECRET).verify(forged)
    with pytest.raises(AuthError, match="algorithm"):
        verifier().verify(forged)  # and without the dev setting HS256 is not accepted at all


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
        ({"exp": -120}, "expired"),
        ({"nbf": 600}, "not valid yet"),
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
    # exp/nbf are offsets from now, taken when the test runs: the suite can run for longer than the
    # 10 minutes a time read at collection would stay in the future
    now = int(time.time())
    claims = {k: now + v if k in ("exp", "nbf") and v is not None else v for k, v in overrides.items()}
    with pytest.raises(AuthError, match=reason):
        verifier().verify(tokens.rs256(tokens.claims(**claims)))


def _rs256_of_length(length: int) -> str:
    """A valid token exactly ``length`` characters long (padded through a claim and a header field)."""
    unpadded = len(tokens.rs256())
    start = max(0, (length - unpadded) * 3 // 4 - 24)  # base64url: 4 characters per 3 bytes
    for pad in range(start, start + 32):
        for header_pad in range(4):
            claims, header = tokens.claims(pad="x" * pad), {"x": "y" * header_pad}
            token = jwt.encode(claims, tokens.rsa_key(), algorithm="RS256", headers=header)
            if len(token) == length:
                return token
    raise AssertionError(f"no token of {length} characters")


def test_token_length_cap() -> None:
    # Bounded before any parsing: a longer token is refused unread, one at the cap is verified.
    assert verifier().verify(_rs256_of_length(MAX_TOKEN_LENGTH)).workspace_id == "ws-a"
    with pytest.raises(AuthError, match="too long"):
        verifier().verify(_rs256_of_length(MAX_TOKEN_LENGTH + 1))


def test_garbage_token() -> None:
    with pytest.raises(AuthError, match="well-formed"):
        verifier().verify("not-a-jwt")


def test_clock_skew_of_the_leeway_is_tolerated_and_no_more() -> None:
    now = int(time.time())
    assert (
        verifier().verify(tokens.rs256(tokens.claims(exp=now - LEEWAY_SECONDS // 2))).workspace_id == "ws-a"
    )
    with pytest.raises(AuthError, match="expired"):
        verifier().verify(tokens.rs256(tokens.claims(exp=now - LEEWAY_SECONDS - 30)))


def test_no_key_configured_is_a_configuration_error_naming_the_settings() -> None:
    with pytest.raises(AuthConfigurationError, match="PLATFORM_JWT_PUBLIC_KEY"):
        verifier(public_key=None).verify(tokens.rs256())


def test_verifier_from_settings_checks_issuer_audience_and_reads_an_escaped_pem() -> None:
    # App settings hold one line: the PEM may come with its newlines written as \n.
    env = {**tokens.auth_env(), "PLATFORM_JWT_PUBLIC_KEY": tokens.public_pem().replace("\n", "\\n")}
    assert "\n" not in env["PLATFORM_JWT_PUBLIC_KEY"]
    from_settings = TokenVerifier.from_settings(load_settings(env))
    assert from_settings.verify(tokens.rs256()).workspace_id == "ws-a"
    with pytest.raises(AuthError, match="issuer"):
        from_settings.verify(tokens.rs256(tokens.claims(iss="https://evil.example")))
    with pytest.raises(AuthError, match="audience"):
        from_settings.verify(tokens.rs256(tokens.claims(aud="someone-else")))
    with pytest.raises(AuthError, match="HS256"):  # the dev secret alone does not turn HS256 on
        TokenVerifier.from_settings(
            load_settings({**env, "PLATFORM_JWT_DEV_HS256_SECRET": tokens.DEV_SECRET})
        ).verify(tokens.hs256())


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
        assert resp.status_code == 401 and "'Bearer <token>'" in body_json(resp)["detail"]

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
