"""Pure rules of the Dynamics connection: failure classification, environment URLs, due-ness, view."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from core.domain.connection import (
    DEFAULT_ALLOWED_HOSTS,
    ConnectionRecord,
    ConnectionStatus,
    InvalidEnvironmentUrl,
    RefreshPolicy,
    classify_token_error,
    normalize_environment_url,
    parse_host_patterns,
)

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
HOSTS = parse_host_patterns(DEFAULT_ALLOWED_HOSTS)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"error": "invalid_grant", "error_codes": [700082]}, "inactivity"),
        ({"error": "invalid_grant", "error_codes": [50173]}, "revoked"),
        ({"error": "invalid_grant", "error_codes": [70000]}, "revoked"),
        ({"error": "interaction_required", "error_codes": [50076]}, "consent_or_mfa_required"),
        ({"error": "invalid_grant", "error_codes": [50079]}, "consent_or_mfa_required"),
        (
            {"error": "invalid_grant", "error_description": "AADSTS700082: expired due to inactivity"},
            "inactivity",
        ),
        ({"error": "temporarily_unavailable", "error_codes": [90033]}, None),
        ({"error": "invalid_client", "error_codes": [7000215]}, None),
    ],
)
def test_classification(answer: dict[str, object], reason: str | None) -> None:
    failure = classify_token_error(answer)
    assert failure.reason == reason
    assert failure.transient is (reason is None)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://contoso.crm.dynamics.com", "https://contoso.crm.dynamics.com"),
        ("https://Contoso.CRM4.dynamics.com/", "https://contoso.crm4.dynamics.com"),
        ("https://contoso.crm11.dynamics.com", "https://contoso.crm11.dynamics.com"),
    ],
)
def test_valid_environment_urls_are_normalised(url: str, expected: str) -> None:
    assert normalize_environment_url(url, HOSTS) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://contoso.crm.dynamics.com",
        "https://contoso.crm.dynamics.com.evil.example",
        "https://evil.example/contoso.crm.dynamics.com",
        "https://user:pw@contoso.crm.dynamics.com",
        "https://contoso.crm.dynamics.com/main.aspx",
        "https://contoso.crm.dynamics.com?x=1",
        "https://127.0.0.1:8443",
        "javascript:alert(1)",
        "",
    ],
)
def test_invalid_environment_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidEnvironmentUrl):
        normalize_environment_url(url, HOSTS)


def test_local_pattern_allows_the_emulator_port() -> None:
    assert normalize_environment_url("https://127.0.0.1:4443/", ("127.0.0.1:*",)) == "https://127.0.0.1:4443"
    with pytest.raises(InvalidEnvironmentUrl):
        normalize_environment_url("https://127.0.0.2:4443/", ("127.0.0.1:*",))


def record(**changes: object) -> ConnectionRecord:
    base = ConnectionRecord(
        workspace_id="ws",
        connection_id="c1",
        status=ConnectionStatus.CONNECTED,
        environment_url="https://contoso.crm.dynamics.com",
        secret_name="s",
        account_id="oid.tid",
        integration_user_email="a@contoso.example",
        dynamics_user_id="u1",
        connected_by="admin",
        connected_at=NOW - dt.timedelta(days=1),
        last_refresh_at=NOW - dt.timedelta(hours=1),
        access_token_expires_at=NOW + dt.timedelta(hours=1),
    )
    return base.__class__(**{**base.__dict__, **changes})


def test_due_when_expiring_or_not_refreshed_for_days() -> None:
    policy = RefreshPolicy(expiry_margin=dt.timedelta(minutes=20), proactive_after=dt.timedelta(days=7))
    assert not policy.is_due(record(), NOW)
    assert policy.is_due(record(access_token_expires_at=NOW + dt.timedelta(minutes=10)), NOW)
    assert policy.is_due(record(last_refresh_at=NOW - dt.timedelta(days=8)), NOW)
    assert not policy.is_due(
        record(status=ConnectionStatus.RECONNECT_REQUIRED, last_refresh_at=NOW - dt.timedelta(days=8)), NOW
    )


def test_public_view_shapes() -> None:
    from core.entrypoints.connection_api import ConnectionView

    def public_view(found: ConnectionRecord | None) -> dict[str, Any]:
        return ConnectionView.of(found).model_dump(mode="json")

    assert public_view(None)["status"] == "disconnected"
    view = public_view(record().needs_reconnect("inactivity", NOW))
    assert view["status"] == "reconnect_required" and view["reason"] == "inactivity"
    assert view["integrationUser"] == {"email": "a@contoso.example", "dynamicsUserId": "u1"}
    assert view["lastRefreshAt"] == "2026-11-27T11:00:00Z"
    assert "secret" not in str(view).lower() and "oid.tid" not in str(view)
