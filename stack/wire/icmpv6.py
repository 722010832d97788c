"""ICMPv6 (RFC 4443): generic parsed view, echo and error messages, builder.

Touches nothing but bytes. The checksum covers the IPv6 pseudo-header, so
``Icmpv6Packet.parse`` takes the source and destination addresses (the final
destination when a routing header is present). It checks the 8-byte header
(TRUNCATED) and the checksum (BAD_CHECKSUM) and accepts any type. Message
bodies with more structure live in their own modules, which take the parsed
``Icmpv6Packet``: ``ndp.parse`` (types 133-137) and ``mld.parse`` (130-132,
143). Error messages quote the invoking packet: parse it with
``Ipv6Packet.parse(..., partial=True)``.

Wire layout::

    0 type  1 code  2 checksum  4 rest of header (32 bits)  8 body
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._types import BytesLike, WritableBuffer
from .checksum import internet_checksum, ones_sum, pseudo_header_v6
from .errors import WireError
from .ip import PROTO_ICMPV6

FIELD_TYPE = 0
FIELD_CODE = 1
FIELD_CHECKSUM = 2
FIELD_REST = 4
HEADER_LEN = 8

TYPE_DEST_UNREACHABLE = 1
TYPE_PACKET_TOO_BIG = 2
TYPE_TIME_EXCEEDED = 3
TYPE_PARAM_PROBLEM = 4
TYPE_ECHO_REQUEST = 128
TYPE_ECHO_REPLY = 129
TYPE_MLD_QUERY = 130
TYPE_MLD_REPORT = 131
TYPE_MLD_DONE = 132
TYPE_ROUTER_SOLICIT = 133
TYPE_ROUTER_ADVERT = 134
TYPE_NEIGHBOR_SOLICIT = 135
TYPE_NEIGHBOR_ADVERT = 136
TYPE_REDIRECT = 137
TYPE_MLDV2_REPORT = 143

ERROR_TYPES = frozenset(
    (TYPE_DEST_UNREACHABLE, TYPE_PACKET_TOO_BIG, TYPE_TIME_EXCEEDED, TYPE_PARAM_PROBLEM)
)
NDP_TYPES = frozenset(range(TYPE_ROUTER_SOLICIT, TYPE_REDIRECT + 1))
MLD_TYPES = frozenset((TYPE_MLD_QUERY, TYPE_MLD_REPORT, TYPE_MLD_DONE, TYPE_MLDV2_REPORT))

# Destination unreachable codes.
UNREACH_NO_ROUTE = 0
UNREACH_ADMIN_PROHIBITED = 1
UNREACH_BEYOND_SCOPE = 2
UNREACH_ADDRESS = 3
UNREACH_PORT = 4
UNREACH_SOURCE_POLICY = 5
UNREACH_REJECT_ROUTE = 6

# Time exceeded codes.
TIME_EXCEEDED_HOP_LIMIT = 0
TIME_EXCEEDED_REASSEMBLY = 1

# Parameter problem codes.
PARAM_ERRONEOUS_HEADER = 0
PARAM_UNRECOGNIZED_NEXT_HEADER = 1
PARAM_UNRECOGNIZED_OPTION = 2

#: An error message must fit in the minimum IPv6 MTU: 1280 - 40 - 8 bytes of
#: invoking packet at most (RFC 4443 2.4 (c)).
MAX_INVOKING_LEN = 1280 - 40 - HEADER_LEN

_HEADER = struct.Struct("!BBHI")
_U16 = struct.Struct("!H")


class Icmpv6Packet:
    """Zero-copy view of an ICMPv6 message; ``buf`` is the whole message."""

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
    def parse(
        cls, buf: BytesLike, src: bytes, dst: bytes, *, verify_checksum: bool = True
    ) -> Icmpv6Packet | WireError:
        n = len(buf)
        if n < HEADER_LEN:
            return WireError.TRUNCATED
        if verify_checksum and ones_sum(buf, pseudo_header_v6(src, dst, PROTO_ICMPV6, n)) != 0xFFFF:
            return WireError.BAD_CHECKSUM
        mtype, code, csum, rest = _HEADER.unpack_from(buf)
        return cls(memoryview(buf), mtype, code, csum, rest)

    @property
    def ident(self) -> int:
        """Echo identifier."""
        return self.rest >> 16

    @property
    def seq(self) -> int:
        """Echo sequence number."""
        return self.rest & 0xFFFF

    @property
    def mtu(self) -> int:
        """Packet Too Big: the MTU of the next hop."""
        return self.rest

    @property
    def pointer(self) -> int:
        """Parameter Problem: offset of the offending octet in the invoking packet."""
        return self.rest

    @property
    def is_error(self) -> bool:
        return self.type < 128

    @property
    def body(self) -> memoryview:
        """Everything after the 8-byte header (echo data, invoking packet, ...)."""
        return self.buf[HEADER_LEN:]

    @property
    def invoking_packet(self) -> memoryview | None:
        """The quoted IPv6 packet of an error message, else None."""
        return self.buf[HEADER_LEN:] if self.type < 128 else None

    def to_repr(self) -> Icmpv6Repr:
        return Icmpv6Repr(self.type, self.code, self.rest)

    def __repr__(self) -> str:
        return f"<Icmpv6Packet type={self.type} code={self.code} len={len(self.buf)}>"


@dataclass(frozen=True, slots=True)
class Icmpv6Repr:
    """An ICMPv6 header as plain values; the classmethods name the messages we send.

    The body (echo data, invoking packet) goes to ``build`` or is placed after
    the header before ``emit_into``; the checksum covers the pseudo-header.
    """

    type: int
    code: int = 0
    rest: int = 0

    header_len = HEADER_LEN

    @classmethod
    def echo_request(cls, ident: int, seq: int) -> Icmpv6Repr:
        return cls(TYPE_ECHO_REQUEST, 0, (ident << 16) | seq)

    @classmethod
    def echo_reply(cls, ident: int, seq: int) -> Icmpv6Repr:
        return cls(TYPE_ECHO_REPLY, 0, (ident << 16) | seq)

    @classmethod
    def dest_unreachable(cls, code: int) -> Icmpv6Repr:
        return cls(TYPE_DEST_UNREACHABLE, code, 0)

    @classmethod
    def packet_too_big(cls, mtu: int) -> Icmpv6Repr:
        return cls(TYPE_PACKET_TOO_BIG, 0, mtu)

    @classmethod
    def time_exceeded(cls, code: int = TIME_EXCEEDED_HOP_LIMIT) -> Icmpv6Repr:
        return cls(TYPE_TIME_EXCEEDED, code, 0)

    @classmethod
    def param_problem(cls, code: int, pointer: int) -> Icmpv6Repr:
        return cls(TYPE_PARAM_PROBLEM, code, pointer)

    def emit_into(
        self, buf: WritableBuffer, offset: int, body_len: int, src: bytes, dst: bytes
    ) -> int:
        """Write the header; the ``body_len`` bytes of body must already follow it."""
        _HEADER.pack_into(buf, offset, self.type, self.code, 0, self.rest)
        length = HEADER_LEN + body_len
        csum = internet_checksum(
            memoryview(buf)[offset : offset + length],
            pseudo_header_v6(src, dst, PROTO_ICMPV6, length),
        )
        _U16.pack_into(buf, offset + FIELD_CHECKSUM, csum)
        return offset + HEADER_LEN

    def build(self, body: BytesLike, src: bytes, dst: bytes) -> bytes:
        out = bytearray(HEADER_LEN + len(body))
        out[HEADER_LEN:] = body
        self.emit_into(out, 0, len(body), src, dst)
        return bytes(out)


def checksum_message(message: bytearray, src: bytes, dst: bytes) -> bytes:
    """Fill the checksum of a complete ICMPv6 message built by another module."""
    message[FIELD_CHECKSUM : FIELD_CHECKSUM + 2] = b"\x00\x00"
    csum = internet_checksum(message, pseudo_header_v6(src, dst, PROTO_ICMPV6, len(message)))
    _U16.pack_into(message, FIELD_CHECKSUM, csum)
    return bytes(message)
