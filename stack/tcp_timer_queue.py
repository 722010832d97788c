"""The timers of one TCP layer's connections behind a single driver timer (and a spare).

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
  re-arms for the earliest live entry. That costs little for a far-off entry
  (a 200 ms or 1 s retransmission time: a few no-op wake-ups a second, fewer
  than the driver timers moving it off each would arm) but much for a near one:
  a server cancels the 1 ms delayed ACK each connection's FIN arms, and a
  driver timer left for it would fire every millisecond (in real time, a thread
  switch for the scheduler's loop each). So when an entry armed less than
  `NEAR_NS` ahead is cancelled and the driver timer is armed for its time, the
  driver timer moves to the earliest live entry (none: it is disarmed). The
  test costs one comparison per cancellation.
- The spare: an entry that moves the driver timer earlier arms a new one and
  keeps the one it displaced (at most one; always later than the driver timer)
  instead of cancelling it. When that earlier entry is cancelled, the spare
  takes over if no live entry is due before it, so the usual cancelled delayed
  ACK costs one new driver timer, not two (one for it, one to move off it);
  when the driver timer fires, the spare becomes the driver timer.
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
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .driver import StackDriver, TimerHandle


#: The heap size below which a queue never purges it (see the rules).
PURGE_MIN: Final = 64
#: An entry armed less than this ahead is near: the driver timer moves off it when it
#: is cancelled (see the rules).
NEAR_NS: Final = 20_000_000


class QueuedTimer:
    """One entry of a `TcpTimerQueue`; `cancel()` is idempotent.

    `callback` is called with no argument, or, when `kind` is set, it is a
    connection and `callback._fire(kind)` is called: a connection's timer then costs
    this one object, not a closure over the connection and the kind as well.

    `when` is when the queue runs it. `due` is its owner's: a connection that moves
    a timer later only sets `due`, and the entry, run early, is queued again for it
    (`TcpTimers._arm`, `TcpTimerQueue.requeue`)."""

    __slots__ = ("callback", "cancelled", "due", "kind", "queue", "when")

    def __init__(self, queue: TcpTimerQueue, when_ns: int, callback: Any,
                 kind: str | None = None) -> None:
        self.queue = queue
        self.when = when_ns
        self.due = when_ns
        self.callback: Any = callback
        self.kind = kind
        self.cancelled = False

    def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        self.callback = None
        queue = self.queue
        if queue._armed_near and self.when == queue._armed_at and queue._armed is not None:
            queue._armed_entry_cancelled()


class TcpTimerQueue:
    """Connection timers of one TCP layer, multiplexed onto one driver timer."""

    def __init__(self, driver: StackDriver) -> None:
        self.driver = driver
        self._heap: list[tuple[int, int, QueuedTimer]] = []
        self._fifo: deque[tuple[int, int, QueuedTimer]] = deque()  # in (time, order)
        self._seq = 0
        self._armed: TimerHandle | None = None  # the driver timer, if one is armed
        self._armed_at = 0  # when it fires
        self._armed_near = False  # it was armed for a near entry (see the rules)
        # the driver timer an earlier entry displaced, kept armed (always later than
        # `_armed`) to take over when that entry is cancelled (see the rules)
        self._spare: TimerHandle | None = None
        self._spare_at = 0
        self._purge_at = PURGE_MIN  # the heap size that makes `_push` purge it

    def call_at(self, when_ns: int, callback: Callable[[], Any]) -> QueuedTimer:
        near = when_ns - self.driver.now_ns() < NEAR_NS
        return self._push(when_ns, QueuedTimer(self, when_ns, callback), near)

    def fire_at(self, when_ns: int, conn: Any, kind: str, delay_ns: int) -> QueuedTimer:
        """`call_at(when_ns, lambda: conn._fire(kind))`, without the closure, from a
        connection that knows how far ahead that is (`delay_ns`)."""
        return self._push(when_ns, QueuedTimer(self, when_ns, conn, kind), delay_ns < NEAR_NS)

    def requeue(self, timer: QueuedTimer, callback: Any) -> None:
        """Queue `timer`, which has just run, again for its `due` time with `callback`
        (a connection's timer moved later since it was armed): as a new entry armed
        now, without a new object."""
        timer.callback = callback
        timer.cancelled = False
        timer.when = timer.due
        self._push(timer.due, timer, timer.due - self.driver.now_ns() < NEAR_NS)

    def _purge(self) -> None:
        """Take the heap's cancelled entries out, keeping the order of the others."""
        heap = [entry for entry in self._heap if not entry[2].cancelled]
        heapq.heapify(heap)
        self._heap = heap
        self._purge_at = max(PURGE_MIN, 2 * len(heap))

    def _push(self, when_ns: int, timer: QueuedTimer, near: bool) -> QueuedTimer:
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
                spare = self._spare
                if spare is not None:
                    spare.cancel()
                self._spare = armed
                self._spare_at = self._armed_at
            self._armed_at = when_ns
            self._armed_near = near
            self._armed = self.driver.call_at(when_ns, self._on_driver_timer)
        return timer

    def _armed_entry_cancelled(self) -> None:
        """The near entry the driver timer is armed for was cancelled: move the driver
        timer to the earliest live entry (the spare if it will do; none: disarm it)."""
        heap = self._heap
        fifo = self._fifo
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        while fifo and fifo[0][2].cancelled:
            fifo.popleft()
        if heap and fifo:
            when = min(heap[0][0], fifo[0][0])
        elif heap or fifo:
            when = heap[0][0] if heap else fifo[0][0]
        else:
            when = -1
        if when == self._armed_at:
            return  # another entry is due then too
        armed = self._armed
        assert armed is not None
        armed.cancel()
        self._armed_near = False
        spare = self._spare
        if spare is not None and (when < 0 or when >= self._spare_at):
            self._armed = spare  # armed at or before the earliest live entry: it will do
            self._armed_at = self._spare_at
            self._spare = None
        elif when < 0:
            self._armed = None
        else:
            # as near as the cancelled entry, or nearly: near (no clock read for this)
            self._armed_near = when - self._armed_at < NEAR_NS
            self._armed_at = when
            self._armed = self.driver.call_at(when, self._on_driver_timer)

    def pending(self) -> int:
        """Live entries (tests and diagnostics)."""
        return sum(1 for entries in (self._heap, self._fifo)
                   for _, _, timer in entries if not timer.cancelled)

    def _on_driver_timer(self) -> None:
        # the spare, if any, is the driver timer armed now (`_rearm` moves it if need be)
        self._armed = self._spare
        self._armed_at = self._spare_at
        self._armed_near = False
        self._spare = None
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
            spare = self._spare
            if spare is not None:
                spare.cancel()
                self._spare = None
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
        self._armed_near = False  # (near or not: a stale wake-up or two at worst)
        self._armed = self.driver.call_at(when, self._on_driver_timer)
