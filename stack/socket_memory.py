"""Budgets for the bytes socket queues hold: one per host, one per guest inside it.

What it is
----------
A `SocketMemory` is a counter of bytes with a limit, and optionally a parent
budget that every charge is also made against (a guest's budget sits inside
its host's). It plays the part of Linux's `tcp_mem`/`udp_mem` pages and of
`sk_rmem_alloc`/`sk_wmem_queued`, but in bytes and per owner, so that what a
guest makes vnet hold in its socket queues is counted against that guest.

Who charges what:

- UDP (`stack.udp`): a datagram queued for receiving costs its truesize; it
  is dropped (counted `udp.drop.memory`) when the budget cannot hold it, as
  Linux drops when `udp_mem` is exhausted (UDP_MIB_RCVBUFERRORS).
- TCP (`stack.tcp`): a connection's footprint is what its send queue,
  receive queue and out-of-order queue hold. `TcpLayer` settles the
  difference after every segment, send, receive and close. Payload that the
  budget cannot hold is dropped on arrival (the ACK in the same segment is
  still processed; the peer retransmits, as with Linux's
  `tcp_try_rmem_schedule` failing, TCPRcvQDrop); a send finds no room
  (EAGAIN, or a blocking send waits) once the budget minus `SEND_RESERVE` is
  used, so that there is always room left to receive what frees memory.

The guest layer also charges SOCKET_OVERHEAD for each socket a guest holds
open (the Python objects behind it), so that thousands of idle sockets
count too; socket() and accept() fail with ENOBUFS when it does not fit.

A guest's limit is its `--max-memory` less the linear memory it currently
has (`other_usage`), so linear memory and socket queues together stay within
the guest's limit. Sans-IO: no clocks, no threads; `other_usage` is a plain
callable. Touches nothing but its own counters.

That holds while linear memory does not grow after the sockets are full.
When it does (wasm grows memory without asking the host), the guest layer
acts as a Linux memory cgroup whose memory.max counts socket buffers
(vnet.guest.wasix.memory_limit_enforcer): it first reclaims what a budget's
sockets can lose without breaking a promise — `UdpLayer.reclaim` drops
queued datagrams (`udp.drop.reclaimed`), `TcpLayer.reclaim` empties the
out-of-order queues of connections without SACK (the peer retransmits;
`tcp.drop.ofo_pruned`) — and kills the guest (137, out of memory) if that
is not enough.
"""

from __future__ import annotations

from collections.abc import Callable

HOST_SOCKET_MEMORY = 256 * 1024 * 1024  # per host: what all its sockets may hold
SEND_RESERVE = 256 * 1024  # left for receiving when sends would fill a budget
SOCKET_OVERHEAD = 8 * 1024  # what one open socket costs vnet (measured ~6.7 KB with its connection)


class SocketMemory:
    """A byte budget for socket queues; `parent` is charged along with it."""

    __slots__ = ("limit", "name", "other_usage", "parent", "peak", "refused", "used")

    def __init__(self, limit: int, parent: SocketMemory | None = None, name: str = "",
                 other_usage: Callable[[], int] | None = None) -> None:
        self.limit = limit
        self.parent = parent
        self.name = name
        self.other_usage = other_usage
        self.used = 0
        self.peak = 0
        self.refused = 0  # charges refused (dropped datagrams/segments, deferred sends)

    def available(self) -> int:
        """Bytes that may still be charged here and in every parent budget."""
        room = self.limit - self.used
        if self.other_usage is not None:
            room -= self.other_usage()
        parent = self.parent
        while parent is not None:
            room = min(room, parent.limit - parent.used)
            parent = parent.parent
        return max(0, room)

    def try_charge(self, size: int) -> bool:
        """Charge `size` bytes if they fit; False (and counted) if they do not.
        (`available` and `charge` in one, on every queued datagram and segment.)"""
        room = self.limit - self.used
        if self.other_usage is not None:
            room -= self.other_usage()
        parent = self.parent
        while parent is not None:
            parent_room = parent.limit - parent.used
            if parent_room < room:
                room = parent_room
            parent = parent.parent
        if size > (room if room > 0 else 0):
            self.refused += 1
            return False
        budget: SocketMemory | None = self
        while budget is not None:
            used = budget.used = budget.used + size
            if used > budget.peak:
                budget.peak = used
            budget = budget.parent
        return True

    def charge(self, size: int) -> None:
        """Add (or, negative, give back) `size` bytes, here and in every parent."""
        budget: SocketMemory | None = self
        while budget is not None:
            budget.used += size
            if budget.used > budget.peak:
                budget.peak = budget.used
            budget = budget.parent

    def __repr__(self) -> str:
        return f"<SocketMemory {self.name} {self.used}/{self.limit}>"
