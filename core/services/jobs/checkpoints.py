"""The one checkpoint policy of chunk jobs (exports and activities alike).

A chunk is the unit of retry: a delivery may die anywhere (host crash, timeout, lost lease) and the queue
delivers the message again. What keeps a record's report true across attempts, in order:

1. ``running`` with the delivery count is written on the chunk row before anything else.
2. Before a Dynamics write of records, their outcomes are saved as the action being sent: ``creating``
   before a create, ``updating`` before an update (one table transaction per 100 records, no Dynamics
   request). A crash after the write leaves the record found under its id, or its values already there,
   on the retry: the checkpoint says this job did that, so the retry reports ``created`` / ``updated``
   instead of ``unchanged``.
3. The creates Dynamics confirmed are remembered; they are saved ``created`` with the chunk's report, or,
   when a run stops early (pause, a failure), at once: a chunk that then fails for good still reports
   them as created.
4. The report: every outcome, each carried over from the earlier attempt's checkpoint (2.), then the
   chunk row ``done`` with the counts. A redelivery of a finished chunk does nothing.
5. Paused for the Dynamics token: ``creating`` / ``updating`` that Dynamics never confirmed become
   ``pending`` (nothing more is written until the workspace reconnects).
5b. Halted at a safe point (``ChunkHalted``, raised by the chunk's gate right before a Dynamics write:
   Dynamics was disabled for the workspace): the writes Dynamics answered are saved as they ended, every
   other record of the chunk is ``pending`` with the reason, and nothing more is sent until the cause
   is gone. A write in flight is never cut: the gate runs only between writes.
6. Failed for good: final outcomes of earlier attempts are kept; the rest fail with the reason, and a
   record whose create was being sent says it may exist (a re-run updates it: deterministic id).
7. Cancelled: only a chunk that has not begun writing (no ``creating`` / ``updating`` / ``pending`` left
   by any attempt) is cancelled; final outcomes of earlier attempts are kept, the rest are ``cancelled``.

Reads cost one range query of the chunk's own row keys, and none at all on a chunk's first delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

from core.adapters.storage.job_store import JobStore, StoredOutcome
from core.domain.jobs import ChunkState, FieldError, RecordAction, RecordOutcome, count_outcomes

log = logging.getLogger(__name__)

# Saved while a chunk runs, never final: replaced by the chunk's report.
IN_FLIGHT = frozenset({RecordAction.CREATING, RecordAction.UPDATING, RecordAction.PENDING})
FINAL = frozenset(RecordAction) - IN_FLIGHT
MAY_EXIST_NOTE = (
    "the create was being sent when the job stopped and may have reached Dynamics; "
    "running it again updates that record (no duplicate)"
)


class ChunkHalted(Exception):
    """The chunk must stop before its next Dynamics write and wait in ``state`` (5b.): ``reason`` goes on
    the chunk (the job's ``errors``), ``note`` on each record left ``pending``."""

    def __init__(self, state: ChunkState, reason: str, note: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason
        self.note = note


# Raises ChunkHalted when the chunk must stop now; called before each Dynamics write of the chunk.
Gate = Callable[[], None]


class Checkpoints:
    """The checkpoints of one attempt at one chunk (positions ``seqs`` of job ``job_id``)."""

    def __init__(
        self,
        store: JobStore,
        workspace_id: str,
        job_id: str,
        seqs: Iterable[int],
        *,
        first_attempt: bool = False,
        gate: Gate | None = None,
    ) -> None:
        self._store = store
        self.gate = gate
        self.workspace_id = workspace_id
        self.job_id = job_id
        self._seqs = sorted(set(seqs))
        self._first_attempt = first_attempt
        self._earlier: dict[int, StoredOutcome] | None = {} if first_attempt else None
        self._confirmed: list[RecordOutcome] = []
        self._saved: dict[int, RecordOutcome] = {}

    # -- reading ----------------------------------------------------------------------------------
    def earlier(self) -> dict[int, StoredOutcome]:
        """What earlier attempts saved for this chunk's records (none on the first delivery)."""
        if self._earlier is None:
            self._earlier = self._read()
        return self._earlier

    def _read(self) -> dict[int, StoredOutcome]:
        if not self._seqs:
            return {}
        rows = self._store.outcomes_between(self.workspace_id, self.job_id, self._seqs[0], self._seqs[-1])
        wanted = set(self._seqs)
        return {row.seq: row for row in rows if row.seq in wanted}

    # -- while the chunk runs ---------------------------------------------------------------------
    def sending(
        self, *, creates: Sequence[RecordOutcome] = (), updates: Sequence[RecordOutcome] = ()
    ) -> None:
        """Before the Dynamics writes of a step: the gate first (``ChunkHalted`` stops the chunk here, 5b.),
        then save these records as ``creating`` / ``updating`` (2.), in one go."""
        self.before_write()
        marks = [
            RecordOutcome(o.seq, o.platform_id, action, o.dynamics_id, changes=o.changes)
            for action, outcomes in ((RecordAction.CREATING, creates), (RecordAction.UPDATING, updates))
            for o in outcomes
        ]
        if marks:
            self._store.save_outcomes(self.workspace_id, self.job_id, marks)

    def before_write(self) -> None:
        """A safe point before a Dynamics write: raises ``ChunkHalted`` when the chunk must stop."""
        if self.gate is not None:
            self.gate()

    def confirmed(self, outcomes: Iterable[RecordOutcome]) -> None:
        """Writes Dynamics confirmed: saved with the report, or by ``save_confirmed`` (3.)."""
        self._confirmed.extend(outcomes)

    def save_confirmed(self) -> None:
        """The run stops early: save the confirmed creates now. Best effort: if storage fails too, the
        retry still finds them under their ids and the ``creating`` checkpoint."""
        try:
            if self._confirmed:
                self._store.save_outcomes(self.workspace_id, self.job_id, self._confirmed)
        except Exception:
            log.warning("could not checkpoint confirmed creates", extra={"workspace": self.workspace_id})

    # -- the report -------------------------------------------------------------------------------
    def report(self, outcomes: Sequence[RecordOutcome]) -> None:
        """Save outcomes as what happened across attempts (4.). An outcome saved before, unchanged since
        (the same object), is not written again."""
        fresh = [o for o in outcomes if self._saved.get(o.seq) is not o]
        if not fresh:
            return
        earlier = self.earlier()
        for outcome in fresh:
            carry_over(earlier.get(outcome.seq), outcome)
        self._store.save_outcomes(self.workspace_id, self.job_id, fresh)
        self._saved.update((o.seq, o) for o in fresh)

    # -- stopping ---------------------------------------------------------------------------------
    def pause(self) -> None:
        """Paused for the token (5.): confirmed creates saved, unconfirmed in-flight marks ``pending``."""
        self.save_confirmed()
        pending = [
            RecordOutcome(
                row.seq, row.platform_id, RecordAction.PENDING, note="waiting for Dynamics to be reconnected"
            )
            for row in self._read().values()
            if row.action in (RecordAction.CREATING, RecordAction.UPDATING)
        ]
        if pending:
            self._store.save_outcomes(self.workspace_id, self.job_id, pending)

    def halt(self, records: Mapping[int, str], note: str) -> None:
        """Halted (5b.): ``records`` = position -> platform id of the chunk. What Dynamics confirmed is
        saved; every record without a final outcome is ``pending`` with ``note``."""
        self.save_confirmed()
        earlier = self._read()
        pending = [
            RecordOutcome(seq, platform_id, RecordAction.PENDING, note=note)
            for seq, platform_id in sorted(records.items())
            if (done := earlier.get(seq)) is None or done.action not in FINAL
        ]
        if pending:
            self._store.save_outcomes(self.workspace_id, self.job_id, pending)

    def began_writing(self) -> bool:
        """Whether an earlier attempt sent writes whose outcome it never reported (7.)."""
        sending = (RecordAction.CREATING, RecordAction.UPDATING)
        return any(row.action in sending for row in self.earlier().values())

    def cancel(self, records: Mapping[int, str]) -> dict[str, int]:
        """Cancelled before writing (7.): ``records`` = position -> platform id. Returns the counts."""
        earlier = self.earlier()
        kept: list[RecordOutcome] = []
        cancelled: list[RecordOutcome] = []
        for seq, platform_id in sorted(records.items()):
            done = earlier.get(seq)
            if done is not None and done.action in FINAL:
                kept.append(RecordOutcome(seq, platform_id, done.action, done.dynamics_id))
                continue
            note = "not written: the job was cancelled"
            if done is not None and done.action is RecordAction.PENDING:
                # Paused with its write unconfirmed: it may have reached Dynamics (deterministic id).
                note = f"{note}; {MAY_EXIST_NOTE}"
            cancelled.append(RecordOutcome(seq, platform_id, RecordAction.CANCELLED, note=note))
        self._store.save_outcomes(self.workspace_id, self.job_id, cancelled)
        return count_outcomes([*kept, *cancelled])

    def fail(self, records: Mapping[int, str], reason: str, *, sent_nothing: bool = False) -> dict[str, int]:
        """Failed for good (6.): ``records`` = position -> platform id of the chunk. Returns the counts.
        ``sent_nothing``: Dynamics refused the writes in flight as a whole, so no create may exist."""
        earlier = self._read()
        kept: list[RecordOutcome] = []
        failed: list[RecordOutcome] = []
        for seq, platform_id in sorted(records.items()):
            done = earlier.get(seq)
            if done is not None and done.action in FINAL:
                kept.append(RecordOutcome(seq, platform_id, done.action, done.dynamics_id))
                continue  # saved by an earlier attempt (in Dynamics, or refused with its own reason)
            outcome = RecordOutcome(seq, platform_id, RecordAction.FAILED, errors=[FieldError("", reason)])
            if done is not None and done.action is RecordAction.CREATING and not sent_nothing:
                outcome.note = MAY_EXIST_NOTE
                outcome.dynamics_id = done.dynamics_id
            failed.append(outcome)
        self._store.save_outcomes(self.workspace_id, self.job_id, failed)
        return count_outcomes([*kept, *failed])


def carry_over(before: StoredOutcome | None, outcome: RecordOutcome) -> None:
    """A retried chunk finds the writes of its crashed earlier attempt already in Dynamics: report what
    that attempt did, not ``unchanged``."""
    if before is None or outcome.action not in (RecordAction.UNCHANGED, RecordAction.UPDATED):
        return
    if before.action in (RecordAction.CREATED, RecordAction.CREATING):
        outcome.action = RecordAction.CREATED
        outcome.changes = before.changes or outcome.changes
    elif (
        before.action in (RecordAction.UPDATED, RecordAction.UPDATING)
        and outcome.action is RecordAction.UNCHANGED
    ):
        outcome.action = RecordAction.UPDATED
        outcome.changes = before.changes or outcome.changes
