"""Frame-level dialogues with one HostStack: scapy frames in, assertions on frames out."""

from __future__ import annotations

import errno
import ipaddress
import socket

from scapy.layers.inet import ICMP, IP, UDP, UDPerror, fragment
from scapy.layers.inet6 import (
    HBHOptUnknown,
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6ParamProblem,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    fragment6,
)
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from tests.stack.harness import OUR_MAC_S, PEER_MAC_S, Harness

ETH_IN = Ether(src=PEER_MAC_S, dst=OUR_MAC_S)


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def test_arp_request_for_our_address_gets_a_reply() -> None:
    h = Harness()
    h.inject(Ether(src=PEER_MAC_S, dst="ff:ff:ff:ff:ff:ff")
             / ARP(op=1, hwsrc=PEER_MAC_S, psrc="10.0.0.2", pdst="10.0.0.1"))
    [reply] = h.sent()
    assert reply[Ether].dst == PEER_MAC_S
    assert reply[ARP].op == 2 and reply[ARP].psrc == "10.0.0.1"
    assert reply[ARP].hwsrc == OUR_MAC_S and reply[ARP].pdst == "10.0.0.2"
    # the requester was learned: traffic to it needs no resolution
    assert h.stack.arp[h.iface.index].lookup(0, ip("10.0.0.2")) is not None


def test_arp_request_for_another_address_is_ignored_and_not_learned() -> None:
    h = Harness()
    h.inject(Ether(src=PEER_MAC_S, dst="ff:ff:ff:ff:ff:ff")
             / ARP(op=1, hwsrc=PEER_MAC_S, psrc="10.0.0.2", pdst="10.0.0.99"))
    assert h.sent() == []
    assert ip("10.0.0.2") not in h.stack.arp[h.iface.index].entries


def test_unresolved_neighbor_is_probed_three_times_then_host_unreachable() -> None:
    h = Harness()
    sock = h.udp.socket(socket.AF_INET)
    sock.connect(ip("10.0.0.7"), 9)
    sock.sendto(b"queued")
    probes = h.sent()
    assert len(probes) == 1 and probes[0][ARP].pdst == "10.0.0.7"
    assert probes[0][Ether].dst == "ff:ff:ff:ff:ff:ff"
    h.driver.advance(1_000_000_000)
    h.driver.advance(1_000_000_000)
    assert [f[ARP].pdst for f in h.sent()] == ["10.0.0.7", "10.0.0.7"]
    h.driver.advance(1_000_000_000)
    assert h.sent() == []  # gave up: nothing more on the wire
    # the queued datagram came back as ICMP host unreachable → the connected socket
    assert sock.pending_error == errno.EHOSTUNREACH
    assert h.stack.counters["arp.unresolved"] == 1


def test_packets_queued_during_resolution_are_sent_once_resolved() -> None:
    h = Harness()
    sock = h.udp.socket(socket.AF_INET)
    for i in range(3):
        sock.sendto(b"d%d" % i, ip("10.0.0.2"), 7)
    assert len(h.sent()) == 1  # one ARP request, datagrams held
    h.inject(ETH_IN / ARP(op=2, hwsrc=PEER_MAC_S, psrc="10.0.0.2", hwdst=OUR_MAC_S,
                          pdst="10.0.0.1"))
    out = h.sent()
    assert [bytes(f[UDP].payload) for f in out] == [b"d0", b"d1", b"d2"]
    assert all(f[Ether].dst == PEER_MAC_S for f in out)


def test_neighbor_solicitation_gets_solicited_advertisement() -> None:
    h = Harness()
    h.inject(Ether(src=PEER_MAC_S, dst="33:33:ff:00:00:01")
             / IPv6(src="fd00::2", dst="ff02::1:ff00:1", hlim=255)
             / ICMPv6ND_NS(tgt="fd00::1") / ICMPv6NDOptSrcLLAddr(lladdr=PEER_MAC_S))
    [na] = h.sent()
    assert na[IPv6].dst == "fd00::2" and na[IPv6].hlim == 255
    assert na[ICMPv6ND_NA].tgt == "fd00::1"
    assert na[ICMPv6ND_NA].S == 1 and na[ICMPv6ND_NA].O == 1 and na[ICMPv6ND_NA].R == 0
    assert na[ICMPv6NDOptDstLLAddr].lladdr == OUR_MAC_S


def test_ndp_with_hop_limit_below_255_is_dropped() -> None:
    h = Harness()
    h.inject(Ether(src=PEER_MAC_S, dst="33:33:ff:00:00:01")
             / IPv6(src="fd00::2", dst="ff02::1:ff00:1", hlim=64)
             / ICMPv6ND_NS(tgt="fd00::1") / ICMPv6NDOptSrcLLAddr(lladdr=PEER_MAC_S))
    assert h.sent() == []
    assert h.stack.counters["ndp.drop.hop_limit_not_255"] == 1


def test_dad_probe_for_our_address_is_defended() -> None:
    h = Harness()
    h.inject(Ether(src=PEER_MAC_S, dst="33:33:ff:00:00:01")
             / IPv6(src="::", dst="ff02::1:ff00:1", hlim=255) / ICMPv6ND_NS(tgt="fd00::1"))
    [na] = h.sent()
    assert na[IPv6].dst == "ff02::1" and na[ICMPv6ND_NA].S == 0


def test_address_add_announces_with_gratuitous_arp_and_unsolicited_na() -> None:
    h = Harness(addresses=())
    h.stack.add_address("eth0", "10.0.0.5/24")
    h.stack.add_address("eth0", "fd00::5/64")
    out = h.sent()
    garp = [f for f in out if ARP in f]
    assert len(garp) == 1 and garp[0][ARP].psrc == garp[0][ARP].pdst == "10.0.0.5"
    assert garp[0][Ether].dst == "ff:ff:ff:ff:ff:ff"
    na = [f for f in out if ICMPv6ND_NA in f]
    assert len(na) == 1 and na[0][IPv6].dst == "ff02::1" and na[0][ICMPv6ND_NA].tgt == "fd00::5"
    assert na[0][ICMPv6ND_NA].S == 0 and na[0][ICMPv6ND_NA].O == 1


def test_echo_request_gets_echo_reply_v4_and_v6() -> None:
    h = Harness()
    h.learn_peer()
    h.inject(ETH_IN / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(id=7, seq=3) / Raw(b"ping!"))
    [r4] = h.sent()
    assert r4[ICMP].type == 0 and r4[ICMP].id == 7 and r4[ICMP].seq == 3
    assert bytes(r4[ICMP].payload) == b"ping!"
    h.inject(ETH_IN / IPv6(src="fd00::2", dst="fd00::1") / ICMPv6EchoRequest(id=9, seq=4,
                                                                            data=b"six"))
    [r6] = h.sent()
    assert r6[ICMPv6EchoReply].id == 9 and r6[ICMPv6EchoReply].data == b"six"


def test_broadcast_echo_is_ignored() -> None:
    h = Harness()
    h.inject(Ether(src=PEER_MAC_S, dst="ff:ff:ff:ff:ff:ff")
             / IP(src="10.0.0.2", dst="10.0.0.255") / ICMP())
    assert h.sent() == []


def test_udp_to_closed_port_gets_port_unreachable_quoting_it() -> None:
    h = Harness()
    h.learn_peer()
    h.inject(ETH_IN / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=1234, dport=4444)
             / Raw(b"anyone?"))
    [err] = h.sent()
    assert err[ICMP].type == 3 and err[ICMP].code == 3
    assert err[UDPerror].dport == 4444 and err[UDPerror].sport == 1234  # the quoted datagram
    h.inject(ETH_IN / IPv6(src="fd00::2", dst="fd00::1") / UDP(sport=1234, dport=4444))
    [err6] = h.sent()
    assert err6[ICMPv6DestUnreach].code == 4


def test_unknown_protocol_gets_protocol_unreachable_or_parameter_problem() -> None:
    h = Harness()
    h.learn_peer()
    h.inject(ETH_IN / IP(src="10.0.0.2", dst="10.0.0.1", proto=253) / Raw(b"x" * 8))
    [err] = h.sent()
    assert err[ICMP].type == 3 and err[ICMP].code == 2
    h.inject(ETH_IN / IPv6(src="fd00::2", dst="fd00::1", nh=253) / Raw(b"x" * 8))
    [err6] = h.sent()
    assert err6[ICMPv6ParamProblem].code == 1 and err6[ICMPv6ParamProblem].ptr == 6


def test_ipv4_fragments_are_reassembled_for_a_socket() -> None:
    h = Harness()
    sock = h.udp.socket(socket.AF_INET)
    sock.bind(ip("10.0.0.1"), 5000)
    payload = bytes(range(256)) * 16
    frags = fragment(IP(src="10.0.0.2", dst="10.0.0.1", id=77) / UDP(sport=1, dport=5000)
                     / Raw(payload), fragsize=600)
    assert len(frags) > 3
    for f in reversed(frags):
        h.inject(ETH_IN / f)
    data, src, port, _ = sock.recvfrom(65535)
    assert data == payload and src == ip("10.0.0.2") and port == 1


def test_ipv6_fragments_are_reassembled_for_a_socket() -> None:
    h = Harness()
    sock = h.udp.socket(socket.AF_INET6)
    sock.bind(ip("fd00::1"), 5000)
    payload = b"0123456789abcdef" * 200
    pkt = IPv6(src="fd00::2", dst="fd00::1") / IPv6ExtHdrFragment(id=5) / UDP(
        sport=1, dport=5000) / Raw(payload)
    for f in fragment6(pkt, 1280):
        h.inject(ETH_IN / f)
    assert sock.recvfrom(65535)[0] == payload


def test_large_udp_datagram_leaves_as_fragments_scapy_reassembles() -> None:
    from scapy.layers.inet import defragment

    h = Harness()
    h.learn_peer()
    sock = h.udp.socket(socket.AF_INET)
    payload = bytes(range(200)) * 20
    sock.sendto(payload, ip("10.0.0.2"), 9)
    frames = h.sent()
    assert len(frames) == 3 and all(len(bytes(f[IP])) <= 1500 for f in frames)
    whole = defragment([f[IP] for f in frames])
    assert bytes(whole[0][UDP].payload) == payload


def test_unknown_hop_by_hop_option_action_bits() -> None:
    h = Harness()
    h.learn_peer()
    sock = h.udp.socket(socket.AF_INET6)
    sock.bind(bytes(16), 6000)
    for otype, delivered, icmp in ((0x1E, True, False), (0x5E, False, False),
                                   (0x9E, False, True)):
        h.inject(ETH_IN / IPv6(src="fd00::2", dst="fd00::1")
                 / IPv6ExtHdrHopByHop(options=[HBHOptUnknown(otype=otype, optdata=b"ab")])
                 / UDP(sport=1, dport=6000) / Raw(b"hbh"))
        assert sock.readable() == delivered
        if delivered:
            sock.recvfrom(100)
        out = h.sent()
        assert (len(out) == 1 and ICMPv6ParamProblem in out[0]
                and out[0][ICMPv6ParamProblem].code == 2) == icmp


def test_router_advertisement_gives_slaac_address_and_default_route() -> None:
    h = Harness(addresses=("10.0.0.1/24",))
    h.inject(Ether(src=PEER_MAC_S, dst="33:33:00:00:00:01")
             / IPv6(src="fe80::2", dst="ff02::1", hlim=255)
             / ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=PEER_MAC_S)
             / ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=64, L=1, A=1))
    addrs = [str(a) for a in h.iface.ipv6]
    assert "2001:db8:1::ff:fe00:1/64" in addrs
    route = h.stack.routes.lookup(ip("2001:db8:99::1"))
    assert route is not None and route.gateway == ip("fe80::2") and route.prefix_len == 0


def test_malformed_frames_are_counted_not_raised() -> None:
    h = Harness()
    bad_checksum = bytearray(bytes(ETH_IN / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP()))
    bad_checksum[14 + 10] ^= 0xFF
    cases = [b"", b"\x00" * 5, bytes(bad_checksum),
             bytes(ETH_IN / IP(src="10.0.0.2", dst="10.0.0.1", ihl=3) / ICMP()),
             bytes(ETH_IN)[:14] + b"\x45\x00\xff\xff" + b"\x00" * 16]
    for frame in cases:
        h.stack.receive_frame(h.iface, frame)
    drops = h.stack.counters.drops()
    assert sum(drops.values()) == len(cases)
    assert h.stack.counters["ipv4.drop.bad_checksum"] == 1
