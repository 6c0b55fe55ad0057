#!/usr/bin/env bash
# The README's first command: set everything up, start the local stack (Azurite + devhost serving
# function_app on http://127.0.0.1:7071/api/), walk the configuration API like the frontend does, stop.
#   bash scripts/demo.sh                 # stack stopped afterwards
#   bash scripts/demo.sh --keep-running  # leave the stack up (stop it: .venv/bin/python scripts/stack.py stop)
set -euo pipefail
cd "$(dirname "$0")/.."

keep_running=false
for arg in "$@"; do
  case "$arg" in
    --keep-running) keep_running=true ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $arg" >&2; exit 2 ;;
  esac
done

bash scripts/setup.sh
if $keep_running; then
  .venv/bin/python scripts/stack.py start
  .venv/bin/python scripts/demo.py --base-url "http://127.0.0.1:${STACK_DEVHOST_PORT:-7071}"
  echo "demo: stack left running; stop it with: .venv/bin/python scripts/stack.py stop"
else
  .venv/bin/python scripts/stack.py run -- .venv/bin/python scripts/demo.py
fi
