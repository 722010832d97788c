"""Several guests on one scheduler: determinism in virtual time, preemption, limits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vnet.guest.context import GuestLimits
from vnet.guest.runtime import KILLED_EXIT_CODE, Guest, GuestConfig, run_module
from vnet.scheduler import Scheduler


def _run_group(wasm_by_name: dict[str, tuple[Path, list[str]]], virtual: bool, seed: int = 0,
               limits: GuestLimits | None = None,
               clients: set[str] | None = None) -> tuple[list[tuple[str, bytes]], dict[str, Guest]]:
    """Run guests together; returns the interleaved output log and the guests."""
    sched = Scheduler(virtual=virtual, seed=seed)
    log: list[tuple[str, bytes]] = []
    guests: dict[str, Guest] = {}
    for name, (wasm, args) in wasm_by_name.items():
        cfg = GuestConfig(module=str(wasm), args=args, name=name,
                          stdout=lambda data, name=name: log.append((name, data)),
                          limits=limits or GuestLimits())
        guests[name] = Guest(sched, cfg)
    for guest in guests.values():
        guest.start()
    wanted = clients or set(guests)
    sched.run(until=lambda: all(guests[n].done for n in wanted), timeout_s=120)
    sched.stop_all()
    return log, guests


def test_multi_guest_virtual_time_runs_are_identical(
    example_wasm: Callable[[str], Path],
) -> None:
    ticker = example_wasm("ticker")
    group = {f"t{i}": (ticker, ["ticker", f"t{i}", "8"]) for i in range(4)}
    first, _ = _run_group(group, virtual=True, seed=7)
    second, _ = _run_group(group, virtual=True, seed=7)
    other_seed, _ = _run_group(group, virtual=True, seed=8)
    assert len(first) == 32
    assert first == second
    assert first != other_seed  # the seed really drives the sleeps


def test_spinning_guest_is_preempted_and_others_finish(
    build_guest: Callable[..., Path], example_wasm: Callable[[str], Path],
) -> None:
    spin = build_guest("spin")
    ticker = example_wasm("ticker")
    for virtual in (True, False):
        group = {"spinner": (spin, ["spin"]),
                 "a": (ticker, ["ticker", "a", "3"]),
                 "b": (ticker, ["ticker", "b", "3"])}
        log, guests = _run_group(group, virtual=virtual, clients={"a", "b"})
        assert guests["a"].exit_code == 0 and guests["b"].exit_code == 0
        assert sum(1 for name, _ in log if name in ("a", "b")) == 6
        assert guests["spinner"].exit_code == KILLED_EXIT_CODE
        assert guests["spinner"].ctx.stats.preemptions > 0


def test_cpu_time_limit_stops_a_spinning_guest(build_guest: Callable[..., Path]) -> None:
    result = run_module(build_guest("spin"), ["spin"], limits=GuestLimits(cpu_time_ms=200),
                        timeout_s=60)
    assert result.exit_code == KILLED_EXIT_CODE
    assert result.trap is not None and "CPU time limit" in result.trap


def test_memory_cap_makes_malloc_fail_not_the_host(build_guest: Callable[..., Path]) -> None:
    # zig's wasm32-wasi binaries start with 16 MiB + 64 KiB of memory (stack and data).
    allocated = {}
    for cap_mib in (24, 48):
        cap = cap_mib * 1024 * 1024
        result = run_module(build_guest("memhog"), ["memhog"],
                            limits=GuestLimits(memory_bytes=cap))
        assert result.exit_code == 0, result.trap
        assert 16 * 1024 * 1024 < result.guest.memory_bytes_at_exit <= cap
        allocated[cap_mib] = int(result.stdout.split()[1])
        assert 0 < allocated[cap_mib] < cap_mib
    assert allocated[48] > allocated[24]
    unlimited = run_module(build_guest("memhog"), ["memhog", "64"])
    assert int(unlimited.stdout.split()[1]) == 64


def test_memory_cap_below_the_modules_minimum_is_refused_with_a_message(
    build_guest: Callable[..., Path],
) -> None:
    result = run_module(build_guest("memhog"), ["memhog"],
                        limits=GuestLimits(memory_bytes=8 * 1024 * 1024))
    assert result.exit_code != 0
    assert result.trap is not None and "exceeds memory limits" in result.trap
