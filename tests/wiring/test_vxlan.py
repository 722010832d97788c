"""VxlanPort between two vnet networks on loopback: flooding, learning, super-frames, TCP.

Real kernel UDP sockets, but only between 127.0.0.1 and 127.0.0.2 (see
vxlan_support). The kernel interop tests are in tests/kernel/test_vxlan.py.
"""

from __future__ import annotations

import hashlib
import socket as pysocket
from collections.abc import Iterator
from functools import partial

import pytest

from vnet.link.capture import Capture
from vnet.link.vxlan import FLAG_VNI, decapsulate, encapsulate, overhead
from vnet.testing.pcap import packets_from

from .vxlan_support import VNI, VxlanPair


@pytest.fixture
def pair() -> Iterator[VxlanPair]:
    p = VxlanPair().start()
    try:
        yield p
    finally:
        p.close()


def test_header_is_rfc7348() -> None:
    frame = bytes(range(60))
    datagram = encapsulate(0xABCDEF, frame)
    # flags (I bit), 24 reserved bits, 24-bit VNI, 8 reserved bits (RFC 7348 section 5).
    assert datagram[:8] == bytes([FLAG_VNI, 0, 0, 0, 0xAB, 0xCD, 0xEF, 0])
    assert decapsulate(datagram) == (0xABCDEF, frame)
    # Reserved bits are ignored on receipt.
    assert decapsulate(bytes([0xFF, 1, 2, 3, 0, 0, 7, 9]) + frame) == (7, frame)
    assert decapsulate(bytes(8) + frame) == "no_vni"
    assert decapsulate(encapsulate(1, frame)[:21]) == "runt"
    assert (overhead(), overhead(ipv6=True)) == (50, 70)


def test_ping_floods_then_learns(pair: VxlanPair) -> None:
    cap = Capture.in_memory()
    with pair.nets[0].scheduler.lock:  # (the hosts' first MLD reports may be out already)
        pair.ports[0].capture(cap)
        tx_before, rx_before = pair.ports[0].counters.tx_frames, pair.ports[0].counters.rx_frames
    def ping(target: str) -> list[float | None]:
        return pair.hosts[0].ping(target, count=3, timeout=2.0)

    for target in ("10.50.0.2", "fd50::2"):
        rtts = pair.in_host(0, partial(ping, target))
        assert all(rtt is not None for rtt in rtts), (target, rtts)
    a, b = pair.ports
    # ARP/NDP went to every remote (flooded); the replies taught each side the other's MAC.
    assert a.counters.tx_flooded >= 2
    assert a.fdb() == {bytes([2, 0x50, 0, 0, 0, 2]): "127.0.0.2"}
    assert b.fdb() == {bytes([2, 0x50, 0, 0, 0, 1]): "127.0.0.1"}
    assert a.counters.tx_frames > a.counters.tx_flooded  # the echoes went unicast
    for port in pair.ports:
        assert port.counters.drop_unknown_remote == port.counters.drop_wrong_vni == 0
    # The port's capture holds the inner frames it sent and received, as the counters say.
    with pair.nets[0].scheduler.lock:  # no frame between the close and the counters
        cap.close()
        tx_frames = a.counters.tx_frames - tx_before
        rx_frames = a.counters.rx_frames - rx_before
    frames = packets_from(cap.getvalue())
    assert {f.interface for f in frames} == {"lan/vxlan4242"}
    assert sum(f.direction == 2 for f in frames) == tx_frames
    assert sum(f.direction == 1 for f in frames) == rx_frames


def test_tcp_transfer_sha256(pair: VxlanPair) -> None:
    payload = hashlib.sha256(b"pair").digest() * 8192  # 256 KiB
    got: dict[str, bytes] = {}

    def server() -> None:
        with pair.hosts[1].socket(pysocket.AF_INET, pysocket.SOCK_STREAM) as listener:
            listener.bind(("10.50.0.2", 7000))
            listener.listen()
            conn, _ = listener.accept()
            data = bytearray()
            while chunk := conn.recv(65536):
                data += chunk
            got["data"] = bytes(data)
            conn.close()

    job = pair.nets[1].spawn("server", server)

    def client() -> None:
        with pair.hosts[0].socket(pysocket.AF_INET, pysocket.SOCK_STREAM) as sock:
            sock.settimeout(20)
            sock.connect(("10.50.0.2", 7000))
            sock.sendall(payload)

    pair.in_host(0, client)
    job.thread.join(20)
    assert job.done and job.error is None
    assert hashlib.sha256(got["data"]).digest() == hashlib.sha256(payload).digest()


class _SuperFrame:
    """Stands for a stack.wire.gso.GsoFrame: not bytes, materialises into wire frames."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames

    def materialise(self) -> list[bytes]:
        return self.frames


def test_a_super_frame_is_sent_as_its_wire_frames(pair: VxlanPair) -> None:
    a, _ = pair.ports
    receiver = pysocket.socket(pysocket.AF_INET, pysocket.SOCK_DGRAM)
    receiver.bind(("127.0.0.3", pair.udp_port))
    receiver.settimeout(5)
    with pair.nets[0].scheduler.lock:  # a third listener: flooded copies come here too
        a.remotes.append("127.0.0.3")
    try:
        frames = [b"\xff" * 6 + bytes([2, 0x50, 0, 0, 0, 1]) + b"\x88\xb5" + bytes([n]) * 100
                  for n in range(3)]
        with pair.nets[0].scheduler.lock:
            a.deliver(_SuperFrame(frames))
        received: list[bytes] = []
        while len(received) < len(frames):
            datagram = receiver.recvfrom(2048)[0]
            if datagram[20:22] == b"\x88\xb5":  # ours, not host a's own MLD reports
                received.append(datagram)
    finally:
        with pair.nets[0].scheduler.lock:
            a.remotes.remove("127.0.0.3")
        receiver.close()
    assert received == [encapsulate(VNI, frame) for frame in frames]
    assert a.counters.tx_super_frames == 1
