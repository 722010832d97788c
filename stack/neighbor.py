"""Neighbor cache for one interface and one address family (ARP or NDP).

Theory of operation
-------------------
One engine serves ARP (IPv4) and NDP (IPv6): they differ only in the
messages the stack sends, not in the cache's state machine, which follows
RFC 4861 §7.3 Neighbor Unreachability Detection (Linux uses the same states
for ARP):

    INCOMPLETE --reply--> REACHABLE --reachable_ns--> STALE --used--> DELAY
        |                     ^                                          |
        | max probes          +------------------- reply --------- PROBE <-- delay_ns
        v                                                              |
      FAILED (entry removed, queued packets reported)        max probes: removed

Packets sent to a neighbor that is still being resolved wait in a bounded
queue on its entry (`queue_limit` packets, oldest dropped first, as Linux's
unres_qlen); when resolution fails they are handed back so the stack can
answer each with ICMP host unreachable.

The engine (`NeighborCache`) is sans-IO: the caller passes `now_ns`, and
the methods return what to do (`Probe` to send, packets to flush or fail).
`next_deadline()` says when `on_timer` must run next. It touches nothing.

`NeighborLayer` is the part of a `stack.host.HostStack` that drives one
cache per interface and family: ARP in and out (with RFC 5227 probes and
gratuitous announcements), NDP's Neighbor Solicitations and Advertisements,
and the last step of IP output -- resolving the next hop's MAC (queueing
while it resolves) and framing the packet onto the link. It touches only its
host's state and the interfaces' `transmit`.

A flow's last hop, once resolved, is kept as a `LinkPath` (on its
`OutputRoute`): the interface, the neighbour's entry and the Ethernet header
to put in front. It stands for exactly what `NeighborLayer.send` would do
with the next packet, and `LinkPath.current` says whether it still does: the
same interface configuration (`HostStack.generation`: MAC, addresses, MTU,
up/down), the same `transmit`, and the same neighbour entry, still in the
table with the same MAC and in a state where `NeighborCache.lookup` changes
nothing (REACHABLE, DELAY, PROBE: everything but STALE, whose first use
starts NUD). Otherwise the packet takes `send`, which runs Neighbor
Unreachability Detection exactly as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .interface import solicited_node
from .ip import (
    ALL_NODES_V6,
    ANY_V4,
    ETH_ARP,
    ETH_IPV4,
    ETH_IPV6,
    LIMITED_BROADCAST,
    UNSPECIFIED_V6,
    IpMeta,
    is_multicast,
)
from .wire import arp as wire_arp
from .wire import ethernet, icmpv4, icmpv6, ndp
from .wire.errors import WireError
from .wire.gso import GsoFrame

if TYPE_CHECKING:
    from .host import HostStack
    from .interface import Interface, InterfaceAddress

P = TypeVar("P")  # whatever the stack queues: a packet and how to send it


class NeighborState(Enum):
    INCOMPLETE = "incomplete"
    REACHABLE = "reachable"
    STALE = "stale"
    DELAY = "delay"
    PROBE = "probe"


@dataclass
class NeighborEntry:
    """One neighbour. Not generic in its queue (the cache is): a generic dataclass does
    not compile with mypyc (scripts/compile-stack)."""

    address: bytes
    state: NeighborState
    mac: bytes | None = None
    probes: int = 0
    deadline: int | None = None
    queue: deque[Any] = field(default_factory=deque)  # what the cache's P is
    is_router: bool = False
    static: bool = False


@dataclass(frozen=True, slots=True)
class Probe:
    """Send a solicitation for `address`; unicast to `mac` if given, else multicast/broadcast."""

    address: bytes
    mac: bytes | None


@dataclass
class NeighborTimers:
    retrans_ns: int = 1_000_000_000  # RFC 4861 RETRANS_TIMER
    reachable_ns: int = 30_000_000_000  # REACHABLE_TIME
    delay_ns: int = 5_000_000_000  # DELAY_FIRST_PROBE_TIME
    max_multicast_probes: int = 3
    max_unicast_probes: int = 3
    queue_limit: int = 64
    max_entries: int = 1024


class NeighborCache(Generic[P]):
    def __init__(self, timers: NeighborTimers | None = None) -> None:
        self.timers = timers or NeighborTimers()
        self.entries: dict[bytes, NeighborEntry] = {}
        self.queue_drops = 0
        self.failures = 0
        #: Set when a lookup armed a new deadline (the owner re-arms its timer).
        self.deadlines_changed = False

    # --- lookups -----------------------------------------------------------
    def lookup(self, now_ns: int, address: bytes) -> bytes | None:
        """The MAC to use now, or None if resolution is needed (see `resolve`).

        Using a STALE entry starts NUD (DELAY), as RFC 4861 §7.3.3 says.
        """
        entry = self.entries.get(address)
        if entry is None or entry.mac is None:
            return None
        if entry.state is NeighborState.STALE:
            entry.state = NeighborState.DELAY
            entry.deadline = now_ns + self.timers.delay_ns
            self.deadlines_changed = True
        return entry.mac

    def resolve(self, now_ns: int, address: bytes, pending: P) -> Probe | None:
        """Queue `pending` until address resolves; returns a Probe to send now, if any."""
        entry = self.entries.get(address)
        if entry is None:
            if len(self.entries) >= self.timers.max_entries:
                self._evict_one()
            entry = NeighborEntry(address, NeighborState.INCOMPLETE, probes=1,
                                  deadline=now_ns + self.timers.retrans_ns)
            self.entries[address] = entry
            self._enqueue(entry, pending)
            return Probe(address, None)
        self._enqueue(entry, pending)
        return None

    def _enqueue(self, entry: NeighborEntry, pending: P) -> None:
        if len(entry.queue) >= self.timers.queue_limit:
            entry.queue.popleft()
            self.queue_drops += 1
        entry.queue.append(pending)

    def _evict_one(self) -> None:
        for key, entry in self.entries.items():
            if not entry.static and entry.state is not NeighborState.INCOMPLETE:
                del self.entries[key]
                return
        key = next(iter(self.entries))
        del self.entries[key]

    # --- learning ----------------------------------------------------------
    def confirm(self, now_ns: int, address: bytes, mac: bytes, solicited: bool = True,
                override: bool = True, is_router: bool | None = None) -> list[P]:
        """A reply (or other proof of reachability) from address: returns packets to flush.

        `solicited` replies make the entry REACHABLE; unsolicited information
        (a request we overheard, an unsolicited advertisement) only records
        the MAC as STALE, as RFC 4861 §7.2.5/§7.2.3 require.
        """
        entry = self.entries.get(address)
        if entry is None:
            if not solicited:
                return []
            entry = NeighborEntry(address, NeighborState.STALE)
            self.entries[address] = entry
        if entry.static:
            return []
        changed = entry.mac is not None and entry.mac != mac
        if entry.mac is None or override or not changed:
            entry.mac = mac
        if is_router is not None:
            entry.is_router = is_router
        if solicited and (override or not changed):
            entry.state = NeighborState.REACHABLE
            entry.deadline = now_ns + self.timers.reachable_ns
            entry.probes = 0
        elif entry.state is NeighborState.INCOMPLETE or changed:
            entry.state = NeighborState.STALE
            entry.deadline = None
            entry.probes = 0
        flushed = list(entry.queue)
        entry.queue.clear()
        return flushed

    def learn(self, now_ns: int, address: bytes, mac: bytes) -> list[P]:
        """Unsolicited proof of the mapping (e.g. we saw its request): STALE or update."""
        entry = self.entries.get(address)
        if entry is None:
            self.entries[address] = NeighborEntry(address, NeighborState.STALE, mac)
            return []
        if entry.static:
            return []
        if entry.mac != mac:
            entry.mac = mac
            if entry.state is not NeighborState.INCOMPLETE:
                entry.state = NeighborState.STALE
                entry.deadline = None
        if entry.state is NeighborState.INCOMPLETE:
            entry.state = NeighborState.STALE
            entry.deadline = None
        flushed = list(entry.queue)
        entry.queue.clear()
        return flushed

    def add_static(self, address: bytes, mac: bytes) -> None:
        self.entries[address] = NeighborEntry(address, NeighborState.REACHABLE, mac, static=True)

    def forget(self, address: bytes) -> None:
        self.entries.pop(address, None)

    # --- time --------------------------------------------------------------
    def next_deadline(self) -> int | None:
        deadlines = [e.deadline for e in self.entries.values() if e.deadline is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now_ns: int) -> tuple[list[Probe], list[tuple[bytes, list[P]]]]:
        """Advance every due entry: (probes to send, [(address, queued packets)] that failed)."""
        probes: list[Probe] = []
        failed: list[tuple[bytes, list[P]]] = []
        t = self.timers
        for address, entry in list(self.entries.items()):
            if entry.static or entry.deadline is None or entry.deadline > now_ns:
                continue
            state = entry.state
            if state is NeighborState.INCOMPLETE:
                if entry.probes >= t.max_multicast_probes:
                    del self.entries[address]
                    self.failures += 1
                    failed.append((address, list(entry.queue)))
                    continue
                entry.probes += 1
                entry.deadline = now_ns + t.retrans_ns
                probes.append(Probe(address, None))
            elif state is NeighborState.REACHABLE:
                entry.state = NeighborState.STALE
                entry.deadline = None
            elif state is NeighborState.DELAY:
                entry.state = NeighborState.PROBE
                entry.probes = 1
                entry.deadline = now_ns + t.retrans_ns
                probes.append(Probe(address, entry.mac))
            elif state is NeighborState.PROBE:
                if entry.probes >= t.max_unicast_probes:
                    del self.entries[address]
                    self.failures += 1
                    failed.append((address, list(entry.queue)))
                    continue
                entry.probes += 1
                entry.deadline = now_ns + t.retrans_ns
                probes.append(Probe(address, entry.mac))
        return probes, failed


def _first_wire_packet(packet: bytes | GsoFrame) -> bytes:
    """What an ICMP error quotes of a queued packet: a super-packet's first real one."""
    return packet.materialise()[0] if isinstance(packet, GsoFrame) else packet


PendingPacket = tuple[bytes | GsoFrame, bytes]  # (IP packet, next hop) waiting for resolution


_STALE = NeighborState.STALE
_INCOMPLETE = NeighborState.INCOMPLETE


def _ipv4_broadcast(iface: Interface, next_hop: bytes) -> bool:
    """Is `next_hop` an IPv4 broadcast on `iface` (limited, or one of its subnets')?"""
    if len(next_hop) != 4:
        return False
    if next_hop == LIMITED_BROADCAST:
        return True
    for address in iface.ipv4:
        if address.broadcast == next_hop:
            return True
    return False


class LinkPath:
    """A resolved last hop: what `NeighborLayer.send` does with a packet for `next_hop`
    out of `iface` while `current()` holds (see the module docstring)."""

    __slots__ = ("entries", "entry", "generation", "header", "iface", "mac", "next_hop",
                 "transmit")

    def __init__(self, iface: Interface, next_hop: bytes,
                 entries: dict[bytes, NeighborEntry], entry: NeighborEntry,
                 header: bytes, generation: int, transmit: Callable[[Any], None]) -> None:
        self.iface = iface
        self.next_hop = next_hop
        self.entries = entries
        self.entry = entry
        self.mac = entry.mac
        #: Destination MAC, source MAC, EtherType: the 14 bytes in front of the packet.
        self.header = header
        self.generation = generation
        self.transmit = transmit

    def current(self, generation: int) -> bool:
        """Would `NeighborLayer.send` still frame a packet exactly so, changing nothing?"""
        entry = self.entry
        return (generation == self.generation and entry.state is not _STALE
                and entry.mac is self.mac and self.entries.get(self.next_hop) is entry
                and self.iface.transmit is self.transmit)


class NeighborLayer:
    """ARP and NDP for one host: a `NeighborCache` per interface and family."""

    def __init__(self, host: HostStack) -> None:
        self.host = host
        self.arp: dict[int, NeighborCache[PendingPacket]] = {}
        self.ndp: dict[int, NeighborCache[PendingPacket]] = {}

    def add_interface(self, index: int) -> None:
        self.arp[index] = NeighborCache()
        self.ndp[index] = NeighborCache()

    def next_deadline(self) -> int | None:
        deadlines = [d for cache in (*self.arp.values(), *self.ndp.values())
                     if (d := cache.next_deadline()) is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now: int) -> None:
        host = self.host
        for index, cache in self.arp.items():
            probes, failed = cache.on_timer(now)
            iface = host.interfaces[index]
            for probe in probes:
                self._send_arp_probe(iface, probe)
            for _addr, queued in failed:
                for packet, _ in queued:
                    host.counters["arp.unresolved"] += 1
                    host.icmp.error_v4(_first_wire_packet(packet), icmpv4.TYPE_DEST_UNREACHABLE,
                                       icmpv4.UNREACH_HOST)
        for index, cache in self.ndp.items():
            probes, failed = cache.on_timer(now)
            iface = host.interfaces[index]
            for probe in probes:
                self.send_neighbor_solicit(iface, probe.address, probe.mac)
            for _addr, queued in failed:
                for packet, _ in queued:
                    host.counters["ndp.unresolved"] += 1
                    host.icmp.error_v6(_first_wire_packet(packet), icmpv6.TYPE_DEST_UNREACHABLE,
                                       icmpv6.UNREACH_ADDRESS)

    # --- ARP ----------------------------------------------------------------------------
    def receive_arp(self, iface: Interface, payload: memoryview) -> None:
        host = self.host
        pkt = wire_arp.ArpPacket.parse(payload)
        if isinstance(pkt, WireError):
            host.counters.drop("arp", pkt)
            return
        host.counters["arp.in"] += 1
        now = host.driver.now_ns()
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
            self.frame_out(iface, sender_mac, ETH_IPV4, packet)
        if pkt.operation == wire_arp.OP_REQUEST and for_us:
            self._send_arp(iface, wire_arp.OP_REPLY, target_ip, sender_mac, sender_ip, sender_mac)
        host.schedule()

    def _send_arp(self, iface: Interface, oper: int, sender_ip: bytes, target_mac: bytes,
                  target_ip: bytes, eth_dst: bytes) -> None:
        assert iface.mac is not None
        body = wire_arp.ArpRepr(oper, iface.mac, sender_ip, target_mac, target_ip).build()
        self.host.counters["arp.out"] += 1
        self.frame_out(iface, eth_dst, ETH_ARP, body)

    def _send_arp_probe(self, iface: Interface, probe: Probe) -> None:
        host = self.host
        route = host.routes.lookup(probe.address, iface.index)
        src = host.source_for(iface, probe.address, route)
        if src is None:
            return
        self._send_arp(iface, wire_arp.OP_REQUEST, src, bytes(6), probe.address,
                       ethernet.BROADCAST if probe.mac is None else probe.mac)

    def announce(self, iface: Interface, addr: InterfaceAddress) -> None:
        """Tell the link about a new address: gratuitous ARP or an unsolicited NA."""
        if iface.mac is None or iface.transmit is None or addr not in iface.addresses():
            return
        if addr.version == 4:
            # Gratuitous ARP: a request for our own address (RFC 5227 §3 announcement).
            self._send_arp(iface, wire_arp.OP_REQUEST, addr.address, bytes(6), addr.address,
                           ethernet.BROADCAST)
        else:
            na = ndp.NeighborAdvert(addr.address, router=self.host.forwarding, solicited=False,
                                    override=True,
                                    options=ndp.NdpOptions(target_lladdr=iface.mac))
            self.host.output_control(iface, addr.address, ALL_NODES_V6,
                                     na.build(addr.address, ALL_NODES_V6), hop_limit=255)

    # --- NDP ----------------------------------------------------------------------------
    def receive_ndp(self, iface: Interface, meta: IpMeta, msg: icmpv6.Icmpv6Packet) -> None:
        host = self.host
        parsed = ndp.parse(msg)
        if isinstance(parsed, WireError):
            host.counters.drop("ndp", parsed)
            return
        now = host.driver.now_ns()
        cache = self.ndp.get(iface.index)
        if cache is None or iface.mac is None:
            return
        if isinstance(parsed, ndp.NeighborSolicit):
            if not iface.has_address(parsed.target):
                host.counters.drop("ndp", "not_our_target")
                return
            slla = parsed.options.source_lladdr
            if meta.src == UNSPECIFIED_V6:
                # Duplicate address detection probe: defend our address.
                self._send_neighbor_advert(iface, parsed.target, ALL_NODES_V6, solicited=False)
                return
            if slla is not None:
                for packet, _ in cache.learn(now, meta.src, slla):
                    self.frame_out(iface, slla, ETH_IPV6, packet)
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
                self.frame_out(iface, tlla, ETH_IPV6, packet)
        elif isinstance(parsed, ndp.RouterAdvert):
            host.router_adverts.receive(iface, meta, parsed)
        elif isinstance(parsed, ndp.RouterSolicit):
            if host.forwarding:
                host.counters["ndp.rs_in"] += 1
                host.router_adverts.receive_solicit(iface)
        host.schedule()

    def _send_neighbor_advert(self, iface: Interface, target: bytes, dst: bytes,
                              solicited: bool) -> None:
        assert iface.mac is not None
        na = ndp.NeighborAdvert(target, router=self.host.forwarding, solicited=solicited,
                                override=True, options=ndp.NdpOptions(target_lladdr=iface.mac))
        self.host.counters["ndp.na_out"] += 1
        self.host.output_control(iface, target, dst, na.build(target, dst), hop_limit=255)

    def send_neighbor_solicit(self, iface: Interface, target: bytes, mac: bytes | None) -> None:
        assert iface.mac is not None
        host = self.host
        route = host.routes.lookup(target, iface.index)
        src = host.source_for(iface, target, route) or UNSPECIFIED_V6
        dst = target if mac is not None else solicited_node(target)
        ns = ndp.NeighborSolicit(target, ndp.NdpOptions(source_lladdr=iface.mac))
        host.counters["ndp.ns_out"] += 1
        host.output_control(iface, src, dst, ns.build(src, dst), hop_limit=255, eth_dst=mac)

    # --- the link -----------------------------------------------------------------------
    def link_path(self, iface: Interface, next_hop: bytes, ethertype: int) -> LinkPath | None:
        """The resolved last hop towards a unicast `next_hop` on an Ethernet interface,
        if its neighbour entry has a MAC and is not STALE; None otherwise (packets take
        `send`)."""
        transmit = iface.transmit
        mac = iface.mac
        if transmit is None or mac is None or is_multicast(next_hop):
            return None
        if _ipv4_broadcast(iface, next_hop):
            return None
        cache = (self.arp if ethertype == ETH_IPV4 else self.ndp).get(iface.index)
        if cache is None:
            return None
        entry = cache.entries.get(next_hop)
        if entry is None or entry.mac is None or entry.state is _STALE or (
                entry.state is _INCOMPLETE):
            return None
        return LinkPath(iface, next_hop, cache.entries, entry,
                        entry.mac + mac + ethertype.to_bytes(2, "big"), self.host.generation,
                        transmit)

    def send(self, iface: Interface, next_hop: bytes, ethertype: int,
             packet: bytes | GsoFrame) -> None:
        """Put an IP packet on `iface` towards `next_hop`, resolving its MAC first.

        A `GsoFrame` (only built for an interface whose `offload` is set) goes out as one."""
        if iface.transmit is None:
            iface.counters.tx_dropped["no_link"] += 1
            return
        if iface.mac is None:  # point-to-point (TUN): the packet itself goes out
            if isinstance(packet, GsoFrame):
                iface.counters.tx_frames += packet.gso_segs
                iface.counters.tx_bytes += packet.wire_bytes
            else:
                iface.counters.tx_frames += 1
                iface.counters.tx_bytes += len(packet)
            iface.transmit(packet)
            return
        if is_multicast(next_hop):
            mac = (ethernet.multicast_mac_v4(next_hop) if len(next_hop) == 4
                   else ethernet.multicast_mac_v6(next_hop))
            self.frame_out(iface, mac, ethertype, packet)
            return
        if _ipv4_broadcast(iface, next_hop):
            self.frame_out(iface, ethernet.BROADCAST, ethertype, packet)
            return
        cache = self.arp[iface.index] if ethertype == ETH_IPV4 else self.ndp[iface.index]
        now = self.host.driver.now_ns()
        resolved = cache.lookup(now, next_hop)
        if resolved is not None:
            self.frame_out(iface, resolved, ethertype, packet)
            if cache.deadlines_changed:
                cache.deadlines_changed = False
                self.host.schedule()
            return
        probe = cache.resolve(now, next_hop, (packet, next_hop))
        if probe is not None:
            if ethertype == ETH_IPV4:
                self._send_arp_probe(iface, probe)
            else:
                self.send_neighbor_solicit(iface, probe.address, None)
        self.host.schedule()

    def frame_out(self, iface: Interface, dst_mac: bytes, ethertype: int,
                  payload: bytes | memoryview | GsoFrame) -> None:
        transmit = iface.transmit
        if transmit is None or iface.mac is None:
            iface.counters.tx_dropped["no_link"] += 1
            return
        if isinstance(payload, GsoFrame):
            gso = payload.with_link_header(dst_mac + iface.mac + ethertype.to_bytes(2, "big"))
            iface.counters.tx_frames += gso.gso_segs
            iface.counters.tx_bytes += gso.wire_bytes
            transmit(gso)
            return
        assert not isinstance(payload, GsoFrame)
        frame = dst_mac + iface.mac + ethertype.to_bytes(2, "big") + payload
        iface.counters.tx_frames += 1
        iface.counters.tx_bytes += len(frame)
        transmit(frame)
