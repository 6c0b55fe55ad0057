"""Envelope encryption of token material (MSAL token caches, pending auth-code flows).

Key hierarchy:
- a **key-encryption key** (KEK): an RSA key in Key Vault (setting ``TOKEN_WRAPPING_KEY_ID``, created by
  infra/app/keyvault.bicep) that wraps and unwraps data keys inside the vault (RSA-OAEP-256,
  ``key_wrapping.VaultKeyWrapper``); the app can use it but never read it. Costs: see ``key_wrapping``
  (wrap is local with the public key; one unwrap call per distinct data key per instance per
  ``UNWRAP_TTL_S``, served from memory in between).
- the **legacy KEK** (``TOKEN_ENCRYPTION_KEY``, base64 of 32 bytes; in Azure a Key Vault reference to a
  secret): before the vault key existed it wrapped data keys with AES-256-GCM. With
  ``TOKEN_WRAPPING_KEY_ID`` set it is only read, to open envelopes sealed before (read old, write new: the
  next seal of that object -- a token refresh, at the latest the proactive refresh -- uses the vault key).
  Without ``TOKEN_WRAPPING_KEY_ID`` (local development without the stand-in's key) it is the KEK.
- a **data key** (DEK, AES-256) per sealed object chain: generated when a workspace connects and reused
  for its later cache versions, so the KEK is used once per connect, not once per refresh. The DEK is
  stored only wrapped, next to the ciphertext.
- data: AES-256-GCM with a random 96-bit nonce; the associated data binds the ciphertext to its context
  (the workspace id), so a blob copied to another workspace does not decrypt.

Envelopes are compact JSON:
- vault key: ``{"v":2,"kid":<versioned key id>,"wk":<b64 RSA-OAEP-256 wrapped DEK>,"n":<b64>,"ct":<b64>}``
- legacy:    ``{"v":1,"kek":<fingerprint>,"wk":<b64 nonce|AES-GCM wrapped DEK>,"n":<b64>,"ct":<b64>}``
An envelope whose key this instance does not hold (another vault key, or a legacy one without the
matching ``TOKEN_ENCRYPTION_KEY``) raises ``ForeignKeyEnvelope`` naming the setting to fix: a
configuration fault, not dead token material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.adapters.identity.key_wrapping import UnwrapRefused, key_wrapper_from_settings
from core.settings import Settings, SettingsError

_NONCE = 12
WRAPPING_SETTING = "TOKEN_WRAPPING_KEY_ID"
LEGACY_SETTING = "TOKEN_ENCRYPTION_KEY"


class TokenDecryptError(Exception):
    """An envelope could not be opened (wrong key, wrong context or tampered); says nothing more."""


class ForeignKeyEnvelope(TokenDecryptError):
    """The envelope names another key-encryption key than this instance's: a configuration fault (the
    setting ``setting`` wrong or half-rotated here), not damaged or dead token material."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class KeyWrapper(Protocol):
    """Wraps data keys with a key held elsewhere (``key_wrapping.VaultKeyWrapper``)."""

    def owns(self, kid: object) -> bool: ...
    def wrap(self, data_key: bytes) -> tuple[str, bytes]: ...
    def unwrap(self, kid: str, wrapped: bytes) -> bytes: ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise TokenDecryptError("malformed envelope")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TokenDecryptError("malformed envelope") from exc


def legacy_kek_from_settings(settings: Settings) -> bytes | None:
    """The legacy KEK, None when unset."""
    raw = settings.get("TOKEN_ENCRYPTION_KEY")
    if not raw:
        return None
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SettingsError(f"setting {LEGACY_SETTING} must be base64") from exc
    if len(key) != 32:
        raise SettingsError(f"setting {LEGACY_SETTING} must decode to 32 bytes")
    return key


class TokenCipher:
    def __init__(self, kek: bytes | None = None, *, wrapper: KeyWrapper | None = None) -> None:
        """``wrapper``: the vault key (seals with it); ``kek``: the legacy key (seals with it only when
        there is no wrapper, otherwise only opens what it sealed)."""
        if kek is None and wrapper is None:
            raise ValueError("a token cipher needs a key wrapper or a key-encryption key")
        if kek is not None and len(kek) != 32:
            raise ValueError("the key-encryption key must be 32 bytes (AES-256)")
        self._wrapper = wrapper
        self._kek = AESGCM(kek) if kek is not None else None
        self.kek_id = hashlib.sha256(b"kek-id|" + kek).hexdigest()[:16] if kek is not None else None

    @classmethod
    def from_settings(cls, settings: Settings, *, wrapper: KeyWrapper | None = None) -> TokenCipher:
        """The vault key when ``TOKEN_WRAPPING_KEY_ID`` is set (``wrapper``, or one built from settings),
        plus the legacy key when ``TOKEN_ENCRYPTION_KEY`` is set; without the first the second is required."""
        key_id = settings.get("TOKEN_WRAPPING_KEY_ID")
        if key_id and wrapper is None:
            wrapper = key_wrapper_from_settings(settings)
        kek = legacy_kek_from_settings(settings)
        if not key_id and kek is None:
            raise SettingsError(
                "setting TOKEN_WRAPPING_KEY_ID is required but not set "
                "(local development without a vault key: TOKEN_ENCRYPTION_KEY)"
            )
        return cls(kek, wrapper=wrapper if key_id else None)

    @staticmethod
    def generate_kek() -> str:
        """A fresh base64 legacy KEK for ``TOKEN_ENCRYPTION_KEY``."""
        return _b64(AESGCM.generate_key(bit_length=256))

    # ------------------------------------------------------------------ seal / open
    def seal(self, plaintext: bytes, context: str, previous: str | None = None) -> str:
        """Encrypt ``plaintext`` for ``context``, reusing the data key of ``previous`` when it was sealed
        under the key this instance seals with and still opens; otherwise a new data key."""
        header: dict[str, object] | None = None
        dek = b""
        if previous is not None:
            try:
                data = self._envelope(previous)
                if data["v"] == (2 if self._wrapper is not None else 1):
                    dek = self._unwrap(data, context)
                    header = {k: data[k] for k in ("v", "kid", "kek", "wk") if k in data}
            except TokenDecryptError:  # sealed under another or rotated key: start a new data key
                header = None
        if header is None:
            dek = AESGCM.generate_key(bit_length=256)
            header = self._wrap(dek, context)
        nonce = os.urandom(_NONCE)
        ciphertext = AESGCM(dek).encrypt(nonce, plaintext, b"data|" + context.encode())
        envelope = {**header, "n": _b64(nonce), "ct": _b64(ciphertext)}
        return json.dumps(envelope, separators=(",", ":"))

    def open(self, envelope: str, context: str) -> bytes:
        """Raises ``ForeignKeyEnvelope`` (not our key), ``TokenDecryptError`` (damaged or another context),
        or the wrapper's ``SecretStoreUnavailable`` (the vault could not be asked: nothing concluded)."""
        data = self._envelope(envelope)
        dek = self._unwrap(data, context)
        try:
            return AESGCM(dek).decrypt(_unb64(data["n"]), _unb64(data["ct"]), b"data|" + context.encode())
        except InvalidTag as exc:
            raise TokenDecryptError("envelope does not decrypt for this context") from exc

    # ------------------------------------------------------------------ internals
    def _wrap(self, dek: bytes, context: str) -> dict[str, object]:
        if self._wrapper is not None:
            kid, wrapped = self._wrapper.wrap(dek)
            return {"v": 2, "kid": kid, "wk": _b64(wrapped)}
        assert self._kek is not None  # the constructor requires one of the two
        nonce = os.urandom(_NONCE)
        wrapped = nonce + self._kek.encrypt(nonce, dek, b"dek|" + context.encode())
        return {"v": 1, "kek": self.kek_id, "wk": _b64(wrapped)}

    def _envelope(self, text: str) -> dict[str, object]:
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise TokenDecryptError("malformed envelope") from exc
        if not isinstance(data, dict) or data.get("v") not in (1, 2) or not {"wk", "n", "ct"} <= data.keys():
            raise TokenDecryptError("malformed envelope")
        if data["v"] == 2:
            if self._wrapper is None or not self._wrapper.owns(data.get("kid")):
                raise ForeignKeyEnvelope("envelope was sealed with another Key Vault key", WRAPPING_SETTING)
        elif self._kek is None or data.get("kek") != self.kek_id:
            raise ForeignKeyEnvelope("envelope was sealed with another key-encryption key", LEGACY_SETTING)
        return data

    def _unwrap(self, data: dict[str, object], context: str) -> bytes:
        raw = _unb64(data["wk"])
        if data["v"] == 2:
            assert self._wrapper is not None  # checked by _envelope
            try:
                return self._wrapper.unwrap(str(data["kid"]), raw)
            except UnwrapRefused as exc:
                raise TokenDecryptError("the vault key does not unwrap this data key") from exc
        assert self._kek is not None  # checked by _envelope
        try:
            return self._kek.decrypt(raw[:_NONCE], raw[_NONCE:], b"dek|" + context.encode())
        except InvalidTag as exc:
            raise TokenDecryptError("envelope does not decrypt for this context") from exc
