"""Alerts of jobs, and the workspace's webhook as admins configure it.

``job_event`` is what the chunk-job engine calls when a job ended ``failed`` / ``partially_failed`` or
paused for reconnect (``core.services.jobs.events``). It raises the in-app notification under the event's
deterministic id (a conditional insert: redeliveries and chunks finishing together raise it once) and,
when the workspace has a webhook, inserts the event's delivery under the same id and queues it
(``core.services.alerts.delivery`` sends it). Dry runs raise nothing: nothing was written.

The webhook's signing secret is generated here, stored only in Key Vault (the table row names the
secret), and returned once: by the ``put_webhook`` that created or rotated it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from core.adapters.identity.keyvault import SecretStore, SecretStoreUnavailable
from core.adapters.storage.alert_repository import ALERT_QUEUE as ALERT_QUEUE  # the queue triggers' name
from core.adapters.storage.alert_repository import AlertRepository, Attempt, Delivery, Webhook
from core.adapters.storage.alert_repository import WebhookChanged as WebhookChanged  # raised by put_webhook
from core.adapters.storage.job_store import JobRow
from core.adapters.storage.notification_repository import NotificationRepository
from core.domain.alerts import TEST_EVENT, DeliveryState, JobAlert, JobEvent, validate_webhook_url
from core.domain.jobs import JobSummary
from core.domain.notification import Notification

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
MAX_DELIVERY_LOG_PAGE = 100
# Job notices, finished deliveries and their attempts are kept this long: each new event deletes up to
# ``PRUNE_PER_EVENT`` older ones of its workspace, so what a workspace stores follows its recent events.
ALERTS_KEPT = dt.timedelta(days=90)
PRUNE_PER_EVENT = 100
JOB_NOTICE_PREFIX = "dynamics_job_"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def secret_name_for(workspace_id: str) -> str:
    """A new Key Vault name for a workspace's signing secret. Key Vault names allow [0-9a-zA-Z-]
    (workspace ids may hold more: hashed), and a name deleted (soft-deleted, kept for the vault's retention)
    cannot be set again: each new webhook, and each rotation, gets its own name."""
    digest = hashlib.sha256(workspace_id.encode("utf-8")).hexdigest()[:32]
    return f"alert-webhook-{digest}-{uuid.uuid4().hex[:12]}"


class WebhookNotConfigured(Exception):
    """The workspace has no webhook."""


class SigningSecretUnavailable(Exception):
    """Key Vault did not take or delete the signing secret; nothing else changed before it."""


@dataclass(frozen=True)
class SavedWebhook:
    webhook: Webhook
    created: bool
    secret: str | None  # only when this call generated it (creation or rotation)


class AlertService:
    def __init__(
        self,
        notifications: NotificationRepository,
        repository: AlertRepository,
        secret_store: Callable[[], SecretStore],
        *,
        allow_local: bool = False,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._notifications = notifications
        self._repo = repository
        self._secret_store = secret_store  # built on first use: Key Vault is needed only by webhooks
        self._allow_local = allow_local
        self._clock = clock

    # -- in-app notifications ------------------------------------------------------------------
    def notifications(self, workspace_id: str) -> list[Notification]:
        return self._notifications.list(workspace_id)

    def mark_read(self, workspace_id: str, notification_id: str) -> Notification | None:
        return self._notifications.mark_read(workspace_id, notification_id, self._clock())

    # -- job events (core.services.jobs.events.JobEvents) ---------------------------------------
    def job_event(self, kind: str, job: JobRow, summary: JobSummary, event: JobEvent) -> None:
        if job.dry_run:
            return
        alert = JobAlert(
            workspace_id=job.workspace_id,
            job_kind=kind,
            job_id=job.job_id,
            event=event,
            entity=job.entity,
            trigger=job.trigger,
            total_records=job.total_records,
            counts=summary.counts,
            top_error_codes=summary.top_error_codes,
            reason=summary.errors[0] if event is JobEvent.FAILED and len(summary.errors) == 1 else None,
        )
        now = self._clock()
        raised = self._notifications.raise_once(
            Notification(
                workspace_id=job.workspace_id,
                id=alert.id,
                kind=alert.notification_kind,
                reason=None,
                title=alert.title,
                message=alert.message,
                created_at=now,
                read_at=None,
                job=alert.detail(),
            )
        )
        if raised:
            self._prune(job.workspace_id, now)
            log.info(
                "job alert raised: %s", event.value, extra={"workspace": job.workspace_id, "job": job.job_id}
            )
        if self._repo.webhook(job.workspace_id) is not None:
            self._queue_delivery(
                job.workspace_id, alert.id, event.value, job.job_id, alert.payload(_iso(now))
            )

    def _prune(self, workspace_id: str, now: dt.datetime) -> None:
        """Best effort: a failure leaves the rows for the next event."""
        before = now - ALERTS_KEPT
        try:
            self._notifications.delete_older(workspace_id, JOB_NOTICE_PREFIX, before, PRUNE_PER_EVENT)
            self._repo.delete_older(workspace_id, before, PRUNE_PER_EVENT)
        except Exception:
            log.warning("old alerts not pruned", extra={"workspace": workspace_id}, exc_info=True)

    def _queue_delivery(
        self, workspace_id: str, delivery_id: str, event: str, job_id: str | None, payload: dict[str, Any]
    ) -> None:
        """Insert the delivery once, then queue it. A second caller finding it inserted but never queued
        (the first crashed between the two, or is between them now) queues it too: the worker's
        conditional claims make a duplicate message send nothing twice."""
        delivery = Delivery(
            workspace_id=workspace_id,
            id=delivery_id,
            event=event,
            job_id=job_id,
            body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
            state=DeliveryState.PENDING,
            attempts=0,
            created_at=self._clock(),
        )
        if not self._repo.create_delivery(delivery):
            existing = self._repo.delivery(workspace_id, delivery_id)
            if existing is None or existing.enqueued or existing.state is not DeliveryState.PENDING:
                return
        self._repo.enqueue(workspace_id, delivery_id)
        stored = self._repo.delivery(workspace_id, delivery_id)
        if stored is not None and not stored.enqueued:
            self._repo.update_delivery(replace(stored, enqueued=True))  # lost to a worker's claim: fine

    # -- the webhook ---------------------------------------------------------------------------
    def webhook(self, workspace_id: str) -> Webhook | None:
        return self._repo.webhook(workspace_id)

    def put_webhook(self, workspace_id: str, user_id: str, url: str, *, rotate_secret: bool) -> SavedWebhook:
        """Set the URL (``InvalidWebhookUrl``); a new webhook, or ``rotate_secret``, gets a new signing
        secret under a Key Vault name of its own, stored before the row names it
        (``SecretStoreUnavailable`` leaves the webhook as it was) and returned only by this call. The row
        is written only if nobody changed it since it was read: of two saves at once one wins, the other
        gets ``WebhookChanged`` and its secret is deleted, so a secret answered is always the one that
        signs. A rotation deletes the secret it replaced."""
        checked = validate_webhook_url(url, allow_local=self._allow_local)
        existing = self._repo.webhook(workspace_id)
        now = self._clock()
        secret: str | None = None
        secret_name = existing.secret_name if existing is not None else ""
        secret_created_at = existing.secret_created_at if existing is not None else now
        if existing is None or rotate_secret:
            secret = SECRET_PREFIX + secrets.token_urlsafe(32)
            secret_name = secret_name_for(workspace_id)
            try:
                self._secret_store().put(secret_name, secret, tags={"kind": "alert-webhook-signing-secret"})
            except SecretStoreUnavailable:
                raise SigningSecretUnavailable() from None
            secret_created_at = now
        webhook = Webhook(workspace_id, checked, secret_name, now, user_id, secret_created_at)
        try:
            self._repo.save_webhook(webhook, read=existing)
        except WebhookChanged:
            if secret is not None:
                self._delete_secret_quietly(secret_name)
            raise
        if existing is not None and secret is not None:
            self._delete_secret_quietly(existing.secret_name)  # replaced: nothing signs with it now
        log.info(
            "webhook %s%s",
            "created" if existing is None else "updated",
            ", signing secret rotated" if existing is not None and secret else "",
            extra={"workspace": workspace_id},
        )
        return SavedWebhook(webhook, created=existing is None, secret=secret)

    def _delete_secret_quietly(self, name: str) -> None:
        """A secret no row names any more: deleted, or left to the vault when it does not answer (it
        signs nothing either way)."""
        try:
            self._secret_store().delete(name)
        except SecretStoreUnavailable:
            log.warning("an unused webhook signing secret could not be deleted; it signs nothing")

    def delete_webhook(self, workspace_id: str) -> None:
        """Stop sending (the row goes first), then delete the secret (the vault keeps it soft-deleted for
        its retention period). Deleting twice is not an error."""
        existing = self._repo.webhook(workspace_id)
        if existing is None:
            return
        self._repo.delete_webhook(workspace_id)
        try:
            self._secret_store().delete(existing.secret_name)
        except SecretStoreUnavailable:
            raise SigningSecretUnavailable() from None
        log.info("webhook deleted", extra={"workspace": workspace_id})

    def send_test(self, workspace_id: str) -> str:
        """Queue a ``webhook.test`` event (signed and retried like any other); its delivery id."""
        if self._repo.webhook(workspace_id) is None:
            raise WebhookNotConfigured(workspace_id)
        delivery_id = f"test-{uuid.uuid4().hex}"
        payload = {
            "id": delivery_id,
            "type": TEST_EVENT,
            "occurredAt": _iso(self._clock()),
            "workspaceId": workspace_id,
            "title": "Test event",
            "message": "A test of this workspace's Dynamics 365 alert webhook.",
            "job": None,
        }
        self._queue_delivery(workspace_id, delivery_id, TEST_EVENT, None, payload)
        return delivery_id

    def delivery_log(
        self, workspace_id: str, cursor: str | None, limit: int
    ) -> tuple[list[Attempt], str | None]:
        return self._repo.attempts(workspace_id, after=cursor, limit=min(limit, MAX_DELIVERY_LOG_PAGE))


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
