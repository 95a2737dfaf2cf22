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
# after both ended, in order; then counted as stage counts them, stopping at the first red. Each call has its own
# directory for the logs and counts: the lab's stream and the one beside it run pairs at the same time.
side_by_side() {
  local first=() second=() seen=0 arg pair
  for arg in "$@"; do
    if [[ $arg == ::: ]]; then seen=1; elif [[ $seen -eq 0 ]]; then first+=("$arg"); else second+=("$arg"); fi
  done
  local start=$SECONDS
  pair=$(mktemp -d "$out/side-by-side.XXXXXX")
  (SIDE_BY_SIDE=$pair/1.counts stage "${first[@]}") >"$pair/1.log" 2>&1 &
  local one=$!
  (SIDE_BY_SIDE=$pair/2.counts stage "${second[@]}") >"$pair/2.log" 2>&1 &
  wait $one $!
  local index rc p f s name red=""
  for index in 1 2; do
    cat "$pair/$index.log"
    # a stage that died before it counted is a red one
    read -r rc p f s name <"$pair/$index.counts" || { rc=1 p=0 f=1 s=0 name="stage $index of the pair"; }
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

stage "setup: apt packages" "" scripts/setup.sh apt
# The lab comes up and the engine image loads into it (podman and disk; no virtualenv) while the virtualenvs install.
(lab/lab.sh up && lab/lab.sh engine) >"$out/lab-up.log" 2>&1 &
lab_up=$!
trap 'wait "$lab_up" 2>/dev/null' EXIT  # a red stage leaves no half-started lab behind
stage "setup: virtualenvs, ansible-test's pip, the collection linked" "" scripts/setup.sh python

# The stages that need no lab: the lab doubles' tests (tests/unit runs once, in ansible-test units; two workers: the
# AWX and Semaphore configuration tests run ansible-playbook against their API doubles), then two at a time (two
# CPUs; each pair shares nothing: own venv, own build tree, or reads only).
no_lab_stages() {
  summary() { :; }  # (this subshell's counts go to the lab's stream, which prints the one summary)
  passed=0 failed=0 skipped=0  # its own only: the setup stages before the fork are the lab stream's to count
  trap 'printf "%d %d %d\n" "$passed" "$failed" "$skipped" >"$out/no-lab.counts"' EXIT
  stage "lab double tests (pytest)" "$out/pytest-lab-doubles.xml" \
    "$venv/pytest" -q -n 2 tests/lab --junitxml="$out/pytest-lab-doubles.xml" -p no:cacheprovider
  side_by_side \
    "ansible-test sanity (ansible-core 2.19, Python 3.11)" "" scripts/ansible_test.sh .venv 3.11 sanity ::: \
    "ansible-test sanity (ansible-core 2.21, Python 3.12)" "" scripts/ansible_test.sh .venv-2.21 3.12 sanity
  side_by_side \
    "ansible-test units (ansible-core 2.19, Python 3.11)" "$out/ansible-test-units/*.xml" \
    scripts/ansible_test.sh .venv 3.11 units "$out/ansible-test-units" ::: \
    "ansible-lint (production profile)" "" "$venv/ansible-lint" --profile production --strict
  stage "collection build and install" "" scripts/collection_roundtrip.sh
}

# From here two streams share the two CPUs. This shell runs the lab's: the lab up with the engine loaded, molecule on
# it, then the end-to-end tests. Beside it, in the idle scheduling class (SCHED_IDLE; nice 10 where chrt cannot set
# it), the stages that need no lab and the execution environment's build (host-side podman): they run in the CPU the
# lab's stream leaves idle (its waits and polls). nice alone does not keep them off the lab's processes, which run in
# the node containers' own cgroups: molecule took 349 s beside them at nice 10, 250-273 s idle-class (200 alone).
lowered() { { chrt --idle -p 0 "$BASHPID" 2>/dev/null || renice -n 10 -p "$BASHPID"; } >/dev/null && "$@"; }
(lowered no_lab_stages) >"$out/no-lab.log" 2>&1 &
no_lab=$!
(lowered lab/lab.sh ee) >"$out/ee-build.log" 2>&1 &
ee_build=$!
trap 'wait "$lab_up" "$ee_build" $no_lab 2>/dev/null' EXIT  # a red stage leaves nothing of the streams running behind it

# no_lab_result: wait for the stages that need no lab, print their output and count them; a red one stops here
no_lab_result() {
  local rc=0 p f s
  wait "$no_lab" || rc=$?
  no_lab=""
  cat "$out/no-lab.log"
  read -r p f s <"$out/no-lab.counts" 2>/dev/null || { p=0 f=1 s=0; }
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [[ $rc -ne 0 || $f -ne 0 ]]; then
    printf '\nstopped: a stage that needs no lab is red (above)\n'
    summary
    exit 1
  fi
}
# awaited PID LOG: a background job's end; its last line, or its whole log when it failed
awaited() {
  wait "$1" || { cat "$2"; return 1; }
  tail -n 1 "$2"
}

stage "lab up, engine loaded" "" awaited "$lab_up" "$out/lab-up.log"
stage "molecule scenarios (on the lab)" "$out/molecule/molecule.xml" scripts/molecule_all.sh "$out/molecule"
stage "execution environment built" "" awaited "$ee_build" "$out/ee-build.log"
export DGX_SPARK_EE_BUILT=1  # tests/e2e/test_execution_environment.py uses the image built above
# the stages that need no lab, when they ended already: a red one stops before the longest stage
kill -0 "$no_lab" 2>/dev/null || no_lab_result
# The end-to-end tests on two labs at once, in the CPU each leaves idle while it waits (a third of either's time): on
# the first, the tests that need the engine image (loaded once, into it) and Kubernetes; on a second lab beside it
# (LAB_INSTANCE=2, lab.sh), the pair's other tests (TRT-LLM's and the pull's need only the tiny model), then those of
# three and four nodes; each ends with the teardown's.
second_lab=(test_lab.py test_p2p_image_copy.py test_playbooks.py test_training.py test_pull.py test_serving_trtllm.py
  test_trt_build.py test_topology.py)
side_by_side \
  "lab end-to-end (two simulated Sparks, the engine and Kubernetes)" "$out/pytest-lab.xml" \
  "$venv/pytest" -q tests/e2e "${second_lab[@]/#/--ignore=tests/e2e/}" --junitxml="$out/pytest-lab.xml" \
  -p no:cacheprovider --durations=20 ::: \
  "lab end-to-end on a second lab (two simulated Sparks, then three and four)" "$out/pytest-lab-2.xml" \
  env LAB_INSTANCE=2 "$venv/pytest" -q "${second_lab[@]/#/tests/e2e/}" tests/e2e/test_lab_teardown.py \
  --junitxml="$out/pytest-lab-2.xml" -p no:cacheprovider --durations=15
[[ -z $no_lab ]] || no_lab_result

summary
[[ $failed -eq 0 ]]
