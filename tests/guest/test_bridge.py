"""The host-call bridge: one set of callbacks for every guest, and no containment lost.

vnet.guest.abi links each host function once per process and finds the calling
guest through its thread; read-only calls (getsockname, getpeername,
fcntl(F_GETFL), clock_gettime, …) skip the network lock. What a user sees:

- guests calling at once in real time each get their own answers and output;
- read-only calls still cost virtual time: a guest spinning on them sees the
  clock advance at the documented charge and ends, and a guest beside it runs;
- a guest spinning on read-only calls is stopped when the run is stopped;
- an idle guest costs at most 0.25 MiB of the process's RSS (issue 12);
- a callback reached from a thread that runs no guest traps instead of crashing.

The getsockname/getpeername answers after bind, connect and disconnect are
compared with Linux in tests/guest/test_sdk.py (sdk_all.c, `names_*` checks).
About 10 s of CPU.
"""

from __future__ import annotations

import ctypes
import gc
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from vnet.guest.abi import HOST_FUNCTIONS, _make_callback
from vnet.guest.runtime import KILLED_EXIT_CODE, Guest, GuestConfig, load_module
from vnet.network import Network
from vnet.scheduler import HOST_CALL_CHARGE_NS

MIB = 1024 * 1024
ROUND_CALLS = 4  # getsockname, getpeername, fcntl, clock_gettime: one namespin round


@pytest.fixture(scope="module")
def namespin(build_guest: Callable[..., Path]) -> Path:
    return build_guest("namespin")


def _start(net: Network, host_name: str, wasm: Path, args: list[str],
           out: bytearray) -> Guest:
    host = net.host(host_name)
    guest = Guest(net.scheduler, GuestConfig(module=str(wasm), args=args, host=host,
                                             stdout=out.extend, stderr=out.extend,
                                             name=host_name))
    guest.start()
    return guest


def test_guests_calling_at_once_each_get_their_own_answers(
        namespin: Path, example_wasm: Callable[[str], Path]) -> None:
    net = Network(virtual_time=False)
    ticker = example_wasm("ticker")
    outs = {f"g{i}": bytearray() for i in range(4)}
    guests = {name: _start(net, name, namespin if name in ("g0", "g1") else ticker,
                           ["namespin", "200"] if name in ("g0", "g1") else ["ticker", name, "4"],
                           out) for name, out in outs.items()}
    assert net.scheduler.run(until=lambda: all(g.done for g in guests.values()), timeout_s=60)
    for name in ("g0", "g1"):
        assert guests[name].exit_code == 0, outs[name]
        m = re.fullmatch(rb"namespin: \d+ rounds, name 127\.0\.0\.1:(\d+), peer port (\d+)\n",
                         bytes(outs[name]))
        assert m and m.group(1) == m.group(2), outs[name]  # connected to itself
    for name in ("g2", "g3"):
        assert guests[name].exit_code == 0, outs[name]
        lines = bytes(outs[name]).decode().splitlines()
        assert [line.split()[:3] for line in lines] == [[name, "tick", str(i)]
                                                         for i in range(1, 5)]
    net.close()


def test_read_only_calls_still_cost_virtual_time(
        namespin: Path, example_wasm: Callable[[str], Path]) -> None:
    net = Network(virtual_time=True, seed=3)
    spin_out, tick_out = bytearray(), bytearray()
    spinner = _start(net, "spinner", namespin, ["namespin", "100"], spin_out)
    ticker = _start(net, "ticker", example_wasm("ticker"), ["ticker", "t", "3"], tick_out)
    assert net.scheduler.run(until=lambda: spinner.done and ticker.done)
    assert spinner.exit_code == 0 and ticker.exit_code == 0, (spin_out, tick_out)
    m = re.match(rb"namespin: (\d+) rounds", bytes(spin_out))
    assert m, spin_out
    # 100 ms of virtual time at HOST_CALL_CHARGE_NS per call, give or take one
    # preemption quantum (1 ms) either way
    expected = 100_000_000 // (ROUND_CALLS * HOST_CALL_CHARGE_NS)
    assert abs(int(m.group(1)) - expected) <= 1_000_000 // (ROUND_CALLS * HOST_CALL_CHARGE_NS)
    assert bytes(tick_out).count(b" tick ") == 3
    net.close()


@pytest.mark.parametrize("virtual", [False, True])
def test_a_guest_spinning_on_read_only_calls_is_stopped(namespin: Path, virtual: bool) -> None:
    net = Network(virtual_time=virtual)
    out = bytearray()
    guest = _start(net, "spinner", namespin, ["namespin", "0"], out)
    net.scheduler.run_for(50_000_000)
    assert not guest.done
    net.scheduler.stop_all()
    assert guest.done and guest.exit_code == KILLED_EXIT_CODE, out
    net.close()


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_an_idle_guest_costs_at_most_a_quarter_mib(example_wasm: Callable[[str], Path]) -> None:
    """As vnet/bench/scale.py measures it: RSS growth over idle tcp_echo_servers."""
    wasm = example_wasm("tcp_echo_server")
    load_module(wasm)
    net = Network(virtual_time=False)
    outs: list[bytearray] = []
    guests: list[Guest] = []

    def start(count: int) -> None:
        for _ in range(count):
            outs.append(bytearray())
            guests.append(_start(net, f"h{len(guests)}", wasm, ["tcp_echo_server", "7"],
                                 outs[-1]))
        assert net.scheduler.run(until=lambda: all(b"listening" in o for o in outs),
                                 timeout_s=60), [bytes(o) for o in outs if b"listening" not in o]

    start(2)  # warm-up: the engine, the shared linker, the module's instance template
    gc.collect()
    before = _rss_bytes()
    count = 40
    start(count)
    gc.collect()
    per_guest = (_rss_bytes() - before) / count
    assert per_guest <= 0.25 * MIB, f"{per_guest / MIB:.3f} MiB per idle guest"
    net.scheduler.stop_all()
    net.close()


def test_a_call_from_a_thread_without_a_guest_traps() -> None:
    fn = HOST_FUNCTIONS.functions[("wasix_32v1", "sock_addr_local")]
    callback = _make_callback(fn)  # the shared kind: it looks the guest up by thread
    raw = (ctypes.c_ubyte * 32)()
    trap = callback(None, None, ctypes.addressof(raw), 2)
    assert trap != 0  # a wasmtime trap, not a crash and not an errno
    assert bytes(raw) == bytes(32)  # nothing was written
