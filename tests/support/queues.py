"""Delivering one workspace's queued export chunks to a worker, as the queue trigger would."""

from __future__ import annotations

import base64

from azure.storage.queue import QueueServiceClient

from core.adapters.export_store import EXPORT_QUEUE
from core.domain.export_job import ChunkState
from core.services.export_worker import ChunkMessage, ExportWorker


def drain_workspace(queues: QueueServiceClient, worker: ExportWorker, workspace_id: str) -> list[ChunkState]:
    """Handle every queued chunk of ``workspace_id`` (other tests' messages are put back untouched) until
    none is left; the states the worker returned, in delivery order."""
    queue = queues.get_queue_client(EXPORT_QUEUE)
    states = []
    while True:
        mine = []
        for message in queue.receive_messages(max_messages=32, visibility_timeout=60):
            chunk = ChunkMessage.parse(base64.b64decode(message.content))
            if chunk.workspace_id == workspace_id:
                mine.append((message, chunk))
            else:
                queue.update_message(message, visibility_timeout=0)  # another test's: leave it
        if not mine:
            return states
        for message, chunk in mine:
            states.append(worker.handle(chunk, message.dequeue_count or 1))
            queue.delete_message(message)
