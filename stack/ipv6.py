"""The IPv6 layer of a host: input, extension headers, reassembly, forwarding, output.

`Ipv6Layer` is one part of a `stack.host.HostStack` (which owns it and routes
between its layers), as smoltcp's iface/interface/ipv6.rs. Input: header
checks, PREROUTING, the routing decision, hop-by-hop options, reassembly,
INPUT, then `HostStack.deliver`. Forwarding: scope, hop limit, route, MTU,
FORWARD. Output: OUTPUT (local packets), then POSTROUTING for every packet
that leaves, then fragmentation at the source and the neighbour layer. Each
netfilter hook (`stack.hooks`) is called at exactly one place here; ND and
MLD go out through `HostStack.output_control` instead. Touches only its
host's state; no clock, thread, file or socket of the real host.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from .fragment import Reassembler, fragment_ipv6
from .hooks import Hook
from .ip import (
    ALL_NODES_V6,
    ALL_ROUTERS_V6,
    ETH_IPV6,
    PROTO_NONE,
    IpMeta,
    OutputRoute,
    is_multicast,
)
from .wire import icmpv6, ipv6
from .wire.errors import WireError
from .wire.gso import GsoFrame

if TYPE_CHECKING:
    from .host import HostStack
    from .interface import Interface


class Ipv6Layer:
    """IPv6 for one host: see the module docstring."""

    def __init__(self, host: HostStack) -> None:
        self.host = host
        self.reassembly = Reassembler(timeout_ns=60_000_000_000)

    # --- input ------------------------------------------------------------------------
    def receive(self, iface: Interface, data: memoryview, csum_trusted: bool = False,
                gso_size: int = 0) -> None:
        """One IPv6 packet from `iface`; `gso_size` as `Ipv4Layer.receive`."""
        host = self.host
        counters = host.counters
        pkt = ipv6.Ipv6Packet.parse(data)
        if isinstance(pkt, WireError):
            counters.drop("ipv6", pkt)
            return
        counters["ipv6.in"] += 1
        if is_multicast(pkt.src):
            counters.drop("ipv6", "bad_source")
            return
        if pkt.src == ipv6.LOOPBACK and not iface.is_loopback:
            counters.drop("ipv6", "martian_source")
            return
        if host.hooks.get(Hook.PREROUTING) is not None:
            arrived = host.hooks.run_on_arrival(Hook.PREROUTING, IpMeta(
                6, pkt.src, pkt.dst, iface.index, pkt.hop_limit, pkt.traffic_class, False,
                is_multicast(pkt.dst), pkt.buf, pkt.router_alert is not None), pkt.buf,
                pkt, ipv6.Ipv6Packet.parse, counters, "ipv6")
            if arrived is None:
                return
            pkt = arrived
        src, dst = pkt.src, pkt.dst
        mcast = is_multicast(dst)
        if mcast and host.multicast_routes is not None:
            host.multicast_routes.forward(iface, pkt.buf, dst)  # stack.multicast_routing
        if mcast:
            local = (dst == ALL_NODES_V6 or dst in iface.groups
                     or (host.forwarding and dst == ALL_ROUTERS_V6)
                     or (iface.is_loopback and any(dst in i.groups
                                                   for i in host.interfaces.values())))
        else:
            local = host.is_local_address(dst)
        if pkt.hop_by_hop is not None and self._drop_for_options(pkt):
            return
        if not local:
            if mcast:
                counters.drop("ipv6", "not_member")
                return
            self.forward(iface, pkt, csum_trusted, gso_size)
            return
        frag = pkt.fragment
        if frag is not None:
            whole = self.reassembly.add_ipv6(
                host.driver.now_ns(), src, dst, frag.ident, frag.frag_offset * 8,
                frag.more_frags, frag.next_header, bytes(pkt.buf[:frag.offset]),
                pkt.buf[frag.offset + ipv6.FRAGMENT_HEADER_LEN:])
            host.schedule()
            if whole is None:
                return
            if not isinstance(whole, (bytes, bytearray)):
                counters.drop("ipv6", f"reassembly_{getattr(whole, 'value', whole)}")
                return
            counters["ipv6.reassembled"] += 1
            reparsed = ipv6.Ipv6Packet.parse(whole)
            if isinstance(reparsed, WireError) or reparsed.fragment is not None:
                counters.drop("ipv6", "reassembly_bad")
                return
            pkt = reparsed
        meta = IpMeta(6, src, dst, iface.index, pkt.hop_limit, pkt.traffic_class, False, mcast,
                      pkt.buf, pkt.router_alert is not None, csum_trusted=csum_trusted)
        if host.hooks.get(Hook.INPUT) is not None:
            arrived = host.hooks.run_on_arrival(Hook.INPUT, meta, pkt.buf, pkt,
                                                ipv6.Ipv6Packet.parse, counters, "ipv6")
            if arrived is None:
                return
            pkt = arrived
            meta.packet = pkt.buf
        upper = pkt.upper_protocol
        if upper == PROTO_NONE:
            return
        host.deliver(meta, upper, pkt.upper_payload)

    def _drop_for_options(self, pkt: ipv6.Ipv6Packet) -> bool:
        """Apply the action bits of unknown hop-by-hop options; True if the packet is dropped."""
        hbh = pkt.hop_by_hop
        assert hbh is not None
        action = hbh.unrecognized_action
        if action == ipv6.ACTION_SKIP:
            return False
        self.host.counters.drop("ipv6", "unknown_option")
        if action == ipv6.ACTION_DISCARD_ICMP or (
            action == ipv6.ACTION_DISCARD_ICMP_UNLESS_MULTICAST and not is_multicast(pkt.dst)
        ):
            self.host.icmp.error_v6(pkt.buf, icmpv6.TYPE_PARAM_PROBLEM,
                                    icmpv6.PARAM_UNRECOGNIZED_OPTION, hbh.unrecognized_pointer,
                                    allow_multicast=action == ipv6.ACTION_DISCARD_ICMP)
        return True

    # --- forwarding ---------------------------------------------------------------------
    def forward(self, iface: Interface, pkt: ipv6.Ipv6Packet, whole: bool = False,
                gso_size: int = 0) -> None:
        """Route a packet on; a super-frame (`whole`, `gso_size`) as `Ipv4Layer.forward`."""
        host = self.host
        if not host.forwarding:
            host.counters.drop("ipv6", "not_for_us")
            return
        if whole and not self._forwards_whole(pkt, gso_size):
            for wire in GsoFrame.from_packet(pkt.buf, gso_size).materialise():
                piece = ipv6.Ipv6Packet.parse(wire)
                if not isinstance(piece, WireError):
                    self.forward(iface, piece)
            return
        icmp = host.icmp
        if pkt.dst[:2] == b"\xfe\x80" or pkt.src[:2] == b"\xfe\x80":
            host.counters.drop("ipv6", "link_local_not_forwarded")
            icmp.error_v6(pkt.buf, icmpv6.TYPE_DEST_UNREACHABLE,
                          icmpv6.UNREACH_BEYOND_SCOPE, from_iface=iface)
            return
        if pkt.hop_limit <= 1:
            host.counters.drop("ipv6", "hop_limit_exceeded")
            icmp.error_v6(pkt.buf, icmpv6.TYPE_TIME_EXCEEDED,
                          icmpv6.TIME_EXCEEDED_HOP_LIMIT, from_iface=iface)
            return
        route = host.routes.lookup(pkt.dst)
        if route is None:
            host.counters.drop("ipv6", "no_route")
            icmp.error_v6(pkt.buf, icmpv6.TYPE_DEST_UNREACHABLE, icmpv6.UNREACH_NO_ROUTE,
                          from_iface=iface)
            return
        out = host.interfaces[route.ifindex]
        if len(pkt.buf) > out.mtu and not whole:
            host.counters.drop("ipv6", "too_big")
            icmp.error_v6(pkt.buf, icmpv6.TYPE_PACKET_TOO_BIG, 0, out.mtu, from_iface=iface)
            return
        packet = bytearray(pkt.buf)
        packet[ipv6.FIELD_HOP_LIMIT] -= 1
        if host.hooks.get(Hook.FORWARD) is not None:
            meta = IpMeta(6, pkt.src, pkt.dst, iface.index, pkt.hop_limit - 1,
                          pkt.traffic_class, False, False, memoryview(packet),
                          out_ifindex=out.index)
            verdict = host.hooks.run(Hook.FORWARD, meta, packet)
            if not verdict.accept:
                host.counters.drop("ipv6", "firewall")
                return
            if verdict.packet is not None:
                packet = bytearray(verdict.packet)
        host.counters["ipv6.forwarded"] += 1
        if whole:
            frame = GsoFrame.from_packet(bytes(packet), gso_size)
            host.counters["ipv6.forwarded"] += frame.gso_segs - 1
            host.neighbors.send(out, route.gateway or pkt.dst, ETH_IPV6, frame)
            return
        self._postrouting(out, route.gateway or pkt.dst, packet, out.mtu)

    def _forwards_whole(self, pkt: ipv6.Ipv6Packet, gso_size: int) -> bool:
        """As `Ipv4Layer._forwards_whole`; link-local packets are never forwarded."""
        host = self.host
        if pkt.hop_limit <= 1 or pkt.dst[:2] == b"\xfe\x80" or pkt.src[:2] == b"\xfe\x80":
            return False
        return host.egress_takes_whole(pkt.dst, pkt.buf, gso_size)

    # --- output -------------------------------------------------------------------------
    def send(self, rt: OutputRoute, next_header: int, payload: bytes | memoryview, *,
             hop_limit: int | None = None, traffic_class: int = 0,
             multicast_loop: bool = False, dont_frag: bool = False,
             path_mtu_discovery: bool = False, offload: bool = False,
             gso_size: int = 0) -> None:
        """Send one datagram (see `HostStack.send_ipv6`); `offload` as `Ipv4Layer.send`."""
        host = self.host
        if hop_limit is None:
            hop_limit = 1 if rt.is_multicast else host.default_hop_limit
        packet: bytes | bytearray = ipv6.build_packet(rt.src, rt.dst, next_header, hop_limit,
                                                      traffic_class, payload)
        if offload and rt.src != ipv6.LOOPBACK:  # ::1 is dropped below, counted
            host.counters["ipv6.out"] += 1
            link = rt.link  # the resolved last hop, as `Ipv4Layer.send_offloaded` uses it
            if link is not None and link.current(host.generation):
                gso = GsoFrame.from_packet(link.header + packet, gso_size, link_len=14)
                counters = link.iface.counters
                counters.tx_frames += gso.gso_segs
                counters.tx_bytes += gso.wire_bytes
                link.transmit(gso)
                return
            host.neighbors.send(rt.iface, rt.next_hop, ETH_IPV6,
                                GsoFrame.from_packet(packet, gso_size))
            rt.link = host.neighbors.link_path(rt.iface, rt.next_hop, ETH_IPV6)
            return
        host.counters["ipv6.out"] += 1
        if host.hooks.get(Hook.OUTPUT) is not None:
            meta = IpMeta(6, rt.src, rt.dst, rt.iface.index, hop_limit, traffic_class, False,
                          rt.is_multicast, memoryview(packet))
            verdict = host.hooks.run(Hook.OUTPUT, meta, packet)
            if not verdict.accept:
                host.counters.drop("ipv6", "firewall_out")
                raise OSError(errno.EPERM, "Operation not permitted")
            if verdict.packet is not None:
                packet = verdict.packet
        iface = rt.iface
        if iface.is_loopback:
            self._postrouting(iface, rt.next_hop, packet, iface.mtu, local=rt)
            return
        if rt.is_multicast and multicast_loop and rt.dst in iface.groups:
            looped = bytes(packet)
            host.driver.defer(lambda: self.receive(iface, memoryview(looped)))
        if rt.src == ipv6.LOOPBACK:
            # Linux sends it (and every receiver drops it, as RFC 4291 2.5.3 asks); the
            # sandbox keeps ::1 inside the host: the call succeeds as on Linux, and the
            # packet is dropped here, counted, before any wire sees it.
            host.counters.drop("ipv6", "loopback_source")
            return
        mtu = host.path_mtu(rt) if path_mtu_discovery else iface.mtu
        if len(packet) > mtu and dont_frag:
            raise OSError(errno.EMSGSIZE, "Message too long")
        self._postrouting(iface, rt.next_hop, packet, mtu, local=rt)

    def _postrouting(self, iface: Interface, next_hop: bytes, packet: bytes | bytearray,
                     mtu: int, *, local: OutputRoute | None = None) -> None:
        """Every packet leaving an interface: POSTROUTING, then loopback or the link
        (fragmenting at the source a local packet over `mtu`)."""
        host = self.host
        if not iface.is_loopback and host.hooks.get(Hook.POSTROUTING) is not None:
            meta = IpMeta(6, bytes(packet[8:24]), bytes(packet[24:40]), iface.index,
                          packet[ipv6.FIELD_HOP_LIMIT], 0, False, packet[24] == 0xFF,
                          memoryview(packet), out_ifindex=iface.index)
            verdict = host.hooks.run(Hook.POSTROUTING, meta, packet)
            if not verdict.accept:
                host.counters.drop("ipv6", "firewall_out")
                return
            if verdict.packet is not None:
                packet = verdict.packet
        data = bytes(packet)
        if iface.is_loopback:
            host.loopback(data)
            return
        if local is not None and len(data) > mtu:
            fragments = fragment_ipv6(data[:ipv6.HEADER_LEN], data[ipv6.FIELD_NEXT_HEADER],
                                      memoryview(data)[ipv6.HEADER_LEN:], mtu,
                                      host.rng.getrandbits(32))
            host.counters["ipv6.fragments_out"] += len(fragments)
        else:
            fragments = [data]
        for fragment in fragments:
            host.neighbors.send(iface, next_hop, ETH_IPV6, fragment)


def next_header_pointer(packet: memoryview) -> int:
    """The offset of the Next Header field naming the upper protocol (for ICMPv6 errors)."""
    parsed = ipv6.Ipv6Packet.parse(packet, partial=True)
    if isinstance(parsed, WireError):
        return ipv6.FIELD_NEXT_HEADER
    return parsed.next_header_offset
