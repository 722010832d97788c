"""One virtual host's network stack: the layers below the sockets, and how they meet.

Theory of operation
-------------------
A `HostStack` owns one object per layer, as smoltcp's iface/interface/ is one
interface implemented across per-protocol files, and routes between them:

- `stack.neighbor.NeighborLayer` (`neighbors`): ARP, NDP's NS/NA, next-hop
  resolution and framing onto the link;
- `stack.ipv4.Ipv4Layer` / `stack.ipv6.Ipv6Layer` (`ipv4`, `ipv6`): input,
  reassembly, forwarding (`forwarding` on: a router) and output, with the
  netfilter hooks of `stack.hooks` (`hooks`, a `HookTable`);
- `stack.icmp.IcmpLayer` (`icmp`): echo, errors in (→ errno for the transports,
  path MTU) and out (rate limited);
- `stack.membership.MembershipLayer` (`membership`): IGMP / MLD group state;
- `stack.router_advert.RouterAdvertLayer` (`router_adverts`): RS / RA, SLAAC,
  RDNSS into `dns_servers`, and a router's own RAs (`stack.ra_sender`);
- optional, once configured: `stack.dhcp.DhcpLayer` (`dhcp_handler`, DHCPv4 client
  and server on UDP 67/68) and `stack.multicast_routing.MulticastRoutes`
  (`multicast_routes`, static multicast forwarding);
- the transports (`transports[protocol]`: `stack.udp.UdpLayer`,
  `stack.tcp.TcpLayer`), and the ping sockets (`stack.ping`), which
  `stack.build.build_host` assembles with the stack.

Frames come in through `receive_frame(iface, frame)` (called by the NIC the
owner wired to the interface) and leave through `iface.transmit(frame)`.

Super-frames (`stack.wire.gso`): on an interface whose `offload` is set, TCP
hands the link super-segments of up to 64 KiB with the checksum not
computed, and UDP sends its datagrams checksum-partial; both are `GsoFrame`s.
One arriving (through `receive_frame`, or `receive_packet` on a link without
link layer) is taken whole, its transport checksum trusted (`IpMeta.
csum_trusted`), unless this host would observe or change it on the way in:
a host that forwards, or has PREROUTING or INPUT hooks (a firewall, NAT),
materialises it and receives each real frame. Output is built as super-frames
only where no OUTPUT or POSTROUTING hook runs (`offload_output`).

Per-flow fast paths (each checked before use, each standing for exactly what
the general path would do): `route_output` keeps its answers while the
interfaces, addresses and routes are unchanged (`generation`,
`routes.generation`), so the flows to one destination share one
`OutputRoute`; on it the IP layers cache the resolved last hop
(`stack.neighbor.LinkPath`) and frame offloaded output from it directly;
a UDP socket keeps its flow (`stack.udp.UdpFlow`). A super-frame another vnet
stack built carries its IPv4 header's values (`GsoFrame.ipv4_fields`): taken
whole, it is received without parsing Ethernet and IPv4 again (`receive_frame`,
then `Ipv4Layer.receive_built`), and a TCP segment's header too
(`GsoFrame.tcp_header`, which `TcpLayer.receive` takes instead of parsing);
anything else is parsed and checked as always.

Time comes in through the `StackDriver`; the stack arms one driver timer for the
earliest of its layers' deadlines (neighbour retries, reassembly timeouts,
multicast reports) and hands each layer its turn in `_on_timer`.

Input path:  Ethernet → ARP | IPv4 | IPv6 → (reassembly) → `deliver`: to
ICMP/IGMP/MLD/NDP, or to a transport, or forwarding when `forwarding` is on.

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
Control messages sent straight onto a link (ND, MLD, IGMP) bypass routing
through `output_control`, which runs OUTPUT and POSTROUTING for them.

Every malformed or unwanted packet is counted in `counters` under
`<protocol>.drop.<reason>` and dropped; nothing here raises on input. The
weak host model applies, as on Linux: a packet for any of the host's
addresses is accepted on any interface.

A firewall registers at `hooks`; with nothing registered nothing is
filtered.

Configuration changes (an interface added or removed, brought up or down,
its MTU or MAC changed; an address added or removed; a route installed or withdrawn)
go through this class's methods, which tell every function in
`config_listeners` what changed (a `ConfigChange`) after the change: that is
how rtnetlink sockets learn of changes from any source. None of this is on
the per-packet path. As on Linux, a down interface has no routes: bringing
it down withdraws every route through it (static ones are gone for good),
bringing it up installs the connected routes of its addresses again.

This module touches no clock, thread, file or socket of the real host.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .counters import StackCounters
from .driver import StackDriver, TimerHandle
from .hooks import Hook, HookTable
from .icmp import ICMPV4_UNREACH_ERRNO, ICMPV6_UNREACH_ERRNO, IcmpLayer, TokenBucket
from .interface import (
    IFF_RUNNING,
    IFF_UP,
    Interface,
    InterfaceAddress,
    InterfaceFlags,
    link_local_from_mac,
    mask_address,
    solicited_node,
)
from .ip import (
    ALL_HOSTS_V4,
    ALL_NODES_V6,
    ALL_ROUTERS_V6,
    ANY_V4,
    DEFAULT_TTL,
    ETH_ARP,
    ETH_IPV4,
    ETH_IPV6,
    LIMITED_BROADCAST,
    PROTO_FRAGMENT,
    PROTO_HOPOPT,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_IGMP,
    PROTO_TCP,
    PROTO_UDP,
    UNSPECIFIED_V6,
    IpMeta,
    OutputRoute,
    Transport,
    is_multicast,
    is_v4_mapped,
)
from .ipv4 import Ipv4Layer
from .ipv6 import Ipv6Layer, next_header_pointer
from .membership import MembershipLayer
from .multicast import IgmpHost, MldHost
from .multicast_routing import MulticastRoutes
from .neighbor import NeighborCache, NeighborLayer, PendingPacket
from .path_mtu import PathMtuCache
from .router_advert import RouterAdvertLayer
from .routing import Route, RouteTable
from .socket_memory import HOST_SOCKET_MEMORY, SocketMemory
from .wire import ethernet, icmpv4, icmpv6, ipv6
from .wire.errors import WireError
from .wire.gso import GsoFrame

if TYPE_CHECKING:
    from .fragment import Reassembler

__all__ = [
    "ALL_HOSTS_V4", "ALL_NODES_V6", "ALL_ROUTERS_V6", "ANY_V4", "DEFAULT_TTL", "ETH_ARP",
    "ETH_IPV4", "ETH_IPV6", "ICMPV4_UNREACH_ERRNO", "ICMPV6_UNREACH_ERRNO",
    "LIMITED_BROADCAST", "PROTO_FRAGMENT", "PROTO_HOPOPT", "PROTO_ICMP", "PROTO_ICMPV6",
    "PROTO_IGMP", "PROTO_TCP", "PROTO_UDP", "UNSPECIFIED_V6", "HostStack",
    "IpMeta", "OutputRoute", "TokenBucket", "Transport", "is_multicast",
    "is_v4_mapped",
]


#: At most this many `route_output` answers are kept (a flood of destinations starts over).
_ROUTES_OUT_MAX = 1024


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One change of a host's configuration, as `HostStack.config_listeners` hear it.

    kind: "link" (added, up/down, MTU or MAC changed), "dellink" (removed),
    "newaddr", "deladdr" (`address` set), "newroute", "delroute" (`route` set).
    """

    kind: str
    iface: Interface
    address: InterfaceAddress | None = None
    route: Route | None = None


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
        self.path_mtus = PathMtuCache()
        self.transports: dict[int, Transport] = {}
        self.default_ttl = DEFAULT_TTL
        self.default_hop_limit = DEFAULT_TTL
        #: The netfilter hooks (`stack.hooks`): a firewall registers its functions here.
        self.hooks = HookTable()
        self.neighbors = NeighborLayer(self)
        self.ipv4 = Ipv4Layer(self)
        self.ipv6 = Ipv6Layer(self)
        self.icmp = IcmpLayer(self)
        self.membership = MembershipLayer(self)
        self.router_adverts = RouterAdvertLayer(self)
        #: The resolvers this host uses (packed addresses), as resolv.conf's nameservers.
        self.dns_servers: list[bytes] = []
        #: `stack.dhcp.DhcpLayer.receive` once a DHCP client or server runs here.
        self.dhcp_handler: Callable[[IpMeta, memoryview], bool] | None = None
        #: Static multicast routes (`stack.multicast_routing`), once one is added.
        self.multicast_routes: MulticastRoutes | None = None
        self._timer: TimerHandle | None = None
        self._timer_at: int | None = None
        #: Every address of every interface (kept by add_address / remove_address).
        self._local_addresses: set[bytes] = set()
        #: Bumped whenever interfaces or their addresses change (with `routes.generation`,
        #: what per-flow caches such as UDP's compare against).
        self.generation = 0
        #: Told of every `ConfigChange` after it happened (rtnetlink notifications).
        self.config_listeners: list[Callable[[ConfigChange], None]] = []
        #: Told of every packet this host sends through `lo`, before it is queued
        #: (a capture of ``lo``: vnet/link/loopback_tap.py).
        self.loopback_observers: list[Callable[[bytes], None]] = []
        #: State that the code driving this stack keeps per host, by owner (the netlink
        #: port table, route origins); the stack never reads it. An attribute rather than
        #: a weak-keyed table elsewhere: a mypyc-compiled HostStack takes no weak
        #: references and no attributes it does not declare.
        self.annex: dict[str, object] = {}
        #: `route_output`'s answers, while `generation` and the routes' are what they were.
        self._routes_out: dict[tuple[bytes, bytes | None, int | None, bool], OutputRoute] = {}
        self._routes_out_stamp = (-1, -1)
        self.lo = self._add_loopback()

    # --- the layers' state, under the names other code uses -------------------------------
    @property
    def arp(self) -> dict[int, NeighborCache[PendingPacket]]:
        return self.neighbors.arp

    @property
    def ndp(self) -> dict[int, NeighborCache[PendingPacket]]:
        return self.neighbors.ndp

    @property
    def igmp(self) -> dict[int, IgmpHost]:
        return self.membership.igmp

    @property
    def mld(self) -> dict[int, MldHost]:
        return self.membership.mld

    @property
    def reassembly_v4(self) -> Reassembler:
        return self.ipv4.reassembly

    @property
    def reassembly_v6(self) -> Reassembler:
        return self.ipv6.reassembly

    @property
    def icmp_echo_handler(self) -> Callable[[IpMeta, memoryview], bool] | None:
        return self.icmp.echo_handler

    @icmp_echo_handler.setter
    def icmp_echo_handler(self, handler: Callable[[IpMeta, memoryview], bool] | None) -> None:
        self.icmp.echo_handler = handler

    @property
    def accept_router_advertisements(self) -> bool:
        return self.router_adverts.accept

    @accept_router_advertisements.setter
    def accept_router_advertisements(self, accept: bool) -> None:
        self.router_adverts.accept = accept

    @property
    def slaac(self) -> bool:
        return self.router_adverts.slaac

    @slaac.setter
    def slaac(self, slaac: bool) -> None:
        self.router_adverts.slaac = slaac

    def set_transport(self, protocol: int, transport: Transport) -> None:
        """Deliver IP protocol `protocol` to `transport` (see `stack.build.build_host`)."""
        self.transports[protocol] = transport

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
        self.generation += 1
        self.neighbors.add_interface(index)
        self.membership.add_interface(index)
        self._tell(ConfigChange("link", iface))
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
        self.generation += 1
        self._tell(ConfigChange("link", iface))
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
        self._local_addresses.add(addr.address)
        self.generation += 1
        self._tell(ConfigChange("newaddr", iface, address=addr))
        if iface.is_up:
            self._add_connected_route(iface, addr)
        if addr.version == 6 and not iface.is_loopback:
            self.join_group(iface.index, solicited_node(addr.address))
        if not iface.is_loopback:
            self.driver.defer(lambda: self.neighbors.announce(iface, addr))
        return addr

    def remove_address(self, ifname: str, cidr: str | InterfaceAddress) -> None:
        iface = self.interface(ifname)
        addr = cidr if isinstance(cidr, InterfaceAddress) else InterfaceAddress.parse(cidr)
        pool = iface.ipv4 if addr.version == 4 else iface.ipv6
        if addr in pool:
            pool.remove(addr)
            prefix = self._connected_prefix(iface, addr)
            iface.peers.pop(addr.address, None)
            iface.broadcasts.pop(addr.address, None)
            self._local_addresses = {a.address for i in self.interfaces.values()
                                     for a in (*i.ipv4, *i.ipv6)}
            self.generation += 1
            self._tell(ConfigChange("deladdr", iface, address=addr))
            for route in self.routes.routes(addr.version):
                if (route.ifindex == iface.index and route.source == "connected"
                        and route.prefix == prefix and route.prefix_len == addr.prefix_len):
                    self.withdraw_route(route)

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
        route = Route(net.network, net.prefix_len, ifindex, gw, metric)
        self.install_route(route)
        return route

    # --- configuration (interfaces, routes): never on the per-packet path ------------------
    def _tell(self, change: ConfigChange) -> None:
        for listener in list(self.config_listeners):
            listener(change)

    @staticmethod
    def _connected_prefix(iface: Interface, addr: InterfaceAddress) -> bytes:
        """The network an address makes on-link: its own, or its point-to-point peer's."""
        peer = iface.peers.get(addr.address)
        return addr.network if peer is None else mask_address(peer, addr.prefix_len)

    def _add_connected_route(self, iface: Interface, addr: InterfaceAddress) -> None:
        if not iface.is_loopback or addr.prefix_len < len(addr.address) * 8:
            self.install_route(Route(self._connected_prefix(iface, addr), addr.prefix_len,
                                     iface.index, source="connected",
                                     preferred_source=addr.address))

    def has_route(self, route: Route) -> bool:
        return route in self.routes.routes(route.version)

    def install_route(self, route: Route) -> bool:
        """Add a route (its prefix masked); False if the same route is already there."""
        route = Route(mask_address(route.prefix, route.prefix_len), route.prefix_len,
                      route.ifindex, route.gateway, route.metric, route.source,
                      route.preferred_source)
        if self.has_route(route):
            return False
        self.routes.add(route)
        self._tell(ConfigChange("newroute", self.interfaces[route.ifindex], route=route))
        return True

    def withdraw_route(self, route: Route) -> bool:
        """Remove a route; False if there is no such route."""
        if not self.routes.remove(route):
            return False
        iface = self.interfaces.get(route.ifindex)
        if iface is not None:
            self._tell(ConfigChange("delroute", iface, route=route))
        return True

    def set_link_up(self, iface: Interface, up: bool) -> None:
        """Bring an interface up or down (`ip link set … up|down`, IFF_UP).

        Down: it receives nothing, and every route through it is withdrawn;
        up: the connected routes of its addresses come back (as on Linux).
        """
        if iface.is_up == up:
            return
        if up:
            iface.flags = InterfaceFlags(int(iface.flags) | IFF_UP | IFF_RUNNING)
            self.generation += 1
            self._tell(ConfigChange("link", iface))
            for addr in iface.addresses():
                self._add_connected_route(iface, addr)
        else:
            iface.flags = InterfaceFlags(int(iface.flags) & ~(IFF_UP | IFF_RUNNING))
            self.generation += 1
            for route in self.routes.routes():
                if route.ifindex == iface.index:
                    self.withdraw_route(route)
            self._tell(ConfigChange("link", iface))

    def remove_interface(self, iface: Interface) -> None:
        """Take an interface away (a guest's TUN/TAP device whose fd closed): down first
        (its routes withdrawn), its addresses removed, then the interface itself."""
        if self.interfaces.get(iface.index) is not iface:
            return
        self.set_link_up(iface, False)
        for address in list(iface.addresses()):
            self.remove_address(iface.name, address)
        for route in self.routes.routes():
            if route.ifindex == iface.index:
                self.withdraw_route(route)
        del self.interfaces[iface.index]
        self.neighbors.arp.pop(iface.index, None)
        self.neighbors.ndp.pop(iface.index, None)
        self.membership.igmp.pop(iface.index, None)
        self.membership.mld.pop(iface.index, None)
        self.generation += 1
        self._tell(ConfigChange("dellink", iface))

    def set_link_flags(self, iface: Interface, flags: int) -> None:
        """Set flags other than IFF_UP / IFF_RUNNING (NOARP, MULTICAST …) as given."""
        keep = int(iface.flags) & (IFF_UP | IFF_RUNNING)
        new = InterfaceFlags((flags & ~(IFF_UP | IFF_RUNNING)) | keep)
        if new != iface.flags:
            iface.flags = new
            self.generation += 1
            self._tell(ConfigChange("link", iface))

    def set_mtu(self, iface: Interface, mtu: int) -> None:
        if mtu != iface.mtu:
            iface.mtu = mtu
            self.generation += 1
            self._tell(ConfigChange("link", iface))

    def set_mac(self, iface: Interface, mac: bytes) -> None:
        if len(mac) != 6 or iface.mac is None:
            raise ValueError("only an Ethernet interface has a MAC of 6 bytes")
        if mac != iface.mac:
            iface.mac = bytes(mac)
            self.generation += 1
            self._tell(ConfigChange("link", iface))

    def local_addresses(self, version: int | None = None) -> list[bytes]:
        return [a.address for i in self.interfaces.values() for a in i.addresses(version)]

    def is_local_address(self, addr: bytes) -> bool:
        if len(addr) == 4 and addr[0] == 127:
            return True
        return addr in self._local_addresses


    # --- timers ---------------------------------------------------------------------------
    def schedule(self) -> None:
        """Arm the driver timer for the earliest deadline of any layer."""
        deadlines = [d for d in (self.neighbors.next_deadline(),
                                 self.membership.next_deadline(),
                                 self.ipv4.reassembly.next_deadline(),
                                 self.ipv6.reassembly.next_deadline()) if d is not None]
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
        self.neighbors.on_timer(now)
        self.membership.on_timer(now)
        for expired in self.ipv4.reassembly.expire(now):
            self.counters["ipv4.reassembly_timeout"] += 1
            if expired.first_fragment is not None:
                self.icmp.error_v4(expired.first_fragment, icmpv4.TYPE_TIME_EXCEEDED,
                                   icmpv4.TIME_EXCEEDED_REASSEMBLY)
        for expired in self.ipv6.reassembly.expire(now):
            self.counters["ipv6.reassembly_timeout"] += 1
            if expired.first_fragment is not None:
                self.icmp.error_v6(expired.first_fragment, icmpv6.TYPE_TIME_EXCEEDED,
                                   icmpv6.TIME_EXCEEDED_REASSEMBLY)
        self.schedule()

    # --- input ----------------------------------------------------------------------------
    def takes_whole(self) -> bool:
        """True when super-frames may be received whole (nothing on the way in looks)."""
        hooks = self.hooks
        return not self.forwarding and hooks.get(Hook.PREROUTING) is None and (
            hooks.get(Hook.INPUT) is None)

    def forwards_whole(self) -> bool:
        """True when a router may pass super-frames on whole: no hook looks on the way
        (as Linux forwards a GRO packet and segments it only where the egress needs)."""
        hooks = self.hooks
        return self.forwarding and hooks.get(Hook.PREROUTING) is None and (
            hooks.get(Hook.INPUT) is None and hooks.get(Hook.FORWARD) is None
            and hooks.get(Hook.POSTROUTING) is None)

    def egress_takes_whole(self, dst: bytes, packet: bytes | memoryview, gso_size: int) -> bool:
        """May a super-frame routed to `dst` leave whole: a route whose interface offloads
        and whose MTU each of its wire packets fits."""
        route = self.routes.lookup(dst)
        if route is None:
            return False
        out = self.interfaces[route.ifindex]
        return self.offload_output(out) and (
            GsoFrame.from_packet(packet, gso_size).max_wire_len <= out.mtu)

    def offload_output(self, iface: Interface) -> bool:
        """True when a packet out of `iface` may leave as a super-frame."""
        hooks = self.hooks
        return iface.offload and (not hooks.active or (
            hooks.get(Hook.OUTPUT) is None and hooks.get(Hook.POSTROUTING) is None))

    def receive_frame(self, iface: Interface, frame: bytes | memoryview | GsoFrame) -> None:
        """An Ethernet frame arrived on iface (from its NIC)."""
        trusted = False
        gso_size = 0
        if type(frame) is GsoFrame:
            hooks = self.hooks
            looked_at = hooks.active and (hooks.get(Hook.PREROUTING) is not None
                                          or hooks.get(Hook.INPUT) is not None)
            segs = frame.gso_segs
            if ((self.forwarding or looked_at) and not self.forwards_whole()) or (
                    segs > 1 and frame.protocol != PROTO_TCP):
                for wire in frame.materialise():
                    self.receive_frame(iface, wire)
                return
            fields = frame.ipv4_fields
            if fields is not None:  # a frame a vnet stack built: no parsing again
                counters = iface.counters
                data = frame.data
                counters.rx_frames += segs
                counters.rx_bytes += frame.wire_bytes
                if not iface.is_up:
                    counters.rx_dropped["down"] += 1
                    return
                dst = data[0:6]
                broadcast = False
                if dst != iface.mac:
                    if not dst[0] & 1:
                        counters.rx_dropped["not_for_us"] += 1
                        self.counters.drop("ethernet", "not_for_us")
                        return
                    broadcast = dst == ethernet.BROADCAST
                tcp_header = frame.tcp_header
                if tcp_header is not None:  # ours to take, once (see stack.wire.gso)
                    frame.tcp_header = None
                self.ipv4.receive_built(iface, memoryview(data)[14:], fields, broadcast,
                                        frame.gso_size if segs > 1 else 0, tcp_header)
                return
            trusted = True
            if segs > 1:
                gso_size = frame.gso_size
            iface.counters.rx_frames += segs - 1  # count the wire frames
            iface.counters.rx_bytes += frame.wire_bytes - len(frame.data)
            frame = frame.data
        assert not isinstance(frame, GsoFrame)
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
            self.ipv4.receive(iface, eth.payload, link_broadcast=dst == ethernet.BROADCAST,
                              csum_trusted=trusted, gso_size=gso_size)
        elif ethertype == ETH_IPV6:
            self.ipv6.receive(iface, eth.payload, csum_trusted=trusted, gso_size=gso_size)
        elif ethertype == ETH_ARP:
            self.neighbors.receive_arp(iface, eth.payload)
        else:
            self.counters.drop("ethernet", "unknown_ethertype")

    def receive_packet(self, iface: Interface, packet: bytes | memoryview | GsoFrame) -> None:
        """An IP packet arrived on an interface without a link layer (lo, TUN).

        A `GsoFrame` (with ``link_len`` 0) is taken whole as `receive_frame` takes one."""
        trusted = False
        gso_size = 0
        if isinstance(packet, GsoFrame):
            if not (self.takes_whole() or self.forwards_whole()) or (
                    packet.gso_segs > 1 and packet.protocol != PROTO_TCP):
                for wire in packet.materialise():
                    self.receive_packet(iface, wire)
                return
            trusted = True
            if packet.gso_segs > 1:
                gso_size = packet.gso_size
            iface.counters.rx_frames += packet.gso_segs - 1
            iface.counters.rx_bytes += packet.wire_bytes - len(packet.data)
            packet = packet.ip_packet
        assert not isinstance(packet, GsoFrame)
        iface.counters.rx_frames += 1
        iface.counters.rx_bytes += len(packet)
        if not packet:
            self.counters.drop("ip", "empty")
            return
        version = packet[0] >> 4
        if version == 4:
            self.ipv4.receive(iface, memoryview(packet), link_broadcast=False,
                              csum_trusted=trusted, gso_size=gso_size)
        elif version == 6:
            self.ipv6.receive(iface, memoryview(packet), csum_trusted=trusted,
                              gso_size=gso_size)
        else:
            self.counters.drop("ip", "bad_version")

    def deliver(self, meta: IpMeta, protocol: int, payload: memoryview) -> None:
        """A packet for this host passed INPUT: hand it to its protocol's layer."""
        if protocol == PROTO_ICMP and meta.version == 4:
            self.icmp.receive_v4(meta, payload)
            return
        if protocol == PROTO_IGMP and meta.version == 4:
            self.membership.receive_igmp(meta, payload)
            return
        if protocol == PROTO_ICMPV6 and meta.version == 6:
            self.icmp.receive_v6(meta, payload)
            return
        if protocol == PROTO_UDP and self.dhcp_handler is not None and (
                self.dhcp_handler(meta, payload)):
            return
        transport = self.transports.get(protocol)
        if transport is None:
            self.counters.drop(f"ipv{meta.version}", "unknown_protocol")
            if not (meta.is_broadcast or meta.is_multicast):
                if meta.version == 4:
                    self.icmp.error_v4(meta.packet, icmpv4.TYPE_DEST_UNREACHABLE,
                                       icmpv4.UNREACH_PROTOCOL)
                else:
                    self.icmp.error_v6(meta.packet, icmpv6.TYPE_PARAM_PROBLEM,
                                       icmpv6.PARAM_UNRECOGNIZED_NEXT_HEADER,
                                       next_header_pointer(meta.packet))
            return
        if not transport.receive(meta, payload):
            if meta.is_broadcast or meta.is_multicast:
                return
            if meta.version == 4:
                self.icmp.error_v4(meta.packet, icmpv4.TYPE_DEST_UNREACHABLE,
                                   icmpv4.UNREACH_PORT)
            else:
                self.icmp.error_v6(meta.packet, icmpv6.TYPE_DEST_UNREACHABLE,
                                   icmpv6.UNREACH_PORT)

    def igmp_engine(self, ifindex: int) -> IgmpHost:
        return self.membership.igmp[ifindex]

    def path_mtu(self, rt: OutputRoute) -> int:
        """The MTU for a datagram along rt: its interface's, or the path MTU learned."""
        if rt.iface.is_loopback or rt.is_multicast or rt.is_broadcast:
            return rt.iface.mtu
        return self.path_mtus.mtu(rt.dst, rt.iface.mtu, self.driver.now_ns())

    # --- multicast membership and router advertisements (the layers do the work) ---------
    def join_group(self, ifindex: int, group: bytes) -> None:
        """A socket joined `group` on an interface (IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP)."""
        self.membership.join_group(ifindex, group)

    def leave_group(self, ifindex: int, group: bytes) -> bool:
        return self.membership.leave_group(ifindex, group)

    def send_router_solicit(self, ifname: str) -> None:
        self.router_adverts.send_solicit(self.interface(ifname))

    def send_router_advert(self, ifname: str, prefixes: list[str], lifetime_s: int = 1800,
                           dst: bytes = ALL_NODES_V6) -> None:
        """A router advertises itself and prefixes (for SLAAC) on one interface."""
        self.router_adverts.send_advert(self.interface(ifname), prefixes, lifetime_s, dst)

    # --- output ---------------------------------------------------------------------------
    def output_control(self, iface: Interface, src: bytes, dst: bytes,
                       message: bytes | bytearray, hop_limit: int,
                       eth_dst: bytes | None = None, hop_by_hop: bytes = b"") -> None:
        """Send a control message straight onto a link, bypassing routing.

        IPv6 (ND, MLD): `message` is the ICMPv6 message; the header (with the
        `hop_by_hop` options if any) is built here, and the link address is
        `eth_dst`, the multicast MAC of `dst`, or `dst`'s neighbour entry. IPv4
        (IGMP): `message` is the whole packet, `eth_dst` its multicast MAC. Linux
        filters these at OUTPUT too: this is the one place OUTPUT and POSTROUTING
        run for them.
        """
        version = 4 if len(dst) == 4 else 6
        if version == 6:
            if iface.transmit is None or iface.mac is None:
                return
            next_header = PROTO_HOPOPT if hop_by_hop else PROTO_ICMPV6
            packet = ipv6.Ipv6Repr(src, dst, next_header, hop_limit).build(hop_by_hop + message)
            if eth_dst is None:
                eth_dst = ethernet.multicast_mac_v6(dst) if is_multicast(dst) else None
            if eth_dst is None:
                eth_dst = self.neighbors.ndp[iface.index].lookup(self.driver.now_ns(), dst)
                if eth_dst is None:
                    return
        else:
            packet = bytes(message)
        assert eth_dst is not None
        for hook in (Hook.OUTPUT, Hook.POSTROUTING):
            if self.hooks.get(hook) is not None:
                meta = IpMeta(version, src, dst, iface.index, hop_limit, 0, False,
                              is_multicast(dst), memoryview(packet), out_ifindex=iface.index)
                verdict = self.hooks.run(hook, meta, packet)
                if not verdict.accept:
                    self.counters.drop(f"ipv{version}", "firewall_out")
                    return
                if verdict.packet is not None:
                    packet = bytes(verdict.packet)
        self.counters["igmp.out" if version == 4 else "ipv6.out"] += 1
        self.neighbors.frame_out(iface, eth_dst, ETH_IPV4 if version == 4 else ETH_IPV6,
                                 packet)

    # --- routing -----------------------------------------------------------------------
    def source_for(self, iface: Interface, dst: bytes, route: Route | None) -> bytes | None:
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

        The answer depends only on the arguments, the interfaces and their addresses
        (`generation`) and the routes (`routes.generation`), so it is kept while those
        are unchanged, and one `OutputRoute` (with the last hop the IP layer caches on
        it) serves every flow to the same destination: each TCP connection, say.
        Callers never change an `OutputRoute`.
        """
        stamp = (self.generation, self.routes.generation)
        cache = self._routes_out
        if self._routes_out_stamp != stamp:
            cache.clear()
            self._routes_out_stamp = stamp
        key = (dst, src, ifindex, any_source)
        rt = cache.get(key)
        if rt is None:
            rt = self._route_output(dst, src, ifindex, any_source)
            if len(cache) >= _ROUTES_OUT_MAX:
                cache.clear()
            cache[key] = rt
        return rt

    def _route_output(self, dst: bytes, src: bytes | None, ifindex: int | None,
                      any_source: bool) -> OutputRoute:
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
            source = src or self.source_for(iface, dst, None) or ANY_V4
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
            source = src or self.source_for(iface, dst, None)
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
                source = src or self.source_for(iface, dst, None)
                if source is not None:
                    return OutputRoute(dst, source, iface, dst, False, False)
        if route is None:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        iface = self.interfaces[route.ifindex]
        source = src or self.source_for(iface, dst, route)
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
                  path_mtu_discovery: bool = False, offload: bool = False,
                  gso_size: int = 0) -> None:
        """Send one datagram. `path_mtu_discovery` is Linux's IP_PMTUDISC_WANT (datagram
        sockets' default): DF when the datagram fits the path MTU, else fragments sized
        to it, without DF. EPERM when OUTPUT refuses it. `offload`: the transport
        checksum is left to whoever materialises the packet, which leaves as one
        `GsoFrame` (of `gso_size`-byte segments); only where `offload_output` allows."""
        if offload and not path_mtu_discovery:  # TCP's segments: no more to decide
            self.ipv4.send_offloaded(rt, protocol, payload, ttl, tos, dont_frag, gso_size)
            return
        self.ipv4.send(rt, protocol, payload, ttl=ttl, tos=tos, dont_frag=dont_frag,
                       multicast_loop=multicast_loop, options=options,
                       path_mtu_discovery=path_mtu_discovery, offload=offload,
                       gso_size=gso_size)

    def send_ipv6(self, rt: OutputRoute, next_header: int, payload: bytes | memoryview, *,
                  hop_limit: int | None = None, traffic_class: int = 0,
                  multicast_loop: bool = False, dont_frag: bool = False,
                  path_mtu_discovery: bool = False, offload: bool = False,
                  gso_size: int = 0) -> None:
        """Send one datagram; with `path_mtu_discovery` (datagram sockets) fragment at the
        source to the path MTU learned from Packet Too Big, as Linux does. EPERM when
        OUTPUT refuses it, EMSGSIZE when it is too big and `dont_frag`."""
        self.ipv6.send(rt, next_header, payload, hop_limit=hop_limit,
                       traffic_class=traffic_class, multicast_loop=multicast_loop,
                       dont_frag=dont_frag, path_mtu_discovery=path_mtu_discovery,
                       offload=offload, gso_size=gso_size)

    def loopback(self, packet: bytes) -> None:
        """Send a packet through `lo`: it arrives at this host on the next turn."""
        lo = self.lo
        for observe in self.loopback_observers:
            observe(packet)
        lo.counters.tx_frames += 1
        lo.counters.tx_bytes += len(packet)
        self.driver.defer(lambda: self.receive_packet(lo, packet))

