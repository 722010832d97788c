"""The per-flow fast paths follow every change, as the general path would.

A UDP socket's flow (`stack.udp.UdpFlow`), a route's cached last hop
(`stack.neighbor.LinkPath` on `OutputRoute.link`) and the host's kept
`route_output` answers let a datagram go from `sendto` to the link without
routing, neighbour lookup or framing again. Each test here establishes a flow
(so later datagrams take the fast path), changes one thing the flow depends on
-- the neighbour's MAC, its reachability, a firewall hook, a path MTU report,
a route, the link -- and checks that the next datagram on the wire (read back
by scapy) is what the stack without the caches sends. A HostStack on a
ManualDriver (tests/stack/harness.py) whose interface offloads.
"""

from __future__ import annotations

import errno
import socket

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPerror
from scapy.layers.l2 import ARP, Ether
from scapy.packet import raw

from stack.hooks import DROP, Hook, Verdict
from stack.ip import IpMeta
from stack.wire.gso import GsoFrame

from .harness import OUR_MAC_S, Harness, _is_membership_report

PEER = bytes((10, 0, 0, 2))
OTHER_MAC_S = "02:00:00:00:00:99"
ARP_NS_REACHABLE = 30_000_000_000  # NeighborTimers.reachable_ns
ARP_NS_DELAY = 5_000_000_000  # NeighborTimers.delay_ns


def wire(h: Harness) -> list[Ether]:
    """Frames sent since last asked, super-frames as the real frames they stand for
    (MLD membership reports left out: their timers are not what these tests are about)."""
    out: list[Ether] = []
    for frame in h.frames:
        for w in frame.materialise() if isinstance(frame, GsoFrame) else [frame]:
            if not _is_membership_report(Ether(w)):
                out.append(Ether(w))
    h.frames.clear()
    return out


def arp_reply(mac: str) -> bytes:
    return raw(Ether(src=mac, dst=OUR_MAC_S)
               / ARP(op=2, hwsrc=mac, psrc="10.0.0.2", hwdst=OUR_MAC_S, pdst="10.0.0.1"))


def resolved_flow(h: Harness, peer_mac: str = "02:00:00:00:00:02") -> socket.socket:
    """A socket that sent to PEER after ARP resolved it (REACHABLE), and twice more."""
    h.iface.offload = True
    sock = h.udp.socket(socket.AF_INET)
    sock.bind(b"\x00" * 4, 0)
    sock.sendto(b"first", PEER, 7)  # queued behind the ARP request
    (request,) = wire(h)
    assert ARP in request and request[ARP].op == 1
    h.inject(arp_reply(peer_mac))
    sock.sendto(b"second", PEER, 7)
    sock.sendto(b"third", PEER, 7)
    sent = wire(h)
    assert [raw(f[UDP].payload) for f in sent] == [b"first", b"second", b"third"]
    assert {f.dst for f in sent} == {peer_mac}
    return sock  # type: ignore[return-value]


def test_datagrams_on_the_fast_path_are_the_general_paths_frames() -> None:
    h = Harness()
    sock = resolved_flow(h)
    assert sock.flow is not None and sock.flow.offload
    assert sock.flow.rt.link is not None  # the last hop is cached: the fast path runs
    tx_frames, tx_bytes = h.iface.counters.tx_frames, h.iface.counters.tx_bytes
    ids = []
    for n in range(4):
        sock.sendto(bytes([n]) * 20, PEER, 7)
        (frame,) = h.frames
        assert isinstance(frame, GsoFrame) and frame.csum_partial
        (f,) = wire(h)
        check = f.copy()
        del check[IP].chksum, check[UDP].chksum
        assert raw(Ether(raw(check))) == raw(f)  # every checksum right once materialised
        assert f[IP].flags == "DF" and f[IP].ttl == 64 and f[UDP].dport == 7
        ids.append(f[IP].id)
    assert ids == [(ids[0] + n) & 0xFFFF for n in range(4)]  # one IP ID sequence
    assert h.stack.counters["udp.out"] == 7 and h.stack.counters["ipv4.out"] == 7
    assert h.iface.counters.tx_frames == tx_frames + 4
    assert h.iface.counters.tx_bytes == tx_bytes + 4 * (14 + 20 + 8 + 20)


def test_a_neighbour_that_changes_its_mac_gets_the_next_datagram() -> None:
    h = Harness()
    sock = resolved_flow(h)
    h.inject(arp_reply(OTHER_MAC_S))  # the peer moved to another NIC
    sock.sendto(b"after", PEER, 7)
    (f,) = wire(h)
    assert f.dst == OTHER_MAC_S and raw(f[UDP].payload) == b"after"


def test_a_stale_neighbour_is_checked_by_nud_as_without_the_cache() -> None:
    h = Harness()
    sock = resolved_flow(h)
    h.driver.advance(ARP_NS_REACHABLE + 1)  # REACHABLE -> STALE
    assert not wire(h)
    sock.sendto(b"stale", PEER, 7)  # goes out at once, and starts NUD (DELAY)
    (f,) = wire(h)
    assert raw(f[UDP].payload) == b"stale"
    h.driver.advance(ARP_NS_DELAY + 1)  # DELAY -> PROBE: a unicast ARP request
    (probe,) = wire(h)
    assert ARP in probe and probe[ARP].op == 1 and probe.dst == "02:00:00:00:00:02"
    sock.sendto(b"probing", PEER, 7)  # still sent while probing
    assert [raw(f[UDP].payload) for f in wire(h)] == [b"probing"]
    for _ in range(3):  # unanswered: the entry is dropped after its probes
        h.driver.advance(1_000_000_001)
    wire(h)
    sock.sendto(b"unresolved", PEER, 7)  # resolution starts over: a broadcast request
    (request,) = wire(h)
    assert ARP in request and request.dst == "ff:ff:ff:ff:ff:ff"


def test_a_firewall_hook_registered_after_the_flow_sees_the_next_datagram() -> None:
    h = Harness()
    sock = resolved_flow(h)
    seen: list[IpMeta] = []

    def refuse(hook: Hook, meta: IpMeta, packet: object) -> Verdict:
        seen.append(meta)
        return DROP

    h.stack.hooks.register(Hook.OUTPUT, refuse)
    with pytest.raises(PermissionError) as raised:
        sock.sendto(b"refused", PEER, 7)
    assert raised.value.errno == errno.EPERM and len(seen) == 1 and not h.frames
    h.stack.hooks.unregister(Hook.OUTPUT, refuse)
    sock.sendto(b"allowed", PEER, 7)
    (frame,) = h.frames
    assert isinstance(frame, GsoFrame)
    assert [raw(f[UDP].payload) for f in wire(h)] == [b"allowed"]


def test_a_path_mtu_report_after_the_flow_fragments_the_next_datagram() -> None:
    h = Harness()
    sock = resolved_flow(h)
    sock.sendto(b"x" * 1400, PEER, 7)
    (big,) = wire(h)
    assert big[IP].flags == "DF" and len(big[IP]) == 1428
    h.inject(Ether(src="02:00:00:00:00:02", dst=OUR_MAC_S)
             / IP(src="10.0.0.2", dst="10.0.0.1")
             / ICMP(type=3, code=4, nexthopmtu=1000) / IPerror(raw(big[IP])[:28]))
    sock.sendto(b"y" * 1400, PEER, 7)
    pieces = wire(h)
    assert len(pieces) == 2 and all(not f[IP].flags.DF for f in pieces)
    assert max(len(f[IP]) for f in pieces) <= 1000
    sock.sendto(b"z" * 900, PEER, 7)  # fits the path MTU: DF again, one frame
    (small,) = wire(h)
    assert small[IP].flags == "DF" and raw(small[UDP].payload) == b"z" * 900


def test_a_new_more_specific_route_takes_the_next_datagram_and_connection() -> None:
    h = Harness()
    sock = resolved_flow(h)
    far = bytes((10, 9, 0, 1))
    h.stack.add_route("10.9.0.0/16", gateway="10.0.0.2")
    first = h.stack.route_output(far)
    assert h.stack.route_output(far) is first  # one answer, kept
    sock.sendto(b"via-peer", far, 7)
    (f,) = wire(h)
    assert f.dst == "02:00:00:00:00:02" and f[IP].dst == "10.9.0.1"
    eth1_frames: list[object] = []
    eth1 = h.stack.add_interface("eth1", bytes.fromhex("020000000011"))
    eth1.transmit = eth1_frames.append
    eth1.offload = True
    h.stack.add_address("eth1", "10.1.0.1/24")
    h.stack.arp[eth1.index].add_static(bytes((10, 1, 0, 2)), bytes.fromhex("0200000000aa"))
    eth1_frames.clear()
    h.stack.add_route("10.9.0.0/24", gateway="10.1.0.2")
    second = h.stack.route_output(far)
    assert second is not first and second.iface is eth1 and second.src == bytes((10, 1, 0, 1))
    sock.sendto(b"via-eth1", far, 7)
    assert not h.frames and len(eth1_frames) == 1
    (moved,) = [Ether(w) for x in eth1_frames for w in x.materialise()]  # type: ignore[attr-defined]
    assert moved.dst == "02:00:00:00:00:aa" and moved[IP].src == "10.1.0.1"


def test_a_link_rewired_given_a_new_mac_or_taken_down_is_seen_at_once() -> None:
    h = Harness()
    sock = resolved_flow(h)
    rewired: list[object] = []
    h.iface.transmit = rewired.append  # another NIC behind the interface
    sock.sendto(b"rewired", PEER, 7)
    assert not h.frames and len(rewired) == 1
    h.iface.transmit = h.frames.append
    held = h.stack.route_output(PEER)  # as a TCP connection holds its route
    datagram = raw(UDP(sport=9, dport=7, chksum=0) / b"held")
    h.stack.send_ipv4(held, 17, datagram, offload=True)
    h.stack.set_mac(h.iface, bytes.fromhex("020000000077"))  # `ip link set eth0 address`
    sock.sendto(b"new-mac", PEER, 7)
    h.stack.send_ipv4(held, 17, datagram, offload=True)
    before, after, held_after = wire(h)
    assert before.src == OUR_MAC_S and raw(before[UDP].payload) == b"held"
    assert after.src == "02:00:00:00:00:77" and raw(after[UDP].payload) == b"new-mac"
    assert held_after.src == "02:00:00:00:00:77" and raw(held_after[UDP].payload) == b"held"
    h.stack.set_link_up(h.iface, False)
    with pytest.raises(OSError) as raised:
        sock.sendto(b"down", PEER, 7)
    assert raised.value.errno == errno.ENETUNREACH and not h.frames


def test_a_super_frame_another_vnet_stack_built_is_received_with_the_same_counts() -> None:
    sender, receiver = Harness(), Harness(addresses=("10.0.0.2/24",))
    receiver.stack.set_mac(receiver.iface, bytes.fromhex("020000000002"))
    sock = resolved_flow(sender)
    listener = receiver.udp.socket(socket.AF_INET)
    listener.bind(b"\x00" * 4, 7)
    sock.sendto(b"built", PEER, 7)
    (frame,) = sender.frames
    assert isinstance(frame, GsoFrame) and frame.ipv4_fields is not None
    receiver.stack.receive_frame(receiver.iface, frame)
    assert listener.recvfrom(100)[:2] == (b"built", bytes((10, 0, 0, 1)))
    # the same bytes as a plain frame from an unknown source: parsed, counted alike
    receiver.stack.receive_frame(receiver.iface, frame.materialise()[0])
    assert listener.recvfrom(100)[0] == b"built"
    counters = receiver.stack.counters
    assert counters["ipv4.in"] == 2 and counters["udp.in"] == 2
    assert receiver.iface.counters.rx_frames == 2
    assert receiver.iface.counters.rx_bytes == 2 * len(frame.data)
    # a host with an INPUT hook takes it as the real frame, the hook sees valid bytes
    seen: list[bytes] = []

    def look(hook: Hook, meta: IpMeta, packet: object) -> Verdict:
        seen.append(bytes(packet))  # type: ignore[call-overload]
        return Verdict(True)

    receiver.stack.hooks.register(Hook.INPUT, look)
    receiver.stack.receive_frame(receiver.iface, frame)
    assert seen == [frame.materialise()[0][14:]]
    assert listener.recvfrom(100)[0] == b"built"


def test_an_ipv6_flow_follows_its_neighbours_advertisements() -> None:
    from scapy.layers.inet6 import (
        ICMPv6ND_NA,
        ICMPv6ND_NS,
        ICMPv6NDOptDstLLAddr,
        IPv6,
    )

    def advert(mac: str) -> bytes:
        return raw(Ether(src=mac, dst=OUR_MAC_S) / IPv6(src="fd00::2", dst="fd00::1", hlim=255)
                   / ICMPv6ND_NA(tgt="fd00::2", R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=mac))

    h = Harness()
    h.iface.offload = True
    peer6 = bytes.fromhex("fd000000000000000000000000000002")
    sock = h.udp.socket(socket.AF_INET6)
    sock.bind(bytes(16), 0)
    sock.sendto(b"first", peer6, 7)  # queued behind the neighbour solicitation
    (solicit,) = wire(h)
    assert ICMPv6ND_NS in solicit
    h.inject(advert("02:00:00:00:00:02"))
    for n in range(3):
        sock.sendto(bytes([n]) * 30, peer6, 7)
    sent = wire(h)
    assert [raw(f[UDP].payload) for f in sent] == [b"first"] + [bytes([n]) * 30 for n in range(3)]
    for f in sent:
        check = f.copy()
        del check[UDP].chksum
        assert raw(Ether(raw(check))) == raw(f) and f.dst == "02:00:00:00:00:02"
    assert sock.flow is not None and sock.flow.offload and sock.flow.rt.link is not None
    h.inject(advert(OTHER_MAC_S))  # an overriding advertisement: the peer moved
    sock.sendto(b"moved", peer6, 7)
    (f,) = wire(h)
    assert f.dst == OTHER_MAC_S and raw(f[UDP].payload) == b"moved" and IPv6 in f
