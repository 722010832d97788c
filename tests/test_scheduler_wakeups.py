"""Who the scheduler wakes, and when: one wake-up per waiting task, only when it can go on.

Plain-Python tasks on a bare `Scheduler` (no wasm, no network): each test
blocks tasks on conditions of their own and checks, through the per-task
`GuestTask.wakeups` counter and the order the tasks ran in, that a change
wakes only the task whose condition it made true, that the timer loop sleeps
through timers that do not move its next deadline, and that a task woken by
another's host call runs before that caller goes on (real time) — after a
burst of back-to-back calls, in bounded batches — and that a timer a guest's
call arms sooner than the loop's deadline waits for the guest to look at it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from vnet.scheduler import (
    HANDOFF_HOLD_CALLS,
    HANDOFF_HOLD_GAP_NS,
    GuestTask,
    Scheduler,
    kick_overdue_loops,
)


def _blocked_on_boxes(sched: Scheduler, count: int) -> tuple[list[list[int]], list[GuestTask]]:
    boxes: list[list[int]] = [[] for _ in range(count)]
    tasks = []
    for i in range(count):
        def body(task: GuestTask, box: list[int] = boxes[i]) -> None:
            # virtual time: one thread at a time, so a blocked task must not hold the lock
            with sched.host_call_lock:
                sched.block(task, lambda: bool(box), None)

        tasks.append(sched.spawn(f"waiter{i}", body))
    return boxes, tasks


def _until_blocked(sched: Scheduler, tasks: list[GuestTask]) -> None:
    for _ in range(5000):
        with sched.lock:
            if all(t.state.value == "blocked" for t in tasks):
                return
        time.sleep(0.001)
    raise AssertionError("tasks never blocked")


@pytest.mark.parametrize("virtual", [False, True], ids=["real", "virtual"])
def test_a_change_wakes_only_the_task_whose_condition_it_makes_true(virtual: bool) -> None:
    sched = Scheduler(virtual=virtual)
    boxes, tasks = _blocked_on_boxes(sched, 20)
    if virtual:
        assert sched.run(until=lambda: all(t.state.value == "blocked" for t in tasks))
    else:
        _until_blocked(sched, tasks)
    for _ in range(3):  # unrelated changes: nobody's condition holds
        with sched.lock:
            sched.wake()
        sched.notify()
        if virtual:
            sched.run_for(1_000)
    with sched.lock:
        boxes[7].append(1)
        sched.wake()
    if virtual:
        assert sched.run(until=lambda: tasks[7].done)
    else:
        assert sched.run(until=lambda: tasks[7].done, timeout_s=30)
    assert [t.wakeups for t in tasks] == [1 if i == 7 else 0 for i in range(20)]
    assert [t.done for t in tasks] == [i == 7 for i in range(20)]
    sched.stop_all()
    assert all(t.done for t in tasks)


def test_virtual_deadlines_wake_tasks_in_creation_order_at_the_deadline() -> None:
    sched = Scheduler(virtual=True)
    woke: list[tuple[str, int]] = []

    def sleeper(name: str, deadline: int) -> Callable[[GuestTask], None]:
        def body(task: GuestTask) -> None:
            sched.block(task, lambda: False, deadline)
            woke.append((name, sched.monotonic_ns()))
        return body

    for i, deadline in enumerate([300, 100, 300, 200, 100]):
        sched.spawn(f"s{i}", sleeper(f"s{i}", deadline))
    assert sched.run()
    assert woke == [("s1", 100), ("s4", 100), ("s3", 200), ("s0", 300), ("s2", 300)]
    assert [t.wakeups for t in sched.tasks] == [1] * 5


def test_real_time_loop_sleeps_through_timers_that_do_not_move_its_deadline() -> None:
    sched = Scheduler(virtual=False)
    flag: list[int] = []
    sched.call_later(60_000_000_000, lambda: None)  # the loop's next deadline: a minute away

    def producer() -> None:
        time.sleep(0.05)
        for i in range(200):  # later than the loop's deadline: must not wake it
            sched.call_later(120_000_000_000 + i, lambda: None)
        with sched.lock:
            sched.wake()  # a change that does not make the loop's condition true
        time.sleep(0.05)
        with sched.lock:
            flag.append(1)
        sched.notify()

    thread = threading.Thread(target=producer)
    thread.start()
    assert sched.run(until=lambda: bool(flag), timeout_s=30)
    thread.join()
    assert sched.loop_wakeups == 1  # once: when its condition came true

    woke: list[int] = []
    sched.call_later(20_000_000, lambda: woke.append(1))  # from outside the loop, sooner
    before = sched.loop_wakeups
    timer_thread = threading.Timer(0.05, lambda: sched.call_later(0, lambda: woke.append(2)))
    timer_thread.start()
    assert sched.run(until=lambda: len(woke) == 2, timeout_s=30)
    timer_thread.join()
    assert sorted(woke) == [1, 2]
    assert sched.loop_wakeups >= before + 1  # the sooner timer woke it


def _send_items(virtual: bool, items: int, compute_ns: int,
                datagrams: bool = True) -> list[list[int]]:
    """A sender 'sends' `items`, one per host call, computing `compute_ns` (busy, no
    host call) between calls — each call a datagram, as the ABI marks a datagram send,
    unless `datagrams` is False; a receiver blocks until there is something and takes
    all there is, woken once each time. Returns what it found each time it woke.
    (CPU placement off: the hand-off, not where threads run, is the subject.)"""
    sched = Scheduler(virtual=virtual, cpus="all")
    queue: list[int] = []
    taken: list[list[int]] = []

    def receiver(task: GuestTask) -> None:
        got = 0
        while got < items:
            with sched.host_call_lock, sched.atomic():
                sched.block(task, lambda: bool(queue), None)
                batch = list(queue)
                queue.clear()
            taken.append(batch)
            got += len(batch)

    def sender(task: GuestTask) -> None:
        for i in range(items):
            until = time.monotonic_ns() + compute_ns
            while time.monotonic_ns() < until:
                pass
            with sched.host_call_lock, sched.atomic():
                queue.append(i)
                task.sent_datagram = datagrams
                sched.wake()
            sched.charge_host_call(task, 0, 0, 1_000, time.monotonic_ns())

    recv_task = sched.spawn("receiver", receiver)
    if virtual:
        assert sched.run(until=lambda: recv_task.state.value == "blocked")
    else:
        _until_blocked(sched, [recv_task])
    sched.spawn("sender", sender)
    assert sched.run(timeout_s=60)
    assert [i for batch in taken for i in batch] == list(range(items))
    assert recv_task.wakeups == len(taken)
    return taken


@pytest.mark.parametrize("virtual", [False, True], ids=["real", "virtual"])
def test_a_woken_task_runs_until_it_blocks_before_its_waker_goes_on(virtual: bool) -> None:
    """The sender computes between its calls: the receiver takes each item alone.

    With the hand-off the receiver takes every item before the sender's next
    call (it runs until it blocks again); without it the sender re-takes the
    lock at once (real time) or runs on until it blocks or is preempted
    (virtual time) and the receiver finds items in batches. Real time has a
    margin for a loaded machine (the hand-off waits at most HANDOFF_MAX_S per
    call); virtual time is exact.
    """
    items = 200
    taken = _send_items(virtual, items, compute_ns=0 if virtual else 4 * HANDOFF_HOLD_GAP_NS)
    singles = sum(1 for batch in taken if len(batch) == 1)
    assert singles >= (items if virtual else 0.9 * items), f"{singles} of {items} one by one"


def test_a_burst_of_calls_hands_its_woken_task_over_in_bounded_batches() -> None:
    """Real time: calls back to back (a flood) hold the woken receiver for a while.

    After the first hand-off each woken task waits until the sender's burst
    ends or HANDOFF_HOLD_CALLS of its calls passed, so the receiver finds the
    items in batches — never more than that many, so its socket buffer (256
    small datagrams by Linux's accounting) cannot overflow — and is woken once
    per batch.
    """
    items = 400
    taken = _send_items(False, items, compute_ns=0)
    sizes = [len(batch) for batch in taken]
    assert max(sizes) <= HANDOFF_HOLD_CALLS + 1, sizes
    assert len(taken) < items / 4, f"{len(taken)} wake-ups for {items} items: no batching"


def test_a_burst_of_stream_writes_is_still_handed_over_one_by_one() -> None:
    """Real time: only datagrams are held; a burst of other calls hands over each time."""
    items = 200
    taken = _send_items(False, items, compute_ns=0, datagrams=False)
    singles = sum(1 for batch in taken if len(batch) == 1)
    assert singles >= 0.9 * items, f"{singles} of {items} one by one"


@pytest.mark.parametrize("virtual", [False, True], ids=["real", "virtual"])
def test_a_stack_driver_wakes_re_check_only_the_tasks_of_its_key(virtual: bool) -> None:
    """`driver_for(key).wake()` looks only at tasks spawned with that key (and keyless ones)."""
    sched = Scheduler(virtual=virtual)
    checks = {"a": 0, "b": 0, "any": 0}
    boxes: dict[str, list[int]] = {"a": [], "b": [], "any": []}

    def body(key: str) -> Callable[[GuestTask], None]:
        def ready() -> bool:
            checks[key] += 1
            return bool(boxes[key])

        def run(task: GuestTask) -> None:
            with sched.host_call_lock:
                sched.block(task, ready, None)
        return run

    tasks = {key: sched.spawn(key, body(key), wake_key=None if key == "any" else key)
             for key in ("a", "b", "any")}
    if virtual:
        assert sched.run(until=lambda: all(t.state.value == "blocked" for t in tasks.values()))
    else:
        _until_blocked(sched, list(tasks.values()))
    before = dict(checks)
    with sched.lock:
        boxes["a"].append(1)
        sched.driver_for("a").wake()
    if virtual:
        assert sched.run(until=lambda: tasks["a"].done)
    else:
        assert sched.run(until=lambda: tasks["a"].done, timeout_s=30)
    assert checks["b"] == before["b"]  # host b's guest was not even looked at
    assert checks["any"] > before["any"]  # a task without a key may wait for anything
    assert [t.wakeups for t in tasks.values()] == [1, 0, 0]
    with sched.lock:
        boxes["b"].append(1)
        sched.wake()  # a plain wake-up still reaches everyone
    if virtual:
        assert sched.run(until=lambda: tasks["b"].done)
    else:
        assert sched.run(until=lambda: tasks["b"].done, timeout_s=30)
    assert [t.wakeups for t in tasks.values()] == [1, 1, 0]
    sched.stop_all()


def test_virtual_run_for_inside_a_task_lets_the_others_run_meanwhile() -> None:
    """A scripted task that calls run_for (as tests' attackers do) nests a run in its thread."""
    sched = Scheduler(virtual=True)
    log: list[tuple[str, int]] = []

    def ticker(task: GuestTask) -> None:
        for _ in range(5):
            sched.block(task, lambda: False, sched.monotonic_ns() + 10)
            log.append(("tick", sched.monotonic_ns()))

    def pauser(task: GuestTask) -> None:
        sched.run_for(25)  # the network (and the ticker) run meanwhile
        log.append(("pauser", sched.monotonic_ns()))

    sched.spawn("ticker", ticker)
    sched.spawn("pauser", pauser)
    assert sched.run()
    assert log == [("tick", 10), ("tick", 20), ("pauser", 25), ("tick", 30), ("tick", 40),
                   ("tick", 50)]
    assert sched.current is None and all(t.done for t in sched.tasks)


# --- timers a guest's turn arms (see "Timers in real time") ------------------------

def _guest_call(sched: Scheduler, task: GuestTask, body: Callable[[], object],
                right_after: bool) -> None:
    """One host call of a wasm guest, as the ABI bridge makes it: a network turn, then
    `charge_host_call`. `right_after`: the call came right after the guest's previous
    one (no compute between them, so it is taken to call again soon); else the guest
    computed for a millisecond first (more than CALLS_AGAIN_GAP_NS)."""
    if not right_after:
        time.sleep(0.001)
    start = time.monotonic_ns()
    with sched.host_call_lock, sched.atomic():
        body()
    end = time.monotonic_ns()
    wall = end - task.resumed_ns - 1 if right_after else end - start
    sched.charge_host_call(task, 0, 0, wall, end)


def _loop_running(sched: Scheduler, stop: list[int]) -> threading.Thread:
    """The timer loop, in a thread of its own, until `stop` is non-empty; returns once
    the loop sleeps until the minute-away timer armed first."""
    sched.call_later(60_000_000_000, lambda: None)
    thread = threading.Thread(target=lambda: sched.run(until=lambda: bool(stop), timeout_s=60))
    thread.start()
    for _ in range(5000):
        with sched.lock:
            if sched._loops:
                return thread
        time.sleep(0.001)
    raise AssertionError("the loop never slept")


@pytest.fixture()
def quiet_ticker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wasm runtime's epoch ticker (running if a guest ran in this process) leaves
    these schedulers' timers alone: the tests say when the ticker comes by."""
    import vnet.guest.runtime

    monkeypatch.setattr(vnet.guest.runtime, "kick_overdue_loops", lambda: None)


def _guest_task(sched: Scheduler, script: Callable[[GuestTask], None]) -> GuestTask:
    def body(task: GuestTask) -> None:
        _guest_call(sched, task, lambda: None, right_after=False)  # a first call: a wasm guest
        script(task)

    return sched.spawn("guest", body)


@pytest.mark.usefixtures("quiet_ticker")
def test_a_timer_a_guest_arms_and_cancels_in_calls_back_to_back_never_wakes_the_loop() -> None:
    """A guest's call arms a timer sooner than the loop's deadline, its next call
    (right after) cancels it: the loop sleeps through both (no wake to sleep shorter,
    none for the timer gone), and the timer never runs."""
    sched = Scheduler(virtual=False, cpus="all")
    stop: list[int] = []
    loop = _loop_running(sched, stop)
    before = sched.loop_wakeups
    fired: list[int] = []
    timers: list[object] = []

    def script(task: GuestTask) -> None:
        _guest_call(sched, task, lambda: timers.append(
            sched.call_later(50_000_000, lambda: fired.append(1))), right_after=True)
        _guest_call(sched, task, lambda: timers[0].cancel(), right_after=True)  # type: ignore[attr-defined]

    task = _guest_task(sched, script)
    task.thread.join(10)
    time.sleep(0.1)  # past the cancelled timer's time
    assert sched.loop_wakeups == before
    stop.append(1)
    sched.notify()
    loop.join(10)
    assert fired == []


@pytest.mark.usefixtures("quiet_ticker")
def test_a_timer_a_guest_arms_runs_on_time_when_the_guest_then_computes() -> None:
    """The guest computed before the call that armed it: it is taken to compute next, so
    the loop is woken for the timer as its call ends, and the timer runs."""
    sched = Scheduler(virtual=False, cpus="all")
    stop: list[int] = []
    loop = _loop_running(sched, stop)
    before = sched.loop_wakeups
    fired = threading.Event()
    seen: list[int] = []

    def script(task: GuestTask) -> None:
        def arm() -> None:
            sched.call_later(1_000_000, fired.set)
            seen.append(sched.loop_wakeups)  # inside the turn: the loop not woken yet

        _guest_call(sched, task, arm, right_after=False)
        fired.wait(10)  # "computes": no host call until the timer ran

    task = _guest_task(sched, script)
    task.thread.join(20)
    assert fired.is_set()
    assert seen == [before]
    assert sched.loop_wakeups == before + 1  # once, as the call ended
    stop.append(1)
    sched.notify()
    loop.join(10)


@pytest.mark.usefixtures("quiet_ticker")
def test_a_pending_timer_runs_in_the_guests_thread_or_the_ticker_wakes_the_loop() -> None:
    """Calling back to back, the guest looks at the timer after each call: once it is due its
    own thread runs it (no loop wake-up). If the guest computes instead of calling
    again, the epoch ticker's `kick_overdue_loops` wakes the loop for it."""
    sched = Scheduler(virtual=False, cpus="all")
    stop: list[int] = []
    loop = _loop_running(sched, stop)
    before = sched.loop_wakeups
    ran_in: list[str] = []
    second = threading.Event()

    def script(task: GuestTask) -> None:
        _guest_call(sched, task, lambda: sched.call_later(
            2_000_000, lambda: ran_in.append(threading.current_thread().name)), right_after=True)
        time.sleep(0.01)  # past its time, then a call: it runs here
        _guest_call(sched, task, lambda: None, right_after=True)
        _guest_call(sched, task, lambda: sched.call_later(2_000_000, second.set), right_after=True)
        # computes from now on: only the ticker can get the timer run (here it comes)
        time.sleep(0.01)
        kick_overdue_loops()
        second.wait(10)

    task = _guest_task(sched, script)
    task.thread.join(20)
    assert ran_in == [task.thread.name]
    assert second.is_set()
    assert sched.loop_wakeups == before + 1  # the ticker's, for the second timer only
    stop.append(1)
    sched.notify()
    loop.join(10)


@pytest.mark.usefixtures("quiet_ticker")
def test_a_guest_that_blocks_with_a_timer_pending_wakes_the_loop_for_it() -> None:
    """Nobody else would look at the timer: blocking hands it to the loop."""
    sched = Scheduler(virtual=False, cpus="all")
    stop: list[int] = []
    loop = _loop_running(sched, stop)
    fired = threading.Event()

    def ring() -> None:  # a timer callback: the lock is held
        fired.set()
        sched.wake()

    def script(task: GuestTask) -> None:
        _guest_call(sched, task, lambda: sched.call_later(1_000_000, ring), right_after=True)
        with sched.host_call_lock, sched.atomic():
            sched.block(task, fired.is_set, None)  # woken by its own timer, run by the loop

    task = _guest_task(sched, script)
    task.thread.join(20)
    assert fired.is_set() and task.done
    stop.append(1)
    sched.notify()
    loop.join(10)


@pytest.mark.parametrize("virtual", [False, True], ids=["real", "virtual"])
def test_run_until_done_returns_when_that_task_ends_and_not_before(virtual: bool) -> None:
    """`run(until_done=task)`: the loop returns once that task is done, while another
    task stays blocked; the task's end wakes a sleeping real-time loop at once."""
    sched = Scheduler(virtual=virtual)
    boxes, (stays, ends) = _blocked_on_boxes(sched, 2)
    if virtual:
        assert sched.run(until=lambda: all(t.state.value == "blocked" for t in (stays, ends)))
    else:
        _until_blocked(sched, [stays, ends])
    assert not sched.run(until_done=ends, timeout_s=0.05) or virtual
    assert not ends.done
    if not virtual:
        sched.call_later(60_000_000_000, lambda: None)  # the loop sleeps a minute
        threading.Timer(0.05, lambda: (boxes[1].append(1), sched.notify())).start()
    else:
        with sched.lock:
            boxes[1].append(1)
        sched.notify()
    assert sched.run(until_done=ends, timeout_s=30)
    assert ends.done and not stays.done
