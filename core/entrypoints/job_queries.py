"""What the job endpoints (exports and activities) share: path and query parameters, and the shapes of
their status and per-record answers (documented in the OpenAPI document; the record shapes forbid
unknown fields so the documented examples, taken from real answers, prove the documentation complete).

Over 400 lines on purpose: the response shapes are the OpenAPI contract of both job kinds and read best
side by side; the functions are small.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from core.domain.activities import ActorSource, ContactAction
from core.domain.caller import Caller, valid_id
from core.domain.job_status import JobStatus
from core.domain.jobs import JobState, RecordAction
from core.domain.matching import MatchStatus
from core.domain.values import ascii_whole_number
from core.entrypoints.http_support import HttpProblem
from core.services.jobs.queries import (
    HistoryFilter,
    InvalidCursor,
    JobFinished,
    JobQueries,
    JobQueueFull,
    JobRecords,
    JobsPage,
)

MAX_PAGE = 1000


def job_id_param(req: func.HttpRequest, kind: str) -> str:
    """The ``{jobId}`` route value; anything that cannot be a job id is simply not found."""
    job_id = str(req.route_params.get("jobId", ""))
    if not (0 < len(job_id) <= 64) or not all(c.isalnum() or c == "-" for c in job_id):
        raise HttpProblem(404, "Not found", f"no such {kind} job")
    return job_id


def records_seen_by(caller: Caller, page: JobRecords) -> dict[str, Any]:
    """``page`` as ``caller`` may see it, as the records models take it: without the current CRM values
    (``changes[column].before``) unless ``caller.sees_crm_values``; which columns change, and to what,
    stays visible."""
    out: dict[str, Any] = {"records": page.records, "nextCursor": page.next_cursor}
    if caller.sees_crm_values:
        return out
    for record in page.records:
        changes = record.get("changes") if isinstance(record, dict) else None
        if isinstance(changes, dict):
            record["changes"] = {
                column: {k: v for k, v in change.items() if k != "before"}
                if isinstance(change, dict)
                else change
                for column, change in changes.items()
            }
    return out


@dataclass(frozen=True)
class RecordsQuery:
    status: str | None
    cursor: str | None
    limit: int


def records_query(req: func.HttpRequest) -> RecordsQuery:
    """``status``, ``cursor`` and ``limit`` of a per-record listing; 400 naming the bad parameter."""
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
    if cursor is not None and ascii_whole_number(cursor, max_digits=9) is None:
        raise HttpProblem(
            400,
            "Invalid query",
            "cursor is not one this API returned",
            errors=[{"pointer": "/cursor", "message": "use the nextCursor of the previous page"}],
        )
    raw_limit = req.params.get("limit", "100")
    limit = ascii_whole_number(raw_limit, max_digits=4)
    if limit is None or not 1 <= limit <= MAX_PAGE:
        raise HttpProblem(
            400,
            "Invalid query",
            f"limit must be a whole number from 1 to {MAX_PAGE}",
            errors=[{"pointer": "/limit", "message": f"expected 1..{MAX_PAGE}"}],
        )
    return RecordsQuery(status, cursor, limit)


# --- answer shapes --------------------------------------------------------------------------------


class JobCounts(BaseModel):
    """Records by outcome so far (a dry run counts what it would do under created/updated)."""

    created: int
    updated: int
    unchanged: int = Field(description="matched, and every mapped value already equal: nothing written")
    skipped: int
    failed: int = Field(description="refused by Dynamics; the record carries the field and the reason")
    invalid: int = Field(description="refused before sending (bad input or mapping)")
    cancelled: int = Field(description="not written: the job was cancelled before they were sent")


class TopError(BaseModel):
    code: str = Field(
        description="Dataverse error code, e.g. 0x80044331; invalid: refused before sending; no_code: "
        "failed without one (a chunk that gave up)"
    )
    count: int = Field(description="failed or invalid records carrying this code")


class JobSummary(BaseModel):
    """What the status of every job kind adds to its counts: how long it took, what failed most, and its
    links to other jobs."""

    finishedAt: str | None = Field(default=None, description="ISO 8601, UTC; a finished job only")
    durationSeconds: float | None = Field(
        default=None, description="from submission to the end of its last chunk; a finished job only"
    )
    topErrors: list[TopError] = Field(
        default_factory=list, description="the most frequent error codes of its failed records (at most 5)"
    )
    retryOf: str | None = Field(default=None, description="the job whose failed records this job sends again")
    retriedBy: str | None = Field(
        default=None, description="the job that sends this job's failed records again"
    )
    cancelRequestedAt: str | None = Field(default=None, description="ISO 8601, UTC: when a cancel was asked")
    cancelledBy: str | None = Field(default=None, description="platform user (or service) that asked it")


def summary_fields(status: JobStatus) -> dict[str, Any]:
    """The ``JobSummary`` members of ``status`` that are set (the others are left out of the answer)."""
    out: dict[str, Any] = {
        "topErrors": [TopError(code=code, count=count) for code, count in status.top_errors]
    }
    optional = {
        "finishedAt": status.finished_at,
        "durationSeconds": status.duration_s,
        "retryOf": status.retry_of,
        "retriedBy": status.retried_by,
        "cancelRequestedAt": status.cancel_requested_at,
        "cancelledBy": status.cancelled_by,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordError(_Strict):
    field: str = Field(description="Dynamics column, or the platform field when caught before sending")
    message: str
    code: str | None = Field(default=None, description="Dataverse error code, e.g. 0x80044331")


class MatchCondition(_Strict):
    platformField: str
    dynamicsField: str
    value: str = Field(description="the normalised value both sides share (searched: the platform side)")


class MatchExplanation(_Strict):
    status: MatchStatus
    dynamicsId: str | None = None
    rule: str | None = Field(
        default=None, description="the identifier rule that matched, or created_by_platform for our own id"
    )
    conditions: list[MatchCondition] = Field(default_factory=list, description="what the match rests on")
    candidates: list[str] = Field(default_factory=list, description="ambiguous: the records that matched")
    searched: list[MatchCondition] = Field(default_factory=list, description="the values looked up")


class MergedInto(_Strict):
    """The earlier record of the same list a skipped duplicate was exported as (by the configured
    identifier): the platform links the skipped record to the same Dynamics record."""

    seq: int = Field(description="position of that record in the submitted list")
    platformId: str
    action: RecordAction | None = Field(default=None, description="its outcome; null until it has one")
    dynamicsId: str | None = Field(default=None, description="the Dynamics record it was written to")


class RecordWarning(_Strict):
    code: str = Field(
        description="company_not_identifiable: the contact's company has none of the values the company "
        "identifier compares, so it was not created and the contact kept its current company; "
        "company_kept: the contact stayed under its current company rather than move to a new one of the "
        "same name"
    )
    message: str


class RecordResult(_Strict):
    seq: int = Field(description="position in the submitted list")
    platformId: str
    action: RecordAction
    dynamicsId: str | None = None
    match: MatchExplanation | None = None
    errors: list[RecordError] = Field(default_factory=list)
    changes: dict[str, Any] | None = Field(
        default=None,
        description="columns written: column -> {before, after}; `before` (the value Dynamics held) is "
        "shown to admins only",
    )
    note: str | None = Field(default=None, description="why a record was skipped, or what was left alone")
    mergedInto: MergedInto | None = Field(
        default=None,
        description="skipped as the same person or company as an earlier record of the same export: that "
        "record, with its Dynamics id and action (dynamicsId above is the same id)",
    )
    warnings: list[RecordWarning] = Field(
        default_factory=list, description="what the export left alone on purpose, and why"
    )


class RecordsPage(_Strict):
    records: list[RecordResult]
    nextCursor: str | None = Field(description="pass as cursor for the next page; null on the last page")


class ActivityActor(_Strict):
    source: ActorSource = Field(description="which rule chose the user the activity is logged as")
    dynamicsUserId: str
    impersonated: bool = Field(description="created as that user (CallerObjectId), not only owned by it")
    passedOver: list[str] = Field(default_factory=list, description="mapped users skipped, and why")


class ActivityLogged(_Strict):
    table: str | None = Field(default=None, description="Dynamics activity table, e.g. email, phonecall")
    regardingContactId: str | None = None
    actor: ActivityActor | None = None


class ActivityResult(RecordResult):
    contactAction: ContactAction | None = None
    activity: ActivityLogged | None = None


class ActivityRecordsPage(_Strict):
    records: list[ActivityResult]
    nextCursor: str | None


class ActivitiesProgress(BaseModel):
    events: int = Field(description="events in the job")
    processed: int
    chunks: int
    chunksDone: int


class ActivitiesStatus(JobSummary):
    jobId: str
    state: str = Field(
        description="queued, running, succeeded, partially_failed, failed, paused_reconnect, paused_disabled "
        "(Dynamics disabled for the workspace: resumes when it is enabled again), cancelling, cancelled"
    )
    createdAt: str = Field(description="ISO 8601, UTC")
    requestedBy: str
    counts: JobCounts
    progress: ActivitiesProgress
    errors: list[str]

    @classmethod
    def of(cls, status: JobStatus) -> ActivitiesStatus:
        return cls(
            jobId=status.job_id,
            state=status.state.value,
            createdAt=status.created_at,
            requestedBy=status.requested_by,
            counts=JobCounts(**status.counts),
            progress=ActivitiesProgress(
                events=status.progress.records,
                processed=status.progress.processed,
                chunks=status.progress.chunks,
                chunksDone=status.progress.chunks_done,
            ),
            errors=status.errors,
            **summary_fields(status),
        )


MAX_JOBS_PAGE = 100
DEFAULT_JOBS_PAGE = 50
MAX_WHO = 128
# The query parameters of a per-record listing, as the OpenAPI document shows them.
RECORDS_QUERY: dict[str, dict[str, Any]] = {
    "status": {
        "type": "string",
        "enum": [a.value for a in RecordAction],
        "description": "only the records with this outcome",
    },
    "cursor": {"type": "string", "maxLength": 200, "description": "nextCursor of the previous page"},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100},
}
# The query parameters of a job list, as the OpenAPI document shows them.
JOBS_PAGE_QUERY: dict[str, dict[str, Any]] = {
    "cursor": {"type": "string", "maxLength": 200, "description": "nextCursor of the previous page"},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_JOBS_PAGE, "default": DEFAULT_JOBS_PAGE},
    "state": {
        "type": "string",
        "enum": [s.value for s in JobState],
        "description": "only jobs in this state now",
    },
    "from": {
        "type": "string",
        "format": "date-time",
        "description": "only jobs submitted at or after this time (ISO 8601 with an offset, e.g. Z)",
    },
    "to": {
        "type": "string",
        "format": "date-time",
        "description": "only jobs submitted before this time (ISO 8601 with an offset, e.g. Z)",
    },
    "requestedBy": {
        "type": "string",
        "maxLength": MAX_WHO,
        "description": "only jobs submitted by (or for) this platform user",
    },
}


def _bad_query(name: str, detail: str, message: str) -> HttpProblem:
    return HttpProblem(400, "Invalid query", detail, errors=[{"pointer": f"/{name}", "message": message}])


def _choice(req: func.HttpRequest, name: str, allowed: Iterable[str]) -> str | None:
    value = req.params.get(name) or None
    choices = sorted(allowed)
    if value is not None and value not in choices:
        raise _bad_query(name, f"{name} must be one of {', '.join(choices)}", f"unknown {name}")
    return value


def _moment(req: func.HttpRequest, name: str) -> str | None:
    value = req.params.get(name) or None
    if value is None:
        return None
    utc = None
    if len(value) <= 40:
        try:
            parsed = dt.datetime.fromisoformat(value)
            # The offset may carry a moment near year 1 or 9999 past the calendar's end (OverflowError).
            utc = parsed.astimezone(dt.UTC) if parsed.tzinfo is not None else None
        except (ValueError, OverflowError):
            utc = None
    if utc is None or not 1970 <= utc.year <= 9999:
        raise _bad_query(
            name,
            f"{name} must be an ISO 8601 date and time with an offset, from 1970 to 9999 in UTC, "
            "e.g. 2026-12-01T00:00:00Z",
            "expected an ISO 8601 date-time with an offset",
        )
    return utc.isoformat()


def history_filter(
    req: func.HttpRequest, *, entities: Iterable[str] = (), triggers: Iterable[str] = ()
) -> HistoryFilter:
    """The filters of a job list (``state``, ``from``, ``to``, ``requestedBy``, and ``entity`` /
    ``trigger`` where the kind has them); 400 naming the bad parameter."""
    state = _choice(req, "state", (s.value for s in JobState))
    entity = _choice(req, "entity", entities) if entities else None
    trigger = _choice(req, "trigger", triggers) if triggers else None
    created_from, created_to = _moment(req, "from"), _moment(req, "to")
    if created_from is not None and created_to is not None and created_from >= created_to:
        raise _bad_query("to", "to must be later than from", "must be later than from")
    who = req.params.get("requestedBy") or None
    if who is not None and not valid_id(who):
        raise _bad_query(
            "requestedBy", "requestedBy is not a platform user id", f"1..{MAX_WHO} letters, digits, . _ : @ -"
        )
    return HistoryFilter(
        state=JobState(state) if state else None,
        entity=entity,
        trigger=trigger,
        requested_by=who,
        created_from=created_from,
        created_to=created_to,
    )


def jobs_page(req: func.HttpRequest, service: JobQueries, workspace_id: str, flt: HistoryFilter) -> JobsPage:
    """A page of the workspace's jobs (``cursor``, ``limit`` query parameters); 400 naming a bad one."""
    limit = ascii_whole_number(req.params.get("limit", str(DEFAULT_JOBS_PAGE)), max_digits=4)
    if limit is None or not 1 <= limit <= MAX_JOBS_PAGE:
        raise _bad_query(
            "limit", f"limit must be a whole number from 1 to {MAX_JOBS_PAGE}", f"expected 1..{MAX_JOBS_PAGE}"
        )
    try:
        return service.jobs_page(workspace_id, req.params.get("cursor") or None, limit, flt)
    except InvalidCursor:
        raise _bad_query(
            "cursor", "cursor is not one this API returned", "use the nextCursor of the previous page"
        ) from None


def job_finished(exc: JobFinished) -> HttpProblem:
    """409: a finished job cannot be cancelled."""
    return HttpProblem(
        409,
        "Job already finished",
        f"the job is {exc.status.state.value}: there is nothing left to cancel",
    )


def queue_full(exc: JobQueueFull) -> HttpProblem:
    """429 with ``Retry-After``: the workspace has as many jobs of this kind in flight as it may."""
    return HttpProblem(
        429,
        "Too many jobs in flight",
        f"{exc.limit} jobs of this kind are already queued or running for this workspace; "
        f"retry after {exc.retry_after_s} seconds",
        headers={"Retry-After": str(exc.retry_after_s)},
    )
