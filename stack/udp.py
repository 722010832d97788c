"""UDP: sockets, port binding and datagram demultiplexing, as Linux does them.

Theory of operation
-------------------
`UdpLayer` is the stack's transport for protocol 17. It owns the port table
(port → sockets bound to it, in bind order) and the ephemeral port range.

Binding follows Linux's rules: two sockets conflict when their local
addresses overlap (equal, or either is a wildcard; an AF_INET6 socket bound to
`::` without IPV6_V6ONLY also covers IPv4) unless both set SO_REUSEADDR or
both set SO_REUSEPORT. An address the host does not own is EADDRNOTAVAIL
(multicast and broadcast addresses may be bound, to filter receives).

Unicast delivery picks the best-scoring socket (exact local address over a
wildcard, a connected socket whose peer matches over an unconnected one, a
bound device that matches); ties go to the SO_REUSEPORT group by a hash of
the source, otherwise to the most recently bound socket. Multicast and
broadcast go to every matching socket: bound to the wildcard or to the
destination itself — and for multicast, with IP_MULTICAST_ALL (Linux's
default, on) any socket on the port hears every group the host joined on
the interface; with it off, only sockets that joined the group.

Socket operations never block: one that cannot proceed raises
BlockingIOError, and errors are OSError with Linux errno values, like the
standard library's sockets. Callers (the scripted-host API and the guest
ABI) do the waiting. A datagram that finds a full receive queue (SO_RCVBUF,
counting each datagram's length plus a fixed overhead, as Linux counts
truesize) is dropped and counted. Touches only the stack it belongs to.
"""

from __future__ import annotations

import errno
import socket as _socket
import zlib
from collections import deque
from typing import TYPE_CHECKING

from .wire import udp as wire_udp
from .wire.errors import WireError

if TYPE_CHECKING:
    from .host import HostStack, IpMeta

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6

EPHEMERAL_RANGE = (32768, 60999)  # Linux net.ipv4.ip_local_port_range
DEFAULT_RCVBUF = 212992  # Linux net.core.rmem_default
DEFAULT_SNDBUF = 212992
DATAGRAM_OVERHEAD = 768  # roughly Linux's skb truesize overhead per datagram
MAX_PAYLOAD_V4 = 65535 - 20 - 8
MAX_PAYLOAD_V6 = 65535 - 8

ANY4 = bytes(4)
ANY6 = bytes(16)
MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def _oserror(code: int) -> OSError:
    import os

    return OSError(code, os.strerror(code))


def to_mapped(addr4: bytes) -> bytes:
    return MAPPED_PREFIX + addr4


def unmap(addr: bytes) -> bytes:
    """IPv4-mapped IPv6 → the IPv4 address; anything else unchanged."""
    if len(addr) == 16 and addr[:12] == MAPPED_PREFIX:
        return addr[12:]
    return addr


class UdpSocket:
    """One UDP socket (AF_INET or AF_INET6). Non-blocking; errors as OSError."""

    kind = "udp"

    def __init__(self, layer: UdpLayer, family: int) -> None:
        if family not in (AF_INET, AF_INET6):
            raise _oserror(errno.EAFNOSUPPORT)
        self.layer = layer
        self.family = family
        self.local_addr: bytes | None = None  # family-sized; None until bound
        self.local_port = 0
        self.remote: tuple[bytes, int] | None = None
        self.queue: deque[tuple[bytes, bytes, int, int]] = deque()  # data, src, port, ifindex
        self.queued_bytes = 0
        self.rcvbuf = DEFAULT_RCVBUF
        self.sndbuf = DEFAULT_SNDBUF
        self.reuseaddr = False
        self.reuseport = False
        self.broadcast = False
        self.v6only = False
        self.multicast_ttl = 1
        self.multicast_loop = True
        self.multicast_if: int | None = None  # ifindex
        self.multicast_if_addr: bytes | None = None
        self.multicast_all = True
        self.ttl: int | None = None
        self.tos = 0
        self.bound_device: int | None = None
        self.memberships: set[tuple[int, bytes]] = set()
        self.pending_error = 0
        self.shut_rd = False
        self.shut_wr = False
        self.closed = False
        self.drops = 0
        self.bind_seq = 0

    # --- addressing --------------------------------------------------------
    @property
    def any_addr(self) -> bytes:
        return ANY4 if self.family == AF_INET else ANY6

    def _check_family(self, addr: bytes) -> None:
        if (self.family == AF_INET) != (len(addr) == 4):
            raise _oserror(errno.EAFNOSUPPORT if self.family == AF_INET else errno.EINVAL)

    def bind(self, addr: bytes, port: int) -> None:
        if self.closed:
            raise _oserror(errno.EBADF)
        if self.local_addr is not None:
            raise _oserror(errno.EINVAL)
        self._check_family(addr)
        if not 0 <= port <= 0xFFFF:
            raise OverflowError("port must be 0-65535")
        self.layer.bind(self, addr, port)

    def ensure_bound(self) -> None:
        if self.local_addr is None:
            self.layer.bind(self, self.any_addr, 0)

    def connect(self, addr: bytes, port: int) -> None:
        """Set the default destination and filter receives; AF_UNSPEC (None) disconnects."""
        if self.closed:
            raise _oserror(errno.EBADF)
        self._check_family(addr)
        wire = unmap(addr) if self.family == AF_INET6 else addr
        if self.family == AF_INET6 and len(wire) == 4 and self.v6only:
            raise _oserror(errno.ENETUNREACH)
        if port == 0:
            raise _oserror(errno.ECONNREFUSED)
        rt = self.layer.stack.route_output(wire, None, self.bound_device)
        self.ensure_bound()
        assert self.local_addr is not None
        if self.local_addr == self.any_addr:
            # Linux fixes the source address at connect time
            src = rt.src if self.family == AF_INET or len(wire) == 16 else to_mapped(rt.src)
            self.local_addr = src
        self.remote = (addr, port)
        self.pending_error = 0

    def disconnect(self) -> None:
        self.remote = None

    def getsockname(self) -> tuple[bytes, int]:
        if self.local_addr is None:
            return self.any_addr, 0
        return self.local_addr, self.local_port

    def getpeername(self) -> tuple[bytes, int]:
        if self.remote is None:
            raise _oserror(errno.ENOTCONN)
        return self.remote

    # --- data --------------------------------------------------------------
    def sendto(self, data: bytes | memoryview, addr: bytes | None = None,
               port: int | None = None) -> int:
        if self.closed:
            raise _oserror(errno.EBADF)
        if self.shut_wr:
            raise _oserror(errno.EPIPE)
        if self.pending_error:
            err, self.pending_error = self.pending_error, 0
            raise _oserror(err)
        if addr is None:
            if self.remote is None:
                raise _oserror(errno.EDESTADDRREQ)
            addr, port = self.remote
        assert port is not None
        self._check_family(addr)
        if port == 0:
            raise _oserror(errno.EINVAL)
        wire = unmap(addr) if self.family == AF_INET6 else addr
        if len(wire) == 4 and self.family == AF_INET6 and self.v6only:
            raise _oserror(errno.ENETUNREACH)
        limit = MAX_PAYLOAD_V4 if len(wire) == 4 else MAX_PAYLOAD_V6
        if len(data) > limit:
            raise _oserror(errno.EMSGSIZE)
        self.ensure_bound()
        return self.layer.send(self, bytes(data), wire, port)

    def recvfrom(self, bufsize: int, peek: bool = False) -> tuple[bytes, bytes, int, bool]:
        """(data, source address in this socket's family, source port, truncated)."""
        if self.closed:
            raise _oserror(errno.EBADF)
        if not self.queue:
            if self.pending_error:
                err, self.pending_error = self.pending_error, 0
                raise _oserror(err)
            if self.shut_rd:
                return b"", self.any_addr, 0, False
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        data, src, sport, _ifindex = self.queue[0] if peek else self.queue.popleft()
        if not peek:
            self.queued_bytes -= len(data) + DATAGRAM_OVERHEAD
        if self.family == AF_INET6 and len(src) == 4:
            src = to_mapped(src)
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        return data[:bufsize], src, sport, len(data) > bufsize

    def readable(self) -> bool:
        return bool(self.queue) or bool(self.pending_error) or self.shut_rd or self.closed

    def writable(self) -> bool:
        return not self.closed

    def shutdown(self, how: int) -> None:
        if self.remote is None:
            raise _oserror(errno.ENOTCONN)
        if how in (_socket.SHUT_RD, _socket.SHUT_RDWR):
            self.shut_rd = True
        if how in (_socket.SHUT_WR, _socket.SHUT_RDWR):
            self.shut_wr = True
        self.layer.stack.driver.wake()

    def close(self) -> None:
        if self.closed:
            return
        for ifindex, group in list(self.memberships):
            self.layer.stack.leave_group(ifindex, group)
        self.memberships.clear()
        self.layer.unbind(self)
        self.closed = True
        self.queue.clear()
        self.queued_bytes = 0

    # --- multicast ---------------------------------------------------------
    def join_group(self, group: bytes, ifindex: int | None) -> None:
        """IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP (ifindex None: chosen by route)."""
        from .host import is_multicast

        if not is_multicast(group):
            raise _oserror(errno.EINVAL)
        stack = self.layer.stack
        if ifindex is None or ifindex == 0:
            try:
                ifindex = stack.route_output(group).iface.index
            except OSError:
                raise _oserror(errno.ENODEV) from None
        if ifindex not in stack.interfaces:
            raise _oserror(errno.ENODEV)
        key = (ifindex, group)
        if key in self.memberships:
            raise _oserror(errno.EADDRINUSE)
        if len(self.memberships) >= 20:  # Linux igmp_max_memberships
            raise _oserror(errno.ENOBUFS)
        self.memberships.add(key)
        stack.join_group(ifindex, group)

    def leave_group(self, group: bytes, ifindex: int | None) -> None:
        stack = self.layer.stack
        if ifindex is None or ifindex == 0:
            matches = [k for k in self.memberships if k[1] == group]
            if not matches:
                raise _oserror(errno.EADDRNOTAVAIL)
            key = sorted(matches)[0]
        else:
            key = (ifindex, group)
        if key not in self.memberships:
            raise _oserror(errno.EADDRNOTAVAIL)
        self.memberships.discard(key)
        stack.leave_group(key[0], group)


class UdpLayer:
    """Protocol 17 for one HostStack: the port table and demultiplexing."""

    def __init__(self, stack: HostStack) -> None:
        self.stack = stack
        self.ports: dict[int, list[UdpSocket]] = {}
        self.ephemeral_range = EPHEMERAL_RANGE
        self._bind_seq = 0

    def socket(self, family: int) -> UdpSocket:
        return UdpSocket(self, family)

    # --- binding -----------------------------------------------------------
    @staticmethod
    def _overlap(a: UdpSocket, a_addr: bytes, b: UdpSocket) -> bool:
        b_addr = b.local_addr
        assert b_addr is not None
        if a.bound_device and b.bound_device and a.bound_device != b.bound_device:
            return False

        def covers(sock: UdpSocket, addr: bytes, other: bytes) -> bool:
            """Does sock bound to addr overlap an IPv4 address `other`?"""
            if sock.family == AF_INET:
                return addr == ANY4 or other == ANY4 or addr == other
            if sock.v6only:
                return False
            if addr == ANY6:
                return True
            return addr[:12] == MAPPED_PREFIX and (addr[12:] == other or other == ANY4)

        if a.family == b.family:
            any_addr = ANY4 if a.family == AF_INET else ANY6
            return a_addr == b_addr or a_addr == any_addr or b_addr == any_addr
        if a.family == AF_INET:
            return covers(b, b_addr, a_addr)
        return covers(a, a_addr, b_addr)

    def _conflicts(self, sock: UdpSocket, addr: bytes, port: int) -> bool:
        for other in self.ports.get(port, ()):
            if other is sock or not self._overlap(sock, addr, other):
                continue
            if sock.reuseaddr and other.reuseaddr:
                continue
            if sock.reuseport and other.reuseport:
                continue
            return True
        return False

    def bind(self, sock: UdpSocket, addr: bytes, port: int) -> None:
        from .host import is_multicast

        wire = unmap(addr) if sock.family == AF_INET6 else addr
        if wire not in (ANY4, ANY6) and not is_multicast(wire):
            stack = self.stack
            broadcast = len(wire) == 4 and (wire == b"\xff" * 4 or any(
                a.broadcast == wire for i in stack.interfaces.values() for a in i.ipv4))
            if not broadcast and not stack.is_local_address(wire):
                raise _oserror(errno.EADDRNOTAVAIL)
            if sock.family == AF_INET6 and len(wire) == 4 and sock.v6only:
                raise _oserror(errno.EADDRNOTAVAIL)
        if port == 0:
            port = self._pick_ephemeral(sock, addr)
        elif self._conflicts(sock, addr, port):
            raise _oserror(errno.EADDRINUSE)
        sock.local_addr = addr
        sock.local_port = port
        self._bind_seq += 1
        sock.bind_seq = self._bind_seq
        self.ports.setdefault(port, []).append(sock)

    def _pick_ephemeral(self, sock: UdpSocket, addr: bytes) -> int:
        low, high = self.ephemeral_range
        span = high - low + 1
        start = self.stack.rng.randrange(span)
        for i in range(span):
            port = low + (start + i) % span
            if not self._conflicts(sock, addr, port):
                return port
        raise _oserror(errno.EADDRINUSE)

    def unbind(self, sock: UdpSocket) -> None:
        if sock.local_addr is None:
            return
        bucket = self.ports.get(sock.local_port)
        if bucket and sock in bucket:
            bucket.remove(sock)
            if not bucket:
                del self.ports[sock.local_port]

    # --- output ------------------------------------------------------------
    def send(self, sock: UdpSocket, data: bytes, dst: bytes, dport: int) -> int:
        from .host import is_multicast

        stack = self.stack
        assert sock.local_addr is not None
        local = unmap(sock.local_addr) if sock.family == AF_INET6 else sock.local_addr
        src: bytes | None = None
        if local not in (ANY4, ANY6) and not is_multicast(local) and len(local) == len(dst):
            if stack.is_local_address(local):
                src = local
        mcast = is_multicast(dst)
        ifindex = sock.bound_device
        if mcast and sock.multicast_if:
            ifindex = sock.multicast_if
        if mcast and sock.multicast_if_addr is not None and src is None:
            src = sock.multicast_if_addr
        rt = stack.route_output(dst, src, ifindex)
        if rt.is_broadcast and not sock.broadcast:
            raise _oserror(errno.EACCES)
        header = wire_udp.UdpRepr(sock.local_port, dport)
        datagram = header.build(data, rt.src, dst)
        stack.counters["udp.out"] += 1
        if len(dst) == 4:
            ttl = sock.multicast_ttl if mcast else sock.ttl
            stack.send_ipv4(rt, 17, datagram, ttl=ttl, tos=sock.tos,
                            multicast_loop=sock.multicast_loop)
        else:
            hops = sock.multicast_ttl if mcast else sock.ttl
            stack.send_ipv6(rt, 17, datagram, hop_limit=hops, traffic_class=sock.tos,
                            multicast_loop=sock.multicast_loop)
        return len(data)

    # --- input -------------------------------------------------------------
    def _score(self, sock: UdpSocket, meta: IpMeta, sport: int, group_cast: bool) -> int:
        """How well sock matches a datagram; -1: not at all (after Linux's compute_score)."""
        if sock.closed or sock.local_addr is None:
            return -1
        dst = meta.dst
        score = 0
        if meta.version == 4:
            if sock.family == AF_INET:
                local = sock.local_addr
                score += 1
            elif sock.v6only:
                return -1
            elif sock.local_addr == ANY6:
                local = ANY4
            elif sock.local_addr[:12] == MAPPED_PREFIX:
                local = sock.local_addr[12:]
            else:
                return -1
            any_addr = ANY4
        else:
            if sock.family != AF_INET6:
                return -1
            local = sock.local_addr
            any_addr = ANY6
        if local != any_addr:
            if local != dst:
                return -1
            score += 4
        if sock.remote is not None:
            raddr, rport = sock.remote
            if unmap(raddr) != meta.src or rport != sport:
                return -1
            score += 8
        if sock.bound_device is not None:
            if sock.bound_device != meta.ifindex:
                return -1
            score += 4
        if group_cast and meta.is_multicast and not sock.multicast_all:
            if (meta.ifindex, dst) not in sock.memberships:
                return -1
        return score

    def receive(self, meta: IpMeta, payload: memoryview) -> bool:
        stack = self.stack
        pkt = wire_udp.UdpPacket.parse(payload, meta.src, meta.dst)
        if isinstance(pkt, WireError):
            stack.counters.drop("udp", pkt)
            return True  # counted; no ICMP for a broken datagram
        stack.counters["udp.in"] += 1
        candidates = self.ports.get(pkt.dst_port)
        if not candidates:
            stack.counters.drop("udp", "no_socket")
            return False
        group_cast = meta.is_multicast or meta.is_broadcast
        data = bytes(pkt.payload)
        if group_cast:
            delivered = False
            for sock in candidates:
                if self._score(sock, meta, pkt.src_port, True) >= 0:
                    self._enqueue(sock, data, meta, pkt.src_port)
                    delivered = True
            if not delivered:
                stack.counters.drop("udp", "no_socket")
            return True
        best: list[UdpSocket] = []
        best_score = -1
        for sock in candidates:
            score = self._score(sock, meta, pkt.src_port, False)
            if score > best_score:
                best, best_score = [sock], score
            elif score == best_score and score >= 0:
                best.append(sock)
        if not best:
            stack.counters.drop("udp", "no_socket")
            return False
        if len(best) > 1 and all(s.reuseport for s in best):
            key = zlib.crc32(meta.src + pkt.src_port.to_bytes(2, "big"))
            target = best[key % len(best)]
        else:
            target = max(best, key=lambda s: s.bind_seq)
        self._enqueue(target, data, meta, pkt.src_port)
        return True

    def _enqueue(self, sock: UdpSocket, data: bytes, meta: IpMeta, sport: int) -> None:
        cost = len(data) + DATAGRAM_OVERHEAD
        if sock.shut_rd or sock.queued_bytes + cost > sock.rcvbuf:
            sock.drops += 1
            self.stack.counters.drop("udp", "queue_full")
            return
        sock.queue.append((data, meta.src, sport, meta.ifindex))
        sock.queued_bytes += cost
        self.stack.counters["udp.delivered"] += 1
        self.stack.driver.wake()

    def icmp_error(self, version: int, err: int, invoking: memoryview, icmp_type: int,
                   icmp_code: int, info: int) -> None:
        """ICMP error about a datagram we sent: a connected socket gets it as SO_ERROR."""
        from .wire import ipv4, ipv6

        if version == 4:
            quoted4 = ipv4.Ipv4Packet.parse(invoking, verify_checksum=False, partial=True)
            if isinstance(quoted4, WireError):
                return
            src, dst, upper = quoted4.src, quoted4.dst, quoted4.payload
        else:
            quoted6 = ipv6.Ipv6Packet.parse(invoking, partial=True)
            if isinstance(quoted6, WireError):
                return
            src, dst, upper = quoted6.src, quoted6.dst, quoted6.upper_payload
        if len(upper) < 4:
            return
        sport = int.from_bytes(upper[0:2], "big")
        dport = int.from_bytes(upper[2:4], "big")
        for sock in self.ports.get(sport, ()):
            if sock.remote is None:
                continue  # Linux ignores errors on unconnected sockets (no IP_RECVERR)
            raddr, rport = sock.remote
            if unmap(raddr) == dst and rport == dport:
                local = unmap(sock.local_addr or b"")
                if local in (ANY4, ANY6) or local == src:
                    sock.pending_error = err
                    self.stack.counters["udp.icmp_error"] += 1
                    self.stack.driver.wake()
