"""Play a scripted TCP peer against a Linux socket: the kernel as the reference for dialogues.

`tests/stack/tcp_harness.py` scripts a peer against vnet's TCP; this module
scripts the same peer against the Linux kernel, so a test can run one
segment sequence on both and compare what each side did. The peer is
10.0.0.2:49152 and sends hand-made frames with an AF_PACKET socket on
``peer0``; the kernel listens on 10.0.0.1:80 (``eth0``) in a namespace made
by `linux_reference.LinuxNamespace` (both veth ends inside it, no route
out), with a static neighbour entry for the peer.

Steps (literals, so they cross into the namespace with `repr`)::

    ("segment", flags, seq, ack, window, options, data)
        seq relative to the peer's ISS, ack relative to the kernel's ISS
        (learned from its SYN-ACK); options as scapy's TCP option list
    ("accept",)          the kernel application accepts the connection
    ("app_send", data)   ... sends (non-blocking; outcome: bytes taken or errno)
    ("app_recv", size)   ... receives (non-blocking; outcome: bytes or errno)
    ("wait", seconds)

`run` returns, per step, the outcome and the segments the kernel sent in the
following `settle` seconds, each as (flags, seq, ack, window, data) with seq
and ack relative to the kernel's and the peer's ISS. `run_vnet` plays the
same steps against vnet's TCP (a `tcp_harness.Dialogue`, virtual time) and
returns the same shape, so a test can compare the two.

Script mode (``ip netns exec NS python kernel_tcp_peer.py``) reads the steps
on stdin and prints the results; it needs scapy, so it runs under the
project's interpreter.

Touches: one network namespace it creates and deletes, the processes it
starts inside it.
"""

from __future__ import annotations

import ast
import errno
import select
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PEER_ISS = 0xFFFFF000  # as tcp_harness.REMOTE_ISS
KERNEL_IP, PEER_IP = "10.0.0.1", "10.0.0.2"
KERNEL_PORT, PEER_PORT = 80, 49152
KERNEL_MAC, PEER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
ETH_P_ALL = 3
PACKET_OUTGOING = 4

Step = tuple[Any, ...]
Seen = tuple[str, int, int, int, bytes]


def _flags_text(value: int) -> str:
    return "".join(letter for letter, bit in zip("FSRPAUEC", range(8), strict=True)
                   if value & (1 << bit)) or "-"


def _main() -> None:
    """Script mode, inside the namespace."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    spec = ast.literal_eval(sys.stdin.read())
    steps: list[Step] = spec["steps"]
    settle: float = spec["settle"]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((KERNEL_IP, KERNEL_PORT))
    listener.listen(8)
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    raw.bind(("peer0", 0))
    raw.setblocking(False)
    kernel_iss: int | None = None
    conn: socket.socket | None = None
    results: list[tuple[Any, list[Seen]]] = []

    def collect(seconds: float) -> list[Seen]:
        nonlocal kernel_iss
        seen: list[Seen] = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if not select.select([raw], [], [], remaining)[0]:
                break
            while True:
                try:
                    data, addr = raw.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                frame = Ether(data)
                if TCP not in frame or frame[IP].src != KERNEL_IP:
                    continue
                tcp = frame[TCP]
                if tcp.flags & 0x02 and kernel_iss is None:
                    kernel_iss = tcp.seq
                base = kernel_iss or 0
                seen.append((_flags_text(int(tcp.flags)), (tcp.seq - base) & 0xFFFFFFFF,
                             (tcp.ack - PEER_ISS) & 0xFFFFFFFF, tcp.window,
                             bytes(tcp.payload)))
        return seen

    for step in steps:
        op = step[0]
        outcome: Any = None
        if op == "segment":
            flags, seq, ack, window, options, data = step[1:]
            tcp = TCP(sport=PEER_PORT, dport=KERNEL_PORT, flags=flags,
                      seq=(PEER_ISS + seq) & 0xFFFFFFFF,
                      ack=((kernel_iss or 0) + ack) & 0xFFFFFFFF if "A" in flags else 0,
                      window=window, options=list(options))
            frame = Ether(src=PEER_MAC, dst=KERNEL_MAC) / IP(src=PEER_IP, dst=KERNEL_IP) / tcp
            if data:
                frame = frame / Raw(data)
            raw.send(bytes(frame))
        elif op == "accept":
            listener.settimeout(2.0)
            conn, _ = listener.accept()
            conn.setblocking(False)
        elif op in ("app_send", "app_recv"):
            assert conn is not None
            try:
                outcome = conn.send(step[1]) if op == "app_send" else conn.recv(step[1])
            except OSError as exc:
                outcome = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        elif op == "wait":
            time.sleep(step[1])
        else:
            raise ValueError(f"unknown step {step!r}")
        results.append((outcome, collect(settle)))
    sys.stdout.write(repr(results))


def run(steps: Sequence[Step], settle: float = 0.05) -> list[tuple[Any, list[Seen]]]:
    """Run the steps against Linux in a fresh namespace (deleted afterwards)."""
    from tests.stack.linux_reference import LinuxNamespace

    ns = LinuxNamespace(name=f"vnet-tcppeer-{__import__('os').getpid()}")
    try:
        ns.create()
        ns._ip("neigh", "add", PEER_IP, "lladdr", PEER_MAC, "dev", "eth0", "nud", "permanent")
        text = repr({"steps": list(steps), "settle": settle})
        out = ns.exec(sys.executable, str(Path(__file__).resolve()), input=text, timeout=120)
        results: list[tuple[Any, list[Seen]]] = ast.literal_eval(out)
        return results
    finally:
        ns.delete()


def run_vnet(steps: Sequence[Step], settle: float = 0.05) -> list[tuple[Any, list[Seen]]]:
    """The same steps against vnet's TCP on a `tcp_harness.Dialogue` in virtual time."""
    from scapy.layers.inet import TCP

    from tests.stack.tcp_harness import SEC, Dialogue

    d = Dialogue()
    listener = d.listen(port=KERNEL_PORT)
    conn: Any = None
    results: list[tuple[Any, list[Seen]]] = []

    def seen(segs: list[TCP]) -> list[Seen]:
        return [(_flags_text(int(s.flags)), (s.seq - d.local) & 0xFFFFFFFF,
                 (s.ack - PEER_ISS) & 0xFFFFFFFF, s.window, bytes(s.payload)) for s in segs]

    for step in steps:
        op = step[0]
        outcome: Any = None
        early: list[TCP] = []
        if op == "segment":
            flags, seq, ack, window, options, data = step[1:]
            d.send(flags, seq=PEER_ISS + seq, ack=d.local + ack if "A" in flags else 0,
                   win=window, data=data, options=options)
            early = d.sent()  # a SYN-ACK teaches d.local before the others are read
        elif op == "accept":
            conn = listener.accept()
        elif op in ("app_send", "app_recv"):
            try:
                outcome = conn.send(step[1]) if op == "app_send" else conn.recv(step[1])
            except OSError as exc:
                outcome = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        elif op == "wait":
            d.advance(int(step[1] * SEC))
        else:
            raise ValueError(f"unknown step {step!r}")
        d.advance(int(settle * SEC))
        results.append((outcome, seen(early) + seen(d.sent())))
    return results


if __name__ == "__main__":
    _main()
