"""TCP header and options, both ways against scapy, plus malformed input and fuzzing.

Fuzz tests use the ``vnet-wire`` hypothesis profile (see conftest.py);
``VNET_FUZZ=long`` runs 20000 examples each::

    VNET_FUZZ=long .venv/bin/pytest tests/wire/test_wire_tcp.py -q -k fuzz
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6

from stack.wire import WireError
from stack.wire._types import BytesLike
from stack.wire.checksum import internet_checksum, pseudo_header_v4, pseudo_header_v6
from stack.wire.ip import PROTO_TCP, from_ipaddress
from stack.wire.ipv4 import Ipv4Packet, Ipv4Repr
from stack.wire.ipv6 import Ipv6Packet, Ipv6Repr
from stack.wire.tcp import (
    ACK,
    CWR,
    ECE,
    FIN,
    MAX_OPTIONS_LEN,
    NO_OPTIONS,
    PSH,
    RST,
    SYN,
    URG,
    TcpOptions,
    TcpPacket,
    TcpRepr,
    flags_str,
)

FUZZ = settings.get_profile("vnet-wire")

V4_SRC, V4_DST = from_ipaddress("192.0.2.1"), from_ipaddress("192.0.2.2")
V6_SRC, V6_DST = from_ipaddress("2001:db8::1"), from_ipaddress("2001:db8::2")
ADDRS = [(V4_SRC, V4_DST), (V6_SRC, V6_DST)]

SYN_OPTS = TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamp=(0x11223344, 0))
DATA_OPTS = TcpOptions(timestamp=(1000, 2000))


def parse(data: BytesLike, src: bytes = V4_SRC, dst: bytes = V4_DST, **kw: bool) -> TcpPacket:
    pkt = TcpPacket.parse(data, src, dst, **kw)
    assert isinstance(pkt, TcpPacket), pkt
    return pkt


def fix_checksum(data: bytes, src: bytes = V4_SRC, dst: bytes = V4_DST) -> bytes:
    """Recompute the checksum of a (possibly damaged) segment, if the field is present."""
    if len(data) < 18:
        return data
    out = bytearray(data)
    out[16:18] = b"\x00\x00"
    if len(src) == 4:
        initial = pseudo_header_v4(src, dst, PROTO_TCP, len(out))
    else:
        initial = pseudo_header_v6(src, dst, PROTO_TCP, len(out))
    out[16:18] = struct.pack("!H", internet_checksum(out, initial))
    return bytes(out)


def with_options(area: bytes, payload: bytes = b"", src: bytes = V4_SRC) -> bytes:
    """A segment carrying the raw option area ``area`` (a multiple of 4 bytes)."""
    assert len(area) % 4 == 0 and len(area) <= MAX_OPTIONS_LEN
    dst = V4_DST if src is V4_SRC else V6_DST
    head = struct.pack("!HHIIBBHHH", 1234, 80, 1, 2, (20 + len(area)) << 2, ACK, 1000, 0, 0)
    return fix_checksum(head + area + payload, src, dst)


def scapy_checksum_ok(ip_packet: bytes, ip_class: type[IP] | type[IPv6]) -> bool:
    pkt = ip_class(ip_packet)
    sent = pkt[TCP].chksum
    del pkt[TCP].chksum
    return ip_class(bytes(pkt))[TCP].chksum == sent


# --- scapy -> ours ----------------------------------------------------------


@pytest.mark.parametrize("addrs", ADDRS, ids=["v4", "v6"])
def test_scapy_syn_with_every_option_kind_parses(addrs: tuple[bytes, bytes]) -> None:
    src, dst = addrs
    ip = (
        IP(src="192.0.2.1", dst="192.0.2.2")
        if len(src) == 4
        else IPv6(src="2001:db8::1", dst="2001:db8::2")
    )
    seg = TCP(
        sport=40000,
        dport=443,
        seq=0xFFFFFFF0,
        ack=0,
        flags="S",
        window=64240,
        options=[
            ("MSS", 1460),
            ("SAckOK", b""),
            ("Timestamp", (123456789, 0)),
            ("NOP", None),
            ("WScale", 7),
            (30, b"ab"),  # unknown kind (MPTCP), skipped
            ("EOL", None),  # scapy pads with EOL bytes after this
        ],
    )
    data = bytes(ip / seg)[20 if len(src) == 4 else 40 :]
    pkt = parse(data, src, dst)
    assert (pkt.src_port, pkt.dst_port, pkt.seq, pkt.ack) == (40000, 443, 0xFFFFFFF0, 0)
    assert (pkt.flags, pkt.window, pkt.urgent, pkt.data_offset) == (SYN, 64240, 0, 48)
    assert pkt.options == TcpOptions(
        mss=1460, wscale=7, sack_permitted=True, timestamp=(123456789, 0)
    )
    assert len(pkt.payload) == 0 and pkt.seg_len == 1
    # the pseudo-header binds the addresses
    assert TcpPacket.parse(data, src, src) is WireError.BAD_CHECKSUM


def test_scapy_sack_blocks_parse_with_and_without_timestamps() -> None:
    ip = IP(src="192.0.2.1", dst="192.0.2.2")
    four = TCP(flags="A", options=[("SAck", (1, 2, 3, 4, 5, 6, 0xFFFFFFFF, 7))])
    pkt = parse(bytes(ip / four / b"data")[20:])
    assert pkt.options.sack_blocks == ((1, 2), (3, 4), (5, 6), (0xFFFFFFFF, 7))
    assert pkt.options.timestamp is None and bytes(pkt.payload) == b"data"
    three = TCP(
        flags="A",
        options=[
            ("NOP", None),
            ("NOP", None),
            ("Timestamp", (5, 6)),
            ("NOP", None),
            ("NOP", None),
            ("SAck", (10, 20, 30, 40, 50, 60)),
        ],
    )
    pkt = parse(bytes(ip / three)[20:])
    assert pkt.options == TcpOptions(sack_blocks=((10, 20), (30, 40), (50, 60)), timestamp=(5, 6))


def test_scapy_segment_with_payload_and_all_flags_parses_over_ipv6() -> None:
    frame = bytes(
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / TCP(sport=1, dport=2, seq=7, ack=9, flags="FSRPAUEC", urgptr=3, window=0)
        / b"hello"
    )
    ip6 = Ipv6Packet.parse(frame)
    assert isinstance(ip6, Ipv6Packet)
    pkt = parse(bytes(ip6.upper_payload), ip6.src, ip6.dst)
    assert pkt.flags == FIN | SYN | RST | PSH | ACK | URG | ECE | CWR
    assert flags_str(pkt.flags) == "FSRP.UEW"
    assert (pkt.urgent, pkt.window, bytes(pkt.payload), pkt.seg_len) == (3, 0, b"hello", 7)
    assert pkt.options is NO_OPTIONS


# --- ours -> scapy ----------------------------------------------------------


def test_syn_options_use_linux_packing_and_parse_in_scapy() -> None:
    opts = SYN_OPTS.encode()
    assert opts == bytes.fromhex("020405b4 0402080a 11223344 00000000 01030307")
    seg = TcpRepr(40000, 80, 1, 0, SYN, 64240, options=SYN_OPTS).build(b"", V4_SRC, V4_DST)
    data = Ipv4Repr(V4_SRC, V4_DST, PROTO_TCP).build(seg)
    tcp = IP(data)[TCP]
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags, tcp.window) == (
        40000,
        80,
        1,
        0,
        "S",
        64240,
    )
    assert tcp.dataofs == 10
    assert tcp.options == [
        ("MSS", 1460),
        ("SAckOK", b""),
        ("Timestamp", (0x11223344, 0)),
        ("NOP", None),
        ("WScale", 7),
    ]
    assert scapy_checksum_ok(data, IP)


def test_linux_syn_and_data_option_areas_parse_to_their_values() -> None:
    """The two option areas nearly every segment between Linux-packing stacks carries
    (a SYN's and a data segment's), as scapy writes them, parse to what they say;
    a near miss of each layout (one byte changed) still parses to what it says."""
    syn = IP(bytes(IP(src="192.0.2.1", dst="192.0.2.2") / TCP(
        sport=40000, dport=80, flags="S", seq=1, window=64240,
        options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (0x11223344, 7)),
                 ("NOP", None), ("WScale", 9)])))
    seg = parse(bytes(syn[TCP]))
    assert bytes(seg.options_area) == SYN_OPTS.encode()[:8] + bytes.fromhex(
        "11223344 00000007 01030309")
    assert seg.options == TcpOptions(mss=1460, wscale=9, sack_permitted=True,
                                     timestamp=(0x11223344, 7))
    data = IP(bytes(IP(src="192.0.2.1", dst="192.0.2.2") / TCP(
        sport=40000, dport=80, flags="PA", options=[("NOP", None), ("NOP", None),
                                                    ("Timestamp", (5, 0xFFFFFFFF))]) / b"hi"))
    seg = parse(memoryview(bytes(data[TCP])))
    assert seg.options == TcpOptions(timestamp=(5, 0xFFFFFFFF))
    assert bytes(seg.payload) == b"hi"
    # a window scale option of length 2 (malformed), a timestamp behind an EOL (ignored)
    odd_syn = bytes.fromhex("020405b4 0402080a 11223344 00000007 01030209")
    assert TcpPacket.parse(with_options(odd_syn), V4_SRC, V4_DST) is WireError.BAD_OPTION
    odd_data = bytes.fromhex("0001080a 00000005 00000006")
    assert parse(with_options(odd_data)).options == TcpOptions()


def test_syn_packing_without_timestamps_or_without_sack() -> None:
    no_ts = TcpOptions(mss=536, wscale=0, sack_permitted=True)
    assert no_ts.encode() == bytes.fromhex("02040218 01010402 01030300")
    no_sack = TcpOptions(mss=1220, timestamp=(1, 2))
    assert no_sack.encode() == bytes.fromhex("020404c4 0101080a 00000001 00000002")


def test_data_segment_options_are_timestamps_then_sack_and_parse_in_scapy() -> None:
    opts = TcpOptions(sack_blocks=((3000, 4000), (5000, 6000)), timestamp=(77, 88))
    assert opts.encode() == bytes.fromhex(
        "0101080a 0000004d 00000058  01010512 00000bb8 00000fa0 00001388 00001770"
    )
    payload = b"x" * 100
    seg = TcpRepr(5, 6, 1000, 2000, ACK | PSH, 512, options=opts).build(payload, V6_SRC, V6_DST)
    data = Ipv6Repr(V6_SRC, V6_DST, PROTO_TCP).build(seg)
    tcp = IPv6(data)[TCP]
    assert (tcp.seq, tcp.ack, tcp.flags, tcp.dataofs) == (1000, 2000, "PA", 13)
    assert tcp.options == [
        ("NOP", None),
        ("NOP", None),
        ("Timestamp", (77, 88)),
        ("NOP", None),
        ("NOP", None),
        ("SAck", (3000, 4000, 5000, 6000)),
    ]
    assert bytes(tcp.payload) == payload
    assert scapy_checksum_ok(data, IPv6)


def test_sack_blocks_that_do_not_fit_are_left_out() -> None:
    blocks = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10))
    with_ts = TcpOptions(sack_blocks=blocks, timestamp=(1, 1))
    assert len(with_ts.encode()) == MAX_OPTIONS_LEN == with_ts.encoded_len
    assert parse(with_options(with_ts.encode())).options.sack_blocks == blocks[:3]
    alone = TcpOptions(sack_blocks=blocks)
    assert len(alone.encode()) == 36
    assert parse(with_options(alone.encode())).options.sack_blocks == blocks[:4]
    # MSS + SACK-permitted + timestamps + window scale (20 bytes) leave room for two
    crowded = TcpOptions(1460, 7, True, blocks, (1, 1))
    assert crowded.encoded_len == len(crowded.encode()) == MAX_OPTIONS_LEN
    assert parse(with_options(crowded.encode())).options == TcpOptions(
        1460, 7, True, blocks[:2], (1, 1)
    )


def test_sequence_numbers_are_masked_to_32_bits() -> None:
    seg = TcpRepr(1, 2, 2**32 + 5, 2**33 - 1, ACK, 100).build(b"", V4_SRC, V4_DST)
    pkt = parse(seg)
    assert (pkt.seq, pkt.ack) == (5, 0xFFFFFFFF)
    sack = TcpOptions(sack_blocks=((2**32 + 1, 2**32 + 9),))
    assert parse(with_options(sack.encode())).options.sack_blocks == ((1, 9),)


def test_emit_into_writes_the_header_in_front_of_a_payload_in_place() -> None:
    tcp = TcpRepr(4000, 22, 10, 20, ACK, 300, options=DATA_OPTS)
    ip = Ipv4Repr(V4_SRC, V4_DST, PROTO_TCP)
    payload = b"ssh bytes"
    frame = bytearray(ip.header_len + tcp.header_len + len(payload))
    start = ip.header_len + tcp.header_len
    frame[start:] = payload
    assert tcp.emit_into(frame, ip.header_len, len(payload), V4_SRC, V4_DST) == start
    ip.emit_into(frame, 0, tcp.header_len + len(payload))
    ip4 = Ipv4Packet.parse(bytes(frame))
    assert isinstance(ip4, Ipv4Packet)
    pkt = parse(ip4.payload.tobytes(), ip4.src, ip4.dst)
    assert pkt.to_repr() == tcp and bytes(pkt.payload) == payload
    assert scapy_checksum_ok(bytes(frame), IP)


def test_checksum_that_computes_to_zero_is_sent_as_zero() -> None:
    # choose the last two payload bytes so that the segment sums to 0xFFFF
    repr_ = TcpRepr(1000, 2000, 1, 1, ACK, 100)
    head = bytearray(repr_.build(b"abcd\x00\x00", V4_SRC, V4_DST))
    head[16:18] = b"\x00\x00"
    pad = internet_checksum(head, pseudo_header_v4(V4_SRC, V4_DST, PROTO_TCP, len(head)))
    data = repr_.build(b"abcd" + struct.pack("!H", pad), V4_SRC, V4_DST)
    assert data[16:18] == b"\x00\x00"
    assert parse(data).checksum == 0
    assert scapy_checksum_ok(Ipv4Repr(V4_SRC, V4_DST, PROTO_TCP).build(data), IP)


# --- hand-made malformed segments -------------------------------------------

GOOD = TcpRepr(1234, 80, 1, 2, ACK, 1000, options=DATA_OPTS).build(b"payload", V4_SRC, V4_DST)


def set_data_offset(data: bytes, words: int) -> bytes:
    return fix_checksum(data[:12] + bytes((words << 4,)) + data[13:])


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty", b"", WireError.TRUNCATED),
        ("19 bytes", GOOD[:19], WireError.TRUNCATED),
        ("data offset 0", set_data_offset(GOOD, 0), WireError.BAD_LENGTH),
        ("data offset 16 bytes", set_data_offset(GOOD, 4), WireError.BAD_LENGTH),
        ("data offset past end", set_data_offset(GOOD[:40], 15), WireError.TRUNCATED),
        ("bad checksum", GOOD[:-1] + b"!", WireError.BAD_CHECKSUM),
        ("zero-length option", with_options(b"\x1e\x00\x00\x00"), WireError.BAD_OPTION),
        ("length-1 option", with_options(b"\x1e\x01\x01\x01"), WireError.BAD_OPTION),
        ("option overruns area", with_options(b"\x01\x1e\x04\x00"), WireError.BAD_OPTION),
        ("overrun into payload", with_options(b"\x01\x1e\x08\x00", b"more"), WireError.BAD_OPTION),
        ("kind without length", with_options(b"\x01\x01\x01\x02"), WireError.BAD_OPTION),
        ("MSS length 3", with_options(b"\x02\x03\x05\x01"), WireError.BAD_OPTION),
        ("MSS length 6", with_options(b"\x02\x06\x05\xb4\x00\x00\x01\x01"), WireError.BAD_OPTION),
        ("window scale length 4", with_options(b"\x03\x04\x07\x00"), WireError.BAD_OPTION),
        ("window scale length 2", with_options(b"\x03\x02\x01\x01"), WireError.BAD_OPTION),
        ("SACK-permitted length 3", with_options(b"\x04\x03\x00\x01"), WireError.BAD_OPTION),
        ("timestamps length 8", with_options(b"\x08\x08" + bytes(6)), WireError.BAD_OPTION),
        ("timestamps length 12", with_options(b"\x08\x0c" + bytes(10)), WireError.BAD_OPTION),
        ("SACK without blocks", with_options(b"\x05\x02\x01\x01"), WireError.BAD_OPTION),
        (
            "SACK half a block",
            with_options(b"\x05\x06" + bytes(4) + b"\x01\x01"),
            WireError.BAD_OPTION,
        ),
        ("SACK 4.5 blocks", with_options(b"\x01\x01\x05\x26" + bytes(36)), WireError.BAD_OPTION),
    ],
)
def test_malformed_segment_is_rejected_with_reason(
    name: str, data: bytes, reason: WireError
) -> None:
    assert TcpPacket.parse(data, V4_SRC, V4_DST) is reason, name


def test_five_sack_blocks_cannot_be_expressed() -> None:
    # 2 + 8*5 = 42 does not fit in 40 bytes: the option overruns the area
    area = b"\x05\x2a" + bytes(38)
    assert TcpPacket.parse(with_options(area), V4_SRC, V4_DST) is WireError.BAD_OPTION


def test_eol_ends_the_option_area_and_the_rest_is_ignored() -> None:
    area = b"\x02\x04\x05\xb4" + b"\x00" + b"\x05\x00\xff\xff\xff\xff\xff"  # garbage after EOL
    pkt = parse(with_options(area))
    assert pkt.options == TcpOptions(mss=1460)
    assert bytes(pkt.options_area) == area


def test_unknown_options_are_skipped_and_a_repeated_option_replaces_the_first() -> None:
    area = (
        b"\xfe\x06\xf9\x89\x12\x34"  # RFC 6994 experimental option
        + b"\x02\x04\x02\x18"  # MSS 536
        + b"\x1c\x04\x00\x01"  # user timeout (RFC 5482), unknown to us
        + b"\x02\x04\x05\xb4"  # MSS 1460 again
        + b"\x01\x01"
    )
    assert parse(with_options(area)).options == TcpOptions(mss=1460)


def test_format_level_oddities_parse_and_are_left_to_the_engine() -> None:
    area = b"\x03\x03\x0f\x01"  # window scale 15: the engine clamps it to 14
    seg = with_options(area)
    seg = fix_checksum(seg[:13] + bytes((SYN | FIN | RST,)) + seg[14:])
    pkt = parse(seg)
    assert pkt.options.wscale == 15
    assert pkt.flags == SYN | FIN | RST and pkt.seg_len == 2


def test_verify_checksum_false_accepts_a_bad_checksum() -> None:
    bad = GOOD[:16] + b"\x00\x00" + GOOD[18:]
    assert TcpPacket.parse(bad, V4_SRC, V4_DST) is WireError.BAD_CHECKSUM
    assert parse(bad, verify_checksum=False).options == DATA_OPTS


def test_parse_accepts_bytearray_and_memoryview() -> None:
    for buf in (bytearray(GOOD), memoryview(GOOD), memoryview(b"xx" + GOOD)[2:]):
        pkt = parse(buf)
        assert bytes(pkt.payload) == b"payload" and pkt.options == DATA_OPTS


def test_truncation_at_every_length_never_raises() -> None:
    samples = [
        GOOD,
        TcpRepr(1, 2, 3, 4, SYN, 5, options=SYN_OPTS).build(b"", V4_SRC, V4_DST),
        TcpRepr(1, 2, 3, 4, ACK, 5, options=TcpOptions(sack_blocks=((1, 2),) * 4)).build(
            b"abc", V4_SRC, V4_DST
        ),
    ]
    for sample in samples:
        data_offset = (sample[12] >> 4) * 4
        for n in range(len(sample) + 1):
            raw = TcpPacket.parse(sample[:n], V4_SRC, V4_DST)
            fixed = TcpPacket.parse(fix_checksum(sample[:n]), V4_SRC, V4_DST)
            if n < data_offset:
                assert raw is fixed is WireError.TRUNCATED
            else:  # only payload is missing: a shorter segment, with a stale checksum
                assert isinstance(fixed, TcpPacket) and fixed.options == parse(sample).options
                assert isinstance(raw, TcpPacket) or raw is WireError.BAD_CHECKSUM
                assert isinstance(raw, TcpPacket) or n < len(sample)


# --- properties and fuzzing -------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)
u16 = st.integers(0, 0xFFFF)
options_st = st.builds(
    TcpOptions,
    mss=st.none() | u16,
    wscale=st.none() | st.integers(0, 255),
    sack_permitted=st.booleans(),
    sack_blocks=st.lists(st.tuples(u32, u32), max_size=5).map(tuple),
    timestamp=st.none() | st.tuples(u32, u32),
)
repr_st = st.builds(
    TcpRepr,
    src_port=u16,
    dst_port=u16,
    seq=u32,
    ack=u32,
    flags=st.integers(0, 255),
    window=u16,
    urgent=u16,
    options=options_st,
)


def expected_after_encoding(opts: TcpOptions) -> TcpOptions:
    """What survives encoding: the SACK blocks that fit."""
    fixed = 4 * (opts.mss is not None) + 4 * (opts.wscale is not None)
    fixed += 12 if opts.timestamp is not None else 4 * opts.sack_permitted
    room = (MAX_OPTIONS_LEN - fixed - 4) // 8
    blocks = opts.sack_blocks[: max(0, min(room, 4))]
    return TcpOptions(opts.mss, opts.wscale, opts.sack_permitted, blocks, opts.timestamp)


@FUZZ
@given(repr_st, st.binary(max_size=64), st.sampled_from(ADDRS))
def test_fuzz_build_then_parse_round_trips(
    tcp: TcpRepr, payload: bytes, addrs: tuple[bytes, bytes]
) -> None:
    src, dst = addrs
    data = tcp.build(payload, src, dst)
    assert len(data) == tcp.header_len + len(payload)
    assert (len(data) - len(payload)) % 4 == 0 and tcp.options.encoded_len <= MAX_OPTIONS_LEN
    assert tcp.options.encoded_len == len(tcp.options.encode())
    pkt = parse(data, src, dst)
    assert pkt.to_repr() == TcpRepr(
        tcp.src_port,
        tcp.dst_port,
        tcp.seq,
        tcp.ack,
        tcp.flags,
        tcp.window,
        tcp.urgent,
        expected_after_encoding(tcp.options),
    )
    assert bytes(pkt.payload) == payload
    # rebuilding what we parsed gives the same bytes
    assert pkt.to_repr().build(pkt.payload, src, dst) == data


@FUZZ
@given(repr_st, st.binary(max_size=16))
def test_fuzz_our_segments_parse_in_scapy(tcp: TcpRepr, payload: bytes) -> None:
    data = Ipv4Repr(V4_SRC, V4_DST, PROTO_TCP).build(tcp.build(payload, V4_SRC, V4_DST))
    seg = IP(data)[TCP]
    assert (seg.sport, seg.dport, seg.seq, seg.ack) == (
        tcp.src_port,
        tcp.dst_port,
        tcp.seq,
        tcp.ack,
    )
    assert (int(seg.flags), seg.window, seg.urgptr) == (tcp.flags, tcp.window, tcp.urgent)
    assert seg.dataofs * 4 == tcp.header_len
    got = dict(o for o in seg.options if o[0] not in ("NOP", "EOL"))
    want = expected_after_encoding(tcp.options)
    assert got.get("MSS") == want.mss
    assert got.get("WScale") == want.wscale
    assert ("SAckOK" in got) == want.sack_permitted
    assert got.get("Timestamp") == want.timestamp
    edges = tuple(e for block in want.sack_blocks for e in block)
    assert got.get("SAck", ()) == edges
    assert scapy_checksum_ok(data, IP)


scapy_option = st.one_of(
    st.tuples(st.just("MSS"), u16),
    st.tuples(st.just("WScale"), st.integers(0, 255)),
    st.tuples(st.just("SAckOK"), st.just(b"")),
    st.tuples(st.just("Timestamp"), st.tuples(u32, u32)),
    st.tuples(
        st.just("SAck"),
        st.lists(st.tuples(u32, u32), min_size=1, max_size=3).map(
            lambda blocks: tuple(edge for block in blocks for edge in block)
        ),
    ),
    st.tuples(st.just("NOP"), st.none()),
    st.tuples(st.sampled_from([6, 7, 19, 28, 29, 30, 34, 253, 254]), st.binary(max_size=6)),
)


def scapy_option_len(opt: tuple[object, object]) -> int:
    kind, value = opt
    fixed = {"MSS": 4, "WScale": 3, "SAckOK": 2, "Timestamp": 10, "NOP": 1}
    if kind == "SAck":
        assert isinstance(value, tuple)
        return 2 + 4 * len(value)
    if isinstance(kind, int):
        assert isinstance(value, bytes)
        return 2 + len(value)
    return fixed[str(kind)]


@FUZZ
@given(st.lists(scapy_option, max_size=8), st.booleans())
def test_fuzz_scapy_segments_with_any_options_parse(
    options: list[tuple[object, object]], end_with_eol: bool
) -> None:
    while sum(map(scapy_option_len, options)) + end_with_eol > MAX_OPTIONS_LEN:
        options.pop()
    if end_with_eol:
        options.append(("EOL", None))
    data = bytes(IP(src="192.0.2.1", dst="192.0.2.2") / TCP(flags="A", options=options) / b"x")
    pkt = parse(data[20:])
    opts = pkt.options
    last: dict[object, object] = {kind: value for kind, value in options}
    assert opts.mss == last.get("MSS")
    assert opts.wscale == last.get("WScale")
    assert opts.sack_permitted == ("SAckOK" in last)
    assert opts.timestamp == last.get("Timestamp")
    sack = last.get("SAck", ())
    assert isinstance(sack, tuple)
    assert opts.sack_blocks == tuple(zip(sack[::2], sack[1::2], strict=True))
    assert bytes(pkt.payload) == b"x"


def check_parse(data: bytes, src: bytes = V4_SRC, dst: bytes = V4_DST) -> None:
    """Parse must return a value or a WireError; every accessor of a value must work."""
    result = TcpPacket.parse(data, src, dst)
    assert isinstance(result, (TcpPacket, WireError))
    if isinstance(result, TcpPacket):
        assert 20 <= result.data_offset <= len(data)
        assert len(result.payload) + len(result.header) == len(data)
        assert result.seg_len >= len(result.payload)
        assert result.options.encoded_len <= MAX_OPTIONS_LEN
        repr(result)
        rebuilt = parse(result.to_repr().build(result.payload, src, dst), src, dst)
        assert rebuilt.options == expected_after_encoding(result.options)


@FUZZ
@given(st.binary(max_size=80), st.booleans())
def test_fuzz_arbitrary_bytes(data: bytes, fix: bool) -> None:
    check_parse(fix_checksum(data) if fix else data)


SAMPLES = [
    GOOD,
    TcpRepr(1, 2, 3, 4, SYN, 5, options=SYN_OPTS).build(b"", V4_SRC, V4_DST),
    TcpRepr(
        1, 2, 3, 4, ACK, 5, options=TcpOptions(sack_blocks=((1, 2),) * 3, timestamp=(1, 2))
    ).build(b"abc", V4_SRC, V4_DST),
    with_options(b"\x01\x1e\x06abcd\x00", b"tail"),
]
# bytes a mutation favours: zero and one lengths, overrunning lengths, option kinds
interesting = st.sampled_from([0, 1, 2, 3, 4, 5, 8, 10, 0x0A, 0x22, 0x28, 0x2A, 0xFF])


@FUZZ
@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_mutated_segments(sample: bytes, data: st.DataObject) -> None:
    seg = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        what = data.draw(st.sampled_from(["offset", "option byte", "flags", "truncate"]))
        if what == "offset" and len(seg) > 12:
            seg[12] = data.draw(st.integers(0, 15)) << 4
        elif what == "option byte" and len(seg) > 20:
            at = data.draw(st.integers(20, min(len(seg), 60) - 1))
            seg[at] = data.draw(interesting | st.integers(0, 255))
        elif what == "flags" and len(seg) > 13:
            seg[13] = data.draw(st.sampled_from([SYN | FIN, SYN | RST, 0xFF, 0, URG]))
        elif what == "truncate":
            del seg[data.draw(st.integers(0, len(seg))) :]
    fixed = fix_checksum(bytes(seg))
    check_parse(fixed)
    check_parse(bytes(seg))


# An independent model of the option walk, for generated option areas.
tlv = st.one_of(
    st.just(b"\x01"),
    st.just(b"\x00"),
    st.tuples(st.integers(0, 255), st.integers(0, 12), st.binary(min_size=12, max_size=12)).map(
        lambda t: bytes((t[0], t[1])) + t[2][: max(0, t[1] - 2)]
    ),
)


def model_walk(area: bytes) -> str:
    """'ok' or 'bad', by RFC 9293's rules, written plainly."""
    fixed = {2: 4, 3: 3, 4: 2, 8: 10}
    i = 0
    while i < len(area):
        if area[i] == 0:
            return "ok"
        if area[i] == 1:
            i += 1
            continue
        if i + 1 == len(area) or area[i + 1] < 2 or i + area[i + 1] > len(area):
            return "bad"
        kind, length = area[i], area[i + 1]
        if kind in fixed and length != fixed[kind]:
            return "bad"
        if kind == 5 and (length % 8 != 2 or not 10 <= length <= 34):
            return "bad"
        i += length
    return "ok"


@FUZZ
@given(st.lists(tlv, max_size=10).map(b"".join))
def test_fuzz_option_walk_matches_a_plain_model(area: bytes) -> None:
    area = area[:MAX_OPTIONS_LEN]
    area += b"\x00" * (-len(area) % 4)
    result = TcpPacket.parse(with_options(area), V4_SRC, V4_DST)
    assert (result is WireError.BAD_OPTION) == (model_walk(area) == "bad")
