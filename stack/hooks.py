"""Netfilter's five hooks: where a host's IP layers hand packets to a filter.

Modelled on gVisor's pkg/tcpip/stack/iptables_types.go. Each hook is called
at exactly one place per IP version (`stack.ipv4`, `stack.ipv6`), plus one
shared place for the control messages a host sends straight onto a link
without routing them (ND, MLD, IGMP: `HostStack.output_control`), which pass
OUTPUT and POSTROUTING there, as Linux filters them at OUTPUT too:

    wire ──► PREROUTING ──► routing ──┬──► INPUT ──► local transports (UDP, TCP, ICMP)
                              decision │                        │
                                       │                        ▼
                                       │                local sockets send
                                       │                        │
                                       │                        ▼
                                       │                      OUTPUT
                                       │                        │
                                       └──► FORWARD ───┐        ▼
                                                       └──► POSTROUTING ──► fragment ──► wire

- PREROUTING: every packet that arrived (after the header checks, before the
  routing decision and before reassembly): destination NAT goes here.
- INPUT: a packet (reassembled) for this host, before a transport sees it.
- FORWARD: a packet a router passes on, with its TTL/hop limit decremented.
- OUTPUT: a packet this host generated, after routing, before fragmentation.
- POSTROUTING: every packet about to leave an interface that is not
  loopback (forwarded or locally generated), before fragmentation: source NAT
  goes here.

A hook function gets `(hook, meta, packet)` and returns a `Verdict`: accept
or drop, and optionally a rewritten packet that continues in the original's
place (what NAT needs). The packet handed over is a `bytearray` the stack
will send at FORWARD, OUTPUT and POSTROUTING, and the received packet's
buffer at PREROUTING and INPUT. At most one function is registered per hook
(a firewall attaches to the hooks it filters); a hook with none accepts.
Touches nothing: pure data and dispatch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .counters import StackCounters
    from .ip import IpMeta

from .wire.errors import WireError

Parsed = TypeVar("Parsed")

PacketBuffer = bytes | bytearray | memoryview


class Hook(StrEnum):
    """The five hooks; their values are the names nftables gives them."""

    PREROUTING = "prerouting"
    INPUT = "input"
    FORWARD = "forward"
    OUTPUT = "output"
    POSTROUTING = "postrouting"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A hook's answer: `accept`, and the packet to go on with if it rewrote it."""

    accept: bool
    packet: bytes | bytearray | None = None

    def __bool__(self) -> bool:
        return self.accept


ACCEPT = Verdict(True)
DROP = Verdict(False)

HookFunction = Callable[[Hook, "IpMeta", PacketBuffer], Verdict]


class HookTable:
    """The function registered at each hook of one host's stack (none: accept)."""

    __slots__ = ("_functions", "active", "generation")

    def __init__(self) -> None:
        self._functions: dict[Hook, HookFunction] = {}
        #: Bumped by every register / unregister (what per-flow caches compare against).
        self.generation = 0
        #: Some function is registered at some hook (per-packet paths test this first).
        self.active = False

    def register(self, hook: Hook, function: HookFunction) -> None:
        """Make `function` the filter at `hook` (replacing any before it)."""
        self._functions[hook] = function
        self.generation += 1
        self.active = True

    def unregister(self, hook: Hook, function: HookFunction | None = None) -> None:
        """Remove the function at `hook` (only if it is `function`, when given)."""
        if function is None or self._functions.get(hook) == function:
            self._functions.pop(hook, None)
            self.generation += 1
            self.active = bool(self._functions)

    def get(self, hook: Hook) -> HookFunction | None:
        """The function at `hook`, or None (callers skip building metadata then)."""
        functions = self._functions
        # no hook at all (the common case): no lookup, whose hash of the enum member
        # is a Python-level call (Enum.__hash__)
        return functions.get(hook) if functions else None

    def run(self, hook: Hook, meta: IpMeta, packet: PacketBuffer) -> Verdict:
        functions = self._functions
        function = functions.get(hook) if functions else None
        if function is None:
            return ACCEPT
        return function(hook, meta, packet)

    def run_on_arrival(self, hook: Hook, meta: IpMeta, packet: PacketBuffer,
                       parsed: Parsed, parse: Callable[[PacketBuffer], Parsed | WireError],
                       counters: StackCounters, layer: str) -> Parsed | None:
        """Run an arrival hook (PREROUTING, INPUT) on a parsed packet: the packet to go on
        with (`parsed`, or the hook's rewrite parsed again), or None when the hook dropped
        it or rewrote it into something that does not parse (each counted as a drop)."""
        verdict = self.run(hook, meta, packet)
        if not verdict.accept:
            counters.drop(layer, "firewall")
            return None
        if verdict.packet is None:
            return parsed
        rewritten = parse(verdict.packet)
        if isinstance(rewritten, WireError):
            counters.drop(layer, rewritten)
            return None
        return rewritten
