"""Record owners of an export (step 4, user mapping): who owns what a run creates, and as whom it writes.

Two questions, two mappings of the setup guide's step 4:

- the owner (``ownerid`` of a created record) comes from the users mapping: the Dynamics user mapped to
  the platform user the export is for, else the default CRM owner, else the integration user;
- who writes (Dynamics' created-by / modified-by): for an export made for a campaign (the platform's
  service names the identity), the identity's mapped Dynamics user, impersonated with ``CallerObjectId``
  ("the Dynamics activity log shows the associated Dynamics user as the one who executed the action");
  otherwise a mapped owner writes on their own behalf, so Dynamics applies that user's permissions.
  Impersonation: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/impersonate-another-user-web-api

One query per chunk (``systemusers`` by id) checks every candidate: a missing or disabled user, or one
without an Entra object id (nothing to impersonate), is noted and the next in line is used
(``choose_owner`` in ``core.domain.export_plan`` is the pure owner rule). A fallback is never silent: the
note goes on each record it affects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.adapters.dataverse.client import DataverseClient
from core.adapters.dataverse.odata import in_filter
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.export_plan import OwnerChoice, OwnerSource, choose_owner

USER_SELECT = [
    "systemuserid",
    "fullname",
    "internalemailaddress",
    "isdisabled",
    "azureactivedirectoryobjectid",
]


@dataclass
class Owners:
    choice: OwnerChoice
    caller_object_id: (
        str | None
    )  # impersonated on writes (CallerObjectId): the identity's or the owner's user
    problem: str | None = None  # why the first choice of owner was not used
    writer_id: str | None = None  # the Dynamics user impersonated (None: the integration user writes)
    writer_problem: str | None = None  # why the campaign identity's user does not write (never silent)

    def writer_label(self) -> str:
        """Who a refused write was made as, for its error message."""
        if self.writer_id and self.writer_id.lower() != self.choice.systemuser_id.lower():
            return f"Dynamics user {self.writer_id} (identity_mapping)"
        return f"Dynamics user {self.choice.systemuser_id} ({self.choice.source.value})"


def choose_owners(
    client: DataverseClient,
    connection: DynamicsConnection,
    config: DynamicsConfig,
    user_id: str,
    identity_id: str | None = None,
) -> Owners:
    """Who owns the records this run creates and who writes them (step 4's rules), checked against
    Dynamics in one query: a mapped user that does not exist or is disabled falls back to the default
    owner, then to the integration user; a campaign identity whose user cannot write falls back to the
    owner's rule. Each fallback is noted."""
    mapping = config.user_mapping
    users = {u.user_id: str(u.dynamics_user_id) for u in mapping.users}
    identity_user = (
        next((str(m.dynamics_user_id) for m in mapping.identities if m.identity_id == identity_id), None)
        if identity_id
        else None
    )
    integration_id = connection.dynamics_user_id or client.who_am_i().user_id
    default = str(mapping.default_owner_id) if mapping.default_owner_id else None
    choice = choose_owner(users, default, integration_id, user_id)
    wanted = {choice.systemuser_id, integration_id} | {u for u in (default, identity_user) if u}
    rows = {
        str(r["systemuserid"]).lower(): r
        for r in client.query(
            "systemusers", filter=in_filter("systemuserid", sorted(wanted)), select=USER_SELECT
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
    owners = Owners(
        choice,
        str(caller) if caller else None,
        "; ".join(notes) or None,
        writer_id=choice.systemuser_id.lower() if caller else None,
    )
    if identity_id:
        _write_as_identity(owners, identity_id, identity_user, rows)
    return owners


def _write_as_identity(
    owners: Owners, identity_id: str, identity_user: str | None, rows: Mapping[str, Mapping[str, Any]]
) -> None:
    """A campaign export is written as the identity's Dynamics user; when that user cannot write, the
    owner's rule stands and the reason is kept for every record written."""
    row = rows.get(identity_user.lower()) if identity_user else None
    if identity_user is None:
        problem = f"identity {identity_id} is not mapped to a Dynamics user (step 4, identities mapping)"
    elif row is None:
        problem = f"identity {identity_id}'s Dynamics user {identity_user} does not exist"
    elif row.get("isdisabled"):
        problem = f"identity {identity_id}'s Dynamics user {identity_user} is disabled"
    elif not row.get("azureactivedirectoryobjectid"):
        problem = f"identity {identity_id}'s Dynamics user {identity_user} has no Entra object id to act as"
    else:
        owners.caller_object_id = str(row["azureactivedirectoryobjectid"])
        owners.writer_id = identity_user.lower()
        return
    fallback = (
        f"Dynamics user {owners.writer_id} ({owners.choice.source.value})"
        if owners.writer_id
        else "the integration user"
    )
    owners.writer_problem = f"{problem}; written as {fallback}"


def owner_bind(owner: Owners) -> dict[str, Any]:
    """The create-only column that sets the owner."""
    return {"ownerid@odata.bind": f"/systemusers({owner.choice.systemuser_id})"}
