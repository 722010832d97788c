"""Sockets as file descriptions in a guest's fd table, and the ABI's address codecs.

`SocketDescription` wraps one stack socket (a `stack.socket.Socket`: TCP,
UDP or ICMP echo, which it never needs to tell apart) so that `fd_read`,
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
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from stack.ip import to_v4_mapped
from stack.socket import Socket, SocketReadiness
from stack.socket_memory import SOCKET_OVERHEAD, SocketMemory
from stack.tcp_socket import TcpSocket
from stack.tcp_tcb import LISTEN
from stack.udp import UdpSocket

from .fdtable import FdTable, FileDescription, PollProbe, Readiness
from .memory import GuestMemory
from .wasi_types import RIGHTS_SOCKET_BASE, Errno, Filetype, WasiError

if TYPE_CHECKING:
    from vnet.network import Host

AF_UNSPEC_WASIX: Final = 0
AF_INET4_WASIX: Final = 1
AF_INET6_WASIX: Final = 2
ADDR_PORT_SIZE: Final = 110
ADDR_IP_SIZE: Final = 18
ADDR_CIDR_SIZE: Final = 28
# Linux's address families as plain ints (compiled, a Final is read without a lookup)
_AF_UNSPEC: Final = int(_socket.AF_UNSPEC)
_AF_INET: Final = int(_socket.AF_INET)
_AF_INET6: Final = int(_socket.AF_INET6)

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
    return decode_addr_port(mem.read(ptr, ADDR_PORT_READ_SIZE))


#: The bytes of an addr_port that say anything (tag, port, up to 16 address bytes).
ADDR_PORT_READ_SIZE: Final = 28


def decode_addr_port(raw: bytes) -> tuple[int, bytes, int]:
    """(Linux address family, address bytes, port) from the first 28 bytes of an addr_port."""
    tag = raw[0]
    port = (raw[2] << 8) | raw[3]  # big-endian (no slice, no from_bytes call)
    if tag == AF_INET4_WASIX:
        return _AF_INET, raw[4:8], port
    if tag == AF_INET6_WASIX:
        groups = struct.unpack_from("<8H", raw, 4)
        return _AF_INET6, struct.pack(">8H", *groups), port
    if tag == AF_UNSPEC_WASIX:
        return _AF_UNSPEC, b"", port
    raise WasiError(Errno.EAFNOSUPPORT)


def encode_addr_port(addr: bytes, port: int) -> bytes:
    """The WASIX addr_port for (addr, port): the address's encoding (`address_encoding`,
    cached) with the port put in."""
    encoded = address_encoding(addr)
    if port == 0:
        return encoded
    out = bytearray(encoded)
    out[2] = (port >> 8) & 0xFF  # big-endian: network byte order
    out[3] = port & 0xFF
    return bytes(out)


def address_encoding(addr: bytes) -> bytes:
    """The WASIX addr_port for (addr, port 0); cached per address, as a guest sees few
    addresses but many ports (every connection accepted has a port of its own)."""
    if type(addr) is not bytes:
        addr = bytes(addr)  # a key must be hashable
    encoded = _encoded_addresses.get(addr)
    if encoded is None:
        encoded = _encode_addr_port(addr, 0)
        if len(_encoded_addresses) >= _ENCODED_ADDRESSES_MAX:
            _encoded_addresses.clear()  # bounded: a flood of sources only refills it
        _encoded_addresses[addr] = encoded
    return encoded


def _encode_addr_port(addr: bytes, port: int) -> bytes:
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


#: address → its addr_port with port 0, shared by every guest (the values are immutable).
_encoded_addresses: dict[bytes, bytes] = {}
_ENCODED_ADDRESSES_MAX = 4096


def write_addr_port(mem: GuestMemory, ptr: int, addr: bytes, port: int) -> None:
    """Store (addr, port) as an addr_port at `ptr`: the address's cached encoding, then
    the port (big-endian) into it, with no addr_port built for the pair."""
    mem.write(ptr, address_encoding(addr))
    view = mem.checked_view()  # [ptr, ptr + ADDR_PORT_SIZE) was checked by the write
    view[ptr + 2] = (port >> 8) & 0xFF
    view[ptr + 3] = port & 0xFF


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

# Constants a new socket reads (compiled, a Final is read without a lookup; the enum
# members and int() of a flag would be looked up and called for every socket).
_SOCKET_RIGHTS: Final = int(RIGHTS_SOCKET_BASE)
_SOCKET_STREAM: Final = Filetype.SOCKET_STREAM
_SOCKET_DGRAM: Final = Filetype.SOCKET_DGRAM
_SOCK_STREAM: Final = int(_socket.SOCK_STREAM)


class SocketDescription(FileDescription):
    """A socket in the fd table."""

    is_socket = True
    is_stack_socket = True
    rights_base = _SOCKET_RIGHTS
    rights_inheriting = _SOCKET_RIGHTS

    # What every new socket starts with, as class attributes: an instance gets its own
    # value when one is set (SO_RCVTIMEO, a name encoded…), so a socket() or accept()
    # stores only what differs from one socket to the next.
    recv_timeout_ns: int | None = None
    send_timeout_ns: int | None = None
    connect_pending = False
    overhead_charged_to: SocketMemory | None = None
    # (address, port, its addr_port encoding) last given for each name:
    # reused while the socket's name stays the same
    _local_name: tuple[bytes, int, bytes] = (b"", -1, b"")
    _peer_name: tuple[bytes, int, bytes] = (b"", -1, b"")
    _source_name: tuple[bytes, int, bytes] = (b"", -1, b"")
    #: (an addr_port's first 28 bytes as the guest gave them, the destination they
    #: make for this socket): a sender mostly sends to one peer after another
    last_destination: tuple[bytes, tuple[bytes, int] | None] = (b"", None)

    def __init__(self, host: Host, core: Socket, family: int, sock_type: int,
                 proto: int) -> None:
        super().__init__()
        self.host = host
        self.core = core
        self.family = family
        self.sock_type = sock_type
        self.proto = proto
        self.filetype = _SOCKET_STREAM if sock_type == _SOCK_STREAM else _SOCKET_DGRAM
        # A UDP socket's poll reads its queue (appended by other threads, popped only
        # by this guest's own calls) and its flags: safe without the network lock.
        self.poll_is_atomic = isinstance(core, UdpSocket)
        self.receive_ready = _receive_ready(core)

    # --- names ---------------------------------------------------------------
    def local_name(self) -> bytes:
        """getsockname() as a WASIX addr_port.

        Encoded once per name: the stack's current name is compared with the
        one last encoded, so a bind, connect or autobind shows at once.
        """
        addr, port = self.core.getsockname()
        cached = self._local_name
        if port == cached[1] and addr == cached[0]:
            return cached[2]
        encoded = encode_addr_port(addr, port)
        self._local_name = (addr, port, encoded)
        return encoded

    def peer_name(self) -> bytes:
        """getpeername() as a WASIX addr_port (OSError ENOTCONN from the stack)."""
        addr, port = self.core.getpeername()
        cached = self._peer_name
        if port == cached[1] and addr == cached[0]:
            return cached[2]
        encoded = encode_addr_port(addr, port)
        self._peer_name = (addr, port, encoded)
        return encoded

    def source_name(self, addr: bytes, port: int) -> bytes:
        """Where received data came from, as a WASIX addr_port in this socket's family.

        An IPv4 source on a dual-stack (AF_INET6) socket shows as v4-mapped;
        no address (b"") encodes as AF_UNSPEC. The last source is kept
        encoded: a receiver mostly hears one peer after another.
        """
        cached = self._source_name
        if port == cached[1] and addr == cached[0]:
            return cached[2]
        shown = to_v4_mapped(addr) if self.family == _AF_INET6 and len(addr) == 4 else addr
        encoded = encode_addr_port(shown, port)
        self._source_name = (addr, port, encoded)
        return encoded

    def charge_overhead(self, memory: SocketMemory) -> None:
        """Charge this open socket's own cost to its owner (ENOBUFS if it does not fit)."""
        if not memory.try_charge(SOCKET_OVERHEAD):
            raise WasiError(Errno.ENOBUFS)
        self.overhead_charged_to = memory

    # --- data through fd_read / fd_write -----------------------------------
    def read(self, size: int) -> bytes:
        """fd_read: the stack socket's recv(), which is recvfrom() without the source (a
        stream's peer address, v4-mapped on a dual-stack socket, is not built)."""
        try:
            return self.core.recv(size, False)
        except OSError as e:
            raise_wasi(e)
            raise AssertionError from None

    def write(self, data: bytes | memoryview) -> int:
        return self.send(data, None)

    def recv(self, size: int, peek: bool) -> tuple[bytes, bytes, int, bool]:
        """(data, source address, source port, truncated) or WasiError."""
        try:
            return self.core.recvfrom(size, peek)
        except OSError as e:
            raise_wasi(e)
            raise AssertionError from None

    def send_room(self) -> int:
        """How many bytes a send could take now (streams; 0 when it would block)."""
        return self.core.send_room()

    def send(self, data: bytes | memoryview, dest: tuple[bytes, int] | None) -> int:
        try:
            if dest is None:
                return self.core.send(data)  # EDESTADDRREQ on an unconnected datagram socket
            return self.core.sendto(data, dest[0], dest[1])
        except OSError as e:
            raise_wasi(e)
            raise AssertionError from None

    # --- poll --------------------------------------------------------------
    def readiness_read(self) -> Readiness:
        return _wasi_readiness(self.core.poll_read())

    def readiness_write(self) -> Readiness:
        return _wasi_readiness(self.core.poll_write())

    def poll_probe(self, write: bool) -> PollProbe:
        """The stack socket's own poll (what `readiness_*` translate), with Linux errnos."""
        return (self.core.poll_write if write else self.core.poll_read), _LINUX_TO_WASI

    def close(self) -> None:
        self.core.close()
        if self.overhead_charged_to is not None:
            self.overhead_charged_to.charge(-SOCKET_OVERHEAD)
            self.overhead_charged_to = None

    def __repr__(self) -> str:
        return f"<SocketDescription {self.core!r}>"


def _receive_ready(core: Socket) -> Callable[[], bool] | None:
    """A test that holds exactly when a receive on `core` would not fail with EAGAIN.

    (Returned data, EOF, or an error: anything but "would block".) A blocking
    receive that finds it false waits for it to hold before it tries, instead
    of trying, catching the stack's EAGAIN and translating it first. None for
    the kinds of socket whose receive it does not know.
    """
    if type(core) is UdpSocket:
        # recvfrom: EBADF when closed, the pending error, a datagram, or b"" after
        # SHUT_RD — each of which `readable` counts; EAGAIN otherwise
        return core.readable
    if type(core) is TcpSocket:
        return TcpReceiveReady(core)
    return None


class TcpReceiveReady:
    """`receive_ready` of a TCP socket: one object per socket (a closure would be two)."""

    __slots__ = ("sock",)

    def __init__(self, sock: TcpSocket) -> None:
        self.sock = sock

    def __call__(self) -> bool:
        # TcpSocket.recv: EBADF when closed, ENOTCONN without a connection; then
        # TcpConnection.recv: data, the error, EOF (FIN, SHUT_RD, a reset),
        # ENOTCONN when CLOSED or LISTEN; EAGAIN otherwise
        sock = self.sock
        conn = sock.conn
        if sock.closed or conn is None:
            return True
        return conn.readable() or conn.reset_received or conn.state == LISTEN


#: A socket with nothing to report (values are never changed once built: shared, as
#: fdtable.READY is).
_NOT_READY = Readiness(False)


def _wasi_readiness(r: SocketReadiness) -> Readiness:
    if r.error:
        return Readiness(r.ready, r.nbytes, hangup=r.hangup,
                         error=_LINUX_TO_WASI.get(r.error, Errno.EIO))
    if not r.ready and not r.hangup and not r.nbytes:
        return _NOT_READY
    key = (r.ready, r.nbytes, r.hangup)
    readiness = _readiness_without_error.get(key)
    if readiness is None:
        readiness = Readiness(r.ready, r.nbytes, hangup=r.hangup)
        if len(_readiness_without_error) >= _READINESS_CACHE_MAX:
            _readiness_without_error.clear()
        _readiness_without_error[key] = readiness
    return readiness


#: Readiness values without an error, by (ready, nbytes, hangup): shared as _NOT_READY is.
_readiness_without_error: dict[tuple[bool, int, bool], Readiness] = {}
_READINESS_CACHE_MAX = 4096


def socket_description(fds: FdTable, fd: int) -> SocketDescription:
    """The socket behind fd: EBADF if none, ENOTSOCK if it is not a socket."""
    d = fds.get(fd)
    if not isinstance(d, SocketDescription):
        raise WasiError(Errno.ENOTSOCK)
    return d
