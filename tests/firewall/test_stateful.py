"""Stateful filtering on a virtual network, and what the programs behind it observe.

Two hosts on one segment in virtual time, `a` (10.0.0.1, fd00::1) and `b`
(10.0.0.2, fd00::2), with firewalls on their stacks' hooks. The errno a
socket sees for each kind of refusal is what Linux gives behind the same
nftables rules (checked against the kernel in test_vs_linux_errno.py).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest

from firewall import HostFirewall, Ruleset
from vnet.network import Host, Network

ESTABLISHED_ONLY = """
chain input {
    policy drop
    ct state established,related accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
}
"""


@pytest.fixture
def net() -> Iterator[Network]:
    network = Network(virtual_time=True, seed=1)
    lan = network.segment("lan")
    network.host("a").connect(lan, "10.0.0.1/24", "fd00::1/64")
    network.host("b").connect(lan, "10.0.0.2/24", "fd00::2/64")
    yield network
    network.close()


def guard(host: Host, rules: str) -> HostFirewall:
    return HostFirewall(Ruleset.parse(rules)).attach(host.stack)


def family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def connect(host: Host, address: str, port: int, timeout: float = 5.0) -> str:
    """'ok', 'timeout' or the errno name of a TCP connect."""
    with host.socket(family(address), socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except TimeoutError:
            return "timeout"
        except OSError as e:
            return errno.errorcode[e.errno or 0]
        return "ok"


def listen(host: Host, port: int, v6: bool = False) -> socket.socket:
    sock = host.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("::" if v6 else "0.0.0.0", port))
    sock.listen()
    return sock  # type: ignore[return-value]


@pytest.mark.parametrize("address", ["10.0.0.2", "fd00::2"])
def test_replies_to_an_outbound_flow_pass_an_established_only_inbound_policy(
        net: Network, address: str) -> None:
    a, b = net.hosts["a"], net.hosts["b"]
    fw = guard(a, ESTABLISHED_ONLY)
    server = listen(b, 80, v6=":" in address)
    with a.socket(family(address), socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect((address, 80))
        conn, _ = server.accept()
        conn.sendall(b"hello from b")
        assert client.recv(100) == b"hello from b"
        conn.close()
    server.close()
    assert fw.counters["input.accept"] >= 2 and fw.ruleset.chains["input"].policy_packets == 0


@pytest.mark.parametrize("address", ["10.0.0.1", "fd00::1"])
def test_unsolicited_inbound_connection_does_not_get_through(net: Network,
                                                              address: str) -> None:
    a, b = net.hosts["a"], net.hosts["b"]
    fw = guard(a, ESTABLISHED_ONLY)
    listener = listen(a, 7000, v6=":" in address)
    assert connect(b, address, 7000, timeout=3) == "timeout"  # a drop: nothing comes back
    assert fw.counters["input.drop"] >= 2  # the SYN and its retransmissions
    listener.close()


def test_udp_answer_passes_but_unsolicited_datagram_does_not(net: Network) -> None:
    a, b = net.hosts["a"], net.hosts["b"]
    guard(a, ESTABLISHED_ONLY)
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as client, \
            b.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("0.0.0.0", 53))
        server.settimeout(2)
        client.bind(("0.0.0.0", 5353))
        client.settimeout(2)
        client.sendto(b"query", ("10.0.0.2", 53))
        query, peer = server.recvfrom(100)
        assert query == b"query"
        server.sendto(b"answer", peer)
        assert client.recvfrom(100)[0] == b"answer"
        with b.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.sendto(b"unsolicited", ("10.0.0.1", 5353))
        with pytest.raises(TimeoutError):
            client.recvfrom(100)


def test_icmp_error_about_a_tracked_flow_passes_as_related(net: Network) -> None:
    a = net.hosts["a"]
    fw = guard(a, ESTABLISHED_ONLY)
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("10.0.0.2", 9))  # nothing listens on b:9
        sock.send(b"x")
        net.run_for(0.1)
        with pytest.raises(ConnectionRefusedError):
            sock.send(b"x")
    assert fw.conntrack.stats["related"] >= 1


def test_icmp_error_is_dropped_without_a_related_rule(net: Network) -> None:
    a = net.hosts["a"]
    guard(a, "chain input {\n    policy drop\n    ct state established accept\n}\n")
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("10.0.0.2", 9))
        sock.send(b"x")
        net.run_for(0.1)
        sock.send(b"x")  # no error: the port unreachable never arrived


def test_ping_replies_pass_an_established_only_policy(net: Network) -> None:
    a = net.hosts["a"]
    guard(a, ESTABLISHED_ONLY)
    assert all(rtt is not None for rtt in a.ping("10.0.0.2", count=2))
    assert all(rtt is not None for rtt in a.ping("fd00::2", count=2))
    b = net.hosts["b"]
    assert b.ping("10.0.0.1", count=1, timeout=0.5) == [None]


# --- what a guest observes, per kind of refusal --------------------------------------------
REMOTE_INPUT = """
chain input {{
    policy accept
    tcp dport 81 {verdict}
}}
"""


@pytest.mark.parametrize(("address", "verdict", "expected"), [
    ("10.0.0.2", "drop", "timeout"),
    ("10.0.0.2", "reject", "ECONNREFUSED"),
    ("10.0.0.2", "reject with tcp reset", "ECONNREFUSED"),
    ("10.0.0.2", "reject with icmpx port-unreachable", "ECONNREFUSED"),
    ("10.0.0.2", "reject with icmp host-unreachable", "EHOSTUNREACH"),
    ("10.0.0.2", "reject with icmpx admin-prohibited", "EHOSTUNREACH"),
    ("fd00::2", "drop", "timeout"),
    ("fd00::2", "reject", "ECONNREFUSED"),
    ("fd00::2", "reject with icmpx admin-prohibited", "EACCES"),
    ("fd00::2", "reject with icmpv6 addr-unreachable", "EHOSTUNREACH"),
])
def test_connect_to_a_host_refusing_at_input(net: Network, address: str, verdict: str,
                                             expected: str) -> None:
    a, b = net.hosts["a"], net.hosts["b"]
    guard(b, REMOTE_INPUT.format(verdict=verdict))
    listener = listen(b, 81, v6=":" in address)
    assert connect(a, address, 81, timeout=3) == expected
    listener.close()


@pytest.mark.parametrize(("address", "verdict", "expected"), [
    ("10.0.0.2", "drop", "timeout"),  # Linux retransmits the SYN into the drop
    ("10.0.0.2", "reject", "ECONNREFUSED"),
    ("10.0.0.2", "reject with icmpx admin-prohibited", "EHOSTUNREACH"),
    ("fd00::2", "reject", "ECONNREFUSED"),
    ("fd00::2", "reject with icmpx admin-prohibited", "EACCES"),
])
def test_connect_refused_by_the_local_output_hook(net: Network, address: str, verdict: str,
                                                 expected: str) -> None:
    a, b = net.hosts["a"], net.hosts["b"]
    guard(a, f"chain output {{\n    tcp dport 81 {verdict}\n}}\n"
             "chain input {\n    policy drop\n    ct state related accept\n"
             "    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n}\n")
    listener = listen(b, 81, v6=":" in address)
    assert connect(a, address, 81, timeout=3) == expected
    listener.close()


@pytest.mark.parametrize("verdict", ["drop", "reject", "reject with icmpx admin-prohibited"])
def test_sendto_refused_by_the_local_output_hook_gets_eperm(net: Network, verdict: str) -> None:
    a = net.hosts["a"]
    guard(a, f"chain output {{\n    udp dport 9 {verdict}\n}}\n")
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(2):
            with pytest.raises(PermissionError):
                sock.sendto(b"x", ("10.0.0.2", 9))
        sock.sendto(b"x", ("10.0.0.2", 10))  # other ports are fine


def test_ping_refused_by_the_local_output_hook_gets_eperm(net: Network) -> None:
    a = net.hosts["a"]
    guard(a, "chain output {\n    icmp type echo-request drop\n}\n")
    with pytest.raises(PermissionError):
        a.ping("10.0.0.2")


def test_firewalls_of_two_hosts_are_independent(net: Network) -> None:
    a, b = net.hosts["a"], net.hosts["b"]
    fa = guard(a, ESTABLISHED_ONLY)
    fb = guard(b, "chain input {\n    policy accept\n}\n")
    server = listen(b, 80)
    assert connect(a, "10.0.0.2", 80) == "ok"
    server.close()
    assert fa.conntrack is not fb.conntrack
    assert len(fb.conntrack) == 0  # b's rules never ask for state: nothing tracked
    assert len(fa.conntrack) >= 1
