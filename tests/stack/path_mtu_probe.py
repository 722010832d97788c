"""Datagrams through a narrow hop: what the sender is told and what arrives, Linux or vnet.

Standard library only: on Linux, `send` runs as a script inside the sending
namespace (ops as JSON on stdin, outcomes as JSON on stdout) and `receive`
inside the receiving one; the vnet test calls both with its hosts' socket
factories and its clock. Ops, each on a fresh socket:

    [kind, dst, size, count]   kind "sendto" (unconnected) or "send" (connected):
                               `count` datagrams of `size` bytes, 0.3 s apart, each
                               starting with "TAG-i" where TAG is the op's index

Each op's outcome is the list of "ok" / errno names of its sends. `receive`
returns the tags of the datagrams that arrived intact, in order.
"""

from __future__ import annotations

import errno
import json
import select
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

PORT = 9000


def _payload(tag: str, size: int) -> bytes:
    return tag.encode().ljust(size, b".")


def send(ops: list[list[Any]], make_socket: Callable[..., Any],
         sleep: Callable[[float], None]) -> list[list[str]]:
    results = []
    for index, (kind, dst, size, count) in enumerate(ops):
        family = socket.AF_INET6 if ":" in dst else socket.AF_INET
        sock = make_socket(family, socket.SOCK_DGRAM)
        outcomes = []
        if kind == "send":
            sock.connect((dst, PORT))
        for i in range(count):
            data = _payload(f"{index}-{i}", size)
            try:
                if kind == "send":
                    sock.send(data)
                else:
                    sock.sendto(data, (dst, PORT))
                outcomes.append("ok")
            except OSError as e:
                outcomes.append(errno.errorcode.get(e.errno or 0, str(e.errno)))
            sleep(0.3)
        sock.close()
        results.append(outcomes)
    return results


def receive(socks: list[Any]) -> list[str]:
    """Drain non-blocking sockets: the tags of the intact datagrams."""
    got = []
    for sock in socks:
        sock.setblocking(False)
        while True:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            tag = data.partition(b".")[0]
            if data == _payload(tag.decode(), len(data)):
                got.append(tag.decode())
    return sorted(got)


def _listen() -> None:
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s4.bind(("0.0.0.0", PORT))
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s6.bind(("::", PORT))
    print("ready", flush=True)
    select.select([sys.stdin], [], [])
    print(json.dumps(receive([s4, s6])), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["listen"]:
        _listen()
    else:
        print(json.dumps(send(json.load(sys.stdin), socket.socket, time.sleep)))
