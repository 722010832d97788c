"""`vnet run` takes wasmtime's spelling: `-S`, `-W`, `--invoke`, `.wat`, an implicit
`run`, `--version`; where vnet means something else, it says so."""

from __future__ import annotations

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


def test_invoke(build_guest: Callable[..., Path]) -> None:
    wasm = str(build_guest("basics"))
    assert vnet("run", "--invoke", "_start", wasm, "exit7").returncode == 7
    other = vnet("run", "--invoke", "main", wasm)
    assert other.returncode == 2 and "only" in other.stderr and other.stderr.count("\n") == 1
