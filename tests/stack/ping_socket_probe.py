"""The ping-socket probe: the same calls on Linux's ping sockets and on vnet's.

Standard library only: tests/stack/test_ping_socket_vs_linux.py runs it as a
script inside a network namespace (printing the outcomes) and imports `probe`
to run it on a virtual host's sockets. Each outcome is a call's result or the
errno name it raised. Sends only to the host's own addresses.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Callable
from typing import Any

ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
PROTO: dict[int, int] = {socket.AF_INET: socket.IPPROTO_ICMP,
                         socket.AF_INET6: socket.IPPROTO_ICMPV6}


def _attempt(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except TimeoutError:
        return "timeout"
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e.errno))


def probe(make_socket: Callable[[int, int, int], Any], own: dict[int, str]) -> list[Any]:
    """The outcomes for each family, pinging the host's own address of that family."""
    out: list[Any] = []
    for family, address in sorted(own.items()):
        out += _probe_family(make_socket, family, address)
    return out


def _probe_family(make_socket: Callable[[int, int, int], Any], family: int,
                  address: str) -> list[Any]:
    out: list[Any] = []
    request = bytes((ECHO_REQUEST[family], 0, 0, 0, 0, 0, 0, 1)) + b"ping socket"
    s = make_socket(family, socket.SOCK_DGRAM, PROTO[family])
    s.settimeout(1.0)
    out.append(_attempt(lambda: s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
    out.append(_attempt(lambda: s.send(request)))  # no destination yet
    out.append(_attempt(lambda: s.shutdown(socket.SHUT_RDWR)))  # not connected
    out.append(_attempt(lambda: s.recv(100)))  # Linux: SHUT_RD does not end a ping socket's reads
    s.close()

    s = make_socket(family, socket.SOCK_DGRAM, PROTO[family])
    s.settimeout(1.0)
    out.append(_attempt(lambda: s.connect((address, 0))))
    out.append(_attempt(lambda: s.getpeername()))
    out.append(_attempt(lambda: s.send(request)))
    peeked = _attempt(lambda: s.recv(100, socket.MSG_PEEK))
    taken = _attempt(lambda: s.recv(100))
    out.append((len(peeked), peeked == taken, taken[0] if taken else None))
    out.append(_attempt(lambda: s.recv(100)))  # nothing more: timeout
    out.append(_attempt(lambda: s.shutdown(socket.SHUT_WR)))
    out.append(_attempt(lambda: s.send(request)))
    out.append(_attempt(lambda: s.shutdown(socket.SHUT_RD)))
    out.append(_attempt(lambda: s.recv(100)))
    out.append(_attempt(lambda: s.shutdown(7)))
    s.close()
    return out


if __name__ == "__main__":
    print(repr(probe(socket.socket, {socket.AF_INET: sys.argv[1], socket.AF_INET6: sys.argv[2]})))
