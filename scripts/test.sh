#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, lint, format check, type check, the architecture
# contract (import-linter), the setup window's generated API client and type check, tests (the browser
# tests of the window included: tests/browser).
# Tests start every service they need themselves (Azurite, the emulators, the devhost) on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONDONTWRITEBYTECODE=1
echo "== ruff check"; .venv/bin/ruff check .
echo "== ruff format --check"; .venv/bin/ruff format --check .
echo "== mypy core/"; .venv/bin/mypy core/
echo "== import contract"; .venv/bin/lint-imports --no-cache  # layers, no cycles (pyproject.toml)
echo "== web: API client matches docs/openapi.json"; (cd web && node scripts/check-api.mjs)
echo "== web: tsc --noEmit"; (cd web && node_modules/.bin/tsc --noEmit)
echo "== pytest"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure of the suite, not a pass.
exit $rc
