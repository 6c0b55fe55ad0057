"""In-app notifications of the caller's workspace: "reconnect Dynamics 365", and a job that ended failed or
partly failed or paused until Dynamics is reconnected (with its counts, top error codes and link).

- ``GET  /api/notifications``            ``{"notifications": [...]}`` newest first
- ``POST /api/notifications/{id}/read``  mark one read → the notification
"""

from __future__ import annotations

from typing import Literal

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from core import bootstrap, openapi
from core.domain.caller import Caller
from core.domain.notification import Notification
from core.entrypoints.http_support import HttpProblem, authenticated, model_response, utc_iso
from core.services.alerts.service import AlertService
from core.settings import SettingsError

bp = func.Blueprint()  # type: ignore[no-untyped-call]


def _alerts() -> AlertService:
    try:
        return bootstrap.app().alerts
    except SettingsError as exc:  # names the missing setting, never a value
        raise HttpProblem(503, "Notifications not configured", str(exc)) from None


TAG = ("Notifications",)


class ErrorCodeCount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(
        description="a Dataverse error code (e.g. 0x80040237), a value check (e.g. too_long); `invalid`: "
        "refused before sending; `no_code`: failed without one (a chunk that gave up, a lost connection)"
    )
    count: int = Field(description="records with this code")


class NotificationJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["export", "activity"]
    jobId: str
    entity: str = Field(description="contacts | companies | events")
    trigger: str
    state: Literal["failed", "partially_failed", "paused_reconnect"]
    records: int = Field(description="records submitted")
    counts: dict[str, int] = Field(description="created, updated, unchanged, skipped, failed, invalid")
    topErrorCodes: list[ErrorCodeCount] = Field(description="most frequent first, at most 5")
    link: str = Field(description="the job's status: GET this path (its records: + /records)")


class NotificationView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    kind: str = Field(
        description="dynamics_reconnect_required | dynamics_job_failed | dynamics_job_partially_failed | "
        "dynamics_job_paused_reconnect"
    )
    reason: str | None = Field(description="inactivity | revoked | consent_or_mfa_required (reconnect only)")
    title: str
    message: str
    createdAt: str
    read: bool
    readAt: str | None
    job: NotificationJob | None = Field(default=None, description="the job of a job notice; null otherwise")

    @classmethod
    def of(cls, notification: Notification) -> NotificationView:
        return cls(
            id=notification.id,
            kind=notification.kind,
            reason=notification.reason,
            title=notification.title,
            message=notification.message,
            createdAt=str(utc_iso(notification.created_at)),
            read=notification.read_at is not None,
            readAt=utc_iso(notification.read_at),
            job=NotificationJob.model_validate(notification.job) if notification.job else None,
        )


class NotificationList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notifications: list[NotificationView] = Field(description="newest first")


@bp.route(route="api/notifications", methods=["GET"])
@authenticated()
def notifications_list(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    items = _alerts().notifications(caller.workspace_id)
    return model_response(
        NotificationList(notifications=[NotificationView.of(n) for n in items]),
        headers={"Cache-Control": "no-store"},
    )


@bp.route(route="api/notifications/{notification_id}/read", methods=["POST"])
@authenticated()
def notifications_mark_read(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    notification_id = req.route_params.get("notification_id", "")
    if not notification_id or len(notification_id) > 200 or any(c in notification_id for c in "/\\#?"):
        raise HttpProblem(404, "Not found", "no such notification")
    found = _alerts().mark_read(caller.workspace_id, notification_id)
    if found is None:
        raise HttpProblem(404, "Not found", "no such notification")
    return model_response(NotificationView.of(found))


openapi.register(
    "GET",
    "/api/notifications",
    "Notifications of the workspace",
    response=NotificationList,
    problems=(401, 503),
    tags=TAG,
)
openapi.register(
    "POST",
    "/api/notifications/{notification_id}/read",
    "Mark a notification read",
    response=NotificationView,
    problems=(401, 404, 503),
    tags=TAG,
)
