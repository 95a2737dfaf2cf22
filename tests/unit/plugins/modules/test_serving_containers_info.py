"""serving_containers_info (_serving_state.without_secrets): docker's inspect records, without the values of secret-named environment variables."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils._serving_state import without_secrets


def test_the_api_key_in_a_container_s_environment_is_hidden_and_the_rest_kept():
    record = {"Name": "/r0", "Config": {"Env": ["VLLM_API_KEY=sk-lab-1234567890", "NCCL_SOCKET_IFNAME=enp1s0f1np1",
                                                "TOKENIZERS_PARALLELISM=false", "HF_TOKEN=hf_x", "EMPTY"]}}
    assert without_secrets(record)["Config"]["Env"] == [
        "VLLM_API_KEY=********", "NCCL_SOCKET_IFNAME=enp1s0f1np1", "TOKENIZERS_PARALLELISM=false", "HF_TOKEN=********",
        "EMPTY"]
    assert without_secrets({"Name": "/x"}) == {"Name": "/x"}  # no Config: nothing to hide
