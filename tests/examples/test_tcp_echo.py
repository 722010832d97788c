"""tcp_echo_server / tcp_echo_client: the same echoes, natively and on vnet."""

from __future__ import annotations

import pytest

from .harness import Lab


def test_echo_over_ipv4_ipv6_and_by_name(lab: Lab) -> None:
    server = lab.start("alpha", "tcp_echo_server", "7000", "3")
    server.wait_for("listening on port 7000")
    for target in ("10.0.0.1", "fd00::1"):
        client = lab.run("bravo", "tcp_echo_client", target, "7000", "hello", "world")
        assert client.exit_code == 0, client.describe()
        assert client.lines() == [
            f"tcp_echo_client: connected to {target} port 7000",
            'tcp_echo_client: echo ok "hello"',
            'tcp_echo_client: echo ok "world"',
            "tcp_echo_client: all echoes matched",
        ]
    # By name: getaddrinfo gives both of alpha's addresses; the client takes the
    # first that connects (which one comes first is the resolver's business).
    client = lab.run("bravo", "tcp_echo_client", "alpha", "7000", "by name")
    assert client.exit_code == 0, client.describe()
    first, *rest = client.lines()
    assert first in ("tcp_echo_client: connected to 10.0.0.1 port 7000",
                     "tcp_echo_client: connected to fd00::1 port 7000")
    assert rest == ['tcp_echo_client: echo ok "by name"', "tcp_echo_client: all echoes matched"]
    server.wait()
    assert server.exit_code == 0, server.describe()
    peer = "10.0.0.2" if "10.0.0.1" in first else "fd00::2"
    assert server.lines() == [
        "tcp_echo_server: listening on port 7000",
        "tcp_echo_server: client 10.0.0.2 connected",  # an IPv4 client of a dual-stack socket
        "tcp_echo_server: client 10.0.0.2 done, 10 bytes echoed",
        "tcp_echo_server: client fd00::2 connected",
        "tcp_echo_server: client fd00::2 done, 10 bytes echoed",
        f"tcp_echo_server: client {peer} connected",
        f"tcp_echo_server: client {peer} done, 7 bytes echoed",
        "tcp_echo_server: served 3 client(s), bye",
    ]


@pytest.mark.parametrize("name,peer", [("localhost", None), ("127.0.0.1", "127.0.0.1"),
                                       ("::1", "::1")])
def test_echo_over_loopback(lab: Lab, name: str, peer: str | None) -> None:
    server = lab.start("alpha", "tcp_echo_server", "7001", "1")
    server.wait_for("listening")
    client = lab.run("alpha", "tcp_echo_client", name, "7001", "x" * 3000, "y")
    assert client.exit_code == 0, client.describe()
    assert client.lines()[1:] == ['tcp_echo_client: echo ok "' + "x" * 3000 + '"',
                                  'tcp_echo_client: echo ok "y"',
                                  "tcp_echo_client: all echoes matched"]
    server.wait()
    connected = server.lines()[1]
    if peer is None:
        assert connected in ("tcp_echo_server: client 127.0.0.1 connected",
                             "tcp_echo_server: client ::1 connected")
    else:
        assert connected == f"tcp_echo_server: client {peer} connected"
    assert server.lines()[2:] == [connected.replace("connected", "done, 3001 bytes echoed"),
                                  "tcp_echo_server: served 1 client(s), bye"]


def test_inherited_listening_socket_is_fd_3(lab: Lab) -> None:
    """`tcplisten` (wasmtime's --tcplisten, systemd's socket activation) hands over fd 3."""
    server = lab.start("alpha", "tcp_echo_server", "-", "1", tcplisten=("0.0.0.0", 7002))
    server.wait_for("listening on fd 3")
    client = lab.run("bravo", "tcp_echo_client", "10.0.0.1", "7002", "inherited")
    assert client.exit_code == 0, client.describe()
    server.wait()
    assert server.lines() == [
        "tcp_echo_server: listening on fd 3",
        "tcp_echo_server: client 10.0.0.2 connected",
        "tcp_echo_server: client 10.0.0.2 done, 9 bytes echoed",
        "tcp_echo_server: served 1 client(s), bye",
    ]


def test_client_reports_refused_connection(lab: Lab) -> None:
    client = lab.run("bravo", "tcp_echo_client", "10.0.0.1", "7003", "nobody home")
    assert client.exit_code == 2
    assert client.stdout == ""
    assert "tcp_echo_client: 10.0.0.1 port 7003: Connection refused" in client.stderr


def test_client_reports_unknown_name(lab: Lab) -> None:
    client = lab.run("bravo", "tcp_echo_client", "no-such-host.invalid", "7000", "x")
    assert client.exit_code == 2
    assert client.stderr.startswith("tcp_echo_client: no-such-host.invalid: ")
