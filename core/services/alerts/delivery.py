"""Sends a queued webhook delivery: one attempt per queue message, signed, logged, retried with backoff.

An attempt claims the delivery first (its row moves to ``sending`` with a lease, conditional on the ETag it
read): of two messages for one delivery (a duplicate, a retry racing a redelivery) one sends, the other
does nothing. Then the body is signed with the workspace's secret, read from Key Vault for the attempt
(``core.domain.alerts.sign``), and posted (``core.adapters.webhook_http``). A 2xx delivers it. Anything
else is logged and, until ``max_attempts``, a new message is queued, visible after the backoff delay
(``retry_delay_s``: the base doubled per attempt, at most an hour); then the delivery is ``dead``. Each
attempt writes one row of the delivery log (status code, error class, the next attempt's time).

A message for a delivery whose attempt is still in progress (its lease not over) raises, so the queue
shows it again later: a worker that died mid-attempt is taken over once its lease ends.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import replace

from core.adapters.identity.keyvault import SecretStore, SecretStoreUnavailable
from core.adapters.storage.alert_repository import AlertRepository, Attempt, Delivery
from core.adapters.webhook_http import WebhookAnswer, WebhookSender
from core.domain.alerts import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    FINISHED_DELIVERIES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryState,
    retry_delay_s,
    sign,
)
from core.services.alerts.service import utcnow

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BACKOFF_S = 30
# A retry message may be shown a little before the time its row names (clocks of two instances differ).
EARLY_SLACK = dt.timedelta(seconds=2)
USER_AGENT = "dynamics-integration-webhooks/1"


class DeliveryBusy(Exception):
    """Another attempt at this delivery is in progress; the message is to be shown again later."""


class WebhookDeliveryWorker:
    def __init__(
        self,
        repository: AlertRepository,
        secret_store: Callable[[], SecretStore],
        sender: WebhookSender,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_s: int = DEFAULT_BACKOFF_S,
        timeout_s: float = 10.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._repo = repository
        self._secret_store = secret_store
        self._sender = sender
        self._max_attempts = max(1, max_attempts)
        self._backoff_s = backoff_s
        # Long enough for one request with its timeouts; a dead worker's delivery is taken over after it.
        self._lease = dt.timedelta(seconds=2 * timeout_s + 5)
        self._clock = clock

    def handle(self, workspace_id: str, delivery_id: str) -> DeliveryState | None:
        """One attempt, when one is due; the delivery's state after it (None: nothing to do)."""
        delivery = self._repo.delivery(workspace_id, delivery_id)
        if delivery is None or delivery.state in FINISHED_DELIVERIES:
            return delivery.state if delivery else None
        now = self._clock()
        if delivery.state is DeliveryState.SENDING and delivery.lease_until and delivery.lease_until > now:
            raise DeliveryBusy(delivery_id)
        if (
            delivery.state is DeliveryState.RETRYING
            and delivery.next_attempt_at is not None
            and delivery.next_attempt_at > now + EARLY_SLACK
        ):
            return delivery.state  # a duplicate ahead of the scheduled retry, whose own message comes later
        attempt = delivery.attempts + 1
        claimed = self._repo.update_delivery(
            replace(delivery, state=DeliveryState.SENDING, attempts=attempt, lease_until=now + self._lease)
        )
        if claimed is None:
            return None  # another message claimed this attempt
        return self._record(claimed, attempt, self._send(claimed))

    def _send(self, delivery: Delivery) -> WebhookAnswer:
        webhook = self._repo.webhook(delivery.workspace_id)
        if webhook is None:
            return WebhookAnswer(None, "webhook removed")
        try:
            secret = self._secret_store().get(webhook.secret_name)
        except SecretStoreUnavailable:
            return WebhookAnswer(None, "signing secret unavailable (Key Vault)")
        if secret is None:
            return WebhookAnswer(None, "signing secret missing")
        body = delivery.body.encode("utf-8")
        timestamp = int(self._clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            TIMESTAMP_HEADER: str(timestamp),
            EVENT_ID_HEADER: delivery.id,
            EVENT_HEADER: delivery.event,
        }
        return self._sender.post(webhook.url, body, headers)

    def _record(self, delivery: Delivery, attempt: int, answer: WebhookAnswer) -> DeliveryState:
        now = self._clock()
        next_at: dt.datetime | None = None
        if answer.delivered:
            state = DeliveryState.DELIVERED
        elif attempt >= self._max_attempts or answer.error == "webhook removed":
            state = DeliveryState.DEAD
        else:
            state = DeliveryState.RETRYING
            delay = retry_delay_s(attempt, self._backoff_s)
            next_at = now + dt.timedelta(seconds=delay)
            self._repo.enqueue(delivery.workspace_id, delivery.id, delay)
        where = {"workspace": delivery.workspace_id, "delivery": delivery.id}
        outcome = {DeliveryState.DELIVERED: "delivered", DeliveryState.DEAD: "dead"}.get(state, "retry")
        log.info(
            "webhook attempt %d: %s (%s)", attempt, outcome, answer.error or answer.status_code, extra=where
        )
        self._repo.log_attempt(
            Attempt(
                workspace_id=delivery.workspace_id,
                delivery_id=delivery.id,
                event=delivery.event,
                job_id=delivery.job_id,
                attempt=attempt,
                at=now,
                status_code=answer.status_code,
                outcome=outcome,
                error=answer.error,
                next_attempt_at=next_at,
            )
        )
        written = self._repo.update_delivery(
            replace(
                delivery,
                state=state,
                next_attempt_at=next_at,
                lease_until=None,
                last_status=answer.status_code,
            )
        )
        if written is None:
            log.warning("webhook delivery changed during its attempt", extra=where)
        return state

    def fail_poisoned(self, workspace_id: str, delivery_id: str) -> None:
        """A message the queue gave up on: the delivery is dead unless it finished meanwhile."""
        delivery = self._repo.delivery(workspace_id, delivery_id)
        if delivery is None or delivery.state in FINISHED_DELIVERIES:
            return
        if self._repo.update_delivery(replace(delivery, state=DeliveryState.DEAD, lease_until=None)) is None:
            return
        self._repo.log_attempt(
            Attempt(
                workspace_id=workspace_id,
                delivery_id=delivery_id,
                event=delivery.event,
                job_id=delivery.job_id,
                attempt=delivery.attempts,
                at=self._clock(),
                status_code=None,
                outcome="dead",
                error="the delivery's queue message failed repeatedly",
                next_attempt_at=None,
            )
        )
