"""Exports of contacts and companies into Dynamics.

- ``POST /api/dynamics/exports``                   submit (202 + job id); optional ``Idempotency-Key``
- ``GET  /api/dynamics/exports``                   the workspace's jobs, newest first (``cursor``, ``limit``)
- ``GET  /api/dynamics/exports/{jobId}``           state, counts, progress
- ``GET  /api/dynamics/exports/{jobId}/records``   per-record results (``status``, ``cursor``, ``limit``)
- ``POST /api/dynamics/exports/{jobId}/retry``     a new job of its failed (skipped, invalid) records
- ``POST /api/dynamics/exports/{jobId}/cancel``    stop it: what was not sent is not sent

Answers are rendered through the models below (the ones the OpenAPI document shows), from the typed
results of the job engine (``JobStatus``, ``JobsPage``); per-record results are the store's JSON objects,
validated into the records models.

Any workspace member may export manually as themselves (the exporting user decides the owner, step 4);
automatic exports, and exports naming the user they are for (``userId``), are the platform service's
only. The workspace comes from the caller's token.
"""

from __future__ import annotations

import azure.functions as func
from pydantic import BaseModel, Field

from core import bootstrap, openapi
from core.domain.caller import EVERY_CALLER, Caller
from core.domain.export_request import ExportRequest, ExportTrigger, RetryRequest
from core.domain.integration_switch import IntegrationDisabled
from core.domain.job_status import JobStatus
from core.domain.jobs import ExportEntity, JobState
from core.entrypoints.dynamics_problems import disabled_problem
from core.entrypoints.http_support import HttpProblem, authenticated, model_response, read_model
from core.entrypoints.job_queries import (
    JOBS_PAGE_QUERY,
    RECORDS_QUERY,
    JobCounts,
    JobSummary,
    RecordsPage,
    history_filter,
    job_finished,
    job_id_param,
    jobs_page,
    queue_full,
    records_query,
    records_seen_by,
    summary_fields,
)
from core.services.exports.service import InvalidExport, JobNotFinished, NothingToRetry
from core.services.jobs.queries import JobFinished, JobQueueFull

bp = func.Blueprint()  # type: ignore[no-untyped-call]

# 100,000 records of a few hundred bytes each; larger lists are split by the platform.
MAX_EXPORT_BYTES = 64 * 1024 * 1024
MAX_IDEMPOTENCY_KEY = 200
MAX_RETRY_BYTES = 4096
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


class ExportStatus(JobSummary):
    jobId: str
    entity: ExportEntity
    trigger: ExportTrigger
    dryRun: bool
    state: JobState = Field(
        description="paused_reconnect: waiting for an admin to reconnect Dynamics, for Microsoft sign-in or "
        "Key Vault to answer again, or for a setting of this deployment to be fixed (errors say which); "
        "resumes by itself. paused_disabled: Dynamics was disabled for the workspace; the records not yet "
        "written are pending and the job resumes when an admin enables Dynamics again. cancelling: a "
        "cancel was asked and a chunk is still finishing (it stops before its next Dynamics request, or "
        "finishes the writes it has begun); then cancelled"
    )
    createdAt: str = Field(description="ISO 8601, UTC")
    requestedBy: str = Field(description="platform user id of the exporting user")
    counts: JobCounts
    progress: ExportProgress
    errors: list[str] = Field(description="job- and chunk-level failures (record errors are per record)")

    @classmethod
    def of(cls, status: JobStatus) -> ExportStatus:
        return cls(
            jobId=status.job_id,
            entity=ExportEntity(status.entity),
            trigger=ExportTrigger(status.trigger),
            dryRun=status.dry_run,
            state=status.state,
            createdAt=status.created_at,
            requestedBy=status.requested_by,
            counts=JobCounts(**status.counts),
            progress=ExportProgress(
                records=status.progress.records,
                processed=status.progress.processed,
                chunks=status.progress.chunks,
                chunksDone=status.progress.chunks_done,
            ),
            errors=status.errors,
            **summary_fields(status),
        )


class ExportList(BaseModel):
    jobs: list[ExportStatus] = Field(description="newest first, `limit` of them (50 unless asked)")
    nextCursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page; absent or null on the last page"
    )


class RetryAccepted(ExportAccepted):
    retryOf: str = Field(description="the job whose records this job sends again")
    notStaged: int = Field(
        description="records asked for that are no longer kept (results older than the retention period), "
        "so not sent again"
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
    flt = history_filter(
        req, entities=(e.value for e in ExportEntity), triggers=(t.value for t in ExportTrigger)
    )
    page = jobs_page(req, bootstrap.app().export_service, caller.workspace_id, flt)
    body = ExportList(jobs=[ExportStatus.of(s) for s in page.jobs], nextCursor=page.next_cursor)
    return model_response(body, omit_unset=True)


@bp.route(route="api/dynamics/exports/{jobId}", methods=["GET"])
@authenticated(callers=EVERY_CALLER)
def get_export(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    status = bootstrap.app().export_service.status(caller.workspace_id, job_id_param(req, "export"))
    if status is None:
        raise HttpProblem(404, "Not found", "no such export job in this workspace")
    return model_response(ExportStatus.of(status), headers={"Cache-Control": "no-store"}, omit_unset=True)


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


@bp.route(route="api/dynamics/exports/{jobId}/retry", methods=["POST"])
@authenticated(callers=EVERY_CALLER)
def retry_export(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    job_id = job_id_param(req, "export")
    request = read_model(req, RetryRequest, MAX_RETRY_BYTES) if req.get_body() else RetryRequest()
    try:
        result = bootstrap.app().export_service.retry(caller, job_id, request)
    except JobNotFinished as exc:
        raise HttpProblem(
            409,
            "Job not finished",
            f"the job is {exc.status.state.value}: retry it once it has finished (or cancel it first)",
        ) from None
    except NothingToRetry as exc:
        gone = f"; {exc.missing} of them are no longer kept" if exc.missing else ""
        raise HttpProblem(
            409, "Nothing to retry", f"the job has no {' or '.join(exc.actions)} record to send again{gone}"
        ) from None
    except InvalidExport as exc:
        errors = [p.as_json() for p in exc.problems]
        raise HttpProblem(
            409, "Configuration not ready", f"{len(errors)} problem(s)", errors=errors
        ) from None
    except JobQueueFull as exc:
        raise queue_full(exc) from None
    except IntegrationDisabled as exc:
        raise disabled_problem(exc) from None
    if result is None:
        raise HttpProblem(404, "Not found", "no such export job in this workspace")
    submitted = result.submitted
    status_url = f"/api/dynamics/exports/{submitted.job_id}"
    body = RetryAccepted(
        jobId=submitted.job_id,
        accepted=submitted.accepted,
        invalid=submitted.invalid,
        statusUrl=status_url,
        retryOf=job_id,
        notStaged=result.not_staged,
    )
    return model_response(body, status=202, headers={"Location": status_url})


@bp.route(route="api/dynamics/exports/{jobId}/cancel", methods=["POST"])
@authenticated(callers=EVERY_CALLER)
def cancel_export(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    try:
        status = bootstrap.app().export_service.cancel(caller, job_id_param(req, "export"))
    except JobFinished as exc:
        raise job_finished(exc) from None
    if status is None:
        raise HttpProblem(404, "Not found", "no such export job in this workspace")
    return model_response(ExportStatus.of(status), headers={"Cache-Control": "no-store"}, omit_unset=True)


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
    "Export history, newest first, a page at a time (`cursor`, `limit` 1..100), filtered by state, entity, "
    "trigger, period (`from`, `to`) and requester; each job with its counts, duration and top error codes",
    response=ExportList,
    problems=(400,),
    query={
        **JOBS_PAGE_QUERY,
        "entity": {"type": "string", "enum": [e.value for e in ExportEntity]},
        "trigger": {"type": "string", "enum": [t.value for t in ExportTrigger]},
    },
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
openapi.register(
    "POST",
    "/api/dynamics/exports/{jobId}/retry",
    "Send a finished export's failed records again (and, asked for, its skipped or invalid ones), as "
    "submitted, with the configuration as it is now; one retry job per job: calling again answers it",
    request=RetryRequest,
    response=RetryAccepted,
    status=202,
    problems=(400, 403, 404, 409, 429),
    tags=TAG,
    headers={"Location": "The retry job's status URL, same as statusUrl"},
    description="Admins and the platform's service may retry any export of the workspace, a member the "
    "exports they submitted. The retry job is the caller's (a person's retry is a manual export by them); "
    "its status says retryOf, and the retried job's says retriedBy. The body is optional. 409: the job "
    "still runs, has nothing to retry, or the configuration cannot export now (errors say why); "
    "`code: integration_disabled` when Dynamics is not the workspace's enabled CRM.",
    callers=EVERY_CALLER,
)
openapi.register(
    "POST",
    "/api/dynamics/exports/{jobId}/cancel",
    "Cancel an export: chunks not started never run; a running chunk stops before its next Dynamics "
    "request (a chunk that has begun writing finishes those writes); the status says what was written",
    response=ExportStatus,
    problems=(403, 404, 409),
    tags=TAG,
    description="Answers the job's status: cancelling while a chunk finishes, then cancelled, with "
    "counts of what was written (created, updated, ...) and what was not (cancelled). Calling it again "
    "answers the same. 409: the job finished before it could be cancelled. Admins and the platform's "
    "service may cancel any export of the workspace, a member the exports they submitted.",
    callers=EVERY_CALLER,
)
