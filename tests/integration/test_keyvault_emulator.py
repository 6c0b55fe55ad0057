"""The Key Vault stand-in answers the real SecretClient (bearer challenge included)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.keyvault.secrets import SecretClient

from core.adapters.identity.keyvault import (
    KeyVaultSecretStore,
    SecretStoreUnavailable,
    StaticTokenCredential,
    secret_client,
)
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import ensure_ca, trusting_session

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]


def client(kv: KeyVaultEmulator, token: str | None = None) -> SecretClient:
    return secret_client(
        kv.vault_url,
        StaticTokenCredential(token or kv.issue_token()),
        local=True,
        connection_verify=str(ensure_ca().cert_path),
        retry_total=0,
    )


def test_set_get_versions_list_delete(keyvault: KeyVaultEmulator) -> None:
    c = client(keyvault)
    v1 = c.set_secret("tokens-a", "one", tags={"kind": "x"})
    c.set_secret("tokens-a", "two")
    assert c.get_secret("tokens-a").value == "two"
    assert c.get_secret("tokens-a", v1.properties.version).value == "one"
    assert len(list(c.list_properties_of_secret_versions("tokens-a"))) == 2
    for i in range(30):
        c.set_secret(f"many-{i}", "v")
    assert len(list(c.list_properties_of_secrets())) == 31  # paged by 25 with nextLink
    deleted = c.begin_delete_secret("tokens-a").result()
    assert deleted.recovery_id and deleted.deleted_date
    with pytest.raises(ResourceNotFoundError):
        c.get_secret("tokens-a")
    with pytest.raises(ResourceExistsError):
        c.set_secret("tokens-a", "three")  # soft-deleted names cannot be reused until purged
    c.purge_deleted_secret("tokens-a")
    assert c.set_secret("tokens-a", "three").value == "three"
    assert keyvault.unauthorized >= 1  # the client went through the bearer challenge


def test_challenge_and_bad_tokens(keyvault: KeyVaultEmulator) -> None:
    raw = trusting_session().get(f"{keyvault.vault_url}/secrets/x?api-version=7.6", timeout=5)
    assert raw.status_code == 401
    assert raw.headers["WWW-Authenticate"].startswith('Bearer authorization="')
    assert 'resource="https://vault.azure.net"' in raw.headers["WWW-Authenticate"]
    missing = trusting_session().get(f"{keyvault.vault_url}/secrets/x", timeout=5)
    assert missing.status_code == 400
    with pytest.raises((ClientAuthenticationError, HttpResponseError)):
        client(keyvault, token="not-issued").get_secret("x")


def test_store_adapter_maps_outages(keyvault: KeyVaultEmulator) -> None:
    store = KeyVaultSecretStore(client(keyvault))
    assert store.get("absent") is None
    store.put("present", "v")
    keyvault.fail_with(503)
    with pytest.raises(SecretStoreUnavailable) as err:
        store.get("present")
    assert "HTTP 503" in str(err.value)
    keyvault.fail_with(None)
    store.delete("present")
    store.delete("present")  # idempotent
    assert store.get("present") is None
    keyvault.stop()
    with pytest.raises(SecretStoreUnavailable):
        store.put("x", "y")
