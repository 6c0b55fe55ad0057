"""The issue-4 cycle against real msal, the real SecretClient and real Azurite (service level)."""

from __future__ import annotations

import datetime as dt
import json

import msal
import pytest

from core.adapters.identity.token_crypto import TokenCipher
from core.domain.connection import ConnectionStatus, InvalidEnvironmentUrl, NotConnected, ReconnectRequired
from core.services.connection.service import ConnectError, KeyVaultUnavailable
from core.settings import load_settings
from tests.support.identity import IdentityStack, caller, finish_sign_in, key_wrapper_for

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]


def cache_of(stack: IdentityStack, workspace_id: str) -> dict:
    record = stack.components.connections.get(workspace_id).record
    latest = stack.keyvault.all_values()[-1]
    settings = load_settings(stack.settings_env)
    cipher = TokenCipher.from_settings(settings, wrapper=key_wrapper_for(settings))
    data = json.loads(cipher.open(latest, record.workspace_id))
    return data


def refresh_tokens(stack: IdentityStack, workspace_id: str) -> list[str]:
    return [rt["secret"] for rt in cache_of(stack, workspace_id)["RefreshToken"].values()]


def test_connect_records_user_and_stores_only_ciphertext(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    stack.connect()
    record = stack.components.service.get("ws-a")
    assert record is not None and record.status is ConnectionStatus.CONNECTED
    assert record.integration_user_email == stack.entra.current_user.email
    assert record.dynamics_user_id == stack.env.user_ids[stack.entra.current_user.object_id]
    assert record.environment_url == stack.env.url
    # Key Vault holds one secret, and it is an envelope, not msal's JSON
    assert stack.keyvault.live_names() == [record.secret_name]
    (value,) = stack.keyvault.all_values()
    envelope = json.loads(value)
    assert '"RefreshToken"' not in value and envelope["v"] == 2
    # its data key is wrapped by the vault key's current version, which the app cannot read
    assert envelope["kid"].startswith(stack.settings_env["TOKEN_WRAPPING_KEY_ID"] + "/")
    assert len(refresh_tokens(stack, "ws-a")) == 1


def test_full_cycle_refresh_inactivity_notification_reconnect(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    c = stack.components
    stack.connect()
    first_rt = refresh_tokens(stack, "ws-a")
    # make the connection due: proactive refresh after 7 days of no refresh
    found = c.connections.get("ws-a")
    old = found.record.last_refresh_at - dt.timedelta(days=8)
    c.connections.replace(found.record.refreshed(old, found.record.access_token_expires_at), found.etag)
    report = c.refresher.run()
    assert report.refreshed == 1, report
    second_rt = refresh_tokens(stack, "ws-a")
    assert second_rt != first_rt  # rotated, and the rotation is what got stored
    assert c.connections.get("ws-a").record.last_refresh_at > old
    assert c.tokens.access_token("ws-a")  # a valid token from the cache, no network refresh needed

    # 91 days without use: the stand-in now answers AADSTS700082 for that refresh token
    stack.entra.advance_clock(91 * 86400)
    found = c.connections.get("ws-a")
    c.connections.replace(
        found.record.refreshed(
            found.record.last_refresh_at - dt.timedelta(days=8), found.record.access_token_expires_at
        ),
        found.etag,
    )
    report = c.refresher.run()
    assert report.reconnect_required == 1, report
    record = c.service.get("ws-a")
    assert record.status is ConnectionStatus.RECONNECT_REQUIRED and record.reason == "inactivity"
    notes = c.notifications.list("ws-a")
    assert len(notes) == 1 and notes[0].reason == "inactivity"
    # a second run creates no second notification (and does not touch the broken connection)
    c.refresher.run()
    with pytest.raises(ReconnectRequired) as err:
        c.tokens.access_token("ws-a")
    assert err.value.reason == "inactivity"
    assert len(c.notifications.list("ws-a")) == 1

    # reconnect clears it
    stack.entra.advance_clock(-91 * 86400)
    stack.connect()
    assert c.service.get("ws-a").status is ConnectionStatus.CONNECTED
    assert c.notifications.list("ws-a") == []
    assert c.tokens.access_token("ws-a")


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("revoked", "revoked"),
        ("interaction_required", "consent_or_mfa_required"),
        ("inactivity", "inactivity"),
    ],
)
def test_dead_grants_are_classified(identity_stack: IdentityStack, fault: str, reason: str) -> None:
    stack = identity_stack
    stack.connect()
    stack.entra.set_fault(fault, count=1)
    with pytest.raises(ReconnectRequired) as err:
        stack.components.tokens.access_token("ws-a", force_refresh=True)
    assert err.value.reason == reason
    assert stack.components.service.get("ws-a").reason == reason
    assert [n.reason for n in stack.components.notifications.list("ws-a")] == [reason]


def test_password_change_revokes(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    stack.connect()
    stack.entra.revoke_user(stack.entra.current_user.object_id)
    with pytest.raises(ReconnectRequired) as err:
        stack.components.tokens.access_token("ws-a", force_refresh=True)
    assert err.value.reason == "revoked"


def test_transient_failure_marks_nothing(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    c = stack.components
    stack.connect()
    found = c.connections.get("ws-a")
    c.connections.replace(
        found.record.refreshed(
            found.record.last_refresh_at - dt.timedelta(days=8), found.record.access_token_expires_at
        ),
        found.etag,
    )
    stack.entra.set_fault("server_error", count=None, status=503)
    report = c.refresher.run()
    assert report.transient == 1 and report.reconnect_required == 0
    assert c.service.get("ws-a").status is ConnectionStatus.CONNECTED
    assert c.notifications.list("ws-a") == []
    stack.entra.clear_faults()
    assert c.refresher.run().refreshed == 1  # retried on the next run


def test_state_forgery_replay_and_expiry(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    service = stack.components.service
    url = service.start_connect(caller(), stack.env.url)
    answer = stack.browser_sign_in(url)
    with pytest.raises(ConnectError) as err:
        finish_sign_in(service, caller(), {**answer, "state": "forged-" + answer["state"][:20]})
    assert err.value.code == "invalid_state"
    finish_sign_in(service, caller(), answer)
    with pytest.raises(ConnectError) as err:
        finish_sign_in(service, caller(), answer)  # replay
    assert err.value.code == "invalid_state"
    # expiry: 11 minutes later the flow is refused and nothing is stored
    url = service.start_connect(caller("ws-b"), stack.env.url)
    answer = stack.browser_sign_in(url)
    service._clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11)
    with pytest.raises(ConnectError) as err:
        finish_sign_in(service, caller("ws-b"), answer)
    assert err.value.code == "expired_state"
    assert service.get("ws-b") is None


def test_pkce_mismatch_is_refused(identity_stack: IdentityStack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = identity_stack
    real = msal.ConfidentialClientApplication.acquire_token_by_auth_code_flow

    def tampered(self, auth_code_flow, auth_response, **kw):  # type: ignore[no-untyped-def]
        return real(self, {**auth_code_flow, "code_verifier": "x" * 43}, auth_response, **kw)

    monkeypatch.setattr(msal.ConfidentialClientApplication, "acquire_token_by_auth_code_flow", tampered)
    url = stack.components.service.start_connect(caller(), stack.env.url)
    with pytest.raises(ConnectError) as err:
        finish_sign_in(stack.components.service, caller(), stack.browser_sign_in(url))
    assert err.value.code == "token_exchange_failed"
    assert stack.components.service.get("ws-a") is None
    assert stack.keyvault.live_names() == []


def test_consent_error_from_sign_in(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    stack.entra.set_fault("consent_required", count=1)
    url = stack.components.service.start_connect(caller(), stack.env.url)
    with pytest.raises(ConnectError) as err:
        finish_sign_in(stack.components.service, caller(), stack.browser_sign_in(url))
    assert err.value.code == "consent_required"


def test_environment_url_validation(identity_stack: IdentityStack) -> None:
    service = identity_stack.components.service
    for bad in (
        "http://org.crm.dynamics.com",
        "https://evil.example.com",
        "https://org.crm.dynamics.com/x?y=1",
    ):
        with pytest.raises(InvalidEnvironmentUrl):
            service.start_connect(caller(), bad)
    assert service.start_connect(caller(), "https://org.crm.dynamics.com/").startswith(
        identity_stack.entra.authority
    )


def test_key_vault_unavailable_writes_nothing(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    service = stack.components.service
    stack.keyvault.fail_with(503)
    with pytest.raises(KeyVaultUnavailable):
        service.start_connect(caller(), stack.env.url)
    stack.keyvault.fail_with(None)
    url = service.start_connect(caller(), stack.env.url)
    answer = stack.browser_sign_in(url)
    stack.keyvault.fail_with(503)
    with pytest.raises(ConnectError) as err:
        finish_sign_in(service, caller(), answer)
    assert err.value.code == "key_vault_unavailable"
    stack.keyvault.fail_with(None)
    assert service.get("ws-a") is None and stack.keyvault.live_names() == []
    # disconnect with Key Vault down: 503 and the connection stays as it was
    stack.connect()
    stack.keyvault.fail_with(503)
    with pytest.raises(KeyVaultUnavailable):
        service.disconnect("ws-a")
    stack.keyvault.fail_with(None)
    assert service.get("ws-a").status is ConnectionStatus.CONNECTED
    assert service.disconnect("ws-a") and service.get("ws-a") is None
    assert stack.keyvault.live_names() == []


def test_exports_calls_do_not_hit_key_vault_each_time(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    stack.connect()
    tokens = stack.components.tokens
    first = tokens.access_token("ws-a")
    reads = stack.keyvault.requests
    assert all(tokens.access_token("ws-a") == first for _ in range(20))
    assert stack.keyvault.requests == reads  # served from memory, checked against the row
    refreshed = tokens.access_token("ws-a", force_refresh=True)
    assert refreshed != first and tokens.access_token("ws-a") == refreshed
    stack.components.service.disconnect("ws-a")
    with pytest.raises(NotConnected):
        tokens.access_token("ws-a")  # a disconnect wins over the memory at once
