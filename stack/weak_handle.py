"""`weak_ref`: a weak reference to an object that may be of a mypyc-compiled class.

A class compiled by mypyc (scripts/compile-stack), such as `TcpConnection`, takes no
weak references. A `TimeWaitRecord` (stack/tcp_time_wait.py) must reach the connection
it replaced while that connection's closed socket still holds it, without keeping it
alive itself. `weak_ref` gives ``weakref.ref(obj)`` where the class allows it (the
pure-Python stack: nothing changes there), and otherwise a reference to a
`WeakHandle` that the object keeps for the purpose (its ``handle`` attribute); the
handle and the object refer to each other, so the collector, not the reference
count, frees a compiled connection so referred to. This module stays uncompiled (it is
not in ``vnet.compile_stack.COMPILED_MODULES``), so a handle is an ordinary object in
both builds. Touches nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Protocol


class Handled(Protocol):
    handle: WeakHandle | None


class WeakHandle:
    """A weakly referable stand-in for one object (`target`)."""

    __slots__ = ("__weakref__", "target")

    def __init__(self, target: object) -> None:
        self.target = target


def weak_ref(obj: Handled) -> Callable[[], Any]:
    """Call it for `obj`, or None once `obj` is gone (as a ``weakref.ref``)."""
    if type(obj).__weakrefoffset__:
        return weakref.ref(obj)
    handle = obj.handle
    if handle is None:
        handle = obj.handle = WeakHandle(obj)
    handle_ref = weakref.ref(handle)

    def target() -> Any:
        live = handle_ref()
        return None if live is None else live.target

    return target
