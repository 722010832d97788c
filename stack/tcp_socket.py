"""TCP sockets: what the scripted-host API and the guest ABI hold for SOCK_STREAM.

`TcpSocket` owns the socket options set before a connection exists, and the
listener (`TcpListener`: its SYN and accept queues) or the connection
afterwards; `TcpLayer` (stack/tcp.py) demultiplexes segments to them, binds
their ports and answers SYNs. It implements `stack.socket.Socket`, the one
interface of the stack's sockets. Operations never block: one that cannot
proceed raises BlockingIOError and errors are OSError with Linux errno values.
Touches only its layer, its connection and its stack.
"""

from __future__ import annotations

import errno
import socket as _socket
import weakref
from collections import deque
from typing import TYPE_CHECKING

from . import tcp_sockopt
from .ip import ANY_V4, LOOPBACK_V4, LOOPBACK_V6, UNSPECIFIED_V6, V4_MAPPED_PREFIX, unmap_v4
from .oserror import os_error
from .socket import Socket, SocketReadiness, SocketStatus
from .socket_memory import SEND_RESERVE, SocketMemory
from .tcp_connection import CAN_SEND, TcpConnection
from .tcp_tcb import CLOSE_WAIT, CLOSED, LAST_ACK, SYN_RECEIVED, SYN_SENT, TIME_WAIT
from .weak_handle import WeakHandle

if TYPE_CHECKING:
    from .tcp import TcpLayer

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
SOMAXCONN = 4096
#: Nothing to read and no hang-up: shared (a SocketReadiness is never changed once built).
_NOT_READY = SocketReadiness(False)
# Linux's socket-level state (sock->state), which connect() goes by as much as by
# the connection's: a non-blocking connect() stays CONNECTING until connect() is
# called again, which then returns 0 once (or the failure), CONNECTED after
SS_UNCONNECTED, SS_CONNECTING, SS_CONNECTED = 0, 1, 2




class TcpListener:
    def __init__(self, sock: TcpSocket, backlog: int) -> None:
        self.socket = sock
        self.backlog = max(0, min(backlog, SOMAXCONN))
        self.syn_queue: dict[tuple[bytes, int, bytes, int], TcpConnection] = {}
        self.accept_queue: deque[TcpConnection] = deque()
        self.overflows = 0
        self.cookies_sent = 0
        self.cookies_accepted = 0

    @property
    def syn_queue_limit(self) -> int:
        return max(self.backlog, 8)


class TcpSocket(Socket):
    """A TCP socket: unconnected, listening, or holding one connection."""

    kind = "tcp"
    type: int = _socket.SOCK_STREAM
    proto = _socket.IPPROTO_TCP

    def __init__(self, layer: TcpLayer, family: int) -> None:
        if family not in (AF_INET, AF_INET6):
            raise os_error(errno.EAFNOSUPPORT)
        self.layer = layer
        self.family = family
        self.local_addr: bytes | None = None
        self.local_port = 0
        self.explicit_bind = False
        self.conn: TcpConnection | None = None
        self.listener: TcpListener | None = None
        self.closed = False
        self.pending_error = 0
        # options (applied to the connection when it exists)
        self.reuseaddr = False
        self.reuseport = False
        self.v6only = False
        self.nodelay = False
        self.keepalive = False
        self.keepalive_time_ns: int | None = None
        self.keepalive_intvl_ns: int | None = None
        self.keepalive_probes: int | None = None
        self.linger: tuple[bool, int] = (False, 0)
        self.rcvbuf = layer.config.rmem_default
        self.sndbuf = layer.config.wmem_default
        self.memory: SocketMemory = layer.stack.socket_memory  # a guest's, once it owns us
        self.priority = 0  # SO_PRIORITY: kept and reported
        self.user_timeout_ns = 0
        self.congestion = layer.config.congestion
        self.maxseg: int | None = None
        self.ttl: int | None = None
        self.tos = 0  # IP_TOS: IPv4 (and v4-mapped) traffic
        self.tclass = 0  # IPV6_TCLASS: IPv6 traffic of an AF_INET6 socket
        #: stack.ancillary bits (SO_TIMESTAMP, IP_PKTINFO …): kept and reported, as Linux
        #: accepts them on TCP sockets; recvmsg on a stream delivers no control message
        self.recv_ancillary = 0
        self.bound_device: int | None = None
        self.shut_wr = False
        self.connect_failure = 0  # why the last connect() failed, once it has
        # connect() itself reported its failure: Linux then disconnects the socket
        # (tcp_disconnect), so recv() is ENOTCONN rather than end of stream
        self.connect_reported = False
        self.connect_state = SS_UNCONNECTED
        #: once closed, the stand-in a TIME-WAIT record reaches the connection through
        #: (stack/weak_handle.py): it lives as long as this socket, no longer
        self.conn_handle: WeakHandle | None = None

    # --- state -------------------------------------------------------------
    @property
    def any_addr(self) -> bytes:
        return ANY_V4 if self.family == AF_INET else UNSPECIFIED_V6

    @property
    def listening(self) -> bool:
        return self.listener is not None

    def _check_family(self, addr: bytes) -> None:
        if (self.family == AF_INET) != (len(addr) == 4):
            raise os_error(errno.EAFNOSUPPORT if self.family == AF_INET else errno.EINVAL)

    def apply_options(self, conn: TcpConnection) -> None:
        conn.nodelay = self.nodelay
        conn.keepalive = self.keepalive
        if self.keepalive_time_ns is not None:
            conn.keepalive_time_ns = self.keepalive_time_ns
        if self.keepalive_intvl_ns is not None:
            conn.keepalive_intvl_ns = self.keepalive_intvl_ns
        if self.keepalive_probes is not None:
            conn.keepalive_probes = self.keepalive_probes
        conn.linger = self.linger
        conn.rcvbuf = self.rcvbuf
        conn.sndbuf = self.sndbuf
        conn.user_timeout_ns = self.user_timeout_ns
        conn.ttl = self.ttl
        conn.tos = self.tclass if len(conn.local) == 16 else self.tos
        if self.maxseg:
            conn.adv_mss = min(conn.adv_mss, self.maxseg)
        if self.congestion != conn.cc.name:
            from .congestion import make

            conn.cc = make(self.congestion, conn._effective_mss())

    # --- binding -----------------------------------------------------------
    def bind(self, addr: bytes, port: int) -> None:
        if self.closed:
            raise os_error(errno.EBADF)
        if self.local_addr is not None:
            raise os_error(errno.EINVAL)
        self._check_family(addr)
        self.layer.bind(self, addr, port)
        self.explicit_bind = True

    def listen(self, backlog: int) -> None:
        if self.closed:
            raise os_error(errno.EBADF)
        if self.conn is not None:
            raise os_error(errno.EINVAL)
        if self.listener is not None:
            self.listener.backlog = max(0, min(backlog, SOMAXCONN))
            return
        if self.local_addr is None:
            self.layer.bind(self, self.any_addr, 0)
        self.layer.check_listen_conflict(self)
        self.listener = TcpListener(self, backlog)
        self.layer.add_listener(self.listener)

    def connect(self, addr: bytes, port: int) -> None:
        """Start connecting; the caller waits for `connect_result()`."""
        if self.closed:
            raise os_error(errno.EBADF)
        if self.listener is not None:
            raise os_error(errno.EISCONN)
        conn = self.conn
        if self.connect_state == SS_CONNECTED:
            raise os_error(errno.EISCONN)  # even once the connection has ended
        if self.connect_state == SS_CONNECTING and conn is not None:
            if conn.state == SYN_SENT or conn.state == SYN_RECEIVED:
                raise os_error(errno.EALREADY)
            if conn.state == CLOSED:  # it failed: report it and disconnect
                err, conn.error = conn.error or errno.ECONNABORTED, 0
                self.connect_state = SS_UNCONNECTED
                self.connect_reported = True
                raise os_error(err)
            self.connect_state = SS_CONNECTED  # it got through: 0 (connect_completed)
            return
        self._check_family(addr)
        if conn is not None:
            if conn.state != CLOSED:
                raise os_error(errno.EISCONN)
            self.conn = None
        if port == 0:
            raise os_error(errno.ECONNREFUSED)
        self.connect_failure = 0
        self.connect_reported = False
        wire = unmap_v4(addr) if self.family == AF_INET6 else addr
        if self.family == AF_INET6 and len(wire) == 4 and self.v6only:
            raise os_error(errno.ENETUNREACH)
        if wire == ANY_V4 or wire == UNSPECIFIED_V6:
            wire = self._unspecified_peer(wire)
        layer = self.layer
        outer = layer.begin_turn()  # one clock read for the call (TcpLayer.begin_turn)
        try:
            layer.connect(self, wire, port)
        finally:
            layer.end_turn(outer)
        self.connect_state = SS_CONNECTING

    def connect_completed(self) -> bool:
        """Whether connect() just found its connection established rather than starting
        one: a non-blocking socket's repeated connect(), which Linux answers with 0."""
        return self.connect_state == SS_CONNECTED

    def _unspecified_peer(self, wire: bytes) -> bytes:
        """connect() to 0.0.0.0 / :: means this host, as on Linux: IPv4 goes to the bound
        address or else 127.0.0.1 (ip_route_connect); IPv6 to ::1, or to 127.0.0.1 when
        the socket is bound to an IPv4-mapped address (tcp_v6_connect)."""
        local = unmap_v4(self.local_addr) if self.local_addr is not None else None
        if wire == ANY_V4:
            return local if local is not None and len(local) == 4 and local != ANY_V4 else (
                LOOPBACK_V4)
        if local is not None and len(local) == 4:
            return LOOPBACK_V4
        return LOOPBACK_V6

    def disconnect(self) -> None:
        """connect(AF_UNSPEC): refused, as vnet always has (Linux would abort the connection)."""
        raise os_error(errno.EAFNOSUPPORT)

    def connect_result(self) -> int | None:
        """None while connecting; 0 once connected; an errno if it failed."""
        conn = self.conn
        if conn is None:
            return errno.ENOTCONN
        if conn.state == SYN_SENT or conn.state == SYN_RECEIVED:
            return None
        if conn.state == CLOSED:
            # the failure is reported by connect() once, and may be asked for repeatedly
            # while a blocking connect() waits; SO_ERROR no longer returns it afterwards
            if conn.error:
                self.connect_failure = conn.error
                conn.error = 0
            self.connect_reported = True
            if self.connect_state == SS_CONNECTING:
                self.connect_state = SS_UNCONNECTED
            return self.connect_failure or errno.ECONNREFUSED
        if self.connect_state == SS_CONNECTING:
            self.connect_state = SS_CONNECTED  # a blocking connect() returns 0
        return 0

    def accept(self) -> TcpSocket:
        if self.listener is None:
            raise os_error(errno.EINVAL)
        queue = self.listener.accept_queue
        if queue:
            # one that ended while it waited (a reset) is returned too, as on Linux
            conn = queue.popleft()
            child = TcpSocket(self.layer, self.family)
            child.local_addr = conn.local if self.family == AF_INET or len(conn.local) == 16 \
                else V4_MAPPED_PREFIX + conn.local
            child.local_port = conn.lport
            # the listener's options, inherited (as on Linux)
            child.nodelay = self.nodelay
            child.keepalive = self.keepalive
            child.keepalive_time_ns = self.keepalive_time_ns
            child.keepalive_intvl_ns = self.keepalive_intvl_ns
            child.keepalive_probes = self.keepalive_probes
            child.linger = self.linger
            child.rcvbuf = self.rcvbuf
            child.sndbuf = self.sndbuf
            child.user_timeout_ns = self.user_timeout_ns
            child.ttl = self.ttl
            child.tos = self.tos
            child.tclass = self.tclass
            child.congestion = self.congestion
            child.maxseg = self.maxseg
            child.reuseaddr = self.reuseaddr
            child.memory = self.memory
            child.priority = self.priority
            child.recv_ancillary = self.recv_ancillary
            child.conn = conn
            child.connect_state = SS_CONNECTED
            conn.socket = child
            conn.accepted = True
            conn.listener = None
            child.apply_options(conn)
            conn.start_keepalive()
            self.layer.port_users.setdefault(conn.lport, []).append(child)
            return child
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    def getsockname(self) -> tuple[bytes, int]:
        if self.local_addr is None:
            return self.any_addr, 0
        return self.local_addr, self.local_port

    def getpeername(self) -> tuple[bytes, int]:
        conn = self.conn
        if conn is None or conn.state in (SYN_SENT, CLOSED):
            raise os_error(errno.ENOTCONN)
        return self._peer_address(conn)

    def accepted_peer(self) -> tuple[bytes, int]:
        """The peer's address for accept(): given even when the connection was reset in
        the accept queue (Linux's inet_getname with peer=2), where getpeername() is
        ENOTCONN."""
        conn = self.conn
        if conn is None:
            raise os_error(errno.ENOTCONN)
        return self._peer_address(conn)

    def _peer_address(self, conn: TcpConnection) -> tuple[bytes, int]:
        """conn's remote end in this socket's family (IPv4-mapped on an IPv6 socket)."""
        remote = conn.remote
        if self.family == AF_INET6 and len(remote) == 4:
            remote = V4_MAPPED_PREFIX + remote
        return remote, conn.rport

    # --- data --------------------------------------------------------------
    def send(self, data: bytes | memoryview) -> int:
        if self.closed:
            raise os_error(errno.EBADF)
        conn = self.conn
        if conn is None:
            raise os_error(errno.EPIPE)  # Linux: sk_stream_wait_connect on CLOSE/LISTEN
        if self.shut_wr or (conn.state == CLOSED and not conn.error):
            raise os_error(errno.EPIPE)  # Linux: sk_stream_wait_connect on CLOSE
        if conn.state in CAN_SEND and not conn.fin_queued and not conn.error:
            allowed = self.memory.available() - SEND_RESERVE
            if allowed <= 0:  # the owner's socket memory is used up: wait, as Linux
                self.memory.refused += 1  # waits in sk_stream_wait_memory
                raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
            data = data[:allowed]
        layer = self.layer
        outer = layer.begin_turn()
        try:
            sent = conn.send(data)
        finally:
            layer.end_turn(outer)
        layer.settle_memory(conn)
        return sent

    def sendto(self, data: bytes | memoryview, addr: bytes | None = None,
               port: int | None = None) -> int:
        """A connected stream ignores the address, as Linux; an unconnected one is ENOTCONN."""
        if addr is not None and self.conn is None:
            raise os_error(errno.ENOTCONN)
        return self.send(data)

    def send_room(self) -> int:
        conn = self.conn
        if conn is None:
            return 0
        return min(conn.sndbuf - len(conn.sendq), self.memory.available() - SEND_RESERVE)

    def recvfrom(self, size: int, peek: bool = False) -> tuple[bytes, bytes, int, bool]:
        """The data and, once connected, the peer's address (b"", 0 before)."""
        data = self.recv(size, peek)
        conn = self.conn  # getpeername() without its ENOTCONN exception
        if conn is None or conn.state in (SYN_SENT, CLOSED):
            return data, b"", 0, False
        remote = conn.remote
        if self.family == AF_INET6 and len(remote) == 4:
            remote = V4_MAPPED_PREFIX + remote
        return data, remote, conn.rport, False

    def recv(self, size: int, peek: bool = False) -> bytes:
        if self.closed:
            raise os_error(errno.EBADF)
        conn = self.conn
        if conn is None:
            raise os_error(errno.ENOTCONN)
        if size < 0:
            raise ValueError("negative buffersize in recv")
        if conn.state == CLOSED and not conn.rcv_buf and not conn.error:
            # it ended (refused, reset, timed out) and said why once: from now on end of
            # stream, as Linux, whose tcp_done shuts the socket's receive side; unless a
            # blocking connect() said it, which disconnects the socket (ENOTCONN)
            if self.connect_reported:
                raise os_error(errno.ENOTCONN)
            return b""
        data = conn.recv(size, peek)
        if not peek:
            self.layer.settle_memory(conn)
        return data

    def shutdown(self, how: int) -> None:
        conn = self.conn
        if conn is None or conn.state in (CLOSED, SYN_SENT):
            if self.listener is not None and how in (_socket.SHUT_RD, _socket.SHUT_RDWR):
                self.layer.close_listener(self.listener)
                self.listener = None
                return
            raise os_error(errno.ENOTCONN)
        if how not in (_socket.SHUT_RD, _socket.SHUT_WR, _socket.SHUT_RDWR):
            raise os_error(errno.EINVAL)
        if how in (_socket.SHUT_RD, _socket.SHUT_RDWR):
            conn.shutdown_read()
        if how in (_socket.SHUT_WR, _socket.SHUT_RDWR):
            self.shut_wr = True
            layer = self.layer
            outer = layer.begin_turn()
            try:
                conn.shutdown_write()
            finally:
                layer.end_turn(outer)
        self.layer.settle_memory(conn)
        self.layer.stack.driver.wake()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.listener is not None:
            self.layer.close_listener(self.listener)
            self.listener = None
        conn = self.conn
        if conn is not None:
            layer = self.layer
            outer = layer.begin_turn()
            try:
                conn.close()
            finally:
                layer.end_turn(outer)
            state = conn.state
            if state == CLOSED:
                self.layer.settle_memory(conn, release=True)
            elif state != CLOSE_WAIT and state != LAST_ACK:  # it may reach TIME-WAIT
                handle = WeakHandle()  # `handle_for(conn)`, without a Python frame
                handle.target = conn
                self.conn_handle = handle
                conn.handle = weakref.ref(handle)
                if state == TIME_WAIT:
                    self.layer.slim_time_wait(conn)  # TIME-WAIT already: nothing left to run
        self.layer.release(self)

    # --- options -----------------------------------------------------------
    def setsockopt(self, level: int, name: int, value: int | bytes) -> None:
        tcp_sockopt.setsockopt(self, level, name, value)

    def getsockopt(self, level: int, name: int) -> int | bytes:
        return tcp_sockopt.getsockopt(self, level, name)

    def status(self) -> SocketStatus:
        conn = self.conn
        if self.closed:
            return SocketStatus.CLOSED
        if conn is None:
            return SocketStatus.OPENED if self.listening else SocketStatus.OPENING
        if conn.state in (SYN_SENT, SYN_RECEIVED):
            return SocketStatus.OPENING
        if conn.state == CLOSED:
            return SocketStatus.FAILED if conn.error or conn.reset_received else (
                SocketStatus.CLOSED)
        return SocketStatus.OPENED

    # --- readiness ---------------------------------------------------------
    def poll_read(self) -> SocketReadiness:
        err = self.error_pending()
        if err:
            return SocketReadiness(True, 0, hangup=self.hangup(), error=err)
        conn = self.conn
        if self.listening:
            return SocketReadiness(self.readable(), 0)
        if conn is None:
            return _NOT_READY
        readable = self.readable()
        nbytes = len(conn.rcv_buf)
        hangup = self.hangup()
        if not (readable or nbytes or hangup):
            return _NOT_READY
        return SocketReadiness(readable, nbytes, hangup=hangup)

    def poll_write(self) -> SocketReadiness:
        conn = self.conn
        if conn is None:
            return SocketReadiness(not self.listening, 0)
        err = self.error_pending()
        if err:
            return SocketReadiness(True, 0, hangup=self.hangup(), error=err)
        ready = self.writable()
        return SocketReadiness(ready, max(0, conn.sndbuf - len(conn.sendq)) if ready else 0,
                               hangup=self.hangup())

    def readable(self) -> bool:
        if self.listener is not None:
            return bool(self.listener.accept_queue)
        conn = self.conn
        if conn is None:
            return self.closed
        return conn.readable()

    def writable(self) -> bool:
        conn = self.conn
        if conn is None:
            return self.listener is None
        if not conn.writable():
            return False
        if conn.state in CAN_SEND and not conn.fin_queued and not conn.error:
            return self.memory.available() > SEND_RESERVE
        return True

    def hangup(self) -> bool:
        conn = self.conn
        if conn is None:
            return False
        return conn.state == CLOSED or (conn.fin_received and self.shut_wr)

    def error_pending(self) -> int:
        conn = self.conn
        return conn.error if conn is not None else self.pending_error

    def take_error(self) -> int:
        conn = self.conn
        if conn is not None and conn.error:
            err, conn.error = conn.error, 0
            return err
        err, self.pending_error = self.pending_error, 0
        return err
