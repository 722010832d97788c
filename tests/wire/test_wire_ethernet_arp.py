"""Ethernet II (with 802.1Q / QinQ) and ARP, both ways against scapy."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether

from stack.wire import WireError
from stack.wire.arp import OP_REPLY, OP_REQUEST, ArpPacket, ArpRepr
from stack.wire.ethernet import (
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_QINQ,
    ETHERTYPE_VLAN,
    EthernetFrame,
    EthernetRepr,
    VlanTag,
    is_multicast_mac,
    mac_from_str,
    mac_to_str,
    multicast_mac_v4,
    multicast_mac_v6,
)
from stack.wire.ip import from_ipaddress

FUZZ = settings.get_profile("vnet-wire")

MAC_A = mac_from_str("02:00:00:00:00:0a")
MAC_B = mac_from_str("02:00:00:00:00:0b")


def parse_frame(data: bytes) -> EthernetFrame:
    frame = EthernetFrame.parse(data)
    assert isinstance(frame, EthernetFrame), frame
    return frame


def test_scapy_untagged_frame_parses() -> None:
    data = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:00:0a") / IP() / b"x")
    frame = parse_frame(data)
    assert frame.dst == b"\xff" * 6
    assert frame.src == MAC_A
    assert frame.ethertype == ETHERTYPE_IPV4
    assert frame.tags == ()
    assert frame.vlan_id is None
    assert frame.header_len == 14
    assert bytes(frame.payload) == data[14:]


def test_scapy_dot1q_frame_parses_vid_pcp_dei_and_inner_type() -> None:
    data = bytes(
        Ether(dst="02:00:00:00:00:0b", src="02:00:00:00:00:0a")
        / Dot1Q(vlan=1234, prio=5, dei=1)
        / ARP()
    )
    frame = parse_frame(data)
    assert frame.ethertype == ETHERTYPE_ARP
    assert frame.tags == (VlanTag(vid=1234, pcp=5, dei=True, tpid=ETHERTYPE_VLAN),)
    assert frame.vlan_id == 1234
    assert frame.header_len == 18
    assert bytes(frame.payload) == data[18:]


def test_scapy_qinq_frame_parses_both_tags_outermost_first() -> None:
    data = bytes(
        Ether(dst="02:00:00:00:00:0b", src="02:00:00:00:00:0a")
        / Dot1AD(vlan=100, prio=1)
        / Dot1Q(vlan=7)
        / IP()
    )
    frame = parse_frame(data)
    assert [t.tpid for t in frame.tags] == [ETHERTYPE_QINQ, ETHERTYPE_VLAN]
    assert [t.vid for t in frame.tags] == [100, 7]
    assert frame.tags[0].pcp == 1
    assert frame.vlan_id == 100
    assert frame.ethertype == ETHERTYPE_IPV4
    assert frame.header_len == 22


def test_our_tagged_frame_parses_in_scapy() -> None:
    repr_ = EthernetRepr(
        dst=MAC_B,
        src=MAC_A,
        ethertype=ETHERTYPE_IPV6,
        tags=(VlanTag(vid=300, pcp=2, tpid=ETHERTYPE_QINQ), VlanTag(vid=42, pcp=6, dei=True)),
    )
    data = repr_.build(b"payload")
    pkt = Ether(data)
    assert pkt.dst == "02:00:00:00:00:0b"
    assert pkt.src == "02:00:00:00:00:0a"
    assert pkt[Dot1AD].vlan == 300 and pkt[Dot1AD].prio == 2
    assert pkt[Dot1Q].vlan == 42 and pkt[Dot1Q].prio == 6 and pkt[Dot1Q].dei == 1
    assert pkt[Dot1Q].type == ETHERTYPE_IPV6
    assert len(data) == repr_.header_len + 7


def test_padding_to_minimum_frame_and_round_trip() -> None:
    repr_ = EthernetRepr(dst=MAC_B, src=MAC_A, ethertype=ETHERTYPE_ARP)
    data = repr_.build(b"\x01\x02", pad=True)
    assert len(data) == 60
    assert data[14:16] == b"\x01\x02" and data[16:] == bytes(44)
    assert parse_frame(data).to_repr() == repr_


def test_emit_into_writes_at_offset_without_touching_the_rest() -> None:
    buf = bytearray(b"\xaa" * 40)
    end = EthernetRepr(dst=MAC_B, src=MAC_A, ethertype=0x1234, tags=(VlanTag(5),)).emit_into(buf, 3)
    assert end == 3 + 18
    assert buf[:3] == b"\xaa" * 3 and buf[end:] == b"\xaa" * (40 - end)
    frame = parse_frame(bytes(buf[3:]))
    assert frame.ethertype == 0x1234 and frame.vlan_id == 5


@FUZZ
@given(
    st.binary(min_size=6, max_size=6),
    st.binary(min_size=6, max_size=6),
    st.integers(0x0600, 0xFFFF).filter(lambda t: t not in (ETHERTYPE_VLAN, ETHERTYPE_QINQ)),
    st.lists(
        st.builds(
            VlanTag,
            vid=st.integers(0, 4095),
            pcp=st.integers(0, 7),
            dei=st.booleans(),
            tpid=st.sampled_from([ETHERTYPE_VLAN, ETHERTYPE_QINQ]),
        ),
        max_size=2,
    ),
    st.binary(max_size=64),
)
def test_build_then_parse_round_trips(
    dst: bytes, src: bytes, ethertype: int, tags: list[VlanTag], payload: bytes
) -> None:
    repr_ = EthernetRepr(dst, src, ethertype, tuple(tags))
    frame = parse_frame(repr_.build(payload))
    assert frame.to_repr() == repr_
    assert bytes(frame.payload) == payload


def test_mac_helpers() -> None:
    assert mac_to_str(MAC_A) == "02:00:00:00:00:0a"
    assert mac_from_str("02-00-00-00-00-0A") == MAC_A
    assert is_multicast_mac(b"\x01\x00\x5e\x00\x00\x01") and not is_multicast_mac(MAC_A)
    assert multicast_mac_v4(from_ipaddress("239.129.2.3")) == bytes.fromhex("01005e010203")
    assert multicast_mac_v6(from_ipaddress("ff02::1:ff12:3456")) == bytes.fromhex("3333ff123456")


def test_scapy_arp_request_and_reply_parse() -> None:
    req = bytes(ARP(op=1, hwsrc="02:00:00:00:00:0a", psrc="10.0.0.1", pdst="10.0.0.2"))
    pkt = ArpPacket.parse(req)
    assert isinstance(pkt, ArpPacket)
    assert pkt.operation == OP_REQUEST
    assert pkt.sender_mac == MAC_A
    assert pkt.sender_ip == from_ipaddress("10.0.0.1")
    assert pkt.target_ip == from_ipaddress("10.0.0.2")
    rep = bytes(
        ARP(
            op=2,
            hwsrc="02:00:00:00:00:0b",
            psrc="10.0.0.2",
            hwdst="02:00:00:00:00:0a",
            pdst="10.0.0.1",
        )
    )
    pkt = ArpPacket.parse(rep + bytes(18))  # with Ethernet padding after it
    assert isinstance(pkt, ArpPacket)
    assert pkt.operation == OP_REPLY
    assert (pkt.sender_mac, pkt.target_mac) == (MAC_B, MAC_A)


def test_our_arp_request_and_reply_parse_in_scapy() -> None:
    ip_a, ip_b = from_ipaddress("10.0.0.1"), from_ipaddress("10.0.0.2")
    request = ArpRepr.request(MAC_A, ip_a, ip_b)
    frame = EthernetRepr(b"\xff" * 6, MAC_A, ETHERTYPE_ARP).build(request.build())
    pkt = Ether(frame)
    assert pkt[ARP].op == 1 and pkt[ARP].hwtype == 1 and pkt[ARP].ptype == 0x0800
    assert pkt[ARP].hwsrc == "02:00:00:00:00:0a" and pkt[ARP].psrc == "10.0.0.1"
    assert pkt[ARP].pdst == "10.0.0.2" and pkt[ARP].hwdst == "00:00:00:00:00:00"
    reply = ArpRepr.reply_to(request, MAC_B)
    arp = ARP(reply.build())
    assert arp.op == 2 and arp.hwsrc == "02:00:00:00:00:0b" and arp.psrc == "10.0.0.2"
    assert arp.hwdst == "02:00:00:00:00:0a" and arp.pdst == "10.0.0.1"
    parsed = ArpPacket.parse(reply.build())
    assert not isinstance(parsed, WireError) and parsed.to_repr() == reply
