"""DNS in topology files: `dns = {...}` on a host or router, `resolvers = [...]`,
their mistakes as 'FILE:LINE: reason', and examples/nat_dns.toml under `vnet sim`.
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.dns import DNS
from scapy.layers.inet import IP

from stack.wire import dns
from tests.conftest import EXAMPLES
from vnet.network import Network
from vnet.sim.runner import run
from vnet.sim.topology import TopologyError, load
from vnet.testing.pcap import read_pcapng

GOOD = """\
[sim]
virtual_time = true

[segments.lan]

[hosts.ns]
[[hosts.ns.nics]]
segment = "lan"
addresses = ["10.0.0.53/24", "fd00::53/64"]
[hosts.ns.dns]
ttl = 30
records = [
  { name = "api.example.test", type = "CNAME", value = "web" },
  { name = "example.test", type = "MX", value = "10 mail.example.test" },
]
policy = [
  { clients = ["a"], deny = ["*.blocked.test"], action = "nxdomain" },
]

[hosts.a]
resolvers = ["ns", "fd00::53"]
[[hosts.a.nics]]
segment = "lan"
addresses = ["10.0.0.1/24", "fd00::1/64"]

[hosts.web]
[[hosts.web.nics]]
segment = "lan"
addresses = ["10.0.0.80/24"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dns.toml"
    path.write_text(text)
    return path


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_dns_keys_build_a_server_and_resolver_lists(tmp_path: Path) -> None:
    topo = load(write(tmp_path, GOOD))
    spec = topo.hosts["ns"].dns
    assert spec is not None and spec.ttl == 30 and len(spec.records) == 2
    assert topo.hosts["a"].resolvers == ["ns", "fd00::53"]
    net = Network.from_topology(write(tmp_path, GOOD))
    a = net.hosts["a"]
    assert a.resolvers == ["10.0.0.53", "fd00::53"]  # "ns": its address on a shared network
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for name, rcode, answers in (("api.example.test", 0, 2), ("x.blocked.test", 3, 0)):
            sock.sendto(dns.DnsMessage(1, questions=(dns.Question(name, 1),)).build(),
                        ("10.0.0.53", 53))
            reply = dns.parse(sock.recvfrom(2000)[0])
            assert isinstance(reply, dns.DnsMessage)
            assert (reply.rcode, len(reply.answers)) == (rcode, answers)
            assert all(r.ttl == 30 for r in reply.answers if r.rtype == 1)
    net.close()


@pytest.mark.parametrize(("old", "new", "needle", "reason"), [
    ('type = "MX", value = "10 mail.example.test"', 'type = "MX", value = "mail"',
     'value = "mail"', 'record 2 (example.test): an MX value is "PREFERENCE EXCHANGE", '
     "not 'mail'"),
    ('type = "CNAME"', 'type = "HINFO"', "HINFO",
     "record 1 (api.example.test): record type 'HINFO' is not one of A, AAAA, CNAME, TXT, "
     "SRV, MX, PTR, NS"),
    ('action = "nxdomain"', 'action = "drop"', 'action = "drop"',
     "policy rule 1: policy action 'drop' is not \"refuse\" or \"nxdomain\""),
    ("ttl = 30", "ttl = -1", "ttl = -1", "ttl must be 0..2147483647 seconds"),
    ('resolvers = ["ns", "fd00::53"]', 'resolvers = ["nsx"]', "resolvers",
     "resolver 'nsx' is neither an IP address nor a host of this topology"),
    ('resolvers = ["ns", "fd00::53"]', 'resolvers = ["web"]', "resolvers",
     "resolver 'web' runs no DNS server (give host 'web' a dns table)"),
    ("[hosts.ns.dns]\n", "[hosts.ns.dns]\nzone = 1\n", "zone = 1",
     "unknown key 'zone' in the dns of host 'ns' (allowed: forward, policy, records, ttl)"),
    ("ttl = 30\n", 'ttl = 30\nforward = ["upstream"]\n', "forward =",
     "forwarder 'upstream' is not an IP address"),
])
def test_dns_mistakes_name_file_and_line(tmp_path: Path, old: str, new: str, needle: str,
                                         reason: str) -> None:
    text = GOOD.replace(old, new)
    assert text != GOOD
    path = write(tmp_path, text)
    with pytest.raises(TopologyError) as info:
        load(path)
    assert str(info.value) == f"{path}:{line_of(text, needle)}: {reason}"


EXAMPLE_MODULES = ["tcp_echo_server", "tcp_echo_client", "udp_echo"]


def test_vnet_sim_runs_the_nat_and_dns_example(tmp_path: Path,
                                               example_wasm: Callable[[str], Path]) -> None:
    """alice finds echo.example.test (a CNAME to the topology host echo) and
    udp.example.test (a static A), records of isp's DNS server, with getaddrinfo through
    gw's, which forwards them, and talks to them through gw's NAT; kid's lookup of
    play.games.test is REFUSED by gw's policy and never leaves the home."""
    (tmp_path / "build").mkdir()
    for name in EXAMPLE_MODULES:
        shutil.copyfile(example_wasm(name), tmp_path / "build" / f"{name}.wasm")
    topology = tmp_path / "nat_dns.toml"
    topology.write_text((EXAMPLES / "nat_dns.toml").read_text())
    pcaps = tmp_path / "pcaps"
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(topology), "--pcap-dir",
                           str(pcaps)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "alice/echo | tcp_echo_client: all echoes matched" in out
    assert "alice/udp  | udp_echo: 3 of 3 echoed" in out
    assert "kid/game   | udp_echo: play.games.test: Temporary failure in name resolution" in out
    assert "echo/tcp   | tcp_echo_server: client 203.0.113.1 connected" in out  # via NAT
    alice = [p for p in read_pcapng((pcaps / "alice-eth0.pcapng").read_bytes())
             if DNS in p and p[DNS].qr == 1]
    names = {(p[DNS].qd[0].qname, p[DNS].rcode) for p in alice}
    assert (b"echo.example.test.", 0) in names and (b"udp.example.test.", 0) in names
    kid = [p for p in read_pcapng((pcaps / "kid-eth0.pcapng").read_bytes())
           if DNS in p and p[DNS].qr == 1]
    assert kid and all(p[DNS].rcode == 5 for p in kid)  # REFUSED
    wan = [p for p in read_pcapng((pcaps / "gw-wan0.pcapng").read_bytes()) if DNS in p]
    forwarded = {p[DNS].qd[0].qname for p in wan if p[DNS].qr == 0}
    assert forwarded == {b"echo.example.test.", b"udp.example.test."}  # from gw's address
    assert all(p[IP].src == "203.0.113.1" for p in wan if p[DNS].qr == 0)
    assert all(p[DNS].ra == 1 for p in alice)  # gw recursed for alice


def test_the_nat_and_dns_example_reruns_byte_identically(
        tmp_path: Path, example_wasm: Callable[[str], Path]) -> None:
    (tmp_path / "build").mkdir()
    for name in EXAMPLE_MODULES:
        shutil.copyfile(example_wasm(name), tmp_path / "build" / f"{name}.wasm")
    topology = tmp_path / "nat_dns.toml"
    topology.write_text((EXAMPLES / "nat_dns.toml").read_text())
    outputs, captures = [], []
    for run_dir in ("a", "b"):
        out = io.BytesIO()
        result = run(load(topology), pcap_dir=tmp_path / run_dir, out=out)
        assert result.ok
        outputs.append(out.getvalue())
        captures.append([p.read_bytes() for p in sorted((tmp_path / run_dir).iterdir())])
    assert outputs[0] == outputs[1] and b"all echoes matched" in outputs[0]
    assert captures[0] == captures[1]


DHCP_TOPOLOGY = """\
[sim]
virtual_time = true

[segments.office]

[hosts.gw]
forwarding = true
[[hosts.gw.nics]]
segment = "office"
addresses = ["10.1.0.1/24"]
[hosts.gw.dhcp_server]
interface = "eth0"
range = ["10.1.0.100", "10.1.0.199"]
dns = ["10.1.0.1"]
[hosts.gw.dns]
records = [{ name = "intranet.office.test", type = "CNAME", value = "gw" }]

[hosts.laptop]
dhcp = true
[[hosts.laptop.nics]]
segment = "office"
[[hosts.laptop.guests]]
name = "resolve"
module = "RESOLVER"
args = ["intranet.office.test:a"]
start = "3s"
"""


def test_a_dhcp_host_gets_its_resolver_from_the_dhcp_server_and_asks_it(
        tmp_path: Path, vnet_build: Callable[..., Path]) -> None:
    """laptop has no resolvers of its own: DHCP gives it gw (option 6), its guest finds gw
    in /etc/resolv.conf and resolves a name gw's DNS server has, on the wire."""
    wasm = vnet_build("tests/dns/c/own_resolver.c")
    path = write(tmp_path, DHCP_TOPOLOGY.replace("RESOLVER", str(wasm)))
    net = Network.from_topology(path)
    laptop = net.hosts["laptop"]
    assert net.topology is not None and net.topology.hosts["laptop"].resolvers == []
    procs = net.start_guests()
    proc = procs["laptop/resolve"]
    assert proc.wait(60) == 0, proc.stdout + proc.stderr
    assert laptop.resolvers == ["10.1.0.1"]
    assert proc.stdout_lines == ["resolver 10.1.0.1", "intranet.office.test CNAME gw",
                                 "gw A 10.1.0.1 ttl=60", "intranet.office.test a: rcode 0"]
    net.close()
