"""poll_oneoff's first try without the network lock answers exactly as the locked call.

vnet.guest.wasi_core.poll_ready_unlocked answers a poll without the network
lock when a UDP socket it watches is ready already (vnet.guest.abi.UNLOCKED_FIRST);
anything else — nothing ready, an error to report, a descriptor that is not a
UDP socket, a range outside memory, a guest with threads — must be left to the
locked poll_oneoff. What a guest could observe: the events and the count
written to its memory, and the call's errno. Each case runs both on the same
state (a real network, a real UDP socket, a wasm linear memory) and compares
the bytes they write; where the unlocked try declines, the locked call gives
the answer (or the errno) as before. Under a second of CPU.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import wasmtime

from vnet.guest.context import GuestContext, GuestLimits
from vnet.guest.fdtable import InputStream
from vnet.guest.memory import GuestFault, GuestMemory
from vnet.guest.sockets import SocketDescription
from vnet.guest.wasi_core import poll_oneoff, poll_ready_unlocked
from vnet.guest.wasi_types import Errno, WasiError
from vnet.network import Network

SUBSCRIPTION = struct.Struct("<QB7xI4xQQH6x")  # userdata, tag, fd or clock id, timeout, -, flags
CLOCK, FD_READ, FD_WRITE = 0, 1, 2
MONOTONIC = 1
IN, OUT, NEVENTS = 1024, 4096, 8000
OUT_SIZE = 32 * 8  # room for eight events


@dataclass
class Guest:
    ctx: GuestContext
    memory: GuestMemory
    ready_fd: int  # a UDP socket with a datagram queued
    idle_fd: int  # a UDP socket with nothing queued
    stream_fd: int  # a readable stream that is no socket (its poll needs the lock)


@pytest.fixture
def guest() -> Iterator[Guest]:
    net = Network(virtual_time=True)
    host = net.host("alpha")
    store = wasmtime.Store()
    linear = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, None)))
    ctx = GuestContext("g", net.scheduler, ["g"], [], GuestLimits(), random.Random(0))
    ctx.memory = GuestMemory(store, linear)
    fds = []
    for port in (5000, 5001):
        core = host.udp.socket(socket.AF_INET)
        core.bind(bytes([127, 0, 0, 1]), port)
        fds.append(ctx.fds.add(SocketDescription(host, core, socket.AF_INET,
                                                 socket.SOCK_DGRAM, 17)))
    with net.scheduler.atomic():
        host.udp.socket(socket.AF_INET).sendto(b"x" * 64, bytes([127, 0, 0, 1]), 5000)
    stream_fd = ctx.fds.add(InputStream(b"abc"))
    yield Guest(ctx, ctx.memory, fds[0], fds[1], stream_fd)
    net.close()


def write_subscriptions(mem: GuestMemory, rows: list[tuple[int, int, int, int, int]]) -> None:
    for index, (userdata, tag, ident, timeout, flags) in enumerate(rows):
        mem.pack(SUBSCRIPTION, IN + index * SUBSCRIPTION.size, userdata, tag, ident, timeout,
                 0, flags)


def results(mem: GuestMemory) -> bytes:
    return mem.read(OUT, OUT_SIZE) + mem.read(NEVENTS, 4)


def clear_results(mem: GuestMemory) -> None:
    mem.write(OUT, b"\xee" * OUT_SIZE)
    mem.write(NEVENTS, b"\xee" * 4)


def locked(g: Guest, count: int, out: int = OUT) -> tuple[int, bytes]:
    clear_results(g.memory)
    try:
        errno = poll_oneoff(g.ctx, IN, out, count, NEVENTS)
    except WasiError as e:
        errno = int(e.errno)
    except GuestFault:
        errno = int(Errno.EFAULT)
    return errno, results(g.memory)


def unlocked(g: Guest, count: int, out: int = OUT) -> tuple[int | None, bytes]:
    clear_results(g.memory)
    try:
        answer = poll_ready_unlocked(g.ctx, IN, out, count, NEVENTS)
    except Exception:  # what the bridge does with a raising first try: the locked call runs
        answer = None
    return answer, results(g.memory)


def test_a_ready_socket_is_answered_with_the_locked_calls_bytes(guest: Guest) -> None:
    for rows in (
        [(7, FD_READ, guest.ready_fd, 0, 0)],
        [(7, FD_READ, guest.ready_fd, 0, 0), (8, CLOCK, MONOTONIC, 500_000_000, 0)],
        [(7, FD_READ, guest.ready_fd, 0, 0), (8, CLOCK, MONOTONIC, 0, 0)],  # both events
        [(7, FD_READ, guest.idle_fd, 0, 0), (8, FD_READ, guest.ready_fd, 0, 0),
         (9, FD_WRITE, guest.idle_fd, 0, 0)],
    ):
        write_subscriptions(guest.memory, rows)
        answer, written = unlocked(guest, len(rows))
        assert answer == Errno.SUCCESS, rows
        assert (Errno.SUCCESS, written) == locked(guest, len(rows)), rows
        events = int.from_bytes(written[-4:], "little")
        assert events >= 1 and written[:8] != b"\xee" * 8


def test_the_unlocked_try_declines_what_it_must_leave_to_the_locked_call(
        guest: Guest) -> None:
    cases = {
        "nothing ready": ([(1, FD_READ, guest.idle_fd, 0, 0),
                           (2, CLOCK, MONOTONIC, 10**9, 0)], Errno.SUCCESS),
        "a closed fd beside a ready one": ([(1, FD_READ, 99, 0, 0),
                                            (2, FD_READ, guest.ready_fd, 0, 0)], Errno.SUCCESS),
        "an unknown clock": ([(1, CLOCK, 7, 0, 0), (2, FD_READ, guest.ready_fd, 0, 0)],
                             Errno.SUCCESS),
        "an unknown subscription type": ([(1, FD_READ, guest.ready_fd, 0, 0), (2, 9, 0, 0, 0)],
                                         Errno.EINVAL),
        "a readable stream": ([(1, FD_READ, guest.stream_fd, 0, 0),
                               (2, FD_READ, guest.ready_fd, 0, 0)], Errno.SUCCESS),
    }
    for name, (rows, errno) in cases.items():
        write_subscriptions(guest.memory, rows)
        answer, written = unlocked(guest, len(rows))
        assert answer is None, name
        assert written == b"\xee" * (OUT_SIZE + 4), name  # nothing written
        if name == "nothing ready":
            continue  # the locked call would wait for the clock
        got_errno, _ = locked(guest, len(rows))
        assert got_errno == errno, name


def test_ranges_outside_memory_and_threaded_guests_go_to_the_locked_call(guest: Guest) -> None:
    write_subscriptions(guest.memory, [(7, FD_READ, guest.ready_fd, 0, 0)])
    top = guest.memory.size
    answer, _ = unlocked(guest, 1, out=top - 8)
    assert answer is None
    assert locked(guest, 1, out=top - 8)[0] == Errno.EFAULT
    for count in (0, 2 * guest.ctx.limits.max_fds + 2):
        assert unlocked(guest, count)[0] is None
        assert locked(guest, count)[0] == Errno.EINVAL
    guest.ctx.thread_blocker = lambda ready, deadline: bool(ready())
    assert unlocked(guest, 1)[0] is None
    assert locked(guest, 1)[0] == Errno.SUCCESS
