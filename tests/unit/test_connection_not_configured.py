"""Without the Dynamics connection settings the endpoints answer 503 naming the setting (no 500)."""

from __future__ import annotations

import pytest

from core.entrypoints import connection_api
from tests.support.http import body_json, call, request
from tests.support.tokens import bearer, configured

NAMES = ("KEY_VAULT_URL", "DYNAMICS_CLIENT_ID", "DYNAMICS_CLIENT_SECRET", "TOKEN_ENCRYPTION_KEY")


def test_endpoints_say_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    with configured(monkeypatch):
        connect = call(
            connection_api.dynamics_connect,
            request(
                "POST",
                "dynamics/connect",
                json_body={"environmentUrl": "https://a.crm.dynamics.com"},
                headers=bearer(),
            ),
        )
        state = call(
            connection_api.dynamics_connection_get, request("GET", "dynamics/connection", headers=bearer())
        )
        member = call(
            connection_api.dynamics_connect,
            request(
                "POST", "dynamics/connect", json_body={"environmentUrl": "x"}, headers=bearer(role="member")
            ),
        )
    for resp in (connect, state):
        assert resp.status_code == 503
        assert "KEY_VAULT_URL" in body_json(resp)["detail"]
    assert member.status_code == 403  # authorization is checked before configuration
