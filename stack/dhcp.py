"""DHCPv4 on a host: runs `stack.dhcp_client.DhcpClient` and `stack.dhcp_server.DhcpServer`
engines on the host's interfaces.

`DhcpLayer(host)` installs itself as `HostStack.dhcp_handler`, which
`HostStack.deliver` offers every UDP datagram for this host (after INPUT,
so a firewall sees DHCP as Linux's does for a server's UDP socket): one to
port 68 on an interface with a client, or to port 67 on one with a server,
is taken here; anything else goes on to the UDP sockets. Messages go out
the way Linux's DHCP programs send them: a broadcast from a client or a
server (and a server's reply to a client without an address, to its MAC)
is framed straight onto the interface, as a packet socket does (no routing,
no netfilter); a unicast (a client renewing, a server answering ciaddr) is
routed with `HostStack.send_ip`.

A client's `Bind` adds the address (with its on-link route), a default
route through the first router (source "dhcp") and the resolvers to
`HostStack.dns_servers`; `Unbind` removes them. Each engine has its own
driver timer. Touches only its host's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .dhcp_client import Action as ClientAction
from .dhcp_client import Bind, DhcpClient, Transmit, Unbind
from .dhcp_server import BROADCAST, DhcpServer
from .interface import InterfaceAddress
from .ip import PROTO_UDP, IpMeta
from .routing import Route
from .wire import WireError
from .wire import dhcp as wire
from .wire.ethernet import BROADCAST as ETH_BROADCAST
from .wire.ipv4 import Ipv4Repr
from .wire.udp import UdpPacket, UdpRepr

if TYPE_CHECKING:
    from .driver import TimerHandle
    from .host import HostStack
    from .interface import Interface

__all__ = ["DhcpLayer"]

ETH_IPV4 = 0x0800
ANY = bytes(4)


class DhcpLayer:
    """The DHCP clients and servers of one host, by interface index."""

    def __init__(self, host: HostStack) -> None:
        self.host = host
        self.clients: dict[int, DhcpClient] = {}
        self.servers: dict[int, DhcpServer] = {}
        self._timers: dict[tuple[str, int], TimerHandle] = {}
        host.dhcp_handler = self.receive

    # --- setup -----------------------------------------------------------------------
    def start_client(self, ifname: str) -> DhcpClient:
        """Run a DHCP client on an interface (its DISCOVER goes out when the caller's
        turn is over, through the driver's deferred work)."""
        iface = self.host.interface(ifname)
        assert iface.mac is not None
        client = DhcpClient(iface.mac, self.host.rng, hostname=self.host.name)
        self.clients[iface.index] = client

        def start() -> None:
            if self.clients.get(iface.index) is client:
                self._client_actions(iface, client, client.start(self.host.driver.now_ns()))

        self.host.driver.defer(start)
        return client

    def release(self, ifname: str) -> None:
        """Give the lease back (RELEASE) and stop the client."""
        iface = self.host.interface(ifname)
        client = self.clients.pop(iface.index, None)
        if client is not None:
            self._client_actions(iface, client, client.release(self.host.driver.now_ns()))
            timer = self._timers.pop(("client", iface.index), None)
            if timer is not None:
                timer.cancel()

    def serve(self, ifname: str, server: DhcpServer) -> None:
        """Answer DHCP on an interface with `server`."""
        self.servers[self.host.interface(ifname).index] = server

    # --- input -----------------------------------------------------------------------
    def receive(self, meta: IpMeta, payload: memoryview) -> bool:
        """A UDP datagram for this host: True when it was DHCP for an engine here."""
        if len(payload) < 4 or meta.version != 4:
            return False
        dport = (payload[2] << 8) | payload[3]
        if dport == wire.CLIENT_PORT:
            client = self.clients.get(meta.ifindex)
            if client is None:
                return False
            message = self._parse(meta, payload, "client")
            if message is not None:
                iface = self.host.interfaces[meta.ifindex]
                self._client_actions(iface, client,
                                     client.receive(self.host.driver.now_ns(), message))
            return True
        if dport == wire.SERVER_PORT:
            server = self.servers.get(meta.ifindex)
            if server is None:
                return False
            message = self._parse(meta, payload, "server")
            if message is not None:
                reply = server.receive(self.host.driver.now_ns(), message)
                if reply is not None:
                    iface = self.host.interfaces[meta.ifindex]
                    self._send(iface, server.server_id, reply.dst, wire.SERVER_PORT,
                               wire.CLIENT_PORT, reply.message.build(), reply.dst_mac)
            return True
        return False

    def _parse(self, meta: IpMeta, payload: memoryview, who: str) -> wire.DhcpMessage | None:
        counters = self.host.counters
        udp = UdpPacket.parse(payload, meta.src, meta.dst,
                              verify_checksum=not meta.csum_trusted)
        if isinstance(udp, WireError):
            counters.drop("dhcp", f"udp_{udp.value}")
            return None
        message = wire.DhcpMessage.parse(udp.payload)
        if isinstance(message, WireError):
            counters.drop("dhcp", message)
            return None
        counters[f"dhcp.{who}_in"] += 1
        return message

    # --- output ----------------------------------------------------------------------
    def _send(self, iface: Interface, src: bytes, dst: bytes, sport: int, dport: int,
              body: bytes, dst_mac: bytes | None = None) -> None:
        host = self.host
        datagram = UdpRepr(sport, dport).build(body, src, dst)
        host.counters["dhcp.out"] += 1
        if dst == BROADCAST or dst_mac is not None:
            packet = Ipv4Repr(src, dst, PROTO_UDP, ttl=64,
                              ident=host.ipv4.next_ident()).build(datagram)
            host.neighbors.frame_out(iface, dst_mac or ETH_BROADCAST, ETH_IPV4, packet)
            return
        host.send_ip(dst, PROTO_UDP, datagram, src=src)

    def _client_actions(self, iface: Interface, client: DhcpClient,
                        actions: list[ClientAction]) -> None:
        host = self.host
        for action in actions:
            if isinstance(action, Transmit):
                lease = client.lease
                src = lease.address if lease is not None and action.message.ciaddr != ANY \
                    else ANY
                self._send(iface, src, action.unicast_to or BROADCAST, wire.CLIENT_PORT,
                           wire.SERVER_PORT, action.message.build())
            elif isinstance(action, Bind):
                lease = action.lease
                if not action.renewed:
                    host.add_address(iface.name, InterfaceAddress(lease.address,
                                                                  lease.prefix_len))
                    host.counters["dhcp.bound"] += 1
                host.routes.remove_where(ifindex=iface.index, source="dhcp")
                if lease.routers:
                    host.routes.add(Route(ANY, 0, iface.index, lease.routers[0], 0, "dhcp"))
                servers = host.dns_servers
                for address in lease.dns_servers:
                    if address not in servers:
                        servers.append(address)
            elif isinstance(action, Unbind):
                lease = action.lease
                host.routes.remove_where(ifindex=iface.index, source="dhcp")
                host.remove_address(iface.name, InterfaceAddress(lease.address,
                                                                 lease.prefix_len))
                for address in lease.dns_servers:
                    if address in host.dns_servers:
                        host.dns_servers.remove(address)
                host.counters["dhcp.unbound"] += 1
        self._arm("client", iface.index, client.next_deadline())

    def _arm(self, kind: str, ifindex: int, when: int | None) -> None:
        timer = self._timers.pop((kind, ifindex), None)
        if timer is not None:
            timer.cancel()
        if when is not None:
            self._timers[(kind, ifindex)] = self.host.driver.call_at(
                when, lambda: self._on_client_timer(ifindex))

    def _on_client_timer(self, ifindex: int) -> None:
        self._timers.pop(("client", ifindex), None)
        client = self.clients.get(ifindex)
        iface = self.host.interfaces.get(ifindex)
        if client is None or iface is None:
            return
        self._client_actions(iface, client, client.on_timer(self.host.driver.now_ns()))
