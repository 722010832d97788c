"""connrate (examples/connrate.c): the segments of a short TCP connection, as Linux sends them.

The bench's connection-rate program opens connections one after another: the
server accepts, writes a one-byte greeting and closes when it reads the end of
the stream; the client reads the greeting and closes first. The test runs it
for three connections natively (gcc, the kernel on both ends, captured with
tcpdump on alpha's eth0 inside its namespace) and on vnet (wasm guests,
alpha's NIC captured), and asserts the same eight segments per connection on
both labs. In particular the server does not acknowledge the client's FIN on
its own: Linux puts a socket that enters CLOSE_WAIT in delayed-ACK
("pingpong") mode, so the server's FIN, sent when it closes at once, carries
the ACK.
"""

from __future__ import annotations

import subprocess
import time
from collections import defaultdict
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from vnet.link.capture import Capture
from vnet.testing import netns

from .harness import WAIT_S, Lab, NativeLab, VnetLab

PORT = 5300
COUNT = 3
# (who sent it, TCP flags, payload length) for one whole connection
ONE_CONNECTION = [
    ("client", "S", 0), ("server", "SA", 0), ("client", "A", 0),
    ("server", "PA", 1),  # the greeting
    ("client", "A", 0),   # acknowledged at once: the first data of a connection (quickack)
    ("client", "FA", 0),  # the client closes first
    ("server", "FA", 0),  # the server's FIN carries the ACK of the client's FIN
    ("client", "A", 0),
]


def _run_connrate(lab: Lab) -> None:
    server = lab.start("alpha", "connrate", "server", str(PORT), str(COUNT))
    server.wait_for("listening")
    client = lab.run("bravo", "connrate", "client", "10.0.0.1", str(PORT), str(COUNT))
    assert client.exit_code == 0, client.describe()
    assert f"opened {COUNT} connections" in client.stdout, client.describe()
    server.wait()
    assert server.exit_code == 0, server.describe()


def _capture_native(lab: NativeLab, pcap: Path) -> None:
    argv = netns.in_namespace(lab.net.namespaces["alpha"], "tcpdump", "-i", "eth0", "-U",
                              "-w", str(pcap), "tcp", "port", str(PORT))
    dump = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert dump.stderr is not None
        first = dump.stderr.readline()  # "listening on eth0, ...": it captures from now on
        assert "listening on" in first, f"tcpdump did not start: {first}"
        _run_connrate(lab)
        # tcpdump writes each packet as it gets it (-U); wait until all of them are in
        give_up = time.monotonic() + WAIT_S
        while _segment_count(pcap) < COUNT * len(ONE_CONNECTION) and time.monotonic() < give_up:
            time.sleep(0.05)
    finally:
        dump.terminate()
        dump.wait(timeout=WAIT_S)


def _capture_vnet(lab: VnetLab, pcap: Path) -> None:
    cap = Capture.in_memory(clock=lab.net.scheduler.realtime_ns)
    lab.nics["alpha"].capture(cap)
    _run_connrate(lab)
    pcap.write_bytes(cap.getvalue())


def _segment_count(pcap: Path) -> int:
    try:
        return sum(1 for packet in rdpcap(str(pcap)) if TCP in packet)
    except (OSError, EOFError):  # not written yet, or cut in the middle of a packet
        return 0


def _connections(pcap: Path) -> list[list[tuple[str, str, int]]]:
    """Each connection's segments in capture order, connections in order of their SYN."""
    by_port: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    for packet in rdpcap(str(pcap)):
        if TCP not in packet:
            continue
        tcp = packet[TCP]
        from_client = tcp.dport == PORT
        who = "client" if from_client else "server"
        by_port[tcp.sport if from_client else tcp.dport].append(
            (who, str(tcp.flags), len(packet[IP].payload) - tcp.dataofs * 4))
    return list(by_port.values())


def test_a_short_connection_is_the_eight_segments_linux_sends(lab: Lab, tmp_path: Path) -> None:
    pcap = tmp_path / f"connrate-{lab.kind}.pcap"
    if isinstance(lab, NativeLab):
        _capture_native(lab, pcap)
    else:
        assert isinstance(lab, VnetLab)
        _capture_vnet(lab, pcap)
    connections = _connections(pcap)
    assert len(connections) == COUNT, connections
    for segments in connections:
        assert segments == ONE_CONNECTION
