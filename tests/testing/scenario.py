"""The network the tests of vnet.testing capture: two hosts, a ping, a TCP exchange, UDP.

Built through vnet's public Python API (``vnet.network.Network``) in
virtual time, so the same seed and payload give byte-identical captures.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from vnet.network import Network

#: One-way delay of the segment: b's copy of a frame is stamped this much after a's.
LATENCY_NS = 250_000
CLIENT, SERVER = "10.0.0.1", "10.0.0.2"
TCP_PORT, UDP_CLIENT_PORT, UDP_PORT = 80, 5000, 9


@dataclass
class Run:
    """Virtual times (ns) the scenario noted while it ran, and the capture it wrote."""

    path: Path
    tcp_connect_ns: int
    udp_send_ns: int
    end_ns: int


def run_scenario(path: Path, *, seed: int = 1, payload: bytes = b"hello",
                 extra_udp: bool = False) -> Run:
    """Ping b, connect/send/close over TCP, then a UDP request and reply (and an extra one)."""
    net = Network(virtual_time=True, seed=seed)
    lan = net.segment("lan", latency_ns=LATENCY_NS)
    a = net.host("a")
    a.connect(lan, f"{CLIENT}/24")
    b = net.host("b")
    b.connect(lan, f"{SERVER}/24")
    cap = net.capture(path)
    assert all(rtt is not None for rtt in a.ping(SERVER, count=1))
    net.run_for(0.1)
    with b.socket() as listener:
        listener.bind((SERVER, TCP_PORT))
        listener.listen(1)
        client = a.socket()
        tcp_connect_ns = net.scheduler.monotonic_ns()
        client.connect((SERVER, TCP_PORT))
        server, _ = listener.accept()
        client.sendall(payload)
        assert server.recv(100) == payload
        client.close()
        assert server.recv(100) == b""
        server.close()
    net.run_for(0.5)
    with b.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            a.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind((SERVER, UDP_PORT))
        tx.bind((CLIENT, UDP_CLIENT_PORT))
        udp_send_ns = net.scheduler.monotonic_ns()
        tx.sendto(b"ping", (SERVER, UDP_PORT))
        data, source = rx.recvfrom(100)
        assert data == b"ping"
        rx.sendto(b"pong", source)
        assert tx.recvfrom(100)[0] == b"pong"
        if extra_udp:
            tx.sendto(b"extra", (SERVER, UDP_PORT))
            assert rx.recvfrom(100)[0] == b"extra"
    net.run_for(0.1)
    end_ns = net.scheduler.monotonic_ns()
    cap.close()
    net.close()
    return Run(path, tcp_connect_ns, udp_send_ns, end_ns)
