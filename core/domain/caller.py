"""Who is calling: the identity the platform's JWT asserts (docs/contracts.md "Caller identity").

The workspace comes from the token only, never from a path or body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


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


def valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID_PATTERN.fullmatch(value) is not None


@dataclass(frozen=True)
class Caller:
    workspace_id: str
    user_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @classmethod
    def from_claims(cls, claims: dict[str, object]) -> Caller:
        workspace_id = claims.get("workspace_id")
        user_id = claims.get("sub")
        role = claims.get("role")
        if not valid_id(workspace_id):
            raise InvalidIdentity("claim workspace_id is missing or malformed")
        if not valid_id(user_id):
            raise InvalidIdentity("claim sub is missing or malformed")
        if role not in {r.value for r in Role}:
            raise InvalidIdentity("claim role must be admin or member")
        assert isinstance(workspace_id, str) and isinstance(user_id, str) and isinstance(role, str)
        return cls(workspace_id=workspace_id, user_id=user_id, role=Role(role))
