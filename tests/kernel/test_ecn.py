"""ECN (RFC 3168) with the kernel across the TUN bridge: negotiated, marked, echoed, answered.

A router inside vnet plays a congested AQM queue: its FORWARD hook CE-marks
a few ECT data packets (`CeMarker`). The TUN capture, taken in the kernel's
namespace, then shows the whole exchange:

- the kernel with net.ipv4.tcp_ecn=1 sends an ECN-setup SYN (ECE|CWR) and
  vnet (tcp_ecn=2 by default, as Linux) grants it with ECE on its SYN-ACK;
  vnet configured to ask (`TcpConfig.ecn = 1`) sends the ECN-setup SYN and
  the kernel (default tcp_ecn=2) grants it;
- both send their data ECT(0);
- a CE mark on the kernel's data is echoed by vnet with ECE, and the
  kernel answers with CWR; a CE mark on vnet's data is echoed by the
  kernel with ECE, and vnet answers with CWR.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import Any

from stack.hooks import ACCEPT, DROP, Hook, Verdict
from stack.host import IpMeta
from vnet.network import SOCK_STREAM

from .conftest import GUEST4, KERNEL4, KernelLab, tshark_fields, wait_until
from .scripted import tcp_echo_server

PORT = 7500
SIZE = 256 * 1024
ECT0, CE = 2, 3

KERNEL_CLIENT = """
import socket, sys, threading
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
data = bytes(range(256)) * (int(sys.argv[3]) // 256)
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t.start()
got = 0
while chunk := s.recv(65536):
    got += len(chunk)
t.join()
print(got, flush=True)
"""


class CeMarker:
    """A FORWARD hook that CE-marks ECT TCP data packets from `src` (up to `limit`),
    as an ECN-capable AQM queue at a congested router would."""

    def __init__(self, sources: list[str], limit: int, skip: int = 4) -> None:
        self.sources = {socket.inet_aton(a) for a in sources}
        self.limit = limit
        self.skip = skip  # let the connection get going first
        self.seen: dict[bytes, int] = {}
        self.marked: dict[bytes, int] = {}

    def __call__(self, hook: Hook, meta: IpMeta | None,
                 packet: bytes | bytearray | memoryview) -> Verdict:
        return ACCEPT if self.mark(meta, packet) else DROP

    def mark(self, meta: IpMeta | None, packet: bytes | bytearray | memoryview) -> bool:
        if not isinstance(packet, bytearray) or meta is None:
            return True  # FORWARD hands over the packet as a bytearray it will send
        if meta.version != 4 or meta.src not in self.sources or packet[9] != 6:
            return True
        if packet[1] & 3 not in (1, 2):
            return True
        ihl = (packet[0] & 0x0F) * 4
        total = int.from_bytes(packet[2:4], "big")
        if total - ihl - (packet[ihl + 12] >> 4) * 4 <= 0:
            return True  # no payload
        seen = self.seen[meta.src] = self.seen.get(meta.src, 0) + 1
        if seen <= self.skip or self.marked.get(meta.src, 0) >= self.limit:
            return True
        self.marked[meta.src] = self.marked.get(meta.src, 0) + 1
        packet[1] |= CE
        packet[10:12] = b"\0\0"
        total_sum = sum(int.from_bytes(packet[i:i + 2], "big") for i in range(0, ihl, 2))
        while total_sum > 0xFFFF:
            total_sum = (total_sum & 0xFFFF) + (total_sum >> 16)
        packet[10:12] = (0xFFFF - total_sum).to_bytes(2, "big")
        return True


def _tcp(pcap: Any, where: str) -> list[list[str]]:
    """frame number, ip.src, tcp flags, ip ECN field and payload length of TCP segments."""
    return tshark_fields(pcap, f"tcp.port == {PORT} and ({where})",
                         ("frame.number", "ip.src", "tcp.flags", "ip.dsfield.ecn", "tcp.len"))


def _first(rows: list[list[str]]) -> int:
    assert rows, "no such segment in the capture"
    return int(rows[0][0])


def _check_marked_and_answered(pcap: Any, marked_sender: str, echoer: str) -> None:
    """CE on marked_sender's data is echoed by echoer with ECE; marked_sender sends CWR."""
    ece = _tcp(pcap, f"ip.src == {echoer} and tcp.flags.ece == 1 and tcp.flags.syn == 0")
    cwr = _tcp(pcap, f"ip.src == {marked_sender} and tcp.flags.cwr == 1 "
                     "and tcp.flags.syn == 0")
    assert ece, f"{echoer} never echoed ECE"
    assert cwr, f"{marked_sender} never answered ECE with CWR"
    assert _first(cwr) > _first(ece)


def test_kernel_asks_for_ecn_and_both_sides_echo_and_react(
        kernel_lab: Callable[..., KernelLab]) -> None:
    lab = kernel_lab()
    lab.sysctl("net.ipv4.tcp_ecn", 1)
    marker = CeMarker([KERNEL4, GUEST4], limit=3)
    with lab.net.scheduler.lock:
        lab.router.stack.hooks.register(Hook.FORWARD, marker)
    ready: list[bool] = []
    job = lab.start_guest(lambda: tcp_echo_server(lab.guest, socket.AF_INET, PORT, ready))
    wait_until(lambda: bool(ready) or job.done, what="the guest echo server")
    pcap = lab.tmp / "ecn-kernel-asks.pcap"
    with lab.tcpdump(pcap, "tcp port 7500", snaplen=96):
        client = lab.popen(sys.executable, "-I", "-c", KERNEL_CLIENT, GUEST4, str(PORT),
                           str(SIZE), name="kernel client")
        assert client.wait(60) == 0, client.describe()
        assert bytes(client.stdout).strip() == str(SIZE).encode()
    assert job.result(30) == bytes(range(256)) * (SIZE // 256)
    syn = _tcp(pcap, f"ip.src == {KERNEL4} and tcp.flags.syn == 1 and tcp.flags.ack == 0")
    assert syn[0][2] == "0x00c2", syn  # SYN|ECE|CWR, not-ECT
    assert syn[0][3] == "0"
    synack = _tcp(pcap, f"ip.src == {GUEST4} and tcp.flags.syn == 1")
    assert synack[0][2] == "0x0052", synack  # SYN|ACK|ECE
    for sender in (KERNEL4, GUEST4):
        data = _tcp(pcap, f"ip.src == {sender} and tcp.len > 0 and "
                          "not tcp.analysis.retransmission")
        fields = {row[3] for row in data}
        assert str(ECT0) in fields and fields <= {str(ECT0), str(CE)}, (sender, fields)
    assert marker.marked == {socket.inet_aton(KERNEL4): 3, socket.inet_aton(GUEST4): 3}
    # vnet's CE marks are applied before the TUN: the capture shows them
    assert _tcp(pcap, f"ip.src == {GUEST4} and ip.dsfield.ecn == 3")
    _check_marked_and_answered(pcap, KERNEL4, GUEST4)
    _check_marked_and_answered(pcap, GUEST4, KERNEL4)
    assert lab.guest.counters["tcp.ecn_ce_in"] >= 1
    assert lab.guest.counters["tcp.ecn_reductions"] >= 1


def test_vnet_asks_for_ecn_and_the_kernel_grants_it(
        kernel_lab: Callable[..., KernelLab]) -> None:
    lab = kernel_lab()  # the namespace keeps Linux's default tcp_ecn = 2
    lab.guest.tcp.config.ecn = 1
    server = lab.echo_peer("tcp-echo", KERNEL4, PORT)
    pcap = lab.tmp / "ecn-vnet-asks.pcap"

    def client() -> int:
        with lab.guest.socket(socket.AF_INET, SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect((KERNEL4, PORT))
            sock.sendall(b"e" * 20000)
            sock.shutdown(socket.SHUT_WR)
            got = 0
            while data := sock.recv(65536):
                got += len(data)
            return got

    with lab.tcpdump(pcap, "tcp port 7500", snaplen=96):
        assert lab.in_guest(client) == 20000
        assert server.wait() == 0
    syn = _tcp(pcap, f"ip.src == {GUEST4} and tcp.flags.syn == 1 and tcp.flags.ack == 0")
    assert syn[0][2] == "0x00c2" and syn[0][3] == "0", syn
    synack = _tcp(pcap, f"ip.src == {KERNEL4} and tcp.flags.syn == 1")
    assert synack[0][2] == "0x0052", synack
    for sender in (KERNEL4, GUEST4):
        # retransmissions (a tail loss probe when the loaded machine delays an ACK) leave
        # not-ECT, as RFC 3168 §6.1.5 and Linux's tcp_ecn_send say; new data is ECT(0)
        data = _tcp(pcap, f"ip.src == {sender} and tcp.len > 0 and "
                          "not tcp.analysis.retransmission")
        assert data and {row[3] for row in data} == {str(ECT0)}, (sender, data)
