"""Fair scheduling with real wasm guests: targeted wake-ups, the receiver keeps up, reruns.

* Eight guests (examples/bulk.c `udp-recv`) block in poll() on sockets of
  their own; a datagram to one of them wakes that guest once and no other
  (`GuestTask.wakeups`), in real and in virtual time.
* In real time an unpaced sender (`bulk udp-send`: 3,000 64-byte datagrams
  as fast as it can) loses at most 2 % to a receiver on the next host: the
  woken receiver runs until it blocks again before the sender goes on, so
  its socket buffer never overflows (before: ~60 % lost). A count, not a clock.
* The idle-heavy ring of tests/scheduler/idle_heavy.py in virtual time: the
  same seed gives byte-identical guest output and pcaps, and each guest is
  woken exactly as often in a ring of 12 as in a ring of 4 (its own datagram
  and its own deadline, nothing else).

About 15 s of CPU.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.sched_support import GuestLab
from tests.scheduler import idle_heavy
from vnet.scheduler import TaskState

RECEIVERS = 8


def _wait_blocked(lab: GuestLab, names: list[str]) -> None:
    tasks = [lab.guests[n].guest.task for n in names]
    if lab.sched.virtual:
        assert lab.sched.run(until=lambda: all(
            t is not None and t.state is TaskState.BLOCKED for t in tasks))
        return
    for _ in range(30_000):
        if all(t is not None and t.state is TaskState.BLOCKED for t in tasks):
            return
        time.sleep(0.001)
    raise AssertionError("receivers never blocked")


@pytest.mark.parametrize("virtual", [False, True], ids=["real", "virtual"])
def test_a_datagram_to_one_of_many_blocked_guests_wakes_only_that_guest(
    example_wasm: Callable[[str], Path], virtual: bool,
) -> None:
    bulk = example_wasm("bulk")
    lab = GuestLab(virtual=virtual, hosts=2, latency_ns=100_000)
    try:
        names = [f"r{i}" for i in range(RECEIVERS)]
        for i, name in enumerate(names):
            lab.start(name, "h1", bulk, "udp-recv", str(6000 + i), "1")
        for name in names:
            lab.run_until_output(name, "listening")
        _wait_blocked(lab, names)
        before = {n: lab.guests[n].guest.task.wakeups for n in names}  # type: ignore[union-attr]
        sender = lab.hosts["h2"].socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b"just for r3", ("10.0.0.1", 6003))
        assert lab.run_until_exited(["r3"], timeout_s=60)
        if not virtual:
            time.sleep(0.05)  # anyone wrongly woken would have had time to show it
        after = {n: lab.guests[n].guest.task.wakeups for n in names}  # type: ignore[union-attr]
        woken = {n: after[n] - before[n] for n in names}
        assert woken == {n: 1 if n == "r3" else 0 for n in names}
        assert "received 1 datagrams" in lab.guests["r3"].text
        assert [lab.guests[n].done for n in names] == [n == "r3" for n in names]
    finally:
        lab.close()


def test_an_unpaced_udp_sender_does_not_overrun_the_receiver_in_real_time(
    example_wasm: Callable[[str], Path],
) -> None:
    bulk = example_wasm("bulk")
    count = 3000
    lab = GuestLab(virtual=False, hosts=2, latency_ns=0)
    try:
        lab.start("recv", "h1", bulk, "udp-recv", "5200", str(count), "1000")
        lab.run_until_output("recv", "listening")
        lab.start("send", "h2", bulk, "udp-send", "10.0.0.1", "5200", "64", str(count))
        assert lab.run_until_exited(["send", "recv"], timeout_s=120)
        sent = re.search(r"sent (\d+) datagrams of 64 bytes \((\d+) failed\)",
                         lab.guests["send"].text)
        got = re.search(r"received (\d+) datagrams", lab.guests["recv"].text)
        assert sent and got, (lab.guests["send"].text, lab.guests["recv"].text)
        assert int(sent.group(1)) == count and int(sent.group(2)) == 0
        received = int(got.group(1))
        print(f"\nunpaced UDP, real time: {received} of {count} delivered "
              f"({100 * (count - received) / count:.2f} % lost)")
        assert received >= 0.98 * count
    finally:
        lab.close()


@pytest.fixture(scope="module")
def idle_udp(build_guest: Callable[..., Path]) -> Path:
    return build_guest(idle_heavy.SOURCE, "-O2")


def test_the_idle_ring_reruns_byte_identical_and_wakes_each_guest_only_for_itself(
    idle_udp: Path, tmp_path: Path,
) -> None:
    seconds = 5
    small = idle_heavy.run(idle_udp, hosts=4, seconds=seconds, seed=3)
    first = idle_heavy.run(idle_udp, hosts=12, seconds=seconds, seed=3,
                           capture=tmp_path / "first.pcapng")
    again = idle_heavy.run(idle_udp, hosts=12, seconds=seconds, seed=3,
                           capture=tmp_path / "again.pcapng")
    expected = f"idle_udp: sent {seconds} received {seconds}\n".encode()
    assert first.outputs == [expected] * 12
    assert again.outputs == first.outputs and again.simulated_ns == first.simulated_ns
    assert (tmp_path / "first.pcapng").read_bytes() == (tmp_path / "again.pcapng").read_bytes()
    # each guest: woken by its neighbour's datagram and by its own deadline, once a
    # second each (the first second may differ by ARP) — however many guests there are
    assert set(first.wakeups) == set(small.wakeups)
    assert len(set(first.wakeups)) == 1
    assert 2 * seconds - 2 <= first.wakeups[0] <= 2 * seconds + 2
