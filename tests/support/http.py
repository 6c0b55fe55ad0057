"""Build ``func.HttpRequest`` objects and call blueprint functions directly (no HTTP server)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import azure.functions as func

_MISSING = object()


def request(
    method: str,
    route: str,
    *,
    json_body: Any = _MISSING,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    route_params: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> func.HttpRequest:
    hdrs = dict(headers or {})
    if json_body is not _MISSING:
        body = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
        hdrs.setdefault("Content-Type", "application/json")
    return func.HttpRequest(
        method=method,
        url=f"http://127.0.0.1:7071/api/{route}",
        headers=hdrs,
        params=dict(params or {}),
        route_params=dict(route_params or {}),
        body=body or b"",
    )


def user_function(fn: Any) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """The plain function behind a blueprint-decorated one (``FunctionBuilder``) or itself."""
    get = getattr(fn, "_function", None)
    if get is not None:
        return get.get_user_function()  # type: ignore[no-any-return]
    return fn  # type: ignore[no-any-return]


def call(fn: Any, req: func.HttpRequest) -> func.HttpResponse:
    return user_function(fn)(req)


def body_json(resp: func.HttpResponse) -> Any:
    return json.loads(resp.get_body() or b"null")


def configure_app(monkeypatch: Any, connection_string: str, **extra: str) -> None:
    """Point the app's settings at a test Azurite and the test token key (see tests.support.tokens)."""
    from core.settings import get_settings
    from tests.support import tokens

    for name in ("PLATFORM_JWT_JWKS_URL", "PLATFORM_JWT_DEV_HS256_SECRET", "PLATFORM_JWT_ALLOW_DEV_HS256"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AzureWebJobsStorage__accountName", raising=False)
    env = {**tokens.auth_env(), "AzureWebJobsStorage": connection_string, **extra}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    # The app checks every configuration save against live Dynamics metadata; these tests exercise the
    # API without a Dynamics connection, so their app has no such check.
    from tests.support.app import use_app

    use_app(monkeypatch, metadata_checks=[])


def without_warnings(saved: dict[str, Any]) -> dict[str, Any]:
    """A configuration answer without its read-only ``warnings`` and ``drift``: the document as stored."""
    return {k: v for k, v in saved.items() if k not in ("warnings", "drift")}
