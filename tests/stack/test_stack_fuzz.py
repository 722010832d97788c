"""Hostile frames into a whole HostStack: counted drops, never an exception.

Arbitrary bytes and mutations of valid frames (every protocol the stack
speaks) go through `receive_frame`. The run is bounded for the normal suite;
VNET_FUZZ=long raises the example count (see tests/wire/conftest.py).
"""

from __future__ import annotations

import os
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.igmpv3 import IGMPv3, IGMPv3mq
from scapy.layers.inet import ICMP, IP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6MLQuery2,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from tests.stack.harness import OUR_MAC_S, PEER_MAC_S, Harness

EXAMPLES = 20000 if os.environ.get("VNET_FUZZ") == "long" else 300
ETH = Ether(src=PEER_MAC_S, dst=OUR_MAC_S)

SEEDS = [
    bytes(Ether(src=PEER_MAC_S, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.0.2", pdst="10.0.0.1")),
    bytes(ETH / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP() / Raw(b"abcd")),
    bytes(ETH / IP(src="10.0.0.2", dst="10.0.0.1", flags="MF", frag=0) / UDP(dport=9)
          / Raw(b"x" * 40)),
    bytes(ETH / IP(src="10.0.0.2", dst="10.0.0.1", frag=3) / Raw(b"y" * 40)),
    bytes(ETH / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=1, dport=5000) / Raw(b"data")),
    bytes(ETH / IP(src="10.0.0.2", dst="224.0.0.1", options=[IPOption_Router_Alert()])
          / IGMPv3(type=0x11) / IGMPv3mq()),
    bytes(ETH / IPv6(src="fd00::2", dst="fd00::1") / ICMPv6EchoRequest(data=b"q")),
    bytes(ETH / IPv6(src="fd00::2", dst="ff02::1:ff00:1", hlim=255) / ICMPv6ND_NS(tgt="fd00::1")
          / ICMPv6NDOptSrcLLAddr(lladdr=PEER_MAC_S)),
    bytes(ETH / IPv6(src="fe80::2", dst="ff02::1", hlim=255) / ICMPv6ND_RA()
          / ICMPv6NDOptPrefixInfo(prefix="2001:db8::", prefixlen=64)),
    bytes(ETH / IPv6(src="fe80::2", dst="ff02::1", hlim=1) / IPv6ExtHdrHopByHop()
          / ICMPv6MLQuery2()),
    bytes(ETH / IPv6(src="fd00::2", dst="fd00::1") / IPv6ExtHdrFragment(m=1, id=3)
          / UDP(dport=5000) / Raw(b"z" * 64)),
    bytes(ETH / IPv6(src="fd00::2", dst="fd00::1") / UDP(sport=1, dport=5000) / Raw(b"v6")),
]


def _harness() -> Harness:
    h = Harness(forwarding=True)
    h.learn_peer()
    for family, addr in ((socket.AF_INET, bytes(4)), (socket.AF_INET6, bytes(16))):
        s = h.udp.socket(family)
        s.v6only = family == socket.AF_INET6  # else :: would conflict with 0.0.0.0 (as Linux)
        s.bind(addr, 5000)
    return h


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(st.integers(0, 3))
        if choice == 0 and frame:
            i = draw(st.integers(0, len(frame) - 1))
            frame[i] = draw(st.integers(0, 255))
        elif choice == 1:
            frame = frame[: draw(st.integers(0, len(frame)))]
        elif choice == 2:
            frame += draw(st.binary(max_size=64))
        elif frame:
            i = draw(st.integers(0, len(frame) - 1))
            frame[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(frame)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(frames=st.lists(st.one_of(mutated(), st.binary(max_size=200)), min_size=1, max_size=8),
       advance=st.integers(0, 70_000_000_000))
def test_hostile_frames_never_raise(frames: list[bytes], advance: int) -> None:
    h = _harness()
    for frame in frames:
        h.stack.receive_frame(h.iface, frame)
    h.driver.advance(advance)  # timers (reassembly, neighbors, reports) on what arrived
    h.frames.clear()


def test_valid_seeds_are_accepted_not_dropped() -> None:
    """The corpus really exercises the parsers: unmodified seeds are not counted as drops."""
    h = _harness()
    for frame in SEEDS:
        h.stack.receive_frame(h.iface, frame)
    drops = h.stack.counters.drops()
    assert not {k: v for k, v in drops.items() if "ratelimit" not in k}, drops
