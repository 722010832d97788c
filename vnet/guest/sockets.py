"""Sockets as file descriptions in a guest's fd table, and the ABI's address codecs.

`SocketDescription` wraps one stack socket (`stack.tcp.TcpSocket`,
`stack.udp.UdpSocket` or `stack.ping.IcmpEchoSocket`) so that `fd_read`,
`fd_write`, `fd_close`, `fd_fdstat_*` and `poll_oneoff` treat it like any
other fd. Its operations never block; the WASI layer waits through the
scheduler when they raise EAGAIN and the fd is blocking.

Also here: translating the stack's Linux errno values into WASI's, and the
byte layouts of WASIX `addr_port`, `addr_ip`, `addr_cidr` and friends, with
the port in network byte order in both directions (see vnet/sdk/ABI.md).

Touches the stack's socket objects and guest memory; builds no packets.
"""

from __future__ import annotations

import errno as linux
import socket as _socket
import struct
from typing import TYPE_CHECKING, Any

from stack.ping import IcmpEchoSocket
from stack.socket_memory import SEND_RESERVE, SOCKET_OVERHEAD, SocketMemory
from stack.tcp import TcpSocket
from stack.udp import UdpSocket

from .fdtable import FileDescription, Readiness
from .memory import GuestMemory
from .wasi_types import RIGHTS_SOCKET_BASE, Errno, Filetype, WasiError

if TYPE_CHECKING:
    from vnet.network import Host

AF_UNSPEC_WASIX = 0
AF_INET4_WASIX = 1
AF_INET6_WASIX = 2
ADDR_PORT_SIZE = 110
ADDR_IP_SIZE = 18
ADDR_CIDR_SIZE = 28

_LINUX_TO_WASI: dict[int, Errno] = {}
for _code, _name in linux.errorcode.items():
    if _name in Errno.__members__:
        _LINUX_TO_WASI[_code] = Errno[_name]
_LINUX_TO_WASI[linux.EWOULDBLOCK] = Errno.EAGAIN
_LINUX_TO_WASI[linux.EOPNOTSUPP] = Errno.ENOTSUP
_LINUX_TO_WASI[linux.EHOSTDOWN] = Errno.EHOSTUNREACH
_LINUX_TO_WASI[getattr(linux, "ENONET", 64)] = Errno.ENETUNREACH
_LINUX_TO_WASI[linux.EPFNOSUPPORT] = Errno.EAFNOSUPPORT


def wasi_errno(error: OSError) -> Errno:
    """The WASI errno for an OSError raised by the stack (Linux numbering)."""
    if error.errno is None:
        return Errno.EIO
    return _LINUX_TO_WASI.get(error.errno, Errno.EIO)


def raise_wasi(error: OSError) -> None:
    raise WasiError(wasi_errno(error)) from None


# --- address codecs ---------------------------------------------------------

def _groups(addr16: bytes) -> tuple[int, ...]:
    return struct.unpack(">8H", addr16)


def read_addr_port(mem: GuestMemory, ptr: int) -> tuple[int, bytes, int]:
    """(Linux address family, address bytes, port) from a WASIX addr_port."""
    raw = mem.read(ptr, 28)
    tag = raw[0]
    port = int.from_bytes(raw[2:4], "big")
    if tag == AF_INET4_WASIX:
        return _socket.AF_INET, raw[4:8], port
    if tag == AF_INET6_WASIX:
        groups = struct.unpack_from("<8H", raw, 4)
        return _socket.AF_INET6, struct.pack(">8H", *groups), port
    if tag == AF_UNSPEC_WASIX:
        return _socket.AF_UNSPEC, b"", port
    raise WasiError(Errno.EAFNOSUPPORT)


def encode_addr_port(addr: bytes, port: int) -> bytes:
    out = bytearray(ADDR_PORT_SIZE)
    out[2:4] = (port & 0xFFFF).to_bytes(2, "big")
    if len(addr) == 4:
        out[0] = AF_INET4_WASIX
        out[4:8] = addr
    elif len(addr) == 16:
        out[0] = AF_INET6_WASIX
        struct.pack_into("<8H", out, 4, *_groups(addr))
    else:
        out[0] = AF_UNSPEC_WASIX
    return bytes(out)


def write_addr_port(mem: GuestMemory, ptr: int, addr: bytes, port: int) -> None:
    mem.write(ptr, encode_addr_port(addr, port))


def read_addr_ip4(mem: GuestMemory, ptr: int) -> bytes:
    return mem.read(ptr, 4)


def read_addr_ip6(mem: GuestMemory, ptr: int) -> bytes:
    raw = mem.read(ptr, 16)
    return struct.pack(">8H", *struct.unpack("<8H", raw))


def encode_addr_ip(addr: bytes) -> bytes:
    out = bytearray(ADDR_IP_SIZE)
    if len(addr) == 4:
        out[0] = AF_INET4_WASIX
        out[2:6] = addr
    else:
        out[0] = AF_INET6_WASIX
        struct.pack_into("<8H", out, 2, *_groups(addr))
    return bytes(out)


def encode_addr_cidr(addr: bytes, prefix_len: int) -> bytes:
    out = bytearray(ADDR_CIDR_SIZE)
    if len(addr) == 4:
        out[0] = AF_INET4_WASIX
        out[2:6] = addr
        out[6] = prefix_len
    else:
        out[0] = AF_INET6_WASIX
        struct.pack_into("<8H", out, 2, *_groups(addr))
        out[26] = prefix_len
    return bytes(out)


# --- the fd ---------------------------------------------------------------------

StackSocket = TcpSocket | UdpSocket | IcmpEchoSocket


class SocketDescription(FileDescription):
    """A socket in the fd table."""

    is_socket = True
    rights_base = int(RIGHTS_SOCKET_BASE)
    rights_inheriting = int(RIGHTS_SOCKET_BASE)

    def __init__(self, host: Host, core: StackSocket, family: int, sock_type: int,
                 proto: int) -> None:
        super().__init__()
        self.host = host
        self.core = core
        self.family = family
        self.sock_type = sock_type
        self.proto = proto
        self.filetype = (Filetype.SOCKET_STREAM if sock_type == _socket.SOCK_STREAM
                         else Filetype.SOCKET_DGRAM)
        self.recv_timeout_ns: int | None = None
        self.send_timeout_ns: int | None = None
        self.connect_pending = False
        self.overhead_charged_to: SocketMemory | None = None

    def charge_overhead(self, memory: SocketMemory) -> None:
        """Charge this open socket's own cost to its owner (ENOBUFS if it does not fit)."""
        if not memory.try_charge(SOCKET_OVERHEAD):
            raise WasiError(Errno.ENOBUFS)
        self.overhead_charged_to = memory

    # --- data through fd_read / fd_write -----------------------------------
    def read(self, size: int) -> bytes:
        return self.recv(size, peek=False)[0]

    def write(self, data: bytes | memoryview) -> int:
        return self.send(data, None)

    def recv(self, size: int, peek: bool) -> tuple[bytes, bytes, int, bool]:
        """(data, source address, source port, truncated) or WasiError."""
        core = self.core
        try:
            if isinstance(core, TcpSocket):
                data = core.recv(size, peek)
                peer: tuple[bytes, int] = (b"", 0)
                try:
                    peer = core.getpeername()
                except OSError:
                    pass
                return data, peer[0], peer[1], False
            if isinstance(core, UdpSocket):
                return core.recvfrom(size, peek)
            data, src = core.recvfrom(size)
            return data, src, 0, False
        except OSError as e:
            raise_wasi(e)
            raise AssertionError from None

    def send_room(self) -> int:
        """How many bytes a send could take now (streams; 0 when it would block)."""
        core = self.core
        if not isinstance(core, TcpSocket) or core.conn is None:
            return 0
        conn = core.conn
        return min(conn.sndbuf - len(conn.sendq), core.memory.available() - SEND_RESERVE)

    def send(self, data: bytes | memoryview, dest: tuple[bytes, int] | None) -> int:
        core = self.core
        try:
            if isinstance(core, TcpSocket):
                if dest is not None and core.conn is None:
                    raise WasiError(Errno.ENOTCONN)
                return core.send(data)
            if isinstance(core, UdpSocket):
                if dest is None:
                    return core.sendto(data)
                return core.sendto(data, dest[0], dest[1])
            if dest is None:
                return core.send(bytes(data))  # EDESTADDRREQ unless connected
            return core.sendto(bytes(data), dest[0])
        except OSError as e:
            raise_wasi(e)
            raise AssertionError from None

    # --- poll --------------------------------------------------------------
    def readiness_read(self) -> Readiness:
        core = self.core
        if isinstance(core, TcpSocket):
            err = core.error_pending()
            if err:
                return Readiness(True, 0, hangup=core.hangup(),
                                 error=_LINUX_TO_WASI.get(err, Errno.EIO))
            conn = core.conn
            if core.listening:
                return Readiness(core.readable(), 0)
            if conn is None:
                return Readiness(False)
            return Readiness(core.readable(), len(conn.rcv_buf), hangup=core.hangup())
        if isinstance(core, UdpSocket):
            if core.queue:
                return Readiness(True, len(core.queue[0][0]))
            if core.pending_error:
                return Readiness(True, 0, error=_LINUX_TO_WASI.get(core.pending_error,
                                                                    Errno.EIO))
            return Readiness(core.readable())
        return Readiness(core.readable(), 0)

    def readiness_write(self) -> Readiness:
        core = self.core
        if isinstance(core, TcpSocket):
            conn = core.conn
            if conn is None:
                return Readiness(not core.listening, 0)
            err = core.error_pending()
            if err:
                return Readiness(True, 0, hangup=core.hangup(),
                                 error=_LINUX_TO_WASI.get(err, Errno.EIO))
            ready = core.writable()
            return Readiness(ready, max(0, conn.sndbuf - len(conn.sendq)) if ready else 0,
                             hangup=core.hangup())
        return Readiness(True, 65507)

    def close(self) -> None:
        self.core.close()
        if self.overhead_charged_to is not None:
            self.overhead_charged_to.charge(-SOCKET_OVERHEAD)
            self.overhead_charged_to = None

    def __repr__(self) -> str:
        return f"<SocketDescription {self.core!r}>"


def socket_description(fds: Any, fd: int) -> SocketDescription:
    """The socket behind fd: EBADF if none, ENOTSOCK if it is not a socket."""
    d = fds.get(fd)
    if not isinstance(d, SocketDescription):
        raise WasiError(Errno.ENOTSOCK)
    return d
