"""Hostile -pthread guests: thread bombs and spinning threads stay inside their guest.

Attack: a guest creates threads until something gives (each one blocked
forever, holding its stack); a guest's thread computes forever without a host
call. Containment asserted here: pthread_create refuses with EAGAIN at
vnet.guest.threads.MAX_THREADS threads alive (the main thread included), or
earlier when the guest's --max-memory cannot hold another stack, and the guest
goes on (exits 0, memory within its limit, never killed); a spinning thread
does not keep another guest from finishing its work in virtual time, and the
guest's CPU-time limit counts the spinning thread (killed, status 137); the
fd limit counts every thread's sockets (one fd table); a
longjmp to a jmp_buf that setjmp did not fill on the same thread (garbage, or
another thread's) aborts the guest with one line, never a host error. About
10 s of CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vnet.guest.context import GuestLimits
from vnet.guest.runtime import KILLED_EXIT_CODE, TRAP_EXIT_CODE, Guest, GuestConfig
from vnet.guest.threads import MAX_THREADS
from vnet.network import Network

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples"


@pytest.fixture(scope="module")
def bomb(build_guest: Callable[..., Path]) -> Path:
    return build_guest(HERE / "c" / "thread_bomb.c", "-pthread")


def _run(net: Network, wasm: Path, *args: str, limits: GuestLimits | None = None,
         name: str = "guest") -> tuple[Guest, bytearray]:
    out = bytearray()
    host = net.hosts.get(name) or net.host(name)
    guest = Guest(net.scheduler, GuestConfig(module=str(wasm), args=[name, *args], host=host,
                                             name=name, stdout=out.extend, stderr=out.extend,
                                             limits=limits or GuestLimits()))
    guest.start()
    return guest, out


@pytest.mark.parametrize("virtual", [True, False], ids=["virtual", "real"])
def test_thread_bomb_is_refused_with_eagain_at_the_limit(bomb: Path, virtual: bool) -> None:
    with Network(virtual_time=virtual, seed=1) as net:
        guest, out = _run(net, bomb, "bomb")
        assert net.scheduler.run(until=lambda: guest.done, timeout_s=60)
        assert guest.exit_code == 0, out.decode()
        assert out.decode() == (f"created {MAX_THREADS - 1} threads, then: "
                                "Resource temporarily unavailable\n")


def test_thread_bomb_under_a_small_memory_limit_gets_eagain_not_a_kill(bomb: Path) -> None:
    limit = 20 * 1024 * 1024  # the module starts with 16 MiB (258 pages)
    with Network(virtual_time=True, seed=1) as net:
        guest, out = _run(net, bomb, "bomb", limits=GuestLimits(memory_bytes=limit))
        assert net.scheduler.run(until=lambda: guest.done, timeout_s=60)
        text = out.decode()
        assert guest.exit_code == 0, text
        created = int(text.split()[1])
        assert 0 < created < MAX_THREADS - 1, text  # memory ran out first
        assert text.endswith("then: Resource temporarily unavailable\n")
        assert guest.memory_bytes_at_exit <= limit


def test_a_spinning_thread_does_not_starve_another_guest(bomb: Path,
                                                          example_wasm: Callable[[str], Path]
                                                          ) -> None:
    with Network(virtual_time=True, seed=1) as net:
        spinner, spun = _run(net, bomb, "spin", name="spinner")
        ticker, ticks = _run(net, example_wasm("ticker"), "victim", "20", name="victim")
        assert net.scheduler.run(until=lambda: ticker.done, timeout_s=60)
        assert ticker.exit_code == 0
        assert ticks.decode().count("victim") >= 20, ticks.decode()
        assert not spinner.done and spun.decode() == "spinning\n"
        net.scheduler.stop_all()


def test_the_cpu_limit_counts_every_thread(bomb: Path) -> None:
    with Network(virtual_time=False) as net:
        started = time.process_time()
        guest, out = _run(net, bomb, "spin", limits=GuestLimits(cpu_time_ms=200))
        assert net.scheduler.run(until=lambda: guest.done, timeout_s=60)
        assert guest.exit_code == KILLED_EXIT_CODE, out.decode()
        assert guest.trap is not None and "CPU time limit" in guest.trap
        assert time.process_time() - started < 30


@pytest.mark.parametrize("mode", ["badjmp", "otherjmp"])
def test_longjmp_to_a_jmp_buf_setjmp_did_not_fill_aborts_the_guest(bomb: Path,
                                                                   mode: str) -> None:
    with Network(virtual_time=True, seed=1) as net:
        guest, out = _run(net, bomb, mode)
        assert net.scheduler.run(until=lambda: guest.done, timeout_s=60)
        assert guest.exit_code == TRAP_EXIT_CODE
        assert out.decode() == ("vnet: longjmp to a jmp_buf that setjmp did not fill on this "
                                "thread\n")
        assert not guest.ctx.stats.internal_errors


@pytest.mark.parametrize("virtual", [True, False], ids=["virtual", "real"])
def test_a_guest_whose_threads_all_wait_can_be_killed(bomb: Path, virtual: bool) -> None:
    with Network(virtual_time=virtual, seed=1) as net:
        guest, out = _run(net, bomb, "wait")
        net.scheduler.run(until=lambda: b"waiting" in out, timeout_s=60)
        assert out.decode() == "waiting\n" and not guest.done
        net.scheduler.stop_all()
        assert guest.done and guest.exit_code == KILLED_EXIT_CODE


def test_the_fd_limit_counts_every_thread(bomb: Path) -> None:
    """One fd table: four threads opening sockets share --max-fds (stdio takes 3)."""
    with Network(virtual_time=True, seed=1) as net:
        guest, out = _run(net, bomb, "fds", limits=GuestLimits(max_fds=64))
        assert net.scheduler.run(until=lambda: guest.done, timeout_s=60)
        assert guest.exit_code == 0
        assert out.decode() == "opened 61 sockets, then: No file descriptors available\n"
