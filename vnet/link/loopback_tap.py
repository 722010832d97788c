"""Capture a host's loopback interface: the packets a host sends to itself through `lo`.

`capture_loopback(stack, capture, clock)` registers a raw-IP interface
``HOST/lo`` in the capture and adds a recorder to that one stack's
``loopback_observers`` (told of every packet IPv4 and IPv6 hand to `lo`, in
``HostStack.loopback``, see stack/host.py), so that each packet is recorded, as
outbound, before it goes on its way unchanged. Nothing else about the stack
changes; a stack with no loopback capture pays one empty loop per packet.

Touches the `HostStack` it is given (its ``loopback_observers``) and the capture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vnet.link.capture import LINKTYPE_RAW, Capture, CaptureTap, Direction

__all__ = ["capture_loopback"]


def capture_loopback(stack: Any, capture: Capture, clock: Callable[[], int],
                     name: str | None = None) -> CaptureTap:
    """Record every packet `stack` sends through `lo` in `capture` as ``NAME/lo``."""
    tap = capture.interface(f"{name or stack.name}/lo", LINKTYPE_RAW, clock=clock)
    observers: list[Callable[[bytes], None]] = stack.loopback_observers
    if not any(isinstance(each, _LoopbackRecorder) and each.tap is tap for each in observers):
        observers.append(_LoopbackRecorder(tap))
    return tap


class _LoopbackRecorder:
    """Records each packet a host sends through `lo` on one capture interface."""

    __slots__ = ("tap",)

    def __init__(self, tap: CaptureTap) -> None:
        self.tap = tap

    def __call__(self, packet: bytes) -> None:
        self.tap.record(packet, Direction.OUTBOUND)
