"""In-app notifications of the caller's workspace (e.g. "reconnect Dynamics 365").

- ``GET  /api/notifications``            ``{"notifications": [...]}`` newest first
- ``POST /api/notifications/{id}/read``  mark one read → the notification
"""

from __future__ import annotations

import datetime as dt

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from core import bootstrap, openapi
from core.domain.caller import Caller
from core.domain.notification import Notification
from core.entrypoints.http_support import HttpProblem, authenticated, model_response, utc_iso
from core.services.connection.service import ConnectionComponents
from core.settings import SettingsError

bp = func.Blueprint()  # type: ignore[no-untyped-call]


def _components() -> ConnectionComponents:
    try:
        return bootstrap.app().connection
    except SettingsError as exc:  # names the missing setting, never a value
        raise HttpProblem(503, "Dynamics connection not configured", str(exc)) from None


TAG = ("Notifications",)


class NotificationView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    kind: str = Field(description="dynamics_reconnect_required")
    reason: str | None = Field(description="inactivity | revoked | consent_or_mfa_required")
    title: str
    message: str
    createdAt: str
    read: bool
    readAt: str | None

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
        )


class NotificationList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notifications: list[NotificationView] = Field(description="newest first")


@bp.route(route="api/notifications", methods=["GET"])
@authenticated()
def notifications_list(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    items = _components().notifications.list(caller.workspace_id)
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
    found = _components().notifications.mark_read(
        caller.workspace_id, notification_id, dt.datetime.now(dt.UTC)
    )
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
