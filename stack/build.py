"""Assembling a host: a `HostStack` with its transports, registered with it.

`build_host` is the one place that wires UDP (protocol 17), TCP (6) and the
ping sockets (the ICMP echo handler) into a new stack, so no caller fills in
`HostStack.transports` by hand. It lives apart from `stack.host` so that the
stack's module does not depend on the transports that depend on it. Touches
nothing but the objects it creates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .driver import StackDriver
from .host import HostStack
from .ip import PROTO_TCP, PROTO_UDP
from .ping import IcmpEchoLayer
from .tcp import TcpLayer
from .tcp_connection import TcpConfig
from .udp import UdpLayer


@dataclass(slots=True)
class BuiltHost:
    """A host's stack with the transports `build_host` gave it."""

    stack: HostStack
    udp: UdpLayer | None
    tcp: TcpLayer | None
    icmp: IcmpEchoLayer | None


def build_host(driver: StackDriver, name: str = "host", *, rng: random.Random | None = None,
               forwarding: bool = False, udp: bool = True, tcp: bool = True,
               ping: bool = True, tcp_config: TcpConfig | None = None) -> BuiltHost:
    """Assemble a host: its `HostStack` and the transports asked for, registered with it
    (UDP as protocol 17, TCP as 6, the ping sockets as the ICMP echo handler)."""
    stack = HostStack(driver, name, rng=rng, forwarding=forwarding)
    udp_layer = UdpLayer(stack) if udp else None
    if udp_layer is not None:
        stack.set_transport(PROTO_UDP, udp_layer)
    echo_layer = IcmpEchoLayer(stack) if ping else None
    tcp_layer = TcpLayer(stack, tcp_config) if tcp else None
    if tcp_layer is not None:
        stack.set_transport(PROTO_TCP, tcp_layer)
    return BuiltHost(stack, udp_layer, tcp_layer, echo_layer)
