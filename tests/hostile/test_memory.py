"""A hostile guest's socket memory: counted against its --max-memory, bounded per host.

The attacker (tests/hostile/c/memory_attack.c) opens 1000 TCP connections
to itself and 100 UDP sockets, asks for the largest buffers (SO_RCVBUFFORCE
and SO_SNDBUFFORCE: EPERM without CAP_NET_ADMIN; SO_RCVBUF/SO_SNDBUF of
INT_MAX: clamped to rmem_max/wmem_max, 212992, and doubled) and
SO_PRIORITY 7 (EPERM) and 6, fills every connection and floods every UDP
socket, then holds it all. Without a budget those queues could hold
1000 x 2 x 425984 bytes (850 MB); with it, everything the guest's socket
queues hold is charged to the guest — at most its --max-memory (64 MiB)
less its linear memory — so vnet's RSS grows by less than the guests'
limits plus guestres_support.RSS_SLACK. Beside it the victim moves 8 MiB
over TCP between two other hosts and finishes. The same C runs natively as
the Linux reference for the errnos and the reported buffer sizes.

The in-process tests below check the budget's rules on the stack itself:
payload a full budget cannot hold is dropped and retransmitted, never
lost, and a datagram past the budget is dropped and counted.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path
from socket import AF_INET, SOCK_DGRAM, SOCK_STREAM
from typing import Any

import pytest

from stack.socket_memory import SocketMemory
from stack.udp import truesize
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
from vnet.network import Network

ATTACKER_MAX_MEMORY = 64 * MIB
PAIRS, UDP_SOCKETS = 1000, 100
LINUX_OPTION_ERRNOS = {"so_rcvbufforce": (-1, "EPERM"), "so_sndbufforce": (-1, "EPERM"),
                       "so_rcvbuf": (0, "OK"), "so_sndbuf": (0, "OK"),
                       "so_priority_7": (-1, "EPERM"), "so_priority_6": (0, "OK")}
RMEM_MAX = WMEM_MAX = 212992  # Linux's defaults, and vnet's


@pytest.fixture(scope="module")
def attack(build_guest: Callable[..., Path], example_wasm: Callable[[str], Path]) -> AttackResult:
    wasm = build_guest(ATTACKS / "memory_attack.c", "-Wextra", "-Werror")
    return run_attack(wasm, [str(PAIRS), str(UDP_SOCKETS), "500"], example_wasm("bulk"),
                      max_memory=ATTACKER_MAX_MEMORY, max_fds=4096)


def test_forced_buffers_and_high_priority_are_eperm_and_sizes_clamped(
        attack: AttackResult) -> None:
    calls = attack.calls()
    assert {name: calls.get(name) for name in LINUX_OPTION_ERRNOS} == LINUX_OPTION_ERRNOS, \
        attack.describe()
    assert attack.value("rcvbuf") == 2 * RMEM_MAX, attack.describe()
    assert attack.value("sndbuf") == 2 * WMEM_MAX, attack.describe()
    assert attack.attacker_exit == 0 and not attack.internal_errors, attack.describe()


def test_socket_queues_stay_within_the_guests_memory_limit(attack: AttackResult) -> None:
    assert attack.value("pairs") == PAIRS, attack.describe()  # connections are not refused
    queued = attack.value("queued")
    # the sends stopped once the budget (64 MiB less linear memory, less the receive
    # reserve) was used: far less than the 1000 x 851968 bytes the buffers would allow
    assert 16 * MIB < queued < ATTACKER_MAX_MEMORY, attack.describe()
    assert attack.socket_memory_peak < ATTACKER_MAX_MEMORY - 16 * MIB, attack.describe()
    assert attack.attacker_host_drops.get("udp.drop.memory", 0) > 0, attack.describe()
    assert attack.socket_memory_used_at_end == 0, attack.describe()  # all given back


def test_victim_completes_beside_the_memory_hog(attack: AttackResult) -> None:
    assert attack.victims_done, attack.describe()
    sent, received = attack.victim_transfer()
    assert sent == received and sent.startswith(f"{VICTIM_MIB * MIB} bytes"), attack.describe()


def test_vnet_rss_stays_within_the_guests_limits(attack: AttackResult) -> None:
    assert attack.rss_growth < attack.max_memory_total + RSS_SLACK, attack.describe()


def test_sockets_past_the_budget_are_enobufs(build_guest: Callable[..., Path],
                                             example_wasm: Callable[[str], Path]) -> None:
    # 20 MiB less ~16 MiB of linear memory leaves room for ~500 sockets at 8 KiB each
    wasm = build_guest(ATTACKS / "memory_attack.c", "-Wextra", "-Werror")
    small = run_attack(wasm, ["1000", "0", "10"], example_wasm("bulk"), max_memory=20 * MIB,
                       max_fds=4096)
    failed = {name: value for name, value in small.calls().items() if name.startswith("pair_")}
    assert list(failed.values()) == [(-1, "ENOBUFS")], small.describe()
    assert 100 < small.value("pairs") < 500, small.describe()
    assert small.attacker_exit == 0 and not small.internal_errors, small.describe()
    assert small.victims_done, small.describe()
    assert small.socket_memory_used_at_end == 0, small.describe()


def test_linux_gives_the_same_errnos_and_doubles_its_rmem_max(tmp_path: Path) -> None:
    reason = native_available()
    if reason:
        pytest.fail(reason, pytrace=False)
    stdout = run_native(ATTACKS / "memory_attack.c", ["20", "2", "10"], tmp_path, max_fds=4096)
    native = AttackResult(stdout, 0, None, "", "", True, 0, 0, 0)
    calls = native.calls()
    assert {name: calls.get(name) for name in LINUX_OPTION_ERRNOS} == LINUX_OPTION_ERRNOS, stdout
    # the kernel clamps to its own net.core.rmem_max (raised on some machines), doubled
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    wmem_max = int(Path("/proc/sys/net/core/wmem_max").read_text())
    assert native.value("rcvbuf") == 2 * rmem_max, stdout
    assert native.value("sndbuf") == 2 * wmem_max, stdout


# --- the budget's rules, in process -----------------------------------------------------

def _lan() -> tuple[Network, Any, Any]:
    net = Network(virtual_time=True, seed=3)
    lan = net.segment("lan")
    a, b = net.host("a"), net.host("b")
    a.connect(lan, "10.0.0.1/24")
    b.connect(lan, "10.0.0.2/24")
    return net, a, b


def test_tcp_payload_past_the_budget_is_dropped_then_retransmitted_not_lost() -> None:
    net, a, b = _lan()
    budget = SocketMemory(60_000, parent=b.stack.socket_memory, name="small")
    payload = random.Random(1).randbytes(2 * MIB)
    received = bytearray()
    errors: list[str] = []

    def server() -> None:
        try:
            with b.socket(AF_INET, SOCK_STREAM) as listener:
                listener._core.memory = budget  # accepted connections are charged to it
                listener.bind(("10.0.0.2", 5001))
                listener.listen(1)
                sock, _ = listener.accept()
                while chunk := sock.recv(1000):
                    received.extend(chunk)
                sock.close()
        except Exception as exc:  # reported below, not lost in a task
            errors.append(repr(exc))

    def client() -> None:
        try:
            sock = a.socket(AF_INET, SOCK_STREAM)
            sock.connect(("10.0.0.2", 5001))
            sock.sendall(payload)
            sock.close()
        except Exception as exc:
            errors.append(repr(exc))

    net.spawn("server", server)
    net.spawn("client", client)
    net.scheduler.run(until=lambda: len(received) == len(payload) or bool(errors),
                      timeout_s=120)
    net.run_for(1)
    assert not errors
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    assert budget.peak <= 60_000 < 131072  # less than one receive window: it did bind
    assert budget.refused > 0 and b.counters["tcp.drop.memory"] > 0
    assert budget.used == 0 and b.stack.socket_memory.used == 0
    net.close()


def test_datagrams_past_the_budget_are_dropped_and_counted() -> None:
    net, a, b = _lan()
    cost = truesize(20_000, 4)
    budget = SocketMemory(4 * cost + 100, parent=b.stack.socket_memory, name="small")
    rx = b.socket(AF_INET, SOCK_DGRAM)
    rx._core.memory = budget
    rx.bind(("10.0.0.2", 9000))
    tx = a.socket(AF_INET, SOCK_DGRAM)
    for _ in range(10):  # SO_RCVBUF (212992) would hold all ten
        tx.sendto(b"d" * 20_000, ("10.0.0.2", 9000))
    net.run_for(1)
    rx.setblocking(False)
    got = 0
    while True:
        try:
            rx.recv(65536)
        except BlockingIOError:
            break
        got += 1
    assert got == 4
    assert b.counters["udp.drop.memory"] == 6
    assert budget.peak == 4 * cost and budget.used == 0
    net.close()
