"""The compatibility matrix, cell by cell, and the column-level rules (the blue / yellow / red icons)."""

from __future__ import annotations

import pytest

from core.domain.catalog import FieldType
from core.domain.compatibility import MATRIX, Level, check_compatibility, matrix_cell
from core.domain.dynamics_metadata import AttributeType, DynamicsColumn, OptionValue

A = AttributeType
COLUMNS = [
    A.STRING,
    A.MEMO,
    A.INTEGER,
    A.BIGINT,
    A.DECIMAL,
    A.DOUBLE,
    A.MONEY,
    A.BOOLEAN,
    A.DATETIME,
    A.PICKLIST,
    A.MULTI_SELECT_PICKLIST,
    A.STATE,
    A.STATUS,
    A.LOOKUP,
    A.CUSTOMER,
    A.OWNER,
    A.PARTY_LIST,
    A.UNIQUEIDENTIFIER,
    A.CALENDAR_RULES,
    A.VIRTUAL,
    A.MANAGED_PROPERTY,
    A.ENTITY_NAME,
]
# o = ok (blue), w = warning (yellow), e = error (red); one letter per column above, in that order.
#                      S M I B D D M B D P M S S L C O P U C V M E   (column initials, order of COLUMNS)
EXPECTED: dict[FieldType, str] = {
    FieldType.TEXT: "o o w w w w w w w w w w w e e e e e e e e e",
    FieldType.EMAIL: "o o e e e e e e e e e e e e e e e e e e e e",
    FieldType.PHONE: "o o e e e e e e e e e e e e e e e e e e e e",
    FieldType.URL: "o o e e e e e e e e e e e e e e e e e e e e",
    FieldType.INTEGER: "o o o o o o w e e w e o o e e e e e e e e e",
    FieldType.DECIMAL: "o o w w o o w e e e e e e e e e e e e e e e",
    FieldType.BOOLEAN: "w w e e e e e o e e e e e e e e e e e e e e",
    FieldType.DATETIME: "w w e e e e e e o e e e e e e e e e e e e e",
    FieldType.CHOICE: "o o e e e e e e e o o o o e e e e e e e e e",
    FieldType.CHOICES: "w w e e e e e e e w o e e e e e e e e e e e",
    FieldType.TEXT_LIST: "w w e e e e e e e e w e e e e e e e e e e e",
}
LETTER = {"o": Level.OK, "w": Level.WARNING, "e": Level.ERROR}
CELLS = [
    (ftype, column, LETTER[letter])
    for ftype, row in EXPECTED.items()
    for column, letter in zip(COLUMNS, row.split(), strict=True)
]


def test_the_matrix_covers_every_pair() -> None:
    assert set(MATRIX) == {(f, a) for f in FieldType for a in AttributeType}
    assert {(f, a) for f, a, _ in CELLS} == {(f, a) for f in FieldType for a in COLUMNS}
    assert set(COLUMNS) == set(AttributeType)


@pytest.mark.parametrize(("field_type", "attribute_type", "expected"), CELLS)
def test_matrix_cell(field_type: FieldType, attribute_type: AttributeType, expected: Level) -> None:
    level, reason = matrix_cell(field_type, attribute_type)
    assert level is expected
    assert reason and "{" not in reason
    options = (
        (OptionValue(1, "A"),)
        if attribute_type in (A.PICKLIST, A.MULTI_SELECT_PICKLIST, A.STATE, A.STATUS)
        else ()
    )
    # a plain writable column adds nothing: check_compatibility shows the matrix's icon
    result = check_compatibility(field_type, DynamicsColumn("col", attribute_type, options=options))
    assert result.level is expected
    assert result.reason


def test_reasons_explain_the_conversion() -> None:
    assert "ISO-8601" in check_compatibility(FieldType.DATETIME, DynamicsColumn("d", A.STRING)).reason
    assert "lookup" in check_compatibility(FieldType.TEXT, DynamicsColumn("l", A.LOOKUP)).reason
    assert "user mapping" in check_compatibility(FieldType.TEXT, DynamicsColumn("o", A.OWNER)).reason


# ---------------------------------------------------------------------------------------------
# Column-level rules
# ---------------------------------------------------------------------------------------------


def test_read_only_column_is_an_error_even_for_a_matching_type() -> None:
    column = DynamicsColumn("fullname", A.STRING, is_valid_for_create=False, is_valid_for_update=False)
    result = check_compatibility(FieldType.TEXT, column)
    assert result.level is Level.ERROR
    assert "fullname is read-only" in result.reason


def test_update_only_column_is_a_warning() -> None:
    column = DynamicsColumn(
        "statecode",
        A.STATE,
        options=(OptionValue(0, "Active"), OptionValue(1, "Inactive")),
        is_valid_for_create=False,
    )
    result = check_compatibility(FieldType.CHOICE, column)
    assert result.level is Level.WARNING
    assert "updated" in result.reason


def test_create_only_column_is_a_warning() -> None:
    result = check_compatibility(FieldType.TEXT, DynamicsColumn("x", A.STRING, is_valid_for_update=False))
    assert result.level is Level.WARNING
    assert "created" in result.reason


@pytest.mark.parametrize(("longest", "expected"), [(None, Level.OK), (50, Level.OK), (51, Level.WARNING)])
def test_text_longer_than_max_length_is_a_warning(longest: int | None, expected: Level) -> None:
    column = DynamicsColumn("firstname", A.STRING, max_length=50)
    result = check_compatibility(FieldType.TEXT, column, value_max_length=longest)
    assert result.level is expected
    if expected is Level.WARNING:
        assert "50 characters" in result.reason


def test_status_label_without_options_is_a_warning() -> None:
    with_options = DynamicsColumn("statuscode", A.STATUS, options=(OptionValue(1, "Active", state=0),))
    assert check_compatibility(FieldType.CHOICE, with_options).level is Level.OK
    without = DynamicsColumn("statuscode", A.STATUS)
    result = check_compatibility(FieldType.CHOICE, without)
    assert result.level is Level.WARNING
    assert "no options" in result.reason


def test_date_only_column_drops_the_time() -> None:
    result = check_compatibility(
        FieldType.DATETIME, DynamicsColumn("birthdate", A.DATETIME, format="DateOnly")
    )
    assert result.level is Level.WARNING
    assert "date only" in result.reason


def test_worst_level_wins_and_keeps_every_reason() -> None:
    column = DynamicsColumn(
        "x", A.STRING, max_length=10, is_valid_for_create=False, is_valid_for_update=False
    )
    result = check_compatibility(FieldType.TEXT_LIST, column, value_max_length=100)
    assert result.level is Level.ERROR
    assert len(result.reasons) == 3
    assert result.to_json() == {"level": "error", "reason": "; ".join(result.reasons)}
