#!/usr/bin/env bash
# The collection builds into a tarball that ansible-galaxy installs; from there ansible-doc lists its modules and
# every playbook passes a syntax check under its collection name (ansible-playbook dgx_spark.cluster.<name>).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$PWD/.venv/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/ansible-galaxy" collection build --output-path "$work" . >/dev/null
tarball=$(ls "$work"/dgx_spark-cluster-*.tar.gz)
# Dependencies resolve against the bundled `ansible` package (Galaxy may be unreachable).
export ANSIBLE_COLLECTIONS_PATH=$work/installed  # only the tarball's copy, not the checkout's link
"$venv/ansible-galaxy" collection install -p "$work/installed" "$tarball" >/dev/null
listed=$("$venv/ansible-doc" -l dgx_spark.cluster)
echo "$listed"
missing=0
for module in plugins/modules/*.py; do
  name=dgx_spark.cluster.$(basename "$module" .py)
  grep -q "^$name " <<<"$listed" || { echo "not listed by ansible-doc: $name" >&2; missing=1; }
done
for playbook in playbooks/*.yml; do
  name=dgx_spark.cluster.$(basename "$playbook" .yml)
  (cd "$work" && "$venv/ansible-playbook" -i "$OLDPWD/inventory/lab.yml" --syntax-check "$name" >/dev/null) \
    || { echo "does not run from the installed collection: $name" >&2; missing=1; }
done
exit $missing
