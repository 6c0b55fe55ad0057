"""Configuration faults are not dead grants.

Real msal against the Entra stand-in, the real SecretClient against the Key Vault stand-in, Azurite:
- a token cache sealed under another key-encryption key (this instance's TOKEN_WRAPPING_KEY_ID naming
  another Key Vault key, or its legacy TOKEN_ENCRYPTION_KEY wrong or half-rotated) and Entra refusing
  the app's client secret (invalid_client, AADSTS7000215) leave the connection connected with no notice,
  are logged at error level naming the setting every timer run and counted as ``configuration_error``;
  an envelope failing under the matching key still asks for a reconnect.
"""

from __future__ import annotations

import base64
import json
import logging

import pytest

from core.adapters.identity.token_crypto import TokenCipher
from core.bootstrap import build_connection
from core.domain.connection import (
    ConnectionStatus,
    ReconnectRequired,
    TokenConfigurationError,
    TransientTokenError,
)
from core.services.connection.service import (
    ConnectionComponents,
)
from core.settings import load_settings
from tests.integration.test_connection_resilience import make_due
from tests.support.identity import IdentityStack, key_wrapper_for, local_secret_store

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]

WS = "ws-a"


def instance_with(stack: IdentityStack, **overrides: str) -> ConnectionComponents:
    """Another instance of the app on the same storage and vault, with some settings of its own."""
    settings = load_settings({**stack.settings_env, **overrides})
    return build_connection(
        settings,
        tables=stack.tables,
        secret_store=local_secret_store(stack.keyvault.vault_url, settings.require("KEY_VAULT_LOCAL_TOKEN")),
        key_wrapper=key_wrapper_for(settings),
        http_session=stack.session,
        table_prefix=stack.prefix,
    )


def errors_naming(caplog: pytest.LogCaptureFixture, setting: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and setting in r.getMessage()
    ]


def assert_untouched(stack: IdentityStack) -> None:
    record = stack.components.service.get(WS)
    assert record is not None and record.status is ConnectionStatus.CONNECTED and record.reason is None
    assert stack.components.notifications.list(WS) == []


def test_a_cache_sealed_under_another_key_is_a_configuration_fault(
    identity_stack: IdentityStack, caplog: pytest.LogCaptureFixture
) -> None:
    stack = identity_stack
    stack.connect()
    rotated = instance_with(stack, TOKEN_WRAPPING_KEY_ID=stack.keyvault.create_key("another-key"))
    make_due(stack, WS)
    unwraps = stack.keyvault.keys.unwraps
    for run in (1, 2):
        report = rotated.refresher.run()
        assert (report.configuration_error, report.reconnect_required, report.refreshed) == (1, 0, 0), report
        assert (
            len(errors_naming(caplog, "TOKEN_WRAPPING_KEY_ID")) >= run * 2
        )  # each run: the workspace + summary
        assert_untouched(stack)
    assert stack.keyvault.keys.unwraps == unwraps  # told apart by the key id, without asking the vault
    with pytest.raises(TokenConfigurationError) as err:  # exports see a transient failure, not a pause
        rotated.tokens.access_token(WS, force_refresh=True)
    assert isinstance(err.value, TransientTokenError) and err.value.setting == "TOKEN_WRAPPING_KEY_ID"
    assert_untouched(stack)
    # the instance with the right key still works with the same connection
    assert stack.components.refresher.run().refreshed == 1
    assert stack.components.tokens.access_token(WS)


def test_an_envelope_failing_under_the_matching_key_still_needs_a_reconnect(
    identity_stack: IdentityStack,
) -> None:
    stack = identity_stack
    stack.connect()
    record = stack.components.service.get(WS)
    assert record is not None
    store = local_secret_store(stack.keyvault.vault_url, stack.settings_env["KEY_VAULT_LOCAL_TOKEN"])
    envelope = json.loads(store.get(record.secret_name) or "")
    ciphertext = bytearray(base64.b64decode(envelope["ct"]))
    ciphertext[0] ^= 0xFF  # damaged under the right key
    envelope["ct"] = base64.b64encode(bytes(ciphertext)).decode()
    store.put(record.secret_name, json.dumps(envelope), tags={"kind": "dynamics-token-cache"})
    with pytest.raises(ReconnectRequired):
        stack.components.tokens.access_token(WS, force_refresh=True)
    assert stack.components.service.get(WS).status is ConnectionStatus.RECONNECT_REQUIRED  # type: ignore[union-attr]
    assert len(stack.components.notifications.list(WS)) == 1


def test_a_refused_client_secret_is_a_configuration_fault(
    identity_stack: IdentityStack, caplog: pytest.LogCaptureFixture
) -> None:
    stack = identity_stack
    stack.connect()
    misconfigured = instance_with(stack, DYNAMICS_CLIENT_SECRET="an-expired-secret")
    make_due(stack, WS)
    for run in (1, 2):
        report = misconfigured.refresher.run()
        assert (report.configuration_error, report.reconnect_required, report.transient) == (1, 0, 0), report
        assert len(errors_naming(caplog, "DYNAMICS_CLIENT_SECRET")) >= run  # logged at error level each run
        assert any("7000215" in line for line in errors_naming(caplog, "DYNAMICS_CLIENT_SECRET"))
        assert_untouched(stack)
    assert stack.entra.stats.refresh_token == 0  # Entra refused the client before looking at the grant
    with pytest.raises(TokenConfigurationError):
        misconfigured.tokens.access_token(WS, force_refresh=True)
    assert_untouched(stack)
    assert stack.components.refresher.run().refreshed == 1  # fixed secret: the same grant works


def test_a_cache_sealed_under_the_former_secret_key_is_resealed_under_the_vault_key_at_its_refresh(
    identity_stack: IdentityStack, caplog: pytest.LogCaptureFixture
) -> None:
    """Upgrading a deployment: caches sealed under TOKEN_ENCRYPTION_KEY keep working (read old, write new)."""
    stack = identity_stack
    stack.connect()
    record = stack.components.service.get(WS)
    assert record is not None
    store = local_secret_store(stack.keyvault.vault_url, stack.settings_env["KEY_VAULT_LOCAL_TOKEN"])
    settings = load_settings(stack.settings_env)
    current = TokenCipher.from_settings(settings, wrapper=key_wrapper_for(settings))
    legacy_kek = base64.b64encode(b"L" * 32).decode()
    plaintext = current.open(store.get(record.secret_name) or "", WS)
    before_upgrade = TokenCipher(base64.b64decode(legacy_kek)).seal(plaintext, WS)
    store.put(record.secret_name, before_upgrade, tags={"kind": "dynamics-token-cache"})

    # Upgraded without the legacy key: refused as configuration, naming the setting; nothing marked.
    vault_only = instance_with(stack)
    make_due(stack, WS)
    assert vault_only.refresher.run().configuration_error == 1
    assert errors_naming(caplog, "TOKEN_ENCRYPTION_KEY")
    assert_untouched(stack)
    # With the legacy key as well: the refresh opens the old cache and stores it under the vault key.
    upgraded = instance_with(stack, TOKEN_ENCRYPTION_KEY=legacy_kek)
    assert upgraded.refresher.run().refreshed == 1
    resealed = json.loads(store.get(record.secret_name) or "")
    assert resealed["v"] == 2 and resealed["kid"].startswith(stack.settings_env["TOKEN_WRAPPING_KEY_ID"])
    assert vault_only.tokens.access_token(WS, force_refresh=True)  # the legacy key is no longer needed
    assert_untouched(stack)
