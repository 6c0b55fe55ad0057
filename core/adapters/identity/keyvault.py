"""Key Vault secrets as a small store: put/get/delete by name, failures as one typed error.

Production: ``SecretClient`` with ``DefaultAzureCredential`` (the Function App's managed identity,
role "Key Vault Secrets Officer" on the vault). Locally: the stand-in (``emulators.keyvault``) with a
static bearer token from ``KEY_VAULT_LOCAL_TOKEN`` and a transport that trusts the local CA.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.keyvault.secrets import SecretClient

from core.settings import Settings

log = logging.getLogger(__name__)


class SecretStoreUnavailable(Exception):
    """Key Vault could not be reached or refused us; nothing was written by the failed call."""


class SecretStore(Protocol):
    def put(self, name: str, value: str, tags: Mapping[str, str] | None = None) -> None: ...
    def get(self, name: str) -> str | None: ...
    def delete(self, name: str) -> None: ...


class StaticTokenCredential:
    """A fixed bearer token (local Key Vault stand-in only)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)


class KeyVaultSecretStore:
    def __init__(self, client: SecretClient) -> None:
        self._client = client

    def put(self, name: str, value: str, tags: Mapping[str, str] | None = None) -> None:
        try:
            self._client.set_secret(name, value, tags=dict(tags or {}), content_type="application/json")
        except AzureError as exc:
            raise vault_unavailable("set", exc) from None

    def get(self, name: str) -> str | None:
        try:
            return self._client.get_secret(name).value
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise vault_unavailable("get", exc) from None

    def delete(self, name: str) -> None:
        """Soft-delete (the vault's retention policy applies); a missing secret is not an error."""
        try:
            self._client.begin_delete_secret(name)
        except ResourceNotFoundError:
            return
        except AzureError as exc:
            raise vault_unavailable("delete", exc) from None


def vault_unavailable(action: str, exc: AzureError) -> SecretStoreUnavailable:
    status = exc.status_code if isinstance(exc, HttpResponseError) else None
    kind = "authentication" if isinstance(exc, ClientAuthenticationError) else type(exc).__name__
    log.warning("Key Vault %s failed: %s (HTTP %s)", action, kind, status)
    return SecretStoreUnavailable(f"Key Vault {action} failed ({kind}, HTTP {status})")


def secret_client(
    vault_url: str, credential: TokenCredential, *, local: bool = False, **client_kwargs: Any
) -> SecretClient:
    kwargs: dict[str, Any] = {"retry_total": 2, "retry_backoff_factor": 0.3, "retry_backoff_max": 2}
    if local:
        kwargs["verify_challenge_resource"] = False  # the stand-in's host is 127.0.0.1, not *.vault.azure.net
    kwargs.update(client_kwargs)
    return SecretClient(vault_url, credential, **kwargs)


def vault_credential(settings: Settings) -> tuple[TokenCredential, bool]:
    """(credential for Key Vault, whether it is the local stand-in's static token)."""
    local_token = settings.get("KEY_VAULT_LOCAL_TOKEN")
    if local_token:
        return StaticTokenCredential(local_token), True
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(), False


def secret_store_from_settings(settings: Settings, **client_kwargs: Any) -> KeyVaultSecretStore:
    vault_url = settings.require("KEY_VAULT_URL")
    credential, local = vault_credential(settings)
    return KeyVaultSecretStore(secret_client(vault_url, credential, local=local, **client_kwargs))
