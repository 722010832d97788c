"""Pieces shared by IGMPv3 (IPv4) and MLDv2 (IPv6): group records and float codes.

Touches nothing but bytes. The two protocols use the same record layout,
with 4- or 16-byte addresses::

    0 record type  1 aux data len (32-bit words)  2 number of sources
    4 multicast address  4+A sources (A bytes each)  aux data
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._types import BytesLike
from .errors import WireError

# Group record types (RFC 3376 4.2.12, RFC 3810 5.2.12).
MODE_IS_INCLUDE = 1
MODE_IS_EXCLUDE = 2
CHANGE_TO_INCLUDE = 3
CHANGE_TO_EXCLUDE = 4
ALLOW_NEW_SOURCES = 5
BLOCK_OLD_SOURCES = 6

_RECORD_HEAD = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """One multicast address record of an IGMPv3 / MLDv2 report.

    ``aux_data`` must be a multiple of 4 bytes. Unknown ``record_type``
    values are kept: the receiver decides (RFC 3376 says ignore them).
    """

    record_type: int
    group: bytes
    sources: tuple[bytes, ...] = ()
    aux_data: bytes = b""

    def encoded_len(self) -> int:
        return 4 + len(self.group) * (1 + len(self.sources)) + len(self.aux_data)

    def encode(self) -> bytes:
        if len(self.aux_data) & 3:
            raise ValueError("group record aux data must be a multiple of 4 bytes")
        return b"".join(
            (
                _RECORD_HEAD.pack(self.record_type, len(self.aux_data) >> 2, len(self.sources)),
                self.group,
                *self.sources,
                self.aux_data,
            )
        )


def parse_addresses(
    buf: BytesLike, offset: int, count: int, addr_len: int
) -> tuple[bytes, ...] | WireError:
    """``count`` addresses of ``addr_len`` bytes at ``offset``, or TRUNCATED."""
    end = offset + count * addr_len
    if end > len(buf):
        return WireError.TRUNCATED
    raw = bytes(buf[offset:end])
    return tuple(raw[i : i + addr_len] for i in range(0, len(raw), addr_len))


def parse_records(
    buf: BytesLike, offset: int, count: int, addr_len: int
) -> tuple[GroupRecord, ...] | WireError:
    """``count`` group records starting at ``offset``; TRUNCATED if any overruns ``buf``."""
    records = []
    n = len(buf)
    for _ in range(count):
        if offset + 4 + addr_len > n:
            return WireError.TRUNCATED
        rtype, aux_words, nsrc = _RECORD_HEAD.unpack_from(buf, offset)
        group = bytes(buf[offset + 4 : offset + 4 + addr_len])
        sources = parse_addresses(buf, offset + 4 + addr_len, nsrc, addr_len)
        if isinstance(sources, WireError):
            return sources
        aux_start = offset + 4 + addr_len * (1 + nsrc)
        aux_end = aux_start + (aux_words << 2)
        if aux_end > n:
            return WireError.TRUNCATED
        records.append(GroupRecord(rtype, group, sources, bytes(buf[aux_start:aux_end])))
        offset = aux_end
    return tuple(records)


def decode_code8(code: int) -> int:
    """IGMPv3 Max Resp Code / QQIC, MLDv2 QQIC: 8-bit "floating point" to an integer."""
    if code < 128:
        return code
    return ((code & 0x0F) | 0x10) << (((code >> 4) & 7) + 3)


def encode_code8(value: int) -> int:
    """Inverse of ``decode_code8`` (rounds down; saturates at the largest code)."""
    if value < 128:
        return value
    for exp in range(8):
        mant = value >> (exp + 3)
        if mant < 0x20:
            return 0x80 | (exp << 4) | (mant & 0x0F)
    return 0xFF


def decode_code16(code: int) -> int:
    """MLDv2 Maximum Response Code (milliseconds): 16-bit "floating point" to an integer."""
    if code < 32768:
        return code
    return ((code & 0x0FFF) | 0x1000) << (((code >> 12) & 7) + 3)


def encode_code16(value: int) -> int:
    """Inverse of ``decode_code16`` (rounds down; saturates at the largest code)."""
    if value < 32768:
        return value
    for exp in range(8):
        mant = value >> (exp + 3)
        if mant < 0x2000:
            return 0x8000 | (exp << 12) | (mant & 0x0FFF)
    return 0xFFFF
