"""Replay a packet trace through veth interfaces and record what comes back (stdlib only).

Run inside the tester namespace of test_vs_nftables.py::

    ip netns exec NS python3 -I kernel_replay.py < trace.json > result.json

The input is ``{"settle": seconds, "window": seconds, "steps": [{"iface": "t0",
"frame": hex}, ...]}``. For each step the frame is sent on its interface
with an AF_PACKET socket, then every frame arriving on any interface during
`window` seconds is recorded. The output is one ``{"t": ns since the first
send, "frames": [[iface, hex], ...]}`` per step. Frames this process sent
itself (PACKET_OUTGOING) are not recorded.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time

ETH_P_ALL = 3
PACKET_OUTGOING = 4


def main() -> None:
    spec = json.load(sys.stdin)
    sockets = {}
    for name in ("t0", "t1"):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind((name, 0))
        sock.setblocking(False)
        sockets[name] = sock
    time.sleep(spec["settle"])
    for sock in sockets.values():
        while True:
            try:
                sock.recv(65535)
            except BlockingIOError:
                break
    results = []
    start = None
    for step in spec["steps"]:
        now = time.monotonic_ns()
        if start is None:
            start = now
        sockets[step["iface"]].send(bytes.fromhex(step["frame"]))
        frames = []
        deadline = time.monotonic() + spec["window"]
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select(list(sockets.values()), [], [], remaining)
            for sock in ready:
                while True:
                    try:
                        data, addr = sock.recvfrom(65535)
                    except BlockingIOError:
                        break
                    if addr[2] == PACKET_OUTGOING:
                        continue
                    frames.append([addr[0], data.hex()])
        results.append({"t": now - start, "frames": frames})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
