"""CRM cards of the Integrations page; only one CRM may be enabled at a time.

- ``GET /api/integrations``        the four cards with ``enabled``
- ``PUT /api/integrations/{crm}``  ``{"enabled": true|false}`` (admin); 409 names the active CRM
"""

from __future__ import annotations

import azure.functions as func
from pydantic import BaseModel, ConfigDict

from core import bootstrap, openapi
from core.domain.caller import ADMINS, Caller
from core.entrypoints.http_support import HttpProblem, authenticated, model_response, read_model
from core.services.integrations.service import CRMS, ActiveCrmConflict, IntegrationCard

bp = func.Blueprint()  # type: ignore[no-untyped-call]
TAG = ("Integrations",)


class EnableRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    enabled: bool


class IntegrationCardModel(BaseModel):
    crm: str
    name: str
    enabled: bool

    @classmethod
    def of(cls, card: IntegrationCard) -> IntegrationCardModel:
        return cls(crm=card.crm, name=card.name, enabled=card.enabled)


class IntegrationsList(BaseModel):
    integrations: list[IntegrationCardModel]
    activeCrm: str | None

    @classmethod
    def of(cls, cards: list[IntegrationCard]) -> IntegrationsList:
        active = next((c.crm for c in cards if c.enabled), None)
        return cls(integrations=[IntegrationCardModel.of(c) for c in cards], activeCrm=active)


@bp.route(route="integrations", methods=["GET"])
@authenticated()
def list_integrations(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return model_response(IntegrationsList.of(bootstrap.app().integrations_service.list(caller)))


@bp.route(route="integrations/{crm}", methods=["PUT"])
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
    "The CRM cards with `enabled` (at most one is)",
    response=IntegrationsList,
    tags=TAG,
)
openapi.register(
    "PUT",
    "/api/integrations/{crm}",
    "Enable or disable a CRM (admin); 409 names the CRM that is already active",
    request=EnableRequest,
    response=IntegrationCardModel,
    problems=(403, 404, 409),
    tags=TAG,
    path_params={"crm": {"type": "string", "enum": list(CRMS)}},
    callers=ADMINS,
)
