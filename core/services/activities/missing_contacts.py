"""Contacts not in Dynamics exported first for their events (``syncIdentifiers.exportMissingContacts``).

Between finding the contacts and logging the activities, the contacts of events to log that were not
found are exported by the export pipeline (the run's ``ContactExporter``,
``core.services.jobs.contact_export``), a handful of requests more per chunk that has any; off, their
events are skipped with the reason. Two platform contacts the identifier says are one person are exported
once; a contact found under its export id is ``created`` when this chunk's earlier attempt created it (its
export checkpoints say), else ``existing``.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.domain.activities import ContactAction, contact_export_problem
from core.domain.catalog import Entity
from core.domain.config import DynamicsConfig
from core.domain.jobs import FieldError, RecordAction
from core.domain.matching import duplicate_groups, rule_for
from core.services.activities.context import ActivityContext
from core.services.activities.items import ContactItem, EventItem
from core.services.jobs.contact_export import ContactToExport, created_earlier


def export_missing(run: ActivityContext, contacts: Mapping[str, ContactItem]) -> None:
    """Export the contacts of events to log that are not in Dynamics (exportMissingContacts)."""
    first: dict[str, EventItem] = {}  # each contact's first event to log: its checkpoint row, its owner
    for item in run.items:
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
        done = created_earlier(run.store, run.ws, run.job_id, [first[c.platform_id].seq for c in own])
        for contact in own:
            if contact.export_id in done:
                contact.action = ContactAction.CREATED
    ready: list[ContactItem] = []
    for platform_id in first:
        contact = contacts[platform_id]
        if contact.dynamics_id is not None:
            continue
        contact.export_problem = contact.export_problem or contact_export_problem(platform_id, contact.data)
        if contact.export_problem is None:
            ready.append(contact)
    # Two platform contacts the identifier says are one person: exported once, both events regard it.
    rule = rule_for(Entity.CONTACT, run.identifiers)
    for group in duplicate_groups(rule, [c.data or {} for c in ready]):
        for index in group[1:]:
            ready[index].same_as = ready[group[0]].platform_id
    exported_as: dict[str, ContactItem] = {}  # the submit's grouping too (it saw the whole request)
    for contact in ready:
        keeper = exported_as.setdefault(contact.export_id, contact)
        if keeper is not contact and contact.same_as is None:
            contact.same_as = keeper.same_as or keeper.platform_id
    to_export = [c for c in ready if c.same_as is None]
    if not to_export:
        return
    results = run.export_contacts(
        client=run.client,
        connection=run.connection,
        workspace_id=run.ws,
        job_id=run.job_id,
        config=run.config,
        gate=run.checkpoints.gate,
        contacts=[
            ContactToExport(
                c.export_id,
                c.data or {},
                first[c.platform_id].seq,
                run.platform_user(first[c.platform_id].event) or run.user_id,
                first[c.platform_id].event.identity_id,
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


def not_found_reason(config: DynamicsConfig, contact: ContactItem, item: EventItem) -> str:
    """Why an event's contact is not in Dynamics, and what would change that."""
    if contact.data is None:
        why = (
            f"contact {contact.platform_id} is not in Dynamics (not exported by the platform, "
            "and no contact data was sent to match it with the contact identifier)"
        )
    else:
        why = f"contact {contact.platform_id} is not in Dynamics (no match for the contact identifier)"
    if not config.sync_identifiers.export_missing_contacts:
        return why + "; syncIdentifiers.exportMissingContacts would export it first"
    if item.table is None:
        return why + "; a signal alone does not export a contact"
    return why
