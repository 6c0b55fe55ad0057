"""Finding the contacts of an activity chunk's events in Dynamics, and the users who may act.

One ``$batch``: the contacts the platform exported (by their deterministic ids), the activities an earlier
attempt created (by their deterministic ids, per table) and the Dynamics users who may act; then, only for
contacts not found by id but sent with their data, one ``$batch`` of the configured contact identifier's
queries, and only for those still not found (a name stored as ``"  Jane "``, ``"Van  Dyke"``,
``"O’Neill"``) one ``$batch`` of its broader second lookup, as an export does
(``core.services.jobs.lookups``, docs/matching.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.adapters.dataverse.batch import BatchOperation
from core.adapters.dataverse.odata import in_filter
from core.domain.activities import activity_id
from core.domain.campaign_properties import mapped_columns
from core.domain.catalog import Entity
from core.domain.config import DynamicsConfig, EngagementMapping
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.jobs import ExportEntity, deterministic_dynamics_id
from core.domain.lookup_plan import plan_lookups
from core.domain.matching import PARENT_ACCOUNT_VALUE, MatchStatus, match_records, rule_for
from core.services.activities.context import ActivityContext
from core.services.activities.items import ContactItem, EventItem
from core.services.jobs.lookups import PREFER_PAGES, capped, lookup_operations, match_broadly, too_broad_error

ACTIVITY_SELECT = ["activityid", "statecode", "statuscode"]
USER_SELECT = ["systemuserid", "fullname", "isdisabled", "azureactivedirectoryobjectid"]


def gather_contacts(items: Sequence[EventItem]) -> dict[str, ContactItem]:
    """The chunk's contacts by platform id, each with the data sent with its events."""
    contacts: dict[str, ContactItem] = {}
    for item in items:
        contact = contacts.setdefault(item.event.contact_id, ContactItem(item.event.contact_id, None))
        if contact.data is None and isinstance(item.contact_data, Mapping):
            contact.data = item.contact_data
        if contact.export_as is None and item.export_as and item.export_as != contact.platform_id:
            contact.export_as = item.export_as
    return contacts


def _contact_select(config: DynamicsConfig, contact_columns: Mapping[str, DynamicsColumn]) -> list[str]:
    tab = config.field_mapping.contacts
    wanted = [m.dynamics_field for m in tab if isinstance(m, EngagementMapping)]
    wanted += list(mapped_columns(config.campaign_mapping).values())
    return [c for c in dict.fromkeys(wanted) if c in contact_columns]


def find_in_dynamics(
    run: ActivityContext,
    contacts: Mapping[str, ContactItem],
    tables: Sequence[str],
    contact_columns: Mapping[str, DynamicsColumn],
) -> tuple[dict[str, Mapping[str, Any]], str]:
    """One $batch: contacts the platform exported (deterministic ids), existing activities, acting
    users; then, only for contacts not found that way, one $batch of the identifier's queries
    (``contains`` on URLs and name/company lists are the expensive reads: skip them when we can) and,
    only for contacts those leave unmatched, one $batch of the broader second lookup."""
    rule = rule_for(Entity.CONTACT, run.identifiers)
    with_data = [c for c in contacts.values() if c.data is not None]
    current = [*_contact_select(run.config, contact_columns), PARENT_ACCOUNT_VALUE]
    select = list(dict.fromkeys(["contactid", *current]))
    # A contact exported by the platform has its own deterministic id, or (exported for events) that of
    # the request's first platform contact of the same person.
    own_ids: dict[str, list[ContactItem]] = {}
    for c in contacts.values():
        for platform_id in dict.fromkeys([c.platform_id, c.export_id]):
            own_ids.setdefault(
                deterministic_dynamics_id(run.ws, ExportEntity.CONTACTS, platform_id), []
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
        ids = sorted({activity_id(run.ws, i.event.id) for i in run.with_table(table)})
        if not ids:
            continue
        entity_set = run.client.entity_set_name(table)
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
    mapping = run.config.user_mapping
    integration_id = (run.connection.dynamics_user_id or run.client.who_am_i().user_id).lower()
    candidates = {integration_id}
    identity_users = {m.identity_id: str(m.dynamics_user_id) for m in mapping.identities}
    user_users = {m.user_id: str(m.dynamics_user_id) for m in mapping.users}
    for item in run.items:
        if item.event.identity_id in identity_users:
            candidates.add(identity_users[item.event.identity_id].lower())
        platform_user = run.platform_user(item.event)
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
    pages = run.batch_gets(gets)
    own_rows = {str(r["contactid"]).lower(): r for r in pages[0]}
    for own_id, owners in own_ids.items():
        row = own_rows.get(own_id)
        for contact in owners if row is not None else []:
            if contact.dynamics_id is not None and contact.dynamics_id != own_id:
                continue  # found under its own id: that one wins
            contact.dynamics_id, contact.current = own_id, row
            contact.match = {"status": "matched", "rule": "created_by_platform", "dynamicsId": own_id}
    run.existing = {}
    for offset, _table in enumerate(activity_sets):
        for row in pages[1 + offset]:
            run.existing[str(row["activityid"]).lower()] = row
    users: dict[str, Mapping[str, Any]] = {
        str(r["systemuserid"]).lower(): r for r in pages[1 + len(activity_sets)]
    }
    pending = [c for c in with_data if c.dynamics_id is None]
    if pending:
        records = [c.data or {} for c in pending]
        plan = plan_lookups(Entity.CONTACT, rule, records, extra_select=list(current))
        rule_select = list(plan.select)
        queries = lookup_operations(plan)
        found = run.batch_gets(queries) if queries else []
        candidates_rows = [row for page in found for row in page]
        results = match_records(rule, records, candidates_rows, id_column="contactid")
        # Stored with extra spaces or another apostrophe ("  Jane ", "Van  Dyke"): the broad lookup.
        broad_rows = match_broadly(
            Entity.CONTACT,
            rule,
            records,
            results,
            range(len(pending)),
            select=rule_select,
            batch_gets=run.batch_gets,
            id_column="contactid",
        )
        too_broad = capped([*found, broad_rows])
        candidates_rows += broad_rows
        by_id = {str(r["contactid"]).lower(): r for r in candidates_rows}
        for contact, result in zip(pending, results, strict=True):
            contact.match = result.to_json()
            if result.status is MatchStatus.NONE and too_broad:
                contact.export_problem = too_broad_error().message  # not created: its row may be unread
            if result.status is not MatchStatus.NONE and result.dynamics_id:
                contact.dynamics_id = result.dynamics_id.lower()
                contact.current = by_id.get(contact.dynamics_id)
    run.identity_users, run.user_users = identity_users, user_users
    return users, integration_id
