"""TcpTimerQueue (stack/tcp_timer_queue.py): a TCP layer's connection timers behind one
driver timer fire exactly as driver timers of their own would: at their time, ties in
the order armed, each one's deferred work done before the next runs, cancelled ones
never; and however many are armed, the driver holds at most one timer for them."""

from __future__ import annotations

from stack.driver import ManualDriver
from stack.tcp_timer_queue import TcpTimerQueue
from tests.stack.tcp_harness import MS, SEC, Dialogue


def test_entries_fire_at_their_times_in_arm_order_and_cancelled_ones_never() -> None:
    driver = ManualDriver()
    queue = TcpTimerQueue(driver)
    fired: list[tuple[str, int]] = []

    def at(name: str, when: int) -> object:
        return queue.call_at(when, lambda: fired.append((name, driver.now)))

    at("late", 300)
    at("tie-1", 200)
    dropped = at("cancelled", 100)
    at("tie-2", 200)
    at("early", 50)
    dropped.cancel()  # type: ignore[attr-defined]
    assert driver.pending_timers() == 1
    driver.run_until(1000)
    assert fired == [("early", 50), ("tie-1", 200), ("tie-2", 200), ("late", 300)]
    assert driver.pending_timers() == 0 and queue.pending() == 0


def test_ties_run_in_arm_order_whether_armed_in_time_order_or_not() -> None:
    """Entries armed in time order and out of it (kept apart inside the queue) still run
    by (time, arming order), also across a cancellation at the head."""
    driver = ManualDriver()
    queue = TcpTimerQueue(driver)
    fired: list[str] = []

    def at(name: str, when: int) -> object:
        return queue.call_at(when, lambda: fired.append(name))

    at("a@100", 100)
    at("b@200", 200)
    at("c@100", 100)  # earlier than the last armed
    at("d@200", 200)
    gone = at("e@50", 50)
    at("f@300", 300)
    at("g@200", 200)
    gone.cancel()  # type: ignore[attr-defined]
    driver.run_until(1000)
    assert fired == ["a@100", "c@100", "b@200", "d@200", "g@200", "f@300"]
    assert driver.pending_timers() == 0 and queue.pending() == 0


def test_work_an_entry_defers_runs_before_the_next_entry_due_at_the_same_time() -> None:
    driver = ManualDriver()
    queue = TcpTimerQueue(driver)
    events: list[str] = []

    def first() -> None:
        events.append("first")
        driver.defer(lambda: events.append("frame sent by first"))

    queue.call_at(10, first)
    queue.call_at(10, lambda: events.append("second"))
    driver.run_until(10)
    assert events == ["first", "frame sent by first", "second"]


def test_an_entry_armed_while_another_fires_keeps_its_time() -> None:
    driver = ManualDriver()
    queue = TcpTimerQueue(driver)
    fired: list[int] = []
    queue.call_at(100, lambda: queue.call_at(150, lambda: fired.append(driver.now)))
    queue.call_at(400, lambda: fired.append(driver.now))
    driver.run_until(1000)
    assert fired == [150, 400]


def test_many_connections_leave_at_most_one_driver_timer_and_keep_their_syn_timing() -> None:
    """Twenty connects to a silent peer: each SYN is retransmitted after exactly 1 s, and
    the host's driver holds one timer for all twenty retransmission timers."""
    d = Dialogue()
    host_timers = d.driver.pending_timers()  # the host's own (neighbours, membership)
    for _ in range(20):
        d.connect()
        d.advance(1 * MS)
    first = [s.seq for s in d.sent() if s.flags == "S"]
    assert len(first) == 20
    assert d.driver.pending_timers() == host_timers + 1
    d.advance(SEC - 20 * MS)  # the first SYN's timer is due 1 s after it was sent
    assert [s.seq for s in d.sent() if s.flags == "S"] == first[:1]
    d.advance(19 * MS)
    assert [s.seq for s in d.sent() if s.flags == "S"] == first[1:]
    assert d.driver.pending_timers() <= host_timers + 1


def test_thousands_of_cancelled_entries_leave_the_survivors_in_order_at_their_times() -> None:
    """As a busy listener does (six of every connection's seven timers cancelled): the
    cancelled entries are purged in passes along the way, which must change nothing of
    when or in which order the others run, and none of them may run."""
    driver = ManualDriver()
    queue = TcpTimerQueue(driver)
    fired: list[tuple[int, int]] = []
    expected: list[tuple[int, int]] = []
    for i in range(5000):
        when = 10_000 - (i * 7919) % 9973  # out of time order, so most land in the heap
        entry = queue.call_at(when, lambda i=i: fired.append((i, driver.now)))
        if i % 7 == 0:
            expected.append((i, when))
        else:
            entry.cancel()
    assert queue.pending() == len(expected)
    driver.run_until(20_000)
    expected.sort(key=lambda item: (item[1], item[0]))  # by time, then arming order
    assert fired == expected
    assert driver.pending_timers() == 0 and queue.pending() == 0
