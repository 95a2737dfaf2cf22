"""Every role's argument specs: an option that holds a secret (a token, a key, a password, a webhook URL that
carries one) is no_log, so that Ansible never prints it when validating the role's inputs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"
SECRET = re.compile(r"(token|secret|api_key|password|webhook_url)$")


def options():
    for spec_file in sorted(ROLES.glob("*/meta/argument_specs.yml")):
        for entry, spec in (yaml.safe_load(spec_file.read_text())["argument_specs"] or {}).items():
            for name, option in (spec.get("options") or {}).items():
                yield "%s %s %s" % (spec_file.parts[-3], entry, name), name, option


def test_every_secret_option_is_no_log():
    assert [where for where, name, option in options() if SECRET.search(name) and option.get("no_log") is not True] == []


def test_the_secret_options_are_found():
    names = [name for _where, name, _option in options() if SECRET.search(name)]
    assert {"model_serving_hf_token", "model_serving_ngc_api_key", "model_serving_webhook_secret",
            "model_serving_lock_token"} <= set(names)
