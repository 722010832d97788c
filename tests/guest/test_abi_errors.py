"""Hostile arguments to preview1 calls: vnet returns the errno wasmtime returns.

Each case is a tiny hand-written module whose `_start` makes one call with the
given (often bad) arguments and writes the 16-bit errno to stdout. The same
module runs under vnet and under wasmtime's own WASI; the errnos must match,
and under vnet the call must never trap or raise internally.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guest.reference import run_reference
from tests.guest.wat import compile_wat
from vnet.guest.runtime import run_module
from vnet.guest.wasi_types import Errno

TOP = 65536  # one page of memory: every address >= TOP is out of bounds

# (name, wasm param types, args, errno vnet gives where wasmtime traps)
CASES: list[tuple[str, str, list[int], Errno | None]] = [
    ("fd_write", "i32 i32 i32 i32", [1, 0xFFFFFFF0, 1, 16], Errno.EFAULT),  # iovecs outside
    ("fd_write", "i32 i32 i32 i32", [1, 1024, 1, TOP - 2], Errno.EFAULT),  # nwritten outside
    ("fd_write", "i32 i32 i32 i32", [99, 1024, 1, 16], None),  # no such fd
    ("fd_read", "i32 i32 i32 i32", [99, 1024, 1, 16], None),
    ("fd_read", "i32 i32 i32 i32", [0, 0xFFFFFFFF, 1, 16], Errno.EFAULT),
    ("args_get", "i32 i32", [0xFFFFFFFF, 0], Errno.EFAULT),
    ("args_sizes_get", "i32 i32", [TOP, 0], Errno.EFAULT),
    ("environ_sizes_get", "i32 i32", [16, TOP - 1], Errno.EFAULT),
    ("clock_time_get", "i32 i64 i32", [99, 0, 16], Errno.EINVAL),
    ("clock_time_get", "i32 i64 i32", [1, 0, TOP - 4], Errno.EFAULT),
    ("clock_time_get", "i32 i64 i32", [0, 0, 16], None),
    ("clock_res_get", "i32 i32", [1, 16], None),
    ("clock_res_get", "i32 i32", [7, 16], Errno.EINVAL),
    ("random_get", "i32 i32", [TOP - 8, 16], Errno.EFAULT),
    ("random_get", "i32 i32", [16, 0], None),
    ("poll_oneoff", "i32 i32 i32 i32", [0, 1024, 0, 2048], None),
    ("poll_oneoff", "i32 i32 i32 i32", [TOP - 8, 1024, 1, 2048], Errno.EFAULT),
    ("fd_close", "i32", [99], None),
    ("fd_fdstat_get", "i32 i32", [1, TOP - 4], Errno.EFAULT),
    ("fd_fdstat_get", "i32 i32", [99, 16], None),
    ("fd_fdstat_get", "i32 i32", [1, 16], None),
    ("fd_prestat_get", "i32 i32", [1, 16], None),
    ("fd_prestat_get", "i32 i32", [99, 16], None),
    ("fd_prestat_dir_name", "i32 i32 i32", [1, 16, 10], None),
    ("fd_renumber", "i32 i32", [1, 50], None),
    ("fd_renumber", "i32 i32", [50, 1], None),
    ("fd_tell", "i32 i32", [99, 16], None),
    ("fd_filestat_get", "i32 i32", [99, 16], None),
    ("fd_filestat_get", "i32 i32", [1, TOP - 1], Errno.EFAULT),
    ("sched_yield", "", [], None),
    ("fd_sync", "i32", [99], None),
    ("sock_accept", "i32 i32 i32", [99, 0, 16], None),
    ("sock_shutdown", "i32 i32", [99, 1], None),
]


def _module(directory: Path, name: str, params: str, args: list[int]) -> Path:
    kinds = params.split()
    consts = " ".join(f"({k}.const {a})" for k, a in zip(kinds, args, strict=True))
    return compile_wat(directory, f"""
      (import "wasi_snapshot_preview1" "{name}" (func $f (param {params}) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 1024) "\\00\\03\\00\\00\\04\\00\\00\\00")
      (func (export "_start")
        (i32.store16 (i32.const 0) (call $f {consts}))
        (i32.store (i32.const 8) (i32.const 0))
        (i32.store (i32.const 12) (i32.const 2))
        (drop (call $w (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 4))))
    """)


def _errno(stdout: bytes) -> int:
    assert len(stdout) >= 2, stdout
    return int.from_bytes(stdout[-2:], "little")


@pytest.mark.parametrize("name,params,args,instead_of_trap", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_errno_matches_wasmtime(tmp_path: Path, name: str, params: str, args: list[int],
                                instead_of_trap: Errno | None) -> None:
    wasm = _module(tmp_path, name, params, args)
    ours = run_module(wasm, ["t"])
    ref = run_reference(wasm, ["t"])
    assert ours.trap is None, ours.trap
    assert ours.exit_code == 0
    assert not ours.guest.ctx.stats.internal_errors, ours.guest.ctx.diagnostics
    got = Errno(_errno(ours.stdout)).name
    if instead_of_trap is not None:
        assert ref.trapped, "wasmtime no longer traps here: compare errnos instead"
        assert got == instead_of_trap.name
    else:
        assert not ref.trapped and ref.exit_code == 0
        assert got == Errno(_errno(ref.stdout)).name


def test_bad_pointer_is_counted_as_a_fault(tmp_path: Path) -> None:
    wasm = _module(tmp_path, "fd_write", "i32 i32 i32 i32", [1, 0xFFFFFFF0, 1, 16])
    result = run_module(wasm, ["t"])
    assert _errno(result.stdout) == Errno.EFAULT
    assert result.guest.ctx.stats.faults["wasi_snapshot_preview1.fd_write"] == 1
