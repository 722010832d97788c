"""`Host.sockets()`: the standard `socket` module, per thread, on a virtual host.

Inside `with host.sockets():` the thread that entered the block creates
its sockets on `host` and resolves names through the network:

- `socket.socket(...)` returns a `vnet.network.HostSocket` (AF_INET,
  AF_INET6); other families (AF_UNIX) stay kernel sockets, which never
  leave the machine. `socket.create_connection` and `socket.create_server`
  then work unchanged, because they call the module's own `socket` and
  `getaddrinfo`.
- `getaddrinfo`, `gethostbyname(_ex)`, `gethostbyaddr`, `gethostname`,
  `getnameinfo` answer from `Network.resolve` (topology host names,
  `localhost`, literals); `getfqdn` follows, as it calls them.
- `select.select`, `select.poll`, `select.epoll` and the `selectors`
  module's `PollSelector`/`EpollSelector` (socketserver's and the default
  selector) wait on HostSockets through the scheduler: in virtual time
  they wait virtual seconds.

Threads: patching a module is process-global, so the module attributes
are replaced by dispatchers while at least one block is open anywhere,
and every dispatcher looks at a thread-local stack of hosts: a thread
that is not inside a block (including threads started from inside one)
gets the original functions, untouched. The originals are put back,
identical objects, when the last block ends, also on an exception.
Blocks nest (the innermost host wins). Code that copied a function
before the block (`from socket import create_connection`) keeps the
original; `socket.socket` seen through `isinstance` matches both kernel
sockets and HostSockets while the patch is in place.

A thread in a block must be one that may wait on the network: the main
thread (which then runs the network while it waits) or a scheduler task
(`Host.spawn`, `Network.spawn`). Threads of a `ThreadingMixIn` server are
neither, so in virtual time use the plain servers.

Touches: the attributes named in `_PATCHES` of the `socket`, `select`
and `selectors` modules, while a block is open.
"""

from __future__ import annotations

import math
import select
import selectors
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from vnet.network import HostSocket, open_host_sockets

if TYPE_CHECKING:
    from vnet.network import Host

_local = threading.local()
_patch_lock = threading.Lock()
_open_blocks = 0
_saved: list[tuple[object, str, object]] = []

_real_socket = socket.socket
_real_select = select.select
_real_poll = select.poll
_real_epoll = select.epoll


def current_host() -> Host | None:
    """The host whose sockets this thread creates now (None outside every block)."""
    hosts: list[Host] | None = getattr(_local, "hosts", None)
    return hosts[-1] if hosts else None


@contextmanager
def redirect(host: Host) -> Iterator[Host]:
    """The body of `Host.sockets()`."""
    hosts: list[Host] | None = getattr(_local, "hosts", None)
    if hosts is None:
        hosts = _local.hosts = []
    _install()
    hosts.append(host)
    try:
        yield host
    finally:
        hosts.pop()
        _uninstall()


# --- socket.socket -----------------------------------------------------------------
class _SocketMeta(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, (_real_socket, HostSocket))

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, (_real_socket, HostSocket))


class _DispatchSocket(metaclass=_SocketMeta):
    """What `socket.socket` is during a block: a HostSocket in a redirected thread."""

    def __new__(cls, family: int = -1, type: int = -1, proto: int = -1,
                fileno: int | None = None) -> Any:
        host = current_host()
        if host is None or fileno is not None or family not in (-1, socket.AF_INET,
                                                                  socket.AF_INET6):
            return _real_socket(family, type, proto, fileno)
        return HostSocket(host, socket.AF_INET if family == -1 else family,
                          socket.SOCK_STREAM if type == -1 else type, 0 if proto == -1 else proto)


def _on_host(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        host = current_host()
        if host is None:
            return original(*args, **kwargs)
        return getattr(host, name)(*args, **kwargs)

    dispatch.__name__ = getattr(original, "__name__", name)
    dispatch.__doc__ = original.__doc__
    return dispatch


# --- waiting: select, poll, epoll ------------------------------------------------
def _fd_of(fileobj: Any) -> int:
    fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
    if not isinstance(fd, int):
        raise TypeError("argument must be an int, or have a fileno() method.")
    if fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    return fd


def _host_socket(fd: int) -> HostSocket:
    sock = open_host_sockets.get(fd)
    if sock is None:
        raise OSError(9, "Bad file descriptor: vnet waits only on a virtual host's sockets "
                      f"inside Host.sockets() (fd {fd})")
    return sock


def _events_now(sock: HostSocket, mask: int) -> int:
    core = sock._core
    got = 0
    if mask & (select.POLLIN | select.POLLPRI) and core.readable():
        got |= select.POLLIN
    if mask & select.POLLOUT and core.writable():
        got |= select.POLLOUT
    return got


def _wait_for(host: Host, ready: Callable[[], bool], timeout_s: float | None) -> None:
    """Let the network run until ready() or the timeout; never longer than asked."""
    network = host.network
    if timeout_s is not None:
        # whole nanoseconds, rounded up, so a waiter for a deadline reaches it
        timeout_s = (math.ceil(max(0.0, timeout_s) * 1e9) + 0.5) / 1e9
    if not network.wait(ready, timeout_s) and timeout_s is None and not ready():
        raise TimeoutError("vnet: waiting forever: every task is blocked and no timer "
                           "is pending (virtual time)")


class HostPoll:
    """`select.poll()` over a host's sockets (their `fileno()` numbers)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._masks: dict[int, int] = {}

    def register(self, fd: Any, eventmask: int = select.POLLIN | select.POLLPRI
                 | select.POLLOUT) -> None:
        number = _fd_of(fd)
        _host_socket(number)
        self._masks[number] = eventmask

    def modify(self, fd: Any, eventmask: int) -> None:
        number = _fd_of(fd)
        if number not in self._masks:
            raise FileNotFoundError(2, "No such file or directory")
        self._masks[number] = eventmask

    def unregister(self, fd: Any) -> None:
        del self._masks[_fd_of(fd)]

    def _ready(self) -> list[tuple[int, int]]:
        got = []
        for fd, mask in self._masks.items():
            sock = open_host_sockets.get(fd)
            if sock is None:
                got.append((fd, select.POLLNVAL))
                continue
            events = _events_now(sock, mask)
            if events:
                got.append((fd, events))
        return got

    def _poll_s(self, timeout_s: float | None) -> list[tuple[int, int]]:
        sched = self.host.network.scheduler
        with sched.lock:
            found = self._ready()
        if found:
            return found
        _wait_for(self.host, lambda: bool(self._ready()), timeout_s)
        with sched.lock:
            return self._ready()

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        """Milliseconds; None or negative waits until a socket is ready."""
        return self._poll_s(None if timeout is None or timeout < 0 else timeout / 1000)


class HostEpoll(HostPoll):
    """`select.epoll()` over a host's sockets (level-triggered)."""

    def __init__(self, host: Host, sizehint: int = -1, flags: int = 0) -> None:
        super().__init__(host)
        self.closed = False

    def poll(self, timeout: float | None = None,
             maxevents: int = -1) -> list[tuple[int, int]]:
        """Seconds; None or negative waits until a socket is ready."""
        found = self._poll_s(None if timeout is None or timeout < 0 else timeout)
        return found if maxevents < 0 else found[:maxevents]

    def close(self) -> None:
        self.closed = True

    def fileno(self) -> int:
        return -1

    def __enter__(self) -> HostEpoll:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _poll_factory() -> Any:
    host = current_host()
    return _real_poll() if host is None else HostPoll(host)


def _epoll_factory(sizehint: int = -1, flags: int = 0) -> Any:
    host = current_host()
    return _real_epoll(sizehint, flags) if host is None else HostEpoll(host)


def _select(rlist: Iterable[Any], wlist: Iterable[Any], xlist: Iterable[Any],
            timeout: float | None = None) -> tuple[list[Any], list[Any], list[Any]]:
    host = current_host()
    if host is None:
        return _real_select(rlist, wlist, xlist, timeout)
    rlist, wlist, xlist = list(rlist), list(wlist), list(xlist)
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be non-negative")
    poller = HostPoll(host)
    for obj in rlist:
        poller.register(obj, select.POLLIN)
    for obj in wlist:
        fd = _fd_of(obj)
        poller.register(fd, poller._masks.get(fd, 0) | select.POLLOUT)
    for obj in xlist:
        _host_socket(_fd_of(obj))
    ready = dict(poller._poll_s(timeout))
    return ([o for o in rlist if ready.get(_fd_of(o), 0) & select.POLLIN],
            [o for o in wlist if ready.get(_fd_of(o), 0) & select.POLLOUT], [])


# --- installing -------------------------------------------------------------------
def _patches() -> list[tuple[object, str, object]]:
    names = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
             "gethostname", "getnameinfo")
    patches: list[tuple[object, str, object]] = [(socket, "socket", _DispatchSocket)]
    patches += [(socket, name, _on_host(name, getattr(socket, name))) for name in names]
    patches += [(select, "select", _select), (select, "poll", _poll_factory),
                (select, "epoll", _epoll_factory),
                (selectors.PollSelector, "_selector_cls", staticmethod(_poll_factory))]
    if hasattr(selectors, "EpollSelector"):
        patches.append((selectors.EpollSelector, "_selector_cls", staticmethod(_epoll_factory)))
    return patches


def _install() -> None:
    global _open_blocks
    with _patch_lock:
        if _open_blocks == 0:
            for owner, name, value in _patches():
                _saved.append((owner, name, owner.__dict__[name]))
                setattr(owner, name, value)
        _open_blocks += 1


def _uninstall() -> None:
    global _open_blocks
    with _patch_lock:
        _open_blocks -= 1
        if _open_blocks == 0:
            while _saved:
                owner, name, value = _saved.pop()
                setattr(owner, name, value)


def patched() -> bool:
    """True while some thread is inside a `Host.sockets()` block."""
    return _open_blocks > 0
