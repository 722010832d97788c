"""udp_echo: echoes over IPv4 and IPv6, and ECONNREFUSED from a closed port."""

from __future__ import annotations

from .harness import Lab


def test_echo_over_ipv4_and_ipv6(lab: Lab) -> None:
    server = lab.start("alpha", "udp_echo", "server", "9000", "3")
    server.wait_for("listening on port 9000")
    v4 = lab.run("bravo", "udp_echo", "client", "10.0.0.1", "9000", "ping", "2")
    assert v4.exit_code == 0, v4.describe()
    assert v4.lines() == ['udp_echo: echo ok "ping 1"', 'udp_echo: echo ok "ping 2"',
                          "udp_echo: 2 of 2 echoed"]
    v6 = lab.run("bravo", "udp_echo", "client", "fd00::1", "9000", "pong", "1")
    assert v6.exit_code == 0, v6.describe()
    assert v6.lines() == ['udp_echo: echo ok "pong 1"', "udp_echo: 1 of 1 echoed"]
    assert server.wait() == 0, server.describe()
    assert server.lines() == [
        "udp_echo: listening on port 9000",
        'udp_echo: 6 bytes from 10.0.0.2: "ping 1"',
        'udp_echo: 6 bytes from 10.0.0.2: "ping 2"',
        'udp_echo: 6 bytes from fd00::2: "pong 1"',
        "udp_echo: echoed 3 datagram(s), bye",
    ]


def test_echo_by_name_over_loopback(lab: Lab) -> None:
    server = lab.start("alpha", "udp_echo", "server", "9001", "1")
    server.wait_for("listening")
    client = lab.run("alpha", "udp_echo", "client", "localhost", "9001", "local", "1")
    assert client.exit_code == 0, client.describe()
    assert client.lines() == ['udp_echo: echo ok "local 1"', "udp_echo: 1 of 1 echoed"]
    server.wait()


def test_closed_port_is_refused_not_silent(lab: Lab) -> None:
    """ICMP port unreachable reaches a connected UDP socket as ECONNREFUSED."""
    client = lab.run("bravo", "udp_echo", "client", "10.0.0.1", "9002", "anyone", "1")
    assert client.exit_code == 1
    assert client.lines() == ["udp_echo: recv 1: Connection refused", "udp_echo: 0 of 1 echoed"]
