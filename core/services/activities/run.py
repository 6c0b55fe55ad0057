"""One chunk of engagement events logged as Dynamics activities: the activities' "run these staged rows" step.

A chunk (``ACTIVITY_CHUNK_SIZE`` events) costs a handful of HTTP requests whatever its size: the lookups
(``contacts``), the missing contacts' export when asked for (``missing_contacts``), then the writes
(``writes``): one ``CreateMultiple`` per (table, acting user), one ``UpdateMultiple`` for the contacts
(and their accounts), one ``UpdateMultiple`` per table closing the new activities.

Idempotency: the activity id is ``uuid5(workspace, event id)``. Before the creates the events are
checkpointed ``creating`` (``core.services.jobs.checkpoints``). An activity found closed is done: the
event is ``unchanged`` (``created`` when this chunk's earlier attempt logged it: its checkpoint says) and
nothing is written. One found open was created by an attempt that crashed before closing it: it is
finished (contact update, close) and reported ``created``. Outcomes are saved before closing and closing
comes last, so the engagement field is written once per activity even across crashes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.adapters.dataverse.batch import BatchOperation
from core.adapters.dataverse.client import DataverseClient
from core.adapters.storage.job_store import JobStore
from core.domain.activities import (
    SIGNAL_KINDS,
    ActivityEvent,
    ActivityOutcome,
    ContactAction,
    activity_table,
    build_activity,
    choose_actor,
)
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.jobs import RecordAction, RecordOutcome
from core.domain.matching import IdentifierConfig
from core.services.activities.contacts import find_in_dynamics, gather_contacts
from core.services.activities.items import ContactItem, EventItem
from core.services.activities.missing_contacts import export_missing, not_found_reason
from core.services.activities.writes import close_activities, create_activities, update_contacts
from core.services.jobs.checkpoints import Checkpoints
from core.services.jobs.contact_export import ContactExporter
from core.services.jobs.lookups import batch_get_rows


class ActivityRun:
    def __init__(
        self,
        *,
        client: DataverseClient,
        connection: DynamicsConnection,
        checkpoints: Checkpoints,
        store: JobStore,
        columns_of: Callable[[DataverseClient, str], dict[str, DynamicsColumn]],
        linkedin_table: str,
        export_contacts: ContactExporter,
        workspace_id: str,
        config: DynamicsConfig,
        identities: Mapping[str, str],
        items: list[EventItem],
        job_id: str = "",
        user_id: str = "",
    ) -> None:
        self.client = client
        self.connection = connection
        self.checkpoints = checkpoints
        self.store = store
        self._columns_of = columns_of
        self.linkedin_table = linkedin_table
        self.export_contacts = export_contacts
        self.ws = workspace_id
        self.job_id = job_id
        self.user_id = user_id
        self.config = config
        self.identities = identities
        self.items = items
        self.identifiers = IdentifierConfig.from_model(config.sync_identifiers)
        self.existing: dict[str, Mapping[str, Any]] = {}  # activities found by id: activityid -> row
        self.identity_users: dict[str, str] = {}
        self.user_users: dict[str, str] = {}

    def columns(self, table: str) -> dict[str, DynamicsColumn]:
        return self._columns_of(self.client, table)

    def execute(self) -> list[RecordOutcome]:
        """Log the chunk's events; their outcomes are reported before closing (see the module doc)."""
        for item in self.items:
            item.table = activity_table(item.event.kind, self.linkedin_table)
        tables = sorted({i.table for i in self.items if i.table})
        contact_columns = self.columns("contact")
        table_columns = {t: self.columns(t) for t in tables}
        contacts = gather_contacts(self.items)
        users, integration_id = find_in_dynamics(self, contacts, tables, contact_columns)
        for contact in contacts.values():
            if contact.dynamics_id is not None:
                contact.action = ContactAction.EXISTING
        if self.config.sync_identifiers.export_missing_contacts:
            export_missing(self, contacts)
        self.plan(contacts, users, integration_id, table_columns)
        creates = [i for i in self.items if i.write is not None and i.action is RecordAction.CREATED]
        new = [i for i in creates if not i.finishing]
        self.checkpoints.sending(creates=[self.outcome(i, contacts) for i in new])
        create_activities(self, new)
        self.checkpoints.confirmed(
            self.outcome(i, contacts) for i in new if i.action is RecordAction.CREATED and not i.errors
        )
        update_contacts(self, contacts)
        # Reported before closing: a crash after the close still finds "created" on the retry, and a crash
        # before it finds the activities open and finishes them. One Table write per event, not two.
        outcomes = {item.seq: self.outcome(item, contacts) for item in self.items}
        self.checkpoints.report(list(outcomes.values()))
        closing = [i for i in creates if not i.errors and i.action is RecordAction.CREATED]
        close_activities(self, closing)
        outcomes.update((i.seq, self.outcome(i, contacts)) for i in closing if i.errors)
        return list(outcomes.values())

    def with_table(self, table: str) -> list[EventItem]:
        return [i for i in self.items if i.table == table]

    def platform_user(self, event: ActivityEvent) -> str | None:
        if event.user_id:
            return event.user_id
        return self.identities.get(event.identity_id) if event.identity_id else None

    def batch_gets(self, operations: Sequence[BatchOperation]) -> list[list[dict[str, Any]]]:
        return batch_get_rows(self.client, operations)

    # -- planning ---------------------------------------------------------------------------------
    def plan(
        self,
        contacts: Mapping[str, ContactItem],
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
                    item.notes.append(not_found_reason(self.config, contact, item))
                continue
            if event.kind in SIGNAL_KINDS or item.table is None:
                item.action = RecordAction.SKIPPED
                item.notes.append(
                    f"{event.kind.value} is a signal, not an activity: it counts in the campaign properties"
                )
                continue
            item.actor = choose_actor(
                identity_id=event.identity_id,
                user_id=self.platform_user(event),
                identity_users=self.identity_users,
                user_users=self.user_users,
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
            existing = self.existing.get(item.write.activity_id)
            if existing is not None and existing.get("statecode") not in (0, None):
                item.action = RecordAction.UNCHANGED
                item.notes.append("already logged in Dynamics")
                continue
            item.action = RecordAction.CREATED
            contact.new_activities += 1
            if existing is not None:
                item.finishing = True
                item.notes.append("finishing the activity an interrupted attempt created")

    # -- reporting --------------------------------------------------------------------------------
    def outcome(self, item: EventItem, contacts: Mapping[str, ContactItem]) -> ActivityOutcome:
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
