"""asyncio on a virtual host: a loop whose sockets are HostSockets, whose clock is the network's.

    import vnet.aio

    async def main() -> None:
        reader, writer = await asyncio.open_connection("bravo", 7)
        ...

    vnet.aio.run(main(), host)            # like asyncio.run, on `host`

`HostEventLoop(host)` is asyncio's selector event loop with the kernel
left out: its selector (`HostSelector`) waits on the host's sockets
through the network's scheduler, `loop.time()` is the scheduler's
monotonic clock (virtual seconds in a virtual-time network, so
`asyncio.sleep(60)` takes no wall time), and while the loop runs its
thread is inside `host.sockets()`, so the sockets asyncio creates
(`open_connection`, `start_server`, `create_datagram_endpoint`,
`sock_*` calls) are the host's and names resolve through the network
(`loop.getaddrinfo` answers at once, with no executor thread). There is
no self-pipe: `call_soon_threadsafe` wakes the loop through the
scheduler. Signal handlers and subprocesses are not available
(NotImplementedError), as on asyncio's plain selector loop.

As for every Python code on a virtual host, the loop's thread must be one
that may wait on the network: the main thread, or a scheduler task
(`host.spawn("server", lambda: vnet.aio.run(serve(), host))`). Two hosts
talking to each other each get their own loop, as two processes would.
In virtual time the run is deterministic.

The module is `vnet.aio`, not `vnet.asyncio`: a file named asyncio.py
inside the package would shadow the standard library for scripts run
from the package directory (`python vnet/cli.py`).

Touches: nothing outside the host it is given (and `vnet.host_sockets`'
per-thread patch while the loop runs).
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
from asyncio import selector_events
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from vnet.host_sockets import _wait_for
from vnet.network import HostSocket, open_host_sockets

if TYPE_CHECKING:
    from vnet.network import Host

T = TypeVar("T")


class HostSelector(selectors.BaseSelector):
    """A `selectors` selector over one host's sockets, waiting through the scheduler."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._keys: dict[int, selectors.SelectorKey] = {}
        self._woken = threading.Event()

    def _fd(self, fileobj: Any) -> int:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        if fd < 0:
            raise ValueError(f"Invalid file descriptor: {fd}")
        return int(fd)

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        if not events or events & ~(selectors.EVENT_READ | selectors.EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")
        fd = self._fd(fileobj)
        if fd in self._keys:
            raise KeyError(f"{fileobj!r} (FD {fd}) is already registered")
        if fd not in open_host_sockets:
            raise ValueError(f"vnet: fd {fd} is not a socket of a virtual host")
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        try:
            return self._keys.pop(self._fd(fileobj))
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return dict(self._keys)

    def wake(self) -> None:
        """Make a waiting select() return (any thread)."""
        self._woken.set()
        self.host.network.scheduler.notify()

    def _ready(self) -> list[tuple[selectors.SelectorKey, int]]:
        found = []
        for fd, key in self._keys.items():
            sock: HostSocket | None = open_host_sockets.get(fd)
            if sock is None:  # closed while registered: report it, as epoll reports EBADF
                found.append((key, key.events))
                continue
            core = sock._core
            events = 0
            if key.events & selectors.EVENT_READ and core.readable():
                events |= selectors.EVENT_READ
            if key.events & selectors.EVENT_WRITE and core.writable():
                events |= selectors.EVENT_WRITE
            if events:
                found.append((key, events))
        return found

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        sched = self.host.network.scheduler
        if timeout is not None and timeout <= 0:
            timeout = 0.0
        with sched.lock:
            found = self._ready()
        if found or self._woken.is_set():
            self._woken.clear()
            return found
        _wait_for(self.host, lambda: self._woken.is_set() or bool(self._ready()), timeout)
        self._woken.clear()
        with sched.lock:
            return self._ready()

    def close(self) -> None:
        self._keys.clear()


class HostEventLoop(selector_events.BaseSelectorEventLoop):
    """asyncio's selector loop on a virtual host: HostSockets, the scheduler's clock."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._host_selector = HostSelector(host)
        super().__init__(self._host_selector)

    # --- no self-pipe: the scheduler wakes the selector ------------------------
    def _make_self_pipe(self) -> None:
        self._ssock = self._csock = None

    def _close_self_pipe(self) -> None:
        pass

    def _write_to_self(self) -> None:
        self._host_selector.wake()

    # --- the network's clock and names -----------------------------------------
    def time(self) -> float:
        return self.host.network.scheduler.monotonic_ns() / 1e9

    async def getaddrinfo(self, host: Any, port: Any, *, family: int = 0, type: int = 0,
                          proto: int = 0, flags: int = 0) -> list[Any]:
        return self.host.getaddrinfo(host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        return self.host.getnameinfo(sockaddr, flags)

    # --- the host's sockets while the loop runs --------------------------------
    def run_forever(self) -> None:
        with self.host.sockets():
            super().run_forever()

    def _sock_connect_cb(self, fut: asyncio.Future[None], sock: Any, address: Any) -> None:
        if fut.done():
            return
        # the stack keeps a failed connect's errno in connect_result (Linux: sk_err)
        if isinstance(sock, HostSocket) and sock.type == socket.SOCK_STREAM:
            with sock._turn():
                result = sock._core.connect_result()
            if result is None:
                return  # still connecting: stay registered
            if result:  # asyncio's own wording for SO_ERROR
                fut.set_exception(OSError(result, f"Connect call failed {address}"))
            else:
                fut.set_result(None)
            return
        super()._sock_connect_cb(fut, sock, address)  # type: ignore[misc]


def new_event_loop(host: Host) -> HostEventLoop:
    return HostEventLoop(host)


def run(main: Coroutine[Any, Any, T], host: Host, *, debug: bool | None = None) -> T:
    """asyncio.run() on `host`: a new HostEventLoop runs `main` to completion, then closes."""
    with asyncio.Runner(debug=debug, loop_factory=lambda: HostEventLoop(host)) as runner:
        return runner.run(main)
