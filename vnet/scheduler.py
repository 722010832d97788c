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
  guest waits on a gate of its own with that lock released. The thread that
  calls `run()` fires timers as they fall due. Any state change that may
  unblock a guest calls `wake()` (the stack, lock held) or `notify()`.

* **Virtual time** (`virtual=True`). Exactly one thing runs at a time: one
  thread holds the baton and either takes the loop's next decision (fire due
  timers, wake blocked guests, pick the next runnable guest; `_next_virtual`)
  or runs its guest until it blocks, yields, is preempted or ends; then that
  same thread takes the next decision and hands the baton straight to the
  next guest (or back to the caller of `run()`). With `schedule="explore"`
  (the default) each decision with more than one runnable guest picks one
  of them at random, the seed's choice (see "Schedules" below). With
  `schedule="fifo"` runnable guests go round-robin in FIFO order; guests
  woken together go in creation order.
  When nothing is runnable the clock jumps to the earliest timer or blocked
  guest's deadline. Guest compute takes no virtual time. With the same inputs
  and seed every run makes the same decisions in the same order, whichever
  thread takes them, so output and captures are byte-identical.

  A guest that computes for a long stretch (`SPIN_THRESHOLD_NS` of wall time)
  without a single host call is taken to be compute-bound ("spinning"): from
  then until its next host call it runs in slices, other guests go first, and
  every slice it gets advances the virtual clock by up to `SPIN_CHARGE_NS`
  (less if a timer falls due sooner), so a busy-waiting guest still sees time
  pass and sleepers still wake. This is the one place where wall time leaks
  into virtual time; guests that make a host call at least every
  `SPIN_THRESHOLD_NS` stay fully deterministic.

Wake-ups
--------
A blocked guest is woken once, and only when its own condition can be true:
`wake()`/`notify()` only mark that something changed; when the network turn
that changed it ends (`atomic()`, a timer's callbacks, at once outside a
turn), the conditions of the blocked guests are checked and those that hold
are woken, each through its own gate (`GuestTask.wakeups` counts them). A
stack driven by `driver_for(key)` marks only its own key, so a datagram for
one host re-checks only the guests spawned with that `wake_key` (and those
without one). A guest that blocks with a deadline is woken by it (virtual
time: a heap of deadlines; real time: its gate's timeout). Nothing scans
every task per step: the cost of a step is the woken guests plus, after a
change, the conditions it may have made true.

A woken guest runs until it blocks again before its waker goes on: in real
time the guest whose host call woke others waits, when the call returns
(`charge_host_call` → `wait_for_woken`, at most `HANDOFF_MAX_S` per call,
again after its next call while a woken guest has not run at all), until each
of them blocked again or ended — else a receiver woken by every datagram
loses the race for the GIL and the lock to a sender that re-takes both within
a microsecond, and its socket buffer overflows. One exception, for bursts:
a guest sending datagrams whose host calls come back to back (less than
`HANDOFF_HOLD_GAP_NS` of its own compute between them) and whose previous call
also woke someone holds the guests its datagrams wake — their gates stay
shut — until the burst ends: it blocks, yields, ends, computes before a call,
computes through an epoch tick (`end_burst`), or `HANDOFF_HOLD_CALLS` calls
passed; then it waits for them as above. (Only datagrams: between TCP peers
the held reader let the window close and the writer's buffer fill, and bulk
at MTU 1500 fell from 238 to 85 MB/s.) A flooding sender thus hands its
receiver up to 32 datagrams per wake-up instead of one (two thread switches
each, and the receiver's blocking poll), while a ping-pong — one call, then
block — is handed over at once. In virtual time such a guest yields after
the call, behind the guests it woke. The timer loop of real time sleeps
until its next timer; a new timer wakes it only if it is sooner, and a
change only once its `until` holds (`loop_wakeups` counts those).

Timers in real time
-------------------
A timer that a wasm guest's host call arms sooner than the loop's wake-up
does not wake the loop at once: most are cancelled soon after, unrun (a
short connection's delayed ACK for the peer's FIN, armed for 1 ms, is
cancelled when the application closes and its FIN carries the ACK), and
waking the loop to sleep shorter, then waking it again for a timer gone,
cost two thread switches each time. The timer is noted (`_early_ns`) and the
guest looks at it when its call is over (`_look_at_timers`): if it is due
the guest's thread runs it there and then, as the loop would; if not, the
loop is woken for it — unless the guest computed less than
`CALLS_AGAIN_GAP_NS` (200 µs) before the call: it is taken to call again
soon and look again then. A guest that blocks with the timer pending wakes
the loop, unless its blocking lets its waker go on (that guest looks at the
end of its call); a guest that ends wakes it. Whatever else happens, the
wasm runtime's epoch ticker wakes the loop for such a timer once it is
overdue (`kick_overdue_loops`), so it runs at most one tick (5 ms) late — in
the worst case, when every guest that could look computes instead — about
Linux's own timer granularity. Timers armed by anything else (the loop, a
Python task, a caller outside `run()`) wake the loop as before, and virtual
time is not concerned.

CPU placement
-------------
The network's threads — guest threads, and the thread running `run()` while
it does — share one CPU by default (`vnet.cpu_placement`: a hand-off between
threads on different CPUs is a cross-CPU wake-up, the largest single cost of
a datagram on a virtual machine). A guest that computes for a stretch
without a host call is let out to every CPU (the runtime's epoch callback)
and pinned again by its next host call (`charge_host_call`). `cpus="all"`
(or VNET_CPUS=all) turns placement off.

Schedules (virtual time)
------------------------
Guests runnable at the same virtual instant are independent CPUs: the
network promises no order between them. `schedule="explore"` (the default,
`DEFAULT_SCHEDULE`) lets the seed choose: whenever the run queue holds
more than one guest, `_pick_runnable` takes one uniformly at random, from a
stream of its own (`random.Random("vnet-schedule:SEED")`), so exploration
never shifts the other draws made from the seed (ISNs, ports, impairment,
random fault plans): a run under `explore` differs from `fifo` only by the
order of guests at equal instants (and what follows from it). The same seed
makes the same choices, so replays stay byte-identical. `schedule="fifo"`
(the opt-out) runs them first-in first-out, so one topology always runs one
interleaving whatever the seed. One rule holds in both: a guest that
yields after a host call woke others (see "Wake-ups") runs only once each
guest it woke has run (`GuestTask.behind`) — as a receiver on its own CPU
would drain what a sender hands it — so exploring never starves a woken
receiver behind a sender's burst; everything else runnable at that
instant, the woken guests among themselves included, is in the seed's
hands.

Frozen hosts (virtual time)
---------------------------
`freeze(key)` pauses a host as a paused VM is paused: its guests (tasks
spawned with that `wake_key`) are not run — a task of it picked from the run
queue waits in the freeze until `thaw(key)` — and its timers (those armed
through `driver_for(key)`: TCP retransmits, delayed ACKs, neighbour
probes) that fall due meanwhile are held and fire at the thaw, in their
order, before its guests run again. Guests blocked with a deadline that
passes during the freeze wake at the thaw. Frames arriving for it are the
NICs' business (vnet.sim.faults queues them). Only between decisions, when
none of its guests is running: faults are timers, so that always holds.
Tasks spawned without a `wake_key` (Python code run by `Host.spawn`) and
timers armed on the scheduler directly are not the host's and go on.

Host calls cost virtual time
----------------------------
In virtual time every host call a guest makes is charged a fixed, documented
amount of virtual time — counted, never measured, so reruns stay
byte-identical (`charge_host_call`, called by the ABI bridge when a call
returns):

======================================  =====================================
`HOST_CALL_CHARGE_NS` (1 µs)            every host call (clock_gettime, a
                                        non-blocking recv that fails with
                                        EAGAIN, poll with timeout 0, …)
`DATA_CALL_CHARGE_NS` (+2 µs)           on top, for a call that moves data
                                        (read, write, send, recv and friends)
`FRAME_CHARGE_NS` (+1 µs per frame)     on top, per Ethernet frame put on a
                                        link while the call (and the network
                                        turn it caused) ran
======================================  =====================================

Each guest has its own clock, `GuestTask.charged_until_ns`: a call made at
virtual time `now` moves it to `max(charged_until_ns, now) + charge`. Time a
guest spends blocked is not charged (its clock catches up with `now`). When a
guest's clock runs `CHARGE_QUANTUM_NS` (1 ms) ahead of the scheduler's, the
guest is preempted at the end of that call: it sleeps until the scheduler's
clock reaches its own, so other runnable guests and due timers go first and
the clock advances. So a guest that only makes non-blocking calls —
`while (clock_gettime() < t0 + 1s);`, `while (recv(nonblock) == EAGAIN);`,
`while (poll(fds, n, 0) == 0);` — sees virtual time advance (in 1 ms steps:
one step per 1000 one-microsecond calls) and the data it waits for, and a
run's `duration` always ends it. Guests are independent CPUs: one guest's charge
never delays another's clock, so a guest that floods or spins takes no
virtual time from the others (`tests/hostile/`). A guest that blocks at least
once per quantum (any ordinary network program) is never preempted and only
its blocking decides its timing.

Fairness in real time
---------------------
In real time the network lock is a `FairLock`: a thread that releases it
while others wait hands it to the longest waiter, so a guest that makes host
calls in a tight loop cannot re-take it ahead of a guest (or the timer loop)
already waiting. Each guest also has a per-turn budget: `HOST_CALL_SLICE_NS`
(1 ms) of time spent inside host calls and `FRAMES_PER_TURN` (64) frames put
on links. At the end of the call that uses it up (`charge_host_call`) the
guest compares its fair-share clock, `network_time_ns` (wall time inside
host calls, waits excluded, plus `FRAME_SHARE_NS` per frame sent: the work
the timer loop does later to carry it), with the other guests that want the
network (not blocked, a host call in the last 2 ms): while it is more than a
slice ahead of one of them it sleeps — without the lock or the GIL — as long
as others keep taking the lock, at most `YIELD_MAX_NS`. A guest alone, or
beside guests that are blocked or computing, runs at full speed; an idle
guest banks at most two slices of credit. No single host call is
interrupted midway: long operations (big poll sets, big copies) must be
bounded by the call itself; the budget only guarantees that the guest's next
turn waits behind everyone else's.

This module touches threads and the host's clocks; it knows nothing of wasm,
packets or sockets.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any

from .cpu_placement import CpuPlacement

#: Wall time a guest may compute without a host call before virtual time treats it as spinning.
SPIN_THRESHOLD_NS = 100_000_000
#: Virtual time charged for each slice a spinning guest runs.
SPIN_CHARGE_NS = 10_000_000

#: Virtual time charged for every host call (see "Host calls cost virtual time").
HOST_CALL_CHARGE_NS = 1_000
#: Extra virtual time charged for a host call that moves data.
DATA_CALL_CHARGE_NS = 2_000
#: Extra virtual time charged per frame a host call put on a link.
FRAME_CHARGE_NS = 1_000
#: How far a guest's charged clock may run ahead of virtual time before it is preempted.
CHARGE_QUANTUM_NS = 1_000_000

#: Real time: host-call time a guest may use per turn before it yields to others.
HOST_CALL_SLICE_NS = 1_000_000
#: Real time: frames a guest's host calls may put on links per turn before it yields.
FRAMES_PER_TURN = 64
#: Real time: the longest a guest that used up its turn waits for others to go first.
YIELD_MAX_NS = 2_000_000
#: Real time: what one frame a guest sends counts in its fair share, on top of the
#: call's own time: carrying it over a link with latency and through the receiving
#: stack is work the timer loop does later on the guest's behalf. A super-frame
#: (TCP's 64 KiB segments between vnet NICs) counts once here: it is carried and
#: received as one (in virtual time it is charged per wire frame it stands for).
FRAME_SHARE_NS = 40_000
#: Real time: a guest that made a host call this recently (and is not blocked) wants the network.
CONTENDING_WINDOW_NS = 2_000_000

#: The orders virtual time can run guests runnable at the same instant in (see "Schedules").
SCHEDULES = ("fifo", "explore")
#: The order unless told otherwise: the seed's (`vnet run`, `vnet sim`, `Network`, the
#: pytest plugin); "fifo" is the opt-out. Real time has no choice to make.
DEFAULT_SCHEDULE = "explore"

#: Virtual-time wall clock starts here (2000-01-01T00:00:00Z) unless told otherwise.
VIRTUAL_EPOCH_NS = 946_684_800 * 1_000_000_000


#: Real time: how long a yielding guest sleeps between looks at whether others went first.
YIELD_STEP_S = 0.000_1
#: Real time: the longest a guest whose host call woke others waits for them to block again.
HANDOFF_MAX_S = 0.002
#: Real time: a guest whose host calls come back to back (less than this much compute
#: between them) is taken to be in a burst: the guests its calls wake are held...
HANDOFF_HOLD_GAP_NS = 20_000
#: ...for at most this many of its calls, then run (or when it blocks, yields, ends,
#: makes a call after computing, or computes through an epoch tick: `end_burst`).
HANDOFF_HOLD_CALLS = 32
#: Real time: a guest that computed less than this before its host call is taken to
#: make its next one soon: a timer its turns armed waits for it to look (see "Timers
#: in real time").
CALLS_AGAIN_GAP_NS = 200_000

_get_ident = threading.get_ident

#: What `Scheduler._candidates` returns when no blocked task can be affected.
_NO_TASKS: dict[Any, None] = {}

#: `Scheduler._timer_check_ns` when no timer was armed in the current turn.
_NO_TIMER_CHECK = 1 << 126

#: Real-time schedulers with a timer a guest is to look at (`Scheduler._early_ns`):
#: the epoch ticker of the wasm runtime calls `kick_overdue_loops` for them.
_EARLY_PENDING: set[Scheduler] = set()


def kick_overdue_loops() -> None:
    """Wake the loops of every scheduler whose timer a guest was to look at is overdue
    (`Scheduler.kick_overdue_loops`). Any thread: the runtime's epoch ticker calls it."""
    for scheduler in list(_EARLY_PENDING):
        scheduler.kick_overdue_loops()


def _never() -> bool:
    return False


class TaskState(Enum):
    NEW = "new"
    RUNNABLE = "runnable"
    RUNNING = "running"
    BLOCKED = "blocked"
    DONE = "done"


# The states the hot paths set, as module globals (a global is cheaper than Enum.MEMBER).
_BLOCKED = TaskState.BLOCKED
_RUNNING = TaskState.RUNNING
_RUNNABLE = TaskState.RUNNABLE
_DONE = TaskState.DONE


class TaskKilled(Exception):
    """Raised inside a guest's thread when the scheduler stops it while it blocks."""


class Timer:
    """A callback due at `when` (scheduler nanoseconds). `cancel()` is idempotent."""

    __slots__ = ("callback", "cancelled", "key", "when")

    def __init__(self, when: int, callback: Callable[[], Any], key: object = None) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        #: Whose timer it is (a host: the `driver_for` key), so a frozen host's timers wait.
        self.key = key

    def cancel(self) -> None:
        self.cancelled = True


class _NoLock:
    """The host-call lock in virtual time, where only one thread runs at a time."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return True

    def release(self) -> None:
        return None


class FairLock:
    """A reentrant lock that is handed to its waiters in the order they came (FIFO).

    `threading.RLock` lets a releasing thread take the lock straight back
    before a waiter wakes up, so a guest calling the host in a tight loop can
    starve the others. Here a release with waiters transfers ownership to the
    first of them (the underlying lock is never free in between). Works with
    `threading.Condition` (it provides `_release_save`, `_acquire_restore` and
    `_is_owned`). `acquisitions` counts how often a thread took the lock (not
    counting re-entry): a guest yielding its turn watches it to see that
    someone else went.

    Uncontended, `acquire` is one non-blocking `Lock.acquire` and `release`
    one `Lock.release` (the mutex that guards the waiter queue is taken only
    when someone waits or may be queueing). A release that finds no waiter
    frees the lock without the mutex, so a thread queueing at that moment
    looks once more after it queued (under the mutex), and the release looks
    once more after it freed the lock: whichever sees the other hands the
    lock to the longest waiter, never both (handing over takes `_held`).
    """

    __slots__ = ("_count", "_held", "_mutex", "_owner", "_waiters", "acquisitions")

    def __init__(self) -> None:
        self._held = threading.Lock()  # the mutual exclusion itself
        self._mutex = threading.Lock()  # guards _waiters and hand-overs
        self._owner: int | None = None
        self._count = 0
        self._waiters: deque[tuple[int, Any]] = deque()
        self.acquisitions = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not self._waiters and self._held.acquire(False):  # fast path: free, no queue
            self._owner = _get_ident()
            self._count = 1
            self.acquisitions += 1
            return True
        me = _get_ident()
        if self._owner == me:  # re-entered (the fast path found it held: by us)
            self._count += 1
            return True
        mutex = self._mutex
        mutex.acquire()
        if self._held.acquire(False):  # freed meanwhile; under the mutex, so no one queued
            if not self._waiters:
                self._owner = me
                self._count = 1
                self.acquisitions += 1
                mutex.release()
                return True
            self._held.release()
        if not blocking:
            mutex.release()
            return False
        gate = threading.Lock()
        gate.acquire()
        waiters = self._waiters
        waiters.append((me, gate))
        if self._held.acquire(False):
            # freed since we looked, by a release that saw no waiter yet (its fast
            # path takes no mutex): hand it to the first waiter, as that release would
            self._hand_over()
        mutex.release()
        try:
            gate.acquire()  # released by the thread that hands us the lock
        except BaseException:  # a signal handler raised (a second Ctrl-C) while we waited
            self._abandon(me, gate)
            raise
        return True

    def _abandon(self, me: int, gate: Any) -> None:
        """A waiter leaves with an exception: out of the queue, or, if the lock was
        handed to it meanwhile, on to the next waiter, so that no release hands the
        lock to a thread that no longer waits (every other thread would wait forever)."""
        mutex = self._mutex
        mutex.acquire()
        try:
            self._waiters.remove((me, gate))
            handed = False
        except ValueError:  # popped by a hand-over: it is ours now
            handed = True
        mutex.release()
        if handed:
            self._count = 1
            self.release()

    def _hand_over(self) -> None:
        """`_held` taken and the mutex held: give the lock to the longest waiter."""
        owner, gate = self._waiters.popleft()
        self._owner = owner
        self._count = 1
        self.acquisitions += 1
        gate.release()

    def __enter__(self) -> bool:  # a method of its own: mypyc compiles no class-body alias
        return self.acquire()

    def release(self, *_exc: object) -> None:
        if self._owner != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        count = self._count - 1
        if count:
            self._count = count
            return
        self._count = 0
        waiters = self._waiters
        mutex = self._mutex
        if not waiters:  # the fast path: nobody waits; free it without the mutex
            self._owner = None
            self._held.release()
            if not waiters:
                return
            # someone queued meanwhile, and may have looked before it was free
            mutex.acquire()
            if waiters and self._held.acquire(False):
                self._hand_over()
            mutex.release()
            return
        mutex.acquire()
        if waiters:
            self._hand_over()
            mutex.release()
            return
        self._owner = None
        self._held.release()
        mutex.release()

    def __exit__(self, *_exc: object) -> None:
        self.release()

    @property
    def waiting(self) -> int:
        """How many threads wait for the lock."""
        return len(self._waiters)

    # --- the protocol threading.Condition uses ---------------------------
    def _is_owned(self) -> bool:
        return self._owner == _get_ident()

    def _release_save(self) -> int:
        count = self._count
        self._count = 1
        self.release()
        return count

    def _acquire_restore(self, count: int) -> None:
        try:
            self.acquire()
        except BaseException:
            # a signal handler raised while we waited to take it back (a second Ctrl-C
            # in `Scheduler._run_real`): the caller's `with` releases it on the way out,
            # so take it first; else that release fails and the exception becomes a
            # RuntimeError ("cannot release un-acquired lock")
            self.acquire()
            self._count = count
            raise
        self._count = count


class _Gate:
    """A one-shot wake-up for one waiting thread, signalled under the scheduler's lock.

    A `threading.Lock` held while nobody signalled: `open()` releases it (once),
    `wait()` takes it again. The waiter calls `reset()` once it holds the
    scheduler's lock again, so a signal that came after a timeout is not
    carried over to its next wait.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def open(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:  # open already
            pass

    def wait(self, timeout_s: float | None) -> bool:
        return self._lock.acquire(True, -1 if timeout_s is None else timeout_s)

    def reset(self) -> None:
        self._lock.acquire(False)


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
        #: Virtual time: the baton the loop hands this task (a lock used as a binary semaphore).
        self.go = _baton()
        self.thread = threading.Thread(target=self._main, name=f"guest:{name}", daemon=True)
        self.on_kill: Callable[[], None] | None = None  # interrupts running wasm
        #: Times the scheduler woke this task from `block` (its condition could be
        #: true, its deadline passed, or it was killed). Real time also counts a
        #: wait that timed out on its own.
        self.wakeups = 0
        #: What its conditions depend on (see `Scheduler.spawn`); None: anything.
        self.wake_key: object = None
        #: Real time: what the task's thread waits on while blocked.
        self.gate = _Gate()
        #: Real time: tasks this guest's host calls woke that have not blocked again
        #: yet; `handoff_gate` opens when the last of them does.
        self.handoff_tasks: set[GuestTask] = set()
        self.handoff_gate = _Gate()
        #: Real time: woken tasks of `handoff_tasks` whose gates are not open yet (held
        #: while this guest's calls come in a burst), the calls held so far, and whether
        #: its last call came right after the one before (`HANDOFF_HOLD_GAP_NS`).
        self.held: deque[GuestTask] = deque()
        self.held_calls = 0
        self.in_burst = False
        #: Real time: its current / previous host call woke a task (or held one).
        self.woke_this_call = False
        self.woke_last_call = False
        #: Real time: its current host call sent a datagram (the ABI's send sets it).
        self.sent_datagram = False
        #: Real time: time.monotonic_ns() when its last host call gave it back its thread.
        self.resumed_ns = 0
        #: Real time: the guest whose host call woke this task (until it blocks again),
        #: and when (time.monotonic_ns()).
        self.woken_by: GuestTask | None = None
        self.woken_at_ns = 0
        #: Virtual time, explore: the guests this one woke and yielded to; it is not picked
        #: while one of them is still waiting to run (see "Schedules").
        self.behind: list[GuestTask] | None = None
        #: Virtual time: bumped on every block, so stale deadline-heap entries are skipped.
        self.block_serial = 0
        #: Virtual time: the guest's own clock, host-call charges included.
        self.charged_until_ns = 0
        #: Virtual time: all host-call time charged to this guest.
        self.charged_total_ns = 0
        #: Times the guest was preempted for running ahead (virtual) or yielded its turn (real).
        self.charge_preemptions = 0
        #: Real time: host-call time and frames used in the current turn.
        self.turn_used_ns = 0
        self.turn_frames = 0
        #: Real time: wall time this guest's host calls held the network (its fair-share clock).
        self.network_time_ns = 0
        #: Real time: wall time spent waiting in `block` during the current host call.
        self.waited_ns = 0
        #: Real time: time.monotonic_ns() when its last host call ended.
        self.last_call_end_ns = 0
        #: Real time: the guest computed a whole stretch without a host call and was let
        #: out to every CPU (`CpuPlacement.release`); its next host call pins it again.
        self.roaming = False
        #: Its thread joins the network's CPU as it starts (see `Scheduler.spawn`).
        self.pin_at_start = True
        #: Real time: the guest used up turns while others wanted the network (see
        #: "Fairness in real time") and was let out to every CPU until it next blocks.
        self.crowding = False
        #: Frames others transmitted while this guest waited inside a host call
        #: (the ABI bridge subtracts them from what it charges the call).
        self.frames_elsewhere = 0
        #: Real time: a wasm guest (its calls end in `charge_real_call`, its compute is
        #: cut by epoch ticks), so a timer its turns arm may wait for it to look (see
        #: "Timers in real time").
        self.looks_at_timers = False

    @property
    def done(self) -> bool:
        return self.state is TaskState.DONE

    def __repr__(self) -> str:
        return f"<GuestTask {self.name} {self.state.value}>"

    def _main(self) -> None:
        sched = self.scheduler
        sched._task_by_thread[_get_ident()] = self
        if self.pin_at_start:
            sched.placement.pin()
        if sched.virtual:
            self.go.acquire()
        try:
            if not self.killed:
                self.body(self)
        except BaseException as e:  # reported through .error; the thread must end cleanly
            self.error = e
        finally:
            sched.placement.leave()
            sched._task_finished(self)


class _LoopWaiter:
    """Real time: a thread running `Scheduler.run` while it waits for the next timer."""

    __slots__ = ("done_task", "gate", "until", "wake_at_ns")

    def __init__(self, until: Callable[[], bool] | None,
                 done_task: GuestTask | None = None) -> None:
        self.gate = _Gate()
        self.until = until
        #: It returns once this task is done (`run(until_done=...)`), `until` aside.
        self.done_task = done_task
        self.wake_at_ns = 0

    def finished(self, scheduler: Scheduler) -> bool:
        """Whether the `run()` it waits in may return: its task is done, its `until`
        holds, or (neither given) every guest is done. Lock held."""
        done_task = self.done_task
        if done_task is not None:
            return done_task.state is _DONE
        until = self.until
        return scheduler._live == 0 if until is None else until()


class KeyedDriver:
    """A stack's driver (stack.driver.StackDriver) whose wake-ups name the stack.

    `Scheduler.driver_for(key)` makes one per stack: time, timers and
    deferred work are the scheduler's; `wake()` re-checks only the tasks
    spawned with the same `wake_key`.
    """

    __slots__ = ("call_at", "defer", "key", "now_ns", "scheduler")

    def __init__(self, scheduler: Scheduler, key: object) -> None:
        self.scheduler = scheduler
        self.key = key
        self.now_ns = scheduler.clock()
        self.call_at = functools.partial(scheduler.call_at, key=key)  # a frozen host's wait
        self.defer = scheduler.defer

    def wake(self) -> None:
        # Scheduler.wake_key, inlined: a stack calls it for every segment it handles
        scheduler = self.scheduler
        scheduler._changed = True
        scheduler._changed_keys.add(self.key)
        if not scheduler._draining and not scheduler.virtual:
            scheduler._wake_ready()


class _VirtualRun:
    """Virtual time: one `run()` in progress: its `until`, and the baton back to its caller."""

    __slots__ = ("back", "outcome", "until")

    def __init__(self, until: Callable[[], bool] | None) -> None:
        self.until = until
        self.back = _baton()
        self.outcome: bool | BaseException = False


class AtomicTurn:
    """`with scheduler.atomic():` — one network turn (see `Scheduler.atomic`)."""

    __slots__ = ("_outer", "_scheduler")

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._outer = False

    def __enter__(self) -> None:
        scheduler = self._scheduler
        if scheduler._draining:
            self._outer = False
        else:
            scheduler._draining = True
            self._outer = True

    def __exit__(self, *_exc: object) -> None:
        if self._outer:
            self._scheduler.end_turn()


class _Freeze:
    """Virtual time: a frozen host's guests and timers, held until its thaw."""

    __slots__ = ("tasks", "timers")

    def __init__(self) -> None:
        self.tasks: list[GuestTask] = []
        self.timers: list[Timer] = []


class Scheduler:
    """Clock, timers and guest scheduling, in real or virtual time."""

    def __init__(self, virtual: bool = False, seed: int = 0,
                 start_realtime_ns: int | None = None,
                 schedule: str = DEFAULT_SCHEDULE, cpus: str | None = None) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule {schedule!r}: one of {', '.join(SCHEDULES)}")
        self.virtual = virtual
        self.seed = seed
        #: The CPU the network's threads share (`vnet.cpu_placement`; `cpus`: one, all, N).
        self.placement = CpuPlacement(cpus)
        #: Virtual time: the order of guests runnable at one instant (see "Schedules").
        self.schedule = schedule
        self._explore = virtual and schedule == "explore"
        self._schedule_rng = random.Random(f"vnet-schedule:{seed}")
        #: Virtual time, explore: decisions the seed took (more than one guest was runnable).
        self.schedule_choices = 0
        #: Virtual time: frozen hosts (`freeze`), by key.
        self._frozen: dict[object, _Freeze] = {}
        # Real time: a FairLock, so a guest calling in a tight loop cannot starve the others.
        lock: Any = threading.RLock() if virtual else FairLock()
        self.lock = lock
        #: Frames put on a link so far (Nic.transmit counts); charges go to the host call.
        self.frames_transmitted = 0
        self.host_call_lock: Any = _NoLock() if virtual else self.lock
        self._timers: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()
        self._tasks: list[GuestTask] = []
        self._live = 0  # tasks not done
        self._task_by_thread: dict[int, GuestTask] = {}
        #: Blocked tasks, in the order they blocked (a dict used as an ordered set).
        self._blocked: dict[GuestTask, None] = {}
        #: Something changed that may make a blocked task's condition true: anything
        #: (`wake`, `notify`: `_changed_all`) or only what tasks with a key wait for.
        self._changed = False
        self._changed_all = False
        self._changed_keys: set[object] = set()
        #: The blocked tasks again, by their `wake_key`.
        self._blocked_by_key: dict[object, dict[GuestTask, None]] = {}
        #: Virtual time: (deadline, task index, block serial, task) of blocked tasks.
        self._deadlines: list[tuple[int, int, int, GuestTask]] = []
        #: Real time: threads in `run()` waiting for the next timer or their `until`.
        self._loops: list[_LoopWaiter] = []
        self._runq: deque[GuestTask] = deque()
        self._spinq: deque[GuestTask] = deque()
        self._deferred: deque[Callable[[], Any]] = deque()
        self._draining = False
        self._back = _baton()  # virtual time: a task hands the baton back to the loop
        self._now = 0
        self._t0 = time.monotonic_ns()
        if start_realtime_ns is None:
            start_realtime_ns = VIRTUAL_EPOCH_NS if virtual else time.time_ns() - 0
        self._realtime0 = start_realtime_ns
        self.current: GuestTask | None = None
        self.stopping = False
        # Virtual time: the run() in progress (its `until`), and what it returns
        # (or raises) once a task thread hands the baton back.
        self._runs: list[_VirtualRun] = []
        #: Times blocked tasks were woken by a change (`wake`/`notify`) or their deadline.
        self.wakeups = 0
        #: Real time: times a thread waiting in `run()` was woken before its own
        #: timeout (its `until` came true, a guest ended, or an earlier timer was set).
        self.loop_wakeups = 0
        #: Real time: the earliest timer armed inside the current network turn while a
        #: loop waited (`_NO_TIMER_CHECK`: none); the turn's end looks whether it must wake it.
        self._timer_check_ns = _NO_TIMER_CHECK
        #: Real time: the earliest timer the loops sleep past that a guest's turn armed
        #: and the loops were not woken for (`_NO_TIMER_CHECK`: none; see "Timers in
        #: real time").
        self._early_ns = _NO_TIMER_CHECK

    # --- clocks ------------------------------------------------------------
    def monotonic_ns(self) -> int:
        """Nanoseconds since the scheduler was created (virtual or real)."""
        if self.virtual:
            return self._now
        return time.monotonic_ns() - self._t0

    def now_ns(self) -> int:
        """The stack.driver.StackDriver view of the clock (the scheduler is a stack's
        driver): `monotonic_ns` (a method of its own: mypyc compiles no class-body alias)."""
        if self.virtual:
            return self._now
        return time.monotonic_ns() - self._t0

    def clock(self) -> Callable[[], int]:
        """`monotonic_ns` as a function of its own, for the stacks' drivers: it reads
        the clock as `monotonic_ns` does, minus the choice of mode on every call."""
        if self.virtual:
            return self.monotonic_ns
        t0 = self._t0
        monotonic_ns = time.monotonic_ns

        def real_now() -> int:
            return monotonic_ns() - t0

        return real_now

    def realtime_ns(self) -> int:
        """Wall-clock nanoseconds since the Unix epoch, as guests see it."""
        if self.virtual:
            return self._realtime0 + self._now
        return time.time_ns()

    # --- timers ------------------------------------------------------------
    def call_at(self, when_ns: int, callback: Callable[[], Any], key: object = None) -> Timer:
        timer = Timer(when_ns, callback, key)
        with self.lock:
            heapq.heappush(self._timers, (when_ns, next(self._seq), timer))
            if self._loops:  # real time: wake a loop only if this moves its next deadline
                if self._draining:
                    # inside a network turn: look when it ends (`_wake_loops_for_timers`),
                    # when a timer armed and cancelled within it (TCP's, often) is gone
                    if when_ns < self._timer_check_ns:
                        self._timer_check_ns = when_ns
                else:
                    self._wake_loops_before(when_ns)
        return timer

    def _wake_loops_before(self, when_ns: int) -> None:
        """Real time, lock held: wake the loops that sleep past `when_ns` (a new timer's time)."""
        for loop in self._loops:
            if when_ns < loop.wake_at_ns:
                loop.wake_at_ns = -1
                loop.gate.open()
                self.loop_wakeups += 1

    def _wake_loops_for_timers(self) -> None:
        """Real time, lock held, at the end of a turn that armed timers: wake the loops
        that sleep past the earliest timer still armed — or, in the thread of a wasm
        guest, note it for the guest to look at when its call is over (`_look_at_timers`).
        """
        self._timer_check_ns = _NO_TIMER_CHECK
        if self._loops:
            nxt = self._next_timer_time()
            if nxt is not None and nxt < self._loops_wake_ns():
                task = self._task_by_thread.get(_get_ident())
                if task is not None and task.looks_at_timers:
                    if nxt < self._early_ns:
                        self._set_early(nxt)
                    return
                self._wake_loops_before(nxt)

    def _loops_wake_ns(self) -> int:
        """Real time, lock held: when the first loop waiting in `run()` wakes on its own."""
        wake = _NO_TIMER_CHECK
        for loop in self._loops:
            if loop.wake_at_ns < wake:
                wake = loop.wake_at_ns
        return wake

    def _look_at_timers(self, calls_again: bool) -> None:
        """Real time, lock not held: a guest's host call is over and a timer that a
        guest's turn armed is pending that the loops sleep past (`_early_ns`). Run it if
        it is due; otherwise wake the loops for it, unless the guest `calls_again` soon
        (it computed less than `CALLS_AGAIN_GAP_NS` before this call: it will look
        again at the end of the next one)."""
        with self.lock:
            if self._early_ns == _NO_TIMER_CHECK:
                return
            nxt = self._next_timer_time()
            if nxt is not None and nxt <= self.monotonic_ns():
                self._clear_early()
                self._fire_due_timers(handoff=False)
                nxt = self._next_timer_time()
            if calls_again and nxt is not None and nxt < self._loops_wake_ns():
                self._set_early(nxt)
            else:
                self._tell_loops()  # (wakes no loop that would wake in time on its own)

    def _set_early(self, when_ns: int) -> None:
        if self._early_ns == _NO_TIMER_CHECK:
            _EARLY_PENDING.add(self)
        self._early_ns = when_ns

    def _clear_early(self) -> None:
        if self._early_ns != _NO_TIMER_CHECK:
            self._early_ns = _NO_TIMER_CHECK
            _EARLY_PENDING.discard(self)

    def _tell_loops(self) -> None:
        """Real time, lock held: wake the loops for the pending timer `_early_ns`."""
        self._clear_early()
        nxt = self._next_timer_time()
        if nxt is not None:
            self._wake_loops_before(nxt)

    def kick_overdue_loops(self) -> None:
        """Real time, any thread: if a timer a guest was to look at is overdue, wake the
        loops for it (the wasm runtime's epoch ticker calls this every tick, which
        bounds how late such a timer runs)."""
        if self._early_ns == _NO_TIMER_CHECK or self._early_ns > self.monotonic_ns():
            return
        with self.lock:
            if self._early_ns != _NO_TIMER_CHECK:
                self._tell_loops()

    def call_later(self, delay_ns: int, callback: Callable[[], Any]) -> Timer:
        return self.call_at(self.monotonic_ns() + max(0, delay_ns), callback)

    def call_soon(self, callback: Callable[[], Any]) -> Timer:
        return self.call_at(self.monotonic_ns(), callback)

    def _next_timer_time(self) -> int | None:
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def _fire_due_timers(self, handoff: bool = True) -> bool:
        """Run every timer due now, in (time, creation) order. True if any ran.

        `handoff=False`: a guest's thread runs them (`_look_at_timers`); the guests they
        wake are not the guest's to wait for."""
        fired = False
        timers = self._timers
        now = self.monotonic_ns()
        while timers:
            when, _, timer = timers[0]
            if timer.cancelled:
                heapq.heappop(timers)
                continue
            if when > now:
                break
            heapq.heappop(timers)
            if self._frozen and timer.key in self._frozen:  # virtual time: waits for the thaw
                self._frozen[timer.key].timers.append(timer)
                continue
            timer.cancelled = True
            self.defer(timer.callback)
            fired = True
        if self._changed and not self.virtual:
            self._wake_ready(handoff)
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
            if self._timer_check_ns != _NO_TIMER_CHECK:
                self._wake_loops_for_timers()

    def atomic(self) -> AtomicTurn:
        """Run a block as one network turn: work it defers runs when the block ends.

        Socket calls and timer callbacks run inside `atomic`, so a frame a
        stack transmits is delivered only after the operation that sent it
        has finished updating its state (no stack is ever re-entered from
        inside its own transmit). When the outermost turn ends, the blocked
        guests its work may have unblocked are woken (real time).
        """
        return AtomicTurn(self)

    def begin_turn(self) -> bool:
        """`atomic()` without the context-manager object: True if this began the outermost turn.

        The caller must call `end_turn()` (in a `finally`) if and only if this returned True.
        """
        if self._draining:
            return False
        self._draining = True
        return True

    def end_turn(self) -> None:
        """End the outermost turn `begin_turn()` began: run its deferred work, wake waiters."""
        try:
            deferred = self._deferred
            while deferred:
                deferred.popleft()()
        finally:
            self._draining = False
            if self._timer_check_ns != _NO_TIMER_CHECK:
                self._wake_loops_for_timers()
            if self._changed and not self.virtual:
                self._wake_ready()

    def enter_host_call(self) -> bool:
        """Take the host-call lock and begin a network turn, in one call (a host call's hot path).

        Returns whether this began the outermost turn; pass that to
        `exit_host_call` (in a `finally`). The same as `with
        scheduler.host_call_lock, scheduler.atomic():`, at about half the cost.
        """
        self.host_call_lock.acquire()
        if self._draining:
            return False
        self._draining = True
        return True

    def exit_host_call(self, outer: bool) -> None:
        """End what `enter_host_call` began: finish the turn (if it began it), release the lock."""
        try:
            if outer:
                self.end_turn()
        finally:
            self.host_call_lock.release()

    def notify(self) -> None:
        """Something changed that may unblock a guest: wake those whose condition now holds.

        Callable from any thread (it takes the lock). Inside a network turn the
        check waits for the turn to end.
        """
        if self.virtual:  # one thread at a time: the loop looks at its next step
            self._changed = self._changed_all = True
            return
        with self.lock:
            self._changed = self._changed_all = True
            if not self._draining:
                self._wake_ready()

    def wake(self) -> None:
        """The stack.driver.StackDriver wake-up: the caller holds the lock.

        Marks that something changed; the blocked tasks whose condition holds
        are woken when the current network turn ends (at once outside a turn,
        in real time; at the loop's next step, in virtual time).
        """
        self._changed = self._changed_all = True
        if not self._draining and not self.virtual:
            self._wake_ready()

    def wake_key(self, key: object) -> None:
        """A finer `wake`: only what tasks spawned with this `wake_key` wait for changed.

        The per-stack drivers of `driver_for(key)` call it, so a datagram for
        one host re-checks only the conditions of the guests on that host
        (and of tasks spawned without a key, which may wait for anything).
        Caller holds the lock, as for `wake`.
        """
        self._changed = True
        self._changed_keys.add(key)
        if not self._draining and not self.virtual:
            self._wake_ready()

    def driver_for(self, key: object) -> KeyedDriver:
        """A stack.driver.StackDriver for one stack whose `wake()` is `wake_key(key)`."""
        return KeyedDriver(self, key)

    def _candidates(self) -> list[GuestTask] | dict[GuestTask, None]:
        """The blocked tasks whose condition the changes since the last check may affect.

        Resets the change flags. Everything after a plain `wake`/`notify`;
        after `wake_key` only the tasks with those keys and those without one.
        """
        self._changed = False
        if self._changed_all or not self._blocked:  # (nobody blocked: nobody to look at)
            self._changed_all = False
            self._changed_keys.clear()
            return self._blocked
        by_key = self._blocked_by_key
        keys = self._changed_keys
        keyless = by_key.get(None)
        if not keyless:
            if len(keys) == 1:  # the common case: one stack changed
                return by_key.get(keys.pop()) or _NO_TASKS
            found: list[GuestTask] = []
        else:
            found = list(keyless)
        for key in keys:
            if key is not None:
                group = by_key.get(key)
                if group:
                    found.extend(group)
        keys.clear()
        return found

    def _block_register(self, task: GuestTask) -> None:
        self._blocked[task] = None
        group = self._blocked_by_key.get(task.wake_key)
        if group is None:
            group = self._blocked_by_key[task.wake_key] = {}
        group[task] = None

    def _unblock(self, task: GuestTask) -> None:
        blocked = self._blocked
        if task in blocked:
            del blocked[task]
            del self._blocked_by_key[task.wake_key][task]

    def _wake_ready(self, handoff: bool = True) -> None:
        """Real time, lock held: wake each blocked task and loop whose condition now holds.

        With `handoff`, the guest whose host call caused this (if any)
        records the tasks it woke, and waits for them to block again when its
        call returns (`charge_host_call`), so a woken receiver runs before the
        sender goes on.
        """
        candidates = self._candidates()
        waker = None
        if candidates:
            woken = []
            for task in candidates:
                ready = task.ready
                if task.killed or ready is None or ready():
                    woken.append(task)
            if woken:
                if handoff:
                    waker = self._task_by_thread.get(_get_ident())
                    now_ns = time.monotonic_ns()
                for task in woken:
                    self._unblock(task)
                    task.state = _RUNNABLE
                    task.wakeups += 1
                    if waker is not None and waker is not task:
                        task.woken_at_ns = now_ns
                        task.woken_by = waker
                        if not waker.handoff_tasks:  # a stale signal must not end the next wait
                            waker.handoff_gate.reset()
                        waker.handoff_tasks.add(task)
                        waker.woke_this_call = True
                        if waker.in_burst and waker.woke_last_call and waker.sent_datagram:
                            # a burst of waking datagrams: it runs once the burst is over
                            waker.held.append(task)
                            continue
                    task.gate.open()
                self.wakeups += len(woken)
        for loop in self._loops:
            if loop.wake_at_ns >= 0 and loop.finished(self):
                loop.wake_at_ns = -1  # woken: nothing moves its deadline any more
                loop.gate.open()
                self.loop_wakeups += 1

    def _open_held(self, task: GuestTask) -> None:
        """Real time, lock held: open the gates of the tasks `task`'s burst woke."""
        held = task.held
        while held:
            held.popleft().gate.open()
        task.held_calls = 0

    def end_burst(self, task: GuestTask) -> None:
        """Real time, lock not held, from `task`'s own thread: its burst is over (it
        yields, used up its turn, or computes through an epoch tick): the tasks it
        woke may run."""
        if task.held:
            with self.lock:
                self._open_held(task)

    def _handoff_done(self, task: GuestTask) -> None:
        """Real time, lock held: `task` blocked again or ended; its waker may go on."""
        waker = task.woken_by
        if waker is None:
            return
        task.woken_by = None
        pending = waker.handoff_tasks
        if task in pending:
            pending.discard(task)
            if not pending:
                waker.handoff_gate.open()

    # --- guests ------------------------------------------------------------
    def spawn(self, name: str, body: Callable[[GuestTask], None],
              wake_key: object = None, pin_at_start: bool = True) -> GuestTask:
        """Create a guest task; it starts when `run()` runs (or at once in real time).

        With a `wake_key` (a guest's host, say), the task's conditions are
        re-checked only after `wake_key(key)` with that key or a plain
        `wake`/`notify`; give one only to a task that waits for nothing but
        the stack of `driver_for(key)` (and its own deadline). Its thread joins
        the network's CPU when it starts, or — `pin_at_start=False`, a wasm guest
        whose instantiation may run on any CPU — when the body calls
        `placement.pin()`.
        """
        with self.lock:
            task = GuestTask(self, name, body, len(self._tasks))
            task.wake_key = wake_key
            task.pin_at_start = pin_at_start
            self._tasks.append(task)
            self._live += 1
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

        The task is woken only when something it may wait for changed
        (`wake`/`notify`) and ready() then holds, or at its deadline, or when
        it is killed. A guest that blocks inside an atomic network turn first
        finishes the turn's deferred work and steps out of it, so others can
        run theirs. Real time: the caller holds `lock` (released while it waits).
        """
        if not self._draining:
            return self._block_counting_frames(task, ready, deadline_ns)
        deferred = self._deferred
        while deferred:
            deferred.popleft()()
        self._draining = False
        if self._timer_check_ns != _NO_TIMER_CHECK:
            self._wake_loops_for_timers()
        try:
            return self._block_counting_frames(task, ready, deadline_ns)
        finally:
            self._draining = True

    def _block_counting_frames(self, task: GuestTask, ready: Callable[[], bool],
                               deadline_ns: int | None) -> bool:
        before = self.frames_transmitted
        try:
            if self.virtual:
                return self._block_virtual(task, ready, deadline_ns)
            return self._block_real(task, ready, deadline_ns)
        finally:
            task.frames_elsewhere += self.frames_transmitted - before

    def _block_real(self, task: GuestTask, ready: Callable[[], bool],
                    deadline_ns: int | None) -> bool:
        lock = self.lock
        if self._changed:  # what this turn changed may unblock others first
            self._wake_ready(handoff=False)
        monotonic_ns = time.monotonic_ns
        while True:
            if task.killed:
                raise TaskKilled()
            if ready():
                return True
            waiting_since = monotonic_ns()
            if deadline_ns is None:
                timeout = None
            else:
                remaining = deadline_ns - (waiting_since - self._t0)
                if remaining <= 0:
                    return False
                timeout = remaining / 1e9
            task.state = _BLOCKED
            task.ready = ready
            task.deadline = deadline_ns
            self._block_register(task)
            if self._early_ns != _NO_TIMER_CHECK and task.woken_by is None:
                self._tell_loops()  # no waker goes on when this blocks: nobody would look
            if task.woken_by is not None:
                self._handoff_done(task)
            if task.held:  # its burst ends here
                self._open_held(task)
            if task.crowding:  # it waits for the network like the others now
                task.crowding = False
                self.placement.pin()
            gate = task.gate
            count = lock._release_save()
            try:
                if not gate.wait(timeout):
                    task.wakeups += 1  # timed out on its own
                    timed_out = True
                else:
                    timed_out = False
            finally:
                lock._acquire_restore(count)
            if timed_out:
                gate.reset()  # a wake-up that came meanwhile is not carried to the next wait
            self._unblock(task)  # a woken task is unblocked already; a timed-out one is not
            task.state = _RUNNING
            task.ready = None
            task.deadline = None
            task.waited_ns += monotonic_ns() - waiting_since

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
            task.block_serial += 1
            self._block_register(task)
            if deadline_ns is not None:
                heapq.heappush(self._deadlines,
                               (deadline_ns, task.index, task.block_serial, task))
            self._switch_to_loop(task)

    def yield_task(self, task: GuestTask, spinning: bool = False) -> None:
        """sched_yield, or a compute-bound guest's slice is over: let others run.

        `spinning` marks a guest that has computed past SPIN_THRESHOLD_NS
        without a host call (virtual time then charges its slices).
        """
        if task.killed:
            raise TaskKilled()
        if not self.virtual:
            self.end_burst(task)
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
        before = self.frames_transmitted
        try:
            self._switch_to_loop(task)
        finally:
            task.frames_elsewhere += self.frames_transmitted - before
            self._draining = was_draining
        if task.killed:
            raise TaskKilled()

    def wait_for_woken(self, task: GuestTask) -> None:
        """Real time: let the tasks `task`'s host calls woke run until they block again.

        Called without the lock, when a host call has returned (the guest ABI
        does it through `charge_host_call`). Waits at most `HANDOFF_MAX_S`,
        so a woken guest that computes instead of blocking holds nobody up
        for long. Without it the receiver of a stream of datagrams loses the
        race for the GIL and the lock against a sender that re-takes both
        within a microsecond, and its socket buffer overflows.
        """
        pending = task.handoff_tasks
        if pending and not task.killed:
            if not task.handoff_gate.wait(HANDOFF_MAX_S):
                # Timed out: stop waiting for the woken tasks that did run (they made
                # a host call since, so they are computing, not starved); wait for
                # the others again after this guest's next host call.
                for woken in list(pending):
                    if woken.done or woken.last_call_end_ns >= woken.woken_at_ns:
                        pending.discard(woken)
                task.handoff_gate.reset()
            # (after a wait that succeeded the gate is shut again already; a stale
            # signal is cleared when the next hand-off begins, in `_wake_ready`)

    def charge_host_call(self, task: GuestTask, charge_ns: int, frames: int,
                         call_wall_ns: int = 0, call_end_ns: int = 0) -> None:
        """A host call of `task` has returned: charge it, and preempt or yield if due.

        Virtual time: adds `charge_ns + frames * FRAME_CHARGE_NS` to the
        guest's own clock; if that clock is `CHARGE_QUANTUM_NS` or more ahead
        of virtual time, the guest sleeps until virtual time catches up
        (others run, timers fire, the clock advances). Real time: first lets
        the guests this call woke run until they block again
        (`wait_for_woken`); then adds the call's wall time (`call_wall_ns`,
        ending at time.monotonic_ns() `call_end_ns`) and frames to the
        guest's turn; if the turn is used up, the guest yields (see the
        module docstring). Called without the lock held and outside any
        network turn. Raises TaskKilled if the guest was stopped while it
        waited.
        """
        if self.virtual:
            charge = charge_ns + frames * FRAME_CHARGE_NS
            now = self._now
            until = task.charged_until_ns
            if until < now:
                until = now
            until += charge
            task.charged_until_ns = until
            task.charged_total_ns += charge
            if until - now >= CHARGE_QUANTUM_NS:
                task.charge_preemptions += 1
                self._block_virtual(task, _never, until)
            elif self._changed and self._blocked:
                # the call may have woken someone: they run (until they block) first
                woken = self.wakeups
                runq = self._runq
                queued = len(runq)
                self._wake_blocked()
                if self.wakeups != woken:
                    if self._explore:  # the woken are the newest in the run queue
                        task.behind = list(itertools.islice(runq, queued, None))
                    self.yield_task(task)
            return
        self.charge_real_call(task, frames, call_wall_ns, call_end_ns)

    def charge_real_call(self, task: GuestTask, frames: int, call_wall_ns: int,
                         call_end_ns: int) -> None:
        """Real time: `charge_host_call` without its virtual-time half (the ABI bridge
        of a real-time guest calls this directly)."""
        if task.roaming:  # back from a stretch of compute on any CPU
            task.roaming = False
            if not task.crowding:
                self.placement.pin()
        now = call_end_ns or time.monotonic_ns()
        # in a burst if this call began right after the previous one ended
        computed = now - call_wall_ns - task.resumed_ns  # since its previous call
        task.in_burst = in_burst = call_wall_ns > 0 and computed < HANDOFF_HOLD_GAP_NS
        held = task.held
        task.woke_last_call = task.woke_this_call or bool(held)
        task.woke_this_call = task.sent_datagram = False
        resumed = now
        if held:
            task.held_calls += 1
            if not in_burst or task.held_calls >= HANDOFF_HOLD_CALLS:
                self.end_burst(task)
        if task.handoff_tasks and not held:
            self.wait_for_woken(task)
            resumed = time.monotonic_ns()
        used = call_wall_ns
        waited = task.waited_ns
        if waited:  # the call blocked: that wait held no network
            task.waited_ns = 0
            used -= waited
            if used < 0:
                used = 0
        task.network_time_ns += used + frames * FRAME_SHARE_NS
        task.last_call_end_ns = now
        turn_used = task.turn_used_ns + used
        turn_frames = task.turn_frames + frames
        if turn_used >= HOST_CALL_SLICE_NS or turn_frames >= FRAMES_PER_TURN:
            task.turn_used_ns = 0
            task.turn_frames = 0
            self.end_burst(task)
            self._end_turn(task, now)
            resumed = time.monotonic_ns()
        else:
            task.turn_used_ns = turn_used
            task.turn_frames = turn_frames
        task.resumed_ns = resumed
        task.looks_at_timers = True
        early = self._early_ns
        if early != _NO_TIMER_CHECK:
            calls_again = call_wall_ns > 0 and computed < CALLS_AGAIN_GAP_NS
            if not calls_again or early <= resumed - self._t0:  # else: not due, it looks again
                self._look_at_timers(calls_again)

    def _contending(self, task: GuestTask, now: int) -> list[GuestTask]:
        """Real time: the other guests that want the network now.

        A guest wants it if it is not blocked and made a host call within the
        last `CONTENDING_WINDOW_NS` (it is probably waiting to make the next),
        unless it is waiting for `task` itself to block again (`wait_for_woken`:
        its host call woke `task`): it cannot go first, so yielding to it
        would only idle both.
        """
        return [other for other in self._tasks
                if other is not task and other.state in (TaskState.RUNNING, TaskState.RUNNABLE)
                and now - other.last_call_end_ns < CONTENDING_WINDOW_NS
                and task not in other.handoff_tasks]

    def _end_turn(self, task: GuestTask, now: int) -> None:
        """Real time: `task` used up a turn; wait while it is ahead of the others.

        Each guest's `network_time_ns` counts the wall time its host calls
        held the network, plus `FRAME_SHARE_NS` per frame they sent. A guest
        more than `HOST_CALL_SLICE_NS` ahead of a contending guest waits
        (sleeping: no lock, no GIL) until that guest catches up, or nobody
        took the lock during a `YIELD_STEP_S` sleep (so no one was waiting
        for it), or `YIELD_MAX_NS` passed. A guest that fell far behind is
        credited at most `2 * HOST_CALL_SLICE_NS`, so a guest that idled
        cannot lock others out afterwards. With nobody else contending, it
        only lets the longest waiter for the lock (often the timer loop) go.
        """
        if task.killed:
            raise TaskKilled()
        others = self._contending(task, now)
        lock = self.lock
        if not others and not lock.waiting:
            try:  # read without the lock: another thread may pop the heap meanwhile
                nxt: int | None = self._timers[0][0]
            except IndexError:
                nxt = None
            if nxt is None or nxt > self.monotonic_ns():
                return
        floor = task.network_time_ns - 2 * HOST_CALL_SLICE_NS
        for other in others:
            if other.network_time_ns < floor:
                other.network_time_ns = floor
        if others and not lock.waiting and task.network_time_ns - min(
                o.network_time_ns for o in others) <= HOST_CALL_SLICE_NS:
            return  # not ahead of anyone, and nobody queues for the network: go on
        task.charge_preemptions += 1
        if others and not task.crowding and self.placement.cpu is not None:
            # ahead of the others: it computes elsewhere until it blocks, so the
            # guests it crowds keep the network's CPU (vnet.cpu_placement). Not
            # when only the timer loop waits: that is a turn to let go, not a
            # guest crowded out, and a guest that seldom blocks (a server whose
            # every read finds data) would hand off across CPUs from then on.
            task.crowding = True
            self.placement.release()
        taken = lock.acquisitions
        give_up = now + YIELD_MAX_NS
        # Sleeping releases the GIL too: a guest waiting to *enter* a host call
        # (it needs the GIL first) gets in, then the lock is handed round.
        while True:
            time.sleep(YIELD_STEP_S)
            if task.killed or time.monotonic_ns() >= give_up:
                return
            if lock.acquisitions == taken:
                return  # nobody else took the network for a whole step: nobody waits
            taken = lock.acquisitions
            least = min((o.network_time_ns for o in others if not o.done), default=None)
            if least is None or task.network_time_ns - least <= HOST_CALL_SLICE_NS:
                return

    def _switch_to_loop(self, task: GuestTask) -> None:
        """Virtual time: `task` stops running (blocked, yielded, preempted) until resumed."""
        self._pass_baton()
        task.go.acquire()
        task.state = TaskState.RUNNING
        task.ready = None
        task.deadline = None
        task.behind = None

    def _task_finished(self, task: GuestTask) -> None:
        with self.lock:
            task.state = TaskState.DONE
            self._live -= 1
            self._unblock(task)
            self._task_by_thread.pop(_get_ident(), None)
            self._changed = True  # someone may wait for this task to end
            if not self.virtual:
                if self._early_ns != _NO_TIMER_CHECK:
                    self._tell_loops()
                if task.held:
                    self._open_held(task)
                if task.woken_by is not None:
                    self._handoff_done(task)
                if not self._draining:
                    self._wake_ready(handoff=False)
        if self.virtual:
            self._pass_baton()  # outside the lock: the next one to run may need it

    # --- the loop ----------------------------------------------------------
    def run(self, until: Callable[[], bool] | None = None, timeout_s: float | None = None,
            until_done: GuestTask | None = None) -> bool:
        """Run timers and guests until every guest is done or `until()` holds — or, with
        `until_done`, until that task is done (`until` then ignored): what `until=lambda:
        task.done` means, checked after every change without calling back into Python.

        Returns True if it ended because of that, False on timeout (real time)
        or deadlock (virtual time: every guest blocked with nothing pending).
        """
        placement = self.placement
        before = placement.current() if placement.network is not None else None
        placement.pin()  # the loop's thread is one of the network's while it runs it
        try:
            if self.virtual:
                if until_done is not None:
                    task = until_done
                    until = lambda: task.state is _DONE  # noqa: E731
                return self._run_virtual(until)
            return self._run_real(until, timeout_s, until_done)
        finally:
            if before is not None:
                placement.restore(before)

    def _all_done(self) -> bool:
        return self._live == 0

    def _run_real(self, until: Callable[[], bool] | None, timeout_s: float | None,
                  until_done: GuestTask | None) -> bool:
        give_up = None if timeout_s is None else time.monotonic() + timeout_s
        loop = _LoopWaiter(until, until_done)
        lock = self.lock
        with lock:
            self._changed = True  # the caller may have changed things before calling
            while True:
                self._fire_due_timers()
                if self._changed:
                    self._wake_ready()
                if loop.finished(self):
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
                if wait <= 0:
                    continue
                loop.wake_at_ns = self.monotonic_ns() + int(wait * 1e9)
                self._clear_early()  # its wait covers every timer armed so far
                self._loops.append(loop)
                count = lock._release_save()
                try:
                    loop.gate.wait(wait)
                finally:
                    lock._acquire_restore(count)
                    loop.gate.reset()
                    self._loops.remove(loop)

    def _wake_blocked(self) -> None:
        """Virtual time: make runnable the blocked tasks whose deadline passed or whose
        condition holds (checked only if something changed), in creation order."""
        woken: list[GuestTask] = []
        deadlines = self._deadlines
        now = self._now
        while deadlines and deadlines[0][0] <= now:
            _, _, serial, task = heapq.heappop(deadlines)
            if task.block_serial == serial and task.state is TaskState.BLOCKED:
                woken.append(task)
        if self._changed:
            for task in self._candidates():
                ready = task.ready
                if task.killed or (ready is not None and ready()):
                    woken.append(task)
        if not woken:
            return
        if len(woken) > 1:
            woken = sorted(set(woken), key=_task_index)
        runq = self._runq
        for task in woken:
            self._unblock(task)
            task.state = TaskState.RUNNABLE
            task.wakeups += 1
            runq.append(task)
        self.wakeups += len(woken)

    def _pass_baton(self) -> None:
        """Virtual time: the running task stops; decide, in its thread, who runs next.

        The thread that gives up the baton takes the loop's next decision
        itself (`_next_virtual`: due timers, wake-ups, the next runnable task)
        and hands the baton straight to that task — one thread switch instead
        of two through the thread in `run()` — or back to `run()` once its
        `until` holds, every guest is done, or nothing can happen any more.
        The decisions are the same whichever thread takes them, so runs stay
        deterministic.
        """
        runs = self._runs
        if not runs:  # no run() in progress (stop_all): back to whoever waits
            self._back.release()
            return
        try:
            decision: GuestTask | bool | BaseException = self._next_virtual()
        except BaseException as e:  # a timer callback's error surfaces in run()'s caller
            decision = e
        if isinstance(decision, GuestTask):
            self.current = decision
            decision.state = TaskState.RUNNING
            decision.go.release()
        else:
            innermost = runs[-1]
            innermost.outcome = decision
            innermost.back.release()

    def _next_event_time(self) -> int | None:
        deadlines = self._deadlines
        while deadlines:
            _, _, serial, task = deadlines[0]
            if task.block_serial == serial and task.state is TaskState.BLOCKED:
                break
            heapq.heappop(deadlines)
        nxt = self._next_timer_time()
        if deadlines and (nxt is None or deadlines[0][0] < nxt):
            return deadlines[0][0]
        return nxt

    def _run_virtual(self, until: Callable[[], bool] | None) -> bool:
        """Virtual time: run until `until` (see `run`).

        May be called from a running task's own thread too (a scripted task
        that lets the network run for a while): that run nests inside the
        one that resumed the task; its decisions use its own `until`, and the
        outer run goes on once the task gives up the baton again.
        """
        self._changed = True  # the caller may have changed things before calling
        run = _VirtualRun(until)
        runs = self._runs
        runs.append(run)
        resumed_by = self.current  # the task whose thread this is, if nested
        try:
            first = self._next_virtual()
            if not isinstance(first, GuestTask):
                return first
            self.current = first
            first.state = TaskState.RUNNING
            first.go.release()
            run.back.acquire()  # the tasks pass the baton round until one hands it back
            outcome = run.outcome
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        finally:
            runs.pop()
            self.current = resumed_by
            if resumed_by is not None:
                resumed_by.state = TaskState.RUNNING

    def _next_virtual(self) -> GuestTask | bool:
        """Virtual time: the loop's next decision: the task to run, or run()'s result.

        Fires due timers, wakes blocked tasks (deadlines; conditions after a
        change), then picks the first runnable task; with none, advances the
        clock to the next event. Returns True when `until` holds (or every
        guest is done), False on deadlock.
        """
        until = self._runs[-1].until
        timers = self._timers
        deadlines = self._deadlines
        runq = self._runq
        while True:
            if timers and timers[0][0] <= self._now:
                self._fire_due_timers()
            if self._changed or (deadlines and deadlines[0][0] <= self._now):
                self._wake_blocked()
            if until is not None and until():
                return True
            if runq:
                task = self._pick_runnable(runq) if self._explore and len(runq) > 1 else (
                    runq.popleft())
                if task.done:
                    continue
                if self._frozen and task.wake_key in self._frozen:
                    self._frozen[task.wake_key].tasks.append(task)  # runs after the thaw
                    continue
                return task
            if until is None and self._live == 0:
                return True
            nxt = self._next_event_time()
            if self._spinq:
                # Only compute-bound guests can run: their slice costs virtual time.
                charge_until = self._now + SPIN_CHARGE_NS
                self._now = max(self._now, min(charge_until, nxt) if nxt is not None
                                else charge_until)
                task = self._spinq.popleft()
                if task.done:
                    continue
                if self._frozen and task.wake_key in self._frozen:
                    self._frozen[task.wake_key].tasks.append(task)
                    continue
                return task
            if nxt is None:
                return False  # deadlock: everyone waits for something that cannot come
            self._now = max(self._now, nxt)

    def _pick_runnable(self, runq: deque[GuestTask]) -> GuestTask:
        """Virtual time, explore: take one of the runnable guests, the seed's choice.

        A guest that yielded to guests it woke waits until none of them is
        queued any more (see "Schedules").
        """
        self.schedule_choices += 1
        eligible = [i for i, t in enumerate(runq)
                    if t.behind is None or not any(w in runq for w in t.behind)]
        if not eligible:  # cannot happen (the woken wait for nobody); never stall on it
            eligible = list(range(len(runq)))
        index = eligible[self._schedule_rng.randrange(len(eligible))]
        task = runq[index]
        del runq[index]
        task.behind = None
        return task

    # --- frozen hosts (virtual time) ---------------------------------------
    def freeze(self, key: object) -> None:
        """Virtual time: pause the guests and timers of host `key` (see "Frozen hosts").

        Call it from a timer callback or outside `run()` (no guest of the
        host is running then). Freezing a frozen host changes nothing.
        """
        if not self.virtual:
            raise ValueError("freezing a host needs virtual time")
        if key not in self._frozen:
            self._frozen[key] = _Freeze()

    def thaw(self, key: object) -> None:
        """Virtual time: end `freeze(key)`: its held timers fire now, then its guests run."""
        frozen = self._frozen.pop(key, None)
        if frozen is None:
            return
        now = self._now
        with self.lock:
            for timer in frozen.timers:
                if not timer.cancelled:
                    heapq.heappush(self._timers, (now, next(self._seq), timer))
            self._runq.extend(frozen.tasks)
            self._changed = self._changed_all = True  # held timers may unblock guests

    def frozen(self, key: object) -> bool:
        """Whether host `key` is frozen now."""
        return key in self._frozen

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
                        self._unblock(task)
                        for queue in (self._runq, self._spinq):
                            if task in queue:
                                queue.remove(task)
                        task.go.release()
                        self._back.acquire()
        else:
            with self.lock:
                for task in list(self._blocked):
                    task.gate.open()
                for task in self._tasks:
                    task.handoff_gate.open()
                for loop in self._loops:
                    loop.gate.open()
        deadline = time.monotonic() + join_timeout_s
        for task in self._tasks:
            task.thread.join(max(0.0, deadline - time.monotonic()))


def _baton() -> threading.Lock:
    """A binary semaphore at 0: a plain lock, taken. `release()` passes it, `acquire()` waits.

    The virtual-time loop and the tasks pass control strictly in turn, so a
    release is never repeated before the matching acquire; a C-level lock
    switches threads several times faster than `threading.Semaphore`.
    """
    baton = threading.Lock()
    baton.acquire()
    return baton


def _task_index(task: GuestTask) -> int:
    return task.index
