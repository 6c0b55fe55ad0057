"""Campaign engagement events logged as Dynamics activities.

- ``POST /api/dynamics/activities``                   events (202 + job id); optional ``Idempotency-Key``
- ``GET  /api/dynamics/activities``                   jobs, newest first (``cursor``, ``limit``)
- ``GET  /api/dynamics/activities/{jobId}``           state, counts, progress
- ``GET  /api/dynamics/activities/{jobId}/records``   per-event results (``status``, ``cursor``, ``limit``)
- ``POST /api/dynamics/activities/{jobId}/cancel``    stop it: events not sent are not logged

Each event id is its own idempotency key (the same event sent twice logs one activity). The workspace
comes from the caller's token. Only the platform's service may submit events (they name the user and
identity each activity is logged as); people may read the jobs of their workspace.
"""

from __future__ import annotations

import azure.functions as func
from pydantic import BaseModel, Field

from core import bootstrap, openapi
from core.domain.activities import ActivitiesRequest
from core.domain.caller import ADMINS, EVERY_CALLER, SERVICE, Caller
from core.domain.integration_switch import IntegrationDisabled
from core.entrypoints.dynamics_problems import disabled_problem
from core.entrypoints.http_support import HttpProblem, authenticated, model_response, read_model
from core.entrypoints.job_queries import (
    JOBS_PAGE_QUERY,
    ActivitiesStatus,
    ActivityRecordsPage,
    history_filter,
    job_finished,
    job_id_param,
    jobs_page,
    queue_full,
    records_query,
    records_seen_by,
)
from core.services.jobs.queries import JobFinished, JobQueueFull

bp = func.Blueprint()  # type: ignore[no-untyped-call]

MAX_ACTIVITIES_BYTES = 64 * 1024 * 1024
MAX_IDEMPOTENCY_KEY = 200
TAG = ("Activities",)


class ActivitiesAccepted(BaseModel):
    jobId: str
    accepted: int = Field(description="events staged for logging")
    invalid: int = Field(description="events refused before sending (see the job's records)")
    statusUrl: str


@bp.route(route="api/dynamics/activities", methods=["POST"])
@authenticated(callers=SERVICE)
def post_activities(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    request = read_model(req, ActivitiesRequest, MAX_ACTIVITIES_BYTES)
    key = req.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY):
        raise HttpProblem(
            400, "Invalid header", f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} characters"
        )
    try:
        result = bootstrap.app().activity_service.submit(caller, request, idempotency_key=key)
    except IntegrationDisabled as exc:
        raise disabled_problem(exc) from None
    except JobQueueFull as exc:
        raise queue_full(exc) from None
    status_url = f"/api/dynamics/activities/{result.job_id}"
    body = ActivitiesAccepted(
        jobId=result.job_id, accepted=result.accepted, invalid=result.invalid, statusUrl=status_url
    )
    return model_response(body, status=202, headers={"Location": status_url})


class ActivitiesList(BaseModel):
    jobs: list[ActivitiesStatus] = Field(description="newest first, `limit` of them (50 unless asked)")
    nextCursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page; absent or null on the last page"
    )


@bp.route(route="api/dynamics/activities", methods=["GET"])
@authenticated(callers=EVERY_CALLER)
def list_activities(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    page = jobs_page(req, bootstrap.app().activity_service, caller.workspace_id, history_filter(req))
    body = ActivitiesList(jobs=[ActivitiesStatus.of(s) for s in page.jobs], nextCursor=page.next_cursor)
    return model_response(body, omit_unset=True)


@bp.route(route="api/dynamics/activities/{jobId}", methods=["GET"])
@authenticated(callers=EVERY_CALLER)
def get_activities(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    status = bootstrap.app().activity_service.status(caller.workspace_id, job_id_param(req, "activities"))
    if status is None:
        raise HttpProblem(404, "Not found", "no such activities job in this workspace")
    return model_response(ActivitiesStatus.of(status), headers={"Cache-Control": "no-store"}, omit_unset=True)


@bp.route(route="api/dynamics/activities/{jobId}/records", methods=["GET"])
@authenticated(callers=EVERY_CALLER)
def get_activity_records(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    query = records_query(req)
    page = bootstrap.app().activity_service.records(
        caller.workspace_id, job_id_param(req, "activities"), query.status, query.cursor, query.limit
    )
    if page is None:
        raise HttpProblem(404, "Not found", "no such activities job in this workspace")
    return model_response(ActivityRecordsPage.model_validate(records_seen_by(caller, page)), omit_unset=True)


@bp.route(route="api/dynamics/activities/{jobId}/cancel", methods=["POST"])
@authenticated(callers=ADMINS | SERVICE)
def cancel_activities(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    try:
        status = bootstrap.app().activity_service.cancel(caller, job_id_param(req, "activities"))
    except JobFinished as exc:
        raise job_finished(exc) from None
    if status is None:
        raise HttpProblem(404, "Not found", "no such activities job in this workspace")
    return model_response(ActivitiesStatus.of(status), headers={"Cache-Control": "no-store"}, omit_unset=True)


openapi.register(
    "POST",
    "/api/dynamics/activities",
    "Log campaign engagement events as Dynamics activities",
    request=ActivitiesRequest,
    response=ActivitiesAccepted,
    status=202,
    problems=(400, 401, 409, 413, 415, 429),
    tags=TAG,
    description="409 `code: integration_disabled` when Dynamics is not the workspace's enabled CRM "
    "(nothing is queued). Jobs already queued or running pause (`paused_disabled`) when Dynamics is "
    "disabled and resume when it is enabled again.",
    request_headers={
        "Idempotency-Key": f"Optional, 1..{MAX_IDEMPOTENCY_KEY} characters: a retried request with the "
        "same key (same workspace) answers the job the first one created instead of starting another",
    },
    headers={"Location": "The job's status URL (/api/dynamics/activities/{jobId}), same as statusUrl"},
    callers=SERVICE,
)
openapi.register(
    "GET",
    "/api/dynamics/activities",
    "Activities job history, newest first, a page at a time (`cursor`, `limit` 1..100), filtered by state, "
    "period (`from`, `to`) and requester; each job with its counts, duration and top error codes",
    response=ActivitiesList,
    problems=(400,),
    query=JOBS_PAGE_QUERY,
    tags=TAG,
    callers=EVERY_CALLER,
)
openapi.register(
    "GET",
    "/api/dynamics/activities/{jobId}",
    "Activities job status",
    response=ActivitiesStatus,
    problems=(404,),
    tags=TAG,
    callers=EVERY_CALLER,
)
openapi.register(
    "GET",
    "/api/dynamics/activities/{jobId}/records",
    "Per-event results of an activities job (activity id, table, acting user and its source, contactAction)",
    response=ActivityRecordsPage,
    problems=(400, 404),
    tags=TAG,
    callers=EVERY_CALLER,
)
openapi.register(
    "POST",
    "/api/dynamics/activities/{jobId}/cancel",
    "Cancel an activities job: chunks not started never run; a running chunk stops before its next "
    "Dynamics request (a chunk that has begun writing finishes, so no activity is left half-logged)",
    response=ActivitiesStatus,
    problems=(403, 404, 409),
    tags=TAG,
    description="Answers the job's status: cancelling while a chunk finishes, then cancelled, with counts "
    "of what was logged and what was not (cancelled). Calling it again answers the same. 409: the job "
    "finished before it could be cancelled.",
    callers=ADMINS | SERVICE,
)
