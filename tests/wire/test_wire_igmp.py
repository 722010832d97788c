"""IGMP v1/v2/v3, both ways against scapy (scapy.contrib.igmp / igmpv3)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.igmp import IGMP, IGMPv3_MQ, IGMPv3_MR, IGMPv3_MR_Group
from scapy.layers.inet import IP
from scapy.packet import Packet

from stack.wire import WireError, igmp
from stack.wire.igmp import (
    ALLOW_NEW_SOURCES,
    BLOCK_OLD_SOURCES,
    CHANGE_TO_EXCLUDE,
    CHANGE_TO_INCLUDE,
    MODE_IS_EXCLUDE,
    MODE_IS_INCLUDE,
    GroupRecord,
    IgmpLeave,
    IgmpV1Report,
    IgmpV2Query,
    IgmpV2Report,
    IgmpV3Query,
    IgmpV3Report,
)
from stack.wire.ip import PROTO_IGMP, from_ipaddress
from stack.wire.ipv4 import Ipv4Packet, Ipv4Repr, router_alert_option

FUZZ = settings.get_profile("vnet-wire")

GROUP = from_ipaddress("239.1.2.3")
SRC1 = from_ipaddress("10.0.0.5")
SRC2 = from_ipaddress("10.0.0.6")
HOST = from_ipaddress("10.0.0.1")


def parse(data: bytes) -> igmp.IgmpMessage:
    msg = igmp.parse(data)
    assert not isinstance(msg, WireError), msg
    return msg


def ip_payload(pkt: Packet) -> bytes:
    """The IGMP bytes of a scapy IP packet, after scapy filled in lengths and checksums."""
    ip = IP(bytes(pkt))
    return bytes(ip)[ip.ihl * 4 :]


def scapy_agrees_on_checksum(layer: Packet) -> bool:
    sent = layer.chksum
    copy = layer.copy()
    del copy.chksum
    return layer.__class__(bytes(copy)).chksum == sent


def test_scapy_v1_v2_messages_parse() -> None:
    assert parse(ip_payload(IP() / IGMP(type=0x11, mrcode=100, gaddr="0.0.0.0"))) == IgmpV2Query(
        100, bytes(4)
    )
    v1q = parse(ip_payload(IP() / IGMP(type=0x11, mrcode=0, gaddr="0.0.0.0")))
    assert isinstance(v1q, IgmpV2Query) and v1q.is_v1
    assert parse(ip_payload(IP() / IGMP(type=0x12, gaddr="239.1.2.3"))) == IgmpV1Report(GROUP)
    assert parse(ip_payload(IP() / IGMP(type=0x16, gaddr="239.1.2.3"))) == IgmpV2Report(GROUP)
    assert parse(ip_payload(IP() / IGMP(type=0x17, gaddr="239.1.2.3"))) == IgmpLeave(GROUP)


def test_scapy_v3_query_with_sources_parses() -> None:
    layer = IGMPv3_MQ(
        mrcode=100, gaddr="239.1.2.3", s=1, qrv=2, qqic=125, srcaddrs=["10.0.0.5", "10.0.0.6"]
    )
    msg = parse(ip_payload(IP(dst="239.1.2.3") / layer))
    assert msg == IgmpV3Query(100, GROUP, True, 2, 125, (SRC1, SRC2))
    assert isinstance(msg, IgmpV3Query)
    assert msg.max_resp_time == 100 and msg.query_interval == 125


def test_scapy_v3_query_float_max_resp_code_decodes() -> None:
    data = ip_payload(IP() / IGMPv3_MQ(mrcode=1000))  # scapy takes tenths of a second
    msg = parse(data)
    assert isinstance(msg, IgmpV3Query) and msg.max_resp_code == data[1] >= 128
    assert 1000 - 1000 // 16 <= msg.max_resp_time <= 1000


def test_scapy_v3_report_with_every_record_type_parses() -> None:
    rtypes = [
        MODE_IS_INCLUDE,
        MODE_IS_EXCLUDE,
        CHANGE_TO_INCLUDE,
        CHANGE_TO_EXCLUDE,
        ALLOW_NEW_SOURCES,
        BLOCK_OLD_SOURCES,
    ]
    records = [
        IGMPv3_MR_Group(rtype=t, maddr=f"239.0.0.{t}", srcaddrs=["10.0.0.5", "10.0.0.6"][: t % 3])
        for t in rtypes
    ]
    msg = parse(ip_payload(IP(dst="224.0.0.22") / IGMPv3_MR(records=records)))
    assert isinstance(msg, IgmpV3Report)
    assert [r.record_type for r in msg.records] == rtypes
    assert [r.group for r in msg.records] == [from_ipaddress(f"239.0.0.{t}") for t in rtypes]
    assert [r.sources for r in msg.records] == [(SRC1, SRC2)[: t % 3] for t in rtypes]


def test_scapy_report_inside_ip_with_router_alert() -> None:
    data = bytes(
        IP(src="10.0.0.1", dst="224.0.0.22")
        / IGMPv3_MR(records=[IGMPv3_MR_Group(rtype=4, maddr="239.1.2.3")])
    )
    ip = Ipv4Packet.parse(data)
    assert isinstance(ip, Ipv4Packet)
    assert ip.protocol == PROTO_IGMP and ip.router_alert and ip.ttl == 1
    assert parse(bytes(ip.payload)) == IgmpV3Report((GroupRecord(CHANGE_TO_EXCLUDE, GROUP),))


def test_our_v1_v2_messages_parse_in_scapy() -> None:
    cases: list[tuple[igmp.IgmpMessage, int, int, str]] = [
        (IgmpV2Query(100, bytes(4)), 0x11, 100, "0.0.0.0"),
        (IgmpV1Report(GROUP), 0x12, 0, "239.1.2.3"),
        (IgmpV2Report(GROUP), 0x16, 0, "239.1.2.3"),
        (IgmpLeave(GROUP), 0x17, 0, "239.1.2.3"),
    ]
    for msg, mtype, mrcode, gaddr in cases:
        layer = IGMP(msg.build())
        assert (layer.type, layer.mrcode, layer.gaddr) == (mtype, mrcode, gaddr)
        assert scapy_agrees_on_checksum(layer)


def test_our_v3_query_parses_in_scapy() -> None:
    data = IgmpV3Query(igmp.encode_code8(100), GROUP, True, 2, 60, (SRC1, SRC2)).build()
    layer = IGMPv3_MQ(data)
    assert (layer.gaddr, layer.s, layer.qrv, layer.qqic, layer.numsrc) == ("239.1.2.3", 1, 2, 60, 2)
    assert layer.srcaddrs == ["10.0.0.5", "10.0.0.6"]
    assert scapy_agrees_on_checksum(layer)


def test_our_v3_report_parses_in_scapy_inside_ip() -> None:
    report = IgmpV3Report(
        (
            GroupRecord(MODE_IS_EXCLUDE, GROUP),
            GroupRecord(ALLOW_NEW_SOURCES, from_ipaddress("239.9.9.9"), (SRC1, SRC2)),
            GroupRecord(BLOCK_OLD_SOURCES, from_ipaddress("239.9.9.9"), (SRC2,)),
        )
    )
    ip = Ipv4Repr(HOST, igmp.ALL_V3_ROUTERS, PROTO_IGMP, ttl=1, options=router_alert_option())
    pkt = IP(ip.build(report.build()))
    layer = pkt[IGMPv3_MR]
    assert layer.numgrp == 3
    assert [(r.rtype, r.maddr, r.srcaddrs) for r in layer.records] == [
        (MODE_IS_EXCLUDE, "239.1.2.3", []),
        (ALLOW_NEW_SOURCES, "239.9.9.9", ["10.0.0.5", "10.0.0.6"]),
        (BLOCK_OLD_SOURCES, "239.9.9.9", ["10.0.0.6"]),
    ]
    assert scapy_agrees_on_checksum(layer)


def test_code8_float_encoding() -> None:
    assert igmp.decode_code8(127) == 127
    assert igmp.decode_code8(0xFF) == 0x1F << 10
    for value in (0, 127, 128, 200, 1000, 31744):
        decoded = igmp.decode_code8(igmp.encode_code8(value))
        assert decoded <= value and value - decoded <= value >> 4


_ADDR4 = st.binary(min_size=4, max_size=4)
_IGMP_MESSAGES = st.one_of(
    st.builds(IgmpV2Query, max_resp_time=st.integers(0, 255), group=_ADDR4),
    st.builds(
        IgmpV3Query,
        max_resp_code=st.integers(0, 255),
        group=_ADDR4,
        suppress=st.booleans(),
        qrv=st.integers(0, 7),
        qqic=st.integers(0, 255),
        sources=st.lists(_ADDR4, max_size=4).map(tuple),
    ),
    st.builds(IgmpV1Report, group=_ADDR4),
    st.builds(IgmpV2Report, group=_ADDR4),
    st.builds(IgmpLeave, group=_ADDR4),
    st.builds(
        IgmpV3Report,
        records=st.lists(
            st.builds(
                GroupRecord,
                record_type=st.integers(0, 255),
                group=_ADDR4,
                sources=st.lists(_ADDR4, max_size=3).map(tuple),
                aux_data=st.binary(max_size=8).map(lambda b: b + bytes(-len(b) % 4)),
            ),
            max_size=4,
        ).map(tuple),
    ),
)


@FUZZ
@given(_IGMP_MESSAGES)
def test_build_then_parse_round_trips(msg: igmp.IgmpMessage) -> None:
    assert igmp.parse(msg.build()) == msg
