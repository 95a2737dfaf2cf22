#!/usr/bin/env bash
# One set-up path for a fresh machine: project virtualenvs, apt packages, ansible-test pip bootstrap,
# the collection linked where ansible finds it. Re-running when everything is in place takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

py311=${PY311:-python3}
py312=${PY312:-/root/.pyenv/versions/3.12.1/bin/python3.12}

log() { printf '[setup] %s\n' "$*"; }

# venv_for DIR PYTHON REQFILE: (re)build DIR when REQFILE changed since the last successful install.
venv_for() {
  local dir=$1 python=$2 req=$3 stamp
  stamp="$dir/.requirements.sha256"
  if [[ -x "$dir/bin/python" ]] && sha256sum --status -c "$stamp" 2>/dev/null; then
    return 0
  fi
  log "installing $req into $dir"
  [[ -x "$dir/bin/python" ]] || "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  sha256sum "$req" > "$stamp"
}

apt_packages() {
  local missing=()
  mapfile -t wanted < <(grep -vE '^\s*(#|$)' requirements/apt.txt)
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "apt: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ansible-test downloads a get-pip script it cannot reach here; this stand-in uses ensurepip instead.
pip_bootstrap() {
  local cache="$HOME/.ansible/test/cache" v
  mkdir -p "$cache"
  for v in 24_2 25_2; do
    cmp -s scripts/get_pip_offline.py "$cache/get_pip_$v.py" || cp scripts/get_pip_offline.py "$cache/get_pip_$v.py"
  done
}

# Playbooks in this checkout resolve dgx_spark.cluster.* through .collections (see ansible.cfg).
link_collection() {
  local link=.collections/ansible_collections/dgx_spark/cluster
  mkdir -p "$(dirname "$link")"
  [[ "$(readlink "$link" 2>/dev/null)" == "$root" ]] || ln -sfn "$root" "$link"
}

case "${1:-all}" in
  python)
    venv_for .venv "$py311" requirements/dev.txt
    venv_for .venv-2.21 "$py312" requirements/sanity-2.21.txt
    pip_bootstrap
    link_collection
    ;;
  apt) apt_packages ;;
  all)
    apt_packages
    venv_for .venv "$py311" requirements/dev.txt
    venv_for .venv-2.21 "$py312" requirements/sanity-2.21.txt
    pip_bootstrap
    link_collection
    ;;
  *) echo "usage: $0 [all|python|apt]" >&2; exit 2 ;;
esac
log "ready"
