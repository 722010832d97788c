"""UDP over IPv4 and IPv6, both ways against scapy."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6

from stack.wire import WireError
from stack.wire.checksum import internet_checksum, pseudo_header_v4
from stack.wire.ip import PROTO_UDP, from_ipaddress
from stack.wire.ipv4 import Ipv4Packet, Ipv4Repr
from stack.wire.ipv6 import Ipv6Packet, Ipv6Repr
from stack.wire.udp import UdpPacket, UdpRepr, build_checksum_partial

FUZZ = settings.get_profile("vnet-wire")

V4_SRC, V4_DST = from_ipaddress("192.0.2.1"), from_ipaddress("192.0.2.2")
V6_SRC, V6_DST = from_ipaddress("2001:db8::1"), from_ipaddress("2001:db8::2")


def parse(data: bytes, src: bytes, dst: bytes, **kw: bool) -> UdpPacket:
    pkt = UdpPacket.parse(data, src, dst, **kw)
    assert isinstance(pkt, UdpPacket), pkt
    return pkt


def scapy_udp_checksum_ok(ip_packet: bytes, ip_class: type[IP] | type[IPv6]) -> bool:
    pkt = ip_class(ip_packet)
    sent = pkt[UDP].chksum
    del pkt[UDP].chksum
    return ip_class(bytes(pkt))[UDP].chksum == sent


def test_scapy_datagrams_parse_over_v4_and_v6() -> None:
    for ip, src, dst in (
        (IP(src="192.0.2.1", dst="192.0.2.2"), V4_SRC, V4_DST),
        (IPv6(src="2001:db8::1", dst="2001:db8::2"), V6_SRC, V6_DST),
    ):
        data = bytes(ip / UDP(sport=5353, dport=53) / b"query")
        hlen = 20 if src is V4_SRC else 40
        pkt = parse(data[hlen:], src, dst)
        assert (pkt.src_port, pkt.dst_port, pkt.length) == (5353, 53, 13)
        assert bytes(pkt.payload) == b"query"
        # the pseudo-header binds the addresses
        assert UdpPacket.parse(data[hlen:], src, src) is WireError.BAD_CHECKSUM


def test_our_datagrams_parse_in_scapy_with_valid_checksums() -> None:
    udp = UdpRepr(40000, 7).build(b"echo me", V4_SRC, V4_DST)
    data = Ipv4Repr(V4_SRC, V4_DST, PROTO_UDP).build(udp)
    pkt = IP(data)
    assert (pkt[UDP].sport, pkt[UDP].dport, pkt[UDP].len) == (40000, 7, 15)
    assert bytes(pkt[UDP].payload) == b"echo me"
    assert scapy_udp_checksum_ok(data, IP)
    udp = UdpRepr(40000, 7).build(b"echo me", V6_SRC, V6_DST)
    data = Ipv6Repr(V6_SRC, V6_DST, PROTO_UDP).build(udp)
    assert IPv6(data)[UDP].dport == 7
    assert scapy_udp_checksum_ok(data, IPv6)


def test_zero_checksum_means_none_over_ipv4_and_is_invalid_over_ipv6() -> None:
    data = UdpRepr(1, 2).build(b"no checksum", V4_SRC, V4_DST, checksum=False)
    assert data[6:8] == b"\x00\x00"
    assert parse(data, V4_SRC, V4_DST).checksum == 0
    assert IP(Ipv4Repr(V4_SRC, V4_DST, PROTO_UDP).build(data))[UDP].chksum == 0
    v6 = bytearray(UdpRepr(1, 2).build(b"x", V6_SRC, V6_DST))
    v6[6:8] = b"\x00\x00"
    assert UdpPacket.parse(bytes(v6), V6_SRC, V6_DST) is WireError.BAD_CHECKSUM
    # over IPv6 the builder ignores checksum=False: zero is not allowed there
    assert UdpRepr(1, 2).build(b"x", V6_SRC, V6_DST, checksum=False)[6:8] != b"\x00\x00"


def test_checksum_that_computes_to_zero_is_sent_as_ffff() -> None:
    # choose the last two payload bytes so the datagram's sum is 0xFFFF
    head = UdpRepr(1000, 2000).build(b"abcd\x00\x00", V4_SRC, V4_DST, checksum=False)
    pad = internet_checksum(head, pseudo_header_v4(V4_SRC, V4_DST, PROTO_UDP, len(head)))
    payload = b"abcd" + struct.pack("!H", pad)
    data = UdpRepr(1000, 2000).build(payload, V4_SRC, V4_DST)
    assert data[6:8] == b"\xff\xff"
    assert parse(data, V4_SRC, V4_DST).checksum == 0xFFFF
    assert scapy_udp_checksum_ok(Ipv4Repr(V4_SRC, V4_DST, PROTO_UDP).build(data), IP)


def test_length_field_trims_trailing_bytes() -> None:
    data = UdpRepr(1, 2).build(b"12345", V4_SRC, V4_DST) + b"trailer"
    pkt = parse(data, V4_SRC, V4_DST)
    assert pkt.length == 13 and bytes(pkt.payload) == b"12345"


def test_udp_inside_parsed_ip_layers() -> None:
    frame = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=9, dport=10) / b"v6")
    ip6 = Ipv6Packet.parse(frame)
    assert isinstance(ip6, Ipv6Packet)
    assert parse(bytes(ip6.upper_payload), ip6.src, ip6.dst).dst_port == 10
    frame = bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=9, dport=11) / b"v4")
    ip4 = Ipv4Packet.parse(frame)
    assert isinstance(ip4, Ipv4Packet)
    assert parse(ip4.payload.tobytes(), ip4.src, ip4.dst).dst_port == 11


@FUZZ
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.binary(max_size=100),
    st.sampled_from([(V4_SRC, V4_DST), (V6_SRC, V6_DST)]),
)
def test_build_then_parse_round_trips(
    sport: int, dport: int, payload: bytes, addrs: tuple[bytes, bytes]
) -> None:
    src, dst = addrs
    pkt = parse(UdpRepr(sport, dport).build(payload, src, dst), src, dst)
    assert pkt.to_repr() == UdpRepr(sport, dport)
    assert bytes(pkt.payload) == payload and pkt.checksum != 0


@FUZZ
@given(sport=st.integers(0, 0xFFFF), dport=st.integers(0, 0xFFFF),
       payload=st.binary(max_size=300), v6=st.booleans())
def test_checksum_partial_builder_writes_what_the_repr_writes(
        sport: int, dport: int, payload: bytes, v6: bool) -> None:
    """The send hot path's checksum-partial datagram equals UdpRepr.build(partial=True)."""
    src, dst = (V6_SRC, V6_DST) if v6 else (V4_SRC, V4_DST)
    assert build_checksum_partial(sport, dport, payload) == UdpRepr(sport, dport).build(
        payload, src, dst, checksum=False, partial=True)
