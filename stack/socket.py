"""The one interface of the stack's sockets: what every caller may ask any socket.

`TcpSocket` (stack/tcp_socket.py), `UdpSocket` (stack/udp.py) and
`IcmpEchoSocket` (stack/ping.py) derive from `Socket`, so the scripted-host
API (vnet.network.HostSocket) and the guest ABI (vnet.guest) never ask which
kind of socket they hold: they ask the socket. The BSD semantics live in the
socket: an operation a kind of socket does not have fails as Linux fails it
(listen/accept on a datagram socket: EOPNOTSUPP; a multicast membership on
anything but UDP: ENOPROTOOPT), and setsockopt/getsockopt go to the option
code of the socket's own kind (stack/sockopt.py for UDP, stack/tcp_sockopt.py
for TCP). What differs between a stream and a datagram socket at the BSD
surface (a blocking connect waits; MSG_WAITALL gathers; a stream send takes
what fits) the caller reads from `type`, as Linux's own socket layer does.

Addresses are bytes (4 or 16, in the socket's family: IPv4 peers of an
AF_INET6 socket appear IPv4-mapped) and ports ints. Nothing here blocks: an
operation that cannot proceed raises BlockingIOError, and errors are OSError
with Linux errno values. Pure interface: touches nothing.
"""

from __future__ import annotations

import enum
import errno
import socket as _socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .oserror import os_error

if TYPE_CHECKING:
    from .socket_memory import SocketMemory

SOCK_STREAM = _socket.SOCK_STREAM
SOCK_DGRAM = _socket.SOCK_DGRAM
DATAGRAM_ROOM = 65507  # what poll reports a datagram socket's send side can take



@dataclass(frozen=True, slots=True)
class SocketReadiness:
    """One direction of a socket as poll sees it: ready, bytes waiting or room, HUP, errno."""

    ready: bool
    nbytes: int = 0
    hangup: bool = False
    error: int = 0  # a Linux errno pending on the socket (POLLERR), or 0


class SocketStatus(enum.Enum):
    """Where a socket is in its life, as WASIX's sock_status asks."""

    OPENING = "opening"
    OPENED = "opened"
    CLOSED = "closed"
    FAILED = "failed"


class Socket(ABC):
    """A stack socket. Subclasses implement the abstract methods; the others are Linux's
    answers for a socket kind that lacks the operation."""

    family: int  # AF_INET or AF_INET6
    type: int  # SOCK_STREAM or SOCK_DGRAM
    proto: int  # IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP or IPPROTO_ICMPV6
    closed: bool
    memory: SocketMemory  # whose socket memory its queues are charged to

    # --- addresses ---------------------------------------------------------
    @abstractmethod
    def bind(self, addr: bytes, port: int) -> None:
        raise NotImplementedError

    @abstractmethod
    def connect(self, addr: bytes, port: int) -> None:
        """Set the peer (datagram) or start connecting (stream: see `connect_result`)."""
        raise NotImplementedError

    @abstractmethod
    def disconnect(self) -> None:
        """connect() to AF_UNSPEC: forget the peer."""
        raise NotImplementedError

    def connect_result(self) -> int | None:
        """None while a connect is in progress, 0 once it succeeded, else its errno.

        A datagram socket's connect completes at once."""
        return 0

    @abstractmethod
    def getsockname(self) -> tuple[bytes, int]:
        raise NotImplementedError

    @abstractmethod
    def getpeername(self) -> tuple[bytes, int]:
        raise NotImplementedError

    def connect_completed(self) -> bool:
        """Whether the connect() just made finished a stream's connection at once (a
        repeated connect() on a non-blocking socket whose handshake is done)."""
        return False

    def accepted_peer(self) -> tuple[bytes, int]:
        """The peer's address as accept() reports it for this (just accepted) socket."""
        return self.getpeername()

    # --- connections -------------------------------------------------------
    @property
    def listening(self) -> bool:
        return False

    def listen(self, backlog: int) -> None:
        raise os_error(errno.EOPNOTSUPP)

    def accept(self) -> Socket:
        raise os_error(errno.EOPNOTSUPP)

    def status(self) -> SocketStatus:
        return SocketStatus.CLOSED if self.closed else SocketStatus.OPENED

    # --- data --------------------------------------------------------------
    @abstractmethod
    def send(self, data: bytes | memoryview) -> int:
        """Send to the peer (EDESTADDRREQ on an unconnected datagram socket)."""
        raise NotImplementedError

    @abstractmethod
    def sendto(self, data: bytes | memoryview, addr: bytes | None = None,
               port: int | None = None) -> int:
        """Send to (addr, port), or to the peer when addr is None."""
        raise NotImplementedError

    def send_room(self) -> int:
        """How many bytes a stream send could take now (0 for datagram sockets)."""
        return 0

    def recv(self, size: int, peek: bool = False) -> bytes:
        return self.recvfrom(size, peek)[0]

    @abstractmethod
    def recvfrom(self, size: int, peek: bool = False) -> tuple[bytes, bytes, int, bool]:
        """(data, source address, source port, truncated)."""
        raise NotImplementedError

    # --- options -----------------------------------------------------------
    @abstractmethod
    def setsockopt(self, level: int, name: int, value: int | bytes) -> None:
        """Linux's levels and names; an int value stands for a native C int."""
        raise NotImplementedError

    @abstractmethod
    def getsockopt(self, level: int, name: int) -> int | bytes:
        raise NotImplementedError

    def join_group(self, group: bytes, ifindex: int | None = None) -> None:
        raise os_error(errno.ENOPROTOOPT)

    def leave_group(self, group: bytes, ifindex: int | None = None) -> None:
        raise os_error(errno.ENOPROTOOPT)

    # --- readiness ---------------------------------------------------------
    @abstractmethod
    def readable(self) -> bool:
        raise NotImplementedError

    @abstractmethod
    def writable(self) -> bool:
        raise NotImplementedError

    def poll_read(self) -> SocketReadiness:
        return SocketReadiness(self.readable())

    def poll_write(self) -> SocketReadiness:
        return SocketReadiness(True, DATAGRAM_ROOM)

    # --- the end -----------------------------------------------------------
    @abstractmethod
    def shutdown(self, how: int) -> None:
        raise NotImplementedError

    @abstractmethod
    def close(self) -> None:
        raise NotImplementedError
