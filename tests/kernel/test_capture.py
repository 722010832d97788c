"""The bridge's own capture and the kernel's tcpdump see the same packets.

While TCP flows cross the bridge in both directions (IPv4 and IPv6, vnet as
client and as server), tcpdump captures the TUN device inside the namespace
and vnet captures the bridge port (`TunBridge.capture`, raw IP pcapng).
tshark reads both: every flow has the same number of packets, and in each
direction the same packets — addresses, ports, TCP sequence and
acknowledgement numbers, flags, payload length — in the same order; and
tshark finds every IP and TCP checksum in both files good.

The TUN device offloads (IFF_VNET_HDR with TSO and checksum offload, as a
virtio-net NIC): tcpdump on it sees what the kernel hands the device and gets
from it — a GSO segment of several wire packets as one, its transport
checksum left partial — as tcpdump does on any offloading NIC, while vnet's
capture holds the wire packets. So tcpdump's segments are expanded into the
packets they stand for (MSS-sized pieces, sequence numbers advancing, PSH and
FIN on the last piece only, as TSO cuts them) before the comparison, and
checksums are checked in vnet's capture.

Order is compared per direction: how the two directions interleave depends
on when each side's capture point saw a packet (tcpdump on the kernel's
device queue, vnet when its reader thread or its router handled it), which
is a race nobody controls, not a property of either stack.

The same must hold with loss and reordering at the bridge port: the
bridge's capture is the TUN device's traffic, so a packet the impairment
drops on its way to the kernel is not in it, and a delayed one is recorded
when it is written to the device.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

from vnet.network import SOCK_STREAM

from .conftest import (
    GUEST6,
    KERNEL4,
    KernelLab,
    Payload,
    sha256_file,
    tshark_fields,
    wait_until,
)

FIELDS = ("ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport",
          "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.len")
Packet = tuple[str, ...]


def _tcp_packets(path: Path, port: int) -> list[Packet]:
    rows = tshark_fields(path, f"tcp.port == {port}", FIELDS)
    return [(r[0] or r[1], r[2], r[3] or r[4], *r[5:]) for r in rows]


def _expand_gso(packets: list[Packet], mss_by_sender: dict[str, int]) -> list[Packet]:
    """tcpdump's rows with every GSO segment cut into the wire packets TSO makes of it."""
    wire: list[Packet] = []
    for p in packets:
        length, mss = int(p[7] or 0), mss_by_sender.get(p[0], 0)
        if not mss or length <= mss:
            wire.append(p)
            continue
        flags = int(p[6], 16)
        seq = int(p[4])
        for offset in range(0, length, mss):
            last = offset + mss >= length
            piece_flags = flags if last else flags & ~0x09  # FIN, PSH only on the last
            wire.append((*p[:4], str(seq + offset), p[5], f"0x{piece_flags:04x}",
                         str(min(mss, length - offset))))
    return wire


def _describe_mismatch(kernel: list[Packet], ours: list[Packet]) -> str:
    for i, (k, o) in enumerate(zip(kernel, ours, strict=False)):
        if k != o:
            return f"first difference at packet {i}: tcpdump {k} vs vnet {o}"
    return f"tcpdump has {len(kernel)} packets, vnet {len(ours)}"


def _run_flows(lab: KernelLab, payload: Payload) -> None:
    """vnet -> kernel on port 6001 (IPv4), kernel -> vnet on port 6002 (IPv6)."""
    out_path = lab.tmp / "capture-received.bin"
    with open(out_path, "wb") as out:
        receiver = lab.popen("nc", "-n", "-l", KERNEL4, "6001", stdout=out, name="nc -l")
    lab.wait_listening(6001)

    def send() -> None:
        with lab.guest.socket(socket.AF_INET, SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect((KERNEL4, 6001))
            sock.sendall(payload.data)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""

    lab.in_guest(send)
    assert receiver.wait() == 0, receiver.describe()
    assert sha256_file(out_path) == payload.sha256

    listening: list[bool] = []

    def receive() -> bytes:
        with lab.guest.socket(socket.AF_INET6, SOCK_STREAM) as server:
            server.bind((GUEST6, 6002))
            server.listen(1)
            listening.append(True)
            server.settimeout(30)
            conn, _ = server.accept()
            with conn:
                conn.settimeout(30)
                chunks = []
                while data := conn.recv(65536):
                    chunks.append(data)
                return b"".join(chunks)

    job = lab.start_guest(receive)
    wait_until(lambda: bool(listening) or job.done, what="the guest listener")
    with open(payload.path, "rb") as data:
        sender = lab.popen("nc", "-n", "-N", GUEST6, "6002", stdin=data, name="nc")
    assert job.result() == payload.data
    assert sender.wait() == 0, sender.describe()
    lab.wait_bridge_quiet()  # the last ACKs of both teardowns are through


def test_tcpdump_and_bridge_capture_match_packet_for_packet(
        kernel_lab: Callable[..., KernelLab], payloads: Callable[[int], Payload]) -> None:
    payload = payloads(1_000_000)
    lab = kernel_lab(capture=True)
    kernel_pcap = lab.tmp / "kernel.pcap"
    with lab.tcpdump(kernel_pcap, "tcp") as tcpdump:
        _run_flows(lab, payload)
    ours_pcap = lab.close_capture()
    dropped = re.search(rb"(\d+) packets? dropped by kernel", tcpdump.stderr)
    assert dropped is not None and dropped.group(1) == b"0", tcpdump.describe()

    for port in (6001, 6002):
        ours = _tcp_packets(ours_pcap, port)
        mss = {}
        for p in ours:
            mss[p[0]] = max(mss.get(p[0], 0), int(p[7] or 0))
        kernel = _expand_gso(_tcp_packets(kernel_pcap, port), mss)
        assert len(kernel) > 100  # a real flow, not just a handshake
        assert len(kernel) == len(ours), f"port {port}: {_describe_mismatch(kernel, ours)}"
        for sender in {p[0] for p in kernel}:
            kernel_dir = [p for p in kernel if p[0] == sender]
            ours_dir = [p for p in ours if p[0] == sender]
            assert kernel_dir == ours_dir, (
                f"port {port}, from {sender}: {_describe_mismatch(kernel_dir, ours_dir)}")

    for path in (ours_pcap,):  # tcpdump's copies carry partial checksums (offload)
        bad = tshark_fields(path, "tcp.checksum.status != 1 or (ip and ip.checksum.status != 1)",
                            ("frame.number",), "tcp.check_checksum:TRUE",
                            "ip.check_checksum:TRUE")
        assert bad == [], f"{path.name}: packets with bad checksums: {bad[:10]}"


def test_bridge_capture_matches_tcpdump_on_an_impaired_bridge(
        kernel_lab: Callable[..., KernelLab], payloads: Callable[[int], Payload]) -> None:
    """With loss and reordering at the port, vnet's capture is still the device's traffic."""
    from vnet.link.impairment import Impairment

    payload = payloads(1_000_000)
    lab = kernel_lab(capture=True,
                     to_kernel_impairment=Impairment(loss=0.02, reorder=0.05, seed=7),
                     from_kernel_impairment=Impairment(loss=0.02, reorder=0.05, seed=8))
    kernel_pcap = lab.tmp / "kernel.pcap"
    with lab.tcpdump(kernel_pcap, "tcp"):
        _run_flows(lab, payload)
    ours_pcap = lab.close_capture()
    for port in (6001, 6002):
        kernel = _tcp_packets(kernel_pcap, port)
        ours = _tcp_packets(ours_pcap, port)
        for sender in sorted({p[0] for p in kernel}):
            kernel_dir = [p for p in kernel if p[0] == sender]
            ours_dir = [p for p in ours if p[0] == sender]
            assert kernel_dir == ours_dir, (
                f"port {port}, from {sender}: {_describe_mismatch(kernel_dir, ours_dir)}")
