"""Scripted hosts on virtual segments, end to end, with captures checked independently.

These are the stack issue's acceptance checks: hosts ping each other and
exchange UDP over IPv4 and IPv6; ARP and NDP resolution precede the first
datagram in the capture; every frame we emit parses in scapy with correct
checksums and in tshark without malformed-packet or checksum complaints;
IGMPv3 / MLDv2 membership decides who hears a multicast group.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from scapy.contrib.igmpv3 import IGMPv3, IGMPv3mr
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import ICMPv6MLReport2, ICMPv6ND_NA, ICMPv6ND_NS, IPv6
from scapy.layers.l2 import ARP, Ether

from vnet.network import Network
from vnet.testing.pcap import read_pcapng

GROUP4 = "239.1.2.3"
GROUP6 = "ff15::1:2:3"


def mld_groups(frame: Ether) -> set[str]:
    """Groups named by an MLDv2 report. Scapy nests each further record inside the
    previous record's payload instead of listing it, so walk that chain."""
    from scapy.layers.inet6 import ICMPv6MLDMultAddrRec

    found = set()
    for record in frame[ICMPv6MLReport2].records:
        layer = record
        while isinstance(layer, ICMPv6MLDMultAddrRec):
            found.add(layer.dst)
            layer = layer.payload
    return found


def checksums_are_correct(frame: Ether) -> bool:
    """Rebuild the frame with checksums recomputed by scapy; it must be unchanged."""
    clone = frame.copy()
    for layer in (IP, UDP, ICMP):
        if layer in clone:
            del clone[layer].chksum
    for layer in clone.layers():
        if layer.__name__.startswith("ICMPv6") and hasattr(clone[layer], "cksum"):
            del clone[layer].cksum
    if IP in clone:
        del clone[IP].len
    return bytes(Ether(bytes(clone))) == bytes(frame)


def test_ping_and_udp_both_ways_with_resolution_first_in_the_capture() -> None:
    net = Network(virtual_time=True, seed=3)
    seg = net.segment("lan")
    cap = net.capture()
    a = net.host("a")
    a.connect(seg, "10.0.0.1/24", "fd00::1/64")
    b = net.host("b")
    b.connect(seg, "10.0.0.2/24", "fd00::2/64")
    assert all(r is not None for r in a.ping("10.0.0.2", count=2))
    assert all(r is not None for r in b.ping("fd00::1", count=2))
    for family, addr_a, addr_b in ((socket.AF_INET, "10.0.0.1", "10.0.0.2"),
                                   (socket.AF_INET6, "fd00::1", "fd00::2")):
        with a.socket(family, socket.SOCK_DGRAM) as sa, b.socket(family, socket.SOCK_DGRAM) as sb:
            sa.bind((addr_a, 7001))
            sb.bind((addr_b, 7002))
            sa.sendto(b"a->b", (addr_b, 7002))
            data, src = sb.recvfrom(100)
            assert data == b"a->b" and src[:2] == (addr_a, 7001)
            sb.sendto(b"b->a", (addr_a, 7001))
            data, src = sa.recvfrom(100)
            assert data == b"b->a" and src[:2] == (addr_b, 7002)
    frames = [p.packet for p in read_pcapng(cap.getvalue())]
    kinds = []
    for f in frames:
        if ARP in f:
            kinds.append("arp")
        elif ICMPv6ND_NS in f or ICMPv6ND_NA in f:
            kinds.append("ndp")
        elif IP in f and ICMP in f and f[ICMP].type == 8:
            kinds.append("echo4")
        elif IPv6 in f and f[IPv6].nh == 58 and bytes(f[IPv6].payload)[0] == 128:
            kinds.append("echo6")
        elif UDP in f and IP in f and f[UDP].dport in (7001, 7002):
            kinds.append("udp4")
        elif UDP in f and IPv6 in f and f[UDP].dport in (7001, 7002):
            kinds.append("udp6")
    assert "arp" in kinds and "ndp" in kinds
    assert kinds.index("arp") < kinds.index("echo4") < kinds.index("udp4")
    assert kinds.index("ndp") < kinds.index("echo6") < kinds.index("udp6")
    assert frames and all(checksums_are_correct(f) for f in frames)
    net.close()


def test_udp_between_hosts_in_real_time() -> None:
    net = Network(virtual_time=False)
    seg = net.segment("lan")
    a = net.host("a")
    a.connect(seg, "10.0.0.1/24")
    b = net.host("b")
    b.connect(seg, "10.0.0.2/24")
    with a.socket(type=socket.SOCK_DGRAM) as sa, b.socket(type=socket.SOCK_DGRAM) as sb:
        sb.bind(("0.0.0.0", 53))
        sb.settimeout(5)
        sa.sendto(b"query", ("10.0.0.2", 53))
        data, src = sb.recvfrom(512)
        assert data == b"query" and src[0] == "10.0.0.1"
    net.close()


@pytest.mark.parametrize("family,group,members_need", [
    (socket.AF_INET, GROUP4, "igmp"), (socket.AF_INET6, GROUP6, "mld")])
def test_multicast_reaches_members_only_and_reports_are_captured(
        family: int, group: str, members_need: str) -> None:
    import struct

    net = Network(virtual_time=True, seed=5)
    seg = net.segment("lan")
    cap = net.capture()
    hosts = []
    for i in range(1, 6):
        h = net.host(f"h{i}")
        h.connect(seg, f"10.0.0.{i}/24", f"fd00::{i}/64")
        hosts.append(h)
    sender, members, outsider = hosts[0], hosts[1:4], hosts[4]
    port = 5353
    socks = []
    for h in [*members, outsider]:
        s = h.socket(family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        s.settimeout(2)
        socks.append(s)
    for s in socks[:3]:
        if family == socket.AF_INET:  # struct ip_mreq: group, interface address (any)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                         socket.inet_pton(socket.AF_INET, group) + bytes(4))
        else:  # struct ipv6_mreq: group, interface index (0: by route)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                         socket.inet_pton(socket.AF_INET6, group) + struct.pack("<I", 0))
    net.run_for(3)
    with sender.socket(family, socket.SOCK_DGRAM) as tx:
        for i in range(3):
            tx.sendto(b"announce %d" % i, (group, port))
    for s in socks[:3]:
        assert [s.recvfrom(100)[0] for _ in range(3)] == [b"announce 0", b"announce 1",
                                                           b"announce 2"]
    with pytest.raises(TimeoutError):
        socks[3].recvfrom(100)
    frames = [p.packet for p in read_pcapng(cap.getvalue())]
    if members_need == "igmp":
        reports = [f for f in frames if IGMPv3 in f and IGMPv3mr in f]
        groups = {r.maddr for f in reports for r in f[IGMPv3mr].records}
    else:
        reports = [f for f in frames if ICMPv6MLReport2 in f]
        groups = {g for f in reports for g in mld_groups(f)}
    assert group in groups
    reporters = {f[Ether].src for f in reports
                 if group in ({r.maddr for r in f[IGMPv3mr].records} if members_need == "igmp"
                              else mld_groups(f))}
    assert len(reporters) == 3  # the three members, not the outsider or the sender
    for s in socks:
        s.close()
    net.close()


def test_tshark_finds_no_malformed_packets_or_bad_checksums(tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is missing: run scripts/install-test-tools (scripts/test does)"
    net = Network(virtual_time=True, seed=9)
    seg = net.segment("lan")
    path = tmp_path / "lan.pcapng"
    cap = net.capture(path)
    a = net.host("a")
    a.connect(seg, "10.0.0.1/24", "fd00::1/64")
    b = net.host("b")
    b.connect(seg, "10.0.0.2/24", "fd00::2/64")
    a.ping("10.0.0.2", count=2)
    a.ping("fd00::2", count=2, size=3000)  # fragmented
    with a.socket(type=socket.SOCK_DGRAM) as s:
        s.sendto(b"x" * 4000, ("10.0.0.2", 9))  # fragmented, then port unreachable
    with a.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.sendto(b"y", ("fd00::2", 9))
    net.run_for(2)
    cap.close()
    prefs = ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
             "-o", "icmpv6.check_checksum:TRUE"]
    listing = subprocess.run([tshark, "-r", str(path), *prefs], capture_output=True, text=True)
    if "unknown preference" in listing.stderr:
        prefs = ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]
    out = subprocess.run([tshark, "-r", str(path), *prefs, "-Y",
                          "_ws.malformed || _ws.expert.severity >= warning"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", out.stdout
    count = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.number"],
                           capture_output=True, text=True)
    assert len(count.stdout.split()) > 20
    net.close()


def test_router_advertisement_configures_hosts_by_slaac() -> None:
    net = Network(virtual_time=True, seed=11)
    seg = net.segment("lan")
    router = net.router("r")
    router.connect(seg, "2001:db8:5::1/64")
    host = net.host("h")
    host.connect(seg)  # link-local only
    with net.scheduler.lock:
        router.stack.send_router_advert("eth0", ["2001:db8:5::/64"])
    net.run_for(1)
    global_addrs = [a for a in host.stack.interface("eth0").ipv6
                    if a.address[:2] != b"\xfe\x80"]
    assert [str(a) for a in global_addrs] == ["2001:db8:5::ff:fe00:2/64"]
    assert host.ping("2001:db8:5::1", count=1)[0] is not None
    route = host.stack.routes.lookup(bytes.fromhex("20010db8009900000000000000000001"))
    assert route is not None and route.prefix_len == 0 and route.gateway is not None
