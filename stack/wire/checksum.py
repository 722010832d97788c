"""The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-header sums.

Touches nothing but bytes and ints.

Theory of operation: the ones'-complement sum of 16-bit big-endian words is
congruent to the sum modulo 0xFFFF (because 2**16 == 1 mod 0xFFFF). So we read
the whole buffer as one big-endian integer with ``int.from_bytes`` (C speed)
and reduce it modulo 0xFFFF. Measured with CPython 3.11 on this project's
machine this is about 3x faster than ``array('H')`` + ``byteswap`` + ``sum``
and 4x faster than ``memoryview.cast('H')`` (1500 bytes: 5 us vs 17 us vs
21 us). The only difference between modular arithmetic and an end-around-carry
adder is zero: the adder yields 0 only when every word is 0, and 0xFFFF
("negative zero") when a non-zero sum is a multiple of 0xFFFF. ``fold`` keeps
that distinction, so results are bit-identical to RFC 1071's loop.

Vocabulary:

- a *partial sum* is an int whose ``fold`` is the 16-bit ones'-complement
  sum; partial sums of different pieces may simply be added (``+``) as long
  as every piece except the last has even length;
- ``ones_sum(data, initial)`` is the folded sum of ``data`` plus ``initial``;
- ``internet_checksum`` is the complement, the value written into headers;
- ``verify`` is true when the data (checksum field included) sums to 0xFFFF.
"""

from __future__ import annotations

from ._types import BytesLike

__all__ = [
    "finish",
    "fold",
    "internet_checksum",
    "ones_sum",
    "pseudo_header_v4",
    "pseudo_header_v6",
    "update",
    "verify",
]

_from_bytes = int.from_bytes


def fold(partial: int) -> int:
    """Fold a non-negative partial sum to the 16-bit ones'-complement sum."""
    s = partial % 0xFFFF
    if s == 0 and partial:
        return 0xFFFF
    return s


def finish(partial: int) -> int:
    """Complement of the folded sum: the value to store in a checksum field."""
    return 0xFFFF - fold(partial)


def ones_sum(data: BytesLike, initial: int = 0) -> int:
    """Folded 16-bit ones'-complement sum of ``data`` (odd tail padded), plus ``initial``."""
    n = _from_bytes(data, "big")
    if len(data) & 1:
        n <<= 8
    n += initial
    s = n % 0xFFFF
    if s == 0 and n:
        return 0xFFFF
    return s


def internet_checksum(data: BytesLike, initial: int = 0) -> int:
    """RFC 1071 checksum of ``data`` with ``initial`` (e.g. a pseudo-header sum) added."""
    return 0xFFFF - ones_sum(data, initial)


def verify(data: BytesLike, initial: int = 0) -> bool:
    """True when ``data``, checksum field included, plus ``initial`` sums to 0xFFFF."""
    return ones_sum(data, initial) == 0xFFFF


def pseudo_header_v4(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Partial sum of the IPv4 pseudo-header (RFC 768/793): addresses, protocol, length."""
    return fold(_from_bytes(src, "big") + _from_bytes(dst, "big") + proto + length)


def pseudo_header_v6(src: bytes, dst: bytes, next_header: int, length: int) -> int:
    """Partial sum of the IPv6 pseudo-header (RFC 8200 8.1); ``length`` is 32-bit."""
    return fold(_from_bytes(src, "big") + _from_bytes(dst, "big") + next_header + length)


def update(checksum: int, old: BytesLike, new: BytesLike) -> int:
    """Incrementally update ``checksum`` after even-length field ``old`` became ``new``.

    RFC 1624 equation 3: HC' = ~(~HC + ~m + m'). Used for TTL decrement and
    address/port rewriting without re-summing the whole packet. Like every
    incremental method it cannot tell an all-zero packet from one summing to
    0xFFFF; it assumes the latter, which holds for any real header.
    """
    return finish((0xFFFF - checksum) + (0xFFFF - ones_sum(old)) + ones_sum(new))
