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
  if [[ -n ${SIDE_BY_SIDE:-} ]]; then  # run by side_by_side, which counts and stops once both stages ended
    printf '%d %d %d %d %s\n' "$rc" "$p" "$f" "$s" "$name" >"$SIDE_BY_SIDE"
    return
  fi
  if [[ $rc -ne 0 ]]; then
    printf '\nstopped at the first red stage: %s\n' "$name"
    summary
    exit 1
  fi
}

# side_by_side NAME JUNIT CMD... ::: NAME JUNIT CMD...: two stages at once, each one's output printed whole
# after both ended, in order; then counted as stage counts them, stopping at the first red.
side_by_side() {
  local first=() second=() seen=0 arg
  for arg in "$@"; do
    if [[ $arg == ::: ]]; then seen=1; elif [[ $seen -eq 0 ]]; then first+=("$arg"); else second+=("$arg"); fi
  done
  local start=$SECONDS
  (SIDE_BY_SIDE=$out/side-1.counts stage "${first[@]}") >"$out/side-1.log" 2>&1 &
  local one=$!
  (SIDE_BY_SIDE=$out/side-2.counts stage "${second[@]}") >"$out/side-2.log" 2>&1 &
  wait $one $!
  local index rc p f s name red=""
  for index in 1 2; do
    cat "$out/side-$index.log"
    # a stage that died before it counted is a red one
    read -r rc p f s name <"$out/side-$index.counts" || { rc=1 p=0 f=1 s=0 name="stage $index of the pair"; }
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    [[ $rc -eq 0 || -n $red ]] || red=$name
  done
  printf '=== (side by side: %ds)\n' $((SECONDS - start))
  if [[ -n $red ]]; then
    printf '\nstopped at the first red stage: %s\n' "$red"
    summary
    exit 1
  fi
}

export ANSIBLE_COLLECTIONS_PATH=$root/.collections
venv=$root/.venv/bin
export PATH=$venv:$PATH

stage "setup" "" scripts/setup.sh all
# The lab comes up, the serving engine loads into it and the execution environment builds while the stages that need
# no lab run (it is mostly waiting and disk); the molecule stage waits for it.
(lab/lab.sh up && lab/lab.sh engine && lab/lab.sh ee) >"$out/lab-warm-up.log" 2>&1 &
lab_warm_up=$!
trap 'wait "$lab_warm_up" 2>/dev/null' EXIT  # a red stage before the lab's leaves no half-started lab behind
lab_warmed_up() {
  wait "$lab_warm_up" || { cat "$out/lab-warm-up.log"; return 1; }
  tail -n 2 "$out/lab-warm-up.log"
}
# The lab doubles on this host (tests/unit runs once, in ansible-test units below). Two workers: the AWX and Semaphore
# configuration tests run ansible-playbook against their API doubles.
stage "lab double tests (pytest)" "$out/pytest-lab-doubles.xml" \
  "$venv/pytest" -q -n 2 tests/lab --junitxml="$out/pytest-lab-doubles.xml" -p no:cacheprovider
# two at a time (two CPUs): each pair shares nothing (own venv, own build tree, or reads only)
side_by_side \
  "ansible-test sanity (ansible-core 2.19, Python 3.11)" "" scripts/ansible_test.sh .venv 3.11 sanity ::: \
  "ansible-test sanity (ansible-core 2.21, Python 3.12)" "" scripts/ansible_test.sh .venv-2.21 3.12 sanity
side_by_side \
  "ansible-test units (ansible-core 2.19, Python 3.11)" "$out/ansible-test-units/*.xml" \
  scripts/ansible_test.sh .venv 3.11 units "$out/ansible-test-units" ::: \
  "ansible-lint (production profile)" "" "$venv/ansible-lint" --profile production --strict
stage "collection build and install" "" scripts/collection_roundtrip.sh
stage "lab up, engine loaded, execution environment built" "" lab_warmed_up
export DGX_SPARK_EE_BUILT=1  # tests/e2e/test_execution_environment.py uses the image the warm-up built
stage "molecule scenarios (on the lab)" "$out/molecule/molecule.xml" scripts/molecule_all.sh "$out/molecule"
stage "lab end-to-end (two simulated Sparks)" "$out/pytest-lab.xml" \
  "$venv/pytest" -q tests/e2e --junitxml="$out/pytest-lab.xml" -p no:cacheprovider --durations=25

summary
[[ $failed -eq 0 ]]
