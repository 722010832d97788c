"""What a stack needs from the world around it: time in, timers and wake-ups out.

The stack is sans-IO: it never reads a clock, sleeps or spawns threads. Its
owner passes a `StackDriver`, through which time comes in (`now_ns`) and
through which the stack asks to be called back later (`call_at`), to run a
zero-latency follow-up without recursing (`defer`: loopback delivery), and to
tell whoever waits on its sockets that something changed (`wake`). vnet's
`Scheduler` provides all four; tests use `ManualDriver`, whose clock moves
only when told. Frames leave through each interface's `transmit` callable,
which the owner wires to a NIC. Touches nothing.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class StackDriver(Protocol):
    def now_ns(self) -> int: ...

    def call_at(self, when_ns: int, callback: Callable[[], Any]) -> TimerHandle: ...

    def defer(self, callback: Callable[[], Any]) -> None: ...

    def wake(self) -> None: ...


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: int, callback: Callable[[], Any]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualDriver:
    """A driver for tests: time advances only through `advance`/`run_until`."""

    def __init__(self, start_ns: int = 0) -> None:
        self.now = start_ns
        self._timers: list[tuple[int, int, _ManualTimer]] = []
        self._seq = itertools.count()
        self._deferred: deque[Callable[[], Any]] = deque()
        self._draining = False
        self.wakeups = 0

    def now_ns(self) -> int:
        return self.now

    def call_at(self, when_ns: int, callback: Callable[[], Any]) -> _ManualTimer:
        timer = _ManualTimer(when_ns, callback)
        heapq.heappush(self._timers, (when_ns, next(self._seq), timer))
        return timer

    def defer(self, callback: Callable[[], Any]) -> None:
        self._deferred.append(callback)
        if self._draining:
            return
        self._draining = True
        try:
            while self._deferred:
                self._deferred.popleft()()
        finally:
            self._draining = False

    def wake(self) -> None:
        self.wakeups += 1

    def advance(self, delta_ns: int) -> None:
        """Move the clock forward, firing every timer that falls due, in order."""
        self.run_until(self.now + delta_ns)

    def run_until(self, when_ns: int) -> None:
        while self._timers and self._timers[0][0] <= when_ns:
            t, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self.now = max(self.now, t)
            timer.cancelled = True
            self.defer(timer.callback)
        self.now = max(self.now, when_ns)

    def pending_timers(self) -> int:
        return sum(1 for _, _, t in self._timers if not t.cancelled)
