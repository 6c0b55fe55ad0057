"""Authentication (authenticate-oauth.md, webapi/compose-http-requests-handle-errors.md): bearer tokens,
RS256 JWTs checked against trusted signing keys and the environment URL as audience, the 401 challenge,
and the caller's systemuser from the token's ``oid`` (WhoAmI: webapi/reference/whoami.md)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session

pytestmark = pytest.mark.integration

TENANT = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def signing_key() -> tuple[Any, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "test-kid", "use": "sig", "alg": "RS256"})
    return key, jwk


@pytest.fixture(scope="module")
def emulator(signing_key) -> Iterator[DataverseEmulator]:  # type: ignore[no-untyped-def]
    emu = DataverseEmulator(tenant_id=TENANT)
    emu.add_signing_key(signing_key[1])
    emu.start()
    yield emu
    emu.stop()


def _token(
    key: Any,
    audience: str,
    oid: str,
    *,
    expires_in: float = 3600,
    now: float | None = None,
    kid: str = "test-kid",
) -> str:
    issued = now if now is not None else time.time()
    claims = {
        "aud": audience,
        "oid": oid,
        "tid": TENANT,
        "iat": int(issued),
        "nbf": int(issued),
        "exp": int(issued + expires_in),
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _get(emulator: DataverseEmulator, token: str | None, path: str = "WhoAmI"):  # type: ignore[no-untyped-def]
    session = trusting_session()
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return session.get(emulator.api_url + path, headers=headers)


def test_missing_or_unknown_token_gets_the_401_challenge(emulator) -> None:  # type: ignore[no-untyped-def]
    """authenticate-oauth.md: no or an unknown bearer token -> 401 with the WWW-Authenticate Bearer challenge
    naming authorization_uri."""
    for token in (None, "not-a-token"):
        r = _get(emulator, token)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == (
            f"Bearer authorization_uri=https://login.microsoftonline.com/{TENANT}/oauth2/authorize, "
            f"resource_id={emulator.url}"
        )
    assert _get(emulator, "static-test-token").status_code == 200
    version = _get(emulator, "static-test-token", "RetrieveVersion()").json()["Version"]
    assert version.startswith("9.2.")


def test_signed_token_maps_oid_to_the_systemuser(emulator, signing_key) -> None:  # type: ignore[no-untyped-def]
    """authenticate-oauth.md, webapi/reference/whoami.md: a token's oid is the caller's systemuser
    (azureactivedirectoryobjectid)."""
    oid = str(uuid.uuid4())
    user_id = emulator.add_user(object_id=oid, firstname="Jwt", lastname="Caller")
    r = _get(emulator, _token(signing_key[0], emulator.url, oid))
    assert r.status_code == 200, r.text
    assert r.json()["UserId"] == user_id
    created = trusting_session().post(
        emulator.api_url + "contacts",
        json={"lastname": "ByJwt"},
        headers={"Authorization": f"Bearer {_token(signing_key[0], emulator.url + '/', oid)}"},
    )
    assert created.status_code == 204
    row = _get(emulator, "static-test-token", created.headers["OData-EntityId"].split("/v9.2/")[1]).json()
    assert row["_createdby_value"] == user_id and row["_ownerid_value"] == user_id


def test_wrong_audience_bad_signature_and_unknown_key_are_401(emulator, signing_key) -> None:  # type: ignore[no-untyped-def]
    """authenticate-oauth.md: the token's audience is the environment URL; a token Entra did not sign is
    refused."""
    oid = str(uuid.uuid4())
    emulator.add_user(object_id=oid)
    assert _get(emulator, _token(signing_key[0], "https://other.crm.dynamics.com", oid)).status_code == 401
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _get(emulator, _token(stranger, emulator.url, oid)).status_code == 401
    assert _get(emulator, _token(stranger, emulator.url, oid, kid="other")).status_code == 401


def test_expiry_follows_the_emulator_clock(emulator, signing_key) -> None:  # type: ignore[no-untyped-def]
    """authenticate-oauth.md: an expired access token -> 401 (the client must get a new one)."""
    oid = str(uuid.uuid4())
    emulator.add_user(object_id=oid)
    token = _token(signing_key[0], emulator.url, oid, expires_in=600)
    assert _get(emulator, token).status_code == 200
    emulator.clock.advance(601)
    try:
        r = _get(emulator, token)
        assert r.status_code == 401 and "authorization_uri=" in r.headers["WWW-Authenticate"]
    finally:
        emulator.clock.set(time.time())


def test_users_outside_the_org_or_disabled_are_403(emulator, signing_key) -> None:  # type: ignore[no-untyped-def]
    """A valid token whose user is not in the environment -> 403 0x80072560 "The user is not a member of the
    organization.", as Microsoft's dual-write troubleshooting page quotes the service (dynamics365
    fin-ops-core/data-entities/dual-write/dual-write-troubleshooting-live-sync.md, "Live synchronization
    shows an error when you create a row"); a disabled user -> 403 (compose-http-requests-handle-errors.md
    #identify-status-codes lists the 403 kinds; the code and message for a disabled user are
    *unconfirmed*)."""
    r = _get(emulator, _token(signing_key[0], emulator.url, str(uuid.uuid4())))
    assert r.status_code == 403 and r.json()["error"]["code"] == "0x80072560"
    oid = str(uuid.uuid4())
    emulator.add_user(object_id=oid, disabled=True)
    assert _get(emulator, _token(signing_key[0], emulator.url, oid)).status_code == 403


def test_systemusers_are_queryable(emulator) -> None:  # type: ignore[no-untyped-def]
    """reference/entities/systemuser.md: domainname, internalemailaddress, isdisabled,
    azureactivedirectoryobjectid."""
    oid = str(uuid.uuid4())
    emulator.add_user(
        object_id=oid, firstname="Query", lastname="Able", domainname="query.able@contoso.onmicrosoft.com"
    )
    r = _get(
        emulator,
        "static-test-token",
        "systemusers?$select=fullname,domainname,internalemailaddress,isdisabled"
        f"&$filter=azureactivedirectoryobjectid eq {oid}",
    )
    rows = r.json()["value"]
    assert [(u["fullname"], u["domainname"], u["isdisabled"]) for u in rows] == [
        ("Query Able", "query.able@contoso.onmicrosoft.com", False)
    ]
