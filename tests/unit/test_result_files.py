"""A results file's rows: what a spreadsheet would run as a formula is shown as text (OWASP CSV
injection), every other cell is left exactly as it was."""

from __future__ import annotations

import csv
import io

import pytest

from core.domain.result_files import CSV_COLUMNS, csv_header, csv_row, neutralise, without_crm_values


@pytest.mark.parametrize(
    "cell",
    ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "  =1", "\n@x", "\uff1d1+1", '=HYPERLINK("x")'],
)
def test_formula_cells_are_prefixed_with_a_quote(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["", "Ada", "p-1", "a=b", "1-2", "x@y.z", " ", "'quoted"])
def test_other_cells_are_unchanged(cell: str) -> None:
    assert neutralise(cell) == cell


def test_a_row_quotes_every_cell_and_neutralises_each() -> None:
    detail = {
        "seq": 4,
        "platformId": "=cmd|' /C calc'!A0",
        "action": "failed",
        "dynamicsId": None,
        "errors": [{"field": "-x", "message": 'bad "value"', "code": "0x1"}],
        "note": "@note",
    }
    line = csv_row(detail)
    assert line.startswith('"4",') and line.endswith("\r\n")
    [cells] = list(csv.reader(io.StringIO(line)))
    row = dict(zip(CSV_COLUMNS, cells, strict=True))
    assert row["platformId"] == "'=cmd|' /C calc'!A0"
    assert row["errors"] == '\'-x: bad "value"'
    assert row["note"] == "'@note"
    assert row["dynamicsId"] == ""
    assert csv_header().startswith('\ufeff"seq"')


def test_people_other_than_admins_do_not_see_crm_values() -> None:
    detail = {"seq": 0, "changes": {"firstname": {"before": "Old", "after": "New"}}}
    assert without_crm_values(detail)["changes"] == {"firstname": {"after": "New"}}
    assert detail["changes"]["firstname"]["before"] == "Old"  # the stored detail is not changed
