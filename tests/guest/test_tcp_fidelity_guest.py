"""TCP corner cases through the guest ABI, compared with Linux line by line.

tests/guest/c/tcp_fidelity.c (a reset connection in the accept queue, recv()
after a refused connect(), a bound connect() onto a TIME-WAIT 4-tuple,
TCP_INFO's length and state) is compiled natively with gcc and run in a
network namespace of its own (lo only), and compiled to wasm and run on a vnet
host in virtual time. The two outputs must be equal. The same behaviours are
compared call by call through the Python API in tests/stack/test_tcp_vs_linux.py;
this test covers the wasm path (sock_accept_v2's peer address, getsockopt's
struct copy-out).

Touches: a network namespace named vntcpf-PID (vnet.testing.netns), gcc.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from vnet.build import build_wasm
from vnet.guest.runtime import Guest, GuestConfig
from vnet.network import Network
from vnet.testing.netns import Namespace, require_root

SOURCE = Path(__file__).resolve().parent / "c" / "tcp_fidelity.c"


@pytest.fixture(scope="module")
def native_output(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    require_root("the native run needs root: it creates a network namespace")
    binary = tmp_path_factory.mktemp("native") / "tcp_fidelity"
    proc = subprocess.run(["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", str(SOURCE), "-o",
                           str(binary)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or proc.stderr.strip():
        pytest.fail(f"gcc tcp_fidelity.c:\n{proc.stderr}", pytrace=False)
    with Namespace(f"vntcpf-{os.getpid()}") as ns:
        ns.check_isolated([])
        run = ns.run(str(binary), timeout=60, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout.splitlines()


@pytest.fixture(scope="module")
def vnet_output(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    wasm = build_wasm([SOURCE], tmp_path_factory.mktemp("wasm") / "tcp_fidelity.wasm",
                      flags=["-Wextra", "-Werror"], quiet=True)
    out, err = bytearray(), bytearray()
    with Network(virtual_time=True, seed=1) as net:
        host = net.host("solo")
        guest = Guest(net.scheduler, GuestConfig(module=str(wasm), args=["tcp_fidelity"],
                                                 host=host, stdout=out.extend,
                                                 stderr=err.extend))
        guest.start()
        finished = net.scheduler.run(until=lambda: guest.done, timeout_s=120)
    text = out.decode(errors="replace")
    assert finished and guest.exit_code == 0, f"{guest.exit_code}\n{text}\n{err!r}"
    return text.splitlines()


def test_native_run_reached_the_end(native_output: list[str]) -> None:
    assert native_output[-1] == "done"
    assert any(line.startswith("accept a connection reset in the queue") and "-> 0" in line
               for line in native_output)


def test_guest_matches_linux_line_by_line(native_output: list[str],
                                          vnet_output: list[str]) -> None:
    differing = [f"  linux: {n!r}\n  vnet:  {v!r}"
                 for n, v in zip(native_output, vnet_output, strict=False) if n != v]
    assert vnet_output == native_output, "\n".join(differing) or (
        f"lengths differ: {len(native_output)} vs {len(vnet_output)}")
