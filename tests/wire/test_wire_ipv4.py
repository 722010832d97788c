"""IPv4 headers, both ways against scapy, and build/parse round trips."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, IPOption_NOP, IPOption_Router_Alert, IPOption_RR, fragment
from scapy.layers.l2 import Ether

from stack.wire import WireError
from stack.wire.checksum import internet_checksum, verify
from stack.wire.ethernet import EthernetFrame
from stack.wire.ip import PROTO_TCP, PROTO_UDP, from_ipaddress, to_ipaddress
from stack.wire.ipv4 import (
    OPT_ROUTER_ALERT,
    Ipv4Packet,
    Ipv4Repr,
    build_header,
    decrement_ttl,
    iter_options,
    router_alert_option,
)

FUZZ = settings.get_profile("vnet-wire")

SRC = from_ipaddress("192.0.2.1")
DST = from_ipaddress("198.51.100.2")


def parse(data: bytes, **kw: bool) -> Ipv4Packet:
    pkt = Ipv4Packet.parse(data, **kw)
    assert isinstance(pkt, Ipv4Packet), pkt
    return pkt


def scapy_checksum_ok(data: bytes) -> bool:
    """scapy recomputes the header checksum and gets the value we wrote."""
    pkt = IP(data)
    sent = pkt.chksum
    del pkt.chksum
    return IP(bytes(pkt)).chksum == sent


def test_scapy_packet_fields_parse() -> None:
    data = bytes(
        IP(src="192.0.2.1", dst="198.51.100.2", ttl=17, id=0xBEEF, tos=0xB9, flags="DF")
        / UDP(sport=1, dport=2)
        / b"data"
    )
    pkt = parse(data)
    assert (pkt.src, pkt.dst) == (SRC, DST)
    assert pkt.ttl == 17 and pkt.ident == 0xBEEF and pkt.protocol == PROTO_UDP
    assert pkt.dscp == 0xB9 >> 2 and pkt.ecn == 1
    assert pkt.dont_frag and not pkt.more_frags and pkt.frag_offset == 0 and not pkt.is_fragment
    assert pkt.header_len == 20 and pkt.total_len == len(data)
    assert pkt.checksum == IP(data).chksum
    assert bytes(pkt.payload) == data[20:]
    assert not pkt.router_alert


def test_scapy_options_are_skipped_and_walkable() -> None:
    data = bytes(
        IP(
            src="192.0.2.1",
            dst="198.51.100.2",
            options=[
                IPOption_NOP(),
                IPOption_RR(routers=["10.0.0.1", "10.0.0.2"]),
                IPOption_Router_Alert(),
            ],
        )
        / UDP()
        / b"after options"
    )
    pkt = parse(data)
    assert pkt.header_len == IP(data).ihl * 4 > 20
    kinds = [kind for kind, _ in iter_options(pkt.options)]
    assert kinds == [7, OPT_ROUTER_ALERT]
    rr = dict(iter_options(pkt.options))[7]
    assert bytes(rr[1:9]) == from_ipaddress("10.0.0.1") + from_ipaddress("10.0.0.2")
    assert pkt.router_alert
    assert bytes(pkt.payload) == bytes(IP(data)[UDP])


def test_scapy_fragments_parse_with_offsets_and_more_flag() -> None:
    whole = IP(src="192.0.2.1", dst="198.51.100.2", id=777) / UDP(sport=5, dport=6) / (b"z" * 1000)
    frags = fragment(whole, fragsize=400)
    assert len(frags) == 3
    seen = []
    for frag in frags:
        pkt = parse(bytes(frag))
        assert pkt.ident == 777 and pkt.is_fragment
        seen.append((pkt.frag_offset, pkt.more_frags, len(pkt.payload)))
    assert seen == [(0, True, 400), (50, True, 400), (100, False, 208)]


def test_ethernet_padding_is_trimmed_by_total_length() -> None:
    frame = bytes(Ether() / IP(src="192.0.2.1", dst="198.51.100.2") / UDP() / b"hi")
    assert len(frame) < 60
    eth = EthernetFrame.parse(frame + bytes(60 - len(frame)))
    assert isinstance(eth, EthernetFrame)
    pkt = parse(bytes(eth.payload))
    assert len(pkt.buf) == pkt.total_len == 30
    assert bytes(pkt.payload)[-2:] == b"hi"


def test_our_packet_parses_in_scapy_with_valid_checksum() -> None:
    repr_ = Ipv4Repr(
        src=SRC,
        dst=DST,
        protocol=PROTO_TCP,
        ttl=3,
        dscp=46,
        ecn=2,
        ident=4242,
        dont_frag=False,
        more_frags=True,
        frag_offset=185,
    )
    data = repr_.build(b"\x00" * 16)
    pkt = IP(data)
    assert pkt.src == "192.0.2.1" and pkt.dst == "198.51.100.2"
    assert pkt.ttl == 3 and pkt.tos == (46 << 2) | 2 and pkt.id == 4242 and pkt.proto == 6
    assert pkt.flags == "MF" and pkt.frag == 185
    assert pkt.ihl == 5 and pkt.len == 36
    assert scapy_checksum_ok(data)


def test_our_options_are_padded_and_scapy_reads_router_alert() -> None:
    repr_ = Ipv4Repr(src=SRC, dst=DST, protocol=2, ttl=1, options=router_alert_option() + b"\x01")
    data = repr_.build(b"igmp....")
    assert repr_.header_len == 28
    pkt = IP(data)
    assert pkt.ihl == 7 and pkt.len == 36
    assert any(isinstance(o, IPOption_Router_Alert) for o in pkt.options)
    assert scapy_checksum_ok(data)
    assert parse(data).router_alert


def test_partial_parse_accepts_a_quoted_header() -> None:
    data = Ipv4Repr(src=SRC, dst=DST, protocol=PROTO_UDP).build(bytes(100))
    assert Ipv4Packet.parse(data[:28]) is WireError.TRUNCATED
    pkt = parse(data[:28], partial=True)
    assert pkt.total_len == 120 and len(pkt.payload) == 8 and pkt.dst == DST


def test_checksum_verification_can_be_skipped() -> None:
    data = bytearray(Ipv4Repr(src=SRC, dst=DST, protocol=PROTO_UDP).build(b"x"))
    data[10] ^= 0xFF
    assert Ipv4Packet.parse(data) is WireError.BAD_CHECKSUM
    assert parse(bytes(data), verify_checksum=False).protocol == PROTO_UDP


def test_decrement_ttl_keeps_checksum_valid() -> None:
    data = bytearray(Ipv4Repr(src=SRC, dst=DST, protocol=PROTO_UDP, ttl=64, ident=9).build(b"abc"))
    prefix = b"\xee" * 14
    buf = bytearray(prefix) + data
    assert decrement_ttl(buf, 14) == 63
    assert buf[:14] == prefix
    pkt = parse(bytes(buf[14:]))
    assert pkt.ttl == 63
    assert verify(pkt.header) and scapy_checksum_ok(bytes(buf[14:]))
    assert internet_checksum(bytes(buf[14:24]) + b"\x00\x00" + bytes(buf[26:34])) == pkt.checksum


def test_emit_into_with_payload_in_place() -> None:
    repr_ = Ipv4Repr(src=SRC, dst=DST, protocol=PROTO_UDP)
    buf = bytearray(100)
    buf[30:40] = b"0123456789"
    assert repr_.emit_into(buf, 10, 10) == 30
    pkt = parse(bytes(buf[10:]))
    assert bytes(pkt.payload) == b"0123456789"


def test_address_helpers_round_trip() -> None:
    assert str(to_ipaddress(SRC)) == "192.0.2.1"
    assert from_ipaddress(to_ipaddress(DST)) == DST


@FUZZ
@given(
    st.builds(
        Ipv4Repr,
        src=st.binary(min_size=4, max_size=4),
        dst=st.binary(min_size=4, max_size=4),
        protocol=st.integers(0, 255),
        ttl=st.integers(0, 255),
        dscp=st.integers(0, 63),
        ecn=st.integers(0, 3),
        ident=st.integers(0, 0xFFFF),
        dont_frag=st.booleans(),
        more_frags=st.booleans(),
        frag_offset=st.integers(0, 0x1FFF),
        options=st.sampled_from(
            [b"", router_alert_option(), b"\x01\x01\x01\x01", b"\x07\x07\x04" + bytes(4)]
        ),
    ),
    st.binary(max_size=64),
)
def test_build_then_parse_round_trips(repr_: Ipv4Repr, payload: bytes) -> None:
    data = repr_.build(payload)
    pkt = parse(data)
    padded = repr_.options + bytes(-len(repr_.options) % 4)
    assert pkt.to_repr() == dataclasses.replace(repr_, options=padded)
    assert bytes(pkt.payload) == payload
    assert scapy_checksum_ok(data)


@FUZZ
@given(src=st.binary(min_size=4, max_size=4), dst=st.binary(min_size=4, max_size=4),
       protocol=st.integers(0, 255), ttl=st.integers(0, 255), tos=st.integers(0, 255),
       ident=st.integers(0, 0xFFFF), dont_frag=st.booleans(),
       payload_len=st.integers(0, 0xFFFF - 20))
def test_output_header_builder_writes_what_the_repr_writes(
        src: bytes, dst: bytes, protocol: int, ttl: int, tos: int, ident: int,
        dont_frag: bool, payload_len: int) -> None:
    """The output hot path's header (no Repr built) is byte for byte the Repr's header."""
    repr_header = bytearray(20)
    Ipv4Repr(src, dst, protocol, ttl=ttl, dscp=tos >> 2, ecn=tos & 3, ident=ident,
             dont_frag=dont_frag).emit_into(repr_header, 0, payload_len)
    assert build_header(src, dst, protocol, ttl, tos, ident, dont_frag,
                        payload_len) == bytes(repr_header)


def test_output_header_builder_parses_in_scapy_with_valid_checksum() -> None:
    header = build_header(SRC, DST, PROTO_UDP, 64, 0xB8, 4660, True, 8)
    data = header + struct.pack("!HHHH", 1000, 2000, 8, 0)
    assert scapy_checksum_ok(data)
    ip = IP(data)
    assert (ip.src, ip.dst, ip.ttl, ip.tos, ip.id, str(ip.flags), ip.len) == (
        "192.0.2.1", "198.51.100.2", 64, 0xB8, 4660, "DF", 28)


def test_output_header_builder_refuses_a_total_length_over_65535() -> None:
    with pytest.raises(ValueError):
        build_header(SRC, DST, PROTO_UDP, 64, 0, 1, False, 0xFFFF - 19)
