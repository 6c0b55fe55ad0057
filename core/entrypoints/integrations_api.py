"""CRM cards of the Integrations page; only one CRM may be enabled at a time.

- ``GET /api/integrations``        the four cards with ``enabled``; the Dynamics card also says whether it
                                   is connected, configured and how the last export went (stored state
                                   only: no call to Dynamics)
- ``PUT /api/integrations/{crm}``  ``{"enabled": true|false}`` (admin); 409 names the active CRM
"""

from __future__ import annotations

import datetime as dt

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from core import bootstrap, openapi
from core.domain.caller import ADMINS, Caller
from core.domain.jobs import ExportEntity, JobState
from core.entrypoints.http_support import HttpProblem, authenticated, model_response, read_model
from core.entrypoints.job_queries import JobCounts
from core.services.integrations.service import (
    CRMS,
    ActiveCrmConflict,
    CardConnectionStatus,
    DynamicsCardState,
    IntegrationCard,
)

bp = func.Blueprint()  # type: ignore[no-untyped-call]
TAG = ("Integrations",)


class EnableRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    enabled: bool


class CardConnectionModel(BaseModel):
    status: CardConnectionStatus = Field(
        description="not_connected: never connected or disconnected; reconnect_required: Microsoft no "
        "longer accepts the sign-in, an admin must connect again (reason says why)"
    )
    integrationUserEmail: str | None = Field(
        default=None, description="the Microsoft account the integration signs in as"
    )
    reconnectReason: str | None = Field(
        default=None,
        description="inactivity, revoked or consent_or_mfa_required; null unless reconnect_required",
    )
    since: dt.datetime | None = Field(default=None, description="when the connection reached this status")


class ConfiguredModel(BaseModel):
    version: int = Field(description="the saved configuration's version (its ETag)")
    savedAt: dt.datetime
    savedBy: str = Field(description="platform user id of the admin who saved it")


class LastExportModel(BaseModel):
    jobId: str
    entity: ExportEntity
    state: JobState
    counts: JobCounts
    createdAt: str = Field(description="ISO 8601, UTC")


class DynamicsCardModel(BaseModel):
    connection: CardConnectionModel
    configured: ConfiguredModel | None = Field(description="null until the configuration is first saved")
    lastExport: LastExportModel | None = Field(description="the newest export of the workspace; null if none")

    @classmethod
    def of(cls, state: DynamicsCardState) -> DynamicsCardModel:
        conn = state.connection
        saved = state.configured
        last = state.last_export
        return cls(
            connection=CardConnectionModel(
                status=conn.status,
                integrationUserEmail=conn.integration_user_email,
                reconnectReason=conn.reconnect_reason,
                since=conn.since,
            ),
            configured=ConfiguredModel(version=saved.version, savedAt=saved.saved_at, savedBy=saved.saved_by)
            if saved is not None
            else None,
            lastExport=LastExportModel(
                jobId=last.job_id,
                entity=ExportEntity(last.entity),
                state=last.state,
                counts=JobCounts(**last.counts),
                createdAt=last.created_at,
            )
            if last is not None
            else None,
        )


class IntegrationCardModel(BaseModel):
    crm: str
    name: str
    enabled: bool
    dynamics: DynamicsCardModel | None = Field(
        default=None, description="the Dynamics card only: connection, configuration and last export"
    )

    @classmethod
    def of(cls, card: IntegrationCard) -> IntegrationCardModel:
        dynamics = DynamicsCardModel.of(card.dynamics) if card.dynamics is not None else None
        return cls(crm=card.crm, name=card.name, enabled=card.enabled, dynamics=dynamics)


class IntegrationsList(BaseModel):
    integrations: list[IntegrationCardModel]
    activeCrm: str | None

    @classmethod
    def of(cls, cards: list[IntegrationCard]) -> IntegrationsList:
        active = next((c.crm for c in cards if c.enabled), None)
        return cls(integrations=[IntegrationCardModel.of(c) for c in cards], activeCrm=active)


@bp.route(route="api/integrations", methods=["GET"])
@authenticated()
def list_integrations(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return model_response(IntegrationsList.of(bootstrap.app().integrations_service.list(caller)))


@bp.route(route="api/integrations/{crm}", methods=["PUT"])
@authenticated(admin=True)
def put_integration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    crm = req.route_params.get("crm", "")
    if crm not in CRMS:
        raise HttpProblem(404, "Not found", f"unknown CRM {crm[:40]!r}; CRMs are {', '.join(CRMS)}")
    body = read_model(req, EnableRequest)
    try:
        card = bootstrap.app().integrations_service.set_enabled(caller, crm, body.enabled)
    except ActiveCrmConflict as exc:
        raise HttpProblem(
            409,
            "Another CRM is active",
            f"{CRMS.get(exc.active, exc.active)} is enabled; disable it first (only one CRM may be active)",
            extra={"activeCrm": exc.active},
        ) from None
    return model_response(IntegrationCardModel.of(card))


openapi.register(
    "GET",
    "/api/integrations",
    "The CRM cards with `enabled` (at most one is); the Dynamics card with its connection status, saved "
    "configuration and last export, from stored state (no call to Dynamics)",
    response=IntegrationsList,
    tags=TAG,
)
openapi.register(
    "PUT",
    "/api/integrations/{crm}",
    "Enable or disable a CRM (admin); 409 names the CRM that is already active",
    description="While Dynamics is not the enabled CRM, connecting, exports and activities answer 409 "
    "`integration_disabled`, and queued or running Dynamics jobs pause (`paused_disabled`: a running chunk "
    "stops before its next Dynamics write, its unwritten records stay `pending`). Enabling Dynamics "
    "again resumes them. The Dynamics connection is kept, and its tokens keep being refreshed while "
    "disabled, so it still works when Dynamics is enabled again. To switch CRMs, disable the enabled one "
    "first.",
    request=EnableRequest,
    response=IntegrationCardModel,
    problems=(403, 404, 409),
    tags=TAG,
    path_params={"crm": {"type": "string", "enum": list(CRMS)}},
    callers=ADMINS,
)
