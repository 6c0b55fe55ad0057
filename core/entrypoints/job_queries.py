"""Path and query parameters shared by the job endpoints (exports and activities)."""

from __future__ import annotations

from dataclasses import dataclass

import azure.functions as func

from core.domain.export_job import RecordAction
from core.entrypoints.http_support import HttpProblem

MAX_PAGE = 1000


def job_id_param(req: func.HttpRequest, kind: str) -> str:
    """The ``{jobId}`` route value; anything that cannot be a job id is simply not found."""
    job_id = str(req.route_params.get("jobId", ""))
    if not (0 < len(job_id) <= 64) or not all(c.isalnum() or c == "-" for c in job_id):
        raise HttpProblem(404, "Not found", f"no such {kind} job")
    return job_id


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
    if cursor is not None and not (cursor.isdigit() and len(cursor) <= 9):
        raise HttpProblem(
            400,
            "Invalid query",
            "cursor is not one this API returned",
            errors=[{"pointer": "/cursor", "message": "use the nextCursor of the previous page"}],
        )
    raw_limit = req.params.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise HttpProblem(
            400,
            "Invalid query",
            f"limit must be a whole number from 1 to {MAX_PAGE}",
            errors=[{"pointer": "/limit", "message": f"expected 1..{MAX_PAGE}"}],
        )
    return RecordsQuery(status, cursor, int(raw_limit))
