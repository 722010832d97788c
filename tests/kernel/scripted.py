"""Scripted guests: small servers written in Python against vnet's HostSocket.

They stand in for the C example guests (examples/*.c built to wasm) where
the tests need a vnet-side program and also where the wasm variant cannot
run yet. Each runs as a scheduler task (`KernelLab.start_guest`), appends
True to `ready` once its socket is bound (and listening), and returns a log
of what it served.
"""

from __future__ import annotations

import socket
from pathlib import Path

from vnet.network import SOCK_DGRAM, SOCK_STREAM, Host

TIMEOUT_S = 60.0


def _any(family: int) -> str:
    return "::" if family == socket.AF_INET6 else "0.0.0.0"


def http_server(host: Host, family: int, port: int, root: Path, connections: int,
                ready: list[bool], address: str | None = None,
                peers: list[tuple[object, ...]] | None = None) -> list[str]:
    """Serve GET for the files directly under root, one request per connection.

    Each response says "Connection: close" and closes. Returns "METHOD PATH
    STATUS BYTES" for each request, like examples/http_server.c logs them;
    `peers` gets each client's address. Binds `address` (default: any).
    """
    log = []
    with host.socket(family, SOCK_STREAM) as server:
        server.bind((address or _any(family), port))
        server.listen(8)
        ready.append(True)
        server.settimeout(TIMEOUT_S)
        for _ in range(connections):
            conn, peer = server.accept()
            if peers is not None:
                peers.append(peer)
            with conn:
                conn.settimeout(TIMEOUT_S)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                if b"\r\n\r\n" not in head:
                    continue
                method, target, _version = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                name = target.lstrip("/") or "index.html"
                path = root / name
                if "/" in name or not path.is_file():
                    body, status, reason = b"404 Not Found\n", 404, "Not Found"
                else:
                    body, status, reason = path.read_bytes(), 200, "OK"
                conn.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
                             "Content-Type: application/octet-stream\r\n"
                             "Connection: close\r\n\r\n".encode())
                if method != "HEAD":
                    conn.sendall(body)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(4096):  # until the client has closed too
                    pass
                log.append(f"{method} {target} {status} {len(body)}")
    return log


def udp_echo_server(host: Host, family: int, port: int, count: int, ready: list[bool],
                    address: str | None = None) -> list[tuple[bytes, tuple[object, ...]]]:
    """Echo `count` datagrams back to their senders; returns (data, sender) of each."""
    seen = []
    with host.socket(family, SOCK_DGRAM) as sock:
        sock.bind((address or _any(family), port))
        ready.append(True)
        sock.settimeout(TIMEOUT_S)
        for _ in range(count):
            data, sender = sock.recvfrom(65535)
            sock.sendto(data, sender)
            seen.append((data, sender))
    return seen


def tcp_echo_server(host: Host, family: int, port: int, ready: list[bool]) -> bytes:
    """Accept one connection and echo it until the client closes; returns what came."""
    got = bytearray()
    with host.socket(family, SOCK_STREAM) as server:
        server.bind((_any(family), port))
        server.listen(1)
        ready.append(True)
        server.settimeout(TIMEOUT_S)
        conn, _peer = server.accept()
        with conn:
            conn.settimeout(TIMEOUT_S)
            while data := conn.recv(65536):
                got += data
                conn.sendall(data)
    return bytes(got)
