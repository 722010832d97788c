"""A hostile guest's vectored I/O: bounded as Linux bounds it, copied only as far as used.

The attacker (tests/hostile/c/iovecs_attack.c) calls writev/readv with 1025
and with two million iovecs (Linux: EINVAL, UIO_MAXIOV is 1024),
sendmsg/recvmsg with as many (Linux: EMSGSIZE), a non-blocking writev of
256 iovecs of 4 MiB that all cover the same 4 MiB region (a stream takes
what its buffers have room for: a short write), and a UDP sendmsg of the
same (EMSGSIZE). Beside it, the victim moves 8 MiB over TCP between two
other hosts. Each scenario runs in a vnet process of its own (see
guestres_support), in virtual and in real time; the same C runs natively
as the Linux reference.

Before vnet bounded these calls, the 256 x 4 MiB writev made it copy 1 GiB
(RSS +700 MB for a 64 MiB guest) and each two-million-iovec call held the
network lock for seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.guestres_support import (
    ATTACKS,
    MIB,
    RSS_SLACK,
    VICTIM_MIB,
    AttackResult,
    native_available,
    run_attack,
    run_native,
)
from vnet.guest.wasi_core import MAX_IO_BYTES

ATTACKER_MAX_MEMORY = 64 * MIB
ERRNO_CALLS = ("writev_1024", "writev_1025", "readv_1025", "sendmsg_1025", "recvmsg_1025",
               "writev_2000000", "readv_2000000", "sendmsg_2000000", "sendmsg_256x4MiB_udp")
LINUX_ERRNOS = {"writev_1024": (1024, "OK"), "writev_1025": (-1, "EINVAL"),
                "readv_1025": (-1, "EINVAL"), "sendmsg_1025": (-1, "EMSGSIZE"),
                "recvmsg_1025": (-1, "EMSGSIZE"), "writev_2000000": (-1, "EINVAL"),
                "readv_2000000": (-1, "EINVAL"), "sendmsg_2000000": (-1, "EMSGSIZE"),
                "sendmsg_256x4MiB_udp": (-1, "EMSGSIZE")}
# the most one connection may hold: SO_SNDBUF and the peer's SO_RCVBUF, each at most
# 2 x wmem_max/rmem_max (212992)
MOST_A_CONNECTION_HOLDS = 2 * 2 * 212992


@pytest.fixture(scope="module", params=[True, False], ids=["virtual", "real"])
def attack(request: pytest.FixtureRequest, build_guest: Callable[..., Path],
           example_wasm: Callable[[str], Path],
           tmp_path_factory: pytest.TempPathFactory) -> AttackResult:
    wasm = build_guest(ATTACKS / "iovecs_attack.c", "-Wextra", "-Werror")
    out = tmp_path_factory.mktemp("out")
    result = run_attack(wasm, ["3", "/out/big"], example_wasm("bulk"),
                        max_memory=ATTACKER_MAX_MEMORY, virtual_time=request.param, preopen=out)
    result.file_size = (out / "big").stat().st_size if (out / "big").exists() else -1
    (out / "big").unlink(missing_ok=True)
    return result


def test_too_many_iovecs_fail_at_once_with_linuxs_errno(attack: AttackResult) -> None:
    calls = attack.calls()
    assert {name: calls.get(name) for name in ERRNO_CALLS} == LINUX_ERRNOS, attack.describe()
    assert attack.attacker_exit == 0 and not attack.internal_errors, attack.describe()
    # every one of the repeated two-million-iovec calls failed the same way
    lines = attack.attacker_stdout.splitlines()
    assert lines.count("call writev_2000000 -1 EINVAL") == 3, attack.describe()
    assert lines.count("call sendmsg_2000000 -1 EMSGSIZE") == 3, attack.describe()


def test_overlapping_4mib_iovecs_are_a_short_write_of_what_the_socket_takes(
        attack: AttackResult) -> None:
    calls = attack.calls()
    first, errno_name = calls["writev_256x4MiB_tcp"]
    assert errno_name == "OK" and first > 0, attack.describe()
    queued = attack.value("queued")
    assert first <= queued <= MOST_A_CONNECTION_HOLDS, attack.describe()
    assert "call writev_256x4MiB_tcp -1 EAGAIN" in attack.attacker_stdout, attack.describe()


def test_overlapping_iovecs_to_a_file_are_a_short_write_of_64_mib(attack: AttackResult) -> None:
    # vnet moves at most 64 MiB per call (Linux: 0x7ffff000), copied 1 MiB at a time
    assert attack.calls()["writev_256x4MiB_file"] == (MAX_IO_BYTES, "OK"), attack.describe()
    assert attack.file_size == MAX_IO_BYTES


def test_victim_completes_its_transfer_beside_the_attacker(attack: AttackResult) -> None:
    assert attack.victims_done, attack.describe()
    sent, received = attack.victim_transfer()
    assert sent == received and sent.startswith(f"{VICTIM_MIB * MIB} bytes"), attack.describe()


def test_vnet_rss_stays_within_the_guests_limits(attack: AttackResult) -> None:
    assert attack.rss_growth < attack.max_memory_total + RSS_SLACK, attack.describe()
    # far below: nothing close to the 1 GiB the iovecs describe was ever copied
    assert attack.rss_growth < ATTACKER_MAX_MEMORY, attack.describe()


def test_linux_gives_the_same_errnos(tmp_path: Path) -> None:
    reason = native_available()
    if reason:
        pytest.fail(reason, pytrace=False)
    stdout = run_native(ATTACKS / "iovecs_attack.c", ["1"], tmp_path)
    native = AttackResult(stdout, 0, None, "", "", True, 0, 0, 0)
    calls = native.calls()
    assert {name: calls.get(name) for name in ERRNO_CALLS} == LINUX_ERRNOS, stdout
    assert calls["writev_256x4MiB_tcp"][0] > 0, stdout  # Linux also writes short
