#!/usr/bin/env bash
# `make test`: every gate in order, stopping at the first red, then one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/tests/output/make-test
rm -rf "$out"; mkdir -p "$out"
passed=0 failed=0 skipped=0

summary() { printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"; }

# stage NAME JUNIT_GLOB CMD...: run CMD; count JUnit cases when it writes any, else count the stage as one.
stage() {
  local name=$1 junit=$2; shift 2
  printf '\n=== %s\n' "$name"
  local start=$SECONDS rc
  "$@"; rc=$?
  # pytest exits 5 when it collected nothing: for a stage that means a missing suite, which is a failure.
  local counts
  counts=$(python3 scripts/junit_count.py $junit 2>/dev/null || echo "0 0 0")
  read -r p f s <<<"$counts"
  if [[ $((p + f)) -eq 0 ]]; then
    if [[ $rc -eq 0 ]]; then p=1; else f=1; fi
  elif [[ $rc -ne 0 && $f -eq 0 ]]; then
    f=1
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  printf '=== %s: rc=%d, %d passed, %d failed, %d skipped (%ds)\n' "$name" "$rc" "$p" "$f" "$s" $((SECONDS - start))
  if [[ $rc -ne 0 ]]; then
    printf '\nstopped at the first red stage: %s\n' "$name"
    summary
    exit 1
  fi
}

export ANSIBLE_COLLECTIONS_PATH=$root/.collections
venv=$root/.venv/bin
export PATH=$venv:$PATH

stage "setup" "" scripts/setup.sh all
# two workers: the AWX and Semaphore configuration tests run ansible-playbook against their API doubles
stage "unit tests (pytest: plugins, lab doubles)" "$out/pytest-unit.xml" \
  "$venv/pytest" -q -n 2 tests/unit tests/lab --junitxml="$out/pytest-unit.xml" -p no:cacheprovider
stage "ansible-test sanity (ansible-core 2.19, Python 3.11)" "" scripts/ansible_test.sh .venv 3.11 sanity
stage "ansible-test sanity (ansible-core 2.21, Python 3.12)" "" scripts/ansible_test.sh .venv-2.21 3.12 sanity
stage "ansible-test units (ansible-core 2.19, Python 3.11)" "$out/ansible-test-units/*.xml" \
  scripts/ansible_test.sh .venv 3.11 units "$out/ansible-test-units"
stage "ansible-lint (production profile)" "" "$venv/ansible-lint" --profile production --strict
stage "collection build and install" "" scripts/collection_roundtrip.sh
stage "molecule scenarios (on the lab)" "$out/molecule/molecule.xml" scripts/molecule_all.sh "$out/molecule"
stage "lab end-to-end (two simulated Sparks)" "$out/pytest-lab.xml" \
  "$venv/pytest" -q tests/e2e --junitxml="$out/pytest-lab.xml" -p no:cacheprovider

summary
[[ $failed -eq 0 ]]
