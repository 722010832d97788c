"""The stack's side of lazy frames: offloaded output, trusted input, the UDP flow cache.

A HostStack on a ManualDriver (tests/stack/harness.py) whose interface says it
offloads: what it hands its link is checked after `materialise()` against scapy;
what it takes in as a GsoFrame reaches the socket; the per-socket UDP route is
reused only while nothing it depended on changed.
"""

from __future__ import annotations

import socket

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import raw

from stack.wire.gso import GsoFrame

from .harness import OUR_MAC_S, PEER_MAC, PEER_MAC_S, Harness


def wire(frames: list[object]) -> list[Ether]:
    out: list[Ether] = []
    for f in frames:
        out += [Ether(w) for w in (f.materialise() if isinstance(f, GsoFrame) else [f])]
    return out


def valid(f: Ether) -> bool:
    """Every checksum as scapy computes it (a fragment: its IP header's)."""
    copy = f.copy()
    fragment = IP in f and (f[IP].flags.MF or f[IP].frag)
    for layer in (IP,) if fragment else (IP, UDP, TCP):
        if copy.haslayer(layer):
            del copy[layer].chksum
    return raw(copy) == raw(f)


def test_udp_on_an_offloading_link_is_checksum_partial_and_materialises_right() -> None:
    h = Harness()
    h.iface.offload = True
    h.learn_peer()
    sock = h.udp.socket(socket.AF_INET)
    sock.bind(b"\x00" * 4, 0)
    sock.sendto(b"hello", bytes((10, 0, 0, 2)), 7)
    (frame,) = h.frames
    assert isinstance(frame, GsoFrame) and frame.csum_partial and frame.gso_segs == 1
    (f,) = wire([frame])
    assert f[UDP].dport == 7 and raw(f[UDP].payload) == b"hello" and valid(f)
    assert f[IP].flags == "DF"  # path MTU discovery as for any datagram socket
    h.frames.clear()
    sock.sendto(b"x" * 1600, bytes((10, 0, 0, 2)), 7)  # fragmented: real frames
    assert [type(x) for x in h.frames] == [bytes, bytes]
    assert all(valid(f) for f in wire(h.frames))


def test_a_trusted_gso_frame_reaches_the_socket_without_a_checksum() -> None:
    h = Harness()
    h.learn_peer()
    sock = h.udp.socket(socket.AF_INET)
    sock.bind(bytes((10, 0, 0, 1)), 9)
    pkt = bytearray(raw(Ether(src=PEER_MAC_S, dst=OUR_MAC_S) / IP(src="10.0.0.2", dst="10.0.0.1")
                        / UDP(sport=5, dport=9, chksum=0x1234) / b"data"))
    h.stack.receive_frame(h.iface, bytes(pkt))  # plain bytes: the bad checksum is caught
    assert h.stack.counters["udp.drop.bad_checksum"] == 1
    h.stack.receive_frame(h.iface, GsoFrame.from_packet(bytes(pkt), link_len=14))
    data, _addr, port, _truncated = sock.recvfrom(100)
    assert data == b"data" and port == 5


def test_the_udp_flow_follows_route_and_address_changes() -> None:
    h = Harness()
    h.learn_peer()
    eth1_frames: list[object] = []
    eth1 = h.stack.add_interface("eth1", bytes.fromhex("020000000011"))
    eth1.transmit = eth1_frames.append
    h.stack.add_address("eth1", "10.1.0.1/24")
    h.stack.arp[eth1.index].add_static(bytes((10, 1, 0, 2)), PEER_MAC)
    eth1_frames.clear()
    h.frames.clear()
    h.stack.add_route("10.9.0.0/16", gateway="10.0.0.2")
    sock = h.udp.socket(socket.AF_INET)
    sock.bind(b"\x00" * 4, 0)
    dst = (bytes((10, 9, 0, 1)), 7)
    sock.sendto(b"a", *dst)
    sock.sendto(b"b", *dst)
    assert [raw(f[UDP].payload) for f in h.sent()] == [b"a", b"b"] and not eth1_frames
    h.stack.add_route("10.9.0.0/24", gateway="10.1.0.2")  # more specific, via eth1
    sock.sendto(b"c", *dst)
    assert not h.sent() and [raw(f[UDP].payload) for f in wire(eth1_frames)] == [b"c"]
    assert wire(eth1_frames)[0][IP].src == "10.1.0.1"
    eth1_frames.clear()
    h.stack.remove_address("eth1", "10.1.0.1/24")  # its connected route goes too
    h.stack.routes.remove_where(ifindex=eth1.index)
    sock.sendto(b"d", *dst)
    assert [raw(f[UDP].payload) for f in h.sent()] == [b"d"] and not eth1_frames


def test_a_gro_stretch_ack_grows_slow_start_per_segment_it_covers() -> None:
    from stack.congestion import NewReno, initial_window

    mss = 1448
    one, many = NewReno(mss), NewReno(mss)
    one.on_ack(0, 20 * mss, 1_000_000, 40 * mss)  # a stretch ACK: RFC 3465's 2*MSS limit
    many.on_ack(0, 20 * mss, 1_000_000, 40 * mss, acks=10)  # ... per wire ACK it stands for
    assert one.cwnd == initial_window(mss) + 2 * mss
    assert many.cwnd == initial_window(mss) + 20 * mss


def _virtual_transfer_ns(offload: bool, size: int = 4 << 20) -> int:
    from vnet.network import Network

    net = Network(virtual_time=True, seed=5)
    lan = net.segment("lan", latency_ns=200_000)
    a, b = net.host("a"), net.host("b")
    for host, addr in ((a, "10.0.0.1/24"), (b, "10.0.0.2/24")):
        nic = host.connect(lan, addr)
        nic.offload = offload
        host.stack.interface("eth0").offload = offload
    srv = b.socket()
    srv.bind(("10.0.0.2", 5000))
    srv.listen()
    done: list[int] = []

    def server() -> None:
        conn, _ = srv.accept()
        got = 0
        while chunk := conn.recv(1 << 20):
            got += len(chunk)
        assert got == size
        done.append(net.scheduler.monotonic_ns())

    def client() -> None:
        sock = a.socket()
        sock.connect(("10.0.0.2", 5000))
        sock.sendall(bytes(size))
        sock.close()

    start = net.scheduler.monotonic_ns()
    net.spawn("server", server)
    net.spawn("client", client)
    net.run_for(30)
    net.close()
    assert done
    return done[0] - start


def test_super_segments_move_a_transfer_as_fast_in_virtual_time_as_real_frames() -> None:
    """TSO/GRO must not slow TCP down where time is simulated: slow start, ACK clocking
    and the windows behave as with one frame per segment (within 5 %)."""
    with_offload = _virtual_transfer_ns(True)
    without = _virtual_transfer_ns(False)
    assert with_offload <= without * 1.05, (with_offload, without)
