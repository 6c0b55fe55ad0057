"""How much of the Dynamics user's service protection budget this integration used: the current 5-minute
window and each of the last days, against the limits, the 429s it was given, and the job that spent most.

The counts come from the shared Dynamics budget (``core.adapters.dataverse.budget``), which already counts
every HTTP attempt of the workspace's client in memory and merges them into Table Storage every 50 requests
(and at least every 30 s while requests come), its ledger buckets holding the window and one row per day
the totals: reading this view costs two queries and recording it costs no write per request. Requests are
counted as Dynamics counts them: answered, 429s apart (a refused request does not count toward the limit;
https://learn.microsoft.com/power-apps/developer/data-platform/api-limits). Execution time is what the
integration measured (round trips, so at least the server's execution time). Dynamics' own figures for
the whole user (other apps included) are the ``x-ms-ratelimit-*`` headers of its latest answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.adapters.dataverse.budget import BudgetLimits, DynamicsBudget, UsageTotals
from core.services.jobs.retention import USAGE_DAYS as DAYS


@dataclass(frozen=True)
class JobUsage:
    kind: str  # export, activity
    job_id: str
    requests: int
    execution_s: float


@dataclass(frozen=True)
class Spent:
    requests: int  # counted by Dynamics (429s not included)
    throttled: int  # 429s received
    execution_s: float
    busiest_job: JobUsage | None


@dataclass(frozen=True)
class DayUsage:
    date: str  # YYYY-MM-DD, UTC
    spent: Spent


@dataclass(frozen=True)
class ReportedByDynamics:
    at: dt.datetime
    requests_remaining: int | None
    execution_remaining_s: float | None


@dataclass(frozen=True)
class UsageView:
    recorded: bool  # False when the shared budget is off on this deployment (nothing is counted)
    limits: BudgetLimits
    window_start: dt.datetime
    window_end: dt.datetime
    window: Spent
    days: list[DayUsage]  # today first, then each earlier day of the last week with requests
    reported: ReportedByDynamics | None


def _spent(totals: UsageTotals) -> Spent:
    busiest = None
    if totals.jobs:
        label, (requests, ms) = max(totals.jobs.items(), key=lambda item: (item[1][0], item[0]))
        kind, _, job_id = label.partition(":")
        busiest = JobUsage(kind, job_id, requests, round(ms / 1000.0, 3))
    return Spent(
        max(0, totals.requests - totals.throttled),
        totals.throttled,
        round(totals.execution_ms / 1000.0, 3),
        busiest,
    )


_NONE = UsageTotals(0, 0.0, 0, {})


class DynamicsUsage:
    def __init__(
        self,
        budget: DynamicsBudget | None,
        limits: BudgetLimits,
        *,
        now: type[dt.datetime] = dt.datetime,
    ) -> None:
        self._budget = budget
        self._limits = limits
        self._now = now

    def view(self, workspace_id: str) -> UsageView:
        now = self._now.now(dt.UTC)
        today = now.date().isoformat()
        if self._budget is None:
            empty = _spent(_NONE)
            return UsageView(
                False,
                self._limits,
                now - dt.timedelta(seconds=self._limits.window_s),
                now,
                empty,
                [DayUsage(today, empty)],
                None,
            )
        report = self._budget.usage_report(workspace_id, days=DAYS)
        days = [DayUsage(today, _spent(report.days.get(today, _NONE)))]
        days += [DayUsage(d, _spent(t)) for d, t in sorted(report.days.items(), reverse=True) if d != today]
        reported = None
        if report.reported is not None:
            reported = ReportedByDynamics(
                dt.datetime.fromtimestamp(report.reported.at, dt.UTC),
                report.reported.requests_remaining,
                report.reported.execution_remaining_s,
            )
        return UsageView(
            True,
            self._budget.limits,
            dt.datetime.fromtimestamp(report.window_start, dt.UTC),
            now,
            _spent(report.window),
            days,
            reported,
        )
