"""Malformed input: a table of hand-made bad frames, truncation sweeps, and fuzzing.

Every parser must return a parsed object or a ``WireError`` and never raise,
and every accessor of a returned object must be safe. The hand-made corpus
pins the specific reason for each kind of damage (the stack's drop-counter
keys). Fuzz tests use the ``vnet-wire`` hypothesis profile (see conftest.py);
``VNET_FUZZ=long`` makes them run 20000 examples each::

    VNET_FUZZ=long .venv/bin/pytest tests/wire -q -k fuzz
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.wire import WireError, igmp, ipv4, ipv6, mld, ndp
from stack.wire.arp import ArpPacket, ArpRepr
from stack.wire.checksum import internet_checksum, pseudo_header_v6, verify
from stack.wire.ethernet import (
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_QINQ,
    EthernetFrame,
    EthernetRepr,
    VlanTag,
)
from stack.wire.icmpv4 import Icmpv4Packet, Icmpv4Repr
from stack.wire.icmpv6 import Icmpv6Packet, Icmpv6Repr
from stack.wire.ip import (
    PROTO_AH,
    PROTO_DSTOPTS,
    PROTO_FRAGMENT,
    PROTO_HOPOPT,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_IGMP,
    PROTO_ROUTING,
    PROTO_UDP,
    from_ipaddress,
)
from stack.wire.ipv4 import Ipv4Packet, Ipv4Repr, router_alert_option
from stack.wire.ipv6 import FragmentHeaderRepr, Ipv6Packet, Ipv6Repr, OptionsHeaderRepr
from stack.wire.udp import UdpPacket, UdpRepr

FUZZ = settings.get_profile("vnet-wire")

MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")
SRC4, DST4 = from_ipaddress("192.0.2.1"), from_ipaddress("192.0.2.2")
SRC6, DST6 = from_ipaddress("fe80::a"), from_ipaddress("fe80::b")
G4 = from_ipaddress("239.1.1.1")
G6 = from_ipaddress("ff05::1:3")
S6 = from_ipaddress("2001:db8::5")

# --- checksum fixers: damage one field, keep the checksum right -------------


def fix_ipv4(data: bytes) -> bytes:
    """Recompute the IPv4 header checksum, if the header the IHL claims is present."""
    if len(data) < 20:
        return data
    hlen = (data[0] & 0xF) * 4
    if hlen < 20 or len(data) < hlen:
        return data
    out = bytearray(data)
    out[10:12] = b"\x00\x00"
    out[10:12] = struct.pack("!H", internet_checksum(out[:hlen]))
    return bytes(out)


def _fix_at(data: bytes, at: int, initial: int = 0) -> bytes:
    if len(data) < at + 2:
        return data
    out = bytearray(data)
    out[at : at + 2] = b"\x00\x00"
    out[at : at + 2] = struct.pack("!H", internet_checksum(out, initial))
    return bytes(out)


def fix_icmpv4(data: bytes) -> bytes:
    return _fix_at(data, 2)


def fix_igmp(data: bytes) -> bytes:
    return _fix_at(data, 2)


def fix_icmpv6(data: bytes) -> bytes:
    return _fix_at(data, 2, pseudo_header_v6(SRC6, DST6, PROTO_ICMPV6, len(data)))


def fix_udp4(data: bytes) -> bytes:
    if len(data) < 8:
        return data
    return UdpRepr(*struct.unpack_from("!HH", data)).build(data[8:], SRC4, DST4)[: len(data)]


def fix_udp6(data: bytes) -> bytes:
    if len(data) < 8:
        return data
    return UdpRepr(*struct.unpack_from("!HH", data)).build(data[8:], SRC6, DST6)[: len(data)]


def patch(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


# --- parsers as the stack would call them ----------------------------------


def parse_icmpv6(data: bytes) -> object:
    return Icmpv6Packet.parse(data, SRC6, DST6)


def parse_ndp(data: bytes) -> object:
    icmp = Icmpv6Packet.parse(data, SRC6, DST6)
    return icmp if isinstance(icmp, WireError) else ndp.parse(icmp)


def parse_mld(data: bytes) -> object:
    icmp = Icmpv6Packet.parse(data, SRC6, DST6)
    return icmp if isinstance(icmp, WireError) else mld.parse(icmp)


def parse_udp4(data: bytes) -> object:
    return UdpPacket.parse(data, SRC4, DST4)


def parse_udp6(data: bytes) -> object:
    return UdpPacket.parse(data, SRC6, DST6)


def dissect(frame: bytes) -> list[object]:
    """Walk a whole Ethernet frame through every layer, checksums unverified,
    the way the stack's input path does; return each layer's result."""
    layers: list[object] = []
    eth = EthernetFrame.parse(frame)
    layers.append(eth)
    if isinstance(eth, WireError):
        return layers
    if eth.ethertype == ETHERTYPE_ARP:
        layers.append(ArpPacket.parse(eth.payload))
    elif eth.ethertype == ETHERTYPE_IPV4:
        ip4 = Ipv4Packet.parse(eth.payload, verify_checksum=False)
        layers.append(ip4)
        if isinstance(ip4, Ipv4Packet):
            if ip4.protocol == PROTO_UDP:
                layers.append(UdpPacket.parse(ip4.payload, ip4.src, ip4.dst, verify_checksum=False))
            elif ip4.protocol == PROTO_ICMP:
                icmp4 = Icmpv4Packet.parse(ip4.payload, verify_checksum=False)
                layers.append(icmp4)
                if isinstance(icmp4, Icmpv4Packet) and icmp4.invoking_packet is not None:
                    layers.append(Ipv4Packet.parse(icmp4.invoking_packet, partial=True))
            elif ip4.protocol == PROTO_IGMP:
                layers.append(igmp.parse(ip4.payload, verify_checksum=False))
    elif eth.ethertype == ETHERTYPE_IPV6:
        ip6 = Ipv6Packet.parse(eth.payload)
        layers.append(ip6)
        if isinstance(ip6, Ipv6Packet) and ip6.fragment is None:
            upper = ip6.upper_payload
            if ip6.upper_protocol == PROTO_UDP:
                layers.append(UdpPacket.parse(upper, ip6.src, ip6.dst, verify_checksum=False))
            elif ip6.upper_protocol == PROTO_ICMPV6:
                icmp6 = Icmpv6Packet.parse(upper, ip6.src, ip6.dst, verify_checksum=False)
                layers.append(icmp6)
                if isinstance(icmp6, Icmpv6Packet):
                    layers.append(ndp.parse(icmp6))
                    layers.append(mld.parse(icmp6))
                    if icmp6.invoking_packet is not None:
                        layers.append(Ipv6Packet.parse(icmp6.invoking_packet, partial=True))
    return layers


# --- valid samples ---------------------------------------------------------

ETH = EthernetRepr(MAC_B, MAC_A, ETHERTYPE_IPV4).build(b"x" * 46)
ETH_TAGGED = EthernetRepr(MAC_B, MAC_A, ETHERTYPE_IPV4, (VlanTag(5, 3),)).build(b"x" * 42)
ARP = ArpRepr.request(MAC_A, SRC4, DST4).build()
V4 = Ipv4Repr(SRC4, DST4, PROTO_UDP, ident=7).build(b"payload!")
V4_OPTS = Ipv4Repr(SRC4, DST4, PROTO_IGMP, ttl=1, options=router_alert_option()).build(b"payload!")
V4_FRAG = Ipv4Repr(SRC4, DST4, PROTO_UDP, ident=9, more_frags=True, frag_offset=3).build(bytes(16))
V6 = Ipv6Repr(SRC6, DST6, PROTO_UDP).build(b"payload!")
V6_CHAIN = Ipv6Repr(SRC6, DST6, PROTO_HOPOPT).build(
    OptionsHeaderRepr.router_alert(PROTO_DSTOPTS).build()
    + OptionsHeaderRepr(PROTO_ROUTING, ((0x1E, b"abc"), (0xC7, b"z"))).build()
    + bytes((PROTO_FRAGMENT, 2, 4, 0))
    + bytes(4)
    + S6  # routing header, type 4, 1 segment
    + FragmentHeaderRepr(PROTO_UDP, 0, True, 0xABCDEF).build()
    + b"fragment data..."
)
ICMP4 = Icmpv4Repr.echo_request(1, 1).build(b"ping")
ICMP4_ERR = Icmpv4Repr.frag_needed(1400).build(V4[:28])
ICMP6 = Icmpv6Repr.echo_request(1, 1).build(b"ping", SRC6, DST6)
ICMP6_ERR = Icmpv6Repr.packet_too_big(1280).build(V6_CHAIN[:80], SRC6, DST6)
NS = ndp.NeighborSolicit(DST6, ndp.NdpOptions(source_lladdr=MAC_A)).build(SRC6, DST6)
RA = ndp.RouterAdvert(
    options=ndp.NdpOptions(
        source_lladdr=MAC_A,
        mtu=1500,
        prefixes=(ndp.PrefixInfo(64, from_ipaddress("2001:db8::")),),
        other=((ndp.OPT_RDNSS, bytes(22)),),
    )
).build(SRC6, DST6)
REDIRECT = ndp.Redirect(
    DST6, S6, ndp.NdpOptions(target_lladdr=MAC_B, redirected_header=V6[:40])
).build(SRC6, DST6)
RA_BARE = ndp.RouterAdvert().build(SRC6, DST6)
MLD_Q1 = mld.MldV1Query(1000, bytes(16)).build(SRC6, DST6)
MLD_Q2 = mld.MldV2Query(1000, G6, True, 2, 125, (S6, S6)).build(SRC6, DST6)
MLD_R2 = mld.MldV2Report(
    (mld.GroupRecord(mld.MODE_IS_INCLUDE, G6, (S6,), b"abcd"), mld.GroupRecord(4, G6))
).build(SRC6, DST6)
IGMP_Q2 = igmp.IgmpV2Query(100, G4).build()
IGMP_Q3 = igmp.IgmpV3Query(100, G4, True, 2, 125, (SRC4, DST4)).build()
IGMP_R3 = igmp.IgmpV3Report(
    (igmp.GroupRecord(igmp.ALLOW_NEW_SOURCES, G4, (SRC4,), b"abcd"), igmp.GroupRecord(2, G4))
).build()
UDP4 = UdpRepr(1, 2).build(b"data", SRC4, DST4)
UDP6 = UdpRepr(1, 2).build(b"data", SRC6, DST6)


def frame(ethertype: int, payload: bytes, tags: tuple[VlanTag, ...] = ()) -> bytes:
    return EthernetRepr(MAC_B, MAC_A, ethertype, tags).build(payload)


FRAMES = [
    frame(ETHERTYPE_ARP, ARP),
    frame(ETHERTYPE_IPV4, Ipv4Repr(SRC4, DST4, PROTO_UDP).build(UDP4), (VlanTag(7),)),
    frame(ETHERTYPE_IPV4, Ipv4Repr(SRC4, DST4, PROTO_ICMP).build(ICMP4_ERR)),
    frame(
        ETHERTYPE_IPV4,
        Ipv4Repr(SRC4, DST4, PROTO_IGMP, options=router_alert_option()).build(IGMP_R3),
    ),
    frame(ETHERTYPE_IPV6, Ipv6Repr(SRC6, DST6, PROTO_UDP).build(UDP6)),
    frame(ETHERTYPE_IPV6, Ipv6Repr(SRC6, DST6, PROTO_ICMPV6).build(ICMP6_ERR)),
    frame(
        ETHERTYPE_IPV6,
        Ipv6Repr(SRC6, DST6, PROTO_ICMPV6).build(RA),
        (VlanTag(1, tpid=ETHERTYPE_QINQ), VlanTag(2)),
    ),
    frame(
        ETHERTYPE_IPV6,
        Ipv6Repr(SRC6, DST6, PROTO_HOPOPT).build(
            OptionsHeaderRepr.router_alert(PROTO_ICMPV6).build() + MLD_R2
        ),
    ),
    frame(ETHERTYPE_IPV6, V6_CHAIN),
]


@dataclass(frozen=True)
class Format:
    name: str
    parse: Callable[[bytes], object]
    samples: tuple[bytes, ...]
    fix: Callable[[bytes], bytes] | None = None
    #: every strict prefix of a sample is an error (the format has a length field)
    strict_prefixes: bool = False


FORMATS = [
    Format("ethernet", EthernetFrame.parse, (ETH, ETH_TAGGED)),
    Format("arp", ArpPacket.parse, (ARP,), strict_prefixes=True),
    Format("ipv4", Ipv4Packet.parse, (V4, V4_OPTS, V4_FRAG), fix_ipv4, strict_prefixes=True),
    Format(
        "ipv4-partial",
        lambda b: Ipv4Packet.parse(b, partial=True, verify_checksum=False),
        (V4, V4_OPTS, V4_FRAG),
    ),
    Format("ipv6", Ipv6Packet.parse, (V6, V6_CHAIN), strict_prefixes=True),
    Format("ipv6-partial", lambda b: Ipv6Packet.parse(b, partial=True), (V6, V6_CHAIN)),
    Format("icmpv4", Icmpv4Packet.parse, (ICMP4, ICMP4_ERR), fix_icmpv4),
    Format("icmpv6", parse_icmpv6, (ICMP6, ICMP6_ERR), fix_icmpv6),
    Format("ndp", parse_ndp, (NS, RA, REDIRECT), fix_icmpv6),
    Format("mld", parse_mld, (MLD_Q1, MLD_Q2, MLD_R2), fix_icmpv6),
    Format("igmp", igmp.parse, (IGMP_Q2, IGMP_Q3, IGMP_R3), fix_igmp),
    Format("udp4", parse_udp4, (UDP4,), fix_udp4, strict_prefixes=True),
    Format("udp6", parse_udp6, (UDP6,), fix_udp6, strict_prefixes=True),
    Format("frame", dissect, tuple(FRAMES)),
]
FORMAT_IDS = [f.name for f in FORMATS]


# --- reading everything a parse returned -----------------------------------


def exercise(obj: object) -> None:
    """Read every public attribute and property of a parse result (recursively)."""
    repr(obj)
    if isinstance(obj, list | tuple):
        for item in obj:
            exercise(item)
        return
    if isinstance(obj, WireError) or not type(obj).__module__.startswith("stack.wire"):
        return
    for name in dir(obj):
        if name.startswith("_"):
            continue
        value = getattr(obj, name)
        if callable(value):
            continue
        if isinstance(value, memoryview):
            value.tobytes()
        else:
            exercise(value)
    if isinstance(obj, Ipv4Packet):
        list(ipv4.iter_options(obj.options))
        obj.to_repr().build(obj.payload)
    if isinstance(obj, ipv6.Ipv6OptionsHeader):
        list(ipv6.iter_options(obj.options))


def check_result(fmt: Format, data: bytes) -> object:
    result = fmt.parse(data)
    exercise(result)
    if fmt.name != "frame":
        assert isinstance(result, WireError) or type(result).__module__.startswith("stack.wire")
    return result


# --- the hand-made corpus --------------------------------------------------


def _three_tags() -> bytes:
    tag = struct.pack("!HH", 0x8100, 5)
    return MAC_B + MAC_A + tag * 3 + struct.pack("!H", ETHERTYPE_IPV4) + bytes(40)


def _v6(next_header: int, payload: bytes) -> bytes:
    return Ipv6Repr(SRC6, DST6, next_header).build(payload)


def _destopts_chain(n: int) -> bytes:
    return _v6(PROTO_DSTOPTS, (bytes((PROTO_DSTOPTS, 0)) + bytes((1, 4, 0, 0, 0, 0))) * n)


def _hbh(area: bytes, next_header: int = PROTO_UDP) -> bytes:
    assert (len(area) + 2) % 8 == 0
    return _v6(PROTO_HOPOPT, bytes((next_header, (len(area) + 2) // 8 - 1)) + area + UDP6)


def _v4_options(options: bytes) -> bytes:
    hlen = 20 + len(options)
    head = bytearray(V4[:20])
    head[0] = 0x40 | hlen // 4
    head[2:4] = struct.pack("!H", hlen + 8)
    return fix_ipv4(bytes(head) + options + b"payload!")


E = WireError
ETH_P, ARP_P, IP4_P, IP6_P = (
    EthernetFrame.parse,
    ArpPacket.parse,
    Ipv4Packet.parse,
    Ipv6Packet.parse,
)
ICMP4_P, IGMP_P = Icmpv4Packet.parse, igmp.parse

CORPUS: list[tuple[str, Callable[[bytes], object], bytes, WireError]] = [
    # Ethernet
    ("eth-empty", ETH_P, b"", E.TRUNCATED),
    ("eth-13-bytes", ETH_P, ETH[:13], E.TRUNCATED),
    ("eth-tag-cut", ETH_P, ETH_TAGGED[:16], E.TRUNCATED),
    ("eth-three-tags", ETH_P, _three_tags(), E.TOO_MANY_HEADERS),
    # ARP
    ("arp-5-bytes", ARP_P, ARP[:5], E.TRUNCATED),
    ("arp-27-bytes", ARP_P, ARP[:27], E.TRUNCATED),
    ("arp-hw-not-ethernet", ARP_P, patch(ARP, 0, b"\x00\x06"), E.UNSUPPORTED),
    ("arp-proto-ipv6", ARP_P, patch(ARP, 2, b"\x86\xdd"), E.UNSUPPORTED),
    ("arp-hlen-lies", ARP_P, patch(ARP, 4, b"\x08"), E.BAD_LENGTH),
    # IPv4
    ("ipv4-19-bytes", IP4_P, V4[:19], E.TRUNCATED),
    ("ipv4-version-6", IP4_P, fix_ipv4(patch(V4, 0, b"\x65")), E.BAD_VERSION),
    ("ipv4-ihl-4", IP4_P, patch(V4, 0, b"\x44"), E.BAD_LENGTH),
    ("ipv4-ihl-past-buffer", IP4_P, patch(V4, 0, b"\x4f"), E.TRUNCATED),
    ("ipv4-total-below-ihl", IP4_P, fix_ipv4(patch(V4, 2, b"\x00\x13")), E.BAD_LENGTH),
    ("ipv4-total-lies", IP4_P, fix_ipv4(patch(V4, 2, struct.pack("!H", len(V4) + 1))), E.TRUNCATED),
    ("ipv4-oversize", IP4_P, fix_ipv4(patch(V4, 2, b"\xff\xff")), E.TRUNCATED),
    ("ipv4-bad-checksum", IP4_P, patch(V4, 10, bytes((V4[10] ^ 1,))), E.BAD_CHECKSUM),
    ("ipv4-option-len-0", IP4_P, _v4_options(b"\x07\x00\x00\x00"), E.BAD_OPTION),
    ("ipv4-option-len-1", IP4_P, _v4_options(b"\x01\x07\x01\x00"), E.BAD_OPTION),
    ("ipv4-option-past-header", IP4_P, _v4_options(b"\x07\x08\x04\x00"), E.BAD_OPTION),
    ("ipv4-option-no-length", IP4_P, _v4_options(b"\x01\x01\x01\x07"), E.BAD_OPTION),
    # IPv6
    ("ipv6-39-bytes", IP6_P, V6[:39], E.TRUNCATED),
    ("ipv6-version-4", IP6_P, patch(V6, 0, b"\x40"), E.BAD_VERSION),
    ("ipv6-payload-length-lies", IP6_P, patch(V6, 4, struct.pack("!H", len(V6) - 39)), E.TRUNCATED),
    ("ipv6-oversize", IP6_P, patch(V6, 4, b"\xff\xff"), E.TRUNCATED),
    (
        "ipv6-hbh-not-first",
        IP6_P,
        _v6(PROTO_DSTOPTS, bytes(8) + b"\x11" + bytes(7)),
        E.BAD_HEADER_CHAIN,
    ),
    ("ipv6-ext-length-lies", IP6_P, _v6(PROTO_DSTOPTS, b"\x11\x05" + bytes(6)), E.TRUNCATED),
    ("ipv6-ext-one-byte", IP6_P, _v6(PROTO_HOPOPT, b"\x11"), E.TRUNCATED),
    ("ipv6-option-overruns", IP6_P, _hbh(b"\x1e\x0a" + bytes(4)), E.BAD_OPTION),
    ("ipv6-option-type-alone", IP6_P, _hbh(b"\x01\x03" + bytes(3) + b"\x1e"), E.BAD_OPTION),
    ("ipv6-router-alert-len-3", IP6_P, _hbh(b"\x05\x03" + bytes(3) + b"\x00"), E.BAD_OPTION),
    ("ipv6-header-loop", IP6_P, _destopts_chain(9), E.TOO_MANY_HEADERS),
    ("ipv6-fragment-cut", IP6_P, _v6(PROTO_FRAGMENT, b"\x11\x00\x00\x01\x00\x00"), E.TRUNCATED),
    ("ipv6-ah-length-lies", IP6_P, _v6(PROTO_AH, b"\x11\x04" + bytes(10)), E.TRUNCATED),
    # ICMPv4 / ICMPv6
    ("icmpv4-7-bytes", ICMP4_P, ICMP4[:7], E.TRUNCATED),
    ("icmpv4-bad-checksum", ICMP4_P, patch(ICMP4, 8, b"P"), E.BAD_CHECKSUM),
    ("icmpv6-7-bytes", parse_icmpv6, ICMP6[:7], E.TRUNCATED),
    ("icmpv6-bad-checksum", parse_icmpv6, patch(ICMP6, 8, b"P"), E.BAD_CHECKSUM),
    ("icmpv6-wrong-addresses", lambda b: Icmpv6Packet.parse(b, DST6, DST6), ICMP6, E.BAD_CHECKSUM),
    # NDP (checksums made valid, so the NDP layout is what fails)
    ("ndp-ns-20-bytes", parse_ndp, fix_icmpv6(NS[:20]), E.TRUNCATED),
    ("ndp-ra-12-bytes", parse_ndp, fix_icmpv6(RA[:12]), E.TRUNCATED),
    ("ndp-redirect-36-bytes", parse_ndp, fix_icmpv6(REDIRECT[:36]), E.TRUNCATED),
    ("ndp-option-len-0", parse_ndp, fix_icmpv6(patch(NS, 25, b"\x00")), E.BAD_OPTION),
    ("ndp-option-overruns", parse_ndp, fix_icmpv6(patch(NS, 25, b"\x02")), E.BAD_OPTION),
    ("ndp-option-trailing-byte", parse_ndp, fix_icmpv6(NS + b"\x01"), E.BAD_OPTION),
    (
        "ndp-prefix-info-len-3",
        parse_ndp,
        fix_icmpv6(RA_BARE + b"\x03\x03" + bytes(22)),
        E.BAD_OPTION,
    ),
    ("ndp-mtu-len-2", parse_ndp, fix_icmpv6(RA_BARE + b"\x05\x02" + bytes(14)), E.BAD_OPTION),
    ("ndp-not-ndp", parse_ndp, ICMP6, E.UNSUPPORTED),
    # MLD
    ("mld-report-20-bytes", parse_mld, fix_icmpv6(patch(MLD_Q1, 0, b"\x83")[:20]), E.TRUNCATED),
    ("mld-query-26-bytes", parse_mld, fix_icmpv6(MLD_Q2[:26]), E.BAD_LENGTH),
    ("mld-query-sources-lie", parse_mld, fix_icmpv6(patch(MLD_Q2, 26, b"\x00\x03")), E.TRUNCATED),
    ("mld-report-records-lie", parse_mld, fix_icmpv6(patch(MLD_R2, 6, b"\x00\x03")), E.TRUNCATED),
    ("mld-record-sources-lie", parse_mld, fix_icmpv6(patch(MLD_R2, 10, b"\x00\x09")), E.TRUNCATED),
    ("mld-record-aux-lies", parse_mld, fix_icmpv6(patch(MLD_R2, 9, b"\x40")), E.TRUNCATED),
    ("mld-not-mld", parse_mld, ICMP6, E.UNSUPPORTED),
    # IGMP
    ("igmp-7-bytes", IGMP_P, IGMP_Q2[:7], E.TRUNCATED),
    ("igmp-bad-checksum", IGMP_P, patch(IGMP_Q2, 4, b"\x00"), E.BAD_CHECKSUM),
    ("igmp-query-10-bytes", IGMP_P, fix_igmp(IGMP_Q3[:10]), E.BAD_LENGTH),
    ("igmp-query-sources-lie", IGMP_P, fix_igmp(patch(IGMP_Q3, 10, b"\x00\x03")), E.TRUNCATED),
    ("igmp-report-records-lie", IGMP_P, fix_igmp(patch(IGMP_R3, 6, b"\x00\x03")), E.TRUNCATED),
    ("igmp-record-sources-lie", IGMP_P, fix_igmp(patch(IGMP_R3, 10, b"\x01\x00")), E.TRUNCATED),
    ("igmp-record-aux-lies", IGMP_P, fix_igmp(patch(IGMP_R3, 9, b"\x10")), E.TRUNCATED),
    ("igmp-unknown-type", IGMP_P, fix_igmp(patch(IGMP_Q2, 0, b"\x13")), E.UNSUPPORTED),
    # UDP
    ("udp-7-bytes", parse_udp4, UDP4[:7], E.TRUNCATED),
    ("udp-length-7", parse_udp4, patch(UDP4, 4, b"\x00\x07"), E.BAD_LENGTH),
    ("udp-length-lies", parse_udp4, patch(UDP4, 4, struct.pack("!H", len(UDP4) + 1)), E.TRUNCATED),
    ("udp-oversize", parse_udp4, patch(UDP4, 4, b"\xff\xff"), E.TRUNCATED),
    ("udp-bad-checksum", parse_udp4, patch(UDP4, 8, b"D"), E.BAD_CHECKSUM),
    ("udp6-zero-checksum", parse_udp6, patch(UDP6, 6, b"\x00\x00"), E.BAD_CHECKSUM),
]


@pytest.mark.parametrize(
    ("parse", "data", "reason"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_malformed_frame_is_rejected_with_reason(
    parse: Callable[[bytes], object], data: bytes, reason: WireError
) -> None:
    assert parse(data) is reason


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
def test_valid_samples_parse(fmt: Format) -> None:
    """The corpus damages valid frames: make sure the undamaged ones are valid."""
    for sample in fmt.samples:
        result = check_result(fmt, sample)
        if fmt.name == "frame":
            assert isinstance(result, list)
            assert not any(isinstance(layer, WireError) for layer in result[:3]), result
        else:
            assert not isinstance(result, WireError), (sample.hex(), result)


def test_corpus_helpers_keep_checksums_valid() -> None:
    assert verify(fix_ipv4(patch(V4, 8, b"\x01"))[:20])
    assert isinstance(parse_icmpv6(fix_icmpv6(ICMP6 + b"xy")), Icmpv6Packet)
    assert isinstance(parse_udp4(fix_udp4(patch(UDP4, 8, b"X"))), UdpPacket)


def test_zero_checksum_over_ipv4_udp_is_accepted() -> None:
    assert isinstance(parse_udp4(patch(UDP4, 6, b"\x00\x00")), UdpPacket)


def test_ipv6_unknown_option_actions_are_reported_not_rejected() -> None:
    for kind, action in ((0x1E, 0), (0x5E, 1), (0x9E, 2), (0xDE, 3)):
        pkt = Ipv6Packet.parse(_hbh(bytes((kind, 4)) + bytes(4)))
        assert isinstance(pkt, Ipv6Packet) and pkt.hop_by_hop is not None
        assert pkt.hop_by_hop.unrecognized_action == action
        assert pkt.hop_by_hop.unrecognized_pointer == (42 if action else -1)


# --- truncation sweep ------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
def test_truncation_at_every_length_never_raises(fmt: Format) -> None:
    for sample in fmt.samples:
        for cut in range(len(sample)):
            result = check_result(fmt, sample[:cut])
            if fmt.strict_prefixes:
                assert isinstance(result, WireError), (fmt.name, cut)
            if fmt.fix is not None:
                check_result(fmt, fmt.fix(sample[:cut]))


# --- fuzzing ---------------------------------------------------------------

_INTERESTING_U16 = st.sampled_from([0, 1, 2, 7, 8, 20, 39, 40, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF])


@st.composite
def mutated(draw: st.DrawFn, fmt: Format) -> bytes:
    data = bytearray(draw(st.sampled_from(fmt.samples)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "byte", "u16", "insert", "append", "flip"]))
        if op == "cut":
            del data[draw(st.integers(0, len(data))) :]
        elif op == "append":
            data += draw(st.binary(max_size=64))
        elif op == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif not data:
            continue
        elif op == "byte":
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "flip":
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif len(data) >= 2:
            at = draw(st.integers(0, len(data) - 2))
            value = draw(_INTERESTING_U16 | st.integers(0, 0xFFFF))
            data[at : at + 2] = value.to_bytes(2, "big")
    out = bytes(data)
    if fmt.fix is not None and draw(st.booleans()):
        out = fmt.fix(out)
    return out


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
@FUZZ
@given(data=st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(fmt: Format, data: bytes) -> None:
    check_result(fmt, data)


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
@FUZZ
@given(st.data())
def test_fuzz_mutated_frames(fmt: Format, data: st.DataObject) -> None:
    check_result(fmt, data.draw(mutated(fmt)))


@FUZZ
@given(st.data())
def test_fuzz_parsed_values_rebuild_to_the_same_values(data: st.DataObject) -> None:
    """Whatever parses, rebuilt from its plain values, parses to the same values."""
    fmt = data.draw(
        st.sampled_from([f for f in FORMATS if f.name in ("ndp", "mld", "igmp", "arp")])
    )
    msg = fmt.parse(data.draw(mutated(fmt)))
    if isinstance(msg, WireError):
        return
    if isinstance(msg, ArpPacket):
        assert ArpPacket.parse(msg.to_repr().build()).to_repr() == msg.to_repr()  # type: ignore[union-attr]
    elif fmt.name == "igmp":
        assert igmp.parse(msg.build()) == msg  # type: ignore[attr-defined]
    else:
        assert fmt.parse(msg.build(SRC6, DST6)) == msg  # type: ignore[attr-defined]


@FUZZ
@given(st.data())
def test_fuzz_parsed_headers_rebuild_to_the_same_bytes(data: st.DataObject) -> None:
    """Fixed headers that parse are fully represented by their Repr."""
    fmt = data.draw(st.sampled_from([f for f in FORMATS if f.name in ("ethernet", "ipv6", "udp4")]))
    raw = data.draw(mutated(fmt))
    pkt = fmt.parse(raw)
    if isinstance(pkt, EthernetFrame):
        assert pkt.to_repr().build(pkt.payload) == raw
    elif isinstance(pkt, Ipv6Packet):
        assert pkt.to_repr().build(pkt.payload) == bytes(pkt.buf)
    elif isinstance(pkt, UdpPacket) and pkt.checksum != 0:
        assert pkt.to_repr().build(pkt.payload, SRC4, DST4) == bytes(pkt.buf)
