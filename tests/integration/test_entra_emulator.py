"""The Entra ID stand-in speaks what real msal expects (and refuses what real Entra refuses)."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest

from emulators.entra import EntraEmulator
from emulators.tls import trusting_session
from tests.support.identity import REDIRECT_URI

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]
SCOPE = "https://contoso.crm.dynamics.com/.default"
REDIRECT = REDIRECT_URI  # registered with the stand-in by the entra fixture


def app_for(entra: EntraEmulator, secret: str | None = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        entra.client_id,
        client_credential=secret or entra.client_secret,
        authority=entra.authority,
        instance_discovery=False,
        http_client=trusting_session(),
        token_cache=msal.SerializableTokenCache(),
    )


def sign_in(entra: EntraEmulator, app: msal.ConfidentialClientApplication) -> tuple[dict, dict]:  # type: ignore[type-arg]
    flow = app.initiate_auth_code_flow([SCOPE], redirect_uri=REDIRECT)
    answer = trusting_session().get(flow["auth_uri"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    return flow, {k: v[-1] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def raw_refresh(entra: EntraEmulator, refresh_token: str):  # type: ignore[no-untyped-def]
    return trusting_session().post(
        f"{entra.authority}/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": entra.client_id,
            "client_secret": entra.client_secret,
            "scope": SCOPE,
        },
        timeout=10,
    )


def test_auth_code_flow_tokens_and_claims(entra: EntraEmulator) -> None:
    app = app_for(entra)
    flow, params = sign_in(entra, app)
    result = app.acquire_token_by_auth_code_flow(flow, params)
    assert "access_token" in result, result
    claims = jwt.decode(
        result["access_token"],
        jwt.PyJWK(entra.public_jwk()).key,
        algorithms=["RS256"],
        audience="https://contoso.crm.dynamics.com",
        issuer=entra.issuer,
    )
    assert claims["oid"] == entra.current_user.object_id
    assert claims["exp"] - claims["iat"] == entra.access_token_lifetime
    # msal sends the SHA-256 of its nonce and checks the id_token echoes it
    assert result["id_token_claims"]["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert result["id_token_claims"]["preferred_username"] == entra.current_user.email
    (account,) = app.get_accounts()
    assert account["home_account_id"] == f"{entra.current_user.object_id}.{entra.tenant_id}"
    jwks = trusting_session().get(f"{entra.authority}/discovery/v2.0/keys", timeout=10).json()
    assert jwks["keys"][0]["kid"] == jwt.get_unverified_header(result["access_token"])["kid"]


def test_codes_are_one_time_and_pkce_checked(entra: EntraEmulator) -> None:
    app = app_for(entra)
    flow, params = sign_in(entra, app)
    assert "access_token" in app.acquire_token_by_auth_code_flow(dict(flow), params)
    again = app_for(entra).acquire_token_by_auth_code_flow(dict(flow), params)
    assert again["error"] == "invalid_grant" and 54005 in again["error_codes"]
    flow, params = sign_in(entra, app)
    wrong = app.acquire_token_by_auth_code_flow({**flow, "code_verifier": "y" * 43}, params)
    assert wrong["error"] == "invalid_grant" and 501481 in wrong["error_codes"]


def test_client_secret_checked(entra: EntraEmulator) -> None:
    app = app_for(entra, secret="wrong")
    flow, params = sign_in(entra, app)
    result = app.acquire_token_by_auth_code_flow(flow, params)
    assert result["error"] == "invalid_client"


def test_refresh_rotates_and_old_token_stays_valid_as_entra_documents(entra: EntraEmulator) -> None:
    """Entra issues a new refresh token on every use and does not revoke the old one (refresh-tokens doc):
    a client that lost the rotated token (e.g. storing it failed) can still use the previous one."""
    app = app_for(entra)
    flow, params = sign_in(entra, app)
    first = app.acquire_token_by_auth_code_flow(flow, params)
    (account,) = app.get_accounts()
    second = app.acquire_token_silent_with_error([SCOPE], account, force_refresh=True)
    assert second["refresh_token"] != first["refresh_token"]
    again = raw_refresh(entra, first["refresh_token"])
    assert again.status_code == 200 and again.json()["refresh_token"] not in {
        first["refresh_token"],
        second["refresh_token"],
    }
    assert raw_refresh(entra, second["refresh_token"]).status_code == 200
    # each token's inactivity clock restarts when it is used; a token unused for too long dies alone
    entra.advance_clock(entra.refresh_token_inactivity - 60)
    assert raw_refresh(entra, first["refresh_token"]).status_code == 200
    entra.advance_clock(120)
    assert raw_refresh(entra, first["refresh_token"]).status_code == 200  # used 120 s ago
    dead = raw_refresh(entra, second["refresh_token"])  # unused since its one use, 90 days + 60 s ago
    assert dead.status_code == 400 and dead.json()["error_codes"] == [700082]


def test_strict_rotation_kills_a_used_refresh_token(entra: EntraEmulator) -> None:
    entra.revoke_used_refresh_tokens = True
    app = app_for(entra)
    flow, params = sign_in(entra, app)
    first = app.acquire_token_by_auth_code_flow(flow, params)
    (account,) = app.get_accounts()
    second = app.acquire_token_silent_with_error([SCOPE], account, force_refresh=True)
    replay = raw_refresh(entra, first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error_codes"] == [70000]
    assert raw_refresh(entra, second["refresh_token"]).status_code == 200


def test_inactivity_on_the_advanceable_clock(entra: EntraEmulator) -> None:
    app = app_for(entra)
    flow, params = sign_in(entra, app)
    app.acquire_token_by_auth_code_flow(flow, params)
    (account,) = app.get_accounts()
    entra.advance_clock(entra.refresh_token_inactivity + 60)
    result = app.acquire_token_silent_with_error([SCOPE], account, force_refresh=True)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [700082]


@pytest.mark.parametrize(
    ("kind", "error", "code"),
    [("revoked", "invalid_grant", 50173), ("interaction_required", "interaction_required", 50076)],
)
def test_scripted_grant_failures(entra: EntraEmulator, kind: str, error: str, code: int) -> None:
    app = app_for(entra)
    flow, params = sign_in(entra, app)
    app.acquire_token_by_auth_code_flow(flow, params)
    (account,) = app.get_accounts()
    entra.set_fault(kind, count=1)
    result = app.acquire_token_silent_with_error([SCOPE], account, force_refresh=True)
    assert result["error"] == error and result["error_codes"] == [code]


def test_server_error_and_slow_answers(entra: EntraEmulator) -> None:
    app = app_for(entra)
    flow, params = sign_in(entra, app)
    app.acquire_token_by_auth_code_flow(flow, params)
    (account,) = app.get_accounts()
    entra.set_fault("server_error", count=1, status=503)
    with pytest.raises(msal.exceptions.MsalServiceError):
        app.acquire_token_silent_with_error([SCOPE], account, force_refresh=True)
    entra.set_fault("slow", count=1, delay=0.6)
    started = time.monotonic()
    rt = next(iter(app.token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)))["secret"]
    answer = raw_refresh(entra, rt)
    assert time.monotonic() - started >= 0.6 and "access_token" in answer.json()


def test_control_api_over_http(entra: EntraEmulator) -> None:
    session = trusting_session()
    user = session.post(
        f"{entra.base_url}/_emulator/users", json={"email": "b@contoso.example"}, timeout=5
    ).json()
    assert entra.current_user.object_id == user["objectId"]
    assert (
        session.post(f"{entra.base_url}/_emulator/faults", json={"kind": "nope"}, timeout=5).status_code
        == 400
    )
    stats = session.get(f"{entra.base_url}/_emulator/stats", timeout=5).json()
    assert stats["refreshToken"] == 0 and stats["activeRefreshTokens"] == 0


def test_plain_pkce_and_registered_redirect_uris(entra: EntraEmulator) -> None:
    """Entra accepts a plain PKCE challenge (msal sends S256) and never redirects to an unregistered URI."""
    session = trusting_session()
    query = {
        "client_id": entra.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": f"openid offline_access {SCOPE}",
        "state": "s1",
        "code_challenge": "v" * 43,
        "code_challenge_method": "plain",
    }
    answer = session.get(f"{entra.authority}/oauth2/v2.0/authorize", params=query, allow_redirects=False)
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": entra.client_id,
        "client_secret": entra.client_secret,
    }
    token_url = f"{entra.authority}/oauth2/v2.0/token"
    assert session.post(token_url, data={**form, "code_verifier": "v" * 43}).status_code == 200
    answer = session.get(f"{entra.authority}/oauth2/v2.0/authorize", params=query, allow_redirects=False)
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    wrong = session.post(token_url, data={**form, "code": code, "code_verifier": "w" * 43})
    assert wrong.status_code == 400 and wrong.json()["error_codes"] == [501481]

    assert entra.redirect_uris == (REDIRECT,)
    other = {**query, "redirect_uri": "https://attacker.example/cb"}
    refused = session.get(f"{entra.authority}/oauth2/v2.0/authorize", params=other, allow_redirects=False)
    assert refused.status_code == 400 and "Location" not in refused.headers
    assert refused.json()["error_codes"] == [50011]
