"""Socket operations whose outcome (ok, timeout, errno name) a guest would observe.

Standard library only: the kernel side runs this file as a script inside a
network namespace (ops as JSON on stdin, outcomes as JSON on stdout); the
vnet side calls `probe` with a vnet host's socket factory. Ops:

    ["connect", addr, port, timeout]       TCP connect
    ["udp", addr, port, sends, connected_sends]
                                           sendto `sends` times, then connect and
                                           send `connected_sends` times (0.1 s apart)
    ["ping", addr]                         one ICMP echo through a ping socket
"""

from __future__ import annotations

import errno
import json
import socket
import sys
import time
from collections.abc import Callable
from typing import Any


def _family(addr: str) -> int:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def _name(exc: OSError) -> str:
    if isinstance(exc, TimeoutError) or exc.errno is None:
        return "timeout"
    return errno.errorcode.get(exc.errno, str(exc.errno))


def probe(ops: list[list[Any]], make_socket: Callable[..., Any],
          sleep: Callable[[float], None]) -> list[Any]:
    results: list[Any] = []
    for op in ops:
        kind = op[0]
        if kind == "connect":
            _, addr, port, timeout = op
            sock = make_socket(_family(addr), socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect((addr, port))
                results.append("ok")
            except OSError as e:
                results.append(_name(e))
            finally:
                sock.close()
        elif kind == "udp":
            _, addr, port, sends, connected_sends = op
            sock = make_socket(_family(addr), socket.SOCK_DGRAM)
            outcomes = []
            for _ in range(sends):
                try:
                    sock.sendto(b"x", (addr, port))
                    outcomes.append("ok")
                except OSError as e:
                    outcomes.append(_name(e))
                sleep(0.1)
            sock.connect((addr, port))
            for _ in range(connected_sends):
                try:
                    sock.send(b"x")
                    outcomes.append("ok")
                except OSError as e:
                    outcomes.append(_name(e))
                sleep(0.1)
            sock.close()
            results.append(outcomes)
        elif kind == "ping":
            _, addr = op
            v6 = ":" in addr
            proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
            sock = make_socket(_family(addr), socket.SOCK_DGRAM, proto)
            header = bytes((128 if v6 else 8, 0, 0, 0, 0, 0, 0, 1))
            try:
                sock.sendto(header + b"ping", (addr, 0))
                results.append("ok")
            except OSError as e:
                results.append(_name(e))
            finally:
                sock.close()
        else:
            raise ValueError(f"unknown op {kind!r}")
    return results


if __name__ == "__main__":
    print(json.dumps(probe(json.load(sys.stdin), socket.socket, time.sleep)))
