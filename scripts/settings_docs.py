"""Regenerate the settings table of README.md and local.settings.json.example from core/settings.py.

    .venv/bin/python scripts/settings_docs.py          # rewrite both
    .venv/bin/python scripts/settings_docs.py --check  # exit 1 when either is out of date

tests/unit/test_settings_documented.py checks the result (and that infra/ provisions each setting).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import SETTING_SPECS  # noqa: E402

# Local values that differ from the code's defaults (the rest keep the default, or stay empty).
LOCAL_VALUES = {
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "PLATFORM_JWT_ALLOW_DEV_HS256": "true",
    "PLATFORM_JWT_DEV_HS256_SECRET": "local-dev-only-not-a-secret-change-me-0123456789",
}
BEGIN = "| setting | default | meaning |\n|---|---|---|\n"


def example() -> str:
    values = {"FUNCTIONS_WORKER_RUNTIME": LOCAL_VALUES["FUNCTIONS_WORKER_RUNTIME"]}
    for spec in SETTING_SPECS:
        values[spec.name] = LOCAL_VALUES.get(spec.name, spec.default or "")
    return json.dumps({"IsEncrypted": False, "Values": values}, indent=2) + "\n"


def table() -> str:
    rows = []
    for spec in SETTING_SPECS:
        default = "—" if spec.default is None else f"`{spec.default}`"
        meaning = spec.meaning.replace("|", "\\|")
        rows.append(f"| `{spec.name}` | {default} | {meaning} |")
    return BEGIN + "\n".join(rows) + "\n"


def readme(current: str) -> str:
    start = current.index(BEGIN)
    end = current.index("\n\n", start)
    return current[:start] + table().rstrip("\n") + current[end:]


def main() -> int:
    check = "--check" in sys.argv[1:]
    targets = {
        ROOT / "local.settings.json.example": example(),
        ROOT / "README.md": readme((ROOT / "README.md").read_text()),
    }
    stale = [path for path, text in targets.items() if path.read_text() != text]
    if check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run scripts/settings_docs.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(targets[path])
        print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
