"""Downloading a finished export's per-record results as a file.

- ``GET /api/dynamics/exports/{jobId}/records.csv``     CSV (spreadsheet-safe: formula cells neutralised)
- ``GET /api/dynamics/exports/{jobId}/records.ndjson``  one JSON object per line, as the records endpoint
  shows each record

The format is in the path (a file name with its extension, what a browser saves) rather than in a query
parameter. Both answer ``302 Found`` with ``Location`` a link valid for a few minutes that reads the file
from Blob Storage (why a link: ``core.adapters.storage.result_files``); follow it without the bearer
token. Every caller kind of the job endpoints may download; the workspace comes from the token, and the
values Dynamics held (``changes[column].before``) are in admins' files only.

A request whose ``Accept`` prefers ``application/json`` to the file gets ``200`` with the same link as
JSON (``ResultsLink``) instead: a browser page cannot send its bearer token with a navigation, and its
``fetch`` can neither read a redirect's ``Location`` nor follow it to Blob Storage without CORS there, so
it fetches the link and then navigates to it.
"""

from __future__ import annotations

import datetime as dt

import azure.functions as func
from pydantic import BaseModel, Field

from core import bootstrap, openapi
from core.domain.caller import EVERY_CALLER, Caller
from core.domain.result_files import CSV_COLUMNS, ResultFormat
from core.entrypoints.http_support import HttpProblem, authenticated, model_response, utc_iso
from core.entrypoints.job_queries import job_id_param
from core.services.jobs.downloads import JobNotFinished, ResultsExpired

bp = func.Blueprint()  # type: ignore[no-untyped-call]

TAG = ("Exports",)
JSON = "application/json"


class ResultsLink(BaseModel):
    url: str = Field(
        description="the file in Blob Storage, as the 302's Location: follow it without the token"
    )
    expiresAt: str = Field(description="ISO 8601, UTC: the link is refused after this moment")
    fileName: str = Field(description="the name the file is saved under (the link's Content-Disposition)")


def _accepted(header: str) -> dict[str, float]:
    """Media types of an Accept header with their quality (RFC 9110 12.5.1); a bad q counts as 0."""
    out: dict[str, float] = {}
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                q = q if 0.0 <= q <= 1.0 else 0.0  # also NaN
        out[media.lower()] = max(out.get(media.lower(), 0.0), q)
    return out


def wants_json(accept: str | None, fmt: ResultFormat) -> bool:
    """True when ``Accept`` names application/json and does not prefer the file's own type. Wildcards
    (a browser's navigation sends ``*/*``) leave the default, the redirect."""
    accepted = _accepted(accept or "")
    json_q = accepted.get(JSON, 0.0)
    file_q = accepted.get(fmt.media_type.split(";")[0], 0.0)
    return json_q > 0 and json_q > file_q


def _download(req: func.HttpRequest, caller: Caller, fmt: ResultFormat) -> func.HttpResponse:
    job_id = job_id_param(req, "export")
    # Taken before the link is signed, so the expiry said is never later than the link's own.
    asked_at = dt.datetime.now(dt.UTC)
    try:
        link = bootstrap.app().export_downloads.link(
            caller.workspace_id, job_id, fmt, sees_crm_values=caller.sees_crm_values
        )
    except JobNotFinished as exc:
        raise HttpProblem(
            409,
            "Job not finished",
            f"the export is {exc.state.value}; its results can be downloaded once it has ended "
            "(GET /api/dynamics/exports/{jobId} shows its state)",
        ) from None
    except ResultsExpired:
        raise HttpProblem(
            410,
            "Results deleted",
            "this export's per-record results are older than the retention period and were deleted; "
            "its summary is still at GET /api/dynamics/exports/{jobId}",
        ) from None
    if link is None:
        raise HttpProblem(404, "Not found", "no such export job in this workspace")
    headers = {"Cache-Control": "no-store", "Vary": "Accept"}
    if wants_json(req.headers.get("accept"), fmt):
        expires = asked_at + dt.timedelta(seconds=link.expires_in_s)
        body = ResultsLink(url=link.url, expiresAt=utc_iso(expires) or "", fileName=link.filename)
        return model_response(body, headers=headers)
    return func.HttpResponse(status_code=302, headers={"Location": link.url, **headers})


@bp.route(route="api/dynamics/exports/{jobId}/records.csv", methods=["GET"])
@authenticated(callers=EVERY_CALLER)
def get_export_records_csv(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return _download(req, caller, ResultFormat.CSV)


@bp.route(route="api/dynamics/exports/{jobId}/records.ndjson", methods=["GET"])
@authenticated(callers=EVERY_CALLER)
def get_export_records_ndjson(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return _download(req, caller, ResultFormat.NDJSON)


_LOCATION = (
    "The file in Blob Storage: a read-only link to this one file, valid for 5 minutes, that names the "
    "download (Content-Disposition). Follow it without the Authorization header."
)
_ENDED = (
    "Only an export that has ended (succeeded, partially_failed, failed) is offered: 409 while it is "
    "queued, running or paused; 410 once retention has deleted its per-record results. The file is built "
    "a page of records at a time into Blob Storage, once per format (admins' files also hold the values "
    "Dynamics had), and later downloads reuse it."
)
_ACCEPT = (
    "Optional. `application/json` (preferred to the file's own media type) answers 200 with the link as "
    "JSON instead of the 302: for a browser page, whose fetch cannot read a redirect's Location; it then "
    "navigates to `url`. Anything else, `*/*` included, answers the 302."
)
_AS_JSON = "Accept asked for application/json: the same link as the 302's Location, as JSON"
openapi.register(
    "GET",
    "/api/dynamics/exports/{jobId}/records.csv",
    "Download an export's per-record results as CSV",
    status=302,
    problems=(404, 409, 410),
    tags=TAG,
    headers={"Location": _LOCATION},
    request_headers={"Accept": _ACCEPT},
    alternatives={200: (ResultsLink, _AS_JSON)},
    description=f"{_ENDED} CSV (RFC 4180, UTF-8 with a byte order mark, every cell quoted), columns "
    f"{', '.join(CSV_COLUMNS)}. A cell starting with = + - @, tab or carriage return (also after "
    "leading spaces) is prefixed with a single quote, so spreadsheet programs show it as text instead of "
    "running it as a formula (OWASP CSV injection).",
    callers=EVERY_CALLER,
)
openapi.register(
    "GET",
    "/api/dynamics/exports/{jobId}/records.ndjson",
    "Download an export's per-record results as NDJSON",
    status=302,
    problems=(404, 409, 410),
    tags=TAG,
    headers={"Location": _LOCATION},
    request_headers={"Accept": _ACCEPT},
    alternatives={200: (ResultsLink, _AS_JSON)},
    description=f"{_ENDED} NDJSON: one JSON object per line per record, in submission order, each as "
    "GET /api/dynamics/exports/{jobId}/records shows it (RecordResult).",
    callers=EVERY_CALLER,
)
