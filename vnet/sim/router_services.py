"""What a topology file's router keys start on a built network: RA, DHCP, mroutes, TUN.

`start_router_services(hspec, host)` (called by `vnet.sim.runner.build` for
each host, after its NICs, routes and NAT) starts the host's router
advertisements (`ra`), DHCP servers (`dhcp_server`), DHCP clients
(`dhcp = true` NICs) and static multicast routes (`mroutes`) through the
`vnet.network.Host` methods the Python API offers. `open_tuns(topo, net,
capture)` opens each `[hosts.NAME.tun]` bridge when a real-time run starts,
as `vnet run --tun` does (a `TopologyError` at the table's line when it
cannot). Touches the network it is given.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from vnet.sim.topology import HostSpec, Topology, TopologyError

if TYPE_CHECKING:
    from vnet.link.capture import Capture
    from vnet.network import Host, Network

__all__ = ["open_tuns", "start_router_services"]


def start_router_services(hspec: HostSpec, host: Host) -> None:
    for ra in hspec.ra:
        host.advertise(ra.interface, [p.prefix for p in ra.prefixes], interval=ra.interval_s,
                       lifetime=ra.lifetime_s, mtu=ra.mtu, rdnss=ra.rdnss,
                       rdnss_lifetime=ra.rdnss_lifetime_s, managed=ra.managed,
                       other=ra.other)
        if ra.prefixes:  # per-prefix flags and lifetimes
            _prefix_flags(host, ra.interface, hspec, ra)
    for server in hspec.dhcp_servers:
        host.dhcp_server(server.interface, server.first, server.last, lease=server.lease_s,
                         router=server.router, dns=server.dns, fixed=server.fixed)
    for mroute in hspec.mroutes:
        host.mroute(mroute.group, mroute.source, mroute.to)
    for nic in hspec.nics:
        if nic.dhcp:
            host.dhcp_client(nic.name)


def _prefix_flags(host: Host, ifname: str, hspec: HostSpec, ra: Any) -> None:
    """Replace the advertised prefixes with the file's, flags and lifetimes included."""
    from dataclasses import replace

    from stack.wire import ndp

    advertiser = host.stack.router_adverts.advertiser
    assert advertiser is not None
    state = advertiser.interfaces[host.stack.interface(ifname).index]
    infos = tuple(ndp.PrefixInfo(n.prefixlen, n.network_address.packed, p.on_link,
                                 p.autonomous, p.valid_s, p.preferred_s)
                  for p in ra.prefixes for n in (ipaddress.IPv6Network(p.prefix),))
    state.config = replace(state.config, prefixes=infos, hop_limit=ra.hop_limit)


def open_tuns(topo: Topology, net: Network, capture: Capture | None) -> list[Any]:
    """Open every host's TUN bridge (real time only); closes the opened ones on failure."""
    from firewall.nat import Publish
    from vnet.link.tun_bridge import TunBridge, TunBridgeError

    bridges: list[Any] = []
    try:
        for hspec in topo.hosts.values():
            tun = hspec.tun
            if tun is None:
                continue
            if net.virtual:
                raise TopologyError(topo.path, tun.line, f"host {hspec.name!r} has a TUN "
                                    "bridge, which runs in real time only (not "
                                    "--virtual-time)")
            host = net.hosts[hspec.name]
            own = [a for n in hspec.nics for a in n.addresses]
            routes = [] if tun.nat else sorted({str(ipaddress.ip_interface(a).network)
                                                for a in own})
            try:
                bridge = TunBridge(net, host, device=tun.device, netns=tun.netns,
                                   kernel_addresses=tun.kernel_addresses,
                                   router_addresses=tun.addresses, routes=routes,
                                   snat=tun.nat,
                                   publish=[Publish.parse(p) for p in tun.publish]).open()
            except TunBridgeError as e:
                raise TopologyError(topo.path, tun.line, f"tun: {e}") from None
            bridges.append(bridge)
            for cidr in tun.addresses:
                host.add_route("::/0" if ":" in cidr else "0.0.0.0/0",
                               ifname=bridge.port_name, metric=100)
            if capture is not None:
                bridge.capture(capture)
    except BaseException:
        for bridge in bridges:
            bridge.close()
        raise
    return bridges
