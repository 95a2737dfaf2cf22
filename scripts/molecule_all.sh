#!/usr/bin/env bash
# Every molecule scenario under molecule/, one after the other; the lab stays up between them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$PWD/.collections
# Scenarios stay in molecule/ (the design's layout); naming the glob keeps molecule from asking to move them.
export MOLECULE_GLOB='molecule/*/molecule.yml'
shopt -s nullglob
scenarios=(molecule/*/molecule.yml)
[[ ${#scenarios[@]} -gt 0 ]] || { echo "no molecule scenario found" >&2; exit 1; }
# With a directory argument, one JUnit case per scenario goes to <dir>/molecule.xml (make test counts them).
junit=${1:-}
cases=() failures=0
for config in "${scenarios[@]}"; do
  name=$(basename "$(dirname "$config")")
  echo "--- molecule test -s $name"
  start=$SECONDS
  if molecule test -s "$name"; then
    cases+=("<testcase classname=\"molecule\" name=\"$name\" time=\"$((SECONDS - start))\"/>")
  else
    cases+=("<testcase classname=\"molecule\" name=\"$name\"><failure message=\"molecule test -s $name failed\"/></testcase>")
    failures=$((failures + 1))
  fi
  [[ $failures -eq 0 ]] || break  # the first red scenario stops the stage
done
if [[ -n $junit ]]; then
  mkdir -p "$junit"
  printf '<testsuite name="molecule" tests="%d" failures="%d">%s</testsuite>\n' \
    "${#cases[@]}" "$failures" "$(printf '%s' "${cases[@]}")" > "$junit/molecule.xml"
fi
[[ $failures -eq 0 ]]
