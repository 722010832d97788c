"""IGMP v1/v2/v3 (RFC 1112, RFC 2236, RFC 3376): parse to plain values, build.

Touches nothing but bytes. IGMP messages are small and rare, so ``parse``
returns plain-value message objects (copied out of the buffer), the same
classes the builders use. ``parse(buf)`` takes the whole IPv4 payload and
checks, in order: 8 bytes present (TRUNCATED), checksum over the whole
message (BAD_CHECKSUM), type known (UNSUPPORTED), and the type's layout.

Queries tell their version by length (RFC 3376 7.1): 8 bytes is an
IGMPv1 (max resp time 0) or IGMPv2 query, 12 or more an IGMPv3 query, 9-11
is BAD_LENGTH. Sources and group records that overrun the message are
TRUNCATED. Extra bytes after a v1/v2 message are ignored.

Wire layouts::

    v1/v2:     0 type  1 max resp time  2 checksum  4 group  8
    v3 query:  ... 8 resv/S/QRV  9 QQIC  10 number of sources  12 sources
    v3 report: 0 0x22  1 resv  2 checksum  4 resv  6 number of records  8 records
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TypeAlias

from ._multicast import (
    ALLOW_NEW_SOURCES,
    BLOCK_OLD_SOURCES,
    CHANGE_TO_EXCLUDE,
    CHANGE_TO_INCLUDE,
    MODE_IS_EXCLUDE,
    MODE_IS_INCLUDE,
    GroupRecord,
    decode_code8,
    encode_code8,
    parse_addresses,
    parse_records,
)
from ._types import BytesLike
from .checksum import internet_checksum, ones_sum
from .errors import WireError

__all__ = [
    "ALLOW_NEW_SOURCES",
    "BLOCK_OLD_SOURCES",
    "CHANGE_TO_EXCLUDE",
    "CHANGE_TO_INCLUDE",
    "MODE_IS_EXCLUDE",
    "MODE_IS_INCLUDE",
    "GroupRecord",
    "IgmpLeave",
    "IgmpMessage",
    "IgmpV1Report",
    "IgmpV2Query",
    "IgmpV2Report",
    "IgmpV3Query",
    "IgmpV3Report",
    "decode_code8",
    "encode_code8",
    "parse",
]

FIELD_TYPE = 0
FIELD_MAX_RESP = 1
FIELD_CHECKSUM = 2
FIELD_GROUP = 4
FIELD_V3Q_FLAGS = 8
FIELD_V3Q_QQIC = 9
FIELD_V3Q_NSRC = 10
FIELD_V3Q_SOURCES = 12
FIELD_V3R_NREC = 6
FIELD_V3R_RECORDS = 8
HEADER_LEN = 8
V3_QUERY_MIN_LEN = 12

TYPE_QUERY = 0x11
TYPE_V1_REPORT = 0x12
TYPE_V2_REPORT = 0x16
TYPE_LEAVE = 0x17
TYPE_V3_REPORT = 0x22

ALL_SYSTEMS = bytes((224, 0, 0, 1))
ALL_ROUTERS = bytes((224, 0, 0, 2))
ALL_V3_ROUTERS = bytes((224, 0, 0, 22))

_V12 = struct.Struct("!BBH4s")
_V3Q = struct.Struct("!BBH4sBBH")
_V3R = struct.Struct("!BBHHH")
_U16 = struct.Struct("!H")


def _finish(msg: bytearray) -> bytes:
    _U16.pack_into(msg, FIELD_CHECKSUM, internet_checksum(msg))
    return bytes(msg)


@dataclass(frozen=True, slots=True)
class IgmpV2Query:
    """8-byte membership query; an IGMPv1 query when ``max_resp_time`` is 0.

    ``max_resp_time`` is in tenths of a second; ``group`` is 0.0.0.0 for a
    general query.
    """

    max_resp_time: int
    group: bytes

    @property
    def is_v1(self) -> bool:
        return self.max_resp_time == 0

    def build(self) -> bytes:
        return _finish(bytearray(_V12.pack(TYPE_QUERY, self.max_resp_time, 0, self.group)))


@dataclass(frozen=True, slots=True)
class IgmpV3Query:
    """IGMPv3 membership query; ``max_resp_code`` and ``qqic`` are the encoded codes."""

    max_resp_code: int
    group: bytes
    suppress: bool = False  # S flag: suppress router-side processing
    qrv: int = 0  # querier's robustness variable (3 bits)
    qqic: int = 0
    sources: tuple[bytes, ...] = ()

    @property
    def max_resp_time(self) -> int:
        """Decoded maximum response time, in tenths of a second."""
        return decode_code8(self.max_resp_code)

    @property
    def query_interval(self) -> int:
        """Decoded querier's query interval, in seconds."""
        return decode_code8(self.qqic)

    def build(self) -> bytes:
        flags = (0x08 if self.suppress else 0) | (self.qrv & 7)
        head = _V3Q.pack(
            TYPE_QUERY, self.max_resp_code, 0, self.group, flags, self.qqic, len(self.sources)
        )
        return _finish(bytearray(head + b"".join(self.sources)))


@dataclass(frozen=True, slots=True)
class IgmpV1Report:
    group: bytes

    def build(self) -> bytes:
        return _finish(bytearray(_V12.pack(TYPE_V1_REPORT, 0, 0, self.group)))


@dataclass(frozen=True, slots=True)
class IgmpV2Report:
    group: bytes

    def build(self) -> bytes:
        return _finish(bytearray(_V12.pack(TYPE_V2_REPORT, 0, 0, self.group)))


@dataclass(frozen=True, slots=True)
class IgmpLeave:
    """IGMPv2 leave group."""

    group: bytes

    def build(self) -> bytes:
        return _finish(bytearray(_V12.pack(TYPE_LEAVE, 0, 0, self.group)))


@dataclass(frozen=True, slots=True)
class IgmpV3Report:
    records: tuple[GroupRecord, ...] = ()

    def build(self) -> bytes:
        head = _V3R.pack(TYPE_V3_REPORT, 0, 0, 0, len(self.records))
        return _finish(bytearray(head + b"".join(r.encode() for r in self.records)))


IgmpMessage: TypeAlias = (
    IgmpV2Query | IgmpV3Query | IgmpV1Report | IgmpV2Report | IgmpLeave | IgmpV3Report
)


def parse(buf: BytesLike, *, verify_checksum: bool = True) -> IgmpMessage | WireError:
    """Parse the IGMP message that is the whole of ``buf`` (the IPv4 payload)."""
    n = len(buf)
    if n < HEADER_LEN:
        return WireError.TRUNCATED
    if verify_checksum and ones_sum(buf) != 0xFFFF:
        return WireError.BAD_CHECKSUM
    mtype, max_resp, _, group = _V12.unpack_from(buf)
    if mtype == TYPE_QUERY:
        if n == HEADER_LEN:
            return IgmpV2Query(max_resp, group)
        if n < V3_QUERY_MIN_LEN:
            return WireError.BAD_LENGTH
        _, _, _, _, flags, qqic, nsrc = _V3Q.unpack_from(buf)
        sources = parse_addresses(buf, FIELD_V3Q_SOURCES, nsrc, 4)
        if isinstance(sources, WireError):
            return sources
        return IgmpV3Query(max_resp, group, bool(flags & 0x08), flags & 7, qqic, sources)
    if mtype == TYPE_V2_REPORT:
        return IgmpV2Report(group)
    if mtype == TYPE_LEAVE:
        return IgmpLeave(group)
    if mtype == TYPE_V1_REPORT:
        return IgmpV1Report(group)
    if mtype == TYPE_V3_REPORT:
        (nrec,) = _U16.unpack_from(buf, FIELD_V3R_NREC)
        records = parse_records(buf, FIELD_V3R_RECORDS, nrec, 4)
        if isinstance(records, WireError):
            return records
        return IgmpV3Report(records)
    return WireError.UNSUPPORTED
