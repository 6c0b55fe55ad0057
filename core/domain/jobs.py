"""Chunk jobs (exports, activities): states, per-record outcomes and how chunk results add up to a job's
status (pure)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Records per queue message / blob chunk. A chunk is the unit of retry and checkpointing; 500 keeps a
# chunk's bulk calls under Dataverse's recommended 100–1,000 targets and its processing well inside the
# queue visibility timeout.
DEFAULT_CHUNK_SIZE = 500

# Namespace for deterministic Dynamics ids: the same workspace + entity + platform id always yields the same
# Dynamics primary key, so a redelivered or crashed chunk can never create a second record.
DYNAMICS_ID_NAMESPACE = uuid.UUID("5b0c1f5e-7d0e-4f3e-9b57-1d6f0b3c2a91")


class ExportEntity(StrEnum):
    CONTACTS = "contacts"
    COMPANIES = "companies"

    @property
    def table(self) -> str:
        return "contact" if self is ExportEntity.CONTACTS else "account"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    PAUSED_RECONNECT = "paused_reconnect"
    PAUSED_DISABLED = "paused_disabled"  # Dynamics is switched off for the workspace: resumes when enabled
    # Cancel asked for: a chunk is still finishing (it stops before its next Dynamics call, or finishes
    # the writes it has begun); then ``cancelled``.
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.PARTIALLY_FAILED, JobState.FAILED, JobState.CANCELLED})


class ChunkState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    PAUSED_RECONNECT = "paused_reconnect"
    PAUSED_DISABLED = "paused_disabled"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the job was cancelled before this chunk wrote anything


FINISHED_CHUNKS = frozenset({ChunkState.DONE, ChunkState.FAILED, ChunkState.CANCELLED})


# Chunk states that wait for something outside the job (a reconnect, the integration enabled again).
PAUSED_CHUNK_STATES = frozenset({ChunkState.PAUSED_RECONNECT, ChunkState.PAUSED_DISABLED})


class RecordAction(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"
    INVALID = "invalid"  # caught before anything was sent to Dynamics
    CANCELLED = "cancelled"  # not written: the job was cancelled before its chunk wrote anything
    # Dry run outcomes: nothing is written.
    WOULD_CREATE = "would_create"
    WOULD_UPDATE = "would_update"
    WOULD_FAIL = "would_fail"
    # Checkpoints while a chunk runs, never final: replaced by the chunk's report.
    CREATING = "creating"  # a create is being sent; on a retry, found by its id -> it was created
    UPDATING = "updating"  # an update is being sent; on a retry, found unchanged -> it was updated
    PENDING = "pending"  # waiting for Dynamics to be reconnected or enabled again


COUNT_KEYS: tuple[str, ...] = (
    "created",
    "updated",
    "unchanged",
    "skipped",
    "failed",
    "invalid",
    "cancelled",
)

_ACTION_TO_COUNT = {
    RecordAction.CREATED: "created",
    RecordAction.WOULD_CREATE: "created",
    RecordAction.UPDATED: "updated",
    RecordAction.WOULD_UPDATE: "updated",
    RecordAction.UNCHANGED: "unchanged",
    RecordAction.SKIPPED: "skipped",
    RecordAction.FAILED: "failed",
    RecordAction.WOULD_FAIL: "failed",
    RecordAction.INVALID: "invalid",
    RecordAction.CANCELLED: "cancelled",
}


def deterministic_dynamics_id(workspace_id: str, entity: ExportEntity, platform_id: str) -> str:
    return str(uuid.uuid5(DYNAMICS_ID_NAMESPACE, f"{workspace_id}\x1f{entity.value}\x1f{platform_id}"))


@dataclass(frozen=True)
class FieldError:
    field: str  # Dynamics column (or platform field when caught before sending)
    message: str
    code: str | None = None  # Dataverse error code, e.g. 0x80044331

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.code:
            out["code"] = self.code
        return out


@dataclass(frozen=True)
class RecordWarning:
    """Something the export left alone on purpose that the platform should show next to the record."""

    code: str  # stable, e.g. company_not_identifiable
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class RecordOutcome:
    seq: int  # position of the record in the submitted list
    platform_id: str
    action: RecordAction
    dynamics_id: str | None = None
    match: dict[str, Any] | None = None  # how it matched: rule, normalised values, candidates
    errors: list[FieldError] = field(default_factory=list)
    changes: dict[str, Any] | None = None  # dry run: column -> {"before": x, "after": y}
    note: str | None = None
    # A record skipped as the same person/company as an earlier record of the same list: that record's
    # position and id. Its Dynamics id and action are filled in when the results are read (the record it
    # was merged into may not have run yet when this one is skipped).
    merged_into: tuple[int, str] | None = None
    warnings: list[RecordWarning] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq,
            "platformId": self.platform_id,
            "action": self.action.value,
            "dynamicsId": self.dynamics_id,
        }
        if self.match is not None:
            out["match"] = self.match
        if self.errors:
            out["errors"] = [e.to_json() for e in self.errors]
        if self.changes is not None:
            out["changes"] = self.changes
        if self.note:
            out["note"] = self.note
        if self.merged_into is not None:
            out["mergedInto"] = {"seq": self.merged_into[0], "platformId": self.merged_into[1]}
        if self.warnings:
            out["warnings"] = [w.to_json() for w in self.warnings]
        return out


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(COUNT_KEYS, 0)


def count_outcomes(outcomes: Iterable[RecordOutcome]) -> dict[str, int]:
    counts = empty_counts()
    for outcome in outcomes:
        key = _ACTION_TO_COUNT.get(outcome.action)
        if key is not None:
            counts[key] += 1
    return counts


# How a failed or invalid record counts in a job's error codes when no Dataverse error code names its
# problem: refused before sending (validation), or failed without one (a chunk that gave up, a lost
# connection).
INVALID_CODE = "invalid"
NO_CODE = "no_code"
# A chunk row keeps at most this many distinct codes (the most frequent): a row stays small whatever
# Dynamics answers.
MAX_CHUNK_ERROR_CODES = 20
TOP_ERROR_CODES = 5
_BAD_ACTIONS = frozenset({RecordAction.FAILED, RecordAction.WOULD_FAIL, RecordAction.INVALID})


def error_codes(outcomes: Iterable[RecordOutcome]) -> dict[str, int]:
    """Failed and invalid records per error code (a record counts once per distinct code it carries),
    the ``MAX_CHUNK_ERROR_CODES`` most frequent."""
    counter: Counter[str] = Counter()
    for outcome in outcomes:
        if outcome.action not in _BAD_ACTIONS:
            continue
        codes = {e.code for e in outcome.errors if e.code}
        if not codes:
            codes = {INVALID_CODE if outcome.action is RecordAction.INVALID else NO_CODE}
        counter.update(codes)
    return dict(counter.most_common(MAX_CHUNK_ERROR_CODES))


@dataclass(frozen=True)
class JobRow:
    """A job as submitted (the job store's job row): what was asked, by whom, when, in how many chunks,
    and what happened to it since as a whole (cancel asked, retried by another job)."""

    workspace_id: str
    job_id: str
    entity: str
    trigger: str
    dry_run: bool
    user_id: str
    total_records: int
    total_chunks: int
    created_at: str
    invalid_count: int
    skipped_count: int = 0  # duplicates within the submitted list, exported once
    staging: str = ""  # the blob folder of this job's request and chunks (see JobStore._blob)
    error: str | None = None
    retry_of: str | None = None  # the job whose failed records this job sends again
    retried_by: str | None = None  # the job sending this job's failed records again
    cancel_requested_at: str | None = None  # ISO 8601, UTC
    cancelled_by: str | None = None  # platform user (or service client) id from the cancelling token
    # When retention began deleting the job's per-record results and staged payloads (ISO 8601, UTC).
    records_deleted_at: str | None = None
    records_deleted: bool = False  # retention has deleted all of them

    @property
    def accepted(self) -> int:
        """Records staged to be sent (neither invalid nor skipped as a duplicate)."""
        return self.total_records - self.invalid_count - self.skipped_count


@dataclass(frozen=True)
class ChunkStatus:
    index: int
    state: ChunkState
    counts: dict[str, int]
    records: int
    error: str | None = None
    attempts: int = 0  # deliveries that started this chunk; 0 = no attempt has written anything yet
    error_codes: Mapping[str, int] = field(default_factory=dict)  # see ``error_codes``
    updated_at: str = ""  # ISO 8601, UTC: when its row last changed (a finished chunk: when it finished)


@dataclass(frozen=True)
class JobSummary:
    """What a job's chunk rows add up to: its state, record counts, progress and most frequent error
    codes (the status endpoints, the job list and the alerts of a job that ended badly read the same)."""

    state: JobState
    counts: dict[str, int]
    processed: int  # records with a final outcome (invalid and skipped ones from the start)
    chunks_done: int
    top_error_codes: list[tuple[str, int]]  # most frequent first, then by code
    errors: list[str]  # chunk-level reasons (a chunk that gave up, a pause), sorted


def summarize_job(
    chunks: Iterable[ChunkStatus],
    *,
    total_chunks: int,
    total_records: int,
    invalid: int = 0,
    skipped: int = 0,
    job_error: str | None = None,
    cancel_requested: bool = False,
) -> JobSummary:
    """A job's summary from its chunk rows and what was known when it was submitted (``invalid`` and
    ``skipped`` records never reach a chunk)."""
    chunk_list = list(chunks)
    counts = empty_counts()
    counts["invalid"] = invalid
    counts["skipped"] = skipped
    processed = invalid + skipped
    codes: Counter[str] = Counter({INVALID_CODE: invalid} if invalid else {})
    for chunk in chunk_list:
        for key in COUNT_KEYS:
            counts[key] += chunk.counts.get(key, 0)
        if chunk.state in FINISHED_CHUNKS:
            processed += chunk.records
        codes.update(chunk.error_codes)
    if total_chunks == 0:
        state = JobState.FAILED if invalid else JobState.SUCCEEDED
    else:
        state = job_state(chunk_list, total_chunks=total_chunks, cancel_requested=cancel_requested)
    chunks_done = sum(1 for c in chunk_list if c.state in FINISHED_CHUNKS)
    if state is JobState.CANCELLED:
        # Chunks never started (their messages, when they arrive, run nothing): not written.
        written = sum(c.records for c in chunk_list if c.state in FINISHED_CHUNKS)
        unstarted = max(0, total_records - invalid - skipped - written)
        counts["cancelled"] += unstarted
        processed += unstarted
        chunks_done = total_chunks
    top = sorted(codes.items(), key=lambda item: (-item[1], item[0]))[:TOP_ERROR_CODES]
    errors = sorted({c.error for c in chunk_list if c.error})
    return JobSummary(
        state=state,
        counts=counts,
        processed=min(processed, total_records),
        chunks_done=chunks_done,
        top_error_codes=top,
        errors=errors + ([job_error] if job_error else []),
    )


def summarize_job_row(job: JobRow, chunks: Iterable[ChunkStatus]) -> JobSummary:
    """``summarize_job`` of a stored job: its totals, invalid/skipped counts, error and cancel request."""
    return summarize_job(
        chunks,
        total_chunks=job.total_chunks,
        total_records=job.total_records,
        invalid=job.invalid_count,
        skipped=job.skipped_count,
        job_error=job.error,
        cancel_requested=job.cancel_requested_at is not None,
    )


def job_state(
    chunks: Iterable[ChunkStatus], *, total_chunks: int, cancel_requested: bool = False
) -> JobState:
    """The job's state from its chunks.

    Any chunk paused for the token pauses the job (it resumes after reconnect); otherwise any chunk paused
    because Dynamics is disabled pauses it (it resumes when Dynamics is enabled again). A job is finished only
    when every chunk is done or failed; then it succeeded if nothing failed, failed if nothing was
    written at all, else partially failed.

    A cancelled job is ``cancelling`` while a chunk runs, or waits for a redelivery that may finish writes
    an earlier attempt began; then ``cancelled``. Chunks never started are counted as not written at once
    (their messages, when they arrive, run nothing).
    """
    chunk_list = list(chunks)
    if any(c.state is ChunkState.PAUSED_RECONNECT for c in chunk_list):
        return JobState.PAUSED_RECONNECT
    if any(c.state is ChunkState.PAUSED_DISABLED for c in chunk_list):
        return JobState.PAUSED_DISABLED
    if cancel_requested:
        busy = any(
            c.state is ChunkState.RUNNING or (c.state is ChunkState.QUEUED and c.attempts > 0)
            for c in chunk_list
        )
        return JobState.CANCELLING if busy else JobState.CANCELLED
    finished = [c for c in chunk_list if c.state in FINISHED_CHUNKS]
    if len(finished) < total_chunks:
        started = any(c.state is not ChunkState.QUEUED for c in chunk_list)
        return JobState.RUNNING if started else JobState.QUEUED
    totals = empty_counts()
    for chunk in chunk_list:
        for key in COUNT_KEYS:
            totals[key] += chunk.counts.get(key, 0)
    bad = totals["failed"] + totals["invalid"]
    good = totals["created"] + totals["updated"] + totals["unchanged"] + totals["skipped"]
    if any(c.state is ChunkState.FAILED for c in chunk_list) and good == 0:
        return JobState.FAILED
    if bad == 0 and not any(c.state is ChunkState.FAILED for c in chunk_list):
        return JobState.SUCCEEDED
    return JobState.FAILED if good == 0 else JobState.PARTIALLY_FAILED


def split_chunks(count: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[range]:
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    return [range(start, min(start + chunk_size, count)) for start in range(0, count, chunk_size)]


class MappingDrift(Exception):
    """The configuration a job snapshotted no longer fits Dynamics (a mapped column was deleted, a choice
    lost the option a fixed value names...): the job fails as a whole, with this one reason, before any
    record of the chunk is written, instead of every record failing on its own."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
