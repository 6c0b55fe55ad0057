"""The export worker: the chunk-job engine with the export's step (``ExportRun``) plugged in.

Everything about the chunk's lifecycle (claim, checkpoints, pause, poison, retry) is the engine's
(``core.services.jobs.engine``); this module only turns a chunk's staged rows into an ``ExportRun``.

An automatic export's chunk first claims its records in the record versions (``RecordVersions``): a
record whose later change has been received since is not written (that change's export writes the
latest values: several changes within the window are one write); a record another job is writing right
now defers the whole chunk (nothing written yet) until that write has landed, so an older change never
lands after a newer one.
"""

from __future__ import annotations

import datetime as dt

from core.adapters.dataverse.budget import DynamicsBudget
from core.adapters.storage.job_store import JobStore, StagedRow
from core.adapters.storage.record_versions import RecordVersions
from core.domain.config import DynamicsConfig
from core.domain.export_request import CHANGED_AT, ExportTrigger, change_key
from core.domain.jobs import ExportEntity, RecordAction, RecordOutcome
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.exports.items import ExportItem, StagedRecord
from core.services.exports.run import ExportRun
from core.services.jobs.engine import Chunk, ChunkJobWorker, Deferred
from core.services.jobs.events import JobEvents
from core.services.jobs.messages import ClientFactory, EnabledCheck, ReconnectCheck

# How long a chunk's claim on its records holds: longer than a chunk may run (host.json functionTimeout,
# 10 minutes), so a claim only expires when its worker died.
CLAIM_LEASE = dt.timedelta(minutes=15)
DEFAULT_DEFER_SECONDS = 10
WRITTEN = (RecordAction.CREATED, RecordAction.UPDATED, RecordAction.UNCHANGED)


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
        versions: RecordVersions | None = None,
        defer_seconds: int = DEFAULT_DEFER_SECONDS,
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
        self.versions = versions
        self.defer_seconds = defer_seconds

    def platform_id(self, staged: StagedRow) -> str:
        return StagedRecord.from_row(staged).platform_id

    def run_chunk(self, chunk: Chunk) -> list[RecordOutcome]:
        request = chunk.request
        items = [ExportItem(s.seq, s.platform_id, s.record) for s in map(StagedRecord.from_row, chunk.staged)]
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
            items=items,
        )
        # Staged by the submission; jobs staged before the flag existed: automatic ones are ordered.
        ordered = request.get("ordered", request.get("trigger") == ExportTrigger.AUTOMATIC.value)
        ordered = bool(ordered) and not run.dry_run
        if not ordered or self.versions is None:
            return run.execute()
        return self._run_in_order(chunk, run)

    def _run_in_order(self, chunk: Chunk, run: ExportRun) -> list[RecordOutcome]:
        assert self.versions is not None
        ws, entity, job_id = chunk.workspace_id, chunk.job.entity, chunk.job_id
        changes = {i.platform_id: change_key(i.data.get(CHANGED_AT)) or "" for i in run.items}
        claim = self.versions.claim(ws, entity, changes, job_id, CLAIM_LEASE)
        mine = {pid: changes[pid] for pid in claim.claimed}
        if claim.busy:
            self.versions.release(ws, entity, mine, job_id, written=False)
            raise Deferred(
                f"{len(claim.busy)} record(s) are being written by another automatic export; "
                "this chunk runs after that write",
                self.defer_seconds,
            )
        superseded = [
            RecordOutcome(
                item.seq,
                item.platform_id,
                RecordAction.SKIPPED,
                note=(
                    f"superseded: a later change of this record (changedAt {later}) was received; the "
                    "export carrying it writes the latest values"
                ),
            )
            for item in run.items
            if (later := claim.superseded.get(item.platform_id))
        ]
        run.items = [i for i in run.items if i.platform_id not in claim.superseded]
        outcomes = run.execute() if run.items else []
        written = {o.platform_id for o in outcomes if o.action in WRITTEN}
        self.versions.release(
            ws, entity, {p: c for p, c in mine.items() if p in written}, job_id, written=True
        )
        self.versions.release(
            ws, entity, {p: c for p, c in mine.items() if p not in written}, job_id, written=False
        )
        return [*outcomes, *superseded]
