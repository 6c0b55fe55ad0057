"""Which CRM a workspace has enabled: one ``active`` entity per workspace, changed only conditionally.

Table ``Integrations``, PartitionKey = escaped workspace id, RowKey ``active``, property ``crm`` ("" when
none). Enabling inserts the entity (conditional: fails if it exists) or replaces it only if its ETag is
unchanged since it was read showing no active CRM; so of many concurrent enables for different CRMs,
exactly one wins and the others see the winner.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from core.adapters.storage.tables import Storage, escape_key

TABLE = "Integrations"
ACTIVE = "active"
MAX_ATTEMPTS = 50


class ActiveCrmConflict(Exception):
    def __init__(self, active: str) -> None:
        super().__init__(f"{active} is already enabled")
        self.active = active


class IntegrationsRepository:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    @property
    def _table(self) -> TableClient:
        return self._storage.table(TABLE)

    def _read(self, pk: str) -> Any | None:
        try:
            return self._table.get_entity(pk, ACTIVE)
        except ResourceNotFoundError:
            return None

    def active(self, workspace_id: str) -> str | None:
        entity = self._read(escape_key(workspace_id))
        return (str(entity.get("crm") or "") or None) if entity is not None else None

    def _entity(self, pk: str, crm: str, user_id: str) -> dict[str, Any]:
        return {
            "PartitionKey": pk,
            "RowKey": ACTIVE,
            "crm": crm,
            "changedBy": user_id,
            "changedAt": dt.datetime.now(dt.UTC),
        }

    def enable(self, workspace_id: str, crm: str, user_id: str) -> None:
        """Make ``crm`` the active CRM; ``ActiveCrmConflict`` if another one is active."""
        pk = escape_key(workspace_id)
        for _ in range(MAX_ATTEMPTS):
            entity = self._read(pk)
            if entity is None:
                try:
                    self._table.create_entity(self._entity(pk, crm, user_id))
                    return
                except ResourceExistsError:
                    continue
            current = str(entity.get("crm") or "")
            if current == crm:
                return
            if current:
                raise ActiveCrmConflict(current)
            try:
                self._table.update_entity(
                    self._entity(pk, crm, user_id),
                    mode=UpdateMode.REPLACE,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return
            except ResourceModifiedError:
                continue
        raise RuntimeError("could not change the active CRM: too much contention")

    def disable(self, workspace_id: str, crm: str, user_id: str) -> None:
        """Disable ``crm`` if it is the active one (otherwise nothing to do)."""
        pk = escape_key(workspace_id)
        for _ in range(MAX_ATTEMPTS):
            entity = self._read(pk)
            if entity is None or str(entity.get("crm") or "") != crm:
                return
            try:
                self._table.update_entity(
                    self._entity(pk, "", user_id),
                    mode=UpdateMode.REPLACE,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return
            except ResourceModifiedError:
                continue
        raise RuntimeError("could not change the active CRM: too much contention")
