"""Socket behaviour a Python program observes, recorded as JSON: run on Linux and on vnet.

`probe()` uses only the `socket` module, over 127.0.0.1 and ::1, in one
thread: refused and in-use errors, timeouts, non-blocking errors,
`makefile` modes and reference counting, `recvmsg`/`sendmsg`, stream
`recvfrom` addresses, datagram truncation. tests/test_host_sockets_linux.py
runs it as a script inside a fresh network namespace (kernel sockets) and
in-process inside `Host.sockets()` (vnet's), and compares the records.

Standard library only (it runs under `python -I`).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any


def outcome(action: Callable[[], Any]) -> Any:
    """What an action returned, or the exception it raised (type, errno, text)."""
    try:
        result = action()
    except OSError as e:
        return ["raised", type(e).__name__, e.errno, str(e)]
    except (ValueError, TypeError) as e:
        return ["raised", type(e).__name__, None, str(e)]
    if isinstance(result, bytes):
        return ["bytes", result.decode("latin-1")]
    return ["value", repr(result)]


def probe() -> dict[str, Any]:
    record: dict[str, Any] = {}
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    record["connect refused"] = outcome(lambda: s.connect(("127.0.0.1", 9)))
    s.close()
    record["connect_ex refused"] = outcome(lambda: socket.socket().connect_ex(("127.0.0.1", 9)))
    record["create_connection refused"] = outcome(
        lambda: socket.create_connection(("127.0.0.1", 9), timeout=5))

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    twin = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    record["bind in use"] = outcome(lambda: twin.bind(("127.0.0.1", port)))
    twin.close()

    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    server, _peer = listener.accept()
    server.settimeout(0.2)
    record["recv timeout"] = outcome(lambda: server.recv(10))
    server.setblocking(False)
    record["recv nonblocking"] = outcome(lambda: server.recv(10))
    record["timeout after setblocking(False)"] = outcome(server.gettimeout)
    server.settimeout(5)
    client.sendall(b"line one\nline two\nrest")
    record["stream recvfrom"] = outcome(lambda: server.recvfrom(4))
    record["stream recvmsg"] = outcome(lambda: server.recvmsg(5))
    reader = server.makefile("rb")
    record["makefile readline"] = outcome(reader.readline)
    server.close()  # the file object keeps the connection open
    client.sendall(b"\nafter close\n")
    record["readline after sock.close"] = outcome(reader.readline)
    record["readline 2 after sock.close"] = outcome(reader.readline)
    client.settimeout(0.2)
    record["peer recv while file open"] = outcome(lambda: client.recv(10))
    reader.close()  # now the connection closes
    client.settimeout(5)
    record["peer recv after file closed"] = outcome(lambda: client.recv(10))
    record["fileno after close"] = outcome(server.fileno)
    record["recv after close"] = outcome(lambda: server.recv(1))
    record["send after close"] = outcome(lambda: server.send(b"x"))
    record["getsockname after close"] = outcome(server.getsockname)
    record["close twice"] = outcome(server.close)
    for mode in ("r", "w", "rw", "rb", "wb", "rwb", "x", "r+", "rb+"):
        record[f"makefile {mode}"] = outcome(lambda m=mode: type(client.makefile(m)).__name__)
    record["makefile r unbuffered"] = outcome(lambda: client.makefile("r", buffering=0))
    record["makefile rb unbuffered"] = outcome(
        lambda: type(client.makefile("rb", buffering=0)).__name__)
    client.close()
    listener.close()

    rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    rx.bind(("::1", 0))
    rx.settimeout(5)
    tx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    tx.bind(("::1", 0))
    record["sendmsg"] = outcome(lambda: tx.sendmsg([b"abc", b"defgh"], [], 0, rx.getsockname()))
    received = rx.recvmsg(4)
    record["recvmsg truncated"] = [received[0].decode(), received[1],
                                   received[2] == socket.MSG_TRUNC,
                                   received[3][:2] == tx.getsockname()[:2]]
    tx.sendto(b"xyz", rx.getsockname())
    buffer = bytearray(8)
    record["recvfrom_into"] = outcome(lambda: rx.recvfrom_into(buffer)[0])
    record["recvfrom_into data"] = buffer.decode("latin-1")
    record["recvmsg negative"] = outcome(lambda: rx.recvmsg(-1))
    record["datagram recv timeout"] = outcome(lambda: (rx.settimeout(0.2), rx.recv(10)))
    rx.close()
    tx.close()
    return record


if __name__ == "__main__":
    print(json.dumps(probe(), indent=1, sort_keys=True))
