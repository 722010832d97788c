"""ICMPv4 and ICMPv6 (echo and error messages), both ways against scapy."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPerror6,
    IPv6,
)
from scapy.packet import Packet

from stack.wire import WireError, icmpv4, icmpv6
from stack.wire.icmpv4 import Icmpv4Packet, Icmpv4Repr
from stack.wire.icmpv6 import Icmpv6Packet, Icmpv6Repr
from stack.wire.ip import PROTO_ICMP, PROTO_ICMPV6, PROTO_UDP, from_ipaddress
from stack.wire.ipv4 import Ipv4Packet, Ipv4Repr
from stack.wire.ipv6 import Ipv6Packet, Ipv6Repr

FUZZ = settings.get_profile("vnet-wire")

V4_SRC = from_ipaddress("192.0.2.1")
V4_DST = from_ipaddress("192.0.2.99")
V6_SRC = from_ipaddress("2001:db8::1")
V6_DST = from_ipaddress("2001:db8::2")


def scapy_agrees_on_checksum(pkt: Packet, layer: type[Packet], field: str) -> bool:
    sent = getattr(pkt[layer], field)
    copy = pkt.copy()
    delattr(copy[layer], field)
    return getattr(pkt.__class__(bytes(copy))[layer], field) == sent


def icmp4(data: bytes) -> Icmpv4Packet:
    pkt = Icmpv4Packet.parse(data)
    assert isinstance(pkt, Icmpv4Packet), pkt
    return pkt


def icmp6(data: bytes, src: bytes = V6_SRC, dst: bytes = V6_DST) -> Icmpv6Packet:
    pkt = Icmpv6Packet.parse(data, src, dst)
    assert isinstance(pkt, Icmpv6Packet), pkt
    return pkt


def v4_packet(icmp_bytes: bytes) -> IP:
    return IP(Ipv4Repr(V4_SRC, V4_DST, PROTO_ICMP).build(icmp_bytes))


def v6_packet(icmp_bytes: bytes) -> IPv6:
    return IPv6(Ipv6Repr(V6_SRC, V6_DST, PROTO_ICMPV6).build(icmp_bytes))


# --- ICMPv4 ---------------------------------------------------------------


def test_scapy_echo_request_parses() -> None:
    data = bytes(ICMP(type=8, id=0x1234, seq=7) / b"ping data")
    pkt = icmp4(data)
    assert pkt.type == icmpv4.TYPE_ECHO_REQUEST and pkt.code == 0
    assert (pkt.ident, pkt.seq) == (0x1234, 7)
    assert bytes(pkt.data) == b"ping data" and not pkt.is_error and pkt.invoking_packet is None
    assert pkt.checksum == ICMP(data).chksum


def test_our_echo_reply_parses_in_scapy() -> None:
    data = Icmpv4Repr.echo_reply(0xABCD, 65535).build(b"pong")
    pkt = v4_packet(data)
    assert pkt[ICMP].type == 0 and pkt[ICMP].id == 0xABCD and pkt[ICMP].seq == 65535
    assert bytes(pkt[ICMP].payload) == b"pong"
    assert scapy_agrees_on_checksum(pkt, ICMP, "chksum")


def test_scapy_frag_needed_parses_with_mtu_and_invoking_packet() -> None:
    quoted = IP(src="192.0.2.99", dst="203.0.113.5", flags="DF") / UDP(sport=4000, dport=53)
    data = bytes(ICMP(type=3, code=4, nexthopmtu=1400) / IPerror(bytes(quoted)[:28]))
    pkt = icmp4(data)
    assert pkt.type == icmpv4.TYPE_DEST_UNREACHABLE and pkt.code == icmpv4.UNREACH_FRAG_NEEDED
    assert pkt.next_hop_mtu == 1400 and pkt.is_error
    assert pkt.invoking_packet is not None
    inner = Ipv4Packet.parse(pkt.invoking_packet, partial=True)
    assert isinstance(inner, Ipv4Packet)
    assert inner.dst == from_ipaddress("203.0.113.5") and inner.protocol == PROTO_UDP
    assert inner.dont_frag and bytes(inner.payload)[2:4] == (53).to_bytes(2, "big")


def test_our_errors_parse_in_scapy() -> None:
    invoking = Ipv4Repr(V4_DST, V4_SRC, PROTO_UDP).build(bytes(UDP(sport=1, dport=2)))
    cases = [
        (Icmpv4Repr.frag_needed(1280), 3, 4, {"nexthopmtu": 1280}),
        (Icmpv4Repr.dest_unreachable(icmpv4.UNREACH_PORT), 3, 3, {}),
        (Icmpv4Repr.time_exceeded(), 11, 0, {}),
        (Icmpv4Repr.param_problem(icmpv4.PARAM_POINTER, 9), 12, 0, {"ptr": 9}),
    ]
    for repr_, mtype, code, fields in cases:
        pkt = v4_packet(repr_.build(invoking))
        assert (pkt[ICMP].type, pkt[ICMP].code) == (mtype, code)
        for name, value in fields.items():
            assert getattr(pkt[ICMP], name) == value
        assert pkt.haslayer(IPerror) and pkt[IPerror].dst == "192.0.2.1"
        assert pkt.haslayer(UDPerror) and pkt[UDPerror].dport == 2
        assert scapy_agrees_on_checksum(pkt, ICMP, "chksum")


def test_scapy_redirect_parses_gateway() -> None:
    data = bytes(ICMP(type=5, code=1, gw="192.0.2.254") / IPerror(bytes(IP() / UDP())[:28]))
    pkt = icmp4(data)
    assert pkt.type == icmpv4.TYPE_REDIRECT and pkt.gateway == from_ipaddress("192.0.2.254")
    assert pkt.invoking_packet is not None and len(pkt.invoking_packet) == 28


def test_scapy_param_problem_pointer() -> None:
    pkt = icmp4(bytes(ICMP(type=12, code=0, ptr=20) / IPerror(bytes(IP())[:20])))
    assert pkt.pointer == 20


@FUZZ
@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFFFFFF), st.binary(max_size=80))
def test_icmpv4_build_then_parse_round_trips(mtype: int, code: int, rest: int, data: bytes) -> None:
    repr_ = Icmpv4Repr(mtype, code, rest)
    pkt = icmp4(repr_.build(data))
    assert pkt.to_repr() == repr_ and bytes(pkt.data) == data


# --- ICMPv6 ---------------------------------------------------------------


def test_scapy_icmpv6_echo_parses_with_pseudo_header_checksum() -> None:
    ip = IPv6(
        bytes(
            IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest(id=5, seq=6, data=b"hey")
        )
    )
    data = bytes(ip[ICMPv6EchoRequest])
    pkt = icmp6(data)
    assert pkt.type == icmpv6.TYPE_ECHO_REQUEST and (pkt.ident, pkt.seq) == (5, 6)
    assert bytes(pkt.body) == b"hey" and not pkt.is_error
    # the checksum binds the addresses: another destination fails it
    assert Icmpv6Packet.parse(data, V6_SRC, V6_SRC) is WireError.BAD_CHECKSUM


def test_our_icmpv6_echo_reply_parses_in_scapy() -> None:
    pkt = v6_packet(Icmpv6Repr.echo_reply(77, 88).build(b"reply data", V6_SRC, V6_DST))
    assert pkt.haslayer(ICMPv6EchoReply)
    assert (pkt[ICMPv6EchoReply].id, pkt[ICMPv6EchoReply].seq) == (77, 88)
    assert pkt[ICMPv6EchoReply].data == b"reply data"
    assert scapy_agrees_on_checksum(pkt, ICMPv6EchoReply, "cksum")


def test_scapy_icmpv6_errors_parse() -> None:
    quoted = bytes(
        IPv6(src="2001:db8::2", dst="2001:db8::77") / UDP(sport=9, dport=10) / (b"x" * 40)
    )
    cases = [
        (ICMPv6PacketTooBig(mtu=1280), icmpv6.TYPE_PACKET_TOO_BIG, "mtu", 1280),
        (ICMPv6ParamProblem(code=1, ptr=6), icmpv6.TYPE_PARAM_PROBLEM, "pointer", 6),
        (ICMPv6DestUnreach(code=4), icmpv6.TYPE_DEST_UNREACHABLE, "code", 4),
        (ICMPv6TimeExceeded(code=1), icmpv6.TYPE_TIME_EXCEEDED, "code", 1),
    ]
    for layer, mtype, attr, value in cases:
        ip = IPv6(bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / layer / IPerror6(quoted[:60])))
        pkt = icmp6(bytes(ip[layer.__class__]))
        assert pkt.type == mtype and getattr(pkt, attr) == value and pkt.is_error
        assert pkt.invoking_packet is not None
        inner = Ipv6Packet.parse(pkt.invoking_packet, partial=True)
        assert isinstance(inner, Ipv6Packet)
        assert inner.dst == from_ipaddress("2001:db8::77") and inner.upper_protocol == PROTO_UDP


def test_our_icmpv6_errors_parse_in_scapy() -> None:
    invoking = Ipv6Repr(V6_DST, V6_SRC, PROTO_UDP).build(bytes(UDP(sport=1, dport=2)))
    cases = [
        (Icmpv6Repr.packet_too_big(1400), ICMPv6PacketTooBig, {"mtu": 1400}),
        (
            Icmpv6Repr.param_problem(icmpv6.PARAM_UNRECOGNIZED_NEXT_HEADER, 40),
            ICMPv6ParamProblem,
            {"code": 1, "ptr": 40},
        ),
        (Icmpv6Repr.dest_unreachable(icmpv6.UNREACH_PORT), ICMPv6DestUnreach, {"code": 4}),
        (Icmpv6Repr.time_exceeded(), ICMPv6TimeExceeded, {"code": 0}),
    ]
    for repr_, layer, fields in cases:
        pkt = v6_packet(repr_.build(invoking, V6_SRC, V6_DST))
        assert pkt.haslayer(layer)
        for name, value in fields.items():
            assert getattr(pkt[layer], name) == value
        assert pkt.haslayer(IPerror6) and pkt[IPerror6].src == "2001:db8::2"
        assert scapy_agrees_on_checksum(pkt, layer, "cksum")


def test_icmpv6_emit_into_places_header_before_body() -> None:
    buf = bytearray(8 + 8 + 4)
    buf[16:] = b"body"
    assert Icmpv6Repr.echo_request(1, 2).emit_into(buf, 8, 4, V6_SRC, V6_DST) == 16
    pkt = icmp6(bytes(buf[8:]))
    assert pkt.seq == 2 and bytes(pkt.body) == b"body"


@FUZZ
@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFFFFFF), st.binary(max_size=80))
def test_icmpv6_build_then_parse_round_trips(mtype: int, code: int, rest: int, body: bytes) -> None:
    repr_ = Icmpv6Repr(mtype, code, rest)
    pkt = icmp6(repr_.build(body, V6_SRC, V6_DST))
    assert pkt.to_repr() == repr_ and bytes(pkt.body) == body
