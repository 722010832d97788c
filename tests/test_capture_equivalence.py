"""Turning captures on changes nothing the guests see (issue 12, lazy frames).

The same virtual-time run of C example guests -- a TCP bulk transfer (bulk.c), a
UDP datagram burst (bulk.c udp-send/udp-recv) and UDP round trips (udp_rtt.c)
between the two hosts of tests/examples/harness.py -- once with no capture and
once with every NIC and the segment captured. Each guest's stdout is recorded
write by write with the virtual time of the write: both runs must give the same
bytes, in the same order, at the same virtual times. TCP crosses the segment as
super-frames (checked, so the comparison is not vacuous), and the capture holds
the real frames: MTU-sized, checksums valid, the whole byte stream.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import raw
from scapy.utils import PcapNgReader

from stack.wire.gso import GsoFrame
from tests.examples.harness import VnetLab, VnetProgram
from vnet.guest.runtime import Guest, GuestConfig

BULK_MB = "2"


class TimedLab(VnetLab):
    """A VnetLab whose programs' stdout is kept as (virtual ns, bytes) per write."""

    def __init__(self, wasm: Callable[[str], Path], *, capture: bool) -> None:
        super().__init__(wasm, seed=7, latency_ns=30_000)
        self.cap = self.net.capture() if capture else None
        if self.cap is not None:
            self.lan.capture(self.cap)
            for nic in self.nics.values():
                nic.capture(self.cap)
        self.writes: dict[str, list[tuple[int, bytes]]] = {}
        self.super_frames = 0
        nic = self.nics["alpha"]
        inner = nic.on_receive

        def counting(frame: Any) -> None:
            if isinstance(frame, GsoFrame) and frame.gso_segs > 1:
                self.super_frames += 1
            inner(frame)

        nic.on_receive = counting

    def start(self, host: str, example: str, *args: str,
              dirs: dict[str, Path] | None = None,
              tcplisten: tuple[str, int] | None = None) -> VnetProgram:
        name = f"{example}@{host}#{len(self.programs)}"
        config = GuestConfig(module=str(self.wasm(example)), args=[example, *args],
                             host=self.hosts[host], name=name)
        program = TimedProgram(self, name, config, self.writes.setdefault(name, []))
        self.programs.append(program)
        return program


class TimedProgram(VnetProgram):
    """A VnetProgram that also notes the virtual time of every stdout write."""

    def __init__(self, lab: TimedLab, name: str, config: GuestConfig,
                 writes: list[tuple[int, bytes]]) -> None:
        self.name = name
        self.lab = lab
        self._out = bytearray()
        self._err = bytearray()
        clock = lab.net.scheduler.monotonic_ns

        def timed(data: bytes) -> None:
            writes.append((clock(), bytes(data)))
            self._out.extend(data)

        config.stdout = timed
        config.stderr = self._err.extend
        self.guest = Guest(lab.net.scheduler, config)
        self.guest.start()


def run_workloads(wasm: Callable[[str], Path], *, capture: bool) -> tuple[TimedLab, bytes]:
    lab = TimedLab(wasm, capture=capture)
    try:
        recv = lab.start("alpha", "bulk", "recv", "5001")
        recv.wait_for("listening on port 5001")
        send = lab.start("bravo", "bulk", "send", "alpha", "5001", BULK_MB, "10000")
        assert send.wait() == 0, send.describe()
        assert recv.wait() == 0, recv.describe()
        udp_recv = lab.start("alpha", "bulk", "udp-recv", "5002", "300", "200")
        udp_recv.wait_for("listening for datagrams")
        udp_send = lab.start("bravo", "bulk", "udp-send", "10.0.0.1", "5002", "64", "300")
        assert udp_send.wait() == 0, udp_send.describe()
        assert udp_recv.wait() == 0, udp_recv.describe()
        server = lab.start("alpha", "udp_rtt", "server", "9100")
        server.wait_for("listening on port 9100")
        client = lab.start("bravo", "udp_rtt", "client", "10.0.0.1", "9100", "30", "1", "500")
        assert client.wait() == 0, client.describe()
        assert server.wait() == 0, server.describe()
    finally:
        lab.close()
    pcap = b""
    if lab.cap is not None:
        lab.cap.close()
        pcap = lab.cap.getvalue()
    return lab, pcap


def test_every_nic_captured_or_none_the_guests_see_the_same(
        example_wasm: Callable[[str], Path]) -> None:
    plain, _ = run_workloads(example_wasm, capture=False)
    captured, pcap = run_workloads(example_wasm, capture=True)
    assert plain.super_frames > 10  # TCP really travelled as super-frames
    assert captured.super_frames == plain.super_frames
    assert list(captured.writes) == list(plain.writes)
    for name, writes in plain.writes.items():
        assert captured.writes[name] == writes, name  # bytes, order, virtual times
    everything = b"".join(data for writes in plain.writes.values() for _, data in writes)
    assert f"received {int(BULK_MB) << 20} bytes".encode() in everything
    assert b" datagrams, " in everything and b"30 replies" in everything

    frames = [Ether(raw(p)) for p in PcapNgReader(io.BytesIO(pcap))]
    assert max(len(raw(f)) for f in frames) <= 1514
    tcp_data = 0
    for f in frames:
        ip = IP if f.haslayer(IP) else IPv6 if f.haslayer(IPv6) else None
        if ip is None:
            continue
        copy = f.copy()
        if ip is IP:
            del copy[IP].chksum
        for layer in (TCP, UDP):
            if copy.haslayer(layer):
                del copy[layer].chksum
        assert raw(Ether(raw(copy))) == raw(f), f.summary()  # every checksum right
        if f.haslayer(TCP) and f[ip].src in ("10.0.0.2", "fd00::2"):
            tcp_data += len(f[TCP].payload)
    # the NIC taps and the segment tap each saw the whole stream once (three copies)
    assert tcp_data == 3 * (int(BULK_MB) << 20)
