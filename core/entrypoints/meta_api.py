"""Anonymous service endpoints: ``GET /api/openapi.json`` and ``GET /api/health``; and the caller's
on-demand Dynamics check ``GET /api/health/dynamics``.

The probes, their one-second budget and their cache live in :mod:`core.services.health.service`; these
functions ask the app's ``HealthService`` and render its answer (503 when storage does not answer).
"""

from __future__ import annotations

import azure.functions as func

from core import bootstrap, openapi
from core.domain.caller import Caller
from core.entrypoints.http_support import anonymous, authenticated, json_response, model_response
from core.services.health.service import PROBE_CACHE_S, DynamicsHealth, Health

bp = func.Blueprint()  # type: ignore[no-untyped-call]
TAG = ("Service",)


@bp.route(route="api/openapi.json", methods=["GET"])
@anonymous
def get_openapi(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(openapi.document(), headers={"Cache-Control": "no-cache"})


@bp.route(route="api/health", methods=["GET"])
@anonymous
def get_health(req: func.HttpRequest) -> func.HttpResponse:
    health = bootstrap.app().health.check()
    return model_response(
        health, status=503 if health.status == "down" else 200, headers={"Cache-Control": "no-store"}
    )


@bp.route(route="api/health/dynamics", methods=["GET"])
@authenticated()
def get_dynamics_health(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    health = bootstrap.app().health.check_dynamics(caller.workspace_id)
    return model_response(health, headers={"Cache-Control": "no-store"})


openapi.register(
    "GET", "/api/openapi.json", "This document", response={"type": "object"}, tags=TAG, anonymous=True
)
openapi.register(
    "GET",
    "/api/health",
    "Storage and Key Vault reachability, within about a second",
    response=Health,
    alternatives={503: (Health, "Storage does not answer: the same Health body, with status `down`")},
    tags=TAG,
    anonymous=True,
    description="Anonymous and cheap; 503 (same body) when storage does not answer, 200 with status "
    f"`degraded` when only Key Vault does not. Each probe's result is reused for {PROBE_CACHE_S:g} s.",
)
openapi.register(
    "GET",
    "/api/health/dynamics",
    "The caller's Dynamics connection, checked now with a WhoAmI round trip",
    response=DynamicsHealth,
    tags=TAG,
    description="On demand, for the caller's workspace (any role). Always 200 when the check ran: "
    "`status` says what the frontend should tell the user.",
)
