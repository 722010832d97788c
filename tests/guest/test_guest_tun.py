"""Guest TUN/TAP devices and the synthetic /dev, end to end through wasm guests.

A guest compiled from unmodified Linux TUN C (tests/guest/c/simpletun.c, the
classic simpletun shape: open /dev/net/tun, TUNSETIFF, select, read/write)
runs on each of two hosts granted `tun0`; the hosts' tunnel addresses are
reachable only through it. vnet's ping and a TCP transfer cross it, and the
captures show the inner packets on tun0 and the tunnel's TCP on eth0; the
same seed gives byte-identical captures. tests/guest/c/devfs_probe.c checks
/dev: seeded randomness, null, zero, read-only, net/tun only with a grant,
fd numbering as on Linux.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP

from vnet.link.guest_tun import GuestDeviceGrant, parse_guest_tun
from vnet.link.host_bridge import HostBridge
from vnet.network import Network
from vnet.testing.pcap import read_pcapng

SIMPLETUN = "tests/guest/c/simpletun.c"
DEVFS_PROBE = "tests/guest/c/devfs_probe.c"
PAYLOAD = bytes(range(256)) * 600  # 150 KiB


def _tunnel(wasm: Path, seed: int = 1) -> tuple[Network, dict[str, object]]:
    """Hosts a and b on one segment, simpletun on each; returns the network and results."""
    net = Network(virtual_time=True, seed=seed)
    capture = net.capture()
    wan = net.segment("wan")
    a, b = net.host("a"), net.host("b")
    a.connect(wan, "192.168.0.1/24")
    b.connect(wan, "192.168.0.2/24")
    results: dict[str, object] = {"capture": capture}
    try:
        a.ping("10.8.0.2", timeout=0.5)
        results["before"] = "reachable"
    except OSError as e:
        results["before"] = e.errno
    server = a.run(wasm, "-i", "tun0", "-s", "-p", "5555", devices=["tun0=10.8.0.1/24"])
    client = b.run(wasm, "-i", "tun0", "-c", "192.168.0.1", "-p", "5555",
                   devices=[GuestDeviceGrant("tun0", "tun", ("10.8.0.2/24",))])
    server.wait_for("tunnel up on tun0", timeout=30)
    client.wait_for("tunnel up on tun0", timeout=30)
    results["ping"] = a.ping("10.8.0.2", count=3, timeout=2)
    received: dict[str, bytes] = {}

    def serve() -> None:
        with b.socket() as listener:
            listener.bind(("10.8.0.2", 7000))
            listener.listen(1)
            conn, _ = listener.accept()
            data = bytearray()
            while chunk := conn.recv(65536):
                data += chunk
            received["data"] = bytes(data)
            conn.close()

    def send() -> None:
        with a.socket() as sock:
            sock.connect(("10.8.0.2", 7000))
            sock.sendall(PAYLOAD)

    b.spawn("server", serve)
    a.spawn("client", send)
    net.wait(lambda: "data" in received, timeout_s=120)
    results["received"] = received.get("data", b"")
    results["counters"] = (a.stack.interface("tun0").counters, b.stack.interface("tun0").counters)
    return net, results


def test_simpletun_carries_ping_and_tcp_between_hosts_with_no_other_route(
        vnet_build: Callable[..., Path]) -> None:
    net, results = _tunnel(vnet_build(SIMPLETUN))
    assert results["before"] != "reachable"  # 10.8.0.0/24 exists only through the tunnel
    assert all(rtt is not None for rtt in results["ping"])  # type: ignore[attr-defined]
    received = results["received"]
    assert hashlib.sha256(received).digest() == hashlib.sha256(PAYLOAD).digest()  # type: ignore[arg-type]
    capture = results["capture"]
    packets = read_pcapng(capture.getvalue()).packets  # type: ignore[attr-defined]
    on_tun = [p for p in packets if p.interface == "a/tun0"]
    on_eth = [p for p in packets if p.interface == "a/eth0"]
    inner_pings = [p for p in on_tun if ICMP in p and p[IP].dst == "10.8.0.2"]
    assert len(inner_pings) == 3 and all(p[IP].src == "10.8.0.1" for p in inner_pings)
    inner_tcp = [p for p in on_tun if TCP in p and p[TCP].dport == 7000]
    assert sum(len(p[TCP].payload) for p in inner_tcp) >= len(PAYLOAD)
    tunnel = [p for p in on_eth if TCP in p and 5555 in (p[TCP].sport, p[TCP].dport)]
    assert not [p for p in on_eth if ICMP in p]  # the pings crossed eth0 only inside TCP
    # every inner packet was carried in the tunnel's stream: the stream holds at least as
    # many bytes as the inner packets plus their 2-byte length prefixes
    inner_bytes = sum(len(p.data) + 2 for p in on_tun)
    assert sum(len(p[TCP].payload) for p in tunnel) >= inner_bytes
    tun_a, tun_b = results["counters"]  # type: ignore[misc]
    assert tun_a.tx_frames >= len(inner_tcp) and tun_b.rx_frames > 0
    net.close()


def test_tunnel_captures_are_byte_identical_for_the_same_seed(
        vnet_build: Callable[..., Path]) -> None:
    wasm = vnet_build(SIMPLETUN)
    first = _tunnel(wasm, seed=7)[1]["capture"].getvalue()  # type: ignore[attr-defined]
    second = _tunnel(wasm, seed=7)[1]["capture"].getvalue()  # type: ignore[attr-defined]
    assert first == second


def test_dev_is_there_for_every_guest_and_net_tun_only_with_a_grant(
        vnet_build: Callable[..., Path]) -> None:
    wasm = vnet_build(DEVFS_PROBE)
    outputs = []
    for seed, devices in ((3, []), (3, ["tun0"]), (4, [])):
        net = Network(virtual_time=True, seed=seed)
        host = net.host("h")
        host.connect(net.segment("lan"), "10.0.0.1/24")
        process = host.run(wasm, devices=devices)
        assert process.wait(timeout=30) == 0, process.stderr
        outputs.append(process.stdout_lines)
        net.close()
    without, granted, other_seed = outputs
    assert without[0].startswith("urandom read 16: ") and len(without[0]) == len(
        "urandom read 16: ") + 32
    assert without[0] == granted[0]  # the same seed: the same bytes
    assert other_seed[0] != without[0]
    assert "random fread 4" in without
    assert "null write 3 read 0" in without
    assert "zero read 8 first 0 last 0" in without
    assert "stat null 0 chr 1" in without
    assert "tun open ENOENT" in without and "ls /dev/net:" in without
    assert "tun open ok" in granted and "ls /dev/net: tun" in granted
    assert "create /dev/x -1 EROFS" in without
    # /dev takes no low fd: the program's first socket is fd 3, as on Linux
    assert "first socket fd 3" in without and "first socket fd 3" in granted


@pytest.mark.parametrize(("spec", "grant"), [
    ("tun0", GuestDeviceGrant("tun0")),
    ("vpn1:tap=10.9.0.1/24,fd00::1/64",
     GuestDeviceGrant("vpn1", "tap", ("10.9.0.1/24", "fd00::1/64"))),
])
def test_guest_tun_spec_parses_as_the_cli_takes_it(spec: str, grant: GuestDeviceGrant) -> None:
    assert parse_guest_tun(spec) == grant


@pytest.mark.parametrize("spec", ["", "a/b", "x" * 16, "tun0:tcp", "tun0=10.0.0.300/24"])
def test_bad_guest_tun_specs_are_refused_with_a_reason(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_guest_tun(spec)


def test_tap_mode_carries_arp_and_ndp_across_the_tunnel(
        vnet_build: Callable[..., Path]) -> None:
    """simpletun -a: Ethernet frames through TAP devices; the hosts resolve each
    other's tunnel addresses with ARP and NDP, whose frames cross the tunnel."""
    net = Network(virtual_time=True, seed=2)
    capture = net.capture()
    wan = net.segment("wan")
    a, b = net.host("a"), net.host("b")
    a.connect(wan, "192.168.0.1/24")
    b.connect(wan, "192.168.0.2/24")
    wasm = vnet_build(SIMPLETUN)
    server = a.run(wasm, "-i", "tap0", "-a", "-s", devices=["tap0:tap=10.9.0.1/24,fd09::1/64"])
    client = b.run(wasm, "-i", "tap0", "-a", "-c", "192.168.0.1",
                   devices=["tap0:tap=10.9.0.2/24,fd09::2/64"])
    server.wait_for("tunnel up on tap0", timeout=30)
    client.wait_for("tunnel up on tap0", timeout=30)
    assert all(rtt is not None for rtt in a.ping("10.9.0.2", count=2, timeout=2))
    assert all(rtt is not None for rtt in a.ping("fd09::2", count=2, timeout=2))
    b_mac = b.stack.interface("tap0").mac
    packets = [p for p in read_pcapng(capture.getvalue()).packets if p.interface == "a/tap0"]
    summaries = [p.summary() for p in packets]
    assert any("ARP" in s and "10.9.0.2 is at" in s for s in summaries), summaries
    assert any("Neighbor Advertisement" in s and "fd09::2 → fd09::1" in s
               for s in summaries), summaries
    replies = [p for p in packets if ICMP in p and p[ICMP].type == 0]
    assert len(replies) == 2 and all(p.data[6:12] == b_mac for p in replies)
    net.close()


def test_bridged_tap_vpn_joins_two_segments_into_one_l2_domain(
        vnet_build: Callable[..., Path]) -> None:
    """Two LANs in one /24, each behind a gateway whose software bridge br0 joins its
    LAN NIC (eth1) and the TAP device of a simpletun -a guest: hosts on the two LANs
    resolve each other with ARP (and IPv6 link-local NDP) across the tunnel and ping;
    each bridge learns the far host's MAC on its TAP port."""
    net = Network(virtual_time=True, seed=3)
    capture = net.capture()
    wan, lan1, lan2 = net.segment("wan"), net.segment("lan1"), net.segment("lan2")
    gw_a, gw_b = net.host("gw-a"), net.host("gw-b")
    gw_a.connect(wan, "192.168.0.1/24")
    gw_b.connect(wan, "192.168.0.2/24")
    gw_a.connect(lan1, ifname="eth1")
    gw_b.connect(lan2, ifname="eth1")
    bridge_a = HostBridge(gw_a, "br0", ports=["eth1", "tap0"], addresses=["10.50.0.1/24"])
    bridge_b = HostBridge(gw_b, "br0", ports=["eth1", "tap0"], addresses=["10.50.0.2/24"])
    x, y = net.host("x"), net.host("y")
    x.connect(lan1, "10.50.0.10/24")
    y.connect(lan2, "10.50.0.20/24")
    wasm = vnet_build(SIMPLETUN)
    server = gw_a.run(wasm, "-i", "tap0", "-a", "-s", devices=["tap0:tap"])
    client = gw_b.run(wasm, "-i", "tap0", "-a", "-c", "192.168.0.1", devices=["tap0:tap"])
    server.wait_for("tunnel up on tap0", timeout=30)
    client.wait_for("tunnel up on tap0", timeout=30)

    assert all(rtt is not None for rtt in x.ping("10.50.0.20", count=2, timeout=2))
    assert x.ping("10.50.0.2", timeout=2)[0] is not None  # the far gateway's br0
    y_link_local = ipaddress.ip_address(y.stack.interface("eth0").link_local_v6() or b"")
    assert x.ping(f"{y_link_local}%eth0", timeout=2)[0] is not None  # NDP across too

    x_mac, y_mac = x.stack.interface("eth0").mac, y.stack.interface("eth0").mac
    assert x_mac is not None and y_mac is not None
    assert bridge_a.fdb[y_mac].name == "tap0" and bridge_a.fdb[x_mac].name == "eth1"
    assert bridge_b.fdb[x_mac].name == "tap0" and bridge_b.fdb[y_mac].name == "eth1"
    on_tap = [p.summary() for p in read_pcapng(capture.getvalue()).packets
              if p.interface == "gw-a/tap0"]
    assert any("Who has 10.50.0.20? Tell 10.50.0.10" in s for s in on_tap), on_tap
    assert any("10.50.0.20 is at" in s for s in on_tap), on_tap
    net.close()
