"""`vnet run`'s default firewall against Linux behind the same rules written for nftables.

A guest connecting to a closed port on its own host must fail at once with
ECONNREFUSED, as a Linux program behind the equivalent nftables rules does:
the RST that answers its SYN crosses loopback, where Linux's conntrack keeps
the packet's entry from OUTPUT (the RST is ESTABLISHED in the reply
direction, though it ends the flow), so `ct state invalid drop` never sees
it. vnet used to classify the RST again at INPUT, find the flow gone and
drop it as INVALID, and connect() timed out after 127 s.

Both sides run examples/tcp_echo_client.c: compiled with gcc inside a network
namespace this test creates (only `lo` and a veth pair `eth0`/`peer0` kept inside it, no route out;
`tests/kernel/conftest.py`'s helpers) with `SANDBOX_NFT` loaded, and
compiled to wasm under `python -m vnet run --virtual-time` with no
`--firewall` (so the defaults, `firewall.grants.sandbox_ruleset`). The
line the client prints for each address must be the same. Needs root,
iproute2, nftables and gcc; fails, rather than skips, without them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.firewall.test_vs_nftables import require_kernel_tools
from tests.kernel.conftest import (
    check_isolated,
    clean_env,
    create_namespace,
    delete_namespace,
    unique_name,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ADDR4, ADDR6 = "10.0.0.1/24", "fd00::1/64"
CLOSED_PORT = "5555"
TARGETS = ("10.0.0.1", "fd00::1", "127.0.0.1", "::1")

# firewall.grants.sandbox_ruleset() for a host whose one Ethernet interface is
# eth0 with ADDR4 and ADDR6 (@lan = its networks), in nftables' syntax.
SANDBOX_NFT = """
table inet sandbox {
    chain input {
        type filter hook input priority 0; policy drop;
        ct state established,related accept
        ct state invalid drop
        iifname lo accept
        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert,
                      mld-listener-query } accept
        icmp type echo-request accept
        icmpv6 type echo-request accept
        iifname eth0 ip saddr 10.0.0.0/24 accept
        iifname eth0 ip6 saddr fd00::/64 accept
    }
    chain output {
        type filter hook output priority 0; policy drop;
        ct state established,related accept
        oifname lo accept
        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit,
                      mld2-listener-report } accept
        udp dport 53 reject with icmpx type admin-prohibited
        tcp dport 53 reject with icmpx type admin-prohibited
        oifname eth0 ip daddr 10.0.0.0/24 accept
        oifname eth0 ip6 daddr fd00::/64 accept
        oifname eth0 ip daddr { 224.0.0.0/24, 255.255.255.255 } accept
        oifname eth0 ip6 daddr ff02::/16 accept
        oifname eth0 meta l4proto igmp accept
        reject with icmpx type admin-prohibited
    }
}
"""


@pytest.fixture
def sandbox_namespace() -> Iterator[str]:
    require_kernel_tools()
    ns = unique_name("vk", "sbx")
    create_namespace(ns)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name",
                        "peer0"], check=True)  # both ends stay in the namespace
        subprocess.run(["ip", "-n", ns, "link", "set", "peer0", "up"], check=True)
        subprocess.run(["ip", "-n", ns, "addr", "add", ADDR4, "dev", "eth0"], check=True)
        subprocess.run(["ip", "-n", ns, "addr", "add", ADDR6, "dev", "eth0", "nodad"],
                       check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "up"], check=True)
        check_isolated(ns, ["eth0", "peer0"])
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=SANDBOX_NFT,
                       text=True, check=True)
        yield ns
    finally:
        delete_namespace(ns)


@pytest.fixture(scope="module")
def native_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("the comparison builds examples/tcp_echo_client.c with gcc")
    out = tmp_path_factory.mktemp("native") / "tcp_echo_client"
    subprocess.run(["gcc", "-O2", "-Wall", str(EXAMPLES / "tcp_echo_client.c"), "-o", str(out)],
                   check=True)
    return out


def _linux(ns: str, client: Path, target: str) -> tuple[int, str]:
    proc = subprocess.run(["ip", "netns", "exec", ns, str(client), target, CLOSED_PORT, "x"],
                          capture_output=True, text=True, timeout=60, env=clean_env())
    return proc.returncode, proc.stderr


def _vnet(module: Path, target: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "vnet", "run", "--virtual-time", "--addr", ADDR4, "--addr",
         ADDR6, str(module), target, CLOSED_PORT, "x"],
        capture_output=True, text=True, timeout=120, env=clean_env())
    return proc.returncode, proc.stderr


def test_connect_to_a_closed_local_port_is_refused_under_the_default_firewall_as_on_linux(
        sandbox_namespace: str, native_client: Path,
        example_wasm: Callable[[str], Path]) -> None:
    module = example_wasm("tcp_echo_client")
    for target in TARGETS:
        linux = _linux(sandbox_namespace, native_client, target)
        assert linux == (2, f"tcp_echo_client: {target} port {CLOSED_PORT}: "
                            "Connection refused\n"), linux
        ours = _vnet(module, target)
        assert ours == linux, f"{target}: vnet {ours} but Linux {linux}"
