"""The chunk-job engine: the one lifecycle of a queued chunk, for every job kind (exports, activities).

A job is staged by its service (request + chunks in Blob Storage, chunk rows ``queued``, one queue message
per chunk). A worker is a :class:`ChunkJobWorker` specialisation that only says how to run a chunk's
staged rows (``run_chunk``) and how a staged row names its record (``platform_id``); the engine does the
rest, the same way for every kind:

- claim: a message for an unknown job, an unknown chunk or a finished chunk does nothing;
- run: ``running`` with the delivery count, then the kind's step with the workspace's Dataverse client,
  inside the workspace's shared Dynamics budget when there is one;
- checkpoint and report: ``core.services.jobs.checkpoints`` (one policy for every kind);
- halt: when Dynamics is disabled for the workspace (``dynamics_enabled``), a queued chunk pauses before
  any Dynamics call and a running one before its next Dynamics write (the gate of its checkpoints), both
  ``paused_disabled``; they resume when Dynamics is enabled again (``resume_paused``);
- pause: a dead Dynamics token (``ReconnectRequired``) pauses the chunk until the workspace reconnects;
  token trouble of the deployment itself (sign-in or Key Vault down, a refused setting) on the last
  delivery pauses it for the token timer instead of failing records that are not at fault;
- drift: the job's configuration no longer fits Dynamics (``MappingDrift``, raised by the kind's step
  before it writes): the chunk fails at once with that one reason, no retry;
- defer: a step that raises ``Deferred`` before writing anything is queued again after a delay;
- retry: any other failure raises, so the queue delivers the message again; on the last delivery the
  chunk fails for good with the reason (``fail_poisoned`` does the same for a message the host moved to
  the poison queue);
- resume: ``requeue_paused`` (by the services' ``resume_paused`` and the pausing worker's own re-check);
- tell: after a chunk settles (done, failed, paused for reconnect), the job's summary is read again from
  its chunk rows and a job that ended ``failed`` / ``partially_failed`` or paused for reconnect is told to
  the ``events`` listener (the alerts). The chunk that settles last sees the job's final state (each
  writes its own row before reading them all); a redelivered message of a finished chunk tells it again,
  so an event a crash or a storage error lost is told by the redelivery, and the listener dedupes;
- cancel: a chunk of a cancelled job is closed ``cancelled`` when it is claimed, or stopped before its next
  Dynamics request while it runs (``core.services.jobs.stopping``), its records reported ``cancelled``
  (not written); a chunk that has begun writing, in this attempt or an earlier one, finishes instead;
- record: the chunk that finishes a job keeps the job's status in the job's index row (the history).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar

from core.adapters.dataverse.budget import DynamicsBudget
from core.adapters.dataverse.client import DataverseClient
from core.adapters.dataverse.errors import failure_reason
from core.adapters.storage.job_store import JobRow, JobStore, StagedRow
from core.domain.alerts import RECONNECT_PAUSE_PREFIX, job_event
from core.domain.connection import (
    DynamicsConnection,
    NotConnected,
    ReconnectRequired,
    TokenConfigurationError,
    TransientTokenError,
)
from core.domain.jobs import (
    FINISHED_CHUNKS,
    NO_CODE,
    ChunkState,
    JobState,
    MappingDrift,
    RecordOutcome,
    count_outcomes,
    error_codes,
    summarize_job_row,
)
from core.services.jobs import stopping
from core.services.jobs.checkpoints import Checkpoints, ChunkHalted
from core.services.jobs.events import JobEvents
from core.services.jobs.messages import ChunkMessage, ClientFactory, EnabledCheck, ReconnectCheck
from core.services.jobs.queries import record_if_finished
from core.services.jobs.stopping import JobCancelled

log = logging.getLogger(__name__)

DISABLED_REASON = "paused: Dynamics is disabled for this workspace; resumed when an admin enables it again"
DISABLED_NOTE = "waiting for Dynamics to be enabled again"


class Deferred(Exception):
    """A chunk that cannot run yet and has written nothing (another job is writing some of its records):
    it is queued again, visible after ``seconds``, without counting as a failed delivery."""

    def __init__(self, reason: str, seconds: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seconds = seconds


@dataclass
class Chunk:
    """One delivery of one chunk, as the kind's step sees it."""

    workspace_id: str
    job_id: str
    index: int
    job: JobRow
    request: dict[str, Any]  # the staged request (configuration snapshot, user, options)
    staged: list[StagedRow]  # the chunk's staged rows
    client: DataverseClient
    connection: DynamicsConnection
    checkpoints: Checkpoints


class ChunkJobWorker(ABC):
    """The lifecycle of a chunk; subclasses plug in the kind's step."""

    kind: ClassVar[str]  # "export" / "activity": in log lines

    def __init__(
        self,
        store: JobStore,
        client_for: ClientFactory,
        *,
        max_attempts: int = 5,
        budget: DynamicsBudget | None = None,
        reconnected: ReconnectCheck | None = None,
        dynamics_enabled: EnabledCheck | None = None,
        events: JobEvents | None = None,
    ) -> None:
        self.store = store
        self._events = events
        self._client_for = client_for
        self._max_attempts = max_attempts
        # Shared with the other instances working for the same workspace (same Dynamics user).
        self._budget = budget
        self._reconnected = reconnected  # re-checked after a chunk pauses (see pause_for_reconnect)
        self._enabled = dynamics_enabled  # None: the switch is not consulted (every workspace works)

    @abstractmethod
    def run_chunk(self, chunk: Chunk) -> list[RecordOutcome]:
        """Run the chunk's staged rows against Dynamics; one outcome per row. Raises to retry."""

    @abstractmethod
    def platform_id(self, staged: StagedRow) -> str:
        """The id a staged row's record is reported under."""

    def handle(self, message: ChunkMessage, dequeue_count: int = 1) -> ChunkState:
        """Process one chunk; returns its final state. Raises to have the queue retry it."""
        ws, job_id, index = message.workspace_id, message.job_id, message.chunk
        where = {"workspace": ws, "job": job_id}
        job = self.store.get_job(ws, job_id)
        if job is None:
            log.warning("%s chunk for an unknown job ignored", self.kind, extra=where)
            return ChunkState.FAILED
        status = self.store.get_chunk(ws, job_id, index)
        if status is not None and status.state in FINISHED_CHUNKS:
            self._tell(job)  # a redelivered message for finished work: only its job's event, once more
            self._record_if_finished(ws, job_id)
            return status.state
        request = self.store.load_request(ws, job_id, staging=job.staging)
        staged = self.store.try_load_chunk(ws, job_id, index, staging=job.staging)
        if staged is None:
            log.warning("%s chunk the job does not have ignored", self.kind, extra=where)
            return ChunkState.FAILED
        # The first delivery has no earlier checkpoints to read back.
        first_attempt = status is not None and status.attempts == 0
        records = {s.seq: self.platform_id(s) for s in staged}
        if self._enabled is not None and not self._enabled(ws):
            # Not even a token is asked for; an earlier attempt's in-flight marks turn pending.
            checkpoints = Checkpoints(self.store, ws, job_id, records)
            halted = self._disabled_halt()
            if not first_attempt:
                checkpoints.halt(records, halted.note)
            return self._pause_halted(ws, job_id, index, halted)
        checkpoints = Checkpoints(
            self.store, ws, job_id, records, first_attempt=first_attempt, gate=self._gate(ws)
        )
        stoppable = True
        if job.cancel_requested_at is not None:
            if not checkpoints.began_writing():
                return self._cancel(message, staged, checkpoints)
            stoppable = False  # an earlier attempt began writing: its writes are finished first
        self.store.put_chunk(ws, job_id, index, ChunkState.RUNNING, attempts=dequeue_count)
        try:
            client, connection = self._client_for(ws)
            chunk = Chunk(ws, job_id, index, job, request, staged, client, connection, checkpoints)
            budget = self._budget
            with (
                budget.working(ws, job=f"{self.kind}:{job_id}") if budget is not None else nullcontext(),
                stopping.watching(self._cancel_check(ws, job_id)) if stoppable else nullcontext(),
            ):
                outcomes = self.run_chunk(chunk)
        except JobCancelled:
            log.info("%s chunk stopped: the job was cancelled", self.kind, extra=where)
            checkpoints.save_confirmed()
            return self._cancel(message, staged, checkpoints)
        except Deferred as exc:
            # Nothing was written: the chunk goes back to the queue, not counted as a failed delivery.
            log.info("%s chunk deferred: %s", self.kind, exc.reason, extra=where)
            self.store.put_chunk(ws, job_id, index, ChunkState.QUEUED)
            self.store.enqueue_chunks(ws, job_id, [index], delay_seconds=exc.seconds)
            return ChunkState.QUEUED
        except ChunkHalted as halted:
            log.info("%s chunk halted: %s", self.kind, halted.reason, extra=where)
            checkpoints.halt(records, halted.note)
            return self._pause_halted(ws, job_id, index, halted)
        except MappingDrift as drift:
            # The job's configuration no longer fits Dynamics: every chunk fails with this one reason
            # before writing (the others find it at their start), and the job's failure is told once.
            log.warning("%s chunk failed: the mapping no longer fits Dynamics", self.kind, extra=where)
            checkpoints.save_confirmed()
            self._fail(message, staged, checkpoints, drift.reason, sent_nothing=True)
            self._tell(job)
            self._record_if_finished(ws, job_id)
            return ChunkState.FAILED
        except ReconnectRequired as exc:
            log.info("%s chunk paused until Dynamics is reconnected", self.kind, extra=where)
            checkpoints.pause()
            state = self._pause_for_reconnect(ws, job_id, index, exc)
            if state is ChunkState.PAUSED_RECONNECT:
                self._tell(job)
            return state
        except NotConnected:
            self._fail(message, staged, checkpoints, "Dynamics is not connected for this workspace")
            self._tell(job)
            self._record_if_finished(ws, job_id)
            return ChunkState.FAILED
        except Exception as exc:
            if dequeue_count >= self._max_attempts and isinstance(exc, TransientTokenError):
                checkpoints.pause()
                return self._pause_for_token_trouble(ws, job_id, index, exc)
            checkpoints.save_confirmed()
            if dequeue_count >= self._max_attempts:
                log.error("%s chunk failed for good", self.kind, extra=where)
                reason = f"gave up after {dequeue_count} attempts: {failure_reason(exc)}"
                self._fail(message, staged, checkpoints, reason)
                self._tell(job)
                self._record_if_finished(ws, job_id)
                return ChunkState.FAILED
            raise
        checkpoints.report(outcomes)
        self.store.finish_chunk(
            ws,
            job_id,
            index,
            ChunkState.DONE,
            count_outcomes(outcomes),
            len(outcomes),
            error_codes=error_codes(outcomes),
        )
        self._tell(job)
        self._record_if_finished(ws, job_id)
        return ChunkState.DONE

    # -- cancel ------------------------------------------------------------------------------------
    def _cancel_check(self, ws: str, job_id: str) -> Callable[[], None]:
        """Before each Dynamics request of a running chunk: one read of the job row."""

        def check() -> None:
            job = self.store.get_job(ws, job_id)
            if job is not None and job.cancel_requested_at is not None:
                raise JobCancelled(job_id)

        return check

    def _cancel(self, message: ChunkMessage, staged: list[StagedRow], checkpoints: Checkpoints) -> ChunkState:
        """Close the chunk ``cancelled``: outcomes of earlier attempts kept, every other record
        ``cancelled`` (nothing of it was written)."""
        counts = checkpoints.cancel({s.seq: self.platform_id(s) for s in staged})
        self.store.finish_chunk(
            message.workspace_id, message.job_id, message.chunk, ChunkState.CANCELLED, counts, len(staged)
        )
        self._record_if_finished(message.workspace_id, message.job_id)
        return ChunkState.CANCELLED

    def _record_if_finished(self, ws: str, job_id: str) -> None:
        """After a chunk finished: when the whole job has, keep its status in its index row. Never fails
        the chunk: a lost write is made by the next history read."""
        try:
            record_if_finished(self.store, ws, job_id)
        except Exception:
            log.exception("could not record the job's finish", extra={"workspace": ws, "job": job_id})

    # -- the integration switch ---------------------------------------------------------------------
    @staticmethod
    def _disabled_halt() -> ChunkHalted:
        return ChunkHalted(ChunkState.PAUSED_DISABLED, DISABLED_REASON, DISABLED_NOTE)

    def _gate(self, ws: str) -> Callable[[], None] | None:
        """The checkpoints' gate: one read of the workspace's switch before each Dynamics write, so a
        chunk stops at most one write after an admin disables Dynamics."""
        enabled = self._enabled
        if enabled is None:
            return None

        def gate() -> None:
            if not enabled(ws):
                raise self._disabled_halt()

        return gate

    def _pause_halted(self, ws: str, job_id: str, index: int, halted: ChunkHalted) -> ChunkState:
        """Write the chunk in the halt's state and mark the workspace (the token timer's safety net), then
        read the switch again: an admin who enabled Dynamics while this chunk was stopping ran the resume
        scan before the chunk was paused, so the chunk re-queues itself (at most once: conditional)."""
        self.store.put_chunk(ws, job_id, index, halted.state, error=halted.reason)
        self.store.mark_paused(ws)
        enabled = self._enabled
        if enabled is not None and self._requeue_if(ws, job_id, index, halted.state, lambda: enabled(ws)):
            return ChunkState.QUEUED
        return halted.state

    def _tell(self, job: JobRow) -> None:
        """Tell the listener the event the job's state raises now, if any (module docstring, "tell")."""
        if self._events is None:
            return
        chunks = self.store.list_chunks(job.workspace_id, job.job_id)
        summary = summarize_job_row(job, chunks)
        if summary.state in (JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED):
            return
        event = job_event(summary, chunks)
        if event is not None:
            self._events.job_event(self.kind, job, summary, event)

    def fail_poisoned(self, message: ChunkMessage, reason: str) -> None:
        """A message that exhausted its deliveries: the chunk fails with the reason, nothing silent."""
        job = self.store.get_job(message.workspace_id, message.job_id)
        if job is None:
            return  # names a job this workspace does not have: nothing to fail
        status = self.store.get_chunk(message.workspace_id, message.job_id, message.chunk)
        if status is not None and status.state in FINISHED_CHUNKS:
            self._tell(job)
            return
        staged = self.store.try_load_chunk(
            message.workspace_id, message.job_id, message.chunk, staging=job.staging
        )
        if staged is None:
            return
        checkpoints = Checkpoints(self.store, message.workspace_id, message.job_id, (s.seq for s in staged))
        self._fail(message, staged, checkpoints, reason)
        self._tell(job)
        self._record_if_finished(message.workspace_id, message.job_id)

    def _fail(
        self,
        message: ChunkMessage,
        staged: list[StagedRow],
        checkpoints: Checkpoints,
        reason: str,
        *,
        sent_nothing: bool = False,
    ) -> None:
        records = {s.seq: self.platform_id(s) for s in staged}
        counts = checkpoints.fail(records, reason, sent_nothing=sent_nothing)
        self.store.finish_chunk(
            message.workspace_id,
            message.job_id,
            message.chunk,
            ChunkState.FAILED,
            counts,
            len(staged),
            error=reason,
            # The records failed with the chunk's reason, which no Dynamics error code names.
            error_codes={NO_CODE: counts["failed"]} if counts.get("failed") else {},
        )

    def _pause_for_reconnect(self, ws: str, job_id: str, index: int, exc: ReconnectRequired) -> ChunkState:
        """Write the chunk ``paused_reconnect``, mark the workspace paused, then look at the connection
        again: an admin may have reconnected while this chunk was still running, after the reconnect's
        resume scan skipped it. Then the chunk is re-queued here (at most once: ``requeue_paused`` is
        conditional). The marker lets the token timer resume it should this check fail or not run. A
        failing marker write raises: the message is redelivered and the chunk paused again."""
        store = self.store
        store.put_chunk(
            ws, job_id, index, ChunkState.PAUSED_RECONNECT, error=f"{RECONNECT_PAUSE_PREFIX}{exc.reason}"
        )
        store.mark_paused(ws)
        reconnected = self._reconnected
        paused = ChunkState.PAUSED_RECONNECT
        if reconnected is None:
            return paused
        if self._requeue_if(ws, job_id, index, paused, lambda: reconnected(ws, exc)):
            return ChunkState.QUEUED
        return paused

    def _requeue_if(
        self, ws: str, job_id: str, index: int, paused: ChunkState, resolved: Callable[[], bool]
    ) -> bool:
        """After pausing a chunk: when what paused it is already resolved (Dynamics enabled again, the
        connection renewed), re-queue it at once (conditional: once, whoever else resumes it). A failing
        re-check leaves the chunk paused; the token timer resumes it."""
        where = {"workspace": ws, "job": job_id}
        try:
            if resolved() and self.store.requeue_paused(ws, job_id, index, (paused,)):
                log.info("%s chunk resolved while pausing: re-queued", paused.value, extra=where)
                return True
        except Exception:
            log.exception(
                "%s chunk: the re-check failed; the token timer resumes it", paused.value, extra=where
            )
        return False

    def _pause_for_token_trouble(
        self, ws: str, job_id: str, index: int, exc: TransientTokenError
    ) -> ChunkState:
        """The last delivery still could not get a token: Microsoft sign-in or Key Vault did not answer,
        or this deployment's own setting (``TokenConfigurationError.setting``) is refused. The records are
        not at fault, so the chunk is kept, paused and marked, instead of failed; each token timer run
        resumes marked work of connected workspaces. The connection is left alone (no reconnect, no
        notice)."""
        if isinstance(exc, TokenConfigurationError):
            why = f"{exc.setting} is misconfigured on this deployment"
        else:
            why = "Microsoft sign-in or the token store (Key Vault) did not answer"
        self.store.put_chunk(
            ws, job_id, index, ChunkState.PAUSED_RECONNECT, error=f"paused: {why}; resumed by the token timer"
        )
        self.store.mark_paused(ws)
        log.error("chunk paused: %s; the token timer resumes it", why, extra={"workspace": ws, "job": job_id})
        return ChunkState.PAUSED_RECONNECT
