"""The kernel and a vnet guest across the TUN bridge: when one side closes or dies
mid-transfer, the other learns of it at once, with Linux's errno.

The program is tests/hostile/c/crash_midflow.c: a server that closes while
its client keeps writing, traps (`__builtin_trap`) after writing or while
being flooded, or exits with unread data; and a client that reports how its
read/write loop ended. Run natively in the lab's namespace it is the kernel's
side; built to wasm it is the guest. Each case runs both ways round — the
vnet guest dies and the kernel is the victim, then the kernel process dies
(SIGILL, exit) and the vnet guest is the victim — and the victim must print
what Linux's own peer prints in tests/hostile/test_crash_midflow.py (there
kernel against kernel): e.g. a write into a closed socket fails with EPIPE
on the second write, and unread data turns the dying side's close into a
RST (ECONNRESET). Before vnet answered data after close() with RST, the
kernel's writes went into a dead socket's window for a minute.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.crash_support import CASES, PORT, SOURCE

from .conftest import GUEST4, KERNEL4, KernelLab, wait_until


@pytest.fixture(scope="module")
def native_crash_midflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crash") / "crash_midflow"
    proc = subprocess.run(["gcc", "-O2", "-Wall", str(SOURCE), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or proc.stderr.strip():
        pytest.fail(f"gcc crash_midflow.c:\n{proc.stderr}", pytrace=False)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_peer_of_a_dying_guest(case: str, kernel_lab: Callable[..., KernelLab],
                                      native_crash_midflow: Path,
                                      build_guest: Callable[..., Path]) -> None:
    how, client_mode, expected = CASES[case]
    lab = kernel_lab()
    server = lab.start_wasm(build_guest(SOURCE), "serve", PORT, how)
    server.wait_for("listening")
    victim = lab.popen(str(native_crash_midflow), client_mode, GUEST4, PORT, name="victim")
    assert victim.wait() == 0, victim.describe()
    line = bytes(victim.stdout).decode().strip()
    assert re.fullmatch(expected, line), f"the kernel's victim printed {line!r}\n{server.text}"
    wait_until(lambda: server.guest.done, what="the guest server to end")
    if how.startswith("trap"):
        assert server.guest.trap is not None


@pytest.mark.parametrize("case", list(CASES))
def test_guest_peer_of_a_dying_kernel_process(case: str, kernel_lab: Callable[..., KernelLab],
                                              native_crash_midflow: Path,
                                              build_guest: Callable[..., Path]) -> None:
    how, client_mode, expected = CASES[case]
    lab = kernel_lab()
    server = lab.popen(str(native_crash_midflow), "serve", PORT, how, name="server")
    server.wait_for(b"listening")
    victim = lab.start_wasm(build_guest(SOURCE), client_mode, KERNEL4, PORT)
    assert victim.wait() == 0, victim.text
    line = victim.text.strip()
    assert re.fullmatch(expected, line), f"the guest victim printed {line!r}\n{server.describe()}"
    code = server.wait()
    assert code != 0 or how == "close", server.describe()
