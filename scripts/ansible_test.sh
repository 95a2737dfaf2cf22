#!/usr/bin/env bash
# ansible_test.sh VENV PYTHON_VERSION sanity|units [JUNIT_DEST]
# ansible-test needs the collection at ansible_collections/<ns>/<name>: run it on a copy of the tracked
# (and not ignored) files there, with the ansible-core of VENV.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$PWD/$1 python=$2 command=$3 junit_dest=${4:-}
work=$PWD/build/ansible-test-$python
dest=$work/ansible_collections/dgx_spark/cluster
mkdir -p "$dest"
# Sync, keeping tests/output (ansible-test's venvs) so later runs skip the requirement installs.
git ls-files -co --exclude-standard -z | rsync -a --delete-missing-args --from0 --files-from=- ./ "$dest/"
(cd "$dest" && git ls-files -co --exclude-standard -z 2>/dev/null) | while IFS= read -r -d '' f; do
  [[ -e "$f" ]] || rm -f "$dest/$f"
done
cd "$dest"
# ansible-test lists files with git; a repo of its own keeps it from using (and ignoring) the outer checkout.
[[ -d .git ]] || git init -q .
git add -A
export PATH=$venv/bin:$PATH
case $command in
  sanity) ansible-test sanity --venv --python "$python" --color no ;;
  units)
    rc=0
    ansible-test units --venv --python "$python" --color no || rc=$?
    if [[ -n $junit_dest ]]; then
      mkdir -p "$junit_dest"; cp tests/output/junit/*.xml "$junit_dest/" 2>/dev/null || true
    fi
    exit $rc
    ;;
  *) echo "unknown ansible-test command: $command" >&2; exit 2 ;;
esac
