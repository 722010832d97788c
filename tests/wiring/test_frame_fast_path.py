"""The short path a super-frame takes between two vnet hosts keeps every observable.

A frame one vnet stack builds (`stack.wire.gso.GsoFrame` with ``ipv4_fields``) goes
from `Ipv4Layer.send_offloaded` through `Nic.transmit`, `SegmentPort.send_gso`,
`Segment._switch_gso` (which schedules a unicast frame for its port itself when that
port has no egress impairment and the segment no partition), `SegmentPort._deliver_gso`,
`Nic.deliver_gso` and `HostStack.receive_frame` to `Ipv4Layer.receive_built`, which
hands a unicast packet for a local address straight to its transport. Each test sends
datagrams over that path, changes one thing the short cuts depend on -- a partition,
an egress impairment, a detached port, a capture tap added late, a closed port, a
local address added and removed -- and checks what a user sees: counters and drop
reasons, the frames a capture reads back with scapy, errors on the sockets.
Everything in virtual time, no guest.
"""

from __future__ import annotations

import errno
import io

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPerror
from scapy.layers.l2 import Ether
from scapy.packet import raw
from scapy.utils import PcapNgReader

from stack.udp import AF_INET, UdpSocket
from stack.wire.gso import GsoFrame
from stack.wire.ipv4 import Ipv4Packet
from vnet.link.impairment import Impairment
from vnet.network import Host, Network

A = bytes((10, 0, 0, 1))
B = bytes((10, 0, 0, 2))


class Lan:
    """Two hosts on one segment, a UDP socket on each, ARP already resolved."""

    def __init__(self, latency_ns: int = 0) -> None:
        self.net = Network(virtual_time=True, seed=3)
        self.lan = self.net.segment("lan", latency_ns=latency_ns)
        self.a: Host = self.net.host("alpha")
        self.b: Host = self.net.host("bravo")
        self.a.connect(self.lan, "10.0.0.1/24")
        self.b.connect(self.lan, "10.0.0.2/24")
        with self.net.scheduler.lock:
            self.sa: UdpSocket = self.a.stack.transports[17].socket(AF_INET)
            self.sa.bind(A, 5000)
            self.sb: UdpSocket = self.b.stack.transports[17].socket(AF_INET)
            self.sb.bind(B, 5001)
        self.ping()
        assert self.received() == [b"ping"]

    def ping(self, payload: bytes = b"ping") -> None:
        with self.net.scheduler.lock:
            self.sa.sendto(payload, B, 5001)
        self.net.run_for(0.01)

    def received(self) -> list[bytes]:
        out = []
        with self.net.scheduler.lock:
            while self.sb.queue:
                out.append(self.sb.recvfrom(2000)[0])
        return out

    def port_of(self, host: Host):  # type: ignore[no-untyped-def]
        port = host.nics["eth0"].port
        assert port is not None
        return port


def test_the_fast_path_delivers_and_counts_wire_frames() -> None:
    lan = Lan()
    pb = lan.port_of(lan.b)
    before_out = pb.counters.frames_out
    before_rx = lan.b.nics["eth0"].counters.rx_frames
    for n in range(5):
        lan.ping(bytes([n]) * 100)
    assert lan.received() == [bytes([n]) * 100 for n in range(5)]
    assert pb.counters.frames_out == before_out + 5
    assert lan.b.nics["eth0"].counters.rx_frames == before_rx + 5
    assert lan.b.stack.counters["ipv4.in"] >= 6
    lan.net.close()


def test_a_partition_then_an_egress_impairment_drop_super_frames_with_their_reasons() -> None:
    lan = Lan()
    pa, pb = lan.port_of(lan.a), lan.port_of(lan.b)
    lan.lan.partition([[pa], [pb]])
    lan.ping()
    assert lan.received() == []
    assert pb.counters.drops.get("partitioned") == 1
    lan.lan.partition(None)
    lan.ping(b"healed")
    assert lan.received() == [b"healed"]
    pb.egress = Impairment(loss=1.0, seed=1)
    lan.ping(b"lost")
    assert lan.received() == []
    assert pb.counters.drops.get("egress_impairment") == 1
    pb.egress = None
    lan.ping(b"again")
    assert lan.received() == [b"again"]
    lan.net.close()


def test_a_port_detached_while_a_super_frame_is_in_flight_counts_it_detached() -> None:
    lan = Lan(latency_ns=1_000_000)
    pb = lan.port_of(lan.b)
    with lan.net.scheduler.lock:
        lan.sa.sendto(b"in flight", B, 5001)
        lan.b.nics["eth0"].detach()
    lan.net.run_for(0.01)
    assert lan.received() == []
    assert pb.counters.drops.get("detached") == 1
    lan.net.close()


def test_a_capture_started_on_a_running_flow_records_real_frames() -> None:
    lan = Lan()
    cap = lan.net.capture()
    seg_cap = lan.net.capture_segments()
    lan.ping(b"seen" * 50)
    assert lan.received() == [b"seen" * 50]
    for capture, copies in ((cap, 2), (seg_cap, 1)):  # NICs: out and in; segment: once
        capture.close()
        frames = [Ether(raw(p)) for p in PcapNgReader(io.BytesIO(capture.getvalue()))]
        data = [f for f in frames if f.haslayer(UDP) and raw(f[UDP].payload) == b"seen" * 50]
        assert len(data) == copies
        for f in data:
            wire = raw(f)
            del f[IP].chksum
            del f[UDP].chksum
            assert raw(Ether(raw(f))) == wire  # checksums as scapy computes them
    lan.net.close()


def test_a_datagram_to_a_closed_port_gets_port_unreachable_on_the_fast_path() -> None:
    lan = Lan()
    cap = lan.net.capture_segments()
    with lan.net.scheduler.lock:
        lan.sa.connect(B, 9)
        lan.sa.sendto(b"nobody", None, None)
    lan.net.run_for(0.01)
    assert lan.b.stack.counters["udp.drop.no_socket"] == 1
    with lan.net.scheduler.lock, pytest.raises(OSError) as refused:
        lan.sa.recvfrom(100)
    assert refused.value.errno == errno.ECONNREFUSED
    cap.close()
    frames = [Ether(raw(p)) for p in PcapNgReader(io.BytesIO(cap.getvalue()))]
    (icmp,) = [f for f in frames if f.haslayer(ICMP)]
    assert (icmp[IP].src, icmp[IP].dst) == ("10.0.0.2", "10.0.0.1")
    assert (icmp[ICMP].type, icmp[ICMP].code) == (3, 3)
    assert icmp[IPerror].dst == "10.0.0.2" and raw(icmp[IPerror].payload).endswith(b"nobody")
    lan.net.close()


def test_an_address_added_later_on_another_subnet_is_delivered_on_the_fast_path() -> None:
    """`receive_built` asks the host's current local addresses each time: one added
    after the flow started is delivered (and with its true destination)."""
    lan = Lan()
    with lan.net.scheduler.lock:
        lan.b.stack.add_address("eth0", "10.0.1.1/24")
        lan.a.stack.add_route("10.0.1.0/24", None, "eth0")
        sock = lan.b.stack.transports[17].socket(AF_INET)
        sock.bind(bytes(4), 7000)
        lan.sa.sendto(b"to the other subnet", bytes((10, 0, 1, 1)), 7000)
    lan.net.run_for(0.01)
    with lan.net.scheduler.lock:
        data, src, sport, _ = sock.recvfrom(100)
        lan.b.stack.remove_address("eth0", "10.0.1.1/24")
        lan.sa.sendto(b"gone", bytes((10, 0, 1, 1)), 7000)
    lan.net.run_for(0.01)
    assert (data, src, sport) == (b"to the other subnet", A, 5000)
    assert not sock.queue  # no longer ours: not delivered
    assert lan.b.stack.counters["ipv4.drop.not_for_us"] == 1
    lan.net.close()


def test_frames_built_on_the_fast_path_are_what_from_packet_makes_of_their_bytes() -> None:
    """`send_offloaded` frames a packet itself (header checksum, segment count): each
    super-frame it hands the NIC is what `GsoFrame.from_packet` makes of its bytes, and
    its `ipv4_fields` are what parsing its IPv4 header gives."""
    lan = Lan()
    iface = lan.a.stack.interface("eth0")
    nic = lan.a.nics["eth0"]
    sent: list[GsoFrame] = []

    def spy(frame: GsoFrame | bytes) -> None:
        if isinstance(frame, GsoFrame):
            sent.append(frame)
        nic.transmit(frame)

    iface.transmit = spy
    srv = lan.b.socket()
    srv.bind(("10.0.0.2", 5002))
    srv.listen()
    payload = bytes(range(256)) * 800
    got = bytearray()

    def server() -> None:
        conn, _ = srv.accept()
        while chunk := conn.recv(1 << 16):
            got.extend(chunk)

    def client() -> None:
        sock = lan.a.socket()
        sock.connect(("10.0.0.2", 5002))
        sock.sendall(payload)
        sock.close()

    lan.net.spawn("server", server)
    lan.net.spawn("client", client)
    lan.net.run_for(5)
    for size in (1, 100, 1472):
        lan.ping(b"u" * size)
    assert bytes(got) == payload
    assert len(lan.received()) == 3
    built = [f for f in sent if f.ipv4_fields is not None]
    assert any(f.gso_segs > 1 for f in built) and any(f.protocol == 17 for f in built)
    for frame in built:
        ref = GsoFrame.from_packet(frame.data, frame.gso_size, link_len=14)
        assert (frame.l4_offset, frame.header_len, frame.gso_size, frame.gso_segs,
                frame.csum_partial, frame.wire_bytes, frame.max_wire_len) == (
            ref.l4_offset, ref.header_len, ref.gso_size, ref.gso_segs, ref.csum_partial,
            ref.wire_bytes, ref.max_wire_len)
        parsed = Ipv4Packet.parse(frame.data[14:])
        assert isinstance(parsed, Ipv4Packet)  # the header checksum verifies
        assert frame.ipv4_fields == (
            parsed.header_len, parsed.dscp_ecn, parsed.total_len, parsed.ident,
            parsed.flags_frag, parsed.ttl, parsed.protocol, parsed.checksum, parsed.src,
            parsed.dst)
    lan.net.close()
