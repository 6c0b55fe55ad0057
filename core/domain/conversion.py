"""Platform value -> the JSON value a Dataverse column accepts, or a ``ConversionError`` naming the field.

Dataverse converts nothing (a value of the wrong JSON type is refused): what ``compatibility`` marks ok
or warning is converted here, exactly and only when lossless. An empty platform value (None, blank text,
empty list) is ``NO_VALUE``: "nothing to write", never a null that would erase the Dynamics value.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from enum import Enum

from core.domain.catalog import FieldType
from core.domain.dynamics_metadata import AttributeType, DynamicsColumn, OptionValue
from core.domain.normalize import normalize_text
from core.domain.values import is_empty

DataverseValue = str | int | float | bool


class NoValue(Enum):
    """The platform has no value: leave the Dynamics column as it is."""

    NO_VALUE = "no_value"


NO_VALUE = NoValue.NO_VALUE

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_TRUE = frozenset({"true", "yes", "1", "y", "on"})
_FALSE = frozenset({"false", "no", "0", "n", "off"})
_NOT_WRITABLE = frozenset(
    {
        AttributeType.LOOKUP,
        AttributeType.CUSTOMER,
        AttributeType.OWNER,
        AttributeType.PARTY_LIST,
        AttributeType.UNIQUEIDENTIFIER,
        AttributeType.CALENDAR_RULES,
        AttributeType.VIRTUAL,
        AttributeType.MANAGED_PROPERTY,
        AttributeType.ENTITY_NAME,
    }
)


class ConversionError(ValueError):
    """A value that does not fit its column. ``code`` is stable (for reports), ``reason`` readable."""

    def __init__(self, field: str, column: str, code: str, reason: str) -> None:
        super().__init__(f"{field} -> {column}: {reason}")
        self.field = field
        self.column = column
        self.code = code
        self.reason = reason

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "column": self.column, "code": self.code, "reason": self.reason}


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def utf16_length(text: str) -> int:
    """Length as Dataverse counts it (UTF-16 code units: an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def convert(
    value: object, field_type: FieldType, column: DynamicsColumn, *, field: str
) -> DataverseValue | NoValue:
    """The value to send for ``column`` (``NO_VALUE`` when the platform value is empty)."""
    if is_empty(value):
        return NO_VALUE
    c = _Converter(field, column)
    kind = column.attribute_type
    if kind in _NOT_WRITABLE:
        raise c.error("not_writable", f"a {kind.value} column cannot be set by field mapping")
    if kind in (AttributeType.STRING, AttributeType.MEMO):
        return c.check_length(c.to_text(value, field_type))
    if kind is AttributeType.INTEGER:
        return c.to_int(value, INT32)
    if kind is AttributeType.BIGINT:
        return c.to_int(value, INT64)
    if kind in (AttributeType.DECIMAL, AttributeType.DOUBLE, AttributeType.MONEY):
        return c.to_number(value)
    if kind is AttributeType.BOOLEAN:
        return c.to_bool(value)
    if kind is AttributeType.DATETIME:
        return c.to_datetime(value, date_only=column.format == "DateOnly")
    if kind in (AttributeType.PICKLIST, AttributeType.STATE, AttributeType.STATUS):
        if isinstance(value, list | tuple):
            items = [v for v in value if not is_empty(v)]
            if len(items) != 1:
                raise c.error("too_many_values", f"{len(items)} values for a single-choice column")
            value = items[0]
        return c.to_option(value)
    if kind is AttributeType.MULTI_SELECT_PICKLIST:
        return c.to_options(value)
    raise c.error(
        "type_mismatch", f"a {field_type.value} value cannot be written to a column of type {kind.value}"
    )


class _Converter:
    def __init__(self, field: str, column: DynamicsColumn) -> None:
        self.field = field
        self.column = column

    def error(self, code: str, reason: str) -> ConversionError:
        return ConversionError(self.field, self.column.logical_name, code, reason)

    # -- text ------------------------------------------------------------------------------------

    def to_text(self, value: object, field_type: FieldType) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float | Decimal):
            return self.decimal_text(value)
        if isinstance(value, dt.datetime):
            return self.iso_text(value)
        if isinstance(value, list | tuple):
            return ", ".join(self.to_text(v, FieldType.TEXT) for v in value if not is_empty(v))
        if isinstance(value, str):
            if field_type is FieldType.DATETIME:
                return self.iso_text(self.parse_datetime(value))
            return value
        raise self.error("type_mismatch", f"{type(value).__name__} is not text")

    def decimal_text(self, value: float | Decimal) -> str:
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error("not_a_number", f"{_shown(value)} is not a finite number")
        number = Decimal(str(value)) if isinstance(value, float) else value
        text = format(number.normalize(), "f")
        return text

    def iso_text(self, value: dt.datetime) -> str:
        if value.tzinfo is None:
            raise self.error("no_timezone", "the date has no time zone")
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def check_length(self, text: str) -> str:
        limit = self.column.max_length
        if limit is not None and utf16_length(text) > limit:
            raise self.error("too_long", f"{utf16_length(text)} characters, the column holds {limit}")
        return text

    # -- numbers ---------------------------------------------------------------------------------

    def parse_number(self, value: object) -> Decimal:
        if isinstance(value, bool):
            raise self.error("not_a_number", "a yes/no value is not a number")
        if isinstance(value, int):
            return Decimal(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.error("not_a_number", f"{_shown(value)} is not a finite number")
            return Decimal(str(value))
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise self.error("not_a_number", f"{_shown(value)} is not a finite number")
            return value
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                number = Decimal("NaN")
            if not number.is_finite():
                raise self.error("not_a_number", f"{_shown(value)} is not a number")
            return number
        raise self.error("not_a_number", f"{type(value).__name__} is not a number")

    def check_range(self, number: Decimal, bounds: tuple[int, int] | None = None) -> None:
        low = self.column.min_value if self.column.min_value is not None else (bounds[0] if bounds else None)
        high = self.column.max_value if self.column.max_value is not None else (bounds[1] if bounds else None)
        if bounds is not None:
            low = max(low, bounds[0]) if low is not None else bounds[0]
            high = min(high, bounds[1]) if high is not None else bounds[1]
        if (low is not None and number < Decimal(str(low))) or (
            high is not None and number > Decimal(str(high))
        ):
            shown_low = "" if low is None else f"{low:g}"
            shown_high = "" if high is None else f"{high:g}"
            raise self.error("out_of_range", f"{number} is outside {shown_low}..{shown_high}")

    def to_int(self, value: object, bounds: tuple[int, int]) -> int:
        number = self.parse_number(value)
        if number != number.to_integral_value():
            raise self.error("not_a_whole_number", f"{_shown(value)} is not a whole number")
        self.check_range(number, bounds)
        return int(number)

    def to_number(self, value: object) -> int | float:
        number = self.parse_number(value)
        self.check_range(number)
        if number == number.to_integral_value() and abs(number) < 2**53:
            return int(number)
        return float(number)

    # -- yes/no ----------------------------------------------------------------------------------

    def to_bool(self, value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            text = normalize_text(value) or ""
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            for option in self.column.options:  # the column's own labels ("Allow"/"Do Not Allow")
                if normalize_text(option.label) == text and option.value in (0, 1):
                    return bool(option.value)
        raise self.error("not_a_boolean", f"{_shown(value)} is not yes/no")

    # -- dates -----------------------------------------------------------------------------------

    def parse_datetime(self, value: object) -> dt.datetime:
        if isinstance(value, dt.datetime):
            parsed = value
        elif isinstance(value, str):
            text = value.strip()
            if text[-1:] in ("Z", "z"):
                text = text[:-1] + "+00:00"
            try:
                parsed = dt.datetime.fromisoformat(text)
            except ValueError:
                raise self.error("not_a_datetime", f"{_shown(value)} is not an ISO-8601 date-time") from None
        else:
            raise self.error("not_a_datetime", f"{type(value).__name__} is not a date-time")
        if parsed.tzinfo is None:
            raise self.error("no_timezone", f"{_shown(value)} has no time zone")
        return parsed

    def to_datetime(self, value: object, *, date_only: bool) -> str:
        parsed = self.parse_datetime(value)
        if date_only:
            return parsed.date().isoformat()
        return parsed.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- options ---------------------------------------------------------------------------------

    def find_option(self, value: object) -> OptionValue:
        options = self.column.options
        if isinstance(value, bool):
            raise self.error("unknown_option", "a yes/no value is not an option")
        if isinstance(value, int):
            for option in options:
                if option.value == value:
                    return option
            raise self.error("unknown_option", f"{value} is not an option value of the column")
        if not isinstance(value, str):
            raise self.error("unknown_option", f"{type(value).__name__} is not an option label")
        wanted = normalize_text(value, keep_accents=True)
        matches = [o for o in options if normalize_text(o.label, keep_accents=True) == wanted]
        if len(matches) > 1:
            exact = [o for o in matches if o.label == value.strip()]
            if len(exact) != 1:
                labels = ", ".join(o.label for o in matches)
                raise self.error("ambiguous_option", f"{_shown(value)} matches several options: {labels}")
            matches = exact
        if matches:
            return matches[0]
        stripped = value.strip()
        # ASCII digits only: "²" and other Unicode digits pass isdigit() but int() refuses them.
        digits = stripped.removeprefix("-")
        if digits.isascii() and digits.isdigit() and len(digits) <= 10:
            for option in options:
                if option.value == int(stripped):
                    return option
        raise self.error("unknown_option", f"{_shown(value)} is not an option of the column")

    def to_option(self, value: object) -> int:
        return self.find_option(value).value

    def to_options(self, value: object) -> str:
        items: Sequence[object]
        if isinstance(value, list | tuple):
            items = [v for v in value if not is_empty(v)]
        elif isinstance(value, str):
            try:
                return str(self.to_option(value))  # a label may itself contain a comma
            except ConversionError:
                items = [part for part in value.replace(";", ",").split(",") if part.strip()]
        else:
            items = [value]
        codes: dict[int, None] = {}
        for item in items:
            codes[self.to_option(item)] = None
        return ",".join(str(code) for code in codes)
