"""The export worker: the chunk-job engine with the export's step (``ExportRun``) plugged in.

Everything about the chunk's lifecycle (claim, checkpoints, pause, poison, retry) is the engine's
(``core.services.jobs.engine``); this module only turns a chunk's staged rows into an ``ExportRun``.
"""

from __future__ import annotations

from core.adapters.dataverse.budget import DynamicsBudget
from core.adapters.storage.job_store import JobStore, StagedRow
from core.domain.config import DynamicsConfig
from core.domain.jobs import ExportEntity, RecordOutcome
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.exports.items import ExportItem, StagedRecord
from core.services.exports.run import ExportRun
from core.services.jobs.engine import Chunk, ChunkJobWorker
from core.services.jobs.events import JobEvents
from core.services.jobs.messages import ClientFactory, EnabledCheck, ReconnectCheck


class ExportWorker(ChunkJobWorker):
    kind = "export"

    def __init__(
        self,
        store: JobStore,
        client_for: ClientFactory,
        *,
        max_attempts: int = 5,
        metadata: MetadataCache | None = None,
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

    def platform_id(self, staged: StagedRow) -> str:
        return StagedRecord.from_row(staged).platform_id

    def run_chunk(self, chunk: Chunk) -> list[RecordOutcome]:
        request = chunk.request
        run = ExportRun(
            client=chunk.client,
            connection=chunk.connection,
            checkpoints=chunk.checkpoints,
            columns_of=self.metadata.columns,
            workspace_id=chunk.workspace_id,
            entity=ExportEntity(chunk.job.entity),
            config=DynamicsConfig.model_validate(request["config"]),
            manual_values=dict(request.get("manualValues") or {}),
            user_id=str(request.get("userId") or chunk.job.user_id),
            dry_run=bool(request.get("dryRun")),
            identity_id=request.get("identityId") or None,
            forget_columns=self.metadata.invalidate,
            items=[
                ExportItem(s.seq, s.platform_id, s.record) for s in map(StagedRecord.from_row, chunk.staged)
            ],
        )
        return run.execute()
