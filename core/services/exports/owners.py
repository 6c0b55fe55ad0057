"""Record owners of an export (step 4, user mapping): who owns what a run creates, and as whom it writes.

One query per chunk (``systemusers`` by id) checks the chosen owner, the default owner and the integration
user: a missing or disabled user is noted and the next in line is used (``choose_owner`` in
``core.domain.export_plan`` is the pure rule). A mapped user is impersonated (``CallerObjectId``) so
Dynamics records them as creator; the others are set as owner only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.adapters.dataverse.client import DataverseClient
from core.adapters.dataverse.odata import in_filter
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.export_plan import OwnerChoice, OwnerSource, choose_owner


@dataclass
class Owners:
    choice: OwnerChoice
    caller_object_id: str | None  # impersonated on writes (CallerObjectId), when the owner is mapped
    problem: str | None = None  # why the first choice was not used


def choose_owners(
    client: DataverseClient, connection: DynamicsConnection, config: DynamicsConfig, user_id: str
) -> Owners:
    """Who owns the records this run creates (step 4's rules), checked against Dynamics in one query:
    a mapped user that does not exist or is disabled falls back to the default owner, then to the
    integration user; the fallback is noted on each created record."""
    mapping = config.user_mapping
    users = {u.user_id: str(u.dynamics_user_id) for u in mapping.users}
    integration_id = connection.dynamics_user_id or client.who_am_i().user_id
    default = str(mapping.default_owner_id) if mapping.default_owner_id else None
    choice = choose_owner(users, default, integration_id, user_id)
    wanted = {choice.systemuser_id, integration_id} | ({default} if default else set())
    rows = {
        str(r["systemuserid"]).lower(): r
        for r in client.query(
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
    return Owners(choice, str(caller) if caller else None, "; ".join(notes) or None)


def owner_bind(owner: Owners) -> dict[str, Any]:
    """The create-only column that sets the owner."""
    return {"ownerid@odata.bind": f"/systemusers({owner.choice.systemuser_id})"}
