"""Microsoft Entra ID (v2.0 endpoints) stand-in, enough for the real ``msal`` auth-code + refresh flows.

Endpoints (``{tenant}`` is the configured tenant id, or ``organizations``/``common``):
  GET  /{tenant}/v2.0/.well-known/openid-configuration
  GET  /{tenant}/oauth2/v2.0/authorize   → 302 to redirect_uri with code+state (or error=consent_required);
                                           PKCE S256 (what msal sends) or plain, as Entra allows
  POST /{tenant}/oauth2/v2.0/token       → authorization_code (PKCE check, one-time codes) and refresh_token
                                           (rotation: every use returns a new refresh token); client secret
                                           check
  GET  /{tenant}/discovery/v2.0/keys     → JWKS of the RS256 key signing access and id tokens
Control API (no auth; loopback only):
  POST /_emulator/reset · GET /_emulator/stats · POST /_emulator/clock {"advanceSeconds": n}
  POST /_emulator/users {"email", "objectId"?, "name"?} (the last one added signs in by default)
  POST /_emulator/users/{objectId}/revoke   (password change: every grant of that user → AADSTS50173)
  POST /_emulator/faults {"kind": inactivity|revoked|interaction_required|server_error|consent_required|slow,
                          "count": n|null, "status": 503, "delaySeconds": s}   · DELETE /_emulator/faults
  POST /_emulator/config {"accessTokenLifetime": s, "refreshTokenInactivity": s, "revokeUsedRefreshTokens": b}
  POST /_emulator/grants {"count": n, "scope": s} → {"refreshTokens": [...]} (benchmarks: no browser)
Refresh tokens unused for longer than ``refresh_token_inactivity`` (on the advanceable clock) fail with
AADSTS700082 by themselves.

Rotation as Microsoft documents it (entra/identity-platform/refresh-tokens: "Refresh tokens replace themselves
with a fresh token upon every use. The Microsoft identity platform doesn't revoke old refresh tokens when
used to fetch new access tokens"): a redeemed refresh token keeps working (its inactivity clock restarts at
each use) until it times out or its user's grants are revoked. ``revoke_used_refresh_tokens=True`` makes the
stand-in stricter than Entra (a used refresh token answers AADSTS70000), for tests that must prove the
client always keeps and uses the newest one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.entra.httpd import HttpsServer, Reply, Request
from emulators.tls import LocalCA

OIDC_SCOPES = {"openid", "profile", "offline_access", "email"}
DEFAULT_TENANT = "8d3a7b52-6f8e-4c1e-9f5a-2b7c4d9e0f11"

_MESSAGES = {
    700082: "The refresh token has expired due to inactivity. "
    "The token was issued on {issued} and was inactive for {inactive}.",
    50173: "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
    "The user might have changed or reset their password.",
    50076: "Due to a configuration change made by your administrator, or because you moved to a new "
    "location, you must use multi-factor authentication to access the resource.",
    65001: "The user or administrator has not consented to use the application.",
    70000: "The provided value for the 'refresh_token' is not valid.",
    70008: "The provided authorization code or refresh token has expired due to inactivity.",
    54005: "OAuth2 Authorization code was already redeemed, "
    "please retry with a new valid code or use an existing refresh token.",
    501481: "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    7000215: "Invalid client secret provided.",
    700016: "Application was not found in the directory.",
    900144: "The request body must contain the following parameter: '{param}'.",
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class EntraUser:
    object_id: str
    email: str
    name: str


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    challenge: str | None
    method: str | None
    user: EntraUser
    expires_at: float


@dataclass
class _Grant:
    client_id: str
    user: EntraUser
    scope: str
    issued_at: float
    revoked: bool = False
    last_used_at: float | None = None  # inactivity counts from the last redemption (or issue)


@dataclass
class _Fault:
    kind: str
    remaining: int | None  # None = until cleared
    status: int = 503
    delay: float = 0.0


@dataclass
class _Stats:
    authorize: int = 0
    authorization_code: int = 0
    refresh_token: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class EntraEmulator:
    def __init__(
        self,
        *,
        client_id: str = "11111111-2222-3333-4444-555555555555",
        client_secret: str = "local-client-secret",
        tenant_id: str = DEFAULT_TENANT,
        access_token_lifetime: int = 3600,
        refresh_token_inactivity: int = 90 * 24 * 3600,
        code_lifetime: int = 600,
        revoke_used_refresh_tokens: bool = False,
        redirect_uris: tuple[str, ...] | None = None,
        port: int = 0,
        ca: LocalCA | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant_id = tenant_id
        self.access_token_lifetime = access_token_lifetime
        self.refresh_token_inactivity = refresh_token_inactivity
        self.code_lifetime = code_lifetime
        self.revoke_used_refresh_tokens = revoke_used_refresh_tokens
        self.redirect_uris = redirect_uris  # the app registration's; None accepts any https URI
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = _b64url(
            hashlib.sha256(str(self._key.public_key().public_numbers().n).encode()).digest()[:12]
        )
        self._lock = threading.Lock()
        self._server = HttpsServer(self._app, port=port, ca=ca)
        self._reset_state()

    # ------------------------------------------------------------------ lifecycle
    def _reset_state(self) -> None:
        self._clock_offset = 0.0
        self._codes: dict[str, _Code] = {}
        self._grants: dict[str, _Grant] = {}  # refresh token → grant
        self._faults: list[_Fault] = []
        self._users: dict[str, EntraUser] = {}
        self._current_user: EntraUser | None = None
        self.stats = _Stats()
        self.add_user("integration.user@contoso.example", name="Integration User")

    def start(self) -> str:
        return self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> EntraEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    def public_jwk(self) -> dict[str, str]:
        numbers = self._key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64url(numbers.e.to_bytes(3, "big")),
        }

    # ------------------------------------------------------------------ controls (also over HTTP)
    def now(self) -> float:
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._clock_offset += seconds

    def add_user(self, email: str, object_id: str | None = None, name: str | None = None) -> EntraUser:
        user = EntraUser(object_id or str(uuid.uuid4()), email, name or email.split("@")[0])
        with self._lock:
            self._users[user.object_id] = user
            self._current_user = user
        return user

    @property
    def current_user(self) -> EntraUser:
        assert self._current_user is not None
        return self._current_user

    def sign_in_as(self, object_id: str) -> None:
        with self._lock:
            self._current_user = self._users[object_id]

    def revoke_user(self, object_id: str) -> int:
        """A password change: every refresh token of the user now fails with AADSTS50173."""
        with self._lock:
            grants = [g for g in self._grants.values() if g.user.object_id == object_id and not g.revoked]
            for grant in grants:
                grant.revoked = True
            return len(grants)

    def set_fault(self, kind: str, count: int | None = None, status: int = 503, delay: float = 0.0) -> None:
        allowed = {
            "inactivity",
            "revoked",
            "interaction_required",
            "server_error",
            "consent_required",
            "slow",
        }
        if kind not in allowed:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(allowed)}")
        with self._lock:
            self._faults.append(_Fault(kind, count, status, delay))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def active_refresh_tokens(self) -> int:
        with self._lock:
            return sum(1 for g in self._grants.values() if not g.revoked)

    def mint_refresh_token(self, user: EntraUser | None = None, scope: str = "") -> str:
        """Benchmarks only: a live grant without the browser round trip."""
        token = "rt." + secrets.token_urlsafe(48)
        with self._lock:
            self._grants[token] = _Grant(self.client_id, user or self.current_user, scope, self.now())
        return token

    def _take_fault(self, kinds: set[str]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds:
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------------ routing
    def _app(self, req: Request) -> Reply:
        if req.path.startswith("/_emulator/"):
            return self._control(req)
        parts = req.path.strip("/").split("/")
        if len(parts) < 2:
            return Reply.json({"error": "not_found"}, 404)
        tenant, rest = parts[0], "/".join(parts[1:])
        if tenant not in {self.tenant_id, "organizations", "common"}:
            return self._error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        if rest == "v2.0/.well-known/openid-configuration" and req.method == "GET":
            return self._openid_configuration(tenant)
        if rest == "discovery/v2.0/keys" and req.method == "GET":
            return Reply.json({"keys": [self.public_jwk()]})
        if rest == "oauth2/v2.0/authorize" and req.method == "GET":
            return self._authorize(req)
        if rest == "oauth2/v2.0/token" and req.method == "POST":
            slow = self._take_fault({"slow"})
            if slow:
                time.sleep(slow.delay)
            return self._token(req)
        return Reply.json({"error": "not_found"}, 404)

    def _openid_configuration(self, tenant: str) -> Reply:
        base = f"{self.base_url}/{tenant}"
        return Reply.json(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
                "tenant_region_scope": "EU",
            }
        )

    # ------------------------------------------------------------------ /authorize
    def _authorize(self, req: Request) -> Reply:
        q = req.query
        self.stats.authorize += 1
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id:
            return self._error(400, "unauthorized_client", 700016, _MESSAGES[700016])
        if not redirect_uri.startswith(("https://", "http://localhost", "http://127.0.0.1")) or (
            self.redirect_uris is not None and redirect_uri not in self.redirect_uris
        ):  # Entra shows an error page here; it never redirects to an unregistered URI
            return self._error(
                400,
                "invalid_request",
                50011,
                f"The redirect URI '{redirect_uri[:200]}' specified in the request does not match the "
                f"redirect URIs configured for the application '{self.client_id}'.",
            )
        if q.get("response_type") != "code":
            return self._error(400, "unsupported_response_type", 700054, "response_type must be code.")
        state = q.get("state")
        back: dict[str, str] = {}
        if self._take_fault({"consent_required"}):
            back = {"error": "consent_required", "error_description": f"AADSTS65001: {_MESSAGES[65001]}"}
        elif q.get("code_challenge") and q.get("code_challenge_method", "plain") not in {"S256", "plain"}:
            back = {
                "error": "invalid_request",
                "error_description": "AADSTS501491: code_challenge_method must be S256 or plain.",
            }
        else:
            user = self.current_user
            hint = q.get("login_hint")
            if hint:
                user = next((u for u in self._users.values() if u.email.lower() == hint.lower()), user)
            code = "code." + secrets.token_urlsafe(32)
            with self._lock:
                self._codes[code] = _Code(
                    client_id=self.client_id,
                    redirect_uri=redirect_uri,
                    scope=q.get("scope", ""),
                    nonce=q.get("nonce"),
                    challenge=q.get("code_challenge"),
                    method=q.get("code_challenge_method", "plain") if q.get("code_challenge") else None,
                    user=user,
                    expires_at=self.now() + self.code_lifetime,
                )
            back = {"code": code}
        if state is not None:
            back["state"] = state
        sep = "&" if "?" in redirect_uri else "?"
        return Reply(302, b"", {"Location": f"{redirect_uri}{sep}{urlencode(back)}"})

    # ------------------------------------------------------------------ /token
    def _error(self, status: int, error: str, code: int, message: str, suberror: str | None = None) -> Reply:
        self.stats.errors[error] = self.stats.errors.get(error, 0) + 1
        body: dict[str, Any] = {
            "error": error,
            "error_description": f"AADSTS{code}: {message} Trace ID: {uuid.uuid4()} Correlation ID: "
            f"{uuid.uuid4()} Timestamp: {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}",
            "error_codes": [code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }
        if suberror:
            body["suberror"] = suberror
        return Reply.json(body, status, {"Cache-Control": "no-store"})

    def _token(self, req: Request) -> Reply:
        form = req.form()
        client_id = form.get("client_id")
        secret = form.get("client_secret")
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if client_id != self.client_id:
            return self._error(400, "unauthorized_client", 700016, _MESSAGES[700016])
        if not secret or not secrets.compare_digest(secret, self.client_secret):
            return self._error(401, "invalid_client", 7000215, _MESSAGES[7000215])
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            self.stats.authorization_code += 1
        elif grant_type == "refresh_token":
            self.stats.refresh_token += 1
        else:
            return self._error(400, "unsupported_grant_type", 70003, "The grant type is not supported.")
        kinds = (
            {"server_error"}
            if grant_type == "authorization_code"
            else {"server_error", "inactivity", "revoked", "interaction_required"}
        )
        fault = self._take_fault(kinds)
        if fault and fault.kind == "server_error":
            return self._error(
                fault.status, "temporarily_unavailable", 90033, "A transient error has occurred."
            )
        if grant_type == "authorization_code":
            return self._redeem_code(form)
        return self._redeem_refresh_token(form, fault)

    def _redeem_code(self, form: dict[str, str]) -> Reply:
        code = form.get("code")
        if not code:
            return self._error(400, "invalid_request", 900144, _MESSAGES[900144].format(param="code"))
        with self._lock:
            entry = self._codes.pop(code, None)  # one-time: gone whatever happens next
        if entry is None:
            return self._error(400, "invalid_grant", 54005, _MESSAGES[54005])
        if entry.expires_at < self.now():
            return self._error(400, "invalid_grant", 70008, _MESSAGES[70008])
        if form.get("redirect_uri") != entry.redirect_uri:
            return self._error(
                400, "invalid_grant", 50148, "The redirect URI does not match the one authorized."
            )
        if entry.challenge:
            verifier = form.get("code_verifier", "")
            computed = (
                verifier if entry.method == "plain" else _b64url(hashlib.sha256(verifier.encode()).digest())
            )
            if not verifier or not secrets.compare_digest(computed, entry.challenge):
                return self._error(400, "invalid_grant", 501481, _MESSAGES[501481])
        scope = form.get("scope") or entry.scope
        return self._issue(entry.user, scope, nonce=entry.nonce)

    def _redeem_refresh_token(self, form: dict[str, str], fault: _Fault | None) -> Reply:
        token = form.get("refresh_token", "")
        with self._lock:
            grant = self._grants.get(token)
        if grant is None or grant.client_id != self.client_id:
            return self._error(400, "invalid_grant", 70000, _MESSAGES[70000])
        now = self.now()
        inactive = now - (grant.last_used_at or grant.issued_at)
        if (fault and fault.kind == "inactivity") or inactive > self.refresh_token_inactivity:
            message = _MESSAGES[700082].format(
                issued=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(grant.issued_at)),
                inactive=f"{int(inactive // 86400)}.00:00:00",
            )
            return self._error(400, "invalid_grant", 700082, message, suberror="bad_token")
        if grant.revoked or (fault and fault.kind == "revoked"):
            return self._error(400, "invalid_grant", 50173, _MESSAGES[50173], suberror="bad_token")
        if fault and fault.kind == "interaction_required":
            return self._error(400, "interaction_required", 50076, _MESSAGES[50076], suberror="basic_action")
        with self._lock:
            if self.revoke_used_refresh_tokens:
                if self._grants.pop(token, None) is None:  # a concurrent request used it first
                    return self._error(400, "invalid_grant", 70000, _MESSAGES[70000])
            else:
                grant.last_used_at = now  # Entra does not revoke a used refresh token
        scope = form.get("scope") or grant.scope
        return self._issue(grant.user, scope, nonce=None)

    def _issue(self, user: EntraUser, scope: str, nonce: str | None) -> Reply:
        now = int(self.now())
        scopes = scope.split()
        resource_scopes = [s for s in scopes if s not in OIDC_SCOPES]
        resource = resource_scopes[0] if resource_scopes else "00000003-0000-0000-c000-000000000000/.default"
        audience = resource.removesuffix("/.default").rstrip("/")
        if audience.startswith("https://") and audience.count("/") > 2:
            audience = "/".join(audience.split("/")[:3])
        access_claims = {
            "aud": audience,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.access_token_lifetime,
            "oid": user.object_id,
            "sub": _b64url(hashlib.sha256(f"{user.object_id}:{self.client_id}".encode()).digest()),
            "tid": self.tenant_id,
            "appid": self.client_id,
            "azp": self.client_id,
            "upn": user.email,
            "preferred_username": user.email,
            "name": user.name,
            "scp": "user_impersonation",
            "ver": "2.0",
            "uti": secrets.token_urlsafe(16),
        }
        headers = {"kid": self.kid, "typ": "JWT"}
        access_token = jwt.encode(access_claims, self._key, algorithm="RS256", headers=headers)
        refresh_token = "rt." + secrets.token_urlsafe(48)
        with self._lock:
            self._grants[refresh_token] = _Grant(self.client_id, user, scope, float(now))
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(s for s in scopes if s not in {"openid", "profile", "email"}) or scope,
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "client_info": _b64url(json.dumps({"uid": user.object_id, "utid": self.tenant_id}).encode()),
        }
        if "openid" in scopes or nonce is not None:
            id_claims: dict[str, Any] = {
                "aud": self.client_id,
                "iss": self.issuer,
                "iat": now,
                "nbf": now,
                "exp": now + 3600,
                "oid": user.object_id,
                "sub": access_claims["sub"],
                "tid": self.tenant_id,
                "preferred_username": user.email,
                "email": user.email,
                "name": user.name,
                "ver": "2.0",
            }
            if nonce is not None:
                id_claims["nonce"] = nonce
            body["id_token"] = jwt.encode(id_claims, self._key, algorithm="RS256", headers=headers)
        return Reply.json(body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    # ------------------------------------------------------------------ control API
    def _control(self, req: Request) -> Reply:
        path = req.path.removeprefix("/_emulator/").strip("/")
        data = req.json() if req.body else {}
        if path == "reset" and req.method == "POST":
            self._reset_state()
            return Reply.json({"ok": True})
        if path == "stats" and req.method == "GET":
            return Reply.json(
                {
                    "authorize": self.stats.authorize,
                    "authorizationCode": self.stats.authorization_code,
                    "refreshToken": self.stats.refresh_token,
                    "errors": self.stats.errors,
                    "activeRefreshTokens": self.active_refresh_tokens(),
                    "clockOffsetSeconds": self._clock_offset,
                }
            )
        if path == "clock" and req.method == "POST":
            self.advance_clock(float(data.get("advanceSeconds", 0)))
            return Reply.json({"now": self.now()})
        if path == "users" and req.method == "POST":
            user = self.add_user(str(data["email"]), data.get("objectId"), data.get("name"))
            return Reply.json({"objectId": user.object_id, "email": user.email, "name": user.name}, 201)
        if path.startswith("users/") and path.endswith("/revoke") and req.method == "POST":
            return Reply.json({"revoked": self.revoke_user(path.split("/")[1])})
        if path == "faults" and req.method == "POST":
            try:
                self.set_fault(
                    str(data.get("kind")),
                    data.get("count"),
                    int(data.get("status", 503)),
                    float(data.get("delaySeconds", 0)),
                )
            except ValueError as exc:
                return Reply.json({"error": str(exc)}, 400)
            return Reply.json({"ok": True})
        if path == "faults" and req.method == "DELETE":
            self.clear_faults()
            return Reply.json({"ok": True})
        if path == "grants" and req.method == "POST":  # benchmarks: live refresh tokens without a browser
            count = max(0, min(int(data.get("count", 1)), 100_000))
            scope = str(data.get("scope", ""))
            return Reply.json({"refreshTokens": [self.mint_refresh_token(scope=scope) for _ in range(count)]})
        if path == "config" and req.method == "POST":
            if "accessTokenLifetime" in data:
                self.access_token_lifetime = int(data["accessTokenLifetime"])
            if "refreshTokenInactivity" in data:
                self.refresh_token_inactivity = int(data["refreshTokenInactivity"])
            if "revokeUsedRefreshTokens" in data:
                self.revoke_used_refresh_tokens = bool(data["revokeUsedRefreshTokens"])
            return Reply.json({"ok": True})
        return Reply.json({"error": "unknown control endpoint"}, 404)
