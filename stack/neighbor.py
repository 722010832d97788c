"""Neighbor cache for one interface and one address family (ARP or NDP).

Theory of operation
-------------------
One engine serves ARP (IPv4) and NDP (IPv6): they differ only in the
messages the stack sends, not in the cache's state machine, which follows
RFC 4861 §7.3 Neighbor Unreachability Detection (Linux uses the same states
for ARP):

    INCOMPLETE --reply--> REACHABLE --reachable_ns--> STALE --used--> DELAY
        |                     ^                                          |
        | max probes          +------------------- reply --------- PROBE <-- delay_ns
        v                                                              |
      FAILED (entry removed, queued packets reported)        max probes: removed

Packets sent to a neighbor that is still being resolved wait in a bounded
queue on its entry (`queue_limit` packets, oldest dropped first, as Linux's
unres_qlen); when resolution fails they are handed back so the stack can
answer each with ICMP host unreachable.

The engine is sans-IO: the caller passes `now_ns`, and the methods return
what to do (`Probe` to send, packets to flush or fail). `next_deadline()`
says when `on_timer` must run next. Touches nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

P = TypeVar("P")  # whatever the stack queues: a packet and how to send it


class NeighborState(Enum):
    INCOMPLETE = "incomplete"
    REACHABLE = "reachable"
    STALE = "stale"
    DELAY = "delay"
    PROBE = "probe"


@dataclass
class NeighborEntry(Generic[P]):
    address: bytes
    state: NeighborState
    mac: bytes | None = None
    probes: int = 0
    deadline: int | None = None
    queue: deque[P] = field(default_factory=deque)
    is_router: bool = False
    static: bool = False


@dataclass(frozen=True, slots=True)
class Probe:
    """Send a solicitation for `address`; unicast to `mac` if given, else multicast/broadcast."""

    address: bytes
    mac: bytes | None


@dataclass
class NeighborTimers:
    retrans_ns: int = 1_000_000_000  # RFC 4861 RETRANS_TIMER
    reachable_ns: int = 30_000_000_000  # REACHABLE_TIME
    delay_ns: int = 5_000_000_000  # DELAY_FIRST_PROBE_TIME
    max_multicast_probes: int = 3
    max_unicast_probes: int = 3
    queue_limit: int = 64
    max_entries: int = 1024


class NeighborCache(Generic[P]):
    def __init__(self, timers: NeighborTimers | None = None) -> None:
        self.timers = timers or NeighborTimers()
        self.entries: dict[bytes, NeighborEntry[P]] = {}
        self.queue_drops = 0
        self.failures = 0
        #: Set when a lookup armed a new deadline (the owner re-arms its timer).
        self.deadlines_changed = False

    # --- lookups -----------------------------------------------------------
    def lookup(self, now_ns: int, address: bytes) -> bytes | None:
        """The MAC to use now, or None if resolution is needed (see `resolve`).

        Using a STALE entry starts NUD (DELAY), as RFC 4861 §7.3.3 says.
        """
        entry = self.entries.get(address)
        if entry is None or entry.mac is None:
            return None
        if entry.state is NeighborState.STALE:
            entry.state = NeighborState.DELAY
            entry.deadline = now_ns + self.timers.delay_ns
            self.deadlines_changed = True
        return entry.mac

    def resolve(self, now_ns: int, address: bytes, pending: P) -> Probe | None:
        """Queue `pending` until address resolves; returns a Probe to send now, if any."""
        entry = self.entries.get(address)
        if entry is None:
            if len(self.entries) >= self.timers.max_entries:
                self._evict_one()
            entry = NeighborEntry(address, NeighborState.INCOMPLETE, probes=1,
                                  deadline=now_ns + self.timers.retrans_ns)
            self.entries[address] = entry
            self._enqueue(entry, pending)
            return Probe(address, None)
        self._enqueue(entry, pending)
        return None

    def _enqueue(self, entry: NeighborEntry[P], pending: P) -> None:
        if len(entry.queue) >= self.timers.queue_limit:
            entry.queue.popleft()
            self.queue_drops += 1
        entry.queue.append(pending)

    def _evict_one(self) -> None:
        for key, entry in self.entries.items():
            if not entry.static and entry.state is not NeighborState.INCOMPLETE:
                del self.entries[key]
                return
        key = next(iter(self.entries))
        del self.entries[key]

    # --- learning ----------------------------------------------------------
    def confirm(self, now_ns: int, address: bytes, mac: bytes, solicited: bool = True,
                override: bool = True, is_router: bool | None = None) -> list[P]:
        """A reply (or other proof of reachability) from address: returns packets to flush.

        `solicited` replies make the entry REACHABLE; unsolicited information
        (a request we overheard, an unsolicited advertisement) only records
        the MAC as STALE, as RFC 4861 §7.2.5/§7.2.3 require.
        """
        entry = self.entries.get(address)
        if entry is None:
            if not solicited:
                return []
            entry = NeighborEntry(address, NeighborState.STALE)
            self.entries[address] = entry
        if entry.static:
            return []
        changed = entry.mac is not None and entry.mac != mac
        if entry.mac is None or override or not changed:
            entry.mac = mac
        if is_router is not None:
            entry.is_router = is_router
        if solicited and (override or not changed):
            entry.state = NeighborState.REACHABLE
            entry.deadline = now_ns + self.timers.reachable_ns
            entry.probes = 0
        elif entry.state is NeighborState.INCOMPLETE or changed:
            entry.state = NeighborState.STALE
            entry.deadline = None
            entry.probes = 0
        flushed = list(entry.queue)
        entry.queue.clear()
        return flushed

    def learn(self, now_ns: int, address: bytes, mac: bytes) -> list[P]:
        """Unsolicited proof of the mapping (e.g. we saw its request): STALE or update."""
        entry = self.entries.get(address)
        if entry is None:
            self.entries[address] = NeighborEntry(address, NeighborState.STALE, mac)
            return []
        if entry.static:
            return []
        if entry.mac != mac:
            entry.mac = mac
            if entry.state is not NeighborState.INCOMPLETE:
                entry.state = NeighborState.STALE
                entry.deadline = None
        if entry.state is NeighborState.INCOMPLETE:
            entry.state = NeighborState.STALE
            entry.deadline = None
        flushed = list(entry.queue)
        entry.queue.clear()
        return flushed

    def add_static(self, address: bytes, mac: bytes) -> None:
        self.entries[address] = NeighborEntry(address, NeighborState.REACHABLE, mac, static=True)

    def forget(self, address: bytes) -> None:
        self.entries.pop(address, None)

    # --- time --------------------------------------------------------------
    def next_deadline(self) -> int | None:
        deadlines = [e.deadline for e in self.entries.values() if e.deadline is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now_ns: int) -> tuple[list[Probe], list[tuple[bytes, list[P]]]]:
        """Advance every due entry: (probes to send, [(address, queued packets)] that failed)."""
        probes: list[Probe] = []
        failed: list[tuple[bytes, list[P]]] = []
        t = self.timers
        for address, entry in list(self.entries.items()):
            if entry.static or entry.deadline is None or entry.deadline > now_ns:
                continue
            state = entry.state
            if state is NeighborState.INCOMPLETE:
                if entry.probes >= t.max_multicast_probes:
                    del self.entries[address]
                    self.failures += 1
                    failed.append((address, list(entry.queue)))
                    continue
                entry.probes += 1
                entry.deadline = now_ns + t.retrans_ns
                probes.append(Probe(address, None))
            elif state is NeighborState.REACHABLE:
                entry.state = NeighborState.STALE
                entry.deadline = None
            elif state is NeighborState.DELAY:
                entry.state = NeighborState.PROBE
                entry.probes = 1
                entry.deadline = now_ns + t.retrans_ns
                probes.append(Probe(address, entry.mac))
            elif state is NeighborState.PROBE:
                if entry.probes >= t.max_unicast_probes:
                    del self.entries[address]
                    self.failures += 1
                    failed.append((address, list(entry.queue)))
                    continue
                entry.probes += 1
                entry.deadline = now_ns + t.retrans_ns
                probes.append(Probe(address, entry.mac))
        return probes, failed
