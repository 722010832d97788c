"""ARP (RFC 826) for Ethernet hardware addresses and IPv4 protocol addresses.

Touches nothing but bytes. Other hardware/protocol combinations are
``WireError.UNSUPPORTED``. Any opcode is accepted (RARP's 3/4 included); the
stack decides what it answers. Bytes after the 28-byte packet (Ethernet
padding) are ignored.

Wire layout::

    0 htype  2 ptype  4 hlen  5 plen  6 oper
    8 sender MAC  14 sender IPv4  18 target MAC  24 target IPv4  28
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._types import BytesLike, WritableBuffer
from .errors import WireError

FIELD_HTYPE = 0
FIELD_PTYPE = 2
FIELD_HLEN = 4
FIELD_PLEN = 5
FIELD_OPER = 6
FIELD_SHA = 8
FIELD_SPA = 14
FIELD_THA = 18
FIELD_TPA = 24
PACKET_LEN = 28

HTYPE_ETHERNET = 1
PTYPE_IPV4 = 0x0800

OP_REQUEST = 1
OP_REPLY = 2
OP_RARP_REQUEST = 3
OP_RARP_REPLY = 4

_PACKET = struct.Struct("!HHBBH6s4s6s4s")
_FIXED_PREFIX = struct.Struct("!HHBB")


class ArpPacket:
    """Parsed Ethernet/IPv4 ARP packet (values copied out; 28 bytes, no payload)."""

    __slots__ = ("operation", "sender_ip", "sender_mac", "target_ip", "target_mac")

    operation: int
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes

    def __init__(
        self,
        operation: int,
        sender_mac: bytes,
        sender_ip: bytes,
        target_mac: bytes,
        target_ip: bytes,
    ) -> None:
        self.operation = operation
        self.sender_mac = sender_mac
        self.sender_ip = sender_ip
        self.target_mac = target_mac
        self.target_ip = target_ip

    @classmethod
    def parse(cls, buf: BytesLike) -> ArpPacket | WireError:
        n = len(buf)
        if n < FIELD_OPER:
            return WireError.TRUNCATED
        htype, ptype, hlen, plen = _FIXED_PREFIX.unpack_from(buf)
        if htype != HTYPE_ETHERNET or ptype != PTYPE_IPV4:
            return WireError.UNSUPPORTED
        if hlen != 6 or plen != 4:
            return WireError.BAD_LENGTH
        if n < PACKET_LEN:
            return WireError.TRUNCATED
        _, _, _, _, op, sha, spa, tha, tpa = _PACKET.unpack_from(buf)
        return cls(op, sha, spa, tha, tpa)

    def to_repr(self) -> ArpRepr:
        return ArpRepr(
            self.operation, self.sender_mac, self.sender_ip, self.target_mac, self.target_ip
        )

    def __repr__(self) -> str:
        return (
            f"<ArpPacket op={self.operation} {self.sender_mac.hex(':')}/{self.sender_ip.hex()}"
            f" -> {self.target_mac.hex(':')}/{self.target_ip.hex()}>"
        )


@dataclass(frozen=True, slots=True)
class ArpRepr:
    """An Ethernet/IPv4 ARP packet as plain values."""

    operation: int
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes

    @classmethod
    def request(cls, sender_mac: bytes, sender_ip: bytes, target_ip: bytes) -> ArpRepr:
        """Who has ``target_ip``? (target MAC zero, as Linux sends it)."""
        return cls(OP_REQUEST, sender_mac, sender_ip, b"\x00" * 6, target_ip)

    @classmethod
    def reply_to(cls, request: ArpPacket | ArpRepr, my_mac: bytes) -> ArpRepr:
        """The reply to ``request``: ``request.target_ip`` is at ``my_mac``."""
        return cls(OP_REPLY, my_mac, request.target_ip, request.sender_mac, request.sender_ip)

    def emit_into(self, buf: WritableBuffer, offset: int) -> int:
        _PACKET.pack_into(
            buf,
            offset,
            HTYPE_ETHERNET,
            PTYPE_IPV4,
            6,
            4,
            self.operation,
            self.sender_mac,
            self.sender_ip,
            self.target_mac,
            self.target_ip,
        )
        return offset + PACKET_LEN

    def build(self) -> bytes:
        return _PACKET.pack(
            HTYPE_ETHERNET,
            PTYPE_IPV4,
            6,
            4,
            self.operation,
            self.sender_mac,
            self.sender_ip,
            self.target_mac,
            self.target_ip,
        )
