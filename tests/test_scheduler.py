"""The scheduler on its own: clocks, timers, blocking, in real and virtual time."""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType

import pytest

from vnet.scheduler import (
    CHARGE_QUANTUM_NS,
    HOST_CALL_CHARGE_NS,
    FairLock,
    GuestTask,
    Scheduler,
)


def test_virtual_clock_jumps_to_the_next_timer() -> None:
    sched = Scheduler(virtual=True)
    fired: list[tuple[str, int]] = []
    sched.call_at(5_000_000_000, lambda: fired.append(("b", sched.monotonic_ns())))
    sched.call_at(1_000, lambda: fired.append(("a", sched.monotonic_ns())))
    started = time.monotonic()
    assert sched.run(until=lambda: len(fired) == 2)
    assert fired == [("a", 1_000), ("b", 5_000_000_000)]
    assert time.monotonic() - started < 1.0


def test_timers_at_the_same_time_fire_in_creation_order() -> None:
    sched = Scheduler(virtual=True)
    order: list[int] = []
    for i in range(20):
        sched.call_at(100, lambda i=i: order.append(i))
    sched.run(until=lambda: len(order) == 20)
    assert order == list(range(20))


def test_cancelled_timer_does_not_fire() -> None:
    sched = Scheduler(virtual=True)
    fired: list[int] = []
    timer = sched.call_at(10, lambda: fired.append(1))
    sched.call_at(20, lambda: fired.append(2))
    timer.cancel()
    sched.run(until=lambda: bool(fired))
    assert fired == [2]


def _sleepers_log(schedule: str, seed: int = 0) -> list[tuple[str, int]]:
    """Guests a (every 30 ns) and b (every 20 ns) sleep three times; who woke when."""
    sched = Scheduler(virtual=True, seed=seed, schedule=schedule)
    log: list[tuple[str, int]] = []

    def sleeper(name: str, delay: int):  # type: ignore[no-untyped-def]
        def body(task):  # type: ignore[no-untyped-def]
            for _ in range(3):
                deadline = sched.monotonic_ns() + delay
                sched.block(task, lambda: False, deadline)
                log.append((name, sched.monotonic_ns()))
        return body

    sched.spawn("a", sleeper("a", 30))
    sched.spawn("b", sleeper("b", 20))
    assert sched.run()
    return log


def test_virtual_guests_block_and_wake_in_order() -> None:
    # the subject is fifo's order: guests woken at one instant (60) go in creation order
    assert _sleepers_log("fifo") == [("b", 20), ("a", 30), ("b", 40), ("a", 60), ("b", 60),
                                     ("a", 90)]
    # explored (the default), the seed orders the two woken at 60; the times are the same
    orders = set()
    for seed in range(8):
        log = _sleepers_log("explore", seed)
        assert [t for _, t in log] == [20, 30, 40, 60, 60, 90]
        assert [t for n, t in log if n == "a"] == [30, 60, 90]
        orders.add(tuple(n for n, t in log if t == 60))
    assert orders == {("a", "b"), ("b", "a")}


def test_virtual_deadlock_is_reported_not_hung() -> None:
    sched = Scheduler(virtual=True)
    sched.spawn("stuck", lambda task: sched.block(task, lambda: False, None))
    assert sched.run() is False
    sched.stop_all()
    assert all(t.done for t in sched.tasks)


def test_real_time_block_wakes_on_notify() -> None:
    sched = Scheduler(virtual=False)
    box: list[int] = []
    woke: list[float] = []

    def waiter(task):  # type: ignore[no-untyped-def]
        with sched.lock:
            sched.block(task, lambda: bool(box), None)
            woke.append(time.monotonic())

    sched.spawn("w", waiter)

    def produce() -> None:
        box.append(1)
        sched.notify()

    sched.call_later(50_000_000, produce)
    assert sched.run(timeout_s=10)
    assert woke


def test_real_time_block_times_out() -> None:
    sched = Scheduler(virtual=False)
    results: list[bool] = []

    def waiter(task):  # type: ignore[no-untyped-def]
        with sched.lock:
            results.append(sched.block(task, lambda: False, sched.monotonic_ns() + 20_000_000))

    sched.spawn("w", waiter)
    assert sched.run(timeout_s=10)
    assert results == [False]


def test_defer_runs_nested_work_in_fifo_order_without_recursion() -> None:
    sched = Scheduler(virtual=True)
    order: list[str] = []

    def bounce(n: int) -> None:
        order.append(f"bounce{n}")
        if n < 2000:  # deeper than Python's recursion limit if it recursed
            sched.defer(lambda: bounce(n + 1))

    def first() -> None:
        order.append("first")
        sched.defer(lambda: order.append("queued-by-first"))
        sched.defer(lambda: bounce(0))
        order.append("first-done")

    sched.defer(first)
    assert order[:4] == ["first", "first-done", "queued-by-first", "bounce0"]
    assert order[-1] == "bounce2000"


def test_fair_lock_serves_waiters_before_the_releasing_thread_retakes_it() -> None:
    lock = FairLock()
    order: list[str] = []
    lock.acquire()
    lock.acquire()  # re-entrant

    def waiter(name: str) -> None:
        with lock:
            order.append(name)

    threads = [threading.Thread(target=waiter, args=(n,)) for n in ("first", "second")]
    for n, thread in enumerate(threads, 1):
        thread.start()
        while lock.waiting < n:  # queue them in a known order
            time.sleep(0.001)
    lock.release()
    assert lock.waiting == 2  # still held once: nobody got in
    lock.release()
    with lock:  # re-taking at once: the two waiters went first
        order.append("releaser")
    for thread in threads:
        thread.join(5)
    assert order == ["first", "second", "releaser"]


def test_fair_lock_works_under_a_condition_wait() -> None:
    lock = FairLock()
    cond = threading.Condition(lock)
    ready: list[bool] = []

    def wake() -> None:
        with cond:
            ready.append(True)
            cond.notify_all()

    with cond:
        with lock:  # held twice: wait must release both levels and restore them
            threading.Thread(target=wake).start()
            assert cond.wait_for(lambda: ready, timeout=5)
            assert lock._is_owned()
        assert lock._is_owned()
    assert not lock._is_owned() and lock.waiting == 0


def test_fair_lock_under_contention_excludes_and_never_strands_a_waiter() -> None:
    """Threads taking the lock in a tight loop, switching the GIL every microsecond
    (so a release and a thread queueing interleave at every point): one holder at a
    time, every acquisition served, nobody left waiting on a free lock."""
    lock = FairLock()
    threads_n, rounds = 4, 2000
    holders = [0]
    overlaps: list[int] = []
    done = [0]

    def worker() -> None:
        for i in range(rounds):
            with lock:
                holders[0] += 1
                if holders[0] != 1:
                    overlaps.append(holders[0])
                if i % 5 == 0:
                    time.sleep(0)  # hold it across a thread switch: others queue
                holders[0] -= 1
                done[0] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker) for _ in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads), "a waiter was stranded"
    assert overlaps == []
    assert done[0] == threads_n * rounds == lock.acquisitions
    assert lock.waiting == 0 and lock.acquire(blocking=False)


def test_fair_lock_release_racing_a_thread_that_queues_hands_it_over() -> None:
    """The release that frees the lock without its mutex (nobody queued yet) while a
    thread that found it held is on its way into the queue: that thread gets it."""
    lock = FairLock()
    lock.acquire()
    looked = threading.Event()
    released = threading.Event()
    got = threading.Event()
    real = lock._held

    class Probe:  # `_held` as the queueing thread sees it: pauses after its last look
        failures = 0

        def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
            taken = real.acquire(blocking, timeout)
            if not taken and threading.current_thread() is waiter:
                Probe.failures += 1
                if Probe.failures == 2:  # the look under the mutex, before it queues
                    looked.set()
                    released.wait(5)
            return taken

        def release(self) -> None:
            real.release()

    def take() -> None:
        with lock:
            got.set()

    lock._held = Probe()  # type: ignore[assignment]
    waiter = threading.Thread(target=take)
    waiter.start()
    assert looked.wait(5)
    lock.release()  # nobody queued yet: the fast path frees it
    released.set()
    assert got.wait(5), "the queueing thread was left waiting on a free lock"
    waiter.join(5)
    assert lock.waiting == 0 and lock.acquisitions == 2


class _Interrupted(Exception):
    """What the tests' SIGUSR1 handler raises (as vnet run's handlers raise on a signal)."""


def _raise_interrupted(_signum: int, _frame: FrameType | None) -> None:
    raise _Interrupted


def _lock_and_holder() -> tuple[FairLock, threading.Event, threading.Event, threading.Thread]:
    """A FairLock and a thread (not started) that holds it from `holding` until `let_go`."""
    lock = FairLock()
    holding, let_go = threading.Event(), threading.Event()

    def holder() -> None:
        with lock:
            holding.set()
            let_go.wait(5)

    return lock, holding, let_go, threading.Thread(target=holder)


def _interrupt_main_once_queued(lock: FairLock, then_let_go: threading.Event | None = None) -> None:
    """From another thread: SIGUSR1 to the main thread once it queues for `lock`."""
    main = threading.main_thread().ident
    assert main == threading.get_ident()

    def interrupt() -> None:
        while lock.waiting < 1:
            time.sleep(0.001)
        signal.pthread_kill(main, signal.SIGUSR1)
        if then_let_go is not None:
            time.sleep(0.05)
            then_let_go.set()

    threading.Thread(target=interrupt).start()


def _free_for_another_thread(lock: FairLock) -> bool:
    taken: list[bool] = []
    other = threading.Thread(target=lambda: taken.append(lock.acquire(blocking=False)))
    other.start()
    other.join(5)
    return taken == [True]


def test_fair_lock_waiter_stopped_by_a_signal_leaves_the_queue() -> None:
    """A signal handler that raises (a second Ctrl-C or SIGTERM: vnet/sim/signals.py)
    while the main thread queues for the lock: the exception comes out of `acquire`,
    the thread holds nothing, and when the holder lets go the lock is free for the
    next thread, not handed to the thread that stopped waiting (that stranded every
    guest's host call and hung the run's clean-up in `Scheduler.stop_all`)."""
    lock, holding, let_go, owner = _lock_and_holder()
    previous = signal.signal(signal.SIGUSR1, _raise_interrupted)
    try:
        owner.start()
        assert holding.wait(5)
        _interrupt_main_once_queued(lock)
        with pytest.raises(_Interrupted):
            lock.acquire()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert lock.waiting == 0 and not lock._is_owned()
    let_go.set()
    owner.join(5)
    assert _free_for_another_thread(lock), "the lock went to the thread that had stopped waiting"


def test_fair_lock_taken_back_after_a_wait_keeps_a_signals_exception() -> None:
    """The same signal while the main thread waits to take the lock back after waiting
    for something else without it (`Scheduler._run_real` between two timers, as
    `threading.Condition.wait`): the signal's exception comes out of the ``with`` block
    that held the lock (vnet run catches KeyboardInterrupt to clean up), not a
    RuntimeError from releasing a lock it no longer held, and the lock is left free."""
    lock, holding, let_go, owner = _lock_and_holder()
    previous = signal.signal(signal.SIGUSR1, _raise_interrupted)
    try:
        with pytest.raises(_Interrupted), lock:
            count = lock._release_save()
            owner.start()
            assert holding.wait(5)
            _interrupt_main_once_queued(lock, then_let_go=let_go)
            lock._acquire_restore(count)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        let_go.set()
    owner.join(5)
    assert lock.waiting == 0 and not lock._is_owned()
    assert _free_for_another_thread(lock)


def test_virtual_host_call_charges_preempt_a_guest_that_runs_ahead() -> None:
    sched = Scheduler(virtual=True)
    seen: list[int] = []

    def busy(task: GuestTask) -> None:
        for _ in range(2500):  # 2.5 ms of 1 µs calls, never blocking
            seen.append(sched.monotonic_ns())
            sched.charge_host_call(task, HOST_CALL_CHARGE_NS, frames=0)

    task = sched.spawn("busy", busy)
    sched.run()
    assert task.charged_total_ns == 2500 * HOST_CALL_CHARGE_NS
    assert task.charge_preemptions == 2  # at 1 ms and 2 ms ahead
    assert sorted(set(seen)) == [0, CHARGE_QUANTUM_NS, 2 * CHARGE_QUANTUM_NS]
