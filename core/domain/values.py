"""Does a JSON value fit a platform field type? One checker for records, fixed values and manual values.

Cost: linear in the length of the value, and every string is compared with its type's length cap before
any pattern runs, so a hostile value (a 200,000-character e-mail) is refused after one ``len()``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from core.domain.catalog import FieldType

_PHONE = re.compile(r"^[+()0-9.\-\s/x]{3,40}$", re.IGNORECASE)
_MAX_TEXT = 100_000
# RFC 5321 4.5.3.1: a path is at most 256 octets with its angle brackets, so an address at most 254.
MAX_EMAIL_LENGTH = 254
MAX_PHONE_LENGTH = 40
# Dataverse URL columns (StringFormat Url) hold at most 4,000 characters.
MAX_URL_LENGTH = 4000


def is_email_shaped(text: str) -> bool:
    """Deliberately permissive: the platform already validated addresses; this only rejects values that
    cannot be an address at all (no single @, whitespace, no dot inside the domain). Linear: one pass
    for whitespace, ``str`` methods for the rest (the former regex backtracked quadratically)."""
    if len(text) > MAX_EMAIL_LENGTH or any(ch.isspace() for ch in text):
        return False
    local, at, domain = text.partition("@")
    if not at or not local or "@" in domain:
        return False
    dot = domain.find(".", 1)
    return 0 < dot < len(domain) - 1


def is_empty(value: Any) -> bool:
    """An empty platform value means "no value": it never erases Dynamics data."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, list | tuple):
        return all(is_empty(v) for v in value)
    return False


def parse_datetime(value: str) -> dt.datetime | None:
    """ISO-8601 with an explicit zone (a naive time is ambiguous for a CRM in another timezone)."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def check_value(field_type: FieldType, value: Any) -> str | None:
    """``None`` when ``value`` fits ``field_type`` (or is empty), else a message saying why not."""
    if value is None:
        return None
    match field_type:
        case FieldType.TEXT:
            if not isinstance(value, str):
                return f"expected text, got {_json_kind(value)}"
            if len(value) > _MAX_TEXT:
                return f"text longer than {_MAX_TEXT} characters"
        case FieldType.EMAIL:
            if not isinstance(value, str):
                return f"expected an email address, got {_json_kind(value)}"
            if len(value) > MAX_EMAIL_LENGTH:
                return f"an email address is at most {MAX_EMAIL_LENGTH} characters"
            if value.strip() and not is_email_shaped(value.strip()):
                return "not an email address"
        case FieldType.PHONE:
            if not isinstance(value, str):
                return f"expected a phone number, got {_json_kind(value)}"
            if len(value) > MAX_PHONE_LENGTH * 4:  # room for padding spaces; the pattern caps the rest
                return "not a phone number"
            if value.strip() and not _PHONE.match(value.strip()):
                return "not a phone number"
        case FieldType.URL:
            if not isinstance(value, str):
                return f"expected a URL, got {_json_kind(value)}"
            if len(value) > MAX_URL_LENGTH:
                return f"a URL is at most {MAX_URL_LENGTH} characters"
            if value.strip() and (" " in value.strip() or "." not in value):
                return "not a URL"
        case FieldType.INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                return f"expected an integer, got {_json_kind(value)}"
            if abs(value) > 2**63 - 1:
                return "integer out of range"
        case FieldType.DECIMAL:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"expected a number, got {_json_kind(value)}"
            if isinstance(value, float) and not math.isfinite(value):
                return "number must be finite"
        case FieldType.BOOLEAN:
            if not isinstance(value, bool):
                return f"expected true or false, got {_json_kind(value)}"
        case FieldType.DATETIME:
            if not isinstance(value, str) or parse_datetime(value) is None:
                return "expected an ISO-8601 date-time with a timezone, e.g. 2026-01-31T09:00:00Z"
        case FieldType.CHOICE:
            if not isinstance(value, str):
                return f"expected one option label, got {_json_kind(value)}"
        case FieldType.CHOICES | FieldType.TEXT_LIST:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return "expected a list of strings"
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def ascii_whole_number(text: str, max_digits: int = 18) -> int | None:
    """``text`` as a non-negative whole number written in ASCII digits, else ``None``.

    ``str.isdigit()`` alone is not enough: it accepts superscripts such as ``²``, which ``int()`` refuses
    with ``ValueError``; the length cap keeps ``int()`` linear and its result bounded.
    """
    text = text.strip()
    if not text or len(text) > max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)
