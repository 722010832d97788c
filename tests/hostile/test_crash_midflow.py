"""A guest that closes, traps or exits mid-transfer: its peer learns of it as Linux's would.

The attacker is tests/hostile/c/crash_midflow.c as a server that dies in the
middle of a transfer — `__builtin_trap()` (a wasm trap; natively SIGILL),
`exit()` with its socket open and unread data queued, or a plain close()
while the client keeps writing. The victim is the same program as a client
on the other host, which must come out of its read/write loop with what
Linux gives the peer of a killed process: EOF after the bytes that were
sent, ECONNRESET when unread data made the dying side reset, EPIPE/
ECONNRESET for writes into a dead connection — never a hang.

Each case runs three ways and compares what the victim printed:
natively (gcc, two Linux network namespaces, the kernel closing the dead
process's sockets: the reference), on vnet in virtual time (where the
victim must finish within 30 s of virtual time: before the fix it wrote
into a dead socket's window for ~100 s), and on vnet in real time.

Safety: the native namespaces hold only lo and a veth pair between them
(tests/examples/harness.py: NativeNet, checked before anything runs).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.examples.harness import HOSTS, Lab, NativeLab, NativeNet, VnetLab
from tests.hostile.crash_support import CASES, PORT, SERVER, SOURCE, VIRTUAL_LIMIT_NS
from vnet.network import Network


class CrashNativeNet(NativeNet):
    """The native lab's two namespaces, under names of our own (tests/examples has its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.namespaces = {h.name: f"vnh-{h.name}-{os.getpid()}" for h in HOSTS}


class RealTimeVnetLab(VnetLab):
    """tests/examples' vnet lab (alpha and bravo on one segment), in real time."""

    def __init__(self, wasm: Callable[[str], Path]) -> None:
        self.wasm = wasm
        self.net = Network(virtual_time=False)
        self.lan = self.net.segment("lan")
        self.hosts = {}
        self.nics = {}
        for spec in HOSTS:
            host = self.net.host(spec.name)
            self.nics[spec.name] = host.connect(self.lan, spec.ipv4, spec.ipv6)
            self.hosts[spec.name] = host
        self.programs = []


@pytest.fixture(scope="module")
def native_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crash") / "crash_midflow"
    proc = subprocess.run(["gcc", "-O2", "-Wall", str(SOURCE), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or proc.stderr.strip():
        pytest.fail(f"gcc crash_midflow.c:\n{proc.stderr}", pytrace=False)
    return out


@pytest.fixture(scope="module")
def native_net() -> Iterator[NativeNet]:
    net = CrashNativeNet()
    try:
        net.create()
        yield net
    finally:
        net.delete()


@pytest.fixture
def crash_wasm(build_guest: Callable[..., Path]) -> Path:
    return build_guest(SOURCE)


def _run_case(lab: Lab, how: str, client_mode: str) -> tuple[str, int, str]:
    """Start the dying server and the victim; returns (victim's line, server's exit code,
    what the server printed)."""
    server = lab.start(HOSTS[0].name, "crash_midflow", "serve", PORT, how)
    server.wait_for("listening")
    victim = lab.start(HOSTS[1].name, "crash_midflow", client_mode, SERVER, PORT)
    assert victim.wait() == 0, victim.describe()
    code = server.wait()
    return victim.stdout.strip(), code, server.describe()


@pytest.mark.parametrize("case", list(CASES))
def test_the_peer_of_a_dying_guest_learns_of_it_as_linuxs_would(
        case: str, native_net: NativeNet, native_binary: Path, crash_wasm: Path) -> None:
    how, client_mode, expected = CASES[case]
    outcomes: dict[str, str] = {}
    native = NativeLab(native_net, lambda _name: native_binary)
    try:
        line, code, described = _run_case(native, how, client_mode)
    finally:
        native.close()
    assert re.fullmatch(expected, line), f"Linux itself: {line!r}\n{described}"
    assert code != 0 or how == "close", described  # the native server really died
    outcomes["linux"] = line

    virtual = VnetLab(lambda _name: crash_wasm)
    try:
        line, code, described = _run_case(virtual, how, client_mode)
        elapsed = virtual.net.scheduler.now_ns()
        guest = virtual.programs[0].guest
    finally:
        virtual.close()
    outcomes["vnet virtual time"] = line
    assert elapsed < VIRTUAL_LIMIT_NS, f"the victim needed {elapsed / 1e9:.1f} s of virtual time"
    if how.startswith("trap"):
        assert guest.trap is not None and code == 134, described
    elif how == "exit-unread":
        assert code == 3, described

    real = RealTimeVnetLab(lambda _name: crash_wasm)
    try:
        line, code, described = _run_case(real, how, client_mode)
    finally:
        real.close()
    outcomes["vnet real time"] = line

    for where, line in outcomes.items():
        assert re.fullmatch(expected, line), f"{where}: {line!r} (all: {outcomes})"
    if how != "trap-read":  # the flood's errno depends on timing, even on Linux
        assert len(set(outcomes.values())) == 1, outcomes
