"""Delivering one workspace's queued export chunks to a worker, as the queue trigger would."""

from __future__ import annotations

from azure.storage.queue import QueueServiceClient

from core.domain.jobs import ChunkState
from core.services.exports.service import EXPORT_QUEUE
from core.services.jobs.engine import ChunkJobWorker
from tests.support.job_harness import deliver


def drain_workspace(
    queues: QueueServiceClient, worker: ChunkJobWorker, workspace_id: str
) -> list[ChunkState]:
    """Handle every queued export chunk of ``workspace_id`` until none is left; the states, in order."""
    return deliver(queues, EXPORT_QUEUE, workspace_id, worker.handle)
