#!/usr/bin/env bash
# Idempotent set-up of everything the project needs on a fresh machine: a Python 3.11 venv with the
# pinned requirements, and the pinned npm tools (Azurite). Re-runs are fast: each step is skipped when
# its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "setup: Python 3.11 is required (found $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi

mkdir -p .local
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
req_stamp=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [[ "$(cat .local/pip.stamp 2>/dev/null)" != "$req_stamp" ]]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$req_stamp" > .local/pip.stamp
fi

npm_stamp=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -x node_modules/.bin/azurite || "$(cat .local/npm.stamp 2>/dev/null)" != "$npm_stamp" ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$npm_stamp" > .local/npm.stamp
fi

[[ -f local.settings.json ]] || cp local.settings.json.example local.settings.json
