"""Dynamics connection endpoints.

- ``POST   /api/dynamics/connect``         admin: ``{environmentUrl}`` → ``{authorizationUrl}``
- ``GET    /api/dynamics/oauth/callback``  anonymous (the one-time state names the flow): keeps the
                                           sign-in under a one-time handle (nothing is connected yet),
                                           redirects to ``FRONTEND_URL`` with
                                           ``?dynamics=confirm&handle=<handle>`` or
                                           ``?dynamics=error&code=<code>``
- ``POST   /api/dynamics/oauth/complete``  the admin who started: ``{handle}`` → the connected account
                                           (``signedInAs``, ``tenantId``, ``environmentUrl``); another
                                           user or workspace → 403, used or unknown → 410, expired → 410
- ``GET    /api/dynamics/connection``      ``{status, integrationUser, environmentUrl, connectedAt,
                                           lastRefreshAt, reason}``
- ``DELETE /api/dynamics/connection``      admin: disconnect (the token secret is removed)
Key Vault unavailable → 503 with ``Retry-After``, nothing half-written.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from core import bootstrap, openapi
from core.domain.caller import ADMINS, Caller
from core.domain.connection import ConnectionRecord, ConnectionStatus, InvalidEnvironmentUrl
from core.domain.integration_switch import IntegrationDisabled
from core.entrypoints.dynamics_problems import disabled_problem
from core.entrypoints.http_support import (
    HttpProblem,
    anonymous,
    authenticated,
    model_response,
    read_model,
    utc_iso,
)
from core.services.connection.service import ConnectError, ConnectionComponents, KeyVaultUnavailable
from core.settings import SettingsError

log = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]


def _components() -> ConnectionComponents:
    try:
        return bootstrap.app().connection
    except SettingsError as exc:  # names the missing setting, never a value
        raise HttpProblem(503, "Dynamics connection not configured", str(exc)) from None


TAG = ("Dynamics connection",)


class ConnectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    environmentUrl: str = Field(max_length=300, description="e.g. https://contoso.crm4.dynamics.com")


class ConnectResponse(BaseModel):
    authorizationUrl: str


class CompleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handle: str = Field(
        min_length=1, max_length=200, description="the `handle` the callback put on the frontend URL"
    )


class ConnectedAccount(BaseModel):
    """What was connected, for the admin to confirm."""

    status: str = Field(description="connected")
    signedInAs: str | None = Field(description="UPN or e-mail of the Microsoft account that signed in")
    tenantId: str | None = Field(description="Entra tenant of that account")
    environmentUrl: str
    dynamicsUserId: str | None
    connectedAt: str | None

    @classmethod
    def of(cls, record: ConnectionRecord) -> ConnectedAccount:
        return cls(
            status=record.status.value,
            signedInAs=record.integration_user_email,
            tenantId=record.tenant_id,
            environmentUrl=record.environment_url,
            dynamicsUserId=record.dynamics_user_id,
            connectedAt=utc_iso(record.connected_at),
        )


class IntegrationUser(BaseModel):
    email: str | None
    dynamicsUserId: str | None


class ConnectionView(BaseModel):
    status: str = Field(description="connected | reconnect_required | disconnected")
    integrationUser: IntegrationUser | None
    environmentUrl: str | None
    connectedAt: str | None
    lastRefreshAt: str | None
    reason: str | None = Field(
        description="inactivity | revoked | consent_or_mfa_required (reconnect_required)"
    )

    @classmethod
    def of(cls, record: ConnectionRecord | None) -> ConnectionView:
        """What the workspace may see of its connection: status, who and when, never a secret."""
        if record is None or record.status is ConnectionStatus.DISCONNECTED:
            return cls(
                status=ConnectionStatus.DISCONNECTED.value,
                integrationUser=None,
                environmentUrl=None,
                connectedAt=None,
                lastRefreshAt=None,
                reason=None,
            )
        return cls(
            status=record.status.value,
            integrationUser=IntegrationUser(
                email=record.integration_user_email, dynamicsUserId=record.dynamics_user_id
            ),
            environmentUrl=record.environment_url,
            connectedAt=utc_iso(record.connected_at),
            lastRefreshAt=utc_iso(record.last_refresh_at),
            reason=record.reason,
        )


def _key_vault_down() -> HttpProblem:
    return HttpProblem(
        503,
        "Token storage unavailable",
        "Key Vault cannot be reached right now; nothing was changed. Try again in a minute.",
        headers={"Retry-After": "60"},
    )


@bp.route(route="api/dynamics/connect", methods=["POST"])
@authenticated(admin=True)
def dynamics_connect(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    body = read_model(req, ConnectRequest, max_bytes=4096)
    try:
        url = _components().service.start_connect(caller, body.environmentUrl)
    except InvalidEnvironmentUrl as exc:
        raise HttpProblem(
            400,
            "Invalid environment URL",
            str(exc),
            errors=[{"pointer": "/environmentUrl", "message": str(exc)}],
        ) from None
    except KeyVaultUnavailable:
        raise _key_vault_down() from None
    except IntegrationDisabled as exc:
        raise disabled_problem(exc) from None
    return model_response(ConnectResponse(authorizationUrl=url), headers={"Cache-Control": "no-store"})


@bp.route(route="api/dynamics/oauth/callback", methods=["GET"])
@anonymous
def dynamics_oauth_callback(req: func.HttpRequest) -> func.HttpResponse:
    params = {k: req.params[k] for k in ("code", "state", "error", "error_description") if req.params.get(k)}
    try:
        handle = _components().service.receive_callback(params)
        query = {"dynamics": "confirm", "handle": handle}
    except ConnectError as exc:
        log.warning("Dynamics OAuth callback refused: %s", exc.code)
        query = {"dynamics": "error", "code": exc.code}
    frontend = bootstrap.app().settings.require("FRONTEND_URL")
    sep = "&" if "?" in frontend else "?"
    return func.HttpResponse(
        status_code=302,
        headers={
            "Location": f"{frontend}{sep}{urlencode(query)}",
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


# Completion refusals and failures: the caller is not the one who started (403), the handle is spent,
# unknown or expired (410), Microsoft or the environment refused the kept sign-in (502), a dependency is
# down (503). In every case nothing was stored.
_COMPLETION_PROBLEMS: dict[str, tuple[int, str]] = {
    "not_initiator": (403, "Not your sign-in"),
    "invalid_handle": (410, "Sign-in no longer usable"),
    "expired_handle": (410, "Sign-in expired"),
    "invalid_state": (410, "Sign-in no longer usable"),
    "token_exchange_failed": (502, "Microsoft refused the sign-in"),
    "whoami_failed": (502, "The Dynamics environment refused the sign-in"),
    "identity_provider_unavailable": (503, "Microsoft sign-in unavailable"),
    "key_vault_unavailable": (503, "Token storage unavailable"),
    "storage_unavailable": (503, "Storage unavailable"),
}


@bp.route(route="api/dynamics/oauth/complete", methods=["POST"])
@authenticated(admin=True)
def dynamics_oauth_complete(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    body = read_model(req, CompleteRequest, max_bytes=1024)
    try:
        record = _components().service.complete_connect(caller, body.handle)
    except IntegrationDisabled as exc:
        raise disabled_problem(exc) from None
    except ConnectError as exc:
        status, title = _COMPLETION_PROBLEMS.get(exc.code, (502, "Sign-in could not be completed"))
        log.warning("Dynamics OAuth completion refused: %s", exc.code)
        raise HttpProblem(
            status,
            title,
            "Nothing was connected. Start again from the Dynamics settings."
            if status != 503
            else "Nothing was connected. Try again in a minute.",
            headers={"Retry-After": "60"} if status == 503 else None,
            extra={"code": exc.code},
        ) from None
    return model_response(ConnectedAccount.of(record), headers={"Cache-Control": "no-store"})


@bp.route(route="api/dynamics/connection", methods=["GET"])
@authenticated()
def dynamics_connection_get(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    record = _components().service.get(caller.workspace_id)
    return model_response(ConnectionView.of(record), headers={"Cache-Control": "no-store"})


@bp.route(route="api/dynamics/connection", methods=["DELETE"])
@authenticated(admin=True)
def dynamics_connection_delete(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    try:
        _components().service.disconnect(caller.workspace_id)
    except KeyVaultUnavailable:
        raise _key_vault_down() from None
    return func.HttpResponse(status_code=204)


openapi.register(
    "POST",
    "/api/dynamics/connect",
    "Start connecting Dynamics 365 (returns the Microsoft sign-in URL)",
    request=ConnectRequest,
    response=ConnectResponse,
    problems=(400, 401, 403, 409, 415, 503),
    tags=TAG,
    description="409 `code: integration_disabled` when Dynamics is not the workspace's enabled CRM: an "
    "admin enables it on the Integrations page first.",
    callers=ADMINS,
)
openapi.register(
    "GET",
    "/api/dynamics/oauth/callback",
    "OAuth redirect target: keeps the sign-in under a one-time handle and redirects to the frontend",
    status=302,
    anonymous=True,
    tags=TAG,
    headers={
        "Location": "FRONTEND_URL with ?dynamics=confirm&handle=<handle> (nothing is connected until the "
        "admin who started posts the handle to /api/dynamics/oauth/complete within 10 minutes), or "
        "?dynamics=error&code=<code>; codes: invalid_state (forged, unknown or already used), expired_state "
        "(over 10 minutes), invalid_request, access_denied, consent_required, storage_unavailable",
    },
    query={
        "code": {"type": "string"},
        "state": {"type": "string"},
        "error": {"type": "string"},
    },
)
openapi.register(
    "POST",
    "/api/dynamics/oauth/complete",
    "Complete connecting Dynamics 365 (the admin who started confirms the sign-in)",
    description="Redeems the sign-in the callback kept under `handle` and stores the connection. Only the "
    "admin who called /api/dynamics/connect, in the same workspace, may complete: anyone else gets 403 and "
    "the handle is spent; a used or unknown handle, or one older than 10 minutes, gets 410. The answer names "
    "the Microsoft account, tenant and environment that were connected. Problems carry a `code`: "
    "not_initiator, invalid_handle, expired_handle, token_exchange_failed, whoami_failed, "
    "identity_provider_unavailable, key_vault_unavailable, storage_unavailable; 409 integration_disabled "
    "when Dynamics was disabled meanwhile.",
    request=CompleteRequest,
    response=ConnectedAccount,
    problems=(400, 401, 403, 409, 410, 415, 502, 503),
    tags=TAG,
    callers=ADMINS,
)
openapi.register(
    "GET",
    "/api/dynamics/connection",
    "Connection state and integration user",
    response=ConnectionView,
    problems=(401,),
    tags=TAG,
)
openapi.register(
    "DELETE",
    "/api/dynamics/connection",
    "Disconnect Dynamics 365",
    status=204,
    problems=(401, 403, 503),
    tags=TAG,
    callers=ADMINS,
)
