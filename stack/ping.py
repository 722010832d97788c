"""ICMP echo sockets ("ping sockets", Linux's SOCK_DGRAM + IPPROTO_ICMP[V6]).

As on Linux: the user sends an ICMP echo request header plus data; the
stack replaces the identifier with the socket's own (its "port", chosen at
bind or first send) and fills in the checksum; echo replies whose
identifier matches (and, on a socket bound to an address, that were sent
to that address) are queued on the socket with their source address.

bind() follows Linux's ping_check_bind_addr: IPv4 takes the wildcard or
one of the host's own addresses (all of 127/8 included) and refuses
anything else -- a foreign, broadcast or multicast address -- with
EADDRNOTAVAIL; IPv6 takes the wildcard or an own address (EADDRNOTAVAIL
for a foreign one) and refuses multicast and IPv4-mapped addresses with
EINVAL. A non-zero port is the identifier (EADDRINUSE if another socket
has it); binding a socket that already has one is EINVAL. The bound
address is the source of what it sends: over IPv4 a 127/8 source towards
another host is EINVAL (Linux's route lookup refuses it), and the
destination 0.0.0.0 means this host (the bound address, else 127.0.0.1),
as on Linux; over IPv6 `::` is ENETUNREACH, also as on Linux. connect()
sets the destination `send` uses (the same source checks; 0.0.0.0 and ::
mean this host; a broadcast or multicast one is ENETUNREACH) and fixes a
wildcard source to the route's; getpeername() stays ENOTCONN, all as
Linux's ping sockets do. The only option is IP_TTL (the hop limit of both
families, as vnet has always read it); SO_ERROR reads 0, anything else is
ENOPROTOOPT. shutdown() is inet_shutdown's: unless connected it says ENOTCONN,
yet SHUT_WR takes effect either way (a send is then EPIPE); reads go on
waiting for replies after SHUT_RD, as Linux's ping_recvmsg does (see
tests/stack/test_ping_socket_vs_linux.py). The socket implements
`stack.socket.Socket`; its queue is not charged to socket memory. This is how
scripted hosts ping. Touches only its stack.
"""

from __future__ import annotations

import errno
import socket as _socket
from collections import deque
from typing import TYPE_CHECKING

from .ip import ANY_V4, LOOPBACK_V4, LOOPBACK_V6, UNSPECIFIED_V6, V4_MAPPED_PREFIX
from .oserror import os_error
from .socket import Socket
from .wire import icmpv4, icmpv6
from .wire.errors import WireError

if TYPE_CHECKING:
    from .host import HostStack, IpMeta

AF_INET = 2
AF_INET6 = 10



class IcmpEchoSocket(Socket):
    """A ping socket (AF_INET + IPPROTO_ICMP, or AF_INET6 + IPPROTO_ICMPV6)."""

    kind = "icmp"
    type: int = _socket.SOCK_DGRAM

    def __init__(self, layer: IcmpEchoLayer, family: int) -> None:
        self.layer = layer
        self.family = family
        self.proto = _socket.IPPROTO_ICMP if family == AF_INET else _socket.IPPROTO_ICMPV6
        self.memory = layer.stack.socket_memory
        self.shut_wr = False
        self.ident = 0
        self.queue: deque[tuple[bytes, bytes]] = deque()
        self.closed = False
        self.ttl: int | None = None
        self.local_addr = ANY_V4 if family == AF_INET else UNSPECIFIED_V6
        self.peer: bytes | None = None  # connect()'s destination

    def _bind(self) -> None:
        if not self.ident:
            self.ident = self.layer.allocate(self)

    def bind(self, addr: bytes, port: int = 0) -> None:
        """bind((address, ident)): the checks of Linux's ping_check_bind_addr."""
        if self.closed:
            raise os_error(errno.EBADF)
        if (len(addr) == 4) != (self.family == AF_INET):
            raise os_error(errno.EAFNOSUPPORT if self.family == AF_INET else errno.EINVAL)
        stack = self.layer.stack
        if len(addr) == 16 and (addr[0] == 0xFF or addr[:12] == V4_MAPPED_PREFIX):
            raise os_error(errno.EINVAL)  # multicast or IPv4-mapped: not a unicast address
        if addr not in (ANY_V4, UNSPECIFIED_V6) and not stack.is_local_address(addr):
            raise os_error(errno.EADDRNOTAVAIL)
        if self.ident:
            raise os_error(errno.EINVAL)
        if port:
            self.layer.claim(self, port)
        else:
            self._bind()
        self.local_addr = addr

    def connect(self, addr: bytes, port: int = 0) -> None:
        """Linux's ip4/ip6_datagram_connect for a ping socket: the destination of send()."""
        if self.closed:
            raise os_error(errno.EBADF)
        if (len(addr) == 4) != (self.family == AF_INET):
            raise os_error(errno.EAFNOSUPPORT if self.family == AF_INET else errno.EINVAL)
        src = None if self.local_addr in (ANY_V4, UNSPECIFIED_V6) else self.local_addr
        if addr == ANY_V4:
            addr = src or LOOPBACK_V4
        elif addr == UNSPECIFIED_V6:
            addr = LOOPBACK_V6
        stack = self.layer.stack
        rt = stack.route_output(addr, src)
        if rt.is_broadcast or rt.is_multicast:
            raise os_error(errno.ENETUNREACH)
        if len(addr) == 4 and rt.src[0] == 127 and not rt.iface.is_loopback:
            raise os_error(errno.EINVAL)
        self._bind()
        if src is None:
            self.local_addr = rt.src
        self.peer = addr

    def disconnect(self) -> None:
        """connect(AF_UNSPEC): send() has no destination again."""
        self.peer = None

    def getsockname(self) -> tuple[bytes, int]:
        return self.local_addr, self.ident

    def getpeername(self) -> tuple[bytes, int]:
        raise os_error(errno.ENOTCONN)  # Linux's ping sockets have no getname for the peer

    def send(self, data: bytes | memoryview) -> int:
        """send() on a connected ping socket (EDESTADDRREQ if it is not)."""
        return self.sendto(data)

    def sendto(self, data: bytes | memoryview, addr: bytes | None = None,
               port: int | None = None) -> int:
        if addr is None:
            if self.peer is None:
                raise os_error(errno.EDESTADDRREQ)
            addr = self.peer
        if self.closed:
            raise os_error(errno.EBADF)
        if self.shut_wr:
            raise os_error(errno.EPIPE)
        data = bytes(data)
        if (len(addr) == 4) != (self.family == AF_INET) or len(data) < 8:
            raise os_error(errno.EINVAL)
        expected = icmpv4.TYPE_ECHO_REQUEST if self.family == AF_INET else icmpv6.TYPE_ECHO_REQUEST
        if data[0] != expected or data[1] != 0:
            raise os_error(errno.EINVAL)
        self._bind()
        stack = self.layer.stack
        seq = int.from_bytes(data[6:8], "big")
        src = None if self.local_addr in (ANY_V4, UNSPECIFIED_V6) else self.local_addr
        if addr == ANY_V4:
            addr = src or LOOPBACK_V4  # Linux's route lookup: no destination is this host
        rt = stack.route_output(addr, src)
        if len(addr) == 4 and rt.src[0] == 127 and not rt.iface.is_loopback:
            raise os_error(errno.EINVAL)  # a loopback source never leaves the host
        body = data[8:]
        if self.family == AF_INET:
            message = icmpv4.Icmpv4Repr.echo_request(self.ident, seq).build(body)
            stack.send_ipv4(rt, 1, message, ttl=self.ttl, path_mtu_discovery=True)
        else:
            message = icmpv6.Icmpv6Repr.echo_request(self.ident, seq).build(body, rt.src, addr)
            try:
                stack.send_ipv6(rt, 58, message, hop_limit=self.ttl, path_mtu_discovery=True)
            except PermissionError:
                pass  # Linux: icmpv6_push_pending_frames ignores an OUTPUT drop (IPv4 reports it)
        return len(data)

    def recvfrom(self, size: int, peek: bool = False) -> tuple[bytes, bytes, int, bool]:
        """(the echo reply, its source, 0, False): a longer reply is cut to `size`."""
        if not self.queue:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        data, src = self.queue[0] if peek else self.queue.popleft()
        return data[:size], src, 0, False

    def setsockopt(self, level: int, name: int, value: int | bytes) -> None:
        if level == _socket.IPPROTO_IP and name == _socket.IP_TTL:
            self.ttl = value if isinstance(value, int) else int.from_bytes(value[:4], "little")
            return
        raise os_error(errno.ENOPROTOOPT)

    def getsockopt(self, level: int, name: int) -> int | bytes:
        if level == _socket.SOL_SOCKET and name == _socket.SO_ERROR:
            return 0
        raise os_error(errno.ENOPROTOOPT)

    def readable(self) -> bool:
        return bool(self.queue) or self.closed

    def writable(self) -> bool:
        return True

    def shutdown(self, how: int) -> None:
        if how not in (_socket.SHUT_RD, _socket.SHUT_WR, _socket.SHUT_RDWR):
            raise os_error(errno.EINVAL)
        if how in (_socket.SHUT_WR, _socket.SHUT_RDWR):
            self.shut_wr = True  # SHUT_RD changes nothing a ping socket's reader sees
        if self.peer is None:  # as UDP: the flags are set, and still ENOTCONN
            raise os_error(errno.ENOTCONN)

    def close(self) -> None:
        self.closed = True
        self.layer.release(self)


class IcmpEchoLayer:
    def __init__(self, stack: HostStack) -> None:
        self.stack = stack
        self.sockets: dict[tuple[int, int], IcmpEchoSocket] = {}
        stack.icmp_echo_handler = self.receive

    def socket(self, family: int) -> IcmpEchoSocket:
        return IcmpEchoSocket(self, family)

    def allocate(self, sock: IcmpEchoSocket) -> int:
        rng = self.stack.rng
        for _ in range(65536):
            ident = rng.randrange(1, 0x10000)
            if (sock.family, ident) not in self.sockets:
                self.sockets[(sock.family, ident)] = sock
                return ident
        raise os_error(errno.EAGAIN)

    def claim(self, sock: IcmpEchoSocket, ident: int) -> None:
        """bind() with a port: that identifier, if no other socket has it."""
        if (sock.family, ident) in self.sockets:
            raise os_error(errno.EADDRINUSE)
        self.sockets[(sock.family, ident)] = sock
        sock.ident = ident

    def release(self, sock: IcmpEchoSocket) -> None:
        if self.sockets.get((sock.family, sock.ident)) is sock:
            del self.sockets[(sock.family, sock.ident)]

    def receive(self, meta: IpMeta, payload: memoryview) -> bool:
        family = AF_INET if meta.version == 4 else AF_INET6
        if meta.version == 4:
            msg4 = icmpv4.Icmpv4Packet.parse(payload)
            if isinstance(msg4, WireError):
                return False
            ident = msg4.ident
        else:
            msg6 = icmpv6.Icmpv6Packet.parse(payload, meta.src, meta.dst)
            if isinstance(msg6, WireError):
                return False
            ident = msg6.ident
        sock = self.sockets.get((family, ident))
        if sock is None or sock.local_addr not in (ANY_V4, UNSPECIFIED_V6, meta.dst):
            return False
        sock.queue.append((bytes(payload), meta.src))
        self.stack.driver.wake()
        return True
