"""The Internet checksum against RFC 1071's reference loop and scapy."""

from __future__ import annotations

import struct
from ipaddress import ip_address

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import checksum as scapy_checksum

from stack.wire.checksum import (
    finish,
    fold,
    internet_checksum,
    ones_sum,
    pseudo_header_v4,
    pseudo_header_v6,
    update,
    verify,
)

FUZZ = settings.get_profile("vnet-wire")


def reference_ones_sum(data: bytes) -> int:
    """RFC 1071 section 4.1, word by word with end-around carry."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_rfc1071_worked_example() -> None:
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D


def test_all_zero_data_sums_to_zero_and_checksums_to_ffff() -> None:
    assert ones_sum(bytes(20)) == 0
    assert internet_checksum(bytes(20)) == 0xFFFF
    assert ones_sum(b"") == 0


def test_nonzero_multiple_of_ffff_is_negative_zero() -> None:
    assert ones_sum(b"\xff\xff") == 0xFFFF
    assert ones_sum(b"\x80\x00\x7f\xff") == 0xFFFF
    assert internet_checksum(b"\x80\x00\x7f\xff") == 0


@FUZZ
@given(st.binary(max_size=300))
def test_ones_sum_matches_reference_loop(data: bytes) -> None:
    assert ones_sum(data) == reference_ones_sum(data)
    assert ones_sum(memoryview(data)) == reference_ones_sum(data)
    assert internet_checksum(data) == scapy_checksum(data)


@FUZZ
@given(st.binary(max_size=100).map(lambda b: b[: len(b) & ~1]), st.binary(max_size=100))
def test_partial_sums_of_even_pieces_add(a: bytes, b: bytes) -> None:
    assert fold(ones_sum(a) + ones_sum(b)) == ones_sum(a + b)
    assert ones_sum(b, ones_sum(a)) == ones_sum(a + b)
    assert finish(ones_sum(a) + ones_sum(b)) == internet_checksum(a + b)


@FUZZ
@given(st.binary(min_size=2, max_size=200).map(lambda b: b[: len(b) & ~1]))
def test_data_with_its_checksum_inserted_verifies(data: bytes) -> None:
    csum = internet_checksum(data)
    assert verify(data + struct.pack("!H", csum))
    if csum != 0xFFFF or any(data):
        # a wrong checksum must not verify (except the 0/0xFFFF twin for zero data)
        assert not verify(data + struct.pack("!H", csum ^ 0x0100))


@FUZZ
@given(
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=4, max_size=4),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
)
def test_pseudo_header_v4_matches_explicit_bytes(
    src: bytes, dst: bytes, proto: int, n: int
) -> None:
    explicit = src + dst + bytes((0, proto)) + struct.pack("!H", n)
    assert pseudo_header_v4(src, dst, proto, n) == ones_sum(explicit)


@FUZZ
@given(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 255),
    st.integers(0, 0xFFFFFFFF),
)
def test_pseudo_header_v6_matches_explicit_bytes(src: bytes, dst: bytes, nh: int, n: int) -> None:
    explicit = src + dst + struct.pack("!I", n) + bytes((0, 0, 0, nh))
    assert pseudo_header_v6(src, dst, nh, n) == ones_sum(explicit)


def test_pseudo_header_checksums_agree_with_scapy_udp() -> None:
    payload = b"pseudo header check"
    cases = [
        (IP(src="192.0.2.1", dst="198.51.100.7"), pseudo_header_v4),
        (IPv6(src="2001:db8::1", dst="2001:db8::2"), pseudo_header_v6),
    ]
    for ip, pseudo in cases:
        pkt = ip.__class__(bytes(ip / UDP(sport=1234, dport=53) / payload))
        udp = bytearray(bytes(pkt[UDP]))
        scapy_sum = pkt[UDP].chksum
        udp[6:8] = b"\x00\x00"
        src, dst = ip_address(pkt.src).packed, ip_address(pkt.dst).packed
        assert internet_checksum(udp, pseudo(src, dst, 17, len(udp))) == scapy_sum


@FUZZ
@given(
    st.binary(min_size=20, max_size=60).map(lambda b: b[: len(b) & ~1]),
    st.data(),
)
def test_incremental_update_keeps_checksum_valid(header: bytes, data: st.DataObject) -> None:
    words = len(header) // 2
    at = data.draw(st.integers(0, words - 1)) * 2
    new = data.draw(st.binary(min_size=2, max_size=2))
    csum = internet_checksum(header)
    patched = header[:at] + new + header[at + 2 :]
    assume(any(patched))  # incremental updates cannot tell +0 from -0 (see update())
    updated = update(csum, header[at : at + 2], new)
    assert verify(patched + struct.pack("!H", updated))
    recomputed = internet_checksum(patched)
    assert updated == recomputed or {updated, recomputed} == {0, 0xFFFF}
