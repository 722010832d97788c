"""IPv6 fixed header and extension-header chain (RFC 8200): parsed view and builders.

Touches nothing but bytes.

``Ipv6Packet.parse`` validates the fixed header (TRUNCATED, BAD_VERSION;
payload length beyond the buffer is TRUNCATED, bytes past it are trimmed),
then walks the extension-header chain, at most ``MAX_EXTENSION_HEADERS``
headers (TOO_MANY_HEADERS):

- hop-by-hop (must come first, else BAD_HEADER_CHAIN) and destination
  options: every option TLV must fit (BAD_OPTION); Pad1/PadN are skipped,
  Router Alert (must be 2 data bytes) is decoded, and the first unrecognised
  option whose action bits are not "skip" is recorded with its action and the
  pointer an ICMPv6 Parameter Problem (code 2) would carry;
- routing: type and segments left are exposed; acting on them is the stack's;
- fragment: recorded, and the walk STOPS there: the bytes after it are
  fragment data, so ``upper_protocol`` is the fragment header's next header
  and ``upper_offset`` where the fragmentable part starts. The stack
  reassembles and parses the result again;
- AH is skipped by its length; ESP and No Next Header end the chain, as does
  any other value (the upper-layer protocol).

A header running past the payload is TRUNCATED. All offsets are relative to
the start of the IPv6 header, so they are also ICMPv6 Parameter Problem
pointers (``next_header_offset`` is the pointer for code 1).

Wire layout of the fixed header::

    0 version/traffic class/flow label  4 payload length  6 next header
    7 hop limit  8 src  24 dst  40 extension headers / upper layer
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ._types import BytesLike, WritableBuffer
from .errors import WireError
from .ip import (
    PROTO_AH,
    PROTO_DSTOPTS,
    PROTO_FRAGMENT,
    PROTO_HOPOPT,
    PROTO_ROUTING,
    addr_str,
)

FIELD_VER_TC_FLOW = 0
FIELD_PAYLOAD_LEN = 4
FIELD_NEXT_HEADER = 6
FIELD_HOP_LIMIT = 7
FIELD_SRC = 8
FIELD_DST = 24
HEADER_LEN = 40
FRAGMENT_HEADER_LEN = 8
MAX_EXTENSION_HEADERS = 8

# Option types (RFC 8200 4.2, RFC 2711, RFC 2675).
OPT_PAD1 = 0
OPT_PADN = 1
OPT_ROUTER_ALERT = 5
OPT_JUMBO = 0xC2

# Action for an unrecognised option: the two high bits of its type.
ACTION_SKIP = 0
ACTION_DISCARD = 1
ACTION_DISCARD_ICMP = 2
ACTION_DISCARD_ICMP_UNLESS_MULTICAST = 3

ROUTER_ALERT_MLD = 0

UNSPECIFIED = b"\x00" * 16
LOOPBACK = b"\x00" * 15 + b"\x01"
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")
ALL_MLDV2_ROUTERS = bytes.fromhex("ff020000000000000000000000000016")

_FIXED = struct.Struct("!IHBB16s16s")
_FRAGMENT = struct.Struct("!BBHI")
_U16 = struct.Struct("!H")

_OPTION_HEADERS = (PROTO_HOPOPT, PROTO_DSTOPTS)
_EXTENSION_HEADERS = frozenset(
    (PROTO_HOPOPT, PROTO_DSTOPTS, PROTO_ROUTING, PROTO_FRAGMENT, PROTO_AH)
)


class Ipv6OptionsHeader:
    """A hop-by-hop or destination-options header (``header_type`` 0 or 60)."""

    __slots__ = (
        "header_type",
        "next_header",
        "offset",
        "options",
        "router_alert",
        "unrecognized_action",
        "unrecognized_pointer",
    )

    def __init__(
        self,
        header_type: int,
        offset: int,
        next_header: int,
        options: memoryview,
        router_alert: int | None,
        unrecognized_action: int,
        unrecognized_pointer: int,
    ) -> None:
        self.header_type = header_type
        #: Offset of this header from the start of the IPv6 header.
        self.offset = offset
        self.next_header = next_header
        #: The option TLV area (after next header and length).
        self.options = options
        #: Router Alert value (0 = MLD), None when absent.
        self.router_alert = router_alert
        #: ACTION_* of the first unrecognised non-skippable option, else ACTION_SKIP.
        self.unrecognized_action = unrecognized_action
        #: Offset of that option's type byte from the IPv6 header, else -1.
        self.unrecognized_pointer = unrecognized_pointer

    def __repr__(self) -> str:
        return (
            f"<Ipv6OptionsHeader type={self.header_type} at={self.offset}"
            f" ra={self.router_alert} unrecognized={self.unrecognized_action}"
            f"@{self.unrecognized_pointer}>"
        )


class Ipv6RoutingHeader:
    __slots__ = ("data", "next_header", "offset", "routing_type", "segments_left")

    def __init__(
        self, offset: int, next_header: int, routing_type: int, segments_left: int, data: memoryview
    ) -> None:
        self.offset = offset
        self.next_header = next_header
        self.routing_type = routing_type
        self.segments_left = segments_left
        #: Type-specific data (after the first 4 bytes).
        self.data = data

    @property
    def routing_type_offset(self) -> int:
        """Parameter Problem pointer (code 0) for an unsupported routing type."""
        return self.offset + 2

    def __repr__(self) -> str:
        return (
            f"<Ipv6RoutingHeader at={self.offset} type={self.routing_type}"
            f" left={self.segments_left}>"
        )


class Ipv6FragmentHeader:
    __slots__ = ("frag_offset", "ident", "more_frags", "next_header", "offset")

    def __init__(
        self, offset: int, next_header: int, frag_offset: int, more_frags: bool, ident: int
    ) -> None:
        self.offset = offset
        self.next_header = next_header
        #: Fragment offset in 8-byte units.
        self.frag_offset = frag_offset
        self.more_frags = more_frags
        self.ident = ident

    @property
    def is_atomic(self) -> bool:
        """Offset 0 and no more fragments (RFC 6946): the whole packet."""
        return self.frag_offset == 0 and not self.more_frags

    def __repr__(self) -> str:
        return (
            f"<Ipv6FragmentHeader at={self.offset} id={self.ident}"
            f" offset={self.frag_offset} more={self.more_frags}>"
        )


def _parse_options(area: memoryview, area_offset: int) -> tuple[int | None, int, int] | WireError:
    """Validate an option TLV area; return (router alert, action, pointer)."""
    router_alert: int | None = None
    action = ACTION_SKIP
    pointer = -1
    i = 0
    n = len(area)
    while i < n:
        kind = area[i]
        if kind == OPT_PAD1:
            i += 1
            continue
        if i + 2 > n:
            return WireError.BAD_OPTION
        length = area[i + 1]
        end = i + 2 + length
        if end > n:
            return WireError.BAD_OPTION
        if kind == OPT_PADN:
            pass
        elif kind == OPT_ROUTER_ALERT:
            if length != 2:
                return WireError.BAD_OPTION
            router_alert = (area[i + 2] << 8) | area[i + 3]
        elif kind >> 6 and action == ACTION_SKIP:
            action = kind >> 6
            pointer = area_offset + i
        i = end
    return router_alert, action, pointer


def iter_options(area: BytesLike) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(type, data)`` of each option but Pad1/PadN in a validated TLV area."""
    mv = memoryview(area)
    i = 0
    n = len(mv)
    while i < n:
        kind = mv[i]
        if kind == OPT_PAD1:
            i += 1
            continue
        end = i + 2 + mv[i + 1]
        if kind != OPT_PADN:
            yield kind, mv[i + 2 : end]
        i = end


class Ipv6Packet:
    """Zero-copy view of an IPv6 packet with its extension-header chain walked.

    ``buf`` is trimmed to 40 + payload length (or, with ``partial``, to what
    the buffer holds). ``payload`` starts after the fixed header;
    ``upper_payload`` at ``upper_offset`` (after the extension headers).
    """

    __slots__ = (
        "buf",
        "dest_options",
        "dst",
        "fragment",
        "hop_by_hop",
        "hop_limit",
        "next_header",
        "next_header_offset",
        "payload_len",
        "routing",
        "src",
        "upper_offset",
        "upper_protocol",
        "ver_tc_flow",
    )

    buf: memoryview
    ver_tc_flow: int
    payload_len: int
    next_header: int
    hop_limit: int
    src: bytes
    dst: bytes
    upper_protocol: int
    upper_offset: int
    next_header_offset: int
    hop_by_hop: Ipv6OptionsHeader | None
    dest_options: tuple[Ipv6OptionsHeader, ...]
    routing: Ipv6RoutingHeader | None
    fragment: Ipv6FragmentHeader | None

    @classmethod
    def parse(cls, buf: BytesLike, *, partial: bool = False) -> Ipv6Packet | WireError:
        """Validate and view ``buf``; ``partial`` as for ``Ipv4Packet.parse``."""
        n = len(buf)
        if n < HEADER_LEN:
            return WireError.TRUNCATED
        vtf, plen, nh, hop_limit, src, dst = _FIXED.unpack_from(buf)
        if vtf >> 28 != 6:
            return WireError.BAD_VERSION
        mv = memoryview(buf)
        end = HEADER_LEN + plen
        if end <= n:
            mv = mv[:end]
        elif partial:
            end = n
        else:
            return WireError.TRUNCATED
        self = cls.__new__(cls)
        self.buf = mv
        self.ver_tc_flow = vtf
        self.payload_len = plen
        self.next_header = nh
        self.hop_limit = hop_limit
        self.src = src
        self.dst = dst
        self.hop_by_hop = None
        self.dest_options = ()
        self.routing = None
        self.fragment = None
        offset = HEADER_LEN
        nh_offset = FIELD_NEXT_HEADER
        count = 0
        while nh in _EXTENSION_HEADERS:
            count += 1
            if count > MAX_EXTENSION_HEADERS:
                return WireError.TOO_MANY_HEADERS
            if offset + 2 > end:
                return WireError.TRUNCATED
            next_nh = mv[offset]
            if nh == PROTO_FRAGMENT:
                if offset + FRAGMENT_HEADER_LEN > end:
                    return WireError.TRUNCATED
                _, _, off_m, ident = _FRAGMENT.unpack_from(mv, offset)
                self.fragment = Ipv6FragmentHeader(
                    offset, next_nh, off_m >> 3, bool(off_m & 1), ident
                )
                nh_offset = offset
                nh = next_nh
                offset += FRAGMENT_HEADER_LEN
                break
            if nh == PROTO_AH:
                hlen = (mv[offset + 1] + 2) << 2
            else:
                hlen = (mv[offset + 1] + 1) << 3
            if offset + hlen > end:
                return WireError.TRUNCATED
            if nh == PROTO_ROUTING:
                if self.routing is None:
                    self.routing = Ipv6RoutingHeader(
                        offset,
                        next_nh,
                        mv[offset + 2],
                        mv[offset + 3],
                        mv[offset + 4 : offset + hlen],
                    )
            elif nh in _OPTION_HEADERS:
                if nh == PROTO_HOPOPT and offset != HEADER_LEN:
                    return WireError.BAD_HEADER_CHAIN
                area = mv[offset + 2 : offset + hlen]
                result = _parse_options(area, offset + 2)
                if isinstance(result, WireError):
                    return result
                ra, action, pointer = result
                opts = Ipv6OptionsHeader(nh, offset, next_nh, area, ra, action, pointer)
                if nh == PROTO_HOPOPT:
                    self.hop_by_hop = opts
                else:
                    self.dest_options = (*self.dest_options, opts)
            nh_offset = offset
            nh = next_nh
            offset += hlen
        self.upper_protocol = nh
        self.upper_offset = offset
        self.next_header_offset = nh_offset
        return self

    @property
    def traffic_class(self) -> int:
        return (self.ver_tc_flow >> 20) & 0xFF

    @property
    def dscp(self) -> int:
        return (self.ver_tc_flow >> 22) & 0x3F

    @property
    def ecn(self) -> int:
        return (self.ver_tc_flow >> 20) & 3

    @property
    def flow_label(self) -> int:
        return self.ver_tc_flow & 0xFFFFF

    @property
    def payload(self) -> memoryview:
        """Everything after the fixed header (extension headers included)."""
        return self.buf[HEADER_LEN:]

    @property
    def upper_payload(self) -> memoryview:
        """The upper-layer message (or, after a fragment header, the fragment data)."""
        return self.buf[self.upper_offset :]

    @property
    def router_alert(self) -> int | None:
        """Router Alert value from the hop-by-hop header (0 = MLD), None when absent."""
        hbh = self.hop_by_hop
        return None if hbh is None else hbh.router_alert

    def to_repr(self) -> Ipv6Repr:
        """The fixed header as plain values (``next_header`` as on the wire)."""
        return Ipv6Repr(
            src=self.src,
            dst=self.dst,
            next_header=self.next_header,
            hop_limit=self.hop_limit,
            traffic_class=self.traffic_class,
            flow_label=self.flow_label,
        )

    def __repr__(self) -> str:
        return (
            f"<Ipv6Packet {addr_str(self.src)} > {addr_str(self.dst)} nh={self.next_header}"
            f" upper={self.upper_protocol}@{self.upper_offset} hlim={self.hop_limit}"
            f" plen={self.payload_len}{' frag' if self.fragment else ''}>"
        )


def build_packet(src: bytes, dst: bytes, next_header: int, hop_limit: int,
                 traffic_class: int, payload: BytesLike) -> bytes:
    """The fixed header (flow label 0) followed by ``payload``: what
    ``Ipv6Repr(src, dst, next_header, hop_limit, traffic_class).build(payload)`` returns,
    without building the Repr (the output hot path: a frozen dataclass costs
    microseconds to build)."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"IPv6 payload length {len(payload)} exceeds 65535 (no jumbograms)")
    return _FIXED.pack(0x60000000 | (traffic_class << 20), len(payload), next_header,
                       hop_limit, src, dst) + payload


@dataclass(frozen=True, slots=True)
class Ipv6Repr:
    """The IPv6 fixed header as plain values; the builder fills in the payload length.

    ``next_header`` is the first extension header or the upper-layer protocol.
    """

    src: bytes
    dst: bytes
    next_header: int
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0

    header_len = HEADER_LEN

    def emit_into(self, buf: WritableBuffer, offset: int, payload_len: int) -> int:
        """Write the fixed header for ``payload_len`` bytes that follow; return their offset."""
        if payload_len > 0xFFFF:
            raise ValueError(f"IPv6 payload length {payload_len} exceeds 65535 (no jumbograms)")
        vtf = 0x60000000 | (self.traffic_class << 20) | self.flow_label
        _FIXED.pack_into(
            buf, offset, vtf, payload_len, self.next_header, self.hop_limit, self.src, self.dst
        )
        return offset + HEADER_LEN

    def build(self, payload: BytesLike = b"") -> bytes:
        out = bytearray(HEADER_LEN + len(payload))
        self.emit_into(out, 0, len(payload))
        out[HEADER_LEN:] = payload
        return bytes(out)


@dataclass(frozen=True, slots=True)
class FragmentHeaderRepr:
    """An IPv6 fragment header; ``frag_offset`` in 8-byte units."""

    next_header: int
    frag_offset: int
    more_frags: bool
    ident: int

    header_len = FRAGMENT_HEADER_LEN

    def emit_into(self, buf: WritableBuffer, offset: int) -> int:
        _FRAGMENT.pack_into(
            buf,
            offset,
            self.next_header,
            0,
            (self.frag_offset << 3) | int(self.more_frags),
            self.ident,
        )
        return offset + FRAGMENT_HEADER_LEN

    def build(self) -> bytes:
        out = bytearray(FRAGMENT_HEADER_LEN)
        self.emit_into(out, 0)
        return bytes(out)


@dataclass(frozen=True, slots=True)
class OptionsHeaderRepr:
    """A hop-by-hop or destination-options header: ``(type, data)`` options.

    The builder pads to a multiple of 8 bytes with Pad1/PadN.
    """

    next_header: int
    options: Sequence[tuple[int, bytes]] = ()

    @classmethod
    def router_alert(cls, next_header: int, value: int = ROUTER_ALERT_MLD) -> OptionsHeaderRepr:
        """Hop-by-hop header with a Router Alert, as MLD messages carry (RFC 2711)."""
        return cls(next_header, ((OPT_ROUTER_ALERT, value.to_bytes(2, "big")),))

    def _body(self) -> bytes:
        body = bytearray()
        for kind, data in self.options:
            if len(data) > 255:
                raise ValueError(f"IPv6 option {kind} data too long: {len(data)}")
            body += bytes((kind, len(data)))
            body += data
        pad = -(len(body) + 2) % 8
        if pad == 1:
            body.append(OPT_PAD1)
        elif pad:
            body += bytes((OPT_PADN, pad - 2)) + bytes(pad - 2)
        return bytes(body)

    @property
    def header_len(self) -> int:
        return 2 + len(self._body())

    def build(self) -> bytes:
        body = self._body()
        hlen = 2 + len(body)
        if hlen > 2048:
            raise ValueError(f"IPv6 options header too long: {hlen}")
        return bytes((self.next_header, (hlen >> 3) - 1)) + body

    def emit_into(self, buf: WritableBuffer, offset: int) -> int:
        data = self.build()
        buf[offset : offset + len(data)] = data
        return offset + len(data)


def solicited_node_multicast(addr: bytes) -> bytes:
    """ff02::1:ffXX:XXXX for ``addr`` (RFC 4291 2.7.1)."""
    return b"\xff\x02" + b"\x00" * 9 + b"\x01\xff" + addr[13:16]
