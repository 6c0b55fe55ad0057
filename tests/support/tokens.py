"""Mint platform caller tokens for tests (RS256 key pair generated per process, HS256 dev secret).

Caller kinds: ``role="admin"`` / ``"member"`` mint a person's token (audience ``AUDIENCE``, ``role``
claim); ``role="service"`` mints the platform backend's own token (audience ``SERVICE_AUDIENCE``, no
``role`` claim, ``sub`` = its client id), as the platform's token service issues them."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.settings import get_settings

AUDIENCE = "dynamics-integration"
SERVICE_AUDIENCE = "dynamics-integration-service"
SERVICE_CLIENT_ID = "platform-backend"
ISSUER = "https://platform.local"
DEV_SECRET = "test-only-dev-secret-0123456789abcdef"


@lru_cache(maxsize=4)
def _rsa_key(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rsa_key(name: str = "platform") -> rsa.RSAPrivateKey:
    """One key pair per name for the whole test process."""
    return _rsa_key(name)


def public_pem(name: str = "platform") -> str:
    return (
        rsa_key(name)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(
    workspace_id: str = "ws-a", user_id: str = "user-1", role: str = "admin", **overrides: Any
) -> dict[str, Any]:
    now = int(time.time())
    service = role == "service"
    base: dict[str, Any] = {
        "sub": SERVICE_CLIENT_ID if service and user_id == "user-1" else user_id,
        "workspace_id": workspace_id,
        "role": None if service else role,
        "aud": SERVICE_AUDIENCE if service else AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def rs256(payload: Mapping[str, Any] | None = None, *, key_name: str = "platform", **kw: Any) -> str:
    return jwt.encode(dict(payload or claims(**kw)), rsa_key(key_name), algorithm="RS256")


def hs256(payload: Mapping[str, Any] | None = None, *, secret: str = DEV_SECRET, **kw: Any) -> str:
    return jwt.encode(dict(payload or claims(**kw)), secret, algorithm="HS256")


def token(workspace_id: str = "ws-a", role: str = "admin", user_id: str = "user-1") -> str:
    return rs256(workspace_id=workspace_id, role=role, user_id=user_id)


def service_bearer(workspace_id: str = "ws-a", client_id: str = SERVICE_CLIENT_ID) -> dict[str, str]:
    """The platform service's Authorization header for ``workspace_id``."""
    return bearer(workspace_id, role="service", user_id=client_id)


def bearer(workspace_id: str = "ws-a", role: str = "admin", user_id: str = "user-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(workspace_id, role, user_id)}"}


def auth_env(*, allow_dev_hs256: bool = False) -> dict[str, str]:
    """Settings accepting this process's RS256 tokens, or (``allow_dev_hs256``) the development mode's
    HS256 ones instead: the app refuses HS256 next to a platform key."""
    env = {
        "PLATFORM_JWT_AUDIENCE": AUDIENCE,
        "PLATFORM_JWT_SERVICE_AUDIENCE": SERVICE_AUDIENCE,
        "PLATFORM_JWT_ISSUER": ISSUER,
    }
    if allow_dev_hs256:
        env["PLATFORM_JWT_ALLOW_DEV_HS256"] = "true"
        env["PLATFORM_JWT_DEV_HS256_SECRET"] = DEV_SECRET
    else:
        env["PLATFORM_JWT_PUBLIC_KEY"] = public_pem()
    return env


@contextmanager
def configured(monkeypatch: Any, extra: Mapping[str, str] | None = None, **kw: Any) -> Iterator[None]:
    """Point the settings loader at the test key (and ``extra`` settings) for the block."""
    for name in (
        "PLATFORM_JWT_JWKS_URL",
        "PLATFORM_JWT_PUBLIC_KEY",
        "PLATFORM_JWT_DEV_HS256_SECRET",
        "PLATFORM_JWT_ALLOW_DEV_HS256",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**auth_env(**kw), **(extra or {})}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()
