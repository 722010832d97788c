"""NAT routers in topology files: `[hosts.NAME.nat]` keys, their mistakes, and examples/nat.toml.

The keys map onto `Host.nat(interface, behaviour, pool, nptv6, **fields)`;
every mistake is a `TopologyError` 'FILE:LINE: reason'. examples/nat.toml
(two home networks behind NATs, a STUN and rendezvous server outside) runs
under `vnet sim` with the examples built to wasm: each home's STUN client
names its NAT's behaviour and the two peers punch a hole to each other.
A topology with `nptv6` translates an inside IPv6 source to the outside
prefix on the wire.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import IP

from firewall.nat_router import NatBehaviour
from tests.conftest import EXAMPLES
from vnet.network import AF_INET6, SOCK_DGRAM
from vnet.sim.runner import build, run
from vnet.sim.topology import TopologyError, load
from vnet.testing.pcap import read_pcapng

GOOD = """\
[segments.lan]
[segments.wan]

[hosts.gw]
forwarding = true
[[hosts.gw.nics]]
name = "lan0"
segment = "lan"
addresses = ["10.0.0.1/24", "fd00:1::1/64"]
[[hosts.gw.nics]]
name = "wan0"
segment = "wan"
addresses = ["203.0.113.1/24", "2001:db8:ffff::1/64"]
[hosts.gw.nat]
interface = "wan0"
behaviour = "symmetric"
mapping = "endpoint-independent"
filtering = "address-dependent"
hairpin = false
ports = "preserve"
port_parity = true
pool = ["203.0.113.7", "203.0.113.8"]
pairing = false
udp_timeout = "2h4m"
tcp_transitory_timeout = "4m30s"
icmp_timeout = 90
nptv6 = { inside = "fd00:1::/48", outside = "2001:db8:1::/48" }

[hosts.inside]
routes = [{ to = "::/0", via = "fd00:1::1" }]
[[hosts.inside.nics]]
segment = "lan"
addresses = ["10.0.0.2/24", "fd00:1::2/64"]

[hosts.outside]
routes = [{ to = "2001:db8:1::/48", via = "2001:db8:ffff::1" }]
[[hosts.outside.nics]]
segment = "wan"
addresses = ["203.0.113.10/24", "2001:db8:ffff::10/64"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nat.toml"
    path.write_text(text)
    return path


def test_nat_keys_map_onto_host_nat(tmp_path: Path) -> None:
    (nat,) = load(write(tmp_path, GOOD)).hosts["gw"].nat
    assert nat.interface == "wan0"
    assert nat.behaviour == NatBehaviour(
        "endpoint-independent", "address-dependent", hairpin=False, ports="preserve",
        port_parity=True, pairing=False, udp_timeout_s=7440.0,
        tcp_transitory_timeout_s=270.0, icmp_timeout_s=90.0)
    assert nat.pool == ["203.0.113.7", "203.0.113.8"]
    assert nat.nptv6 == ("fd00:1::/48", "2001:db8:1::/48")


def test_preset_defaults_and_inline_table(tmp_path: Path) -> None:
    text = GOOD.split("[hosts.gw.nat]")[0].replace(
        'forwarding = true', 'forwarding = true\nnat = { interface = "wan0" }')
    text += GOOD.split("[hosts.inside]")[1].join(["[hosts.inside]", ""])
    (nat,) = load(write(tmp_path, text)).hosts["gw"].nat
    assert nat.behaviour == NatBehaviour()  # port-restricted cone, what Linux masquerade does
    assert nat.pool is None and nat.nptv6 is None


def test_two_outside_interfaces_as_an_array_of_tables(tmp_path: Path) -> None:
    text = GOOD.replace("[hosts.gw.nat]", "[[hosts.gw.nat]]").replace(
        "[hosts.inside]", '[[hosts.gw.nat]]\ninterface = "lan0"\nbehaviour = "full-cone"\n\n'
        "[hosts.inside]")
    nats = load(write(tmp_path, text)).hosts["gw"].nat
    assert [(n.interface, n.behaviour.filtering) for n in nats] == [
        ("wan0", "address-dependent"), ("lan0", "endpoint-independent")]


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old,new,needle,reason", [
    ('behaviour = "symmetric"', 'behavior = "symmetric"', "behavior", "unknown key 'behavior'"),
    ('behaviour = "symmetric"', 'behaviour = "cone"', "behaviour", "NAT behaviour 'cone'"),
    ('interface = "wan0"', 'interface = "eth9"', "eth9", "has no interface 'eth9'"),
    ('interface = "wan0"', '', "[hosts.gw.nat]", "a nat needs interface"),
    ('forwarding = true', 'forwarding = false', "[hosts.gw.nat]", "does not forward"),
    ('mapping = "endpoint-independent"', 'mapping = "cone"', "mapping", "NAT mapping 'cone'"),
    ('hairpin = false', 'hairpin = "no"', "hairpin", "hairpin must be a bool"),
    ('ports = "preserve"', 'ports = "sequential"', "ports", "NAT ports 'sequential'"),
    ('udp_timeout = "2h4m"', 'udp_timeout = "soon"', "udp_timeout", "bad duration 'soon'"),
    ('udp_timeout = "2h4m"', 'udp_timeout = "1m"', "udp_timeout",
     "udp_timeout: at least 120 s (RFC 4787 REQ-5)"),
    ('icmp_timeout = 90', 'icmp_timeout = 30', "icmp_timeout", "icmp_timeout: at least 60 s"),
    ('"203.0.113.8"]', '"203.0.113.300"]', "pool", "'203.0.113.300' is not an IPv4 address"),
    ('"203.0.113.8"]', '"203.0.113.10"]', "pool", "203.0.113.10 belongs to host outside"),
    ('outside = "2001:db8:1::/48"', 'outside = "2001:db8:1::/56"', "nptv6",
     "two prefixes of the same length"),
    ('outside = "2001:db8:1::/48"', 'outside = "10.0.0.0/8"', "nptv6", "nptv6:"),
])
def test_nat_mistakes_name_file_line_and_reason(tmp_path: Path, old: str, new: str,
                                                needle: str, reason: str) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new)
    path = write(tmp_path, text)
    with pytest.raises(TopologyError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{_line_of(text, needle)}: "), message
    assert reason in message, message


def test_nptv6_from_a_topology_file_on_the_wire(tmp_path: Path) -> None:
    topo = load(write(tmp_path, GOOD))
    net, hosts, _, _ = build(topo, True, 1, None)
    cap = net.capture()
    receiver = hosts["outside"].socket(AF_INET6, SOCK_DGRAM)
    receiver.bind(("2001:db8:ffff::10", 9000))
    receiver.settimeout(2.0)
    sender = hosts["inside"].socket(AF_INET6, SOCK_DGRAM)
    sender.sendto(b"six", ("2001:db8:ffff::10", 9000))
    data, source = receiver.recvfrom(100)
    assert data == b"six"
    # RFC 6296: the /48 is swapped and the rest adjusted to keep the checksum neutral
    assert source[0].startswith("2001:db8:1:") and source[0] != "2001:db8:1::2"
    assert not any(IP in p and p[IP].src.startswith("10.") for p in read_pcapng(cap.getvalue())
                   if p.interface == "outside/eth0")
    net.close()


NAT_MODULES = ["stun_server", "stun_client", "holepunch"]


def test_vnet_sim_runs_the_nat_example(tmp_path: Path,
                                       example_wasm: Callable[[str], Path]) -> None:
    (tmp_path / "build").mkdir()
    for name in NAT_MODULES:
        shutil.copyfile(example_wasm(name), tmp_path / "build" / f"{name}.wasm")
    topology = tmp_path / "nat.toml"
    topology.write_text((EXAMPLES / "nat.toml").read_text())
    pcaps = tmp_path / "pcaps"
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(topology), "--pcap-dir",
                           str(pcaps)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "vnet sim: clients exited" in out
    for client in ("alice/stun", "alice/punch", "bob/stun", "bob/punch"):
        assert any(line.split()[:2] == [client, "0"] for line in out.splitlines()), out
    assert ("alice/stun      | stun_client: RESULT nat=yes mapping=endpoint-independent "
            "filtering=address-and-port-dependent hairpin=yes public=203.0.113.1:") in out
    assert ("bob/stun        | stun_client: RESULT nat=yes mapping=endpoint-independent "
            "filtering=address-dependent hairpin=no public=203.0.113.102:") in out
    assert "RESULT connected name=alice peer=bob via=203.0.113.102:" in out
    assert "RESULT connected name=bob peer=alice via=203.0.113.1:" in out
    # the public segment sees only public addresses; the pool address is gw2's
    wan = {a for p in read_pcapng((pcaps / "stun-eth0.pcapng").read_bytes()) if IP in p
           for a in (p[IP].src, p[IP].dst)}
    assert wan == {"203.0.113.1", "203.0.113.102", "203.0.113.10", "203.0.113.20"}


def test_vnet_sim_reports_a_nat_mistake_as_file_line_reason(tmp_path: Path) -> None:
    text = GOOD.replace('udp_timeout = "2h4m"', 'udp_timeout = "90s"')
    path = write(tmp_path, text)
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"vnet sim: {path}:{_line_of(text, 'udp_timeout')}: "
                                   "NAT udp_timeout: at least 120 s (RFC 4787 REQ-5)")


def test_the_nat_example_reruns_byte_identically(tmp_path: Path,
                                                  example_wasm: Callable[[str], Path]) -> None:
    (tmp_path / "build").mkdir()
    for name in NAT_MODULES:
        shutil.copyfile(example_wasm(name), tmp_path / "build" / f"{name}.wasm")
    topology = tmp_path / "nat.toml"
    topology.write_text((EXAMPLES / "nat.toml").read_text())
    outputs = []
    for run_dir in ("a", "b"):
        out = io.BytesIO()
        result = run(load(topology), pcap_dir=tmp_path / run_dir, out=out)
        assert result.ok
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1] and b"RESULT connected" in outputs[0]
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "gw2-wan0.pcapng" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
