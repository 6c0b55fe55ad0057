"""Azure Key Vault secrets stand-in: the REST surface ``azure-keyvault-secrets`` ``SecretClient`` uses.

  PUT    /secrets/{name}                 set (new version)        GET /secrets/{name}[/{version}]
  GET    /secrets                        list latest properties   GET /secrets/{name}/versions
  DELETE /secrets/{name}                 soft delete → DeletedSecretBundle
  GET    /deletedsecrets[/{name}]        DELETE /deletedsecrets/{name} (purge)
  POST   /deletedsecrets/{name}/recover
  POST   /keys/{name}/create · GET /keys/{name}[/{version}] · POST /keys/{name}[/{version}]/wrapkey|unwrapkey
         (``emulators.keyvault.keys``: RSA keys, wrap/unwrap for ``CryptographyClient``)
Every call needs ``api-version`` (one the SDK knows) and ``Authorization: Bearer <token>`` with a token
from ``issue_token()``; otherwise 401 with the real challenge
``WWW-Authenticate: Bearer authorization="<authority>", resource="https://vault.azure.net"``.
Control API: POST /_emulator/faults {"status": 503, "count": n|null, "methods": ["PUT"]|null} ·
DELETE /_emulator/faults ·
GET /_emulator/stats · POST /_emulator/reset.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from emulators.entra.httpd import HttpsServer, Reply, Request
from emulators.keyvault.keys import KeyProblem, KeyStore
from emulators.tls import LocalCA

API_VERSIONS = {
    "2016-10-01",
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "7.5",
    "7.6",
    "2025-07-01",
    "2026-04-01",
}
NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
RESOURCE = "https://vault.azure.net"


@dataclass
class _Version:
    version: str
    value: str
    content_type: str | None
    tags: dict[str, str]
    enabled: bool
    created: int
    updated: int


@dataclass
class _Secret:
    versions: list[_Version] = field(default_factory=list)
    deleted_at: int | None = None


class KeyVaultEmulator:
    def __init__(
        self,
        *,
        authority: str = "https://login.microsoftonline.com/common",
        port: int = 0,
        ca: LocalCA | None = None,
    ) -> None:
        self.authority = authority
        self._lock = threading.Lock()
        self._server = HttpsServer(self._app, port=port, ca=ca)
        self._tokens: set[str] = set()
        self._reset_state()

    def _reset_state(self) -> None:
        self._secrets: dict[str, _Secret] = {}
        self.keys = KeyStore()
        self._fault_status: int | None = None
        self._fault_remaining: int | None = None
        self._fault_methods: frozenset[str] | None = None
        self.requests = 0
        self.unauthorized = 0

    # ------------------------------------------------------------------ lifecycle & controls
    def start(self) -> str:
        return self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> KeyVaultEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def vault_url(self) -> str:
        return self._server.base_url

    def issue_token(self) -> str:
        """A bearer token this vault accepts (what a managed identity would obtain)."""
        token = "kv." + secrets.token_urlsafe(24)
        self._tokens.add(token)
        return token

    def accept_token(self, token: str) -> None:
        """Also accept this bearer token (e.g. ``KEY_VAULT_LOCAL_TOKEN`` of a local app)."""
        self._tokens.add(token)

    def fail_with(
        self, status: int | None, count: int | None = None, methods: tuple[str, ...] | None = None
    ) -> None:
        """Answer every (or the next ``count``) data-plane request with ``status``; None clears.

        ``methods`` limits the fault to those HTTP methods (e.g. ``("PUT",)``: reads work, writes fail)."""
        with self._lock:
            self._fault_status, self._fault_remaining = status, count
            self._fault_methods = frozenset(m.upper() for m in methods) if methods else None

    def create_key(self, name: str, key_size: int = 2048) -> str:
        """Create (a new version of) an RSA wrapKey/unwrapKey key, as infra does; its versionless id."""
        body = {"kty": "RSA", "key_size": key_size, "key_ops": ["wrapKey", "unwrapKey"]}
        self.keys.route(self.vault_url, "POST", [name, "create"], body)
        return f"{self.vault_url}/keys/{name}"

    def all_values(self) -> list[str]:
        """Every stored value of every version, deleted ones included (for secret scans in tests)."""
        with self._lock:
            return [v.value for s in self._secrets.values() for v in s.versions]

    def live_names(self) -> list[str]:
        with self._lock:
            return sorted(n for n, s in self._secrets.items() if s.deleted_at is None)

    # ------------------------------------------------------------------ HTTP
    def _app(self, req: Request) -> Reply:
        if req.path.startswith("/_emulator/"):
            return self._control(req)
        self.requests += 1
        with self._lock:
            if self._fault_status is not None and (
                self._fault_methods is None or req.method in self._fault_methods
            ):
                status = self._fault_status
                if self._fault_remaining is not None:
                    self._fault_remaining -= 1
                    if self._fault_remaining <= 0:
                        self._fault_status = self._fault_remaining = None
                return _error(status, "ServiceUnavailable", "The service is temporarily unavailable.")
        version = req.query.get("api-version")
        if not version:
            return _error(400, "BadParameter", "The 'api-version' query parameter is missing.")
        if version not in API_VERSIONS:
            return _error(400, "BadParameter", f"The specified version ({version}) is not recognized.")
        auth = req.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if token not in self._tokens:
            self.unauthorized += 1
            challenge = f'Bearer authorization="{self.authority}", resource="{RESOURCE}"'
            body = {
                "error": {
                    "code": "Unauthorized",
                    "message": "AKV10000: Request is missing a Bearer or PoP token.",
                }
            }
            return Reply.json(body, 401, {"WWW-Authenticate": challenge})
        parts = [p for p in req.path.split("/") if p]
        try:
            return self._route(req, parts)
        except (_Problem, KeyProblem) as problem:
            return _error(problem.status, problem.code, problem.message)

    def _route(self, req: Request, parts: list[str]) -> Reply:
        method = req.method
        if parts and parts[0] == "keys":
            try:
                body = req.json() if method == "POST" else None
            except ValueError:
                raise _Problem(400, "BadParameter", "The request body is not valid JSON.") from None
            answer = self.keys.route(self.vault_url, method, parts[1:], body)
            if answer is not None:
                return Reply.json(answer)
        if parts == ["secrets"] and method == "GET":
            return self._list(req, [(n, s.versions[-1]) for n, s in self._live()], "secrets")
        if len(parts) >= 2 and parts[0] == "secrets":
            name = parts[1]
            if len(parts) == 2 and method == "PUT":
                return self._set(name, req.json())
            if len(parts) == 2 and method == "DELETE":
                return self._delete(name)
            if len(parts) == 3 and parts[2] == "versions" and method == "GET":
                secret = self._get_live(name)
                return self._list(req, [(name, v) for v in secret.versions], "versions")
            if len(parts) in (2, 3) and method == "GET":
                secret = self._get_live(name)
                wanted = parts[2] if len(parts) == 3 else ""
                for item in reversed(secret.versions):
                    if not wanted or item.version == wanted:
                        return Reply.json(self._bundle(name, item, with_value=True))
                raise _Problem(
                    404,
                    "SecretNotFound",
                    f"A secret with (name/id) {name}/{wanted} was not found in this key vault.",
                )
        if len(parts) >= 1 and parts[0] == "deletedsecrets":
            if len(parts) == 1 and method == "GET":
                with self._lock:
                    items = [
                        (n, s.versions[-1]) for n, s in self._secrets.items() if s.deleted_at is not None
                    ]
                return self._list(req, items, "deletedsecrets")
            name = parts[1] if len(parts) > 1 else ""
            with self._lock:
                secret = self._secrets.get(name)
                if secret is None or secret.deleted_at is None:
                    raise _Problem(404, "SecretNotFound", f"Deleted Secret not found: {name}")
                if len(parts) == 2 and method == "GET":
                    return Reply.json(self._deleted_bundle(name, secret))
                if len(parts) == 2 and method == "DELETE":
                    del self._secrets[name]
                    return Reply(204)
                if len(parts) == 3 and parts[2] == "recover" and method == "POST":
                    secret.deleted_at = None
                    return Reply.json(self._bundle(name, secret.versions[-1], with_value=False))
        raise _Problem(404, "NotFound", "The requested resource was not found.")

    def _live(self) -> list[tuple[str, _Secret]]:
        with self._lock:
            return sorted((n, s) for n, s in self._secrets.items() if s.deleted_at is None)

    def _get_live(self, name: str) -> _Secret:
        with self._lock:
            secret = self._secrets.get(name)
        if secret is None or secret.deleted_at is not None or not secret.versions:
            raise _Problem(
                404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault."
            )
        return secret

    def _set(self, name: str, body: Any) -> Reply:
        if not NAME_RE.match(name):
            raise _Problem(400, "BadParameter", "The request URI contains an invalid name: " + name[:40])
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            raise _Problem(400, "BadParameter", "Property 'value' is required and must be a string.")
        if len(body["value"].encode()) > 25 * 1024:
            raise _Problem(413, "RequestTooLarge", "Secret value exceeds the maximum size of 25 KB.")
        now = int(time.time())
        attributes = body.get("attributes") or {}
        item = _Version(
            version=uuid.uuid4().hex,
            value=body["value"],
            content_type=body.get("contentType"),
            tags=dict(body.get("tags") or {}),
            enabled=bool(attributes.get("enabled", True)),
            created=now,
            updated=now,
        )
        with self._lock:
            secret = self._secrets.setdefault(name, _Secret())
            if secret.deleted_at is not None:
                raise _Problem(
                    409,
                    "Conflict",
                    f"Secret {name} is currently in a deleted but recoverable state, "
                    "and its name cannot be reused; the secret can only be recovered or purged.",
                )
            secret.versions.append(item)
        return Reply.json(self._bundle(name, item, with_value=True))

    def _delete(self, name: str) -> Reply:
        with self._lock:
            secret = self._secrets.get(name)
            if secret is None or secret.deleted_at is not None:
                raise _Problem(
                    404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault."
                )
            secret.deleted_at = int(time.time())
            return Reply.json(self._deleted_bundle(name, secret))

    def _bundle(self, name: str, item: _Version, *, with_value: bool) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "id": f"{self.vault_url}/secrets/{name}/{item.version}",
            "attributes": {
                "enabled": item.enabled,
                "created": item.created,
                "updated": item.updated,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": item.tags,
        }
        if item.content_type is not None:
            bundle["contentType"] = item.content_type
        if with_value:
            bundle["value"] = item.value
        return bundle

    def _deleted_bundle(self, name: str, secret: _Secret) -> dict[str, Any]:
        bundle = self._bundle(name, secret.versions[-1], with_value=False)
        deleted = secret.deleted_at or int(time.time())
        bundle.update(
            recoveryId=f"{self.vault_url}/deletedsecrets/{name}",
            deletedDate=deleted,
            scheduledPurgeDate=deleted + 90 * 86400,
        )
        return bundle

    def _list(self, req: Request, items: list[tuple[str, _Version]], kind: str) -> Reply:
        size = max(1, min(int(req.query.get("maxresults") or 25), 25))
        start = int(req.query.get("$skiptoken") or 0)
        page = items[start : start + size]
        values = []
        for name, item in page:
            bundle = self._bundle(name, item, with_value=False)
            if kind == "secrets" or kind == "deletedsecrets":
                bundle["id"] = f"{self.vault_url}/secrets/{name}"
            values.append(bundle)
        next_link = None
        if start + size < len(items):
            path = quote(req.path)
            next_link = (
                f"{self.vault_url}{path}?api-version={req.query['api-version']}&maxresults={size}"
                f"&$skiptoken={start + size}"
            )
        return Reply.json({"value": values, "nextLink": next_link})

    def _control(self, req: Request) -> Reply:
        path = req.path.removeprefix("/_emulator/").strip("/")
        data = req.json() if req.body else {}
        if path == "faults" and req.method == "POST":
            methods = data.get("methods")
            self.fail_with(
                int(data.get("status", 503)), data.get("count"), tuple(methods) if methods else None
            )
            return Reply.json({"ok": True})
        if path == "faults" and req.method == "DELETE":
            self.fail_with(None)
            return Reply.json({"ok": True})
        if path == "stats" and req.method == "GET":
            return Reply.json(
                {
                    "requests": self.requests,
                    "unauthorized": self.unauthorized,
                    "liveSecrets": len(self.live_names()),
                    "unwraps": self.keys.unwraps,
                }
            )
        if path == "reset" and req.method == "POST":
            with self._lock:
                self._reset_state()
            return Reply.json({"ok": True})
        if path == "token" and req.method == "POST":
            return Reply.json({"accessToken": self.issue_token()})
        return Reply.json({"error": "unknown control endpoint"}, 404)


class _Problem(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> Reply:
    return Reply.json({"error": {"code": code, "message": message}}, status)
