"""Router advertisements of a host: RS/RA, default routes, on-link prefixes, SLAAC.

`RouterAdvertLayer` is one part of a `stack.host.HostStack`. A host (not a
router) that accepts RAs (`accept`, Linux's accept_ra) installs a default
route through the advertising link-local router, the on-link prefixes, the
advertised MTU, and with `slaac` an EUI-64 address for each autonomous /64
(RFC 4861 §6.3.4, RFC 4862), and the resolvers of an RDNSS option (RFC 8106)
into `HostStack.dns_servers` (a lifetime of 0 removes them; lifetimes are not
otherwise timed). A router sends RAs (`send_advert`, or periodically and in
answer to solicitations once `advertise` starts a `stack.ra_sender.
RouterAdvertiser`) and a host solicits them (`send_solicit`); both go out
through `HostStack.output_control`. Touches only its host's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .interface import InterfaceAddress, link_local_from_mac, mask_address
from .ip import ALL_NODES_V6, ALL_ROUTERS_V6, UNSPECIFIED_V6, IpMeta
from .routing import Route
from .wire import ndp

if TYPE_CHECKING:
    from .host import HostStack
    from .interface import Interface
    from .ra_sender import RaConfig, RouterAdvertiser


class RouterAdvertLayer:
    """Router solicitation and advertisement for one host: see the module docstring."""

    def __init__(self, host: HostStack) -> None:
        self.host = host
        self.accept = True  # accept_ra
        self.slaac = True
        #: Periodic RAs and answers to RS, once `advertise` is called.
        self.advertiser: RouterAdvertiser | None = None

    def advertise(self, ifname: str, config: RaConfig) -> None:
        """Advertise on an interface periodically and when solicited (stack.ra_sender)."""
        from .ra_sender import RouterAdvertiser

        if self.advertiser is None:
            self.advertiser = RouterAdvertiser(self.host)
        self.advertiser.advertise(ifname, config)

    def receive_solicit(self, iface: Interface) -> None:
        """A Router Solicitation arrived on a router's interface."""
        if self.advertiser is not None:
            self.advertiser.solicited(iface)

    def receive(self, iface: Interface, meta: IpMeta, ra: ndp.RouterAdvert) -> None:
        host = self.host
        if not self.accept or host.forwarding:
            return
        if meta.src[:2] != b"\xfe\x80":
            host.counters.drop("ndp", "ra_not_link_local")
            return
        host.counters["ndp.ra_in"] += 1
        now = host.driver.now_ns()
        cache = host.neighbors.ndp[iface.index]
        if ra.options.source_lladdr is not None:
            cache.learn(now, meta.src, ra.options.source_lladdr)
        routes = host.routes
        routes.remove_where(ifindex=iface.index, source="ra", prefix_len=0)
        if ra.router_lifetime:
            routes.add(Route(UNSPECIFIED_V6, 0, iface.index, meta.src, 1024, "ra"))
        if ra.options.mtu and 1280 <= ra.options.mtu <= iface.mtu:
            iface.mtu = ra.options.mtu
        for prefix in ra.options.prefixes:
            if prefix.prefix[:2] == b"\xfe\x80" or prefix.prefix_len > 128:
                continue
            if prefix.on_link:
                routes.remove_where(ifindex=iface.index, source="ra",
                                    prefix=prefix.prefix, prefix_len=prefix.prefix_len)
                if prefix.valid_lifetime:
                    routes.add(Route(mask_address(prefix.prefix, prefix.prefix_len),
                                     prefix.prefix_len, iface.index, None, 256, "ra"))
            if (self.slaac and prefix.autonomous and prefix.prefix_len == 64
                    and prefix.valid_lifetime and iface.mac is not None):
                address = prefix.prefix[:8] + link_local_from_mac(iface.mac)[8:]
                if not iface.has_address(address):
                    host.counters["ndp.slaac_address"] += 1
                    host.add_address(iface.name, InterfaceAddress(address, 64))
        for kind, data in ra.options.other:
            if kind == ndp.OPT_RDNSS:
                self._rdnss(data)

    def _rdnss(self, data: bytes) -> None:
        """An RDNSS option (RFC 8106 5.1): 2 reserved bytes, lifetime, addresses."""
        host = self.host
        if len(data) < 22 or (len(data) - 6) % 16:
            host.counters.drop("ndp", "bad_rdnss")
            return
        lifetime = int.from_bytes(data[2:6], "big")
        servers = host.dns_servers
        for offset in range(6, len(data), 16):
            address = bytes(data[offset:offset + 16])
            if lifetime == 0:
                if address in servers:
                    servers.remove(address)
            elif address not in servers:
                servers.append(address)
                host.counters["ndp.rdnss_server"] += 1

    def send_solicit(self, iface: Interface) -> None:
        src = iface.link_local_v6() or UNSPECIFIED_V6
        assert iface.mac is not None
        options = ndp.NdpOptions(source_lladdr=iface.mac if src != UNSPECIFIED_V6 else None)
        body = ndp.RouterSolicit(options=options).build(src, ALL_ROUTERS_V6)
        self.host.output_control(iface, src, ALL_ROUTERS_V6, body, hop_limit=255)

    def send_advert(self, iface: Interface, prefixes: list[str], lifetime_s: int = 1800,
                    dst: bytes = ALL_NODES_V6) -> None:
        """Advertise this router and `prefixes` (for SLAAC) on one interface."""
        src = iface.link_local_v6()
        assert src is not None and iface.mac is not None
        infos = tuple(
            ndp.PrefixInfo(a.prefix_len, a.network)
            for a in (InterfaceAddress.parse(p) for p in prefixes)
        )
        ra = ndp.RouterAdvert(cur_hop_limit=64, router_lifetime=lifetime_s,
                              options=ndp.NdpOptions(source_lladdr=iface.mac, mtu=iface.mtu,
                                                     prefixes=infos))
        self.host.output_control(iface, src, dst, ra.build(src, dst), hop_limit=255)
