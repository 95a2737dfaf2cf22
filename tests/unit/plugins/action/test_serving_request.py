"""serving_request's checks of a launch request (plugin_utils/_serving_request): what it refuses, in the words the
model_serving role has always used, and what it lets through."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.plugin_utils._serving_request import (
    node_problems, secret_problems, settings_problems)

VLLM = {"engine": "vllm", "port": 8000}
TRTLLM = {"engine": "trtllm", "port": 8355}
GOOD_PLAY = [["model_serving_ray_port", 6379, "unprivileged_port"], ["model_serving_state_dir", "/var/lib/x", "path"]]


def test_good_play_settings_pass_and_each_bad_one_is_named_with_every_rule():
    assert settings_problems(GOOD_PLAY, 0, 300, "native") == []
    [message] = settings_problems([["model_serving_ray_port", 80, "unprivileged_port"]], 0, 300, "ray")
    assert message.startswith("model_serving settings rejected: model_serving_ray_port 80 is not allowed: must be "
                              "an integer 1024..65535. model_serving_webhook_url and model_serving_hf_endpoint")
    # the lock's wait and TTL and the backend are named by the rules alone
    for wait, ttl, backend in ((-1, 300, "native"), (0, 0, "native"), (0, 300, "mpi"), ("soon", 300, "native")):
        [message] = settings_problems(GOOD_PLAY, wait, ttl, backend)
        assert message.startswith("model_serving settings rejected. ") and "lock wait/TTL" in message


def test_an_endpoint_open_to_the_lan_needs_a_key_unless_the_lan_is_trusted():
    assert secret_problems("m", VLLM, {}, False, "", "valid", False) == []
    assert secret_problems("m", VLLM, {}, False, "", "absent", True) == []
    [message] = secret_problems("m", VLLM, {}, False, "", "absent", False)
    assert message.startswith("An API key is required: the endpoint listens on every address of the head.")
    [message] = secret_problems("m", VLLM, {}, False, "", "invalid", True)
    assert message.startswith("model_serving_api_key must be 16 to 256 letters")


def test_trtllm_serves_no_key_so_only_a_trusted_lan_may_reach_it():
    """A key given for a TensorRT-LLM model protects nothing: it is refused as if absent."""
    for api_key in ("absent", "valid", "invalid"):
        [message] = secret_problems("lab-trt", TRTLLM, {}, False, "", api_key, False)
        assert message.startswith("trtllm-serve cannot check an API key, so lab-trt would answer anyone on the LAN")
        assert "port 8355" in message
        assert secret_problems("lab-trt", TRTLLM, {}, False, "", api_key, True) == []


def test_unreadable_secret_files_and_a_token_bound_for_clear_http_are_named_never_read():
    unreadable = {"model_serving_api_key_file": "/nonexistent/key", "model_serving_hf_token_file": "/x/token"}
    found = secret_problems("m", VLLM, unreadable, True, "http://mirror.lan", "valid", False)
    assert found[0] == ("Not readable on the controller (where the secrets are read): model_serving_api_key_file "
                        "/nonexistent/key, model_serving_hf_token_file /x/token.")
    assert found[1].startswith("The Hugging Face token is not sent there: model_serving_hf_endpoint "
                               "'http://mirror.lan' is not allowed")
    # https, the loopback and Hugging Face itself are fine; without a token any endpoint is
    for endpoint in ("", "https://mirror.lan", "http://127.0.0.1:5000"):
        assert secret_problems("m", VLLM, {}, True, endpoint, "valid", False) == []
    assert secret_problems("m", VLLM, {}, False, "http://mirror.lan", "valid", False) == []


def test_a_node_is_named_with_each_of_its_bad_settings():
    kinds = {"model_serving_fabric_interface": "netdev", "model_serving_devices[]": "device",
             "model_serving_gpus": "gpus", "model_serving_master_port": "unprivileged_port",
             "fabric_address": "ipv4_host"}
    minimums = {"model_serving_watchdog_failures": 1, "model_serving_watchdog_max_restarts": 0}
    good = {"model_serving_fabric_interface": "enp1s0f1np1", "model_serving_devices": ["/dev/infiniband"],
            "model_serving_gpus": 1, "model_serving_master_port": "29501", "model_serving_watchdog_failures": 3,
            "model_serving_watchdog_max_restarts": 0}
    # a GPU count is checked as the text docker gets; fabric_address, not defined, is not checked
    assert node_problems("spark-ba63", good, kinds, minimums) == []
    bad = dict(good, model_serving_fabric_interface="eth0;reboot", model_serving_devices=["/dev/ok", "$(x)"],
               model_serving_watchdog_failures=0)
    [message] = node_problems("spark-ba63", bad, kinds, minimums)
    assert message.startswith("spark-ba63: model_serving settings rejected: model_serving_fabric_interface "
                              "'eth0;reboot' is not allowed")
    assert "model_serving_devices[1] '$(x)' is not allowed" in message
    assert message.endswith("; model_serving_watchdog_failures must be at least 1 and "
                            "model_serving_watchdog_max_restarts at least 0.")
    [message] = node_problems("spark-ba63", dict(good, fabric_address="10.10.10.300"), kinds, minimums)
    assert "fabric_address '10.10.10.300' is not allowed" in message
