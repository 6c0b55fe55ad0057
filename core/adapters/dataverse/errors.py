"""Typed Dataverse errors. They carry what a caller needs to decide and to report, never the token.

Every error names the HTTP status (``None`` for network failures), the Dataverse error code from
``{"error": {"code": "0x...", "message": ...}}``, the server's message, the request method and path
(without the query string: ``$filter`` values are personal data), the number of attempts made and the
server's request id when it sent one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# Dataverse error codes the product reacts to (https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes).
PRIVILEGE_DENIED = "0x80040220"
DUPLICATE_RECORD = "0x80040237"
DUPLICATE_RECORD_ENTITY_KEY = "0x80060892"
DUPLICATES_FOUND = "0x80040333"
OBJECT_DOES_NOT_EXIST = "0x80040217"
VALIDATION_ERROR = "0x80044331"
# A column the request names is not (or no longer) in the table: in a body "The property 'x' does not exist
# on type 'Microsoft.Dynamics.CRM.contact'" (0x80048d19), in a query "Could not find a property named 'x'
# on type ..." (0x80060888). Every record of a call carries the mapping's columns: not a record's fault.
_UNKNOWN_COLUMN = re.compile(r"property (?:named )?'(?P<name>[^']{1,200})' (?:does not exist )?on type")
THROTTLE_CODES = frozenset({"0x80072322", "0x80072321", "0x80072326"})

_MAX_MESSAGE = 2000


class DataverseError(Exception):
    """A request to Dataverse failed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
        request_id: str | None = None,
        maybe_applied_earlier: bool = False,
    ) -> None:
        self.message = message[:_MAX_MESSAGE]
        self.status = status
        self.code = code
        self.method = method
        self.path = path
        self.attempts = attempts
        self.request_id = request_id
        self.maybe_applied_earlier = maybe_applied_earlier
        """An earlier attempt of this request failed in a way that may hide its success (5xx, dropped
        connection, read timeout) — e.g. a DuplicateRecord on the retry of a create with a client id."""
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f" {self.method} {self.path}" if self.method and self.path else ""
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        code = f" {self.code}" if self.code else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{status}{code}{where}{tries}: {self.message}"

    @property
    def about_records(self) -> bool:
        """A refusal of the records sent (validation, privilege, missing lookup), not of the call:
        splitting the call isolates the culprits. Throttling, auth and server errors are the call's."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in (401, 408, 429)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"

    @property
    def unknown_column(self) -> str | None:
        """The column Dataverse says the table does not have (deleted since the mapping was saved)."""
        if self.status != 400:
            return None
        found = _UNKNOWN_COLUMN.search((self.message or "")[:_MAX_MESSAGE])
        return found.group("name") if found else None

    @property
    def is_duplicate_record(self) -> bool:
        """A create with a primary key (or alternate key) that already exists."""
        return self.code in (DUPLICATE_RECORD, DUPLICATE_RECORD_ENTITY_KEY)


class Throttled(DataverseError):
    """HTTP 429 that was not (or no longer) waited out. ``retry_after`` is in seconds, if the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class Unauthorized(DataverseError):
    """HTTP 401, also after one forced token refresh."""


class NotFound(DataverseError):
    """HTTP 404: the record (or table, or column) does not exist."""


class PreconditionFailed(DataverseError):
    """HTTP 412: an If-Match / If-None-Match condition did not hold."""


class PrivilegeDenied(DataverseError):
    """HTTP 403 or code 0x80040220: the (impersonated) user lacks a privilege."""


class TransientError(DataverseError):
    """5xx or a network failure that retries did not overcome (or that was not safe to retry)."""


def parse_error_body(body: bytes | str | Mapping[str, Any] | None) -> tuple[str | None, str]:
    """(code, message) from a Dataverse error body; tolerant of non-JSON bodies."""
    payload: Any = body
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        try:
            payload = json.loads(text) if text.strip() else None
        except ValueError:
            return None, text.strip()[:500] or "no error details"
    if isinstance(payload, Mapping):
        error = payload.get("error")
        if isinstance(error, Mapping):
            code = error.get("code")
            message = error.get("message")
            return (str(code) if code else None), (str(message) if message else "no error message")
    return None, "no error details"


def error_for_status(
    status: int,
    code: str | None,
    message: str,
    *,
    retry_after: float | None = None,
    **context: Any,
) -> DataverseError:
    """The typed error for an HTTP failure status."""
    if status == 429:
        return Throttled(message, retry_after=retry_after, status=status, code=code, **context)
    if status == 401:
        return Unauthorized(message, status=status, code=code, **context)
    if status == 403 or code == PRIVILEGE_DENIED:
        return PrivilegeDenied(message, status=status, code=code, **context)
    if status == 404:
        return NotFound(message, status=status, code=code, **context)
    if status == 412:
        return PreconditionFailed(message, status=status, code=code, **context)
    if status >= 500:
        return TransientError(message, status=status, code=code, **context)
    return DataverseError(message, status=status, code=code, **context)


_ATTRIBUTE_IN_MESSAGE = re.compile(
    r"(?:attribute '|property named '|column ')(?P<quoted>[a-z0-9_]+)'"  # validation, unknown column
    r"|attribute values (?P<key>[a-z0-9_]+(?:, [a-z0-9_]+)*) already exists"  # alternate key taken
)


def column_in_message(message: str) -> str:
    """The column a Dataverse error message names ("... attribute 'emailaddress1' ...", or for a taken
    alternate key "A record that has the attribute values emailaddress1 already exists"); "" if none."""
    found = _ATTRIBUTE_IN_MESSAGE.search(message[:_MAX_MESSAGE])
    if found is None:
        return ""
    return found.group("quoted") or found.group("key") or ""


def failure_reason(exc: BaseException) -> str:
    """What a job's status may say about a failure: a Dataverse error's own text (status, code, method,
    path, message; never a token or a query string), anything else only its type name, since a foreign
    exception's text may carry record data or secrets."""
    if isinstance(exc, DataverseError):
        return str(exc)
    return type(exc).__name__
