"""Process one chunk of engagement events: log each as a Dynamics activity, once, as the right user.

A chunk (``ACTIVITY_CHUNK_SIZE`` events) costs a handful of HTTP requests whatever its size:
1. one ``$batch`` of GETs: the events' contacts by the deterministic ids of contacts the platform exported,
   the activities an earlier attempt created (by their deterministic ids, per table) and the Dynamics
   users who may act; then, only for contacts not found by id but sent with their data, one ``$batch`` of
   the configured contact identifier's queries, and only for those still not found (a name stored as
   ``"  Jane "``, ``"Van  Dyke"``, ``"O’Neill"``) one ``$batch`` of its broader second lookup, as an
   export does (``core/services/rule_lookup.py``, docs/matching.md);
2. one ``CreateMultiple`` per (activity table, acting user) — each acting user's activities are created
   with ``CallerObjectId`` so Dynamics records that user as creator and owner; a failing call is split in
   halves until the bad events are isolated (reported with Dynamics' error), the others are written;
3. one ``UpdateMultiple`` for the contacts (engagement field + campaign properties, changed values only)
   and one for their accounts when the companies tab holds the engagement mapping;
4. one ``UpdateMultiple`` per table closing the new activities (statecode Completed + fitting status).

Contacts not in Dynamics (``syncIdentifiers.exportMissingContacts`` on): between steps 1 and 2, the
contacts of events to log that were not found are exported by the export pipeline itself
(``core/services/activity_contacts.py``), a handful of requests more per chunk that has any; off, their
events are skipped with the reason.

Idempotency: the activity id is ``uuid5(workspace, event id)``. An activity found closed is done: the event
is ``unchanged`` and nothing is written. One found open was created by an attempt that crashed before
closing it: it is finished (contact update, close) and reported ``created``. Closing comes last, so the
engagement field is written once per activity even across crashes. A create that races another attempt
fails as a duplicate and is reported ``unchanged``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.adapters.dataverse.batch import BatchOperation
from core.adapters.dataverse.client import DataverseClient
from core.adapters.dataverse.errors import PRIVILEGE_DENIED, DataverseError, column_in_message, failure_reason
from core.adapters.dataverse.odata import in_filter
from core.adapters.export_store import ExportStore, StoreNames
from core.domain.activities import (
    SIGNAL_KINDS,
    ActivityEvent,
    ActivityOutcome,
    ActivityWrite,
    Actor,
    ContactAction,
    activity_id,
    activity_table,
    build_activity,
    choose_actor,
    choose_linkedin_table,
    contact_export_problem,
    engagement_value,
)
from core.domain.campaign_properties import campaign_values, mapped_columns
from core.domain.catalog import Entity
from core.domain.config import DynamicsConfig, EngagementMapping
from core.domain.connection import (
    DynamicsConnection,
    NotConnected,
    ReconnectRequired,
    TransientTokenError,
)
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.export_job import (
    ChunkState,
    ExportEntity,
    FieldError,
    RecordAction,
    RecordOutcome,
    count_outcomes,
    deterministic_dynamics_id,
    empty_counts,
)
from core.domain.export_plan import DesiredValue, PlanAction, plan_write
from core.domain.lookup_plan import plan_lookups
from core.domain.matching import (
    PARENT_ACCOUNT_VALUE,
    IdentifierConfig,
    MatchStatus,
    duplicate_groups,
    match_records,
    rule_for,
)
from core.services.activity_contacts import ContactToExport, created_earlier, export_contacts
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.export_worker import (
    ChunkMessage,
    ExportWorker,
    ReconnectCheck,
    pause_for_reconnect,
    pause_for_token_trouble,
)
from core.services.jobs.bulk import create_with_own_ids, update_isolating
from core.services.rule_lookup import PREFER_PAGES, batch_get_rows, lookup_operations, match_broadly

log = logging.getLogger(__name__)

ACTIVITY_NAMES = StoreNames(
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
ACTIVITY_SELECT = ["activityid", "statecode", "statuscode"]
USER_SELECT = ["systemuserid", "fullname", "isdisabled", "azureactivedirectoryobjectid"]

ClientFactory = Callable[[str], tuple[DataverseClient, DynamicsConnection]]


@dataclass
class _Event:
    seq: int
    event: ActivityEvent
    contact_data: Mapping[str, Any] | None
    export_as: str | None = None  # the request's first platform contact of the same person (submit)
    contact_id: str | None = None
    table: str | None = None
    actor: Actor | None = None
    write: ActivityWrite | None = None
    action: RecordAction | None = None
    finishing: bool = False  # an earlier attempt created the activity and crashed before closing it
    errors: list[FieldError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Contact:
    platform_id: str
    data: Mapping[str, Any] | None
    dynamics_id: str | None = None
    current: Mapping[str, Any] | None = None
    match: dict[str, Any] | None = None
    new_activities: int = 0
    action: ContactAction | None = None
    # Not in Dynamics and not exported: why (skipped), or what Dynamics refused (failed).
    export_problem: str | None = None
    export_errors: list[FieldError] = field(default_factory=list)
    export_note: str | None = None
    same_as: str | None = None  # the same person as another contact of the chunk (by the identifier)
    export_as: str | None = None  # ... as another contact of the request: exported under its id

    @property
    def export_id(self) -> str:
        """The platform id the contact is exported under (its deterministic Dynamics id)."""
        return self.export_as or self.platform_id


class ActivityWorker:
    def __init__(
        self,
        store: ExportStore,
        client_for: ClientFactory,
        *,
        max_attempts: int = 5,
        metadata: MetadataCache | None = None,
        linkedin_table: str | None = "auto",
        reconnected: ReconnectCheck | None = None,
    ) -> None:
        self._reconnected = reconnected  # re-checked after a chunk pauses (see pause_for_reconnect)
        self._store = store
        self._client_for = client_for
        self._max_attempts = max_attempts
        self._metadata = metadata or MetadataCache()
        self._linkedin_setting = linkedin_table
        self._linkedin_lock = threading.Lock()
        self._linkedin: dict[str, str] = {}
        # The export pipeline, for contacts exported before their activities (exportMissingContacts).
        self.exporter = ExportWorker(store, client_for, max_attempts=max_attempts, metadata=self._metadata)
        self.store = store

    def handle(self, message: ChunkMessage, dequeue_count: int = 1) -> ChunkState:
        """Process one chunk; returns its final state. Raises to have the queue retry it."""
        ws, job_id, index = message.workspace_id, message.job_id, message.chunk
        job = self._store.get_job(ws, job_id)
        if job is None:
            log.warning("activity chunk for an unknown job ignored", extra={"workspace": ws, "job": job_id})
            return ChunkState.FAILED
        status = self._store.get_chunk(ws, job_id, index)
        if status is not None and status.state in (ChunkState.DONE, ChunkState.FAILED):
            return status.state
        retried = status is not None and status.state is ChunkState.RUNNING  # an attempt died midway
        request = self._store.load_request(ws, job_id, staging=job.staging)
        staged = self._store.try_load_chunk(ws, job_id, index, staging=job.staging)
        if staged is None:
            log.warning(
                "activity chunk the job does not have ignored", extra={"workspace": ws, "job": job_id}
            )
            return ChunkState.FAILED
        self._store.put_chunk(ws, job_id, index, ChunkState.RUNNING, attempts=dequeue_count)
        try:
            client, connection = self._client_for(ws)
            run = ChunkRun(
                worker=self,
                client=client,
                connection=connection,
                workspace_id=ws,
                job_id=job_id,
                user_id=str(request.get("userId") or job.user_id),
                retried=retried,
                config=DynamicsConfig.model_validate(request["config"]),
                identities={
                    str(i["id"]): str(i["userId"])
                    for i in request.get("identities") or []
                    if isinstance(i, Mapping) and i.get("userId")
                },
                items=[
                    _Event(
                        int(s["seq"]),
                        ActivityEvent.from_json(s["event"]),
                        s.get("contact"),
                        export_as=s.get("exportAs"),
                    )
                    for s in staged
                ],
            )
            outcomes = run.execute(lambda done: self._save(ws, job_id, done, retried=retried))
        except ReconnectRequired as exc:
            log.info(
                "activities paused until Dynamics is reconnected", extra={"workspace": ws, "job": job_id}
            )
            return pause_for_reconnect(self._store, ws, job_id, index, exc, self._reconnected)
        except NotConnected:
            self._fail_chunk(ws, job_id, index, staged, "Dynamics is not connected for this workspace")
            return ChunkState.FAILED
        except Exception as exc:
            if dequeue_count >= self._max_attempts and isinstance(exc, TransientTokenError):
                return pause_for_token_trouble(self._store, ws, job_id, index, exc)
            if dequeue_count >= self._max_attempts:
                reason = failure_reason(exc)
                log.error("activity chunk failed for good", extra={"workspace": ws, "job": job_id})
                self._fail_chunk(
                    ws, job_id, index, staged, f"gave up after {dequeue_count} attempts: {reason}"
                )
                return ChunkState.FAILED
            raise
        self._store.finish_chunk(ws, job_id, index, ChunkState.DONE, count_outcomes(outcomes), len(outcomes))
        return ChunkState.DONE

    def _earlier(self, ws: str, job_id: str, seqs: set[int]) -> dict[int, dict[str, Any]]:
        """Outcomes an earlier attempt saved for these events (only this chunk's row-key range)."""
        if not seqs:
            return {}
        low, high = min(seqs), max(seqs)
        page = self._store.records_page(
            ws, job_id, action=None, cursor=f"{low - 1:07d}" if low > 0 else None, limit=high - low + 1
        )
        return {int(o["seq"]): o for o in page.records if int(o.get("seq", -1)) in seqs}

    def _save(self, ws: str, job_id: str, outcomes: Sequence[RecordOutcome], *, retried: bool) -> None:
        """Save per-event outcomes. On a retried chunk, an event an earlier attempt reported ``created``
        (and closed before dying) stays ``created`` instead of turning ``unchanged``."""
        if retried and outcomes:
            earlier = self._earlier(ws, job_id, {o.seq for o in outcomes})
            for outcome in outcomes:
                before = earlier.get(outcome.seq)
                created = before is not None and before.get("action") == RecordAction.CREATED.value
                if created and outcome.action is RecordAction.UNCHANGED:
                    outcome.action = RecordAction.CREATED  # logged by the attempt that died
        self._store.save_outcomes(ws, job_id, outcomes)

    def fail_poisoned(self, message: ChunkMessage, reason: str) -> None:
        """A message that exhausted its deliveries: the chunk fails with the reason, nothing silent."""
        job = self._store.get_job(message.workspace_id, message.job_id)
        if job is None:
            return  # names a job this workspace does not have: nothing to fail
        status = self._store.get_chunk(message.workspace_id, message.job_id, message.chunk)
        if status is not None and status.state in (ChunkState.DONE, ChunkState.FAILED):
            return
        staged = self._store.try_load_chunk(
            message.workspace_id, message.job_id, message.chunk, staging=job.staging
        )
        if staged is None:
            return
        self._fail_chunk(message.workspace_id, message.job_id, message.chunk, staged, reason)

    def _fail_chunk(
        self, ws: str, job_id: str, index: int, staged: Sequence[Mapping[str, Any]], reason: str
    ) -> None:
        """Fail the chunk's events with ``reason`` — except those an earlier attempt already logged or
        settled (created / unchanged / skipped): they are in Dynamics, or needed nothing, whatever
        happened to the attempt afterwards."""
        earlier = self._earlier(ws, job_id, {int(s["seq"]) for s in staged})
        settled = (RecordAction.CREATED.value, RecordAction.UNCHANGED.value, RecordAction.SKIPPED.value)
        counts = empty_counts()
        outcomes = []
        for s in staged:
            before = earlier.get(int(s["seq"]))
            if before is not None and before.get("action") in settled:
                counts[str(before["action"])] += 1
                continue
            outcomes.append(
                RecordOutcome(
                    int(s["seq"]),
                    str(s["event"].get("id", "")),
                    RecordAction.FAILED,
                    errors=[FieldError("", reason)],
                )
            )
        self._store.save_outcomes(ws, job_id, outcomes)
        counts["failed"] += len(outcomes)
        self._store.finish_chunk(ws, job_id, index, ChunkState.FAILED, counts, len(staged), error=reason)

    def metadata(self, client: DataverseClient, table: str) -> dict[str, DynamicsColumn]:
        return self._metadata.columns(client, table)

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


class ChunkRun:
    def __init__(
        self,
        *,
        worker: ActivityWorker,
        client: DataverseClient,
        connection: DynamicsConnection,
        workspace_id: str,
        config: DynamicsConfig,
        identities: Mapping[str, str],
        items: list[_Event],
        job_id: str = "",
        user_id: str = "",
        retried: bool = False,
    ) -> None:
        self.worker = worker
        self.client = client
        self.connection = connection
        self.ws = workspace_id
        self.job_id = job_id
        self.user_id = user_id
        self.retried = retried
        self.config = config
        self.identities = identities
        self.items = items
        self.identifiers = IdentifierConfig.from_model(config.sync_identifiers)
        self._existing: dict[str, Mapping[str, Any]] = {}
        self._identity_users: dict[str, str] = {}
        self._user_users: dict[str, str] = {}

    def execute(self, save: Callable[[Sequence[RecordOutcome]], None]) -> list[RecordOutcome]:
        """Log the chunk's events; ``save`` stores outcomes (called before closing, see below)."""
        linkedin = self.worker.linkedin_table(self.client)
        for item in self.items:
            item.table = activity_table(item.event.kind, linkedin)
        tables = sorted({i.table for i in self.items if i.table})
        contact_columns = self.worker.metadata(self.client, "contact")
        table_columns = {t: self.worker.metadata(self.client, t) for t in tables}
        contacts = self._contacts()
        users, integration_id = self._lookups(contacts, tables, contact_columns)
        for contact in contacts.values():
            if contact.dynamics_id is not None:
                contact.action = ContactAction.EXISTING
        if self.config.sync_identifiers.export_missing_contacts:
            self._export_missing(contacts)
        self._plan(contacts, users, integration_id, table_columns)
        creates = [i for i in self.items if i.write is not None and i.action is RecordAction.CREATED]
        self._create([i for i in creates if not i.finishing])
        self._update_contacts(contacts)
        # Saved before closing: a crash after the close still finds "created" on the retry, and a crash
        # before it finds the activities open and finishes them. One Table write per event, not two.
        outcomes = {item.seq: self._outcome(item, contacts) for item in self.items}
        save(list(outcomes.values()))
        closing = [i for i in creates if not i.errors and i.action is RecordAction.CREATED]
        self._close(closing)
        unclosed = [self._outcome(item, contacts) for item in closing if item.errors]
        if unclosed:
            save(unclosed)
            outcomes.update((o.seq, o) for o in unclosed)
        return list(outcomes.values())

    # -- contacts ---------------------------------------------------------------------------------
    def _contacts(self) -> dict[str, _Contact]:
        contacts: dict[str, _Contact] = {}
        for item in self.items:
            contact = contacts.setdefault(item.event.contact_id, _Contact(item.event.contact_id, None))
            if contact.data is None and isinstance(item.contact_data, Mapping):
                contact.data = item.contact_data
            if contact.export_as is None and item.export_as and item.export_as != contact.platform_id:
                contact.export_as = item.export_as
        return contacts

    def _contact_select(self, contact_columns: Mapping[str, DynamicsColumn]) -> list[str]:
        tab = self.config.field_mapping.contacts
        wanted = [m.dynamics_field for m in tab if isinstance(m, EngagementMapping)]
        wanted += list(mapped_columns(self.config.campaign_mapping).values())
        return [c for c in dict.fromkeys(wanted) if c in contact_columns]

    def _lookups(
        self,
        contacts: Mapping[str, _Contact],
        tables: Sequence[str],
        contact_columns: Mapping[str, DynamicsColumn],
    ) -> tuple[dict[str, Mapping[str, Any]], str]:
        """One $batch: contacts the platform exported (deterministic ids), existing activities, acting
        users; then, only for contacts not found that way, one $batch of the identifier's queries
        (``contains`` on URLs and name/company lists are the expensive reads: skip them when we can) and,
        only for contacts those leave unmatched, one $batch of the broader second lookup."""
        rule = rule_for(Entity.CONTACT, self.identifiers)
        with_data = [c for c in contacts.values() if c.data is not None]
        current = [*self._contact_select(contact_columns), PARENT_ACCOUNT_VALUE]
        select = list(dict.fromkeys(["contactid", *current]))
        # A contact exported by the platform has its own deterministic id, or (exported for events) that of
        # the request's first platform contact of the same person.
        own_ids: dict[str, list[_Contact]] = {}
        for c in contacts.values():
            for platform_id in dict.fromkeys([c.platform_id, c.export_id]):
                own_ids.setdefault(
                    deterministic_dynamics_id(self.ws, ExportEntity.CONTACTS, platform_id), []
                ).append(c)
        gets = [
            BatchOperation(
                "GET",
                "contacts",
                headers=PREFER_PAGES,
                params=[("$select", ",".join(select)), ("$filter", in_filter("contactid", sorted(own_ids)))],
            )
        ]
        activity_sets: list[str] = []
        for table in tables:
            ids = sorted({activity_id(self.ws, i.event.id) for i in self._with_table(table)})
            if not ids:
                continue
            entity_set = self.client.entity_set_name(table)
            activity_sets.append(table)
            gets.append(
                BatchOperation(
                    "GET",
                    entity_set,
                    headers=PREFER_PAGES,
                    params=[
                        ("$select", ",".join(ACTIVITY_SELECT)),
                        ("$filter", in_filter("activityid", ids)),
                    ],
                )
            )
        mapping = self.config.user_mapping
        integration_id = (self.connection.dynamics_user_id or self.client.who_am_i().user_id).lower()
        candidates = {integration_id}
        identity_users = {m.identity_id: str(m.dynamics_user_id) for m in mapping.identities}
        user_users = {m.user_id: str(m.dynamics_user_id) for m in mapping.users}
        for item in self.items:
            if item.event.identity_id in identity_users:
                candidates.add(identity_users[item.event.identity_id].lower())
            platform_user = self._platform_user(item.event)
            if platform_user in user_users:
                candidates.add(user_users[platform_user].lower())
        if mapping.default_owner_id:
            candidates.add(str(mapping.default_owner_id).lower())
        gets.append(
            BatchOperation(
                "GET",
                "systemusers",
                headers=PREFER_PAGES,
                params=[
                    ("$select", ",".join(USER_SELECT)),
                    ("$filter", in_filter("systemuserid", sorted(candidates))),
                ],
            )
        )
        pages = self._batch_gets(gets)
        own_rows = {str(r["contactid"]).lower(): r for r in pages[0]}
        for own_id, owners in own_ids.items():
            row = own_rows.get(own_id)
            for contact in owners if row is not None else []:
                if contact.dynamics_id is not None and contact.dynamics_id != own_id:
                    continue  # found under its own id: that one wins
                contact.dynamics_id, contact.current = own_id, row
                contact.match = {"status": "matched", "rule": "created_by_platform", "dynamicsId": own_id}
        self._existing = {}
        for offset, _table in enumerate(activity_sets):
            for row in pages[1 + offset]:
                self._existing[str(row["activityid"]).lower()] = row
        users: dict[str, Mapping[str, Any]] = {
            str(r["systemuserid"]).lower(): r for r in pages[1 + len(activity_sets)]
        }
        pending = [c for c in with_data if c.dynamics_id is None]
        if pending:
            records = [c.data or {} for c in pending]
            plan = plan_lookups(Entity.CONTACT, rule, records, extra_select=list(current))
            rule_select = list(plan.select)
            queries = lookup_operations(plan)
            candidates_rows = [row for page in self._batch_gets(queries) for row in page] if queries else []
            results = match_records(rule, records, candidates_rows, id_column="contactid")
            # Stored with extra spaces or another apostrophe ("  Jane ", "Van  Dyke"): the broad lookup.
            candidates_rows += match_broadly(
                Entity.CONTACT,
                rule,
                records,
                results,
                range(len(pending)),
                select=rule_select,
                batch_gets=self._batch_gets,
                id_column="contactid",
            )
            by_id = {str(r["contactid"]).lower(): r for r in candidates_rows}
            for contact, result in zip(pending, results, strict=True):
                contact.match = result.to_json()
                if result.status is not MatchStatus.NONE and result.dynamics_id:
                    contact.dynamics_id = result.dynamics_id.lower()
                    contact.current = by_id.get(contact.dynamics_id)
        self._identity_users, self._user_users = identity_users, user_users
        return users, integration_id

    def _export_missing(self, contacts: Mapping[str, _Contact]) -> None:
        """Export the contacts of events to log that are not in Dynamics (exportMissingContacts)."""
        first: dict[str, _Event] = {}  # each contact's first event to log: its checkpoint row, its owner
        for item in self.items:
            if item.table is not None:
                first.setdefault(item.event.contact_id, item)
        # Found by its export id: created by an earlier attempt of this chunk (one that died, or was
        # paused for reconnect), or there before? The export's checkpoints of this chunk say.
        own = [
            c
            for c in contacts.values()
            if c.platform_id in first and (c.match or {}).get("rule") == "created_by_platform"
        ]
        if own:
            done = created_earlier(
                self.worker.store, self.ws, self.job_id, [first[c.platform_id].seq for c in own]
            )
            for contact in own:
                if contact.export_id in done:
                    contact.action = ContactAction.CREATED
        ready: list[_Contact] = []
        for platform_id in first:
            contact = contacts[platform_id]
            if contact.dynamics_id is not None:
                continue
            contact.export_problem = contact_export_problem(platform_id, contact.data)
            if contact.export_problem is None:
                ready.append(contact)
        # Two platform contacts the identifier says are one person: exported once, both events regard it.
        rule = rule_for(Entity.CONTACT, self.identifiers)
        for group in duplicate_groups(rule, [c.data or {} for c in ready]):
            for index in group[1:]:
                ready[index].same_as = ready[group[0]].platform_id
        exported_as: dict[str, _Contact] = {}  # the submit's grouping too (it saw the whole request)
        for contact in ready:
            keeper = exported_as.setdefault(contact.export_id, contact)
            if keeper is not contact and contact.same_as is None:
                contact.same_as = keeper.same_as or keeper.platform_id
        to_export = [c for c in ready if c.same_as is None]
        if not to_export:
            return
        results = export_contacts(
            exporter=self.worker.exporter,
            store=self.worker.store,
            client=self.client,
            connection=self.connection,
            workspace_id=self.ws,
            job_id=self.job_id,
            config=self.config,
            contacts=[
                ContactToExport(
                    c.export_id,
                    c.data or {},
                    first[c.platform_id].seq,
                    self._platform_user(first[c.platform_id].event) or self.user_id,
                )
                for c in to_export
            ],
        )
        for contact in to_export:
            result = results[contact.export_id]
            contact.match = result.match
            contact.export_note = result.note
            if contact.export_as is not None and result.dynamics_id:
                contact.export_note = (
                    f"same contact as {contact.export_as} in this request (by the configured identifier): "
                    "exported once, under that contact's id"
                )
            if result.dynamics_id:
                contact.dynamics_id, contact.current = result.dynamics_id.lower(), result.current
                created = result.action is RecordAction.CREATED
                contact.action = ContactAction.CREATED if created else ContactAction.UPDATED
            elif result.action is RecordAction.FAILED:
                contact.export_errors = [
                    FieldError(e.field, f"contact {contact.platform_id} not exported: {e.message}", e.code)
                    for e in result.errors
                ]
            else:
                reasons = [f"{e.field}: {e.message}" for e in result.errors]
                why = "; ".join(reasons + ([result.note] if result.note else []))
                contact.export_problem = (
                    f"contact {contact.platform_id} is not in Dynamics and was not exported: "
                    f"{why or result.action.value}"
                )
        for contact in ready:
            if contact.same_as is not None:
                keeper = contacts[contact.same_as]
                contact.dynamics_id, contact.current = keeper.dynamics_id, keeper.current
                contact.action, contact.match = keeper.action, keeper.match
                contact.export_problem, contact.export_errors = keeper.export_problem, keeper.export_errors
                if keeper.dynamics_id is not None:
                    contact.export_note = (
                        f"same contact as {keeper.platform_id} by the configured identifier: exported once"
                    )

    def _not_found(self, contact: _Contact, item: _Event) -> str:
        if contact.data is None:
            why = (
                f"contact {contact.platform_id} is not in Dynamics (not exported by the platform, "
                "and no contact data was sent to match it with the contact identifier)"
            )
        else:
            why = f"contact {contact.platform_id} is not in Dynamics (no match for the contact identifier)"
        if not self.config.sync_identifiers.export_missing_contacts:
            return why + "; syncIdentifiers.exportMissingContacts would export it first"
        if item.table is None:
            return why + "; a signal alone does not export a contact"
        return why

    def _with_table(self, table: str) -> list[_Event]:
        return [i for i in self.items if i.table == table]

    def _platform_user(self, event: ActivityEvent) -> str | None:
        if event.user_id:
            return event.user_id
        return self.identities.get(event.identity_id) if event.identity_id else None

    def _batch_gets(self, operations: Sequence[BatchOperation]) -> list[list[dict[str, Any]]]:
        return batch_get_rows(self.client, operations)

    # -- planning ---------------------------------------------------------------------------------
    def _plan(
        self,
        contacts: Mapping[str, _Contact],
        users: Mapping[str, Mapping[str, Any]],
        integration_id: str,
        table_columns: Mapping[str, Mapping[str, DynamicsColumn]],
    ) -> None:
        mapping = self.config.user_mapping
        default_owner = str(mapping.default_owner_id) if mapping.default_owner_id else None
        first_seq: dict[str, int] = {}
        for item in self.items:
            event = item.event
            contact = contacts[event.contact_id]
            item.contact_id = contact.dynamics_id
            if event.id in first_seq:
                item.action = RecordAction.UNCHANGED
                item.notes.append(
                    f"same event as position {first_seq[event.id]} of this request: logged once"
                )
                continue
            first_seq[event.id] = item.seq
            if contact.export_note:
                item.notes.append(f"contact: {contact.export_note}")
            if contact.dynamics_id is None:
                item.action = RecordAction.SKIPPED
                item.errors.extend(contact.export_errors)  # Dynamics refused to create it: failed
                if contact.export_problem is not None:
                    item.notes.append(contact.export_problem)
                elif not contact.export_errors:
                    item.notes.append(self._not_found(contact, item))
                continue
            if event.kind in SIGNAL_KINDS or item.table is None:
                item.action = RecordAction.SKIPPED
                item.notes.append(
                    f"{event.kind.value} is a signal, not an activity: it counts in the campaign properties"
                )
                continue
            item.actor = choose_actor(
                identity_id=event.identity_id,
                user_id=self._platform_user(event),
                identity_users=self._identity_users,
                user_users=self._user_users,
                default_owner_id=default_owner,
                integration_user_id=integration_id,
                systemusers=users,
            )
            item.write = build_activity(
                event,
                workspace_id=self.ws,
                table=item.table,
                entity_set=self.client.entity_set_name(item.table),
                contact_id=contact.dynamics_id,
                actor=item.actor,
                columns=table_columns[item.table],
            )
            existing = self._existing.get(item.write.activity_id)
            if existing is not None and existing.get("statecode") not in (0, None):
                item.action = RecordAction.UNCHANGED
                item.notes.append("already logged in Dynamics")
                continue
            item.action = RecordAction.CREATED
            contact.new_activities += 1
            if existing is not None:
                item.finishing = True
                item.notes.append("finishing the activity an interrupted attempt created")

    # -- writing ----------------------------------------------------------------------------------
    def _create(self, items: Sequence[_Event]) -> None:
        groups: dict[tuple[str, str | None], list[_Event]] = {}
        for item in items:
            if item.finishing or item.write is None or item.actor is None:
                continue
            groups.setdefault((item.write.table, item.actor.caller_object_id), []).append(item)
        for (table, caller), group in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or "")):
            self._create_group(table, caller, group)

    def _create_group(self, table: str, caller: str | None, group: Sequence[_Event]) -> None:
        report = create_with_own_ids(
            self.client,
            table,
            "activityid",
            [i.write.payload for i in group if i.write is not None],
            caller_object_id=caller,
        )
        for index in report.taken:
            group[index].action = RecordAction.UNCHANGED
            group[index].notes.append("already logged in Dynamics (by a concurrent attempt)")
        for index, exc in report.refused.items():
            item = group[index]
            column = column_in_message(exc.message or "")
            item.errors.append(FieldError(column, _error_message(exc, item.actor), exc.code))

    def _update_contacts(self, contacts: Mapping[str, _Contact]) -> None:
        contact_columns = self.worker.metadata(self.client, "contact")
        engagement, engagement_problem = engagement_value(self.config.field_mapping.contacts, contact_columns)
        updates: list[tuple[_Contact, dict[str, Any]]] = []
        problems: dict[str, list[str]] = {}
        # Only activities this run really logged count (not creates that failed or lost a race).
        for contact in contacts.values():
            contact.new_activities = 0
        for item in self.items:
            if item.action is RecordAction.CREATED and not item.errors:
                contact = contacts[item.event.contact_id]
                contacts[contact.same_as or contact.platform_id].new_activities += 1
        for contact in contacts.values():
            if contact.dynamics_id is None or contact.same_as is not None:
                continue  # (a contact exported as another one: that one's update covers the record)
            values: list[DesiredValue] = []
            if contact.new_activities and engagement is not None:
                values.append(engagement)
            if contact.new_activities and engagement_problem is not None:
                problems.setdefault(contact.platform_id, []).append(engagement_problem.message)
            if contact.data is not None:
                campaign, campaign_problems = campaign_values(
                    contact.data, self.config.campaign_mapping, contact_columns
                )
                values.extend(campaign)
                for problem in campaign_problems:
                    problems.setdefault(contact.platform_id, []).append(f"{problem.field}: {problem.message}")
            plan = plan_write(contact.current or {}, values)
            if plan.action is PlanAction.UPDATE:
                updates.append((contact, plan.payload))
        failed = self._update_many("contact", "contactid", [(c.dynamics_id or "", p) for c, p in updates])
        for index, message in failed.items():
            contact = updates[index][0]
            problems.setdefault(contact.platform_id, []).append(f"contact not updated: {message}")
        self._company_engagement(contacts)
        for item in self.items:
            for message in problems.get(item.event.contact_id, []):
                if item.action is RecordAction.CREATED:
                    item.notes.append(message)

    def _company_engagement(self, contacts: Mapping[str, _Contact]) -> None:
        """An engagement mapping in the companies tab: the contact's account gets the value."""
        tab = self.config.field_mapping.companies
        if not any(isinstance(m, EngagementMapping) for m in tab):
            return
        value, problem = engagement_value(tab, self.worker.metadata(self.client, "account"))
        accounts = {
            str(c.current.get(PARENT_ACCOUNT_VALUE)).lower()
            for c in contacts.values()
            if c.new_activities and c.current and c.current.get(PARENT_ACCOUNT_VALUE)
        }
        if value is None or not accounts:
            if problem is not None:
                log.warning("company engagement field not written: %s", problem.message)
            return
        self._update_many(
            "account", "accountid", [(a, {value.column: value.value}) for a in sorted(accounts)]
        )

    def _update_many(
        self, table: str, id_column: str, updates: Sequence[tuple[str, dict[str, Any]]]
    ) -> dict[int, str]:
        records = [{**payload, id_column: record_id} for record_id, payload in updates]
        refused = update_isolating(self.client, table, records)
        return {i: exc.message or str(exc) for i, exc in refused.items()}

    def _close(self, items: Sequence[_Event]) -> None:
        by_table: dict[str, list[_Event]] = {}
        for item in items:
            if item.write is not None:
                by_table.setdefault(item.write.table, []).append(item)
        for table, group in sorted(by_table.items()):
            updates = [(i.write.activity_id, dict(i.write.close)) for i in group if i.write is not None]
            for index, message in self._update_many(table, "activityid", updates).items():
                group[index].errors.append(FieldError("statecode", f"logged but not closed: {message}"))

    # -- reporting --------------------------------------------------------------------------------
    def _outcome(self, item: _Event, contacts: Mapping[str, _Contact]) -> ActivityOutcome:
        action = item.action or RecordAction.SKIPPED
        if item.errors:
            action = RecordAction.FAILED
        logged = action in (RecordAction.CREATED, RecordAction.UNCHANGED) and item.write is not None
        outcome = ActivityOutcome(
            item.seq,
            item.event.id,
            action,
            item.write.activity_id if logged and item.write else None,
            table=item.table if item.write else None,
            actor=item.actor,
            contact_id=item.contact_id,
            contact_action=contacts[item.event.contact_id].action or ContactAction.NOT_FOUND,
        )
        outcome.match = contacts[item.event.contact_id].match
        outcome.errors = list(item.errors)
        if item.notes:
            outcome.note = "; ".join(item.notes)
        return outcome


def _error_message(exc: DataverseError, actor: Actor | None) -> str:
    message = exc.message or str(exc)
    if exc.code == PRIVILEGE_DENIED and actor is not None:
        return f"Dynamics user {actor.systemuser_id} ({actor.source.value}) lacks the privilege: {message}"
    return message
