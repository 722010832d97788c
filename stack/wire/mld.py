"""MLDv1 (RFC 2710) and MLDv2 (RFC 3810) messages carried in ICMPv6.

Touches nothing but bytes. Like IGMP, MLD messages parse to plain-value
message objects, the same classes the builders use. ``parse`` takes an
already checksum-verified ``Icmpv6Packet`` of type 130, 131, 132 or 143
(other types are UNSUPPORTED). Queries tell their version by length
(RFC 3810 8.1): 24 bytes is MLDv1, 28 or more MLDv2, 25-27 is BAD_LENGTH;
shorter than 24 is TRUNCATED, and so are sources or records that overrun
the message. Builders return the complete ICMPv6 message with its checksum;
the stack sends it with hop limit 1 and a hop-by-hop Router Alert
(``ipv6.OptionsHeaderRepr.router_alert``).

Wire layouts (offsets in the ICMPv6 message)::

    v1 (130/131/132): 0 type  1 code  2 checksum  4 max resp delay  6 resv  8 address  24
    v2 query (130):   ... 24 resv/S/QRV  25 QQIC  26 number of sources  28 sources
    v2 report (143):  0 type  1 code  2 checksum  4 resv  6 number of records  8 records
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
    decode_code16,
    encode_code8,
    encode_code16,
    parse_addresses,
    parse_records,
)
from .errors import WireError
from .icmpv6 import (
    TYPE_MLD_DONE,
    TYPE_MLD_QUERY,
    TYPE_MLD_REPORT,
    TYPE_MLDV2_REPORT,
    Icmpv6Packet,
    checksum_message,
)

__all__ = [
    "ALLOW_NEW_SOURCES",
    "BLOCK_OLD_SOURCES",
    "CHANGE_TO_EXCLUDE",
    "CHANGE_TO_INCLUDE",
    "MODE_IS_EXCLUDE",
    "MODE_IS_INCLUDE",
    "GroupRecord",
    "MldMessage",
    "MldV1Done",
    "MldV1Query",
    "MldV1Report",
    "MldV2Query",
    "MldV2Report",
    "decode_code8",
    "decode_code16",
    "encode_code8",
    "encode_code16",
    "parse",
]

FIELD_MAX_RESP = 4
FIELD_ADDRESS = 8
FIELD_V2Q_FLAGS = 24
FIELD_V2Q_QQIC = 25
FIELD_V2Q_NSRC = 26
FIELD_V2Q_SOURCES = 28
FIELD_V2R_NREC = 6
FIELD_V2R_RECORDS = 8
V1_LEN = 24
V2_QUERY_MIN_LEN = 28

_V1 = struct.Struct("!BBHHH16s")
_V2Q = struct.Struct("!BBHHH16sBBH")
_V2R = struct.Struct("!BBHHH")


@dataclass(frozen=True, slots=True)
class MldV1Query:
    """MLDv1 query; ``max_resp_delay`` in ms; ``group`` :: for a general query."""

    max_resp_delay: int
    group: bytes

    def build(self, src: bytes, dst: bytes) -> bytes:
        msg = _V1.pack(TYPE_MLD_QUERY, 0, 0, self.max_resp_delay, 0, self.group)
        return checksum_message(bytearray(msg), src, dst)


@dataclass(frozen=True, slots=True)
class MldV1Report:
    group: bytes

    def build(self, src: bytes, dst: bytes) -> bytes:
        msg = _V1.pack(TYPE_MLD_REPORT, 0, 0, 0, 0, self.group)
        return checksum_message(bytearray(msg), src, dst)


@dataclass(frozen=True, slots=True)
class MldV1Done:
    group: bytes

    def build(self, src: bytes, dst: bytes) -> bytes:
        msg = _V1.pack(TYPE_MLD_DONE, 0, 0, 0, 0, self.group)
        return checksum_message(bytearray(msg), src, dst)


@dataclass(frozen=True, slots=True)
class MldV2Query:
    """MLDv2 query; ``max_resp_code`` (16-bit) and ``qqic`` (8-bit) are encoded codes."""

    max_resp_code: int
    group: bytes
    suppress: bool = False
    qrv: int = 0
    qqic: int = 0
    sources: tuple[bytes, ...] = ()

    @property
    def max_resp_delay(self) -> int:
        """Decoded maximum response delay, in milliseconds."""
        return decode_code16(self.max_resp_code)

    @property
    def query_interval(self) -> int:
        """Decoded querier's query interval, in seconds."""
        return decode_code8(self.qqic)

    def build(self, src: bytes, dst: bytes) -> bytes:
        flags = (0x08 if self.suppress else 0) | (self.qrv & 7)
        head = _V2Q.pack(
            TYPE_MLD_QUERY,
            0,
            0,
            self.max_resp_code,
            0,
            self.group,
            flags,
            self.qqic,
            len(self.sources),
        )
        return checksum_message(bytearray(head + b"".join(self.sources)), src, dst)


@dataclass(frozen=True, slots=True)
class MldV2Report:
    records: tuple[GroupRecord, ...] = ()

    def build(self, src: bytes, dst: bytes) -> bytes:
        head = _V2R.pack(TYPE_MLDV2_REPORT, 0, 0, 0, len(self.records))
        body = b"".join(r.encode() for r in self.records)
        return checksum_message(bytearray(head + body), src, dst)


MldMessage: TypeAlias = MldV1Query | MldV1Report | MldV1Done | MldV2Query | MldV2Report


def parse(icmp: Icmpv6Packet) -> MldMessage | WireError:
    """Decode the MLD message in a parsed ICMPv6 packet."""
    buf = icmp.buf
    n = len(buf)
    mtype = icmp.type
    if mtype == TYPE_MLDV2_REPORT:
        _, _, _, _, nrec = _V2R.unpack_from(buf)
        records = parse_records(buf, FIELD_V2R_RECORDS, nrec, 16)
        if isinstance(records, WireError):
            return records
        return MldV2Report(records)
    if mtype not in (TYPE_MLD_QUERY, TYPE_MLD_REPORT, TYPE_MLD_DONE):
        return WireError.UNSUPPORTED
    if n < V1_LEN:
        return WireError.TRUNCATED
    _, _, _, max_resp, _, group = _V1.unpack_from(buf)
    if mtype == TYPE_MLD_REPORT:
        return MldV1Report(group)
    if mtype == TYPE_MLD_DONE:
        return MldV1Done(group)
    if n == V1_LEN:
        return MldV1Query(max_resp, group)
    if n < V2_QUERY_MIN_LEN:
        return WireError.BAD_LENGTH
    _, _, _, _, _, _, flags, qqic, nsrc = _V2Q.unpack_from(buf)
    sources = parse_addresses(buf, FIELD_V2Q_SOURCES, nsrc, 16)
    if isinstance(sources, WireError):
        return sources
    return MldV2Query(max_resp, group, bool(flags & 0x08), flags & 7, qqic, sources)
