"""``GET /api/dynamics/usage``: how much of the Dynamics user's service protection budget the integration
used, in the current 5-minute window and per day, against the limits; 429s received; the busiest job.
People of the workspace (admins and members) may read it; the workspace comes from the token."""

from __future__ import annotations

import azure.functions as func
from pydantic import BaseModel, Field

from core import bootstrap, openapi
from core.domain.caller import PEOPLE, Caller
from core.entrypoints.http_support import authenticated, model_response, utc_iso
from core.services.dynamics.usage import Spent, UsageView

bp = func.Blueprint()  # type: ignore[no-untyped-call]


class UsageLimits(BaseModel):
    requests: int = Field(description="requests per user per window (Dataverse default 6,000)")
    executionSeconds: float = Field(description="execution time per user per window (default 1,200 s)")
    concurrentRequests: int = Field(description="requests at once per user (default 52)")
    windowSeconds: float = Field(description="the sliding window (default 300 s)")


class BusiestJob(BaseModel):
    kind: str = Field(description="export or activity")
    jobId: str
    requests: int
    executionSeconds: float


class UsageSpent(BaseModel):
    requests: int = Field(
        description="requests Dynamics counted toward the limit (answered; 429s not included)"
    )
    throttled: int = Field(description="429 Too Many Requests answers received")
    executionSeconds: float = Field(
        description="time Dynamics took to answer, as the integration measured it (round trips)"
    )
    busiestJob: BusiestJob | None = Field(description="the job that sent most requests; null when none did")


class UsageWindow(UsageSpent):
    start: str = Field(
        description="ISO 8601, UTC: the window counted, in 30-second steps (the oldest in full)"
    )
    end: str = Field(description="ISO 8601, UTC: now")
    requestsShare: float = Field(description="requests / limits.requests (1.0 = the whole window's limit)")
    executionShare: float = Field(description="executionSeconds / limits.executionSeconds")


class UsageDay(UsageSpent):
    date: str = Field(description="YYYY-MM-DD, UTC")


class ReportedByDynamics(BaseModel):
    at: str = Field(description="ISO 8601, UTC: when Dynamics answered")
    requestsRemaining: int | None = Field(description="x-ms-ratelimit-burst-remaining-xrm-requests")
    executionSecondsRemaining: float | None = Field(description="x-ms-ratelimit-time-remaining-xrm-requests")


class DynamicsUsageAnswer(BaseModel):
    recorded: bool = Field(
        description="false when this deployment does not count requests (DYNAMICS_BUDGET_ENABLED=false): "
        "every count is then 0"
    )
    limits: UsageLimits
    window: UsageWindow
    days: list[UsageDay] = Field(description="today first, then each earlier day of the last 7 with requests")
    reportedByDynamics: ReportedByDynamics | None = Field(
        description="what Dynamics said, in its latest answer, is left of the user's window on the server "
        "that answered: every app of the user counts there, not only this integration"
    )


def _spent(spent: Spent) -> dict[str, object]:
    job = spent.busiest_job
    return {
        "requests": spent.requests,
        "throttled": spent.throttled,
        "executionSeconds": spent.execution_s,
        "busiestJob": None
        if job is None
        else BusiestJob(
            kind=job.kind, jobId=job.job_id, requests=job.requests, executionSeconds=job.execution_s
        ),
    }


def render(view: UsageView) -> DynamicsUsageAnswer:
    limits = view.limits
    reported = view.reported
    return DynamicsUsageAnswer(
        recorded=view.recorded,
        limits=UsageLimits(
            requests=limits.max_requests,
            executionSeconds=limits.max_execution_s,
            concurrentRequests=limits.max_concurrent,
            windowSeconds=limits.window_s,
        ),
        window=UsageWindow(
            start=utc_iso(view.window_start) or "",
            end=utc_iso(view.window_end) or "",
            requestsShare=round(view.window.requests / limits.max_requests, 4),
            executionShare=round(view.window.execution_s / limits.max_execution_s, 4),
            **_spent(view.window),  # type: ignore[arg-type]
        ),
        days=[UsageDay(date=day.date, **_spent(day.spent)) for day in view.days],  # type: ignore[arg-type]
        reportedByDynamics=None
        if reported is None
        else ReportedByDynamics(
            at=utc_iso(reported.at) or "",
            requestsRemaining=reported.requests_remaining,
            executionSecondsRemaining=reported.execution_remaining_s,
        ),
    )


@bp.route(route="api/dynamics/usage", methods=["GET"])
@authenticated(callers=PEOPLE)
def get_dynamics_usage(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    view = bootstrap.app().dynamics_usage.view(caller.workspace_id)
    return model_response(render(view), headers={"Cache-Control": "no-store"})


openapi.register(
    "GET",
    "/api/dynamics/usage",
    "How much of the Dynamics user's API limits the integration used: this 5-minute window and per day",
    response=DynamicsUsageAnswer,
    tags=("Dynamics connection",),
    description="Dataverse limits each user to 6,000 requests and 1,200 s of execution time per sliding 5 "
    "minutes and 52 requests at once (service protection limits); beyond them it answers 429. Counted by "
    "the integration itself for every request of the workspace's Dynamics connection (exports, activities, "
    "setup screens), merged into storage at least every 30 s, so the last seconds may be missing.",
    callers=PEOPLE,
)
