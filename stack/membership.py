"""Multicast group membership of a host: IGMP and MLD on each interface.

`MembershipLayer` is one part of a `stack.host.HostStack`, as smoltcp's
iface/interface/multicast.rs: it keeps each interface's joined groups (a
reference count per group in `Interface.groups`, which the IP layers use as
their delivery filter) and drives one `stack.multicast.IgmpHost` /
`MldHost` engine per Ethernet interface (loopback and point-to-point links
report to nobody). Reports go out with TTL / hop limit 1 and a Router Alert
through `HostStack.output_control` (they bypass routing, and pass OUTPUT and
POSTROUTING there). Touches only its host's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ip import ANY_V4, PROTO_ICMPV6, PROTO_IGMP, UNSPECIFIED_V6, IpMeta
from .multicast import IgmpHost, MldHost, Outgoing
from .wire import ethernet, ipv4, ipv6

if TYPE_CHECKING:
    from .host import HostStack
    from .interface import Interface

# Hop-by-hop header with Router Alert (MLD) and PadN: 8 bytes.
MLD_HOP_BY_HOP = bytes((PROTO_ICMPV6, 0, ipv6.OPT_ROUTER_ALERT, 2, 0, 0, ipv6.OPT_PADN, 0))
IGMP_ROUTER_ALERT = bytes((ipv4.OPT_ROUTER_ALERT, 4, 0, 0))


class MembershipLayer:
    """IGMP and MLD for one host: see the module docstring."""

    def __init__(self, host: HostStack) -> None:
        self.host = host
        self.igmp: dict[int, IgmpHost] = {}
        self.mld: dict[int, MldHost] = {}

    def add_interface(self, index: int) -> None:
        self.igmp[index] = IgmpHost(self.host.rng)
        self.mld[index] = MldHost(self.host.rng)

    def join_group(self, ifindex: int, group: bytes) -> None:
        """A socket joined `group` on an interface (IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP)."""
        iface = self.host.interfaces[ifindex]
        if group in iface.groups:
            iface.groups[group] += 1
            return
        iface.groups[group] = 1
        engine = (self.igmp if len(group) == 4 else self.mld).get(ifindex)
        if engine is not None:  # loopback and point-to-point links report to nobody
            engine.join(self.host.driver.now_ns(), group)
            self.host.schedule()

    def leave_group(self, ifindex: int, group: bytes) -> bool:
        iface = self.host.interfaces[ifindex]
        count = iface.groups.get(group)
        if count is None:
            return False
        if count > 1:
            iface.groups[group] = count - 1
            return True
        del iface.groups[group]
        engine = (self.igmp if len(group) == 4 else self.mld).get(ifindex)
        if engine is not None:
            engine.leave(self.host.driver.now_ns(), group)
            self.host.schedule()
        return True

    # --- in -----------------------------------------------------------------------------
    def receive_igmp(self, meta: IpMeta, payload: memoryview) -> None:
        host = self.host
        host.counters["igmp.in"] += 1
        self.igmp[meta.ifindex].receive(host.driver.now_ns(), payload, meta.src, meta.dst,
                                        router_alert=meta.router_alert)
        host.schedule()

    def receive_mld(self, iface: Interface, meta: IpMeta, payload: memoryview) -> None:
        mld = self.mld.get(iface.index)
        if mld is not None:
            mld.receive(self.host.driver.now_ns(), payload, meta.src, meta.dst,
                        hop_limit=meta.ttl, router_alert=meta.router_alert)
            self.host.schedule()

    # --- time and out -------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        deadlines = [d for engine in (*self.igmp.values(), *self.mld.values())
                     if (d := engine.next_deadline()) is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now: int) -> None:
        interfaces = self.host.interfaces
        for index, igmp in self.igmp.items():
            for out in igmp.poll(now):
                self._send_igmp(interfaces[index], out)
        for index, mld in self.mld.items():
            iface = interfaces[index]
            src = iface.link_local_v6() or UNSPECIFIED_V6
            for out in mld.poll(now, src):
                self.host.counters["mld.out"] += 1
                self.host.output_control(iface, src, out.dst, out.payload, hop_limit=1,
                                         hop_by_hop=MLD_HOP_BY_HOP)

    def _send_igmp(self, iface: Interface, out: Outgoing) -> None:
        host = self.host
        src = host.source_for(iface, out.dst, None) or ANY_V4
        header = ipv4.Ipv4Repr(src, out.dst, PROTO_IGMP, ttl=1, ident=host.ipv4.next_ident(),
                               options=IGMP_ROUTER_ALERT)
        packet = bytearray(header.header_len + len(out.payload))
        offset = header.emit_into(packet, 0, len(out.payload))
        packet[offset:] = out.payload
        host.output_control(iface, src, out.dst, packet, hop_limit=1,
                            eth_dst=ethernet.multicast_mac_v4(out.dst))
