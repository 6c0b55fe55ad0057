#!/usr/bin/env bash
# The README's first command: set everything up, start the local stack (Azurite, the Entra ID / Key Vault /
# Dataverse stand-ins, the devhost serving function_app), drive the whole product through its HTTP API
# (connect, the four setup steps, a 200-contact export, engagement events, the export again), print the
# summary, stop.
#   bash scripts/demo.sh                 # stack stopped afterwards
#   bash scripts/demo.sh --keep-running  # leave the stack up (stop it: .venv/bin/python scripts/stack.py stop)
# Ports: STACK_DEVHOST_PORT (7071), STACK_BLOB/QUEUE/TABLE_PORT (10000-10002); the stand-ins take free ones.
# DEMO_SKIP_SETUP=1 skips scripts/setup.sh (already set up, e.g. in CI); DEMO_SUMMARY_JSON=F also writes
# the summary as JSON.
set -euo pipefail
cd "$(dirname "$0")/.."

keep_running=false
for arg in "$@"; do
  case "$arg" in
    --keep-running) keep_running=true ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $arg" >&2; exit 2 ;;
  esac
done

started=$(date +%s)
if [[ "${DEMO_SKIP_SETUP:-}" != "1" ]]; then
  bash scripts/setup.sh
fi
echo "demo: set-up took $(( $(date +%s) - started ))s"

# Small export chunks (one queue message each) so the progress visibly moves on a 200-contact list.
export EXPORT_CHUNK_SIZE="${EXPORT_CHUNK_SIZE:-50}"
demo_args=()
[[ -n "${DEMO_SUMMARY_JSON:-}" ]] && demo_args+=(--json-summary "$DEMO_SUMMARY_JSON")

if $keep_running; then
  workspace="ws-demo-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  .venv/bin/python scripts/stack.py start
  .venv/bin/python scripts/demo.py --workspace "$workspace" "${demo_args[@]}"
  state_dir="${STACK_STATE_DIR:-.local/stack}"
  .venv/bin/python - "$state_dir/state.json" "$workspace" <<'EOF'
import json, sys
state = json.load(open(sys.argv[1]))
api = state["devhost_url"]
print("\ndemo: the stack is still running:")
print(f"  setup window     {api}/")
print(f"  signed in        {api}/_devhost/sign-in?workspace={sys.argv[2]}&user=user-admin&role=admin&go=1")
print(f"  product API      {api}/api/   (OpenAPI document: {api}/api/openapi.json)")
for name, urls in state.get("services", {}).items():
    for key, url in urls.items():
        print(f"  {name:<16} {url}" + ("" if key == "url" else f"   ({key})"))
print("  logs             " + sys.argv[1].rsplit("/", 1)[0] + "/logs/")
print(f"  a caller token:  .venv/bin/python scripts/demo.py --print-token --workspace {sys.argv[2]}")
print(f"                   (curl -H \"Authorization: Bearer $TOKEN\" {api}/api/dynamics/exports)")
print("  stop it with:    .venv/bin/python scripts/stack.py stop")
EOF
else
  .venv/bin/python scripts/stack.py run -- .venv/bin/python scripts/demo.py "${demo_args[@]}"
fi
