"""Use cases of the activities API: submit engagement events, job status, per-event results, resume.

Submitting validates every event on its own (bad events end ``invalid`` with each problem named; the
others go ahead), snapshots the workspace's configuration, stages the events (each with its contact's
data) in Blob Storage in chunks and enqueues one small message per chunk — the same layout, order and
crash safety as exports (``JobStore`` under the activity names).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from core.adapters.storage.job_store import JobNames, JobRow, JobStore
from core.domain.activities import ActivitiesRequest, export_aliases, validate_events
from core.domain.caller import SERVICE, Caller
from core.domain.catalog import Entity
from core.domain.config import DynamicsConfig
from core.domain.jobs import split_chunks
from core.domain.matching import IdentifierConfig, rule_for
from core.services.activities.items import StagedEvent
from core.services.jobs.events import JobEvents
from core.services.jobs.queries import DEFAULT_MAX_ACTIVE_JOBS, JobQueries, SubmitResult

_IDEMPOTENCY_NAMESPACE = uuid.UUID("4e7d9b2a-1c3f-4a6e-9d8b-7f5e3c2a1b90")
ACTIVITY_NAMES = JobNames(
    jobs_table="ActivityJobs",
    chunks_table="ActivityChunks",
    records_table="ActivityRecords",
    container="activity-staging",
    queue="dynamics-activities",
)
ACTIVITY_QUEUE = ACTIVITY_NAMES.queue
# Events per chunk: with one CreateMultiple per (table, acting user) a chunk of 1,000 keeps the requests
# per event far under 0.05 while one chunk's work stays well inside the queue visibility timeout.
ACTIVITY_CHUNK_SIZE = 1000
JOB_ENTITY = "activities"
JOB_TRIGGER = "events"


class ActivityService(JobQueries):
    """Submit engagement events; status (events instead of records), records and resume are the job
    engine's queries (``JobQueries``)."""

    idempotency_namespace = _IDEMPOTENCY_NAMESPACE
    job_kind = "activity"

    def __init__(
        self,
        store: JobStore,
        load_config: Callable[[Caller], DynamicsConfig],
        chunk_size: int = ACTIVITY_CHUNK_SIZE,
        max_active_jobs: int = DEFAULT_MAX_ACTIVE_JOBS,
        active_crm: Callable[[str], str | None] | None = None,
        events: JobEvents | None = None,
    ) -> None:
        super().__init__(store, max_active_jobs, active_crm, events)
        self._load_config = load_config
        self._chunk_size = chunk_size

    def submit(
        self, caller: Caller, request: ActivitiesRequest, idempotency_key: str | None = None
    ) -> SubmitResult:
        # Events name the user and identity each activity is logged as (CallerObjectId): only the
        # platform's service may say who acted; a person could otherwise write as anyone.
        caller.require(SERVICE, "logging activities")
        self.require_enabled(caller.workspace_id, "logging activities")
        self._store.ensure_ready()
        config = self._load_config(caller)
        job_id, already = self.reserve_job_id(caller.workspace_id, idempotency_key)
        if already is not None:
            return already
        # Staged under a folder of this request's own: a concurrent request with the same key stages
        # elsewhere, and whichever creates the job row first wins (the row insert is the lock).
        staging = uuid.uuid4().hex
        valid, invalid = validate_events(request.events, request.contacts)
        chunks = split_chunks(len(valid), self._chunk_size)
        now = dt.datetime.now(dt.UTC).isoformat()
        self._store.stage_request(
            caller.workspace_id,
            job_id,
            staging=staging,
            request={
                "entity": JOB_ENTITY,
                "userId": caller.user_id,
                "config": config.to_json(),
                "identities": [i.model_dump(mode="json") for i in request.identities],
                "createdAt": now,
            },
        )
        aliases: dict[str, str] = {}
        if config.sync_identifiers.export_missing_contacts:
            identifiers = IdentifierConfig.from_model(config.sync_identifiers)
            aliases = export_aliases(rule_for(Entity.CONTACT, identifiers), valid)
        for index, positions in enumerate(chunks):
            staged = [
                StagedEvent(
                    valid[i].seq,
                    dict(valid[i].event),
                    valid[i].contact,
                    export_as=aliases.get(str(valid[i].event.get("contactId"))),
                ).to_row()
                for i in positions
            ]
            self._store.stage_chunk(caller.workspace_id, job_id, index, staged, staging=staging)
        job = JobRow(
            workspace_id=caller.workspace_id,
            job_id=job_id,
            entity=JOB_ENTITY,
            trigger=JOB_TRIGGER,
            dry_run=False,
            user_id=caller.user_id,
            total_records=len(request.events),
            total_chunks=len(chunks),
            created_at=now,
            invalid_count=len(invalid),
            staging=staging,
        )
        return self.open_job(job, invalid, idempotent=bool(idempotency_key))
