"""Busy-waiting and spinning guests cannot freeze virtual time or a run.

Attack: a guest that waits by spinning instead of blocking — on
`clock_gettime`, on a non-blocking `recv` that fails with EAGAIN, on
`poll(fds, n, 0)`, on `sched_yield` — or that computes without any host call.
Before vnet charged host calls virtual time, such a guest was never preempted
in virtual time: the clock stood still, the datagram it waited for never came,
the victim beside it never ran, and even a topology's `duration` never ended
the run.

Containment asserted here, on what a user sees: each busy-waiting guest ends
having seen the time or the datagram it waited for; a TCP transfer between two
other hosts beside it completes whole; a run with a busy-waiting guest is
byte-identical (pcap and output) across two runs with the same seed; and a
`duration` ends a run of guests that spin forever, through `vnet.sim.runner.run` and
the `vnet sim` command (status 1, "duration reached", the spinners "stopped at
the end"). The charge itself is documented in vnet/scheduler.py ("Host calls
cost virtual time"). About 15 s of CPU on an idle machine.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.sched_support import GuestLab, hostile_source
from vnet.scheduler import HOST_CALL_CHARGE_NS
from vnet.sim.runner import run
from vnet.sim.topology import load

MS = 1_000_000
VICTIM_MIB = "0.5"
DATAGRAM_AT_MS = 60


@pytest.fixture(scope="module")
def busywait(build_guest: Callable[..., Path]) -> Path:
    return build_guest(hostile_source("busywait"), "-O2")


@pytest.fixture(scope="module")
def bulk(example_wasm: Callable[[str], Path]) -> Path:
    return example_wasm("bulk")


def _busy_wait_beside_a_victim(busywait: Path, bulk: Path, mode: str, seed: int = 1,
                               pcap: Path | None = None) -> GuestLab:
    """h1 busy-waits (mode); h2 sends it a datagram at 60 ms; h2 -> h3 is a TCP transfer."""
    lab = GuestLab(virtual=True, hosts=3, seed=seed)
    if pcap is not None:
        lab.net.capture(pcap)
    if mode in ("clock", "yield"):
        lab.start("spinner", "h1", busywait, mode, "100")
    else:
        lab.start("spinner", "h1", busywait, mode, "7000")
        lab.start("udp", "h2", bulk, "udp-send", "10.0.0.1", "7000", "100", "1",
                  at_ns=DATAGRAM_AT_MS * MS)
    lab.start("victim-recv", "h3", bulk, "recv", "5001")
    lab.start("victim-send", "h2", bulk, "send", "10.0.0.3", "5001", VICTIM_MIB,
              at_ns=10 * MS)
    finished = lab.run_until_exited(["spinner", "victim-recv", "victim-send"],
                                    limit_ns=30_000 * MS)
    if pcap is not None:
        for cap in lab.net.captures:
            cap.close()
    assert finished, {n: g.text for n, g in lab.guests.items()}
    return lab


def _checksums(text: str) -> list[str]:
    return re.findall(r"fnv1a64=([0-9a-f]{16})", text)


@pytest.mark.parametrize("mode", ["clock", "yield", "recv", "poll"])
def test_busy_waiting_guest_finishes_and_the_victim_beside_it_completes(
    busywait: Path, bulk: Path, mode: str,
) -> None:
    lab = _busy_wait_beside_a_victim(busywait, bulk, mode)
    try:
        spinner = lab.guests["spinner"]
        assert spinner.exit_code == 0, spinner.text
        if mode in ("clock", "yield"):
            found = re.search(r"waited (\d+) ms in (\d+) calls", spinner.text)
            assert found, spinner.text
            waited_ms, calls = int(found[1]), int(found[2])
            assert 100 <= waited_ms <= 102
            # Time moved because the calls were charged: about 1 µs per clock_gettime.
            assert calls * HOST_CALL_CHARGE_NS <= 101 * MS
            assert calls >= 100 * MS // (4 * HOST_CALL_CHARGE_NS)
            assert spinner.took_ns >= 100 * MS
        else:
            found = re.search(r"got (\d+) bytes after (\d+) ms and (\d+) calls", spinner.text)
            assert found, spinner.text
            assert int(found[1]) == 100  # the datagram it waited for arrived
            assert DATAGRAM_AT_MS - 1 <= int(found[2]) <= DATAGRAM_AT_MS + 2
            assert int(found[3]) > 1000  # it really spun: a thousand EAGAINs / empty polls
        sent = _checksums(lab.guests["victim-send"].text)
        received = _checksums(lab.guests["victim-recv"].text)
        assert lab.guests["victim-send"].exit_code == 0
        assert lab.guests["victim-recv"].exit_code == 0
        assert sent and sent == received  # the whole transfer, byte for byte
        assert lab.sched.current is None and spinner.guest.task is not None
        assert spinner.guest.task.charge_preemptions > 0
    finally:
        lab.close()


def test_busy_waiting_run_is_byte_identical_with_the_same_seed(
    busywait: Path, bulk: Path, tmp_path: Path,
) -> None:
    runs = []
    for attempt in ("a", "b"):
        pcap = tmp_path / f"{attempt}.pcapng"
        lab = _busy_wait_beside_a_victim(busywait, bulk, "recv", seed=5, pcap=pcap)
        try:
            outputs = {name: (g.text, g.exited_ns) for name, g in lab.guests.items()}
            runs.append((pcap.read_bytes(), outputs, lab.sched.monotonic_ns()))
        finally:
            lab.close()
    assert len(runs[0][0]) > 10_000  # the transfer is in the capture
    assert runs[0] == runs[1]


SPIN_TOPOLOGY = """
[sim]
virtual_time = true
seed = 3
duration = "300ms"

[segments.lan]
latency = "100us"

[hosts.a]
[[hosts.a.nics]]
segment = "lan"
addresses = ["10.0.0.1/24"]
[[hosts.a.guests]]
name = "clock-spinner"
module = "busywait.wasm"
args = ["clock", "1000000000"]
[[hosts.a.guests]]
name = "poll-spinner"
module = "busywait.wasm"
args = ["poll", "7000"]

[hosts.b]
[[hosts.b.nics]]
segment = "lan"
addresses = ["10.0.0.2/24"]
[[hosts.b.guests]]
name = "compute-spinner"
module = "spin.wasm"
"""


@pytest.fixture(scope="module")
def spin_topology(tmp_path_factory: pytest.TempPathFactory, busywait: Path,
                  build_guest: Callable[..., Path]) -> Path:
    directory = tmp_path_factory.mktemp("spin")
    (directory / "busywait.wasm").write_bytes(busywait.read_bytes())
    (directory / "spin.wasm").write_bytes(build_guest("spin").read_bytes())
    topology = directory / "spin.toml"
    topology.write_text(SPIN_TOPOLOGY)
    return topology


def test_duration_ends_a_run_of_guests_that_spin_forever(spin_topology: Path) -> None:
    out = io.BytesIO()
    result = run(load(spin_topology), out=out)
    assert result.ended == "duration reached"
    assert result.elapsed_ns == 300 * MS
    assert {g.name: g.exit_code for g in result.guests} == {
        "a/clock-spinner": 137, "a/poll-spinner": 137, "b/compute-spinner": 137}
    assert not result.ok


def test_vnet_sim_with_a_duration_stops_spinning_guests_and_says_so(
    spin_topology: Path,
) -> None:
    done = subprocess.run([sys.executable, "-m", "vnet", "sim", str(spin_topology),
                           "--duration", "150ms"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "vnet sim: duration reached after 0.150 s" in done.stdout
    assert done.stdout.count("stopped at the end (client)") == 3
    assert "Traceback" not in done.stderr


def test_vnet_run_in_virtual_time_lets_a_clock_spinner_see_time_pass(busywait: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "vnet", "run", "--virtual-time", str(busywait),
                           "clock", "250"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = re.search(r"clock waited (\d+) ms in (\d+) calls", done.stdout)
    assert found and 250 <= int(found[1]) <= 251, done.stdout
