"""Where alerts' webhooks live: each workspace's webhook, its deliveries, their attempts, and the queue.

Layout (workspace ids are validated by ``core.domain.caller`` and safe as keys):
- table ``AlertWebhooks``: PK workspace, RK ``webhook`` — the URL, the name of the Key Vault secret that
  signs (never the secret), who set it and when.
- table ``AlertDeliveries``: PK workspace, RK delivery id (``core.domain.alerts.alert_id`` of the job event,
  or ``test-<uuid>``) — the body to send, its state, attempts made, the next attempt's time, the lease of
  the attempt in progress. Inserted once (conditional insert); every state change is conditional on the
  ETag read, so two messages for one delivery never send the same attempt twice.
- table ``AlertDeliveryLog``: PK workspace, RK ``<inverted milliseconds>-<delivery>-<attempt>`` — one row per
  attempt (status code, error class, time), newest first in row-key order.
- queue ``dynamics-alerts``: ``{"workspaceId", "deliveryId"}``, base64; a retry is a new message made
  visible after its backoff delay.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode
from azure.storage.queue import QueueServiceClient

from core.adapters.storage.job_store import encode_message
from core.domain.alerts import DeliveryState

WEBHOOKS_TABLE = "AlertWebhooks"
DELIVERIES_TABLE = "AlertDeliveries"
DELIVERY_LOG_TABLE = "AlertDeliveryLog"
ALERT_QUEUE = "dynamics-alerts"
_WEBHOOK_ROW = "webhook"
# Row keys of the log sort newest first: milliseconds counted down from this (year 2286).
_MS_CEILING = 10**13


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value else None


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value))


@dataclass(frozen=True)
class Webhook:
    workspace_id: str
    url: str
    secret_name: str  # the Key Vault secret that signs; the secret itself is only in the vault
    updated_at: dt.datetime
    updated_by: str
    secret_created_at: dt.datetime
    etag: str | None = field(default=None, compare=False)  # of the stored row; None: not stored yet


class WebhookChanged(Exception):
    """Another request changed (or created) the workspace's webhook since it was read."""


@dataclass(frozen=True)
class Delivery:
    workspace_id: str
    id: str
    event: str
    job_id: str | None
    body: str  # the exact JSON text sent (and signed) on every attempt
    state: DeliveryState
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None = None
    lease_until: dt.datetime | None = None
    last_status: int | None = None
    enqueued: bool = False
    etag: str = ""


@dataclass(frozen=True)
class Attempt:
    workspace_id: str
    delivery_id: str
    event: str
    job_id: str | None
    attempt: int
    at: dt.datetime
    status_code: int | None  # None: no HTTP answer (timeout, refused connection, TLS, address refused)
    outcome: str  # delivered | retry | dead
    error: str | None  # a short class of the failure, never the receiver's body
    next_attempt_at: dt.datetime | None


class AlertRepository:
    def __init__(self, tables: TableServiceClient, queues: QueueServiceClient) -> None:
        self._tables = tables
        self._queues = queues
        self._webhooks = tables.get_table_client(WEBHOOKS_TABLE)
        self._deliveries = tables.get_table_client(DELIVERIES_TABLE)
        self._log = tables.get_table_client(DELIVERY_LOG_TABLE)
        self._queue = queues.get_queue_client(ALERT_QUEUE)

    def ensure_ready(self) -> None:
        for name in (WEBHOOKS_TABLE, DELIVERIES_TABLE, DELIVERY_LOG_TABLE):
            try:
                self._tables.create_table(name)
            except ResourceExistsError:
                pass
        for queue in (ALERT_QUEUE, f"{ALERT_QUEUE}-poison"):
            try:
                self._queues.create_queue(queue)
            except ResourceExistsError:
                pass

    # -- the webhook ---------------------------------------------------------------------------
    def webhook(self, workspace_id: str) -> Webhook | None:
        try:
            row = self._webhooks.get_entity(workspace_id, _WEBHOOK_ROW)
        except ResourceNotFoundError:
            return None
        return Webhook(
            workspace_id=workspace_id,
            url=str(row["url"]),
            secret_name=str(row["secretName"]),
            updated_at=_time(row["updatedAt"]) or dt.datetime.now(dt.UTC),
            updated_by=str(row.get("updatedBy") or ""),
            secret_created_at=_time(row.get("secretCreatedAt")) or dt.datetime.now(dt.UTC),
            etag=row.metadata.get("etag"),
        )

    def save_webhook(self, webhook: Webhook, *, read: Webhook | None) -> None:
        """Write ``webhook`` only if the row is still as ``read`` (``None``: no row yet): of two saves that
        read the same row, one wins and the other gets ``WebhookChanged``."""
        entity = {
            "PartitionKey": webhook.workspace_id,
            "RowKey": _WEBHOOK_ROW,
            "url": webhook.url,
            "secretName": webhook.secret_name,
            "updatedAt": _iso(webhook.updated_at),
            "updatedBy": webhook.updated_by,
            "secretCreatedAt": _iso(webhook.secret_created_at),
        }
        try:
            if read is None:
                self._webhooks.create_entity(entity)
            else:
                self._webhooks.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=read.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            raise WebhookChanged() from None

    def delete_webhook(self, workspace_id: str) -> bool:
        try:
            self._webhooks.get_entity(workspace_id, _WEBHOOK_ROW)
        except ResourceNotFoundError:
            return False
        self._webhooks.delete_entity(workspace_id, _WEBHOOK_ROW)
        return True

    # -- deliveries ----------------------------------------------------------------------------
    def create_delivery(self, delivery: Delivery) -> bool:
        """Insert; False when a delivery with this id exists already (the event was raised before)."""
        try:
            self._deliveries.create_entity(
                {
                    "PartitionKey": delivery.workspace_id,
                    "RowKey": delivery.id,
                    "event": delivery.event,
                    "jobId": delivery.job_id or "",
                    "body": delivery.body,
                    "state": delivery.state.value,
                    "attempts": delivery.attempts,
                    "createdAt": _iso(delivery.created_at),
                    "enqueued": False,
                }
            )
        except ResourceExistsError:
            return False
        return True

    def delivery(self, workspace_id: str, delivery_id: str) -> Delivery | None:
        try:
            row = self._deliveries.get_entity(workspace_id, delivery_id)
        except ResourceNotFoundError:
            return None
        return Delivery(
            workspace_id=workspace_id,
            id=delivery_id,
            event=str(row["event"]),
            job_id=str(row["jobId"]) if row.get("jobId") else None,
            body=str(row["body"]),
            state=DeliveryState(str(row["state"])),
            attempts=int(row.get("attempts") or 0),
            created_at=_time(row["createdAt"]) or dt.datetime.now(dt.UTC),
            next_attempt_at=_time(row.get("nextAttemptAt")),
            lease_until=_time(row.get("leaseUntil")),
            last_status=int(row["lastStatus"]) if row.get("lastStatus") not in (None, "") else None,
            enqueued=bool(row.get("enqueued")),
            etag=str(row.metadata["etag"]),
        )

    def update_delivery(self, delivery: Delivery) -> Delivery | None:
        """Write the delivery's state if nobody changed its row since it was read (its ETag); the row as
        written, or None when another attempt got there first."""
        entity: dict[str, Any] = {
            "PartitionKey": delivery.workspace_id,
            "RowKey": delivery.id,
            "state": delivery.state.value,
            "attempts": delivery.attempts,
            "nextAttemptAt": _iso(delivery.next_attempt_at) or "",
            "leaseUntil": _iso(delivery.lease_until) or "",
            "lastStatus": delivery.last_status if delivery.last_status is not None else "",
            "enqueued": delivery.enqueued,
        }
        try:
            written = self._deliveries.update_entity(
                entity,
                mode=UpdateMode.MERGE,
                etag=delivery.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return replace(delivery, etag=str(written.get("etag", "")))

    def enqueue(self, workspace_id: str, delivery_id: str, delay_s: int = 0) -> None:
        self._queue.send_message(
            encode_message({"workspaceId": workspace_id, "deliveryId": delivery_id}),
            visibility_timeout=delay_s or None,
        )

    # -- the attempts log ----------------------------------------------------------------------
    def log_attempt(self, attempt: Attempt) -> None:
        millis = int(attempt.at.timestamp() * 1000)
        self._log.upsert_entity(
            {
                "PartitionKey": attempt.workspace_id,
                "RowKey": f"{_MS_CEILING - millis:013d}-{attempt.delivery_id}-{attempt.attempt:03d}",
                "deliveryId": attempt.delivery_id,
                "event": attempt.event,
                "jobId": attempt.job_id or "",
                "attempt": attempt.attempt,
                "at": _iso(attempt.at),
                "statusCode": attempt.status_code if attempt.status_code is not None else "",
                "outcome": attempt.outcome,
                "error": attempt.error or "",
                "nextAttemptAt": _iso(attempt.next_attempt_at) or "",
            },
            mode=UpdateMode.REPLACE,
        )

    def attempts(
        self, workspace_id: str, *, after: str | None, limit: int
    ) -> tuple[list[Attempt], str | None]:
        """A page of the workspace's attempts, newest first; the cursor is the last row key returned."""
        query = "PartitionKey eq @pk"
        params: dict[str, Any] = {"pk": workspace_id}
        if after:
            query += " and RowKey gt @after"
            params["after"] = after
        page: list[Attempt] = []
        last: str | None = None
        for row in self._log.query_entities(query, parameters=params, results_per_page=limit):
            page.append(_attempt(workspace_id, row))
            last = str(row["RowKey"])
            if len(page) >= limit:
                break
        return page, (last if len(page) >= limit else None)

    def delete_older(self, workspace_id: str, before: dt.datetime, limit: int) -> int:
        """Delete at most ``limit`` finished deliveries and attempt rows of the workspace from before
        ``before`` (partition queries the table filters: the log's row keys count down from the time)."""
        removed = 0
        cutoff_key = f"{_MS_CEILING - int(before.timestamp() * 1000):013d}"
        for row in self._log.query_entities(
            "PartitionKey eq @pk and RowKey gt @key", parameters={"pk": workspace_id, "key": cutoff_key}
        ):
            if removed >= limit:
                return removed
            self._delete(self._log, workspace_id, str(row["RowKey"]))
            removed += 1
        for row in self._deliveries.query_entities(
            "PartitionKey eq @pk and createdAt lt @before",
            parameters={"pk": workspace_id, "before": _iso(before)},
            select=["RowKey", "state"],
        ):
            if removed >= limit:
                return removed
            if DeliveryState(str(row["state"])) in (DeliveryState.DELIVERED, DeliveryState.DEAD):
                self._delete(self._deliveries, workspace_id, str(row["RowKey"]))
                removed += 1
        return removed

    @staticmethod
    def _delete(table: Any, workspace_id: str, row_key: str) -> None:
        try:
            table.delete_entity(workspace_id, row_key)
        except ResourceNotFoundError:
            pass


def _attempt(workspace_id: str, row: Mapping[str, Any]) -> Attempt:
    status = row.get("statusCode")
    return Attempt(
        workspace_id=workspace_id,
        delivery_id=str(row["deliveryId"]),
        event=str(row["event"]),
        job_id=str(row["jobId"]) if row.get("jobId") else None,
        attempt=int(row["attempt"]),
        at=_time(row["at"]) or dt.datetime.now(dt.UTC),
        status_code=int(status) if status not in (None, "") else None,
        outcome=str(row["outcome"]),
        error=str(row["error"]) if row.get("error") else None,
        next_attempt_at=_time(row.get("nextAttemptAt")),
    )
