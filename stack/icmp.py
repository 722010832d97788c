"""The ICMP layer of a host: ICMPv4 and ICMPv6 in, errors out.

`IcmpLayer` is one part of a `stack.host.HostStack`. In: echo requests are
answered, echo replies go to the ping sockets (`icmp_echo_handler`), errors
are turned into errno values (as Linux's icmp_err_convert and
icmpv6_err_convert) for the transport whose packet they quote, and Packet Too
Big / Fragmentation Needed feed the path MTU cache. ICMPv6's neighbour
discovery goes to `stack.neighbor` and `stack.router_advert`, MLD to
`stack.membership`. Out: `error_v4` / `error_v6` build the errors the IP
layers ask for, never about an error, a fragment or a multicast/broadcast
packet, rate limited per destination and in total (a `TokenBucket`, as
Linux's icmp_ratelimit). Touches only its host's state.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from .ip import (
    ANY_V4,
    LIMITED_BROADCAST,
    PROTO_ICMP,
    PROTO_ICMPV6,
    UNSPECIFIED_V6,
    IpMeta,
    is_multicast,
)
from .wire import icmpv4, icmpv6, ipv4, ipv6
from .wire.errors import WireError

if TYPE_CHECKING:
    from .host import HostStack
    from .interface import Interface

# ICMP → errno, as Linux's icmp_err_convert / icmpv6_err_convert.
ICMPV4_UNREACH_ERRNO = {
    0: errno.ENETUNREACH, 1: errno.EHOSTUNREACH, 2: errno.ENOPROTOOPT, 3: errno.ECONNREFUSED,
    4: errno.EMSGSIZE, 5: errno.EOPNOTSUPP, 6: errno.ENETUNREACH, 7: errno.EHOSTDOWN,
    8: errno.ENONET, 9: errno.ENETUNREACH, 10: errno.EHOSTUNREACH, 11: errno.ENETUNREACH,
    12: errno.EHOSTUNREACH, 13: errno.EHOSTUNREACH, 14: errno.EHOSTUNREACH,
    15: errno.EHOSTUNREACH,
}
ICMPV6_UNREACH_ERRNO = {
    0: errno.ENETUNREACH, 1: errno.EACCES, 2: errno.EHOSTUNREACH, 3: errno.EHOSTUNREACH,
    4: errno.ECONNREFUSED, 5: errno.EACCES, 6: errno.EACCES,
}


class TokenBucket:
    """Rate limiter for ICMP errors (Linux: icmp_ratelimit / icmp_msgs_per_sec)."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.tokens = float(burst)
        self.stamp: int | None = None

    def take(self, now_ns: int) -> bool:
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now_ns - self.stamp) / 1e9 * self.rate)
        self.stamp = now_ns
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class IcmpLayer:
    """ICMPv4 and ICMPv6 for one host: see the module docstring."""

    def __init__(self, host: HostStack) -> None:
        self.host = host
        #: The ping sockets' receiver of echo replies (set by `stack.ping`).
        self.echo_handler: Callable[[IpMeta, memoryview], bool] | None = None
        self._global = TokenBucket(1000, 50)
        self._per_dst: dict[bytes, TokenBucket] = {}

    # --- ICMPv4 in ----------------------------------------------------------------------
    def receive_v4(self, meta: IpMeta, payload: memoryview) -> None:
        host = self.host
        msg = icmpv4.Icmpv4Packet.parse(payload)
        if isinstance(msg, WireError):
            host.counters.drop("icmp", msg)
            return
        host.counters["icmp.in"] += 1
        host.counters[f"icmp.in.type{msg.type}"] += 1
        if msg.type == icmpv4.TYPE_ECHO_REQUEST:
            if meta.is_broadcast or meta.is_multicast:
                host.counters.drop("icmp", "broadcast_echo")  # icmp_echo_ignore_broadcasts
                return
            reply = icmpv4.Icmpv4Repr(icmpv4.TYPE_ECHO_REPLY, 0, msg.rest).build(msg.data)
            host.counters["icmp.out.echo_reply"] += 1
            host.send_ip(meta.src, PROTO_ICMP, reply, src=meta.dst)
        elif msg.type == icmpv4.TYPE_ECHO_REPLY:
            if self.echo_handler is None or not self.echo_handler(meta, payload):
                host.counters.drop("icmp", "no_socket")
        elif msg.type in (icmpv4.TYPE_DEST_UNREACHABLE, icmpv4.TYPE_TIME_EXCEEDED,
                          icmpv4.TYPE_PARAM_PROBLEM):
            invoking = msg.data
            quoted = ipv4.Ipv4Packet.parse(invoking, verify_checksum=False, partial=True)
            if isinstance(quoted, WireError):
                host.counters.drop("icmp", "bad_invoking_packet")
                return
            if msg.type == icmpv4.TYPE_DEST_UNREACHABLE:
                err = ICMPV4_UNREACH_ERRNO.get(msg.code, errno.EHOSTUNREACH)
            elif msg.type == icmpv4.TYPE_TIME_EXCEEDED:
                err = errno.EHOSTUNREACH
            else:
                err = errno.EPROTO
            info = msg.next_hop_mtu if msg.code == icmpv4.UNREACH_FRAG_NEEDED else 0
            if msg.type == icmpv4.TYPE_DEST_UNREACHABLE and (
                    msg.code == icmpv4.UNREACH_FRAG_NEEDED):
                self._learn_path_mtu(quoted.src, quoted.dst, info)
            self._transport_error(4, quoted.protocol, err, invoking, msg.type, msg.code, info)

    # --- ICMPv6 in ----------------------------------------------------------------------
    def receive_v6(self, meta: IpMeta, payload: memoryview) -> None:
        host = self.host
        msg = icmpv6.Icmpv6Packet.parse(payload, meta.src, meta.dst)
        if isinstance(msg, WireError):
            host.counters.drop("icmpv6", msg)
            return
        host.counters["icmpv6.in"] += 1
        host.counters[f"icmpv6.in.type{msg.type}"] += 1
        iface = host.interfaces[meta.ifindex]
        mtype = msg.type
        if mtype == icmpv6.TYPE_ECHO_REQUEST:
            if meta.is_multicast:
                host.counters.drop("icmpv6", "multicast_echo")
                return
            reply = icmpv6.Icmpv6Repr(icmpv6.TYPE_ECHO_REPLY, 0, msg.rest).build(
                msg.body, meta.dst, meta.src)
            host.counters["icmpv6.out.echo_reply"] += 1
            host.send_ip(meta.src, PROTO_ICMPV6, reply, src=meta.dst, prebuilt_checksum=True)
        elif mtype == icmpv6.TYPE_ECHO_REPLY:
            if self.echo_handler is None or not self.echo_handler(meta, payload):
                host.counters.drop("icmpv6", "no_socket")
        elif mtype in icmpv6.NDP_TYPES:
            if meta.ttl != 255:
                host.counters.drop("ndp", "hop_limit_not_255")
                return
            host.neighbors.receive_ndp(iface, meta, msg)
        elif mtype in icmpv6.MLD_TYPES:
            host.counters["mld.in"] += 1
            host.membership.receive_mld(iface, meta, payload)
        elif mtype in (icmpv6.TYPE_DEST_UNREACHABLE, icmpv6.TYPE_PACKET_TOO_BIG,
                       icmpv6.TYPE_TIME_EXCEEDED, icmpv6.TYPE_PARAM_PROBLEM):
            invoking = msg.body
            quoted = ipv6.Ipv6Packet.parse(invoking, partial=True)
            if isinstance(quoted, WireError):
                host.counters.drop("icmpv6", "bad_invoking_packet")
                return
            if mtype == icmpv6.TYPE_DEST_UNREACHABLE:
                err = ICMPV6_UNREACH_ERRNO.get(msg.code, errno.EHOSTUNREACH)
            elif mtype == icmpv6.TYPE_PACKET_TOO_BIG:
                err = errno.EMSGSIZE
            elif mtype == icmpv6.TYPE_TIME_EXCEEDED:
                err = errno.EHOSTUNREACH
            else:
                err = errno.EPROTO
            info = msg.mtu if mtype == icmpv6.TYPE_PACKET_TOO_BIG else 0
            if mtype == icmpv6.TYPE_PACKET_TOO_BIG:
                self._learn_path_mtu(quoted.src, quoted.dst, info)
            self._transport_error(6, quoted.upper_protocol, err, invoking, mtype, msg.code, info)

    def _transport_error(self, version: int, protocol: int, err: int, invoking: memoryview,
                         icmp_type: int, icmp_code: int, info: int) -> None:
        transport = self.host.transports.get(protocol)
        if transport is not None:
            transport.icmp_error(version, err, invoking, icmp_type, icmp_code, info)

    def _learn_path_mtu(self, src: bytes, dst: bytes, reported: int) -> None:
        """A router reported the path MTU towards dst for a packet we sent from src."""
        host = self.host
        proto = "icmp" if len(dst) == 4 else "icmpv6"
        if not host.is_local_address(src) or host.is_local_address(dst):
            host.counters.drop(proto, "pmtu_not_ours")
            return
        try:
            link_mtu = host.route_output(dst).iface.mtu
        except OSError:
            return
        if host.path_mtus.learn(dst, reported, link_mtu, host.driver.now_ns()):
            host.counters[f"{proto}.pmtu_learned"] += 1

    # --- errors out ---------------------------------------------------------------------
    def _allowed(self, dst: bytes) -> bool:
        now = self.host.driver.now_ns()
        if not self._global.take(now):
            return False
        bucket = self._per_dst.get(dst)
        if bucket is None:
            if len(self._per_dst) > 4096:
                self._per_dst.clear()
            bucket = self._per_dst[dst] = TokenBucket(1000, 50)
        return bucket.take(now)

    def error_v4(self, packet: bytes | memoryview, icmp_type: int, code: int,
                 info: int = 0, from_iface: Interface | None = None) -> None:
        host = self.host
        orig = ipv4.Ipv4Packet.parse(packet, verify_checksum=False, partial=True)
        if isinstance(orig, WireError):
            return
        if orig.frag_offset or is_multicast(orig.dst) or orig.dst == LIMITED_BROADCAST:
            return
        if orig.src == ANY_V4 or is_multicast(orig.src) or orig.src == LIMITED_BROADCAST:
            return
        if orig.protocol == PROTO_ICMP and len(orig.payload) >= 1 and (
                orig.payload[0] in icmpv4.ERROR_TYPES):
            return  # never an error about an error
        if not self._allowed(orig.src):
            host.counters["icmp.ratelimited"] += 1
            return
        quoted = bytes(orig.buf[:min(len(orig.buf), 576 - 28)])
        rest = info if icmp_type == icmpv4.TYPE_PARAM_PROBLEM else (info & 0xFFFF)
        if icmp_type == icmpv4.TYPE_PARAM_PROBLEM:
            rest = info << 24
        message = icmpv4.Icmpv4Repr(icmp_type, code, rest).build(quoted)
        host.counters[f"icmp.out.type{icmp_type}"] += 1
        src = None
        if from_iface is not None:
            src = host.source_for(from_iface, orig.src, None)
        elif host.is_local_address(orig.dst):
            src = orig.dst
        host.send_ip(orig.src, PROTO_ICMP, message, src=src)

    def error_v6(self, packet: bytes | memoryview, icmp_type: int, code: int,
                 info: int = 0, from_iface: Interface | None = None,
                 allow_multicast: bool = False) -> None:
        host = self.host
        orig = ipv6.Ipv6Packet.parse(packet, partial=True)
        if isinstance(orig, WireError):
            return
        if is_multicast(orig.dst) and not (allow_multicast
                                           or icmp_type == icmpv6.TYPE_PACKET_TOO_BIG):
            return
        if orig.src == UNSPECIFIED_V6 or is_multicast(orig.src):
            return
        if orig.upper_protocol == PROTO_ICMPV6 and len(orig.upper_payload) >= 1 and (
                orig.upper_payload[0] < 128):
            return
        if not self._allowed(orig.src):
            host.counters["icmpv6.ratelimited"] += 1
            return
        quoted = bytes(orig.buf[:icmpv6.MAX_INVOKING_LEN])
        src = None
        if from_iface is not None:
            src = host.source_for(from_iface, orig.src, None)
        elif host.is_local_address(orig.dst):
            src = orig.dst
        try:
            rt = host.route_output(orig.src, src)
        except OSError:
            return
        message = icmpv6.Icmpv6Repr(icmp_type, code, info).build(quoted, rt.src, orig.src)
        host.counters[f"icmpv6.out.type{icmp_type}"] += 1
        host.send_ipv6(rt, PROTO_ICMPV6, message)
