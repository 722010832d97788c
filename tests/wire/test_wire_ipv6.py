"""IPv6 fixed header and extension-header chain, both ways against scapy."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    HBHOptUnknown,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    PadN,
    RouterAlert,
    fragment6,
)
from scapy.layers.ipsec import AH
from scapy.packet import Raw

from stack.wire import WireError
from stack.wire.ip import (
    PROTO_DSTOPTS,
    PROTO_ESP,
    PROTO_FRAGMENT,
    PROTO_HOPOPT,
    PROTO_ICMPV6,
    PROTO_NONE,
    PROTO_UDP,
    from_ipaddress,
)
from stack.wire.ipv6 import (
    ACTION_DISCARD_ICMP_UNLESS_MULTICAST,
    ACTION_SKIP,
    ALL_NODES,
    FragmentHeaderRepr,
    Ipv6Packet,
    Ipv6Repr,
    OptionsHeaderRepr,
    build_packet,
    iter_options,
    solicited_node_multicast,
)
from stack.wire.udp import UdpPacket

FUZZ = settings.get_profile("vnet-wire")

SRC = from_ipaddress("2001:db8::1")
DST = from_ipaddress("2001:db8::2")


def parse(data: bytes, **kw: bool) -> Ipv6Packet:
    pkt = Ipv6Packet.parse(data, **kw)
    assert isinstance(pkt, Ipv6Packet), pkt
    return pkt


def base() -> IPv6:
    return IPv6(src="2001:db8::1", dst="2001:db8::2")


def test_scapy_plain_packet_fields() -> None:
    data = bytes(
        IPv6(src="2001:db8::1", dst="2001:db8::2", tc=0xB8 | 1, fl=0xABCDE, hlim=9) / UDP() / b"hi"
    )
    pkt = parse(data)
    assert (pkt.src, pkt.dst) == (SRC, DST)
    assert pkt.traffic_class == 0xB9 and pkt.dscp == 46 and pkt.ecn == 1
    assert pkt.flow_label == 0xABCDE and pkt.hop_limit == 9
    assert pkt.payload_len == 10 and pkt.next_header == PROTO_UDP
    assert pkt.upper_protocol == PROTO_UDP and pkt.upper_offset == 40
    assert pkt.next_header_offset == 6
    assert pkt.hop_by_hop is None and pkt.routing is None and pkt.fragment is None
    assert pkt.dest_options == () and pkt.router_alert is None
    assert bytes(pkt.upper_payload) == data[40:]


def test_scapy_full_extension_chain_is_walked() -> None:
    data = bytes(
        base()
        / IPv6ExtHdrHopByHop(options=[RouterAlert(), PadN(optdata=b"\x00\x00")])
        / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 4)])
        / IPv6ExtHdrRouting(type=0, addresses=["2001:db8::9", "2001:db8::2"], segleft=1)
        / IPv6ExtHdrDestOpt()
        / UDP(sport=7, dport=8)
        / b"payload"
    )
    pkt = parse(data)
    hbh = pkt.hop_by_hop
    assert hbh is not None and hbh.offset == 40 and hbh.router_alert == 0
    assert hbh.unrecognized_action == ACTION_SKIP
    assert pkt.router_alert == 0
    assert pkt.routing is not None
    assert pkt.routing.routing_type == 0 and pkt.routing.segments_left == 1
    assert pkt.routing.routing_type_offset == pkt.routing.offset + 2
    assert bytes(pkt.routing.data[4:20]) == from_ipaddress("2001:db8::9")
    assert len(pkt.dest_options) == 2
    assert pkt.dest_options[0].offset < pkt.routing.offset < pkt.dest_options[1].offset
    assert pkt.upper_protocol == PROTO_UDP
    assert data[pkt.next_header_offset] == PROTO_UDP
    udp = UdpPacket.parse(pkt.upper_payload, pkt.src, DST, verify_checksum=False)
    assert isinstance(udp, UdpPacket)
    assert (udp.src_port, udp.dst_port, bytes(udp.payload)) == (7, 8, b"payload")


def test_scapy_chain_with_valid_udp_checksum() -> None:
    data = bytes(
        base() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP(sport=1, dport=2) / b"ok"
    )
    pkt = parse(data)
    assert pkt.upper_offset == 56
    assert isinstance(UdpPacket.parse(pkt.upper_payload, pkt.src, pkt.dst), UdpPacket)


def test_scapy_fragment_header_stops_the_walk() -> None:
    data = bytes(
        base()
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrFragment(nh=PROTO_UDP, offset=123, m=1, id=0xDEADBEEF)
        / Raw(b"fragment data")
    )
    pkt = parse(data)
    frag = pkt.fragment
    assert frag is not None
    assert (frag.offset, frag.next_header, frag.frag_offset, frag.more_frags, frag.ident) == (
        48,
        PROTO_UDP,
        123,
        True,
        0xDEADBEEF,
    )
    assert not frag.is_atomic
    assert pkt.upper_protocol == PROTO_UDP and pkt.upper_offset == 56
    assert pkt.next_header_offset == 48
    assert bytes(pkt.upper_payload) == b"fragment data"


def test_scapy_fragment6_train_parses() -> None:
    whole = base() / IPv6ExtHdrFragment(id=99) / UDP(sport=1, dport=2) / (b"q" * 3000)
    frags = fragment6(whole, 1280)
    assert len(frags) == 3
    expected_offset = 0
    for i, raw in enumerate(frags):
        pkt = parse(bytes(raw))
        assert pkt.fragment is not None
        assert pkt.fragment.ident == 99
        assert pkt.fragment.more_frags == (i < len(frags) - 1)
        assert pkt.fragment.frag_offset == expected_offset
        expected_offset += len(pkt.upper_payload) // 8


def test_unrecognized_option_action_and_pointer() -> None:
    data = bytes(
        base()
        / IPv6ExtHdrHopByHop(
            options=[PadN(optdata=b"\x00"), HBHOptUnknown(otype=0xC5, optdata=b"ab")]
        )
        / UDP()
    )
    pkt = parse(data)
    assert pkt.hop_by_hop is not None
    assert pkt.hop_by_hop.unrecognized_action == ACTION_DISCARD_ICMP_UNLESS_MULTICAST
    # 40 fixed + 2 (next header, length) + 3 (PadN with one byte)
    assert pkt.hop_by_hop.unrecognized_pointer == 45
    assert data[45] == 0xC5
    kinds = [kind for kind, _ in iter_options(pkt.hop_by_hop.options)]
    assert kinds == [0xC5]


def test_skippable_unknown_option_is_not_flagged() -> None:
    data = bytes(
        base() / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x1E, optdata=b"abcd")]) / UDP()
    )
    pkt = parse(data)
    assert pkt.dest_options[0].unrecognized_action == ACTION_SKIP
    assert pkt.dest_options[0].unrecognized_pointer == -1


def test_ah_is_skipped_and_esp_and_no_next_header_end_the_chain() -> None:
    data = bytes(
        base() / AH(nh=PROTO_UDP, payloadlen=4, spi=1, seq=2, icv=bytes(12)) / UDP() / b"x"
    )
    pkt = parse(data)
    assert pkt.upper_protocol == PROTO_UDP and pkt.upper_offset == 40 + 24
    data = bytes(IPv6(nh=PROTO_ESP) / Raw(bytes(16)))
    pkt = parse(data)
    assert pkt.upper_protocol == PROTO_ESP and pkt.upper_offset == 40
    data = bytes(IPv6() / IPv6ExtHdrDestOpt(nh=PROTO_NONE) / Raw(b"ignored"))
    pkt = parse(data)
    assert pkt.upper_protocol == PROTO_NONE and pkt.upper_offset == 48


def test_partial_parse_for_quoted_invoking_packet() -> None:
    data = bytes(base() / IPv6ExtHdrHopByHop() / UDP() / (b"x" * 500))
    assert Ipv6Packet.parse(data[:100]) is WireError.TRUNCATED
    pkt = parse(data[:100], partial=True)
    assert pkt.upper_protocol == PROTO_UDP and len(pkt.upper_payload) == 100 - 48


def test_our_headers_parse_in_scapy() -> None:
    udp = bytes(UDP(sport=5, dport=6) / b"dat")
    frag = FragmentHeaderRepr(
        next_header=PROTO_UDP, frag_offset=77, more_frags=True, ident=0x01020304
    )
    hbh = OptionsHeaderRepr.router_alert(next_header=PROTO_DSTOPTS)
    dst_opts = OptionsHeaderRepr(PROTO_FRAGMENT, ((0x1E, b"abc"),))
    ext = hbh.build() + dst_opts.build() + frag.build()
    assert len(hbh.build()) == hbh.header_len == 8
    assert len(dst_opts.build()) % 8 == 0
    data = Ipv6Repr(
        SRC, DST, PROTO_HOPOPT, hop_limit=1, traffic_class=0x21, flow_label=0x12345
    ).build(ext + udp)
    pkt = IPv6(data)
    assert pkt.src == "2001:db8::1" and pkt.dst == "2001:db8::2"
    assert (
        pkt.hlim == 1 and pkt.tc == 0x21 and pkt.fl == 0x12345 and pkt.plen == len(ext) + len(udp)
    )
    assert any(isinstance(o, RouterAlert) and o.value == 0 for o in pkt[IPv6ExtHdrHopByHop].options)
    unknown = [o for o in pkt[IPv6ExtHdrDestOpt].options if isinstance(o, HBHOptUnknown)]
    assert [(o.otype, o.optdata) for o in unknown] == [(0x1E, b"abc")]
    f = pkt[IPv6ExtHdrFragment]
    assert (f.nh, f.offset, f.m, f.id) == (PROTO_UDP, 77, 1, 0x01020304)
    ours = parse(data)
    assert ours.router_alert == 0 and ours.fragment is not None and ours.fragment.frag_offset == 77


def test_our_packet_carries_icmpv6_scapy_understands() -> None:
    echo = bytes(ICMPv6EchoRequest(id=1, seq=2))
    data = Ipv6Repr(SRC, ALL_NODES, PROTO_ICMPV6).build(echo)
    pkt = IPv6(data)
    assert pkt.haslayer(ICMPv6EchoRequest) and pkt[ICMPv6EchoRequest].seq == 2


def test_header_order_and_bounds() -> None:
    hbh_second = bytes(base() / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / UDP())
    assert Ipv6Packet.parse(hbh_second) is WireError.BAD_HEADER_CHAIN
    chain = base()
    for _ in range(9):
        chain = chain / IPv6ExtHdrDestOpt()
    assert Ipv6Packet.parse(bytes(chain / UDP())) is WireError.TOO_MANY_HEADERS
    chain = base()
    for _ in range(8):
        chain = chain / IPv6ExtHdrDestOpt()
    assert parse(bytes(chain / UDP())).upper_protocol == PROTO_UDP


def test_solicited_node_multicast() -> None:
    addr = from_ipaddress("fe80::2aa:ff:fe28:9c5a")
    assert solicited_node_multicast(addr) == from_ipaddress("ff02::1:ff28:9c5a")


@FUZZ
@given(
    st.builds(
        Ipv6Repr,
        src=st.binary(min_size=16, max_size=16),
        dst=st.binary(min_size=16, max_size=16),
        next_header=st.sampled_from([PROTO_UDP, PROTO_ICMPV6, 6, 200]),
        hop_limit=st.integers(0, 255),
        traffic_class=st.integers(0, 255),
        flow_label=st.integers(0, 0xFFFFF),
    ),
    st.binary(max_size=64),
)
def test_build_then_parse_round_trips(repr_: Ipv6Repr, payload: bytes) -> None:
    pkt = parse(repr_.build(payload))
    assert pkt.to_repr() == repr_
    assert bytes(pkt.payload) == payload and pkt.upper_protocol == repr_.next_header


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(2, 255).filter(lambda k: k != 5), st.binary(max_size=20)), max_size=4
    ),
    st.integers(0, 0x1FFF),
    st.booleans(),
    st.integers(0, 0xFFFFFFFF),
)
def test_option_and_fragment_headers_round_trip(
    options: list[tuple[int, bytes]], offset: int, more: bool, ident: int
) -> None:
    hbh = OptionsHeaderRepr(PROTO_FRAGMENT, tuple(options))
    frag = FragmentHeaderRepr(PROTO_UDP, offset, more, ident)
    data = Ipv6Repr(SRC, DST, PROTO_HOPOPT).build(hbh.build() + frag.build() + b"tail")
    pkt = parse(data)
    assert pkt.hop_by_hop is not None
    assert [(k, bytes(v)) for k, v in iter_options(pkt.hop_by_hop.options)] == options
    assert pkt.fragment is not None
    f = pkt.fragment
    assert (f.frag_offset, f.more_frags, f.ident, f.next_header) == (offset, more, ident, PROTO_UDP)
    assert bytes(pkt.upper_payload) == b"tail"


@FUZZ
@given(src=st.binary(min_size=16, max_size=16), dst=st.binary(min_size=16, max_size=16),
       next_header=st.integers(0, 255), hop_limit=st.integers(0, 255),
       traffic_class=st.integers(0, 255), payload=st.binary(max_size=200),
       as_view=st.booleans())
def test_output_packet_builder_writes_what_the_repr_writes(
        src: bytes, dst: bytes, next_header: int, hop_limit: int, traffic_class: int,
        payload: bytes, as_view: bool) -> None:
    """The output hot path's packet (no Repr built) is byte for byte the Repr's."""
    data = memoryview(payload) if as_view else payload
    assert build_packet(src, dst, next_header, hop_limit, traffic_class, data) == (
        Ipv6Repr(src, dst, next_header, hop_limit, traffic_class).build(data))
