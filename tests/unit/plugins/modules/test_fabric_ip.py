"""fabric_ip refuses bad input before it runs any command (the lab tests cover real changes)."""

from __future__ import annotations

import pytest

from ansible_collections.dgx_spark.cluster.plugins.modules import fabric_ip


@pytest.mark.parametrize("args, message", [
    ({"interface": "enp1s0f1np1", "address": "10.10.10.1"}, "prefix length"),
    ({"interface": "enp1s0f1np1; reboot", "address": "10.10.10.1/24"}, "not a network device name"),
    ({"interface": "enp1s0f1np1", "address": "10.10.10.1/24", "mtu": 65000}, "outside 68..9216"),
    ({"address": "10.10.10.1/24", "twin": 2}, "twin must be 0"),
    ({"interface": "enp1s0f1np1"}, "address"),
    ({"interface": "enp1s0f0np0", "address": "10.10.14.2/24", "routes": [{"to": "10.10.12.2/32", "via": "10.10.12.1"}]},
     "not on 10.10.14.2/24"),
    ({"interface": "enp1s0f0np0", "address": "10.10.14.2/24", "routes": [{"to": "10.10.12.2/20", "via": "10.10.14.1"}]},
     "route"),
])
def test_bad_input_fails_before_any_command(module_runner, fake_tool, args, message):
    ip = fake_tool("ip", output="[]")
    result, failed = module_runner(fabric_ip.main, args)
    assert failed and message in result["msg"]
    assert not (ip.parent / "ip.argv").exists()


def test_unknown_interface_names_the_ones_present(module_runner, fake_tool, tmp_path):
    fake_tool("ip", rc=1, stderr='Device "enp9s0" does not exist.')
    (tmp_path / "net" / "eth0").mkdir(parents=True)
    result, failed = module_runner(fabric_ip.main, {"interface": "enp9s0", "address": "10.10.10.1/24",
                                                    "sysfs_net_path": str(tmp_path / "net")})
    assert failed and "enp9s0 does not exist" in result["msg"] and "eth0" in result["msg"]
    assert result["rc"] == 1 and "does not exist" in result["stderr"]
