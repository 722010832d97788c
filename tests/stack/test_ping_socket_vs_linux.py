"""vnet's ping sockets (SOCK_DGRAM + IPPROTO_ICMP[V6]) answer as Linux's do.

The probe (tests/stack/ping_socket_probe.py) runs once with Python's sockets in
a network namespace (tests/stack/linux_reference.py: no route out, created and
deleted here, ping_group_range opened to every group) and once with
`Host.socket` on a virtual host with the same addresses; the outcomes must be
equal: SO_ERROR reads 0, send() without a destination is EDESTADDRREQ,
shutdown() of an unconnected socket is ENOTCONN, MSG_PEEK leaves the echo
reply queued, after SHUT_WR a send is EPIPE, after SHUT_RD a read still waits
for replies (Linux's ping_recvmsg ignores it), and a bad `how` is EINVAL.
Needs root and iproute2; fails, rather than skips, without them.
"""

from __future__ import annotations

import ast
import socket
import sys
from pathlib import Path

from tests.stack.linux_reference import ADDR4, ADDR6, VirtualEnv, linux_namespace, require_root
from tests.stack.ping_socket_probe import probe

PROBE = Path(__file__).with_name("ping_socket_probe.py")
OWN4, OWN6 = ADDR4.split("/")[0], ADDR6.split("/")[0]


def test_ping_socket_calls_match_linux() -> None:
    require_root()
    with linux_namespace() as ns:
        ns.exec("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
        linux = ast.literal_eval(ns.exec(sys.executable, "-I", str(PROBE), OWN4, OWN6))
    env = VirtualEnv()
    try:
        virtual = probe(env.host.socket, {socket.AF_INET: OWN4, socket.AF_INET6: OWN6})
    finally:
        env.close()
    assert virtual == linux
