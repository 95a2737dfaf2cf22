"""Catalog validation and the fit plan, on the memory a GB10 reports (derived/proc_meminfo_gb10.txt)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.filter.serving import FilterModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _nvidia_smi
from ansible_collections.dgx_spark.cluster.plugins.module_utils._catalog import (
    CatalogError, catalog_entry, validate_entry)
from ansible_collections.dgx_spark.cluster.plugins.module_utils._fit_plan import placements, plan, weights_gib

from ansible_collections.dgx_spark.cluster.tests.unit.recorded import fixture_body

FILTERS = FilterModule().filters()
MEMINFO = _nvidia_smi.parse_meminfo(fixture_body("derived/proc_meminfo_gb10.txt"))


def spark(host):
    return {"host": host, "total_mib": MEMINFO["MemTotal"] // 1024, "available_mib": MEMINFO["MemAvailable"] // 1024}


SPARKS = [spark("spark-2959"), spark("spark-ba63")]
BASE = {"image": "nvcr.io/nvidia/vllm:25.11-py3", "dtype": "bfloat16"}


def entry(**fields):
    return validate_entry("m", dict(BASE, hf_repo="org/model", **fields))


def test_meminfo_is_what_a_gb10_reports():
    assert round(SPARKS[0]["total_mib"] / 1024.0, 1) == 119.6


@pytest.mark.parametrize("params_b, precision, mode, tp", [
    (8, "bfloat16", "solo", 1),      # 14.9 GiB of weights
    (120, "mxfp4", "solo", 1),       # gpt-oss-120b class: 59.2 GiB
    (70, "bfloat16", "tp", 2),       # 130.4 GiB: only over both nodes
    (70, "fp8", "solo", 1),          # 65.2 GiB
])
def test_auto_plan(params_b, precision, mode, tp):
    fields = {"quantization": precision} if precision == "mxfp4" else {"dtype": precision}
    result = plan(entry(params_b=params_b, **fields), SPARKS)
    assert result["fits"] is True and (result["mode"], result["tp"]) == (mode, tp)
    assert result["hosts"] == [n["host"] for n in SPARKS][:tp]


def test_the_estimate_is_weights_kv_and_overhead_per_node():
    result = plan(entry(params_b=70, dtype="bfloat16"), SPARKS)
    assert result["weights_gib"] == pytest.approx(70e9 * 2 / 2 ** 30, abs=0.1)
    assert result["per_node"][0]["need_gib"] == pytest.approx(130.4 / 2 + 8 / 2 + 6, abs=0.1)
    assert result["per_node"][0]["budget_gib"] == pytest.approx(119.6 * 0.85, abs=0.1)


def test_refused_with_the_numbers_when_it_fits_nowhere():
    result = plan(entry(params_b=235, dtype="bfloat16"), SPARKS)
    assert result["fits"] is False and result["mode"] is None
    assert "tp=1 needs 451.7 GiB per node" in result["reason"] and "tp=2 needs" in result["reason"]
    assert "spark-ba63 101.7 GiB" in result["reason"]


def test_explicit_tp1_pp1_that_does_not_fit_is_refused_and_tp1_alone_takes_pipeline_stages():
    result = plan(entry(params_b=70, dtype="bfloat16", tp=1, pp=1), SPARKS)
    assert result["fits"] is False and "tp=2" not in result["reason"] and "(asked: tp=1, pp=1)" in result["reason"]
    result = plan(entry(params_b=70, dtype="bfloat16", tp=1), SPARKS)
    assert (result["mode"], result["tp"], result["pp"], result["ranks"]) == ("pp", 1, 2, 2)


def test_a_model_larger_than_one_node_on_one_node_is_refused_naming_the_node_count():
    result = plan(entry(params_b=70, dtype="bfloat16"), SPARKS[:1])
    assert result["fits"] is False and "on the play's 1 node(s)" in result["reason"]


def eight(count):
    return [spark("spark-%d" % i) for i in range(count)]


@pytest.mark.parametrize("count, order", [
    (1, [(1, 1)]), (2, [(1, 1), (2, 1)]), (3, [(1, 1), (2, 1), (1, 3)]), (4, [(1, 1), (2, 1), (1, 3), (4, 1)]),
    (8, [(1, 1), (2, 1), (1, 3), (4, 1), (1, 5), (2, 3), (1, 7), (8, 1)]), (12, None)])
def test_auto_placements_fewest_nodes_first_tp_the_largest_power_of_two(count, order):
    if order is None:  # never more than eight ranks
        assert placements("auto", "auto", count) == placements("auto", "auto", 8)
    else:
        assert placements("auto", "auto", count) == order


def test_a_fixed_tp_or_pp_is_kept():
    assert placements(2, "auto", 8) == [(2, 1), (2, 2), (2, 3), (2, 4)]
    assert placements("auto", 2, 8) == [(1, 2), (2, 2), (4, 2)]
    assert placements(2, 2, 3) == [] and placements(2, 2, 4) == [(2, 2)]


@pytest.mark.parametrize("params_b, precision, count, placement", [
    (235, "fp8", 3, ("pp", 1, 3)),        # 219 GiB: three stages of ~82 GiB
    (235, "fp8", 4, ("pp", 1, 3)),        # the smallest placement that fits, not every node
    (235, "bfloat16", 4, None),           # 438 GiB: 4 x 101.7 GiB is not enough
    (235, "bfloat16", 6, ("pp", 1, 5)),   # 446 GiB with the KV cache: five stages of 95 GiB
    (405, "fp8", 8, ("pp", 1, 5)),        # Llama 3.1 405B FP8: 377 GiB in five stages
])
def test_auto_plans_over_more_sparks(params_b, precision, count, placement):
    result = plan(entry(params_b=params_b, dtype=precision), eight(count))
    if placement is None:
        assert result["fits"] is False and "tp=4 needs" in result["reason"]
        return
    assert (result["mode"], result["tp"], result["pp"]) == placement
    assert result["hosts"] == ["spark-%d" % i for i in range(placement[1] * placement[2])]
    assert all(node["fits"] for node in result["per_node"])


def test_a_fixed_tp_takes_pipeline_stages_until_it_fits():
    result = plan(entry(params_b=405, dtype="fp8", tp=2), eight(8))  # 2 x 2 needs 102.3 GiB: one too many
    assert (result["mode"], result["tp"], result["pp"], len(result["hosts"])) == ("tp_pp", 2, 3, 6)


@pytest.mark.parametrize("tp, pp, hosts", [
    (2, 2, [0, 1, 3, 2]),  # each rank's peer in the next stage is its ring neighbour: 0-3 and 1-2 share a link
    (4, 1, [0, 1, 2, 3]),
    (1, 4, [0, 1, 2, 3]),
    (2, 1, [0, 1]),
])
def test_in_a_ring_of_four_every_pipeline_peer_is_a_neighbour(tp, pp, hosts):
    ring = plan(entry(params_b=8, tp=tp, pp=pp), eight(4), topology="ring")
    assert ring["hosts"] == ["spark-%d" % i for i in hosts]
    assert [node["host"] for node in ring["per_node"]] == ring["hosts"]
    # a switch (or the pair) keeps the play's order
    assert plan(entry(params_b=8, tp=tp, pp=pp), eight(4), topology="switch")["hosts"] == [
        "spark-%d" % i for i in range(tp * pp)]


def test_tp_and_pp_beyond_eight_ranks_are_refused():
    with pytest.raises(CatalogError, match="tp 4 x pp 4 is not allowed: at most 8 ranks"):
        entry(params_b=8, tp=4, pp=4)
    result = plan(entry(params_b=8, tp=4, pp=2), eight(4))
    assert result["fits"] is False and "no placement of tp=4 x pp=2 on 4 node(s)" in result["reason"]


def test_explicit_tp2_for_a_small_model():
    result = FILTERS["serving_plan"](entry(params_b=8, tp=2), SPARKS)
    assert (result["mode"], result["tp"], len(result["per_node"])) == ("tp", 2, 2)


def test_quantization_changes_the_weights():
    assert weights_gib(entry(params_b=10, quantization="awq")) == pytest.approx(10e9 * 0.53 / 2 ** 30)


SHIPPED = {"llama-8b": dict(BASE, hf_repo="meta-llama/Llama-3.1-8B-Instruct", params_b=8)}
TRT_BASE = {"hf_repo": "nvidia/Qwen3-235B-A22B-FP4", "engine": "trtllm", "image": "nvcr.io/nvidia/tensorrt-llm/release:1.2.0rc6",
            "params_b": 235, "quantization": "nvfp4", "tp": 2}


def test_inventory_overrides_merge_over_the_shipped_entry():
    result = FILTERS["serving_entry"](SHIPPED, "llama-8b", {"llama-8b": {"port": 8100}})
    assert result["port"] == 8100 and result["hf_repo"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert (result["engine"], result["tp"], result["served_name"]) == ("vllm", "auto", "llama-8b")


@pytest.mark.parametrize("key, overrides, message", [
    ("llama-8b; rm -rf /", {}, "model llama-8b; rm -rf /: model"),
    ("nope", {}, "not in the catalog (known: llama-8b, trt)"),
    ("llama-8b", {"llama-8b": {"hf_repo": "meta-llama/x y"}}, "hf_repo 'meta-llama/x y' is not allowed"),
    ("llama-8b", {"llama-8b": {"local_path": "/models/x"}}, "exactly one of hf_repo and local_path"),
    ("llama-8b", {"llama-8b": {"image": "Evil Image"}}, "image 'Evil Image' is not allowed"),
    ("llama-8b", {"llama-8b": {"image": None}}, "model llama-8b: image is required: it must be"),
    ("llama-8b", {"llama-8b": {"params_b": None}}, "model llama-8b: params_b is required"),
    ("llama-8b", {"llama-8b": {"port": 80}}, "port 80 is not allowed"),
    ("llama-8b", {"llama-8b": {"tp": 16}}, "tp 16 is not allowed"),
    ("llama-8b", {"llama-8b": {"dtype": "int3"}}, "dtype/quantization 'int3'"),
    ("llama-8b", {"llama-8b": {"extra_args": ["--port", "9"]}}, "--port is set by the role"),
    ("llama-8b", {"llama-8b": {"extra_args": ["--trust-remote-code;reboot"]}}, "extra_args[0]"),
    ("llama-8b", {"llama-8b": {"extra_args": ["--max-num-seqs", "$(id)"]}}, "extra_args[1] '$(id)'"),
    ("llama-8b", {"llama-8b": {"extra_args": ["stray"]}}, "a value must follow an --option"),
    ("llama-8b", {"llama-8b": {"env": {"HF_TOKEN": "hf_x"}}}, "secrets (tokens, keys) never go in the catalog"),
    ("llama-8b", {"llama-8b": {"env": {"NCCL_DEBUG": "INFO WARN"}}}, "env NCCL_DEBUG"),
    ("llama-8b", {"llama-8b": {"env": {"AWS_SECRET_ACCESS_KEY": "x"}}}, "secrets (tokens, keys) never go"),
    ("llama-8b", {"llama-8b": {"env": {"VLLM_HOST_IP": "10.0.0.9"}}}, "env VLLM_HOST_IP is not allowed: the role sets"),
    ("llama-8b", {"llama-8b": {"env": {"NCCL_SOCKET_IFNAME": "eth0"}}}, "env NCCL_SOCKET_IFNAME is not allowed"),
    ("llama-8b", {"llama-8b": {"env": {"HF_HUB_OFFLINE": "0"}}}, "env HF_HUB_OFFLINE is not allowed"),
    ("llama-8b", {"llama-8b": {"extra_args": ["--tensor_parallel_size=4"]}},
     "(a parser reads --tensor_parallel_size as --tensor-parallel-size)"),
    ("llama-8b", {"llama-8b": {"extra_args": ["--por=9000"]}}, "(a parser reads --por as --port)"),
    ("llama-8b", {"llama-8b": {"extra_args": ["--api_key", "x"]}}, "is set by the role"),
    ("trt", {"trt": {"extra_args": ["--tp", "4"]}}, "is set by the role"),
    ("llama-8b", {"llama-8b": {"shell": "x"}}, "unknown field(s) shell"),
    ("llama-8b", {"llama-8b": {"params_b": -1}}, "params_b -1"),
    ("llama-8b", {"llama-8b": {"trtllm_options": {"x": 1}}}, "trtllm_options is for engine trtllm, not vllm"),
    ("trt", {}, None),
    ("trt", {"trt": {"served_name": "short"}}, "served_name 'short' is not allowed for engine trtllm"),
    ("trt", {"trt": {"extra_args": ["--tp_size", "4"]}}, "--tp_size is set by the role"),
    ("trt", {"trt": {"extra_args": ["--extra_llm_api_options=/etc/passwd"]}}, "--extra_llm_api_options is set by"),
    ("trt", {"trt": {"trtllm_backend": "onnx"}}, "trtllm_backend 'onnx' is not allowed"),
    ("trt", {"trt": {"trtllm_options": {"kv_cache_config": {"free_gpu_memory_fraction": "0.9; reboot"}}}},
     "trtllm_options.kv_cache_config.free_gpu_memory_fraction '0.9; reboot' is not allowed"),
    ("trt", {"trt": {"trtllm_options": {"Bad-Key": 1}}}, "trtllm_options key 'Bad-Key' is not allowed"),
    ("trt", {"trt": {"trtllm_options": {"a": {"b": {"c": {"d": {"e": 1}}}}}}}, "nested too deep"),
    ("trt", {"trt": {"trtllm_build": {"max_batch_size": 0}}}, "trtllm_build.max_batch_size 0 is not allowed"),
    ("trt", {"trt": {"trtllm_build": {"gemm_plugin": "x;y"}}}, "trtllm_build.gemm_plugin 'x;y' is not allowed"),
    ("trt", {"trt": {"trtllm_build": {"workers": 3}}}, "trtllm_build must be a mapping of max_batch_size"),
])
def test_hostile_or_wrong_entries_are_refused_naming_field_and_rule(key, overrides, message):
    if message is None:  # the trtllm baseline itself is valid
        assert FILTERS["serving_entry"](dict(SHIPPED, trt=TRT_BASE), key, overrides)["engine"] == "trtllm"
        return
    with pytest.raises(AnsibleFilterError) as excinfo:
        FILTERS["serving_entry"](dict(SHIPPED, trt=TRT_BASE), key, overrides)
    assert message in str(excinfo.value)


@pytest.mark.parametrize("path", ["/", "/.", "//", "/home/nvidia", "/home/nvidia/", "/root", "/etc/x", "/usr/share/m",
                                  "/home/nvidia/.ssh", "/home/nvidia/models/../.ssh", "/var/lib", "/tmp", "/data//m"])
def test_a_model_path_must_be_a_directory_below_the_system_and_home_directories(path):
    entry_fields = {"llama-8b": {"hf_repo": None, "local_path": path}}
    with pytest.raises(AnsibleFilterError) as excinfo:
        FILTERS["serving_entry"](SHIPPED, "llama-8b", entry_fields)
    assert "local_path %r is not allowed: must be a model directory" % path in str(excinfo.value)


@pytest.mark.parametrize("path", ["/home/nvidia/models/llama", "/var/lib/models/x", "/data/m/"])
def test_a_model_directory_below_those_roots_passes(path):
    entry_fields = {"llama-8b": {"hf_repo": None, "local_path": path}}
    assert FILTERS["serving_entry"](SHIPPED, "llama-8b", entry_fields)["local_path"] == path


def test_harmless_env_names_that_contain_a_secret_word_pass():
    env = {"TOKENIZERS_PARALLELISM": "false", "KEYRING_BACKEND": "none", "NCCL_DEBUG": "INFO"}
    assert entry(params_b=8, env=env)["env"] == env


def test_valid_extra_args_pass():
    args = ["--max-num-seqs", "8", "--enable-prefix-caching", "--kv-cache-dtype=fp8"]
    assert entry(params_b=8, extra_args=args)["extra_args"] == args


def test_catalog_error_is_a_value_error():
    with pytest.raises(CatalogError):
        catalog_entry({}, "x")


RUN = {"tp": 2, "addresses": ["10.10.10.1", "10.10.10.2"], "config": "abc123", "fabric_interface": "enp1s0f1np1",
       "rdma_devices": ["rocep1s0f1", "roceP2p1s0f1"], "gpus": "all", "ipc_host": True, "shm_size": "",
       "devices": ["/dev/infiniband"], "ulimits": ["memlock=-1", "stack=67108864"], "master_port": 29501, "distributed_timeout": 300,
       "model_source": "/var/lib/dgx-spark/hf-cache"}


def test_worker_rank_argv_follows_the_two_spark_recipe():
    argv = FILTERS["serving_rank_argv"](entry(params_b=70, tp=2, env={"NCCL_DEBUG": "WARN"}), "m", 1, RUN)
    pairs = dict(zip(argv, argv[1:]))
    assert argv[:5] == ["docker", "run", "-d", "--name", "dgx-spark-serve-m-r1"]
    envs = [argv[i + 1] for i, a in enumerate(argv) if a == "-e"]
    for expected in ("VLLM_HOST_IP=10.10.10.2", "NCCL_SOCKET_IFNAME=enp1s0f1np1", "GLOO_SOCKET_IFNAME=enp1s0f1np1",
                     "TP_SOCKET_IFNAME=enp1s0f1np1", "UCX_NET_DEVICES=enp1s0f1np1",
                     "OMPI_MCA_btl_tcp_if_include=enp1s0f1np1", "NCCL_IB_HCA=rocep1s0f1,roceP2p1s0f1",
                     "NCCL_DEBUG=WARN", "HF_HUB_OFFLINE=1"):
        assert expected in envs, expected
    assert pairs["--ipc"] == "host" and pairs["--gpus"] == "all" and pairs["--device"] == "/dev/infiniband"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--ulimit"] == ["memlock=-1", "stack=67108864"]
    assert pairs["--nnodes"] == "2" and pairs["--node-rank"] == "1" and pairs["--master-addr"] == "10.10.10.1"
    assert pairs["--distributed-timeout-seconds"] == "300" and argv[-1] == "--headless"
    assert "--port" not in argv and "dgx-spark.config=abc123" in argv
    labels = [argv[i + 1] for i, a in enumerate(argv) if a == "--label"]
    for expected in ("dgx-spark.rank=1", "dgx-spark.ranks=2", "dgx-spark.port=8000", "dgx-spark.served-name=m"):
        assert expected in labels, expected


def test_head_rank_serves_the_api_and_a_solo_rank_has_no_multinode_flags():
    head = FILTERS["serving_rank_argv"](entry(params_b=8, tp=2), "m", 0, RUN)
    assert head[head.index("--port") + 1] == "8000" and "--headless" not in head
    solo = FILTERS["serving_rank_argv"](entry(params_b=8, tp=1, local_path=None), "m", 0,
                                        dict(RUN, tp=1, ipc_host=False, shm_size="1g", gpus="", devices=[], ulimits=[]))
    assert "--nnodes" not in solo and "--gpus" not in solo and "--ulimit" not in solo and solo[solo.index("--shm-size") + 1] == "1g"
    assert solo[solo.index("--tensor-parallel-size") + 1] == "1"


FOUR = ["10.10.10.1", "10.10.10.2", "10.10.10.3", "10.10.10.4"]


def test_pipeline_stages_make_the_ranks_nodes_of_one_vllm_cluster():
    run = dict(RUN, tp=2, pp=2, addresses=FOUR)
    argv = FILTERS["serving_rank_argv"](entry(params_b=405, dtype="fp8", tp=2, pp=2), "m", 3, run)
    pairs = dict(zip(argv, argv[1:]))
    assert (pairs["--tensor-parallel-size"], pairs["--pipeline-parallel-size"]) == ("2", "2")
    assert (pairs["--nnodes"], pairs["--node-rank"], pairs["--master-addr"]) == ("4", "3", "10.10.10.1")
    assert "VLLM_HOST_IP=10.10.10.4" in argv and "dgx-spark.ranks=4" in argv and argv[-1] == "--headless"
    # one stage per node: pp alone over two nodes
    two = FILTERS["serving_rank_argv"](entry(params_b=70, tp=1, pp=2), "m", 0, dict(RUN, tp=1, pp=2))
    pairs = dict(zip(two, two[1:]))
    assert (pairs["--tensor-parallel-size"], pairs["--pipeline-parallel-size"], pairs["--nnodes"]) == ("1", "2", "2")
    ray = dict(RUN, tp=1, pp=2, backend="ray", ray_port=6379)  # the second stage joins the head's Ray cluster
    assert FILTERS["serving_peers"](entry(params_b=70, tp=1, pp=2), 1, ray) == ["10.10.10.1:6379"]
    # without stages the argv is the one of before pipeline parallel (a relaunch only when the placement changes)
    assert "--pipeline-parallel-size" not in FILTERS["serving_rank_argv"](entry(params_b=70, tp=2), "m", 0,
                                                                          dict(RUN, pp=1))


def test_ray_backend_follows_run_cluster_head_first_then_workers_joining_it():
    ray = dict(RUN, backend="ray", ray_port=6379)
    head = FILTERS["serving_rank_argv"](entry(params_b=70, tp=2), "m", 0, ray)
    image = head.index("nvcr.io/nvidia/vllm:25.11-py3")
    assert head[image + 1:image + 3] == ["sh", "-c"] and head[image + 3].startswith("ray start --head")
    assert head[image + 4:image + 7] == ["sh", "10.10.10.1", "6379"]
    serve = head[image + 7:]
    pairs = dict(zip(serve, serve[1:]))
    assert serve[0] == "org/model" and pairs["--distributed-executor-backend"] == "ray"
    assert pairs["--tensor-parallel-size"] == "2" and pairs["--port"] == "8000" and "--nnodes" not in serve
    worker = FILTERS["serving_rank_argv"](entry(params_b=70, tp=2), "m", 1, ray)
    assert worker[worker.index("nvcr.io/nvidia/vllm:25.11-py3"):] == [
        "nvcr.io/nvidia/vllm:25.11-py3", "ray", "start", "--block", "--address", "10.10.10.1:6379",
        "--node-ip-address", "10.10.10.2", "--disable-usage-stats"]
    assert "VLLM_HOST_IP=10.10.10.2" in worker and "dgx-spark.rank=1" in worker


def test_download_argv_carries_the_token_as_a_mounted_file_only():
    argv = FILTERS["hf_download_argv"](entry(params_b=8), {"cache": "/var/lib/dgx-spark/hf-cache",
                                                           "endpoint": "http://mirror:8080",
                                                           "token_file": "/tmp/ansible.x.hf-token"})
    assert argv[:5] == ["docker", "run", "--rm", "--name", "dgx-spark-hf-download"] and argv[-2:] == ["sh", "org/model"]
    assert argv[-5:-3] == ["sh", "-c"] and 'exec hf download "$1"' in argv[-3] and "huggingface-cli download" in argv[-3]
    assert "/tmp/ansible.x.hf-token:/run/secrets/hf_token:ro" in argv and "HF_TOKEN_PATH=/run/secrets/hf_token" in argv
    assert "HF_ENDPOINT=http://mirror:8080" in argv and not [a for a in argv if a.startswith("HF_TOKEN=")]
    anonymous = FILTERS["hf_download_argv"](entry(params_b=8), {"cache": "/c", "endpoint": "", "token_file": ""})
    assert not [a for a in anonymous if "HF_TOKEN" in a or "HF_ENDPOINT" in a]


def test_a_download_the_hub_refused_is_told_from_other_failures():
    denied = FILTERS["hf_download_denied"]
    assert denied("huggingface_hub.errors.GatedRepoError: 401 Client Error. Cannot access gated repo")
    assert denied("403 Forbidden: Unauthorized") and denied("Invalid credentials in Authorization header")
    assert not denied("OSError: [Errno 28] No space left on device") and not denied("") and not denied(None)


def test_config_hash_changes_with_the_configuration():
    one = entry(params_b=8)
    plan_result = {"tp": 1, "hosts": ["spark-2959"]}
    first = FILTERS["serving_config_hash"](one, plan_result, RUN)
    assert first == FILTERS["serving_config_hash"](dict(one), plan_result, dict(RUN, config="label")) and len(first) == 16
    assert first != FILTERS["serving_config_hash"](dict(one, port=8001), plan_result, RUN)
    assert first != FILTERS["serving_config_hash"](one, plan_result, dict(RUN, distributed_timeout=40))
    assert first != FILTERS["serving_config_hash"](one, plan_result, dict(RUN, addresses=["10.10.10.9"]))


def test_config_hash_of_a_placement_without_stages_is_the_one_before_pipeline_parallel():
    import hashlib
    import json
    one = entry(params_b=8)  # pp auto
    plan_result = {"tp": 1, "pp": 1, "hosts": ["spark-2959"]}
    before = json.dumps({"entry": dict(one, pp=1), "tp": 1, "hosts": ["spark-2959"],
                         "settings": dict((k, v) for k, v in RUN.items() if k != "config")}, sort_keys=True, default=str)
    assert FILTERS["serving_config_hash"](one, plan_result, dict(RUN, pp=1)) == \
        hashlib.sha256(before.encode()).hexdigest()[:16]
    staged = FILTERS["serving_config_hash"](one, dict(plan_result, pp=2, hosts=["spark-2959", "spark-ba63"]),
                                            dict(RUN, pp=2))
    assert staged != FILTERS["serving_config_hash"](one, dict(plan_result, tp=2, hosts=["spark-2959", "spark-ba63"]),
                                                    dict(RUN, tp=2, pp=1))


def test_webhook_signature_is_the_hmac_of_the_exact_body():
    import hashlib
    import hmac
    body = '{"event": "launch_complete"}'
    assert FILTERS["hmac_sha256"](body, "k") == hmac.new(b"k", body.encode(), hashlib.sha256).hexdigest()


TRT_RUN = dict(RUN, ssh_port=2233, ssh_dir="/var/lib/dgx-spark/serving/ssh",
               options_file="/var/lib/dgx-spark/serving/trt.extra-llm-api-options.yml")


def trt(**fields):
    return FILTERS["serving_entry"]({"trt": dict(TRT_BASE, **fields)}, "trt")


def test_redact_scrubs_every_known_secret_from_a_message():
    message = "engine died: HF_TOKEN=hf_abcdef and key nvapi-xyz123 in the log; short ab stays"
    scrubbed = FILTERS["redact"](message, ["hf_abcdef", "", "nvapi-xyz123", "ab"])
    assert scrubbed == "engine died: HF_TOKEN=******** and key ******** in the log; short ab stays"


def test_trtllm_entry_defaults_port_8355_and_serves_under_its_argument():
    result = trt()
    assert (result["port"], result["trtllm_backend"], result["served_name"]) == (8355, "pytorch", "nvidia/Qwen3-235B-A22B-FP4")
    local = FILTERS["serving_entry"]({"t": {"local_path": "/models/q", "engine": "trtllm", "image": "i", "params_b": 1}}, "t")
    assert local["served_name"] == "/models/q"
    engine = FILTERS["serving_entry"]({"t": dict(TRT_BASE, trtllm_backend="tensorrt")}, "t", {}, "/srv/engines")
    assert engine["engine_dir"] == engine["served_name"] == "/srv/engines/t"


def test_trtllm_head_rank_is_mpirun_over_both_fabric_addresses_with_ssh_on_the_dedicated_port():
    options = {"kv_cache_config": {"free_gpu_memory_fraction": 0.9}, "print_iter_log": False}
    head = FILTERS["serving_rank_argv"](trt(trtllm_options=options, env={"NCCL_DEBUG": "WARN"}), "trt", 0, TRT_RUN)
    image = head.index("nvcr.io/nvidia/tensorrt-llm/release:1.2.0rc6")
    command = head[image + 1:]
    launch = command.index("trtllm-llmapi-launch")
    mpirun = command[:launch]
    assert mpirun[:5] == ["mpirun", "--allow-run-as-root", "-np", "2", "-H"]
    assert mpirun[5] == "10.10.10.1:1,10.10.10.2:1" and mpirun[6:9] == ["--mca", "plm_rsh_args", "-p 2233"]
    exported = [mpirun[i + 1] for i, a in enumerate(mpirun) if a == "-x"]
    envs = dict(head[i + 1].split("=", 1) for i, a in enumerate(head[:image]) if a == "-e")
    # every variable the container gets also reaches the remote rank through mpirun
    assert sorted(exported) == sorted(envs)
    for name, value in (("NCCL_SOCKET_IFNAME", "enp1s0f1np1"), ("OMPI_MCA_btl_tcp_if_include", "enp1s0f1np1"),
                        ("OMPI_MCA_oob_tcp_if_include", "enp1s0f1np1"), ("NCCL_IB_HCA", "rocep1s0f1,roceP2p1s0f1"),
                        ("HF_HUB_OFFLINE", "1"), ("NCCL_DEBUG", "WARN")):
        assert envs[name] == value, name
    serve = command[launch + 1:]
    pairs = dict(zip(serve, serve[1:]))
    assert serve[:2] == ["trtllm-serve", "nvidia/Qwen3-235B-A22B-FP4"]
    assert (pairs["--backend"], pairs["--tp_size"], pairs["--port"], pairs["--host"]) == ("pytorch", "2", "8355", "0.0.0.0")
    assert pairs["--extra_llm_api_options"] == "/etc/dgx-spark/extra-llm-api-options.yml"
    volumes = [head[i + 1] for i, a in enumerate(head) if a == "-v"]
    assert "/var/lib/dgx-spark/serving/ssh:/root/.ssh:ro" in volumes
    assert "/var/lib/dgx-spark/serving/trt.extra-llm-api-options.yml:/etc/dgx-spark/extra-llm-api-options.yml:ro" in volumes
    assert "/var/lib/dgx-spark/hf-cache:/root/.cache/huggingface/hub:ro" in volumes


def test_trtllm_pipeline_stages_run_one_mpi_rank_per_node():
    head = FILTERS["serving_rank_argv"](trt(tp=2, pp=2), "trt", 0, dict(TRT_RUN, tp=2, pp=2, addresses=FOUR))
    command = head[head.index("nvcr.io/nvidia/tensorrt-llm/release:1.2.0rc6") + 1:]
    assert command[2:6] == ["-np", "4", "-H", "10.10.10.1:1,10.10.10.2:1,10.10.10.3:1,10.10.10.4:1"]
    serve = command[command.index("trtllm-serve"):]
    pairs = dict(zip(serve, serve[1:]))
    assert (pairs["--tp_size"], pairs["--pp_size"]) == ("2", "2") and "dgx-spark.ranks=4" in head


def test_trtllm_worker_rank_runs_only_sshd_on_its_fabric_address():
    worker = FILTERS["serving_rank_argv"](trt(trtllm_options={"print_iter_log": False}), "trt", 1, TRT_RUN)
    image = worker.index("nvcr.io/nvidia/tensorrt-llm/release:1.2.0rc6")
    assert worker[image + 1:image + 3] == ["sh", "-c"] and "exec /usr/sbin/sshd -D" in worker[image + 3]
    assert worker[image + 4:] == ["sh", "2233", "10.10.10.2"]
    assert "dgx-spark.rank=1" in worker and "/var/lib/dgx-spark/serving/ssh:/root/.ssh:ro" in worker
    assert not [a for a in worker if "extra-llm-api-options" in a]  # only rank 0 reads the options


def test_trtllm_solo_runs_trtllm_serve_alone_and_the_engine_path_serves_the_engine():
    solo = FILTERS["serving_rank_argv"](trt(tp=1), "trt", 0, dict(TRT_RUN, tp=1))
    image = solo.index("nvcr.io/nvidia/tensorrt-llm/release:1.2.0rc6")
    assert solo[image + 1] == "trtllm-serve" and "mpirun" not in solo and "/root/.ssh" not in " ".join(solo)
    engine_entry = FILTERS["serving_entry"]({"trt": dict(TRT_BASE, trtllm_backend="tensorrt")}, "trt")
    head = FILTERS["serving_rank_argv"](engine_entry, "trt", 0, TRT_RUN)
    serve = head[head.index("trtllm-serve"):]
    assert serve[1] == "/var/lib/dgx-spark/trt-engines/trt" and serve[serve.index("--backend") + 1] == "tensorrt"
    assert serve[serve.index("--tokenizer") + 1] == "nvidia/Qwen3-235B-A22B-FP4" and "--max_seq_len" not in serve
    assert "/var/lib/dgx-spark/trt-engines/trt:/var/lib/dgx-spark/trt-engines/trt:ro" in head
    worker = FILTERS["serving_rank_argv"](engine_entry, "trt", 1, TRT_RUN)
    assert "/var/lib/dgx-spark/trt-engines/trt:/var/lib/dgx-spark/trt-engines/trt:ro" in worker


def test_trt_build_args_follow_the_entry():
    engine_entry = FILTERS["serving_entry"]({"trt": dict(TRT_BASE, trtllm_backend="tensorrt", max_model_len=4096,
                                                         trtllm_build={"max_batch_size": 4})}, "trt")
    args = FILTERS["trt_build_args"](engine_entry, {"model_dir": "/m", "tp": 2, "pp": 2, "gpus": "all"})
    assert args == {"model_dir": "/m", "engine_dir": "/var/lib/dgx-spark/trt-engines/trt",
                    "image": "nvcr.io/nvidia/tensorrt-llm/release:1.2.0rc6", "tp": 2, "pp": 2, "dtype": "bfloat16",
                    "max_seq_len": 4096, "gpus": "all", "quantization": "nvfp4", "max_batch_size": 4}


# The plan's choice (mode, tp, pp) for every shipped entry on 2, 3, 4 and 8 GB10s (None: does not fit).
SHIPPED_PLANS = {
    "gpt-oss-120b": [("solo", 1, 1)] * 4,
    "llama-3.1-8b-instruct": [("solo", 1, 1)] * 4,
    "llama-3.3-70b-instruct": [("tp", 2, 1)] * 4,
    "qwen3-235b-a22b-fp4-trtllm": [("tp", 2, 1)] * 4,
    "qwen3-235b-a22b-fp8": [None] + [("pp", 1, 3)] * 3,
}


def test_every_shipped_catalog_entry_is_valid_and_planned_on_two_to_eight_gb10s():
    import pathlib

    import yaml
    shipped = yaml.safe_load((pathlib.Path(__file__).parents[4] / "roles/model_serving/files/catalog.yml").read_text())
    assert sorted(shipped) == sorted(SHIPPED_PLANS)
    for key, expected in SHIPPED_PLANS.items():
        for count, choice in zip((2, 3, 4, 8), expected):
            result = plan(catalog_entry(shipped, key), eight(count))
            assert ((result["mode"], result["tp"], result["pp"]) if result["fits"] else None) == choice, (
                key, count, result["reason"])
    qwen = catalog_entry(shipped, "qwen3-235b-a22b-fp4-trtllm")
    assert (plan(qwen, SPARKS)["tp"], qwen["port"], qwen["served_name"]) == (2, 8355, "nvidia/Qwen3-235B-A22B-FP4")
