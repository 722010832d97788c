"""The `vnet_v1` imports: what WASIX lacks and vnet gives guests.

`if_list` lists every interface of the guest's virtual host (index, name, MAC,
flags, MTU, addresses with prefixes; the layout is `struct vnet_if` in
vnet/sdk/ABI.md), `fd_limit` tells the SDK's poll() the guest's descriptor
limit, and `sock_setsockopt`/`sock_getsockopt` take Linux-numbered options
with the option's raw bytes, so the SDK's setsockopt/getsockopt reach the
stack with Linux's rules. `host_name` gives gethostname/uname the virtual
host's name, `fd_dup` is dup/dup2/dup3 on the guest's fd table and `fd_pipe`
makes a pipe inside the guest (vnet.guest.pipe), and `sock_recvmsg` is
sock_recv_from with the datagram's control messages (IP_PKTINFO, SO_TIMESTAMP
…, stack.ancillary). Like vnet.guest.wasix, each
call reads and writes guest memory through `ctx.mem` and acts on the guest's
own host only.
"""

from __future__ import annotations

import socket as _s
import struct
from typing import Any

from .abi import host_function
from .context import GuestContext
from .memory import iovecs_total
from .pipe import new_pipe
from .sockets import _LINUX_TO_WASI, ADDR_PORT_SIZE, raise_wasi
from .wasi_core import wait_for_io
from .wasi_types import (
    FDFLAGS_NONBLOCK,
    RIFLAGS_RECV_PEEK,
    ROFLAGS_RECV_DATA_TRUNCATED,
    Errno,
    WasiError,
)
from .wasix import (
    MAX_IO,
    _deadline,
    _getsockopt,
    _host,
    _message_iovecs,
    _recv,
    _setsockopt,
    _sock,
    guest_socket_memory,
)

V = "vnet_v1"

VNET_IF_SIZE = 356
VNET_IF_MAX_ADDRS = 16


def encode_interface(iface: Any) -> bytes:
    out = bytearray(VNET_IF_SIZE)
    struct.pack_into("<III", out, 0, iface.index, int(iface.flags), iface.mtu)
    if iface.mac is not None:
        out[12:18] = iface.mac
        out[18] = 6
    addresses = iface.addresses()[:VNET_IF_MAX_ADDRS]
    out[19] = len(addresses)
    name = iface.name.encode()[:15]
    out[20:20 + len(name)] = name
    for index, a in enumerate(addresses):
        base = 36 + index * 20
        out[base] = 4 if len(a.address) == 4 else 6
        out[base + 1] = a.prefix_len
        out[base + 4: base + 4 + len(a.address)] = a.address
    return bytes(out)


@host_function(V, "if_list", "iii")
def if_list(ctx: GuestContext, buf_ptr: int, buf_len: int, count_ptr: int) -> int:
    host = _host(ctx)
    interfaces = [host.stack.interfaces[i] for i in sorted(host.stack.interfaces)]
    fit = buf_len // VNET_IF_SIZE
    ctx.mem.check(count_ptr, 4)
    ctx.mem.check(buf_ptr, min(fit, len(interfaces)) * VNET_IF_SIZE)
    for index, iface in enumerate(interfaces[:fit]):
        ctx.mem.write(buf_ptr + index * VNET_IF_SIZE, encode_interface(iface))
    ctx.mem.write_u32(count_ptr, len(interfaces))
    if len(interfaces) > fit:
        raise WasiError(Errno.EOVERFLOW)
    return Errno.SUCCESS


@host_function(V, "fd_limit", "i")
def fd_limit(ctx: GuestContext, max_fds_ptr: int) -> int:
    """How many fds the guest may have open: poll() checks nfds against it, as Linux."""
    ctx.mem.write_u32(max_fds_ptr, ctx.limits.max_fds)
    return Errno.SUCCESS


SO_RCVTIMEO = _s.SO_RCVTIMEO
SO_SNDTIMEO = _s.SO_SNDTIMEO
TIMEVAL = struct.Struct("<qq")  # wasm32 wasi-libc: time_t is 64-bit, suseconds_t 64-bit


@host_function(V, "sock_setsockopt", "iiiii")
def vnet_sock_setsockopt(ctx: GuestContext, fd: int, level: int, name: int, value_ptr: int,
                         value_len: int) -> int:
    desc = _sock(ctx, fd)
    if value_len > 256:
        raise WasiError(Errno.EINVAL)
    raw = ctx.mem.read(value_ptr, value_len)
    if level == _s.SOL_SOCKET and name in (SO_RCVTIMEO, SO_SNDTIMEO):
        if value_len < TIMEVAL.size:
            raise WasiError(Errno.EINVAL)
        seconds, micros = TIMEVAL.unpack_from(raw)
        if seconds < 0 or not 0 <= micros < 1_000_000:
            raise WasiError(Errno.EDOM)
        timeout = seconds * 1_000_000_000 + micros * 1000
        if name == SO_RCVTIMEO:
            desc.recv_timeout_ns = timeout or None
        else:
            desc.send_timeout_ns = timeout or None
        return Errno.SUCCESS
    # the option's bytes as the guest gave them: the stack reads an int, a struct or a
    # string (TCP_CONGESTION "reno", SO_BINDTODEVICE "eth0") with Linux's rules
    _setsockopt(desc, level, name, raw)
    return Errno.SUCCESS


@host_function(V, "sock_getsockopt", "iiiii")
def vnet_sock_getsockopt(ctx: GuestContext, fd: int, level: int, name: int, value_ptr: int,
                         len_ptr: int) -> int:
    desc = _sock(ctx, fd)
    capacity = ctx.mem.read_u32(len_ptr)
    value: int | bytes
    if level == _s.SOL_SOCKET and name in (SO_RCVTIMEO, SO_SNDTIMEO):
        timeout = desc.recv_timeout_ns if name == SO_RCVTIMEO else desc.send_timeout_ns
        timeout = timeout or 0
        value = TIMEVAL.pack(timeout // 1_000_000_000, (timeout % 1_000_000_000) // 1000)
    elif level == _s.SOL_SOCKET and name == _s.SO_ERROR:
        got = _getsockopt(desc, level, name)
        value = int(_LINUX_TO_WASI.get(got, Errno.EIO)) if isinstance(got, int) and got else 0
    elif level == _s.SOL_SOCKET and name == _s.SO_TYPE:
        value = desc.sock_type
    elif level == _s.SOL_SOCKET and name == getattr(_s, "SO_PROTOCOL", 38):
        value = desc.proto
    elif level == _s.SOL_SOCKET and name == getattr(_s, "SO_DOMAIN", 39):
        value = desc.family
    else:
        value = _getsockopt(desc, level, name)
    data = value.to_bytes(4, "little", signed=True) if isinstance(value, int) else value
    data = data[:capacity]
    ctx.mem.write(value_ptr, data)
    ctx.mem.write_u32(len_ptr, len(data))
    return Errno.SUCCESS


# --- POSIX pieces: host name, dup, pipe (the SDK's unistd.c) ----------------------

HOST_NAME_MAX = 64  # Linux's: the longest name gethostname returns (uname's nodename is 65)
FD_DUP_LOWEST = 0xFFFFFFFF  # fd_dup's `target` for dup(): the lowest free fd


@host_function(V, "host_name", "iii")
def host_name(ctx: GuestContext, buf_ptr: int, buf_len: int, len_ptr: int) -> int:
    """The virtual host's name (gethostname, uname's nodename): its length always
    goes to *len_ptr; the bytes (no terminator) only if they fit in buf_len."""
    host = ctx.extensions.get("host")
    name = str(getattr(host, "name", None) or "localhost").encode()[:HOST_NAME_MAX]
    ctx.mem.write_u32(len_ptr, len(name))
    if len(name) > buf_len:
        raise WasiError(Errno.ENAMETOOLONG)
    ctx.mem.write(buf_ptr, name)
    return Errno.SUCCESS


@host_function(V, "fd_dup", "iiii")
def fd_dup(ctx: GuestContext, fd: int, target: int, lowest: int, ret_fd_ptr: int) -> int:
    """dup (target FD_DUP_LOWEST: the lowest free fd ≥ `lowest`, as F_DUPFD) and dup2
    (target: that fd, closing what it held). Both fds share one open description."""
    ctx.mem.check(ret_fd_ptr, 4)
    if target == FD_DUP_LOWEST:
        new = ctx.fds.dup(fd, lowest)
    else:
        new = ctx.fds.dup_to(fd, target)
    ctx.mem.write_u32(ret_fd_ptr, new)
    return Errno.SUCCESS


PIPE_FLAG_NONBLOCK = 1


@host_function(V, "fd_pipe", "iii")
def fd_pipe(ctx: GuestContext, flags: int, read_fd_ptr: int, write_fd_ptr: int) -> int:
    """pipe2: a read end and a write end (PIPE_FLAG_NONBLOCK: both non-blocking)."""
    if flags & ~PIPE_FLAG_NONBLOCK:
        raise WasiError(Errno.EINVAL)
    ctx.mem.check(read_fd_ptr, 4)
    ctx.mem.check(write_fd_ptr, 4)
    if ctx.fds.counted() + 2 > ctx.fds.max_fds:
        raise WasiError(Errno.EMFILE)
    host = ctx.extensions.get("host")
    memory = guest_socket_memory(ctx, host) if host is not None else None
    read_end, write_end = new_pipe(memory, host.stack.driver.wake if host is not None else None)
    if flags & PIPE_FLAG_NONBLOCK:
        read_end.set_fdflags(FDFLAGS_NONBLOCK)
        write_end.set_fdflags(FDFLAGS_NONBLOCK)
    read_fd = ctx.fds.add(read_end)
    write_fd = ctx.fds.add(write_end)
    ctx.mem.write_u32(read_fd_ptr, read_fd)
    ctx.mem.write_u32(write_fd_ptr, write_fd)
    return Errno.SUCCESS


# --- recvmsg with control messages (the SDK's recvmsg) ----------------------------

CONTROL_RECORD = struct.Struct("<III")  # level, type, data length; data follows, 4-aligned


def encode_control(records: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray()
    for level, kind, data in records:
        out += CONTROL_RECORD.pack(level, kind, len(data)) + data
        out += bytes(-len(out) % 4)
    return bytes(out)


@host_function(V, "sock_recvmsg", "iiiiiiiiii")
def sock_recvmsg(ctx: GuestContext, fd: int, iovs_ptr: int, iovs_len: int, riflags: int,
                 size_ptr: int, roflags_ptr: int, addr_ptr: int, control_ptr: int,
                 control_len: int, control_used_ptr: int) -> int:
    """wasix sock_recv_from plus the datagram's control messages (stack.ancillary).

    The records (u32 level, u32 type, u32 length, data padded to 4 bytes) that
    fit in control_len are written at control_ptr; *control_used_ptr gets the
    length of all of them, so the SDK sees what was cut (MSG_CTRUNC). A socket
    that asked for no control message receives exactly as sock_recv_from does.
    """
    desc = _sock(ctx, fd)
    mem = ctx.mem
    mem.check(size_ptr, 4)
    mem.check(roflags_ptr, 2)
    mem.check(addr_ptr, ADDR_PORT_SIZE)
    mem.check(control_used_ptr, 4)
    mem.check(control_ptr, control_len)
    core = desc.core
    recvmsg = getattr(core, "recvmsg", None)
    control: list[tuple[int, int, bytes]] = []
    if recvmsg is None or not getattr(core, "recv_ancillary", 0):
        stored, roflags, src, port = _recv(ctx, desc, iovs_ptr, iovs_len, riflags)
    else:
        iovs = _message_iovecs(ctx, iovs_ptr, iovs_len)
        total = min(iovecs_total(iovs), MAX_IO)
        peek = bool(riflags & RIFLAGS_RECV_PEEK)
        sched = ctx.scheduler
        offset = sched.realtime_ns() - sched.monotonic_ns()

        def attempt() -> tuple[bytes, bytes, int, bool]:
            try:
                data, source, sport, truncated, found = recvmsg(total, peek, offset)
            except OSError as e:
                raise_wasi(e)
                raise AssertionError from None
            control[:] = found
            return data, source, sport, truncated

        data, src, port, truncated = wait_for_io(ctx, desc, attempt, desc.readiness_read,
                                                 _deadline(ctx, desc.recv_timeout_ns))
        stored = mem.scatter(iovs, data)
        roflags = ROFLAGS_RECV_DATA_TRUNCATED if truncated else 0
    encoded = encode_control(control)
    fitting = b""
    for count in range(len(control), 0, -1):
        candidate = encode_control(control[:count])
        if len(candidate) <= control_len:
            fitting = candidate
            break
    mem.write(control_ptr, fitting)
    mem.write_u32(control_used_ptr, len(encoded))
    mem.write_u32(size_ptr, stored)
    mem.write_u16(roflags_ptr, roflags)
    mem.write(addr_ptr, desc.source_name(src, port))
    return Errno.SUCCESS
