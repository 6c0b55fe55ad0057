"""What the chunk-job engine tells about a job whose state it just settled (the alerts listen)."""

from __future__ import annotations

from typing import Protocol

from core.adapters.storage.job_store import JobRow
from core.domain.alerts import JobEvent
from core.domain.jobs import JobSummary


class JobEvents(Protocol):
    def job_event(self, kind: str, job: JobRow, summary: JobSummary, event: JobEvent) -> None:
        """``job`` of ``kind`` ("export" / "activity") reached ``event``. Called again for the same job and
        event (redeliveries, chunks finishing together): the listener makes it count once. Raising makes
        the engine's caller raise, so the queue delivers the chunk's message again and the event is told
        again."""
