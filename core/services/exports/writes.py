"""The write step of an export: plan each record, checkpoint, then one CreateMultiple and one UpdateMultiple.

Only changed columns are written (``plan_write``); empty platform values never erase Dynamics data;
``fill_if_empty`` fills blanks only. A create carries the record's deterministic id and is never a blank
record. Checkpoints follow ``core.services.jobs.checkpoints``: ``creating`` / ``updating`` are saved before
the calls, the writes Dynamics confirmed are handed over for the report. Bulk calls isolate refused records
(``core.services.jobs.bulk``); each is reported with Dynamics' error, the column named when the message
names one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.adapters.dataverse.client import DataverseClient
from core.adapters.dataverse.errors import PRIVILEGE_DENIED, DataverseError, column_in_message
from core.domain.export_plan import PlanAction, plan_write
from core.domain.jobs import ExportEntity, FieldError, RecordAction, RecordOutcome, deterministic_dynamics_id
from core.services.exports.items import ExportItem
from core.services.exports.owners import Owners, owner_bind
from core.services.jobs.bulk import create_with_own_ids, update_isolating
from core.services.jobs.checkpoints import Checkpoints

Write = tuple[ExportItem, dict[str, Any]]  # a record and the columns to send


class ExportWrites:
    def __init__(
        self,
        client: DataverseClient,
        checkpoints: Checkpoints,
        *,
        workspace_id: str,
        entity: ExportEntity,
        dry_run: bool,
    ) -> None:
        self.client = client
        self.checkpoints = checkpoints
        self.workspace_id = workspace_id
        self.entity = entity
        self.dry_run = dry_run

    def write(self, items: Sequence[ExportItem], table: str, owner: Owners) -> None:
        """Plan and write the run's own records; each item gets its outcome (errors on the item)."""
        id_column = f"{table}id"
        creates: list[Write] = []
        updates: list[Write] = []
        for item in items:
            if item.errors:
                item.outcome = RecordOutcome(
                    item.seq, item.platform_id, RecordAction.INVALID, item.dynamics_id
                )
                continue
            plan = plan_write(item.current, item.values, item.links, create_only=owner_bind(owner))
            if plan.action is PlanAction.CREATE and not item.has_record_value:
                # Never a blank "(No Name)" record: fixed and manual values are the same on every record
                # and identify no one, so a create needs at least one value of the record itself.
                item.outcome = RecordOutcome(item.seq, item.platform_id, RecordAction.SKIPPED)
                item.notes.append(
                    "not created: none of the mapped platform fields has a value for this record"
                )
                continue
            if plan.action is PlanAction.CREATE:
                item.dynamics_id = deterministic_dynamics_id(self.workspace_id, self.entity, item.platform_id)
                action = RecordAction.WOULD_CREATE if self.dry_run else RecordAction.CREATED
                creates.append((item, plan.payload))
            elif plan.action is PlanAction.UPDATE:
                action = RecordAction.WOULD_UPDATE if self.dry_run else RecordAction.UPDATED
                updates.append((item, plan.payload))
            else:
                action = RecordAction.UNCHANGED
            item.outcome = RecordOutcome(
                item.seq, item.platform_id, action, item.dynamics_id, changes=plan.changes
            )
        if owner.problem and creates:
            for item, _ in creates:
                item.notes.append(f"owner: {owner.problem}; used {owner.choice.source.value}")
        if owner.writer_problem:
            for item, _ in (*creates, *updates):
                item.notes.append(f"written as: {owner.writer_problem}")
        if self.dry_run or not (creates or updates):
            return
        self.checkpoints.sending(creates=_outcomes(creates), updates=_outcomes(updates))
        if creates:
            failed = self.create_many(table, id_column, creates, owner)
            for item, error in failed.items():
                item.errors.append(error)
            self.checkpoints.confirmed(o for i, _ in creates if i not in failed and (o := i.outcome))
        if updates:
            refused = self.update_many(table, id_column, updates, owner)
            for item, error in refused.items():
                item.errors.append(error)
            self.checkpoints.confirmed(o for i, _ in updates if i not in refused and (o := i.outcome))

    def create_many(
        self, table: str, id_column: str, creates: Sequence[Write], owner: Owners
    ) -> dict[ExportItem, FieldError]:
        """Create ``creates`` (each item carries its deterministic id); the refused ones with their error.
        A create whose answer was lost is created (``create_with_own_ids``); one another attempt made is
        updated instead, never created twice."""
        records = [{**payload, id_column: item.dynamics_id} for item, payload in creates]
        report = create_with_own_ids(
            self.client, table, id_column, records, caller_object_id=owner.caller_object_id
        )
        failures = {creates[i][0]: field_error(exc, owner) for i, exc in report.refused.items()}
        if report.taken:
            # Chunks running at the same time create the same companies: update what another attempt
            # created. The owner stays as that create set it.
            taken = [
                (creates[i][0], {k: v for k, v in creates[i][1].items() if k != "ownerid@odata.bind"})
                for i in report.taken
            ]
            failures.update(self.update_many(table, id_column, taken, owner))
            for item, _ in taken:
                if item.outcome and item not in failures:
                    item.outcome.action = RecordAction.UPDATED
        return failures

    def update_many(
        self, table: str, id_column: str, updates: Sequence[Write], owner: Owners
    ) -> dict[ExportItem, FieldError]:
        records = [{**payload, id_column: item.dynamics_id} for item, payload in updates]
        refused = update_isolating(self.client, table, records, caller_object_id=owner.caller_object_id)
        return {updates[i][0]: field_error(exc, owner) for i, exc in refused.items()}


def _outcomes(writes: Sequence[Write]) -> list[RecordOutcome]:
    return [item.outcome for item, _ in writes if item.outcome is not None]


def field_error(exc: DataverseError, owner: Owners) -> FieldError:
    message = exc.message or str(exc)
    if exc.code == PRIVILEGE_DENIED:
        message = f"{owner.writer_label()} lacks the privilege: {message}"
    return FieldError(column_in_message(message), message, exc.code)
