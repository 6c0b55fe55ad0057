"""The setup window's JavaScript stays small enough to embed: under 150 KB gzipped, all chunks together."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUDGET_BYTES = 150 * 1024


def test_shipped_javascript_is_under_budget() -> None:
    scripts = sorted((ROOT / "static" / "assets").glob("*.js"))
    if not scripts:
        pytest.fail("the setup window is not built: run bash scripts/setup.sh")
    total = sum(len(gzip.compress(path.read_bytes(), compresslevel=9)) for path in scripts)
    assert total < BUDGET_BYTES, f"{total} bytes gzipped"
