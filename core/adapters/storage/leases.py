"""Short exclusive leases on a key, built on Table Storage ETags (table ``Leases``).

``acquire`` succeeds for exactly one caller while the lease is held: a free key is claimed by an insert
(loses with 409 if someone else inserted first), an expired lease by an ETag-conditional replace (loses
with 412 if someone else took it first). A crashed holder's lease simply expires.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

LEASES_TABLE = "Leases"


@dataclass(frozen=True)
class Lease:
    scope: str
    key: str
    owner: str
    etag: str
    until: dt.datetime


class TableLeases:
    def __init__(
        self,
        tables: TableServiceClient,
        scope: str,
        table_name: str = LEASES_TABLE,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._service = tables
        self._table_name = table_name
        self._table = tables.get_table_client(table_name)
        self._scope = scope
        self._clock = clock

    def ensure_ready(self) -> None:
        try:
            self._service.create_table(self._table_name)
        except ResourceExistsError:
            pass

    def acquire(self, key: str, duration: dt.timedelta) -> Lease | None:
        now = self._clock()
        owner = uuid.uuid4().hex
        entity = {"PartitionKey": self._scope, "RowKey": key, "Owner": owner, "Until": now + duration}
        try:
            meta = self._table.create_entity(entity)
            return Lease(self._scope, key, owner, str(meta["etag"]), now + duration)
        except ResourceExistsError:
            pass
        try:
            current = self._table.get_entity(self._scope, key)
        except ResourceNotFoundError:
            return None  # released between our insert and read: let the next run take it
        until = current.get("Until")
        if isinstance(until, dt.datetime) and until.replace(tzinfo=until.tzinfo or dt.UTC) > now:
            return None
        try:
            meta = self._table.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return Lease(self._scope, key, owner, str(meta["etag"]), now + duration)

    def release(self, lease: Lease) -> None:
        try:
            self._table.delete_entity(
                lease.scope, lease.key, etag=lease.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            pass  # expired and taken over by someone else: theirs now
