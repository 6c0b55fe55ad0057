#!/usr/bin/env bash
# Mutation testing of the riskiest modules with mutmut (configured in pyproject.toml, [tool.mutmut]).
# Not part of CI: it re-runs the covering unit tests once per mutant (minutes per module on 2 CPUs).
#
#   bash scripts/mutation.sh                      # every module below
#   bash scripts/mutation.sh normalize auth       # a subset, by module name
#
# Prints killed/total per module; `.venv/bin/mutmut show <mutant>` shows one survivor's diff and
# `.venv/bin/mutmut browse` lists them all. Every run re-tests each mutant of the modules named; the
# mutated copy and mutmut's record of which test covers which function are kept in mutants/ (gitignored).
# MUTMUT_CHILDREN sets the parallel test processes (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A MODULE=(
  [normalize]=core.domain.normalize
  [matching]=core.domain.matching
  [lookup_plan]=core.domain.lookup_plan
  [lookup_values]=core.domain.lookup_values
  [lookup_queries]=core.adapters.dataverse.lookup_queries
  [odata]=core.adapters.dataverse.odata
  [token_crypto]=core.adapters.identity.token_crypto
  [auth]=core.adapters.identity.auth
  [export_plan]=core.domain.export_plan
  [bulk]=core.services.jobs.bulk
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(normalize matching lookup_plan lookup_values lookup_queries odata token_crypto auth export_plan bulk)
globs=()
for name in "${names[@]}"; do
  [ -n "${MODULE[$name]:-}" ] || { echo "unknown module '$name' (one of: ${!MODULE[*]})" >&2; exit 2; }
  globs+=("${MODULE[$name]}.*")
done

.venv/bin/mutmut run --max-children "${MUTMUT_CHILDREN:-2}" "${globs[@]}"
.venv/bin/mutmut results --all true | .venv/bin/python -c '
import collections, sys
wanted = sys.argv[1:]
counts = collections.defaultdict(collections.Counter)
for line in sys.stdin:
    name, _, status = line.strip().rpartition(": ")
    module = name.rsplit(".", 1)[0]
    if module in wanted:
        counts[module][status] += 1
for module in wanted:
    c = counts[module]
    total = sum(c.values())
    caught = c["killed"] + c["timeout"]
    others = ", ".join(f"{n} {s}" for s, n in sorted(c.items()) if s not in ("killed", "timeout"))
    print(f"{module}: {caught}/{total} killed" + (f" ({others})" if others else ""))
' $(for name in "${names[@]}"; do echo "${MODULE[$name]}"; done)
