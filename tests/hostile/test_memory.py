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

With GROW_MIB the attacker grows its linear memory only after its sockets
are full — wasmtime's cap on linear memory was fixed when it started, so
without more it would end at linear memory plus socket queues of about twice
its --max-memory. As a Linux memory cgroup whose memory.max counts socket
buffers, vnet notices (at the next host call, or the next epoch tick, 5 ms,
for a guest that makes none), drops what it can without breaking a promise
(queued datagrams, counted; TCP out-of-order data without SACK) and, if the
guest is still over, kills it: 137 and `vnet: guest killed: out of memory
(...)`. The victim beside it completes; a guest that grows but stays within
its limit, or gets back under it once its queued datagrams are dropped, runs
on.

The in-process tests below check the budget's rules on the stack itself:
payload a full budget cannot hold is dropped and retransmitted, never
lost, a datagram past the budget is dropped and counted, and reclaiming
drops queued datagrams (counted) and TCP out-of-order data the peer sends
again, never SACKed data.
"""

from __future__ import annotations

import hashlib
import random
import re
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
from vnet.link.impairment import Impairment
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


# --- growing linear memory after the sockets are full: the OOM kill ---------------------

OOM_LINE = re.compile(r"^vnet: guest killed: out of memory \(linear (\d+) MiB \+ sockets "
                      r"(\d+) MiB > --max-memory (\d+) MiB\)$")


@pytest.fixture(scope="module")
def grow_after(build_guest: Callable[..., Path],
               example_wasm: Callable[[str], Path]) -> AttackResult:
    """Sockets filled to the budget, then as much linear memory as malloc gives (64 MiB)."""
    wasm = build_guest(ATTACKS / "memory_attack.c", "-Wextra", "-Werror")
    return run_attack(wasm, [str(PAIRS), str(UDP_SOCKETS), "500", "64"], example_wasm("bulk"),
                      max_memory=ATTACKER_MAX_MEMORY, max_fds=4096)


def test_growing_past_the_limit_after_filling_sockets_is_an_oom_kill(
        grow_after: AttackResult) -> None:
    assert grow_after.attacker_exit == 137, grow_after.describe()
    lines = grow_after.attacker_stderr.splitlines()
    assert len(lines) == 1, grow_after.describe()
    found = OOM_LINE.match(lines[0])
    assert found, grow_after.describe()
    linear, sockets, limit = (int(n) for n in found.groups())
    assert limit == ATTACKER_MAX_MEMORY // MIB
    assert linear + sockets > limit and sockets < limit, grow_after.describe()
    # killed while growing: it never got to report what it grew, nor to finish
    assert "grown" not in grow_after.attacker_stdout, grow_after.describe()
    assert "done" not in grow_after.attacker_stdout.split(), grow_after.describe()
    assert grow_after.attacker_oom_kills == 1, grow_after.describe()
    assert grow_after.socket_memory_used_at_end == 0, grow_after.describe()  # sockets closed
    assert not grow_after.internal_errors, grow_after.describe()


def test_victim_completes_and_rss_stays_within_limits_beside_the_oom_kill(
        grow_after: AttackResult) -> None:
    assert grow_after.victims_done, grow_after.describe()
    sent, received = grow_after.victim_transfer()
    assert sent == received and sent.startswith(f"{VICTIM_MIB * MIB} bytes"), \
        grow_after.describe()
    assert grow_after.rss_growth < grow_after.max_memory_total + RSS_SLACK, grow_after.describe()


def test_a_guest_that_grows_within_its_limit_is_not_killed(
        build_guest: Callable[..., Path], example_wasm: Callable[[str], Path]) -> None:
    # 20 full connections hold ~17 MiB; 16 MiB of linear memory + 8 MiB grown: within 64 MiB
    wasm = build_guest(ATTACKS / "memory_attack.c", "-Wextra", "-Werror")
    within = run_attack(wasm, ["20", "0", "10", "8"], example_wasm("bulk"),
                        max_memory=ATTACKER_MAX_MEMORY, max_fds=4096)
    assert within.attacker_exit == 0 and within.attacker_stderr == "", within.describe()
    assert within.value("grown") == 8 and within.value("queued") > 8 * MIB, within.describe()
    assert within.attacker_oom_kills == 0 and within.attacker_memory_reclaimed == 0, \
        within.describe()
    assert within.victims_done, within.describe()


def test_queued_datagrams_are_dropped_to_get_back_under_the_limit(
        build_guest: Callable[..., Path], example_wasm: Callable[[str], Path]) -> None:
    # 100 UDP sockets full of datagrams (~40 MiB), then 16 MiB more linear memory: over
    # 64 MiB until the datagrams are dropped (counted), then well under: it runs on
    wasm = build_guest(ATTACKS / "memory_attack.c", "-Wextra", "-Werror")
    reclaimed = run_attack(wasm, ["0", str(UDP_SOCKETS), "10", "16"], example_wasm("bulk"),
                           max_memory=ATTACKER_MAX_MEMORY, max_fds=4096)
    assert reclaimed.attacker_exit == 0 and reclaimed.attacker_stderr == "", \
        reclaimed.describe()
    assert reclaimed.value("grown") == 16, reclaimed.describe()
    assert reclaimed.socket_memory_peak > 32 * MIB, reclaimed.describe()
    assert reclaimed.attacker_memory_reclaimed > 16 * MIB, reclaimed.describe()
    assert reclaimed.attacker_host_drops.get("udp.drop.reclaimed", 0) > 100, \
        reclaimed.describe()
    assert reclaimed.attacker_oom_kills == 0, reclaimed.describe()
    assert reclaimed.victims_done, reclaimed.describe()


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

    # listening before the client starts: the two tasks may run in either order
    listener = b.socket(AF_INET, SOCK_STREAM)
    listener._core.memory = budget  # accepted connections are charged to it
    listener.bind(("10.0.0.2", 5001))
    listener.listen(1)

    def server() -> None:
        try:
            with listener:
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


def test_reclaim_drops_queued_datagrams_of_that_budget_only_and_counts_them() -> None:
    net, a, b = _lan()
    mine = SocketMemory(8 * MIB, parent=b.stack.socket_memory, name="mine")
    other = SocketMemory(8 * MIB, parent=b.stack.socket_memory, name="other")
    receivers = []
    for port, budget in ((9000, mine), (9001, mine), (9002, other)):
        rx = b.socket(AF_INET, SOCK_DGRAM)
        rx._core.memory = budget
        rx.bind(("10.0.0.2", port))
        rx.setblocking(False)
        receivers.append(rx)
    tx = a.socket(AF_INET, SOCK_DGRAM)
    for port in (9000, 9001, 9002):
        for _ in range(3):
            tx.sendto(b"d" * 1000, ("10.0.0.2", port))
    net.run_for(1)
    cost = truesize(1000, 4)
    assert mine.used == 6 * cost and other.used == 3 * cost
    with net.scheduler.lock, net.scheduler.atomic():
        freed = b.udp.reclaim(mine)
    assert freed == 6 * cost and mine.used == 0 and other.used == 3 * cost
    assert b.counters["udp.drop.reclaimed"] == 6
    for rx in receivers[:2]:
        with pytest.raises(BlockingIOError):
            rx.recv(2000)
    assert [receivers[2].recv(2000) for _ in range(3)] == [b"d" * 1000] * 3
    tx.sendto(b"after", ("10.0.0.2", 9000))  # the socket still works
    net.run_for(1)
    assert receivers[0].recv(100) == b"after"
    net.close()


@pytest.mark.parametrize("sack", [False, True])
def test_reclaim_prunes_out_of_order_data_without_sack_and_nothing_is_lost(sack: bool) -> None:
    net = Network(virtual_time=True, seed=3)
    # 1 ms of latency: a hole stays open for a round trip, so the receiver holds data
    # above it between two network turns (on a zero-latency link RACK repairs it
    # inside the turn that opened it)
    lan = net.segment("lan", latency_ns=1_000_000)
    a, b = net.host("a"), net.host("b")
    a.connect(lan, "10.0.0.1/24", tx_impairment=Impairment(loss=0.1, seed=5))
    b.connect(lan, "10.0.0.2/24")
    b.tcp.config.sack = sack
    budget = SocketMemory(8 * MIB, parent=b.stack.socket_memory, name="receiver")
    payload = random.Random(2).randbytes(MIB)
    received = bytearray()
    reading = [False]
    errors: list[str] = []

    def server() -> None:
        try:
            with b.socket(AF_INET, SOCK_STREAM) as listener:
                listener._core.memory = budget
                listener.bind(("10.0.0.2", 5001))
                listener.listen(1)
                sock, _ = listener.accept()
                while not reading[0]:  # hold everything until the test has reclaimed
                    net.wait(lambda: reading[0], 0.01)
                while chunk := sock.recv(65536):
                    received.extend(chunk)
                sock.close()
        except Exception as exc:
            errors.append(repr(exc))

    def client() -> None:
        try:
            sock = a.socket(AF_INET, SOCK_STREAM)
            sock.connect(("10.0.0.2", 5001))
            sock.sendall(payload)
            sock.close()
        except Exception as exc:
            errors.append(repr(exc))

    def out_of_order() -> int:
        return sum(conn.ooo.bytes for conn in b.tcp.memory_charged)

    net.spawn("server", server)
    net.spawn("client", client)
    give_up_ns = 60 * 1_000_000_000  # virtual time: run() has no wall-clock timeout
    assert net.scheduler.run(until=lambda: out_of_order() > 0 or bool(errors)
                             or net.scheduler.monotonic_ns() > give_up_ns)
    held = out_of_order()
    assert held > 0 and not errors  # a loss left a hole below data the receiver holds
    used_before = budget.used
    with net.scheduler.lock, net.scheduler.atomic():
        freed = b.tcp.reclaim(budget)
    if sack:  # SACKed blocks stay: the sender may never send them again
        assert freed == 0 and out_of_order() == held and budget.used == used_before
        assert b.counters["tcp.drop.ofo_pruned"] == 0
    else:
        assert freed == held and out_of_order() == 0 and budget.used == used_before - held
        assert b.counters["tcp.drop.ofo_pruned"] == 1
    reading[0] = True
    net.scheduler.run(until=lambda: len(received) == len(payload) or bool(errors)
                      or net.scheduler.monotonic_ns() > 3 * give_up_ns)
    assert not errors
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    net.close()


def test_a_host_call_over_the_limit_reclaims_first_and_runs_or_is_the_oom_kill() -> None:
    """The check at every host call's entry, through the real ABI bridge callback."""
    import ctypes

    import wasmtime

    from vnet.guest.abi import GuestExit, HostFunction, _make_callback
    from vnet.guest.context import GuestContext, GuestLimits
    from vnet.guest.memory import GuestMemory
    from vnet.scheduler import Scheduler

    ctx = GuestContext("g", Scheduler(virtual=True), [], [], GuestLimits(memory_bytes=64 * MIB),
                       random.Random(0))
    sockets = SocketMemory(64 * MIB, name="g")
    ctx.extensions["socket_memory"] = sockets
    verdicts: list[GuestExit | None] = []

    def enforce() -> GuestExit | None:  # stands for wasix.memory_limit_enforcer
        sockets.charge(-reclaimable[0])  # what a reclaim would give back
        reclaimable[0] = 0
        verdicts.append(GuestExit(137, "out of memory") if sockets.used + 40 * MIB > 64 * MIB
                        else None)
        return verdicts[-1]

    ctx.enforce_memory_limit = enforce

    # The guest's memory as the bridge sees it: its last known size, 40 MiB (a real
    # GuestMemory: on the compiled build the context's `memory` accepts nothing else).
    store = wasmtime.Store()
    linear = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(40 * MIB // 65536,
                                                                         None)))
    ctx.memory = GuestMemory(store, linear)
    assert ctx.memory.known_size == 40 * MIB
    ran: list[int] = []
    callback = _make_callback(HostFunction("t", "f", "i", "i", lambda _ctx, x: ran.append(x) or 0),
                              ctx)
    raw = (ctypes.c_ubyte * 16)()

    def call() -> int:  # the argument 7 in, the result (0) written over it
        ctypes.c_uint32.from_buffer(raw).value = 7
        return int(callback(None, None, ctypes.addressof(raw), 1))

    reclaimable = [0]
    sockets.charge(20 * MIB)  # 40 + 20 <= 64: no check beyond the compare
    assert call() == 0 and ran == [7] and verdicts == []
    reclaimable[0] = 8 * MIB
    sockets.charge(8 * MIB)  # 40 + 28 > 64; reclaiming 8 MiB brings it back: the call runs
    assert call() == 0 and ran == [7, 7] and verdicts == [None]
    sockets.charge(8 * MIB)  # over again, nothing to reclaim: the call traps, the guest dies
    assert call() != 0 and ran == [7, 7]
    assert ctx.exit_request is verdicts[-1] and ctx.exit_request is not None
    assert ctx.exit_request.code == 137
