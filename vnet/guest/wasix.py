"""Guest sockets: the `wasix_32v1` socket imports and preview1's sock_*.

Every function here is the host side of vnet/sdk/ABI.md: exact WASIX names,
signatures, enum values and layouts; results written through trailing
pointers; a WASI errno returned. Each call reads guest memory through
`ctx.mem`, acts on the guest's virtual host (`ctx.extensions["host"]`, a
`vnet.network.Host`) through the stack's socket objects, and blocks — only
this guest — through the scheduler when a blocking socket must wait
(honouring SO_RCVTIMEO/SO_SNDTIMEO). Socket options map onto the stack's
Linux-numbered setsockopt, so both the WASIX option calls and
`vnet_v1.sock_setsockopt` (vnet.guest.vnet_v1) end in the same place. The `port_*` calls that
would reconfigure the host return ENOTSUP: a guest cannot change its network.

Resources are the guest's: every socket it opens or accepts is charged to
its socket-memory budget (`guest_socket_memory`: its --max-memory less its
linear memory, inside its host's budget; see stack/socket_memory.py) — 8 KiB
for the socket itself (ENOBUFS when that does not fit) and whatever its
queues hold. When growing linear memory puts a guest over that limit anyway,
`memory_limit_enforcer` reclaims queued datagrams and TCP out-of-order data,
or kills the guest (137, "out of memory"). A message of more than IOV_MAX
(1024) iovecs is EMSGSIZE, as Linux's sendmsg/recvmsg say, and a send
copies from guest memory only what the socket can take now (`send_iovecs`).
"""

from __future__ import annotations

import errno
import functools
import socket as _s
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from stack.ip import to_v4_mapped
from stack.socket import Socket, SocketStatus
from stack.socket_memory import SocketMemory
from stack.tcp_socket import TcpSocket

from .abi import GuestExit, host_function
from .context import GuestContext
from .fdtable import FileDescription
from .memory import IOV_MAX, iovecs_total
from .sockets import (
    _LINUX_TO_WASI,
    ADDR_CIDR_SIZE,
    ADDR_IP_SIZE,
    ADDR_PORT_READ_SIZE,
    ADDR_PORT_SIZE,
    SocketDescription,
    decode_addr_port,
    encode_addr_cidr,
    encode_addr_ip,
    raise_wasi,
    read_addr_ip4,
    read_addr_ip6,
    read_addr_port,
    socket_description,
    write_addr_port,
)
from .wasi_core import wait_for_io, wait_to_receive
from .wasi_types import (
    FDFLAGS_NONBLOCK,
    RIFLAGS_RECV_PEEK,
    RIFLAGS_RECV_WAITALL,
    ROFLAGS_RECV_DATA_TRUNCATED,
    SDFLAGS_RD,
    SDFLAGS_WR,
    Errno,
    WasiError,
)

if TYPE_CHECKING:
    from vnet.network import Host

X = "wasix_32v1"
P1 = "wasi_snapshot_preview1"

# Plain ints, Final: an enum member costs an attribute lookup per call (and compiled, a
# Final is read with no lookup at all)
SUCCESS: Final = int(Errno.SUCCESS)
SOCK_STREAM: Final = int(_s.SOCK_STREAM)
_SOCK_DGRAM: Final = int(_s.SOCK_DGRAM)
# Linux's address families, as plain ints (compiled, no lookup in the socket module)
_AF_UNSPEC: Final = int(_s.AF_UNSPEC)
_AF_INET: Final = int(_s.AF_INET)
_AF_INET6: Final = int(_s.AF_INET6)
_EAGAIN_LINUX: Final = errno.EAGAIN  # what a stack socket raises when it would block
MAX_IO: Final = 64 * 1024 * 1024  # one send/recv moves at most this much (a short count beyond)
DATAGRAM_COPY_MAX: Final = 65536  # more than any datagram may carry: the rest is never copied
MAX_SOCKETS_PER_GUEST: Final = 4096
MIB: Final = 1024 * 1024
# the flags the receive and accept paths test, as Final ints (compiled: no lookup)
_NONBLOCK: Final = FDFLAGS_NONBLOCK
_RECV_PEEK: Final = RIFLAGS_RECV_PEEK
_RECV_WAITALL: Final = RIFLAGS_RECV_WAITALL
_RECV_DATA_TRUNCATED: Final = ROFLAGS_RECV_DATA_TRUNCATED

# WASIX enums
SOCK_STREAM_WASIX: Final = 1
SOCK_DGRAM_WASIX: Final = 2
AF_UNSPEC_WASIX: Final = 0
AF_INET_WASIX: Final = 1
AF_INET6_WASIX: Final = 2
STATUS_OPENING, STATUS_OPENED, STATUS_CLOSED, STATUS_FAILED = 0, 1, 2, 3
_WASIX_STATUS = {SocketStatus.OPENING: STATUS_OPENING, SocketStatus.OPENED: STATUS_OPENED,
                 SocketStatus.CLOSED: STATUS_CLOSED, SocketStatus.FAILED: STATUS_FAILED}
(OPT_NOOP, OPT_REUSE_PORT, OPT_REUSE_ADDR, OPT_NO_DELAY, OPT_DONT_ROUTE, OPT_ONLY_V6,
 OPT_BROADCAST, OPT_MCAST_LOOP_V4, OPT_MCAST_LOOP_V6, OPT_PROMISCUOUS, OPT_LISTENING,
 OPT_LAST_ERROR, OPT_KEEP_ALIVE, OPT_LINGER, OPT_OOB_INLINE, OPT_RECV_BUF, OPT_SEND_BUF,
 OPT_RECV_LOWAT, OPT_SEND_LOWAT, OPT_RECV_TIMEOUT, OPT_SEND_TIMEOUT, OPT_CONNECT_TIMEOUT,
 OPT_ACCEPT_TIMEOUT, OPT_TTL, OPT_MCAST_TTL_V4, OPT_TYPE, OPT_PROTO) = range(27)

SO_REUSEPORT = getattr(_s, "SO_REUSEPORT", 15)
TCP_NODELAY = 1

# option → (level, Linux name) for flag/size options
_FLAG_OPTIONS = {
    OPT_REUSE_PORT: (_s.SOL_SOCKET, SO_REUSEPORT),
    OPT_REUSE_ADDR: (_s.SOL_SOCKET, _s.SO_REUSEADDR),
    OPT_NO_DELAY: (_s.IPPROTO_TCP, TCP_NODELAY),
    OPT_ONLY_V6: (_s.IPPROTO_IPV6, _s.IPV6_V6ONLY),
    OPT_BROADCAST: (_s.SOL_SOCKET, _s.SO_BROADCAST),
    OPT_MCAST_LOOP_V4: (_s.IPPROTO_IP, _s.IP_MULTICAST_LOOP),
    OPT_MCAST_LOOP_V6: (_s.IPPROTO_IPV6, _s.IPV6_MULTICAST_LOOP),
    OPT_KEEP_ALIVE: (_s.SOL_SOCKET, _s.SO_KEEPALIVE),
}
_SIZE_OPTIONS = {
    OPT_RECV_BUF: (_s.SOL_SOCKET, _s.SO_RCVBUF),
    OPT_SEND_BUF: (_s.SOL_SOCKET, _s.SO_SNDBUF),
    OPT_TTL: (_s.IPPROTO_IP, _s.IP_TTL),
    OPT_MCAST_TTL_V4: (_s.IPPROTO_IP, _s.IP_MULTICAST_TTL),
}


def _host(ctx: GuestContext) -> Host:
    host = ctx.extensions.get("host")
    if host is None:
        raise WasiError(Errno.ENETDOWN)  # a guest run without a network
    return host


def guest_socket_memory(ctx: GuestContext, host: Host) -> SocketMemory:
    """The budget of this guest's socket queues: its --max-memory less its linear memory.

    Charged inside its host's budget. Linear memory is read as the guest's own
    thread last saw it (socket calls refresh it), since other guests' threads
    charge this budget too.
    """
    memory = ctx.extensions.get("socket_memory")
    if memory is None:
        def linear_memory() -> int:
            return ctx.memory.known_size if ctx.memory is not None else 0

        memory = SocketMemory(ctx.limits.memory_bytes, parent=host.stack.socket_memory,
                              name=ctx.name, other_usage=linear_memory)
        ctx.extensions["socket_memory"] = memory
    assert isinstance(memory, SocketMemory)
    return memory


def memory_limit_enforcer(ctx: GuestContext, host: Host) -> Callable[[], GuestExit | None]:
    """What runs when a guest's linear memory plus socket memory may be over --max-memory.

    As a Linux memory cgroup whose memory.max counts socket buffers: first
    reclaim what can go without breaking a promise — datagrams waiting in UDP
    receive queues (counted drops, `udp.drop.reclaimed`) and the out-of-order
    queues of TCP connections without SACK (the peer retransmits,
    `tcp.drop.ofo_pruned`) — and if the guest is still over, return the
    GuestExit (137) that kills it, as the OOM killer would. The budget's
    charges are refused against its current linear memory, so a guest gets
    over only by growing its linear memory after filling its sockets
    (wasmtime's cap on linear memory is fixed when the store is made).
    Called, under the network lock, by the ABI bridge when a host call starts
    and by the runtime's epoch callback (vnet.guest.abi, vnet.guest.runtime).
    """
    sockets = guest_socket_memory(ctx, host)
    limit = ctx.limits.memory_bytes

    def enforce() -> GuestExit | None:
        memory = ctx.memory
        linear = memory.size if memory is not None else 0  # the size now, not as cached
        if linear + sockets.used <= limit:
            return None
        freed = host.udp.reclaim(sockets) + host.tcp.reclaim(sockets)
        ctx.stats.memory_reclaimed += freed
        if linear + sockets.used <= limit:
            return None
        ctx.stats.oom_kills += 1
        return GuestExit(137, f"out of memory (linear {_mib(linear)} MiB + sockets "
                              f"{_mib(sockets.used)} MiB > --max-memory {limit / MIB:g} MiB)")

    return enforce


def _mib(size: int) -> int:
    """Whole MiB, rounded up: what is over a limit reads as over it."""
    return -(-size // MIB)


def _sock(ctx: GuestContext, fd: int) -> SocketDescription:
    return socket_description(ctx.fds, fd)


def _to_socket_family(desc: SocketDescription, family: int, addr: bytes) -> bytes:
    """Fit a guest address to the socket's family (IPv4 on AF_INET6 → mapped)."""
    if family == _AF_UNSPEC:
        raise WasiError(Errno.EAFNOSUPPORT)
    if desc.family == _AF_INET:
        if family != _AF_INET:
            raise WasiError(Errno.EAFNOSUPPORT)
        return addr
    if family == _AF_INET:
        return to_v4_mapped(addr)
    return addr


def _socket_family_addr(desc: SocketDescription, addr: bytes) -> bytes:
    """An address for the guest: IPv4 peers of dual-stack sockets shown mapped."""
    if desc.family == _AF_INET6 and len(addr) == 4:
        return to_v4_mapped(addr)
    return addr


def _setsockopt(desc: SocketDescription, level: int, name: int, value: int | bytes) -> None:
    try:
        desc.core.setsockopt(level, name, value)
    except OSError as e:
        raise_wasi(e)


def _getsockopt(desc: SocketDescription, level: int, name: int) -> int | bytes:
    try:
        return desc.core.getsockopt(level, name)
    except OSError as e:
        raise_wasi(e)
        raise AssertionError from None


def _deadline(ctx: GuestContext, timeout_ns: int | None) -> int | None:
    return None if timeout_ns is None else ctx.now_ns() + timeout_ns


# --- creating sockets ---------------------------------------------------------

@host_function(X, "sock_open", "iiii")
def sock_open(ctx: GuestContext, af: int, socktype: int, proto: int, fd_ptr: int) -> int:
    ctx.mem.check(fd_ptr, 4)
    host = _host(ctx)
    if af == AF_INET_WASIX:
        family = _AF_INET
    elif af == AF_INET6_WASIX:
        family = _AF_INET6
    else:
        raise WasiError(Errno.EAFNOSUPPORT)
    if ctx.fds.socket_fds >= MAX_SOCKETS_PER_GUEST:
        raise WasiError(Errno.EMFILE)
    sched = host.network.scheduler
    outer = sched.begin_turn()  # atomic(), without its object: a host call has a turn already
    try:
        if socktype == SOCK_STREAM_WASIX and proto in (0, 6):
            core: Socket = host.tcp.socket(family)
            kind, linux_proto = SOCK_STREAM, 6
        elif socktype == SOCK_DGRAM_WASIX and proto in (0, 17):
            core = host.udp.socket(family)
            kind, linux_proto = _SOCK_DGRAM, 17
        elif socktype == SOCK_DGRAM_WASIX and proto in (1, 58):
            if (proto == 1) != (family == _AF_INET):
                raise WasiError(Errno.EPROTONOSUPPORT)
            core = host.icmp.socket(family)
            kind, linux_proto = _SOCK_DGRAM, proto
        elif socktype in (SOCK_STREAM_WASIX, SOCK_DGRAM_WASIX):
            raise WasiError(Errno.EPROTONOSUPPORT)
        elif socktype in (3, 4):
            raise WasiError(Errno.EPROTONOSUPPORT if socktype == 3 else Errno.ENOTSUP)
        else:
            raise WasiError(Errno.EINVAL)
    finally:
        if outer:
            sched.end_turn()
    memory = guest_socket_memory(ctx, host)
    core.memory = memory
    desc = SocketDescription(host, core, family, kind, linux_proto)
    try:
        desc.charge_overhead(memory)
        fd = ctx.fds.add(desc)
    except WasiError:
        desc.close()
        raise
    ctx.mem.write_u32(fd_ptr, fd)
    return SUCCESS


@host_function(X, "sock_pair", "iiiii")
def sock_pair(ctx: GuestContext, af: int, socktype: int, proto: int, fd1: int, fd2: int) -> int:
    return Errno.ENOTSUP  # Linux: socketpair(AF_INET, ...) is EOPNOTSUPP


@host_function(X, "sock_bind", "ii")
def sock_bind(ctx: GuestContext, fd: int, addr_ptr: int) -> int:
    desc = _sock(ctx, fd)
    family, addr, port = read_addr_port(ctx.mem, addr_ptr)
    addr = _to_socket_family(desc, family, addr)
    core = desc.core
    try:
        core.bind(addr, port)
    except OSError as e:
        raise_wasi(e)
    return Errno.SUCCESS


@host_function(X, "sock_listen", "ii")
def sock_listen(ctx: GuestContext, fd: int, backlog: int) -> int:
    desc = _sock(ctx, fd)
    core = desc.core
    try:  # Linux: EOPNOTSUPP on datagram sockets
        # Linux compares the backlog as unsigned: a negative one means SOMAXCONN
        core.listen(backlog if backlog < 0x80000000 else 0x7FFFFFFF)
    except OSError as e:
        raise_wasi(e)
    return Errno.SUCCESS


@host_function(X, "sock_connect", "ii")
def sock_connect(ctx: GuestContext, fd: int, addr_ptr: int) -> int:
    desc = _sock(ctx, fd)
    family, addr, port = read_addr_port(ctx.mem, addr_ptr)
    core = desc.core
    try:
        if family == _AF_UNSPEC:
            core.disconnect()  # datagram sockets forget their peer; TCP: EAFNOSUPPORT
        else:
            core.connect(_to_socket_family(desc, family, addr), port)
    except OSError as e:
        raise_wasi(e)
    if core.type != SOCK_STREAM:
        return SUCCESS  # a datagram socket's connect() only sets its peer
    if desc.nonblocking and not core.connect_completed():  # (a repeated one: 0)
        desc.connect_pending = True
        raise WasiError(Errno.EINPROGRESS)
    _wait_connected(ctx, desc, core)
    result = core.connect_result()
    if result is None:
        raise WasiError(Errno.ETIMEDOUT)  # SO_SNDTIMEO passed (Linux: EINPROGRESS)
    if result:
        raise WasiError(_LINUX_TO_WASI.get(result, Errno.EIO))
    return SUCCESS


def _wait_connected(ctx: GuestContext, desc: SocketDescription, core: Socket) -> None:
    """A blocking connect(): wait until it has a result, or SO_SNDTIMEO passes (a
    function of its own: its closure is made here, not on every sock_connect)."""
    ctx.block_until(lambda: core.connect_result() is not None,
                    _deadline(ctx, desc.send_timeout_ns))


def _can_accept(core: TcpSocket) -> bool:
    """Whether accept() on `core` would do something but fail with EAGAIN."""
    listener = core.listener
    return listener is None or bool(listener.accept_queue)


def _accept(ctx: GuestContext, fd: int, flags: int) -> tuple[int, SocketDescription]:
    desc = _sock(ctx, fd)
    core = desc.core
    if not core.listening:
        try:  # EOPNOTSUPP on a datagram socket, EINVAL on a stream that is not listening
            core.accept()
        except OSError as e:
            raise_wasi(e)
        raise WasiError(Errno.EINVAL)
    # a listener vnet opened for the guest (--tcplisten) is charged to it from now on,
    # and so is every connection it accepts
    memory = guest_socket_memory(ctx, desc.host)
    core.memory = memory
    deadline = _deadline(ctx, desc.recv_timeout_ns)
    if type(core) is TcpSocket:
        # wait first while the accept queue is empty, rather than fail with EAGAIN first
        # (with the queue holding only connections reset since, accept() still says
        # EAGAIN, and wait_for_io waits)
        listener = core.listener
        if listener is not None and not listener.accept_queue:
            _wait_acceptable(ctx, desc, core, deadline)
    try:  # wait_for_io's first attempt, directly: the queue mostly has the connection
        child = core.accept()
    except OSError as e:
        if e.errno != errno.EAGAIN or desc.nonblocking:
            raise_wasi(e)
        child = _accept_waiting(ctx, desc, core, deadline)
    new = SocketDescription(desc.host, child, desc.family, desc.sock_type, desc.proto)
    new.fdflags = flags & _NONBLOCK
    try:
        new.charge_overhead(memory)
        return ctx.fds.add(new), new
    except WasiError:
        new.close()  # the connection is reset, as Linux when accept() fails for memory
        raise


def _wait_acceptable(ctx: GuestContext, desc: SocketDescription, core: TcpSocket,
                     deadline: int | None) -> None:
    """Wait while `core`'s accept queue is empty (its own function: the test it waits on
    is made only when there is a wait)."""
    wait_to_receive(ctx, desc, deadline, functools.partial(_can_accept, core))


def _accept_waiting(ctx: GuestContext, desc: SocketDescription, core: Socket,
                    deadline: int | None) -> Socket:
    """accept() once its first try said EAGAIN on a blocking socket: wait, and try again."""

    def attempt() -> Socket:
        try:
            return core.accept()
        except OSError as e:
            raise_wasi(e)
            raise AssertionError from None

    return wait_for_io(ctx, desc, attempt, desc.readiness_read, deadline, tried=True)


@host_function(X, "sock_accept_v2", "iiii")
def sock_accept_v2(ctx: GuestContext, fd: int, flags: int, fd_ptr: int, addr_ptr: int) -> int:
    mem = ctx.mem
    mem.check(fd_ptr, 4)
    mem.check(addr_ptr, ADDR_PORT_SIZE)
    new_fd, new = _accept(ctx, fd, flags)
    peer, port = new.core.accepted_peer()  # even when reset meanwhile
    mem.write_u32(fd_ptr, new_fd)
    write_addr_port(mem, addr_ptr, peer, port)
    return SUCCESS


@host_function(X, "sock_accept", "iii")
def wasix_sock_accept(ctx: GuestContext, fd: int, flags: int, fd_ptr: int) -> int:
    ctx.mem.check(fd_ptr, 4)
    new_fd, _ = _accept(ctx, fd, flags)
    ctx.mem.write_u32(fd_ptr, new_fd)
    return Errno.SUCCESS


@host_function(P1, "sock_accept", "iii")
def preview1_sock_accept(ctx: GuestContext, fd: int, flags: int, fd_ptr: int) -> int:
    if flags & ~FDFLAGS_NONBLOCK:
        raise WasiError(Errno.EINVAL)
    return wasix_sock_accept(ctx, fd, flags, fd_ptr)


# --- data -----------------------------------------------------------------------

def _message_iovecs(ctx: GuestContext, iovs_ptr: int, iovs_len: int) -> list[tuple[int, int]]:
    """A message's iovecs: more than IOV_MAX is EMSGSIZE, as Linux's sendmsg/recvmsg.

    (fd_write/fd_read — writev/readv — say EINVAL for the same count.)
    """
    if iovs_len > IOV_MAX:
        raise WasiError(Errno.EMSGSIZE)
    return ctx.mem.iovecs(iovs_ptr, iovs_len)


def _recv(ctx: GuestContext, desc: SocketDescription, iovs_ptr: int, iovs_len: int,
          riflags: int) -> tuple[int, int, bytes, int]:
    """Receive into iovecs: (bytes stored, roflags, source address, source port).

    A blocking socket that says it has nothing (`receive_ready`) waits first
    (`wait_to_receive`); then the stack socket is asked, directly; only when it
    has nothing even so (EAGAIN) on a blocking socket does the call wait,
    through `wait_for_io`.
    """
    mem = ctx.mem
    iovs = _message_iovecs(ctx, iovs_ptr, iovs_len)
    total = min(iovecs_total(iovs), MAX_IO)
    peek = bool(riflags & _RECV_PEEK)
    ready = desc.receive_ready
    if ready is not None and not ready():  # wait first, rather than fail with EAGAIN first
        wait_to_receive(ctx, desc, _deadline(ctx, desc.recv_timeout_ns))
    try:
        data, src, port, truncated = desc.core.recvfrom(total, peek)
    except OSError as e:
        if e.errno != _EAGAIN_LINUX or desc.nonblocking:
            raise_wasi(e)
        data, src, port, truncated = wait_for_io(
            ctx, desc, lambda: desc.recv(total, peek), desc.readiness_read,
            _deadline(ctx, desc.recv_timeout_ns))
    if (riflags & _RECV_WAITALL and desc.core.type == SOCK_STREAM and not peek
            and len(data) < total):
        deadline = _deadline(ctx, desc.recv_timeout_ns)
        chunks = [data]
        got = len(data)
        while got < total:
            try:
                want = total - got

                def more_data(want: int = want) -> tuple[bytes, bytes, int, bool]:
                    return desc.recv(want, False)

                more = wait_for_io(ctx, desc, more_data, desc.readiness_read, deadline)[0]
            except WasiError:
                break
            if not more:
                break
            chunks.append(more)
            got += len(more)
        data = b"".join(chunks)
    stored = mem.scatter(iovs, data)
    return stored, _RECV_DATA_TRUNCATED if truncated else 0, src, port


@host_function(X, "sock_recv_from", "iiiiiii")
def sock_recv_from(ctx: GuestContext, fd: int, iovs_ptr: int, iovs_len: int, riflags: int,
                   size_ptr: int, roflags_ptr: int, addr_ptr: int) -> int:
    desc = socket_description(ctx.fds, fd)
    mem = ctx.mem
    size = mem.known_size  # the pointers are u32s: only the ends can be out of range
    if size_ptr + 4 > size or roflags_ptr + 2 > size or addr_ptr + ADDR_PORT_SIZE > size:
        mem.check(size_ptr, 4)  # re-reads the size; EFAULT if still outside
        mem.check(roflags_ptr, 2)
        mem.check(addr_ptr, ADDR_PORT_SIZE)
    stored, roflags, src, port = _recv(ctx, desc, iovs_ptr, iovs_len, riflags)
    mem.write_u32(size_ptr, stored)
    mem.write_u16(roflags_ptr, roflags)
    mem.write(addr_ptr, desc.source_name(src, port))
    return SUCCESS


@host_function(P1, "sock_recv", "iiiiii")
def preview1_sock_recv(ctx: GuestContext, fd: int, iovs_ptr: int, iovs_len: int, riflags: int,
                       size_ptr: int, roflags_ptr: int) -> int:
    desc = _sock(ctx, fd)
    ctx.mem.check(size_ptr, 4)
    ctx.mem.check(roflags_ptr, 2)
    stored, roflags, _src, _port = _recv(ctx, desc, iovs_ptr, iovs_len, riflags)
    ctx.mem.write_u32(size_ptr, stored)
    ctx.mem.write_u16(roflags_ptr, roflags)
    return Errno.SUCCESS


def send_iovecs(ctx: GuestContext, desc: FileDescription, iovs: list[tuple[int, int]],
                dest: tuple[bytes, int] | None) -> int:
    """Send what the iovecs hold, copying from guest memory only what the socket takes.

    `desc` is a socket: one of the stack's (a SocketDescription), or another kind
    with the same send interface (a netlink socket, datagrams only).
    A datagram is copied whole (at most DATAGRAM_COPY_MAX bytes: anything longer
    is EMSGSIZE anyway). A stream copies, per attempt, only what its send buffer
    and its owner's socket memory have room for; a blocking stream socket goes
    on until everything is sent (as Linux's blocking send), a non-blocking one
    returns a short count. At most MAX_IO bytes per call.
    """
    mem = ctx.mem
    total = min(iovecs_total(iovs), MAX_IO)
    if not isinstance(desc, SocketDescription) or desc.sock_type != SOCK_STREAM:
        return _send_datagram(ctx, desc, mem.gather(iovs, 0, min(total, DATAGRAM_COPY_MAX)),
                              dest)
    deadline = _deadline(ctx, desc.send_timeout_ns)
    mem.size  # noqa: B018 (refresh the linear memory size the socket budget subtracts)
    try:  # wait_for_io's first attempt, directly: a send mostly finds room
        sent = desc.send(mem.gather(iovs, 0, min(total, max(1, desc.send_room()))), dest)
    except WasiError as e:
        if e.errno != Errno.EAGAIN or desc.nonblocking:
            raise
        return _send_stream_waiting(ctx, desc, iovs, total, dest, deadline, 0, True)
    if sent >= total or desc.nonblocking:
        return sent
    return _send_stream_waiting(ctx, desc, iovs, total, dest, deadline, sent, False)


def _send_stream_waiting(ctx: GuestContext, desc: SocketDescription,
                         iovs: list[tuple[int, int]], total: int,
                         dest: tuple[bytes, int] | None, deadline: int | None, sent: int,
                         tried: bool) -> int:
    """The rest of a blocking stream send, from `sent` bytes on, once a first try did not
    send everything (`tried`: it said EAGAIN, so wait before trying again)."""
    mem = ctx.mem

    def send_more() -> int:
        chunk = mem.gather(iovs, sent, min(total - sent, max(1, desc.send_room())))
        return desc.send(chunk, dest)

    while True:
        try:
            sent += wait_for_io(ctx, desc, send_more, desc.readiness_write, deadline, tried)
        except WasiError:
            if sent:
                return sent
            raise
        tried = False
        if sent >= total or desc.nonblocking:
            return sent


def _send_datagram(ctx: GuestContext, desc: Any, data: bytes,
                   dest: tuple[bytes, int] | None) -> int:
    """send_iovecs for a datagram; `desc` is any socket with the send interface (Any:
    compiled, a netlink socket is no SocketDescription)."""
    task = ctx.task
    if task is not None:  # a datagram: a burst of these may hand over in batches
        task.sent_datagram = True
    try:  # the first attempt directly; only a blocking socket's EAGAIN waits
        return int(desc.send(data, dest))
    except WasiError as e:
        if e.errno != Errno.EAGAIN or desc.nonblocking:
            raise
    return wait_for_io(ctx, desc, lambda: desc.send(data, dest), desc.readiness_write,
                       _deadline(ctx, desc.send_timeout_ns))


def _send(ctx: GuestContext, desc: SocketDescription, iovs_ptr: int, iovs_len: int,
          dest: tuple[bytes, int] | None) -> int:
    if iovs_len > IOV_MAX:  # _message_iovecs
        raise WasiError(Errno.EMSGSIZE)
    return send_iovecs(ctx, desc, ctx.mem.iovecs(iovs_ptr, iovs_len), dest)


def _destination(desc: SocketDescription, raw: bytes) -> tuple[bytes, int] | None:
    """Where sock_send_to sends, from its addr_port's bytes (None: AF_UNSPEC, the peer).

    The last bytes and what they made are kept on the socket, so a sender that
    answers the same peer again skips the decoding.
    """
    last_raw, last_dest = desc.last_destination
    if raw == last_raw:
        return last_dest
    family, addr, port = decode_addr_port(raw)
    dest = None if family == _AF_UNSPEC else (_to_socket_family(desc, family, addr), port)
    desc.last_destination = (raw, dest)
    return dest


@host_function(X, "sock_send_to", "iiiiii")
def sock_send_to(ctx: GuestContext, fd: int, iovs_ptr: int, iovs_len: int, siflags: int,
                 addr_ptr: int, size_ptr: int) -> int:
    desc = socket_description(ctx.fds, fd)
    mem = ctx.mem
    mem.check(size_ptr, 4)
    dest = _destination(desc, mem.read(addr_ptr, ADDR_PORT_READ_SIZE))
    mem.write_u32(size_ptr, _send(ctx, desc, iovs_ptr, iovs_len, dest))
    return SUCCESS


@host_function(P1, "sock_send", "iiiii")
def preview1_sock_send(ctx: GuestContext, fd: int, iovs_ptr: int, iovs_len: int, siflags: int,
                       size_ptr: int) -> int:
    desc = socket_description(ctx.fds, fd)
    mem = ctx.mem
    mem.check(size_ptr, 4)
    mem.write_u32(size_ptr, _send(ctx, desc, iovs_ptr, iovs_len, None))
    return SUCCESS


@host_function(P1, "sock_shutdown", "ii")
def preview1_sock_shutdown(ctx: GuestContext, fd: int, how: int) -> int:
    desc = _sock(ctx, fd)
    if how == SDFLAGS_RD:
        linux_how = _s.SHUT_RD
    elif how == SDFLAGS_WR:
        linux_how = _s.SHUT_WR
    elif how == SDFLAGS_RD | SDFLAGS_WR:
        linux_how = _s.SHUT_RDWR
    else:
        raise WasiError(Errno.EINVAL)
    try:
        desc.core.shutdown(linux_how)
    except OSError as e:
        raise_wasi(e)
    return Errno.SUCCESS


@host_function(X, "sock_send_file", "iiIIi")
def sock_send_file(ctx: GuestContext, out_fd: int, in_fd: int, offset: int, count: int,
                   ret_ptr: int) -> int:
    return Errno.ENOTSUP


# --- addresses and status -----------------------------------------------------------

# Both are read-only calls (vnet.guest.abi.READ_ONLY_CALLS): no network lock.

@host_function(X, "sock_addr_local", "ii")
def sock_addr_local(ctx: GuestContext, fd: int, addr_ptr: int) -> int:
    ctx.mem.write(addr_ptr, socket_description(ctx.fds, fd).local_name())
    return SUCCESS


@host_function(X, "sock_addr_peer", "ii")
def sock_addr_peer(ctx: GuestContext, fd: int, addr_ptr: int) -> int:
    desc = socket_description(ctx.fds, fd)
    mem = ctx.mem
    mem.check(addr_ptr, ADDR_PORT_SIZE)
    try:
        name = desc.peer_name()
    except OSError as e:
        raise_wasi(e)
        raise AssertionError from None
    mem.write(addr_ptr, name)
    return SUCCESS


@host_function(X, "sock_status", "ii")
def sock_status(ctx: GuestContext, fd: int, status_ptr: int) -> int:
    desc = _sock(ctx, fd)
    ctx.mem.write_u8(status_ptr, _WASIX_STATUS[desc.core.status()])
    return Errno.SUCCESS


# --- options ----------------------------------------------------------------------------

@host_function(X, "sock_set_opt_flag", "iii")
def sock_set_opt_flag(ctx: GuestContext, fd: int, option: int, flag: int) -> int:
    desc = _sock(ctx, fd)
    if flag > 1:
        raise WasiError(Errno.EINVAL)
    if option in _FLAG_OPTIONS:
        level, name = _FLAG_OPTIONS[option]
        _setsockopt(desc, level, name, flag)
        return Errno.SUCCESS
    if option in (OPT_NOOP, OPT_OOB_INLINE, OPT_DONT_ROUTE):
        return Errno.SUCCESS
    raise WasiError(Errno.ENOPROTOOPT if option <= OPT_PROTO else Errno.EINVAL)


@host_function(X, "sock_get_opt_flag", "iii")
def sock_get_opt_flag(ctx: GuestContext, fd: int, option: int, ret_ptr: int) -> int:
    desc = _sock(ctx, fd)
    ctx.mem.check(ret_ptr, 1)
    if option in _FLAG_OPTIONS:
        level, name = _FLAG_OPTIONS[option]
        value = _getsockopt(desc, level, name)
        ctx.mem.write_u8(ret_ptr, 1 if value else 0)
        return Errno.SUCCESS
    if option == OPT_LISTENING:
        ctx.mem.write_u8(ret_ptr, int(desc.core.listening))
        return Errno.SUCCESS
    if option in (OPT_NOOP, OPT_OOB_INLINE, OPT_DONT_ROUTE):
        ctx.mem.write_u8(ret_ptr, 0)
        return Errno.SUCCESS
    raise WasiError(Errno.ENOPROTOOPT if option <= OPT_PROTO else Errno.EINVAL)


@host_function(X, "sock_set_opt_size", "iiI")
def sock_set_opt_size(ctx: GuestContext, fd: int, option: int, size: int) -> int:
    desc = _sock(ctx, fd)
    if option in _SIZE_OPTIONS:
        level, name = _SIZE_OPTIONS[option]
        if size > 0x7FFFFFFF:
            raise WasiError(Errno.EINVAL)
        _setsockopt(desc, level, name, size)
        return Errno.SUCCESS
    if option in (OPT_RECV_LOWAT, OPT_SEND_LOWAT):
        return Errno.SUCCESS
    raise WasiError(Errno.ENOPROTOOPT if option <= OPT_PROTO else Errno.EINVAL)


@host_function(X, "sock_get_opt_size", "iii")
def sock_get_opt_size(ctx: GuestContext, fd: int, option: int, ret_ptr: int) -> int:
    desc = _sock(ctx, fd)
    ctx.mem.check(ret_ptr, 8)
    value: int
    if option in _SIZE_OPTIONS:
        level, name = _SIZE_OPTIONS[option]
        got = _getsockopt(desc, level, name)
        value = got if isinstance(got, int) else 0
    elif option == OPT_TYPE:
        value = SOCK_STREAM_WASIX if desc.sock_type == _s.SOCK_STREAM else SOCK_DGRAM_WASIX
    elif option == OPT_PROTO:
        value = desc.proto
    elif option == OPT_LAST_ERROR:
        got = _getsockopt(desc, _s.SOL_SOCKET, _s.SO_ERROR)
        value = int(_LINUX_TO_WASI.get(got, Errno.EIO)) if isinstance(got, int) and got else 0
    elif option in (OPT_RECV_LOWAT, OPT_SEND_LOWAT):
        value = 1
    else:
        raise WasiError(Errno.ENOPROTOOPT if option <= OPT_PROTO else Errno.EINVAL)
    ctx.mem.write_u64(ret_ptr, value)
    return Errno.SUCCESS


def _read_option_timestamp(ctx: GuestContext, ptr: int) -> int | None:
    tag, value = struct.unpack("<B7xQ", ctx.mem.read(ptr, 16))
    if tag == 0:
        return None
    if tag != 1:
        raise WasiError(Errno.EINVAL)
    return int(value)


@host_function(X, "sock_set_opt_time", "iii")
def sock_set_opt_time(ctx: GuestContext, fd: int, option: int, time_ptr: int) -> int:
    desc = _sock(ctx, fd)
    value = _read_option_timestamp(ctx, time_ptr)
    if option == OPT_RECV_TIMEOUT:
        desc.recv_timeout_ns = value or None
    elif option == OPT_SEND_TIMEOUT:
        desc.send_timeout_ns = value or None
    elif option in (OPT_CONNECT_TIMEOUT, OPT_ACCEPT_TIMEOUT):
        if option == OPT_CONNECT_TIMEOUT:
            desc.send_timeout_ns = value or None
        else:
            desc.recv_timeout_ns = value or None
    elif option == OPT_LINGER:
        linger = struct.pack("<ii", int(value is not None), (value or 0) // 1_000_000_000)
        _setsockopt(desc, _s.SOL_SOCKET, _s.SO_LINGER, linger)
    else:
        raise WasiError(Errno.ENOPROTOOPT if option <= OPT_PROTO else Errno.EINVAL)
    return Errno.SUCCESS


@host_function(X, "sock_get_opt_time", "iii")
def sock_get_opt_time(ctx: GuestContext, fd: int, option: int, ret_ptr: int) -> int:
    desc = _sock(ctx, fd)
    ctx.mem.check(ret_ptr, 16)
    value: int | None
    if option in (OPT_RECV_TIMEOUT, OPT_ACCEPT_TIMEOUT):
        value = desc.recv_timeout_ns
    elif option in (OPT_SEND_TIMEOUT, OPT_CONNECT_TIMEOUT):
        value = desc.send_timeout_ns
    elif option == OPT_LINGER:
        raw = _getsockopt(desc, _s.SOL_SOCKET, _s.SO_LINGER)
        onoff, seconds = struct.unpack("<ii", raw) if isinstance(raw, bytes) else (0, 0)
        value = seconds * 1_000_000_000 if onoff else None
    else:
        raise WasiError(Errno.ENOPROTOOPT if option <= OPT_PROTO else Errno.EINVAL)
    ctx.mem.write(ret_ptr, struct.pack("<B7xQ", 0 if value is None else 1, value or 0))
    return Errno.SUCCESS


# --- multicast ------------------------------------------------------------------------

def _ifindex_for_v4(desc: SocketDescription, iface_addr: bytes) -> int:
    if iface_addr == bytes(4):
        return 0
    for iface in desc.host.stack.interfaces.values():
        if iface.has_address(iface_addr):
            return int(iface.index)
    raise WasiError(Errno.EADDRNOTAVAIL)


def _membership(ctx: GuestContext, desc: SocketDescription, group: bytes, ifindex: int,
                join: bool) -> None:
    core = desc.core
    try:  # ENOPROTOOPT on anything but UDP
        if join:
            core.join_group(group, ifindex or None)
        else:
            core.leave_group(group, ifindex or None)
    except OSError as e:
        raise_wasi(e)


@host_function(X, "sock_join_multicast_v4", "iii")
def sock_join_multicast_v4(ctx: GuestContext, fd: int, group_ptr: int, iface_ptr: int) -> int:
    desc = _sock(ctx, fd)
    if desc.family != _s.AF_INET:
        raise WasiError(Errno.EINVAL)
    group = read_addr_ip4(ctx.mem, group_ptr)
    _membership(ctx, desc, group, _ifindex_for_v4(desc, read_addr_ip4(ctx.mem, iface_ptr)), True)
    return Errno.SUCCESS


@host_function(X, "sock_leave_multicast_v4", "iii")
def sock_leave_multicast_v4(ctx: GuestContext, fd: int, group_ptr: int, iface_ptr: int) -> int:
    desc = _sock(ctx, fd)
    group = read_addr_ip4(ctx.mem, group_ptr)
    _membership(ctx, desc, group, _ifindex_for_v4(desc, read_addr_ip4(ctx.mem, iface_ptr)),
                False)
    return Errno.SUCCESS


@host_function(X, "sock_join_multicast_v6", "iii")
def sock_join_multicast_v6(ctx: GuestContext, fd: int, group_ptr: int, ifindex: int) -> int:
    desc = _sock(ctx, fd)
    if desc.family != _s.AF_INET6:
        raise WasiError(Errno.EINVAL)
    _membership(ctx, desc, read_addr_ip6(ctx.mem, group_ptr), ifindex, True)
    return Errno.SUCCESS


@host_function(X, "sock_leave_multicast_v6", "iii")
def sock_leave_multicast_v6(ctx: GuestContext, fd: int, group_ptr: int, ifindex: int) -> int:
    desc = _sock(ctx, fd)
    _membership(ctx, desc, read_addr_ip6(ctx.mem, group_ptr), ifindex, False)
    return Errno.SUCCESS


# --- names and the host's addresses ---------------------------------------------------------

@host_function(X, "resolve", "iiiiii")
def resolve(ctx: GuestContext, host_ptr: int, host_len: int, port: int, addrs_ptr: int,
            naddrs: int, count_ptr: int) -> int:
    host = _host(ctx)
    if host_len > 255:
        raise WasiError(Errno.EINVAL)
    name = ctx.mem.read_string(host_ptr, host_len)
    ctx.mem.check(addrs_ptr, naddrs * ADDR_IP_SIZE)
    ctx.mem.check(count_ptr, 4)
    addresses = host.network.resolve(name, host)
    if not addresses:
        raise WasiError(Errno.ENOENT)
    for index, addr in enumerate(addresses[:naddrs]):
        ctx.mem.write(addrs_ptr + index * ADDR_IP_SIZE, encode_addr_ip(addr))
    ctx.mem.write_u32(count_ptr, min(len(addresses), naddrs))
    return Errno.SUCCESS


@host_function(X, "port_addr_list", "ii")
def port_addr_list(ctx: GuestContext, addrs_ptr: int, naddrs_ptr: int) -> int:
    host = _host(ctx)
    capacity = ctx.mem.read_u32(naddrs_ptr)
    entries = [(a.address, a.prefix_len) for i in host.stack.interfaces.values()
               if not i.is_loopback for a in i.addresses()]
    ctx.mem.check(addrs_ptr, min(capacity, len(entries)) * ADDR_CIDR_SIZE)
    for index, (addr, prefix) in enumerate(entries[:capacity]):
        ctx.mem.write(addrs_ptr + index * ADDR_CIDR_SIZE, encode_addr_cidr(addr, prefix))
    ctx.mem.write_u32(naddrs_ptr, len(entries))
    if len(entries) > capacity:
        raise WasiError(Errno.EOVERFLOW)
    return Errno.SUCCESS


@host_function(X, "port_mac", "i")
def port_mac(ctx: GuestContext, mac_ptr: int) -> int:
    host = _host(ctx)
    for iface in host.stack.interfaces.values():
        if iface.mac is not None:
            ctx.mem.write(mac_ptr, iface.mac)
            return Errno.SUCCESS
    raise WasiError(Errno.ENODEV)


for _name, _params in (
    ("port_bridge", "iiiii"), ("port_unbridge", ""), ("port_dhcp_acquire", ""),
    ("port_addr_add", "i"), ("port_addr_remove", "i"), ("port_addr_clear", ""),
    ("port_gateway_set", "i"), ("port_route_add", "iiii"), ("port_route_remove", "i"),
    ("port_route_clear", ""), ("port_route_list", "ii"),
):
    host_function(X, _name, _params)(lambda ctx, *args: Errno.ENOTSUP)
