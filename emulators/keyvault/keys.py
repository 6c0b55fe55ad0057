"""Key Vault keys stand-in: the part of the keys REST API ``azure-keyvault-keys`` uses to create a key,
read it and wrap/unwrap with it (https://learn.microsoft.com/rest/api/keyvault/keys):

  POST /keys/{name}/create                          Create Key -> KeyBundle (new version each call)
  GET  /keys/{name}[/{version}]                     Get Key -> KeyBundle (public JWK only)
  POST /keys/{name}[/{version}]/wrapkey             Wrap Key -> KeyOperationResult {kid, value}
  POST /keys/{name}[/{version}]/unwrapkey           Unwrap Key -> KeyOperationResult {kid, value}

RSA keys only (a standard vault's software keys; ``oct`` keys and A256KW exist only in Managed HSM), with
RSA-OAEP, RSA-OAEP-256 and RSA1_5 for wrapping, as the Wrap Key page lists for RSA keys. Byte values are
base64url without padding, as in the REST API's JSON. The private key never leaves this module, like a
vault's: GET answers ``n`` and ``e`` only. Errors use the Key Vault error shape
``{"error": {"code", "message"}}``: 404 ``KeyNotFound`` for an unknown name or version, 400
``BadParameter`` for a bad body, algorithm or ciphertext, 403 ``Forbidden`` for an operation the key's
``key_ops`` does not allow.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
KEY_SIZES = {2048, 3072, 4096}
ALL_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]


class KeyProblem(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: object, field: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise KeyProblem(400, "BadParameter", f"Property '{field}' is required and must be base64url.")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise KeyProblem(400, "BadParameter", f"Property '{field}' is not valid base64url.") from None


def _padding(alg: object) -> padding.AsymmetricPadding:
    if alg == "RSA-OAEP-256":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    if alg == "RSA-OAEP":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
    if alg == "RSA1_5":
        return padding.PKCS1v15()
    raise KeyProblem(400, "BadParameter", f"Invalid algorithm: {str(alg)[:40]} is not valid for an RSA key.")


@dataclass
class _KeyVersion:
    version: str
    private: rsa.RSAPrivateKey
    key_ops: list[str]
    enabled: bool
    created: int
    tags: dict[str, str]


class KeyStore:
    """The keys of one vault: name -> versions, newest last. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, list[_KeyVersion]] = {}
        self.unwraps = 0  # served unwrapkey calls, for tests counting vault round trips

    def route(self, vault_url: str, method: str, parts: list[str], body: Any) -> dict[str, Any] | None:
        """The JSON answer for ``/keys/...`` (``parts`` after ``keys``), or None: not a keys route."""
        if not parts:
            return None
        name, rest = parts[0], parts[1:]
        if rest == ["create"] and method == "POST":
            return self._bundle(vault_url, name, self._create(name, body))
        if method == "GET" and len(rest) <= 1:
            return self._bundle(vault_url, name, self._find(name, rest[0] if rest else ""))
        if method == "POST" and rest and rest[-1] in ("wrapkey", "unwrapkey") and len(rest) <= 2:
            item = self._find(name, rest[0] if len(rest) == 2 else "")
            return self._operate(vault_url, name, item, rest[-1], body)
        return None

    # ------------------------------------------------------------------ operations
    def _create(self, name: str, body: Any) -> _KeyVersion:
        if not NAME_RE.match(name):
            raise KeyProblem(400, "BadParameter", "The request URI contains an invalid name: " + name[:40])
        if not isinstance(body, dict) or body.get("kty") not in ("RSA", "RSA-HSM"):
            raise KeyProblem(400, "BadParameter", "Property 'kty' is required; this vault creates RSA keys.")
        if body["kty"] == "RSA-HSM":
            raise KeyProblem(400, "BadParameter", "HSM-protected keys need a Premium vault.")
        size = body.get("key_size", 2048)
        if size not in KEY_SIZES:
            message = f"Invalid key size {str(size)[:10]}: use 2048, 3072 or 4096."
            raise KeyProblem(400, "BadParameter", message)
        ops = body.get("key_ops") or ALL_OPS
        if not isinstance(ops, list) or not all(op in ALL_OPS for op in ops):
            raise KeyProblem(400, "BadParameter", "Property 'key_ops' holds an unknown operation.")
        attributes = body.get("attributes") or {}
        if attributes.get("exportable"):
            raise KeyProblem(400, "BadParameter", "Exportable keys need a release policy and an HSM.")
        item = _KeyVersion(
            version=uuid.uuid4().hex,
            private=rsa.generate_private_key(public_exponent=65537, key_size=size),
            key_ops=list(ops),
            enabled=bool(attributes.get("enabled", True)),
            created=int(time.time()),
            tags=dict(body.get("tags") or {}),
        )
        with self._lock:
            self._keys.setdefault(name, []).append(item)
        return item

    def _find(self, name: str, version: str) -> _KeyVersion:
        with self._lock:
            versions = list(self._keys.get(name, ()))
        for item in reversed(versions):
            if not version or item.version == version:
                return item
        message = f"A key with (name/id) {name[:127]}/{version[:32]} was not found in this key vault."
        raise KeyProblem(404, "KeyNotFound", message)

    def _operate(self, vault_url: str, name: str, item: _KeyVersion, op: str, body: Any) -> dict[str, Any]:
        operation = "wrapKey" if op == "wrapkey" else "unwrapKey"
        if operation not in item.key_ops:
            raise KeyProblem(403, "Forbidden", f"Operation {operation} is not allowed on this key.")
        if not item.enabled:
            raise KeyProblem(403, "Forbidden", "Operation is not allowed on a disabled key.")
        if not isinstance(body, dict):
            raise KeyProblem(400, "BadParameter", "The request body must be a JSON object.")
        pad = _padding(body.get("alg"))
        value = unb64url(body.get("value"), "value")
        if op == "wrapkey":
            result = item.private.public_key().encrypt(value, pad)
        else:
            try:
                result = item.private.decrypt(value, pad)
            except ValueError:
                raise KeyProblem(400, "BadParameter", "The ciphertext could not be decrypted.") from None
            with self._lock:
                self.unwraps += 1
        return {"kid": self._kid(vault_url, name, item), "value": b64url(result)}

    # ------------------------------------------------------------------ shapes
    @staticmethod
    def _kid(vault_url: str, name: str, item: _KeyVersion) -> str:
        return f"{vault_url}/keys/{name}/{item.version}"

    def _bundle(self, vault_url: str, name: str, item: _KeyVersion) -> dict[str, Any]:
        public = item.private.public_key().public_numbers()
        return {
            "key": {
                "kid": self._kid(vault_url, name, item),
                "kty": "RSA",
                "key_ops": item.key_ops,
                "n": b64url(public.n.to_bytes((public.n.bit_length() + 7) // 8, "big")),
                "e": b64url(public.e.to_bytes((public.e.bit_length() + 7) // 8, "big")),
            },
            "attributes": {
                "enabled": item.enabled,
                "created": item.created,
                "updated": item.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
                "exportable": False,
            },
            "tags": item.tags,
        }
