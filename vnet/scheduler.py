"""The one owner of time: clock, timer heap and the run loop for guests.

Theory of operation
-------------------
Everything that happens "later" in vnet — a frame crossing a link, a TCP
retransmission timer, a guest's sleep — is a timer on this scheduler's heap,
and every clock a guest or protocol reads comes from here.

Guests are wasm code running in threads (`GuestTask`). While wasm runs,
wasmtime has released the GIL, so guests compute in parallel. A guest enters
the scheduler only from a host call: to block (`block`: wait until a predicate
holds or a deadline passes), to yield (`yield_task`: sched_yield, or the
epoch-interruption callback when its CPU slice is over), or when it ends.

Two modes:

* **Real time** (`virtual=False`). The clock is `time.monotonic_ns()`. Guest
  threads run freely; host calls hold `lock` (the network lock), and a blocked
  guest waits on `cond` with that lock released. The thread that calls `run()`
  fires timers as they fall due. Any state change that may unblock a guest
  calls `notify()`.

* **Virtual time** (`virtual=True`). Exactly one thing runs at a time: either
  the loop in `run()` (firing timers, moving frames) or one guest, which holds
  the baton until it blocks, yields, is preempted or ends. Runnable guests go
  round-robin in FIFO order; blocked guests are re-checked in creation order.
  When nothing is runnable the clock jumps to the earliest timer or blocked
  guest's deadline. Guest compute takes no virtual time. With the same inputs
  and seed every run makes the same decisions in the same order, so output and
  captures are byte-identical.

  A guest that computes for a long stretch (`SPIN_THRESHOLD_NS` of wall time)
  without a single host call is taken to be compute-bound ("spinning"): from
  then until its next host call it runs in slices, other guests go first, and
  every slice it gets advances the virtual clock by up to `SPIN_CHARGE_NS`
  (less if a timer falls due sooner), so a busy-waiting guest still sees time
  pass and sleepers still wake. This is the one place where wall time leaks
  into virtual time; guests that make a host call at least every
  `SPIN_THRESHOLD_NS` stay fully deterministic.

This module touches threads and the host's clocks; it knows nothing of wasm,
packets or sockets.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

#: Wall time a guest may compute without a host call before virtual time treats it as spinning.
SPIN_THRESHOLD_NS = 100_000_000
#: Virtual time charged for each slice a spinning guest runs.
SPIN_CHARGE_NS = 10_000_000

#: Virtual-time wall clock starts here (2000-01-01T00:00:00Z) unless told otherwise.
VIRTUAL_EPOCH_NS = 946_684_800 * 1_000_000_000


class TaskState(Enum):
    NEW = "new"
    RUNNABLE = "runnable"
    RUNNING = "running"
    BLOCKED = "blocked"
    DONE = "done"


class TaskKilled(Exception):
    """Raised inside a guest's thread when the scheduler stops it while it blocks."""


class Timer:
    """A callback due at `when` (scheduler nanoseconds). `cancel()` is idempotent."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: int, callback: Callable[[], Any]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _NoLock:
    """The host-call lock in virtual time, where only one thread runs at a time."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class GuestTask:
    """A guest's thread as the scheduler sees it."""

    def __init__(self, scheduler: Scheduler, name: str, body: Callable[[GuestTask], None],
                 index: int) -> None:
        self.scheduler = scheduler
        self.name = name
        self.index = index
        self.body = body
        self.state = TaskState.NEW
        self.ready: Callable[[], bool] | None = None
        self.deadline: int | None = None
        self.killed = False
        self.error: BaseException | None = None
        self.go = threading.Semaphore(0)
        self.thread = threading.Thread(target=self._main, name=f"guest:{name}", daemon=True)
        self.on_kill: Callable[[], None] | None = None  # interrupts running wasm

    @property
    def done(self) -> bool:
        return self.state is TaskState.DONE

    def _main(self) -> None:
        sched = self.scheduler
        if sched.virtual:
            self.go.acquire()
        try:
            if not self.killed:
                self.body(self)
        except BaseException as e:  # reported through .error; the thread must end cleanly
            self.error = e
        finally:
            sched._task_finished(self)


class Scheduler:
    """Clock, timers and guest scheduling, in real or virtual time."""

    def __init__(self, virtual: bool = False, seed: int = 0,
                 start_realtime_ns: int | None = None) -> None:
        self.virtual = virtual
        self.seed = seed
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.host_call_lock: Any = _NoLock() if virtual else self.lock
        self._timers: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()
        self._tasks: list[GuestTask] = []
        self._runq: deque[GuestTask] = deque()
        self._spinq: deque[GuestTask] = deque()
        self._deferred: deque[Callable[[], Any]] = deque()
        self._draining = False
        self._back = threading.Semaphore(0)
        self._now = 0
        self._t0 = time.monotonic_ns()
        if start_realtime_ns is None:
            start_realtime_ns = VIRTUAL_EPOCH_NS if virtual else time.time_ns() - 0
        self._realtime0 = start_realtime_ns
        self.current: GuestTask | None = None
        self.stopping = False

    # --- clocks ------------------------------------------------------------
    def monotonic_ns(self) -> int:
        """Nanoseconds since the scheduler was created (virtual or real)."""
        if self.virtual:
            return self._now
        return time.monotonic_ns() - self._t0

    #: The stack.driver.StackDriver view of the clock (the scheduler is a stack's driver).
    now_ns = monotonic_ns

    def realtime_ns(self) -> int:
        """Wall-clock nanoseconds since the Unix epoch, as guests see it."""
        if self.virtual:
            return self._realtime0 + self._now
        return time.time_ns()

    # --- timers ------------------------------------------------------------
    def call_at(self, when_ns: int, callback: Callable[[], Any]) -> Timer:
        timer = Timer(when_ns, callback)
        with self.lock:
            heapq.heappush(self._timers, (when_ns, next(self._seq), timer))
            if not self.virtual:
                self.cond.notify_all()
        return timer

    def call_later(self, delay_ns: int, callback: Callable[[], Any]) -> Timer:
        return self.call_at(self.monotonic_ns() + max(0, delay_ns), callback)

    def call_soon(self, callback: Callable[[], Any]) -> Timer:
        return self.call_at(self.monotonic_ns(), callback)

    def _next_timer_time(self) -> int | None:
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def _fire_due_timers(self) -> bool:
        """Run every timer due now, in (time, creation) order. True if any ran."""
        fired = False
        timers = self._timers
        while timers:
            when, _, timer = timers[0]
            if timer.cancelled:
                heapq.heappop(timers)
                continue
            if when > self.monotonic_ns():
                break
            heapq.heappop(timers)
            timer.cancelled = True
            self.defer(timer.callback)
            fired = True
        return fired

    def defer(self, callback: Callable[[], Any]) -> None:
        """Run callback now, after whatever deferred work is already running.

        A trampoline for zero-latency work such as a frame crossing a switch:
        a callback that defers more work (a reply frame, say) does not recurse;
        the work is queued and run in FIFO order by the outermost `defer`.
        Callers hold `lock` (host calls and timer callbacks already do).
        """
        self._deferred.append(callback)
        if self._draining:
            return
        self._draining = True
        try:
            deferred = self._deferred
            while deferred:
                deferred.popleft()()
        finally:
            self._draining = False

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run a block as one network turn: work it defers runs when the block ends.

        Socket calls and timer callbacks run inside `atomic`, so a frame a
        stack transmits is delivered only after the operation that sent it
        has finished updating its state (no stack is ever re-entered from
        inside its own transmit).
        """
        if self._draining:
            yield
            return
        self._draining = True
        try:
            yield
        finally:
            try:
                deferred = self._deferred
                while deferred:
                    deferred.popleft()()
            finally:
                self._draining = False

    def notify(self) -> None:
        """Something changed that may unblock a guest (real time: wake waiters)."""
        if not self.virtual:
            with self.lock:
                self.cond.notify_all()

    #: The stack.driver.StackDriver view of notify().
    wake = notify

    # --- guests ------------------------------------------------------------
    def spawn(self, name: str, body: Callable[[GuestTask], None]) -> GuestTask:
        """Create a guest task; it starts when `run()` runs (or at once in real time)."""
        with self.lock:
            task = GuestTask(self, name, body, len(self._tasks))
            self._tasks.append(task)
            task.state = TaskState.RUNNABLE
            if self.virtual:
                self._runq.append(task)
            task.thread.start()
        return task

    @property
    def tasks(self) -> list[GuestTask]:
        return list(self._tasks)

    def block(self, task: GuestTask, ready: Callable[[], bool], deadline_ns: int | None) -> bool:
        """Block the calling guest until ready() or the deadline. Returns ready().

        A guest that blocks inside an atomic network turn first finishes the
        turn's deferred work and steps out of it, so others can run theirs.
        """
        if not self._draining:
            return self._block(task, ready, deadline_ns)
        deferred = self._deferred
        while deferred:
            deferred.popleft()()
        self._draining = False
        try:
            return self._block(task, ready, deadline_ns)
        finally:
            self._draining = True

    def _block(self, task: GuestTask, ready: Callable[[], bool], deadline_ns: int | None) -> bool:
        if self.virtual:
            return self._block_virtual(task, ready, deadline_ns)
        with self.cond:
            while True:
                if task.killed:
                    raise TaskKilled()
                if ready():
                    return True
                if deadline_ns is None:
                    timeout = None
                else:
                    remaining = deadline_ns - self.monotonic_ns()
                    if remaining <= 0:
                        return False
                    timeout = remaining / 1e9
                task.state = TaskState.BLOCKED
                self.cond.wait(timeout)
                task.state = TaskState.RUNNING

    def _block_virtual(self, task: GuestTask, ready: Callable[[], bool],
                       deadline_ns: int | None) -> bool:
        while True:
            if task.killed:
                raise TaskKilled()
            if ready():
                return True
            if deadline_ns is not None and self._now >= deadline_ns:
                return False
            task.state = TaskState.BLOCKED
            task.ready = ready
            task.deadline = deadline_ns
            self._switch_to_loop(task)

    def yield_task(self, task: GuestTask, spinning: bool = False) -> None:
        """sched_yield, or a compute-bound guest's slice is over: let others run.

        `spinning` marks a guest that has computed past SPIN_THRESHOLD_NS
        without a host call (virtual time then charges its slices).
        """
        if task.killed:
            raise TaskKilled()
        if not self.virtual:
            time.sleep(0)
            return
        was_draining = self._draining
        if was_draining:
            deferred = self._deferred
            while deferred:
                deferred.popleft()()
            self._draining = False
        task.state = TaskState.RUNNABLE
        (self._spinq if spinning else self._runq).append(task)
        try:
            self._switch_to_loop(task)
        finally:
            self._draining = was_draining
        if task.killed:
            raise TaskKilled()

    def _switch_to_loop(self, task: GuestTask) -> None:
        self._back.release()
        task.go.acquire()
        task.state = TaskState.RUNNING
        task.ready = None
        task.deadline = None

    def _task_finished(self, task: GuestTask) -> None:
        with self.lock:
            task.state = TaskState.DONE
            if self.virtual:
                self._back.release()
            else:
                self.cond.notify_all()

    # --- the loop ----------------------------------------------------------
    def run(self, until: Callable[[], bool] | None = None, timeout_s: float | None = None) -> bool:
        """Run timers and guests until every guest is done or `until()` holds.

        Returns True if it ended because of that, False on timeout (real time)
        or deadlock (virtual time: every guest blocked with nothing pending).
        """
        if self.virtual:
            return self._run_virtual(until)
        return self._run_real(until, timeout_s)

    def _all_done(self) -> bool:
        return all(t.done for t in self._tasks)

    def _run_real(self, until: Callable[[], bool] | None, timeout_s: float | None) -> bool:
        give_up = None if timeout_s is None else time.monotonic() + timeout_s
        with self.cond:
            while True:
                self._fire_due_timers()
                if until is not None and until():
                    return True
                if until is None and self._all_done():
                    return True
                now = time.monotonic()
                if give_up is not None and now >= give_up:
                    return False
                wait = 0.5
                nxt = self._next_timer_time()
                if nxt is not None:
                    wait = min(wait, max(0.0, (nxt - self.monotonic_ns()) / 1e9))
                if give_up is not None:
                    wait = min(wait, give_up - now)
                if wait > 0:
                    self.cond.wait(wait)

    def _wake_blocked(self) -> None:
        for task in self._tasks:
            if task.state is TaskState.BLOCKED:
                ready = task.ready
                if task.killed or (ready is not None and ready()) or (
                    task.deadline is not None and task.deadline <= self._now
                ):
                    task.state = TaskState.RUNNABLE
                    self._runq.append(task)

    def _resume(self, task: GuestTask) -> None:
        self.current = task
        task.state = TaskState.RUNNING
        task.go.release()
        self._back.acquire()
        self.current = None

    def _next_event_time(self) -> int | None:
        candidates = [t.deadline for t in self._tasks
                      if t.state is TaskState.BLOCKED and t.deadline is not None]
        nxt = self._next_timer_time()
        if nxt is not None:
            candidates.append(nxt)
        return min(candidates) if candidates else None

    def _run_virtual(self, until: Callable[[], bool] | None) -> bool:
        while True:
            self._fire_due_timers()
            self._wake_blocked()
            if until is not None and until():
                return True
            if self._runq:
                task = self._runq.popleft()
                if not task.done:
                    self._resume(task)
                continue
            if until is None and self._all_done():
                return True
            nxt = self._next_event_time()
            if self._spinq:
                # Only compute-bound guests can run: their slice costs virtual time.
                charge_until = self._now + SPIN_CHARGE_NS
                self._now = max(self._now, min(charge_until, nxt) if nxt is not None
                                else charge_until)
                task = self._spinq.popleft()
                if not task.done:
                    self._resume(task)
                continue
            if nxt is None:
                return False  # deadlock: everyone waits for something that cannot come
            self._now = max(self._now, nxt)

    def run_for(self, duration_ns: int) -> None:
        """Advance the network (timers only, plus guests) for a stretch of time."""
        end = self.monotonic_ns() + duration_ns
        if self.virtual:
            self.call_at(end, lambda: None)
        self.run(until=lambda: self.monotonic_ns() >= end)

    def stop_all(self, join_timeout_s: float = 5.0) -> None:
        """Kill every guest still running and wait for their threads to end."""
        self.stopping = True
        for task in self._tasks:
            if not task.done:
                task.killed = True
                if task.on_kill is not None:
                    task.on_kill()
        if self.virtual:
            while True:
                pending = [t for t in self._tasks if not t.done]
                if not pending:
                    break
                for task in pending:
                    if task.state in (TaskState.BLOCKED, TaskState.RUNNABLE, TaskState.NEW):
                        task.state = TaskState.RUNNING
                        for queue in (self._runq, self._spinq):
                            if task in queue:
                                queue.remove(task)
                        task.go.release()
                        self._back.acquire()
        else:
            with self.cond:
                self.cond.notify_all()
        deadline = time.monotonic() + join_timeout_s
        for task in self._tasks:
            task.thread.join(max(0.0, deadline - time.monotonic()))
