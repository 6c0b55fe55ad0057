"""Dynamics columns of a workspace's environment, with the three icons for a platform field.

``FieldsService.list_fields`` answers ``GET /api/dynamics/fields``: every column of ``contact`` or
``account`` from live metadata (through the process-wide ``MetadataCache``, so exports, this endpoint and
the configuration checks share one copy per environment; ``refresh`` drops it first), and, for a platform
field, ``check_compatibility`` per column: ``ok`` (blue check), ``warning`` (yellow) or ``error`` (red).

Failures are typed for the caller: ``NotConnected`` and ``ReconnectRequired`` pass through unchanged,
anything that keeps Dynamics from answering (network, 5xx, throttling not waited out, a token Entra would
not refresh, a server whose connection is not configured) becomes ``DynamicsUnavailable``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from core.adapters.dataverse.client import DataverseClient
from core.adapters.dataverse.errors import DataverseError, Throttled
from core.adapters.dataverse.odata import in_filter
from core.domain.catalog import Entity, PlatformField, resolve_field
from core.domain.compatibility import Compatibility, check_compatibility
from core.domain.connection import DynamicsConnection, TransientTokenError
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.icon_matrix import IconMatrix, icon_matrix, metadata_version, rules_version, targets
from core.services.dynamics.metadata_cache import MetadataCache
from core.settings import SettingsError

log = logging.getLogger(__name__)

ClientFor = Callable[[str], tuple[DataverseClient, DynamicsConnection]]
"""``client_for(workspace_id)`` -> the workspace's client and connection; raises ``NotConnected``."""

CustomFields = Callable[[str], Iterable[PlatformField]]

# API name of the entity -> (Dataverse table, platform catalog entity whose fields map to it).
ENTITIES: Mapping[str, tuple[str, Entity]] = {
    "contact": ("contact", Entity.CONTACT),
    "account": ("account", Entity.COMPANY),
}
USER_LOOKUP_CHUNK = 100  # GUIDs per ``In`` query (about 4 KB of URL)
ICON_CACHE_SIZE = 64  # icon matrices kept (per environment, table, metadata and custom-field version)

T = TypeVar("T")


class UnknownEntity(ValueError):
    def __init__(self, entity: str) -> None:
        shown = entity if len(entity) <= 40 else entity[:37] + "..."
        super().__init__(f"unknown entity {shown!r}; use one of {', '.join(ENTITIES)}")


class UnknownPlatformField(ValueError):
    def __init__(self, entity: str, name: str) -> None:
        shown = name if len(name) <= 60 else name[:57] + "..."
        hint = " or company.<field>" if entity == "contact" else ""
        super().__init__(
            f"unknown platform field {shown!r} for {entity}: use a catalog field{hint} "
            "or one of the workspace's custom fields"
        )


class DynamicsUnavailable(Exception):
    """Dynamics could not be asked. ``reason`` is safe to show (no token, no query values)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class SystemUser:
    id: str  # lowercase GUID
    name: str | None
    email: str | None
    enabled: bool

    @property
    def label(self) -> str:
        return self.email or self.name or self.id


@dataclass(frozen=True)
class ColumnView:
    """One column as the fields endpoint shows it; ``compatibility`` only when a platform field was given."""

    column: DynamicsColumn
    compatibility: Compatibility | None = None


@dataclass(frozen=True)
class FieldsListing:
    entity: str
    environment_url: str
    columns: tuple[ColumnView, ...]
    platform_field: PlatformField | None = None
    platform_field_name: str | None = None  # as asked (``company.name``), when given

    @property
    def counts(self) -> dict[str, int]:
        """Columns by compatibility icon (ok / warning / error) for the platform field asked about."""
        counts = {"ok": 0, "warning": 0, "error": 0}
        for view in self.columns:
            if view.compatibility is not None:
                counts[view.compatibility.level.value] += 1
        return counts


def dynamics_unavailable(exc: Exception, what: str = "the metadata request") -> DynamicsUnavailable:
    """``exc`` (a Dataverse, token or settings failure) as the reason a caller may be shown."""
    if isinstance(exc, Throttled):
        return DynamicsUnavailable("Dynamics is throttling this connection; try again later", exc.retry_after)
    if isinstance(exc, DataverseError):
        status = f"HTTP {exc.status}" if exc.status is not None else "no response"
        code = f" {exc.code}" if exc.code else ""
        return DynamicsUnavailable(f"Dynamics did not answer {what} ({status}{code})")
    if isinstance(exc, TransientTokenError):
        return DynamicsUnavailable("a token for Dynamics could not be obtained right now; try again later")
    return DynamicsUnavailable("the Dynamics connection is not configured on this server")


@dataclass(frozen=True)
class IconListing:
    entity: str
    environment_url: str
    version: str  # changes with the table's metadata, the workspace's custom fields and the rules
    matrix: IconMatrix


class FieldsService:
    def __init__(
        self,
        client_for: ClientFor,
        cache: MetadataCache | None = None,
        custom_fields: CustomFields | None = None,
    ) -> None:
        self._client_for = client_for
        self._cache = cache or MetadataCache()
        self._custom_fields = custom_fields
        self._icons: dict[tuple[str, str, str], IconMatrix] = {}
        self._icons_lock = threading.Lock()

    def custom_fields(self, workspace_id: str) -> list[PlatformField]:
        return list(self._custom_fields(workspace_id)) if self._custom_fields else []

    def _call(self, action: Callable[[], T]) -> T:
        """Run a Dynamics read; everything that keeps Dynamics from answering -> ``DynamicsUnavailable``."""
        try:
            return action()
        except (DataverseError, TransientTokenError, SettingsError) as exc:
            log.warning("Dynamics metadata unavailable: %s", type(exc).__name__)
            raise dynamics_unavailable(exc) from exc

    def connection(self, workspace_id: str) -> tuple[DataverseClient, DynamicsConnection]:
        """The workspace's client; ``NotConnected`` when it has no connection."""
        return self._call(lambda: self._client_for(workspace_id))

    def columns(
        self, workspace_id: str, table: str, *, refresh: bool = False
    ) -> tuple[DynamicsConnection, dict[str, DynamicsColumn]]:
        """Columns of ``table`` by logical name (cached per environment; ``refresh`` re-reads them)."""
        client, connection = self.connection(workspace_id)
        if refresh:
            self._cache.invalidate(client.environment_url)
        return connection, self._call(lambda: self._cache.columns(client, table))

    def system_users(self, workspace_id: str, ids: Iterable[str]) -> dict[str, SystemUser]:
        """The systemusers among ``ids`` that exist, by lowercase id (one ``In`` query per 100 ids)."""
        wanted = sorted({i.lower() for i in ids})
        if not wanted:
            return {}
        client, _ = self.connection(workspace_id)
        found: dict[str, SystemUser] = {}
        for start in range(0, len(wanted), USER_LOOKUP_CHUNK):
            chunk = wanted[start : start + USER_LOOKUP_CHUNK]
            for row in self._call(functools.partial(_user_rows, client, chunk)):
                user_id = str(row["systemuserid"]).lower()
                found[user_id] = SystemUser(
                    user_id,
                    row.get("fullname") or None,
                    row.get("internalemailaddress") or None,
                    enabled=not row.get("isdisabled"),
                )
        return found

    def resolve_platform_field(self, workspace_id: str, entity: str, name: str) -> PlatformField:
        _, catalog_entity = _entity(entity)
        field = resolve_field(catalog_entity, name, self.custom_fields(workspace_id))
        if field is None:
            raise UnknownPlatformField(entity, name)
        return field

    def list_fields(
        self,
        workspace_id: str,
        entity: str,
        *,
        platform_field: str | None = None,
        refresh: bool = False,
    ) -> FieldsListing:
        """Columns of ``entity`` (``contact`` | ``account``), each with its icon when ``platform_field``
        names a field of that entity (checked before Dynamics is asked)."""
        table, _ = _entity(entity)
        field = (
            self.resolve_platform_field(workspace_id, entity, platform_field)
            if platform_field is not None
            else None
        )
        connection, columns = self.columns(workspace_id, table, refresh=refresh)
        views = tuple(
            ColumnView(column, check_compatibility(field.type, column) if field is not None else None)
            for _, column in sorted(columns.items())
        )
        return FieldsListing(entity, connection.environment_url, views, field, platform_field)

    def icons(self, workspace_id: str, entity: str, *, refresh: bool = False) -> IconListing:
        """Every icon of ``entity``'s tab (``contact`` | ``account``) at once, from live metadata; the
        matrix is computed once per metadata and custom-field version and kept (bounded)."""
        table, catalog_entity = _entity(entity)
        connection, columns = self.columns(workspace_id, table, refresh=refresh)
        custom = sorted(
            (f for f in self.custom_fields(workspace_id)),
            key=lambda f: (f.entity.value, f.name),
        )
        wanted = targets(catalog_entity, custom)
        custom_key = hashlib.sha256(repr(custom).encode()).hexdigest()[:16]
        version = f"{metadata_version(columns)}-{custom_key}-{rules_version()}"
        key = (connection.environment_url, table, version)
        with self._icons_lock:
            matrix = self._icons.get(key)
        if matrix is None:
            matrix = icon_matrix(columns, wanted)
            with self._icons_lock:
                if len(self._icons) >= ICON_CACHE_SIZE:
                    self._icons.pop(next(iter(self._icons)))
                self._icons[key] = matrix
        return IconListing(entity, connection.environment_url, version, matrix)


def _entity(entity: str) -> tuple[str, Entity]:
    try:
        return ENTITIES[entity]
    except KeyError:
        raise UnknownEntity(entity) from None


def _user_rows(client: DataverseClient, ids: Sequence[str]) -> list[dict[str, Any]]:
    return list(
        client.query(
            "systemusers",
            filter=in_filter("systemuserid", ids),
            select=["systemuserid", "fullname", "internalemailaddress", "isdisabled"],
        )
    )
