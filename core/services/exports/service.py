"""Use cases of the exports API: submit, status, list, per-record results, resume after reconnect.

Submitting validates the envelope and every record, snapshots the workspace's configuration (a job runs
with the configuration it was submitted under, even if an admin edits it meanwhile), stages the records in
Blob Storage in chunks and enqueues one small message per chunk. Order matters for crash safety: blobs,
then the job row, then chunk rows, then messages — a message never points at something missing.

Over 400 lines on purpose: each use case is short, and submit, retry and the queries share the one
submission path kept here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.adapters.storage.job_store import JobNames, JobRow, JobStore
from core.adapters.storage.record_versions import RecordVersions
from core.domain.caller import ADMINS, SERVICE, Caller, Role
from core.domain.catalog import Entity, PlatformField
from core.domain.config import (
    DynamicsConfig,
    FixedValueMapping,
    ManualExportMapping,
    PlatformFieldMapping,
)
from core.domain.config_validation import Problem, pointer
from core.domain.export_request import (
    MAX_AUTOMATIC_RECORDS,
    ExportRequest,
    ExportTrigger,
    RetryRequest,
    ValidRecord,
    latest_changes,
    validate_records,
)
from core.domain.job_status import JobStatus
from core.domain.jobs import (
    DEFAULT_CHUNK_SIZE,
    ExportEntity,
    RecordAction,
    RecordOutcome,
    split_chunks,
)
from core.domain.matching import IdentifierConfig, duplicate_groups, rule_for
from core.domain.values import check_value
from core.services.exports.items import StagedRecord
from core.services.jobs.events import JobEvents
from core.services.jobs.queries import DEFAULT_MAX_ACTIVE_JOBS, JobQueries, SubmitResult, submitted_as

_IDEMPOTENCY_NAMESPACE = uuid.UUID("0d5c7a4e-2f8b-4c61-a3f9-6e2b8d1c4f70")
EXPORT_NAMES = JobNames(
    jobs_table="ExportJobs",
    chunks_table="ExportChunks",
    records_table="ExportRecords",
    container="export-staging",
    queue="dynamics-exports",
)
EXPORT_QUEUE = EXPORT_NAMES.queue
# Seconds an automatic export waits before it runs: later changes of its records received meanwhile
# replace it (one write with the latest values). AUTOMATIC_EXPORT_WINDOW_SECONDS.
DEFAULT_AUTOMATIC_EXPORT_WINDOW = 30


class InvalidExport(Exception):
    """The request as a whole cannot be accepted; ``problems`` name each member (JSON pointers)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the export request")
        self.problems = list(problems)


class JobNotFinished(Exception):
    """The job still runs: what failed is not known yet."""

    def __init__(self, status: JobStatus) -> None:
        super().__init__(f"the job is {status.state.value}")
        self.status = status


class NothingToRetry(Exception):
    """The job has no record of the asked outcomes that is still staged."""

    def __init__(self, actions: list[str], missing: int) -> None:
        super().__init__(f"no {'/'.join(actions)} record to send again")
        self.actions = actions
        self.missing = missing


@dataclass(frozen=True)
class RetryResult:
    submitted: SubmitResult  # the retry job (created_new False: it existed already)
    not_staged: int  # records asked for that are no longer staged, so not sent again


class ExportService(JobQueries):
    """Submit exports; status, records and resume are the job engine's queries (``JobQueries``)."""

    idempotency_namespace = _IDEMPOTENCY_NAMESPACE
    job_kind = "export"

    def __init__(
        self,
        store: JobStore,
        load_config: Callable[[Caller], DynamicsConfig],
        custom_fields: Callable[[str], Iterable[PlatformField]] = lambda _ws: (),
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_active_jobs: int = DEFAULT_MAX_ACTIVE_JOBS,
        active_crm: Callable[[str], str | None] | None = None,
        events: JobEvents | None = None,
        versions: RecordVersions | None = None,
        window_seconds: int = 0,
    ) -> None:
        super().__init__(store, max_active_jobs, active_crm, events)
        # Automatic exports: the order of each record's changes, and how long a job waits before it
        # runs so that later changes of its records received meanwhile replace it (one write).
        self._versions = versions
        self._window_seconds = window_seconds
        self._load_config = load_config
        self._custom_fields = custom_fields
        self._chunk_size = chunk_size

    def submit(
        self,
        caller: Caller,
        request: ExportRequest,
        idempotency_key: str | None = None,
        *,
        retry_of: str | None = None,
        ordered: bool | None = None,
    ) -> SubmitResult:
        """Stage and queue an export. ``ordered`` (default: an automatic export) keeps the order of each
        record's changes (``changedAt``): several changes of a record are one write with the latest values,
        and a change older than one already received is never written; a person's retry of an automatic
        export stays ordered."""
        requester = _requester(caller, request)
        self.require_enabled(caller.workspace_id, "exporting")
        self._store.ensure_ready()
        config = self._load_config(caller)
        self._check_request(request, config)
        job_id, already = self.reserve_job_id(caller.workspace_id, idempotency_key)
        if already is not None:
            return already
        # Staged under a folder of this request's own: a concurrent request with the same key stages
        # elsewhere, and whichever creates the job row first wins (the row insert is the lock).
        staging = uuid.uuid4().hex
        automatic = request.trigger is ExportTrigger.AUTOMATIC
        ordered = automatic if ordered is None else ordered
        valid, invalid = validate_records(
            request.entity, request.records, self._custom_fields(caller.workspace_id), automatic=ordered
        )
        superseded: list[RecordOutcome] = []
        if ordered:
            valid, superseded = latest_changes(valid)
        valid, duplicates = _drop_duplicates(request.entity, valid, config)
        if ordered and not request.dryRun and self._versions is not None and valid:
            self._versions.ensure_ready()
            valid, stale = self._receive(caller.workspace_id, request.entity, valid, job_id)
            superseded += stale
        duplicates += superseded
        chunks = split_chunks(len(valid), self._chunk_size)
        now = dt.datetime.now(dt.UTC).isoformat()
        self._store.stage_request(
            caller.workspace_id,
            job_id,
            staging=staging,
            request={
                "entity": request.entity.value,
                "trigger": request.trigger.value,
                "ordered": ordered,
                "dryRun": request.dryRun,
                "userId": requester,
                "identityId": request.identityId,
                "manualValues": request.manualValues,
                "config": config.to_json(),
                "createdAt": now,
            },
        )
        self._store.stage_chunks(
            caller.workspace_id,
            job_id,
            [[StagedRecord(valid[i].seq, valid[i].data).to_row() for i in positions] for positions in chunks],
            staging=staging,
        )
        set_aside = sorted(o.seq for o in (*invalid, *duplicates))
        if set_aside:  # kept for a retry that includes them
            self._store.stage_set_aside(
                caller.workspace_id,
                job_id,
                [{"seq": seq, "record": request.records[seq]} for seq in set_aside],
                staging=staging,
            )
        job = JobRow(
            workspace_id=caller.workspace_id,
            job_id=job_id,
            entity=request.entity.value,
            trigger=request.trigger.value,
            dry_run=request.dryRun,
            user_id=requester,
            total_records=len(request.records),
            total_chunks=len(chunks),
            created_at=now,
            invalid_count=len(invalid),
            skipped_count=len(duplicates),
            staging=staging,
            retry_of=retry_of,
        )
        return self.open_job(
            job,
            [*invalid, *duplicates],
            idempotent=bool(idempotency_key),
            delay_seconds=self._window_seconds if automatic else 0,
        )

    def _receive(
        self, workspace_id: str, entity: ExportEntity, valid: list[ValidRecord], job_id: str
    ) -> tuple[list[ValidRecord], list[RecordOutcome]]:
        """Note each change as its record's latest; a change older than one received before is not sent
        (it would overwrite newer values) and is reported ``skipped`` at once."""
        assert self._versions is not None
        later = self._versions.receive(
            workspace_id, entity.value, {v.platform_id: v.changed_at or "" for v in valid}, job_id
        )
        stale = [
            RecordOutcome(
                v.seq,
                v.platform_id,
                RecordAction.SKIPPED,
                note=(
                    f"superseded: a later change of this record (changedAt {later[v.platform_id]}) was "
                    "received before this one; not written, so older values never overwrite newer ones"
                ),
            )
            for v in valid
            if v.platform_id in later
        ]
        return [v for v in valid if v.platform_id not in later], stale

    def retry(self, caller: Caller, job_id: str, request: RetryRequest) -> RetryResult | None:
        """A new job of ``job_id``'s failed records (and, asked for, its skipped / invalid ones) as they
        were submitted, run with the configuration as it is now. One retry job per job: a second call,
        or a concurrent one, answers the same job (its id is derived from the job's; its row insert is
        the lock). Linked both ways (``retryOf`` / ``retriedBy``). ``None``: no such job;
        ``JobNotFinished``, ``NothingToRetry``; ``Forbidden`` for a member retrying someone else's job.

        The retry is the caller's: a person exports as themselves (a retry is a manual export), the
        platform's service for the job's own user with the job's trigger."""
        ws = caller.workspace_id
        self._store.ensure_ready()
        source = self._store.get_job(ws, job_id)
        if source is None:
            return None
        if caller.role is Role.MEMBER and source.user_id != caller.user_id:
            caller.require(ADMINS | SERVICE, "retrying another user's export")
        # The retry job's id is the one of an Idempotency-Key no HTTP header can carry (a control character).
        key = f"\x1fretry\x1f{job_id}"
        retry_id = str(uuid.uuid5(self.idempotency_namespace, f"{ws}\x1f{key}"))
        existing = self._store.get_job(ws, retry_id)
        if existing is not None:
            if source.retried_by != retry_id:
                self._store.set_retried_by(source, retry_id)  # the first call stopped before linking
            return RetryResult(submitted_as(existing, created_new=False), 0)
        status = self.status(ws, job_id)
        if status is None:
            return None
        if not status.finished:
            raise JobNotFinished(status)
        wanted = {RecordAction.FAILED.value, *(i.value for i in request.include)}
        seqs = self._record_positions(ws, job_id, wanted)
        records, missing = self._staged_records(source, seqs)
        if not records:
            raise NothingToRetry(sorted(wanted), missing)
        staged_request = self._store.load_request(ws, job_id, staging=source.staging)
        trigger = ExportTrigger(source.trigger) if caller.is_service else ExportTrigger.MANUAL
        export = ExportRequest(
            entity=ExportEntity(source.entity),
            records=records,
            # An automatic export carries none; a manual one the values its person gave.
            manualValues=dict(staged_request.get("manualValues") or {}),
            trigger=trigger,
            dryRun=source.dry_run,
            # The platform's service retries for the job's own user; a person as themselves.
            userId=source.user_id if caller.is_service else None,
        )
        # The changes an automatic export carried keep their order when a person retries them: a change
        # superseded meanwhile is skipped again rather than written over newer values.
        ordered = source.trigger == ExportTrigger.AUTOMATIC.value
        result = self.submit(caller, export, idempotency_key=key, retry_of=job_id, ordered=ordered)
        self._store.set_retried_by(source, retry_id)
        return RetryResult(result, missing)

    def _record_positions(self, workspace_id: str, job_id: str, actions: set[str]) -> list[int]:
        """Positions of the job's records whose outcome is one of ``actions`` (one filtered partition
        query per action, a page at a time)."""
        seqs: list[int] = []
        for action in sorted(actions):
            cursor: str | None = None
            while True:
                page = self._store.records_page(
                    workspace_id, job_id, action=action, cursor=cursor, limit=1000
                )
                seqs += [r.seq for r in page.records]
                cursor = page.next_cursor
                if cursor is None:
                    break
        return sorted(set(seqs))

    def _staged_records(self, job: JobRow, seqs: list[int]) -> tuple[list[Any], int]:
        """The submitted records at ``seqs``, in submission order, read from the job's staged chunks (and
        its set-aside records); and how many are no longer staged (deleted by retention, or set aside
        before such records were kept)."""
        wanted = set(seqs)
        found: dict[int, Any] = {}
        for index in range(job.total_chunks):
            if len(found) == len(wanted):
                break
            staged = self._store.try_load_chunk(job.workspace_id, job.job_id, index, staging=job.staging)
            for row in staged or []:
                if row.seq in wanted:
                    found[row.seq] = StagedRecord.from_row(row).record
        if len(found) < len(wanted):
            for aside in self._store.load_set_aside(job.workspace_id, job.job_id, staging=job.staging):
                if int(aside["seq"]) in wanted:
                    found[int(aside["seq"])] = aside["record"]
        return [found[seq] for seq in sorted(found)], len(wanted) - len(found)

    @staticmethod
    def _check_request(request: ExportRequest, config: DynamicsConfig) -> None:
        problems: list[Problem] = []
        if request.trigger is ExportTrigger.AUTOMATIC and len(request.records) > MAX_AUTOMATIC_RECORDS:
            problems.append(
                Problem(
                    "/records",
                    f"an automatic export carries at most {MAX_AUTOMATIC_RECORDS} changed records (the "
                    "changes of one window); send more as several requests, or a whole list as a manual "
                    "export",
                )
            )
        if request.trigger is ExportTrigger.AUTOMATIC and request.manualValues:
            problems.append(
                Problem(
                    "/manualValues",
                    "automatic exports carry no manual-export values; they are set by a person exporting",
                )
            )
        tab = (
            config.field_mapping.contacts
            if request.entity is ExportEntity.CONTACTS
            else config.field_mapping.companies
        )
        if not any(isinstance(m, PlatformFieldMapping | FixedValueMapping) for m in tab):
            # Exporting with nothing mapped would create blank records in Dynamics.
            problems.append(
                Problem(
                    "/entity",
                    f"the {request.entity.value} tab of the field mapping (step 2) maps no platform field or "
                    "fixed value yet: map fields before exporting",
                )
            )
        manual = {m.dynamics_field: m for m in tab if isinstance(m, ManualExportMapping)}
        for column, value in request.manualValues.items():
            mapping = manual.get(column)
            if mapping is None:
                known = ", ".join(sorted(manual)) or "none are configured"
                problems.append(
                    Problem(
                        pointer(("manualValues", column)),
                        f"'{column}' is not a manual-export field of the {request.entity.value} tab "
                        f"(manual-export fields: {known})",
                    )
                )
                continue
            message = check_value(mapping.value_type, value)
            if message:
                problems.append(Problem(pointer(("manualValues", column)), message))
        if problems:
            raise InvalidExport(problems)


def _requester(caller: Caller, request: ExportRequest) -> str:
    """The platform user an export is for: a person is always themselves; only the platform's service
    submits automatic exports and names the user it acts for (``Forbidden`` otherwise)."""
    if request.trigger is ExportTrigger.AUTOMATIC:
        caller.require(SERVICE, "an automatic export")
    if request.identityId is not None:
        caller.require(SERVICE, "naming the campaign identity an export is for (identityId)")
    if request.userId is not None:
        caller.require(SERVICE, "naming the user an export is for (userId)")
        return request.userId
    return caller.user_id


def _drop_duplicates(
    entity: ExportEntity, valid: list[ValidRecord], config: DynamicsConfig
) -> tuple[list[ValidRecord], list[RecordOutcome]]:
    """Records of one list that the configured identifier says are the same person or company (same
    LinkedIn profile, same domain, ...) are exported once: the first is kept, the others are ``skipped``
    with the keeper named (``mergedInto``; its Dynamics id and action join them when results are read).
    Done over the whole list before chunking, so two chunks running at once can never both create the
    same record."""
    catalog_entity = Entity.CONTACT if entity is ExportEntity.CONTACTS else Entity.COMPANY
    rule = rule_for(catalog_entity, IdentifierConfig.from_model(config.sync_identifiers))
    groups = duplicate_groups(rule, [v.data for v in valid])
    if not groups:
        return valid, []
    dropped: set[int] = set()
    skipped: list[RecordOutcome] = []
    for group in groups:
        keeper = valid[group[0]]
        for index in group[1:]:
            dropped.add(index)
            record = valid[index]
            skipped.append(
                RecordOutcome(
                    record.seq,
                    record.platform_id,
                    RecordAction.SKIPPED,
                    note=(
                        f"same {catalog_entity.value} as record {keeper.platform_id} earlier in this export "
                        f"(by the configured identifier): exported once"
                    ),
                    merged_into=(keeper.seq, keeper.platform_id),
                )
            )
    return [v for i, v in enumerate(valid) if i not in dropped], skipped
