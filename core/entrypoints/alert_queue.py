"""Queue triggers of webhook deliveries: one message = one attempt; the poison queue ends a delivery."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from core import bootstrap
from core.observability import log_context, new_correlation_id
from core.services.alerts.service import ALERT_QUEUE

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


def _parse(body: bytes) -> tuple[str, str] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    workspace_id, delivery_id = data.get("workspaceId"), data.get("deliveryId")
    if not isinstance(workspace_id, str) or not isinstance(delivery_id, str):
        return None
    return workspace_id, delivery_id


@bp.queue_trigger(arg_name="msg", queue_name=ALERT_QUEUE, connection="AzureWebJobsStorage")
def alert_delivery(msg: func.QueueMessage) -> None:
    parsed = _parse(msg.get_body())
    if parsed is None:
        log.error("alert message %s is malformed and was dropped", msg.id)
        return
    workspace_id, delivery_id = parsed
    with log_context(correlation_id=new_correlation_id(), workspace_id=workspace_id):
        bootstrap.app().webhook_worker.handle(workspace_id, delivery_id)


@bp.queue_trigger(arg_name="msg", queue_name=f"{ALERT_QUEUE}-poison", connection="AzureWebJobsStorage")
def alert_delivery_poison(msg: func.QueueMessage) -> None:
    parsed = _parse(msg.get_body())
    if parsed is None:
        log.error("poison alert message %s is malformed and was dropped", msg.id)
        return
    workspace_id, delivery_id = parsed
    with log_context(correlation_id=new_correlation_id(), workspace_id=workspace_id):
        bootstrap.app().webhook_worker.fail_poisoned(workspace_id, delivery_id)
