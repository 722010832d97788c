"""Lazy frames: super-frames (stack.wire.gso) between vnet hosts, real frames where observed.

Checked against scapy (an implementation nobody here wrote): `materialise()` cuts a
super-segment into exactly what Linux's TSO puts on the wire (sizes, sequence numbers,
flags only on the right pieces, IPv4 IDs, valid checksums); super-frames cross a segment
whole, but an impairment, a smaller-MTU NIC or a NIC that does not offload gets the real
frames; a capture records the real frames and changes nothing else.
"""

from __future__ import annotations

import hashlib
import io
import itertools
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, raw
from scapy.utils import PcapNgReader

from stack.wire.gso import (
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP_L4,
    GsoFrame,
)
from vnet.link.capture import Capture
from vnet.link.impairment import Impairment
from vnet.link.nic import Nic
from vnet.network import Network
from vnet.scheduler import Scheduler

MAC_A = "02:00:00:00:00:01"
MAC_B = "02:00:00:00:00:02"


def rebuilt(pkt: Packet) -> bytes:
    copy = pkt.copy()
    for layer in (IP, TCP, UDP):
        if copy.haslayer(layer):
            del copy[layer].chksum
    return raw(copy)


# --- materialise against scapy ------------------------------------------------------------

def test_tcp_v4_super_segment_is_cut_as_linux_tso_cuts_it() -> None:
    payload = bytes(range(256)) * 20  # 5120 bytes: 3 x 1448 + 776
    sent = (Ether(src=MAC_A, dst=MAC_B) / IP(src="10.0.0.1", dst="10.0.0.2", id=0xFFFE,
                                             flags="DF", ttl=64)
            / TCP(sport=40000, dport=5001, seq=0xFFFFF000, ack=12345, flags="FPAC",
                  window=501, options=[("NOP", None), ("NOP", None),
                                       ("Timestamp", (1000, 2000))])
            / payload)
    whole = bytearray(raw(sent))
    whole[14 + 20 + 16:14 + 20 + 18] = b"\x00\x00"  # checksum-partial: not computed
    gso = GsoFrame.from_packet(bytes(whole), 1448, link_len=14)
    assert (gso.gso_segs, gso.gso_size, gso.gso_type) == (4, 1448, VIRTIO_NET_HDR_GSO_TCPV4)
    assert gso.header_len == 14 + 20 + 32 and gso.csum_start == 20 and gso.csum_offset == 16
    wire = gso.materialise()
    assert gso.wire_bytes == sum(len(f) for f in wire)
    assert gso.max_wire_len == len(wire[0]) == 14 + 20 + 32 + 1448
    frames = [Ether(f) for f in wire]
    assert [len(f[TCP].payload) for f in frames] == [1448, 1448, 1448, 776]
    assert b"".join(raw(f[TCP].payload) for f in frames) == payload
    assert [f[TCP].seq for f in frames] == [(0xFFFFF000 + i * 1448) & 0xFFFFFFFF
                                            for i in range(4)]
    assert [f[IP].id for f in frames] == [0xFFFE, 0xFFFF, 0, 1]  # as a TSO NIC numbers them
    assert [str(f[TCP].flags) for f in frames] == ["AC", "A", "A", "FPA"]
    for f in frames:
        assert f[IP].len == len(raw(f[IP]))
        assert f[IP].flags == "DF" and f[IP].ttl == 64 and f[TCP].ack == 12345
        assert f[TCP].window == 501 and f[TCP].options == sent[TCP].options
        assert rebuilt(f) == raw(f), f.summary()  # IP and TCP checksums as scapy computes
    assert gso.materialise() is wire  # computed once, shared by every observer


def test_tcp_v6_super_segment_and_checksum_partial_single_segment() -> None:
    payload = b"x" * 3000
    sent = (Ether(src=MAC_A, dst=MAC_B) / IPv6(src="fd00::1", dst="fd00::2", hlim=64)
            / TCP(sport=1, dport=2, seq=7, flags="PA") / payload)
    gso = GsoFrame.from_packet(raw(sent), 1220, link_len=14)
    assert gso.gso_type == VIRTIO_NET_HDR_GSO_TCPV6 and gso.gso_segs == 3
    frames = [Ether(f) for f in gso.materialise()]
    assert [f[IPv6].plen for f in frames] == [20 + 1220, 20 + 1220, 20 + 560]
    assert [f[TCP].seq for f in frames] == [7, 7 + 1220, 7 + 2440]
    assert [str(f[TCP].flags) for f in frames] == ["A", "A", "PA"]
    assert all(rebuilt(f) == raw(f) for f in frames)
    # one segment, checksum not computed: materialise only fills the checksum in
    one = bytearray(raw(Ether() / IP(src="1.2.3.4", dst="5.6.7.8") / TCP() / b"hi"))
    one[14 + 20 + 16:14 + 20 + 18] = b"\x00\x00"
    single = GsoFrame.from_packet(bytes(one), 0, link_len=14)
    assert single.gso_segs == 1 and len(single.materialise()) == 1
    assert rebuilt(Ether(single.materialise()[0])) == single.materialise()[0]


def test_udp_gso_becomes_one_datagram_per_gso_size() -> None:
    sent = IP(src="10.0.0.1", dst="10.0.0.2", id=9) / UDP(sport=5, dport=6) / (b"d" * 2500)
    gso = GsoFrame.from_packet(raw(sent), 1000)
    assert gso.gso_type == VIRTIO_NET_HDR_GSO_UDP_L4 and gso.link_len == 0
    packets = [IP(p) for p in gso.materialise()]
    assert [p[UDP].len for p in packets] == [1008, 1008, 508]
    assert [p[IP].id for p in packets] == [9, 10, 11]
    assert all(rebuilt(p) == raw(p) for p in packets)


def test_what_cannot_be_segmented_is_refused() -> None:
    with pytest.raises(ValueError):
        GsoFrame.from_packet(raw(IP(flags="MF") / TCP() / b"x"), 1000)
    with pytest.raises(ValueError):
        GsoFrame.from_packet(raw(IP(proto=47) / (b"x" * 40)), 1000)


# --- through NICs, segments and stacks ---------------------------------------------------

class Pair:
    """Two hosts on one segment moving `size` bytes over TCP, every delivery recorded."""

    def __init__(self, *, capture: bool = False, rx_impairment: Impairment | None = None,
                 mtu_b: int = 1500, latency_ns: int = 0) -> None:
        self.net = Network(virtual_time=True, seed=3)
        self.cap = self.net.capture() if capture else None
        lan = self.net.segment("lan", latency_ns=latency_ns)
        self.a = self.net.host("a")
        self.b = self.net.host("b")
        self.a.connect(lan, "10.0.0.1/24")
        self.b.connect(lan, "10.0.0.2/24", mtu=mtu_b, rx_impairment=rx_impairment)
        self.deliveries: list[tuple[int, Any]] = []  # (virtual ns, GsoFrame segs or 1)
        nic = self.b.nics["eth0"]
        inner = nic.on_receive

        def recording(frame: Any) -> None:
            segs = frame.gso_segs if isinstance(frame, GsoFrame) else 1
            self.deliveries.append((self.net.scheduler.monotonic_ns(), segs))
            inner(frame)

        nic.on_receive = recording

    def transfer(self, size: int) -> list[tuple[int, int, str]]:
        """Send `size` bytes a -> b; what b's application read: (virtual ns, bytes, sha)."""
        net = self.net
        srv = self.b.socket()
        srv.bind(("10.0.0.2", 5000))
        srv.listen()
        reads: list[tuple[int, int, str]] = []
        data = hashlib.sha256(b"seed").digest() * (size // 32)

        def server() -> None:
            conn, _ = srv.accept()
            while chunk := conn.recv(1 << 20):
                reads.append((net.scheduler.monotonic_ns(), len(chunk),
                              hashlib.sha256(chunk).hexdigest()))

        def client() -> None:
            sock = self.a.socket()
            sock.connect(("10.0.0.2", 5000))
            sock.sendall(data)
            sock.close()

        net.spawn("server", server)
        net.spawn("client", client)
        net.run_for(10)
        assert sum(n for _, n, _ in reads) == len(data)
        return reads

    def close(self) -> bytes:
        pcap = b""
        if self.cap is not None:
            self.cap.close()
            pcap = self.cap.getvalue()
        self.net.close()
        return pcap


def test_super_segments_cross_the_segment_whole_and_are_acked_as_one() -> None:
    pair = Pair()
    pair.transfer(1 << 20)
    segs = [s for _, s in pair.deliveries]
    assert max(segs) >= 10  # TSO/GRO-sized: many wire frames in one delivery
    assert sum(1 for s in segs if s > 1) * 10 < sum(segs)
    a_nic, b_nic = pair.a.nics["eth0"], pair.b.nics["eth0"]
    # the counters count the wire frames a super-frame stands for
    assert b_nic.counters.rx_frames == sum(segs)
    assert a_nic.counters.tx_frames >= (1 << 20) // 1448
    assert b_nic.counters.tx_frames < a_nic.counters.tx_frames // 10  # GRO: few ACKs
    pair.close()


def test_capture_records_real_frames_and_changes_nothing_else() -> None:
    plain = Pair()
    reads_plain = plain.transfer(1 << 20)
    plain.close()
    captured = Pair(capture=True)
    reads_captured = captured.transfer(1 << 20)
    deliveries = captured.deliveries
    pcap = captured.close()
    assert reads_captured == reads_plain
    assert deliveries == plain.deliveries  # the capture is a copy: delivery unchanged
    frames = [Ether(raw(p)) for p in PcapNgReader(io.BytesIO(pcap))]
    data = [f for f in frames if f.haslayer(TCP) and len(f[TCP].payload)]
    assert data and max(len(raw(f)) for f in frames) <= 1514
    assert all(rebuilt(f) == raw(f) for f in frames)
    # each data frame appears twice (a's tap out, b's tap in): once each, in order
    seen: set[int] = set()
    from_a = []
    for f in data:
        if f[IP].src == "10.0.0.1" and f[TCP].seq not in seen:
            seen.add(f[TCP].seq)
            from_a.append(f)
    assert sum(len(f[TCP].payload) for f in from_a) == (1 << 20) // 32 * 32
    ids = [f[IP].id for f in from_a]  # a TSO NIC numbers the pieces one by one
    assert all(y == (x + 1) & 0xFFFF for x, y in itertools.pairwise(ids))


def test_an_impairment_gets_real_frames() -> None:
    pair = Pair(rx_impairment=Impairment(delay_ns=10_000, seed=1))
    pair.transfer(256 * 1024)
    assert {s for _, s in pair.deliveries} == {1}
    pair.close()


def test_a_smaller_mtu_nic_drops_what_is_too_big_for_it() -> None:
    sched = Scheduler(virtual=True)
    got: list[Any] = []
    small = Nic(sched, "small/eth0", bytes.fromhex("020000000002"), got.append, mtu=1000,
                offload=True)
    whole = Nic(sched, "big/eth0", bytes.fromhex("020000000003"), got.append, mtu=9000,
                offload=True)
    legacy = Nic(sched, "legacy/eth0", bytes.fromhex("020000000004"), got.append, mtu=9000)
    payload = b"p" * 4000

    def gso_to(dst: str) -> GsoFrame:
        pkt = (Ether(src=MAC_A, dst=dst) / IP(src="10.0.0.1", dst="10.0.0.2")
               / TCP(flags="PA") / payload)
        return GsoFrame.from_packet(raw(pkt), 1448, link_len=14)

    small.deliver(gso_to("02:00:00:00:00:02"))
    assert got == [] and small.counters.rx_dropped_oversize == 3
    whole.deliver(gso_to("02:00:00:00:00:03"))
    assert len(got) == 1 and isinstance(got[0], GsoFrame)
    assert whole.counters.rx_frames == 3
    legacy.deliver(gso_to("02:00:00:00:00:04"))  # does not offload: real frames
    assert [type(f) for f in got[1:]] == [bytes] * 3
    assert [len(f) for f in got[1:]] == [14 + 40 + 1448] * 2 + [14 + 40 + 1104]


def _bulk(net: Network, sender: Any, receiver: Any, dst: str, size: int) -> bytes:
    srv = receiver.socket()
    srv.bind((dst, 5000))
    srv.listen()
    got = bytearray()
    data = hashlib.sha256(b"x").digest() * (size // 32)

    def server() -> None:
        conn, _ = srv.accept()
        while chunk := conn.recv(1 << 20):
            got.extend(chunk)

    def client() -> None:
        sock = sender.socket()
        sock.connect((dst, 5000))
        sock.sendall(data)
        sock.close()

    net.spawn("server", server)
    net.spawn("client", client)
    net.run_for(20)
    assert bytes(got) == data
    return data


def test_super_frames_cross_a_cable_whole() -> None:
    from vnet.link.segment import Cable

    net = Network(virtual_time=True, seed=2)
    cable = Cable(net.scheduler, "a--b", latency_ns=10_000)
    a, b = net.host("a"), net.host("b")
    a.connect(cable, "10.0.0.1/24")
    b.connect(cable, "10.0.0.2/24")
    seen: list[int] = []
    nic = b.nics["eth0"]
    inner = nic.on_receive

    def recording(frame: Any) -> None:
        seen.append(frame.gso_segs if isinstance(frame, GsoFrame) else 1)
        inner(frame)

    nic.on_receive = recording
    _bulk(net, a, b, "10.0.0.2", 512 * 1024)
    assert max(seen) >= 10
    net.close()


def test_a_router_to_a_smaller_mtu_forwards_real_frames_and_pmtu_discovery_works() -> None:
    net = Network(virtual_time=True, seed=4)
    left, right = net.segment("left"), net.segment("right")
    a, r, b = net.host("a"), net.router("r"), net.host("b")
    a.connect(left, "10.0.1.2/24")
    r.connect(left, "10.0.1.1/24")
    r.connect(right, "10.0.2.1/24", mtu=1280)  # the hop towards b is smaller
    b.connect(right, "10.0.2.2/24")  # b itself has 1500 and advertises MSS 1460
    a.add_route("default", gateway="10.0.1.1")
    b.add_route("default", gateway="10.0.2.1")
    cap = Capture.in_memory(clock=net.scheduler.realtime_ns)
    b.nics["eth0"].capture(cap)
    _bulk(net, a, b, "10.0.2.2", 256 * 1024)
    assert a.counters["tcp.pmtu_lowered"] >= 1  # the router said "fragmentation needed"
    cap.close()
    frames = [Ether(raw(p)) for p in PcapNgReader(io.BytesIO(cap.getvalue()))]
    assert frames and max(len(raw(f)) for f in frames) <= 1280 + 14
    assert all(rebuilt(f) == raw(f) for f in frames if f.haslayer(IP))
    net.close()


def _routed(seed: int) -> tuple[Network, Any, Any, Any]:
    net = Network(virtual_time=True, seed=seed)
    left, right = net.segment("left"), net.segment("right")
    a, r, b = net.host("a"), net.router("r"), net.host("b")
    a.connect(left, "10.0.1.2/24")
    r.connect(left, "10.0.1.1/24")
    r.connect(right, "10.0.2.1/24")
    b.connect(right, "10.0.2.2/24")
    a.add_route("default", gateway="10.0.1.1")
    b.add_route("default", gateway="10.0.2.1")
    return net, a, r, b


def _record_deliveries(host: Any) -> list[int]:
    seen: list[int] = []
    nic = host.nics["eth0"]
    inner = nic.on_receive

    def recording(frame: Any) -> None:
        seen.append(frame.gso_segs if isinstance(frame, GsoFrame) else 1)
        inner(frame)

    nic.on_receive = recording
    return seen


def test_a_router_with_no_hook_forwards_super_frames_whole_with_valid_wire_frames() -> None:
    net, a, r, b = _routed(5)
    seen = _record_deliveries(b)
    cap = Capture.in_memory(clock=net.scheduler.realtime_ns)
    b.nics["eth0"].capture(cap)
    _bulk(net, a, b, "10.0.2.2", 512 * 1024)
    assert max(seen) >= 10  # crossed the router as super-frames
    assert r.counters["ipv4.forwarded"] >= 512 * 1024 // 1448  # counted as wire packets
    cap.close()
    frames = [Ether(raw(p)) for p in PcapNgReader(io.BytesIO(cap.getvalue()))]
    assert max(len(raw(f)) for f in frames) <= 1500 + 14
    assert all(f[IP].ttl == 63 for f in frames if f.haslayer(IP) and f[IP].src == "10.0.1.2")
    assert all(rebuilt(f) == raw(f) for f in frames if f.haslayer(IP))  # checksums right
    net.close()


def test_a_router_with_a_forward_hook_forwards_real_frames() -> None:
    net, a, r, b = _routed(5)
    r.set_firewall("chain forward {\n  type filter hook forward priority 0; policy accept\n}\n")
    seen = _record_deliveries(b)
    _bulk(net, a, b, "10.0.2.2", 256 * 1024)
    assert seen and max(seen) == 1  # the hook sees every wire packet; so does the receiver
    net.close()
