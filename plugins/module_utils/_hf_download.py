# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Hugging Face download on the head: the engine image's own CLI, the token as a read-only file."""

from __future__ import annotations

import re

HF_TOKEN_MOUNT = "/run/secrets/hf_token"
HF_DOWNLOAD_CONTAINER = "dgx-spark-hf-download"  # named, so that a run ends what an interrupted one left running
# `hf download` (huggingface_hub >= 0.34), else `huggingface-cli download` (older images; NVIDIA's TensorRT-LLM recipe
# uses it). Constant text; the repository id is $1.
HF_DOWNLOAD_SCRIPT = ('if command -v hf >/dev/null; then exec hf download "$1"; '
                      'else exec huggingface-cli download "$1"; fi')


def hf_download_argv(entry, settings):
    """`docker run` argv that downloads entry's Hugging Face repository into the head's cache with the engine image's
    own CLI (`hf`, else `huggingface-cli`). settings: {cache (host dir), endpoint (a Hub mirror, optional), token_file (host path, optional),
    name (the container's, default HF_DOWNLOAD_CONTAINER)}.
    The token goes in as a read-only file (HF_TOKEN_PATH): never in argv, never in the container's environment."""
    argv = ["docker", "run", "--rm", "--name", settings.get("name") or HF_DOWNLOAD_CONTAINER, "--network", "host",
            "-v", "%s:/root/.cache/huggingface/hub" % settings["cache"]]
    if settings.get("token_file"):
        argv += ["-v", "%s:%s:ro" % (settings["token_file"], HF_TOKEN_MOUNT), "-e", "HF_TOKEN_PATH=" + HF_TOKEN_MOUNT]
    if settings.get("endpoint"):
        argv += ["-e", "HF_ENDPOINT=" + settings["endpoint"]]
    return argv + ["-e", "HF_HUB_DISABLE_PROGRESS_BARS=1", entry["image"], "sh", "-c", HF_DOWNLOAD_SCRIPT, "sh",
                   entry["hf_repo"]]


# What the Hub's CLI prints when the token is missing or may not read the repository (401/403, a gated repository).
_ACCESS_DENIED = re.compile(r"401|403|[Gg]ated|[Uu]nauthorized|[Ii]nvalid credentials")


def hf_download_denied(output):
    """Whether a failed download's output (stderr and stdout) says the Hub refused access."""
    return _ACCESS_DENIED.search(output or "") is not None
