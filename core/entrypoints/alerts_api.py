"""The workspace's alert webhook, configured by admins: the same events as the in-app job notifications
(a job ended failed or partly failed, or paused until Dynamics is reconnected), posted signed.

- ``GET    /api/dynamics/alerts/webhook``             the webhook (URL, who set it, when the secret was made)
- ``PUT    /api/dynamics/alerts/webhook``             set the URL; 201 with the signing secret when created,
                                                       200 (with the secret only when ``rotateSecret``) after
- ``DELETE /api/dynamics/alerts/webhook``             stop sending, delete the secret
- ``POST   /api/dynamics/alerts/webhook/test``        queue a signed ``webhook.test`` event
- ``GET    /api/dynamics/alerts/webhook/deliveries``  attempts, newest first (``cursor``, ``limit``)

The signing secret is shown by the PUT that generated it and never again (Key Vault keeps it).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Protocol

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from core import bootstrap, openapi
from core.domain.alerts import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    MAX_WEBHOOK_URL,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidWebhookUrl,
)
from core.domain.caller import ADMINS, Caller
from core.domain.values import ascii_whole_number
from core.entrypoints.http_support import HttpProblem, authenticated, model_response, read_model, utc_iso
from core.services.alerts.service import (
    MAX_DELIVERY_LOG_PAGE,
    AlertService,
    SigningSecretUnavailable,
    WebhookChanged,
    WebhookNotConfigured,
)
from core.settings import SettingsError

bp = func.Blueprint()  # type: ignore[no-untyped-call]

TAG = ("Alerts",)
MAX_WEBHOOK_BODY = 8 * 1024
DEFAULT_LOG_PAGE = 50
_CURSOR = re.compile(r"^\d{13}-[A-Za-z0-9-]{1,120}-\d{3}$")
_NO_STORE = {"Cache-Control": "no-store"}

SIGNING = (
    f"Each request is a POST of the event as JSON with `{TIMESTAMP_HEADER}` (Unix seconds), "
    f"`{SIGNATURE_HEADER}: v1=<hex HMAC-SHA256 of '<timestamp>.<raw body>' keyed by the secret>`, "
    f"`{EVENT_ID_HEADER}` (the same on every retry: dedupe on it) and `{EVENT_HEADER}`. Any 2xx within the "
    "timeout delivers it; anything else (redirects are not followed) is retried with exponential backoff."
)


def _alerts() -> AlertService:
    try:
        return bootstrap.app().alerts
    except SettingsError as exc:  # names the missing setting, never a value
        raise HttpProblem(503, "Alerts not configured", str(exc)) from None


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        max_length=MAX_WEBHOOK_URL,
        description="https:// URL of a public host; no user information or fragment; redirects not followed",
    )
    rotateSecret: bool = Field(
        default=False, description="generate a new signing secret (answered once, in this response)"
    )


class WebhookView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    updatedAt: str = Field(description="ISO 8601, UTC")
    updatedBy: str = Field(description="platform user id of the admin who set it")
    secretCreatedAt: str = Field(description="when the current signing secret was generated")
    events: list[str] = Field(description="the events sent")


class WebhookSaved(WebhookView):
    secret: str | None = Field(
        description="the signing secret: only in the answer that created or rotated it, never shown again"
    )


class TestQueued(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deliveryId: str = Field(description="find its attempts in the delivery log")


class DeliveryAttempt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deliveryId: str = Field(description=f"the event's id, as sent in {EVENT_ID_HEADER}")
    event: str = Field(description="job.failed | job.partially_failed | job.paused_reconnect | webhook.test")
    jobId: str | None
    attempt: int = Field(description="1 for the first attempt")
    at: str = Field(description="ISO 8601, UTC")
    statusCode: int | None = Field(description="the receiver's HTTP status; null when it did not answer")
    outcome: str = Field(
        description="delivered | retry (another attempt is queued) | dead (no more attempts)"
    )
    error: str | None = Field(
        description="why the attempt failed (timeout, HTTP 500, ...); null when delivered"
    )
    nextAttemptAt: str | None = Field(description="when the next attempt is due (outcome retry)")


class DeliveryLog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attempts: list[DeliveryAttempt] = Field(description="newest first")
    nextCursor: str | None = Field(description="pass as cursor for the next page; null on the last page")


EVENTS = ["job.failed", "job.partially_failed", "job.paused_reconnect"]


class _Hook(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def updated_at(self) -> dt.datetime: ...
    @property
    def updated_by(self) -> str: ...
    @property
    def secret_created_at(self) -> dt.datetime: ...


def _view(hook: _Hook) -> WebhookView:
    return WebhookView(
        url=hook.url,
        updatedAt=str(utc_iso(hook.updated_at)),
        updatedBy=hook.updated_by,
        secretCreatedAt=str(utc_iso(hook.secret_created_at)),
        events=EVENTS,
    )


@bp.route(route="api/dynamics/alerts/webhook", methods=["GET"])
@authenticated(admin=True)
def get_alert_webhook(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    hook = _alerts().webhook(caller.workspace_id)
    if hook is None:
        raise HttpProblem(404, "Not found", "this workspace has no alert webhook")
    return model_response(_view(hook), headers=_NO_STORE)


@bp.route(route="api/dynamics/alerts/webhook", methods=["PUT"])
@authenticated(admin=True)
def put_alert_webhook(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    body = read_model(req, WebhookRequest, max_bytes=MAX_WEBHOOK_BODY)
    try:
        saved = _alerts().put_webhook(
            caller.workspace_id, caller.user_id, body.url, rotate_secret=body.rotateSecret
        )
    except InvalidWebhookUrl as exc:
        raise HttpProblem(
            400,
            "Invalid request body",
            f"url {exc}",
            errors=[{"pointer": "/url", "message": str(exc)}],
        ) from None
    except SettingsError as exc:
        raise HttpProblem(503, "Alerts not configured", str(exc)) from None
    except SigningSecretUnavailable:
        raise HttpProblem(503, "Key Vault unavailable", "the webhook was not changed; try again") from None
    except WebhookChanged:
        raise HttpProblem(
            409,
            "Webhook changed meanwhile",
            "another request changed the webhook at the same time; this one changed nothing: read the "
            "webhook again and save once more if still needed",
        ) from None
    return model_response(
        WebhookSaved(**_view(saved.webhook).model_dump(), secret=saved.secret),
        status=201 if saved.created else 200,
        headers=_NO_STORE,
    )


@bp.route(route="api/dynamics/alerts/webhook", methods=["DELETE"])
@authenticated(admin=True)
def delete_alert_webhook(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    try:
        _alerts().delete_webhook(caller.workspace_id)
    except SettingsError as exc:
        raise HttpProblem(503, "Alerts not configured", str(exc)) from None
    except SigningSecretUnavailable:
        raise HttpProblem(
            503, "Key Vault unavailable", "sending stopped; the secret was not deleted: try again"
        ) from None
    return func.HttpResponse(status_code=204)


@bp.route(route="api/dynamics/alerts/webhook/test", methods=["POST"])
@authenticated(admin=True)
def post_alert_webhook_test(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    try:
        delivery_id = _alerts().send_test(caller.workspace_id)
    except WebhookNotConfigured:
        raise HttpProblem(404, "Not found", "this workspace has no alert webhook") from None
    return model_response(TestQueued(deliveryId=delivery_id), status=202)


@bp.route(route="api/dynamics/alerts/webhook/deliveries", methods=["GET"])
@authenticated(admin=True)
def get_alert_webhook_deliveries(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    cursor = req.params.get("cursor") or None
    if cursor is not None and (len(cursor) > 200 or not _CURSOR.match(cursor)):
        raise HttpProblem(
            400,
            "Invalid query",
            "cursor is not one this API returned",
            errors=[{"pointer": "/cursor", "message": "use the nextCursor of the previous page"}],
        )
    limit = ascii_whole_number(req.params.get("limit", str(DEFAULT_LOG_PAGE)), max_digits=4)
    if limit is None or not 1 <= limit <= MAX_DELIVERY_LOG_PAGE:
        raise HttpProblem(
            400,
            "Invalid query",
            f"limit must be a whole number from 1 to {MAX_DELIVERY_LOG_PAGE}",
            errors=[{"pointer": "/limit", "message": f"1 to {MAX_DELIVERY_LOG_PAGE}"}],
        )
    attempts, next_cursor = _alerts().delivery_log(caller.workspace_id, cursor, limit)
    page = DeliveryLog(
        attempts=[
            DeliveryAttempt(
                deliveryId=a.delivery_id,
                event=a.event,
                jobId=a.job_id,
                attempt=a.attempt,
                at=str(utc_iso(a.at)),
                statusCode=a.status_code,
                outcome=a.outcome,
                error=a.error,
                nextAttemptAt=utc_iso(a.next_attempt_at),
            )
            for a in attempts
        ],
        nextCursor=next_cursor,
    )
    return model_response(page, headers=_NO_STORE)


_PATH = "/api/dynamics/alerts/webhook"
openapi.register(
    "GET",
    _PATH,
    "The workspace's alert webhook",
    response=WebhookView,
    problems=(404,),
    tags=TAG,
    callers=ADMINS,
    description=SIGNING,
)
openapi.register(
    "PUT",
    _PATH,
    "Set the alert webhook (the signing secret is answered once)",
    request=WebhookRequest,
    response=WebhookSaved,
    alternatives={201: (WebhookSaved, "created: `secret` is the new signing secret, shown only now")},
    problems=(409, 503),
    tags=TAG,
    callers=ADMINS,
    description=f"{SIGNING} 409: another save changed the webhook at the same time; this one changed "
    "nothing (read it again). A rotation replaces the secret: the former one is deleted.",
)
openapi.register(
    "DELETE",
    _PATH,
    "Remove the alert webhook and its signing secret",
    status=204,
    problems=(503,),
    tags=TAG,
    callers=ADMINS,
)
openapi.register(
    "POST",
    f"{_PATH}/test",
    "Send a signed test event to the webhook",
    response=TestQueued,
    status=202,
    problems=(404,),
    tags=TAG,
    callers=ADMINS,
)
openapi.register(
    "GET",
    f"{_PATH}/deliveries",
    "Webhook delivery attempts, newest first",
    response=DeliveryLog,
    problems=(400,),
    tags=TAG,
    callers=ADMINS,
    query={
        "cursor": {"type": "string", "maxLength": 200, "description": "nextCursor of the previous page"},
        "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_DELIVERY_LOG_PAGE,
            "default": DEFAULT_LOG_PAGE,
        },
    },
)
