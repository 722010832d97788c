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

Forwarding (the zone has `forwarders`): a query `DnsZone.forward_query`
picks is sent on to the first forwarder over UDP from the host's own
ephemeral port with a fresh query ID (drawn from the network's seed), with
EDNS0 (1232 bytes); the answer, matched by forwarder, ID and question, goes
back to the client with its own ID, RA set and AA clear, cut to the
client's size with TC as any answer. A forwarder silent for
`FORWARD_TIMEOUT_S` is replaced by the next; after the last the client gets
SERVFAIL. At most `MAX_FORWARDED` queries wait at once (beyond: SERVFAIL at
once). A truncated upstream answer reaches the client truncated (over TCP:
SERVFAIL): the server does not retry upstream over TCP.

Every event is counted in `counters` (with the zone's counters in
`zone.counters`). Touches the host's sockets and the network's scheduler.
"""

from __future__ import annotations

import errno
import ipaddress
import random
import socket as _socket
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from stack.wire import dns
from stack.wire.errors import WireError
from vnet import network as network_module
from vnet.network import HostSocket, _addr_bytes

from .zone import EDNS_UDP_LIMIT, Client, DnsZone

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
FORWARD_TIMEOUT_S = 2.0
MAX_FORWARDED = 256


class _TcpClient:
    __slots__ = ("address", "inbuf", "last_active_ns", "outbuf", "sock")

    def __init__(self, sock: HostSocket, address: bytes, now_ns: int) -> None:
        self.sock = sock
        self.address = address
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.last_active_ns = now_ns


@dataclass
class _Forwarded:
    """A client's query waiting for a forwarder's answer."""

    query: dns.DnsMessage
    limit: int  # the client's answer size
    deadline_ns: int
    forwarder: int  # index into zone.forwarders
    upstream_id: int
    udp: HostSocket | None = None  # where a UDP client's answer goes
    peer: Any = None
    tcp: _TcpClient | None = None


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
        self._upstream: dict[int, HostSocket] = {}  # family -> socket, when forwarding
        self._forwarded: dict[tuple[bytes, int], _Forwarded] = {}
        self._ids = random.Random(f"{host.network.seed}:{host.name}:dns-forward")

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
            for size in sorted({len(a) for a in self.zone.forwarders}):  # 4 or 16 bytes
                upstream = HostSocket(host, _socket.AF_INET if size == 4 else
                                      _socket.AF_INET6, _socket.SOCK_DGRAM)
                self._upstream[size] = upstream
                upstream.bind(("0.0.0.0" if size == 4 else "::", 0))
                upstream.setblocking(False)
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
        for sock in (self._udp + self._listeners + [c.sock for c in self._clients]
                     + list(self._upstream.values())):
            sock.close()
        self._clients.clear()
        self._forwarded.clear()

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
        for sock in self._upstream.values():
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
            deadlines = [c.last_active_ns + int(TCP_IDLE_S * 1e9) for c in self._clients]
            deadlines += [f.deadline_ns for f in self._forwarded.values()]
            timeout = None
            if deadlines:
                timeout = max(0.0, (min(deadlines) - sched.monotonic_ns()) / 1e9)
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
        for sock in self._upstream.values():
            self._serve_upstream(sock)
        for key, waiting in [(k, f) for k, f in self._forwarded.items() if f.deadline_ns <= now]:
            del self._forwarded[key]
            self.counters["forward.timeout"] += 1
            self._send_upstream(waiting, waiting.forwarder + 1, now)
        for sock in self._udp:
            self._serve_udp(sock, now)
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

    def _serve_udp(self, sock: HostSocket, now: int) -> None:
        for _ in range(UDP_BATCH):
            try:
                data, peer = sock.recvfrom(65535)
            except BlockingIOError:
                return
            self.counters["udp.received"] += 1
            address = _addr_bytes(peer[0], sock.family)
            client = self._client(address, tcp=False)
            query = self.zone.forward_query(data, client)
            if query is not None:
                self._forward(_Forwarded(query, _udp_limit(query), 0, 0, 0, udp=sock,
                                         peer=peer), now)
                continue
            reply = self.zone.answer(data, client)
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
                who = self._client(client.address, tcp=True)
                forward = self.zone.forward_query(query, who)
                if forward is not None:
                    self._forward(_Forwarded(forward, 65535, 0, 0, 0, tcp=client), now)
                    continue
                reply = self.zone.answer(query, who)
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



    # --- forwarding ----------------------------------------------------------------
    def _forward(self, waiting: _Forwarded, now: int) -> None:
        self.counters["forward.queries"] += 1
        if len(self._forwarded) >= MAX_FORWARDED:
            self.counters["forward.full"] += 1
            self._reply(waiting, self._servfail(waiting))
            return
        self._send_upstream(waiting, 0, now)

    def _send_upstream(self, waiting: _Forwarded, index: int, now: int) -> None:
        forwarders = self.zone.forwarders
        while index < len(forwarders):
            target = forwarders[index]
            sock = self._upstream[len(target)]
            ident = self._ids.randrange(0x10000)
            while (target, ident) in self._forwarded:
                ident = self._ids.randrange(0x10000)
            upstream = replace(waiting.query, id=ident, additionals=(
                dns.Record("", dns.TYPE_OPT, EDNS_UDP_LIMIT, 0, b""),))
            try:
                sock.sendto(upstream.build(), (str(ipaddress.ip_address(target)), 53))
            except OSError as e:
                self.counters[f"forward.send_error.{errno.errorcode.get(e.errno or 0, '?')}"] += 1
                index += 1
                continue
            waiting.forwarder, waiting.upstream_id = index, ident
            waiting.deadline_ns = now + int(FORWARD_TIMEOUT_S * 1e9)
            self._forwarded[(target, ident)] = waiting
            return
        self.counters["forward.servfail"] += 1
        self._reply(waiting, self._servfail(waiting))

    def _serve_upstream(self, sock: HostSocket) -> None:
        for _ in range(UDP_BATCH):
            try:
                data, peer = sock.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError:  # an ICMP error for an earlier query: the timeout handles it
                continue
            msg = dns.parse(data)
            if isinstance(msg, WireError) or not msg.qr:
                self.counters["forward.malformed"] += 1
                continue
            key = (_addr_bytes(peer[0], sock.family), msg.id)
            waiting = self._forwarded.get(key)
            if waiting is None or [(dns.name_key(q.name), q.qtype) for q in msg.questions] != [
                    (dns.name_key(q.name), q.qtype) for q in waiting.query.questions]:
                self.counters["forward.unexpected"] += 1
                continue
            del self._forwarded[key]
            self.counters["forward.answered"] += 1
            if msg.tc and waiting.tcp is not None:
                self._reply(waiting, self._servfail(waiting))
                continue
            client_opt = waiting.query.opt
            reply = replace(msg, id=waiting.query.id, aa=False, ra=True, rd=waiting.query.rd,
                            questions=waiting.query.questions,
                            additionals=tuple(r for r in msg.additionals
                                              if r.rtype != dns.TYPE_OPT)
                            + ((dns.Record("", dns.TYPE_OPT, EDNS_UDP_LIMIT, 0, b""),)
                               if client_opt is not None else ()))
            self._reply(waiting, reply.build(waiting.limit))

    @staticmethod
    def _servfail(waiting: _Forwarded) -> bytes:
        query = waiting.query
        return dns.DnsMessage(query.id, qr=True, rd=query.rd, ra=True,
                              rcode=dns.RCODE_SERVFAIL, questions=query.questions).build()

    def _reply(self, waiting: _Forwarded, reply: bytes) -> None:
        if waiting.tcp is not None:
            client = waiting.tcp
            if client in self._clients:
                client.outbuf += len(reply).to_bytes(2, "big") + reply
                self._flush(client)
            return
        assert waiting.udp is not None
        try:
            waiting.udp.sendto(reply, waiting.peer)
            self.counters["udp.sent"] += 1
        except OSError as e:
            self.counters[f"udp.send_error.{errno.errorcode.get(e.errno or 0, '?')}"] += 1


def _udp_limit(query: dns.DnsMessage) -> int:
    opt = query.opt
    return max(512, min(opt.rclass, EDNS_UDP_LIMIT)) if opt is not None else 512
