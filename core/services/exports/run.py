"""One chunk of an export through match, map and write: the export's "run these staged rows" step.

A chunk (``DEFAULT_CHUNK_SIZE`` records) costs a handful of HTTP requests whatever its size:
1. one ``$batch`` of GETs fetching every candidate (identifier lookups from ``lookup_plan``, records we
   created before by their deterministic ids, the owners to check: ``owners``);
2. for contacts with "associate with companies": the same for their companies, then one
   ``CreateMultiple`` for companies missing in Dynamics (``companies``);
3. one ``CreateMultiple`` and one ``UpdateMultiple`` for the records themselves (``writes``). A failing
   bulk call is split in halves until the bad records are isolated; they are reported with Dynamics'
   error and the others are written.

Idempotency: every create carries a deterministic primary key (workspace + entity + platform id), so a
redelivered or crashed chunk finds what an earlier attempt created (it is looked up by id first); the
checkpoints (``core.services.jobs.checkpoints``) make the retry report it ``created``, and a create whose
answer was lost is created, not updated (``core.services.jobs.bulk``). The activity worker runs this same
step to export the contacts its events need first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from core.adapters.dataverse.batch import BatchOperation
from core.adapters.dataverse.client import DataverseClient
from core.adapters.dataverse.errors import DataverseError
from core.adapters.dataverse.odata import in_filter
from core.domain.catalog import Entity
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.jobs import ExportEntity, RecordAction, RecordOutcome, deterministic_dynamics_id
from core.domain.lookup_plan import plan_lookups
from core.domain.matching import (
    ID_COLUMN,
    PARENT_ACCOUNT_VALUE,
    TABLE,
    IdentifierConfig,
    MatchStatus,
    match_records,
    rule_for,
)
from core.services.exports.companies import link_companies, link_contacts_to_companies
from core.services.exports.drift import drift_error, drift_problems
from core.services.exports.items import ExportItem
from core.services.exports.mapping import desired_values, mapped_columns
from core.services.exports.owners import choose_owners
from core.services.exports.writes import ExportWrites
from core.services.jobs.checkpoints import Checkpoints
from core.services.jobs.lookups import (
    PREFER_PAGES,
    batch_get_rows,
    capped,
    lookup_operations,
    match_broadly,
    too_broad_error,
)

# (client, table) -> the table's columns as the metadata API describes them (cached per process)
ColumnsOf = Callable[[DataverseClient, str], dict[str, DynamicsColumn]]


class ExportRun:
    """One chunk of records (or the contacts an activity chunk exports) through match, map and write."""

    def __init__(
        self,
        *,
        client: DataverseClient,
        connection: DynamicsConnection,
        checkpoints: Checkpoints,
        columns_of: ColumnsOf,
        workspace_id: str,
        entity: ExportEntity,
        config: DynamicsConfig,
        manual_values: Mapping[str, Any],
        user_id: str,
        dry_run: bool,
        items: list[ExportItem],
        identity_id: str | None = None,
        forget_columns: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.connection = connection
        self.ws = workspace_id
        self.entity = entity
        self.config = config
        self.manual_values = manual_values
        self.user_id = user_id
        self.identity_id = identity_id  # a campaign's identity: its Dynamics user writes (step 4)
        self.dry_run = dry_run
        self.items = items
        self.identifiers = IdentifierConfig.from_model(config.sync_identifiers)
        self._columns_of = columns_of
        self._forget_columns = forget_columns  # environment URL -> drop its cached metadata
        self.writes = ExportWrites(
            client, checkpoints, workspace_id=workspace_id, entity=entity, dry_run=dry_run
        )

    def columns(self, table: str) -> dict[str, DynamicsColumn]:
        return self._columns_of(self.client, table)

    def execute(self) -> list[RecordOutcome]:
        """The chunk's outcomes; ``MappingDrift`` (nothing of the chunk written) when the configuration no
        longer fits Dynamics, found before writing or when Dynamics refuses a column it no longer has."""
        self.check_drift()
        try:
            return self._execute()
        except DataverseError as exc:
            if exc.unknown_column is None:
                raise
            if self._forget_columns is not None:
                self._forget_columns(self.client.environment_url)  # the cached metadata is older
            self.check_drift()
            raise  # Dynamics names a column the mapping does not use: the chunk is retried

    def check_drift(self) -> None:
        problems = drift_problems(self.config, self.entity, self.columns("contact"), self.columns("account"))
        if problems:
            raise drift_error(problems)

    def _execute(self) -> list[RecordOutcome]:
        owner = choose_owners(self.client, self.connection, self.config, self.user_id, self.identity_id)
        table = self.entity.table
        entity = Entity.CONTACT if table == "contact" else Entity.COMPANY
        columns = self.columns(table)
        tab = (
            self.config.field_mapping.contacts
            if self.entity is ExportEntity.CONTACTS
            else self.config.field_mapping.companies
        )
        for item in self.items:
            desired_values(item, tab, columns, entity, self.config, self.manual_values)
        associations = self.config.sync_identifiers
        contact_columns = columns if table == "contact" else {}
        # Contacts are matched before their companies are: whether a contact already sits under a
        # company of the same name decides whether a company is created for it (``link_companies``).
        self.match(self.items, entity, mapped_columns(self.config, tab, contact_columns))
        if self.entity is ExportEntity.CONTACTS and associations.associate_contacts_with_companies:
            link_companies(self, owner)
        self.writes.write(self.items, table, owner)
        if self.entity is ExportEntity.COMPANIES and associations.associate_companies_with_contacts:
            link_contacts_to_companies(self, owner)
        return [self.finish(item) for item in self.items]

    def match(self, items: Sequence[ExportItem], entity: Entity, mapped: Sequence[str]) -> None:
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
        pages = self.batch_gets(gets)
        own_rows = {str(r[id_column]).lower(): r for r in pages[0]}
        candidates = [row for page in pages[1:] for row in page]
        too_broad = capped(pages[1:])
        results = match_records(rule, [i.data for i in items], candidates, id_column=id_column)
        # Would-create records get a second, broader lookup (names stored with extra whitespace...).
        unmatched = [
            n
            for n, (own_id, result) in enumerate(zip(own_ids, results, strict=True))
            if result.status is MatchStatus.NONE and own_id not in own_rows
        ]
        broad_rows = match_broadly(
            entity,
            rule,
            [i.data for i in items],
            results,
            unmatched,
            select=select,
            batch_gets=self.batch_gets,
            id_column=id_column,
        )
        too_broad = too_broad or capped([broad_rows])
        candidates += broad_rows
        by_id = {str(r[id_column]).lower(): r for r in candidates}
        for item, result, det_id in zip(items, results, own_ids, strict=True):
            own = own_rows.get(det_id)
            if own is not None:
                item.dynamics_id, item.current = det_id, own
                item.match = {"status": "matched", "rule": "created_by_platform", "dynamicsId": det_id}
                continue
            item.match = result.to_json()
            if result.status is MatchStatus.NONE and too_broad:
                item.errors.append(too_broad_error())
            if result.status is not MatchStatus.NONE and result.dynamics_id:
                item.dynamics_id = result.dynamics_id.lower()
                item.current = by_id.get(item.dynamics_id)
                if result.status is MatchStatus.AMBIGUOUS:
                    item.notes.append(
                        f"ambiguous: {len(result.candidates)} Dynamics records match; used the first in the "
                        "documented order (see match.candidates)"
                    )

    def batch_gets(self, operations: Sequence[BatchOperation]) -> list[list[dict[str, Any]]]:
        return batch_get_rows(self.client, operations)

    def account_names(self, ids: Iterable[str]) -> dict[str, str]:
        """The names of the accounts ``ids`` (lowercase id -> name), in one ``$batch`` GET."""
        wanted = sorted({i.lower() for i in ids})
        if not wanted:
            return {}
        get = BatchOperation(
            "GET",
            self.client.entity_set_name("account"),
            headers=PREFER_PAGES,
            params=[("$select", "accountid,name"), ("$filter", in_filter("accountid", wanted))],
        )
        rows = self.batch_gets([get])[0]
        return {str(r["accountid"]).lower(): str(r.get("name") or "") for r in rows}

    def finish(self, item: ExportItem) -> RecordOutcome:
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
        outcome.warnings = list(item.warnings)
        return outcome
