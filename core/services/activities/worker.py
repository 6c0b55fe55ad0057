"""The activity worker: the chunk-job engine with the activities' step (``ActivityRun``) plugged in.

Everything about the chunk's lifecycle (claim, checkpoints, pause, poison, retry) is the engine's
(``core.services.jobs.engine``); this module turns a chunk's staged events into an ``ActivityRun`` and
knows which table LinkedIn events are logged in (looked up once per process and environment).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from core.adapters.dataverse.budget import DynamicsBudget
from core.adapters.dataverse.client import DataverseClient
from core.adapters.dataverse.errors import DataverseError
from core.adapters.storage.job_store import JobStore, StagedRow
from core.domain.activities import ActivityEvent, choose_linkedin_table
from core.domain.config import DynamicsConfig
from core.domain.jobs import RecordOutcome
from core.services.activities.items import EventItem, StagedEvent
from core.services.activities.run import ActivityRun
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.jobs.contact_export import ContactExporter
from core.services.jobs.engine import Chunk, ChunkJobWorker
from core.services.jobs.events import JobEvents
from core.services.jobs.messages import ClientFactory, EnabledCheck, ReconnectCheck


class ActivityWorker(ChunkJobWorker):
    kind = "activity"

    def __init__(
        self,
        store: JobStore,
        client_for: ClientFactory,
        *,
        export_contacts: ContactExporter,
        max_attempts: int = 5,
        metadata: MetadataCache | None = None,
        linkedin_table: str | None = "auto",
        budget: DynamicsBudget | None = None,
        reconnected: ReconnectCheck | None = None,
        dynamics_enabled: EnabledCheck | None = None,
        events: JobEvents | None = None,
    ) -> None:
        super().__init__(
            store,
            client_for,
            max_attempts=max_attempts,
            budget=budget,
            reconnected=reconnected,
            dynamics_enabled=dynamics_enabled,
            events=events,
        )
        self.metadata = metadata or MetadataCache()
        # The export pipeline, for contacts exported before their activities (exportMissingContacts).
        self.export_contacts = export_contacts
        self._linkedin_setting = linkedin_table
        self._linkedin_lock = threading.Lock()
        self._linkedin: dict[str, str] = {}

    def platform_id(self, staged: StagedRow) -> str:
        return StagedEvent.from_row(staged).platform_id

    def run_chunk(self, chunk: Chunk) -> list[RecordOutcome]:
        request = chunk.request
        run = ActivityRun(
            client=chunk.client,
            connection=chunk.connection,
            checkpoints=chunk.checkpoints,
            store=self.store,
            columns_of=self.metadata.columns,
            linkedin_table=self.linkedin_table(chunk.client),
            export_contacts=self.export_contacts,
            workspace_id=chunk.workspace_id,
            job_id=chunk.job_id,
            user_id=str(request.get("userId") or chunk.job.user_id),
            config=DynamicsConfig.model_validate(request["config"]),
            identities={
                str(i["id"]): str(i["userId"])
                for i in request.get("identities") or []
                if isinstance(i, Mapping) and i.get("userId")
            },
            items=[
                EventItem(s.seq, ActivityEvent.from_json(s.event), s.contact, export_as=s.export_as)
                for s in map(StagedEvent.from_row, chunk.staged)
            ],
        )
        return run.execute()

    def linkedin_table(self, client: DataverseClient) -> str:
        """The table LinkedIn events are logged in for this environment (looked up once per process)."""
        with self._linkedin_lock:
            known = self._linkedin.get(client.environment_url)
        if known:
            return known
        configured = self._linkedin_setting
        if configured and configured.strip().lower() not in ("", "auto"):
            chosen = choose_linkedin_table(configured, ())
        else:
            try:
                client.table("new_linkedinactivity")
                chosen = choose_linkedin_table(None, ("new_linkedinactivity",))
            except DataverseError as exc:
                if exc.status != 404:
                    raise
                chosen = choose_linkedin_table(None, ())
        with self._linkedin_lock:
            self._linkedin[client.environment_url] = chosen
        return chosen
