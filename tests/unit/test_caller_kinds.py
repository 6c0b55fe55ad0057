"""Caller kinds from the verified token, and the development HS256 mode's guards.

A person's token (``PLATFORM_JWT_AUDIENCE``, ``role`` admin/member) and the platform service's token
(``PLATFORM_JWT_SERVICE_AUDIENCE``, no role) cannot pass for one another; HS256 is refused on Azure and
whenever a platform RS256 key is configured, whatever PLATFORM_JWT_ALLOW_DEV_HS256 says.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.adapters.identity.auth import TokenVerifier
from core.domain.caller import (
    EVERY_CALLER,
    SERVICE,
    AuthConfigurationError,
    AuthError,
    Caller,
    Forbidden,
    Role,
)
from core.entrypoints.job_queries import records_seen_by
from core.services.jobs.queries import JobRecords
from core.settings import load_settings
from tests.support import tokens


def _verifier(**env: str) -> TokenVerifier:
    return TokenVerifier.from_settings(load_settings({**tokens.auth_env(), **env}))


def test_the_service_token_is_the_service_and_people_tokens_are_people() -> None:
    v = _verifier()
    assert v.verify(tokens.rs256(role="service", workspace_id="ws-s")) == Caller(
        "ws-s", tokens.SERVICE_CLIENT_ID, Role.SERVICE
    )
    assert v.verify(tokens.rs256(role="member")).role is Role.MEMBER


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        # a person's token claiming to be the service
        ({"role": "service"}, "role must be admin or member"),
        # the service's audience with a person's role
        ({"role": "admin", "aud": tokens.SERVICE_AUDIENCE}, "must be service"),
        # both audiences at once: neither kind may be chosen by the token
        ({"aud": [tokens.AUDIENCE, tokens.SERVICE_AUDIENCE]}, "both"),
        ({"role": None, "aud": tokens.SERVICE_AUDIENCE, "workspace_id": None}, "workspace_id"),
    ],
)
def test_a_token_cannot_pass_for_another_kind(claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        payload = {k: v for k, v in {**tokens.claims(), **claims}.items() if v is not None}
        _verifier().verify(tokens.rs256(payload))


def test_without_a_service_audience_no_token_is_the_service() -> None:
    v = TokenVerifier(tokens.AUDIENCE, tokens.ISSUER, public_key=tokens.public_pem())
    with pytest.raises(AuthError, match="audience"):
        v.verify(tokens.rs256(role="service"))


def test_the_two_audiences_must_differ() -> None:
    with pytest.raises(Exception, match="must differ"):
        _verifier(PLATFORM_JWT_SERVICE_AUDIENCE=tokens.AUDIENCE)


DEV = {"PLATFORM_JWT_ALLOW_DEV_HS256": "true", "PLATFORM_JWT_DEV_HS256_SECRET": tokens.DEV_SECRET}


def test_hs256_works_in_local_development_only() -> None:
    local = TokenVerifier.from_settings(load_settings(tokens.auth_env(allow_dev_hs256=True)))
    assert local.verify(tokens.hs256(role="member")).role is Role.MEMBER


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"WEBSITE_INSTANCE_ID": "8f2b1c", "PLATFORM_JWT_PUBLIC_KEY": tokens.public_pem()}, "on Azure"),
        ({"WEBSITE_SITE_NAME": "func-dynamics-prod"}, "no caller-token key configured"),
        ({"PLATFORM_JWT_PUBLIC_KEY": tokens.public_pem()}, "RS256 key is configured"),
        ({"PLATFORM_JWT_JWKS_URL": "https://platform.example/jwks.json"}, "RS256 key is configured"),
    ],
)
def test_hs256_is_refused_on_azure_or_next_to_a_platform_key(env: dict[str, str], reason: str) -> None:
    settings = {**tokens.auth_env(allow_dev_hs256=True), **env}
    v = TokenVerifier.from_settings(load_settings(settings))
    # on Azure with the development secret only, nothing verifies at all (503), rather than HS256
    with pytest.raises((AuthError, AuthConfigurationError), match=reason):
        v.verify(tokens.hs256())


def test_only_the_service_may_act_for_someone_else() -> None:
    for role in (Role.ADMIN, Role.MEMBER):
        with pytest.raises(Forbidden, match="people act only as themselves"):
            Caller("ws", "u", role).require(SERVICE, "logging activities")
    Caller("ws", "svc", Role.SERVICE).require(SERVICE, "logging activities")
    Caller("ws", "u", Role.MEMBER).require(EVERY_CALLER, "reading a job")


def _page() -> JobRecords:
    change = {"emailaddress1": {"before": "ceo@victim.example", "after": "x@y.example"}}
    return JobRecords([{"platformId": "p-1", "changes": change}, {"platformId": "p-2"}], None)


def test_current_crm_values_are_for_admins_only() -> None:
    page = _page()
    assert records_seen_by(Caller("ws", "u", Role.ADMIN), _page()) == {
        "records": page.records,
        "nextCursor": None,
    }
    for role in (Role.MEMBER, Role.SERVICE):
        page = records_seen_by(Caller("ws", "u", role), _page())
        assert page["records"][0]["changes"] == {"emailaddress1": {"after": "x@y.example"}}
        assert "ceo@victim.example" not in repr(page)
