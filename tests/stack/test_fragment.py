"""IPv4/IPv6 fragmentation and reassembly (stack.fragment), checked against scapy too.

Each test builds datagrams with stack.wire, fragments or reassembles them with
explicit times, and asserts on the packets and drop reasons a user could see.
scapy is the independent codec: its fragments must reassemble in ours, and
ours in its ``defragment`` / ``defragment6``.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, defragment
from scapy.layers.inet import fragment as scapy_fragment
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    RouterAlert,
    defragment6,
    fragment6,
)
from scapy.packet import Raw

from stack.fragment import (
    FRAGMENT_OVERHEAD,
    IPV6_REASSEMBLY_TIMEOUT_NS,
    Expired,
    Reassembler,
    ReassemblyResult,
    fragment_ipv4,
    fragment_ipv6,
)
from stack.wire import WireError
from stack.wire.ip import PROTO_FRAGMENT, PROTO_HOPOPT, PROTO_ROUTING, PROTO_UDP, from_ipaddress
from stack.wire.ipv4 import Ipv4Packet, Ipv4Repr, iter_options
from stack.wire.ipv6 import Ipv6Packet, Ipv6Repr, OptionsHeaderRepr

SRC4 = from_ipaddress("10.0.0.1")
DST4 = from_ipaddress("10.0.0.2")
SRC6 = from_ipaddress("2001:db8::1")
DST6 = from_ipaddress("2001:db8::2")
S = 10**9

# IPv4 options: Router Alert (148) and Security (130) have the copied bit;
# Record Route (7) and Timestamp (68) do not.
ROUTER_ALERT = bytes((148, 4, 0, 0))
SECURITY = bytes((130, 11)) + bytes(9)
RECORD_ROUTE = bytes((7, 11, 4)) + bytes(8)
TIMESTAMP = bytes((68, 12, 5, 0)) + bytes(8)
OPTION_SETS = {
    "none": b"",
    "copied": ROUTER_ALERT + SECURITY,
    "not_copied": RECORD_ROUTE + TIMESTAMP,
    "mixed": RECORD_ROUTE + bytes((1,)) + ROUTER_ALERT + TIMESTAMP,
}


def payload_of(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def datagram4(
    n: int, options: bytes = b"", ident: int = 0x1234, dont_frag: bool = False, ecn: int = 0
) -> tuple[bytes, bytes]:
    """(header, payload) of a UDP-protocol IPv4 datagram with ``n`` payload bytes."""
    repr_ = Ipv4Repr(
        SRC4, DST4, PROTO_UDP, ident=ident, options=options, dont_frag=dont_frag, ecn=ecn
    )
    packet = repr_.build(payload_of(n, seed=n))
    return packet[: repr_.header_len], packet[repr_.header_len :]


def parse4(packet: bytes) -> Ipv4Packet:
    view = Ipv4Packet.parse(packet)
    assert not isinstance(view, WireError), view
    return view


def parse6(packet: bytes) -> Ipv6Packet:
    view = Ipv6Packet.parse(packet)
    assert not isinstance(view, WireError), view
    return view


def add6(r: Reassembler, now: int, packet: bytes) -> bytes | ReassemblyResult | None:
    """Feed a fragment packet to ``add_ipv6`` the way the stack does."""
    pkt = parse6(packet)
    frag = pkt.fragment
    assert frag is not None
    return r.add_ipv6(
        now,
        pkt.src,
        pkt.dst,
        frag.ident,
        frag.frag_offset * 8,
        frag.more_frags,
        frag.next_header,
        pkt.buf[: frag.offset],
        pkt.upper_payload,
    )


def option_kinds(options: bytes | memoryview) -> list[int]:
    return [kind for kind, _ in iter_options(options)]


def frag4(offset: int, data: bytes, more: bool, ident: int = 7, ecn: int = 0) -> Ipv4Packet:
    """A hand-made IPv4 fragment (offset in bytes)."""
    repr_ = Ipv4Repr(
        SRC4, DST4, PROTO_UDP, ident=ident, more_frags=more, frag_offset=offset // 8, ecn=ecn
    )
    return parse4(repr_.build(data))


def frag6(offset: int, data: bytes, more: bool, ident: int = 7) -> bytes:
    """A hand-made IPv6 fragment packet (offset in bytes)."""
    body = bytes((PROTO_UDP, 0)) + ((offset | int(more)).to_bytes(2, "big")) + ident.to_bytes(4)
    return Ipv6Repr(SRC6, DST6, PROTO_FRAGMENT).build(body + data)


# --- IPv4 fragmentation --------------------------------------------------------


def test_ipv4_datagram_that_fits_is_returned_unchanged() -> None:
    header, payload = datagram4(1480)
    assert fragment_ipv4(header, payload, 1500) == [header + payload]


def test_ipv4_dont_fragment_too_big_raises() -> None:
    header, payload = datagram4(1481, dont_frag=True)
    with pytest.raises(ValueError, match="DF"):
        fragment_ipv4(header, payload, 1500)


def test_ipv4_mtu_without_room_for_eight_bytes_raises() -> None:
    header, payload = datagram4(100, options=ROUTER_ALERT + SECURITY + TIMESTAMP)
    assert len(header) == 48
    with pytest.raises(ValueError):
        fragment_ipv4(header, payload, 55)
    # First fragment: 8 bytes of data; later ones drop Timestamp (36-byte
    # header) and carry 16: 8 + 6 * 16 >= 100.
    assert [len(parse4(f).payload) for f in fragment_ipv4(header, payload, 56)] == [8] + [
        16
    ] * 5 + [12]


@pytest.mark.parametrize("options", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
def test_ipv4_round_trip_at_many_mtus_and_sizes(options: bytes) -> None:
    copied = [k for k in option_kinds(options) if k & 0x80]
    for mtu in (68, 100, 576, 1006, 1280, 1500, 9000):
        for n in (1, 7, 8, 9, 1000, 1472, 1473, 8000, 65535 - 20 - len(options) - 8):
            header, payload = datagram4(n, options)
            frags = fragment_ipv4(header, payload, mtu)
            if len(header) + n <= mtu:
                assert frags == [header + payload]
                continue
            offset = 0
            for i, raw in enumerate(frags):
                assert len(raw) <= mtu
                pkt = parse4(raw)  # header checksum and lengths verify
                last = i == len(frags) - 1
                assert pkt.frag_offset * 8 == offset
                assert pkt.more_frags is not last
                assert pkt.ident == 0x1234 and pkt.protocol == PROTO_UDP
                if not last:
                    assert len(pkt.payload) % 8 == 0 and len(pkt.payload) > 0
                kinds = option_kinds(pkt.options)
                assert kinds == (option_kinds(options) if i == 0 else copied)
                assert bytes(pkt.payload) == payload[offset : offset + len(pkt.payload)]
                offset += len(pkt.payload)
            assert offset == n
            r = Reassembler(max_fragments=len(frags))
            results = [r.add_ipv4(0, parse4(f)) for f in reversed(frags)]
            assert results[:-1] == [None] * (len(frags) - 1)
            assert results[-1] == header + payload
            assert r.counters["reassembled"] == 1 and len(r) == 0 and r.buffered_bytes == 0


def test_ipv4_reassembled_header_is_the_original() -> None:
    header, payload = datagram4(3000, OPTION_SETS["mixed"])
    whole = header + payload
    frags = fragment_ipv4(header, payload, 576)
    r = Reassembler()
    random.Random(3).shuffle(frags)
    out = [r.add_ipv4(5, parse4(f)) for f in frags]
    assert out[-1] == whole  # first header, MF/offset cleared, length and checksum fixed


def test_ipv4_refragmenting_a_fragment_keeps_offsets_and_more_fragments() -> None:
    header, payload = datagram4(4000, ROUTER_ALERT)
    first_pass = fragment_ipv4(header, payload, 1500)
    second_pass: list[bytes] = []
    for f in first_pass:  # a router with a smaller MTU further on
        pkt = parse4(f)
        second_pass += fragment_ipv4(bytes(pkt.header), pkt.payload, 576)
    assert all(len(f) <= 576 for f in second_pass)
    assert sum(1 for f in second_pass if not parse4(f).more_frags) == 1
    r = Reassembler()
    out = [r.add_ipv4(0, parse4(f)) for f in reversed(second_pass)]
    assert out[-1] == header + payload


def test_ipv4_our_fragments_defragment_in_scapy() -> None:
    for options in OPTION_SETS.values():
        header, payload = datagram4(5000, options)
        frags = fragment_ipv4(header, payload, 1006)
        assert len(frags) >= 6  # 5000 bytes in at most 984 per fragment
        scapy_frags = [IP(f) for f in frags]
        assert [p.frag * 8 for p in scapy_frags] == [parse4(f).frag_offset * 8 for f in frags]
        assert [bool(p.flags.MF) for p in scapy_frags] == [True] * (len(frags) - 1) + [False]
        whole = defragment(scapy_frags)
        assert len(whole) == 1
        assert bytes(whole[0].payload) == payload
        assert whole[0].id == 0x1234 and whole[0].src == "10.0.0.1"


def test_ipv4_scapy_fragments_reassemble_in_ours() -> None:
    for fragsize in (8, 64, 200, 1480):
        pkt = (
            IP(src="10.0.0.1", dst="10.0.0.2", id=99, options=[ROUTER_ALERT])
            / UDP(sport=1, dport=2)
            / Raw(payload_of(3333))
        )
        whole = bytes(pkt)
        frags = [bytes(f) for f in scapy_fragment(pkt, fragsize=fragsize)]
        random.Random(fragsize).shuffle(frags)
        r = Reassembler(max_fragments=1000)
        out = [r.add_ipv4(1, parse4(f)) for f in frags]
        result = out[-1]
        assert isinstance(result, bytes) and out[:-1] == [None] * (len(frags) - 1)
        # scapy copies the options into every fragment; ours keeps the first's.
        assert IP(result)[UDP] == IP(whole)[UDP]
        assert result[20:24] == ROUTER_ALERT and parse4(result).total_len == len(whole)


# --- IPv6 fragmentation --------------------------------------------------------


def unfragmentable6(extension: str, last: int = PROTO_UDP) -> tuple[bytes, bytes]:
    """(unfragmentable part, its extension headers); ``last`` is the last next header."""
    if extension == "none":
        return Ipv6Repr(SRC6, DST6, last).build(), b""
    if extension == "hop_by_hop":
        ext = OptionsHeaderRepr.router_alert(last).build()
        return Ipv6Repr(SRC6, DST6, PROTO_HOPOPT).build(ext), ext
    # hop-by-hop then a routing header (type 0 style, no segments left)
    routing = bytes((last, 2, 0, 0, 0, 0, 0, 0)) + from_ipaddress("2001:db8::99")
    ext = OptionsHeaderRepr.router_alert(PROTO_ROUTING).build() + routing
    return Ipv6Repr(SRC6, DST6, PROTO_HOPOPT).build(ext), ext


@pytest.mark.parametrize("extension", ["none", "hop_by_hop", "hop_by_hop_routing"])
def test_ipv6_round_trip_at_many_mtus_and_sizes(extension: str) -> None:
    unfrag, ext = unfragmentable6(extension)
    unfrag_in_fragments, _ = unfragmentable6(extension, last=PROTO_FRAGMENT)
    for mtu in (576, 1280, 1500, 4000):
        for n in (1233, 2000, 1280 * 3 + 5, 65535 - len(ext)):
            payload = payload_of(n, seed=n)
            frags = fragment_ipv6(unfrag, PROTO_UDP, payload, mtu, 0xDEADBEEF)
            expected = Ipv6Repr(SRC6, DST6, unfrag[6]).build(ext + payload)
            if len(expected) <= max(mtu, 1280):
                assert frags == [expected]
                continue
            offset = 0
            for i, raw in enumerate(frags):
                assert len(raw) <= max(mtu, 1280)  # below 1280 counts as 1280
                pkt = parse6(raw)
                fh = pkt.fragment
                assert fh is not None and fh.offset == len(unfrag)
                assert bytes(pkt.buf[8 : fh.offset]) == unfrag_in_fragments[8:]
                assert fh.ident == 0xDEADBEEF and fh.next_header == PROTO_UDP
                assert fh.frag_offset * 8 == offset
                assert fh.more_frags is (i < len(frags) - 1)
                data = bytes(pkt.upper_payload)
                if fh.more_frags:
                    assert len(data) % 8 == 0
                assert data == payload[offset : offset + len(data)]
                offset += len(data)
            assert offset == n
            r = Reassembler(timeout_ns=IPV6_REASSEMBLY_TIMEOUT_NS)
            out = [add6(r, 0, f) for f in reversed(frags)]
            assert out[-1] == expected and out[:-1] == [None] * (len(frags) - 1)


def test_ipv6_our_fragments_defragment_in_scapy() -> None:
    unfrag, _ = unfragmentable6("hop_by_hop")
    payload = bytes(UDP(sport=5, dport=6) / Raw(payload_of(4000)))
    frags = fragment_ipv6(unfrag, PROTO_UDP, payload, 1500, 42)
    scapy_frags = [IPv6(f) for f in frags]
    assert all(IPv6ExtHdrHopByHop in p and IPv6ExtHdrFragment in p for p in scapy_frags)
    assert [p[IPv6ExtHdrFragment].offset * 8 for p in scapy_frags] == [
        0,
        1440,
        2880,
    ]  # 1500 - 56 rounded down to 8
    assert [p[IPv6ExtHdrFragment].m for p in scapy_frags] == [1, 1, 0]
    whole = defragment6(scapy_frags)
    assert bytes(whole[UDP]) == payload


def test_ipv6_scapy_fragments_reassemble_in_ours() -> None:
    for mtu in (1280, 1500):
        pkt = (
            IPv6(src="2001:db8::1", dst="2001:db8::2")
            / IPv6ExtHdrHopByHop(options=[RouterAlert()])
            / IPv6ExtHdrFragment(id=1234)
            / UDP(sport=1, dport=2)
            / Raw(payload_of(6000))
        )
        frags = [bytes(f) for f in fragment6(pkt, mtu)]
        assert len(frags) > 4
        random.Random(mtu).shuffle(frags)
        r = Reassembler(timeout_ns=IPV6_REASSEMBLY_TIMEOUT_NS)
        out = [add6(r, 0, f) for f in frags]
        result = out[-1]
        assert isinstance(result, bytes)
        expected = (
            IPv6(src="2001:db8::1", dst="2001:db8::2")
            / IPv6ExtHdrHopByHop(options=[RouterAlert()])
            / UDP(sport=1, dport=2)
            / Raw(payload_of(6000))
        )
        assert result == bytes(expected)


def test_ipv6_mtu_below_minimum_is_treated_as_1280() -> None:
    unfrag, _ = unfragmentable6("none")
    frags = fragment_ipv6(unfrag, PROTO_UDP, payload_of(3000), 600, 1)
    assert [len(f) for f in frags] == [1280, 1280, 40 + 8 + 3000 - 2 * 1232]


def test_ipv6_bad_unfragmentable_part_raises() -> None:
    unfrag, _ = unfragmentable6("hop_by_hop")
    with pytest.raises(ValueError):
        fragment_ipv6(unfrag[:-1], PROTO_UDP, payload_of(3000), 1280, 1)
    with pytest.raises(ValueError):
        fragment_ipv6(unfrag, PROTO_UDP, payload_of(65535), 1280, 1)


# --- reassembly rules ----------------------------------------------------------


def test_out_of_order_and_exact_duplicates_reassemble() -> None:
    header, payload = datagram4(4000)
    frags = fragment_ipv4(header, payload, 576)
    feed = frags + frags[2:5]  # three duplicates
    random.Random(9).shuffle(feed)
    r = Reassembler()
    results = []
    for f in feed:
        result = r.add_ipv4(0, parse4(f))
        results.append(result)
        if isinstance(result, bytes):
            break
    assert results[-1] == header + payload
    assert all(x is None for x in results[:-1])
    assert r.counters["duplicate"] == len(results) - len(frags)


def test_ipv4_overlap_discards_datagram_until_timeout() -> None:
    r = Reassembler(timeout_ns=30 * S)
    assert r.add_ipv4(0, frag4(0, bytes(16), more=True)) is None
    assert r.add_ipv4(1, frag4(8, bytes(16), more=True)) is ReassemblyResult.OVERLAP
    # Later fragments of the same datagram are dropped too...
    assert r.add_ipv4(2, frag4(16, bytes(8), more=False)) is ReassemblyResult.OVERLAP
    assert r.counters["overlap"] == 2 and r.buffered_bytes == FRAGMENT_OVERHEAD
    # ...until the deadline, which passes without any Time Exceeded.
    assert r.next_deadline() == 30 * S
    assert r.expire(30 * S) == []
    assert r.counters["timeout"] == 0 and len(r) == 0 and r.buffered_bytes == 0
    assert r.add_ipv4(31 * S, frag4(0, bytes(8), more=True)) is None
    assert isinstance(r.add_ipv4(31 * S, frag4(8, bytes(8), more=False)), bytes)


def test_ipv4_same_range_different_bytes_is_an_overlap() -> None:
    r = Reassembler()
    assert r.add_ipv4(0, frag4(8, b"A" * 8, more=True)) is None
    assert r.add_ipv4(0, frag4(8, b"B" * 8, more=True)) is ReassemblyResult.OVERLAP


def test_ipv6_any_overlap_discards_whole_datagram_rfc5722() -> None:
    r = Reassembler(timeout_ns=IPV6_REASSEMBLY_TIMEOUT_NS)
    assert add6(r, 0, frag6(0, bytes(24), more=True)) is None
    assert add6(r, 0, frag6(40, bytes(16), more=True)) is None
    assert add6(r, 0, frag6(16, bytes(32), more=True)) is ReassemblyResult.OVERLAP
    # The complete, non-overlapping set now never reassembles.
    assert add6(r, 1, frag6(24, bytes(16), more=True)) is ReassemblyResult.OVERLAP
    assert add6(r, 1, frag6(56, bytes(4), more=False)) is ReassemblyResult.OVERLAP
    assert r.counters["reassembled"] == 0 and r.counters["overlap"] == 3
    assert r.expire(60 * S) == []


def test_ipv6_atomic_fragment_is_returned_at_once_and_left_alone() -> None:
    r = Reassembler(timeout_ns=IPV6_REASSEMBLY_TIMEOUT_NS)
    assert add6(r, 0, frag6(0, bytes(16), more=True, ident=5)) is None
    atomic = add6(r, 0, frag6(0, b"hello", more=False, ident=5))
    assert atomic == Ipv6Repr(SRC6, DST6, PROTO_UDP).build(b"hello")
    assert r.counters["atomic"] == 1
    # The datagram with the same identification is untouched (RFC 6946).
    assert add6(r, 0, frag6(16, b"tail", more=False, ident=5)) == Ipv6Repr(
        SRC6, DST6, PROTO_UDP
    ).build(bytes(16) + b"tail")


def test_ipv4_non_fragment_is_returned_as_is() -> None:
    packet = Ipv4Repr(SRC4, DST4, PROTO_UDP).build(b"whole")
    assert Reassembler().add_ipv4(0, parse4(packet)) == packet


@pytest.mark.parametrize(
    ("offset", "size", "more"),
    [(0, 12, True), (8, 0, True), (16, 7, True)],
    ids=["not_multiple_of_8", "empty_non_last", "short_non_last"],
)
def test_bad_non_last_fragments_are_dropped(offset: int, size: int, more: bool) -> None:
    r = Reassembler()
    assert r.add_ipv4(0, frag4(offset, bytes(size), more)) is ReassemblyResult.BAD_FRAGMENT
    assert add6(r, 0, frag6(offset, bytes(size), more)) is ReassemblyResult.BAD_FRAGMENT
    assert r.counters["bad_fragment"] == 2 and len(r) == 0


def test_fragment_past_65535_is_too_big() -> None:
    r = Reassembler()
    assert r.add_ipv4(0, frag4(65528, bytes(8), more=False)) is ReassemblyResult.TOO_BIG
    assert add6(r, 0, frag6(65528, bytes(8), more=False)) is ReassemblyResult.TOO_BIG
    # Exactly 65535 is fine.
    assert r.add_ipv4(0, frag4(65512, bytes(3), more=False)) is None
    assert r.counters["too_big"] == 2


def test_conflicting_last_fragments_discard_the_datagram() -> None:
    r = Reassembler()
    assert r.add_ipv4(0, frag4(0, bytes(8), more=True)) is None
    assert r.add_ipv4(0, frag4(16, bytes(8), more=False)) is None
    assert r.add_ipv4(0, frag4(24, bytes(8), more=False)) is ReassemblyResult.BAD_FRAGMENT
    assert len(r) == 0
    assert r.add_ipv4(0, frag4(0, bytes(8), more=True, ident=8)) is None
    assert r.add_ipv4(0, frag4(8, bytes(4), more=False, ident=8)) is not None  # completes
    assert r.add_ipv4(0, frag4(32, bytes(8), more=True, ident=9)) is None
    assert r.add_ipv4(0, frag4(8, bytes(8), more=False, ident=9)) is ReassemblyResult.BAD_FRAGMENT


def test_ecn_ce_on_one_fragment_marks_the_datagram_and_mixing_is_dropped() -> None:
    r = Reassembler()
    assert r.add_ipv4(0, frag4(0, bytes(8), more=True, ecn=2)) is None
    result = r.add_ipv4(0, frag4(8, bytes(8), more=False, ecn=3))
    assert isinstance(result, bytes) and parse4(result).ecn == 3
    assert r.add_ipv4(0, frag4(0, bytes(8), more=True, ident=8, ecn=0)) is None
    assert r.add_ipv4(0, frag4(8, bytes(8), more=False, ident=8, ecn=2)) is (
        ReassemblyResult.BAD_FRAGMENT
    )
    assert r.counters["ecn_mismatch"] == 1


# --- timeouts ------------------------------------------------------------------


def test_timeout_with_first_fragment_reports_it_for_time_exceeded() -> None:
    header, payload = datagram4(3000, ROUTER_ALERT)
    frags = fragment_ipv4(header, payload, 1500)
    r = Reassembler(timeout_ns=30 * S)
    assert r.next_deadline() is None
    assert r.add_ipv4(2 * S, parse4(frags[0])) is None
    assert r.add_ipv4(10 * S, parse4(frags[2])) is None  # does not extend the deadline
    assert r.next_deadline() == 32 * S
    assert r.expire(32 * S - 1) == []
    assert r.expire(32 * S) == [Expired(4, SRC4, DST4, 0x1234, frags[0])]
    assert r.counters["timeout"] == 1 and r.next_deadline() is None and r.buffered_bytes == 0


def test_timeout_without_first_fragment_reports_none() -> None:
    r = Reassembler(timeout_ns=IPV6_REASSEMBLY_TIMEOUT_NS)
    assert add6(r, 5, frag6(8, bytes(8), more=True, ident=77)) is None
    assert r.next_deadline() == 5 + 60 * S
    assert r.expire(61 * S) == [Expired(6, SRC6, DST6, 77, None)]


def test_ipv6_timeout_first_fragment_is_the_received_packet() -> None:
    unfrag, _ = unfragmentable6("hop_by_hop_routing")
    frags = fragment_ipv6(unfrag, PROTO_UDP, payload_of(3000), 1280, 99)
    r = Reassembler(timeout_ns=IPV6_REASSEMBLY_TIMEOUT_NS)
    assert add6(r, 0, frags[0]) is None
    (expired,) = r.expire(60 * S)
    assert expired.first_fragment == frags[0]


def test_fragment_arriving_after_deadline_starts_over_and_old_one_is_reported() -> None:
    r = Reassembler(timeout_ns=10 * S)
    assert r.add_ipv4(0, frag4(0, bytes(8), more=True)) is None
    # expire() was not called in time; the stale datagram must not complete.
    assert r.add_ipv4(11 * S, frag4(8, bytes(8), more=False)) is None
    assert r.next_deadline() == 10 * S
    (expired,) = r.expire(11 * S)
    assert expired.first_fragment is not None
    assert r.next_deadline() == 21 * S


# --- memory bounds -------------------------------------------------------------


def test_byte_bound_evicts_the_oldest_datagram() -> None:
    cost = 1000 + FRAGMENT_OVERHEAD
    r = Reassembler(max_bytes=3 * cost)
    for ident in range(3):
        assert r.add_ipv4(ident, frag4(1000, bytes(1000), more=True, ident=ident)) is None
    assert r.buffered_bytes == 3 * cost
    assert r.add_ipv4(5, frag4(1000, bytes(1000), more=True, ident=3)) is None
    assert r.counters["evicted"] == 1 and r.buffered_bytes == 3 * cost
    assert [ident for *_, ident in r.pending()] == [1, 2, 3]


def test_datagram_bound_evicts_the_oldest_datagram() -> None:
    r = Reassembler(max_datagrams=4)
    for ident in range(10):
        r.add_ipv4(ident, frag4(8, bytes(8), more=True, ident=ident))
    assert len(r) == 4 and r.counters["evicted"] == 6
    assert [ident for *_, ident in r.pending()] == [6, 7, 8, 9]


def test_datagram_larger_than_the_byte_bound_is_no_memory() -> None:
    r = Reassembler(max_bytes=4000)
    assert r.add_ipv4(0, frag4(0, bytes(2000), more=True)) is None
    assert r.add_ipv4(0, frag4(2000, bytes(2000), more=True)) is ReassemblyResult.NO_MEMORY
    assert len(r) == 0 and r.buffered_bytes == 0


def test_too_many_fragments_discards_the_datagram() -> None:
    r = Reassembler(max_fragments=16)
    for i in range(16):
        assert r.add_ipv4(0, frag4(16 * i, bytes(8), more=True)) is None
    assert r.add_ipv4(0, frag4(1000, bytes(8), more=True)) is ReassemblyResult.NO_MEMORY
    assert len(r) == 0 and r.counters["no_memory"] == 1


fragment_ops = st.lists(
    st.tuples(
        st.integers(0, 3),  # identification
        st.integers(0, 40),  # offset, in 8-byte units
        st.integers(0, 48),  # length
        st.booleans(),  # more fragments
        st.integers(0, 3 * S),  # time step
        st.booleans(),  # IPv6 or IPv4
        st.integers(0, 3),  # ECN
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=fragment_ops, max_bytes=st.integers(500, 5000), max_datagrams=st.integers(1, 4))
def test_hostile_fragment_streams_stay_bounded(
    ops: list[tuple[int, int, int, bool, int, bool, int]], max_bytes: int, max_datagrams: int
) -> None:
    r = Reassembler(
        max_bytes=max_bytes, max_datagrams=max_datagrams, timeout_ns=5 * S, max_fragments=8
    )
    now = 0
    for ident, offset, size, more, step, v6, ecn in ops:
        now += step
        if v6:
            result = add6(r, now, frag6(offset * 8, bytes(size), more, ident))
        else:
            result = r.add_ipv4(now, frag4(offset * 8, bytes(size), more, ident, ecn))
        if isinstance(result, bytes):
            pkt = parse6(result) if v6 else parse4(result)
            assert pkt.fragment is None if isinstance(pkt, Ipv6Packet) else not pkt.is_fragment
        assert r.buffered_bytes <= max_bytes
        assert len(r) <= max_datagrams
        deadline = r.next_deadline()
        if deadline is not None and deadline <= now:
            r.expire(now)
            deadline = r.next_deadline()
            assert deadline is None or deadline > now
    r.expire(now + 10 * S)
    assert len(r) == 0 and r.buffered_bytes == 0 and r.next_deadline() is None


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 20000),
    mtu=st.integers(68, 9000),
    options=st.sampled_from(list(OPTION_SETS.values())),
    seed=st.integers(0, 2**32),
)
def test_any_ipv4_datagram_round_trips_in_any_order(
    n: int, mtu: int, options: bytes, seed: int
) -> None:
    header, payload = datagram4(n, options)
    try:
        frags = fragment_ipv4(header, payload, mtu)
    except ValueError:
        assert mtu - len(header) < 8
        return
    random.Random(seed).shuffle(frags)
    r = Reassembler(max_fragments=len(frags))
    results = [r.add_ipv4(0, parse4(f)) for f in frags]
    expected = header + payload if len(frags) > 1 else frags[0]
    assert results[-1] == expected
