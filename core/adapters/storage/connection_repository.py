"""Connection metadata and pending OAuth flows in Table Storage. No tokens, no key material here.

- table ``DynamicsConnections``: PK workspace id, RK ``connection`` — ``ConnectionRecord`` fields
  (status, environment URL, integration user email, Dynamics user id, timestamps, the name of the Key
  Vault secret holding the encrypted token cache).
- table ``DynamicsAuthFlows``: PK = RK = SHA-256 of the OAuth ``state`` (the state itself is never
  stored) — the msal flow dict sealed with ``TokenCipher`` (it holds the PKCE verifier and nonce),
  bound to workspace and user, expiring after 10 minutes, taken exactly once: an ETag-conditional update
  claims the row (412/404 for everyone else), then it is deleted. Not a conditional delete alone: the
  tables SDK answers a delete of a row that is already gone with success, so two racing callbacks would
  both have "deleted" it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableServiceClient, UpdateMode

from core.domain.connection import ConnectionRecord, ConnectionStatus

CONNECTIONS_TABLE = "DynamicsConnections"
FLOWS_TABLE = "DynamicsAuthFlows"
_RK = "connection"


class ConcurrentUpdate(Exception):
    """The row changed since it was read (ETag mismatch)."""


def _ensure_table(tables: TableServiceClient, name: str) -> None:
    try:
        tables.create_table(name)
    except ResourceExistsError:
        pass


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value))


def _to_entity(record: ConnectionRecord) -> dict[str, Any]:
    return {
        "PartitionKey": record.workspace_id,
        "RowKey": _RK,
        "ConnectionId": record.connection_id,
        "Status": record.status.value,
        "EnvironmentUrl": record.environment_url,
        "SecretName": record.secret_name,
        "AccountId": record.account_id,
        "IntegrationUserEmail": record.integration_user_email,
        "DynamicsUserId": record.dynamics_user_id,
        "ConnectedBy": record.connected_by,
        "ConnectedAt": record.connected_at,
        "LastRefreshAt": record.last_refresh_at,
        "AccessTokenExpiresAt": record.access_token_expires_at,
        "Reason": record.reason,
        "StatusChangedAt": record.status_changed_at,
    }


def _from_entity(entity: Mapping[str, Any]) -> ConnectionRecord:
    changed = entity.get("StatusChangedAt")
    return ConnectionRecord(
        workspace_id=str(entity["PartitionKey"]),
        connection_id=str(entity["ConnectionId"]),
        status=ConnectionStatus(str(entity["Status"])),
        environment_url=str(entity["EnvironmentUrl"]),
        secret_name=str(entity["SecretName"]),
        account_id=str(entity["AccountId"]),
        integration_user_email=entity.get("IntegrationUserEmail"),
        dynamics_user_id=entity.get("DynamicsUserId"),
        connected_by=str(entity.get("ConnectedBy") or ""),
        connected_at=_utc(entity["ConnectedAt"]),
        last_refresh_at=_utc(entity["LastRefreshAt"]),
        access_token_expires_at=_utc(entity["AccessTokenExpiresAt"]),
        reason=entity.get("Reason"),
        status_changed_at=_utc(changed) if changed else None,
    )


@dataclass(frozen=True)
class Versioned:
    record: ConnectionRecord
    etag: str


class ConnectionRepository:
    def __init__(self, tables: TableServiceClient, table_name: str = CONNECTIONS_TABLE) -> None:
        self._service = tables
        self._table_name = table_name
        self._table = tables.get_table_client(table_name)

    def ensure_ready(self) -> None:
        _ensure_table(self._service, self._table_name)

    def get(self, workspace_id: str) -> Versioned | None:
        try:
            entity = self._table.get_entity(workspace_id, _RK)
        except ResourceNotFoundError:
            return None
        return Versioned(_from_entity(entity), str(entity.metadata["etag"]))

    def put(self, record: ConnectionRecord) -> None:
        """Create or replace unconditionally (a new connect wins over whatever was there)."""
        self._table.upsert_entity(_to_entity(record), mode=UpdateMode.REPLACE)

    def replace(self, record: ConnectionRecord, etag: str) -> str:
        """Replace only if unchanged since read; ``ConcurrentUpdate`` otherwise."""
        try:
            meta = self._table.update_entity(
                _to_entity(record),
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrentUpdate(record.workspace_id) from exc
        return str(meta.get("etag", ""))

    def delete(self, workspace_id: str) -> None:
        try:
            self._table.delete_entity(workspace_id, _RK)
        except ResourceNotFoundError:
            pass

    def iter_due(
        self, expires_before: dt.datetime, refreshed_before: dt.datetime, page_size: int = 1000
    ) -> Iterator[ConnectionRecord]:
        """Connected workspaces whose access token expires before, or last refresh is older than, the bounds.

        The filter runs in the table service; the SDK follows continuation tokens page by page.
        """
        query = (
            "RowKey eq @rk and Status eq @status and "
            "( AccessTokenExpiresAt le @expires or LastRefreshAt le @refreshed )"
        )
        params = {
            "rk": _RK,
            "status": ConnectionStatus.CONNECTED.value,
            "expires": expires_before,
            "refreshed": refreshed_before,
        }
        for entity in self._table.query_entities(query, parameters=params, results_per_page=page_size):
            yield _from_entity(entity)


@dataclass(frozen=True)
class PendingFlow:
    workspace_id: str
    user_id: str
    sealed_flow: str
    expires_at: dt.datetime


def state_key(state: str) -> str:
    return hashlib.sha256(b"dynamics-oauth-state|" + state.encode("utf-8")).hexdigest()


class AuthFlowRepository:
    def __init__(self, tables: TableServiceClient, table_name: str = FLOWS_TABLE) -> None:
        self._service = tables
        self._table_name = table_name
        self._table = tables.get_table_client(table_name)

    def ensure_ready(self) -> None:
        _ensure_table(self._service, self._table_name)

    def add(self, state: str, flow: PendingFlow) -> None:
        key = state_key(state)
        self._table.create_entity(
            {
                "PartitionKey": key,
                "RowKey": key,
                "WorkspaceId": flow.workspace_id,
                "UserId": flow.user_id,
                "SealedFlow": flow.sealed_flow,
                "ExpiresAt": flow.expires_at,
            }
        )

    def take(self, state: str) -> PendingFlow | None:
        """Remove and return the flow for ``state``; None if unknown or already taken by someone else."""
        key = state_key(state)
        try:
            entity = self._table.get_entity(key, key)
        except ResourceNotFoundError:
            return None
        if entity.get("Taken"):
            return None
        try:  # the claim: exactly one caller's conditional update succeeds
            self._table.update_entity(
                {"PartitionKey": key, "RowKey": key, "Taken": True},
                mode=UpdateMode.MERGE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        try:
            self._table.delete_entity(key, key)
        except HttpResponseError:
            pass  # claimed already; purge_expired removes the row later
        return PendingFlow(
            workspace_id=str(entity["WorkspaceId"]),
            user_id=str(entity["UserId"]),
            sealed_flow=str(entity["SealedFlow"]),
            expires_at=_utc(entity["ExpiresAt"]),
        )

    def purge_expired(self, now: dt.datetime) -> int:
        removed = 0
        for entity in self._table.query_entities("ExpiresAt lt @now", parameters={"now": now}):
            try:
                self._table.delete_entity(entity["PartitionKey"], entity["RowKey"])
                removed += 1
            except ResourceNotFoundError:
                pass
        return removed
