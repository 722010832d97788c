"""UDP (RFC 768; RFC 8200 8.1 for IPv6): parsed view and builder.

Touches nothing but bytes. The checksum covers a pseudo-header, so parse
and build take the IP source and destination addresses; their length (4 or
16) selects IPv4 or IPv6 rules. ``UdpPacket.parse`` checks: 8 bytes present
(TRUNCATED), length field >= 8 (BAD_LENGTH), length field <= buffer
(TRUNCATED; bytes past it are trimmed), and the checksum (BAD_CHECKSUM). Over
IPv4 a zero checksum means "none" and is accepted; over IPv6 it is
BAD_CHECKSUM. The builder always computes a checksum (sending 0xFFFF when it
computes to 0) unless ``checksum=False`` is asked for over IPv4.

Wire layout::

    0 source port  2 destination port  4 length  6 checksum  8 payload
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._types import BytesLike, WritableBuffer
from .checksum import ones_sum, pseudo_header_v4, pseudo_header_v6
from .errors import WireError
from .ip import PROTO_UDP

FIELD_SRC_PORT = 0
FIELD_DST_PORT = 2
FIELD_LENGTH = 4
FIELD_CHECKSUM = 6
HEADER_LEN = 8

_HEADER = struct.Struct("!HHHH")
#: The 8-byte header (ports, length, checksum), for unpacking it in one call.
HEADER_STRUCT: struct.Struct = _HEADER
_U16 = struct.Struct("!H")


def _pseudo(src: bytes, dst: bytes, length: int) -> int:
    if len(src) == 4:
        return pseudo_header_v4(src, dst, PROTO_UDP, length)
    return pseudo_header_v6(src, dst, PROTO_UDP, length)


def build_checksum_partial(src_port: int, dst_port: int, payload: bytes) -> bytes:
    """A datagram whose checksum is left to whoever materialises it (field 0, as
    ``UdpRepr.build(..., partial=True)`` writes it), in one step: the send hot path."""
    return _HEADER.pack(src_port, dst_port, HEADER_LEN + len(payload), 0) + payload


def split_trusted(buf: memoryview) -> tuple[int, int, memoryview] | None:
    """(source port, destination port, payload) of a datagram whose checksum is not to be
    checked (``UdpPacket.parse(..., verify_checksum=False)`` without building the view);
    None when ``parse`` would refuse it (then call it to learn why)."""
    n = len(buf)
    if n < HEADER_LEN:
        return None
    sport, dport, length, _ = _HEADER.unpack_from(buf)
    if length < HEADER_LEN or length > n:
        return None
    return sport, dport, buf[HEADER_LEN:length]


class UdpPacket:
    """Zero-copy view of a UDP datagram; ``buf`` is trimmed to the length field."""

    __slots__ = ("buf", "checksum", "dst_port", "length", "src_port")

    buf: memoryview
    src_port: int
    dst_port: int
    length: int
    checksum: int

    def __init__(
        self, buf: memoryview, src_port: int, dst_port: int, length: int, checksum: int
    ) -> None:
        self.buf = buf
        self.src_port = src_port
        self.dst_port = dst_port
        self.length = length
        self.checksum = checksum

    @classmethod
    def parse(
        cls, buf: BytesLike, src: bytes, dst: bytes, *, verify_checksum: bool = True
    ) -> UdpPacket | WireError:
        n = len(buf)
        if n < HEADER_LEN:
            return WireError.TRUNCATED
        sport, dport, length, csum = _HEADER.unpack_from(buf)
        if length < HEADER_LEN:
            return WireError.BAD_LENGTH
        if length > n:
            return WireError.TRUNCATED
        mv = memoryview(buf)
        if length < n:
            mv = mv[:length]
        if verify_checksum:
            if csum == 0:
                if len(src) != 4:
                    return WireError.BAD_CHECKSUM
            elif ones_sum(mv, _pseudo(src, dst, length)) != 0xFFFF:
                return WireError.BAD_CHECKSUM
        return UdpPacket(mv, sport, dport, length, csum)  # by name: see TcpPacket.parse

    @property
    def payload(self) -> memoryview:
        return self.buf[HEADER_LEN:]

    def to_repr(self) -> UdpRepr:
        return UdpRepr(self.src_port, self.dst_port)

    def __repr__(self) -> str:
        return f"<UdpPacket {self.src_port} > {self.dst_port} len={self.length}>"


@dataclass(frozen=True, slots=True)
class UdpRepr:
    """A UDP header as plain values; the builder fills in length and checksum."""

    src_port: int
    dst_port: int

    header_len = HEADER_LEN

    def emit_into(
        self,
        buf: WritableBuffer,
        offset: int,
        payload_len: int,
        src: bytes,
        dst: bytes,
        *,
        checksum: bool = True,
        partial: bool = False,
    ) -> int:
        """Write the header; the payload must already follow it. Returns the payload offset.

        ``partial=True`` leaves the checksum field 0 over IPv6 too: a checksum-partial
        datagram (`stack.wire.gso`) whose checksum is computed when it is materialised.
        """
        length = HEADER_LEN + payload_len
        if length > 0xFFFF:
            raise ValueError(f"UDP length {length} exceeds 65535")
        _HEADER.pack_into(buf, offset, self.src_port, self.dst_port, length, 0)
        if not partial and (checksum or len(src) != 4):
            csum = 0xFFFF - ones_sum(
                memoryview(buf)[offset : offset + length], _pseudo(src, dst, length)
            )
            _U16.pack_into(buf, offset + FIELD_CHECKSUM, csum or 0xFFFF)
        return offset + HEADER_LEN

    def build(self, payload: BytesLike, src: bytes, dst: bytes, *, checksum: bool = True,
              partial: bool = False) -> bytes:
        out = bytearray(HEADER_LEN + len(payload))
        out[HEADER_LEN:] = payload
        self.emit_into(out, 0, len(payload), src, dst, checksum=checksum, partial=partial)
        return bytes(out)
