"""Neighbor Discovery for IPv6 (RFC 4861): RS, RA, NS, NA, Redirect and their options.

Touches nothing but bytes. NDP messages parse to plain-value message
objects (addresses copied out as ``bytes``), the same classes the builders
use. ``parse`` takes an already checksum-verified ``Icmpv6Packet`` of type
133-137 (others are UNSUPPORTED) and checks the message's fixed part
(TRUNCATED) and its options: an option with length 0, running past the
message, or a known option with the wrong length is BAD_OPTION. Unknown
options are skipped but kept in ``NdpOptions.other``. RFC 4861's semantic
checks (hop limit 255, code 0, which options may appear with an unspecified
source) belong to the stack, which has the IPv6 header.

Builders return the complete ICMPv6 message with its checksum.

Wire layouts (offsets in the ICMPv6 message; options follow)::

    RS  0 133 0 cksum  4 reserved                                       8
    RA  0 134 0 cksum  4 cur hop limit  5 M/O/prf  6 router lifetime
        8 reachable time  12 retrans timer                              16
    NS  0 135 0 cksum  4 reserved  8 target                             24
    NA  0 136 0 cksum  4 R/S/O  8 target                                24
    Redirect 0 137 0 cksum 4 reserved 8 target 24 destination           40
    option: 0 type  1 length (8-byte units)  2 data
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TypeAlias

from .errors import WireError
from .icmpv6 import (
    TYPE_NEIGHBOR_ADVERT,
    TYPE_NEIGHBOR_SOLICIT,
    TYPE_REDIRECT,
    TYPE_ROUTER_ADVERT,
    TYPE_ROUTER_SOLICIT,
    Icmpv6Packet,
    checksum_message,
)

RS_LEN = 8
RA_LEN = 16
NS_LEN = 24
NA_LEN = 24
REDIRECT_LEN = 40
FIELD_TARGET = 8
FIELD_DESTINATION = 24

OPT_SOURCE_LLADDR = 1
OPT_TARGET_LLADDR = 2
OPT_PREFIX_INFO = 3
OPT_REDIRECTED_HEADER = 4
OPT_MTU = 5
OPT_NONCE = 14
OPT_ROUTE_INFO = 24
OPT_RDNSS = 25

PREFIX_INFO_LEN = 32
MTU_OPTION_LEN = 8

RA_FLAG_MANAGED = 0x80
RA_FLAG_OTHER = 0x40
NA_FLAG_ROUTER = 0x80
NA_FLAG_SOLICITED = 0x40
NA_FLAG_OVERRIDE = 0x20
PREFIX_FLAG_ON_LINK = 0x80
PREFIX_FLAG_AUTONOMOUS = 0x40

INFINITE_LIFETIME = 0xFFFFFFFF

_RA = struct.Struct("!BBHBBHII")
_PREFIX = struct.Struct("!BBBBIII16s")
_MTU = struct.Struct("!BBHI")
_HEAD = struct.Struct("!BBHI")


@dataclass(frozen=True, slots=True)
class PrefixInfo:
    """Prefix Information option (RFC 4861 4.6.2); lifetimes in seconds."""

    prefix_len: int
    prefix: bytes
    on_link: bool = True
    autonomous: bool = True
    valid_lifetime: int = INFINITE_LIFETIME
    preferred_lifetime: int = INFINITE_LIFETIME


@dataclass(frozen=True, slots=True)
class NdpOptions:
    """The options of one NDP message, decoded.

    When an option appears twice the first wins (prefixes accumulate).
    ``redirected_header`` is the quoted packet of a Redirected Header option;
    ``other`` keeps unknown options as ``(type, data)`` with data padding.
    """

    source_lladdr: bytes | None = None
    target_lladdr: bytes | None = None
    mtu: int | None = None
    prefixes: tuple[PrefixInfo, ...] = ()
    redirected_header: bytes | None = None
    other: tuple[tuple[int, bytes], ...] = ()

    def encode(self) -> bytes:
        """Options in a fixed order: SLLA, TLLA, MTU, prefixes, redirected header, others."""
        out = bytearray()
        if self.source_lladdr is not None:
            out += _tlv(OPT_SOURCE_LLADDR, self.source_lladdr)
        if self.target_lladdr is not None:
            out += _tlv(OPT_TARGET_LLADDR, self.target_lladdr)
        if self.mtu is not None:
            out += _MTU.pack(OPT_MTU, 1, 0, self.mtu)
        for p in self.prefixes:
            flags = (PREFIX_FLAG_ON_LINK if p.on_link else 0) | (
                PREFIX_FLAG_AUTONOMOUS if p.autonomous else 0
            )
            out += _PREFIX.pack(
                OPT_PREFIX_INFO,
                4,
                p.prefix_len,
                flags,
                p.valid_lifetime,
                p.preferred_lifetime,
                0,
                p.prefix,
            )
        if self.redirected_header is not None:
            out += _tlv(OPT_REDIRECTED_HEADER, bytes(6) + self.redirected_header)
        for kind, data in self.other:
            out += _tlv(kind, data)
        return bytes(out)


_NO_OPTIONS = NdpOptions()


def _tlv(kind: int, data: bytes) -> bytes:
    """One option, zero-padded to a multiple of 8 bytes."""
    total = (len(data) + 2 + 7) & ~7
    if total > 255 * 8:
        raise ValueError(f"NDP option {kind} too long: {len(data)} bytes")
    return bytes((kind, total >> 3)) + data + bytes(total - 2 - len(data))


def parse_options(buf: memoryview, offset: int) -> NdpOptions | WireError:
    """Decode the option area ``buf[offset:]``."""
    n = len(buf)
    if offset == n:
        return _NO_OPTIONS
    slla: bytes | None = None
    tlla: bytes | None = None
    mtu: int | None = None
    redirected: bytes | None = None
    prefixes: list[PrefixInfo] = []
    other: list[tuple[int, bytes]] = []
    while offset < n:
        if offset + 2 > n:
            return WireError.BAD_OPTION
        kind = buf[offset]
        length = buf[offset + 1] << 3
        end = offset + length
        if length == 0 or end > n:
            return WireError.BAD_OPTION
        if kind == OPT_SOURCE_LLADDR:
            if slla is None:
                slla = bytes(buf[offset + 2 : end])
        elif kind == OPT_TARGET_LLADDR:
            if tlla is None:
                tlla = bytes(buf[offset + 2 : end])
        elif kind == OPT_PREFIX_INFO:
            if length != PREFIX_INFO_LEN:
                return WireError.BAD_OPTION
            _, _, plen, flags, valid, preferred, _, prefix = _PREFIX.unpack_from(buf, offset)
            prefixes.append(
                PrefixInfo(
                    plen,
                    prefix,
                    bool(flags & PREFIX_FLAG_ON_LINK),
                    bool(flags & PREFIX_FLAG_AUTONOMOUS),
                    valid,
                    preferred,
                )
            )
        elif kind == OPT_MTU:
            if length != MTU_OPTION_LEN:
                return WireError.BAD_OPTION
            if mtu is None:
                mtu = _MTU.unpack_from(buf, offset)[3]
        elif kind == OPT_REDIRECTED_HEADER:
            if redirected is None:
                redirected = bytes(buf[offset + 8 : end])
        else:
            other.append((kind, bytes(buf[offset + 2 : end])))
        offset = end
    return NdpOptions(slla, tlla, mtu, tuple(prefixes), redirected, tuple(other))


@dataclass(frozen=True, slots=True)
class RouterSolicit:
    options: NdpOptions = field(default_factory=NdpOptions)

    def build(self, src: bytes, dst: bytes) -> bytes:
        msg = _HEAD.pack(TYPE_ROUTER_SOLICIT, 0, 0, 0) + self.options.encode()
        return checksum_message(bytearray(msg), src, dst)


@dataclass(frozen=True, slots=True)
class RouterAdvert:
    """Router Advertisement; times in ms (reachable, retrans) and s (router lifetime).

    ``preference`` is RFC 4191's 2-bit Prf field as on the wire (1 high,
    0 medium, 3 low). Other flag bits (H, P) are not kept.
    """

    cur_hop_limit: int = 64
    managed: bool = False
    other_config: bool = False
    router_lifetime: int = 1800
    reachable_time: int = 0
    retrans_timer: int = 0
    preference: int = 0
    options: NdpOptions = field(default_factory=NdpOptions)

    def build(self, src: bytes, dst: bytes) -> bytes:
        flags = (
            (RA_FLAG_MANAGED if self.managed else 0)
            | (RA_FLAG_OTHER if self.other_config else 0)
            | ((self.preference & 3) << 3)
        )
        msg = _RA.pack(
            TYPE_ROUTER_ADVERT,
            0,
            0,
            self.cur_hop_limit,
            flags,
            self.router_lifetime,
            self.reachable_time,
            self.retrans_timer,
        )
        return checksum_message(bytearray(msg + self.options.encode()), src, dst)


@dataclass(frozen=True, slots=True)
class NeighborSolicit:
    target: bytes
    options: NdpOptions = field(default_factory=NdpOptions)

    def build(self, src: bytes, dst: bytes) -> bytes:
        msg = _HEAD.pack(TYPE_NEIGHBOR_SOLICIT, 0, 0, 0) + self.target + self.options.encode()
        return checksum_message(bytearray(msg), src, dst)


@dataclass(frozen=True, slots=True)
class NeighborAdvert:
    target: bytes
    router: bool = False
    solicited: bool = False
    override: bool = False
    options: NdpOptions = field(default_factory=NdpOptions)

    def build(self, src: bytes, dst: bytes) -> bytes:
        flags = (
            (NA_FLAG_ROUTER if self.router else 0)
            | (NA_FLAG_SOLICITED if self.solicited else 0)
            | (NA_FLAG_OVERRIDE if self.override else 0)
        )
        msg = _HEAD.pack(TYPE_NEIGHBOR_ADVERT, 0, 0, flags << 24)
        return checksum_message(bytearray(msg + self.target + self.options.encode()), src, dst)


@dataclass(frozen=True, slots=True)
class Redirect:
    target: bytes
    destination: bytes
    options: NdpOptions = field(default_factory=NdpOptions)

    def build(self, src: bytes, dst: bytes) -> bytes:
        msg = _HEAD.pack(TYPE_REDIRECT, 0, 0, 0) + self.target + self.destination
        return checksum_message(bytearray(msg + self.options.encode()), src, dst)


NdpMessage: TypeAlias = RouterSolicit | RouterAdvert | NeighborSolicit | NeighborAdvert | Redirect


def parse(icmp: Icmpv6Packet) -> NdpMessage | WireError:
    """Decode the NDP message in a parsed ICMPv6 packet."""
    buf = icmp.buf
    n = len(buf)
    mtype = icmp.type
    if mtype == TYPE_NEIGHBOR_SOLICIT or mtype == TYPE_NEIGHBOR_ADVERT:
        if n < NS_LEN:
            return WireError.TRUNCATED
        options = parse_options(buf, NS_LEN)
        if isinstance(options, WireError):
            return options
        target = bytes(buf[FIELD_TARGET:NS_LEN])
        if mtype == TYPE_NEIGHBOR_SOLICIT:
            return NeighborSolicit(target, options)
        flags = buf[4]
        return NeighborAdvert(
            target,
            bool(flags & NA_FLAG_ROUTER),
            bool(flags & NA_FLAG_SOLICITED),
            bool(flags & NA_FLAG_OVERRIDE),
            options,
        )
    if mtype == TYPE_ROUTER_ADVERT:
        if n < RA_LEN:
            return WireError.TRUNCATED
        options = parse_options(buf, RA_LEN)
        if isinstance(options, WireError):
            return options
        _, _, _, hop_limit, flags, lifetime, reachable, retrans = _RA.unpack_from(buf)
        return RouterAdvert(
            hop_limit,
            bool(flags & RA_FLAG_MANAGED),
            bool(flags & RA_FLAG_OTHER),
            lifetime,
            reachable,
            retrans,
            (flags >> 3) & 3,
            options,
        )
    if mtype == TYPE_ROUTER_SOLICIT:
        options = parse_options(buf, RS_LEN)
        if isinstance(options, WireError):
            return options
        return RouterSolicit(options)
    if mtype == TYPE_REDIRECT:
        if n < REDIRECT_LEN:
            return WireError.TRUNCATED
        options = parse_options(buf, REDIRECT_LEN)
        if isinstance(options, WireError):
            return options
        return Redirect(bytes(buf[FIELD_TARGET:24]), bytes(buf[FIELD_DESTINATION:40]), options)
    return WireError.UNSUPPORTED
