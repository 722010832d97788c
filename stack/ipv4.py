"""The IPv4 layer of a host: input, reassembly, forwarding and output.

`Ipv4Layer` is one part of a `stack.host.HostStack` (which owns it and routes
between its layers), as smoltcp's iface/interface/ipv4.rs is one part of its
interface. Input: header checks, PREROUTING, the routing decision (for this
host, broadcast, multicast member, or to forward), reassembly, INPUT, then
`HostStack.deliver`. Forwarding: TTL, route, FORWARD. Output: the header is
built, OUTPUT runs (local packets), then POSTROUTING for every packet that
leaves, then fragmentation and the neighbour layer. Each netfilter hook
(`stack.hooks`) is called at exactly one place here. Touches only its host's
state; no clock, thread, file or socket of the real host.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .fragment import Reassembler, fragment_ipv4
from .hooks import Hook
from .ip import (
    ALL_HOSTS_V4,
    ETH_IPV4,
    LIMITED_BROADCAST,
    IpMeta,
    OutputRoute,
    is_multicast,
)
from .tcp import TcpLayer
from .wire import icmpv4, ipv4
from .wire.errors import WireError
from .wire.gso import GsoFrame, Ipv4Fields
from .wire.tcp import TcpPacket

if TYPE_CHECKING:
    from .host import HostStack
    from .interface import Interface


# Final: compiled (mypyc), each is a C constant or static, not a lookup in the module's dict
_FRAGMENT_BITS: Final = ipv4.FLAG_MORE_FRAGS | ipv4.FRAG_OFFSET_MASK
_DONT_FRAG: Final = ipv4.FLAG_DONT_FRAG
_TCP: Final = 6  # stack.ip.PROTO_TCP, as a literal
_pack_header: Final[Callable[..., bytes]] = ipv4.HEADER_STRUCT.pack


class Ipv4Layer:
    """IPv4 for one host: see the module docstring."""

    def __init__(self, host: HostStack) -> None:
        self.host = host
        self.reassembly = Reassembler()
        self._ident = host.rng.randrange(0x10000)
        # `_plain_destinations`, and the host's `generation` it was computed for
        self._plain: frozenset[bytes] = frozenset()
        self._plain_generation = -1

    def next_ident(self) -> int:
        self._ident = (self._ident + 1) & 0xFFFF
        return self._ident

    # --- input ------------------------------------------------------------------------
    def receive(self, iface: Interface, data: memoryview, link_broadcast: bool,
                csum_trusted: bool = False, gso_size: int = 0,
                parsed: ipv4.Ipv4Packet | None = None) -> None:
        """One IPv4 packet from `iface`. `gso_size`: it is a TCP super-segment of
        `gso_size`-byte segments, taken whole (only with `HostStack.takes_whole` or
        `forwards_whole`: no hook looks at it). `parsed`: its view, already known (a
        super-frame a vnet stack built, `GsoFrame.ipv4_fields`), instead of parsing."""
        host = self.host
        counters = host.counters
        if parsed is None:
            pkt = ipv4.Ipv4Packet.parse(data)
            if isinstance(pkt, WireError):
                counters.drop("ipv4", pkt)
                return
        else:
            pkt = parsed
        counters["ipv4.in"] += 1
        src = pkt.src
        if src[0] & 0xF0 == 0xE0 or src == LIMITED_BROADCAST:  # multicast or broadcast
            counters.drop("ipv4", "bad_source")
            return
        if src[0] == 127 and not iface.is_loopback:
            counters.drop("ipv4", "martian_source")
            return
        hooks = host.hooks
        if hooks.active and hooks.get(Hook.PREROUTING) is not None:
            arrived = hooks.run_on_arrival(Hook.PREROUTING, IpMeta(
                4, src, pkt.dst, iface.index, pkt.ttl, pkt.dscp_ecn, link_broadcast,
                is_multicast(pkt.dst), pkt.buf, pkt.router_alert), pkt.buf,
                pkt, ipv4.Ipv4Packet.parse, counters, "ipv4")
            if arrived is None:
                return
            pkt = arrived
        dst = pkt.dst
        multicast = dst[0] & 0xF0 == 0xE0
        if multicast and host.multicast_routes is not None:
            host.multicast_routes.forward(iface, pkt.buf, dst)  # stack.multicast_routing
        local, bcast, mcast = self._destination(iface, dst)
        if not local:
            if multicast or link_broadcast or bcast:
                counters.drop("ipv4", "not_member" if multicast else "broadcast")
                return
            self.forward(iface, pkt, csum_trusted, gso_size)
            return
        if pkt.flags_frag & _FRAGMENT_BITS:
            whole = self.reassembly.add_ipv4(host.driver.now_ns(), pkt)
            host.schedule()
            if whole is None:
                return
            if not isinstance(whole, (bytes, bytearray)):
                counters.drop("ipv4", f"reassembly_{getattr(whole, 'value', whole)}")
                return
            counters["ipv4.reassembled"] += 1
            reparsed = ipv4.Ipv4Packet.parse(whole)
            if isinstance(reparsed, WireError):
                counters.drop("ipv4", reparsed)
                return
            pkt = reparsed
        buf = pkt.buf
        header_len = pkt.header_len
        meta = IpMeta(4, pkt.src, dst, iface.index, pkt.ttl, pkt.dscp_ecn, bcast, mcast, buf,
                      header_len > 20 and pkt.router_alert, 0, csum_trusted)
        if hooks.active and hooks.get(Hook.INPUT) is not None:
            arrived = hooks.run_on_arrival(Hook.INPUT, meta, buf, pkt,
                                           ipv4.Ipv4Packet.parse, counters, "ipv4")
            if arrived is None:
                return
            pkt = arrived
            meta.packet = buf = pkt.buf
            header_len = pkt.header_len
        host.deliver(meta, pkt.protocol, buf[header_len:])

    def receive_built(self, iface: Interface, buf: memoryview, fields: Ipv4Fields,
                      link_broadcast: bool, gso_size: int,
                      tcp_header: TcpPacket | None = None) -> None:
        """`receive` for a packet a vnet stack built, taken whole from a super-frame
        (`GsoFrame.ipv4_fields` are its header's values; `buf` is the packet). Only
        where `HostStack.receive_frame` takes it whole, so no PREROUTING or INPUT hook
        looks at it. A unicast packet for one of this host's addresses (not a
        fragment, not a subnet broadcast) is delivered here, with exactly what
        `receive` would deliver; any other takes `receive`. `tcp_header`: a TCP
        segment's header as parsing would read it (`GsoFrame.tcp_header`, taken from
        the frame), which `TcpLayer.receive` then uses instead of parsing (only here:
        `receive` parses)."""
        _hlen, tos, _total, _ident, flags_frag, ttl, protocol, _csum, src, dst = fields
        host = self.host
        plain = (self._plain if self._plain_generation == host.generation
                 else self._plain_destinations())
        if (dst not in plain or _hlen != 20 or flags_frag & _FRAGMENT_BITS
                or src[0] & 0xF0 == 0xE0 or src[0] == 127 or src == LIMITED_BROADCAST):
            self.receive(iface, buf, link_broadcast, True, gso_size,
                         ipv4.Ipv4Packet(buf, *fields))
            return
        host.counters["ipv4.in"] += 1
        meta = IpMeta(4, src, dst, iface.index, ttl, tos, False, False, buf, False, 0, True)
        if protocol == _TCP:  # `HostStack.deliver`'s TCP case, without its other cases
            tcp = host.transports.get(_TCP)
            if tcp is not None:  # TCP answers every segment itself (True)
                if tcp_header is not None and type(tcp) is TcpLayer:
                    tcp.receive(meta, buf[20:], tcp_header)
                else:
                    tcp.receive(meta, buf[20:])
                return
        host.deliver(meta, protocol, buf[20:])

    def _plain_destinations(self) -> frozenset[bytes]:
        """This host's IPv4 addresses a packet is delivered to as plain unicast, whatever
        interface it arrives on (`receive_built`'s fast case): neither loopback, multicast
        nor broadcast, nor any interface's broadcast or network address. Kept while the
        host's `generation` (its interfaces and addresses) is what it was."""
        host = self.host
        special = {LIMITED_BROADCAST}
        for iface in host.interfaces.values():
            for a in iface.ipv4:
                if a.broadcast is not None:
                    special.add(a.broadcast)
                if a.prefix_len < 31:
                    special.add(a.network)
        self._plain = frozenset(
            addr for addr in host._local_addresses
            if len(addr) == 4 and addr[0] != 127 and addr[0] & 0xF0 != 0xE0
            and addr not in special)
        self._plain_generation = host.generation
        return self._plain

    def _destination(self, iface: Interface, dst: bytes) -> tuple[bool, bool, bool]:
        """(for this host?, broadcast?, multicast?)"""
        if dst == LIMITED_BROADCAST:
            return True, True, False
        if dst[0] & 0xF0 == 0xE0:  # multicast
            member = dst == ALL_HOSTS_V4 or dst in iface.groups or (
                iface.is_loopback and any(dst in i.groups
                                          for i in self.host.interfaces.values()))
            return member, False, True
        for a in iface.ipv4:
            if a.broadcast == dst or (a.prefix_len < 31 and dst == a.network):
                return True, True, False
        if dst[0] == 127:
            return iface.is_loopback or False, False, False
        return self.host.is_local_address(dst), False, False

    # --- forwarding ---------------------------------------------------------------------
    def forward(self, iface: Interface, pkt: ipv4.Ipv4Packet, whole: bool = False,
                gso_size: int = 0) -> None:
        """Route a packet on (RFC 1812).

        `whole`: the packet came as a super-frame (its transport checksum possibly
        not computed; a super-segment of `gso_size`-byte segments if `gso_size`). It
        goes on as one where the egress offloads and its wire packets fit the egress
        MTU; otherwise it is cut into its wire packets (checksums computed), each
        forwarded (and refused) as any packet."""
        host = self.host
        if not host.forwarding:
            host.counters.drop("ipv4", "not_for_us")
            return
        if whole and not self._forwards_whole(pkt, gso_size):
            for wire in GsoFrame.from_packet(pkt.buf, gso_size).materialise():
                piece = ipv4.Ipv4Packet.parse(wire)
                if not isinstance(piece, WireError):
                    self.forward(iface, piece)
            return
        icmp = host.icmp
        if pkt.ttl <= 1:
            host.counters.drop("ipv4", "ttl_exceeded")
            icmp.error_v4(pkt.buf, icmpv4.TYPE_TIME_EXCEEDED, icmpv4.TIME_EXCEEDED_TTL,
                          from_iface=iface)
            return
        route = host.routes.lookup(pkt.dst)
        if route is None:
            host.counters.drop("ipv4", "no_route")
            icmp.error_v4(pkt.buf, icmpv4.TYPE_DEST_UNREACHABLE, icmpv4.UNREACH_NET,
                          from_iface=iface)
            return
        out = host.interfaces[route.ifindex]
        packet = bytearray(pkt.buf)
        packet[ipv4.FIELD_TTL] -= 1
        # incremental checksum update (RFC 1624) for the TTL decrement
        csum = int.from_bytes(packet[10:12], "big") + 0x0100
        csum = (csum & 0xFFFF) + (csum >> 16)
        packet[10:12] = csum.to_bytes(2, "big")
        if host.hooks.get(Hook.FORWARD) is not None:  # as Linux: it sees the decremented TTL
            meta = IpMeta(4, pkt.src, pkt.dst, iface.index, pkt.ttl - 1, pkt.dscp_ecn, False,
                          False, memoryview(packet), out_ifindex=out.index)
            verdict = host.hooks.run(Hook.FORWARD, meta, packet)
            if not verdict.accept:
                host.counters.drop("ipv4", "firewall")
                return
            if verdict.packet is not None:
                packet = bytearray(verdict.packet)
        host.counters["ipv4.forwarded"] += 1
        next_hop = route.gateway or pkt.dst
        if whole:
            frame = GsoFrame.from_packet(bytes(packet), gso_size)
            host.counters["ipv4.forwarded"] += frame.gso_segs - 1
            host.neighbors.send(out, next_hop, ETH_IPV4, frame)
            return
        self._postrouting(out, next_hop, packet, pkt.dont_frag, from_iface=iface)

    def _forwards_whole(self, pkt: ipv4.Ipv4Packet, gso_size: int) -> bool:
        """May this super-segment leave whole: TTL left, a route, an egress that offloads
        and whose MTU each of its wire packets fits."""
        host = self.host
        return pkt.ttl > 1 and host.egress_takes_whole(pkt.dst, pkt.buf, gso_size)

    # --- output -------------------------------------------------------------------------
    def send(self, rt: OutputRoute, protocol: int, payload: bytes | memoryview, *,
             ttl: int | None = None, tos: int = 0, dont_frag: bool = False,
             multicast_loop: bool = False, options: bytes = b"",
             path_mtu_discovery: bool = False, offload: bool = False,
             gso_size: int = 0) -> None:
        """Send one datagram (see `HostStack.send_ipv4`).

        `offload`: the transport checksum is not computed and the packet leaves as one
        `GsoFrame` (cut into `gso_size`-byte segments on a wire that is observed); only
        for a unicast route whose interface `HostStack.offload_output` allows, and a
        packet whose wire segments fit the path MTU (no fragmentation)."""
        host = self.host
        if offload:
            if path_mtu_discovery:  # the caller made sure it fits the path MTU
                dont_frag = host.path_mtus.allows_df(rt.dst, host.driver.now_ns())
            self.send_offloaded(rt, protocol, payload, ttl, tos, dont_frag, gso_size)
            return
        if ttl is None:
            ttl = 1 if rt.is_multicast else host.default_ttl
        mtu = 0
        if path_mtu_discovery and not rt.is_multicast and not rt.is_broadcast:
            mtu = host.path_mtu(rt)
            dont_frag = 20 + len(options) + len(payload) <= mtu and (
                host.path_mtus.allows_df(rt.dst, host.driver.now_ns()))
        header = ipv4.Ipv4Repr(rt.src, rt.dst, protocol, ttl=ttl, dscp=tos >> 2, ecn=tos & 3,
                               ident=self.next_ident(), dont_frag=dont_frag, options=options)
        hlen = header.header_len
        packet = bytearray(hlen + len(payload))
        header.emit_into(packet, 0, len(payload))
        packet[hlen:] = payload
        host.counters["ipv4.out"] += 1
        if host.hooks.get(Hook.OUTPUT) is not None:
            meta = IpMeta(4, rt.src, rt.dst, rt.iface.index, ttl, tos, rt.is_broadcast,
                          rt.is_multicast, memoryview(packet))
            verdict = host.hooks.run(Hook.OUTPUT, meta, packet)
            if not verdict.accept:
                host.counters.drop("ipv4", "firewall_out")
                raise OSError(errno.EPERM, "Operation not permitted")
            if verdict.packet is not None:
                packet = bytearray(verdict.packet)
        self._postrouting(rt.iface, rt.next_hop, packet, dont_frag, mtu=mtu, local=rt,
                          multicast_loop=multicast_loop)

    def send_offloaded(self, rt: OutputRoute, protocol: int, payload: bytes | memoryview,
                       ttl: int | None, tos: int, dont_frag: bool, gso_size: int,
                       tcp_header: TcpPacket | None = None) -> None:
        """A super-packet: one IPv4 header for it all, IDs as a TSO NIC numbers them.

        What `send(..., offload=True)` does once it has settled `dont_frag`, callable
        directly by a transport that already knows the route offloads
        (`HostStack.offload_output`) and its packets fit the path MTU.

        While the route's resolved last hop (`rt.link`, a `stack.neighbor.LinkPath`) is
        current, the frame is built whole here and handed to the interface, as
        `NeighborLayer.send` would frame it; otherwise it goes through `send`, and the
        last hop is cached again from what that resolved.

        `tcp_header`: for a TCP segment, its header as its receiver's parse would read
        it (`stack.wire.tcp.built_header`), carried on the frame (`GsoFrame.tcp_header`)."""
        host = self.host
        src = rt.src
        if src[0] == 127:  # as `_postrouting`: a loopback source never leaves the host
            host.counters["ipv4.out"] += 1
            host.counters.drop("ipv4", "loopback_source")
            return
        if ttl is None:
            ttl = host.default_ttl
        self._ident = ident = (self._ident + 1) & 0xFFFF
        dst = rt.dst
        total = 20 + len(payload)
        if total > 0xFFFF:
            raise ValueError(f"IPv4 total length {total} exceeds 65535")
        flags = _DONT_FRAG if dont_frag else 0
        # ipv4.header_checksum and ipv4.pack_header, inline (the send hot path); the two
        # addresses as one 64-bit number, congruent to their sum modulo 0xFFFF (as
        # 2**32 is to 1), so the folded sum is the same
        partial = ((0x4500 + tos) + total + ident + flags + (ttl << 8) + protocol
                   + int.from_bytes(src + dst, "big"))
        folded = partial % 0xFFFF
        csum = 0 if folded == 0 and partial else 0xFFFF - folded
        fields = (20, tos, total, ident, flags, ttl, protocol, csum, src, dst)
        link = rt.link
        if link is not None and link.current(host.generation):
            # GsoFrame.from_ipv4_header, inline: 14 + 20 header bytes, then TCP or UDP
            if tcp_header is not None:
                header_len = 34 + tcp_header.data_offset
            else:
                header_len = 34 + (payload[12] >> 4) * 4 if protocol == _TCP else 42
            cut = total + 14 - header_len  # the payload the segments share
            data = link.header + _pack_header(0x45, tos, total, ident, flags, ttl, protocol,
                                              csum, src, dst) + payload
            if gso_size == 0 or cut <= gso_size:
                segs = 1
                gso = GsoFrame(data, 14, 34, header_len, 0, 1, True, fields, tcp_header)
            else:
                segs = -(-cut // gso_size)
                gso = GsoFrame(data, 14, 34, header_len, gso_size, segs, True, fields,
                               tcp_header)
                # the segments take the next IDs (Linux's ip_select_ident_segs)
                self._ident = (ident + segs - 1) & 0xFFFF
            host.counters["ipv4.out"] += 1
            counters = link.iface.counters
            counters.tx_frames += segs
            counters.tx_bytes += gso.wire_bytes
            link.transmit(gso)
            return
        head = ipv4.pack_header(tos, total, ident, flags, ttl, protocol, csum, src, dst)
        gso = GsoFrame.from_packet(head + payload, gso_size)
        gso.ipv4_fields = fields
        gso.tcp_header = tcp_header
        if gso.gso_segs > 1:
            self._ident = (ident + gso.gso_segs - 1) & 0xFFFF
        host.counters["ipv4.out"] += 1
        host.neighbors.send(rt.iface, rt.next_hop, ETH_IPV4, gso)
        rt.link = host.neighbors.link_path(rt.iface, rt.next_hop, ETH_IPV4)

    def _postrouting(self, iface: Interface, next_hop: bytes, packet: bytearray,
                     dont_frag: bool, *, from_iface: Interface | None = None, mtu: int = 0,
                     local: OutputRoute | None = None, multicast_loop: bool = False) -> None:
        """Every packet leaving an interface: POSTROUTING, then loopback or the link.

        `local` is the route of a packet this host generated (None: forwarded)."""
        host = self.host
        if not iface.is_loopback and host.hooks.get(Hook.POSTROUTING) is not None:
            meta = IpMeta(4, bytes(packet[12:16]), bytes(packet[16:20]), iface.index,
                          packet[ipv4.FIELD_TTL], packet[1], False,
                          is_multicast(bytes(packet[16:20])), memoryview(packet),
                          out_ifindex=iface.index)
            verdict = host.hooks.run(Hook.POSTROUTING, meta, packet)
            if not verdict.accept:
                host.counters.drop("ipv4", "firewall_out")
                return
            if verdict.packet is not None:
                packet = bytearray(verdict.packet)
        data = bytes(packet)
        header_len = (data[0] & 0x0F) * 4
        if local is not None:
            if iface.is_loopback:
                host.loopback(data)
                return
            if (local.is_multicast and multicast_loop and local.dst in iface.groups) or (
                    local.is_broadcast):
                # looped back as if received on the sending interface
                host.driver.defer(lambda: self.receive(iface, memoryview(data), False))
            if data[12] == 127:  # the transports refuse this (EINVAL); nothing else may send it
                host.counters.drop("ipv4", "loopback_source")
                return
        self._emit(iface, next_hop, data, header_len, dont_frag, from_iface, mtu)

    def _emit(self, iface: Interface, next_hop: bytes, packet: bytes, header_len: int,
              dont_frag: bool, from_iface: Interface | None = None, mtu: int = 0) -> None:
        host = self.host
        mtu = mtu or iface.mtu
        if len(packet) > mtu:
            if dont_frag:
                host.counters.drop("ipv4", "frag_needed")
                host.icmp.error_v4(memoryview(packet), icmpv4.TYPE_DEST_UNREACHABLE,
                                   icmpv4.UNREACH_FRAG_NEEDED, mtu, from_iface=from_iface)
                return
            fragments = fragment_ipv4(packet[:header_len], memoryview(packet)[header_len:],
                                      mtu)
            host.counters["ipv4.fragments_out"] += len(fragments)
        else:
            fragments = [packet]
        for fragment in fragments:
            host.neighbors.send(iface, next_hop, ETH_IPV4, fragment)
