"""One Dynamics user's API budget, shared through Table Storage by every instance working for a workspace.

Dataverse limits each user to 52 concurrent requests, 6,000 requests and 1,200 s of execution time per
sliding 5 minutes (service protection limits). Exports run as queue-triggered chunks, and Functions scale
out: several instances may work for the same workspace, i.e. the same Dynamics user, at once. Each one's
:class:`~core.adapters.dataverse.limiter.AdaptiveLimiter` only learns the limit from 429s; this module
lets them divide it up front instead. Table ``DynamicsBudget``, partition = workspace id:

* **Slots** (rows ``slot-00`` .. ``slot-NN``): an instance holds one slot while it works for the workspace
  (claimed with an insert, or with an ETag-conditional replace of an expired slot; renewed while in use,
  simply expiring when the instance dies). At most ``slots`` instances work at once; each sizes its
  in-process concurrency to ``max_concurrent * headroom / live slots``. A chunk run sends its requests
  one after another, so "permits" here are chunk runs, and in-flight requests never exceed the share.
* **Ledger** (rows ``ledger-0`` .. ``ledger-K``, a ring of time buckets of ``window / buckets`` seconds):
  every HTTP attempt (reported by the client's ``on_request`` hook, retries and 429s included) is counted
  locally and merged into the current bucket with an ETag-conditional replace once ``flush_batch``
  requests have accumulated (50 at the real limits: one read + one write per 50 Dataverse requests).
  The window's total counts every bucket that overlaps the window, in full (safe by up to one bucket).
* **Pacing**: inside ``working()`` (a chunk run), the hook then holds the calling thread until there is
  room for its next request (a chunk run sends one request at a time from one thread, so this gates
  every request, metadata bursts included); other calls (HTTP API) are counted but never held. A request
  a chunk thread was cleared to send counts as sent until it answers (the service counts it on arrival,
  the ledger only from its answer).
  The ledger is read at most every ``min(2 s, bucket / 4)``; between two reads an instance
  spends only ``room / slots`` of what the last read showed free, so instances that cannot see each
  other's latest requests still cannot overshoot together. Room is ``headroom`` (90%) of each limit.
* **429s** (row ``pause``): a 429 any thread of any instance receives is written at once, before that
  thread does anything else, as ``PausedUntil`` (epoch seconds, the latest wins). ``gate()`` is the
  client's ``before_send`` hook: right before every HTTP attempt of the workspace's client -- chunk
  threads, interactive calls and retries alike -- it reads that row (one point read per request) and holds
  the thread until the pause has elapsed. So no request of the Dynamics user is sent before a
  Retry-After it was given has elapsed, except those sent in the moment between Dynamics answering the
  429 and the pause being written (a storage round trip). Epoch seconds: instances' clocks must agree to
  within the pause's precision (NTP-synchronised hosts; Retry-After is whole seconds).

Degrades gracefully: when storage fails or is slow, the instance logs it (once per outage), falls back to a
static share (``1 / slots`` of each limit, counted locally) and retries storage after a pause. Nothing here
ever blocks a chunk forever: waits are bounded by ``max_wait_s``, after which the chunk goes ahead and the
client's own 429 handling takes over.

Over 400 lines on purpose: slots, ledger and pacing read and update one per-workspace state
(``_Workspace``) under one condition variable, and the fallback to the static share cuts across all
three; split into modules, each part would have to follow the others' locking from afar. Sections, in
order: limits, public API (``observer``, ``working``, ``pace``), slots, ledger (buckets, reads, merges,
the wait for room), storage plumbing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from core.adapters.dataverse.transport import RequestEvent

log = logging.getLogger(__name__)

BUDGET_TABLE = "DynamicsBudget"
_PAUSE_ROW = "pause"
_MERGE_ATTEMPTS = 6
# Per-call transport options: the budget sits on the request path, so a slow or unreachable storage must
# fail fast (and the instance fall back to its static share) rather than hang behind SDK retries.
_FAST: dict[str, Any] = {"retry_total": 1, "connection_timeout": 2, "read_timeout": 3}


@dataclass(frozen=True)
class BudgetLimits:
    """The per-user limits (Microsoft's defaults) and how this instance plans to stay under them."""

    max_concurrent: int = 52
    max_requests: int = 6000
    max_execution_s: float = 1200.0
    window_s: float = 300.0
    headroom: float = 0.9  # plan to use at most this share of each limit
    slots: int = 4  # instances working for one workspace at once
    buckets: int = 10  # ledger buckets per window (the estimate errs by at most one, on the safe side)
    flush_every: int = 0  # requests counted locally before a merge; 0 = derived from max_requests
    lease_s: float = 30.0  # slot lease; renewed at half-time while in use
    max_wait_s: float = 600.0  # the longest a chunk waits for budget before going ahead anyway
    storage_retry_s: float = 10.0  # after a storage failure, how long to run on the static share

    def __post_init__(self) -> None:
        if min(self.max_concurrent, self.max_requests, self.slots, self.buckets) < 1:
            raise ValueError("limits, slots and buckets must be at least 1")
        if self.window_s <= 0 or self.max_execution_s <= 0 or self.lease_s <= 0:
            raise ValueError("window, execution time and lease must be positive")
        if not 0 < self.headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")

    @property
    def bucket_s(self) -> float:
        return self.window_s / self.buckets

    @property
    def flush_batch(self) -> int:
        """Requests per ledger merge: 50 at the real limits, fewer when limits are scaled down (tests)."""
        if self.flush_every > 0:
            return self.flush_every
        return max(1, min(50, self.max_requests // 100))

    @property
    def request_budget(self) -> float:
        return self.max_requests * self.headroom

    @property
    def execution_budget_ms(self) -> float:
        return self.max_execution_s * 1000.0 * self.headroom


@dataclass(frozen=True)
class WindowUsage:
    requests: float
    execution_ms: float
    paused_until: float


@dataclass
class _Tally:
    """Counts the usage view needs beyond the ledger's: 429s and, per job, requests and execution ms."""

    requests: int = 0
    execution_ms: float = 0.0
    throttled: int = 0
    jobs: dict[str, list[float]] = field(default_factory=dict)

    def add(self, requests: int, execution_ms: float, throttled: int, job: str | None) -> None:
        self.requests += requests
        self.execution_ms += execution_ms
        self.throttled += throttled
        if job:
            spent = self.jobs.setdefault(job, [0.0, 0.0])
            spent[0] += requests
            spent[1] += execution_ms

    def merge(self, other: _Tally) -> None:
        self.add(other.requests, other.execution_ms, other.throttled, None)
        for job, (requests, ms) in other.jobs.items():
            spent = self.jobs.setdefault(job, [0.0, 0.0])
            spent[0] += requests
            spent[1] += ms

    def take(self) -> _Tally:
        taken = _Tally(self.requests, self.execution_ms, self.throttled, self.jobs)
        self.requests, self.execution_ms, self.throttled, self.jobs = 0, 0.0, 0, {}
        return taken


@dataclass(frozen=True)
class Reported:
    """What Dynamics last said was left of the user's window (x-ms-ratelimit-* headers)."""

    at: float
    requests_remaining: int | None
    execution_remaining_s: float | None


@dataclass(frozen=True)
class UsageTotals:
    requests: int  # HTTP attempts answered (429s included)
    execution_ms: float  # their round trips as measured here
    throttled: int  # 429s among them
    jobs: dict[str, tuple[int, float]]  # job -> (requests, execution ms)


@dataclass(frozen=True)
class UsageReport:
    window: UsageTotals  # the ledger's current window (every bucket overlapping it, in full)
    window_start: float  # epoch seconds: where the oldest counted bucket begins
    days: dict[str, UsageTotals]  # "YYYY-MM-DD" (UTC) -> totals, the last ``days`` days that have any
    reported: Reported | None


@dataclass
class _Workspace:
    """This instance's view of one workspace's budget (guarded by ``cond``)."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    slot: str | None = None
    slot_until: float = 0.0
    share: int = 1
    live: int = 1  # instances holding a slot for the workspace, as of the last claim/renewal
    in_use: int = 0
    pending_requests: int = 0  # counted here, not yet merged into the ledger
    pending_execution_ms: float = 0.0
    pending_paused_until: float = 0.0
    shared_paused_until: float = 0.0  # the ``pause`` row as last read or written by this instance
    unread_requests: int = 0  # merged by this instance since the window was last read
    in_flight: int = 0  # requests chunk threads were cleared to send that have not answered yet
    unread_execution_ms: float = 0.0
    usage: WindowUsage | None = None
    usage_at: float = -math.inf
    local: dict[int, tuple[int, float]] = field(default_factory=dict)  # bucket -> own (requests, ms)
    flush_lock: threading.Lock = field(default_factory=threading.Lock)
    waits: int = 0
    waited_s: float = 0.0
    # What the usage view adds to the counts: 429s and requests per job, written with each merge (the
    # ledger bucket and the day row); ``day_carry`` is what a merge put in the bucket but not the day row.
    tally: _Tally = field(default_factory=lambda: _Tally())
    day_carry: _Tally = field(default_factory=lambda: _Tally())
    reported: Reported | None = None  # the latest x-ms-ratelimit-* answer not yet written
    last_flush: float = -math.inf


class DynamicsBudget:
    """Thread-safe; one per process (it represents this instance). See the module docstring."""

    def __init__(
        self,
        tables: TableServiceClient,
        limits: BudgetLimits | None = None,
        *,
        table_name: str = BUDGET_TABLE,
        instance_id: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits or BudgetLimits()
        self.instance_id = instance_id or uuid.uuid4().hex
        self._service = tables
        self._table_name = table_name
        self._table: TableClient = tables.get_table_client(table_name)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._local = threading.local()  # .working: the workspace this thread runs a chunk for
        self._workspaces: dict[str, _Workspace] = {}
        self._ready = False
        self._degraded_until = 0.0
        self.storage_failures = 0
        self.storage_operations = 0

    # -- public API ------------------------------------------------------------------------------
    def gate(self, workspace_id: str) -> Callable[[], None]:
        """A ``before_send`` hook for the workspace's client: holds the calling thread while a 429 seen
        by any instance has not reached its Retry-After (bounded by ``max_wait_s``)."""

        def hold() -> None:
            try:
                self.wait_out_pause(workspace_id)
            except Exception as exc:  # the budget must never break a Dataverse call
                self._storage_failed(exc)

        return hold

    def wait_out_pause(self, workspace_id: str) -> float:
        """Block until the workspace's shared pause (and this instance's own) has elapsed; the seconds
        waited. Storage unavailable: this instance's own 429s only."""
        ws = self._workspace(workspace_id)
        started = self._clock()
        deadline = started + self.limits.max_wait_s
        while True:
            now = self._clock()
            with ws.cond:
                until = max(ws.pending_paused_until, ws.shared_paused_until)
            if until <= now and not self._degraded(now):
                until = self._read_pause(workspace_id, ws)
            if until <= now or now >= deadline:
                return now - started
            self._sleep(max(0.01, min(until - now, deadline - now)))

    def ensure_ready(self) -> None:
        try:
            self._service.create_table(self._table_name, **_FAST)
        except ResourceExistsError:
            pass
        self._ready = True

    def observer(self, workspace_id: str) -> Callable[[RequestEvent], None]:
        """An ``on_request`` hook for the workspace's ``DataverseClient``: counts every HTTP attempt and
        paces the calling thread. A chunk run sends its requests one after another from one thread, so
        holding that thread here until the window has room gates its *next* request."""

        def observe(event: RequestEvent) -> None:
            throttled_for = event.retry_after if event.status == 429 else None
            try:
                self._answered(workspace_id)
                working = getattr(self._local, "working", None) == workspace_id
                reported = None
                if event.requests_remaining is not None or event.execution_remaining_s is not None:
                    reported = Reported(self._clock(), event.requests_remaining, event.execution_remaining_s)
                self.record(
                    workspace_id,
                    1,
                    event.elapsed_s * 1000.0,
                    throttled_for,
                    throttled=event.status == 429,
                    job=getattr(self._local, "job", None) if working else None,
                    reported=reported,
                )
                if getattr(self._local, "working", None) == workspace_id:
                    self.pace(workspace_id)  # chunk threads only: interactive calls are counted, not held
            except Exception as exc:  # the budget must never break a Dataverse call
                self._storage_failed(exc)

        return observe

    def record(
        self,
        workspace_id: str,
        requests: int,
        execution_ms: float,
        throttled_for: float | None = None,
        *,
        throttled: bool = False,
        job: str | None = None,
        reported: Reported | None = None,
    ) -> None:
        """Count ``requests`` (of ``job`` when a chunk run sent them); a 429 (``throttled``) with its
        Retry-After (``throttled_for``) is published at once. Merged into storage every ``flush_batch``
        requests, and at least once per bucket while requests come (the usage view lags by at most that)."""
        ws = self._workspace(workspace_id)
        now = self._clock()
        bucket = self._bucket(now)
        with ws.cond:
            ws.pending_requests += requests
            ws.pending_execution_ms += execution_ms
            ws.tally.add(requests, execution_ms, int(throttled or throttled_for is not None), job)
            if reported is not None:
                ws.reported = reported
            own = ws.local.get(bucket, (0, 0.0))
            ws.local[bucket] = (own[0] + requests, own[1] + execution_ms)
            for old in [b for b in ws.local if b < bucket - self.limits.buckets]:
                del ws.local[old]
            if throttled_for:
                ws.pending_paused_until = max(ws.pending_paused_until, now + throttled_for)
            due = (
                ws.pending_requests >= self.limits.flush_batch
                or throttled_for is not None
                or now - ws.last_flush >= self.limits.bucket_s
            )
        if throttled_for:
            self._publish_pause(workspace_id, ws, now + throttled_for)
        if due:
            self._flush(workspace_id, ws)

    def pace(self, workspace_id: str, expected_requests: int = 1) -> None:
        """Block the calling thread until the workspace's window has room for ``expected_requests``."""
        ws = self._workspace(workspace_id)
        self._wait_for_room(workspace_id, ws, expected_requests, self._clock() + self.limits.max_wait_s)

    @contextmanager
    def working(
        self, workspace_id: str, expected_requests: int = 8, *, job: str | None = None
    ) -> Iterator[None]:
        """Hold a share of the workspace's budget while a chunk runs: a slot for this instance, one of its
        concurrency permits, and room in the request ledger for about ``expected_requests``. The
        requests the thread sends meanwhile are counted as ``job``'s (the usage view's busiest job)."""
        ws = self._workspace(workspace_id)
        deadline = self._clock() + self.limits.max_wait_s
        self._hold_slot(workspace_id, ws, deadline)
        with ws.cond:
            while ws.in_use >= ws.share and self._clock() < deadline:
                ws.cond.wait(timeout=1.0)
            ws.in_use += 1
        outer = getattr(self._local, "working", None)
        outer_job = getattr(self._local, "job", None)
        self._local.working = workspace_id
        self._local.job = job
        try:
            self._wait_for_room(workspace_id, ws, expected_requests, deadline)
            yield
        finally:
            self._answered(workspace_id)  # the last clearance of a chunk run goes unused
            self._local.working = outer
            self._local.job = outer_job
            with ws.cond:
                ws.in_use -= 1
                ws.cond.notify_all()
            if ws.pending_requests:
                self._flush(workspace_id, ws)

    def _answered(self, workspace_id: str) -> None:
        """The calling thread's cleared request has answered (its count now goes to the ledger)."""
        if getattr(self._local, "cleared", None) == workspace_id:
            self._local.cleared = None
            ws = self._workspace(workspace_id)
            with ws.cond:
                ws.in_flight = max(0, ws.in_flight - 1)

    def _cleared(self, workspace_id: str, ws: _Workspace) -> None:
        """A chunk thread may send its next request: until it answers it counts as sent, since the
        ledger only learns of a request from its answer (the service counts it on arrival)."""
        if getattr(self._local, "working", None) != workspace_id or getattr(self._local, "cleared", None):
            return
        self._local.cleared = workspace_id
        with ws.cond:
            ws.in_flight += 1

    def share(self, workspace_id: str) -> int:
        """Concurrent chunk runs (= in-flight requests) this instance allows itself for the workspace."""
        return self._workspace(workspace_id).share

    def usage(self, workspace_id: str) -> WindowUsage:
        """The ledger's current window for the workspace (read from storage), plus what is not flushed."""
        ws = self._workspace(workspace_id)
        usage = self._read_usage(workspace_id, ws, force=True)
        return usage

    def stats(self, workspace_id: str) -> dict[str, Any]:
        ws = self._workspace(workspace_id)
        return {
            "slot": ws.slot,
            "share": ws.share,
            "waits": ws.waits,
            "waited_s": round(ws.waited_s, 3),
            "storage_operations": self.storage_operations,
            "storage_failures": self.storage_failures,
        }

    def release(self, workspace_id: str) -> None:
        """Give the slot back (shutdown); a crashed instance's slot simply expires instead."""
        ws = self._workspace(workspace_id)
        self._flush(workspace_id, ws)
        with ws.cond:
            slot, ws.slot, ws.slot_until = ws.slot, None, 0.0
        if slot is None:
            return
        try:
            current = self._table.get_entity(workspace_id, slot, **_FAST)
            if current.get("Owner") == self.instance_id:
                self._table.delete_entity(
                    workspace_id,
                    slot,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (AzureError, OSError):
            pass

    # -- slots -----------------------------------------------------------------------------------
    def _hold_slot(self, workspace_id: str, ws: _Workspace, deadline: float) -> None:
        while True:
            now = self._clock()
            with ws.cond:
                if ws.slot is not None and ws.slot_until - now > self.limits.lease_s / 2:
                    return
            if self._degraded(now):
                with ws.cond:
                    ws.share = self._static_share()
                return
            try:
                if self._claim_slot(workspace_id, ws, now):
                    return
            except (AzureError, OSError) as exc:
                self._storage_failed(exc)
                continue
            if self._clock() >= deadline:
                log.warning("no Dynamics budget slot free for the workspace; going ahead at concurrency 1")
                with ws.cond:
                    ws.share = 1
                return
            ws.waits += 1
            pause = min(self.limits.lease_s / 4, 2.0)
            ws.waited_s += pause
            self._sleep(pause)

    def _claim_slot(self, workspace_id: str, ws: _Workspace, now: float) -> bool:
        self._ensure_ready()
        rows = {
            str(e["RowKey"]): e
            for e in self._op().query_entities(
                "PartitionKey eq @pk and RowKey ge 'slot-' and RowKey lt 'slot.'",
                parameters={"pk": workspace_id},
                **_FAST,
            )
        }
        until = now + self.limits.lease_s
        entity = {"PartitionKey": workspace_id, "Owner": self.instance_id, "Until": until}
        mine = ws.slot
        order = [mine] if mine else []
        order += [f"slot-{i:02d}" for i in range(self.limits.slots) if f"slot-{i:02d}" != mine]
        for key in order:
            row = rows.get(key)
            try:
                if row is None:
                    self._op().create_entity({**entity, "RowKey": key}, **_FAST)
                elif row.get("Owner") == self.instance_id or float(row.get("Until") or 0) <= now:
                    self._op().update_entity(
                        {**entity, "RowKey": key},
                        mode=UpdateMode.REPLACE,
                        etag=row.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                        **_FAST,
                    )
                else:
                    continue
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                continue  # someone else took it first
            live = 1 + sum(
                1
                for k, r in rows.items()
                if k != key and r.get("Owner") != self.instance_id and float(r.get("Until") or 0) > now
            )
            with ws.cond:
                ws.slot, ws.slot_until, ws.live = key, until, live
                ws.share = max(1, int(self.limits.max_concurrent * self.limits.headroom) // live)
                ws.cond.notify_all()
            return True
        with ws.cond:
            ws.slot, ws.slot_until = None, 0.0
        return False

    def _static_share(self) -> int:
        return max(1, int(self.limits.max_concurrent * self.limits.headroom) // self.limits.slots)

    # -- ledger ----------------------------------------------------------------------------------
    def _bucket(self, now: float) -> int:
        return int(now // self.limits.bucket_s)

    def _ring_key(self, bucket: int) -> str:
        return f"ledger-{bucket % (self.limits.buckets + 2)}"

    def _wait_for_room(
        self, workspace_id: str, ws: _Workspace, expected_requests: int, deadline: float
    ) -> None:
        """Block until this instance may send ``expected_requests`` more.

        The ledger is read at most every ``refresh`` seconds, so other instances' latest requests are not
        in it. Each instance therefore spends, between two reads, only its part of the room the last read
        showed (room / live instances): together they cannot overshoot what was free."""
        limits = self.limits
        # Never ask for more than half of an instance's part of an empty window: a larger ask could only
        # be granted to an idle window and would starve behind other instances' steady traffic.
        expected_requests = min(expected_requests, max(1, int(limits.request_budget / (2 * limits.slots))))
        started = self._clock()
        fresh = False
        while True:
            now = self._clock()
            degraded = self._degraded(now)
            if degraded:  # own counts only, against a static 1/slots part of each limit
                usage = self._local_usage(ws, now)
                requests_room = limits.request_budget / limits.slots - usage.requests
                execution_room = limits.execution_budget_ms / limits.slots - usage.execution_ms
                with ws.cond:
                    sent, spent = float(ws.in_flight), 0.0
            else:
                usage = self._read_usage(workspace_id, ws, force=fresh)
                with ws.cond:
                    # Instances that started together may not see each other's slots yet: divide by
                    # the most there can be (alone, this only means reading the ledger more often).
                    live = max(ws.live, self.limits.slots)
                    sent = ws.pending_requests + ws.unread_requests + ws.in_flight
                    spent = ws.pending_execution_ms + ws.unread_execution_ms
                requests_room = (limits.request_budget - usage.requests) / live
                execution_room = (limits.execution_budget_ms - usage.execution_ms) / live
            with ws.cond:
                paused_until = max(usage.paused_until, ws.pending_paused_until)
            if (
                paused_until <= now
                and sent + expected_requests <= requests_room
                and spent <= max(0.0, execution_room)
            ):
                break
            if now >= deadline:
                log.warning("Dynamics budget still exhausted after waiting; going ahead")
                break
            if not degraded:
                with ws.cond:
                    unmerged = ws.pending_requests > 0
                if unmerged:
                    # Counts another thread left unmerged (its flush was skipped or lost a race) would
                    # otherwise hold this wait until the deadline: merge them, so the next read sees them.
                    self._flush(workspace_id, ws)
            if not fresh and not degraded and paused_until <= now:
                fresh = True  # our part of the last read is spent: read again before waiting
                continue
            # Wait for the pause to end, else for part of a bucket to slide out, then read again.
            pause = paused_until - now if paused_until > now else min(limits.bucket_s / 4, 1.0)
            self._sleep(max(0.02, min(pause, deadline - now)))
            fresh = True
        self._cleared(workspace_id, ws)
        waited = self._clock() - started
        if waited > 0.01:
            ws.waits += 1
            ws.waited_s += waited

    def _local_usage(self, ws: _Workspace, now: float) -> WindowUsage:
        with ws.cond:
            return self._window(
                {b: (float(r), ms) for b, (r, ms) in ws.local.items()}, now, ws.pending_paused_until
            )

    def _window(self, totals: dict[int, tuple[float, float]], now: float, paused: float) -> WindowUsage:
        """What the service's sliding window may still hold: every bucket that overlaps it, in full.

        Weighting the oldest bucket by its overlap assumes its requests were spread evenly; a burst at its
        end would then be undercounted and draw a 429, so this errs by up to one bucket the safe way."""
        current = self._bucket(now)
        requests = execution = 0.0
        for bucket, (count, ms) in totals.items():
            if 0 <= current - bucket <= self.limits.buckets:
                requests += count
                execution += ms
        return WindowUsage(requests, execution, paused)

    def _read_usage(self, workspace_id: str, ws: _Workspace, *, force: bool) -> WindowUsage:
        now = self._clock()
        refresh = min(2.0, self.limits.bucket_s / 4)
        with ws.cond:
            if not force and ws.usage is not None and now - ws.usage_at < refresh:
                return ws.usage
            # What this instance merged before the read is in it; what it merges while the read runs
            # may not be, so only the former leaves ``unread`` (counting a merge twice is the safe way).
            unread_before = (ws.unread_requests, ws.unread_execution_ms)
        try:
            self._ensure_ready()
            # The whole partition: the ledger ring and the slots (a dozen rows, one request).
            rows = list(
                self._op().query_entities("PartitionKey eq @pk", parameters={"pk": workspace_id}, **_FAST)
            )
        except (AzureError, OSError) as exc:
            self._storage_failed(exc)
            return self._local_usage(ws, now)
        totals: dict[int, tuple[float, float]] = {}
        paused = 0.0
        live = 0
        for row in rows:
            if row["RowKey"] == _PAUSE_ROW:
                paused = max(paused, float(row.get("PausedUntil") or 0))
                continue
            if str(row["RowKey"]).startswith("slot-"):
                live += float(row.get("Until") or 0) > now
                continue
            bucket = int(row.get("Bucket") or 0)
            totals[bucket] = (float(row.get("Requests") or 0), float(row.get("ExecutionMs") or 0))
            paused = max(paused, float(row.get("PausedUntil") or 0))
        usage = self._window(totals, now, paused)
        with ws.cond:
            ws.usage, ws.usage_at = usage, now
            ws.unread_requests -= unread_before[0]
            ws.unread_execution_ms -= unread_before[1]
            if live:
                ws.live = live
        return usage

    def _flush(self, workspace_id: str, ws: _Workspace) -> None:
        """Merge what this instance counted into the current bucket (ETag-conditional, retried on races)."""
        if self._degraded(self._clock()):
            return
        if not ws.flush_lock.acquire(blocking=False):
            return  # another thread of this instance is flushing; the counts wait for the next one
        try:
            with ws.cond:
                requests, execution = ws.pending_requests, ws.pending_execution_ms
                paused = ws.pending_paused_until
                ws.pending_requests, ws.pending_execution_ms = 0, 0.0
                tally = ws.tally.take()
                reported, ws.reported = ws.reported, None
                ws.last_flush = self._clock()
            if not requests and not paused:
                with ws.cond:
                    ws.reported = ws.reported or reported
                return
            try:
                merged = self._merge(workspace_id, requests, execution, paused, tally)
            except (AzureError, OSError) as exc:
                self._storage_failed(exc)
                merged = False
            with ws.cond:
                if merged:
                    ws.unread_requests += requests
                    ws.unread_execution_ms += execution
                    ws.day_carry.merge(tally)
                    day, ws.day_carry = ws.day_carry, _Tally()
                else:  # keep them: they are merged with the next flush (nothing is ever dropped)
                    ws.pending_requests += requests
                    ws.pending_execution_ms += execution
                    ws.pending_paused_until = max(ws.pending_paused_until, paused)
                    ws.tally.merge(tally)
                    if ws.reported is None:
                        ws.reported = reported
            if merged and (day.requests or reported is not None):
                self._merge_day(workspace_id, ws, day, reported)
        finally:
            ws.flush_lock.release()

    def _merge(
        self,
        workspace_id: str,
        requests: int,
        execution_ms: float,
        paused: float,
        tally: _Tally | None = None,
    ) -> bool:
        """True once merged; False when other instances kept winning the race (the caller keeps the
        counts for its next flush)."""
        self._ensure_ready()
        for _ in range(_MERGE_ATTEMPTS):
            bucket = self._bucket(self._clock())
            key = self._ring_key(bucket)
            try:
                row = self._op().get_entity(workspace_id, key, **_FAST)
            except ResourceNotFoundError:
                row = None
            entity: dict[str, Any] = {
                "PartitionKey": workspace_id,
                "RowKey": key,
                "Bucket": str(bucket),  # beyond Edm.Int32
                "Requests": requests,
                "ExecutionMs": float(execution_ms),
                "PausedUntil": float(paused),
                "Throttled": tally.throttled if tally else 0,
                "Jobs": _jobs_text(tally.jobs if tally else {}),
            }
            try:
                if row is None:
                    self._op().create_entity(entity, **_FAST)
                    return True
                if int(row.get("Bucket") or 0) == bucket:  # same bucket: add to it
                    entity["Requests"] = int(row.get("Requests") or 0) + requests
                    entity["ExecutionMs"] = float(row.get("ExecutionMs") or 0) + execution_ms
                    entity["PausedUntil"] = max(float(row.get("PausedUntil") or 0), paused)
                    entity["Throttled"] = int(row.get("Throttled") or 0) + entity["Throttled"]
                    entity["Jobs"] = _jobs_text(_add_jobs(_jobs_of(row), tally.jobs if tally else {}))
                self._op().update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                    **_FAST,
                )
                return True
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                continue  # another instance merged first: read again
        log.info("Dynamics budget ledger merge kept racing; %d requests wait for the next flush", requests)
        return False

    # -- the usage view --------------------------------------------------------------------------
    def _merge_day(self, workspace_id: str, ws: _Workspace, day: _Tally, reported: Reported | None) -> None:
        """Add ``day`` to today's row (partition ``<workspace>~usage``, ETag-conditional); what does not get
        in is carried to the next merge."""
        now = self._clock()
        key = "day-" + dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%d")
        partition = _usage_partition(workspace_id)
        try:
            for _ in range(_MERGE_ATTEMPTS):
                try:
                    row: Any = self._op().get_entity(partition, key, **_FAST)
                except ResourceNotFoundError:
                    row = None
                old = row or {}
                entity: dict[str, Any] = {
                    "PartitionKey": partition,
                    "RowKey": key,
                    "Requests": int(old.get("Requests") or 0) + day.requests,
                    "ExecutionMs": float(old.get("ExecutionMs") or 0) + day.execution_ms,
                    "Throttled": int(old.get("Throttled") or 0) + day.throttled,
                    "Jobs": _jobs_text(_add_jobs(_jobs_of(old), day.jobs), keep=_DAY_JOBS),
                }
                for name in ("ReportedAt", "RequestsRemaining", "ExecutionRemainingS"):
                    if old.get(name) is not None:
                        entity[name] = old[name]
                if reported is not None and reported.at >= float(old.get("ReportedAt") or 0):
                    entity["ReportedAt"] = float(reported.at)
                    entity["RequestsRemaining"] = reported.requests_remaining
                    entity["ExecutionRemainingS"] = reported.execution_remaining_s
                try:
                    self._put(entity, row)
                    return
                except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                    continue
        except (AzureError, OSError) as exc:
            self._storage_failed(exc)
        with ws.cond:  # not merged: with the next one
            ws.day_carry.merge(day)

    def usage_report(self, workspace_id: str, days: int = 7) -> UsageReport:
        """What the workspace's Dynamics user spent through this integration: the current window (every
        instance's merged counts plus this instance's unmerged ones) and the last ``days`` UTC days. Two
        queries; a storage failure raises (``AzureError``)."""
        self._ensure_ready()
        now = self._clock()
        current = self._bucket(now)
        window: dict[str, Any] = {"requests": 0, "ms": 0.0, "throttled": 0, "jobs": {}}
        for row in self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge 'ledger-' and RowKey lt 'ledger.'",
            parameters={"pk": workspace_id},
            **_FAST,
        ):
            if 0 <= current - int(row.get("Bucket") or 0) <= self.limits.buckets:
                window["requests"] += int(row.get("Requests") or 0)
                window["ms"] += float(row.get("ExecutionMs") or 0)
                window["throttled"] += int(row.get("Throttled") or 0)
                window["jobs"] = _add_jobs(window["jobs"], _jobs_of(row))
        since = dt.datetime.fromtimestamp(now, dt.UTC).date() - dt.timedelta(days=days - 1)
        day_rows = list(
            self._table.query_entities(
                "PartitionKey eq @pk and RowKey ge @since and RowKey lt 'day.'",
                parameters={"pk": _usage_partition(workspace_id), "since": "day-" + since.strftime("%Y%m%d")},
                **_FAST,
            )
        )
        ws = self._workspace(workspace_id)
        with ws.cond:  # this instance's counts not merged yet
            unmerged = _Tally()
            unmerged.merge(ws.tally)
            unmerged.merge(ws.day_carry)
            own_reported = ws.reported
        totals: dict[str, UsageTotals] = {}
        reported = own_reported
        today = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d")
        for row in day_rows:
            date = str(row["RowKey"])[4:]
            date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
            totals[date] = _totals(
                int(row.get("Requests") or 0),
                float(row.get("ExecutionMs") or 0),
                int(row.get("Throttled") or 0),
                _jobs_of(row),
            )
            at = float(row.get("ReportedAt") or 0)
            if at and (reported is None or at > reported.at):
                remaining = row.get("RequestsRemaining")
                left = row.get("ExecutionRemainingS")
                reported = Reported(
                    at, int(remaining) if remaining is not None else None, float(left) if left else None
                )
        if unmerged.requests:
            base = totals.get(today, _totals(0, 0.0, 0, {}))
            totals[today] = _totals(
                base.requests + unmerged.requests,
                base.execution_ms + unmerged.execution_ms,
                base.throttled + unmerged.throttled,
                _add_jobs({k: [float(r), ms] for k, (r, ms) in base.jobs.items()}, unmerged.jobs),
            )
        with ws.cond:
            window_unmerged = ws.tally
            window_totals = _totals(
                window["requests"] + window_unmerged.requests,
                window["ms"] + window_unmerged.execution_ms,
                window["throttled"] + window_unmerged.throttled,
                _add_jobs(window["jobs"], window_unmerged.jobs),
            )
        window_start = (current - self.limits.buckets) * self.limits.bucket_s
        return UsageReport(window_totals, window_start, dict(sorted(totals.items())), reported)

    def purge_usage_days(self, before: dt.date, limit: int) -> int:
        """Delete up to ``limit`` day rows (every workspace's) of days before ``before``; how many. One
        query over the table, which holds a dozen rows per workspace besides them."""
        self._ensure_ready()
        deleted = 0
        for row in self._table.query_entities(
            "RowKey ge 'day-' and RowKey lt @before",
            parameters={"before": "day-" + before.strftime("%Y%m%d")},
            select=["PartitionKey", "RowKey"],
        ):
            if deleted >= limit:
                break
            try:
                self._table.delete_entity(row["PartitionKey"], row["RowKey"])
            except ResourceNotFoundError:
                pass
            deleted += 1
        return deleted

    # -- the shared pause ------------------------------------------------------------------------
    def _read_pause(self, workspace_id: str, ws: _Workspace) -> float:
        """``PausedUntil`` of the workspace's ``pause`` row (0 when there is none); storage errors go to
        the fallback (own pauses only)."""
        try:
            self._ensure_ready()
            row = self._op().get_entity(workspace_id, _PAUSE_ROW, select=["PausedUntil"], **_FAST)
        except ResourceNotFoundError:
            return 0.0
        except (AzureError, OSError) as exc:
            self._storage_failed(exc)
            return 0.0
        until = float(row.get("PausedUntil") or 0)
        with ws.cond:
            ws.shared_paused_until = max(ws.shared_paused_until, until)
        return until

    def _publish_pause(self, workspace_id: str, ws: _Workspace, until: float) -> None:
        """Raise the ``pause`` row to ``until`` (ETag-conditional; a later pause already there wins)."""
        with ws.cond:
            ws.shared_paused_until = max(ws.shared_paused_until, until)
        if self._degraded(self._clock()):
            return
        try:
            self._ensure_ready()
            for _ in range(_MERGE_ATTEMPTS):
                try:
                    row = self._op().get_entity(workspace_id, _PAUSE_ROW, **_FAST)
                except ResourceNotFoundError:
                    row = None
                entity = {"PartitionKey": workspace_id, "RowKey": _PAUSE_ROW, "PausedUntil": float(until)}
                try:
                    if row is None or float(row.get("PausedUntil") or 0) < until:
                        self._put(entity, row)
                    return
                except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                    continue  # another instance wrote a pause meanwhile: compare with it
        except (AzureError, OSError) as exc:
            self._storage_failed(exc)

    # -- storage plumbing ------------------------------------------------------------------------
    def _workspace(self, workspace_id: str) -> _Workspace:
        with self._lock:
            ws = self._workspaces.get(workspace_id)
            if ws is None:
                ws = self._workspaces[workspace_id] = _Workspace(share=self._static_share())
            return ws

    def _ensure_ready(self) -> None:
        if not self._ready:
            self.storage_operations += 1
            self.ensure_ready()

    def _op(self) -> TableClient:
        """The table, counting one storage operation (the figures report storage cost)."""
        self.storage_operations += 1
        return self._table

    def _put(self, entity: dict[str, Any], row: TableEntity | None) -> None:
        """Create the row, or replace ``row`` only if nobody changed it since it was read (its ETag):
        ``ResourceExistsError`` / ``ResourceModifiedError`` / ``ResourceNotFoundError`` tell the caller
        another instance wrote first."""
        if row is None:
            self._op().create_entity(entity, **_FAST)
        else:
            self._op().update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=row.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
                **_FAST,
            )

    def _degraded(self, now: float) -> bool:
        return now < self._degraded_until

    def _storage_failed(self, exc: BaseException) -> None:
        self.storage_failures += 1
        if not self._degraded(self._clock()):
            log.warning(
                "Dynamics budget storage unavailable (%s); using a static 1/%d share for %.0fs",
                type(exc).__name__,
                self.limits.slots,
                self.limits.storage_retry_s,
            )
        self._degraded_until = self._clock() + self.limits.storage_retry_s


_DAY_JOBS = 50  # jobs kept per day row (the busiest): a day's row stays far below a row's 1 MiB


def _usage_partition(workspace_id: str) -> str:
    """Where a workspace's day rows live: apart from its ledger, which pacing reads whole every few
    seconds."""
    return f"{workspace_id}~usage"


def _jobs_of(row: Any) -> dict[str, list[float]]:
    text = row.get("Jobs") if row else None
    if not text:
        return {}
    try:
        found = json.loads(str(text))
    except ValueError:
        return {}
    return {
        str(k): [float(v[0]), float(v[1])] for k, v in found.items() if isinstance(v, list) and len(v) == 2
    }


def _add_jobs(into: dict[str, list[float]], more: dict[str, list[float]]) -> dict[str, list[float]]:
    result = {k: list(v) for k, v in into.items()}
    for job, (requests, ms) in more.items():
        spent = result.setdefault(job, [0.0, 0.0])
        spent[0] += requests
        spent[1] += ms
    return result


def _jobs_text(jobs: dict[str, list[float]], keep: int = _DAY_JOBS) -> str:
    busiest = sorted(jobs.items(), key=lambda item: item[1][0], reverse=True)[:keep]
    return json.dumps({k: [int(v[0]), round(v[1], 1)] for k, v in busiest}, separators=(",", ":"))


def _totals(requests: int, execution_ms: float, throttled: int, jobs: dict[str, list[float]]) -> UsageTotals:
    return UsageTotals(requests, execution_ms, throttled, {k: (int(v[0]), v[1]) for k, v in jobs.items()})
