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
for config in "${scenarios[@]}"; do
  name=$(basename "$(dirname "$config")")
  echo "--- molecule test -s $name"
  molecule test -s "$name"
done
