"""Fuzz targets for every parser in stack/wire, and one for whole frames into a HostStack.

A header target's input is one mode byte and the header bytes. The mode
says whether the checksum is ignored, verified as it came, or first fixed
up and then verified (so that the fuzzer reaches what lies behind a valid
checksum), and whether the parser is in `partial` mode (IP headers quoted
in ICMP errors). Each target asserts the wire conventions (stack/wire's
docstring): parsing never raises; it returns a view or a `WireError`; every
field and property of what it returned can be read; and what the parser
accepted, the builder writes back into bytes that parse to the same values
(parse ∘ build ∘ parse is parse).

The `frame` target feeds Ethernet frames (several per input, with time
between them) into a HostStack that speaks every protocol vnet has (ARP,
IPv4/IPv6 with fragments and extension headers, ICMP, IGMP, MLD, NDP, UDP,
TCP with a listener and an established connection, forwarding between two
interfaces) and asserts that nothing raises and that every frame the stack
sends in answer is well-formed (it parses, with valid checksums).

Touches: only the objects each input builds.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from types import GetSetDescriptorType
from typing import Any

from stack.driver import ManualDriver
from stack.host import HostStack
from stack.ping import IcmpEchoLayer
from stack.tcp import TcpLayer
from stack.udp import UdpLayer
from stack.wire import arp, ethernet, icmpv4, icmpv6, igmp, ipv4, ipv6, mld, ndp, tcp, udp
from stack.wire.checksum import ones_sum, pseudo_header_v4, pseudo_header_v6
from stack.wire.errors import WireError

SRC4, DST4 = bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1])
SRC6 = ipaddress.IPv6Address("fe80::2").packed
DST6 = ipaddress.IPv6Address("ff02::1").packed
MODE_VERIFY, MODE_FIX, MODE_PARTIAL = 1, 2, 4
_U16 = struct.Struct("!H")


def _touch(value: Any, depth: int = 0) -> None:
    """Read every public field and property (what a caller of the parser may read)."""
    if depth > 4 or value is None or isinstance(value, (int, bool, str, bytes, WireError)):
        return
    if isinstance(value, memoryview):
        bytes(value)
        return
    if isinstance(value, (tuple, list)):
        for item in value:
            _touch(item, depth + 1)
        return
    for name in public_fields(type(value)):
        _touch(getattr(value, name), depth + 1)
    repr(value)


def public_fields(cls: type) -> list[str]:
    """The public fields and properties of `cls`, on either build: a class compiled by
    mypyc (vnet/compile_stack.py) has no ``__slots__``, its attributes are in
    ``__mypyc_attrs__``."""
    names = [f.name for f in fields(cls)] if is_dataclass(cls) else []
    for klass in cls.__mro__:
        for attrs in (getattr(klass, "__slots__", ()), getattr(klass, "__mypyc_attrs__", ())):
            names += [n for n in ((attrs,) if isinstance(attrs, str) else attrs)
                      if not n.startswith("_") and n not in names]
        names += [n for n, v in vars(klass).items()
                  if isinstance(v, (property, GetSetDescriptorType))  # compiled: the latter
                  and not n.startswith("_") and n not in names]
    return names


def _fix_checksum(buf: bytearray, offset: int, pseudo: int = 0, end: int | None = None) -> None:
    """Make the 16-bit checksum at `offset` valid over buf[:end] (plus a pseudo-header)."""
    if len(buf) < offset + 2:
        return
    buf[offset:offset + 2] = b"\0\0"
    csum = 0xFFFF - ones_sum(memoryview(buf)[:end], pseudo)
    _U16.pack_into(buf, offset, csum)


def _split(data: bytes) -> tuple[int, bytearray]:
    return (data[0], bytearray(data[1:])) if data else (0, bytearray())


def _prepare(data: bytes, checksum_at: int | None, pseudo: Callable[[int], int] | None = None,
             ) -> tuple[int, bytearray, bool]:
    mode, buf = _split(data)
    if mode & MODE_FIX and checksum_at is not None:
        _fix_checksum(buf, checksum_at, pseudo(len(buf)) if pseudo else 0)
    return mode, buf, bool(mode & (MODE_VERIFY | MODE_FIX))


def _same(first: Any, second: Any, what: str) -> None:
    assert first == second, f"{what}: parse(build(parse(x))) != parse(x): {first!r} != {second!r}"


# --- one target per header ------------------------------------------------------------------
def ethernet_target(data: bytes) -> None:
    frame = ethernet.EthernetFrame.parse(data)
    if isinstance(frame, WireError):
        return
    _touch(frame)
    again = ethernet.EthernetFrame.parse(frame.to_repr().build(frame.payload))
    assert not isinstance(again, WireError), again
    _same(again.to_repr(), frame.to_repr(), "ethernet")
    _same(bytes(again.payload), bytes(frame.payload), "ethernet payload")


def arp_target(data: bytes) -> None:
    packet = arp.ArpPacket.parse(data)
    if isinstance(packet, WireError):
        return
    _touch(packet)
    again = arp.ArpPacket.parse(packet.to_repr().build())
    assert not isinstance(again, WireError), again
    _same(again.to_repr(), packet.to_repr(), "arp")


def ipv4_target(data: bytes) -> None:
    mode, buf = _split(data)
    if mode & MODE_FIX and len(buf) >= 20:
        _fix_checksum(buf, 10, 0, max(20, (buf[0] & 0x0F) * 4))
    verify = bool(mode & (MODE_VERIFY | MODE_FIX))
    partial = bool(mode & MODE_PARTIAL)
    packet = ipv4.Ipv4Packet.parse(buf, verify_checksum=verify, partial=partial)
    if isinstance(packet, WireError):
        return
    _touch(packet)
    for kind, value in ipv4.iter_options(packet.options):
        assert 0 <= kind <= 0xFF
        bytes(value)
    if partial:
        return
    again = ipv4.Ipv4Packet.parse(packet.to_repr().build(packet.payload))
    assert not isinstance(again, WireError), again
    _same(again.to_repr(), packet.to_repr(), "ipv4")
    _same(bytes(again.payload), bytes(packet.payload), "ipv4 payload")


def ipv6_target(data: bytes) -> None:
    mode, buf = _split(data)
    partial = bool(mode & MODE_PARTIAL)
    packet = ipv6.Ipv6Packet.parse(buf, partial=partial)
    if isinstance(packet, WireError):
        return
    _touch(packet)
    for header in (packet.hop_by_hop, *packet.dest_options):
        if header is not None:
            for kind, value in ipv6.iter_options(header.options):
                assert 0 <= kind <= 0xFF
                bytes(value)
    if partial:
        return
    body = bytes(packet.buf[ipv6.HEADER_LEN:ipv6.HEADER_LEN + packet.payload_len])
    again = ipv6.Ipv6Packet.parse(packet.to_repr().build(body))
    assert not isinstance(again, WireError), again
    _same(again.to_repr(), packet.to_repr(), "ipv6")
    _same((again.upper_protocol, again.upper_offset, bytes(again.upper_payload)),
          (packet.upper_protocol, packet.upper_offset, bytes(packet.upper_payload)),
          "ipv6 upper layer")


def icmpv4_target(data: bytes) -> None:
    _mode, buf, verify = _prepare(data, 2)
    packet = icmpv4.Icmpv4Packet.parse(buf, verify_checksum=verify)
    if isinstance(packet, WireError):
        return
    _touch(packet)
    again = icmpv4.Icmpv4Packet.parse(packet.to_repr().build(packet.data))
    assert not isinstance(again, WireError), again
    _same(again.to_repr(), packet.to_repr(), "icmpv4")


def _icmpv6_pseudo(length: int) -> int:
    return pseudo_header_v6(SRC6, DST6, 58, length)


def icmpv6_target(data: bytes) -> None:
    """ICMPv6 and what rides in it: NDP and MLD."""
    _mode, buf, verify = _prepare(data, 2, _icmpv6_pseudo)
    packet = icmpv6.Icmpv6Packet.parse(buf, SRC6, DST6, verify_checksum=verify)
    if isinstance(packet, WireError):
        return
    _touch(packet)
    again = icmpv6.Icmpv6Packet.parse(packet.to_repr().build(packet.buf[8:], SRC6, DST6),
                                      SRC6, DST6)
    assert not isinstance(again, WireError), again
    _same(again.to_repr(), packet.to_repr(), "icmpv6")
    for module in (ndp, mld):
        message: Any = module.parse(packet)
        if isinstance(message, WireError) or message is None:
            continue
        _touch(message)
        rebuilt = icmpv6.Icmpv6Packet.parse(message.build(SRC6, DST6), SRC6, DST6)
        assert not isinstance(rebuilt, WireError), rebuilt
        _same(module.parse(rebuilt), message, module.__name__)


def igmp_target(data: bytes) -> None:
    _mode, buf, verify = _prepare(data, 2)
    message = igmp.parse(buf, verify_checksum=verify)
    if isinstance(message, WireError):
        return
    _touch(message)
    _same(igmp.parse(message.build()), message, "igmp")


def _tcp_pseudo(length: int) -> int:
    return pseudo_header_v4(SRC4, DST4, 6, length)


def tcp_target(data: bytes) -> None:
    _mode, buf, verify = _prepare(data, 16, _tcp_pseudo)
    segment = tcp.TcpPacket.parse(buf, SRC4, DST4, verify_checksum=verify)
    if isinstance(segment, WireError):
        return
    _touch(segment)
    assert 20 <= segment.data_offset <= len(buf)
    again = tcp.TcpPacket.parse(segment.to_repr().build(segment.payload, SRC4, DST4), SRC4, DST4)
    assert not isinstance(again, WireError), again
    _same(again.to_repr(), segment.to_repr(), "tcp")
    _same(bytes(again.payload), bytes(segment.payload), "tcp payload")


def _udp_pseudo(length: int) -> int:
    return pseudo_header_v4(SRC4, DST4, 17, length)


def udp_target(data: bytes) -> None:
    _mode, buf, verify = _prepare(data, 6, _udp_pseudo)
    datagram = udp.UdpPacket.parse(buf, SRC4, DST4, verify_checksum=verify)
    if isinstance(datagram, WireError):
        return
    _touch(datagram)
    again = udp.UdpPacket.parse(datagram.to_repr().build(datagram.payload, SRC4, DST4),
                                SRC4, DST4)
    assert not isinstance(again, WireError), again
    _same(again.to_repr(), datagram.to_repr(), "udp")
    _same(bytes(again.payload), bytes(datagram.payload), "udp payload")


# --- whole frames into a HostStack ------------------------------------------------------------
OUR_MAC, PEER_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
OTHER_MAC = bytes.fromhex("020000000003")
OUR_ADDRESSES = {ipaddress.ip_address(a).packed for a in ("10.0.0.1", "10.1.0.1", "fd00::1",
                                                          "fd01::1", "127.0.0.1", "::1")}


class FrameLab:
    """A HostStack with every layer, two interfaces, sockets of each kind, and a peer."""

    def __init__(self) -> None:
        self.driver = ManualDriver()
        self.stack = HostStack(self.driver, "fuzz", rng=random.Random(1), forwarding=True)
        stack = self.stack
        self.udp = UdpLayer(stack)
        stack.transports[17] = self.udp
        self.tcp = TcpLayer(stack)
        stack.transports[6] = self.tcp
        self.icmp = IcmpEchoLayer(stack)
        self.sent: list[bytes] = []
        self.iface = stack.add_interface("eth0", OUR_MAC)
        self.iface.transmit = self.sent.append
        self.iface1 = stack.add_interface("eth1", OTHER_MAC)
        self.iface1.transmit = self.sent.append
        stack.add_address("eth0", "10.0.0.1/24")
        stack.add_address("eth0", "fd00::1/64")
        stack.add_address("eth1", "10.1.0.1/24")
        stack.add_address("eth1", "fd01::1/64")
        stack.arp[self.iface.index].add_static(SRC4, PEER_MAC)
        stack.ndp[self.iface.index].add_static(ipaddress.IPv6Address("fd00::2").packed, PEER_MAC)
        for family, addr in ((2, bytes(4)), (10, bytes(16))):
            sock = self.udp.socket(family)
            sock.v6only = family == 10
            sock.bind(addr, 5000)
            listener = self.tcp.socket(family)
            if family == 10:
                listener.v6only = True
            listener.bind(addr, 80)
            listener.listen(8)
        self.client = self.tcp.socket(2)
        self.client.bind(DST4, 7001)
        self.client.connect(SRC4, 7000)  # its SYN-SENT connection takes fuzzed answers
        self.sent.clear()


def _fix_frame(frame: bytearray) -> None:
    """Valid IPv4 header and transport checksums for an untagged frame (as far as it goes)."""
    if len(frame) < 14 + 20:
        return
    ethertype = _U16.unpack_from(frame, 12)[0]
    if ethertype == 0x0800:
        ihl = (frame[14] & 0x0F) * 4
        if ihl < 20 or len(frame) < 14 + ihl:
            return
        total = min(_U16.unpack_from(frame, 16)[0], len(frame) - 14)
        frame[24:26] = b"\0\0"
        _U16.pack_into(frame, 24, 0xFFFF - ones_sum(memoryview(frame)[14:14 + ihl]))
        proto, src, dst = frame[23], bytes(frame[26:30]), bytes(frame[30:34])
        l4 = 14 + ihl
        if total <= ihl or frame[20] & 0x3F or frame[21]:  # fragments keep their checksum
            return
        segment = bytearray(frame[l4:14 + total])
        where = {6: 16, 17: 6, 1: 2, 2: 2}.get(proto)
        if where is None:
            return
        pseudo = pseudo_header_v4(src, dst, proto, len(segment)) if proto in (6, 17) else 0
        _fix_checksum(segment, where, pseudo)
        frame[l4:14 + total] = segment
    elif ethertype == 0x86DD and len(frame) >= 14 + 40:
        nh, src, dst = frame[20], bytes(frame[22:38]), bytes(frame[38:54])
        plen = min(_U16.unpack_from(frame, 18)[0], len(frame) - 54)
        where = {6: 16, 17: 6, 58: 2}.get(nh)
        if where is None:
            return
        segment = bytearray(frame[54:54 + plen])
        _fix_checksum(segment, where, pseudo_header_v6(src, dst, nh, len(segment)))
        frame[54:54 + plen] = segment


def _check_sent(frame: bytes) -> None:
    """A frame the stack sent parses, with valid checksums, at every layer vnet speaks."""
    eth = ethernet.EthernetFrame.parse(frame)
    assert not isinstance(eth, WireError), f"the stack sent a bad Ethernet frame: {eth}"
    if eth.ethertype == ethernet.ETHERTYPE_ARP:
        assert not isinstance(arp.ArpPacket.parse(eth.payload), WireError)
        return
    if eth.ethertype == ethernet.ETHERTYPE_IPV4:
        packet = ipv4.Ipv4Packet.parse(eth.payload)
        assert not isinstance(packet, WireError), f"the stack sent a bad IPv4 packet: {packet}"
        if packet.more_frags or packet.frag_offset:
            return
        proto, src, dst, body = packet.protocol, packet.src, packet.dst, packet.payload
    elif eth.ethertype == ethernet.ETHERTYPE_IPV6:
        packet6 = ipv6.Ipv6Packet.parse(eth.payload)
        assert not isinstance(packet6, WireError), f"the stack sent a bad IPv6 packet: {packet6}"
        if packet6.fragment is not None:
            return
        proto, src, dst = packet6.upper_protocol, packet6.src, packet6.dst
        body = packet6.upper_payload
    else:
        raise AssertionError(f"the stack sent ethertype {eth.ethertype:#x}")
    if not (src in OUR_ADDRESSES or src[:2] == b"\xfe\x80"):
        return  # forwarded: a router passes the transport layer on unread, as Linux does
    if proto == 6:
        parsed: Any = tcp.TcpPacket.parse(body, src, dst)
    elif proto == 17:
        parsed = udp.UdpPacket.parse(body, src, dst)
    elif proto == 1:
        parsed = icmpv4.Icmpv4Packet.parse(body)
    elif proto == 58:
        parsed = icmpv6.Icmpv6Packet.parse(body, src, dst)
    elif proto == 2:
        parsed = igmp.parse(body)
    else:
        return
    assert not isinstance(parsed, WireError), f"the stack sent bad protocol {proto}: {parsed}"


def frame_target(data: bytes) -> None:
    """Input: records of [flags, time step, length hi, length lo, frame bytes...]. flags bit 0:
    fix the frame's checksums; bit 1: arrive on eth1; the time step is in 2^k ms."""
    lab = FrameLab()
    pos = 0
    while pos + 4 <= len(data):
        flags, step, length = data[pos], data[pos + 1], _U16.unpack_from(data, pos + 2)[0]
        frame = bytearray(data[pos + 4:pos + 4 + length])
        pos += 4 + length
        if flags & 1:
            _fix_frame(frame)
        lab.stack.receive_frame(lab.iface1 if flags & 2 else lab.iface, bytes(frame))
        if step:
            lab.driver.advance((1 << min(step & 0x1F, 26)) * 1_000_000)
        for sent in lab.sent:
            _check_sent(sent)
        lab.sent.clear()
    lab.driver.advance(120 * 1_000_000_000)  # reassembly, neighbour and report timers
    for sent in lab.sent:
        _check_sent(sent)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "ethernet": ethernet_target,
    "arp": arp_target,
    "ipv4": ipv4_target,
    "ipv6": ipv6_target,
    "icmpv4": icmpv4_target,
    "icmpv6": icmpv6_target,
    "igmp": igmp_target,
    "tcp": tcp_target,
    "udp": udp_target,
    "frame": frame_target,
}


def _seed_frames() -> list[bytes]:
    """Valid frames of each protocol (built with stack.wire's builders)."""
    eth = ethernet.EthernetRepr(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4)
    eth6 = ethernet.EthernetRepr(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV6)
    src6, dst6 = ipaddress.IPv6Address("fd00::2").packed, ipaddress.IPv6Address("fd00::1").packed

    def v4(proto: int, body: bytes, **kw: Any) -> bytes:
        return eth.build(ipv4.Ipv4Repr(SRC4, DST4, proto, **kw).build(body))

    def v6(nh: int, body: bytes, hop_limit: int = 64) -> bytes:
        return eth6.build(ipv6.Ipv6Repr(src6, dst6, nh, hop_limit).build(body))

    syn = tcp.TcpRepr(49152, 80, 1000, 0, tcp.SYN, 65535, 0,
                      tcp.TcpOptions(mss=1460, wscale=7, sack_permitted=True,
                                     timestamp=(1, 0)))
    synack = tcp.TcpRepr(7000, 7001, 5000, 0, tcp.SYN | tcp.ACK, 65535, 0,
                         tcp.TcpOptions(mss=1460))
    return [
        ethernet.EthernetRepr(b"\xff" * 6, PEER_MAC, ethernet.ETHERTYPE_ARP).build(
            arp.ArpRepr.request(PEER_MAC, SRC4, DST4).build()),
        v4(1, icmpv4.Icmpv4Repr.echo_request(1, 1).build(b"ping")),
        v4(17, udp.UdpRepr(1234, 5000).build(b"hello", SRC4, DST4)),
        v4(6, syn.build(b"", SRC4, DST4)),
        v4(6, synack.build(b"", SRC4, DST4)),
        v4(17, b"\x04\xd2\x13\x88\x00\x20\x00\x00" + b"f" * 16, more_frags=True, ident=7),
        v4(2, igmp.IgmpV2Query(100, bytes(4)).build(), options=ipv4.router_alert_option()),
        v6(58, icmpv6.Icmpv6Repr.echo_request(1, 1).build(b"ping6", src6, dst6)),
        v6(17, udp.UdpRepr(1234, 5000).build(b"hello6", src6, dst6)),
        v6(58, ndp.NeighborSolicit(dst6, ndp.NdpOptions(source_lladdr=PEER_MAC)).build(src6, dst6),
           hop_limit=255),
    ]


def _records(frames: list[bytes]) -> bytes:
    return b"".join(bytes([1, 3]) + _U16.pack(len(f)) + f for f in frames)


def _seeds() -> dict[str, list[bytes]]:
    frames = _seed_frames()
    seeds: dict[str, list[bytes]] = {name: [] for name in TARGETS}
    for frame in frames:
        eth = ethernet.EthernetFrame.parse(frame)
        assert not isinstance(eth, WireError)
        seeds["ethernet"].append(frame)
        body = bytes(eth.payload)
        if eth.ethertype == ethernet.ETHERTYPE_ARP:
            seeds["arp"].append(body)
            continue
        if eth.ethertype == ethernet.ETHERTYPE_IPV4:
            seeds["ipv4"] += [b"\x01" + body, b"\x04" + body[:24]]
            packet = ipv4.Ipv4Packet.parse(body)
            assert not isinstance(packet, WireError)
            if packet.more_frags or packet.frag_offset:
                continue  # a fragment's payload is not a whole datagram
            upper = bytes(packet.payload)
            name = {1: "icmpv4", 2: "igmp", 6: "tcp", 17: "udp"}[packet.protocol]
        else:
            seeds["ipv6"] += [b"\x00" + body, b"\x04" + body[:48]]
            packet6 = ipv6.Ipv6Packet.parse(body)
            assert not isinstance(packet6, WireError)
            upper = bytes(packet6.upper_payload)
            name = {58: "icmpv6", 17: "udp"}[packet6.upper_protocol]
        seeds[name].append(b"\x02" + upper)
    seeds["frame"] = [_records(frames), _records(frames[3:5])]
    return seeds


SEEDS = _seeds()
