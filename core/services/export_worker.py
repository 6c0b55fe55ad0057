"""Process one chunk of an export job: match, map and write records into Dynamics.

A chunk (``DEFAULT_CHUNK_SIZE`` records) costs a handful of HTTP requests whatever its size:
1. one ``$batch`` of GETs fetching every candidate (identifier lookups from ``lookup_plan``, records we
   created before by their deterministic ids, the owners to check);
2. for contacts with "associate with companies": the same for their companies, then one
   ``CreateMultiple`` for companies missing in Dynamics (document: existing companies are not updated by
   a contacts export; export companies for that);
3. one ``CreateMultiple`` and one ``UpdateMultiple`` for the records themselves (a ``$batch`` where a
   table lacks the bulk messages). A failing bulk call is split in halves until the bad records are
   isolated; they are reported with Dynamics' error and the others are written.

Idempotency: every create carries a deterministic primary key (workspace + entity + platform id), so a
redelivered or crashed chunk finds what an earlier attempt created (it is looked up by id first) and a
create that races another attempt fails as a duplicate and turns into an update. Before writing, the
records about to be created are checkpointed as ``creating`` so a crash between the write and the final
report does not turn "created" into "unchanged" on the retry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from core.adapters.dataverse.batch import BatchOperation
from core.adapters.dataverse.client import DataverseClient
from core.adapters.dataverse.errors import PRIVILEGE_DENIED, DataverseError, column_in_message, failure_reason
from core.adapters.dataverse.odata import in_filter
from core.adapters.dynamics_budget import DynamicsBudget
from core.adapters.export_store import ExportStore
from core.domain.campaign_properties import campaign_values
from core.domain.campaign_properties import mapped_columns as mapped_campaign_columns
from core.domain.catalog import Entity, resolve_field
from core.domain.config import (
    DynamicsConfig,
    EngagementMapping,
    FixedValueMapping,
    ManualExportMapping,
    Mode,
    PlatformFieldMapping,
)
from core.domain.connection import (
    DynamicsConnection,
    NotConnected,
    ReconnectRequired,
    TokenConfigurationError,
    TransientTokenError,
)
from core.domain.conversion import NO_VALUE, ConversionError, convert
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.export_job import (
    ChunkState,
    ExportEntity,
    FieldError,
    RecordAction,
    RecordOutcome,
    count_outcomes,
    deterministic_dynamics_id,
)
from core.domain.export_plan import (
    DesiredLink,
    DesiredValue,
    OwnerChoice,
    OwnerSource,
    PlanAction,
    choose_owner,
    plan_write,
)
from core.domain.lookup_plan import plan_lookups
from core.domain.matching import (
    ID_COLUMN,
    PARENT_ACCOUNT_VALUE,
    TABLE,
    IdentifierConfig,
    MatchStatus,
    match_records,
    platform_value,
    rule_for,
)
from core.domain.normalize import domain_any_extension_key, normalize_company_name, registrable_domain
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.jobs.bulk import create_with_own_ids, update_isolating
from core.services.rule_lookup import PREFER_PAGES, batch_get_rows, lookup_operations, match_broadly

log = logging.getLogger(__name__)


ClientFactory = Callable[[str], tuple[DataverseClient, DynamicsConnection]]
# (workspace, the ReconnectRequired that paused a chunk) -> connected again by a newer connection?
ReconnectCheck = Callable[[str, ReconnectRequired], bool]


def pause_for_reconnect(
    store: ExportStore,
    ws: str,
    job_id: str,
    index: int,
    exc: ReconnectRequired,
    reconnected: ReconnectCheck | None,
) -> ChunkState:
    """Write the chunk ``paused_reconnect``, mark the workspace paused, then look at the connection again:
    an admin may have reconnected while this chunk was still running, after the reconnect's resume scan
    skipped it. Then the chunk is re-queued here (at most once: ``requeue_paused`` is conditional). The
    marker lets the token timer resume it should this check fail or not run. A failing marker write
    raises: the message is redelivered and the chunk paused again, never left unmarked."""
    store.put_chunk(ws, job_id, index, ChunkState.PAUSED_RECONNECT, error=f"reconnect: {exc.reason}")
    store.mark_paused(ws)
    if reconnected is None:
        return ChunkState.PAUSED_RECONNECT
    try:
        if reconnected(ws, exc) and store.requeue_paused(ws, job_id, index):
            log.info("reconnected while the chunk paused: re-queued", extra={"workspace": ws, "job": job_id})
            return ChunkState.QUEUED
    except Exception:
        log.exception(
            "paused chunk: connection re-check failed; the token timer resumes it",
            extra={"workspace": ws, "job": job_id},
        )
    return ChunkState.PAUSED_RECONNECT


def pause_for_token_trouble(
    store: ExportStore, ws: str, job_id: str, index: int, exc: TransientTokenError
) -> ChunkState:
    """The last delivery still could not get a token: Microsoft sign-in or Key Vault did not answer, or
    this deployment's own setting (``TokenConfigurationError.setting``) is refused. The records are not at
    fault, so the chunk is kept, paused and marked, instead of failed; each token timer run resumes marked
    work of connected workspaces, so it goes on once the outage ends or the setting is fixed. The
    connection is left alone (no reconnect, no notice)."""
    if isinstance(exc, TokenConfigurationError):
        why = f"{exc.setting} is misconfigured on this deployment"
    else:
        why = "Microsoft sign-in or the token store (Key Vault) did not answer"
    store.put_chunk(
        ws, job_id, index, ChunkState.PAUSED_RECONNECT, error=f"paused: {why}; resumed by the token timer"
    )
    store.mark_paused(ws)
    log.error("chunk paused: %s; the token timer resumes it", why, extra={"workspace": ws, "job": job_id})
    return ChunkState.PAUSED_RECONNECT


@dataclass(frozen=True)
class ChunkMessage:
    workspace_id: str
    job_id: str
    chunk: int

    @classmethod
    def parse(cls, body: str | bytes) -> ChunkMessage:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("export message must be a JSON object")
        workspace_id, job_id, chunk = data.get("workspaceId"), data.get("jobId"), data.get("chunk")
        if not isinstance(workspace_id, str) or not isinstance(job_id, str) or not isinstance(chunk, int):
            raise ValueError("export message needs workspaceId, jobId and chunk")
        return cls(workspace_id, job_id, chunk)


@dataclass(eq=False)  # identity semantics: items key the per-record failure maps
class ExportItem:
    """One record moving through the chunk."""

    seq: int
    platform_id: str
    data: Mapping[str, Any]
    dynamics_id: str | None = None
    current: Mapping[str, Any] | None = None
    match: dict[str, Any] | None = None
    values: list[DesiredValue] = field(default_factory=list)
    links: list[DesiredLink] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outcome: RecordOutcome | None = None
    has_record_value: bool = False  # a value from the record itself (not only fixed/manual constants)


class ExportWorker:
    def __init__(
        self,
        store: ExportStore,
        client_for: ClientFactory,
        *,
        max_attempts: int = 5,
        metadata: MetadataCache | None = None,
        budget: DynamicsBudget | None = None,
        reconnected: ReconnectCheck | None = None,
    ) -> None:
        self._reconnected = reconnected
        self._store = store
        self._client_for = client_for
        self._max_attempts = max_attempts
        self._metadata = metadata or MetadataCache()
        # Shared with the other instances exporting for the same workspace (same Dynamics user).
        self._budget = budget

    def handle(self, message: ChunkMessage, dequeue_count: int = 1) -> ChunkState:
        """Process one chunk; returns its final state. Raises to have the queue retry it."""
        ws, job_id, index = message.workspace_id, message.job_id, message.chunk
        job = self._store.get_job(ws, job_id)
        if job is None:
            log.warning("export chunk for an unknown job ignored", extra={"workspace": ws, "job": job_id})
            return ChunkState.FAILED
        status = self._store.get_chunk(ws, job_id, index)
        if status is not None and status.state in (ChunkState.DONE, ChunkState.FAILED):
            return status.state  # a redelivered message for finished work: nothing to do
        request = self._store.load_request(ws, job_id, staging=job.staging)
        staged = self._store.try_load_chunk(ws, job_id, index, staging=job.staging)
        if staged is None:
            log.warning("export chunk the job does not have ignored", extra={"workspace": ws, "job": job_id})
            return ChunkState.FAILED
        self._store.put_chunk(ws, job_id, index, ChunkState.RUNNING, attempts=dequeue_count)
        run: ChunkRun | None = None
        try:
            client, connection = self._client_for(ws)
            run = ChunkRun(
                worker=self,
                store=self._store,
                client=client,
                connection=connection,
                workspace_id=ws,
                job_id=job_id,
                entity=ExportEntity(job.entity),
                config=DynamicsConfig.model_validate(request["config"]),
                manual_values=dict(request.get("manualValues") or {}),
                user_id=str(request.get("userId") or job.user_id),
                dry_run=bool(request.get("dryRun")),
                items=[ExportItem(int(s["seq"]), str(s["record"]["id"]), s["record"]) for s in staged],
            )
            with self._budget.working(ws) if self._budget is not None else nullcontext():
                outcomes = run.execute()
        except ReconnectRequired as exc:
            log.info("export paused until Dynamics is reconnected", extra={"workspace": ws, "job": job_id})
            if run is not None:
                run.save_confirmed_creates()
            self._unmark_creating(ws, job_id, staged)
            return pause_for_reconnect(self._store, ws, job_id, index, exc, self._reconnected)
        except NotConnected:
            self._fail_chunk(ws, job_id, index, staged, "Dynamics is not connected for this workspace")
            return ChunkState.FAILED
        except Exception as exc:
            if run is not None:
                run.save_confirmed_creates()
            if dequeue_count >= self._max_attempts and isinstance(exc, TransientTokenError):
                self._unmark_creating(ws, job_id, staged)
                return pause_for_token_trouble(self._store, ws, job_id, index, exc)
            if dequeue_count >= self._max_attempts:
                reason = failure_reason(exc)
                log.error("export chunk failed for good", extra={"workspace": ws, "job": job_id})
                self._fail_chunk(
                    ws, job_id, index, staged, f"gave up after {dequeue_count} attempts: {reason}"
                )
                return ChunkState.FAILED
            raise
        # What an earlier attempt wrote (it may have created records this run now finds unchanged). The
        # first attempt has nothing to carry over: no need to read back its own checkpoints.
        first_attempt = status is not None and status.attempts == 0
        previous = (
            {} if first_attempt else {int(o["seq"]): o for o in self._previous_outcomes(ws, job_id, staged)}
        )
        for outcome in outcomes:
            _carry_over(previous.get(outcome.seq), outcome)
        self._store.save_outcomes(ws, job_id, outcomes)
        self._store.finish_chunk(ws, job_id, index, ChunkState.DONE, count_outcomes(outcomes), len(outcomes))
        return ChunkState.DONE

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

    def _previous_outcomes(
        self, ws: str, job_id: str, staged: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        if not staged:
            return []
        wanted = {int(s["seq"]) for s in staged}
        # Only this chunk's range of row keys (seq, 7 digits): reading the whole job here made every
        # chunk cost O(records already exported), i.e. O(n^2) for a job.
        low, high = min(wanted), max(wanted)
        page = self._store.records_page(
            ws, job_id, action=None, cursor=f"{low - 1:07d}" if low > 0 else None, limit=high - low + 1
        )
        return [o for o in page.records if int(o.get("seq", -1)) in wanted]

    def _fail_chunk(
        self, ws: str, job_id: str, index: int, staged: Sequence[Mapping[str, Any]], reason: str
    ) -> None:
        """The chunk ends failed: what earlier attempts finished keeps its outcome (and counts); the
        rest is reported failed with the reason. A create that was under way may have reached Dynamics:
        say so, with the id a re-export will update (deterministic, so never a duplicate)."""
        previous = {int(o["seq"]): o for o in self._previous_outcomes(ws, job_id, staged)}
        final = {a.value for a in RecordAction} - {RecordAction.CREATING.value, RecordAction.PENDING.value}
        kept: list[RecordOutcome] = []
        failed: list[RecordOutcome] = []
        for s in staged:
            seq, platform_id = int(s["seq"]), str(s["record"].get("id", ""))
            done = previous.get(seq)
            if done is not None and done.get("action") in final:
                kept.append(
                    RecordOutcome(seq, platform_id, RecordAction(done["action"]), done.get("dynamicsId"))
                )
                continue
            outcome = RecordOutcome(seq, platform_id, RecordAction.FAILED, errors=[FieldError("", reason)])
            if done is not None and done.get("action") == RecordAction.CREATING.value:
                outcome.note = (
                    "the create was being sent when the export stopped and may have reached Dynamics; "
                    "exporting again updates that record (no duplicate)"
                )
                outcome.dynamics_id = done.get("dynamicsId")
            failed.append(outcome)
        self._store.save_outcomes(ws, job_id, failed)
        self._store.finish_chunk(
            ws, job_id, index, ChunkState.FAILED, count_outcomes([*kept, *failed]), len(staged), error=reason
        )

    def _unmark_creating(self, ws: str, job_id: str, staged: Sequence[Mapping[str, Any]]) -> None:
        """A paused chunk wrote nothing more: its "creating" checkpoints become "pending"."""
        pending = [
            RecordOutcome(
                int(o["seq"]),
                str(o.get("platformId", "")),
                RecordAction.PENDING,
                note="waiting for Dynamics to be reconnected",
            )
            for o in self._previous_outcomes(ws, job_id, staged)
            if o.get("action") == RecordAction.CREATING.value
        ]
        if pending:
            self._store.save_outcomes(ws, job_id, pending)

    def metadata(self, client: DataverseClient, table: str) -> dict[str, DynamicsColumn]:
        return self._metadata.columns(client, table)


def _carry_over(before: Mapping[str, Any] | None, outcome: RecordOutcome) -> None:
    """A retried chunk finds the writes of its crashed earlier attempt already in Dynamics: report what
    that attempt did, not "unchanged"."""
    if before is None or outcome.action not in (RecordAction.UNCHANGED, RecordAction.UPDATED):
        return
    if before.get("action") in (RecordAction.CREATED.value, RecordAction.CREATING.value):
        outcome.action = RecordAction.CREATED
    elif before.get("action") == RecordAction.UPDATED.value and outcome.action is RecordAction.UNCHANGED:
        outcome.action = RecordAction.UPDATED
        outcome.changes = before.get("changes", outcome.changes)


@dataclass
class _Owners:
    choice: OwnerChoice
    caller_object_id: str | None
    problem: str | None = None


class ChunkRun:
    """One chunk of records through match, map and write (also used by the activity worker to export
    the contacts its events need first)."""

    def __init__(
        self,
        *,
        worker: ExportWorker,
        store: ExportStore,
        client: DataverseClient,
        connection: DynamicsConnection,
        workspace_id: str,
        job_id: str,
        entity: ExportEntity,
        config: DynamicsConfig,
        manual_values: dict[str, Any],
        user_id: str,
        dry_run: bool,
        items: list[ExportItem],
    ) -> None:
        self.worker = worker
        self.store = store
        self.client = client
        self.connection = connection
        self.ws = workspace_id
        self.job_id = job_id
        self.entity = entity
        self.config = config
        self.manual_values = manual_values
        self.user_id = user_id
        self.dry_run = dry_run
        self.items = items
        self.identifiers = IdentifierConfig.from_model(config.sync_identifiers)
        self.confirmed_creates: list[ExportItem] = []  # created, as Dynamics answered; saved with the report

    def save_confirmed_creates(self) -> None:
        """The run stops early: checkpoint the creates Dynamics confirmed (``created`` instead of the
        ``creating`` written before the call), so a chunk that fails for good still reports them as
        created. Best effort: if storage fails too, a retry still finds them by their ids."""
        try:
            self._checkpoint(self.confirmed_creates, None)
        except Exception:
            log.warning("export: could not checkpoint confirmed creates", extra={"workspace": self.ws})

    # -- the whole chunk --------------------------------------------------------------------------
    def execute(self) -> list[RecordOutcome]:
        owner = self._owner()
        table = self.entity.table
        columns = self.worker.metadata(self.client, table)
        tab = (
            self.config.field_mapping.contacts
            if self.entity is ExportEntity.CONTACTS
            else (self.config.field_mapping.companies)
        )
        for item in self.items:
            self._desired(item, tab, columns, Entity.CONTACT if table == "contact" else Entity.COMPANY)
        if (
            self.entity is ExportEntity.CONTACTS
            and self.config.sync_identifiers.associate_contacts_with_companies
        ):
            self._link_companies(owner)
        self._match(
            self.items, Entity.CONTACT if table == "contact" else Entity.COMPANY, self._mapped_columns(tab)
        )
        self._write(self.items, table, owner)
        if (
            self.entity is ExportEntity.COMPANIES
            and self.config.sync_identifiers.associate_companies_with_contacts
        ):
            self._link_contacts_to_companies(owner)
        return [self._finish(item) for item in self.items]

    # -- owners -----------------------------------------------------------------------------------
    def _owner(self) -> _Owners:
        mapping = self.config.user_mapping
        users = {u.user_id: str(u.dynamics_user_id) for u in mapping.users}
        integration_id = self.connection.dynamics_user_id or self.client.who_am_i().user_id
        default = str(mapping.default_owner_id) if mapping.default_owner_id else None
        choice = choose_owner(users, default, integration_id, self.user_id)
        wanted = {choice.systemuser_id, integration_id} | ({default} if default else set())
        rows = {
            str(r["systemuserid"]).lower(): r
            for r in self.client.query(
                "systemusers",
                filter=in_filter("systemuserid", sorted(wanted)),
                select=[
                    "systemuserid",
                    "fullname",
                    "internalemailaddress",
                    "isdisabled",
                    "azureactivedirectoryobjectid",
                ],
            )
        }
        notes: list[str] = []
        while True:
            row = rows.get(choice.systemuser_id.lower())
            problem = None
            if row is None:
                problem = f"Dynamics user {choice.systemuser_id} ({choice.source.value}) does not exist"
            elif row.get("isdisabled"):
                problem = (
                    f"Dynamics user {row.get('internalemailaddress') or choice.systemuser_id} "
                    f"({choice.source.value}) is disabled"
                )
            if problem is None:
                break
            notes.append(problem)
            if choice.source is OwnerSource.USER_MAPPING and default:
                choice = OwnerChoice(default, OwnerSource.DEFAULT_OWNER, impersonate=False)
            elif choice.source is not OwnerSource.INTEGRATION_USER:
                choice = OwnerChoice(integration_id, OwnerSource.INTEGRATION_USER, impersonate=False)
            else:
                break
        row = rows.get(choice.systemuser_id.lower()) or {}
        caller = row.get("azureactivedirectoryobjectid") if choice.impersonate else None
        return _Owners(choice, str(caller) if caller else None, "; ".join(notes) or None)

    # -- mapping ----------------------------------------------------------------------------------
    def _mapped_columns(self, tab: Sequence[Any]) -> list[str]:
        mapped = [m.dynamics_field for m in tab if not isinstance(m, EngagementMapping)]
        if tab is self.config.field_mapping.contacts:
            # Step 3: read the campaign property columns too, so unchanged properties cost no write.
            existing = self.worker.metadata(self.client, "contact")
            campaign = mapped_campaign_columns(self.config.campaign_mapping).values()
            mapped += [c for c in campaign if c in existing]
        return mapped

    def _desired(
        self, item: ExportItem, tab: Sequence[Any], columns: Mapping[str, DynamicsColumn], entity: Entity
    ) -> None:
        for mapping in tab:
            if isinstance(mapping, EngagementMapping):
                continue  # written when an activity is logged, never by an export
            column = columns.get(mapping.dynamics_field)
            if column is None:
                item.errors.append(
                    FieldError(
                        mapping.dynamics_field, f"column {mapping.dynamics_field} does not exist in Dynamics"
                    )
                )
                continue
            if isinstance(mapping, PlatformFieldMapping):
                field_def = resolve_field(entity, mapping.platform_field)
                if field_def is None:
                    item.errors.append(FieldError(mapping.platform_field, "unknown platform field"))
                    continue
                raw: Any = platform_value(item.data, mapping.platform_field)
                ftype, source = field_def.type, mapping.platform_field
            elif isinstance(mapping, FixedValueMapping):
                raw, ftype, source = (
                    mapping.value,
                    mapping.value_type,
                    f"fixed value of {mapping.dynamics_field}",
                )
            elif isinstance(mapping, ManualExportMapping):
                if mapping.dynamics_field not in self.manual_values:
                    continue
                raw = self.manual_values[mapping.dynamics_field]
                ftype, source = mapping.value_type, f"manual value of {mapping.dynamics_field}"
            else:
                continue
            try:
                value = convert(raw, ftype, column, field=source)
            except ConversionError as exc:
                item.errors.append(FieldError(mapping.dynamics_field, f"{source}: {exc.reason}", exc.code))
                continue
            if value is not NO_VALUE:
                item.values.append(DesiredValue(mapping.dynamics_field, value, mapping.mode))
                item.has_record_value |= isinstance(mapping, PlatformFieldMapping)
        if entity is Entity.CONTACT:
            # Step 3: contacts carry their campaign data; the mapped properties ride along with the export.
            campaign, problems = campaign_values(item.data, self.config.campaign_mapping, columns)
            item.values.extend(campaign)
            item.notes.extend(f"campaign property not written: {p.field}: {p.message}" for p in problems)

    # -- matching ---------------------------------------------------------------------------------
    def _match(self, items: Sequence[ExportItem], entity: Entity, mapped: Sequence[str]) -> None:
        """Find each item's Dynamics row: our own earlier create (deterministic id) first, then the rule."""
        if not items:
            return
        rule = rule_for(entity, self.identifiers)
        export_entity = ExportEntity.CONTACTS if entity is Entity.CONTACT else ExportEntity.COMPANIES
        id_column = ID_COLUMN[entity]
        entity_set = self.client.entity_set_name(TABLE[entity])
        plan = plan_lookups(
            entity,
            rule,
            [i.data for i in items],
            extra_select=[*mapped, PARENT_ACCOUNT_VALUE if entity is Entity.CONTACT else "accountid"],
        )
        select = list(plan.select)
        own_ids = [deterministic_dynamics_id(self.ws, export_entity, i.platform_id) for i in items]
        gets = [
            BatchOperation(
                "GET",
                entity_set,
                headers=PREFER_PAGES,
                params=[
                    ("$select", ",".join(select)),
                    ("$filter", in_filter(id_column, sorted(set(own_ids)))),
                ],
            ),
            *lookup_operations(plan),
        ]
        pages = self._batch_gets(gets)
        own_rows = {str(r[id_column]).lower(): r for r in pages[0]}
        candidates = [row for page in pages[1:] for row in page]
        results = match_records(rule, [i.data for i in items], candidates, id_column=id_column)
        # Would-create records get a second, broader lookup (names stored with extra whitespace...).
        unmatched = [
            n
            for n, (own_id, result) in enumerate(zip(own_ids, results, strict=True))
            if result.status is MatchStatus.NONE and own_id not in own_rows
        ]
        candidates += match_broadly(
            entity,
            rule,
            [i.data for i in items],
            results,
            unmatched,
            select=select,
            batch_gets=self._batch_gets,
            id_column=id_column,
        )
        by_id = {str(r[id_column]).lower(): r for r in candidates}
        for item, result, det_id in zip(items, results, own_ids, strict=True):
            own = own_rows.get(det_id)
            if own is not None:
                item.dynamics_id, item.current = det_id, own
                item.match = {"status": "matched", "rule": "created_by_platform", "dynamicsId": det_id}
                continue
            item.match = result.to_json()
            if result.status is not MatchStatus.NONE and result.dynamics_id:
                item.dynamics_id = result.dynamics_id.lower()
                item.current = by_id.get(item.dynamics_id)
                if result.status is MatchStatus.AMBIGUOUS:
                    item.notes.append(
                        f"ambiguous: {len(result.candidates)} Dynamics records match; used the first in the "
                        "documented order (see match.candidates)"
                    )

    def _batch_gets(self, operations: Sequence[BatchOperation]) -> list[list[dict[str, Any]]]:
        return batch_get_rows(self.client, operations)

    # -- associations -----------------------------------------------------------------------------
    def _link_companies(self, owner: _Owners) -> None:
        """Contacts -> their company: match the embedded companies, create the missing ones, then link."""
        companies: dict[str, ExportItem] = {}
        key_of: dict[int, str] = {}
        for item in self.items:
            company = item.data.get("company")
            if not isinstance(company, Mapping):
                continue
            key = _company_key(company, self.identifiers)
            if key is None:
                item.notes.append("company has no id, domain or name: not linked")
                continue
            key_of[item.seq] = key
            companies.setdefault(key, ExportItem(-1, key, company))
        if not companies:
            return
        columns = self.worker.metadata(self.client, "account")
        tab = self.config.field_mapping.companies
        company_items = list(companies.values())
        for company_item in company_items:
            self._desired(company_item, tab, columns, Entity.COMPANY)
            if not any(v.column == "name" for v in company_item.values) and company_item.data.get("name"):
                company_item.values.append(
                    DesiredValue("name", str(company_item.data["name"])[:160], Mode.OVERWRITE)
                )
        self._match(company_items, Entity.COMPANY, self._mapped_columns(tab))
        to_create = [c for c in company_items if c.dynamics_id is None and not c.errors]
        for company_item in to_create:
            company_item.dynamics_id = deterministic_dynamics_id(
                self.ws, ExportEntity.COMPANIES, company_item.platform_id
            )
            plan = plan_write(None, company_item.values, create_only=_owner_bind(owner))
            company_item.outcome = RecordOutcome(
                -1, company_item.platform_id, RecordAction.CREATED, changes=plan.changes
            )
        if to_create and not self.dry_run:
            failed = self._create_many(
                "account",
                "accountid",
                [(c, plan_write(None, c.values, create_only=_owner_bind(owner)).payload) for c in to_create],
                owner,
            )
            for company_item, error in failed.items():
                company_item.dynamics_id = None
                company_item.errors.append(error)
        for item in self.items:
            key = key_of.get(item.seq)
            linked = companies.get(key) if key else None
            if linked is None:
                continue
            company_item = linked
            if company_item.dynamics_id:
                item.links.append(
                    DesiredLink(
                        "parentcustomerid_account", "accounts", company_item.dynamics_id, PARENT_ACCOUNT_VALUE
                    )
                )
                if company_item in to_create:
                    if self.dry_run:
                        item.notes.append(
                            "company not in Dynamics yet: a real export creates it "
                            f"({company_item.dynamics_id})"
                        )
                    else:
                        item.notes.append(f"company created in Dynamics ({company_item.dynamics_id})")
            else:
                reasons = "; ".join(e.message for e in company_item.errors) or "not found and not created"
                item.notes.append(f"company not linked: {reasons}")

    def _link_contacts_to_companies(self, owner: _Owners) -> None:
        """Companies -> their contacts: those found in Dynamics are linked to the account (none created)."""
        pairs: list[tuple[ExportItem, ExportItem]] = []
        for item in self.items:
            contacts = item.data.get("contacts")
            if not item.dynamics_id or not isinstance(contacts, list):
                continue
            for contact in contacts:
                data = dict(contact)
                data.setdefault("company", {"name": item.data.get("name"), "domain": item.data.get("domain")})
                pairs.append((item, ExportItem(-1, str(contact.get("id", "")), data)))
        if not pairs:
            return
        contact_items = [c for _, c in pairs]
        self._match(contact_items, Entity.CONTACT, [])
        updates: list[tuple[ExportItem, dict[str, Any]]] = []
        for company, contact in pairs:
            if contact.dynamics_id is None:
                company.notes.append(f"contact {contact.platform_id} not found in Dynamics: not linked")
                continue
            plan = plan_write(
                contact.current or {},
                [],
                [
                    DesiredLink(
                        "parentcustomerid_account",
                        "accounts",
                        company.dynamics_id or "",
                        PARENT_ACCOUNT_VALUE,
                    )
                ],
            )
            if plan.action is PlanAction.UNCHANGED:
                company.notes.append(f"contact {contact.platform_id} already linked")
                continue
            company.notes.append(f"contact {contact.platform_id} linked ({contact.dynamics_id})")
            updates.append((contact, plan.payload))
        if updates and not self.dry_run:
            failed = self._update_many("contact", "contactid", updates, owner)
            for contact, error in failed.items():
                for company, c in pairs:
                    if c is contact:
                        company.notes.append(
                            f"contact {contact.platform_id} could not be linked: {error.message}"
                        )

    # -- writing ----------------------------------------------------------------------------------
    def _write(self, items: Sequence[ExportItem], table: str, owner: _Owners) -> None:
        id_column = f"{table}id"
        export_entity = self.entity
        creates: list[tuple[ExportItem, dict[str, Any]]] = []
        updates: list[tuple[ExportItem, dict[str, Any]]] = []
        for item in items:
            if item.errors:
                item.outcome = RecordOutcome(
                    item.seq, item.platform_id, RecordAction.INVALID, item.dynamics_id
                )
                continue
            plan = plan_write(item.current, item.values, item.links, create_only=_owner_bind(owner))
            changes = plan.changes
            if plan.action is PlanAction.CREATE and not item.has_record_value:
                # Never a blank "(No Name)" record: fixed and manual values are the same on every record
                # and identify no one, so a create needs at least one value of the record itself.
                item.outcome = RecordOutcome(item.seq, item.platform_id, RecordAction.SKIPPED)
                item.notes.append(
                    "not created: none of the mapped platform fields has a value for this record"
                )
                continue
            if plan.action is PlanAction.CREATE:
                item.dynamics_id = deterministic_dynamics_id(self.ws, export_entity, item.platform_id)
                action = RecordAction.WOULD_CREATE if self.dry_run else RecordAction.CREATED
                creates.append((item, plan.payload))
            elif plan.action is PlanAction.UPDATE:
                action = RecordAction.WOULD_UPDATE if self.dry_run else RecordAction.UPDATED
                updates.append((item, plan.payload))
            else:
                action = RecordAction.UNCHANGED
            item.outcome = RecordOutcome(
                item.seq, item.platform_id, action, item.dynamics_id, changes=changes
            )
        if owner.problem and creates:
            for item, _ in creates:
                item.notes.append(f"owner: {owner.problem}; used {owner.choice.source.value}")
        if self.dry_run:
            return
        if creates:
            # Checkpoint "creating" before the call: a retry that finds the id knows it was created, and a
            # chunk that fails for good says the record may exist. What Dynamics confirmed is saved as
            # "created" with the report, or by save_confirmed_creates when the run stops before it.
            self._checkpoint([i for i, _ in creates], RecordAction.CREATING)
            failed = self._create_many(table, id_column, creates, owner)
            for item, error in failed.items():
                item.errors.append(error)
            # Their "created" is written with the chunk's report (or, if the run stops before that, by
            # save_confirmed_creates): one table write per record fewer than checkpointing it here.
            self.confirmed_creates.extend(i for i, _ in creates if i not in failed)
        if updates:
            for item, error in self._update_many(table, id_column, updates, owner).items():
                item.errors.append(error)

    def _checkpoint(self, items: Sequence[ExportItem], action: RecordAction | None) -> None:
        """Save these items' outcomes now (as ``action``, or as they stand), before the chunk's report."""
        outcomes = []
        for item in items:
            if item.outcome is None:
                continue
            outcome = item.outcome
            if action is not None:
                outcome = RecordOutcome(outcome.seq, outcome.platform_id, action, item.dynamics_id)
            outcomes.append(outcome)
        if outcomes:
            self.store.save_outcomes(self.ws, self.job_id, outcomes)

    def _create_many(
        self, table: str, id_column: str, creates: Sequence[tuple[ExportItem, dict[str, Any]]], owner: _Owners
    ) -> dict[ExportItem, FieldError]:
        records = [{**payload, id_column: item.dynamics_id} for item, payload in creates]
        report = create_with_own_ids(
            self.client, table, id_column, records, caller_object_id=owner.caller_object_id
        )
        failures = {creates[i][0]: _field_error(exc, owner) for i, exc in report.refused.items()}
        if report.taken:
            # Another attempt created these meanwhile (chunks running at the same time create the same
            # companies): update them instead, never a second record. The owner stays as that create set it.
            taken = [
                (creates[i][0], {k: v for k, v in creates[i][1].items() if k != "ownerid@odata.bind"})
                for i in report.taken
            ]
            failures.update(self._update_many(table, id_column, taken, owner))
            for item, _ in taken:
                if item.outcome and item not in failures:
                    item.outcome.action = RecordAction.UPDATED
        return failures

    def _update_many(
        self, table: str, id_column: str, updates: Sequence[tuple[ExportItem, dict[str, Any]]], owner: _Owners
    ) -> dict[ExportItem, FieldError]:
        records = [{**payload, id_column: item.dynamics_id} for item, payload in updates]
        refused = update_isolating(self.client, table, records, caller_object_id=owner.caller_object_id)
        return {updates[i][0]: _field_error(exc, owner) for i, exc in refused.items()}

    # -- reporting --------------------------------------------------------------------------------
    def _finish(self, item: ExportItem) -> RecordOutcome:
        outcome = item.outcome or RecordOutcome(
            item.seq, item.platform_id, RecordAction.SKIPPED, item.dynamics_id
        )
        outcome.match = item.match
        if item.errors:
            if outcome.action not in (RecordAction.INVALID,):
                outcome.action = RecordAction.WOULD_FAIL if self.dry_run else RecordAction.FAILED
            outcome.errors = list(item.errors)
            if outcome.action is RecordAction.FAILED and item.current is None:
                outcome.dynamics_id = None
        if item.notes:
            outcome.note = "; ".join(item.notes)
        return outcome


def _owner_bind(owner: _Owners) -> dict[str, Any]:
    return {"ownerid@odata.bind": f"/systemusers({owner.choice.systemuser_id})"}


def _field_error(exc: DataverseError, owner: _Owners) -> FieldError:
    message = exc.message or str(exc)
    if exc.code == PRIVILEGE_DENIED:
        who = f"Dynamics user {owner.choice.systemuser_id} ({owner.choice.source.value})"
        message = f"{who} lacks the privilege: {message}"
    return FieldError(column_in_message(message), message, exc.code)


def _company_key(company: Mapping[str, Any], identifiers: IdentifierConfig) -> str | None:
    """What makes two embedded companies the same one, following the company identifier: the same
    (registrable) domain first, so contacts in different chunks — or with different platform company
    ids — still create one account (its deterministic id derives from this key)."""
    if identifiers.company_identifier in ("domain", "domain_or_name"):
        raw = company.get("domain") or company.get("website")
        domain = (
            domain_any_extension_key(raw)
            if identifiers.company_domain_any_extension
            else registrable_domain(raw)
        )
        if domain:
            return f"domain:{domain}"
        name = normalize_company_name(company.get("name"))
        if identifiers.company_identifier == "domain_or_name" and name:
            return f"name:{name}"
    if isinstance(company.get("id"), str) and company["id"].strip():
        return str(company["id"])
    domain = registrable_domain(company.get("domain") or company.get("website"))
    if domain:
        return f"domain:{domain}"
    name = normalize_company_name(company.get("name"))
    return f"name:{name}" if name else None
