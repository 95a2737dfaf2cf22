#!/usr/bin/env bash
# `make demo`: set up what is missing, bring the lab up, launch the demo model on both lab nodes,
# print the endpoint and one real completion. Each step stops with a clear message when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${MODEL:-tiny-llama}

scripts/setup.sh all

if [[ ! -x lab/lab.sh ]]; then
  echo "demo: the lab (two simulated Sparks) is not part of this checkout yet, so there is nothing to launch on." >&2
  echo "demo: no result is shown rather than a made-up one." >&2
  exit 3
fi
lab/lab.sh up

if [[ ! -f playbooks/launch_model.yml ]]; then
  echo "demo: the lab is up (make lab-status); model serving (playbooks/launch_model.yml) is not in this checkout yet."
  exit 0
fi
export ANSIBLE_COLLECTIONS_PATH=$PWD/.collections
.venv/bin/ansible-playbook -i inventory/lab.yml playbooks/launch_model.yml -e "model=$model"
