#!/usr/bin/env bash
# `make demo`: set up what is missing, bring the lab up with its fabric, put the engine on the head, launch the demo
# model over both lab nodes (TP=2), print the endpoint and one real completion.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${MODEL:-lab-tiny-llama-tp2}

scripts/setup.sh all
lab/lab.sh up
export ANSIBLE_COLLECTIONS_PATH=$PWD/.collections
.venv/bin/ansible-playbook -i inventory/lab.yml playbooks/fabric.yml
lab/lab.sh engine
.venv/bin/ansible-playbook -i inventory/lab.yml playbooks/launch_model.yml -e "model=$model"
key=${DGX_SPARK_LAB_STATE:-$HOME/.local/state/dgx-spark-lab}/id_ed25519
echo "demo: endpoint http://10.10.10.1:8000/v1 on spark-2959 (inside the lab); one completion:"
ssh -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
  spark@10.59.63.11 "curl -sf --max-time 120 http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' \
  -d '{\"model\": \"tiny-llama\", \"prompt\": \"The DGX Spark\", \"max_tokens\": 8, \"temperature\": 0}'"
echo
echo "demo: stop it with: ansible-playbook -i inventory/lab.yml playbooks/stop_model.yml; make lab-down"
