"""L2 segments: a learning Ethernet switch with optional IGMP/MLD snooping, and cables.

What this module may touch: the scheduler (to time deliveries), the endpoints
attached to its ports (their ``deliver(frame)``), capture taps and
``Impairment`` objects. It reads Ethernet addresses only -- except, when
snooping is on, IGMP and MLD messages, which it parses with ``stack.wire``.
It never imports the guest runtime and never builds a packet.

Theory of operation
-------------------
A frame an endpoint hands to ``port.send(frame)`` goes through:

1. **port ingress**: counted (``frames_in``/``bytes_in``); shorter than an
   Ethernet header (14 bytes) is dropped as ``runt``; the port's ``ingress``
   Impairment (endpoint -> switch), if any, may drop, duplicate or delay it.
2. **the switch** (now, or when the ingress delay is over): every capture tap
   of the segment records it once; the source MAC is learned on the ingress
   port (not group addresses); then it is forwarded:

   - unicast to a MAC learned (and not aged out) on another port: that port
     only; learned on the ingress port itself: dropped (``same_port``) -- a
     frame never goes back out of the port it came in on;
   - unicast to an unknown or aged-out MAC, broadcast, and multicast: every
     other port (flooding), except multicast under snooping (below).
3. **partition** (``segment.partition(groups)``, the fault schedule's
   partitions): a copy for a port of another group than the ingress port's is
   dropped (``partitioned``, on the port it would have left by);
4. **port egress**: the port's ``egress`` Impairment (switch -> endpoint) may
   drop, duplicate or delay each copy; the copy is then delivered after the
   segment's ``latency_ns`` plus that delay -- through ``scheduler.defer``
   when the total is zero (run now, FIFO, never recursive), else
   ``scheduler.call_later``. Delivery counts ``frames_out``/``bytes_out`` and
   calls ``endpoint.deliver(frame)``.

So with ``latency_ns == 0`` and no impairment, ``endpoint.deliver`` may run
before ``port.send`` returns (when no deferred work is already running), and
a reply sent from inside ``deliver`` is queued behind it, never nested.

Super-frames (``stack.wire.gso.GsoFrame``, from NICs that offload) cross a
segment or cable whole: the switch reads their addresses from ``data``, and
the counters count the wire frames they stand for. Where the wire is
observed or changed they become their real frames first: a capture tap of
the segment records ``materialise()``'s frames (a copy: the super-frame goes
on unchanged), and a port with an ingress or egress Impairment takes each
real frame through it separately (loss, delay, rate, reordering apply per
wire frame, drawing from the generator exactly as if they had come alone).

The switch is VLAN-unaware: tagged frames are forwarded unchanged in the same
broadcast domain. MAC learning ages lazily: an entry older than ``aging_ns``
is ignored and removed when looked up. The table holds at most ``max_macs``
entries; past that, new addresses are not learned (their frames flood) and
``counters["mac_table_full"]`` counts it.

IGMP / MLD snooping (``snooping=True``)
---------------------------------------
Only IP multicast MACs (01:00:5e:00-7f:.., 33:33:..) are restricted; other
group MACs (STP, LLDP, ...) and broadcast always flood. For those:

- IGMP (v1/v2/v3) and MLD (v1/v2) **queries** flood, and mark their ingress
  port as a router port for ``snooping_timeout_ns``;
- **reports, leaves and dones** go only to router ports (so hosts never see
  each other's reports and never suppress their own), and update membership:
  v1/v2 reports and v3 EXCLUDE / TO_EX / ALLOW / IS_IN / TO_IN records with
  sources join the group on the ingress port for ``snooping_timeout_ns``;
  leaves, dones and TO_IN{} / IS_IN{} records leave it at once (fast leave:
  a port normally has one NIC behind it); BLOCK records are ignored (no
  per-source filtering);
- link-local control groups always flood: 224.0.0.0/24 (MAC
  01:00:5e:00:00:xx), the IPv6 well-known link groups such as ff02::1,
  ff02::2, ff02::16, ff02::fb (MAC 33:33:00:00:00:xx), and solicited-node
  groups ff02::1:ffXX:XXXX (MAC 33:33:ff:xx:xx:xx), so IPv6 neighbour
  discovery keeps working whether or not hosts report them;
- any other IP multicast frame goes to the ports that reported membership of
  a group mapping to its destination MAC, plus router ports. A group nobody
  joined reaches router ports only (none: counted as ``no_receivers`` on the
  ingress port).

Membership is tracked per (port, IP group) and forwarding is by MAC, so two
groups sharing a MAC (the 32:1 IPv4 mapping) do not cancel each other. At
most ``max_groups`` (port, group) entries are kept. A malformed IGMP/MLD
message is counted (``counters["snoop_malformed_<layer>_<reason>"]``) and
then forwarded by its destination like any other frame.

Counters: each port has a ``PortCounters``; ``Segment.counters`` counts
segment-wide events (MAC moves, table full, snooped messages by kind).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Protocol

from stack.wire import WireError, igmp, mld
from stack.wire.ethernet import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    HEADER_LEN,
    EthernetFrame,
    multicast_mac_v4,
    multicast_mac_v6,
)
from stack.wire.gso import GsoFrame
from stack.wire.icmpv6 import MLD_TYPES, Icmpv6Packet
from stack.wire.ip import PROTO_HOPOPT, PROTO_ICMPV6, PROTO_IGMP
from stack.wire.ipv4 import Ipv4Packet
from stack.wire.ipv6 import Ipv6Packet
from vnet.link.capture import BytesLike, Capture, CaptureTap
from vnet.link.impairment import Impairment

if TYPE_CHECKING:
    from vnet.scheduler import Scheduler

__all__ = ["Cable", "Endpoint", "PortCounters", "Segment", "SegmentPort"]

#: Learned MACs are forgotten after this long without a frame from them (300 s, as 802.1D).
DEFAULT_AGING_NS = 300 * 1_000_000_000
DEFAULT_MAX_MACS = 8192
#: IGMP/MLD membership and router-port lifetime: the RFC 3376/3810 default
#: Group Membership Interval (2 x 125 s + 10 s).
DEFAULT_SNOOPING_TIMEOUT_NS = 260 * 1_000_000_000
DEFAULT_MAX_GROUPS = 4096

# Drop reasons (keys of PortCounters.drops).
DROP_RUNT = "runt"
DROP_SAME_PORT = "same_port"
DROP_INGRESS_IMPAIRMENT = "ingress_impairment"
DROP_EGRESS_IMPAIRMENT = "egress_impairment"
DROP_DETACHED = "detached"
DROP_NO_RECEIVERS = "no_receivers"
DROP_PARTITIONED = "partitioned"

_BROADCAST = b"\xff\xff\xff\xff\xff\xff"
_V4_CONTROL_PREFIX = b"\x01\x00\x5e\x00\x00"  # 224.0.0.0/24
_V6_WELL_KNOWN_PREFIX = b"\x33\x33\x00\x00\x00"  # ff02::1, ::2, ::16, ::fb, ...
_V6_SOLICITED_PREFIX = b"\x33\x33\xff"  # ff02::1:ffXX:XXXX

# What snooping made of a multicast frame.
_DATA = 0
_QUERY = 1
_REPORT = 2


class Endpoint(Protocol):
    """Anything a segment port can deliver frames to (a ``Nic``, a router port, ...)."""

    def deliver(self, frame: bytes | GsoFrame) -> None: ...


@dataclass(slots=True)
class PortCounters:
    """Per-port traffic: ``*_in`` from the endpoint into the segment, ``*_out`` to it."""

    frames_in: int = 0
    bytes_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    drops: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        drops = self.drops
        drops[reason] = drops.get(reason, 0) + 1


class SegmentPort:
    """One endpoint's attachment to a segment. ``send(frame)`` puts a frame on the wire.

    ``ingress`` (endpoint -> segment) and ``egress`` (segment -> endpoint)
    are this port's Impairments; set them at any time, None for none.
    """

    __slots__ = ("_deliver_gso_to", "_deliver_to", "counters", "egress", "endpoint", "index",
                 "ingress", "name", "segment")

    def __init__(
        self,
        segment: Segment,
        endpoint: Endpoint,
        index: int,
        name: str,
        ingress: Impairment | None,
        egress: Impairment | None,
    ) -> None:
        self.segment: Segment | None = segment
        self.endpoint = endpoint
        self.index = index
        self.name = name
        self.ingress = ingress
        self.egress = egress
        self.counters = PortCounters()
        self._deliver_to: Callable[[bytes | GsoFrame], None] = endpoint.deliver
        #: Where a super-frame goes: the endpoint's ``deliver_gso`` if it has one (a Nic).
        self._deliver_gso_to: Callable[[GsoFrame], None] = getattr(
            endpoint, "deliver_gso", endpoint.deliver)

    def send(self, frame: BytesLike | GsoFrame) -> None:
        """Hand a frame to the segment (a ``bytes`` object is never copied)."""
        segment = self.segment
        if segment is None:
            self.counters.drop(DROP_DETACHED)
            return
        if isinstance(frame, GsoFrame):
            self.send_gso(frame)
            return
        segment._receive(self, frame if type(frame) is bytes else bytes(frame))

    def send_gso(self, frame: GsoFrame) -> None:
        """`send` for a super-frame (what a NIC that offloads calls)."""
        segment = self.segment
        if segment is None:
            self.counters.drop(DROP_DETACHED)
            return
        if self.ingress is not None:
            for wire in frame.materialise():
                segment._receive(self, wire)
            return
        counters = self.counters
        counters.frames_in += frame.gso_segs
        counters.bytes_in += frame.wire_bytes
        segment._switch_gso(self, frame)

    def detach(self) -> None:
        """Leave the segment; frames still in flight to this port are dropped."""
        if self.segment is not None:
            self.segment.detach(self)

    def _deliver(self, frame: bytes | GsoFrame) -> None:
        counters = self.counters
        if self.segment is None:
            counters.drop(DROP_DETACHED)
            return
        if isinstance(frame, GsoFrame):
            self._deliver_gso(frame)
            return
        counters.frames_out += 1
        counters.bytes_out += len(frame)
        self._deliver_to(frame)

    def _deliver_gso(self, frame: GsoFrame) -> None:
        """`_deliver` for a super-frame (what the switch schedules for one)."""
        counters = self.counters
        if self.segment is None:
            counters.drop(DROP_DETACHED)
            return
        counters.frames_out += frame.gso_segs
        counters.bytes_out += frame.wire_bytes
        self._deliver_gso_to(frame)

    def __repr__(self) -> str:
        where = self.segment.name if self.segment is not None else "detached"
        return f"<SegmentPort {self.name!r} on {where}>"


class _MacEntry:
    __slots__ = ("port", "seen")

    def __init__(self, port: SegmentPort, seen: int) -> None:
        self.port = port
        self.seen = seen


class Segment:
    """An L2 learning switch; ``attach(endpoint)`` gives the endpoint a port."""

    #: Prefix of the capture interface name: ``segment/<name>``.
    kind = "segment"

    def __init__(
        self,
        scheduler: Scheduler,
        name: str,
        latency_ns: int = 0,
        snooping: bool = False,
        *,
        aging_ns: int = DEFAULT_AGING_NS,
        max_macs: int = DEFAULT_MAX_MACS,
        snooping_timeout_ns: int = DEFAULT_SNOOPING_TIMEOUT_NS,
        max_groups: int = DEFAULT_MAX_GROUPS,
    ) -> None:
        if latency_ns < 0:
            raise ValueError(f"segment latency must be >= 0, not {latency_ns!r}")
        if aging_ns < 0 or snooping_timeout_ns < 0:
            raise ValueError("segment aging and snooping timeouts must be >= 0")
        self.scheduler = scheduler
        self.name = name
        self.latency_ns = latency_ns
        self.snooping = snooping
        self.aging_ns = aging_ns
        self.max_macs = max_macs
        self.snooping_timeout_ns = snooping_timeout_ns
        self.max_groups = max_groups
        #: Segment-wide events: MAC moves, table full, snooped messages, malformed ones.
        self.counters: dict[str, int] = {}
        self._hub = False  # a cable: every frame to every other port, no learning
        self._max_ports: int | None = None
        self._ports: list[SegmentPort] = []
        self._next_index = 0
        self._macs: dict[bytes, _MacEntry] = {}
        self._taps: list[CaptureTap] = []
        #: A partition: port -> group; frames cross only within a group (None: whole).
        self._partition: dict[SegmentPort, int] | None = None
        self._now = scheduler.monotonic_ns
        self._defer = scheduler.defer
        self._call_later = scheduler.call_later
        # Snooping state: group MAC -> port -> IP group -> expiry; router port -> expiry.
        self._groups: dict[bytes, dict[SegmentPort, dict[bytes, int]]] = {}
        self._group_entries = 0
        self._routers: dict[SegmentPort, int] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ports={len(self._ports)}>"

    # --- ports ---------------------------------------------------------------
    def attach(
        self,
        endpoint: Endpoint,
        *,
        ingress: Impairment | None = None,
        egress: Impairment | None = None,
        name: str | None = None,
    ) -> SegmentPort:
        """Give ``endpoint`` a new port (named after ``endpoint.name`` if it has one)."""
        if self._max_ports is not None and len(self._ports) >= self._max_ports:
            raise ValueError(f"{self.kind} {self.name!r} already has {self._max_ports} ends")
        index = self._next_index
        self._next_index += 1
        if name is None:
            endpoint_name = getattr(endpoint, "name", None)
            name = endpoint_name if isinstance(endpoint_name, str) else f"{self.name}:{index}"
        port = SegmentPort(self, endpoint, index, name, ingress, egress)
        self._ports.append(port)
        return port

    def detach(self, port: SegmentPort) -> None:
        """Remove a port: its learned MACs, memberships and router mark go with it."""
        if port.segment is not self:
            return
        port.segment = None
        self._ports.remove(port)
        for mac in [m for m, e in self._macs.items() if e.port is port]:
            del self._macs[mac]
        self._routers.pop(port, None)
        for mac in list(self._groups):
            by_port = self._groups[mac]
            groups = by_port.pop(port, None)
            if groups is not None:
                self._group_entries -= len(groups)
            if not by_port:
                del self._groups[mac]

    @property
    def ports(self) -> tuple[SegmentPort, ...]:
        return tuple(self._ports)

    def partition(self, groups: Sequence[Sequence[SegmentPort]] | None) -> None:
        """Split the switch: frames go only between ports of one group (ports in no
        group form one more); dropped copies count as ``partitioned`` on the port
        they would have left by. ``None`` (or no groups) heals it. Frames already
        past the switch are still delivered, as on a real switch reconfigured."""
        if not groups:
            self._partition = None
            return
        self._partition = {port: number for number, group in enumerate(groups)
                           for port in group}

    def capture(self, capture: Capture) -> CaptureTap:
        """Record every frame crossing this segment (once each) as ``<kind>/<name>``."""
        tap = capture.interface(f"{self.kind}/{self.name}", clock=self.scheduler.realtime_ns)
        if tap not in self._taps:
            self._taps.append(tap)
        return tap

    # --- inspection ----------------------------------------------------------
    def mac_table(self) -> dict[bytes, SegmentPort]:
        """Learned MAC -> port, aged-out entries excluded."""
        now = self._now()
        aging = self.aging_ns
        return {mac: e.port for mac, e in self._macs.items() if now - e.seen <= aging}

    def flush_mac_table(self) -> None:
        self._macs.clear()

    def multicast_ports(self, group_mac: bytes) -> list[SegmentPort]:
        """Ports with a live membership of a group mapping to ``group_mac`` (snooping)."""
        now = self._now()
        by_port = self._groups.get(group_mac, {})
        return [p for p in self._ports if _member(by_port.get(p), now)]

    def router_ports(self) -> list[SegmentPort]:
        """Ports where an IGMP/MLD query was seen recently (snooping)."""
        now = self._now()
        routers = self._routers
        return [p for p in self._ports if routers.get(p, -1) > now]

    def _count(self, event: str) -> None:
        counters = self.counters
        counters[event] = counters.get(event, 0) + 1

    # --- data path -----------------------------------------------------------
    def _receive(self, port: SegmentPort, frame: bytes) -> None:
        """A frame from ``port``'s endpoint (``port.send``)."""
        counters = port.counters
        length = len(frame)
        counters.frames_in += 1
        counters.bytes_in += length
        if length < HEADER_LEN:
            counters.drop(DROP_RUNT)
            return
        impairment = port.ingress
        if impairment is None:
            self._switch(port, frame)
            return
        delays = impairment.decide(self._now(), length)
        if not delays:
            counters.drop(DROP_INGRESS_IMPAIRMENT)
            return
        for delay in delays:
            if delay:
                self._call_later(delay, partial(self._switch, port, frame))
            else:
                self._switch(port, frame)

    def _switch_gso(self, port: SegmentPort, frame: GsoFrame) -> None:
        """`_switch` for a super-frame; a unicast one to a port without an egress
        impairment (and no partition) is scheduled for that port here."""
        if port.segment is not self:
            port.counters.drop(DROP_DETACHED)
            return
        now = self._now()
        for tap in self._taps:
            for wire in frame.materialise():
                tap.record(wire)
        if self._hub:
            self._flood(port, frame, now)
            return
        head = frame.data
        table = self._macs
        # _learn_source and _unicast_port, inline for a known source and destination
        learned = None if head[6] & 1 else table.get(head[6:12])
        if learned is not None and learned.port is port:
            learned.seen = now
        else:
            self._learn_source(port, head, now)
        if head[0] & 1:  # never built for group addresses; be safe anyway
            for wire in frame.materialise():
                self._switch_multicast(port, wire, now)
            return
        known = table.get(head[0:6])
        if known is not None and now - known.seen <= self.aging_ns and known.port is not port:
            out = known.port
        else:
            unicast = self._unicast_port(port, frame, head, now)
            if unicast is None:
                return
            out = unicast
        if out.egress is None and self._partition is None:  # _egress, inline
            latency = self.latency_ns
            if latency:
                self._call_later(latency, partial(out._deliver_gso, frame))
            else:
                self._defer(partial(out._deliver_gso, frame))
            return
        self._egress(port, out, frame, now)

    def _switch(self, port: SegmentPort, frame: bytes | GsoFrame) -> None:
        """Learn, tap and forward a frame that has reached the switch."""
        if isinstance(frame, GsoFrame):
            self._switch_gso(port, frame)
            return
        if port.segment is not self:
            port.counters.drop(DROP_DETACHED)
            return
        now = self._now()
        for tap in self._taps:
            tap.record(frame)
        if self._hub:
            self._flood(port, frame, now)
            return
        self._learn_source(port, frame, now)
        if frame[0] & 1:
            self._switch_multicast(port, frame, now)
            return
        out = self._unicast_port(port, frame, frame, now)
        if out is not None:
            self._egress(port, out, frame, now)

    def _learn_source(self, port: SegmentPort, head: bytes, now: int) -> None:
        """Learn (or refresh) the frame's unicast source MAC as behind `port`."""
        if head[6] & 1:
            return
        src = head[6:12]
        entry = self._macs.get(src)
        if entry is None:
            self._learn(src, port, now)
            return
        if entry.port is not port:
            entry.port = port
            self._count("mac_moved")
        entry.seen = now

    def _unicast_port(self, port: SegmentPort, frame: bytes | GsoFrame, head: bytes,
                      now: int) -> SegmentPort | None:
        """The port a unicast frame from `port` leaves by; None once it was flooded
        (destination unknown or aged out) or dropped (it would go back out of `port`)."""
        table = self._macs
        dst = head[0:6]
        entry = table.get(dst)
        if entry is None:
            self._flood(port, frame, now)
            return None
        if now - entry.seen > self.aging_ns:
            del table[dst]
            self._flood(port, frame, now)
            return None
        out = entry.port
        if out is port:
            port.counters.drop(DROP_SAME_PORT)
            return None
        return out

    def _switch_multicast(self, port: SegmentPort, frame: bytes, now: int) -> None:
        if self.snooping and not frame.startswith(_BROADCAST):
            self._forward_multicast(port, frame, now)
        else:
            self._flood(port, frame, now)

    def _learn(self, src: bytes, port: SegmentPort, now: int) -> None:
        table = self._macs
        if len(table) >= self.max_macs:
            aging = self.aging_ns
            for mac in [m for m, e in table.items() if now - e.seen > aging]:
                del table[mac]
            if len(table) >= self.max_macs:
                self._count("mac_table_full")
                return
        table[src] = _MacEntry(port, now)

    def _flood(self, port: SegmentPort, frame: bytes | GsoFrame, now: int) -> None:
        for out in self._ports:
            if out is not port:
                self._egress(port, out, frame, now)

    def _egress(self, port: SegmentPort, out: SegmentPort, frame: bytes | GsoFrame,
                now: int) -> None:
        """Schedule delivery of one copy from ``port`` to ``out``, through its egress impairment."""
        groups = self._partition
        if groups is not None and groups.get(out, -1) != groups.get(port, -1):
            out.counters.drop(DROP_PARTITIONED)
            return
        impairment = out.egress
        latency = self.latency_ns
        if impairment is None:
            if isinstance(frame, GsoFrame):
                delivery = partial(out._deliver_gso, frame)
            else:
                delivery = partial(out._deliver, frame)
            if latency:
                self._call_later(latency, delivery)
            else:
                self._defer(delivery)
            return
        if isinstance(frame, GsoFrame):
            for wire in frame.materialise():
                self._egress(port, out, wire, now)
            return
        delays = impairment.decide(now, len(frame))
        if not delays:
            out.counters.drop(DROP_EGRESS_IMPAIRMENT)
            return
        for delay in delays:
            delay += latency
            if delay:
                self._call_later(delay, partial(out._deliver, frame))
            else:
                self._defer(partial(out._deliver, frame))

    # --- snooping ------------------------------------------------------------
    def _forward_multicast(self, port: SegmentPort, frame: bytes, now: int) -> None:
        first = frame[0]
        if first == 0x01:
            if frame[1] != 0x00 or frame[2] != 0x5E or frame[3] & 0x80:
                self._flood(port, frame, now)  # not an IPv4 multicast MAC
                return
        elif first != 0x33 or frame[1] != 0x33:
            self._flood(port, frame, now)  # not an IPv6 multicast MAC
            return
        kind = self._snoop(port, frame, now)
        if kind == _QUERY:
            self._flood(port, frame, now)
            return
        routers = self._routers
        if kind == _REPORT:
            for out in self._ports:
                if out is not port and routers.get(out, -1) > now:
                    self._egress(port, out, frame, now)
            return
        if (
            frame.startswith(_V4_CONTROL_PREFIX)
            or frame.startswith(_V6_WELL_KNOWN_PREFIX)
            or frame.startswith(_V6_SOLICITED_PREFIX)
        ):
            self._flood(port, frame, now)
            return
        by_port = self._groups.get(frame[0:6])
        sent = False
        for out in self._ports:
            if out is port:
                continue
            if routers.get(out, -1) > now or (
                by_port is not None and _member(by_port.get(out), now)
            ):
                self._egress(port, out, frame, now)
                sent = True
        if not sent and len(self._ports) > 1:
            port.counters.drop(DROP_NO_RECEIVERS)

    def _snoop(self, port: SegmentPort, frame: bytes, now: int) -> int:
        """Act on an IGMP/MLD message in ``frame``; say what kind of frame it is."""
        eth = EthernetFrame.parse(frame)
        if isinstance(eth, WireError):
            self._count(f"snoop_malformed_ethernet_{eth.value}")
            return _DATA
        payload = eth.payload
        if eth.ethertype == ETHERTYPE_IPV4:
            if len(payload) < 20 or payload[9] != PROTO_IGMP:
                return _DATA
            ip4 = Ipv4Packet.parse(payload)
            if isinstance(ip4, WireError):
                self._count(f"snoop_malformed_ipv4_{ip4.value}")
                return _DATA
            if ip4.is_fragment:
                return _DATA
            msg4 = igmp.parse(ip4.payload)
            if isinstance(msg4, WireError):
                self._count(f"snoop_malformed_igmp_{msg4.value}")
                return _DATA
            return self._igmp(port, msg4, now)
        if eth.ethertype == ETHERTYPE_IPV6:
            if len(payload) < 40 or payload[6] not in (PROTO_HOPOPT, PROTO_ICMPV6):
                return _DATA
            ip6 = Ipv6Packet.parse(payload)
            if isinstance(ip6, WireError):
                self._count(f"snoop_malformed_ipv6_{ip6.value}")
                return _DATA
            if ip6.upper_protocol != PROTO_ICMPV6 or ip6.fragment is not None:
                return _DATA
            upper = ip6.upper_payload
            if not upper or upper[0] not in MLD_TYPES:
                return _DATA  # NDP and the rest of ICMPv6: not ours
            icmp = Icmpv6Packet.parse(upper, ip6.src, ip6.dst)
            if isinstance(icmp, WireError):
                self._count(f"snoop_malformed_icmpv6_{icmp.value}")
                return _DATA
            msg6 = mld.parse(icmp)
            if isinstance(msg6, WireError):
                self._count(f"snoop_malformed_mld_{msg6.value}")
                return _DATA
            return self._mld(port, msg6, now)
        return _DATA

    def _igmp(self, port: SegmentPort, msg: igmp.IgmpMessage, now: int) -> int:
        if isinstance(msg, igmp.IgmpV2Query | igmp.IgmpV3Query):
            self._count("igmp_query")
            self._routers[port] = now + self.snooping_timeout_ns
            return _QUERY
        if isinstance(msg, igmp.IgmpV1Report | igmp.IgmpV2Report):
            self._count("igmp_report")
            self._join(port, msg.group, now)
        elif isinstance(msg, igmp.IgmpLeave):
            self._count("igmp_leave")
            self._leave(port, msg.group)
        else:
            self._count("igmp_report")
            for record in msg.records:
                self._record(port, record, now)
        return _REPORT

    def _mld(self, port: SegmentPort, msg: mld.MldMessage, now: int) -> int:
        if isinstance(msg, mld.MldV1Query | mld.MldV2Query):
            self._count("mld_query")
            self._routers[port] = now + self.snooping_timeout_ns
            return _QUERY
        if isinstance(msg, mld.MldV1Report):
            self._count("mld_report")
            self._join(port, msg.group, now)
        elif isinstance(msg, mld.MldV1Done):
            self._count("mld_done")
            self._leave(port, msg.group)
        else:
            self._count("mld_report")
            for record in msg.records:
                self._record(port, record, now)
        return _REPORT

    def _record(self, port: SegmentPort, record: igmp.GroupRecord, now: int) -> None:
        """One IGMPv3/MLDv2 group record (RFC 3376 4.2.12, without source filtering)."""
        rtype = record.record_type
        if rtype == igmp.MODE_IS_EXCLUDE or rtype == igmp.CHANGE_TO_EXCLUDE:
            self._join(port, record.group, now)
        elif rtype in (igmp.MODE_IS_INCLUDE, igmp.CHANGE_TO_INCLUDE, igmp.ALLOW_NEW_SOURCES):
            if record.sources:
                self._join(port, record.group, now)
            elif rtype != igmp.ALLOW_NEW_SOURCES:
                self._leave(port, record.group)
        # BLOCK_OLD_SOURCES and unknown record types: nothing to do.

    def _group_mac(self, group: bytes) -> bytes | None:
        """The MAC that frames to ``group`` use, or None if snooping does not track it."""
        if len(group) == 4:
            if group[0] & 0xF0 != 0xE0:
                self._count("snoop_ignored_group")
                return None
            mac = multicast_mac_v4(group)
        elif len(group) == 16 and group[0] == 0xFF:
            mac = multicast_mac_v6(group)
        else:
            self._count("snoop_ignored_group")
            return None
        if (
            mac.startswith(_V4_CONTROL_PREFIX)
            or mac.startswith(_V6_WELL_KNOWN_PREFIX)
            or mac.startswith(_V6_SOLICITED_PREFIX)
        ):
            return None  # always flooded
        return mac

    def _join(self, port: SegmentPort, group: bytes, now: int) -> None:
        mac = self._group_mac(group)
        if mac is None:
            return
        by_port = self._groups.get(mac)
        groups = by_port.get(port) if by_port is not None else None
        if groups is None or group not in groups:
            if self._group_entries >= self.max_groups:
                self._purge_groups(now)
                if self._group_entries >= self.max_groups:
                    self._count("snoop_group_table_full")
                    return
            by_port = self._groups.setdefault(mac, {})
            groups = by_port.setdefault(port, {})
            self._group_entries += 1
        groups[group] = now + self.snooping_timeout_ns

    def _leave(self, port: SegmentPort, group: bytes) -> None:
        mac = self._group_mac(group)
        if mac is None:
            return
        by_port = self._groups.get(mac)
        if by_port is None:
            return
        groups = by_port.get(port)
        if groups is None or group not in groups:
            return
        del groups[group]
        self._group_entries -= 1
        if not groups:
            del by_port[port]
            if not by_port:
                del self._groups[mac]

    def _purge_groups(self, now: int) -> None:
        for mac in list(self._groups):
            by_port = self._groups[mac]
            for port in list(by_port):
                groups = by_port[port]
                for group in [g for g, expiry in groups.items() if expiry <= now]:
                    del groups[group]
                    self._group_entries -= 1
                if not groups:
                    del by_port[port]
            if not by_port:
                del self._groups[mac]


def _member(groups: dict[bytes, int] | None, now: int) -> bool:
    if not groups:
        return False
    for expiry in groups.values():
        if expiry > now:
            return True
    return False


class Cable(Segment):
    """A point-to-point link: two ends, every frame goes to the other end.

    No learning and no snooping; latency, per-end impairments, counters and
    capture (``cable/<name>``) work as on a ``Segment``.
    """

    kind = "cable"

    def __init__(self, scheduler: Scheduler, name: str, latency_ns: int = 0) -> None:
        super().__init__(scheduler, name, latency_ns)
        self._hub = True
        self._max_ports = 2
