"""Socket operations about source and destination addresses, run on Linux and on vnet.

Standard library only: the kernel side runs this file as a script inside a
network namespace (ops as JSON on stdin, outcomes as JSON on stdout); the
vnet side calls `probe` with a vnet host's socket factory and its clock.
Each outcome is "ok" (with the address a bind or connect left, ports shown
only when the op chose them), "timeout", or the errno name. Ops:

    ["tcp", bind, dst]            TCP connect (0.3 s) from a socket bound to bind
                                  (null: unbound); outcome and getsockname()'s address
    ["udp", bind, dst, how]       how = "sendto" | "connect": outcome, and after
                                  connect the local and peer addresses
    ["ping", bind, dst]           ping socket: bind (if bind), sendto an echo request
    ["ping_bind", bind]           ping socket: bind, then getsockname()
    ["ping_connect", bind, dst]   ping socket: bind (if bind), connect, getsockname(),
                                  send an echo request without an address
    ["listen", bind]              a TCP listener, open until the end of the run
    ["mcast_if", src, dst]        UDP socket: IP_MULTICAST_IF with an ip_mreqn naming src
                                  and eth0 (ifindex 2 on both sides), then sendto dst

An address is [host, port]; the family follows from the host's spelling.
"""

from __future__ import annotations

import errno
import json
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any


def _family(addr: list[Any]) -> int:
    return socket.AF_INET6 if ":" in addr[0] else socket.AF_INET


def _name(exc: OSError) -> str:
    if isinstance(exc, TimeoutError) or exc.errno is None:
        return "timeout"
    return errno.errorcode.get(exc.errno, str(exc.errno))


def _host(sockname: Any, port_chosen: bool) -> Any:
    return [sockname[0], sockname[1]] if port_chosen else sockname[0]


def _one(op: list[Any], make_socket: Callable[..., Any], keep: list[Any]) -> Any:
    kind = op[0]
    bind = op[1]
    family = _family(bind if isinstance(bind, list) else op[2])
    if kind == "listen":
        sock = make_socket(family, socket.SOCK_STREAM)
        keep.append(sock)
        sock.bind(tuple(bind))
        sock.listen(8)
        return "ok"
    if kind == "tcp":
        sock = make_socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(0.3)
            if bind is not None:
                sock.bind(tuple(bind))
            try:
                sock.connect(tuple(op[2]))
                return ["ok", _host(sock.getsockname(), False)]
            except OSError as e:
                return _name(e)
        finally:
            sock.close()
    if kind == "mcast_if":
        sock = make_socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            mreqn = socket.inet_aton("0.0.0.0") + socket.inet_aton(bind) + struct.pack("i", 2)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            sock.sendto(b"spoof", tuple(op[2]))
            return "ok"
        finally:
            sock.close()
    if kind == "udp":
        sock = make_socket(family, socket.SOCK_DGRAM)
        try:
            if bind is not None:
                sock.bind(tuple(bind))
            if op[3] == "sendto":
                sock.sendto(b"spoof", tuple(op[2]))
                return "ok"
            sock.connect(tuple(op[2]))
            return ["ok", _host(sock.getsockname(), False), list(sock.getpeername()[:2])]
        finally:
            sock.close()
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    sock = make_socket(family, socket.SOCK_DGRAM, proto)
    try:
        if bind is not None:
            sock.bind(tuple(bind))
        if kind == "ping_bind":
            return ["ok", _host(sock.getsockname(), bool(bind[1]))]
        request = bytes((8 if family == socket.AF_INET else 128, 0, 0, 0, 0, 0, 0, 1))
        if kind == "ping_connect":
            sock.connect(tuple(op[2]))
            local = _host(sock.getsockname(), False)
            sock.send(request + b"spoof")
            return ["ok", local]
        sock.sendto(request + b"spoof", tuple(op[2]))
        return "ok"
    finally:
        sock.close()


def probe(ops: list[list[Any]], make_socket: Callable[..., Any]) -> list[Any]:
    results: list[Any] = []
    keep: list[Any] = []
    try:
        for op in ops:
            try:
                results.append(_one(op, make_socket, keep))
            except OSError as e:
                results.append(_name(e))
    finally:
        for sock in keep:
            sock.close()
    return results


if __name__ == "__main__":
    print(json.dumps(probe(json.load(sys.stdin), socket.socket)))
