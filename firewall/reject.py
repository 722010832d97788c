"""The packets a `reject` sends back: a TCP reset or an ICMP/ICMPv6 unreachable.

Built as Linux's `nf_reject` builds them, so a guest behind vnet's rules sees
what it would see behind the kernel's: a reset answers a TCP segment from the
address and port it was sent to, with `seq = ack` if the segment carried an
ACK, else `ack = seq + length` (SYN and FIN counting one) and the ACK flag
set; an ICMP error quotes the rejected packet's IP header and as much of its
payload as fits in 576 bytes (IPv4) or 1280 bytes (IPv6). Nothing is sent
about a TCP reset, an ICMP error, a non-first fragment, or a packet to or
from a broadcast or multicast address -- as the kernel refuses to.

`build_reject(pkt, kind, icmp_type, code)` returns a `RejectResponse` (or
None): source, destination, protocol and the transport message with its
checksum; `.packet()` wraps it in an IP header when the caller needs a whole
packet (a reject in the OUTPUT hook is delivered back to the host through
its loopback). Touches nothing but bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.wire import icmpv4, icmpv6, ipv4, ipv6
from stack.wire import tcp as wire_tcp

from .packet import (
    ACK,
    FIN,
    LATER_FRAGMENT,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    RST,
    SYN,
    PacketInfo,
)

__all__ = ["RejectResponse", "build_reject"]

DEFAULT_TTL = 64
ICMPV4_QUOTE = 576 - 20 - 8
ICMPV6_QUOTE = 1280 - 40 - 8


@dataclass(frozen=True)
class RejectResponse:
    """A reject's answer: from `src` to `dst`, transport `proto`, `payload` ready to send."""

    version: int
    src: bytes
    dst: bytes
    proto: int
    payload: bytes

    def packet(self, ttl: int = DEFAULT_TTL) -> bytes:
        """The whole IP packet."""
        if self.version == 4:
            header = ipv4.Ipv4Repr(self.src, self.dst, self.proto, ttl=ttl, dont_frag=True)
            return header.build(self.payload)
        return ipv6.Ipv6Repr(self.src, self.dst, self.proto, ttl).build(self.payload)


def _is_group(addr: bytes) -> bool:
    if len(addr) == 4:
        return addr[0] >= 224 or addr == b"\xff\xff\xff\xff"
    return addr[0] == 0xFF


def _bad_source(addr: bytes) -> bool:
    return _is_group(addr) or addr == bytes(len(addr))


def build_reject(pkt: PacketInfo, kind: str, icmp_type: int = 0, code: int = 0, *,
                 icmp_src: bytes | None = None,
                 broadcast: bool = False) -> RejectResponse | None:
    """The answer to reject `pkt` ("tcp-reset" or "icmp" with type and code), or None.

    `icmp_src` is the source of an ICMP error (default: the rejected packet's
    destination, as for a packet to this host); `broadcast` says the packet
    went to a broadcast address, which is never answered.
    """
    if pkt.fragment == LATER_FRAGMENT or broadcast or _is_group(pkt.dst) or _bad_source(pkt.src):
        return None
    if kind == "tcp-reset":
        return _tcp_reset(pkt)
    if pkt.is_icmp_error:
        return None
    if pkt.proto in (PROTO_ICMP, PROTO_ICMPV6) and not pkt.l4_ok:
        return None
    src = icmp_src if icmp_src is not None else pkt.dst
    original = bytes(pkt.data)
    if pkt.version == 4:
        quoted = original[:ICMPV4_QUOTE]
        message = icmpv4.Icmpv4Repr(icmp_type, code, 0).build(quoted)
        return RejectResponse(4, src, pkt.src, PROTO_ICMP, message)
    quoted = original[:ICMPV6_QUOTE]
    message = icmpv6.Icmpv6Repr(icmp_type, code, 0).build(quoted, src, pkt.src)
    return RejectResponse(6, src, pkt.src, PROTO_ICMPV6, message)


def _tcp_reset(pkt: PacketInfo) -> RejectResponse | None:
    if pkt.proto != PROTO_TCP or not pkt.l4_ok or pkt.tcp_flags & RST:
        return None
    flags = pkt.tcp_flags
    if flags & ACK:
        seq, ack, out_flags = pkt.ack, 0, RST
    else:
        length = pkt.payload_len + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        seq, ack, out_flags = 0, (pkt.seq + length) & 0xFFFFFFFF, RST | ACK
    header = wire_tcp.TcpRepr(pkt.dport, pkt.sport, seq, ack, out_flags, 0)
    segment = header.build(b"", pkt.dst, pkt.src)
    return RejectResponse(pkt.version, pkt.dst, pkt.src, PROTO_TCP, segment)
