"""`WeakHandle`: the weakly referable stand-in for a closed socket's connection.

A class compiled by mypyc (scripts/compile-stack), such as `TcpConnection`, takes no
weak references. A `TimeWaitRecord` (stack/tcp_time_wait.py) must reach the connection
it replaced while that connection's closed socket is still held (by a test, say),
without keeping either alive itself, to mark it CLOSED when TIME-WAIT ends.

The socket, not the connection, owns the handle (`TcpSocket.close` makes one when the
connection may still reach TIME-WAIT): socket -> handle -> connection, and the
connection keeps only a weak reference to the handle (its ``handle`` slot), which the
record takes over. Nothing refers back to the socket, so there is no reference cycle:
once the application lets go of the closed socket, the socket, the handle and the
connection are freed by their reference counts at once, and the record's weak
reference then answers None. (A handle the connection owned would refer to it and
back, and the collector, not the reference count, would free every compiled
connection that went through TIME-WAIT: 14 objects left to the collector each.)

The same path serves both builds. This module stays uncompiled (it is not in
``vnet.compile_stack.COMPILED_MODULES``), so a handle is an ordinary object in both.
Touches nothing.
"""

from __future__ import annotations

import weakref
from typing import Any


class WeakHandle:
    """A weakly referable stand-in for one object (`target`).

    No ``__init__``: `handle_for`, called from compiled code (a TCP client's every
    close), then runs no Python frame but its own -- and none when inlined as
    ``handle = WeakHandle(); handle.target = x; weakref.ref(handle)``."""

    __slots__ = ("__weakref__", "target")

    target: Any


def handle_for(target: Any) -> tuple[WeakHandle, weakref.ref[WeakHandle]]:
    """A new handle for `target`, and a weak reference to it."""
    handle = WeakHandle()
    handle.target = target
    return handle, weakref.ref(handle)


def target_of(handle_ref: weakref.ref[WeakHandle] | None) -> Any:
    """What `handle_ref` stands for, or None once its handle (or the reference) is gone."""
    if handle_ref is None:
        return None
    handle = handle_ref()
    return None if handle is None else handle.target
