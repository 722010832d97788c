"""A TCP segment's header rides on the super-frame its vnet stack built, and is exact.

`TcpOutput._transmit` hands `Ipv4Layer.send_offloaded` the header it wrote as parsing
would read it (`stack.wire.tcp.built_header`); the frame carries it
(`GsoFrame.tcp_header`) and the receiving stack, taking the frame whole, gives it to
`TcpLayer.receive` instead of parsing. These tests check that the shortcut is
invisible: each carried header is what `TcpPacket.parse` makes of the frame's bytes;
a run whose frames lose their headers on the way (so every receiver parses) reads the
same bytes at the same virtual times, sends the same frames and counts the same; the
first receiver takes the header (a second delivery of the same frame parses); and a
frame something made anew -- a router forwarding it, a NAT rewriting it -- carries
none. Everything in virtual time, no guest.
"""

from __future__ import annotations

import hashlib
from typing import Any

from stack.wire import tcp as wire_tcp
from stack.wire.gso import GsoFrame
from vnet.network import Host, Network


def _fields(seg: wire_tcp.TcpPacket) -> tuple[object, ...]:
    return (seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.data_offset, seg.flags,
            seg.window, seg.checksum, seg.urgent, seg.options)


def _parsed(frame: GsoFrame) -> wire_tcp.TcpPacket:
    data = memoryview(frame.data)
    l3 = frame.link_len
    parsed = wire_tcp.TcpPacket.parse(data[frame.l4_offset:], bytes(data[l3 + 12:l3 + 16]),
                                      bytes(data[l3 + 16:l3 + 20]), verify_checksum=False)
    assert isinstance(parsed, wire_tcp.TcpPacket)
    return parsed


class Watch:
    """Every frame `host`'s stack hands its NIC (`sent`) and its NIC hands its stack
    (`arrived`: whether it carried a header, and whether the stack took it)."""

    def __init__(self, host: Host, *, drop_headers: bool = False) -> None:
        self.sent: list[tuple[int, bytes]] = []
        self.built: list[tuple[GsoFrame, wire_tcp.TcpPacket]] = []
        self.arrived: list[tuple[bool, bool]] = []
        clock = host.network.scheduler.monotonic_ns
        iface = host.stack.interface("eth0")
        nic = host.nics["eth0"]

        def transmit(frame: Any) -> None:
            if isinstance(frame, GsoFrame):
                self.sent.append((clock(), frame.data))
                header = frame.tcp_header
                if header is not None:
                    assert len(header.buf) == 0  # the receiver gives it its segment
                    assert _fields(header) == _fields(_parsed(frame))
                    self.built.append((frame, header))
                    if drop_headers:
                        frame.tcp_header = None
            else:
                self.sent.append((clock(), bytes(frame)))
            nic.transmit(frame)

        iface.transmit = transmit
        inner = nic.on_receive

        def receive(frame: Any) -> None:
            header = frame.tcp_header if isinstance(frame, GsoFrame) else None
            if header is not None:  # never stale: what the bytes say
                assert _fields(header) == _fields(_parsed(frame))
            inner(frame)
            if header is not None:
                assert isinstance(frame, GsoFrame)
                self.arrived.append((True, frame.tcp_header is None))
            else:
                self.arrived.append((False, False))

        nic.on_receive = receive


def _lan(seed: int = 3) -> tuple[Network, Host, Host]:
    net = Network(virtual_time=True, seed=seed)
    lan = net.segment("lan")
    a, b = net.host("a"), net.host("b")
    a.connect(lan, "10.0.0.1/24")
    b.connect(lan, "10.0.0.2/24")
    return net, a, b


def _exchange(net: Network, a: Host, b: Host, address: str, size: int,
              connections: int = 1) -> list[tuple[int, int, str]]:
    """`connections` times: a connects to b, sends `size` bytes, b answers one byte,
    both close. What each side read: (virtual ns, bytes, sha256)."""
    srv = b.socket()
    srv.bind(("0.0.0.0", 5000))
    srv.listen()
    reads: list[tuple[int, int, str]] = []
    data = hashlib.sha256(b"seed").digest() * (size // 32)

    def note(chunk: bytes) -> None:
        reads.append((net.scheduler.monotonic_ns(), len(chunk),
                      hashlib.sha256(chunk).hexdigest()))

    def server() -> None:
        for _ in range(connections):
            conn, _ = srv.accept()
            got = 0
            while got < len(data):
                chunk = conn.recv(1 << 20)
                assert chunk
                note(chunk)
                got += len(chunk)
            conn.sendall(b"!")
            while chunk := conn.recv(100):
                note(chunk)
            conn.close()

    def client() -> None:
        for _ in range(connections):
            sock = a.socket()
            sock.connect((address, 5000))
            sock.sendall(data)
            note(sock.recv(1))
            sock.close()

    net.spawn("server", server)
    net.spawn("client", client)
    net.run_for(20)
    assert sum(n for _, n, _ in reads) == connections * (len(data) + 1)
    return reads


def test_each_carried_header_is_what_parsing_the_frame_gives_and_is_taken() -> None:
    net, a, b = _lan()
    wa, wb = Watch(a), Watch(b)
    _exchange(net, a, b, "10.0.0.2", 300_000, connections=2)
    built = wa.built + wb.built
    flags = {header.flags for _, header in built}
    assert {wire_tcp.SYN, wire_tcp.SYN | wire_tcp.ACK, wire_tcp.ACK} <= flags
    assert any(f & wire_tcp.FIN for f in flags) and any(f & wire_tcp.PSH for f in flags)
    assert any(frame.gso_segs > 1 for frame, _ in built)  # super-segments (GRO-sized)
    # MSS, window scale, SACK-permitted on the SYNs; timestamps on everything
    assert all(h.options.timestamp is not None for _, h in built)
    syns = [h for _, h in built if h.flags & wire_tcp.SYN]
    assert all(h.options.mss and h.options.sack_permitted and h.options.wscale is not None
               for h in syns)
    # each receiver took every header it was sent (and gave it the segment's bytes)
    arrived = wa.arrived + wb.arrived
    assert sum(carried for carried, _ in arrived) == len(built)
    assert all(taken for carried, taken in arrived if carried)
    assert all(frame.tcp_header is None for frame, _ in built)
    assert all(len(header.buf) >= header.data_offset for _, header in built)
    net.close()


def _run(drop_headers: bool) -> tuple[object, ...]:
    net, a, b = _lan()
    wa, wb = Watch(a, drop_headers=drop_headers), Watch(b, drop_headers=drop_headers)
    reads = _exchange(net, a, b, "10.0.0.2", 200_000, connections=3)
    carried = sum(carried for carried, _ in wa.arrived + wb.arrived)
    assert carried == 0 if drop_headers else carried == len(wa.built) + len(wb.built) > 0
    out = (reads, wa.sent, wb.sent, dict(a.stack.counters), dict(b.stack.counters),
           net.scheduler.monotonic_ns())
    net.close()
    return out


def test_receivers_that_parse_instead_end_exactly_alike() -> None:
    """The same exchange twice, the second time every header dropped before the frame
    leaves (so each receiver parses): what the applications read and when, every frame
    both hosts sent, and every counter are the same."""
    with_headers = _run(drop_headers=False)
    parsed = _run(drop_headers=True)
    assert with_headers == parsed


def test_a_frame_delivered_again_is_parsed_then() -> None:
    """The header is the first receiver's: handed the same frame again (a duplicate the
    stack must answer as any), the stack parses its bytes, and answers alike."""
    net, a, b = _lan()
    wa, wb = Watch(a), Watch(b)
    srv = b.socket()
    srv.bind(("10.0.0.2", 5000))
    srv.listen()
    cli = a.socket()
    cli.settimeout(5)
    cli.connect(("10.0.0.2", 5000))
    conn, _ = srv.accept()
    conn.settimeout(5)
    cli.sendall(b"once")
    net.run_for(0.01)
    (frame, header), = [(f, h) for f, h in wa.built if h.flags & wire_tcp.PSH]
    assert frame.tcp_header is None and bytes(header.buf[header.data_offset:]) == b"once"
    stack = b.stack
    counters = dict(stack.counters)
    sent = len(wb.sent)
    with net.scheduler.lock:
        stack.receive_frame(stack.interface("eth0"), frame)
    net.run_for(0.01)
    assert stack.counters["tcp.in"] == counters["tcp.in"] + 1  # parsed and counted
    assert len(wb.sent) == sent + 1  # a duplicate: answered with an ACK
    assert conn.recv(100) == b"once"  # not queued twice
    net.close()


def test_a_router_forwarding_whole_and_a_nat_make_frames_without_headers() -> None:
    for nat in (False, True):
        net = Network(virtual_time=True, seed=5)
        left, right = net.segment("left"), net.segment("right")
        a, r, b = net.host("a"), net.router("r"), net.host("b")
        a.connect(left, "10.0.1.2/24")
        r.connect(left, "10.0.1.1/24")
        r.connect(right, "10.0.2.1/24")
        b.connect(right, "10.0.2.2/24")
        a.add_route("default", gateway="10.0.1.1")
        if nat:
            r.nat("eth1", "symmetric", ports="random")
        else:
            b.add_route("default", gateway="10.0.2.1")
        wa, wb = Watch(a), Watch(b)
        _exchange(net, a, b, "10.0.2.2", 100_000)
        assert wa.built and wb.built  # both ends build headers
        # what crossed the router was made anew there: no header arrives at b, and
        # Watch checked at a that each one that did arrive was what its bytes say
        assert wb.arrived and not any(carried for carried, _ in wb.arrived)
        if not nat:  # forwarded whole both ways: still no header reaches a
            assert not any(carried for carried, _ in wa.arrived)
        net.close()
