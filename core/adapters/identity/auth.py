"""Verification of the platform's caller JWTs (PyJWT); ``AuthError`` / ``AuthConfigurationError`` are
the domain's (``core.domain.caller``), so the HTTP layer renders them without importing this adapter.

- RS256 against ``PLATFORM_JWT_JWKS_URL`` (keys fetched and cached by ``jwt.PyJWKClient``) or the PEM in
  ``PLATFORM_JWT_PUBLIC_KEY``.
- HS256 with ``PLATFORM_JWT_DEV_HS256_SECRET`` only when ``PLATFORM_JWT_ALLOW_DEV_HS256=true``.
- The key is chosen by the token's ``alg`` and each key is only ever used with its own algorithm, so
  ``alg: none`` and algorithm confusion (an RSA public key used as an HMAC secret) cannot verify.
- ``exp``, ``iss``, ``aud``, ``sub``, ``workspace_id`` and ``role`` are required; ``nbf``/``iat`` are
  honoured when present. Errors carry a short, safe reason — never the token or a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from core.domain.caller import AuthConfigurationError, AuthError, Caller, InvalidIdentity
from core.settings import Settings

REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 16 * 1024


@dataclass(frozen=True)
class TokenVerifier:
    audience: str
    issuer: str
    jwks_client: jwt.PyJWKClient | None = None
    public_key: str | None = None
    dev_hs256_secret: str | None = None
    leeway: int = LEEWAY_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        jwks_url = settings.get("PLATFORM_JWT_JWKS_URL")
        public_key = settings.get("PLATFORM_JWT_PUBLIC_KEY")
        secret = settings.get("PLATFORM_JWT_DEV_HS256_SECRET")
        allow_dev = settings.get_bool("PLATFORM_JWT_ALLOW_DEV_HS256")
        return cls(
            audience=settings.require("PLATFORM_JWT_AUDIENCE"),
            issuer=settings.require("PLATFORM_JWT_ISSUER"),
            jwks_client=jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None,
            public_key=public_key.replace("\\n", "\n") if public_key else None,
            dev_hs256_secret=secret if (allow_dev and secret) else None,
        )

    def _key_for(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("the bearer token is not a well-formed JWT") from exc
        alg = header.get("alg")
        if alg == "RS256":
            if self.jwks_client is not None:
                try:
                    return self.jwks_client.get_signing_key_from_jwt(token).key, "RS256"
                except jwt.PyJWKClientConnectionError as exc:
                    raise AuthConfigurationError("the JWKS endpoint could not be reached") from exc
                except jwt.PyJWTError as exc:
                    raise AuthError("the token's signing key is unknown") from exc
            if self.public_key is not None:
                return self.public_key, "RS256"
            raise AuthError("RS256 tokens are not accepted: no platform key is configured")
        if alg == "HS256" and self.dev_hs256_secret is not None:
            return self.dev_hs256_secret, "HS256"
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
        if self.jwks_client is None and self.public_key is None and self.dev_hs256_secret is None:
            raise AuthConfigurationError(
                "no caller-token key configured: set PLATFORM_JWT_JWKS_URL or PLATFORM_JWT_PUBLIC_KEY"
            )
        key, alg = self._key_for(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
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
        try:
            return Caller.from_claims(claims)
        except InvalidIdentity as exc:
            raise AuthError(str(exc)) from exc
