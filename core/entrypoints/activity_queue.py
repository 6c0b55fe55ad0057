"""Queue triggers of activities: one message = one chunk of events; the poison queue fails the chunk."""

from __future__ import annotations

import logging

import azure.functions as func

from core import bootstrap
from core.observability import job_context
from core.services.activities.service import ACTIVITY_QUEUE
from core.services.jobs.messages import ChunkMessage

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


@bp.queue_trigger(arg_name="msg", queue_name=ACTIVITY_QUEUE, connection="AzureWebJobsStorage")
def activity_chunk(msg: func.QueueMessage) -> None:
    try:
        message = ChunkMessage.parse(msg.get_body())
    except ValueError:
        log.error("activity message %s is malformed and was dropped", msg.id)
        return
    dequeue_count = getattr(msg, "dequeue_count", None) or 1
    with job_context(message.workspace_id, message.job_id, message.chunk):
        bootstrap.app().activity_worker.handle(message, dequeue_count)
        log.info("activity chunk handled (delivery %d)", dequeue_count)


@bp.queue_trigger(arg_name="msg", queue_name=f"{ACTIVITY_QUEUE}-poison", connection="AzureWebJobsStorage")
def activity_chunk_poison(msg: func.QueueMessage) -> None:
    try:
        message = ChunkMessage.parse(msg.get_body())
    except ValueError:
        log.error("poison activity message %s is malformed and was dropped", msg.id)
        return
    with job_context(message.workspace_id, message.job_id, message.chunk):
        bootstrap.app().activity_worker.fail_poisoned(
            message, "the chunk could not be processed after repeated attempts"
        )
