"""NDP (RS/RA/NS/NA/Redirect with options) and MLDv1/v2, both ways against scapy."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6MLDMultAddrRec,
    ICMPv6MLDone,
    ICMPv6MLQuery,
    ICMPv6MLQuery2,
    ICMPv6MLReport,
    ICMPv6MLReport2,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_Redirect,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptRedirectedHdr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.packet import Packet

from stack.wire import WireError, mld, ndp
from stack.wire.icmpv6 import Icmpv6Packet, Icmpv6Repr
from stack.wire.ip import PROTO_ICMPV6, from_ipaddress
from stack.wire.ipv6 import ALL_MLDV2_ROUTERS, ALL_NODES, Ipv6Repr, solicited_node_multicast
from stack.wire.mld import (
    ALLOW_NEW_SOURCES,
    BLOCK_OLD_SOURCES,
    CHANGE_TO_EXCLUDE,
    CHANGE_TO_INCLUDE,
    MODE_IS_EXCLUDE,
    MODE_IS_INCLUDE,
    GroupRecord,
    MldV1Done,
    MldV1Query,
    MldV1Report,
    MldV2Query,
    MldV2Report,
)
from stack.wire.ndp import (
    NdpOptions,
    NeighborAdvert,
    NeighborSolicit,
    PrefixInfo,
    Redirect,
    RouterAdvert,
    RouterSolicit,
)

FUZZ = settings.get_profile("vnet-wire")

LL_A = from_ipaddress("fe80::a")
LL_B = from_ipaddress("fe80::b")
MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")
GROUP = from_ipaddress("ff05::1:3")
S1 = from_ipaddress("2001:db8::51")
S2 = from_ipaddress("2001:db8::52")


def from_scapy(layer: Packet, src: str = "fe80::a", dst: str = "ff02::1") -> Icmpv6Packet:
    """Serialise ``layer`` under an IPv6 header (so scapy computes the checksum)."""
    ip = IPv6(bytes(IPv6(src=src, dst=dst, hlim=255) / layer))
    icmp = Icmpv6Packet.parse(bytes(ip.payload), from_ipaddress(src), from_ipaddress(dst))
    assert isinstance(icmp, Icmpv6Packet), icmp
    return icmp


def to_scapy(message: bytes, src: bytes = LL_A, dst: bytes = ALL_NODES) -> IPv6:
    return IPv6(Ipv6Repr(src, dst, PROTO_ICMPV6, hop_limit=255).build(message))


def scapy_agrees_on_checksum(pkt: IPv6, layer: type[Packet]) -> bool:
    sent = pkt[layer].cksum
    copy = pkt.copy()
    del copy[layer].cksum
    return IPv6(bytes(copy))[layer].cksum == sent


def scapy_records(report: Packet) -> list[Packet]:
    """scapy dissects MLDv2 records as a list whose items chain further records as payload."""
    out: list[Packet] = []
    for rec in report.records:
        while isinstance(rec, ICMPv6MLDMultAddrRec):
            out.append(rec)
            rec = rec.payload
    return out


def ndp_parse(icmp: Icmpv6Packet) -> ndp.NdpMessage:
    msg = ndp.parse(icmp)
    assert not isinstance(msg, WireError), msg
    return msg


def mld_parse(icmp: Icmpv6Packet) -> mld.MldMessage:
    msg = mld.parse(icmp)
    assert not isinstance(msg, WireError), msg
    return msg


# --- NDP: scapy -> ours ---------------------------------------------------


def test_scapy_router_solicit_with_source_lladdr() -> None:
    msg = ndp_parse(from_scapy(ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:0a")))
    assert msg == RouterSolicit(NdpOptions(source_lladdr=MAC_A))


def test_scapy_router_advert_with_prefix_mtu_and_unknown_option() -> None:
    layer = (
        ICMPv6ND_RA(
            chlim=32, M=1, O=0, prf=1, routerlifetime=600, reachabletime=30000, retranstimer=1000
        )
        / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:0b")
        / ICMPv6NDOptMTU(mtu=1400)
        / ICMPv6NDOptRDNSS(lifetime=100, dns=["2001:db8::53"])
        / ICMPv6NDOptPrefixInfo(
            prefixlen=64,
            L=1,
            A=0,
            validlifetime=7200,
            preferredlifetime=3600,
            prefix="2001:db8:1::",
        )
        / ICMPv6NDOptPrefixInfo(prefixlen=48, prefix="2001:db8:2::")
    )
    msg = ndp_parse(from_scapy(layer, src="fe80::b"))
    assert isinstance(msg, RouterAdvert)
    assert (msg.cur_hop_limit, msg.managed, msg.other_config, msg.preference) == (
        32,
        True,
        False,
        1,
    )
    assert (msg.router_lifetime, msg.reachable_time, msg.retrans_timer) == (600, 30000, 1000)
    opts = msg.options
    assert opts.source_lladdr == MAC_B and opts.mtu == 1400
    assert opts.prefixes[0] == PrefixInfo(
        64, from_ipaddress("2001:db8:1::"), True, False, 7200, 3600
    )
    assert opts.prefixes[1].prefix_len == 48 and opts.prefixes[1].prefix == from_ipaddress(
        "2001:db8:2::"
    )
    assert [kind for kind, _ in opts.other] == [ndp.OPT_RDNSS]
    assert opts.other[0][1][6:22] == from_ipaddress("2001:db8::53")


def test_scapy_neighbor_solicit_and_advert() -> None:
    target = from_ipaddress("fe80::b")
    ns = ICMPv6ND_NS(tgt="fe80::b") / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:0a")
    msg = ndp_parse(from_scapy(ns, dst="ff02::1:ff00:b"))
    assert msg == NeighborSolicit(target, NdpOptions(source_lladdr=MAC_A))
    na = ICMPv6ND_NA(tgt="fe80::b", R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(
        lladdr="02:00:00:00:00:0b"
    )
    msg = ndp_parse(from_scapy(na, src="fe80::b", dst="fe80::a"))
    assert msg == NeighborAdvert(
        target, router=False, solicited=True, override=True, options=NdpOptions(target_lladdr=MAC_B)
    )


def test_scapy_redirect_with_redirected_header() -> None:
    quoted = bytes(IPv6(src="2001:db8::1", dst="2001:db8:9::9") / UDP() / b"abcdefgh")
    assert len(quoted) % 8 == 0  # scapy cuts the quoted packet to a multiple of 8
    layer = (
        ICMPv6ND_Redirect(tgt="fe80::b", dst="2001:db8:9::9")
        / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:0b")
        / ICMPv6NDOptRedirectedHdr(pkt=quoted)
    )
    msg = ndp_parse(from_scapy(layer, src="fe80::1", dst="2001:db8::1"))
    assert isinstance(msg, Redirect)
    assert msg.target == LL_B and msg.destination == from_ipaddress("2001:db8:9::9")
    assert msg.options.target_lladdr == MAC_B
    assert msg.options.redirected_header is not None
    assert msg.options.redirected_header == quoted


# --- NDP: ours -> scapy ---------------------------------------------------


def test_our_ndp_messages_parse_in_scapy() -> None:
    target = LL_B
    prefix = PrefixInfo(64, from_ipaddress("2001:db8:5::"), True, True, 86400, 14400)
    cases: list[tuple[bytes, type[Packet], dict[str, object]]] = [
        (RouterSolicit(NdpOptions(source_lladdr=MAC_A)).build(LL_A, ALL_NODES), ICMPv6ND_RS, {}),
        (
            RouterAdvert(
                64, True, True, 1800, 0, 0, 3, NdpOptions(MAC_A, mtu=1500, prefixes=(prefix,))
            ).build(LL_A, ALL_NODES),
            ICMPv6ND_RA,
            {"chlim": 64, "M": 1, "O": 1, "prf": 3, "routerlifetime": 1800},
        ),
        (
            NeighborSolicit(target, NdpOptions(source_lladdr=MAC_A)).build(
                LL_A, solicited_node_multicast(target)
            ),
            ICMPv6ND_NS,
            {"tgt": "fe80::b"},
        ),
        (
            NeighborAdvert(target, True, True, False, NdpOptions(target_lladdr=MAC_B)).build(
                LL_A, ALL_NODES
            ),
            ICMPv6ND_NA,
            {"tgt": "fe80::b", "R": 1, "S": 1, "O": 0},
        ),
        (
            Redirect(target, S1, NdpOptions(target_lladdr=MAC_B)).build(LL_A, ALL_NODES),
            ICMPv6ND_Redirect,
            {"tgt": "fe80::b", "dst": "2001:db8::51"},
        ),
    ]
    for message, layer, fields in cases:
        dst = solicited_node_multicast(target) if layer is ICMPv6ND_NS else ALL_NODES
        pkt = to_scapy(message, dst=dst)
        assert pkt.haslayer(layer), pkt.summary()
        for name, value in fields.items():
            assert getattr(pkt[layer], name) == value, name
        assert scapy_agrees_on_checksum(pkt, layer)
    ra = to_scapy(cases[1][0])
    assert ra[ICMPv6NDOptSrcLLAddr].lladdr == "02:00:00:00:00:0a"
    assert ra[ICMPv6NDOptMTU].mtu == 1500
    info = ra[ICMPv6NDOptPrefixInfo]
    assert (info.prefixlen, info.L, info.A, info.prefix) == (64, 1, 1, "2001:db8:5::")
    assert (info.validlifetime, info.preferredlifetime) == (86400, 14400)
    assert to_scapy(cases[3][0])[ICMPv6NDOptDstLLAddr].lladdr == "02:00:00:00:00:0b"


_ADDR16 = st.binary(min_size=16, max_size=16)
_OPTIONS = st.builds(
    NdpOptions,
    source_lladdr=st.none() | st.binary(min_size=6, max_size=6),
    target_lladdr=st.none() | st.binary(min_size=6, max_size=6),
    mtu=st.none() | st.integers(0, 0xFFFFFFFF),
    prefixes=st.lists(
        st.builds(
            PrefixInfo,
            prefix_len=st.integers(0, 128),
            prefix=_ADDR16,
            on_link=st.booleans(),
            autonomous=st.booleans(),
            valid_lifetime=st.integers(0, 0xFFFFFFFF),
            preferred_lifetime=st.integers(0, 0xFFFFFFFF),
        ),
        max_size=2,
    ).map(tuple),
    redirected_header=st.none() | st.binary(max_size=6).map(lambda b: b + bytes(-len(b) % 8)),
    other=st.lists(
        st.tuples(
            st.sampled_from([ndp.OPT_NONCE, ndp.OPT_RDNSS, 200]),
            st.binary(max_size=30).map(lambda b: b + bytes(-(len(b) + 2) % 8)),
        ),
        max_size=2,
    ).map(tuple),
)
_NDP_MESSAGES = st.one_of(
    st.builds(RouterSolicit, options=_OPTIONS),
    st.builds(
        RouterAdvert,
        cur_hop_limit=st.integers(0, 255),
        managed=st.booleans(),
        other_config=st.booleans(),
        router_lifetime=st.integers(0, 0xFFFF),
        reachable_time=st.integers(0, 0xFFFFFFFF),
        retrans_timer=st.integers(0, 0xFFFFFFFF),
        preference=st.integers(0, 3),
        options=_OPTIONS,
    ),
    st.builds(NeighborSolicit, target=_ADDR16, options=_OPTIONS),
    st.builds(
        NeighborAdvert,
        target=_ADDR16,
        router=st.booleans(),
        solicited=st.booleans(),
        override=st.booleans(),
        options=_OPTIONS,
    ),
    st.builds(Redirect, target=_ADDR16, destination=_ADDR16, options=_OPTIONS),
)


@FUZZ
@given(_NDP_MESSAGES)
def test_ndp_build_then_parse_round_trips(msg: ndp.NdpMessage) -> None:
    icmp = Icmpv6Packet.parse(msg.build(LL_A, LL_B), LL_A, LL_B)
    assert isinstance(icmp, Icmpv6Packet)
    assert ndp.parse(icmp) == msg


# --- MLD ------------------------------------------------------------------


def test_scapy_mldv1_messages_parse() -> None:
    assert mld_parse(from_scapy(ICMPv6MLQuery(mrd=10000, mladdr="::"))) == MldV1Query(
        10000, bytes(16)
    )
    assert mld_parse(
        from_scapy(ICMPv6MLReport(mladdr="ff05::1:3"), dst="ff05::1:3")
    ) == MldV1Report(GROUP)
    assert mld_parse(from_scapy(ICMPv6MLDone(mladdr="ff05::1:3"), dst="ff02::2")) == MldV1Done(
        GROUP
    )


def test_scapy_mldv2_query_with_sources_parses() -> None:
    layer = ICMPv6MLQuery2(
        mrd=0x8123,
        mladdr="ff05::1:3",
        S=1,
        QRV=2,
        QQIC=125,
        sources=["2001:db8::51", "2001:db8::52"],
    )
    msg = mld_parse(from_scapy(layer))
    assert msg == MldV2Query(0x8123, GROUP, True, 2, 125, (S1, S2))
    assert isinstance(msg, MldV2Query)
    assert msg.max_resp_delay == (0x123 | 0x1000) << 3 and msg.query_interval == 125


def test_scapy_mldv2_report_with_all_record_types_parses() -> None:
    rtypes = [
        MODE_IS_INCLUDE,
        MODE_IS_EXCLUDE,
        CHANGE_TO_INCLUDE,
        CHANGE_TO_EXCLUDE,
        ALLOW_NEW_SOURCES,
        BLOCK_OLD_SOURCES,
    ]
    records = [
        ICMPv6MLDMultAddrRec(rtype=t, dst=f"ff05::{t}", sources=["2001:db8::51"] * (t % 3))
        for t in rtypes
    ]
    msg = mld_parse(from_scapy(ICMPv6MLReport2(records=records), dst="ff02::16"))
    assert isinstance(msg, MldV2Report)
    assert [r.record_type for r in msg.records] == rtypes
    assert [r.group for r in msg.records] == [from_ipaddress(f"ff05::{t}") for t in rtypes]
    assert [len(r.sources) for r in msg.records] == [t % 3 for t in rtypes]
    assert all(s == S1 for r in msg.records for s in r.sources)


def test_our_mld_messages_parse_in_scapy() -> None:
    pkt = to_scapy(MldV1Report(GROUP).build(LL_A, GROUP), dst=GROUP)
    assert pkt.haslayer(ICMPv6MLReport) and pkt[ICMPv6MLReport].mladdr == "ff05::1:3"
    assert scapy_agrees_on_checksum(pkt, ICMPv6MLReport)
    pkt = to_scapy(MldV1Done(GROUP).build(LL_A, ALL_NODES))
    assert pkt.haslayer(ICMPv6MLDone) and scapy_agrees_on_checksum(pkt, ICMPv6MLDone)
    pkt = to_scapy(MldV1Query(1000, bytes(16)).build(LL_A, ALL_NODES))
    assert pkt.haslayer(ICMPv6MLQuery) and pkt[ICMPv6MLQuery].mrd == 1000
    query = MldV2Query(mld.encode_code16(125000), GROUP, True, 3, 60, (S1, S2))
    pkt = to_scapy(query.build(LL_A, ALL_NODES))
    q = pkt[ICMPv6MLQuery2]
    assert (q.mladdr, q.S, q.QRV, q.QQIC, q.sources_number) == ("ff05::1:3", 1, 3, 60, 2)
    assert q.sources == ["2001:db8::51", "2001:db8::52"]
    assert scapy_agrees_on_checksum(pkt, ICMPv6MLQuery2)
    report = MldV2Report(
        (
            GroupRecord(CHANGE_TO_EXCLUDE, GROUP),
            GroupRecord(ALLOW_NEW_SOURCES, from_ipaddress("ff05::2"), (S1, S2)),
            GroupRecord(BLOCK_OLD_SOURCES, from_ipaddress("ff05::3"), (S2,)),
        )
    )
    pkt = to_scapy(report.build(LL_A, ALL_MLDV2_ROUTERS), dst=ALL_MLDV2_ROUTERS)
    r = pkt[ICMPv6MLReport2]
    assert r.records_number == 3
    assert [(x.rtype, x.dst, x.sources) for x in scapy_records(r)] == [
        (CHANGE_TO_EXCLUDE, "ff05::1:3", []),
        (ALLOW_NEW_SOURCES, "ff05::2", ["2001:db8::51", "2001:db8::52"]),
        (BLOCK_OLD_SOURCES, "ff05::3", ["2001:db8::52"]),
    ]
    assert scapy_agrees_on_checksum(pkt, ICMPv6MLReport2)


def test_mld_max_response_code_encoding() -> None:
    assert mld.decode_code16(1000) == 1000
    assert mld.decode_code16(0xFFFF) == (0xFFF | 0x1000) << 10
    for value in (0, 32767, 32768, 40000, 1_000_000, 8_387_584):
        code = mld.encode_code16(value)
        decoded = mld.decode_code16(code)
        assert decoded <= value and (value - decoded) <= value >> 12


def test_parsers_refuse_other_icmpv6_types() -> None:
    echo = Icmpv6Packet.parse(Icmpv6Repr.echo_request(1, 1).build(b"", LL_A, LL_B), LL_A, LL_B)
    assert isinstance(echo, Icmpv6Packet)
    assert ndp.parse(echo) is WireError.UNSUPPORTED
    assert mld.parse(echo) is WireError.UNSUPPORTED


_RECORDS = st.lists(
    st.builds(
        GroupRecord,
        record_type=st.integers(0, 255),
        group=_ADDR16,
        sources=st.lists(_ADDR16, max_size=3).map(tuple),
        aux_data=st.binary(max_size=8).map(lambda b: b + bytes(-len(b) % 4)),
    ),
    max_size=3,
).map(tuple)
_MLD_MESSAGES = st.one_of(
    st.builds(MldV1Query, max_resp_delay=st.integers(0, 0xFFFF), group=_ADDR16),
    st.builds(MldV1Report, group=_ADDR16),
    st.builds(MldV1Done, group=_ADDR16),
    st.builds(
        MldV2Query,
        max_resp_code=st.integers(0, 0xFFFF),
        group=_ADDR16,
        suppress=st.booleans(),
        qrv=st.integers(0, 7),
        qqic=st.integers(0, 255),
        sources=st.lists(_ADDR16, max_size=3).map(tuple),
    ),
    st.builds(MldV2Report, records=_RECORDS),
)


@FUZZ
@given(_MLD_MESSAGES)
def test_mld_build_then_parse_round_trips(msg: mld.MldMessage) -> None:
    icmp = Icmpv6Packet.parse(msg.build(LL_A, LL_B), LL_A, LL_B)
    assert isinstance(icmp, Icmpv6Packet)
    assert mld.parse(icmp) == msg
