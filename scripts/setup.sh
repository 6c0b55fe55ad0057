#!/usr/bin/env bash
# Idempotent set-up of everything the project needs on a fresh machine: a Python 3.11 venv with the
# pinned requirements, the pinned npm tools (Azurite), the setup window (web/: npm packages, then its
# build in static/, which the Function App serves) and a Chromium for the browser tests. Re-runs are fast:
# each step is skipped when its inputs have not changed.
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

web_stamp=$(sha256sum web/package-lock.json | cut -d' ' -f1)
if [[ ! -d web/node_modules/lit || "$(cat .local/web-npm.stamp 2>/dev/null)" != "$web_stamp" ]]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  echo "$web_stamp" > .local/web-npm.stamp
fi
build_stamp=$( (cd web && find index.html vite.config.ts tsconfig.json package-lock.json src -type f -print0 \
  | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1)
if [[ ! -f static/index.html || "$(cat .local/web-build.stamp 2>/dev/null)" != "$build_stamp" ]]; then
  (cd web && node_modules/.bin/vite build --logLevel warn)
  echo "$build_stamp" > .local/web-build.stamp
fi

# The browser tests drive the operating system's Chromium (Playwright's own browser download is not
# reachable everywhere). Where it is, `.venv/bin/python -m playwright install chromium` works as well and
# the tests use it when /usr/bin/chromium is absent; SETUP_SKIP_CHROMIUM=1 skips this step.
if [[ ! -x /usr/bin/chromium && "${SETUP_SKIP_CHROMIUM:-}" != "1" ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "setup: /usr/bin/chromium is missing: install Debian's chromium (sudo apt-get install chromium)" \
      "or run .venv/bin/python -m playwright install chromium" >&2
  fi
fi
