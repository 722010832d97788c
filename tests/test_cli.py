"""The `vnet` command line as a user runs it: exit codes, one-line errors, help."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

VNET = [sys.executable, "-m", "vnet"]


def vnet(*args: str, stdin: bytes = b"",
         timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*VNET, *args], input=stdin, capture_output=True, timeout=timeout)


def test_help_lists_every_subcommand_and_flag() -> None:
    top = vnet("--help")
    assert top.returncode == 0
    for word in (b"build", b"run"):
        assert word in top.stdout
    run = vnet("run", "--help").stdout
    for flag in (b"--dir", b"--env", b"--virtual-time", b"--seed", b"--max-memory",
                 b"--max-fds", b"--cpu-time-limit"):
        assert flag in run
    build = vnet("build", "--help").stdout
    for flag in (b"-o", b"-I", b"-D", b"-O", b"--no-cache"):
        assert flag in build


def test_run_passes_args_env_stdin_and_exit_status(build_guest: Callable[..., Path]) -> None:
    wasm = str(build_guest("basics"))
    result = vnet("run", "--env", "GREETING=hi there", wasm, "exit7", "--not-a-vnet-flag",
                  stdin=b"piped\n")
    assert result.returncode == 7
    assert b"GREETING=hi there" in result.stdout
    assert b"argv[2]=--not-a-vnet-flag" in result.stdout
    assert b"stdin: piped" in result.stdout
    assert b"to stderr" in result.stderr


def test_trap_exits_134_with_the_message(build_guest: Callable[..., Path]) -> None:
    result = vnet("run", str(build_guest("basics")), "trap")
    assert result.returncode == 134
    assert b"guest trapped" in result.stderr and b"unreachable" in result.stderr


@pytest.mark.parametrize(
    "make_args,expect",
    [
        (lambda d: ["run", str(d / "missing.wasm")], b"no such file"),
        (lambda d: ["run", str(d / "text.wasm")], b"not a WebAssembly module"),
        (lambda d: ["run", str(d / "component.wasm")], b"component"),
        (lambda d: ["run", str(d / "env_import.wasm")], b"imports env.mystery"),
        (lambda d: ["run", str(d / "no_start.wasm")], b"no _start"),
        (lambda d: ["run", str(d)], b"is a directory"),
        (lambda d: ["run", "--env", "=x", str(d / "no_start.wasm")], b"--env"),
        (lambda d: ["run", "--env", "NOT_SET_ANYWHERE_XYZ", str(d / "no_start.wasm")], b"--env"),
        (lambda d: ["run", "--dir", str(d / "nope"), str(d / "no_start.wasm")],
         b"is not a directory"),
        (lambda d: ["run", "--dir", "::/x", str(d / "no_start.wasm")], b"--dir"),
        (lambda d: ["run", "--max-fds", "1", str(d / "no_start.wasm")], b"--max-fds"),
        (lambda d: ["run"], b"required"),
        (lambda d: ["frobnicate"], b"invalid choice"),
        (lambda d: ["build", str(d / "missing.c"), "-o", str(d / "o.wasm")], b"no such source"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path: Path, make_args: Callable[[Path], list[str]],
                                           expect: bytes) -> None:
    import wasmtime

    (tmp_path / "text.wasm").write_text("hello")
    (tmp_path / "component.wasm").write_bytes(b"\0asm\x0d\0\x01\0")
    (tmp_path / "env_import.wasm").write_bytes(wasmtime.wat2wasm(
        '(module (import "env" "mystery" (func)) (memory (export "memory") 1)'
        ' (func (export "_start")))'))
    (tmp_path / "no_start.wasm").write_bytes(wasmtime.wat2wasm(
        '(module (memory (export "memory") 1))'))
    result = vnet(*make_args(tmp_path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert expect.decode() in lines[-1], result.stderr
    assert b"Traceback" not in result.stderr


def test_build_errors_pass_through_readably(tmp_path: Path) -> None:
    bad = tmp_path / "bad.c"
    bad.write_text("int main(void) { return undeclared_thing; }\n")
    result = vnet("build", str(bad), "-o", str(tmp_path / "bad.wasm"))
    assert result.returncode == 1
    assert b"bad.c:1" in result.stderr and b"undeclared_thing" in result.stderr
    assert b"Traceback" not in result.stderr
    assert not (tmp_path / "bad.wasm").exists()


def test_build_then_run_and_cache_hit(tmp_path: Path) -> None:
    src = tmp_path / "hi.c"
    src.write_text('#include <stdio.h>\nint main(void) { puts("hi from " WHO); return 0; }\n')
    cache = tmp_path / "cache"
    env_args = ["build", str(src), "-o", str(tmp_path / "hi.wasm"), "-DWHO=\"vnet\""]
    import os
    env = dict(os.environ, VNET_CACHE_DIR=str(cache))
    first = subprocess.run([*VNET, *env_args], capture_output=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    cached = list((cache / "build").glob("*.wasm"))
    assert len(cached) == 1
    (tmp_path / "hi.wasm").unlink()
    second = subprocess.run([*VNET, *env_args], capture_output=True, env=env, timeout=300)
    assert second.returncode == 0
    assert list((cache / "build").glob("*.wasm")) == cached
    run = vnet("run", str(tmp_path / "hi.wasm"))
    assert run.returncode == 0 and run.stdout == b"hi from vnet\n"
    src.write_text('#include <stdio.h>\nint main(void) { puts("changed"); return 0; }\n')
    third = subprocess.run([*VNET, *env_args], capture_output=True, env=env, timeout=300)
    assert third.returncode == 0
    assert len(list((cache / "build").glob("*.wasm"))) == 2
    assert vnet("run", str(tmp_path / "hi.wasm")).stdout == b"changed\n"


def test_fd_cap_gives_emfile(tmp_path: Path, build_guest: Callable[..., Path]) -> None:
    result = vnet("run", "--max-fds", "10", "--dir", f"{tmp_path}::/d",
                  str(build_guest("fdhog")), "/d")
    assert result.returncode == 0, result.stderr
    # stdio (3) + the preopen (1) + 6 files = 10
    assert result.stdout == b"opened 6 then EMFILE\n"


def test_fs_tour_example_writes_into_the_mapped_directory(
    tmp_path: Path, example_wasm: Callable[[str], Path],
) -> None:
    result = vnet("run", "--dir", f"{tmp_path}::/scratch", "--env", "GREETING=hey",
                  str(example_wasm("fs_tour")), "/scratch", "hello", "world")
    assert result.returncode == 0, result.stderr
    assert b"GREETING is hey" in result.stdout
    assert b"a 20 ms nap took at least 20 ms: yes" in result.stdout
    assert (tmp_path / "tour.txt").read_text() == "hello world\n"


def test_virtual_time_run_is_reproducible(example_wasm: Callable[[str], Path]) -> None:
    wasm = str(example_wasm("ticker"))
    a = vnet("run", "--virtual-time", "--seed", "3", wasm, "t", "6")
    b = vnet("run", "--virtual-time", "--seed", "3", wasm, "t", "6")
    c = vnet("run", "--virtual-time", "--seed", "4", wasm, "t", "6")
    assert a.returncode == 0 and a.stdout == b.stdout and a.stdout != c.stdout
    assert a.stdout.count(b"tick") == 6


def test_run_on_a_virtual_host_with_addresses_and_pcap(
    tmp_path: Path, example_wasm: Callable[[str], Path],
) -> None:
    pcap = tmp_path / "eth0.pcapng"
    result = vnet("run", "--addr", "10.0.0.2/24", "--addr", "fd00::2/64", "--pcap", str(pcap),
                  str(example_wasm("ipaddr")))
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert "lo" in text and "127.0.0.1/8" in text and "::1/128" in text
    assert "eth0" in text and "10.0.0.2/24" in text and "fd00::2/64" in text
    from scapy.layers.l2 import ARP

    from vnet.testing.pcap import read_pcapng

    frames = [p.packet for p in read_pcapng(pcap)]
    assert any(ARP in f and f[ARP].psrc == "10.0.0.2" for f in frames)  # the announcement


def test_run_rejects_bad_network_flags(example_wasm: Callable[[str], Path]) -> None:
    for flags, expect in ((["--addr", "10.0.0.2"], b"--addr"),
                          (["--addr", "10.0.0.300/24"], b"--addr"),
                          (["--tcplisten", "nowhere:80"], b"--tcplisten"),
                          (["--tun", "--virtual-time"], b"real time only")):
        result = vnet("run", *flags, str(example_wasm("ipaddr")))
        assert result.returncode == 2, (flags, result.stderr)
        assert expect in result.stderr and b"Traceback" not in result.stderr
