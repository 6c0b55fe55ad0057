"""Conversion of platform values to Dataverse JSON values, and the errors that name field and reason."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from core.domain.catalog import FieldType
from core.domain.conversion import NO_VALUE, ConversionError, convert, is_empty, utf16_length
from core.domain.dynamics_metadata import AttributeType, DynamicsColumn, OptionValue

A, F = AttributeType, FieldType
TEXT50 = DynamicsColumn("firstname", A.STRING, max_length=50)
MEMO = DynamicsColumn("description", A.MEMO, max_length=2000)
INT = DynamicsColumn("numberofemployees", A.INTEGER)
BIGINT = DynamicsColumn("new_big", A.BIGINT)
DEC = DynamicsColumn("new_growth", A.DECIMAL, min_value=-100_000_000_000, max_value=100_000_000_000)
PCT = DynamicsColumn("new_pct", A.DOUBLE, min_value=0, max_value=100)
BOOL = DynamicsColumn(
    "donotemail", A.BOOLEAN, options=(OptionValue(0, "Allow"), OptionValue(1, "Do Not Allow"))
)
DATE = DynamicsColumn("new_lastactivity", A.DATETIME)
DATE_ONLY = DynamicsColumn("birthdate", A.DATETIME, format="DateOnly")
STAGE = DynamicsColumn(
    "new_stage",
    A.PICKLIST,
    options=(
        OptionValue(100000000, "New"),
        OptionValue(100000001, "Contacted"),
        OptionValue(100000002, "Médico"),
    ),
)
LANGS = DynamicsColumn(
    "new_languages",
    A.MULTI_SELECT_PICKLIST,
    options=(OptionValue(1, "English"), OptionValue(2, "Spanish"), OptionValue(3, "Catalan, Valencian")),
)
STATE = DynamicsColumn("statecode", A.STATE, options=(OptionValue(0, "Active"), OptionValue(1, "Inactive")))
STATUS = DynamicsColumn(
    "statuscode", A.STATUS, options=(OptionValue(1, "Active", state=0), OptionValue(2, "Inactive", state=1))
)


def error(value: object, field_type: FieldType, column: DynamicsColumn) -> ConversionError:
    with pytest.raises(ConversionError) as info:
        convert(value, field_type, column, field="theField")
    assert info.value.field == "theField"
    assert info.value.column == column.logical_name
    assert "theField" in str(info.value)
    return info.value


@pytest.mark.parametrize("empty", [None, "", "   ", [], ["", None], ()])
@pytest.mark.parametrize("column", [TEXT50, INT, DEC, BOOL, DATE, STAGE, LANGS, STATUS])
def test_empty_is_no_value_never_an_erase(empty: object, column: DynamicsColumn) -> None:
    assert convert(empty, F.TEXT, column, field="f") is NO_VALUE


@pytest.mark.parametrize("value", [False, 0, 0.0, "0"])
def test_false_and_zero_are_values(value: object) -> None:
    assert not is_empty(value)


# ---------------------------------------------------------------------------------------------
# To text
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field_type", "expected"),
    [
        ("Jane", F.TEXT, "Jane"),
        (42, F.INTEGER, "42"),
        (-7, F.INTEGER, "-7"),
        (12.5, F.DECIMAL, "12.5"),
        (3.0, F.DECIMAL, "3"),
        (1e-7, F.DECIMAL, "0.0000001"),
        (Decimal("1E+3"), F.DECIMAL, "1000"),
        (True, F.BOOLEAN, "true"),
        (False, F.BOOLEAN, "false"),
        ("2026-11-27T10:00:00+01:00", F.DATETIME, "2026-11-27T10:00:00+01:00"),
        ("2026-11-27T09:00:00Z", F.DATETIME, "2026-11-27T09:00:00Z"),
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), F.DATETIME, "2026-01-02T03:04:05Z"),
        (["English", "Spanish"], F.CHOICES, "English, Spanish"),
        (["a@x.com", "", "b@y.com"], F.TEXT_LIST, "a@x.com, b@y.com"),
    ],
)
def test_to_text(value: object, field_type: FieldType, expected: str) -> None:
    assert convert(value, field_type, MEMO, field="f") == expected


def test_text_over_max_length_fails_naming_the_limit() -> None:
    assert convert("x" * 50, F.TEXT, TEXT50, field="f") == "x" * 50
    err = error("x" * 51, F.TEXT, TEXT50)
    assert err.code == "too_long"
    assert "50" in err.reason


def test_length_counts_utf16_units_like_dataverse() -> None:
    assert utf16_length("😀") == 2
    assert error("😀" * 26, F.TEXT, TEXT50).code == "too_long"
    assert convert("é" * 50, F.TEXT, TEXT50, field="f") == "é" * 50


def test_datetime_text_must_be_a_datetime() -> None:
    assert error("yesterday", F.DATETIME, MEMO).code == "not_a_datetime"
    assert error("2026-11-27T10:00:00", F.DATETIME, MEMO).code == "no_timezone"


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(42, 42), ("42", 42), (" -3 ", -3), (7.0, 7), ("1e3", 1000)])
def test_to_integer(value: object, expected: int) -> None:
    result = convert(value, F.INTEGER, INT, field="f")
    assert result == expected and type(result) is int


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("forty", "not_a_number"),
        ("1,000", "not_a_number"),
        ("nan", "not_a_number"),
        (float("inf"), "not_a_number"),
        (True, "not_a_number"),
        (2.5, "not_a_whole_number"),
        ("2.5", "not_a_whole_number"),
        (2**31, "out_of_range"),
    ],
)
def test_integer_errors(value: object, code: str) -> None:
    assert error(value, F.TEXT, INT).code == code


def test_bigint_takes_64_bit_values() -> None:
    assert convert(2**40, F.INTEGER, BIGINT, field="f") == 2**40
    assert error(2**63, F.INTEGER, BIGINT).code == "out_of_range"


@pytest.mark.parametrize(("value", "expected"), [(12.5, 12.5), ("12.5", 12.5), (3, 3), (Decimal("0.1"), 0.1)])
def test_to_decimal(value: object, expected: float) -> None:
    assert convert(value, F.DECIMAL, DEC, field="f") == expected


def test_column_min_and_max_are_enforced() -> None:
    assert convert(100, F.DECIMAL, PCT, field="f") == 100
    err = error(100.5, F.DECIMAL, PCT)
    assert err.code == "out_of_range"
    assert "0..100" in err.reason


# ---------------------------------------------------------------------------------------------
# Booleans and dates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("Yes", True),
        (" FALSE ", False),
        ("Do not allow", True),
    ],
)
def test_to_boolean(value: object, expected: bool) -> None:
    assert convert(value, F.BOOLEAN, BOOL, field="f") is expected


@pytest.mark.parametrize("value", ["maybe", 2, 0.5])
def test_boolean_errors(value: object) -> None:
    assert error(value, F.TEXT, BOOL).code == "not_a_boolean"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-27T10:30:00+01:00", "2026-11-27T09:30:00Z"),
        ("2026-11-27T09:30:00.123456Z", "2026-11-27T09:30:00Z"),
        (
            dt.datetime(2026, 11, 27, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            "2026-11-28T04:00:00Z",
        ),
    ],
)
def test_to_datetime_in_utc(value: object, expected: str) -> None:
    assert convert(value, F.DATETIME, DATE, field="f") == expected


def test_date_only_column_keeps_the_local_date() -> None:
    assert convert("2026-11-27T23:30:00-05:00", F.DATETIME, DATE_ONLY, field="f") == "2026-11-27"


@pytest.mark.parametrize(
    ("value", "code"),
    [("27/11/2026", "not_a_datetime"), ("2026-11-27T10:00", "no_timezone"), (5, "not_a_datetime")],
)
def test_datetime_errors(value: object, code: str) -> None:
    assert error(value, F.DATETIME, DATE).code == code


# ---------------------------------------------------------------------------------------------
# Choices, state and status
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Contacted", 100000001),
        ("  contacted ", 100000001),
        ("MÉDICO", 100000002),
        (100000000, 100000000),
        (["New"], 100000000),
        ("100000001", 100000001),
    ],
)
def test_choice_label_to_option_value(value: object, expected: int) -> None:
    assert convert(value, F.CHOICE, STAGE, field="f") == expected


def test_choice_labels_keep_accents() -> None:
    assert error("Medico", F.CHOICE, STAGE).code == "unknown_option"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("Qualified", "unknown_option"),
        ("²", "unknown_option"),  # a Unicode digit int() refuses: an unknown label, not a crash
        ("--1", "unknown_option"),
        (5, "unknown_option"),
        (["New", "Contacted"], "too_many_values"),
        (True, "unknown_option"),
    ],
)
def test_choice_errors(value: object, code: str) -> None:
    err = error(value, F.CHOICE, STAGE)
    assert err.code == code


def test_unknown_option_names_the_label() -> None:
    assert "'Qualified'" in error("Qualified", F.CHOICE, STAGE).reason


def test_labels_equal_up_to_case_are_ambiguous_unless_exact() -> None:
    column = DynamicsColumn("x", A.PICKLIST, options=(OptionValue(1, "VIP"), OptionValue(2, "vip")))
    assert convert("vip", F.CHOICE, column, field="f") == 2
    assert error("Vip", F.CHOICE, column).code == "ambiguous_option"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["English", "spanish"], "1,2"),
        (["Spanish", "English", "SPANISH"], "2,1"),
        ("English", "1"),
        ("Catalan, Valencian", "3"),  # a label holding a comma
        ("English, Spanish", "1,2"),
        ("English; Spanish", "1,2"),
        ([2], "2"),
    ],
)
def test_multi_select_to_comma_separated_values(value: object, expected: str) -> None:
    assert convert(value, F.CHOICES, LANGS, field="f") == expected


def test_multi_select_unknown_label_fails_naming_it() -> None:
    err = error(["English", "Klingon"], F.CHOICES, LANGS)
    assert err.code == "unknown_option"
    assert "Klingon" in err.reason


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [(STATE, "inactive", 1), (STATE, 0, 0), (STATUS, "Active", 1), (STATUS, 2, 2)],
)
def test_state_and_status_labels_become_codes(column: DynamicsColumn, value: object, expected: int) -> None:
    assert convert(value, F.CHOICE, column, field="f") == expected


def test_state_label_unknown_fails() -> None:
    assert error("Deleted", F.CHOICE, STATE).code == "unknown_option"


# ---------------------------------------------------------------------------------------------
# Columns field mapping cannot write
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [A.LOOKUP, A.CUSTOMER, A.OWNER, A.PARTY_LIST, A.UNIQUEIDENTIFIER, A.VIRTUAL])
def test_not_writable_columns(kind: AttributeType) -> None:
    assert error("x", F.TEXT, DynamicsColumn("col", kind)).code == "not_writable"


def test_error_json_for_the_record_report() -> None:
    err = error("x" * 51, F.TEXT, TEXT50)
    assert err.to_json() == {
        "field": "theField",
        "column": "firstname",
        "code": "too_long",
        "reason": err.reason,
    }
