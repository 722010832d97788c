"""A hostile guest's pipes and dup'ed descriptors: bounded by its fd limit and its memory.

The attacker (tests/hostile/c/pipe_attack.c) opens pipes until EMFILE and
fills every one without reading, dups a descriptor until EMFILE, dup2s past
the limit, and (as a guest) calls vnet_v1's fd_pipe, fd_dup, host_name and
sock_recvmsg with pointers outside its memory. Beside it, the victim moves
8 MiB over TCP between two other hosts (see guestres_support). The same C
runs natively, as an unprivileged process with the same RLIMIT_NOFILE, for
Linux's errnos.

A pipe holds at most 64 KiB, as on Linux, and what it holds is charged to the
guest's --max-memory like its socket queues: once that budget is used, a
write is EAGAIN (the pipe counts as full), so 500 full pipes cannot make vnet
hold more than the guest was allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.guestres_support import (
    ATTACKS,
    MIB,
    RSS_SLACK,
    AttackResult,
    native_available,
    run_attack,
    run_native,
)

ATTACKER_MAX_MEMORY = 32 * MIB
LINEAR_MEMORY = 16 * MIB  # the least a zig-built guest's linear memory starts with
MAX_FDS = 1024
LINUX_ERRNOS = {"pipe_at_limit": (-1, "EMFILE"), "pipe_full": (-1, "EAGAIN"),
                "dup_at_limit": (-1, "EMFILE"), "dup2_past_limit": (-1, "EBADF")}


@pytest.fixture(scope="module")
def attack(build_guest: Callable[..., Path], example_wasm: Callable[[str], Path]) -> AttackResult:
    wasm = build_guest(ATTACKS / "pipe_attack.c", "-Wextra", "-Werror")
    return run_attack(wasm, [], example_wasm("bulk"), max_memory=ATTACKER_MAX_MEMORY,
                      max_fds=MAX_FDS, virtual_time=True)


def test_limits_fail_with_linuxs_errnos(attack: AttackResult) -> None:
    calls = attack.calls()
    assert {name: calls.get(name) for name in LINUX_ERRNOS} == LINUX_ERRNOS, attack.describe()
    assert attack.attacker_exit == 0 and not attack.internal_errors, attack.describe()
    # stdio and the pipes fill the table: 1024 fds = 3 + 2 x 510, one left over
    assert attack.value("pipes") == (MAX_FDS - 3) // 2, attack.describe()


def test_bad_pointers_are_efault(attack: AttackResult) -> None:
    calls = attack.calls()
    for name in ("raw_fd_pipe", "raw_fd_dup", "raw_host_name", "raw_sock_recvmsg"):
        assert calls.get(name) == (-1, "EFAULT"), attack.describe()


def test_pipe_bytes_stay_within_the_guests_memory(attack: AttackResult) -> None:
    held = attack.value("pipe_bytes")
    # far below 510 x 64 KiB: what --max-memory leaves beside the linear memory
    assert 4 * MIB < held <= ATTACKER_MAX_MEMORY - LINEAR_MEMORY, attack.describe()
    assert attack.socket_memory_peak <= ATTACKER_MAX_MEMORY, attack.describe()
    assert attack.attacker_oom_kills == 0, attack.describe()
    assert attack.rss_growth < attack.max_memory_total + RSS_SLACK, attack.describe()


def test_the_victim_transfer_completes(attack: AttackResult) -> None:
    sent, received = attack.victim_transfer()
    assert attack.victims_done and sent == received and sent.startswith("8388608 bytes"), (
        attack.describe())


def test_linux_gives_the_same_errnos(tmp_path: Path) -> None:
    why = native_available()
    if why:
        pytest.fail(why, pytrace=False)
    out = run_native(ATTACKS / "pipe_attack.c", [], tmp_path, max_fds=MAX_FDS)
    calls = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "call":
            calls.setdefault(parts[1], (int(parts[2]), parts[3]))
    assert {name: calls.get(name) for name in LINUX_ERRNOS} == LINUX_ERRNOS, out
    assert f"pipes {(MAX_FDS - 3) // 2}" in out.splitlines(), out
    # natively every pipe takes its 64 KiB
    assert f"pipe_bytes {(MAX_FDS - 3) // 2 * 65536}" in out.splitlines(), out
