"""Capture a host's loopback interface: the packets a host sends to itself through `lo`.

`capture_loopback(stack, capture, clock)` registers a raw-IP interface
``HOST/lo`` in the capture and wraps that one stack's ``loopback(packet)``
method (the single place where IPv4 and IPv6 hand a packet to `lo`, see
stack/host.py) so that each packet is recorded, as outbound, before it goes
on its way unchanged. Nothing else about the stack changes; a stack with no
loopback capture pays nothing.

Touches the `HostStack` it is given (one instance attribute) and the capture.
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
    taps: list[CaptureTap] | None = getattr(stack, "_vnet_loopback_taps", None)
    if taps is None:
        taps = []
        send = stack.loopback

        def loopback(packet: bytes) -> None:
            for each in taps:
                each.record(packet, Direction.OUTBOUND)
            send(packet)

        stack.loopback = loopback
        stack._vnet_loopback_taps = taps
    if tap not in taps:
        taps.append(tap)
    return tap
