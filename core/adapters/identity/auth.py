"""Verification of the platform's caller JWTs (PyJWT); ``AuthError`` / ``AuthConfigurationError`` are
the domain's (``core.domain.caller``), so the HTTP layer renders them without importing this adapter.

- RS256 against ``PLATFORM_JWT_JWKS_URL`` (``JwksKeys`` below) or the PEM in ``PLATFORM_JWT_PUBLIC_KEY``.
- HS256 with ``PLATFORM_JWT_DEV_HS256_SECRET`` only when ``PLATFORM_JWT_ALLOW_DEV_HS256=true``, and never
  on Azure or when a JWKS URL or public key is configured: a leaked development secret must not mint
  tokens a deployment accepts.
- The key is chosen by the token's ``alg`` and each key is only ever used with its own algorithm, so
  ``alg: none`` and algorithm confusion (an RSA public key used as an HMAC secret) cannot verify.
- Caller kinds by audience: ``PLATFORM_JWT_AUDIENCE`` -> a person (``role`` admin/member),
  ``PLATFORM_JWT_SERVICE_AUDIENCE`` -> the platform's service; a token naming both is refused.
- ``exp``, ``iss``, ``aud``, ``sub`` and ``workspace_id`` are required (``role`` for people);
  ``nbf``/``iat`` are honoured when present. Errors carry a short, safe reason — never the token or a key.

JWKS cost: a token with a known ``kid`` costs no request. The key set is fetched at most once per
``JWKS_REFETCH_COOLDOWN_S`` whatever the tokens say (an unknown ``kid`` is answered from the last fetched
set until then: cached negatively), and refreshed when older than ``JWKS_MAX_AGE_S`` so a removed key
stops verifying. A failed fetch keeps the keys already known, so a flood of bad tokens while the JWKS
endpoint is down gets 401s, not 503s; only when no key was ever fetched is it a configuration problem.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from core.domain.caller import AuthConfigurationError, AuthError, Caller, InvalidIdentity
from core.settings import Settings

log = logging.getLogger(__name__)

REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 16 * 1024
MAX_KID_LENGTH = 256
JWKS_REFETCH_COOLDOWN_S = 60.0
JWKS_MAX_AGE_S = 3600.0
JWKS_FAILED_FETCH_RETRY_S = 5.0


class JwksKeys:
    """The platform's RS256 keys by ``kid``, fetched from its JWKS endpoint under a cooldown (see the
    module docstring for the costs). Thread-safe: one fetch at a time, the others wait for its result."""

    def __init__(
        self,
        client: jwt.PyJWKClient,
        cooldown_s: float = JWKS_REFETCH_COOLDOWN_S,
        max_age_s: float = JWKS_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._cooldown_s = cooldown_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._next_fetch_at = float("-inf")  # no fetch before this (cooldown or failure back-off)
        self._ever_fetched = False

    def key(self, kid: str) -> Any:
        now = self._clock()
        key = self._keys.get(kid)
        if key is not None and not self._stale(now):
            return key
        with self._lock:
            now = self._clock()
            if (kid not in self._keys or self._stale(now)) and now >= self._next_fetch_at:
                self._fetch(now)
            key = self._keys.get(kid)
        if key is not None:
            return key
        if not self._ever_fetched:
            raise AuthConfigurationError("the JWKS endpoint could not be reached")
        raise AuthError("the token's signing key is unknown")

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self._max_age_s

    def _fetch(self, now: float) -> None:
        try:
            keys = jwt.PyJWKSet.from_dict(self._client.fetch_data()).keys
        except jwt.PyJWTError as exc:
            # Keep what is known; try again after a short back-off, never per request.
            self._next_fetch_at = now + min(self._cooldown_s, JWKS_FAILED_FETCH_RETRY_S)
            log.warning(
                "JWKS fetch failed (%s); keeping %d known key(s)", type(exc).__name__, len(self._keys)
            )
            return
        self._keys = {str(k.key_id): k.key for k in keys if k.key_id and k.algorithm_name in ("RS256", None)}
        self._fetched_at = now
        self._next_fetch_at = now + self._cooldown_s
        self._ever_fetched = True


@dataclass(frozen=True)
class TokenVerifier:
    audience: str
    issuer: str
    jwks_client: jwt.PyJWKClient | None = None
    public_key: str | None = None
    dev_hs256_secret: str | None = None
    leeway: int = LEEWAY_SECONDS
    service_audience: str | None = None
    hs256_refused_because: str | None = None  # set when a dev secret is configured but refused
    jwks_keys: JwksKeys | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.jwks_client is not None and self.jwks_keys is None:
            object.__setattr__(self, "jwks_keys", JwksKeys(self.jwks_client))
        if self.service_audience is not None and self.service_audience == self.audience:
            raise AuthConfigurationError(
                "PLATFORM_JWT_SERVICE_AUDIENCE must differ from PLATFORM_JWT_AUDIENCE"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        jwks_url = settings.get("PLATFORM_JWT_JWKS_URL")
        public_key = settings.get("PLATFORM_JWT_PUBLIC_KEY")
        secret = settings.get("PLATFORM_JWT_DEV_HS256_SECRET")
        allow_dev = settings.get_bool("PLATFORM_JWT_ALLOW_DEV_HS256") and bool(secret)
        refused: str | None = None
        if allow_dev and settings.on_azure:
            refused = "HS256 tokens are refused when running on Azure"
        elif allow_dev and (jwks_url or public_key):
            refused = "HS256 tokens are refused while a platform RS256 key is configured"
        if refused:
            log.error("PLATFORM_JWT_ALLOW_DEV_HS256 is ignored: %s", refused)
        return cls(
            audience=settings.require("PLATFORM_JWT_AUDIENCE"),
            issuer=settings.require("PLATFORM_JWT_ISSUER"),
            jwks_client=jwt.PyJWKClient(jwks_url, cache_keys=False, timeout=5) if jwks_url else None,
            public_key=public_key.replace("\\n", "\n") if public_key else None,
            dev_hs256_secret=secret if (allow_dev and not refused) else None,
            service_audience=settings.get("PLATFORM_JWT_SERVICE_AUDIENCE"),
            hs256_refused_because=refused,
        )

    def _key_for(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("the bearer token is not a well-formed JWT") from exc
        alg = header.get("alg")
        if alg == "RS256":
            if self.jwks_keys is not None:
                kid = header.get("kid")
                if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
                    raise AuthError("the token's header must name its signing key (kid)")
                return self.jwks_keys.key(kid), "RS256"
            if self.public_key is not None:
                return self.public_key, "RS256"
            raise AuthError("RS256 tokens are not accepted: no platform key is configured")
        if alg == "HS256" and self.dev_hs256_secret is not None:
            return self.dev_hs256_secret, "HS256"
        if alg == "HS256" and self.hs256_refused_because:
            raise AuthError(self.hs256_refused_because)
        raise AuthError(f"token algorithm {str(alg)[:16]!r} is not accepted")

    def caller(self, authorization: str | None) -> Caller:
        """The caller of a request from its ``Authorization`` header (``AuthError`` when refused)."""
        if not authorization:
            raise AuthError("an Authorization: Bearer <token> header is required")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>'")
        return self.verify(token.strip())

    def verify(self, token: str) -> Caller:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise AuthError("the bearer token is missing or too long")
        if self.jwks_keys is None and self.public_key is None and self.dev_hs256_secret is None:
            raise AuthConfigurationError(
                "no caller-token key configured: set PLATFORM_JWT_JWKS_URL or PLATFORM_JWT_PUBLIC_KEY"
            )
        key, alg = self._key_for(token)
        audiences = [self.audience, *([self.service_audience] if self.service_audience else [])]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audiences,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError("the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("the token's audience is not this service") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("the token's issuer is not the platform") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"the token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("the token's signature is invalid") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("the token is invalid") from exc
        aud = claims.get("aud")
        named = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
        is_person, is_service = (
            self.audience in named,
            bool(self.service_audience) and (self.service_audience in named),
        )
        if is_person and is_service:
            raise AuthError("the token names both the people and the service audience; it must name one")
        try:
            return Caller.from_claims(claims, service=is_service)
        except InvalidIdentity as exc:
            raise AuthError(str(exc)) from exc
