"""A DNS server on a virtual host: UDP and TCP port 53 on the host's own stack.

`DnsServer(host, zone).start()` binds UDP and TCP sockets on the host
(0.0.0.0 and, IPv6-only, ::) through `vnet.network.HostSocket`, exactly as
a program on the host would, and answers from one scheduler task
(`HOST/dns`) that waits for its sockets through the scheduler: queries and
answers are ordinary datagrams and segments, so captures, firewalls and
NAT see them. What to answer is `vnet.dns.zone.DnsZone`'s business.

UDP: one reply per query, cut with TC when it exceeds 512 bytes (or the
client's EDNS0 size, at most 1232). TCP (RFC 7766): each message carries a
2-byte length prefix, a connection may carry several queries (answered in
order), and is closed after `TCP_IDLE_S` without a query, when the client
closes it, or when it sends a length prefix of 0. At most
`MAX_TCP_CONNECTIONS` are open; a new one beyond that closes the one idle
longest. A reply the client does not read stays queued (at most
`MAX_TCP_PENDING` bytes, then the connection is closed): the server never
blocks on one client. The source address of a UDP answer is the one the
host's routing picks towards the client (as a server bound to the wildcard
without IP_PKTINFO), which is the queried address on a host with one
address per network.

Every event is counted in `counters` (with the zone's counters in
`zone.counters`). Touches the host's sockets and the network's scheduler.
"""

from __future__ import annotations

import errno
import socket as _socket
from collections import Counter
from typing import TYPE_CHECKING

from vnet import network as network_module
from vnet.network import HostSocket, _addr_bytes

from .zone import Client, DnsZone

if TYPE_CHECKING:
    from vnet.network import Host
    from vnet.scheduler import GuestTask

__all__ = ["DnsServer"]

DNS_PORT = 53
TCP_IDLE_S = 10.0
MAX_TCP_CONNECTIONS = 64
MAX_TCP_PENDING = 256 * 1024
#: Datagrams taken from one socket per wake-up before the others get a turn.
UDP_BATCH = 64


class _TcpClient:
    __slots__ = ("address", "inbuf", "last_active_ns", "outbuf", "sock")

    def __init__(self, sock: HostSocket, address: bytes, now_ns: int) -> None:
        self.sock = sock
        self.address = address
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.last_active_ns = now_ns


class DnsServer:
    """Serves `zone` on `host` (see the module docstring)."""

    def __init__(self, host: Host, zone: DnsZone, port: int = DNS_PORT) -> None:
        self.host = host
        self.zone = zone
        self.port = port
        self.counters: Counter[str] = Counter()
        self._udp: list[HostSocket] = []
        self._listeners: list[HostSocket] = []
        self._clients: list[_TcpClient] = []
        self._stopped = False
        self.task: GuestTask | None = None

    # --- life ---------------------------------------------------------------------
    def start(self) -> DnsServer:
        """Bind the sockets now (OSError if the port is taken) and start answering."""
        host = self.host
        try:
            for family, any_addr in ((_socket.AF_INET, "0.0.0.0"), (_socket.AF_INET6, "::")):
                udp = HostSocket(host, family, _socket.SOCK_DGRAM)
                self._udp.append(udp)
                tcp = HostSocket(host, family, _socket.SOCK_STREAM)
                self._listeners.append(tcp)
                for sock in (udp, tcp):
                    if family == _socket.AF_INET6:
                        sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
                    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
                    sock.bind((any_addr, self.port))
                    sock.setblocking(False)
                tcp.listen(MAX_TCP_CONNECTIONS)
        except BaseException:
            self._close_all()
            raise
        self.task = self._spawn()
        return self

    def stop(self) -> None:
        """Close every socket; the task ends at its next turn."""
        self._stopped = True
        self._close_all()
        sched = self.host.network.scheduler
        with sched.lock:
            sched.notify()

    def _close_all(self) -> None:
        for sock in self._udp + self._listeners + [c.sock for c in self._clients]:
            sock.close()
        self._clients.clear()

    def _spawn(self) -> GuestTask:
        def run(task: GuestTask) -> None:
            network_module._current_task.task = task
            self._serve()

        # wake_key: the task waits for nothing but this host's stack and its own deadline
        return self.host.network.scheduler.spawn(f"{self.host.name}/dns", run,
                                                 wake_key=self.host)

    # --- the loop ------------------------------------------------------------------
    def _ready(self) -> bool:
        if self._stopped:
            return True
        for sock in self._udp:
            if sock._core.readable():
                return True
        for sock in self._listeners:
            if sock._core.readable():
                return True
        for client in self._clients:
            core = client.sock._core
            if core.readable() or (client.outbuf and core.writable()):
                return True
        return False

    def _serve(self) -> None:
        network = self.host.network
        sched = network.scheduler
        while not self._stopped:
            timeout = None
            if self._clients:
                oldest = min(c.last_active_ns for c in self._clients)
                timeout = max(0.0, (oldest + int(TCP_IDLE_S * 1e9) - sched.monotonic_ns()) / 1e9)
            network.wait(self._ready, timeout)
            if self._stopped:
                break
            try:
                self._turn(sched.monotonic_ns())
            except OSError as e:  # a socket closed under us by stop(): nothing to serve
                if self._stopped:
                    break
                self.counters[f"error.{errno.errorcode.get(e.errno or 0, e.errno)}"] += 1

    def _turn(self, now: int) -> None:
        for sock in self._udp:
            self._serve_udp(sock)
        for listener in self._listeners:
            self._accept(listener, now)
        for client in list(self._clients):
            self._serve_tcp(client, now)
        idle_before = now - int(TCP_IDLE_S * 1e9)
        for client in [c for c in self._clients if c.last_active_ns <= idle_before]:
            self.counters["tcp.closed_idle"] += 1
            self._drop(client)

    def _client(self, address: bytes, tcp: bool) -> Client:
        return Client(address, self._owner(address), tcp)

    def _owner(self, address: bytes) -> str | None:
        network = self.host.network
        with network.scheduler.lock:
            for other in network.hosts.values():
                for iface in other.stack.interfaces.values():
                    if not iface.is_loopback and iface.has_address(address):
                        return other.name
        if address in (bytes((127, 0, 0, 1)), bytes(15) + b"\x01"):
            return self.host.name
        return None

    def _serve_udp(self, sock: HostSocket) -> None:
        for _ in range(UDP_BATCH):
            try:
                data, peer = sock.recvfrom(65535)
            except BlockingIOError:
                return
            self.counters["udp.received"] += 1
            address = _addr_bytes(peer[0], sock.family)
            reply = self.zone.answer(data, self._client(address, tcp=False))
            if reply is None:
                continue
            try:
                sock.sendto(reply, peer)
                self.counters["udp.sent"] += 1
            except OSError as e:  # unreachable peer, firewall: counted, never raised
                self.counters[f"udp.send_error.{errno.errorcode.get(e.errno or 0, '?')}"] += 1

    def _accept(self, listener: HostSocket, now: int) -> None:
        while True:
            try:
                sock, peer = listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            if len(self._clients) >= MAX_TCP_CONNECTIONS:
                idlest = min(self._clients, key=lambda c: c.last_active_ns)
                self.counters["tcp.closed_for_room"] += 1
                self._drop(idlest)
            self.counters["tcp.accepted"] += 1
            self._clients.append(_TcpClient(sock, _addr_bytes(peer[0], listener.family), now))

    def _serve_tcp(self, client: _TcpClient, now: int) -> None:
        sock = client.sock
        while True:
            try:
                data = sock.recv(65537)
            except BlockingIOError:
                break
            except OSError:
                self.counters["tcp.reset"] += 1
                self._drop(client)
                return
            if not data:
                self._flush(client)
                self._drop(client)
                return
            client.last_active_ns = now
            client.inbuf += data
            inbuf = client.inbuf
            while len(inbuf) >= 2:
                length = int.from_bytes(inbuf[:2], "big")
                if length == 0:
                    self.counters["tcp.zero_length"] += 1
                    self._drop(client)
                    return
                if len(inbuf) < 2 + length:
                    break
                query = bytes(inbuf[2:2 + length])
                del inbuf[:2 + length]
                reply = self.zone.answer(query, self._client(client.address, tcp=True))
                if reply is not None:
                    client.outbuf += len(reply).to_bytes(2, "big") + reply
            if len(client.outbuf) > MAX_TCP_PENDING:
                self.counters["tcp.closed_unread"] += 1
                self._drop(client)
                return
        self._flush(client)

    def _flush(self, client: _TcpClient) -> None:
        while client.outbuf:
            try:
                sent = client.sock.send(bytes(client.outbuf))
            except BlockingIOError:
                return
            except OSError:
                client.outbuf.clear()
                return
            del client.outbuf[:sent]

    def _drop(self, client: _TcpClient) -> None:
        if client in self._clients:
            self._clients.remove(client)
        client.sock.close()

