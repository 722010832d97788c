"""100 MB each way between a guest host and the kernel, clean and over a lossy bridge.

Our stack sends to a kernel `nc -l` (guest connects) and receives from a
kernel `nc` (kernel connects); the receiver's SHA-256 must equal the
sender's. The impaired runs drop 2 % and reorder 5 % of the packets in both
directions at the bridge port, so our retransmission, SACK and reassembly
meet the kernel's. Throughput (MB/s, 10^6 bytes per second, from the
guest's first byte to the receiver's end of stream), both sides'
retransmission counters, the TUN device's drops and vnet's drop counters are
reported through `interop_results`. VNET_KERNEL_BULK_BYTES overrides the size.

The bulk example (examples/bulk.c as wasm) also moves 8 MiB each way with a
kernel `nc`; its FNV-1a checksum must match the bytes the other side saw.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vnet.link.impairment import Impairment
from vnet.network import SOCK_STREAM

from .conftest import GUEST4, KERNEL4, KernelLab, Payload, sha256_file

SIZE = int(os.environ.get("VNET_KERNEL_BULK_BYTES", 100_000_000))
TRANSFER_TIMEOUT_S = 240.0


def _impairments(impaired: bool, seed: int) -> dict[str, Any]:
    if not impaired:
        return {}
    return {"to_kernel_impairment": Impairment(loss=0.02, reorder=0.05, seed=seed),
            "from_kernel_impairment": Impairment(loss=0.02, reorder=0.05, seed=seed + 1)}


def _our_stats(sock: Any) -> dict[str, int]:
    conn = sock._core.conn  # the stack's TcpConnection: its counters
    return dict(conn.stats) if conn is not None else {}


def _kernel_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    keys = ("Tcp.OutSegs", "Tcp.RetransSegs", "TcpExt.TCPFastRetrans", "TcpExt.TCPTimeouts",
            "TcpExt.TCPLossProbes", "TcpExt.TCPSackRecovery", "TcpExt.TCPSACKReorder",
            "TcpExt.TCPOFOQueue", "TcpExt.TCPDSACKOldSent", "TcpExt.TCPDSACKOfoSent",
            "TcpExt.TCPDSACKRecv", "TcpExt.TCPDSACKUndo", "TcpExt.TCPSpuriousRTOs")
    return {k.split(".", 1)[1]: after.get(k, 0) - before.get(k, 0) for k in keys}


def _tun_drops(lab: KernelLab) -> dict[str, int]:
    """The kernel's counters for the TUN device: drops when vnet's reader falls behind."""
    stats = json.loads(lab.run("ip", "-s", "-j", "link", "show", "dev", lab.dev).stdout)
    link = stats[0]["stats64"]
    return {"tx_dropped": link["tx"]["dropped"], "rx_dropped": link["rx"]["dropped"]}


def _vnet_drops(lab: KernelLab) -> dict[str, int]:
    """Every drop counter of the guest and router stacks and their interfaces."""
    drops: dict[str, int] = {}
    for host in (lab.guest, lab.router):
        with lab.net.scheduler.lock:
            for key, value in host.counters.drops().items():
                drops[f"{host.name}:{key}"] = value
            for iface in host.stack.interfaces.values():
                for direction, counter in (("rx", iface.counters.rx_dropped),
                                           ("tx", iface.counters.tx_dropped)):
                    for reason, value in counter.items():
                        drops[f"{host.name}:{iface.name}.{direction}.{reason}"] = value
    return drops


def _report(record: Callable[..., None], name: str, lab: KernelLab, seconds: float,
            ours: dict[str, int], kernel: dict[str, int]) -> None:
    impair = {}
    for label, imp in (("to_kernel", lab.to_kernel_impairment),
                       ("from_kernel", lab.from_kernel_impairment)):
        if imp is not None:
            impair[label] = {"frames": imp.stats.frames, "dropped": imp.stats.dropped,
                             "reordered": imp.stats.reordered}
    record(name, bytes=SIZE, seconds=round(seconds, 2), mb_per_s=round(SIZE / seconds / 1e6, 2),
           vnet_retransmits=ours.get("retransmits", 0),
           vnet_fast_retransmits=ours.get("fast_retransmits", 0),
           vnet_timeouts=ours.get("timeouts", 0), vnet_ooo_segments=ours.get("ooo_segments", 0),
           vnet_dupacks_in=ours.get("dupacks_in", 0),
           kernel=kernel, tun_device=_tun_drops(lab), vnet_drops=_vnet_drops(lab),
           impairment=impair)


@pytest.mark.parametrize("impaired", [False, True], ids=["clean", "loss2-reorder5"])
def test_vnet_sends_100mb_to_kernel_nc(kernel_lab: Callable[..., KernelLab],
                                       payloads: Callable[[int], Payload],
                                       interop_results: Callable[..., None],
                                       impaired: bool) -> None:
    payload = payloads(SIZE)
    lab = kernel_lab(**_impairments(impaired, seed=11))
    out_path = lab.tmp / "received-by-kernel.bin"
    with open(out_path, "wb") as out:
        receiver = lab.popen("nc", "-n", "-l", KERNEL4, "5001", stdout=out, name="nc -l")
    lab.wait_listening(5001)
    before = lab.kernel_counters()

    def send() -> tuple[float, dict[str, int]]:
        with lab.guest.socket(socket.AF_INET, SOCK_STREAM) as sock:
            sock.settimeout(TRANSFER_TIMEOUT_S)
            sock.connect((KERNEL4, 5001))
            start = time.monotonic()
            sock.sendall(payload.data)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""  # nc closes once it has read everything
            elapsed = time.monotonic() - start
            return elapsed, _our_stats(sock)

    elapsed, ours = lab.in_guest(send, timeout_s=TRANSFER_TIMEOUT_S + 10, name="bulk-send")
    receiver.wait()
    kernel = _kernel_delta(before, lab.kernel_counters())
    assert out_path.stat().st_size == SIZE, receiver.describe()
    assert sha256_file(out_path) == payload.sha256
    _report(interop_results, f"vnet->kernel {'impaired' if impaired else 'clean'}", lab,
            elapsed, ours, kernel)


@pytest.mark.parametrize("impaired", [False, True], ids=["clean", "loss2-reorder5"])
def test_vnet_receives_100mb_from_kernel_nc(kernel_lab: Callable[..., KernelLab],
                                            payloads: Callable[[int], Payload],
                                            interop_results: Callable[..., None],
                                            impaired: bool) -> None:
    payload = payloads(SIZE)
    lab = kernel_lab(**_impairments(impaired, seed=23))
    listening: list[bool] = []

    def receive() -> tuple[float, str, int, dict[str, int]]:
        with lab.guest.socket(socket.AF_INET, SOCK_STREAM) as server:
            server.bind((GUEST4, 5002))
            server.listen(1)
            listening.append(True)
            server.settimeout(TRANSFER_TIMEOUT_S)
            conn, _peer = server.accept()
            with conn:
                conn.settimeout(TRANSFER_TIMEOUT_S)
                start = time.monotonic()
                digest = hashlib.sha256()
                total = 0
                while data := conn.recv(262144):
                    digest.update(data)
                    total += len(data)
                elapsed = time.monotonic() - start
                return elapsed, digest.hexdigest(), total, _our_stats(conn)

    job = lab.start_guest(receive, name="bulk-receive")
    while not listening and not job.done:
        time.sleep(0.01)
    before = lab.kernel_counters()
    with open(payload.path, "rb") as data:
        sender = lab.popen("nc", "-n", "-N", GUEST4, "5002", stdin=data, name="nc")
    elapsed, digest, total, ours = job.result(TRANSFER_TIMEOUT_S + 10)
    assert sender.wait() == 0, sender.describe()
    kernel = _kernel_delta(before, lab.kernel_counters())
    assert total == SIZE
    assert digest == payload.sha256
    _report(interop_results, f"kernel->vnet {'impaired' if impaired else 'clean'}", lab,
            elapsed, ours, kernel)


# --- the bulk example, built to wasm ----------------------------------------------------
WASM_MIB = 8
FNV_OFFSET, FNV_PRIME, MASK64 = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def _fnv1a64(data: bytes) -> str:
    """FNV-1a 64 as examples/bulk.c prints it (hex, 16 digits)."""
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & MASK64
    return f"{h:016x}"


def test_wasm_bulk_example_both_ways_with_kernel_nc(
        kernel_lab: Callable[..., KernelLab], kernel_example: Callable[[str], Path],
        payloads: Callable[[int], Payload], interop_results: Callable[..., None]) -> None:
    module = kernel_example("bulk")
    size = WASM_MIB * 1024 * 1024
    lab = kernel_lab()

    # vnet (wasm) -> kernel
    out_path = lab.tmp / "bulk-received.bin"
    with open(out_path, "wb") as out:
        receiver = lab.popen("nc", "-n", "-l", KERNEL4, "5003", stdout=out, name="nc -l")
    lab.wait_listening(5003)
    start = time.monotonic()
    sender = lab.start_wasm(module, "send", KERNEL4, "5003", str(WASM_MIB))
    assert sender.wait(TRANSFER_TIMEOUT_S) == 0, sender.text
    assert receiver.wait() == 0, receiver.describe()
    sent_s = time.monotonic() - start
    match = re.search(r"sent (\d+) bytes fnv1a64=([0-9a-f]{16})", sender.text)
    assert match is not None, sender.text
    received = out_path.read_bytes()
    assert int(match.group(1)) == len(received) == size
    assert _fnv1a64(received) == match.group(2)

    # kernel -> vnet (wasm)
    payload = payloads(size)
    server = lab.start_wasm(module, "recv", "5004")
    server.wait_for("listening on port 5004")
    start = time.monotonic()
    with open(payload.path, "rb") as data:
        nc = lab.popen("nc", "-n", "-N", GUEST4, "5004", stdin=data, name="nc")
    assert server.wait(TRANSFER_TIMEOUT_S) == 0, server.text
    received_s = time.monotonic() - start
    assert nc.wait() == 0, nc.describe()
    assert f"received {size} bytes fnv1a64={_fnv1a64(payload.data)}" in server.text, server.text
    interop_results("wasm bulk vnet->kernel", bytes=size,
                    mb_per_s=round(size / sent_s / 1e6, 2))
    interop_results("wasm bulk kernel->vnet", bytes=size,
                    mb_per_s=round(size / received_s / 1e6, 2))
