"""`vnet run` takes wasmtime's spelling: `-S`, `-W`, `--invoke`, `.wat`, an implicit
`run`, `--version`; where vnet means something else, it says so."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

VNET = [sys.executable, "-m", "vnet"]
HERE = Path(__file__).resolve().parent
WAT_EXIT_7 = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 7))))
"""


def vnet(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VNET, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_version() -> None:
    shown = vnet("--version")
    assert shown.returncode == 0
    assert shown.stdout.startswith("vnet ") and len(shown.stdout.split()) >= 2


def test_implicit_run_and_wat_input(tmp_path: Path, build_guest: Callable[..., Path]) -> None:
    wasm = str(build_guest("basics"))
    implicit = vnet(wasm, "exit7")
    explicit = vnet("run", wasm, "exit7")
    assert implicit.returncode == explicit.returncode == 7
    assert implicit.stdout == explicit.stdout
    wat = tmp_path / "seven.wat"
    wat.write_text(WAT_EXIT_7)
    assert vnet(str(wat)).returncode == 7
    assert vnet("run", str(wat)).returncode == 7
    bad = tmp_path / "bad.wat"
    bad.write_text("(module (func (export \"_start\")")
    refused = vnet("run", str(bad))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "not valid WebAssembly text" in refused.stderr
    bad.write_text("(module (func (export \"_start\") (call 99)))")
    invalid = vnet("run", str(bad))
    assert invalid.returncode == 2 and invalid.stderr.count("\n") == 1
    assert invalid.stderr.startswith(f"vnet run: {bad}: invalid wasm module")


def test_s_tcplisten_is_tcplisten_on_the_virtual_host(build_guest: Callable[..., Path]) -> None:
    wasm = str(build_guest(HERE / "cli" / "fd3.c"))
    spelled = vnet("run", "-S", "tcplisten=0.0.0.0:8080", wasm)
    ours = vnet("run", "--tcplisten", "0.0.0.0:8080", wasm)
    assert spelled.returncode == ours.returncode == 0, spelled.stderr
    assert spelled.stdout == ours.stdout == "fd 3: 0.0.0.0:8080 listening=1\n"
    assert b"--tun --publish" in subprocess.run([*VNET, "run", "--help"],
                                                capture_output=True).stdout.replace(b"\n", b" ")


def test_s_inherit_network_says_what_it_grants(build_guest: Callable[..., Path]) -> None:
    wasm = str(build_guest("basics"))
    granted = vnet("run", "-S", "inherit-network", "-S", "allow-ip-name-lookup",
                   "--show-firewall", wasm, "exit7")
    assert granted.returncode == 7
    assert "-S inherit-network: granted as --allow-out tcp:*:* --allow-out udp:*:*" \
        in granted.stderr
    plain = vnet("run", "--show-firewall", wasm, "exit7")
    assert granted.stderr.count("accept") > plain.stderr.count("accept")
    unknown = vnet("run", "-S", "nosuch", wasm)
    assert unknown.returncode == 2 and "-S nosuch: not supported" in unknown.stderr


def test_w_options(build_guest: Callable[..., Path]) -> None:
    wasm = str(build_guest("basics"))
    fuel = vnet("run", "-W", "fuel=1000", wasm)
    assert fuel.returncode == 2
    assert fuel.stderr.count("\n") == 1 and "fuel is not supported" in fuel.stderr
    tiny = vnet("run", "-W", "max-memory-size=65536", wasm, "exit7")
    ample = vnet("run", "-W", "max-memory-size=67108864", wasm, "exit7")
    assert ample.returncode == 7
    assert tiny.returncode != 7 and "memory" in tiny.stderr
    sleeper = str(build_guest(HERE / "cli" / "fd3.c"))
    stopped = vnet("run", "-W", "timeout=1s", sleeper, "60")
    assert stopped.returncode == 134
    assert "-W timeout=1s expired" in stopped.stderr and "slept" not in stopped.stdout
    finished = vnet("run", "-W", "timeout=60s", sleeper, "0")
    assert finished.returncode == 0 and finished.stdout == "slept\n"
    spin = str(build_guest("spin"))
    assert vnet("run", "-W", "timeout=500ms", spin).returncode == 134


WAT_REACTOR = """(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $base (mut i32) (i32.const 0))
  (data (i32.const 16) "init\\n")
  (func (export "_initialize")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (global.set $base (i32.const 100)))
  (func (export "add") (param i32 i64) (result i64)
    (i64.add (i64.extend_i32_s (i32.add (local.get 0) (global.get $base))) (local.get 1)))
  (func (export "pair") (param f64) (result f64 i32)
    (f64.mul (local.get 0) (f64.const 2)) (i32.const -1)))
"""


def test_invoke(tmp_path: Path, build_guest: Callable[..., Path]) -> None:
    wasm = str(build_guest("basics"))
    assert vnet("run", "--invoke", "_start", wasm, "exit7").returncode == 7
    reactor = tmp_path / "reactor.wat"
    reactor.write_text(WAT_REACTOR)
    # the reactor's _initialize runs first; arguments take the parameters' types
    added = vnet("run", "--invoke", "add", str(reactor), "1", "0x10")
    assert added.returncode == 0, added.stderr
    assert added.stdout == "init\n117\n"
    # several results, one per line, as wasmtime prints them
    pair = vnet("run", "--invoke", "pair", str(reactor), "1.25")
    assert pair.returncode == 0 and pair.stdout == "init\n2.5\n-1\n"
    missing = vnet("run", "--invoke", "nothing", str(reactor))
    assert missing.returncode == 2 and "exports no 'nothing'" in missing.stderr
    assert missing.stderr.count("\n") == 1
    not_func = vnet("run", "--invoke", "memory", str(reactor))
    assert not_func.returncode == 2 and "not a function" in not_func.stderr
    too_few = vnet("run", "--invoke", "add", str(reactor), "1")
    assert too_few.returncode == 1 and "takes 2 argument(s), 1 given" in too_few.stderr
    bad = vnet("run", "--invoke", "add", str(reactor), "one", "2")
    assert bad.returncode == 1 and "'one' is not a valid i32" in bad.stderr


TRAPPING_C = r"""
#include <stdio.h>
#include <string.h>
__attribute__((noinline)) static int read_far(volatile int *p) { return p[0]; }
int main(int argc, char **argv) {
    printf("before\n");
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "unreachable") == 0)
        __builtin_trap();
    return read_far((volatile int *)0x7ffffff0);
}
"""


def test_trap_reason_and_backtrace(tmp_path: Path) -> None:
    source = tmp_path / "trapper.c"
    source.write_text(TRAPPING_C)
    wasm = tmp_path / "trapper.wasm"
    built = vnet("build", "-g", str(source), "-o", str(wasm), timeout=600)
    assert built.returncode == 0, built.stderr
    oob = vnet("run", str(wasm))
    assert oob.returncode == 134 and oob.stdout == "before\n"
    lines = oob.stderr.splitlines()
    assert lines[0] == ("vnet run: guest trapped: wasm trap: out of bounds memory access "
                        "(memory fault at wasm address 0x7ffffff0 in linear memory of size "
                        f"{lines[0].rsplit(' ', 1)[1]}")
    assert lines[1] == "vnet run: wasm backtrace:"
    assert "read_far" in oob.stderr and "!_start" in oob.stderr
    assert "WASMTIME_BACKTRACE_DETAILS=1" in lines[-1]
    unreachable = vnet("run", str(wasm), "unreachable")
    assert unreachable.returncode == 134
    assert ("vnet run: guest trapped: wasm trap: wasm `unreachable` instruction executed"
            in unreachable.stderr)
    # file:line from the module's DWARF, as wasmtime gives it
    detailed = subprocess.run([*VNET, "run", str(wasm)], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL,
                              env={**os.environ,
                                   "WASMTIME_BACKTRACE_DETAILS": "1"})
    assert detailed.returncode == 134
    assert f"at {source}:4:" in detailed.stderr, detailed.stderr

