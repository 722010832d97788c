"""`vnet_v1.ioctl`: Linux-numbered ioctl requests on a guest's fds.

The SDK's ioctl() (vnet/sdk/src/ioctl.c) handles FIONBIO itself and passes
every other request here unchanged, with the guest-memory address of its
argument. A request is answered by the handler registered for its number
(`ioctl_handler`); the handler reads and writes the argument through
`ctx.mem` (its layout is the request's: an int, a struct ifreq …) and returns
the call's non-negative result, or raises WasiError. A request nobody
registered fails with ENOTTY on an open fd and EBADF on a closed one, as on
Linux.

Modules that answer requests (interface configuration, guest TUN/TAP devices)
register their handlers at import time; this module answers FIONREAD (bytes
ready to read: a stream socket's queue, a datagram socket's next datagram, a
regular file's bytes after the offset). It touches only the calling guest's
own fd table and the descriptions in it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from stack.tcp_socket import TcpSocket

from .abi import host_function
from .context import GuestContext
from .fdtable import FileDescription
from .fs import Directory, RegularFile
from .sockets import SocketDescription
from .wasi_types import Errno, WasiError

V = "vnet_v1"

FIONREAD = 0x541B

IoctlHandler = Callable[[GuestContext, int, int], int]
"""(ctx, fd, arg_ptr) -> the call's result (>= 0); raises WasiError."""

_HANDLERS: dict[int, IoctlHandler] = {}


def ioctl_handler(*requests: int) -> Callable[[IoctlHandler], IoctlHandler]:
    """Register a function as the answer to these request numbers."""
    def register(handler: IoctlHandler) -> IoctlHandler:
        for request in requests:
            key = request & 0xFFFFFFFF
            if key in _HANDLERS:
                raise ValueError(f"ioctl request {request:#x} registered twice")
            _HANDLERS[key] = handler
        return handler
    return register


@host_function(V, "ioctl", "iiii")
def vnet_ioctl(ctx: GuestContext, fd: int, request: int, arg_ptr: int, result_ptr: int) -> int:
    ctx.mem.check(result_ptr, 4)
    handler = _HANDLERS.get(request & 0xFFFFFFFF)
    if handler is None:
        ctx.fds.get(fd)  # EBADF first, as Linux checks the fd before the request
        raise WasiError(Errno.ENOTTY)
    result = handler(ctx, fd, arg_ptr)
    ctx.mem.write_u32(result_ptr, result & 0xFFFFFFFF)
    return Errno.SUCCESS


def readable_bytes(description: FileDescription) -> int:
    """What FIONREAD reports for one description, or WasiError as Linux."""
    if isinstance(description, SocketDescription):
        core = description.core
        if isinstance(core, TcpSocket) and core.listening:
            raise WasiError(Errno.EINVAL)
        return description.readiness_read().nbytes
    if isinstance(description, RegularFile):
        host_fd = description.host_fd
        return max(0, os.fstat(host_fd).st_size - os.lseek(host_fd, 0, os.SEEK_CUR))
    if isinstance(description, Directory):
        raise WasiError(Errno.ENOTTY)
    return description.readiness_read().nbytes


@ioctl_handler(FIONREAD)
def fionread(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    count = readable_bytes(ctx.fds.get(fd))
    ctx.mem.check(arg_ptr, 4)
    ctx.mem.write_u32(arg_ptr, count)
    return 0
