"""Dynamics users for the users-mapping step: a searchable, paged list and suggestions by e-mail.

``DynamicsUsers.page`` answers ``GET /api/dynamics/users``: the environment's ``systemusers`` that are
people (application users -- ``applicationid`` set -- and the support, non-interactive and delegated-admin
access modes are left out: https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/systemuser),
enabled ones only unless asked, ordered by full name then id. One GET per page: ``$select`` of the four
columns the window shows, the business unit's name through ``$expand``, ``contains`` on full name or
e-mail written by the one OData module (the search text matched literally, LIKE wildcards escaped), and
Dataverse's own paging (``Prefer: odata.maxpagesize`` and the ``$skiptoken`` of the next page). The
cursor handed to the caller is that token plus a fingerprint of the query it belongs to, so a cursor is
only ever read back by the same workspace with the same search, filter and page size.

Pages are cached per workspace and environment for ``ttl_s`` (60 s): the window asks again on every
keystroke and every re-open. ``refresh`` drops the workspace's pages first. The cache holds at most
``max_entries`` pages (oldest dropped first); each page is at most ``MAX_LIMIT`` users.

``DynamicsUsers.suggest`` answers ``POST /api/dynamics/users/suggestions``: for each platform person, the
enabled Dynamics user whose primary e-mail (``internalemailaddress``) equals theirs, compared without case
(Dataverse compares text case-insensitively; the comparison is repeated here on the answer). All e-mails go
in one ``In`` query (more only when they would not fit a URL).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from core.adapters.dataverse.errors import DataverseError
from core.adapters.dataverse.odata import (
    DIRECT_GET_MAX_URL,
    URL_HEADROOM,
    contains_filter,
    encode_query,
    eq_filter,
    expand_option,
    in_filter,
    in_prefix,
    odata_literal,
    split_clauses,
)
from core.domain.connection import TransientTokenError
from core.services.dynamics.fields import ClientFor, dynamics_unavailable
from core.settings import SettingsError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_SEARCH = 100
MAX_CURSOR = 4_096
MAX_PEOPLE = 200
MAX_EMAIL = 254  # RFC 5321 path limit
CACHE_TTL_S = 60.0
CACHE_MAX_ENTRIES = 512

_SELECT = ("systemuserid", "fullname", "internalemailaddress", "isdisabled", "_businessunitid_value")
_EXPAND = expand_option([("businessunitid", ("name",))])
_ORDER = "fullname asc,systemuserid asc"
# People sign in as Read-Write (0), Administrative (1) or Read (2) users; Support User (3),
# Non-interactive (4) and Delegated Admin (5) are not someone to map a platform user to.
_PEOPLE = "(" + " or ".join(eq_filter("accessmode", mode) for mode in (0, 1, 2)) + ")"
_NOT_APPLICATION = eq_filter("applicationid", None)

T = TypeVar("T")


class InvalidCursor(ValueError):
    """The cursor was not made by this endpoint for the same search, filter and page size."""


@dataclass(frozen=True)
class DynamicsUser:
    id: str  # lowercase GUID
    full_name: str | None
    email: str | None
    business_unit_id: str | None
    business_unit_name: str | None
    enabled: bool


@dataclass(frozen=True)
class UsersPage:
    environment_url: str
    users: tuple[DynamicsUser, ...]
    next_cursor: str | None
    cached: bool


@dataclass(frozen=True)
class Person:
    platform_id: str
    email: str


@dataclass(frozen=True)
class Suggestion:
    person: Person
    user: DynamicsUser | None


def _user(row: dict[str, Any]) -> DynamicsUser:
    unit = row.get("businessunitid")
    unit_id = row.get("_businessunitid_value")
    return DynamicsUser(
        id=str(row["systemuserid"]).lower(),
        full_name=row.get("fullname"),
        email=row.get("internalemailaddress"),
        business_unit_id=str(unit_id).lower() if unit_id else None,
        business_unit_name=unit.get("name") if isinstance(unit, dict) else None,
        enabled=not row.get("isdisabled"),
    )


def _fingerprint(workspace_id: str, search: str, include_disabled: bool, limit: int) -> str:
    text = json.dumps([workspace_id, search, include_disabled, limit])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(skiptoken: str, fingerprint: str) -> str:
    raw = json.dumps({"t": skiptoken, "f": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> str:
    """The ``$skiptoken`` inside ``cursor``; ``InvalidCursor`` unless it was made for this query."""
    if len(cursor) > MAX_CURSOR:
        raise InvalidCursor(f"cursor must be at most {MAX_CURSOR} characters")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidCursor("cursor is not one this endpoint returned") from None
    if not isinstance(data, dict) or not isinstance(data.get("t"), str) or not data["t"]:
        raise InvalidCursor("cursor is not one this endpoint returned")
    if data.get("f") != fingerprint:
        raise InvalidCursor("cursor belongs to another search, includeDisabled, limit or workspace")
    token: str = data["t"]
    return token


class PageCache:
    """Users pages by (workspace, environment, query) for ``ttl_s``; at most ``max_entries`` pages."""

    def __init__(
        self,
        ttl_s: float = CACHE_TTL_S,
        max_entries: int = CACHE_MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._now = monotonic
        self._lock = threading.Lock()
        self._pages: OrderedDict[tuple[Any, ...], tuple[float, UsersPage]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> UsersPage | None:
        with self._lock:
            entry = self._pages.get(key)
            if entry is None:
                return None
            if self._now() - entry[0] >= self._ttl:
                del self._pages[key]
                return None
            return entry[1]

    def put(self, key: tuple[Any, ...], page: UsersPage) -> None:
        with self._lock:
            self._pages[key] = (self._now(), page)
            self._pages.move_to_end(key)
            while len(self._pages) > self._max:
                self._pages.popitem(last=False)

    def drop_workspace(self, workspace_id: str) -> None:
        with self._lock:
            for key in [k for k in self._pages if k[0] == workspace_id]:
                del self._pages[key]


class DynamicsUsers:
    def __init__(self, client_for: ClientFor, cache: PageCache | None = None) -> None:
        self._client_for = client_for
        self._cache = cache or PageCache()

    def _call(self, action: Callable[[], T]) -> T:
        """Run a Dynamics read; everything that keeps Dynamics from answering -> ``DynamicsUnavailable``."""
        try:
            return action()
        except (DataverseError, TransientTokenError, SettingsError) as exc:
            raise dynamics_unavailable(exc, "the users request") from exc

    def page(
        self,
        workspace_id: str,
        *,
        search: str = "",
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
        include_disabled: bool = False,
        refresh: bool = False,
    ) -> UsersPage:
        """One page of users (``NotConnected``, ``ReconnectRequired``, ``DynamicsUnavailable``,
        ``InvalidCursor``)."""
        fingerprint = _fingerprint(workspace_id, search, include_disabled, limit)
        skiptoken = decode_cursor(cursor, fingerprint) if cursor else None
        client, connection = self._call(lambda: self._client_for(workspace_id))
        if refresh:
            self._cache.drop_workspace(workspace_id)
        key = (workspace_id, connection.environment_url, search, include_disabled, limit, skiptoken)
        cached = self._cache.get(key)
        if cached is not None:
            return UsersPage(cached.environment_url, cached.users, cached.next_cursor, cached=True)
        clauses = [_NOT_APPLICATION, _PEOPLE]
        if not include_disabled:
            clauses.insert(0, eq_filter("isdisabled", False))
        if search:
            either = (contains_filter("fullname", search), contains_filter("internalemailaddress", search))
            clauses.append(f"({either[0]} or {either[1]})")
        rows, next_token = self._call(
            lambda: client.query_page(
                "systemusers",
                page_size=limit,
                filter=" and ".join(clauses),
                select=_SELECT,
                expand=_EXPAND,
                orderby=_ORDER,
                skiptoken=skiptoken,
            )
        )
        page = UsersPage(
            connection.environment_url,
            tuple(_user(row) for row in rows),
            encode_cursor(next_token, fingerprint) if next_token else None,
            cached=False,
        )
        self._cache.put(key, page)
        return page

    def suggest(self, workspace_id: str, people: Sequence[Person]) -> list[Suggestion]:
        """For each person, the enabled Dynamics user with their e-mail (case-insensitive), or ``None``."""
        emails = sorted({p.email.strip().lower() for p in people if p.email.strip()})
        client, _ = self._call(lambda: self._client_for(workspace_id))
        by_email: dict[str, DynamicsUser] = {}
        fixed = f"{eq_filter('isdisabled', False)} and {_NOT_APPLICATION} and {_PEOPLE} and "
        base = len(client.environment_url) + URL_HEADROOM
        base += len(encode_query([("$select", ",".join(_SELECT)), ("$expand", _EXPAND or "")]))
        base += len(encode_query([("$filter", fixed + in_prefix("internalemailaddress") + "])")]))
        groups = split_clauses(
            [odata_literal(e) for e in emails],
            fixed_length=base,
            max_length=DIRECT_GET_MAX_URL,
            max_clauses=len(emails) or 1,
            separator=",",
            what="e-mail",
        )
        for group in groups:
            chunk = [emails[i] for i in group]
            rows = self._call(
                lambda chunk=chunk: list(  # type: ignore[misc]
                    client.query(
                        "systemusers",
                        filter=fixed + in_filter("internalemailaddress", chunk),
                        select=_SELECT,
                        expand=_EXPAND,
                        orderby=_ORDER,
                    )
                )
            )
            for row in rows:
                user = _user(row)
                if user.email:
                    by_email.setdefault(user.email.strip().lower(), user)
        return [Suggestion(p, by_email.get(p.email.strip().lower())) for p in people]
