"""Super-frames: one logical TCP/UDP packet standing for several wire frames (GSO/GRO).

Touches nothing but bytes and ints.

What it is
----------
Between two vnet endpoints a TCP sender may hand its link one *super-segment*
of up to 64 KiB (as Linux hands a TSO/GSO packet to a NIC), with its
transport checksum not computed (Linux's CHECKSUM_PARTIAL), and the
receiving stack may take it whole (as after GRO), trusting its checksum. A
`GsoFrame` is that object: the bytes of one IPv4/IPv6 packet -- optionally
behind a link header (14 bytes of Ethernet) -- whose IP length fields cover
the whole thing, plus

- ``gso_size``: payload bytes per wire segment (TCP: the MSS as sent; UDP:
  the datagram payload size of UDP_SEGMENT); 0 when it is one wire packet;
- ``gso_segs``: how many wire frames it stands for (>= 1);
- ``csum_partial``: True when the transport checksum field is not computed.

A frame is either ``bytes`` (a real wire frame) or a ``GsoFrame``; code that
forwards frames without looking into them passes either along unchanged.
Code that observes or changes the wire -- a capture tap, an impairment, a
firewall, a smaller-MTU hop, NAT, the TUN bridge -- calls ``materialise()``
and works on the real frames. A receiver trusts the transport checksum of a
``GsoFrame`` (whoever made it vouches for it: vnet's own stack, or a kernel
virtio header with NEEDS_CSUM or DATA_VALID); a producer that cannot vouch
hands over ``bytes``.

``materialise()`` does what a TSO NIC (and Linux's ``tcp_gso_segment`` /
``inet_gso_segment``) does: every segment gets a copy of the headers; the
IPv4 total length / IPv6 payload length are set per segment; IPv4 IDs count
up from the super-packet's ID (id, id+1, ...) and each IPv4 header checksum
is recomputed; TCP sequence numbers advance by the payload before them; CWR
stays only on the first segment, FIN and PSH only on the last; every
transport checksum is computed. UDP (``gso_size`` over UDP) becomes one
datagram per ``gso_size`` bytes of payload, each with its own length and
checksum. The result is computed once and kept, so several observers of one
super-frame (a NIC tap, a segment tap, the receiving NIC's tap) pay once.

Only packets whose transport header follows the IP header directly are
segmented (IPv4 with options is fine; IPv6 extension headers are not):
`from_packet` refuses others with ValueError.

A frame a vnet stack built itself (``from_ipv4_header``, or what
``stack.ipv4.Ipv4Layer.send_offloaded`` makes inline: the same) also carries the
IPv4 header's fields as that stack wrote them (``ipv4_fields``: the
arguments of ``stack.wire.ipv4.Ipv4Packet`` after its buffer), so a
receiving vnet stack that takes it whole need not parse and verify again
what its own kind just built; the bytes are immutable, so they cannot
disagree. Every other producer (the TUN bridge, a router forwarding,
``from_packet``) leaves it None, and receivers parse as for any frame.

A TCP segment a vnet stack built that way (``stack.tcp_output``) likewise carries
its TCP header as the receiver's ``stack.wire.tcp.TcpPacket.parse`` would read it
(``tcp_header``: `stack.wire.tcp.built_header`, whose ``buf`` the receiver sets to
its view of the segment). It is the receiver's to take, once: the first stack that
takes the frame whole clears it (taking the object, which its TCP engine may trim),
and any other receiver of the same frame parses. ``with_link_header`` keeps both
cached headers (the IP packet is the same bytes); nothing else that makes a frame
does.
"""

from __future__ import annotations

from typing import Final

from ._types import BytesLike
from .checksum import ones_sum
from .tcp import TcpPacket

__all__ = [
    "GSO_MAX_SIZE",
    "VIRTIO_NET_HDR_GSO_NONE",
    "VIRTIO_NET_HDR_GSO_TCPV4",
    "VIRTIO_NET_HDR_GSO_TCPV6",
    "VIRTIO_NET_HDR_GSO_UDP_L4",
    "GsoFrame",
    "Ipv4Fields",
]

#: The largest IP packet a super-segment may be (Linux's GSO_LEGACY_MAX_SIZE, less one:
#: an IPv4 total length must fit 16 bits).
GSO_MAX_SIZE = 65535

# struct virtio_net_hdr gso_type values (linux/virtio_net.h), for the TUN bridge.
VIRTIO_NET_HDR_GSO_NONE = 0
VIRTIO_NET_HDR_GSO_TCPV4 = 1
VIRTIO_NET_HDR_GSO_TCPV6 = 4
VIRTIO_NET_HDR_GSO_UDP_L4 = 5

#: What ``stack.wire.ipv4.Ipv4Packet`` takes after its buffer: header length, DSCP/ECN,
#: total length, ident, flags and fragment offset, TTL, protocol, checksum, source, destination.
Ipv4Fields = tuple[int, int, int, int, int, int, int, int, bytes, bytes]

_PROTO_TCP: Final = 6
_PROTO_UDP: Final = 17
_TCP_FIN: Final = 0x01
_TCP_PSH: Final = 0x08
_TCP_CWR: Final = 0x80


class GsoFrame:
    """One IPv4/IPv6 TCP or UDP packet (behind ``link_len`` bytes of link header) that
    stands for ``gso_segs`` wire frames. Immutable once built (but for ``tcp_header``,
    which its receiver takes: see the module docstring); share it freely."""

    __slots__ = (
        "_wire",
        "csum_partial",
        "data",
        "gso_segs",
        "gso_size",
        "header_len",
        "ipv4_fields",
        "l4_offset",
        "link_len",
        "max_wire_len",
        "tcp_header",
        "wire_bytes",
    )

    def __init__(self, data: bytes, link_len: int, l4_offset: int, header_len: int,
                 gso_size: int, gso_segs: int, csum_partial: bool,
                 ipv4_fields: Ipv4Fields | None = None,
                 tcp_header: TcpPacket | None = None) -> None:
        #: link header + IP header + transport header + payload.
        self.data = data
        #: Bytes of link header before the IP header (14: Ethernet; 0: a raw IP packet).
        self.link_len = link_len
        #: Offset of the transport header in ``data``.
        self.l4_offset = l4_offset
        #: Offset of the payload in ``data`` (every header, repeated on each wire frame).
        self.header_len = header_len
        self.gso_size = gso_size
        self.gso_segs = gso_segs
        self.csum_partial = csum_partial
        self._wire: list[bytes] | None = None
        #: The IPv4 header as the vnet stack that built the frame wrote it, or None.
        self.ipv4_fields = ipv4_fields
        #: Its TCP header as parsing would read it, until a receiver takes it; or None.
        self.tcp_header = tcp_header
        #: Total length of the wire frames it stands for (every link counts it: kept).
        self.wire_bytes = len(data) + (gso_segs - 1) * header_len
        #: Length of its longest wire frame (the first): what an MTU check compares.
        self.max_wire_len = header_len + gso_size if gso_segs > 1 else len(data)

    # --- building -------------------------------------------------------------------
    @classmethod
    def from_packet(cls, packet: BytesLike, gso_size: int = 0, *, csum_partial: bool = True,
                    link_len: int = 0) -> GsoFrame:
        """Wrap a built packet (``link_len`` bytes of link header, then IPv4/IPv6, then TCP
        or UDP); ``gso_size`` 0 means one wire packet. ValueError if it cannot be one."""
        data = packet if type(packet) is bytes else bytes(packet)
        l3 = link_len
        if len(data) < l3 + 20:
            raise ValueError("too short for an IP packet")
        version = data[l3] >> 4
        if version == 4:
            proto = data[l3 + 9]
            l4 = l3 + (data[l3] & 0x0F) * 4
            if data[l3 + 6] & 0x3F or data[l3 + 7]:
                raise ValueError("an IPv4 fragment cannot be segmented")
        elif version == 6:
            proto = data[l3 + 6]
            l4 = l3 + 40
        else:
            raise ValueError(f"IP version {version}")
        if proto == _PROTO_TCP:
            if len(data) < l4 + 20:
                raise ValueError("truncated TCP header")
            header_len = l4 + (data[l4 + 12] >> 4) * 4
        elif proto == _PROTO_UDP:
            header_len = l4 + 8
        else:
            raise ValueError(f"protocol {proto} cannot be offloaded")
        if len(data) < header_len:
            raise ValueError("truncated transport header")
        payload_len = len(data) - header_len
        if gso_size < 0:
            raise ValueError("gso_size must be >= 0")
        segs = 1 if gso_size == 0 or payload_len <= gso_size else -(-payload_len // gso_size)
        return cls(data, link_len=link_len, l4_offset=l4, header_len=header_len,
                   gso_size=gso_size if segs > 1 else 0, gso_segs=segs,
                   csum_partial=csum_partial)

    @classmethod
    def from_ipv4_header(cls, data: bytes, gso_size: int, fields: Ipv4Fields) -> GsoFrame:
        """A frame a vnet stack built: 14 bytes of Ethernet, an IPv4 header without options
        (whose values are ``fields``), then TCP or UDP with its checksum not computed.
        What ``from_packet(data, gso_size, link_len=14)`` makes of it, without reading it
        again, plus ``ipv4_fields``. (The send hot path: arguments by position.)"""
        header_len = 34 + (data[46] >> 4) * 4 if fields[6] == _PROTO_TCP else 42
        payload_len = len(data) - header_len
        if gso_size == 0 or payload_len <= gso_size:
            return cls(data, 14, 34, header_len, 0, 1, True, fields)
        return cls(data, 14, 34, header_len, gso_size, -(-payload_len // gso_size), True,
                   fields)

    def with_link_header(self, header: bytes) -> GsoFrame:
        """The same packet behind a (new) link header, e.g. an Ethernet header."""
        extra = len(header) - self.link_len
        return GsoFrame(header + self.data[self.link_len:] if self.link_len else
                        header + self.data, link_len=len(header),
                        l4_offset=self.l4_offset + extra, header_len=self.header_len + extra,
                        gso_size=self.gso_size, gso_segs=self.gso_segs,
                        csum_partial=self.csum_partial, ipv4_fields=self.ipv4_fields,
                        tcp_header=self.tcp_header)

    # --- what a link needs to know without materialising ----------------------------
    @property
    def ip_packet(self) -> memoryview:
        """The IP packet without its link header (what a TUN device reads or writes)."""
        return memoryview(self.data)[self.link_len:]

    @property
    def protocol(self) -> int:
        return self.data[self.link_len + 9] if self.data[self.link_len] >> 4 == 4 else (
            self.data[self.link_len + 6])

    @property
    def gso_type(self) -> int:
        """virtio_net_hdr's gso_type for this packet (GSO_NONE for one wire packet)."""
        if self.gso_segs <= 1:
            return VIRTIO_NET_HDR_GSO_NONE
        if self.protocol == _PROTO_UDP:
            return VIRTIO_NET_HDR_GSO_UDP_L4
        return VIRTIO_NET_HDR_GSO_TCPV4 if self.data[self.link_len] >> 4 == 4 else (
            VIRTIO_NET_HDR_GSO_TCPV6)

    @property
    def csum_start(self) -> int:
        """virtio_net_hdr's csum_start, counted from the IP header."""
        return self.l4_offset - self.link_len

    @property
    def csum_offset(self) -> int:
        """virtio_net_hdr's csum_offset: where the checksum field is in the transport header."""
        return 16 if self.protocol == _PROTO_TCP else 6

    def __repr__(self) -> str:
        return (f"<GsoFrame {len(self.data)} bytes, {self.gso_segs} x {self.gso_size}"
                f"{' csum-partial' if self.csum_partial else ''}>")

    # --- the wire -------------------------------------------------------------------
    def materialise(self) -> list[bytes]:
        """The frames a real wire carries for it, in order (computed once)."""
        wire = self._wire
        if wire is None:
            wire = self._wire = self._segment()
        return wire

    def _segment(self) -> list[bytes]:
        data = self.data
        if self.gso_segs <= 1 and not self.csum_partial:
            return [data]
        l3 = self.link_len
        l4 = self.l4_offset
        hlen = self.header_len
        v4 = data[l3] >> 4 == 4
        tcp = (data[l3 + 9] if v4 else data[l3 + 6]) == _PROTO_TCP
        step = self.gso_size if self.gso_segs > 1 else max(len(data) - hlen, 1)
        payload_len = len(data) - hlen
        if v4:
            src = int.from_bytes(data[l3 + 12:l3 + 16], "big")
            dst = int.from_bytes(data[l3 + 16:l3 + 20], "big")
            ident = int.from_bytes(data[l3 + 4:l3 + 6], "big")
        else:
            src = int.from_bytes(data[l3 + 8:l3 + 24], "big")
            dst = int.from_bytes(data[l3 + 24:l3 + 40], "big")
            ident = 0
        proto = _PROTO_TCP if tcp else _PROTO_UDP
        addr_sum = src + dst + proto
        seq = int.from_bytes(data[l4 + 4:l4 + 8], "big") if tcp else 0
        flags = data[l4 + 13] if tcp else 0
        head = data[:hlen]
        mv = memoryview(data)
        out: list[bytes] = []
        count = max(1, -(-payload_len // step))
        for index in range(count):
            start = index * step
            chunk = mv[hlen + start:hlen + start + step]
            frame = bytearray(head)
            frame += chunk
            l4_len = len(frame) - l4
            if v4:
                frame[l3 + 2:l3 + 4] = (len(frame) - l3).to_bytes(2, "big")
                frame[l3 + 4:l3 + 6] = ((ident + index) & 0xFFFF).to_bytes(2, "big")
                frame[l3 + 10:l3 + 12] = b"\x00\x00"
                frame[l3 + 10:l3 + 12] = (0xFFFF - ones_sum(frame[l3:l4])).to_bytes(2, "big")
            else:
                frame[l3 + 4:l3 + 6] = (len(frame) - l3 - 40).to_bytes(2, "big")
            if tcp:
                frame[l4 + 4:l4 + 8] = ((seq + start) & 0xFFFFFFFF).to_bytes(4, "big")
                seg_flags = flags
                if index:
                    seg_flags &= ~_TCP_CWR
                if index != count - 1:
                    seg_flags &= ~(_TCP_FIN | _TCP_PSH)
                frame[l4 + 13] = seg_flags
                frame[l4 + 16:l4 + 18] = b"\x00\x00"
                csum = 0xFFFF - ones_sum(memoryview(frame)[l4:], addr_sum + l4_len)
                frame[l4 + 16:l4 + 18] = csum.to_bytes(2, "big")
            else:
                frame[l4 + 4:l4 + 6] = l4_len.to_bytes(2, "big")
                frame[l4 + 6:l4 + 8] = b"\x00\x00"
                csum = 0xFFFF - ones_sum(memoryview(frame)[l4:], addr_sum + l4_len)
                frame[l4 + 6:l4 + 8] = (csum or 0xFFFF).to_bytes(2, "big")
            out.append(bytes(frame))
        return out
