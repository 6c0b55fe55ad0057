"""Contacts exported first for their engagement events (``syncIdentifiers.exportMissingContacts``).

The activity worker finds an event's contact in Dynamics by its export id or the contact identifier.
When the workspace turned the option on and the contact is not there, it is exported here by the export
pipeline itself (``core.services.export_worker``), not a copy of it: the contacts tab's field mapping and
campaign properties, matching (deterministic id, then the identifier), the company association of step 1,
the owner rules of step 4, the refusal of blank records, bulk writes with the bad records isolated.

- Deterministic ids: the contact gets the id an export of the same platform contact would give it, so a
  retried or redelivered chunk (or another chunk, or a later export) finds it instead of creating it again;
  chunks racing to create it end with one contact (the export pipeline turns the loser into an update).
- Owner: the platform user whose campaign touched the contact (the event's ``userId``, else its identity's
  user) is the exporting user, as step 4 (Users Mapping) asks for automatic exports; else the user who
  sent the events. One export run per such user (each costs a handful of requests).
- The export's own checkpoints (``creating`` / ``created``) are kept under ``<job>~contacts`` in the
  activity records table: a retried or resumed chunk reads them to tell a contact it created from one
  it found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.adapters.dataverse.client import DataverseClient
from core.adapters.export_store import ExportStore
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.export_job import ExportEntity, FieldError, RecordAction, RecordOutcome

# The export pipeline's chunk run and record type: one chunk of contacts through match, map and write.
from core.services.export_worker import ChunkRun, ExportItem, ExportWorker

CONTACTS_SUFFIX = "~contacts"


def contacts_job_id(job_id: str) -> str:
    """Where the export checkpoints of an activity job's contacts are kept (beside the job's records)."""
    return f"{job_id}{CONTACTS_SUFFIX}"


@dataclass(frozen=True)
class ContactToExport:
    platform_id: str
    data: Mapping[str, Any]
    seq: int  # position of its first event in the job: the row key of its export checkpoint
    user_id: str  # the exporting platform user (owner rules)


@dataclass
class ExportedContact:
    action: RecordAction  # the export's outcome: created / updated / unchanged / skipped / invalid / failed
    dynamics_id: str | None
    current: dict[str, Any] = field(default_factory=dict)  # the contact's columns as written
    match: dict[str, Any] | None = None
    errors: list[FieldError] = field(default_factory=list)
    note: str | None = None


def export_contacts(
    *,
    exporter: ExportWorker,
    store: ExportStore,
    client: DataverseClient,
    connection: DynamicsConnection,
    workspace_id: str,
    job_id: str,
    config: DynamicsConfig,
    contacts: Sequence[ContactToExport],
) -> dict[str, ExportedContact]:
    """Export ``contacts`` (one run of the export pipeline per exporting user); by platform id."""
    by_user: dict[str, list[ContactToExport]] = {}
    for contact in contacts:
        by_user.setdefault(contact.user_id, []).append(contact)
    results: dict[str, ExportedContact] = {}
    for user_id, group in sorted(by_user.items()):
        items = [ExportItem(c.seq, c.platform_id, c.data) for c in group]
        run = ChunkRun(
            worker=exporter,
            store=store,
            client=client,
            connection=connection,
            workspace_id=workspace_id,
            job_id=contacts_job_id(job_id),
            entity=ExportEntity.CONTACTS,
            config=config,
            manual_values={},
            user_id=user_id,
            dry_run=False,
            items=items,
        )
        for item, outcome in zip(items, run.execute(), strict=True):
            results[item.platform_id] = _result(item, outcome)
    return results


def _result(item: ExportItem, outcome: RecordOutcome) -> ExportedContact:
    written = outcome.action in (RecordAction.CREATED, RecordAction.UPDATED, RecordAction.UNCHANGED)
    current: dict[str, Any] = {}
    if written:
        # What the contact holds now, as the activity worker reads it (its engagement field and campaign
        # properties are then compared with this: nothing written twice). Links come back as the lookup's
        # ``_<name>_value`` column.
        current = dict(item.current or {})
        value_columns = {link.navigation: link.value_column for link in item.links}
        for column, change in (outcome.changes or {}).items():
            current[value_columns.get(column, column)] = change.get("after")
    return ExportedContact(
        action=outcome.action,
        dynamics_id=outcome.dynamics_id if written else None,
        current=current,
        match=outcome.match,
        errors=list(outcome.errors),
        note=outcome.note,
    )


def created_earlier(store: ExportStore, workspace_id: str, job_id: str, seqs: Sequence[int]) -> set[str]:
    """Platform ids of contacts an earlier attempt of this chunk created (its export checkpoints)."""
    if not seqs:
        return set()
    low, high = min(seqs), max(seqs)
    page = store.records_page(
        workspace_id,
        contacts_job_id(job_id),
        action=None,
        cursor=f"{low - 1:07d}" if low > 0 else None,
        limit=high - low + 1,
    )
    done = (RecordAction.CREATING.value, RecordAction.CREATED.value)
    wanted = set(seqs)
    return {
        str(row.get("platformId"))
        for row in page.records
        if row.get("action") in done and int(row.get("seq", -1)) in wanted
    }
