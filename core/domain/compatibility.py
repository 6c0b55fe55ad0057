"""Can a platform field be written to a Dynamics column? The three icons of step 2, as data.

``MATRIX`` maps (platform ``FieldType``, Dynamics ``AttributeType``) to ``ok`` (blue check), ``warning``
(yellow: may not fit, review) or ``error`` (red: cannot be applied; saving is refused) with the reason
shown to the admin. ``check_compatibility`` adds the column-level rules (read-only, create/update-only,
MaxLength, state/status option mappings). Dataverse converts no value itself, so the principle is:
convert where lossless and unambiguous, warn where a value may not fit, error where impossible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from core.domain.catalog import FieldType
from core.domain.dynamics_metadata import AttributeType, DynamicsColumn


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


_SEVERITY = {Level.OK: 0, Level.WARNING: 1, Level.ERROR: 2}


@dataclass(frozen=True)
class Compatibility:
    level: Level
    reasons: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def to_json(self) -> dict[str, str]:
        return {"level": self.level.value, "reason": self.reason}


F, A = FieldType, AttributeType
OK, WARN, ERR = Level.OK, Level.WARNING, Level.ERROR

_TEXT_COLUMNS = (A.STRING, A.MEMO)
_WHOLE_COLUMNS = (A.INTEGER, A.BIGINT)
_FRACTION_COLUMNS = (A.DECIMAL, A.DOUBLE, A.MONEY)
_NOT_WRITABLE = {
    A.LOOKUP: "a lookup column links another record; it is set by associations or owner mapping",
    A.CUSTOMER: "a customer lookup links an account or contact; set by the association toggles",
    A.OWNER: "the owner is set by user mapping (step 4), not by field mapping",
    A.PARTY_LIST: "a party list holds activity parties, not a value",
    A.UNIQUEIDENTIFIER: "a unique identifier is set by Dynamics",
    A.CALENDAR_RULES: "calendar rules cannot be written as a value",
    A.VIRTUAL: "a virtual column has no stored value",
    A.MANAGED_PROPERTY: "a managed property is solution metadata",
    A.ENTITY_NAME: "an entity-name column is set by Dynamics",
}


def _build() -> dict[tuple[FieldType, AttributeType], tuple[Level, str]]:
    m: dict[tuple[FieldType, AttributeType], tuple[Level, str]] = {}

    def put(ftypes: tuple[FieldType, ...], atypes: tuple[AttributeType, ...], level: Level, why: str) -> None:
        for f in ftypes:
            for a in atypes:
                m[(f, a)] = (level, why)

    every_field = tuple(FieldType)
    # Default for every pair not listed below: the types do not match.
    for a in AttributeType:
        put(every_field, (a,), ERR, f"a {{field}} value cannot be written to a column of type {a.value}")
    for a, why in _NOT_WRITABLE.items():
        put(every_field, (a,), ERR, why)

    # Text columns take text as-is and convert what is lossless.
    put((F.TEXT, F.EMAIL, F.PHONE, F.URL), _TEXT_COLUMNS, OK, "text is written as-is")
    put((F.INTEGER, F.DECIMAL), _TEXT_COLUMNS, OK, "the number is written as text")
    put((F.CHOICE,), _TEXT_COLUMNS, OK, "the choice label is written as text")
    put((F.BOOLEAN,), _TEXT_COLUMNS, WARN, "written as the text 'true' or 'false'")
    put(
        (F.DATETIME,),
        _TEXT_COLUMNS,
        WARN,
        "written as ISO-8601 text: Dynamics cannot sort or filter it as a date; prefer a DateTime column",
    )
    put(
        (F.CHOICES,),
        _TEXT_COLUMNS,
        WARN,
        "the labels are joined with ', ' and may exceed the column's length; prefer a multi-select choice",
    )
    put(
        (F.TEXT_LIST,),
        _TEXT_COLUMNS,
        WARN,
        "the list is joined with ', ' and may exceed the column's length; prefer a single-valued field",
    )

    # Numbers.
    put((F.INTEGER,), _WHOLE_COLUMNS, OK, "whole number")
    put(
        (F.DECIMAL,),
        _WHOLE_COLUMNS,
        WARN,
        "values with a fractional part will fail: the column holds whole numbers",
    )
    put((F.INTEGER, F.DECIMAL), (A.DECIMAL, A.DOUBLE), OK, "number")
    put((F.INTEGER, F.DECIMAL), (A.MONEY,), WARN, "written as an amount in the record's currency")
    put((F.TEXT,), _WHOLE_COLUMNS + _FRACTION_COLUMNS, WARN, "text that is not a number will fail")

    # Two options.
    put((F.BOOLEAN,), (A.BOOLEAN,), OK, "yes/no")
    put((F.TEXT,), (A.BOOLEAN,), WARN, "only true/false/yes/no/1/0 text converts; anything else fails")

    # Dates.
    put((F.DATETIME,), (A.DATETIME,), OK, "date and time with zone")
    put((F.TEXT,), (A.DATETIME,), WARN, "text that is not an ISO-8601 date with a time zone will fail")

    # Choices.
    put(
        (F.CHOICE,),
        (A.PICKLIST,),
        OK,
        "the label is converted to the option's value; a label with no such option fails that record",
    )
    put((F.TEXT,), (A.PICKLIST,), WARN, "text must equal an existing option label, or the record fails")
    put((F.INTEGER,), (A.PICKLIST,), WARN, "the number must be an existing option value")
    put((F.CHOICES,), (A.PICKLIST,), WARN, "only one label fits a single choice; more fail the record")
    put((F.CHOICES,), (A.MULTI_SELECT_PICKLIST,), OK, "each label is converted to its option value")
    put((F.CHOICE,), (A.MULTI_SELECT_PICKLIST,), OK, "the label is converted to its option value")
    put(
        (F.TEXT, F.TEXT_LIST),
        (A.MULTI_SELECT_PICKLIST,),
        WARN,
        "each value must equal an existing option label, or the record fails",
    )

    # State and status: numeric codes only; labels are converted when the column's options name them.
    put((F.CHOICE,), (A.STATE, A.STATUS), OK, "the label is converted to its code")
    put((F.INTEGER,), (A.STATE, A.STATUS), OK, "numeric code")
    put((F.TEXT,), (A.STATE, A.STATUS), WARN, "text must equal an existing label, or the record fails")
    return m


MATRIX: Mapping[tuple[FieldType, AttributeType], tuple[Level, str]] = _build()


def matrix_cell(field_type: FieldType, attribute_type: AttributeType) -> tuple[Level, str]:
    level, why = MATRIX[(field_type, attribute_type)]
    return level, why.replace("{field}", field_type.value)


# The column-level rules ``check_compatibility`` adds to a matrix cell, as data for the window:
# (key, level, reason). The worst level of the cell and these wins.
COLUMN_RULES: tuple[tuple[str, Level, str], ...] = (
    ("read_only", ERR, "IsValidForCreate and IsValidForUpdate are both false: Dynamics refuses any value"),
    ("create_only", WARN, "IsValidForUpdate is false: set only when the record is created"),
    ("update_only", WARN, "IsValidForCreate is false: set only when an existing record is updated"),
    ("too_long", WARN, "a value known to be longer than the text column's MaxLength does not fit"),
    ("date_only", WARN, "a DateOnly column drops the time of day"),
    ("no_options", WARN, "a choice column that lists no options cannot convert labels to codes"),
)

# Campaign properties that are counts; every other one is text (core.domain.campaign_properties).
CAMPAIGN_COUNTS = frozenset({"campaignOpens", "campaignClicks"})
_NUMBER_COLUMNS = (A.INTEGER, A.BIGINT, A.DECIMAL, A.DOUBLE, A.MONEY)


def campaign_fit(key: str, column: DynamicsColumn) -> tuple[FieldType | None, str]:
    """How the activity writer (``campaign_properties.column_value``) fills ``column`` for the campaign
    property ``key``: the value type it converts, and a caveat (a warning) -- or no type and why it cannot
    (an error)."""
    kind = column.attribute_type
    if key in CAMPAIGN_COUNTS:
        if kind in _TEXT_COLUMNS or kind in _NUMBER_COLUMNS:
            return FieldType.INTEGER, ""
        return None, f"{key} is a count: map it to a number or text column"
    if kind in _TEXT_COLUMNS:
        return FieldType.TEXT, ""
    if kind in (A.PICKLIST, A.STATUS):
        return FieldType.CHOICE, "written only when it is one value equal to an option label"
    if kind is A.MULTI_SELECT_PICKLIST:
        return FieldType.CHOICES, "written only when every value equals an option label"
    return None, f"{key} is text: map it to a text column (String or Memo) or a choice column"


def campaign_compatibility(key: str, column: DynamicsColumn) -> Compatibility:
    """The icon of mapping the campaign property ``key`` to ``column`` (step 3)."""
    field_type, limits = campaign_fit(key, column)
    if field_type is None:
        return Compatibility(ERR, (limits,))
    compat = check_compatibility(field_type, column)
    if not limits:
        return compat
    reasons = (*(compat.reasons if compat.level is not OK else ()), limits)
    return Compatibility(WARN if compat.level is OK else compat.level, reasons)


def check_compatibility(
    field_type: FieldType, column: DynamicsColumn, *, value_max_length: int | None = None
) -> Compatibility:
    """The icon and reasons for writing a ``field_type`` value to ``column``.

    ``value_max_length``: the longest value that may be written, when known (a fixed value's length, a
    custom field's declared limit); longer than the column's MaxLength -> warning.
    """
    level, why = matrix_cell(field_type, column.attribute_type)
    results: list[tuple[Level, str]] = [(level, why)]
    if column.is_read_only:
        results.append((ERR, f"{column.logical_name} is read-only in Dynamics"))
    elif not column.is_valid_for_update:
        results.append((WARN, "set only when the record is created; updates leave it unchanged"))
    elif not column.is_valid_for_create:
        results.append((WARN, "set only when an existing record is updated; new records get the default"))
    if (
        column.attribute_type in _TEXT_COLUMNS
        and column.max_length is not None
        and value_max_length is not None
        and value_max_length > column.max_length
    ):
        results.append(
            (WARN, f"values longer than {column.max_length} characters do not fit and fail that record")
        )
    if column.attribute_type is A.DATETIME and column.format == "DateOnly" and level is not ERR:
        results.append((WARN, "the column holds a date only: the time of day is dropped"))
    if (
        column.attribute_type in (A.STATE, A.STATUS, A.PICKLIST, A.MULTI_SELECT_PICKLIST)
        and not column.options
    ):
        if level is OK:
            results.append((WARN, "the column lists no options, so labels cannot be converted to codes"))
    worst = max((r[0] for r in results), key=_SEVERITY.__getitem__)
    if worst is OK:
        return Compatibility(OK, (why,))
    return Compatibility(worst, tuple(r for lvl, r in results if lvl is not OK))
