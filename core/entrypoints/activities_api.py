"""Campaign engagement events logged as Dynamics activities.

- ``POST /api/dynamics/activities``                   events (202 + job id); optional ``Idempotency-Key``
- ``GET  /api/dynamics/activities/{jobId}``           state, counts, progress
- ``GET  /api/dynamics/activities/{jobId}/records``   per-event results (``status``, ``cursor``, ``limit``)

Each event id is its own idempotency key (the same event sent twice logs one activity). The workspace
comes from the caller's token.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func
from pydantic import BaseModel, Field

from core import openapi
from core.domain.activities import ActivitiesRequest
from core.domain.caller import Caller
from core.domain.export_job import RecordAction
from core.entrypoints.http_support import HttpProblem, authenticated, json_response, read_model
from core.services.activity_service import get_activity_service

bp = func.Blueprint()  # type: ignore[no-untyped-call]

MAX_ACTIVITIES_BYTES = 64 * 1024 * 1024
MAX_IDEMPOTENCY_KEY = 200
TAG = ("Activities",)


class ActivitiesAccepted(BaseModel):
    jobId: str
    accepted: int = Field(description="events staged for logging")
    invalid: int = Field(description="events refused before sending (see the job's records)")
    statusUrl: str


def _job_id(req: func.HttpRequest) -> str:
    job_id = str(req.route_params.get("jobId", ""))
    if not (0 < len(job_id) <= 64) or not all(c.isalnum() or c == "-" for c in job_id):
        raise HttpProblem(404, "Not found", "no such activities job")
    return job_id


@bp.route(route="dynamics/activities", methods=["POST"])
@authenticated()
def post_activities(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    request = read_model(req, ActivitiesRequest, MAX_ACTIVITIES_BYTES)
    key = req.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY):
        raise HttpProblem(
            400, "Invalid header", f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} characters"
        )
    result = get_activity_service().submit(caller, request, idempotency_key=key)
    status_url = f"/api/dynamics/activities/{result.job_id}"
    body = ActivitiesAccepted(
        jobId=result.job_id, accepted=result.accepted, invalid=result.invalid, statusUrl=status_url
    )
    return json_response(body.model_dump(), status=202, headers={"Location": status_url})


@bp.route(route="dynamics/activities/{jobId}", methods=["GET"])
@authenticated()
def get_activities(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    status = get_activity_service().status(caller.workspace_id, _job_id(req))
    if status is None:
        raise HttpProblem(404, "Not found", "no such activities job in this workspace")
    return json_response(status, headers={"Cache-Control": "no-store"})


@bp.route(route="dynamics/activities/{jobId}/records", methods=["GET"])
@authenticated()
def get_activity_records(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    status = req.params.get("status") or None
    allowed = {a.value for a in RecordAction}
    if status is not None and status not in allowed:
        raise HttpProblem(
            400,
            "Invalid query",
            f"status must be one of {', '.join(sorted(allowed))}",
            errors=[{"pointer": "/status", "message": "unknown status"}],
        )
    cursor = req.params.get("cursor") or None
    if cursor is not None and not (cursor.isdigit() and len(cursor) <= 9):
        raise HttpProblem(
            400,
            "Invalid query",
            "cursor is not one this API returned",
            errors=[{"pointer": "/cursor", "message": "not a cursor from nextCursor"}],
        )
    raw_limit = req.params.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        raise HttpProblem(
            400,
            "Invalid query",
            "limit must be a whole number from 1 to 1000",
            errors=[{"pointer": "/limit", "message": "a whole number from 1 to 1000"}],
        )
    page = get_activity_service().records(caller.workspace_id, _job_id(req), status, cursor, int(raw_limit))
    if page is None:
        raise HttpProblem(404, "Not found", "no such activities job in this workspace")
    return json_response(page)


_STATUS_SCHEMA: dict[str, Any] = {"type": "object", "description": "state, counts, progress, errors"}
openapi.register(
    "POST",
    "/api/dynamics/activities",
    "Log campaign engagement events as Dynamics activities",
    request=ActivitiesRequest,
    response=ActivitiesAccepted,
    status=202,
    problems=(400, 401, 413, 415),
    tags=TAG,
)
openapi.register(
    "GET",
    "/api/dynamics/activities/{jobId}",
    "Activities job status",
    response=_STATUS_SCHEMA,
    problems=(404,),
    tags=TAG,
)
openapi.register(
    "GET",
    "/api/dynamics/activities/{jobId}/records",
    "Per-event results of an activities job (activity id, table, acting user and its source)",
    response={"type": "object", "description": "records and nextCursor"},
    problems=(400, 404),
    tags=TAG,
)
