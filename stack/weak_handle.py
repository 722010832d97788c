"""`WeakHandle`: what a TIME-WAIT record refers to weakly instead of its connection.

A class compiled by mypyc (scripts/compile-stack), such as `TcpConnection`, takes no
weak references. A `TimeWaitRecord` (stack/tcp_time_wait.py) must reach the
connection it replaced while that connection's closed socket still holds it, without
keeping it alive itself: it refers weakly to the connection's handle, which lives as
long as the connection (each refers to the other; the collector frees both once
nothing else holds them). This module stays uncompiled (it is not in
``vnet.compile_stack.COMPILED_MODULES``), so a handle is an ordinary object in both
builds. Touches nothing.
"""

from __future__ import annotations

from typing import Any


class WeakHandle:
    """A weakly referable stand-in for one object (`target`)."""

    __slots__ = ("__weakref__", "target")

    def __init__(self, target: Any) -> None:
        self.target = target
