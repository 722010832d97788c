"""Flow control with the kernel: zero windows, persist probes and window updates.

A receiver that stops reading for a while closes its window; the sender
must hold its data, probe the zero window and resume when the window opens
again, with no byte lost or duplicated. Once with vnet as the stalled
receiver (the kernel probes us), once with the kernel as the stalled
receiver (`nc -l` writing into a pipe nobody reads for three seconds, with
a small tcp_rmem, so our stack probes the kernel).
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable

from vnet.network import SOCK_STREAM

from .conftest import GUEST4, KERNEL4, KernelLab, Payload, tshark_fields, wait_until

PAUSE_S = 3.0


def _zero_windows(lab: KernelLab, pcap_name: str, sender: str) -> int:
    """Segments from sender advertising a zero window."""
    rows = tshark_fields(lab.tmp / pcap_name, f"tcp.window_size_value == 0 and "
                         f"ip.src == {sender} and not tcp.flags.reset == 1", ("frame.number",))
    return len(rows)


def _window_probes(lab: KernelLab, pcap_name: str, sender: str) -> int:
    """Zero-window probes from sender (SND.UNA-1 without data, as Linux and vnet send them;
    Wireshark calls those keep-alives)."""
    rows = tshark_fields(lab.tmp / pcap_name, f"ip.src == {sender} and "
                         "(tcp.analysis.keep_alive or tcp.analysis.zero_window_probe)",
                         ("frame.number",))
    return len(rows)


def test_kernel_waits_out_our_zero_window(kernel_lab: Callable[..., KernelLab],
                                         payloads: Callable[[int], Payload]) -> None:
    payload = payloads(4_000_000)
    lab = kernel_lab()
    listening: list[bool] = []

    def slow_receiver() -> str:
        with lab.guest.socket(socket.AF_INET, SOCK_STREAM) as server:
            server.bind((GUEST4, 6500))
            server.listen(1)
            listening.append(True)
            server.settimeout(30)
            conn, _ = server.accept()
            with conn:
                conn.settimeout(30)
                time.sleep(PAUSE_S)  # not reading: our window fills and closes
                digest = hashlib.sha256()
                while data := conn.recv(65536):
                    digest.update(data)
                return digest.hexdigest()

    job = lab.start_guest(slow_receiver)
    wait_until(lambda: bool(listening) or job.done, what="the guest listener")
    with lab.tcpdump(lab.tmp / "zero.pcap", "tcp port 6500", snaplen=96):
        with open(payload.path, "rb") as data:
            sender = lab.popen("nc", "-n", "-N", GUEST4, "6500", stdin=data, name="nc")
        assert job.result(60) == payload.sha256
        assert sender.wait(60) == 0, sender.describe()
    assert _zero_windows(lab, "zero.pcap", GUEST4) > 0, "vnet never advertised a zero window"
    assert _window_probes(lab, "zero.pcap", KERNEL4) > 0, "the kernel never probed our window"


def test_we_wait_out_the_kernels_zero_window(kernel_lab: Callable[..., KernelLab],
                                            payloads: Callable[[int], Payload]) -> None:
    payload = payloads(4_000_000)
    lab = kernel_lab()
    # A small receive buffer, so the window closes during the pause however slow we are.
    lab.sysctl("net.ipv4.tcp_rmem", "4096 32768 65536")
    out_path = lab.tmp / "stalled-received.bin"
    # nc's stdout is a pipe that `sleep` leaves unread: nc blocks, the socket fills.
    receiver = lab.popen("sh", "-c", f"nc -n -l {KERNEL4} 6501 | "
                         f"(sleep {PAUSE_S}; cat > {out_path})", name="nc -l | stalled")
    lab.wait_listening(6501)

    def send() -> None:
        with lab.guest.socket(socket.AF_INET, SOCK_STREAM) as sock:
            sock.settimeout(60)
            sock.connect((KERNEL4, 6501))
            sock.sendall(payload.data)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""

    with lab.tcpdump(lab.tmp / "kzero.pcap", "tcp port 6501", snaplen=96):
        lab.in_guest(send, timeout_s=90)
        assert receiver.wait(60) == 0, receiver.describe()
    assert hashlib.sha256(out_path.read_bytes()).hexdigest() == payload.sha256
    assert _zero_windows(lab, "kzero.pcap", KERNEL4) > 0, "the kernel never closed its window"
    assert _window_probes(lab, "kzero.pcap", GUEST4) > 0, "vnet never probed the zero window"
