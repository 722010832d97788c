"""Which CPU vnet's network threads run on: one, shared, unless told otherwise.

Why
---
Everything vnet's stack does is Python under one GIL, and guests hand work to
each other all the time: a send wakes the receiver's thread, a reply wakes the
sender's. When those threads sit on different CPUs, every hand-off is a
cross-CPU wake-up (an inter-processor interrupt, the other CPU leaving its idle
state — on a virtual machine an exit to the hypervisor and back), 30-40 µs on
the reference machine, and then the woken thread queues for the GIL anyway.
On one CPU the waker's blocking call switches straight to the woken thread.
Measured on the reference 2-core VM (`scripts/bench`, the same run pinned and
not): 64-byte UDP 7,100 → 11,900 datagrams/s, UDP round trip p50 210 → 131 µs,
TCP bulk 88 → 111 MB/s, static-buffer bulk 114 → 208 MB/s.

The price is parallel guest compute (wasm runs without the GIL): so a guest
that computes for two epoch ticks (10 ms) without a host call is let out to
every CPU (`release`) until its next host call brings it back (`pin`) — the
runtime's epoch callback and the scheduler's `charge_host_call` do that —
and a guest the real-time fairness throttles computes elsewhere until it
blocks (`Scheduler._end_turn`).

Policy
------
`VNET_CPUS` (or `Network(cpus=...)` / `Scheduler(cpus=...)`):

* `one` (the default): the network threads share one CPU of those the
  process may use, chosen once per process. Processes running vnet at the
  same time (a sweep's workers, parallel test runs) each claim a different
  CPU while there are free ones: the claim is an advisory `flock` on
  `vnet-cpu-N.lock` in /dev/shm (or the temporary directory), released when
  the process ends. A pinned thread cannot be moved by the kernel's load
  balancer, so a watcher thread does it: every `WATCH_INTERVAL_S` it reads
  the CPUs' load from /proc/stat, and when other work takes more than
  `CROWDED_SHARE` of the network's CPU while another is less than
  `IDLE_ENOUGH_SHARE` busy, it moves every pinned thread there — or, with
  every CPU busy, lets them out to all CPUs until one is idle enough again;
* `all`: no pinning; the kernel places every thread;
* a CPU number: that CPU.

Pinned threads are also made SCHED_BATCH: the kernel then does not let a
woken thread preempt the one that woke it. Without that, a guest waking
another on the same CPU is preempted inside the wake-up, the woken thread
finds the GIL taken and sleeps again, and every hand-off costs four context
switches instead of two (two Python threads passing a lock back and forth on
one CPU of the reference machine: 12 µs per round trip, 6 µs as SCHED_BATCH).
A timer due in real time then waits at most for the running thread to block
or its time slice to end. When the watcher lets the threads out to every CPU
(the machine is busy), they go back to SCHED_OTHER: a woken guest that could
not preempt would wait for other processes' time slices.

Apart from the watcher's moves, only the calling thread's affinity and policy
change (Linux's `sched_setaffinity(0, …)` is per thread): a task's thread
pins itself when it starts (a wasm guest once its instance is built), a
thread that runs the scheduler's loop for the duration of `run()`. Where the
process may use one CPU only, or the platform has no `sched_setaffinity`,
nothing happens. A program started (fork/exec) from a
pinned thread inherits its CPU; vnet starts none from there.

May touch: the calling thread's CPU affinity and scheduling policy (those of other
threads only to move them with the network), and the lock files above.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import time
from pathlib import Path

#: The environment variable that chooses the policy.
ENV = "VNET_CPUS"
POLICIES = ("one", "all")

_lock = threading.Lock()
_claimed: dict[str, _NetworkCpu] = {}  # policy -> the network CPU under it
_claim_files: list[int] = []  # fds of the lock files this process holds


def _allowed() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


_process_cpus = _allowed()


def parse_policy(spec: str | None) -> str:
    """Validate a policy (`one`, `all` or a CPU number); None means the environment's."""
    if spec is None:
        spec = os.environ.get(ENV, "one").strip() or "one"
    spec = spec.strip().lower()
    if spec in POLICIES:
        return spec
    if spec.isdigit():
        return spec
    raise ValueError(f"{ENV}={spec!r}: expected one, all or a CPU number")


def _lock_dir() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def _claim(cpus: list[int]) -> int:
    """One CPU of `cpus` for this process: the first no other vnet process holds."""
    start = os.getpid() % len(cpus)
    order = cpus[start:] + cpus[:start]
    directory = _lock_dir()
    for cpu in order:
        try:
            fd = os.open(directory / f"vnet-cpu-{cpu}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            break  # no lock files here: take the pid's CPU
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _claim_files.append(fd)
        return cpu
    return order[0]  # all taken: share the pid's


class _NetworkCpu:
    """The process's network CPU under one policy, the threads that follow it, and moves."""

    def __init__(self, cpu: int, movable: bool) -> None:
        self.cpu = cpu
        #: False while the watcher has let the network out to every CPU (all are busy).
        self.pinned = True
        self.movable = movable
        self.threads: set[int] = set()  # native ids of the threads that follow `cpu`
        self.moves = 0
        self._mutex = threading.Lock()
        self._watcher: threading.Thread | None = None

    def _cpus(self) -> frozenset[int]:
        return frozenset((self.cpu,)) if self.pinned else frozenset(_process_cpus)

    def pin(self) -> None:
        with self._mutex:
            self.threads.add(threading.get_native_id())
            cpus = self._cpus()
            policy = _BATCH if self.pinned else _OTHER
            if self.movable and self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, daemon=True,
                                                 name="vnet-cpu-placement")
                self._watcher.start()
        _set_affinity(0, cpus)
        _set_policy(policy)

    def forget(self) -> None:
        with self._mutex:
            self.threads.discard(threading.get_native_id())

    def move_to(self, cpu: int | None) -> None:
        """Put every following thread on `cpu` (None: on every CPU, until the next move)."""
        with self._mutex:
            if cpu is None:
                self.pinned = False
            else:
                self.cpu, self.pinned = cpu, True
            self.moves += 1
            cpus = self._cpus()
            # SCHED_BATCH only on a CPU of its own: sharing one with other work, a woken
            # guest that could not preempt would wait for the others' time slices
            policy = _BATCH if self.pinned else _OTHER
            for tid in list(self.threads):
                if not _set_affinity(tid, cpus):
                    self.threads.discard(tid)  # the thread has ended
                else:
                    _set_policy(policy, tid)

    def _watch(self) -> None:
        """Every WATCH_INTERVAL_S: follow `placement_move`; end once no thread follows."""
        previous = _cpu_times()
        ours_before = _process_cpu_s()
        while True:
            time.sleep(WATCH_INTERVAL_S)
            with self._mutex:
                if not self.threads:
                    self._watcher = None
                    return
            now = _cpu_times()
            ours_now = _process_cpu_s()
            if previous and now:
                busy = {cpu: _busy_share(previous[cpu], now[cpu])
                        for cpu in now if cpu in previous and cpu in _process_cpus}
                elapsed = _elapsed_s(previous, now)
                ours = (ours_now - ours_before) / elapsed if elapsed > 0 else 0.0
                move = placement_move(self.cpu, self.pinned, busy, ours)
                if move is not False:
                    self.move_to(move)
            previous, ours_before = now, ours_now


#: How often a movable placement looks at the CPUs' load.
WATCH_INTERVAL_S = 0.5
#: Share of our CPU other work must take (beyond our own) before the network moves...
CROWDED_SHARE = 0.3
#: ...to a CPU at most this busy; with none, it is let out to every CPU until other
#: work leaves this much of a CPU idle again.
IDLE_ENOUGH_SHARE = 0.5


def placement_move(here: int, pinned: bool, busy: dict[int, float],
                   ours: float) -> int | bool | None:
    """What the watcher does: False (stay), a CPU to pin the network to, or None (unpin).

    `busy` is each CPU's busy share over the last interval, `ours` the share of
    one CPU this process used meanwhile. Pinned: stay unless other work takes
    more than CROWDED_SHARE of our CPU; then go to a CPU less than
    IDLE_ENOUGH_SHARE busy, or let the threads out if there is none (a pinned
    thread cannot use a CPU the kernel frees up elsewhere). Unpinned: pin again,
    to the idlest CPU, once other work leaves at least that much of a CPU idle.
    """
    if not busy:
        return False
    idlest = min(busy, key=lambda cpu: (busy[cpu], cpu))
    if pinned:
        if here not in busy or busy[here] - ours <= CROWDED_SHARE:
            return False
        if idlest != here and busy[idlest] < IDLE_ENOUGH_SHARE:
            return idlest
        return None
    others = sum(busy.values()) - ours
    if others <= len(busy) - 1 - IDLE_ENOUGH_SHARE:
        return idlest
    return False


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _set_affinity(tid: int, cpus: frozenset[int]) -> bool:
    try:
        os.sched_setaffinity(tid, cpus)
        return True
    except (AttributeError, OSError):
        return False


_BATCH = getattr(os, "SCHED_BATCH", None)
_OTHER = getattr(os, "SCHED_OTHER", None)


def _policy() -> int | None:
    try:
        return os.sched_getscheduler(0)
    except (AttributeError, OSError):
        return None


def _set_policy(policy: int | None, tid: int = 0) -> None:
    if policy is not None:
        try:
            os.sched_setscheduler(tid, policy, os.sched_param(0))
        except (AttributeError, OSError):
            pass


def _cpu_times() -> dict[int, tuple[int, int]]:
    """Per CPU from /proc/stat: (busy ticks, total ticks)."""
    times: dict[int, tuple[int, int]] = {}
    try:
        with open("/proc/stat", "rb") as stat:
            for line in stat:
                if not line.startswith(b"cpu") or line[3:4] == b" ":
                    continue
                name, *fields = line.split()
                values = [int(v) for v in fields[:8]]
                total = sum(values)
                idle = values[3] + values[4]  # idle, iowait
                times[int(name[3:])] = (total - idle, total)
    except (OSError, ValueError):
        return {}
    return times


def _busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


def _elapsed_s(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> float:
    cpu = next(iter(after))
    return (after[cpu][1] - before.get(cpu, after[cpu])[1]) / _CLOCK_TICKS


def _process_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _network_cpu(policy: str) -> _NetworkCpu | None:
    """The process's network CPU under `policy`; None: leave the threads be."""
    if len(_process_cpus) < 2 or policy == "all":
        return None
    with _lock:
        if policy not in _claimed:
            if policy == "one":
                _claimed[policy] = _NetworkCpu(_claim(_process_cpus), movable=True)
            else:
                cpu = int(policy)
                if cpu not in _process_cpus:
                    raise ValueError(f"{ENV}={policy}: this process may use CPUs "
                                     f"{','.join(map(str, _process_cpus))}")
                _claimed[policy] = _NetworkCpu(cpu, movable=False)
        return _claimed[policy]


class CpuPlacement:
    """A scheduler's placement: pin the calling thread to the network CPU, or let it out."""

    __slots__ = ("_every", "network")

    def __init__(self, policy: str | None = None) -> None:
        self.network = _network_cpu(parse_policy(policy))
        self._every = frozenset(_process_cpus)

    @property
    def cpu(self) -> int | None:
        """The CPU the network's threads share now (None: not pinned)."""
        return None if self.network is None else self.network.cpu

    def pin(self) -> None:
        """Run the calling thread on the network CPU (and follow it when it moves)."""
        if self.network is not None:
            self.network.pin()

    def release(self) -> None:
        """Let the calling thread run on any CPU the process may use."""
        if self.network is not None:
            self.network.forget()
            _set_affinity(0, self._every)

    def leave(self) -> None:
        """The calling thread is ending: stop moving it with the network."""
        if self.network is not None:
            self.network.forget()

    def current(self) -> tuple[frozenset[int], int | None]:
        """The calling thread's CPUs and scheduling policy now (to restore after a `pin`)."""
        try:
            cpus = frozenset(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = self._every
        return cpus, _policy()

    def restore(self, before: tuple[frozenset[int], int | None]) -> None:
        """Stop following the network CPU; give the thread back what `current` returned."""
        if self.network is not None:
            self.network.forget()
            _set_affinity(0, before[0])
            _set_policy(before[1])


def _after_fork_in_child() -> None:
    # The parent's claim is the parent's: a forked worker (a sweep's pool) claims its own.
    global _process_cpus
    for fd in _claim_files:
        try:
            os.close(fd)
        except OSError:
            pass
    _claim_files.clear()
    _claimed.clear()
    _process_cpus = _allowed()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
