"""A tiny HTTP/1.1 client for testing http_server, over any socket-like object.

`fetch(sock, requests)` sends each request on one connection (keep-alive)
and parses each response (status line, headers, a Content-Length body; HEAD
responses have none). The socket only needs `sendall` and `recv`, so the
same code talks through a real kernel socket and through a vnet HostSocket.

Run as a script inside a network namespace, it connects with a real socket
and prints the responses as JSON:

    python http_fetch.py HOST PORT '[["GET", "/", {}], ["HEAD", "/a.txt", {}]]'

Standard library only (it runs under `python -I`).
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any, Protocol

Request = tuple[str, str, dict[str, str]]  # method, raw target, extra headers


class SocketLike(Protocol):
    def sendall(self, data: bytes, /) -> Any: ...
    def recv(self, bufsize: int, /) -> bytes: ...


class Reader:
    def __init__(self, sock: SocketLike) -> None:
        self.sock = sock
        self.buf = b""

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed mid-response")
        self.buf += chunk

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._more()
        head, self.buf = self.buf.split(marker, 1)
        return head

    def exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._more()
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def at_eof(self) -> bool:
        """True if the server closed the connection (nothing more was sent)."""
        if self.buf:
            return False
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True


def fetch(sock: SocketLike, requests: list[Request], host: str = "test") -> list[dict[str, Any]]:
    reader = Reader(sock)
    responses = []
    for method, target, headers in requests:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}",
                 *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        sock.sendall("\r\n".join(lines).encode("latin-1"))
        head = reader.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        version, status, reason = head[0].split(" ", 2)
        fields = {}
        for line in head[1:]:
            name, value = line.split(":", 1)
            fields[name.strip().lower()] = value.strip()
        length = int(fields.get("content-length", "0"))
        body = b"" if method == "HEAD" else reader.exactly(length)
        responses.append({"version": version, "status": int(status), "reason": reason,
                          "headers": fields, "body": body.decode("latin-1")})
    if requests and requests[-1][2].get("Connection", "").lower() == "close":
        responses.append({"closed_by_server": reader.at_eof()})
    return responses


def main(argv: list[str]) -> None:
    host, port, requests = argv[0], int(argv[1]), json.loads(argv[2])
    with socket.create_connection((host, port), timeout=10) as sock:
        print(json.dumps(fetch(sock, [(m, t, h) for m, t, h in requests], host)))


if __name__ == "__main__":
    main(sys.argv[1:])
