"""Wrapping data keys with a Key Vault key (``azure-keyvault-keys`` ``CryptographyClient``, RSA-OAEP-256).

The key-encryption key is an RSA key in Key Vault (``TOKEN_WRAPPING_KEY_ID``, versionless id
``https://<vault>.vault.azure.net/keys/<name>``) whose private part never leaves the vault: the app holds
only Key Vault Crypto Service Encryption User on that key (read its metadata, wrap, unwrap).
Wrap Key / Unwrap Key: https://learn.microsoft.com/rest/api/keyvault/keys/wrap-key/wrap-key and
https://learn.microsoft.com/rest/api/keyvault/keys/unwrap-key/unwrap-key (RSA-OAEP-256 is one of the
algorithms they list for RSA keys; A256KW needs an ``oct`` key, which only Managed HSM holds).

Costs, per instance:
- wrap: local, with the key's public part (the SDK encrypts RSA-OAEP-256 itself once it has read the key).
  The current version is read (one GET) at first use and again after ``KEY_REFRESH_S``, so a new key
  version is used for new data keys within that time; when that GET fails, the known version is used
  and the GET retried after ``KEY_RETRY_S``.
- unwrap: one vault call (POST .../unwrapkey) per distinct wrapped data key, then served from memory for
  ``UNWRAP_TTL_S`` (at most ``UNWRAP_CACHE_MAX`` entries, keyed by key version and wrapped bytes). A
  workspace's data key is reused across its cache versions, so reading a token costs one vault call per
  workspace per instance per ``UNWRAP_TTL_S`` -- not one per token read -- plus one GET per key version per
  instance the first time (the SDK reads the key before its first operation).
Failures: the vault unreachable, throttling or refusing us (401/403/5xx) -> ``SecretStoreUnavailable``
(transient, nothing concluded about the token material); the vault answering 400 to an unwrap (ciphertext
not from this key version) -> ``UnwrapRefused``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.keyvault.keys import KeyClient, KeyVaultKey
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

from core.adapters.identity.keyvault import SecretStoreUnavailable, vault_credential, vault_unavailable
from core.settings import Settings, SettingsError

UNWRAP_TTL_S = 600.0
UNWRAP_CACHE_MAX = 4096
KEY_REFRESH_S = 3600.0
KEY_RETRY_S = 60.0
ALGORITHM = KeyWrapAlgorithm.rsa_oaep_256


class UnwrapRefused(Exception):
    """The vault refused to unwrap these bytes with that key version (not wrapped by it, or damaged)."""


def key_name_and_vault(key_id: str) -> tuple[str, str, str | None]:
    """(vault URL, key name, version or None) of a Key Vault key id; ValueError when it is not one."""
    parts = urlsplit(key_id)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "https" or not parts.netloc or len(segments) not in (2, 3) or segments[0] != "keys":
        raise ValueError("not a Key Vault key id (https://<vault>/keys/<name>[/<version>])")
    return f"https://{parts.netloc}", segments[1], segments[2] if len(segments) == 3 else None


class VaultKeyWrapper:
    """Wraps and unwraps 32-byte data keys with one Key Vault key (any of its versions for unwrap)."""

    def __init__(
        self,
        key_id: str,
        credential: TokenCredential,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        **client_kwargs: Any,
    ) -> None:
        self.vault_url, self.key_name, _ = key_name_and_vault(key_id)
        self._credential = credential
        self._client_kwargs: dict[str, Any] = {
            "retry_total": 2,
            "retry_backoff_factor": 0.3,
            "retry_backoff_max": 2,
            **client_kwargs,
        }
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys = KeyClient(self.vault_url, credential, **self._client_kwargs)
        self._wrapping: tuple[CryptographyClient, float] | None = None
        self._unwrapping: dict[str, CryptographyClient] = {}
        self._unwrapped: OrderedDict[tuple[str, bytes], tuple[bytes, float]] = OrderedDict()

    def owns(self, kid: object) -> bool:
        """Whether ``kid`` names a version of this wrapper's key (same vault, same name)."""
        if not isinstance(kid, str):
            return False
        try:
            vault, name, version = key_name_and_vault(kid)
        except ValueError:
            return False
        return vault == self.vault_url and name == self.key_name and bool(version)

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """(versioned key id, wrapped bytes)."""
        client = self._wrapping_client()
        try:
            result = client.wrap_key(ALGORITHM, data_key)
        except AzureError as exc:
            raise vault_unavailable("wrap", exc) from None
        kid = str(result.key_id)
        self._remember(kid, result.encrypted_key, data_key)
        return kid, result.encrypted_key

    def unwrap(self, kid: str, wrapped: bytes) -> bytes:
        now = self._monotonic()
        with self._lock:
            hit = self._unwrapped.get((kid, wrapped))
            if hit is not None and hit[1] > now:
                return hit[0]
        client = self._unwrapping_client(kid)
        try:
            data_key = client.unwrap_key(ALGORITHM, wrapped).key
        except HttpResponseError as exc:
            if exc.status_code == 400:
                raise UnwrapRefused("the vault could not unwrap this data key") from None
            raise vault_unavailable("unwrap", exc) from None
        except AzureError as exc:
            raise vault_unavailable("unwrap", exc) from None
        self._remember(kid, wrapped, data_key)
        return data_key

    # ------------------------------------------------------------------ internals
    def _remember(self, kid: str, wrapped: bytes, data_key: bytes) -> None:
        with self._lock:
            self._unwrapped[(kid, wrapped)] = (data_key, self._monotonic() + UNWRAP_TTL_S)
            self._unwrapped.move_to_end((kid, wrapped))
            while len(self._unwrapped) > UNWRAP_CACHE_MAX:
                self._unwrapped.popitem(last=False)

    def _wrapping_client(self) -> CryptographyClient:
        now = self._monotonic()
        with self._lock:
            if self._wrapping is not None and self._wrapping[1] > now:
                return self._wrapping[0]
        try:
            key: KeyVaultKey = self._keys.get_key(self.key_name)
        except AzureError as exc:
            with self._lock:
                if self._wrapping is not None:  # keep wrapping with the version we know; ask again later
                    self._wrapping = (self._wrapping[0], now + KEY_RETRY_S)
                    return self._wrapping[0]
            raise vault_unavailable("get key", exc) from None
        client = CryptographyClient(key, self._credential, **self._client_kwargs)
        with self._lock:
            self._wrapping = (client, now + KEY_REFRESH_S)
        return client

    def _unwrapping_client(self, kid: str) -> CryptographyClient:
        with self._lock:
            client = self._unwrapping.get(kid)
            if client is None:
                client = CryptographyClient(kid, self._credential, **self._client_kwargs)
                self._unwrapping[kid] = client
            return client


def key_wrapper_from_settings(settings: Settings, **client_kwargs: Any) -> VaultKeyWrapper:
    key_id = settings.require("TOKEN_WRAPPING_KEY_ID")
    try:
        key_name_and_vault(key_id)
    except ValueError as exc:
        raise SettingsError(f"setting TOKEN_WRAPPING_KEY_ID: {exc}") from None
    credential, local = vault_credential(settings)
    if local:
        client_kwargs.setdefault("verify_challenge_resource", False)  # the stand-in is 127.0.0.1
    return VaultKeyWrapper(key_id, credential, **client_kwargs)


__all__ = [
    "SecretStoreUnavailable",
    "UnwrapRefused",
    "VaultKeyWrapper",
    "key_name_and_vault",
    "key_wrapper_from_settings",
]
