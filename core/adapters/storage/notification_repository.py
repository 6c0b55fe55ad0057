"""In-app notifications in Table Storage (table ``Notifications``: PK workspace id, RK notification id).

One notification per incident: the id is derived from the incident (e.g. the connection that broke), so
``raise_once`` is an insert that simply loses against an existing row — across timer runs, instances and
export workers alike.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

from core.domain.notification import Notification

NOTIFICATIONS_TABLE = "Notifications"


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value))


def _from_entity(entity: Mapping[str, Any]) -> Notification:
    read_at = entity.get("ReadAt")
    return Notification(
        workspace_id=str(entity["PartitionKey"]),
        id=str(entity["RowKey"]),
        kind=str(entity["Kind"]),
        reason=entity.get("Reason"),
        title=str(entity.get("Title") or ""),
        message=str(entity.get("Message") or ""),
        created_at=_utc(entity["CreatedAt"]),
        read_at=_utc(read_at) if read_at else None,
        job=_job(entity.get("Job")),
    )


def _job(value: Any) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        parsed = json.loads(str(value))
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


class NotificationRepository:
    def __init__(self, tables: TableServiceClient, table_name: str = NOTIFICATIONS_TABLE) -> None:
        self._service = tables
        self._table_name = table_name
        self._table = tables.get_table_client(table_name)

    def ensure_ready(self) -> None:
        try:
            self._service.create_table(self._table_name)
        except ResourceExistsError:
            pass

    def raise_once(self, notification: Notification) -> bool:
        """Insert; False when this incident already has its notification (a conditional insert: of two
        instances raising the same incident at once, exactly one wins)."""
        entity: dict[str, Any] = {
            "PartitionKey": notification.workspace_id,
            "RowKey": notification.id,
            "Kind": notification.kind,
            "Reason": notification.reason,
            "Title": notification.title,
            "Message": notification.message,
            "CreatedAt": notification.created_at,
        }
        if notification.job is not None:
            entity["Job"] = json.dumps(dict(notification.job), separators=(",", ":"))
        try:
            self._table.create_entity(entity)
        except ResourceExistsError:
            return False
        return True

    def list(self, workspace_id: str, limit: int = 100) -> list[Notification]:
        """The newest ``limit`` notifications, newest first (rows come in RowKey order: sort them all)."""
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": workspace_id})
        items = sorted((_from_entity(e) for e in rows), key=lambda n: n.created_at, reverse=True)
        return items[:limit]

    def mark_read(self, workspace_id: str, notification_id: str, now: dt.datetime) -> Notification | None:
        try:
            entity = self._table.get_entity(workspace_id, notification_id)
        except ResourceNotFoundError:
            return None
        if not entity.get("ReadAt"):
            self._table.update_entity(
                {"PartitionKey": workspace_id, "RowKey": notification_id, "ReadAt": now},
                mode=UpdateMode.MERGE,
            )
            entity["ReadAt"] = now
        return _from_entity(entity)

    def clear(self, workspace_id: str, kind: str) -> int:
        """Remove every notification of ``kind`` for the workspace (the incident is over)."""
        removed = 0
        rows = self._table.query_entities(
            "PartitionKey eq @pk and Kind eq @kind", parameters={"pk": workspace_id, "kind": kind}
        )
        for entity in rows:
            try:
                self._table.delete_entity(workspace_id, entity["RowKey"])
                removed += 1
            except ResourceNotFoundError:
                pass
        return removed

    def delete_older(self, workspace_id: str, kind_prefix: str, before: dt.datetime, limit: int) -> int:
        """Delete at most ``limit`` notifications whose kind starts with ``kind_prefix`` created before
        ``before`` (one partition query, filtered by the table)."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk and CreatedAt lt @before",
            parameters={"pk": workspace_id, "before": before},
            select=["RowKey", "Kind"],
        )
        removed = 0
        for entity in rows:
            if removed >= limit:
                break
            if not str(entity.get("Kind") or "").startswith(kind_prefix):
                continue
            try:
                self._table.delete_entity(workspace_id, entity["RowKey"])
                removed += 1
            except ResourceNotFoundError:
                pass
        return removed
