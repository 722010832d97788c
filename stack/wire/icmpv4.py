"""ICMP for IPv4 (RFC 792, RFC 1191): parsed view and builder.

Touches nothing but bytes. ``Icmpv4Packet.parse`` checks the 8-byte header
is present (TRUNCATED) and the checksum over the whole message (BAD_CHECKSUM);
any type is accepted, and the type-specific accessors interpret the 4-byte
"rest of header" (identifier/sequence, next-hop MTU, pointer, gateway). For
error messages ``invoking_packet`` is the quoted IPv4 packet: parse it with
``Ipv4Packet.parse(..., partial=True)``. Redirects are parsed, never built.

Wire layout::

    0 type  1 code  2 checksum  4 rest of header  8 data / invoking packet
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._types import BytesLike, WritableBuffer
from .checksum import internet_checksum, ones_sum
from .errors import WireError

FIELD_TYPE = 0
FIELD_CODE = 1
FIELD_CHECKSUM = 2
FIELD_REST = 4
HEADER_LEN = 8

TYPE_ECHO_REPLY = 0
TYPE_DEST_UNREACHABLE = 3
TYPE_SOURCE_QUENCH = 4
TYPE_REDIRECT = 5
TYPE_ECHO_REQUEST = 8
TYPE_ROUTER_ADVERT = 9
TYPE_ROUTER_SOLICIT = 10
TYPE_TIME_EXCEEDED = 11
TYPE_PARAM_PROBLEM = 12
TYPE_TIMESTAMP = 13
TYPE_TIMESTAMP_REPLY = 14

ERROR_TYPES = frozenset(
    (
        TYPE_DEST_UNREACHABLE,
        TYPE_SOURCE_QUENCH,
        TYPE_REDIRECT,
        TYPE_TIME_EXCEEDED,
        TYPE_PARAM_PROBLEM,
    )
)

# Destination unreachable codes.
UNREACH_NET = 0
UNREACH_HOST = 1
UNREACH_PROTOCOL = 2
UNREACH_PORT = 3
UNREACH_FRAG_NEEDED = 4  # next-hop MTU in the low 16 bits of "rest"
UNREACH_SOURCE_ROUTE_FAILED = 5
UNREACH_NET_UNKNOWN = 6
UNREACH_HOST_UNKNOWN = 7
UNREACH_SOURCE_ISOLATED = 8
UNREACH_NET_PROHIBITED = 9
UNREACH_HOST_PROHIBITED = 10
UNREACH_NET_TOS = 11
UNREACH_HOST_TOS = 12
UNREACH_ADMIN_PROHIBITED = 13
UNREACH_HOST_PRECEDENCE = 14
UNREACH_PRECEDENCE_CUTOFF = 15

# Time exceeded codes.
TIME_EXCEEDED_TTL = 0
TIME_EXCEEDED_REASSEMBLY = 1

# Parameter problem codes.
PARAM_POINTER = 0
PARAM_MISSING_OPTION = 1
PARAM_BAD_LENGTH = 2

# Redirect codes.
REDIRECT_NET = 0
REDIRECT_HOST = 1
REDIRECT_TOS_NET = 2
REDIRECT_TOS_HOST = 3

_HEADER = struct.Struct("!BBHI")
_U16 = struct.Struct("!H")


class Icmpv4Packet:
    """Zero-copy view of an ICMPv4 message; ``buf`` is the whole message."""

    __slots__ = ("buf", "checksum", "code", "rest", "type")

    buf: memoryview
    type: int
    code: int
    checksum: int
    rest: int  # the 32-bit "rest of header"

    def __init__(self, buf: memoryview, type: int, code: int, checksum: int, rest: int) -> None:
        self.buf = buf
        self.type = type
        self.code = code
        self.checksum = checksum
        self.rest = rest

    @classmethod
    def parse(cls, buf: BytesLike, *, verify_checksum: bool = True) -> Icmpv4Packet | WireError:
        if len(buf) < HEADER_LEN:
            return WireError.TRUNCATED
        if verify_checksum and ones_sum(buf) != 0xFFFF:
            return WireError.BAD_CHECKSUM
        mtype, code, csum, rest = _HEADER.unpack_from(buf)
        return cls(memoryview(buf), mtype, code, csum, rest)

    @property
    def ident(self) -> int:
        """Echo / timestamp identifier."""
        return self.rest >> 16

    @property
    def seq(self) -> int:
        """Echo / timestamp sequence number."""
        return self.rest & 0xFFFF

    @property
    def next_hop_mtu(self) -> int:
        """Destination unreachable, fragmentation needed (RFC 1191)."""
        return self.rest & 0xFFFF

    @property
    def pointer(self) -> int:
        """Parameter problem: offset of the offending octet in the invoking packet."""
        return self.rest >> 24

    @property
    def gateway(self) -> bytes:
        """Redirect: the gateway address to use."""
        return self.rest.to_bytes(4, "big")

    @property
    def is_error(self) -> bool:
        return self.type in ERROR_TYPES

    @property
    def data(self) -> memoryview:
        """Everything after the 8-byte header: echo data, or the invoking packet."""
        return self.buf[HEADER_LEN:]

    @property
    def invoking_packet(self) -> memoryview | None:
        """The quoted IPv4 packet of an error message, else None."""
        return self.buf[HEADER_LEN:] if self.type in ERROR_TYPES else None

    def to_repr(self) -> Icmpv4Repr:
        return Icmpv4Repr(self.type, self.code, self.rest)

    def __repr__(self) -> str:
        return f"<Icmpv4Packet type={self.type} code={self.code} len={len(self.buf)}>"


@dataclass(frozen=True, slots=True)
class Icmpv4Repr:
    """An ICMPv4 header as plain values; the classmethods name the messages we send.

    The data (echo payload or invoking packet) is passed to ``build`` /
    placed after the header before ``emit_into``; the builder computes the
    checksum over header and data.
    """

    type: int
    code: int = 0
    rest: int = 0

    header_len = HEADER_LEN

    @classmethod
    def echo_request(cls, ident: int, seq: int) -> Icmpv4Repr:
        return cls(TYPE_ECHO_REQUEST, 0, (ident << 16) | seq)

    @classmethod
    def echo_reply(cls, ident: int, seq: int) -> Icmpv4Repr:
        return cls(TYPE_ECHO_REPLY, 0, (ident << 16) | seq)

    @classmethod
    def dest_unreachable(cls, code: int, next_hop_mtu: int = 0) -> Icmpv4Repr:
        return cls(TYPE_DEST_UNREACHABLE, code, next_hop_mtu & 0xFFFF)

    @classmethod
    def frag_needed(cls, next_hop_mtu: int) -> Icmpv4Repr:
        return cls(TYPE_DEST_UNREACHABLE, UNREACH_FRAG_NEEDED, next_hop_mtu & 0xFFFF)

    @classmethod
    def time_exceeded(cls, code: int = TIME_EXCEEDED_TTL) -> Icmpv4Repr:
        return cls(TYPE_TIME_EXCEEDED, code, 0)

    @classmethod
    def param_problem(cls, code: int, pointer: int) -> Icmpv4Repr:
        return cls(TYPE_PARAM_PROBLEM, code, (pointer & 0xFF) << 24)

    def emit_into(self, buf: WritableBuffer, offset: int, data_len: int) -> int:
        """Write the header; the ``data_len`` bytes of data must already follow it."""
        _HEADER.pack_into(buf, offset, self.type, self.code, 0, self.rest)
        end = offset + HEADER_LEN + data_len
        csum = internet_checksum(memoryview(buf)[offset:end])
        _U16.pack_into(buf, offset + FIELD_CHECKSUM, csum)
        return offset + HEADER_LEN

    def build(self, data: BytesLike = b"") -> bytes:
        out = bytearray(HEADER_LEN + len(data))
        out[HEADER_LEN:] = data
        self.emit_into(out, 0, len(data))
        return bytes(out)
