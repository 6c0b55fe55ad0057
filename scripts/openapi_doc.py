"""Write the OpenAPI document the app serves at GET /api/openapi.json to docs/openapi.json.

    .venv/bin/python scripts/openapi_doc.py          # rewrite docs/openapi.json
    .venv/bin/python scripts/openapi_doc.py --check  # exit 1 when it is out of date

The file has no ``servers`` entry (the served document has none either), so it depends only on the code.
tests/unit/test_openapi_published.py checks that the committed file is current.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "openapi.json"
sys.path.insert(0, str(ROOT))


def render() -> str:
    """The document as committed: every blueprint registered, 2-space indented, one trailing newline."""
    import function_app  # noqa: F401 - its blueprints register their operations
    from core import openapi

    return json.dumps(openapi.document(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    text = render()
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else None
    if "--check" in sys.argv[1:]:
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run scripts/openapi_doc.py", file=sys.stderr)
            return 1
        return 0
    if current != text:
        TARGET.write_text(text, encoding="utf-8")
        print(f"rewrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
