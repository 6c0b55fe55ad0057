"""Does a JSON value fit a platform field type? One checker for records, fixed values and manual values."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from core.domain.catalog import FieldType

# Deliberately permissive: the platform already validated addresses; this only rejects values that
# cannot be an address at all (no @, spaces, no dot in the domain).
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^[+()0-9.\-\s/x]{3,40}$", re.IGNORECASE)
_MAX_TEXT = 100_000


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
            if value.strip() and not _EMAIL.match(value.strip()):
                return "not an email address"
        case FieldType.PHONE:
            if not isinstance(value, str):
                return f"expected a phone number, got {_json_kind(value)}"
            if value.strip() and not _PHONE.match(value.strip()):
                return "not a phone number"
        case FieldType.URL:
            if not isinstance(value, str):
                return f"expected a URL, got {_json_kind(value)}"
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
