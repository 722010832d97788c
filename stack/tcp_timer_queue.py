"""The timers of one TCP layer's connections behind a single driver timer.

Why
---
A connection arms about seven timers in its life and cancels six: the SYN and
SYN-ACK retransmission timers, one retransmission timer per flight of data or
FIN, the orphan's FIN-WAIT-2 limit and TIME-WAIT's end. As driver timers each
costs a timer object, the scheduler's lock and a push onto the scheduler's heap
(and, in real time, may wake its loop thread); most are cancelled microseconds
later. Here they cost a push onto this queue's heap, and the driver timer moves
only when the earliest entry moves earlier: nearly every new entry (a 200 ms
retransmission timer, a 60 s TIME-WAIT) falls after the one armed.

Rules
-----
- `call_at(when, callback)` means what the driver's does: the callback runs at
  `when` exactly, never earlier and, in virtual time, never later. Entries due
  at the same time run in the order they were armed, and each one's deferred
  work (the frames it sends, their delivery) is finished before the next one
  runs, as when each was a driver timer of its own.
- The driver timer is armed at or before the earliest live entry, always. A
  cancelled entry stays in the heap until it reaches the top (as the driver's
  own cancelled timers do) but lets go of its callback, and with it of its
  connection, at once.
- A driver timer left armed for an entry since cancelled fires as a no-op and
  re-arms for the earliest live entry. It is not moved off a cancelled entry:
  in real time that saves no wake-up of the scheduler's loop. A server's
  delayed ACK (1 ms, armed by each connection's FIN, cancelled by its own FIN
  about 0.1 ms later) needs the loop awake by its time while it is live; left
  stale, one driver timer covers every such entry armed in the next
  millisecond, while moving it later makes the next entry signal the sleeping
  loop instead. Tried (cancelling a near entry moved the driver timer, to a
  kept spare where possible): loop wake-ups per connection unchanged (0.75-1.03
  either way, pure Python connrate), driver timers armed 0.5-0.6 -> 1.0-1.1,
  no-op fires 0.40-0.49 -> 0.03-0.10.
- Nearly every entry is cancelled (a connection cancels six of its seven), and
  each would cost a full sift of the heap when it reached the top, long after.
  So whenever the heap has doubled since it was last purged (and holds more than
  `PURGE_MIN`), its cancelled entries are all taken out in one pass, order kept:
  linear work once per doubling, nothing per cancellation.
- Entries are kept in two places, one order: an entry due no earlier than the
  last one in the FIFO is appended there (every TIME-WAIT end, 2*MSL after it
  began, is), the others go onto the heap; the next to run is the earlier head by
  (time, arming order). The heap thus holds the short timers only (a busy client
  has tens of thousands of TIME-WAITs), and its pushes and pops stay shallow.

Touches only its driver.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .driver import StackDriver, TimerHandle


#: The heap size below which a queue never purges it (see the rules).
PURGE_MIN = 64


class QueuedTimer:
    """One entry of a `TcpTimerQueue`; `cancel()` is idempotent.

    `callback` is called with no argument, or, when `kind` is set, it is a
    connection and `callback._fire(kind)` is called: a connection's timer then costs
    this one object, not a closure over the connection and the kind as well.

    `when` is when the queue runs it. `due` is its owner's: a connection that moves
    a timer later only sets `due`, and the entry, run early, is queued again for it
    (`TcpTimers._arm`, `TcpTimerQueue.requeue`)."""

    __slots__ = ("callback", "cancelled", "due", "kind", "when")

    def __init__(self, when_ns: int, callback: Any, kind: str | None = None) -> None:
        self.when = when_ns
        self.due = when_ns
        self.callback: Any = callback
        self.kind = kind
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.callback = None


class TcpTimerQueue:
    """Connection timers of one TCP layer, multiplexed onto one driver timer."""

    def __init__(self, driver: StackDriver) -> None:
        self.driver = driver
        self._heap: list[tuple[int, int, QueuedTimer]] = []
        self._fifo: deque[tuple[int, int, QueuedTimer]] = deque()  # in (time, order)
        self._seq = 0
        self._armed: TimerHandle | None = None  # the driver timer, if one is armed
        self._armed_at = 0  # when it fires
        self._purge_at = PURGE_MIN  # the heap size that makes `_push` purge it

    def call_at(self, when_ns: int, callback: Callable[[], Any]) -> QueuedTimer:
        return self._push(when_ns, QueuedTimer(when_ns, callback))

    def fire_at(self, when_ns: int, conn: Any, kind: str) -> QueuedTimer:
        """`call_at(when_ns, lambda: conn._fire(kind))`, without the closure."""
        return self._push(when_ns, QueuedTimer(when_ns, conn, kind))

    def requeue(self, timer: QueuedTimer, callback: Any) -> None:
        """Queue `timer`, which has just run, again for its `due` time with `callback`
        (a connection's timer moved later since it was armed): as a new entry armed
        now, without a new object."""
        timer.callback = callback
        timer.cancelled = False
        timer.when = timer.due
        self._push(timer.due, timer)

    def _purge(self) -> None:
        """Take the heap's cancelled entries out, keeping the order of the others."""
        heap = [entry for entry in self._heap if not entry[2].cancelled]
        heapq.heapify(heap)
        self._heap = heap
        self._purge_at = max(PURGE_MIN, 2 * len(heap))

    def _push(self, when_ns: int, timer: QueuedTimer) -> QueuedTimer:
        self._seq += 1
        fifo = self._fifo
        if not fifo or when_ns >= fifo[-1][0]:
            fifo.append((when_ns, self._seq, timer))
        else:
            heap = self._heap
            heapq.heappush(heap, (when_ns, self._seq, timer))
            if len(heap) > self._purge_at:
                self._purge()
        armed = self._armed
        if armed is None or when_ns < self._armed_at:
            if armed is not None:
                armed.cancel()
            self._armed_at = when_ns
            self._armed = self.driver.call_at(when_ns, self._on_driver_timer)
        return timer

    def pending(self) -> int:
        """Live entries (tests and diagnostics)."""
        return sum(1 for entries in (self._heap, self._fifo)
                   for _, _, timer in entries if not timer.cancelled)

    def _on_driver_timer(self) -> None:
        self._armed = None
        self._run_next()

    def _run_next(self) -> None:
        """Run the earliest entry if it is due, then (after the work it deferred) the next."""
        heap = self._heap
        fifo = self._fifo
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        while fifo and fifo[0][2].cancelled:
            fifo.popleft()
        from_heap = bool(heap) and (not fifo or heap[0] < fifo[0])  # (time, order)
        if from_heap:
            first = heap[0]
        elif fifo:
            first = fifo[0]
        else:
            self._rearm()
            return
        if first[0] > self.driver.now_ns():
            self._rearm()
            return
        timer = (heapq.heappop(heap) if from_heap else fifo.popleft())[2]
        callback = timer.callback
        kind = timer.kind
        timer.cancelled = True
        timer.callback = None
        try:
            assert callback is not None
            if kind is None:
                callback()
            else:
                callback._fire(kind)
        finally:
            # FIFO: this runs once what the callback deferred is done, as the driver
            # would have run the next due timer
            self.driver.defer(self._run_next)

    def _rearm(self) -> None:
        """Arm the driver timer for the earliest live entry (none left: disarm)."""
        heap = self._heap
        fifo = self._fifo
        armed = self._armed
        if not heap and not fifo:
            if armed is not None:
                armed.cancel()
                self._armed = None
            return
        if heap and fifo:
            when = min(heap[0][0], fifo[0][0])
        else:
            when = heap[0][0] if heap else fifo[0][0]
        if armed is not None:
            if self._armed_at <= when:
                return
            armed.cancel()
        self._armed_at = when
        self._armed = self.driver.call_at(when, self._on_driver_timer)
