"""TIME-WAIT records on a real path: host sockets on two virtual hosts, the segment capture.

A client makes a run of short connections and closes each first (as the bench's
connrate client does), so every one ends in TIME-WAIT on the client. Each must
become a slim `stack.tcp_time_wait.TimeWaitRecord` there, the capture must show each
connection's ordinary life and nothing more (three-way handshake, request and
reply, FIN and ACK both ways, in that order, every frame once), and after 2*MSL
(60 s, as Linux) the client's table is empty again. The server, which closed
second, keeps nothing.
"""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, TCP

from stack.tcp_time_wait import TimeWaitRecord
from vnet.network import Network
from vnet.testing.pcap import read_pcapng

CONNECTIONS = 12
PORT = 7300


@pytest.fixture
def net() -> Iterator[Network]:
    network = Network(virtual_time=True, seed=5)
    lan = network.segment("lan")
    network.host("alpha").connect(lan, "10.0.0.1/24")
    network.host("bravo").connect(lan, "10.0.0.2/24")
    yield network
    network.close()


def _flags(seg: TCP) -> str:
    return "".join(c for c, bit in (("S", 0x02), ("F", 0x01), ("R", 0x04), ("P", 0x08),
                                    ("A", 0x10)) if int(seg.flags) & bit)


def test_client_time_wait_is_slim_and_the_wire_shows_ordinary_connections(
        net: Network) -> None:
    alpha, bravo = net.hosts["alpha"], net.hosts["bravo"]
    cap = net.capture_segments()

    def serve() -> None:
        with socket.socket() as server:
            server.bind(("10.0.0.1", PORT))
            server.listen(16)
            for _ in range(CONNECTIONS):
                conn, _peer = server.accept()
                with conn:
                    request = conn.recv(100)
                    conn.sendall(request.upper())
                    assert conn.recv(100) == b""  # the client closes first

    task = alpha.spawn("server", serve)
    net.run_for(0.001)
    replies = []
    with bravo.sockets():
        for i in range(CONNECTIONS):
            with socket.create_connection(("10.0.0.1", PORT), timeout=5) as sock:
                sock.sendall(b"hello %d" % i)
                replies.append(sock.recv(100))
    net.run_for(1.0)
    assert replies == [b"HELLO %d" % i for i in range(CONNECTIONS)]
    assert task.done and task.error is None

    client_table = list(bravo.tcp.conns.values())
    assert len(client_table) == CONNECTIONS
    assert all(isinstance(entry, TimeWaitRecord) for entry in client_table)
    assert not alpha.tcp.conns  # the server closed second: LAST-ACK, then nothing

    per_connection: dict[int, list[str]] = defaultdict(list)
    for packet in read_pcapng(cap.getvalue()):
        frame = packet.packet
        if TCP not in frame:
            continue
        seg = frame[TCP]
        client_port = seg.sport if frame[IP].src == "10.0.0.2" else seg.dport
        side = "c" if frame[IP].src == "10.0.0.2" else "s"
        per_connection[client_port].append(side + _flags(seg) + ("+" if seg.payload
                                                                 and len(seg.payload) else ""))
    assert len(per_connection) == CONNECTIONS
    for port, lives in per_connection.items():
        assert lives[:3] == ["cS", "sSA", "cA"], (port, lives)
        assert lives[-2:] == ["sFA", "cA"], (port, lives)  # our ACK of their FIN ends it
        assert lives.count("cFA") == 1 and lives.index("cFA") < len(lives) - 2, (port, lives)
        assert "cPA+" in lives and "sPA+" in lives, (port, lives)
        assert not any("R" in step for step in lives), (port, lives)

    net.run_for(61.0)  # 2*MSL
    assert not bravo.tcp.conns and not bravo.tcp.conns_by_port
