"""Exports of contacts and companies into Dynamics.

- ``POST /api/dynamics/exports``                   submit (202 + job id); optional ``Idempotency-Key``
- ``GET  /api/dynamics/exports``                   the workspace's jobs, newest first (``cursor``, ``limit``)
- ``GET  /api/dynamics/exports/{jobId}``           state, counts, progress
- ``GET  /api/dynamics/exports/{jobId}/records``   per-record results (``status``, ``cursor``, ``limit``)

Answers are rendered through the models below (the ones the OpenAPI document shows); the job status and
records come from the job store as JSON objects and are validated into them, members the store left out
staying out.

Any workspace member may export manually as themselves (the exporting user decides the owner, step 4);
automatic exports, and exports naming the user they are for (``userId``), are the platform service's
only. The workspace comes from the caller's token.
"""

from __future__ import annotations

import azure.functions as func
from pydantic import BaseModel, Field

from core import bootstrap, openapi
from core.domain.caller import EVERY_CALLER, Caller
from core.domain.export_request import ExportRequest, ExportTrigger
from core.domain.integration_switch import IntegrationDisabled
from core.domain.jobs import ExportEntity, JobState
from core.entrypoints.dynamics_problems import disabled_problem
from core.entrypoints.http_support import HttpProblem, authenticated, model_response, read_model
from core.entrypoints.job_queries import (
    JOBS_PAGE_QUERY,
    RECORDS_QUERY,
    JobCounts,
    RecordsPage,
    job_id_param,
    jobs_page,
    queue_full,
    records_query,
    records_seen_by,
)
from core.services.exports.service import InvalidExport
from core.services.jobs.queries import JobQueueFull

bp = func.Blueprint()  # type: ignore[no-untyped-call]

# 100,000 records of a few hundred bytes each; larger lists are split by the platform.
MAX_EXPORT_BYTES = 64 * 1024 * 1024
MAX_IDEMPOTENCY_KEY = 200
TAG = ("Exports",)


class ExportAccepted(BaseModel):
    jobId: str
    accepted: int = Field(description="records staged for export")
    invalid: int = Field(description="records refused before sending (see the job's records)")
    statusUrl: str


class ExportProgress(BaseModel):
    records: int = Field(description="records in the job")
    processed: int = Field(description="records whose outcome is known (invalid ones included)")
    chunks: int = Field(description="chunks of the job (one queue message each)")
    chunksDone: int = Field(description="chunks finished, failed ones included")


class ExportStatus(BaseModel):
    jobId: str
    entity: ExportEntity
    trigger: ExportTrigger
    dryRun: bool
    state: JobState = Field(
        description="paused_reconnect: waiting for an admin to reconnect Dynamics, for Microsoft sign-in or "
        "Key Vault to answer again, or for a setting of this deployment to be fixed (errors say which); "
        "resumes by itself. paused_disabled: Dynamics was disabled for the workspace; the records not yet "
        "written are pending and the job resumes when an admin enables Dynamics again"
    )
    createdAt: str = Field(description="ISO 8601, UTC")
    requestedBy: str = Field(description="platform user id of the exporting user")
    counts: JobCounts
    progress: ExportProgress
    errors: list[str] = Field(description="job- and chunk-level failures (record errors are per record)")


class ExportList(BaseModel):
    jobs: list[ExportStatus] = Field(description="newest first, `limit` of them (50 unless asked)")
    nextCursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page; absent or null on the last page"
    )


@bp.route(route="api/dynamics/exports", methods=["POST"])
@authenticated(callers=EVERY_CALLER)
def post_export(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    request = read_model(req, ExportRequest, MAX_EXPORT_BYTES)
    key = req.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY):
        raise HttpProblem(
            400, "Invalid header", f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} characters"
        )
    try:
        result = bootstrap.app().export_service.submit(caller, request, idempotency_key=key)
    except IntegrationDisabled as exc:
        raise disabled_problem(exc) from None
    except InvalidExport as exc:
        errors = [p.as_json() for p in exc.problems]
        raise HttpProblem(400, "Invalid export request", f"{len(errors)} problem(s)", errors=errors) from None
    except JobQueueFull as exc:
        raise queue_full(exc) from None
    status_url = f"/api/dynamics/exports/{result.job_id}"
    body = ExportAccepted(
        jobId=result.job_id, accepted=result.accepted, invalid=result.invalid, statusUrl=status_url
    )
    return model_response(body, status=202, headers={"Location": status_url})


@bp.route(route="api/dynamics/exports", methods=["GET"])
@authenticated(callers=EVERY_CALLER)
def list_exports(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    page = jobs_page(req, bootstrap.app().export_service, caller.workspace_id)
    return model_response(ExportList.model_validate(page), omit_unset=True)


@bp.route(route="api/dynamics/exports/{jobId}", methods=["GET"])
@authenticated(callers=EVERY_CALLER)
def get_export(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    status = bootstrap.app().export_service.status(caller.workspace_id, job_id_param(req, "export"))
    if status is None:
        raise HttpProblem(404, "Not found", "no such export job in this workspace")
    return model_response(
        ExportStatus.model_validate(status), headers={"Cache-Control": "no-store"}, omit_unset=True
    )


@bp.route(route="api/dynamics/exports/{jobId}/records", methods=["GET"])
@authenticated(callers=EVERY_CALLER)
def get_export_records(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    query = records_query(req)
    page = bootstrap.app().export_service.records(
        caller.workspace_id, job_id_param(req, "export"), query.status, query.cursor, query.limit
    )
    if page is None:
        raise HttpProblem(404, "Not found", "no such export job in this workspace")
    return model_response(RecordsPage.model_validate(records_seen_by(caller, page)), omit_unset=True)


openapi.register(
    "POST",
    "/api/dynamics/exports",
    "Export contacts or companies into Dynamics",
    request=ExportRequest,
    response=ExportAccepted,
    status=202,
    problems=(400, 401, 409, 413, 415, 429),
    tags=TAG,
    description="409 `code: integration_disabled` when Dynamics is not the workspace's enabled CRM "
    "(nothing is queued; `activeCrm` names the enabled one). Jobs already queued or running pause "
    "(`paused_disabled`) when Dynamics is disabled and resume when it is enabled again.",
    request_headers={
        "Idempotency-Key": f"Optional, 1..{MAX_IDEMPOTENCY_KEY} characters: a retried request with the "
        "same key (same workspace) answers the job the first one created instead of starting another",
    },
    headers={"Location": "The job's status URL (/api/dynamics/exports/{jobId}), same as statusUrl"},
    callers=EVERY_CALLER,
)
openapi.register(
    "GET",
    "/api/dynamics/exports",
    "List export jobs, newest first, a page at a time (`cursor`, `limit` 1..100)",
    response=ExportList,
    problems=(400,),
    query=JOBS_PAGE_QUERY,
    tags=TAG,
    callers=EVERY_CALLER,
)
openapi.register(
    "GET",
    "/api/dynamics/exports/{jobId}",
    "Export job status: state, counts by outcome and progress (poll while it runs)",
    response=ExportStatus,
    problems=(404,),
    tags=TAG,
    callers=EVERY_CALLER,
)
openapi.register(
    "GET",
    "/api/dynamics/exports/{jobId}/records",
    "Per-record results of an export: outcome, how it matched, the field Dynamics refused",
    response=RecordsPage,
    problems=(400, 404),
    query=RECORDS_QUERY,
    tags=TAG,
    callers=EVERY_CALLER,
)
