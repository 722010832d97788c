"""Topology files that say it all: bandwidth, jitter, queues, cables, templates and count,
guest limits and stop times -- measured through guests and the stack in virtual time.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vnet.network import Network, Unreachable
from vnet.sim.runner import run
from vnet.sim.topology import TopologyError, load
from vnet.units import parse_duration_ns, parse_rate_bps, parse_size_bytes

BULK = """\
[sim]
virtual_time = true
seed = 11
duration = "60s"
clients = ["rx/recv", "tx/send"]

[segments.lan]
latency = "1ms"
bandwidth = "10Mbit"
queue = 100

[hosts.rx]
[[hosts.rx.nics]]
segment = "lan"
addresses = ["10.0.0.1/24"]
[[hosts.rx.guests]]
name = "recv"
module = "BULK"
args = ["recv", "5001"]

[hosts.tx]
[[hosts.tx.nics]]
segment = "lan"
addresses = ["10.0.0.2/24"]
[[hosts.tx.guests]]
name = "send"
module = "BULK"
args = ["send", "10.0.0.1", "5001", "2"]
start = "100ms"
"""


def _goodput_mbit(output: str) -> float:
    """Mbit/s of the receiver's "received N bytes ... in S s" line."""
    match = re.search(r"received (\d+) bytes fnv1a64=\w+ in ([\d.]+) s", output)
    assert match, output
    return int(match.group(1)) * 8 / float(match.group(2)) / 1e6


@pytest.mark.parametrize("queue", ["100", '"64KB"'])
def test_bandwidth_from_a_topology_file_gives_that_tcp_goodput(
        tmp_path: Path, example_wasm: Callable[[str], Path], queue: str) -> None:
    """10 Mbit/s on the segment: TCP moves 2 MiB at 9-10 Mbit/s of goodput (virtual time)."""
    path = tmp_path / "bulk.toml"
    path.write_text(BULK.replace("BULK", str(example_wasm("bulk"))).replace(
        "queue = 100", f"queue = {queue}"))
    topo = load(path)
    assert topo.segments["lan"].shape.bandwidth_bps == 10_000_000
    out = tmp_path / "out.txt"
    with out.open("wb") as stream:
        result = run(topo, out=stream)
    text = out.read_text()
    assert result.ok, text
    goodput = _goodput_mbit(text)
    print(f"goodput {goodput:.3f} Mbit/s (queue {queue})")
    assert 9.0 <= goodput <= 10.0, text


def test_bandwidth_and_delay_per_nic_override_the_segment(
        tmp_path: Path, example_wasm: Callable[[str], Path]) -> None:
    """The sender's NIC at 2 Mbit/s on a 10 Mbit/s segment: 2 Mbit/s is what TCP gets."""
    path = tmp_path / "bulk.toml"
    text = BULK.replace("BULK", str(example_wasm("bulk"))).replace(
        'addresses = ["10.0.0.2/24"]', 'addresses = ["10.0.0.2/24"]\nbandwidth = "2Mbit"\n'
        'queue = "32KB"').replace('"5001", "2"]', '"5001", "1"]')
    path.write_text(text)
    out = tmp_path / "out.txt"
    with out.open("wb") as stream:
        result = run(load(path), out=stream)
    assert result.ok, out.read_text()
    assert 1.6 <= _goodput_mbit(out.read_text()) <= 2.0, out.read_text()


JITTER = """\
[sim]
virtual_time = true
seed = 4

[segments.lan]
latency = "5ms"
jitter = "2ms"

[hosts.a]
[[hosts.a.nics]]
segment = "lan"
addresses = ["10.0.0.1/24"]

[hosts.b]
[[hosts.b.nics]]
segment = "lan"
addresses = ["10.0.0.2/24"]
"""


def test_jitter_from_a_topology_file_spreads_round_trips(tmp_path: Path) -> None:
    """5 ms latency each way plus +-2 ms of jitter on each NIC's way out: every round
    trip is within 10 +- 4 ms, and they differ (uniform jitter: stdev ~1.6 ms)."""
    path = tmp_path / "jitter.toml"
    path.write_text(JITTER)
    with Network.from_topology(path) as net:
        a = net.hosts["a"]
        assert a.ping("10.0.0.2", timeout=1)[0] is not None  # ARP first
        rtts = [r for r in a.ping("10.0.0.2", count=100, timeout=1, interval=0.05)
                if r is not None]
    assert len(rtts) == 100
    assert all(0.006 <= r <= 0.014 for r in rtts), (min(rtts), max(rtts))
    assert 0.0008 <= statistics.pstdev(rtts) <= 0.0025, statistics.pstdev(rtts)
    assert 0.009 <= statistics.mean(rtts) <= 0.011


CABLE = """\
[sim]
virtual_time = true
seed = 2

[cables.wan]
latency = "20ms"
bandwidth = "1Mbit"

[segments.lan]

[hosts.r1]
forwarding = true
[[hosts.r1.nics]]
cable = "wan"
addresses = ["192.0.2.1/30"]
[[hosts.r1.nics]]
segment = "lan"
addresses = ["10.0.0.1/24"]

[hosts.r2]
routes = [{ to = "10.0.0.0/24", via = "192.0.2.1" }]
[[hosts.r2.nics]]
cable = "wan"
addresses = ["192.0.2.2/30"]

[defaults]
routes = [{ to = "0.0.0.0/0", via = "10.0.0.1" }]

[templates.pc]
[[templates.pc.nics]]
segment = "lan"
addresses = ["10.0.0.{10+n}/24"]

[hosts.pc]
template = "pc"
count = 3
"""


def test_cables_templates_and_count(tmp_path: Path) -> None:
    path = tmp_path / "cable.toml"
    path.write_text(CABLE)
    topo = load(path)
    assert [h for h in topo.hosts] == ["r1", "r2", "pc1", "pc2", "pc3"]
    assert [topo.hosts[f"pc{n}"].nics[0].addresses for n in (1, 2, 3)] == [
        ["10.0.0.11/24"], ["10.0.0.12/24"], ["10.0.0.13/24"]]
    assert topo.hosts["pc2"].routes == [("0.0.0.0/0", "10.0.0.1", None)]
    assert topo.segments["wan"].cable and topo.segments["wan"].latency_ns == 20_000_000
    with Network.from_topology(path) as net:
        assert type(net.segments["wan"]).__name__ == "Cable"
        rtt = net.hosts["r2"].ping("10.0.0.12", timeout=1, size=1000)
        rtt = net.hosts["r2"].ping("10.0.0.12", timeout=1, size=1000)
        # 2 x 20 ms on the cable, and each way one serialization (a cable is one wire)
        # of the 970-byte frame (Host.ping's size=1000 sends 928 bytes of data) at 1 Mbit/s
        assert rtt[0] is not None and abs(rtt[0] - (0.040 + 2 * 970 * 8 / 1e6)) < 0.0002, rtt


def test_python_api_link_units_and_ping_all() -> None:
    with Network(virtual_time=True, seed=3) as net:
        a, b = net.host("a"), net.host("b")
        net.link(a, b, "10.1.0.1/30", "10.1.0.2/30", delay="5ms", bandwidth="10Mbit",
                 loss=0.0)
        rtt = a.ping("10.1.0.2", count=2, timeout=1)
        assert rtt[1] is not None and 0.010 <= rtt[1] <= 0.0102
        assert set(net.ping_all(family=2)) == {("a", "10.1.0.2"), ("b", "10.1.0.1")}
        c = net.host("c")
        net.link(b, c, "10.2.0.1/30", "10.2.0.2/30")
        with pytest.raises(Unreachable) as caught:
            net.ping_all(timeout=0.5)
        assert ("a", "c", "10.2.0.2") in caught.value.pairs
        assert "a cannot reach c at 10.2.0.2" in str(caught.value)


def test_router_with_nat_translates_what_leaves_its_outside_interface() -> None:
    with Network(virtual_time=True, seed=3) as net:
        lan, wan = net.segment("lan"), net.segment("wan")
        gw = net.router("gw", nat="symmetric")
        gw.connect(lan, "192.168.1.1/24")
        gw.connect(wan, "203.0.113.1/24")
        inside, outside = net.host("inside"), net.host("outside")
        inside.connect(lan, "192.168.1.2/24")
        inside.add_route("0.0.0.0/0", "192.168.1.1")
        outside.connect(wan, "203.0.113.9/24")
        rx = outside.socket(2, 2)
        rx.bind(("203.0.113.9", 4000))
        rx.settimeout(1)
        tx = inside.socket(2, 2)
        tx.sendto(b"hi", ("203.0.113.9", 4000))
        data, (source, _port) = rx.recvfrom(10)
        assert data == b"hi" and source == "203.0.113.1"


def test_units_are_one_parser() -> None:
    assert parse_rate_bps("10Mbit") == 10_000_000 and parse_rate_bps("1.5Gbit") == 1_500_000_000
    assert parse_rate_bps("64kbit") == 64_000 and parse_rate_bps("1MB/s") == 8_000_000
    assert parse_duration_ns("2ms") == 2_000_000 and parse_duration_ns(1.5) == 1_500_000_000
    assert parse_size_bytes("64KB") == 65536 and parse_size_bytes(1500) == 1500
    for bad in ("fast", "-1ms", True):
        with pytest.raises(ValueError):
            parse_duration_ns(bad)
    with pytest.raises(ValueError, match="above 0"):
        parse_rate_bps("0bit")


def test_guest_limits_and_stop_load(tmp_path: Path) -> None:
    wasm = tmp_path / "t.wasm"
    wasm.write_bytes(b"\0asm\x01\0\0\0")
    path = tmp_path / "g.toml"
    path.write_text(JITTER + f"""
[[hosts.a.guests]]
name = "g"
module = "{wasm}"
memory = "16MB"
fds = 32
cpu_time = "2s"
stop = "30s"
""")
    topo = load(path)
    guest = topo.hosts["a"].guests[0]
    assert guest.limits is not None and (guest.limits.memory_bytes, guest.limits.max_fds,
                                         guest.limits.cpu_time_ms) == (16 << 20, 32, 2000)
    assert [(f.at_ns, f.action, f.guest) for f in topo.faults] == [
        (30_000_000_000, "kill", "a/g")]


def test_a_guest_is_stopped_at_its_stop_time(tmp_path: Path,
                                             example_wasm: Callable[[str], Path]) -> None:
    path = tmp_path / "stop.toml"
    path.write_text(BULK.replace("BULK", str(example_wasm("bulk"))).replace(
        'args = ["recv", "5001"]', 'args = ["recv", "5001"]\nstop = "1s"').replace(
        'clients = ["rx/recv", "tx/send"]', 'clients = ["rx/recv"]').replace('"5001", "2"]',
                                                                   '"5001", "100"]'))
    out = tmp_path / "out.txt"
    with out.open("wb") as stream:
        result = run(load(path), out=stream)
    recv = next(g for g in result.guests if g.name == "rx/recv")
    assert recv.trap is not None and "killed by a fault at 1.000 s" in recv.trap
    assert result.elapsed_ns < 2_000_000_000


@pytest.mark.parametrize("mutate,needle,reason", [
    (lambda t: t.replace('bandwidth = "10Mbit"', 'bandwidth = "10 furlongs"'), "bandwidth",
     "bandwidth: bad rate '10 furlongs'"),
    (lambda t: t.replace('queue = 100', 'queue = "lots"'), "queue",
     "queue: a number of packets"),
    (lambda t: t.replace('bandwidth = "10Mbit"\n', ''), "queue", "queue needs bandwidth"),
    (lambda t: t.replace('latency = "1ms"', 'jitter = "soon"'), "jitter",
     "jitter: bad duration 'soon'"),
    (lambda t: t.replace('segment = "lan"\naddresses = ["10.0.0.2/24"]',
                         'cable = "lan"\naddresses = ["10.0.0.2/24"]'), 'cable = "lan"',
     "cable 'lan' is not defined under [cables]"),
    (lambda t: t.replace('[hosts.tx]', '[hosts.tx]\nroutes = [{ to = "0.0.0.0/0", via = '
                         '"10.9.0.1" }]'), "routes",
     "gateway 10.9.0.1 is not on a network of host 'tx'"),
    (lambda t: t.replace('[hosts.tx]', '[hosts.tx]\nroutes = [{ to = "10.8.0.0/16", dev = '
                         '"eth7" }]'), "routes", "host 'tx' has no interface 'eth7'"),
    (lambda t: t.replace('[hosts.tx]', '[hosts.tx]\ntemplate = "nope"'), "template",
     "template 'nope' is not defined"),
    (lambda t: t.replace('[hosts.tx]', '[hosts.tx]\ncount = 0'), "count", "count must be"),
    (lambda t: t.replace('start = "100ms"', 'start = "100ms"\nmemory = "lots"'), "memory",
     "memory: bad size"),
    (lambda t: t.replace('[[hosts.tx.nics]]', '[hosts.tx.tun]\ndevice = "vt0"\n'
                         '[[hosts.tx.nics]]'), "[hosts.tx.tun]", "runs in real time only"),
    (lambda t: t.replace('[[hosts.rx.nics]]', '[hosts.rx.ra]\ninterface = "eth0"\n'
                         '[[hosts.rx.nics]]'), "[hosts.rx.ra]", "does not forward"),
    (lambda t: t.replace('[[hosts.rx.nics]]', '[hosts.rx.dhcp_server]\ninterface = "eth0"\n'
                         'range = ["10.0.0.10", "10.0.1.10"]\n[[hosts.rx.nics]]'), "range",
     "is not inside 10.0.0.0/24"),
    (lambda t: t.replace('[[hosts.rx.nics]]', '[hosts.rx.dhcp_server]\ninterface = "eth9"\n'
                         'range = ["10.0.0.10", "10.0.0.20"]\n[[hosts.rx.nics]]'), "eth9",
     "has no interface 'eth9'"),
    (lambda t: t.replace('addresses = ["10.0.0.2/24"]', 'addresses = ["10.0.0.2/24"]\n'
                         'dhcp = true'), "dhcp = true", "dhcp = true and a static IPv4"),
    (lambda t: t.replace('[hosts.rx]', '[hosts.rx]\nforwarding = true\nmroutes = [{ group = '
                         '"224.0.0.251", from = "eth0", to = ["eth0"] }]'), "mroutes",
     "not a routable multicast group"),
])
def test_mistakes_in_the_new_keys_name_file_line_and_reason(
        tmp_path: Path, mutate: Callable[[str], str], needle: str, reason: str) -> None:
    wasm = tmp_path / "t.wasm"
    wasm.write_bytes(b"\0asm\x01\0\0\0")
    text = mutate(BULK.replace("BULK", str(wasm)))
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(TopologyError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:"), message
    assert reason in message, message
    lines = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert caught.value.line in lines, (message, lines)


@pytest.mark.parametrize("route,reason", [
    ('{ to = "0.0.0.0/0", via = "10.9.0.1" }', "gateway 10.9.0.1 is not on a network"),
    ('{ to = "10.8.0.0/16", dev = "eth7" }', "has no interface 'eth7'"),
    ('{ to = "10.8.0.0/16", via = "10.0.0.1", dev = "eth3" }', "has no interface 'eth3'"),
])
def test_vnet_sim_reports_a_bad_route_as_file_line_reason(tmp_path: Path, route: str,
                                                           reason: str) -> None:
    """These reached stack/host.py's ValueError / KeyError as a traceback before."""
    wasm = tmp_path / "t.wasm"
    wasm.write_bytes(b"\0asm\x01\0\0\0")
    text = BULK.replace("BULK", str(wasm)).replace("[hosts.tx]\n",
                                                   f"[hosts.tx]\nroutes = [{route}]\n")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith("routes"))
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"{path}:{line}: route to " in proc.stderr and reason in proc.stderr, proc.stderr


def test_vnet_sim_runs_the_routers_example(tmp_path: Path,
                                           example_wasm: Callable[[str], Path]) -> None:
    """examples/routers.toml: DHCP and SLAAC laptops from a template, a 10 Mbit/s cable."""
    examples = Path(__file__).resolve().parent.parent / "examples"
    (tmp_path / "build").mkdir()
    for name in ("udp_echo", "bulk"):
        shutil.copyfile(example_wasm(name), tmp_path / "build" / f"{name}.wasm")
    topology = tmp_path / "routers.toml"
    topology.write_text((examples / "routers.toml").read_text())
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(topology)],
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for n in (1, 2, 3):
        assert f"udp_echo: 20 bytes from 10.1.0.10{n - 1}: \"hello from laptop{n} 3\"" in out
        assert f"laptop{n}/echo | udp_echo: 3 of 3 echoed" in out
    # the cable's 10 Mbit/s, less slow start over its 40 ms round trip (2 MiB only)
    assert 8.0 <= _goodput_mbit(out) <= 10.0, out


QUEUE = """\
[sim]
virtual_time = true

[segments.lan]
bandwidth = "1Mbit"
queue = QUEUE

[hosts.a]
[[hosts.a.nics]]
segment = "lan"
addresses = ["10.0.0.1/24"]

[hosts.b]
[[hosts.b.nics]]
segment = "lan"
addresses = ["10.0.0.2/24"]
"""


@pytest.mark.parametrize("queue,kept", [("4", 4), ('"8KB"', 8192 // 1042)])
def test_a_burst_overflows_the_rate_queue_packets_or_bytes(tmp_path: Path, queue: str,
                                                           kept: int) -> None:
    """50 datagrams of 1000 bytes at once into 1 Mbit/s: the NIC's queue holds `queue`
    (the frame being serialized included), the rest are tail-dropped and counted."""
    path = tmp_path / "queue.toml"
    path.write_text(QUEUE.replace("QUEUE", queue))
    with Network.from_topology(path) as net:
        a, b = net.hosts["a"], net.hosts["b"]
        assert a.ping("10.0.0.2", timeout=1)[0] is not None  # ARP out of the way
        rx = b.socket(2, 2)
        rx.bind(("10.0.0.2", 9))
        rx.settimeout(1)
        tx = a.socket(2, 2)
        for n in range(50):
            tx.sendto(bytes(1000) + bytes([n]), ("10.0.0.2", 9))
        got = []
        while True:
            try:
                got.append(rx.recvfrom(2000)[0][-1])
            except TimeoutError:
                break
        port = a.nics["eth0"].port
        assert port is not None and port.ingress is not None
        dropped = port.ingress.stats.queue_dropped
    assert got == list(range(len(got))) and dropped == 50 - len(got)
    assert len(got) == kept, (len(got), kept)
