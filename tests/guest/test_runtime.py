"""The guest runtime against wasmtime's own WASI: args, env, clocks, random, stdio, exit."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.guest.reference import run_reference
from vnet.guest.runtime import TRAP_EXIT_CODE, run_module


def _stable_stderr(stderr: bytes) -> bytes:
    return re.sub(rb"realtime_sec=\d+\n", b"", stderr)


@pytest.mark.parametrize(
    "args,env,stdin",
    [
        (["basics"], [], b""),
        (["basics", "one", "two words", "ünïcode"], [("GREETING", "hello"), ("X", "a=b")], b""),
        (["basics"], [("EMPTY", "")], b"line one\nline two\n"),
        (["basics", "exit7"], [], b""),
    ],
)
def test_basics_match_wasmtime(build_guest: Callable[..., Path], args: list[str],
                               env: list[tuple[str, str]], stdin: bytes) -> None:
    wasm = build_guest("basics")
    ours = run_module(wasm, args, env, stdin=stdin)
    ref = run_reference(wasm, args, env, stdin=stdin)
    assert ours.trap is None
    assert ours.exit_code == ref.exit_code
    assert ours.stdout == ref.stdout
    assert _stable_stderr(ours.stderr) == _stable_stderr(ref.stderr)
    assert b"slept_at_least_30ms=1" in ours.stdout
    assert b"random_differs=1" in ours.stdout
    assert not ours.guest.ctx.stats.internal_errors


def test_realtime_clock_is_the_hosts_in_real_time(build_guest: Callable[..., Path]) -> None:
    result = run_module(build_guest("basics"), ["basics"])
    match = re.search(rb"realtime_sec=(\d+)", result.stderr)
    assert match is not None
    assert abs(int(match.group(1)) - time.time()) < 60


def test_virtual_time_clock_starts_at_2000_and_sleep_takes_no_wall_time(
    build_guest: Callable[..., Path],
) -> None:
    started = time.monotonic()
    result = run_module(build_guest("basics"), ["basics"], virtual_time=True)
    match = re.search(rb"realtime_sec=(\d+)", result.stderr)
    assert match is not None and int(match.group(1)) == 946_684_800
    assert b"slept_at_least_30ms=1" in result.stdout
    assert time.monotonic() - started < 30  # the nap was virtual, not slept


def test_trap_reports_message_and_nonzero_status(build_guest: Callable[..., Path]) -> None:
    result = run_module(build_guest("basics"), ["basics", "trap"])
    assert result.exit_code == TRAP_EXIT_CODE
    assert result.trap is not None and "unreachable" in result.trap
    ref = run_reference(build_guest("basics"), ["basics", "trap"])
    assert ref.trapped and ref.exit_code == result.exit_code


def test_random_is_seeded_in_virtual_time(tmp_path: Path) -> None:
    from tests.guest.wat import compile_wat

    wasm = compile_wat(tmp_path, """
      (import "wasi_snapshot_preview1" "random_get" (func $rg (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (drop (call $rg (i32.const 100) (i32.const 16)))
        (i32.store (i32.const 0) (i32.const 100))
        (i32.store (i32.const 4) (i32.const 16))
        (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
    """)
    a = run_module(wasm, ["r"], virtual_time=True, seed=1).stdout
    b = run_module(wasm, ["r"], virtual_time=True, seed=1).stdout
    c = run_module(wasm, ["r"], virtual_time=True, seed=2).stdout
    d = run_module(wasm, ["r"]).stdout
    e = run_module(wasm, ["r"]).stdout
    assert len(a) == 16 and a == b and a != c
    assert d != e
