"""The export pipeline exporting contacts for another job kind (``core.services.jobs.contact_export``).

Activities ask it for the contacts their events need (``syncIdentifiers.exportMissingContacts``): the
contacts tab's field mapping and campaign properties, matching (deterministic id, then the identifier),
the company association of step 1, the owner rules of step 4, the refusal of blank records, bulk writes
with the bad records isolated: an ``ExportRun``, not a copy of it.

- Deterministic ids: the contact gets the id an export of the same platform contact would give it, so a
  retried or redelivered chunk (or another chunk, or a later export) finds it instead of creating it again;
  chunks racing to create it end with one contact (the loser's create turns into an update).
- Owner and writer: the owner follows the users mapping of the platform user of each contact's first
  event, and the contact is written as that event's identity's Dynamics user (identities mapping), as the
  activity itself is; one run per (user, identity) pair (each costs a handful of requests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.adapters.dataverse.client import DataverseClient
from core.adapters.storage.job_store import JobStore
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.jobs import ExportEntity, RecordAction, RecordOutcome
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.exports.items import ExportItem
from core.services.exports.run import ExportRun
from core.services.jobs.checkpoints import Checkpoints, Gate
from core.services.jobs.contact_export import ContactToExport, ExportedContact, contacts_job_id


class ContactExport:
    """A ``ContactExporter``: the job's store holds the contacts' checkpoints, beside its records."""

    def __init__(self, store: JobStore, metadata: MetadataCache) -> None:
        self._store = store
        self._metadata = metadata

    def __call__(
        self,
        *,
        client: DataverseClient,
        connection: DynamicsConnection,
        workspace_id: str,
        job_id: str,
        config: DynamicsConfig,
        contacts: Sequence[ContactToExport],
        gate: Gate | None = None,
    ) -> dict[str, ExportedContact]:
        by_actor: dict[tuple[str, str], list[ContactToExport]] = {}
        for contact in contacts:
            by_actor.setdefault((contact.user_id, contact.identity_id or ""), []).append(contact)
        results: dict[str, ExportedContact] = {}
        for (user_id, identity_id), group in sorted(by_actor.items()):
            items = [ExportItem(c.seq, c.platform_id, c.data) for c in group]
            checkpoints = Checkpoints(
                self._store, workspace_id, contacts_job_id(job_id), [c.seq for c in group], gate=gate
            )
            run = ExportRun(
                client=client,
                connection=connection,
                checkpoints=checkpoints,
                columns_of=self._metadata.columns,
                workspace_id=workspace_id,
                entity=ExportEntity.CONTACTS,
                config=config,
                manual_values={},
                user_id=user_id,
                dry_run=False,
                forget_columns=self._metadata.invalidate,
                items=items,
                identity_id=identity_id or None,
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
        # The activity's record has no warnings list: what the export left alone (a company it would not
        # create) rides on the note.
        note="; ".join([*([outcome.note] if outcome.note else []), *(w.message for w in outcome.warnings)])
        or None,
    )
