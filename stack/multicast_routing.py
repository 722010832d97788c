"""Static multicast routes of a router: a group arriving on one interface is forwarded
out of others, with the TTL / hop limit decremented (no PIM, no IGMP proxying).

`MulticastRoutes` is `HostStack.multicast_routes` once a route is added. The
IPv4 and IPv6 input paths offer it every multicast packet after PREROUTING
(`forward`), before deciding whether the host itself is a member; it sends a
copy out of each configured interface when the TTL allows (a copy whose TTL
would reach 0 is dropped and counted, with no ICMP error, as RFC 1812 5.3.1
says for multicast), and counts each copy in `<ipvN>.mforwarded`. Adding a
route joins the group on the incoming interface, so that an IGMP/MLD
snooping switch sends the group there. Link-scoped groups (224.0.0.0/24,
ff02::/16 and narrower) are never forwarded. Copies bigger than the outgoing
MTU are dropped and counted (`mroute_too_big`). Touches only its host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ip import ETH_IPV4, ETH_IPV6

if TYPE_CHECKING:
    from .host import HostStack
    from .interface import Interface

__all__ = ["MulticastRoutes"]


def link_scoped(group: bytes) -> bool:
    if len(group) == 4:
        return group[:3] == b"\xe0\x00\x00"
    return (group[1] & 0x0F) <= 2


class MulticastRoutes:
    """(group, incoming interface index) -> outgoing interface indexes."""

    def __init__(self, host: HostStack) -> None:
        self.host = host
        self.routes: dict[tuple[bytes, int], tuple[int, ...]] = {}

    def add(self, group: bytes, from_ifname: str, to_ifnames: list[str]) -> None:
        if link_scoped(group):
            raise ValueError("a link-scoped group is never forwarded")
        host = self.host
        incoming = host.interface(from_ifname).index
        outgoing = tuple(host.interface(name).index for name in to_ifnames)
        if incoming in outgoing:
            raise ValueError("an mroute forwards out of other interfaces than the incoming one")
        self.routes[(group, incoming)] = outgoing
        host.join_group(incoming, group)

    def forward(self, iface: Interface, packet: memoryview, dst: bytes) -> None:
        """A multicast packet arrived on `iface`: its copies for the configured interfaces."""
        outgoing = self.routes.get((dst, iface.index))
        if outgoing is None:
            return
        host = self.host
        version = 4 if len(dst) == 4 else 6
        ttl_field = 8 if version == 4 else 7
        if packet[ttl_field] <= 1:
            host.counters.drop(f"ipv{version}", "mroute_ttl")
            return
        copy = bytearray(packet)
        copy[ttl_field] -= 1
        if version == 4:  # incremental checksum update (RFC 1624) for the TTL decrement
            csum = int.from_bytes(copy[10:12], "big") + 0x0100
            csum = (csum & 0xFFFF) + (csum >> 16)
            copy[10:12] = csum.to_bytes(2, "big")
        data = bytes(copy)
        for index in outgoing:
            out = host.interfaces.get(index)
            if out is None or not out.is_up:
                continue
            if len(data) > out.mtu:
                host.counters.drop(f"ipv{version}", "mroute_too_big")
                continue
            host.counters[f"ipv{version}.mforwarded"] += 1
            host.neighbors.send(out, dst, ETH_IPV4 if version == 4 else ETH_IPV6, data)
