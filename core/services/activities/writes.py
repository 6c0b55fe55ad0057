"""The writes of an activity chunk: create the activities, update their contacts, close them.

1. one ``CreateMultiple`` per (activity table, acting user) — each acting user's activities are created
   with ``CallerObjectId`` so Dynamics records that user as creator and owner; a failing call is split in
   halves until the bad events are isolated (reported with Dynamics' error), the others are written; a
   create whose answer was lost is created, one another attempt made is ``unchanged``
   (``core.services.jobs.bulk``);
2. one ``UpdateMultiple`` for the contacts (engagement field + campaign properties, changed values only)
   and one for their accounts when the companies tab holds the engagement mapping;
3. one ``UpdateMultiple`` per table closing the new activities (statecode Completed + fitting status).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from core.adapters.dataverse.errors import PRIVILEGE_DENIED, DataverseError, column_in_message
from core.domain.activities import Actor, engagement_value
from core.domain.campaign_properties import campaign_values
from core.domain.config import EngagementMapping
from core.domain.export_plan import DesiredValue, PlanAction, plan_write
from core.domain.jobs import FieldError, RecordAction
from core.domain.matching import PARENT_ACCOUNT_VALUE
from core.services.activities.context import ActivityContext
from core.services.activities.items import ContactItem, EventItem
from core.services.jobs.bulk import create_with_own_ids, update_isolating

log = logging.getLogger(__name__)


def create_activities(run: ActivityContext, items: Sequence[EventItem]) -> None:
    """One CreateMultiple per (activity table, acting user), as that user (``CallerObjectId``)."""
    groups: dict[tuple[str, str | None], list[EventItem]] = {}
    for item in items:
        if item.finishing or item.write is None or item.actor is None:
            continue
        groups.setdefault((item.write.table, item.actor.caller_object_id), []).append(item)
    for (table, caller), group in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or "")):
        _create_group(run, table, caller, group)


def _create_group(run: ActivityContext, table: str, caller: str | None, group: Sequence[EventItem]) -> None:
    report = create_with_own_ids(
        run.client,
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


def update_contacts(run: ActivityContext, contacts: Mapping[str, ContactItem]) -> None:
    """The engagement field (once per new activity) and campaign properties, changed values only."""
    contact_columns = run.columns("contact")
    engagement, engagement_problem = engagement_value(run.config.field_mapping.contacts, contact_columns)
    updates: list[tuple[ContactItem, dict[str, Any]]] = []
    problems: dict[str, list[str]] = {}
    # Only activities this run really logged count (not creates that failed or lost a race).
    for contact in contacts.values():
        contact.new_activities = 0
    for item in run.items:
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
                contact.data, run.config.campaign_mapping, contact_columns
            )
            values.extend(campaign)
            for problem in campaign_problems:
                problems.setdefault(contact.platform_id, []).append(f"{problem.field}: {problem.message}")
        plan = plan_write(contact.current or {}, values)
        if plan.action is PlanAction.UPDATE:
            updates.append((contact, plan.payload))
    failed = _update_many(run, "contact", "contactid", [(c.dynamics_id or "", p) for c, p in updates])
    for index, message in failed.items():
        contact = updates[index][0]
        problems.setdefault(contact.platform_id, []).append(f"contact not updated: {message}")
    _company_engagement(run, contacts)
    for item in run.items:
        for message in problems.get(item.event.contact_id, []):
            if item.action is RecordAction.CREATED:
                item.notes.append(message)


def _company_engagement(run: ActivityContext, contacts: Mapping[str, ContactItem]) -> None:
    """An engagement mapping in the companies tab: the contact's account gets the value."""
    tab = run.config.field_mapping.companies
    if not any(isinstance(m, EngagementMapping) for m in tab):
        return
    value, problem = engagement_value(tab, run.columns("account"))
    accounts = {
        str(c.current.get(PARENT_ACCOUNT_VALUE)).lower()
        for c in contacts.values()
        if c.new_activities and c.current and c.current.get(PARENT_ACCOUNT_VALUE)
    }
    if value is None or not accounts:
        if problem is not None:
            log.warning("company engagement field not written: %s", problem.message)
        return
    _update_many(run, "account", "accountid", [(a, {value.column: value.value}) for a in sorted(accounts)])


def _update_many(
    run: ActivityContext, table: str, id_column: str, updates: Sequence[tuple[str, dict[str, Any]]]
) -> dict[int, str]:
    records = [{**payload, id_column: record_id} for record_id, payload in updates]
    refused = update_isolating(run.client, table, records)
    return {i: exc.message or str(exc) for i, exc in refused.items()}


def close_activities(run: ActivityContext, items: Sequence[EventItem]) -> None:
    """One UpdateMultiple per table: statecode Completed and its fitting status (last, see run)."""
    by_table: dict[str, list[EventItem]] = {}
    for item in items:
        if item.write is not None:
            by_table.setdefault(item.write.table, []).append(item)
    for table, group in sorted(by_table.items()):
        updates = [(i.write.activity_id, dict(i.write.close)) for i in group if i.write is not None]
        for index, message in _update_many(run, table, "activityid", updates).items():
            group[index].errors.append(FieldError("statecode", f"logged but not closed: {message}"))


def _error_message(exc: DataverseError, actor: Actor | None) -> str:
    message = exc.message or str(exc)
    if exc.code == PRIVILEGE_DENIED and actor is not None:
        return f"Dynamics user {actor.systemuser_id} ({actor.source.value}) lacks the privilege: {message}"
    return message
