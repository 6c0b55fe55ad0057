"""Envelope encryption of token material (MSAL token caches, pending auth-code flows).

Key hierarchy:
- a **key-encryption key** (KEK, 32 bytes) from the setting ``TOKEN_ENCRYPTION_KEY`` (base64). In Azure
  that app setting is a Key Vault reference, so the KEK lives in Key Vault and never in code or config;
  locally it is a plain setting.
- a **data key** (DEK, AES-256) per sealed object chain: generated when a workspace connects and reused
  for its later cache versions, so the KEK encrypts once per connect, not once per refresh. The DEK is
  stored only wrapped (AES-256-GCM under the KEK) next to the ciphertext.
- data: AES-256-GCM with a random 96-bit nonce; the associated data binds the ciphertext to its context
  (the workspace id), so a blob copied to another workspace does not decrypt.

The envelope is compact JSON: ``{"v":1,"kek":<key id>,"wk":<b64 nonce|wrapped DEK>,"n":<b64>,"ct":<b64>}``.
``kek`` is a fingerprint (not the key) so a rotated KEK can be told apart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.settings import Settings, SettingsError

_NONCE = 12


class TokenDecryptError(Exception):
    """An envelope could not be opened (wrong key, wrong context or tampered); says nothing more."""


class ForeignKeyEnvelope(TokenDecryptError):
    """The envelope names another key-encryption key than this instance's: a configuration fault
    (``TOKEN_ENCRYPTION_KEY`` wrong or half-rotated here), not damaged or dead token material."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise TokenDecryptError("malformed envelope")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TokenDecryptError("malformed envelope") from exc


class TokenCipher:
    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError("the key-encryption key must be 32 bytes (AES-256)")
        self._kek = AESGCM(kek)
        self.kek_id = hashlib.sha256(b"kek-id|" + kek).hexdigest()[:16]

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCipher:
        raw = settings.require("TOKEN_ENCRYPTION_KEY")
        try:
            key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SettingsError("setting TOKEN_ENCRYPTION_KEY must be base64") from exc
        if len(key) != 32:
            raise SettingsError("setting TOKEN_ENCRYPTION_KEY must decode to 32 bytes")
        return cls(key)

    @staticmethod
    def generate_kek() -> str:
        """A fresh base64 KEK for ``TOKEN_ENCRYPTION_KEY``."""
        return _b64(AESGCM.generate_key(bit_length=256))

    def seal(self, plaintext: bytes, context: str, previous: str | None = None) -> str:
        """Encrypt ``plaintext`` for ``context``, reusing the data key of ``previous`` when it opens."""
        wrapped: str | None = None
        if previous is not None:
            try:
                wrapped = self._envelope(previous)["wk"]
                dek = self._unwrap(wrapped, context)
            except TokenDecryptError:  # sealed under a rotated KEK: start a new data key
                wrapped = None
        if wrapped is None:
            dek = AESGCM.generate_key(bit_length=256)
            nonce = os.urandom(_NONCE)
            wrapped = _b64(nonce + self._kek.encrypt(nonce, dek, b"dek|" + context.encode()))
        nonce = os.urandom(_NONCE)
        ciphertext = AESGCM(dek).encrypt(nonce, plaintext, b"data|" + context.encode())
        envelope = {"v": 1, "kek": self.kek_id, "wk": wrapped, "n": _b64(nonce), "ct": _b64(ciphertext)}
        return json.dumps(envelope, separators=(",", ":"))

    def open(self, envelope: str, context: str) -> bytes:
        data = self._envelope(envelope)
        dek = self._unwrap(data["wk"], context)
        try:
            return AESGCM(dek).decrypt(_unb64(data["n"]), _unb64(data["ct"]), b"data|" + context.encode())
        except InvalidTag as exc:
            raise TokenDecryptError("envelope does not decrypt for this context") from exc

    def _envelope(self, text: str) -> dict[str, str]:
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise TokenDecryptError("malformed envelope") from exc
        if not isinstance(data, dict) or data.get("v") != 1 or not {"wk", "n", "ct"} <= data.keys():
            raise TokenDecryptError("malformed envelope")
        if data.get("kek") != self.kek_id:
            raise ForeignKeyEnvelope("envelope was sealed with another key-encryption key")
        return data

    def _unwrap(self, wrapped: object, context: str) -> bytes:
        raw = _unb64(wrapped)
        try:
            return self._kek.decrypt(raw[:_NONCE], raw[_NONCE:], b"dek|" + context.encode())
        except InvalidTag as exc:
            raise TokenDecryptError("envelope does not decrypt for this context") from exc
