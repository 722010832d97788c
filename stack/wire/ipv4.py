"""IPv4 header (RFC 791): parsed view and builder.

Touches nothing but bytes. ``Ipv4Packet.parse`` validates, in this order:
buffer holds 20 bytes (TRUNCATED), version 4 (BAD_VERSION), IHL >= 5
(BAD_LENGTH), buffer holds IHL*4 bytes (TRUNCATED), total length >= IHL*4
(BAD_LENGTH), total length <= buffer (TRUNCATED; bytes past total length,
e.g. Ethernet padding, are trimmed), header checksum (BAD_CHECKSUM), and the
option TLVs when IHL > 5 (BAD_OPTION: an option with length < 2 or running
past the header). Options are otherwise skipped; ``iter_options`` walks them.
Fragmentation is the stack's job; the view exposes what it needs (``ident``,
``more_frags``, ``frag_offset`` in 8-byte units).

Wire layout::

    0 ver/ihl  1 dscp/ecn  2 total length  4 ident  6 flags/frag offset
    8 ttl  9 protocol  10 checksum  12 src  16 dst  20 options...  IHL*4 payload
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from ._types import BytesLike, WritableBuffer
from .checksum import finish, internet_checksum, ones_sum, update
from .errors import WireError
from .ip import addr_str

FIELD_VER_IHL = 0
FIELD_DSCP_ECN = 1
FIELD_TOTAL_LEN = 2
FIELD_IDENT = 4
FIELD_FLAGS_FRAG = 6
FIELD_TTL = 8
FIELD_PROTOCOL = 9
FIELD_CHECKSUM = 10
FIELD_SRC = 12
FIELD_DST = 16
HEADER_LEN = 20  # without options
MAX_HEADER_LEN = 60
MAX_OPTIONS_LEN = MAX_HEADER_LEN - HEADER_LEN

FLAG_RESERVED = 0x8000
FLAG_DONT_FRAG = 0x4000
FLAG_MORE_FRAGS = 0x2000
FRAG_OFFSET_MASK = 0x1FFF

OPT_END = 0
OPT_NOP = 1
OPT_ROUTER_ALERT = 148  # RFC 2113; IGMP messages carry it

ECN_NOT_ECT = 0
ECN_ECT1 = 1
ECN_ECT0 = 2
ECN_CE = 3

_HEADER = struct.Struct("!BBHHHBBH4s4s")
#: The 20-byte header without options, for packing it in one call (the send hot path).
HEADER_STRUCT: struct.Struct = _HEADER
_from_bytes = int.from_bytes
_U16 = struct.Struct("!H")
_ROUTER_ALERT = bytes((OPT_ROUTER_ALERT, 4, 0, 0))


def _options_valid(opts: memoryview) -> bool:
    """Every option TLV fits; an End-of-List ends the walk (the rest is padding)."""
    i = 0
    n = len(opts)
    while i < n:
        kind = opts[i]
        if kind == OPT_END:
            return True
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            return False
        length = opts[i + 1]
        if length < 2 or i + length > n:
            return False
        i += length
    return True


def iter_options(opts: BytesLike) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(type, data)`` for each option in a validated option area.

    NOPs are skipped and End-of-List stops the walk. Call it only on the
    ``options`` of a parsed ``Ipv4Packet`` (which ``parse`` validated).
    """
    mv = memoryview(opts)
    i = 0
    n = len(mv)
    while i < n:
        kind = mv[i]
        if kind == OPT_END:
            return
        if kind == OPT_NOP:
            i += 1
            continue
        length = mv[i + 1]
        yield kind, mv[i + 2 : i + length]
        i += length


class Ipv4Packet:
    """Zero-copy view of an IPv4 packet; fields decoded once at ``parse``.

    ``buf`` is the packet trimmed to its total length (or, with ``partial``,
    to what the buffer holds). ``header``, ``options`` and ``payload`` are
    memoryview slices of it.
    """

    __slots__ = (
        "buf",
        "checksum",
        "dscp_ecn",
        "dst",
        "flags_frag",
        "header_len",
        "ident",
        "protocol",
        "src",
        "total_len",
        "ttl",
    )

    buf: memoryview
    header_len: int
    dscp_ecn: int
    total_len: int
    ident: int
    flags_frag: int
    ttl: int
    protocol: int
    checksum: int
    src: bytes
    dst: bytes

    def __init__(
        self,
        buf: memoryview,
        header_len: int,
        dscp_ecn: int,
        total_len: int,
        ident: int,
        flags_frag: int,
        ttl: int,
        protocol: int,
        checksum: int,
        src: bytes,
        dst: bytes,
    ) -> None:
        self.buf = buf
        self.header_len = header_len
        self.dscp_ecn = dscp_ecn
        self.total_len = total_len
        self.ident = ident
        self.flags_frag = flags_frag
        self.ttl = ttl
        self.protocol = protocol
        self.checksum = checksum
        self.src = src
        self.dst = dst

    @classmethod
    def parse(
        cls, buf: BytesLike, *, verify_checksum: bool = True, partial: bool = False
    ) -> Ipv4Packet | WireError:
        """Validate and view ``buf``.

        ``partial=True`` accepts a packet cut short after its header (the
        invoking packet quoted in an ICMP error): ``payload`` is then shorter
        than ``total_len - header_len``.
        """
        n = len(buf)
        if n < HEADER_LEN:
            return WireError.TRUNCATED
        vihl, dscp_ecn, total_len, ident, flags_frag, ttl, proto, csum, src, dst = (
            _HEADER.unpack_from(buf)
        )
        if vihl >> 4 != 4:
            return WireError.BAD_VERSION
        hlen = (vihl & 0xF) << 2
        if hlen < HEADER_LEN:
            return WireError.BAD_LENGTH
        if n < hlen:
            return WireError.TRUNCATED
        if total_len < hlen:
            return WireError.BAD_LENGTH
        mv = memoryview(buf)
        if total_len <= n:
            mv = mv[:total_len]
        elif not partial:
            return WireError.TRUNCATED
        if verify_checksum and ones_sum(mv[:hlen]) != 0xFFFF:
            return WireError.BAD_CHECKSUM
        if hlen > HEADER_LEN and not _options_valid(mv[HEADER_LEN:hlen]):
            return WireError.BAD_OPTION
        return cls(mv, hlen, dscp_ecn, total_len, ident, flags_frag, ttl, proto, csum, src, dst)

    # Derived fields.
    @property
    def dscp(self) -> int:
        return self.dscp_ecn >> 2

    @property
    def ecn(self) -> int:
        return self.dscp_ecn & 3

    @property
    def dont_frag(self) -> bool:
        return bool(self.flags_frag & FLAG_DONT_FRAG)

    @property
    def more_frags(self) -> bool:
        return bool(self.flags_frag & FLAG_MORE_FRAGS)

    @property
    def frag_offset(self) -> int:
        """Fragment offset in 8-byte units."""
        return self.flags_frag & FRAG_OFFSET_MASK

    @property
    def is_fragment(self) -> bool:
        return bool(self.flags_frag & (FLAG_MORE_FRAGS | FRAG_OFFSET_MASK))

    @property
    def header(self) -> memoryview:
        return self.buf[: self.header_len]

    @property
    def options(self) -> memoryview:
        return self.buf[HEADER_LEN : self.header_len]

    @property
    def payload(self) -> memoryview:
        return self.buf[self.header_len :]

    @property
    def router_alert(self) -> bool:
        """True when the options carry a Router Alert (RFC 2113)."""
        if self.header_len == HEADER_LEN:
            return False
        return any(kind == OPT_ROUTER_ALERT for kind, _ in iter_options(self.options))

    def to_repr(self) -> Ipv4Repr:
        return Ipv4Repr(
            src=self.src,
            dst=self.dst,
            protocol=self.protocol,
            ttl=self.ttl,
            dscp=self.dscp,
            ecn=self.ecn,
            ident=self.ident,
            dont_frag=self.dont_frag,
            more_frags=self.more_frags,
            frag_offset=self.frag_offset,
            options=bytes(self.options),
        )

    def __repr__(self) -> str:
        return (
            f"<Ipv4Packet {addr_str(self.src)} > {addr_str(self.dst)} proto={self.protocol}"
            f" ttl={self.ttl} len={self.total_len} id={self.ident}"
            f" frag={'MF,' if self.more_frags else ''}{self.frag_offset}>"
        )


@dataclass(frozen=True, slots=True)
class Ipv4Repr:
    """An IPv4 header as plain values. ``options`` are zero-padded to 4 bytes.

    The builder computes IHL, total length and the header checksum.
    """

    src: bytes
    dst: bytes
    protocol: int
    ttl: int = 64
    dscp: int = 0
    ecn: int = 0
    ident: int = 0
    dont_frag: bool = False
    more_frags: bool = False
    frag_offset: int = 0  # 8-byte units
    options: bytes = b""

    @property
    def header_len(self) -> int:
        return HEADER_LEN + ((len(self.options) + 3) & ~3)

    def emit_into(self, buf: WritableBuffer, offset: int, payload_len: int) -> int:
        """Write the header at ``offset`` for a payload of ``payload_len`` bytes.

        Returns the offset of the payload. The payload itself is not touched.
        Raises ValueError if options or total length do not fit.
        """
        opts = self.options
        hlen = HEADER_LEN
        if opts:
            olen = (len(opts) + 3) & ~3
            if olen > MAX_OPTIONS_LEN:
                raise ValueError(f"IPv4 options too long: {len(opts)} bytes")
            hlen += olen
            start = offset + HEADER_LEN
            buf[start : start + len(opts)] = opts
            buf[start + len(opts) : offset + hlen] = bytes(olen - len(opts))
        total = hlen + payload_len
        if total > 0xFFFF:
            raise ValueError(f"IPv4 total length {total} exceeds 65535")
        flags_frag = (
            (FLAG_DONT_FRAG if self.dont_frag else 0)
            | (FLAG_MORE_FRAGS if self.more_frags else 0)
            | self.frag_offset
        )
        _HEADER.pack_into(
            buf,
            offset,
            0x40 | (hlen >> 2),
            (self.dscp << 2) | self.ecn,
            total,
            self.ident,
            flags_frag,
            self.ttl,
            self.protocol,
            0,
            self.src,
            self.dst,
        )
        csum = internet_checksum(memoryview(buf)[offset : offset + hlen])
        _U16.pack_into(buf, offset + FIELD_CHECKSUM, csum)
        return offset + hlen

    def build(self, payload: BytesLike = b"") -> bytes:
        hlen = self.header_len
        out = bytearray(hlen + len(payload))
        self.emit_into(out, 0, len(payload))
        out[hlen:] = payload
        return bytes(out)


def build_header(src: bytes, dst: bytes, protocol: int, ttl: int, tos: int, ident: int,
                 dont_frag: bool, payload_len: int) -> bytes:
    """A 20-byte header without options, checksum computed: the bytes
    ``Ipv4Repr(src, dst, protocol, ttl=ttl, dscp=tos >> 2, ecn=tos & 3, ident=ident,
    dont_frag=dont_frag).build()`` starts with, without building the Repr (the output
    hot path: a frozen dataclass costs microseconds to build)."""
    total = HEADER_LEN + payload_len
    if total > 0xFFFF:
        raise ValueError(f"IPv4 total length {total} exceeds 65535")
    flags = FLAG_DONT_FRAG if dont_frag else 0
    return _HEADER.pack(0x45, tos, total, ident, flags, ttl, protocol,
                        header_checksum(src, dst, protocol, ttl, tos, ident, flags, total),
                        src, dst)


def header_checksum(src: bytes, dst: bytes, protocol: int, ttl: int, tos: int, ident: int,
                    flags_frag: int, total_len: int) -> int:
    """The checksum of a 20-byte header (no options) with these fields, from the values
    themselves: the same number ``internet_checksum`` gives over the packed header (a
    4-byte address read as one integer is congruent to the sum of its two words modulo
    0xFFFF, which is all the ones'-complement sum is; see `stack.wire.checksum`)."""
    return finish((0x4500 + tos) + total_len + ident + flags_frag + (ttl << 8) + protocol
                  + _from_bytes(src, "big") + _from_bytes(dst, "big"))


def pack_header(tos: int, total_len: int, ident: int, flags_frag: int, ttl: int,
                protocol: int, checksum: int, src: bytes, dst: bytes) -> bytes:
    """A 20-byte header (no options) with exactly these fields, checksum as given."""
    return _HEADER.pack(0x45, tos, total_len, ident, flags_frag, ttl, protocol, checksum,
                        src, dst)


def router_alert_option() -> bytes:
    """The 4-byte Router Alert option (value 0), for ``Ipv4Repr.options``."""
    return _ROUTER_ALERT


def decrement_ttl(buf: WritableBuffer, offset: int = 0) -> int:
    """Decrement TTL in place and patch the checksum incrementally; return the new TTL.

    The caller checks TTL > 1 first (a router sends Time Exceeded instead).
    """
    ttl = buf[offset + FIELD_TTL]
    proto = buf[offset + FIELD_PROTOCOL]
    old = bytes((ttl, proto))
    new = bytes((ttl - 1, proto))
    (csum,) = _U16.unpack_from(buf, offset + FIELD_CHECKSUM)
    buf[offset + FIELD_TTL] = ttl - 1
    _U16.pack_into(buf, offset + FIELD_CHECKSUM, update(csum, old, new))
    return ttl - 1
