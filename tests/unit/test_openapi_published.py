"""docs/openapi.json, the API document published in the repository, is the one the app serves
(``core.openapi.document()`` with every blueprint registered): regenerate it with scripts/openapi_doc.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core import openapi

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "openapi.json"


def test_committed_document_is_the_served_one() -> None:
    import function_app  # noqa: F401 - its blueprints register their operations

    published = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    assert published == openapi.document(), "docs/openapi.json is out of date: run scripts/openapi_doc.py"
    assert "servers" not in published  # nothing that depends on where it runs
    assert "/api/dynamics/exports" in published["paths"]


def test_check_mode_tells_a_stale_file(tmp_path: Path) -> None:
    """--check passes on the committed file and fails (exit 1, naming the fix) on a changed one."""
    fresh = subprocess.run(
        [sys.executable, "scripts/openapi_doc.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert fresh.returncode == 0, fresh.stderr
    # The same script on a copy of the repository's layout whose document lacks one operation.
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    (copy / "docs").mkdir()
    (copy / "scripts" / "openapi_doc.py").write_text((ROOT / "scripts" / "openapi_doc.py").read_text())
    stale = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    del stale["paths"]["/api/health"]
    (copy / "docs" / "openapi.json").write_text(json.dumps(stale, indent=2) + "\n")
    checked = subprocess.run(
        [sys.executable, str(copy / "scripts" / "openapi_doc.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert checked.returncode == 1, checked.stderr
    assert "out of date" in checked.stderr
