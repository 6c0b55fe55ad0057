"""Anonymous service endpoints: ``GET /api/openapi.json`` and ``GET /api/health``."""

from __future__ import annotations

import logging
import time
from typing import Any

import azure.functions as func
from pydantic import BaseModel

from core import openapi
from core.adapters.tables import get_storage
from core.domain.catalog import CATALOG_VERSION
from core.entrypoints.http_support import anonymous, json_response

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)
TAG = ("Service",)


class Health(BaseModel):
    status: str
    storage: str
    catalogVersion: str
    elapsedMs: float


@bp.route(route="openapi.json", methods=["GET"])
@anonymous
def get_openapi(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(openapi.document(), headers={"Cache-Control": "no-cache"})


@bp.route(route="health", methods=["GET"])
@anonymous
def get_health(req: func.HttpRequest) -> func.HttpResponse:
    start = time.perf_counter()
    storage = "ok"
    try:
        get_storage().ping()
    except Exception:
        log.warning("health: storage unreachable", exc_info=True)
        storage = "unreachable"
    body: dict[str, Any] = {
        "status": "ok" if storage == "ok" else "degraded",
        "storage": storage,
        "catalogVersion": CATALOG_VERSION,
        "elapsedMs": round((time.perf_counter() - start) * 1000, 1),
    }
    return json_response(body, status=200 if storage == "ok" else 503, headers={"Cache-Control": "no-store"})


openapi.register(
    "GET", "/api/openapi.json", "This document", response={"type": "object"}, tags=TAG, anonymous=True
)
openapi.register(
    "GET",
    "/api/health",
    "Liveness and storage reachability",
    response=Health,
    problems=(503,),
    tags=TAG,
    anonymous=True,
)
