"""One virtual host's network stack: interfaces, routing, ARP/NDP, IPv4/IPv6, ICMP.

Theory of operation
-------------------
A `HostStack` is everything below the socket layer for one host. Frames come
in through `receive_frame(iface, frame)` (called by the NIC the owner wired
to the interface) and leave through `iface.transmit(frame)`. Time comes in
through the `StackDriver`; the stack arms one driver timer for the earliest
of its own deadlines (neighbor retries, reassembly timeouts, multicast
reports) and handles them all in `_on_timer`.

Input path:  Ethernet → ARP | IPv4 | IPv6 → (reassembly) → local delivery to
ICMP/IGMP/MLD/NDP here, or to a transport (`self.transports[proto]`, e.g. the
UDP layer), or forwarding when `forwarding` is on (a router).

Output path: `route_output(dst)` picks the interface, source address and next
hop (longest-prefix match; local addresses route through `lo`); then
`send_ipv4` / `send_ipv6` build the header, fragment if needed, loop
multicast/broadcast back when asked, resolve the next hop's MAC through the
neighbor cache (queueing while it resolves) and frame it. Datagram sockets
(UDP, ping) send with Linux's IP_PMTUDISC_WANT: the path MTU that ICMP
"fragmentation needed" / "packet too big" reported for a destination
(`path_mtus`, a `stack.path_mtu.PathMtuCache`) sizes their fragments, and an
IPv4 datagram that fits it carries DF. A loopback source
never leaves the host: the transports refuse a 127/8 source towards another
host with EINVAL (as Linux's route lookup does), and whatever reaches IP
output with a 127/8 or ::1 source for a non-loopback interface is dropped
and counted (`ipv4.drop.loopback_source`, `ipv6.drop.loopback_source`).
For ::1 that is a deliberate difference: Linux puts such IPv6 packets on
the wire (and every receiver drops them); the sending call succeeds on both.

Every malformed or unwanted packet is counted in `counters` under
`<protocol>.drop.<reason>` and dropped; nothing here raises on input. The
weak host model applies, as on Linux: a packet for any of the host's
addresses is accepted on any interface.

Firewall hooks (INPUT, OUTPUT, FORWARD) are attributes set by the firewall;
when unset nothing is filtered. This module touches no clock, thread, file or
socket of the real host.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .counters import StackCounters
from .driver import StackDriver, TimerHandle
from .fragment import Reassembler, fragment_ipv4, fragment_ipv6
from .interface import (
    Interface,
    InterfaceAddress,
    InterfaceFlags,
    link_local_from_mac,
    mask_address,
    solicited_node,
)
from .multicast import IgmpHost, MldHost
from .neighbor import NeighborCache, Probe
from .path_mtu import PathMtuCache
from .routing import Route, RouteTable
from .socket_memory import HOST_SOCKET_MEMORY, SocketMemory
from .wire import arp as wire_arp
from .wire import ethernet, icmpv4, icmpv6, ipv4, ipv6, ndp
from .wire.errors import WireError

PROTO_ICMP = 1
PROTO_IGMP = 2
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58
PROTO_FRAGMENT = 44
PROTO_HOPOPT = 0

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806

LIMITED_BROADCAST = b"\xff\xff\xff\xff"
ALL_HOSTS_V4 = bytes((224, 0, 0, 1))
ALL_NODES_V6 = ipv6.ALL_NODES
ALL_ROUTERS_V6 = ipv6.ALL_ROUTERS
UNSPECIFIED_V6 = bytes(16)
ANY_V4 = bytes(4)

DEFAULT_TTL = 64

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


def is_multicast(addr: bytes) -> bool:
    return (addr[0] & 0xF0) == 0xE0 if len(addr) == 4 else addr[0] == 0xFF


def is_v4_mapped(addr: bytes) -> bool:
    return len(addr) == 16 and addr[:12] == b"\0" * 10 + b"\xff\xff"


@dataclass(slots=True)
class IpMeta:
    """What transports learn about a received packet besides its payload."""

    version: int
    src: bytes
    dst: bytes
    ifindex: int
    ttl: int
    tos: int
    is_broadcast: bool
    is_multicast: bool
    packet: memoryview  # the whole IP packet (for ICMP errors about it)
    router_alert: bool = False
    out_ifindex: int = 0  # FORWARD hook: the interface the packet will leave by


@dataclass(slots=True)
class OutputRoute:
    """Where a packet to `dst` goes: out `iface`, from `src`, to `next_hop`."""

    dst: bytes
    src: bytes
    iface: Interface
    next_hop: bytes
    is_broadcast: bool
    is_multicast: bool

    @property
    def mtu(self) -> int:
        return self.iface.mtu


class Transport(Protocol):
    """A layer-4 protocol the stack delivers to (UDP now; TCP later)."""

    def receive(self, meta: IpMeta, payload: memoryview) -> bool:
        """Handle a datagram for this host; False means "no socket" (→ ICMP unreachable)."""
        ...

    def icmp_error(self, version: int, err: int, invoking: memoryview, icmp_type: int,
                   icmp_code: int, info: int) -> None:
        """An ICMP error quoted a packet this protocol sent."""
        ...


Hook = Callable[[str, IpMeta | None, bytes | bytearray | memoryview], bool]


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


class HostStack:
    """The network stack of one virtual host."""

    def __init__(self, driver: StackDriver, name: str = "host", *,
                 rng: random.Random | None = None, forwarding: bool = False) -> None:
        self.driver = driver
        self.name = name
        self.rng = rng or random.Random(name)
        self.forwarding = forwarding
        self.counters = StackCounters()
        self.socket_memory = SocketMemory(HOST_SOCKET_MEMORY, name=name)  # all its sockets' queues
        self.interfaces: dict[int, Interface] = {}
        self.routes = RouteTable()
        self.arp: dict[int, NeighborCache[tuple[bytes, bytes]]] = {}
        self.ndp: dict[int, NeighborCache[tuple[bytes, bytes]]] = {}
        self.igmp: dict[int, IgmpHost] = {}
        self.mld: dict[int, MldHost] = {}
        self.reassembly_v4 = Reassembler()
        self.reassembly_v6 = Reassembler(timeout_ns=60_000_000_000)
        self.path_mtus = PathMtuCache()
        self.transports: dict[int, Transport] = {}
        self.icmp_echo_handler: Callable[[IpMeta, memoryview], bool] | None = None
        self.accept_router_advertisements = True
        self.slaac = True
        self.default_ttl = DEFAULT_TTL
        self.default_hop_limit = DEFAULT_TTL
        self._ident = self.rng.randrange(0x10000)
        self._timer: TimerHandle | None = None
        self._timer_at: int | None = None
        self._icmp_global = TokenBucket(1000, 50)
        self._icmp_per_dst: dict[bytes, TokenBucket] = {}
        # Firewall hooks: (hook name, meta, packet) -> accept?
        self.input_hook: Hook | None = None
        self.output_hook: Hook | None = None
        self.forward_hook: Hook | None = None
        self.lo = self._add_loopback()

    # ------------------------------------------------------------------ setup
    def _add_loopback(self) -> Interface:
        lo = Interface(1, "lo", None, 65536,
                       InterfaceFlags.UP | InterfaceFlags.LOOPBACK | InterfaceFlags.RUNNING)
        self.interfaces[1] = lo
        lo.transmit = None
        self.add_address("lo", "127.0.0.1/8")
        self.add_address("lo", "::1/128")
        return lo

    def add_interface(self, name: str, mac: bytes, mtu: int = 1500) -> Interface:
        if any(i.name == name for i in self.interfaces.values()):
            raise ValueError(f"{self.name}: interface {name} already exists")
        if len(mac) != 6:
            raise ValueError("a MAC address is 6 bytes")
        index = max(self.interfaces) + 1
        iface = Interface(index, name, bytes(mac), mtu,
                          InterfaceFlags.UP | InterfaceFlags.BROADCAST | InterfaceFlags.RUNNING
                          | InterfaceFlags.MULTICAST)
        self.interfaces[index] = iface
        self.arp[index] = NeighborCache()
        self.ndp[index] = NeighborCache()
        self.igmp[index] = IgmpHost(self.rng)
        self.mld[index] = MldHost(self.rng)
        self.add_address(name, str(InterfaceAddress(link_local_from_mac(mac), 64)))
        return iface

    def add_point_to_point(self, name: str, mtu: int = 1500) -> Interface:
        """An interface with no link layer (a TUN device): whole IP packets in and out.

        Its `transmit` receives IP packets, not Ethernet frames; packets come in
        through `receive_packet`. No ARP/NDP: every route through it is on-link.
        """
        if any(i.name == name for i in self.interfaces.values()):
            raise ValueError(f"{self.name}: interface {name} already exists")
        index = max(self.interfaces) + 1
        iface = Interface(index, name, None, mtu,
                          InterfaceFlags.UP | InterfaceFlags.RUNNING
                          | InterfaceFlags.POINTOPOINT | InterfaceFlags.MULTICAST)
        self.interfaces[index] = iface
        return iface

    def interface(self, name_or_index: str | int) -> Interface:
        if isinstance(name_or_index, int):
            iface = self.interfaces.get(name_or_index)
        else:
            iface = next((i for i in self.interfaces.values() if i.name == name_or_index), None)
        if iface is None:
            raise KeyError(f"{self.name}: no interface {name_or_index!r}")
        return iface

    def add_address(self, ifname: str, cidr: str | InterfaceAddress) -> InterfaceAddress:
        """Add an address; installs the on-link route and announces it (GARP / unsolicited NA)."""
        iface = self.interface(ifname)
        addr = cidr if isinstance(cidr, InterfaceAddress) else InterfaceAddress.parse(cidr)
        pool = iface.ipv4 if addr.version == 4 else iface.ipv6
        if addr in pool:
            return addr
        pool.append(addr)
        if not iface.is_loopback or addr.prefix_len < len(addr.address) * 8:
            self.routes.add(Route(addr.network, addr.prefix_len, iface.index,
                                  source="connected", preferred_source=addr.address))
        if addr.version == 6 and not iface.is_loopback:
            self.join_group(iface.index, solicited_node(addr.address))
        if not iface.is_loopback:
            self.driver.defer(lambda: self._announce(iface, addr))
        return addr

    def remove_address(self, ifname: str, cidr: str | InterfaceAddress) -> None:
        iface = self.interface(ifname)
        addr = cidr if isinstance(cidr, InterfaceAddress) else InterfaceAddress.parse(cidr)
        pool = iface.ipv4 if addr.version == 4 else iface.ipv6
        if addr in pool:
            pool.remove(addr)
            self.routes.remove_where(ifindex=iface.index, source="connected",
                                     prefix=addr.network, prefix_len=addr.prefix_len)

    def prefer_source(self, ifname: str, source: str) -> None:
        """Make `source` the preferred source of every route through an interface
        (for its address family), as `ip route change ... src SOURCE` does."""
        iface = self.interface(ifname)
        src = InterfaceAddress.parse(source).address
        for route in self.routes.routes(4 if len(src) == 4 else 6):
            if route.ifindex == iface.index:
                self.routes.remove(route)
                self.routes.add(Route(route.prefix, route.prefix_len, route.ifindex,
                                      route.gateway, route.metric, route.source, src))

    def add_route(self, prefix: str, gateway: str | None = None, ifname: str | None = None,
                  metric: int = 0) -> Route:
        """`add_route("0.0.0.0/0", gateway="10.0.0.1")`; the interface is found from the gateway."""
        if prefix == "default":
            prefix = "::/0" if gateway and ":" in gateway else "0.0.0.0/0"
        net = InterfaceAddress.parse(prefix)
        gw = InterfaceAddress.parse(gateway).address if gateway else None
        if ifname is not None:
            ifindex = self.interface(ifname).index
        elif gw is not None:
            on_link = self.routes.lookup(gw)
            if on_link is None or on_link.gateway is not None:
                raise ValueError(f"{self.name}: gateway {gateway} is not on a connected network")
            ifindex = on_link.ifindex
        else:
            raise ValueError("a route needs a gateway or an interface")
        return self.routes.add(Route(net.network, net.prefix_len, ifindex, gw, metric))

    def local_addresses(self, version: int | None = None) -> list[bytes]:
        return [a.address for i in self.interfaces.values() for a in i.addresses(version)]

    def is_local_address(self, addr: bytes) -> bool:
        if len(addr) == 4 and addr[0] == 127:
            return True
        return any(i.has_address(addr) for i in self.interfaces.values())

    # ------------------------------------------------------------------ timers
    def _schedule(self) -> None:
        deadlines = []
        for cache in (*self.arp.values(), *self.ndp.values()):
            d = cache.next_deadline()
            if d is not None:
                deadlines.append(d)
        for membership in (*self.igmp.values(), *self.mld.values()):
            d = membership.next_deadline()
            if d is not None:
                deadlines.append(d)
        for reassembly in (self.reassembly_v4, self.reassembly_v6):
            d = reassembly.next_deadline()
            if d is not None:
                deadlines.append(d)
        if not deadlines:
            return
        when = min(deadlines)
        if self._timer_at is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.driver.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.driver.now_ns()
        for index, cache in self.arp.items():
            probes, failed = cache.on_timer(now)
            iface = self.interfaces[index]
            for probe in probes:
                self._send_arp_probe(iface, probe)
            for _addr, queued in failed:
                for packet, _ in queued:
                    self.counters["arp.unresolved"] += 1
                    self._icmp_error_v4(packet, icmpv4.TYPE_DEST_UNREACHABLE,
                                        icmpv4.UNREACH_HOST)
        for index, cache in self.ndp.items():
            probes, failed = cache.on_timer(now)
            iface = self.interfaces[index]
            for probe in probes:
                self._send_neighbor_solicit(iface, probe.address, probe.mac)
            for _addr, queued in failed:
                for packet, _ in queued:
                    self.counters["ndp.unresolved"] += 1
                    self._icmp_error_v6(packet, icmpv6.TYPE_DEST_UNREACHABLE,
                                        icmpv6.UNREACH_ADDRESS)
        for index, igmp in self.igmp.items():
            for out in igmp.poll(now):
                self._send_igmp(self.interfaces[index], out)
        for index, mld in self.mld.items():
            iface = self.interfaces[index]
            src = iface.link_local_v6() or UNSPECIFIED_V6
            for out in mld.poll(now, src):
                self._send_mld(iface, out, src)
        for expired in self.reassembly_v4.expire(now):
            self.counters["ipv4.reassembly_timeout"] += 1
            if expired.first_fragment is not None:
                self._icmp_error_v4(expired.first_fragment, icmpv4.TYPE_TIME_EXCEEDED,
                                    icmpv4.TIME_EXCEEDED_REASSEMBLY)
        for expired in self.reassembly_v6.expire(now):
            self.counters["ipv6.reassembly_timeout"] += 1
            if expired.first_fragment is not None:
                self._icmp_error_v6(expired.first_fragment, icmpv6.TYPE_TIME_EXCEEDED,
                                    icmpv6.TIME_EXCEEDED_REASSEMBLY)
        self._schedule()

    # ------------------------------------------------------------------ input
    def receive_frame(self, iface: Interface, frame: bytes | memoryview) -> None:
        """An Ethernet frame arrived on iface (from its NIC)."""
        counters = iface.counters
        counters.rx_frames += 1
        counters.rx_bytes += len(frame)
        if not iface.is_up:
            counters.rx_dropped["down"] += 1
            return
        eth = ethernet.EthernetFrame.parse(frame)
        if isinstance(eth, WireError):
            self.counters.drop("ethernet", eth)
            counters.rx_dropped[eth.value] += 1
            return
        dst = eth.dst
        if dst != iface.mac and dst != ethernet.BROADCAST and not (dst[0] & 1):
            counters.rx_dropped["not_for_us"] += 1
            self.counters.drop("ethernet", "not_for_us")
            return
        ethertype = eth.ethertype
        if eth.tags:
            self.counters.drop("ethernet", "vlan")
            return
        if ethertype == ETH_IPV4:
            self._input_ipv4(iface, eth.payload, link_broadcast=dst == ethernet.BROADCAST)
        elif ethertype == ETH_IPV6:
            self._input_ipv6(iface, eth.payload)
        elif ethertype == ETH_ARP:
            self._input_arp(iface, eth.payload)
        else:
            self.counters.drop("ethernet", "unknown_ethertype")

    def receive_packet(self, iface: Interface, packet: bytes | memoryview) -> None:
        """An IP packet arrived on an interface without a link layer (lo, TUN)."""
        iface.counters.rx_frames += 1
        iface.counters.rx_bytes += len(packet)
        if not packet:
            self.counters.drop("ip", "empty")
            return
        version = packet[0] >> 4
        if version == 4:
            self._input_ipv4(iface, memoryview(packet), link_broadcast=False)
        elif version == 6:
            self._input_ipv6(iface, memoryview(packet))
        else:
            self.counters.drop("ip", "bad_version")

    # --- ARP ---------------------------------------------------------------
    def _input_arp(self, iface: Interface, payload: memoryview) -> None:
        pkt = wire_arp.ArpPacket.parse(payload)
        if isinstance(pkt, WireError):
            self.counters.drop("arp", pkt)
            return
        self.counters["arp.in"] += 1
        now = self.driver.now_ns()
        cache = self.arp[iface.index]
        sender_ip, sender_mac, target_ip = pkt.sender_ip, pkt.sender_mac, pkt.target_ip
        if sender_mac == iface.mac:
            return  # our own broadcast reflected back
        if sender_ip == ANY_V4:
            # an address probe (RFC 5227): answer if it's ours, learn nothing
            if iface.has_address(target_ip) and pkt.operation == wire_arp.OP_REQUEST:
                self._send_arp(iface, wire_arp.OP_REPLY, target_ip, sender_mac, sender_ip,
                               sender_mac)
            return
        for_us = iface.has_address(target_ip)
        if pkt.operation == wire_arp.OP_REPLY:
            flushed = cache.confirm(now, sender_ip, sender_mac, solicited=True)
        elif for_us or sender_ip in cache.entries:
            flushed = cache.learn(now, sender_ip, sender_mac)
        else:
            flushed = []
        for packet, _ in flushed:
            self._frame_out(iface, sender_mac, ETH_IPV4, packet)
        if pkt.operation == wire_arp.OP_REQUEST and for_us:
            self._send_arp(iface, wire_arp.OP_REPLY, target_ip, sender_mac, sender_ip, sender_mac)
        self._schedule()

    def _send_arp(self, iface: Interface, oper: int, sender_ip: bytes, target_mac: bytes,
                  target_ip: bytes, eth_dst: bytes) -> None:
        assert iface.mac is not None
        body = wire_arp.ArpRepr(oper, iface.mac, sender_ip, target_mac, target_ip).build()
        self.counters["arp.out"] += 1
        self._frame_out(iface, eth_dst, ETH_ARP, body)

    def _send_arp_probe(self, iface: Interface, probe: Probe) -> None:
        route = self.routes.lookup(probe.address, iface.index)
        src = self._source_for(iface, probe.address, route)
        if src is None:
            return
        if probe.mac is None:
            self._send_arp(iface, wire_arp.OP_REQUEST, src, bytes(6), probe.address,
                           ethernet.BROADCAST)
        else:
            self._send_arp(iface, wire_arp.OP_REQUEST, src, bytes(6), probe.address, probe.mac)

    def _announce(self, iface: Interface, addr: InterfaceAddress) -> None:
        if iface.mac is None or iface.transmit is None or addr not in iface.addresses():
            return
        if addr.version == 4:
            # Gratuitous ARP: a request for our own address (RFC 5227 §3 announcement).
            self._send_arp(iface, wire_arp.OP_REQUEST, addr.address, bytes(6), addr.address,
                           ethernet.BROADCAST)
        else:
            na = ndp.NeighborAdvert(addr.address, router=self.forwarding, solicited=False,
                                    override=True,
                                    options=ndp.NdpOptions(target_lladdr=iface.mac))
            self._send_icmpv6_raw(iface, addr.address, ALL_NODES_V6,
                                  na.build(addr.address, ALL_NODES_V6), hop_limit=255)

    # --- IPv4 --------------------------------------------------------------
    def _input_ipv4(self, iface: Interface, data: memoryview, link_broadcast: bool) -> None:
        pkt = ipv4.Ipv4Packet.parse(data)
        if isinstance(pkt, WireError):
            self.counters.drop("ipv4", pkt)
            return
        self.counters["ipv4.in"] += 1
        dst = pkt.dst
        src = pkt.src
        if is_multicast(src) or src == LIMITED_BROADCAST:
            self.counters.drop("ipv4", "bad_source")
            return
        if src[0] == 127 and not iface.is_loopback:
            self.counters.drop("ipv4", "martian_source")
            return
        local, bcast, mcast = self._ipv4_destination(iface, dst)
        if not local:
            if is_multicast(dst) or link_broadcast or bcast:
                self.counters.drop("ipv4", "not_member" if is_multicast(dst) else "broadcast")
                return
            self._forward_ipv4(iface, pkt)
            return
        if pkt.is_fragment:
            whole = self.reassembly_v4.add_ipv4(self.driver.now_ns(), pkt)
            self._schedule()
            if whole is None:
                return
            if not isinstance(whole, (bytes, bytearray)):
                self.counters.drop("ipv4", f"reassembly_{getattr(whole, 'value', whole)}")
                return
            self.counters["ipv4.reassembled"] += 1
            reparsed = ipv4.Ipv4Packet.parse(whole)
            if isinstance(reparsed, WireError):
                self.counters.drop("ipv4", reparsed)
                return
            pkt = reparsed
        meta = IpMeta(4, src, dst, iface.index, pkt.ttl, pkt.dscp_ecn, bcast, mcast, pkt.buf,
                      pkt.router_alert)
        if self.input_hook is not None and not self.input_hook("input", meta, pkt.buf):
            self.counters.drop("ipv4", "firewall")
            return
        self._deliver(meta, pkt.protocol, pkt.payload)

    def _ipv4_destination(self, iface: Interface, dst: bytes) -> tuple[bool, bool, bool]:
        """(for this host?, broadcast?, multicast?)"""
        if dst == LIMITED_BROADCAST:
            return True, True, False
        if is_multicast(dst):
            member = dst == ALL_HOSTS_V4 or dst in iface.groups or (
                iface.is_loopback and any(dst in i.groups for i in self.interfaces.values()))
            return member, False, True
        for a in iface.ipv4:
            if a.broadcast == dst or (a.prefix_len < 31 and dst == a.network):
                return True, True, False
        if dst[0] == 127:
            return iface.is_loopback or False, False, False
        return self.is_local_address(dst), False, False

    def _deliver(self, meta: IpMeta, protocol: int, payload: memoryview) -> None:
        if protocol == PROTO_ICMP and meta.version == 4:
            self._input_icmpv4(meta, payload)
            return
        if protocol == PROTO_IGMP and meta.version == 4:
            self.counters["igmp.in"] += 1
            self.igmp_engine(meta.ifindex).receive(self.driver.now_ns(), payload, meta.src,
                                                    meta.dst, router_alert=meta.router_alert)
            self._schedule()
            return
        if protocol == PROTO_ICMPV6 and meta.version == 6:
            self._input_icmpv6(meta, payload)
            return
        transport = self.transports.get(protocol)
        if transport is None:
            self.counters.drop(f"ipv{meta.version}", "unknown_protocol")
            if not (meta.is_broadcast or meta.is_multicast):
                if meta.version == 4:
                    self._icmp_error_v4(meta.packet, icmpv4.TYPE_DEST_UNREACHABLE,
                                        icmpv4.UNREACH_PROTOCOL)
                else:
                    self._icmp_error_v6(meta.packet, icmpv6.TYPE_PARAM_PROBLEM,
                                        icmpv6.PARAM_UNRECOGNIZED_NEXT_HEADER,
                                        self._next_header_pointer(meta.packet))
            return
        if not transport.receive(meta, payload):
            if meta.is_broadcast or meta.is_multicast:
                return
            if meta.version == 4:
                self._icmp_error_v4(meta.packet, icmpv4.TYPE_DEST_UNREACHABLE,
                                    icmpv4.UNREACH_PORT)
            else:
                self._icmp_error_v6(meta.packet, icmpv6.TYPE_DEST_UNREACHABLE,
                                    icmpv6.UNREACH_PORT)

    def igmp_engine(self, ifindex: int) -> IgmpHost:
        return self.igmp[ifindex]

    def _forward_ipv4(self, iface: Interface, pkt: ipv4.Ipv4Packet) -> None:
        if not self.forwarding:
            self.counters.drop("ipv4", "not_for_us")
            return
        if pkt.ttl <= 1:
            self.counters.drop("ipv4", "ttl_exceeded")
            self._icmp_error_v4(pkt.buf, icmpv4.TYPE_TIME_EXCEEDED, icmpv4.TIME_EXCEEDED_TTL,
                                from_iface=iface)
            return
        route = self.routes.lookup(pkt.dst)
        if route is None:
            self.counters.drop("ipv4", "no_route")
            self._icmp_error_v4(pkt.buf, icmpv4.TYPE_DEST_UNREACHABLE, icmpv4.UNREACH_NET,
                                from_iface=iface)
            return
        out = self.interfaces[route.ifindex]
        packet = bytearray(pkt.buf)
        packet[ipv4.FIELD_TTL] -= 1
        # incremental checksum update (RFC 1624) for the TTL decrement
        csum = int.from_bytes(packet[10:12], "big") + 0x0100
        csum = (csum & 0xFFFF) + (csum >> 16)
        packet[10:12] = csum.to_bytes(2, "big")
        if self.forward_hook is not None:  # as Linux: FORWARD sees the decremented TTL
            meta = IpMeta(4, pkt.src, pkt.dst, iface.index, pkt.ttl - 1, pkt.dscp_ecn, False,
                          False, memoryview(packet), out_ifindex=out.index)
            if not self.forward_hook("forward", meta, packet):
                self.counters.drop("ipv4", "firewall")
                return
        self.counters["ipv4.forwarded"] += 1
        next_hop = route.gateway or pkt.dst
        self._emit_ipv4(out, next_hop, bytes(packet), pkt.header_len, pkt.dont_frag,
                        from_iface=iface)

    # --- IPv6 --------------------------------------------------------------
    def _input_ipv6(self, iface: Interface, data: memoryview) -> None:
        pkt = ipv6.Ipv6Packet.parse(data)
        if isinstance(pkt, WireError):
            self.counters.drop("ipv6", pkt)
            return
        self.counters["ipv6.in"] += 1
        src, dst = pkt.src, pkt.dst
        if is_multicast(src):
            self.counters.drop("ipv6", "bad_source")
            return
        if src == ipv6.LOOPBACK and not iface.is_loopback:
            self.counters.drop("ipv6", "martian_source")
            return
        mcast = is_multicast(dst)
        if mcast:
            local = (dst == ALL_NODES_V6 or dst in iface.groups
                     or (self.forwarding and dst == ALL_ROUTERS_V6)
                     or (iface.is_loopback and any(dst in i.groups
                                                   for i in self.interfaces.values())))
        else:
            local = self.is_local_address(dst)
        if pkt.hop_by_hop is not None:
            problem = self._check_ipv6_options(pkt)
            if problem:
                return
        if not local:
            if mcast:
                self.counters.drop("ipv6", "not_member")
                return
            self._forward_ipv6(iface, pkt)
            return
        upper = pkt.upper_protocol
        payload = pkt.upper_payload
        frag = pkt.fragment
        if frag is not None:
            whole = self.reassembly_v6.add_ipv6(
                self.driver.now_ns(), src, dst, frag.ident, frag.frag_offset * 8,
                frag.more_frags, frag.next_header, bytes(pkt.buf[:frag.offset]),
                pkt.buf[frag.offset + ipv6.FRAGMENT_HEADER_LEN:])
            self._schedule()
            if whole is None:
                return
            if not isinstance(whole, (bytes, bytearray)):
                self.counters.drop("ipv6", f"reassembly_{getattr(whole, 'value', whole)}")
                return
            self.counters["ipv6.reassembled"] += 1
            reparsed = ipv6.Ipv6Packet.parse(whole)
            if isinstance(reparsed, WireError) or reparsed.fragment is not None:
                self.counters.drop("ipv6", "reassembly_bad")
                return
            pkt = reparsed
            upper = pkt.upper_protocol
            payload = pkt.upper_payload
        meta = IpMeta(6, src, dst, iface.index, pkt.hop_limit, pkt.traffic_class, False, mcast,
                      pkt.buf, pkt.router_alert is not None)
        if self.input_hook is not None and not self.input_hook("input", meta, pkt.buf):
            self.counters.drop("ipv6", "firewall")
            return
        if upper == 59:  # no next header
            return
        self._deliver(meta, upper, payload)

    def _check_ipv6_options(self, pkt: ipv6.Ipv6Packet) -> bool:
        """Apply the action bits of unknown hop-by-hop options; True if the packet is dropped."""
        hbh = pkt.hop_by_hop
        assert hbh is not None
        action = hbh.unrecognized_action
        if action == ipv6.ACTION_SKIP:
            return False
        self.counters.drop("ipv6", "unknown_option")
        if action == ipv6.ACTION_DISCARD_ICMP or (
            action == ipv6.ACTION_DISCARD_ICMP_UNLESS_MULTICAST and not is_multicast(pkt.dst)
        ):
            self._icmp_error_v6(pkt.buf, icmpv6.TYPE_PARAM_PROBLEM,
                                icmpv6.PARAM_UNRECOGNIZED_OPTION, hbh.unrecognized_pointer,
                                allow_multicast=action == ipv6.ACTION_DISCARD_ICMP)
        return True

    def _next_header_pointer(self, packet: memoryview) -> int:
        parsed = ipv6.Ipv6Packet.parse(packet, partial=True)
        if isinstance(parsed, WireError):
            return ipv6.FIELD_NEXT_HEADER
        return parsed.next_header_offset

    def _forward_ipv6(self, iface: Interface, pkt: ipv6.Ipv6Packet) -> None:
        if not self.forwarding:
            self.counters.drop("ipv6", "not_for_us")
            return
        if pkt.dst[:2] == b"\xfe\x80" or pkt.src[:2] == b"\xfe\x80":
            self.counters.drop("ipv6", "link_local_not_forwarded")
            self._icmp_error_v6(pkt.buf, icmpv6.TYPE_DEST_UNREACHABLE,
                                icmpv6.UNREACH_BEYOND_SCOPE, from_iface=iface)
            return
        if pkt.hop_limit <= 1:
            self.counters.drop("ipv6", "hop_limit_exceeded")
            self._icmp_error_v6(pkt.buf, icmpv6.TYPE_TIME_EXCEEDED,
                                icmpv6.TIME_EXCEEDED_HOP_LIMIT, from_iface=iface)
            return
        route = self.routes.lookup(pkt.dst)
        if route is None:
            self.counters.drop("ipv6", "no_route")
            self._icmp_error_v6(pkt.buf, icmpv6.TYPE_DEST_UNREACHABLE, icmpv6.UNREACH_NO_ROUTE,
                                from_iface=iface)
            return
        out = self.interfaces[route.ifindex]
        if len(pkt.buf) > out.mtu:
            self.counters.drop("ipv6", "too_big")
            self._icmp_error_v6(pkt.buf, icmpv6.TYPE_PACKET_TOO_BIG, 0, out.mtu,
                                from_iface=iface)
            return
        packet = bytearray(pkt.buf)
        packet[ipv6.FIELD_HOP_LIMIT] -= 1
        if self.forward_hook is not None:
            meta = IpMeta(6, pkt.src, pkt.dst, iface.index, pkt.hop_limit - 1,
                          pkt.traffic_class, False, False, memoryview(packet),
                          out_ifindex=out.index)
            if not self.forward_hook("forward", meta, packet):
                self.counters.drop("ipv6", "firewall")
                return
        self.counters["ipv6.forwarded"] += 1
        self._emit_ipv6(out, route.gateway or pkt.dst, bytes(packet))

    # --- ICMPv4 -----------------------------------------------------------
    def _input_icmpv4(self, meta: IpMeta, payload: memoryview) -> None:
        msg = icmpv4.Icmpv4Packet.parse(payload)
        if isinstance(msg, WireError):
            self.counters.drop("icmp", msg)
            return
        self.counters["icmp.in"] += 1
        self.counters[f"icmp.in.type{msg.type}"] += 1
        if msg.type == icmpv4.TYPE_ECHO_REQUEST:
            if meta.is_broadcast or meta.is_multicast:
                self.counters.drop("icmp", "broadcast_echo")  # icmp_echo_ignore_broadcasts
                return
            reply = icmpv4.Icmpv4Repr(icmpv4.TYPE_ECHO_REPLY, 0, msg.rest).build(msg.data)
            self.counters["icmp.out.echo_reply"] += 1
            self.send_ip(meta.src, PROTO_ICMP, reply, src=meta.dst)
        elif msg.type == icmpv4.TYPE_ECHO_REPLY:
            if self.icmp_echo_handler is None or not self.icmp_echo_handler(meta, payload):
                self.counters.drop("icmp", "no_socket")
        elif msg.type in (icmpv4.TYPE_DEST_UNREACHABLE, icmpv4.TYPE_TIME_EXCEEDED,
                          icmpv4.TYPE_PARAM_PROBLEM):
            invoking = msg.data
            quoted = ipv4.Ipv4Packet.parse(invoking, verify_checksum=False, partial=True)
            if isinstance(quoted, WireError):
                self.counters.drop("icmp", "bad_invoking_packet")
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

    def _transport_error(self, version: int, protocol: int, err: int, invoking: memoryview,
                         icmp_type: int, icmp_code: int, info: int) -> None:
        transport = self.transports.get(protocol)
        if transport is not None:
            transport.icmp_error(version, err, invoking, icmp_type, icmp_code, info)

    # --- ICMPv6 / NDP / MLD ----------------------------------------------
    def _input_icmpv6(self, meta: IpMeta, payload: memoryview) -> None:
        msg = icmpv6.Icmpv6Packet.parse(payload, meta.src, meta.dst)
        if isinstance(msg, WireError):
            self.counters.drop("icmpv6", msg)
            return
        self.counters["icmpv6.in"] += 1
        self.counters[f"icmpv6.in.type{msg.type}"] += 1
        iface = self.interfaces[meta.ifindex]
        mtype = msg.type
        if mtype == icmpv6.TYPE_ECHO_REQUEST:
            if meta.is_multicast:
                self.counters.drop("icmpv6", "multicast_echo")
                return
            reply = icmpv6.Icmpv6Repr(icmpv6.TYPE_ECHO_REPLY, 0, msg.rest).build(
                msg.body, meta.dst, meta.src)
            self.counters["icmpv6.out.echo_reply"] += 1
            self.send_ip(meta.src, PROTO_ICMPV6, reply, src=meta.dst, prebuilt_checksum=True)
        elif mtype == icmpv6.TYPE_ECHO_REPLY:
            if self.icmp_echo_handler is None or not self.icmp_echo_handler(meta, payload):
                self.counters.drop("icmpv6", "no_socket")
        elif mtype in icmpv6.NDP_TYPES:
            if meta.ttl != 255:
                self.counters.drop("ndp", "hop_limit_not_255")
                return
            self._input_ndp(iface, meta, msg)
        elif mtype in icmpv6.MLD_TYPES:
            self.counters["mld.in"] += 1
            mld = self.mld.get(iface.index)
            if mld is not None:
                mld.receive(self.driver.now_ns(), payload, meta.src, meta.dst,
                            hop_limit=meta.ttl, router_alert=meta.router_alert)
                self._schedule()
        elif mtype in (icmpv6.TYPE_DEST_UNREACHABLE, icmpv6.TYPE_PACKET_TOO_BIG,
                       icmpv6.TYPE_TIME_EXCEEDED, icmpv6.TYPE_PARAM_PROBLEM):
            invoking = msg.body
            quoted = ipv6.Ipv6Packet.parse(invoking, partial=True)
            if isinstance(quoted, WireError):
                self.counters.drop("icmpv6", "bad_invoking_packet")
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

    def _learn_path_mtu(self, src: bytes, dst: bytes, reported: int) -> None:
        """A router reported the path MTU towards dst for a packet we sent from src."""
        proto = "icmp" if len(dst) == 4 else "icmpv6"
        if not self.is_local_address(src) or self.is_local_address(dst):
            self.counters.drop(proto, "pmtu_not_ours")
            return
        try:
            link_mtu = self.route_output(dst).iface.mtu
        except OSError:
            return
        if self.path_mtus.learn(dst, reported, link_mtu, self.driver.now_ns()):
            self.counters[f"{proto}.pmtu_learned"] += 1

    def path_mtu(self, rt: OutputRoute) -> int:
        """The MTU for a datagram along rt: its interface's, or the path MTU learned."""
        if rt.iface.is_loopback or rt.is_multicast or rt.is_broadcast:
            return rt.iface.mtu
        return self.path_mtus.mtu(rt.dst, rt.iface.mtu, self.driver.now_ns())

    def _input_ndp(self, iface: Interface, meta: IpMeta, msg: icmpv6.Icmpv6Packet) -> None:
        parsed = ndp.parse(msg)
        if isinstance(parsed, WireError):
            self.counters.drop("ndp", parsed)
            return
        now = self.driver.now_ns()
        cache = self.ndp.get(iface.index)
        if cache is None or iface.mac is None:
            return
        if isinstance(parsed, ndp.NeighborSolicit):
            if not iface.has_address(parsed.target):
                self.counters.drop("ndp", "not_our_target")
                return
            slla = parsed.options.source_lladdr
            if meta.src == UNSPECIFIED_V6:
                # Duplicate address detection probe: defend our address.
                self._send_neighbor_advert(iface, parsed.target, ALL_NODES_V6, solicited=False)
                return
            if slla is not None:
                for packet, _ in cache.learn(now, meta.src, slla):
                    self._frame_out(iface, slla, ETH_IPV6, packet)
            self._send_neighbor_advert(iface, parsed.target, meta.src, solicited=True)
        elif isinstance(parsed, ndp.NeighborAdvert):
            tlla = parsed.options.target_lladdr
            if tlla is None:
                entry = cache.entries.get(parsed.target)
                tlla = entry.mac if entry is not None else None
            if tlla is None:
                return
            flushed = cache.confirm(now, parsed.target, tlla, solicited=parsed.solicited,
                                    override=parsed.override, is_router=parsed.router)
            for packet, _ in flushed:
                self._frame_out(iface, tlla, ETH_IPV6, packet)
        elif isinstance(parsed, ndp.RouterAdvert):
            self._input_router_advert(iface, meta, parsed)
        elif isinstance(parsed, ndp.RouterSolicit):
            if self.forwarding:
                self.counters["ndp.rs_in"] += 1
        self._schedule()

    def _input_router_advert(self, iface: Interface, meta: IpMeta, ra: ndp.RouterAdvert) -> None:
        if not self.accept_router_advertisements or self.forwarding:
            return
        if meta.src[:2] != b"\xfe\x80":
            self.counters.drop("ndp", "ra_not_link_local")
            return
        self.counters["ndp.ra_in"] += 1
        now = self.driver.now_ns()
        cache = self.ndp[iface.index]
        if ra.options.source_lladdr is not None:
            cache.learn(now, meta.src, ra.options.source_lladdr)
        self.routes.remove_where(ifindex=iface.index, source="ra", prefix_len=0)
        if ra.router_lifetime:
            self.routes.add(Route(UNSPECIFIED_V6, 0, iface.index, meta.src, 1024, "ra"))
        if ra.options.mtu and 1280 <= ra.options.mtu <= iface.mtu:
            iface.mtu = ra.options.mtu
        for prefix in ra.options.prefixes:
            if prefix.prefix[:2] == b"\xfe\x80" or prefix.prefix_len > 128:
                continue
            if prefix.on_link:
                self.routes.remove_where(ifindex=iface.index, source="ra",
                                         prefix=prefix.prefix, prefix_len=prefix.prefix_len)
                if prefix.valid_lifetime:
                    self.routes.add(Route(mask_address(prefix.prefix, prefix.prefix_len),
                                          prefix.prefix_len, iface.index, None, 256, "ra"))
            if (self.slaac and prefix.autonomous and prefix.prefix_len == 64
                    and prefix.valid_lifetime and iface.mac is not None):
                address = prefix.prefix[:8] + link_local_from_mac(iface.mac)[8:]
                if not iface.has_address(address):
                    self.counters["ndp.slaac_address"] += 1
                    self.add_address(iface.name, InterfaceAddress(address, 64))

    def send_router_solicit(self, ifname: str) -> None:
        iface = self.interface(ifname)
        src = iface.link_local_v6() or UNSPECIFIED_V6
        assert iface.mac is not None
        options = ndp.NdpOptions(source_lladdr=iface.mac if src != UNSPECIFIED_V6 else None)
        body = ndp.RouterSolicit(options=options).build(src, ALL_ROUTERS_V6)
        self._send_icmpv6_raw(iface, src, ALL_ROUTERS_V6, body, hop_limit=255)

    def send_router_advert(self, ifname: str, prefixes: list[str], lifetime_s: int = 1800,
                           dst: bytes = ALL_NODES_V6) -> None:
        """A router advertises itself and prefixes (for SLAAC) on one interface."""
        iface = self.interface(ifname)
        src = iface.link_local_v6()
        assert src is not None and iface.mac is not None
        infos = tuple(
            ndp.PrefixInfo(a.prefix_len, a.network)
            for a in (InterfaceAddress.parse(p) for p in prefixes)
        )
        ra = ndp.RouterAdvert(cur_hop_limit=64, router_lifetime=lifetime_s,
                              options=ndp.NdpOptions(source_lladdr=iface.mac, mtu=iface.mtu,
                                                     prefixes=infos))
        self._send_icmpv6_raw(iface, src, dst, ra.build(src, dst), hop_limit=255)

    def _send_neighbor_advert(self, iface: Interface, target: bytes, dst: bytes,
                              solicited: bool) -> None:
        assert iface.mac is not None
        na = ndp.NeighborAdvert(target, router=self.forwarding, solicited=solicited,
                                override=True, options=ndp.NdpOptions(target_lladdr=iface.mac))
        self.counters["ndp.na_out"] += 1
        self._send_icmpv6_raw(iface, target, dst, na.build(target, dst), hop_limit=255)

    def _send_neighbor_solicit(self, iface: Interface, target: bytes, mac: bytes | None) -> None:
        assert iface.mac is not None
        route = self.routes.lookup(target, iface.index)
        src = self._source_for(iface, target, route) or UNSPECIFIED_V6
        dst = target if mac is not None else solicited_node(target)
        ns = ndp.NeighborSolicit(target, ndp.NdpOptions(source_lladdr=iface.mac))
        self.counters["ndp.ns_out"] += 1
        self._send_icmpv6_raw(iface, src, dst, ns.build(src, dst), hop_limit=255, eth_dst=mac)

    def _send_icmpv6_raw(self, iface: Interface, src: bytes, dst: bytes, message: bytes,
                         hop_limit: int, eth_dst: bytes | None = None,
                         hop_by_hop: bytes = b"") -> None:
        """Send a complete ICMPv6 message directly on a link (NDP, MLD)."""
        if iface.transmit is None or iface.mac is None:
            return
        next_header = PROTO_HOPOPT if hop_by_hop else PROTO_ICMPV6
        header = ipv6.Ipv6Repr(src, dst, next_header, hop_limit)
        packet = header.build(hop_by_hop + message)
        if eth_dst is None:
            eth_dst = (ethernet.multicast_mac_v6(dst) if is_multicast(dst) else None)
        if eth_dst is None:
            mac = self.ndp[iface.index].lookup(self.driver.now_ns(), dst)
            if mac is None:
                return
            eth_dst = mac
        if self.output_hook is not None:  # Linux filters ND and MLD at OUTPUT too
            meta = IpMeta(6, src, dst, iface.index, hop_limit, 0, False, is_multicast(dst),
                          memoryview(packet))
            if not self.output_hook("output", meta, packet):
                self.counters.drop("ipv6", "firewall_out")
                return
        self.counters["ipv6.out"] += 1
        self._frame_out(iface, eth_dst, ETH_IPV6, packet)

    # --- multicast membership ----------------------------------------------
    def join_group(self, ifindex: int, group: bytes) -> None:
        """A socket joined `group` on an interface (IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP)."""
        iface = self.interfaces[ifindex]
        if group in iface.groups:
            iface.groups[group] += 1
            return
        iface.groups[group] = 1
        engine = (self.igmp if len(group) == 4 else self.mld).get(ifindex)
        if engine is not None:  # loopback and point-to-point links report to nobody
            engine.join(self.driver.now_ns(), group)
            self._schedule()

    def leave_group(self, ifindex: int, group: bytes) -> bool:
        iface = self.interfaces[ifindex]
        count = iface.groups.get(group)
        if count is None:
            return False
        if count > 1:
            iface.groups[group] = count - 1
            return True
        del iface.groups[group]
        engine = (self.igmp if len(group) == 4 else self.mld).get(ifindex)
        if engine is not None:
            engine.leave(self.driver.now_ns(), group)
            self._schedule()
        return True

    def _send_igmp(self, iface: Interface, out: Any) -> None:
        src = self._source_for(iface, out.dst, None)
        if src is None:
            src = ANY_V4
        header = ipv4.Ipv4Repr(src, out.dst, PROTO_IGMP, ttl=1, ident=self._next_ident(),
                               options=bytes((ipv4.OPT_ROUTER_ALERT, 4, 0, 0)))
        packet = bytearray(header.header_len + len(out.payload))
        offset = header.emit_into(packet, 0, len(out.payload))
        packet[offset:] = out.payload
        if self.output_hook is not None:
            meta = IpMeta(4, src, out.dst, iface.index, 1, 0, False, True, memoryview(packet))
            if not self.output_hook("output", meta, packet):
                self.counters.drop("ipv4", "firewall_out")
                return
        self.counters["igmp.out"] += 1
        self._frame_out(iface, ethernet.multicast_mac_v4(out.dst), ETH_IPV4, bytes(packet))

    def _send_mld(self, iface: Interface, out: Any, src: bytes) -> None:
        # Hop-by-hop header with Router Alert (MLD) and PadN: 8 bytes.
        hbh = bytes((PROTO_ICMPV6, 0, ipv6.OPT_ROUTER_ALERT, 2, 0, 0, ipv6.OPT_PADN, 0))
        self.counters["mld.out"] += 1
        self._send_icmpv6_raw(iface, src, out.dst, out.payload, hop_limit=1,
                              hop_by_hop=hbh)

    # ------------------------------------------------------------------ output
    def _next_ident(self) -> int:
        self._ident = (self._ident + 1) & 0xFFFF
        return self._ident

    def _source_for(self, iface: Interface, dst: bytes, route: Route | None) -> bytes | None:
        if route is not None and route.preferred_source is not None and len(dst) == len(
                route.preferred_source):
            # like Linux's `ip route ... src`: any address of this host may be preferred
            if self.is_local_address(route.preferred_source):
                return route.preferred_source
        pool = iface.ipv4 if len(dst) == 4 else iface.ipv6
        if not pool:
            if len(dst) == 4:
                # Linux picks any host address when the interface has none
                for other in self.interfaces.values():
                    if other.ipv4 and not other.is_loopback:
                        return other.ipv4[0].address
            return None
        if len(dst) == 16:
            want_link_local = dst[:2] == b"\xfe\x80" or (dst[0] == 0xFF and dst[1] & 0xF == 2)
            for a in pool:
                if (a.address[:2] == b"\xfe\x80") == want_link_local and a.contains(dst):
                    return a.address
            for a in pool:
                if (a.address[:2] == b"\xfe\x80") == want_link_local:
                    return a.address
            return pool[0].address
        for a in pool:
            if a.contains(dst):
                return a.address
        return pool[0].address

    def route_output(self, dst: bytes, src: bytes | None = None,
                     ifindex: int | None = None, any_source: bool = False) -> OutputRoute:
        """Choose interface, source and next hop for dst; OSError(ENETUNREACH) if none.

        A source the caller asks for must be one of this host's addresses, as Linux's
        route lookup demands (EINVAL for a multicast or broadcast one, ENETUNREACH for
        a foreign one): a packet never leaves with an address that is not ours --
        except with `any_source` (Linux's FLOWI_FLAG_ANYSRC), which only a firewall's
        reject uses, to answer for the host a router forwards to.
        """
        source: bytes | None
        if src is not None and not any_source and src != ANY_V4 and src != UNSPECIFIED_V6:
            if is_multicast(src) or src == LIMITED_BROADCAST:
                raise OSError(errno.EINVAL, "Invalid argument")
            if not self.is_local_address(src):
                raise OSError(errno.ENETUNREACH, "Network is unreachable")
        mcast = is_multicast(dst)
        if len(dst) == 4 and dst == LIMITED_BROADCAST:
            iface = self.interfaces.get(ifindex) if ifindex else None
            if iface is None:
                route = self.routes.lookup(dst)
                iface = self.interfaces[route.ifindex] if route else next(
                    (i for i in self.interfaces.values() if i.ipv4 and not i.is_loopback), None)
            if iface is None:
                raise OSError(errno.ENETUNREACH, "Network is unreachable")
            source = src or self._source_for(iface, dst, None) or ANY_V4
            return OutputRoute(dst, source, iface, dst, True, False)
        if mcast:
            iface = self.interfaces.get(ifindex) if ifindex else None
            if iface is None:
                route = self.routes.lookup(dst)
                if route is None:
                    iface = next((i for i in self.interfaces.values()
                                  if not i.is_loopback and i.is_up), None)
                else:
                    iface = self.interfaces[route.ifindex]
            if iface is None:
                raise OSError(errno.ENETUNREACH, "Network is unreachable")
            source = src or self._source_for(iface, dst, None)
            if source is None:
                raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
            return OutputRoute(dst, source, iface, dst, False, True)
        if self.is_local_address(dst) or (len(dst) == 4 and dst[0] == 127):
            source = src or dst
            return OutputRoute(dst, source, self.lo, dst, False, False)
        route = self.routes.lookup(dst, ifindex)
        if route is None and ifindex is not None and len(dst) == 16 and dst[:2] == b"\xfe\x80":
            iface = self.interfaces.get(ifindex)
            if iface is not None:
                source = src or self._source_for(iface, dst, None)
                if source is not None:
                    return OutputRoute(dst, source, iface, dst, False, False)
        if route is None:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        iface = self.interfaces[route.ifindex]
        source = src or self._source_for(iface, dst, route)
        if source is None:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        bcast = len(dst) == 4 and any(a.broadcast == dst for a in iface.ipv4)
        return OutputRoute(dst, source, iface, route.gateway or dst, bcast, False)

    def send_ip(self, dst: bytes, protocol: int, payload: bytes, *, src: bytes | None = None,
                ttl: int | None = None, tos: int = 0, dont_frag: bool = False,
                ifindex: int | None = None, multicast_loop: bool = False,
                prebuilt_checksum: bool = True, any_source: bool = False) -> None:
        """Route and send one datagram whose transport header is already built."""
        try:
            rt = self.route_output(dst, src, ifindex, any_source)
        except OSError:
            self.counters.drop(f"ipv{4 if len(dst) == 4 else 6}", "no_route")
            return
        if len(dst) == 4:
            self.send_ipv4(rt, protocol, payload, ttl=ttl, tos=tos, dont_frag=dont_frag,
                           multicast_loop=multicast_loop)
        else:
            self.send_ipv6(rt, protocol, payload, hop_limit=ttl, traffic_class=tos,
                           multicast_loop=multicast_loop)

    def send_ipv4(self, rt: OutputRoute, protocol: int, payload: bytes | memoryview, *,
                  ttl: int | None = None, tos: int = 0, dont_frag: bool = False,
                  multicast_loop: bool = False, options: bytes = b"",
                  path_mtu_discovery: bool = False) -> None:
        """Send one datagram. `path_mtu_discovery` is Linux's IP_PMTUDISC_WANT (datagram
        sockets' default): DF when the datagram fits the path MTU, else fragments sized
        to it, without DF."""
        if ttl is None:
            ttl = 1 if rt.is_multicast else self.default_ttl
        mtu = 0
        if path_mtu_discovery and not rt.is_multicast and not rt.is_broadcast:
            mtu = self.path_mtu(rt)
            dont_frag = 20 + len(options) + len(payload) <= mtu and (
                self.path_mtus.allows_df(rt.dst, self.driver.now_ns()))
        header = ipv4.Ipv4Repr(rt.src, rt.dst, protocol, ttl=ttl, dscp=tos >> 2, ecn=tos & 3,
                               ident=self._next_ident(), dont_frag=dont_frag, options=options)
        hlen = header.header_len
        packet = bytearray(hlen + len(payload))
        header.emit_into(packet, 0, len(payload))
        packet[hlen:] = payload
        self.counters["ipv4.out"] += 1
        if self.output_hook is not None:
            meta = IpMeta(4, rt.src, rt.dst, rt.iface.index, ttl, tos, rt.is_broadcast,
                          rt.is_multicast, memoryview(packet))
            if not self.output_hook("output", meta, packet):
                self.counters.drop("ipv4", "firewall_out")
                raise OSError(errno.EPERM, "Operation not permitted")
        data = bytes(packet)
        if rt.iface.is_loopback:
            self._loopback(data)
            return
        if (rt.is_multicast and multicast_loop and rt.dst in rt.iface.groups) or (
                rt.is_broadcast):
            iface = rt.iface  # looped back as if received on the sending interface
            self.driver.defer(lambda: self._input_ipv4(iface, memoryview(data), False))
        if rt.src[0] == 127:  # the transports refuse this (EINVAL); nothing else may send it
            self.counters.drop("ipv4", "loopback_source")
            return
        self._emit_ipv4(rt.iface, rt.next_hop, data, hlen, dont_frag, mtu=mtu)

    def _emit_ipv4(self, iface: Interface, next_hop: bytes, packet: bytes, header_len: int,
                   dont_frag: bool, from_iface: Interface | None = None, mtu: int = 0) -> None:
        mtu = mtu or iface.mtu
        if len(packet) > mtu:
            if dont_frag:
                self.counters.drop("ipv4", "frag_needed")
                self._icmp_error_v4(memoryview(packet), icmpv4.TYPE_DEST_UNREACHABLE,
                                    icmpv4.UNREACH_FRAG_NEEDED, mtu, from_iface=from_iface)
                return
            fragments = fragment_ipv4(packet[:header_len], memoryview(packet)[header_len:],
                                      mtu)
            self.counters["ipv4.fragments_out"] += len(fragments)
        else:
            fragments = [packet]
        for fragment in fragments:
            self._resolve_and_send(iface, next_hop, ETH_IPV4, fragment)

    def send_ipv6(self, rt: OutputRoute, next_header: int, payload: bytes | memoryview, *,
                  hop_limit: int | None = None, traffic_class: int = 0,
                  multicast_loop: bool = False, dont_frag: bool = False,
                  path_mtu_discovery: bool = False) -> None:
        """Send one datagram; with `path_mtu_discovery` (datagram sockets) fragment at the
        source to the path MTU learned from Packet Too Big, as Linux does."""
        if hop_limit is None:
            hop_limit = 1 if rt.is_multicast else self.default_hop_limit
        header = ipv6.Ipv6Repr(rt.src, rt.dst, next_header, hop_limit, traffic_class)
        packet = header.build(payload)
        self.counters["ipv6.out"] += 1
        if self.output_hook is not None:
            meta = IpMeta(6, rt.src, rt.dst, rt.iface.index, hop_limit, traffic_class, False,
                          rt.is_multicast, memoryview(packet))
            if not self.output_hook("output", meta, packet):
                self.counters.drop("ipv6", "firewall_out")
                raise OSError(errno.EPERM, "Operation not permitted")
        if rt.iface.is_loopback:
            self._loopback(packet)
            return
        if rt.is_multicast and multicast_loop and rt.dst in rt.iface.groups:
            iface = rt.iface
            self.driver.defer(lambda: self._input_ipv6(iface, memoryview(packet)))
        if rt.src == ipv6.LOOPBACK:
            # Linux sends it (and every receiver drops it, as RFC 4291 2.5.3 asks); the
            # sandbox keeps ::1 inside the host: the call succeeds as on Linux, and the
            # packet is dropped here, counted, before any wire sees it.
            self.counters.drop("ipv6", "loopback_source")
            return
        mtu = self.path_mtu(rt) if path_mtu_discovery else rt.iface.mtu
        if len(packet) > mtu:
            if dont_frag:
                raise OSError(errno.EMSGSIZE, "Message too long")
            fragments = fragment_ipv6(packet[:ipv6.HEADER_LEN], next_header,
                                      memoryview(packet)[ipv6.HEADER_LEN:], mtu,
                                      self.rng.getrandbits(32))
            self.counters["ipv6.fragments_out"] += len(fragments)
        else:
            fragments = [packet]
        for fragment in fragments:
            self._emit_ipv6(rt.iface, rt.next_hop, fragment)

    def _emit_ipv6(self, iface: Interface, next_hop: bytes, packet: bytes) -> None:
        self._resolve_and_send(iface, next_hop, ETH_IPV6, packet)

    def _loopback(self, packet: bytes) -> None:
        lo = self.lo
        lo.counters.tx_frames += 1
        lo.counters.tx_bytes += len(packet)
        self.driver.defer(lambda: self.receive_packet(lo, packet))

    def _resolve_and_send(self, iface: Interface, next_hop: bytes, ethertype: int,
                          packet: bytes) -> None:
        if iface.transmit is None:
            iface.counters.tx_dropped["no_link"] += 1
            return
        if iface.mac is None:  # point-to-point (TUN): the packet itself goes out
            iface.counters.tx_frames += 1
            iface.counters.tx_bytes += len(packet)
            iface.transmit(packet)
            return
        if is_multicast(next_hop):
            mac = (ethernet.multicast_mac_v4(next_hop) if len(next_hop) == 4
                   else ethernet.multicast_mac_v6(next_hop))
            self._frame_out(iface, mac, ethertype, packet)
            return
        if len(next_hop) == 4 and (next_hop == LIMITED_BROADCAST or any(
                a.broadcast == next_hop for a in iface.ipv4)):
            self._frame_out(iface, ethernet.BROADCAST, ethertype, packet)
            return
        cache = self.arp[iface.index] if ethertype == ETH_IPV4 else self.ndp[iface.index]
        now = self.driver.now_ns()
        resolved = cache.lookup(now, next_hop)
        if resolved is not None:
            self._frame_out(iface, resolved, ethertype, packet)
            if cache.deadlines_changed:
                cache.deadlines_changed = False
                self._schedule()
            return
        probe = cache.resolve(now, next_hop, (packet, next_hop))
        if probe is not None:
            if ethertype == ETH_IPV4:
                self._send_arp_probe(iface, probe)
            else:
                self._send_neighbor_solicit(iface, probe.address, None)
        self._schedule()

    def _frame_out(self, iface: Interface, dst_mac: bytes, ethertype: int,
                   payload: bytes | memoryview) -> None:
        transmit = iface.transmit
        if transmit is None or iface.mac is None:
            iface.counters.tx_dropped["no_link"] += 1
            return
        frame = dst_mac + iface.mac + ethertype.to_bytes(2, "big") + payload
        iface.counters.tx_frames += 1
        iface.counters.tx_bytes += len(frame)
        transmit(frame)

    # ------------------------------------------------------------------ ICMP errors
    def _icmp_allowed(self, dst: bytes) -> bool:
        now = self.driver.now_ns()
        if not self._icmp_global.take(now):
            return False
        bucket = self._icmp_per_dst.get(dst)
        if bucket is None:
            if len(self._icmp_per_dst) > 4096:
                self._icmp_per_dst.clear()
            bucket = self._icmp_per_dst[dst] = TokenBucket(1000, 50)
        return bucket.take(now)

    def _icmp_error_v4(self, packet: bytes | memoryview, icmp_type: int, code: int,
                       info: int = 0, from_iface: Interface | None = None) -> None:
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
        if not self._icmp_allowed(orig.src):
            self.counters["icmp.ratelimited"] += 1
            return
        quoted = bytes(orig.buf[:min(len(orig.buf), 576 - 28)])
        rest = info if icmp_type == icmpv4.TYPE_PARAM_PROBLEM else (info & 0xFFFF)
        if icmp_type == icmpv4.TYPE_PARAM_PROBLEM:
            rest = info << 24
        message = icmpv4.Icmpv4Repr(icmp_type, code, rest).build(quoted)
        self.counters[f"icmp.out.type{icmp_type}"] += 1
        src = None
        if from_iface is not None:
            src = self._source_for(from_iface, orig.src, None)
        elif self.is_local_address(orig.dst):
            src = orig.dst
        self.send_ip(orig.src, PROTO_ICMP, message, src=src)

    def _icmp_error_v6(self, packet: bytes | memoryview, icmp_type: int, code: int,
                       info: int = 0, from_iface: Interface | None = None,
                       allow_multicast: bool = False) -> None:
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
        if not self._icmp_allowed(orig.src):
            self.counters["icmpv6.ratelimited"] += 1
            return
        quoted = bytes(orig.buf[:icmpv6.MAX_INVOKING_LEN])
        src = None
        if from_iface is not None:
            src = self._source_for(from_iface, orig.src, None)
        elif self.is_local_address(orig.dst):
            src = orig.dst
        try:
            rt = self.route_output(orig.src, src)
        except OSError:
            return
        message = icmpv6.Icmpv6Repr(icmp_type, code, info).build(quoted, rt.src, orig.src)
        self.counters[f"icmpv6.out.type{icmp_type}"] += 1
        self.send_ipv6(rt, PROTO_ICMPV6, message)
