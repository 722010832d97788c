"""What the firewall knows about one IP packet, parsed once per packet.

`PacketInfo.parse(data)` reads an IPv4 or IPv6 packet (as the stack's hooks
hand it over: the whole IP packet, reassembled on input) with the stack's
own wire parsers and keeps exactly the fields that rules and connection
tracking look at: version, addresses, the upper-layer protocol, ports, TCP
flags, sequence numbers and window, ICMP type, code and echo identifier, the
length, and whether the packet is a fragment. Everything a rule asks about
is then a slot read, so evaluating a rule set costs a handful of attribute
loads per rule and no allocation.

The hook adapter fills in the rest before evaluation: the input and output
interface names (`iif`, `oif`), the connection-tracking state (`ct_state`,
`conn`, `ct_dir`) and the clock (`now`). Nothing here raises on bad input: a
packet that is not IP gives None, and a truncated transport header leaves
`l4_ok` False (no port, flag or type then matches).

Touches nothing but the bytes it is given (no clock, socket or file).
"""

from __future__ import annotations

import struct
from typing import Any

from stack.wire import ipv4, ipv6
from stack.wire.errors import WireError

# Protocol numbers and TCP flag bits have their home in stack/wire; re-exported
# here for the firewall modules that read them as packet.X.
from stack.wire.ip import PROTO_ICMP as PROTO_ICMP
from stack.wire.ip import PROTO_ICMPV6 as PROTO_ICMPV6
from stack.wire.ip import PROTO_IGMP as PROTO_IGMP
from stack.wire.ip import PROTO_TCP as PROTO_TCP
from stack.wire.ip import PROTO_UDP as PROTO_UDP
from stack.wire.tcp import ACK as ACK
from stack.wire.tcp import CWR as CWR
from stack.wire.tcp import ECE as ECE
from stack.wire.tcp import FIN as FIN
from stack.wire.tcp import PSH as PSH
from stack.wire.tcp import RST as RST
from stack.wire.tcp import SYN as SYN
from stack.wire.tcp import URG as URG

#: ICMPv4 / ICMPv6 error types (their body quotes the packet that caused them).
ICMP_ERROR_TYPES = frozenset((3, 4, 5, 11, 12))
ICMPV6_ERROR_TYPES = frozenset((1, 2, 3, 4))

# Fragment positions.
NOT_FRAGMENT = 0
FIRST_FRAGMENT = 1
LATER_FRAGMENT = 2

_TCP_FIXED = struct.Struct("!HHIIBBH")  # ports, seq, ack, data offset, flags, window
_PORTS = struct.Struct("!HH")
_ICMP_FIXED = struct.Struct("!BBHH")  # type, code, checksum, identifier


class PacketInfo:
    """The fields of one packet that rules and conntrack use (see the module docstring)."""

    __slots__ = (
        "ack",
        "conn",
        "ct_dir",
        "ct_state",
        "data",
        "dport",
        "dst",
        "frag_ident",
        "fragment",
        "icmp_code",
        "icmp_id",
        "icmp_type",
        "iif",
        "l4_offset",
        "l4_ok",
        "length",
        "now",
        "oif",
        "payload_len",
        "proto",
        "seq",
        "sport",
        "src",
        "tcp_flags",
        "tcp_hlen",
        "version",
        "window",
    )

    version: int
    src: bytes
    dst: bytes
    proto: int
    length: int
    data: Any  # the whole IP packet (bytes, bytearray or memoryview)
    l4_offset: int
    l4_ok: bool
    sport: int
    dport: int
    tcp_flags: int
    tcp_hlen: int
    seq: int
    ack: int
    window: int
    payload_len: int  # bytes after the transport header (TCP: segment data)
    icmp_type: int
    icmp_code: int
    icmp_id: int
    fragment: int
    frag_ident: int
    iif: str
    oif: str
    ct_state: int
    ct_dir: int
    conn: Any
    now: int

    def __init__(self, version: int, src: bytes, dst: bytes, proto: int, data: Any,
                 l4_offset: int) -> None:
        self.version = version
        self.src = src
        self.dst = dst
        self.proto = proto
        self.data = data
        self.length = len(data)
        self.l4_offset = l4_offset
        self.l4_ok = False
        self.sport = self.dport = 0
        self.tcp_flags = self.tcp_hlen = 0
        self.seq = self.ack = self.window = 0
        self.payload_len = 0
        self.icmp_type = self.icmp_code = -1
        self.icmp_id = 0
        self.fragment = NOT_FRAGMENT
        self.frag_ident = 0
        self.iif = ""
        self.oif = ""
        self.ct_state = 0
        self.ct_dir = 0
        self.conn = None
        self.now = 0

    @classmethod
    def parse(cls, data: Any) -> PacketInfo | None:
        """Parse an IPv4 or IPv6 packet; None if it is neither."""
        if not data:
            return None
        version = data[0] >> 4
        if version == 4:
            p4 = ipv4.Ipv4Packet.parse(data, verify_checksum=False, partial=True)
            if isinstance(p4, WireError):
                return None
            info = cls(4, p4.src, p4.dst, p4.protocol, p4.buf, p4.header_len)
            flags_frag = p4.flags_frag
            if flags_frag & 0x3FFF:  # more fragments, or an offset
                info.fragment = LATER_FRAGMENT if flags_frag & 0x1FFF else FIRST_FRAGMENT
                info.frag_ident = p4.ident
                if info.fragment == LATER_FRAGMENT:
                    return info
        elif version == 6:
            p6 = ipv6.Ipv6Packet.parse(data, partial=True)
            if isinstance(p6, WireError):
                return None
            info = cls(6, p6.src, p6.dst, p6.upper_protocol, p6.buf, p6.upper_offset)
            frag = p6.fragment
            if frag is not None and not frag.is_atomic:
                info.fragment = LATER_FRAGMENT if frag.frag_offset else FIRST_FRAGMENT
                info.frag_ident = frag.ident
                if info.fragment == LATER_FRAGMENT:
                    return info
        else:
            return None
        info._parse_transport()
        return info

    def _parse_transport(self) -> None:
        buf = self.data
        off = self.l4_offset
        avail = len(buf) - off
        proto = self.proto
        if proto == PROTO_TCP:
            if avail < 20:
                return
            (self.sport, self.dport, self.seq, self.ack, doff, self.tcp_flags,
             self.window) = _TCP_FIXED.unpack_from(buf, off)
            hlen = (doff >> 4) << 2
            if hlen < 20 or hlen > avail:
                return
            self.tcp_hlen = hlen
            self.payload_len = avail - hlen
            self.l4_ok = True
        elif proto == PROTO_UDP:
            if avail < 8:
                return
            self.sport, self.dport = _PORTS.unpack_from(buf, off)
            self.payload_len = avail - 8
            self.l4_ok = True
        elif proto == PROTO_ICMP or proto == PROTO_ICMPV6:
            if avail < 8:
                return
            self.icmp_type, self.icmp_code, _csum, self.icmp_id = _ICMP_FIXED.unpack_from(buf, off)
            self.payload_len = avail - 8
            self.l4_ok = True
        else:
            self.payload_len = avail
            self.l4_ok = True

    # --- derived --------------------------------------------------------------------------
    @property
    def is_icmp_error(self) -> bool:
        if not self.l4_ok:
            return False
        if self.version == 4:
            return self.proto == PROTO_ICMP and self.icmp_type in ICMP_ERROR_TYPES
        return self.proto == PROTO_ICMPV6 and self.icmp_type in ICMPV6_ERROR_TYPES

    def tcp_options(self) -> memoryview:
        """The TCP option area (empty unless this is a whole TCP header)."""
        if self.proto != PROTO_TCP or not self.l4_ok:
            return memoryview(b"")
        start = self.l4_offset + 20
        return memoryview(self.data)[start:self.l4_offset + self.tcp_hlen]

    def inner(self) -> PacketInfo | None:
        """The packet quoted by an ICMP error, parsed as far as it was quoted."""
        if not self.is_icmp_error:
            return None
        quoted = memoryview(self.data)[self.l4_offset + 8:]
        if not quoted or quoted[0] >> 4 != self.version:
            return None
        inner = PacketInfo.parse(quoted)
        if inner is None:
            return None
        if not inner.l4_ok and inner.fragment != LATER_FRAGMENT:
            # An error quotes at least 8 bytes of the transport header: enough for ports.
            off = inner.l4_offset
            if len(inner.data) - off >= 8:
                if inner.proto in (PROTO_TCP, PROTO_UDP):
                    inner.sport, inner.dport = _PORTS.unpack_from(inner.data, off)
                    inner.seq = int.from_bytes(inner.data[off + 4:off + 8], "big")
                    inner.l4_ok = True
        return inner

    def __repr__(self) -> str:
        from stack.wire.ip import addr_str

        where = f"{addr_str(self.src)}:{self.sport} > {addr_str(self.dst)}:{self.dport}"
        return f"<PacketInfo v{self.version} proto={self.proto} {where} len={self.length}>"
