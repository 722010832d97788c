"""The kernel, sending to vnet over a reordering bridge, learns of its spurious
retransmissions from vnet's D-SACKs (RFC 2883) and undoes their congestion response.

A kernel `nc` sends VNET_DSACK_BYTES (default 16 MB) to a guest socket through
the TUN bridge, which reorders 5 % of the frames in both directions (no loss:
a real loss in a recovery episode forbids the kernel's undo). Reordering makes
the kernel retransmit segments that were only late; when the late original and
the retransmission both reach vnet, vnet's ACK reports the second copy in a
D-SACK block, and the kernel counts it (TcpExt.TCPDSACKRecv) and restores its
window for the episodes it finds spurious (TcpExt.TCPDSACKUndo, or
TCPPartialUndo/TCPFullUndo when the echoed timestamp decided first). The
counters are read in the kernel's namespace (/proc/net/netstat, what `ip netns
exec NS nstat -az` prints) before and after the transfer; the deltas and the
kernel's retransmission count go to `interop_results`.

The other way round, vnet sends the same amount to a kernel `nc -l` over a
link that also drops 2 %: the kernel's D-SACKs (net.ipv4.tcp_dsack=1, the
default) reach vnet, which counts them and undoes the recoveries they show
were spurious (its `dsacks_in` and `undos` statistics).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable

from vnet.link.impairment import Impairment
from vnet.network import SOCK_STREAM

from .conftest import GUEST4, KERNEL4, KernelLab, Payload, sha256_file

SIZE = int(os.environ.get("VNET_DSACK_BYTES", 16_000_000))
TIMEOUT_S = 120.0
KEYS = ("Tcp.OutSegs", "Tcp.RetransSegs", "TcpExt.TCPDSACKRecv", "TcpExt.TCPDSACKUndo",
        "TcpExt.TCPDSACKRecvSegs", "TcpExt.TCPDSACKIgnoredNoUndo", "TcpExt.TCPDSACKIgnoredOld",
        "TcpExt.TCPLossUndo", "TcpExt.TCPFullUndo", "TcpExt.TCPPartialUndo",
        "TcpExt.TCPSpuriousRTOs", "TcpExt.TCPSpuriousRtxHostQueues", "TcpExt.TCPSACKReorder",
        "TcpExt.TCPTimeouts", "TcpExt.TCPLossProbes", "TcpExt.TCPFastRetrans")


#: How Linux counts a recovery it undid as spurious: by D-SACK when the D-SACK decides it,
#: by the echoed timestamp (Eifel) when that came first (TCPFullUndo/TCPPartialUndo), or
#: after an RTO (TCPLossUndo). With timestamps on, the timestamp often wins the race.
UNDOS = ("TCPDSACKUndo", "TCPFullUndo", "TCPPartialUndo", "TCPLossUndo")


def test_kernel_sender_counts_dsacks_and_undoes_spurious_retransmissions(
        kernel_lab: Callable[..., KernelLab], payloads: Callable[[int], Payload],
        interop_results: Callable[..., None]) -> None:
    """The kernel undoes a recovery only when every retransmission of the episode was
    D-SACKed: one real loss in the episode forbids it. So this direction reorders without
    losing (every retransmission the kernel makes is spurious), and a second transfer runs
    when the first happened to give the kernel no episode to undo."""
    payload = payloads(SIZE)
    lab = kernel_lab(to_kernel_impairment=Impairment(reorder=0.05, seed=31),
                     from_kernel_impairment=Impairment(reorder=0.05, seed=32))
    totals: dict[str, int] = {}
    for port in (5010, 5011):
        kernel = _kernel_to_vnet_transfer(lab, payload, port, interop_results)
        for key, value in kernel.items():
            totals[key] = totals.get(key, 0) + value
        if sum(totals[key] for key in UNDOS) > 0:
            break
    assert totals["TCPDSACKRecv"] > 0, totals
    assert sum(totals[key] for key in UNDOS) > 0, totals


def _kernel_to_vnet_transfer(lab: KernelLab, payload: Payload, port: int,
                             interop_results: Callable[..., None]) -> dict[str, int]:
    """`nc` in the kernel sends the payload to a guest socket; the kernel's counter deltas."""
    listening: list[bool] = []

    def receive() -> tuple[str, int, dict[str, int]]:
        with lab.guest.socket(socket.AF_INET, SOCK_STREAM) as server:
            server.bind((GUEST4, port))
            server.listen(1)
            listening.append(True)
            server.settimeout(TIMEOUT_S)
            conn, _peer = server.accept()
            with conn:
                conn.settimeout(TIMEOUT_S)
                digest = hashlib.sha256()
                total = 0
                while data := conn.recv(262144):
                    digest.update(data)
                    total += len(data)
                core = conn._core.conn  # type: ignore[union-attr]
                stats = dict(core.stats) if core is not None else {}
                return digest.hexdigest(), total, stats

    job = lab.start_guest(receive, name=f"dsack-receive-{port}")
    while not listening and not job.done:
        time.sleep(0.01)
    before = lab.kernel_counters()
    with open(payload.path, "rb") as data:
        sender = lab.popen("nc", "-n", "-N", GUEST4, str(port), stdin=data, name="nc")
    digest, total, ours = job.result(TIMEOUT_S + 10)
    assert sender.wait() == 0, sender.describe()
    after = lab.kernel_counters()
    kernel = {key.split(".", 1)[1]: after.get(key, 0) - before.get(key, 0) for key in KEYS}
    interop_results("kernel->vnet dsack", bytes=SIZE, kernel=kernel,
                    vnet_dsacks_sent=ours.get("dsacks_sent", 0),
                    vnet_ooo_segments=ours.get("ooo_segments", 0))
    assert total == SIZE and digest == payload.sha256
    assert ours.get("dsacks_sent", 0) > 0, ours
    return kernel


def test_vnet_sender_uses_the_kernels_dsacks_to_undo_spurious_recoveries(
        kernel_lab: Callable[..., KernelLab], payloads: Callable[[int], Payload],
        interop_results: Callable[..., None]) -> None:
    payload = payloads(SIZE)
    lab = kernel_lab(to_kernel_impairment=Impairment(loss=0.02, reorder=0.05, seed=33),
                     from_kernel_impairment=Impairment(loss=0.02, reorder=0.05, seed=34))
    out_path = lab.tmp / "dsack-received-by-kernel.bin"
    with open(out_path, "wb") as out:
        receiver = lab.popen("nc", "-n", "-l", KERNEL4, "5011", stdout=out, name="nc -l")
    lab.wait_listening(5011)
    before = lab.kernel_counters()

    def send() -> dict[str, int]:
        with lab.guest.socket(socket.AF_INET, SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT_S)
            sock.connect((KERNEL4, 5011))
            sock.sendall(payload.data)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""
            core = sock._core.conn  # type: ignore[union-attr]
            return dict(core.stats) if core is not None else {}

    ours = lab.in_guest(send, timeout_s=TIMEOUT_S + 10, name="dsack-send")
    receiver.wait()
    after = lab.kernel_counters()
    sent = {key.split(".", 1)[1]: after.get(key, 0) - before.get(key, 0)
            for key in ("TcpExt.TCPDSACKOldSent", "TcpExt.TCPDSACKOfoSent")}
    interop_results("vnet->kernel dsack", bytes=SIZE, kernel=sent,
                    vnet={k: ours.get(k, 0) for k in ("retransmits", "fast_retransmits",
                                                      "timeouts", "tlp_probes", "dsacks_in",
                                                      "undos", "rack_recoveries")})
    assert out_path.stat().st_size == SIZE and sha256_file(out_path) == payload.sha256
    assert sent["TCPDSACKOldSent"] + sent["TCPDSACKOfoSent"] > 0, sent
    assert ours["dsacks_in"] > 0 and ours["undos"] > 0, ours
