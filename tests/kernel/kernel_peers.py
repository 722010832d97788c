"""Kernel-side echo peers, run inside a test namespace with `python3 -I kernel_peers.py`.

    tcp-echo ADDR PORT            accept one connection, echo it until the client closes
    udp-echo ADDR PORT COUNT      echo COUNT datagrams back to their senders

Each prints "ready" once its socket is bound (and listening), then one line
per connection or datagram, and exits. Ordinary Linux sockets: this is the
kernel's TCP/UDP the tests compare vnet against. Touches nothing else.
"""

from __future__ import annotations

import socket
import sys


def _family(addr: str) -> int:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def tcp_echo(addr: str, port: int) -> None:
    with socket.socket(_family(addr), socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((addr, port))
        server.listen(1)
        print("ready", flush=True)
        conn, peer = server.accept()
        with conn:
            total = 0
            while data := conn.recv(65536):
                conn.sendall(data)
                total += len(data)
        print(f"echoed {total} bytes to {peer[0]}", flush=True)


def udp_echo(addr: str, port: int, count: int) -> None:
    with socket.socket(_family(addr), socket.SOCK_DGRAM) as sock:
        sock.bind((addr, port))
        print("ready", flush=True)
        for _ in range(count):
            data, peer = sock.recvfrom(65535)
            sock.sendto(data, peer)
            print(f"echoed {len(data)} bytes to {peer[0]} port {peer[1]}", flush=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["tcp-echo"] and len(argv) == 3:
        tcp_echo(argv[1], int(argv[2]))
    elif argv[:1] == ["udp-echo"] and len(argv) == 4:
        udp_echo(argv[1], int(argv[2]), int(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
