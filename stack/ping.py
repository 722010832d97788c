"""ICMP echo sockets ("ping sockets", Linux's SOCK_DGRAM + IPPROTO_ICMP[V6]).

As on Linux: the user sends an ICMP echo request header plus data; the
stack replaces the identifier with the socket's own (its "port", chosen at
bind or first send) and fills in the checksum; echo replies whose
identifier matches are queued on the socket with their source address.
This is how scripted hosts ping. Touches only its stack.
"""

from __future__ import annotations

import errno
import os
from collections import deque
from typing import TYPE_CHECKING

from .wire import icmpv4, icmpv6
from .wire.errors import WireError

if TYPE_CHECKING:
    from .host import HostStack, IpMeta

AF_INET = 2
AF_INET6 = 10


class IcmpEchoSocket:
    kind = "icmp"

    def __init__(self, layer: IcmpEchoLayer, family: int) -> None:
        self.layer = layer
        self.family = family
        self.ident = 0
        self.queue: deque[tuple[bytes, bytes]] = deque()
        self.closed = False
        self.ttl: int | None = None

    def _bind(self) -> None:
        if not self.ident:
            self.ident = self.layer.allocate(self)

    def sendto(self, data: bytes, addr: bytes) -> int:
        if self.closed:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        if (len(addr) == 4) != (self.family == AF_INET) or len(data) < 8:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        expected = icmpv4.TYPE_ECHO_REQUEST if self.family == AF_INET else icmpv6.TYPE_ECHO_REQUEST
        if data[0] != expected or data[1] != 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        self._bind()
        stack = self.layer.stack
        seq = int.from_bytes(data[6:8], "big")
        rt = stack.route_output(addr)
        body = data[8:]
        if self.family == AF_INET:
            message = icmpv4.Icmpv4Repr.echo_request(self.ident, seq).build(body)
            stack.send_ipv4(rt, 1, message, ttl=self.ttl)
        else:
            message = icmpv6.Icmpv6Repr.echo_request(self.ident, seq).build(body, rt.src, addr)
            try:
                stack.send_ipv6(rt, 58, message, hop_limit=self.ttl)
            except PermissionError:
                pass  # Linux: icmpv6_push_pending_frames ignores an OUTPUT drop (IPv4 reports it)
        return len(data)

    def recvfrom(self, bufsize: int) -> tuple[bytes, bytes]:
        if not self.queue:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        data, src = self.queue.popleft()
        return data[:bufsize], src

    def readable(self) -> bool:
        return bool(self.queue) or self.closed

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
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    def release(self, sock: IcmpEchoSocket) -> None:
        self.sockets.pop((sock.family, sock.ident), None)

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
        if sock is None:
            return False
        sock.queue.append((bytes(payload), meta.src))
        self.stack.driver.wake()
        return True
