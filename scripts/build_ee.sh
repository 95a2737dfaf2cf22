#!/usr/bin/env bash
# Builds the execution environment (execution-environment.yml): this collection's artifact, then ansible-builder.
#   EE_TAG            image tag (dgx-spark-ee:latest)
#   EE_RUNTIME        podman or docker (podman)
#   EE_BASE_IMAGE     base image (the file's, Fedora); EE_PKGMGR its package manager (dnf; apt-get on Debian)
#   EE_GALAXY_SERVER  where the collection's dependencies come from (the configured Galaxy server)
#   EE_PLATFORM       another platform than this machine's, e.g. linux/arm64 for DGX Spark
#   EE_BUILD_ARGS     more arguments for the container build, e.g. --network=host
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv/bin}
tag=${EE_TAG:-dgx-spark-ee:latest}
work=build/ee
rm -rf "$work"; mkdir -p "$work"
"$venv/ansible-galaxy" collection build --output-path "$work" . >/dev/null
mv "$work"/dgx_spark-cluster-*.tar.gz "$work/dgx_spark-cluster.tar.gz"
args=(build -f execution-environment.yml -t "$tag" --context "$work/context" --container-runtime "${EE_RUNTIME:-podman}")
[[ -n ${EE_BASE_IMAGE:-} ]] && args+=(--build-arg "EE_BASE_IMAGE=$EE_BASE_IMAGE")
[[ -n ${EE_PKGMGR:-} ]] && args+=(--build-arg "PKGMGR=$EE_PKGMGR")
[[ -n ${EE_GALAXY_SERVER:-} ]] && args+=(--build-arg "ANSIBLE_GALAXY_CLI_COLLECTION_OPTS=--server $EE_GALAXY_SERVER")
extra=${EE_BUILD_ARGS:-}
[[ -n ${EE_PLATFORM:-} ]] && extra+=" --platform $EE_PLATFORM"
[[ -n $extra ]] && args+=("--extra-build-cli-args=$extra")
"$venv/ansible-builder" "${args[@]}"
