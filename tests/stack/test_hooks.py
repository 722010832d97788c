"""The netfilter hooks of `stack.hooks`: where each is called, and what a verdict does.

A hook function registered at a `HostStack`'s `hooks` sees the packets the
module docstring of `stack.hooks` promises (PREROUTING and INPUT for a packet
to this host, OUTPUT and POSTROUTING for one it sends, PREROUTING, FORWARD and
POSTROUTING for one a router passes on, OUTPUT and POSTROUTING for a Neighbor
Solicitation); a drop is counted and nothing goes on; a rewritten packet goes
on in the original's place, which is what NAT will build on. Frames are read
back with scapy.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import ICMPv6ND_NS, IPv6
from scapy.layers.l2 import Ether

from stack.hooks import ACCEPT, DROP, Hook, Verdict
from stack.ip import IpMeta
from stack.udp import AF_INET, AF_INET6
from tests.stack.harness import OUR_MAC_S, PEER_MAC, PEER_MAC_S, Harness


def _ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


class Recorder:
    """A hook function that notes (hook, protocol) of every packet and answers `verdict`."""

    def __init__(self, verdict: Verdict = ACCEPT) -> None:
        self.seen: list[tuple[Hook, int]] = []
        self.verdict = verdict

    def __call__(self, hook: Hook, meta: IpMeta, packet: Any) -> Verdict:
        proto = packet[9] if meta.version == 4 else packet[6]
        self.seen.append((hook, proto))
        return self.verdict


def _register_everywhere(h: Harness, function: Any) -> None:
    for hook in Hook:
        h.stack.hooks.register(hook, function)


def _udp_in(dport: int = 9000) -> Ether:
    return (Ether(src=PEER_MAC_S, dst=OUR_MAC_S) / IP(src="10.0.0.2", dst="10.0.0.1")
            / UDP(sport=5000, dport=dport) / b"hello")


def test_a_packet_for_this_host_passes_prerouting_then_input() -> None:
    h = Harness()
    rec = Recorder()
    _register_everywhere(h, rec)
    sock = h.udp.socket(AF_INET)
    sock.bind(_ip("10.0.0.1"), 9000)
    h.inject(_udp_in())
    assert rec.seen == [(Hook.PREROUTING, 17), (Hook.INPUT, 17)]
    assert sock.recvfrom(100)[0] == b"hello"


def test_a_packet_this_host_sends_passes_output_then_postrouting() -> None:
    h = Harness()
    h.learn_peer()
    rec = Recorder()
    _register_everywhere(h, rec)
    sock = h.udp.socket(AF_INET)
    sock.sendto(b"hi", _ip("10.0.0.2"), 7)
    assert rec.seen == [(Hook.OUTPUT, 17), (Hook.POSTROUTING, 17)]
    assert [bytes(f[UDP].payload) for f in h.sent()] == [b"hi"]


def test_a_forwarded_packet_passes_prerouting_forward_postrouting() -> None:
    h = Harness(forwarding=True)
    far: list[bytes] = []
    eth1 = h.stack.add_interface("eth1", bytes.fromhex("020000000011"))
    eth1.transmit = far.append
    h.stack.add_address("eth1", "10.1.0.1/24")
    h.stack.arp[eth1.index].add_static(_ip("10.1.0.2"), PEER_MAC)
    h.driver.advance(1)
    far.clear()
    rec = Recorder()
    _register_everywhere(h, rec)
    h.inject(Ether(src=PEER_MAC_S, dst=OUR_MAC_S) / IP(src="10.0.0.2", dst="10.1.0.2", ttl=5)
             / UDP(sport=5000, dport=9000) / b"through")
    assert rec.seen == [(Hook.PREROUTING, 17), (Hook.FORWARD, 17), (Hook.POSTROUTING, 17)]
    out = Ether(far[-1])
    assert out[IP].ttl == 4 and bytes(out[UDP].payload) == b"through"


def test_neighbor_solicitations_pass_output_and_postrouting() -> None:
    h = Harness()
    rec = Recorder()
    _register_everywhere(h, rec)
    sock = h.udp.socket(AF_INET6)
    sock.sendto(b"x", _ip("fd00::2"), 7)  # unresolved: the stack solicits
    ns = [f for f in h.sent() if ICMPv6ND_NS in f]
    assert ns and ns[0][IPv6].dst == "ff02::1:ff00:2"
    assert (Hook.OUTPUT, 58) in rec.seen and (Hook.POSTROUTING, 58) in rec.seen


def test_a_drop_at_prerouting_is_counted_and_delivers_nothing() -> None:
    h = Harness()
    h.stack.hooks.register(Hook.PREROUTING, Recorder(DROP))
    sock = h.udp.socket(AF_INET)
    sock.bind(_ip("10.0.0.1"), 9000)
    h.inject(_udp_in())
    assert h.stack.counters["ipv4.drop.firewall"] == 1
    assert h.sent() == []  # no ICMP port unreachable either
    with pytest.raises(BlockingIOError):
        sock.recvfrom(100)


def test_a_packet_rewritten_at_prerouting_goes_on_in_its_place() -> None:
    """Destination NAT's shape: the port is changed before the routing decision."""
    h = Harness()

    def redirect(hook: Hook, meta: IpMeta, packet: Any) -> Verdict:
        rewritten = IP(bytes(packet))
        rewritten[UDP].dport = 9001
        del rewritten[IP].chksum, rewritten[UDP].chksum
        return Verdict(True, bytes(rewritten))

    h.stack.hooks.register(Hook.PREROUTING, redirect)
    sock = h.udp.socket(AF_INET)
    sock.bind(_ip("10.0.0.1"), 9001)
    h.inject(_udp_in(dport=9000))
    data, addr, port, _ = sock.recvfrom(100)
    assert (data, addr, port) == (b"hello", _ip("10.0.0.2"), 5000)


def test_a_packet_rewritten_at_postrouting_leaves_rewritten() -> None:
    """Source NAT's shape: the source address is changed as the packet leaves."""
    h = Harness()
    h.learn_peer()

    def masquerade(hook: Hook, meta: IpMeta, packet: Any) -> Verdict:
        rewritten = IP(bytes(packet))
        rewritten[IP].src = "10.0.0.99"
        del rewritten[IP].chksum, rewritten[UDP].chksum
        return Verdict(True, bytes(rewritten))

    h.stack.hooks.register(Hook.POSTROUTING, masquerade)
    h.udp.socket(AF_INET).sendto(b"hi", _ip("10.0.0.2"), 7)
    (frame,) = h.sent()
    assert frame[IP].src == "10.0.0.99"
    recomputed = frame[IP].copy()
    del recomputed.chksum
    assert IP(bytes(recomputed)).chksum == frame[IP].chksum
    assert bytes(frame[UDP].payload) == b"hi"
