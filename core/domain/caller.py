"""Who is calling: the identity the platform's JWT asserts (docs/contracts.md "Caller identity"), and
who may do what (docs/contracts.md "Who may call what").

Three kinds of caller:

- ``admin`` / ``member``: a person in the platform's web app (token audience ``PLATFORM_JWT_AUDIENCE``,
  ``role`` claim). A person acts only as themselves: the ``sub`` of the token is the platform user.
- ``service``: the platform's own backend (campaign engine, automatic sync), with a token of its own
  audience (``PLATFORM_JWT_SERVICE_AUDIENCE``, client-credentials style). Only it may submit activities
  and automatic exports and name the platform user or identity it acts for.

The workspace comes from the token only, never from a path or body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    SERVICE = "service"


PEOPLE = frozenset({Role.ADMIN, Role.MEMBER})
ADMINS = frozenset({Role.ADMIN})
SERVICE = frozenset({Role.SERVICE})
EVERY_CALLER = PEOPLE | SERVICE

# Workspace and user ids become Table Storage keys and log fields: printable, no key-forbidden characters.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


class InvalidIdentity(ValueError):
    """A claim does not have the expected shape (the message names the claim, never its value)."""


class AuthError(Exception):
    """The caller is not authenticated (HTTP 401). ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthConfigurationError(Exception):
    """No verification key is configured (HTTP 500; the message names settings only)."""


class Forbidden(Exception):
    """The caller is authenticated but may not do this (HTTP 403). ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID_PATTERN.fullmatch(value) is not None


_KIND_NAMES = {
    PEOPLE: "people (admin or member)",
    ADMINS: "an admin",
    SERVICE: "the platform's service",
    EVERY_CALLER: "any caller",
}


_WHOSE = {Role.ADMIN: "an admin's", Role.MEMBER: "a member's", Role.SERVICE: "the platform service's"}


@dataclass(frozen=True)
class Caller:
    workspace_id: str
    user_id: str  # a person's platform user id; the service's client id for the service
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_service(self) -> bool:
        return self.role is Role.SERVICE

    @property
    def sees_crm_values(self) -> bool:
        """Current Dynamics values (a dry run's or an update's ``changes[column].before``) are shown to
        admins only: records are matched by identifiers anyone could guess, so a member (or the service
        acting for one) would otherwise read any contact's CRM data."""
        return self.role is Role.ADMIN

    def require(self, allowed: frozenset[Role], action: str) -> None:
        """``Forbidden`` naming who may do ``action`` when this caller's kind is not in ``allowed``."""
        if self.role not in allowed:
            who = _KIND_NAMES.get(allowed) or " or ".join(sorted(allowed))
            why = (
                " (people act only as themselves: the platform's service submits on behalf of a user)"
                if allowed == SERVICE
                else ""
            )
            raise Forbidden(f"{action} is for {who} only; this token is {_WHOSE[self.role]}{why}")

    @classmethod
    def from_claims(cls, claims: dict[str, object], *, service: bool = False) -> Caller:
        """A person from a people-audience token (``role`` admin or member), or the service from a
        service-audience token (``role`` absent or ``service``)."""
        workspace_id = claims.get("workspace_id")
        user_id = claims.get("sub")
        role = claims.get("role")
        if not valid_id(workspace_id):
            raise InvalidIdentity("claim workspace_id is missing or malformed")
        if not valid_id(user_id):
            raise InvalidIdentity("claim sub is missing or malformed")
        if service:
            if role not in (None, Role.SERVICE.value):
                raise InvalidIdentity("a service token's role claim, when present, must be service")
            role = Role.SERVICE.value
        elif role not in {Role.ADMIN.value, Role.MEMBER.value}:
            raise InvalidIdentity("claim role must be admin or member")
        assert isinstance(workspace_id, str) and isinstance(user_id, str) and isinstance(role, str)
        return cls(workspace_id=workspace_id, user_id=user_id, role=Role(role))
