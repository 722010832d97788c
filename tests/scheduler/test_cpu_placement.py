"""The network's threads share one CPU; a guest that only computes is let out to all.

What a user sees (vnet.cpu_placement): with the default policy
(`VNET_CPUS=one`) every guest thread, and the thread running the scheduler's
loop while it runs it, may use exactly one CPU — the same one — under
SCHED_BATCH; the loop's thread gets its CPUs and policy back when `run()`
returns. A wasm guest computing without host calls may use every CPU the
process may use, and is back on the network's CPU once it makes a host call.
`VNET_CPUS=all` leaves every thread where the kernel puts it; a bad value is a
clear error. Two processes running vnet at once claim different CPUs, and the
network moves when other work crowds its CPU while another is idle.

Checked through the kernel's view of each thread (sched_getaffinity), with a
guest compiled from C. Needs a process allowed on two CPUs or more (skipped
otherwise: there is nothing to place). About 3 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vnet import cpu_placement
from vnet.cpu_placement import CpuPlacement, parse_policy, placement_move
from vnet.network import Network
from vnet.scheduler import FRAMES_PER_TURN, GuestTask, Scheduler

HERE = Path(__file__).parent
ALL_CPUS = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()

pytestmark = pytest.mark.skipif(len(ALL_CPUS) < 2, reason="the process may use only one CPU")


def _affinity(tid: int) -> frozenset[int]:
    return frozenset(os.sched_getaffinity(tid))


# The placement tests name their CPU: under the default policy a watcher may move the
# network (or let it out to every CPU) when other work crowds the machine.
NETWORK_CPU = str(max(ALL_CPUS, default=0))


def test_guest_threads_and_the_loop_share_one_cpu_and_the_loop_gets_its_cpus_back() -> None:
    sched = Scheduler(cpus=NETWORK_CPU)
    cpu = sched.placement.cpu
    assert cpu == int(NETWORK_CPU)
    seen: dict[str, tuple[frozenset[int], int]] = {}

    def placed() -> tuple[frozenset[int], int]:
        return frozenset(os.sched_getaffinity(0)), os.sched_getscheduler(0)

    def task_body(name: str) -> Callable[[object], None]:
        def body(_task: object) -> None:
            seen[name] = placed()
        return body

    sched.spawn("one", task_body("one"))
    sched.spawn("two", task_body("two"))

    def until() -> bool:
        seen.setdefault("loop", placed())
        return len(seen) == 3

    before = placed()
    assert sched.run(until=until, timeout_s=10)
    # one CPU, and SCHED_BATCH: a woken thread does not preempt the one that woke it
    network = ({cpu}, os.SCHED_BATCH)
    assert seen == {"one": network, "two": network, "loop": network}
    assert placed() == before


def test_all_leaves_threads_where_the_kernel_puts_them() -> None:
    sched = Scheduler(cpus="all")
    seen: list[frozenset[int]] = []
    sched.spawn("t", lambda _task: seen.append(frozenset(os.sched_getaffinity(0))))
    assert sched.run(timeout_s=10)
    assert sched.placement.cpu is None
    assert seen == [frozenset(os.sched_getaffinity(0))]


@pytest.mark.parametrize("spec", ["two", "-1", "9999"])
def test_a_bad_policy_is_a_clear_error(spec: str) -> None:
    with pytest.raises(ValueError, match="VNET_CPUS"):
        Scheduler(cpus=spec)
    env = dict(os.environ, VNET_CPUS=spec)
    out = subprocess.run([sys.executable, "-c", "import vnet.network as n; n.Network()"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "VNET_CPUS" in out.stderr


def test_a_computing_guest_may_use_every_cpu_until_its_next_host_call(
        build_guest: Callable[..., Path]) -> None:
    wasm = build_guest(HERE / "c" / "compute_then_sleep.c", "-O2")
    with Network(cpus=NETWORK_CPU) as net:
        cpu = net.scheduler.placement.cpu
        host = net.host("h")
        proc = host.run(wasm, "300", "30")
        net.scheduler.run(until=lambda: proc.guest.task is not None
                          and proc.guest.task.thread.native_id is not None, timeout_s=30)
        tid = proc.guest.task.thread.native_id
        assert tid is not None
        samples: list[tuple[bool, frozenset[int]]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                computed = "computed" in proc.stdout
                try:
                    samples.append((computed, _affinity(tid)))
                except OSError:
                    return
                time.sleep(0.001)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            net.scheduler.run(until=lambda: "computed" in proc.stdout, timeout_s=60)
            assert "computed" in proc.stdout, proc.stdout + proc.stderr
            # asleep now (a blocking host call): back on the network's CPU
            net.scheduler.run(until=lambda: bool(samples) and samples[-1] == (True, {cpu}),
                              timeout_s=10)
        finally:
            stop.set()
            sampler.join()
            proc.kill()
    while_computing = {cpus for computed, cpus in samples if not computed}
    after = [cpus for computed, cpus in samples if computed]
    assert ALL_CPUS in while_computing, while_computing
    assert after and after[-1] == {cpu}, after[-5:]


def test_a_guest_yielding_to_the_timer_loop_keeps_the_network_cpu() -> None:
    """A guest whose turn runs out (FRAMES_PER_TURN frames sent) while a timer is due
    and no other guest wants the network lets the loop go but stays on the network's
    CPU; one that runs ahead of a guest that wants the network computes elsewhere
    until it next blocks (vnet.scheduler, "Fairness in real time")."""
    sched = Scheduler(cpus=NETWORK_CPU)
    cpu = sched.placement.cpu
    sched.call_at(0, lambda: None)  # due at once; no loop runs it: the turn ends behind it
    seen: dict[str, tuple[frozenset[int], bool, int]] = {}
    contenders: list[GuestTask] = []
    finished = threading.Event()

    def use_up_a_turn(task: GuestTask) -> tuple[frozenset[int], bool, int]:
        now = time.monotonic_ns()
        for other in contenders:
            other.last_call_end_ns = now  # it made a host call just now: it wants the network
        sched.charge_real_call(task, FRAMES_PER_TURN, 1_000, now)
        return frozenset(os.sched_getaffinity(0)), task.crowding, task.charge_preemptions

    def alone(task: GuestTask) -> None:
        seen["alone"] = use_up_a_turn(task)

    def contender(_task: GuestTask) -> None:
        finished.wait(10)

    def ahead(task: GuestTask) -> None:
        seen["ahead"] = use_up_a_turn(task)
        finished.set()

    try:
        sched.spawn("alone", alone).thread.join(10)
        contenders.append(sched.spawn("contender", contender))
        sched.spawn("ahead", ahead).thread.join(10)
    finally:
        finished.set()
        sched.stop_all()
    assert seen["alone"] == ({cpu}, False, 1)
    assert seen["ahead"] == (ALL_CPUS, True, 1)


def test_two_processes_claim_different_cpus(tmp_path: Path) -> None:
    script = (
        "import sys, pathlib\n"
        "from vnet import cpu_placement as p\n"
        f"p._lock_dir = lambda: pathlib.Path({str(tmp_path)!r})\n"
        "print(p.CpuPlacement('one').cpu, flush=True)\n"
        "sys.stdin.read()\n"
    )
    first = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    second = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and second.stdout is not None
        cpus = {int(first.stdout.readline()), int(second.stdout.readline())}
    finally:
        for proc in (first, second):
            proc.communicate("", timeout=30)
    assert len(cpus) == 2 and cpus <= ALL_CPUS


def test_the_network_moves_off_a_crowded_cpu_to_an_idle_one() -> None:
    # the watcher's decision, on the shares it reads from /proc/stat
    assert placement_move(0, True, {0: 0.95, 1: 0.10}, ours=0.40) == 1  # others take 55 %
    assert placement_move(0, True, {0: 0.95, 1: 0.10}, ours=0.90) is False  # our own work
    assert placement_move(1, True, {0: 0.05, 1: 0.20}, ours=0.0) is False  # not crowded
    # every CPU busy: let the threads out to all, and pin again once one is idle
    assert placement_move(0, True, {0: 0.95, 1: 0.80}, ours=0.10) is None
    assert placement_move(0, False, {0: 0.90, 1: 0.95}, ours=0.8) is False
    assert placement_move(0, False, {0: 0.60, 1: 0.30}, ours=0.6) == 1
    # and the move itself takes every pinned thread along
    placement = CpuPlacement(NETWORK_CPU)  # not moved by a watcher meanwhile
    network = placement.network
    assert network is not None
    here = network.cpu
    elsewhere = min(ALL_CPUS - {here})
    pinned = threading.Event()
    done = threading.Event()
    tids: list[int] = []

    def body() -> None:
        placement.pin()
        tids.append(threading.get_native_id())
        pinned.set()
        done.wait(10)
        placement.leave()

    worker = threading.Thread(target=body)
    worker.start()
    try:
        assert pinned.wait(10)
        assert _affinity(tids[0]) == {here}
        network.move_to(elsewhere)
        assert _affinity(tids[0]) == {elsewhere}
        assert placement.cpu == elsewhere
        assert os.sched_getscheduler(tids[0]) == os.SCHED_BATCH
        network.move_to(None)  # every CPU busy: out to all of them, preempting again
        assert _affinity(tids[0]) == ALL_CPUS and placement.cpu == elsewhere
        assert os.sched_getscheduler(tids[0]) == os.SCHED_OTHER
        network.move_to(elsewhere)
        assert os.sched_getscheduler(tids[0]) == os.SCHED_BATCH
    finally:
        network.move_to(here)
        done.set()
        worker.join()


def test_policy_names() -> None:
    assert parse_policy("ONE") == "one" and parse_policy(" all ") == "all"
    assert parse_policy("1") == "1"
    assert cpu_placement.ENV == "VNET_CPUS"
