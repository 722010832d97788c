"""Bad input to the `vnet` command gives one line and status 2, never a traceback;
vnet never takes over (or later deletes) a network device it did not create."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

VNET = [sys.executable, "-m", "vnet"]
RULES = """table inet filter {
  chain input { type filter hook input priority 0; policy drop; tcp dport 22 accept; }
}
"""


def vnet(*args: str, stdin: str = "",
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VNET, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


def test_unwritable_pcap_dir(tmp_path: Path) -> None:
    topo = tmp_path / "t.toml"
    topo.write_text("[hosts.a]\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    refused = vnet("sim", str(topo), "--pcap-dir", str(blocker / "sub"))
    assert refused.returncode == 2
    assert "--pcap-dir" in one_line(refused) and "cannot write there" in refused.stderr


def test_too_long_tun_device_name(build_guest: Callable[..., Path]) -> None:
    wasm = str(build_guest("basics"))
    for name in ("a" * 16, "bad/name", "has space"):
        refused = vnet("run", "--tun", "--tun-device", name, wasm)
        assert refused.returncode == 2
        assert "--tun-device" in one_line(refused) and "15 characters" in refused.stderr


def test_firewall_check_reads_stdin(tmp_path: Path) -> None:
    ok = vnet("firewall", "check", "-", stdin=RULES)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("<stdin>: ok (")
    broken = vnet("firewall", "check", "-", stdin="table inet filter { chain x { bogus; } }\n")
    assert broken.returncode == 2 and "<stdin>:1:" in broken.stderr
    path = tmp_path / "r.nft"
    path.write_text(RULES)
    both = vnet("firewall", "check", str(path), "-", stdin=RULES)
    assert both.returncode == 0 and both.stdout.count(": ok (") == 2


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None
                    or not os.path.exists("/dev/net/tun"),
                    reason="needs root, iproute2 and /dev/net/tun")
def test_a_device_vnet_did_not_create_is_refused_and_kept(
        build_guest: Callable[..., Path]) -> None:
    ns = f"vnetcli{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "tuntap", "add", "dev", "mine0", "mode", "tun"],
                       check=True)
        wasm = str(build_guest("basics"))
        refused = vnet("run", "--tun", "--tun-netns", ns, "--tun-device", "mine0", wasm)
        assert refused.returncode == 2
        assert "already exists" in one_line(refused)
        kept = subprocess.run(["ip", "-n", ns, "link", "show", "dev", "mine0"],
                              capture_output=True)
        assert kept.returncode == 0  # still there: vnet did not delete it
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None
                    or not os.path.exists("/dev/net/tun"),
                    reason="needs root, iproute2 and /dev/net/tun")
def test_the_tun_bridge_refuses_and_keeps_a_device_it_did_not_create() -> None:
    from vnet.link.tun_bridge import TunBridge, TunBridgeError
    from vnet.network import Network
    from vnet.testing.netns import Namespace

    namespace = Namespace(f"vnetbr{os.getpid()}")
    namespace.create()
    net = Network(virtual_time=False)
    try:
        subprocess.run(["ip", "-n", namespace.name, "tuntap", "add", "dev", "theirs0",
                        "mode", "tun"], check=True)
        router = net.router("r")
        bridge = TunBridge(net, router, device="theirs0", netns=namespace.name,
                           kernel_addresses=["10.209.0.1/30"], router_addresses=["10.209.0.2/30"])
        with pytest.raises(TunBridgeError, match="already exists"):
            bridge.open()
        bridge.close()  # closing a bridge that never opened deletes nothing either
        kept = subprocess.run(["ip", "-n", namespace.name, "link", "show", "dev", "theirs0"],
                              capture_output=True)
        assert kept.returncode == 0
    finally:
        net.close()
        namespace.delete()
