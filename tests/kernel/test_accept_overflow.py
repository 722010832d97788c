"""40 clients connect at once to listen(16): as on Linux, every one gets in eventually.

The kernel's clients (tests/kernel/connect_burst.py, one thread per client,
released together) connect, send "hello N" and wait for the echo; the server
listens with a backlog of 16 and starts accepting only after a second, so
its SYN queue overflows into SYN cookies and its accept queue fills. Linux
drops the handshake-completing ACKs it has no room for (tcp_v4_syn_recv_sock,
ListenOverflows) and SYNs while the accept queue is full; the clients'
retransmissions get in as the server drains the queue. vnet used to reset
every SYN-cookie connection that found the queue full (24 ECONNRESET of 40).
Once with the server in the kernel (the reference, both ends in the
namespace), once with the server on a vnet host across the TUN bridge.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from vnet.network import SOCK_STREAM

from . import connect_burst
from .conftest import GUEST4, KERNEL4, KernelLab, wait_until

CLIENTS = 40
BACKLOG = 16
DELAY_S = 1.0
PORT = 7400
SCRIPT = str(Path(connect_burst.__file__).resolve())


def _clients(lab: KernelLab, addr: str) -> dict[str, int]:
    proc = lab.popen(sys.executable, "-I", SCRIPT, "clients", addr, str(PORT), str(CLIENTS),
                     name="clients")
    assert proc.wait(120) == 0, proc.describe()
    result: dict[str, int] = json.loads(bytes(proc.stdout).decode().strip().splitlines()[-1])
    return result


def test_kernel_listener_admits_all_forty(kernel_lab: Callable[..., KernelLab]) -> None:
    lab = kernel_lab()
    server = lab.popen(sys.executable, "-I", SCRIPT, "server", KERNEL4, str(PORT),
                       str(BACKLOG), str(DELAY_S), str(CLIENTS), name="server")
    server.wait_for(b"ready")
    assert _clients(lab, KERNEL4) == {"ok": CLIENTS}
    assert server.wait(60) == 0, server.describe()
    counters = lab.kernel_counters()
    assert counters["TcpExt.ListenOverflows"] > 0, "the kernel's queues never overflowed"


def test_vnet_listener_admits_all_forty_as_the_kernel_does(
        kernel_lab: Callable[..., KernelLab]) -> None:
    lab = kernel_lab()
    listening: list[bool] = []

    def server() -> int:
        with lab.guest.socket(connect_burst.socket.AF_INET, SOCK_STREAM) as sock:
            sock.bind((GUEST4, PORT))
            return connect_burst.serve(sock, BACKLOG, DELAY_S, CLIENTS,
                                       ready=lambda: listening.append(True))

    job = lab.start_guest(server)
    wait_until(lambda: bool(listening) or job.done, what="the guest listener")
    outcome = _clients(lab, GUEST4)
    counters = lab.guest.counters
    assert outcome == {"ok": CLIENTS}, (outcome, dict(counters))
    assert job.result(60) == CLIENTS
    assert counters["tcp.syncookies_sent"] > 0, "the SYN queue never overflowed"
    assert counters["tcp.drop.accept_queue_full"] + counters["tcp.drop.listen_overflow"] > 0
