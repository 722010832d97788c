"""UDP behaviour the kernel comparison cannot show: counters, determinism, configuration.

Everything here runs on virtual networks in virtual time: receive-queue
limits and the drops they count, multicast fan-out to several sockets of one
host from another host, SO_REUSEPORT's deterministic spreading of unicast,
the configurable ephemeral range and its exhaustion, and what close() and
disconnect give back.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from stack.udp import EPHEMERAL_RANGE, UdpSocket, truesize
from vnet.network import Host, HostSocket, Network

GROUP4 = "239.1.2.3"
GROUP6 = "ff15::1:2"


class Lan(NamedTuple):
    net: Network
    a: Host  # 10.0.0.1, fd00::1
    b: Host  # 10.0.0.2, fd00::2


@pytest.fixture
def lan() -> Iterator[Lan]:
    net = Network(virtual_time=True, seed=7)
    seg = net.segment("lan")
    a = net.host("a")
    a.connect(seg, "10.0.0.1/24", "fd00::1/64")
    b = net.host("b")
    b.connect(seg, "10.0.0.2/24", "fd00::2/64")
    yield Lan(net, a, b)
    net.close()


def drain(sock: HostSocket, timeout: float = 0.5) -> list[tuple[bytes, Any]]:
    sock.settimeout(timeout)
    got = []
    while True:
        try:
            got.append(sock.recvfrom(65536))
        except TimeoutError:
            return got


def udp(host: Host, family: int = socket.AF_INET, *opts: tuple[int, int, Any],
        bind: tuple[Any, ...] | None = None) -> HostSocket:
    s = host.socket(family, socket.SOCK_DGRAM)
    for level, name, value in opts:
        s.setsockopt(level, name, value)
    if bind is not None:
        s.bind(bind)
    return s


def core(sock: HostSocket) -> UdpSocket:
    """The stack socket behind a HostSocket (for what Python's API cannot reach)."""
    inner = sock._core
    assert isinstance(inner, UdpSocket)
    return inner


REUSEADDR = (socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
REUSEPORT = (socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


# --- receive-queue limits -----------------------------------------------------
def test_full_receive_queue_drops_and_counts(lan: Lan) -> None:
    a, b = lan.a, lan.b
    rx = udp(b, socket.AF_INET, (socket.SOL_SOCKET, socket.SO_RCVBUF, 3000), bind=("", 9000))
    assert rx.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 6000
    tx = udp(a)
    for i in range(20):
        tx.sendto(b"%02d" % i, ("10.0.0.2", 9000))
    got = drain(rx)
    kept = 6000 // truesize(2, 4)  # 832 bytes each: 7 fit
    assert [d for d, _ in got] == [b"%02d" % i for i in range(kept)]
    assert b.counters.drops("udp") == {"udp.drop.queue_full": 20 - kept}
    assert b.counters["udp.delivered"] == kept
    # reading made room again
    tx.sendto(b"later", ("10.0.0.2", 9000))
    assert rx.recv(100) == b"later"
    assert b.counters.drops("udp") == {"udp.drop.queue_full": 20 - kept}


def test_each_socket_has_its_own_queue_and_drop_count(lan: Lan) -> None:
    a, b = lan.a, lan.b
    small = udp(b, socket.AF_INET, REUSEADDR, (socket.SOL_SOCKET, socket.SO_RCVBUF, 0),
                bind=("", 5353))
    big = udp(b, socket.AF_INET, REUSEADDR, bind=("", 5353))
    small.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     socket.inet_aton(GROUP4) + socket.inet_aton("10.0.0.2"))
    tx = udp(a, socket.AF_INET, (socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 socket.inet_aton("10.0.0.1")))
    for i in range(10):
        tx.sendto(b"m%d" % i, (GROUP4, 5353))
    assert len(drain(big)) == 10
    assert len(drain(small)) == 2  # SO_RCVBUF 0 → 2304 bytes: two 832-byte datagrams
    assert b.counters.drops("udp") == {"udp.drop.queue_full": 8}
    assert core(small).drops == 8 and core(big).drops == 0


def test_an_empty_queue_takes_a_datagram_bigger_than_the_buffer(
        lan: Lan) -> None:
    a, b = lan.a, lan.b
    rx = udp(b, socket.AF_INET, (socket.SOL_SOCKET, socket.SO_RCVBUF, 0), bind=("", 9000))
    tx = udp(a)
    for size in (30000, 10, 30000):
        tx.sendto(bytes(size), ("10.0.0.2", 9000))
    assert [len(d) for d, _ in drain(rx)] == [30000]
    assert b.counters.drops("udp") == {"udp.drop.queue_full": 2}


def test_truesize_model() -> None:
    assert truesize(0, 4) == truesize(197, 4) == 832
    assert truesize(198, 4) == 1280 and truesize(184, 6) == 832 and truesize(185, 6) == 1280
    assert truesize(65507, 4) == 65507 + 832


# --- multicast fan-out on one host ---------------------------------------------
@pytest.mark.parametrize("reuse", [REUSEADDR, REUSEPORT])
def test_multicast_from_the_lan_reaches_every_socket_on_the_port(
        lan: Lan, reuse: tuple[int, int, int]) -> None:
    net, a, b = lan.net, lan.a, lan.b
    socks = [udp(b, socket.AF_INET, reuse, bind=("", 5353)) for _ in range(3)]
    socks[0].setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        socket.inet_aton(GROUP4) + socket.inet_aton("10.0.0.2"))
    other_port = udp(b, socket.AF_INET, reuse, bind=("", 5354))
    net.run_for(1)
    tx = udp(a, socket.AF_INET, (socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 socket.inet_aton("10.0.0.1")))
    for i in range(3):
        tx.sendto(b"m%d" % i, (GROUP4, 5353))
    for s in socks:  # every socket gets every datagram, REUSEPORT or not
        assert [(d, src[0]) for d, src in drain(s)] == [(b"m%d" % i, "10.0.0.1")
                                                         for i in range(3)]
    assert drain(other_port) == []


def test_multicast_all_off_filters_by_membership_and_interface(
        lan: Lan) -> None:
    a, b = lan.a, lan.b
    member = udp(b, socket.AF_INET, REUSEADDR, bind=("", 5353))
    bystander = udp(b, socket.AF_INET, REUSEADDR, bind=("", 5353))
    member.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                      socket.inet_aton(GROUP4) + socket.inet_aton("10.0.0.2"))
    for s in (member, bystander):
        s.setsockopt(socket.IPPROTO_IP, 49, 0)  # IP_MULTICAST_ALL
    tx = udp(a, socket.AF_INET, (socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 socket.inet_aton("10.0.0.1")))
    tx.sendto(b"g", (GROUP4, 5353))
    assert [d for d, _ in drain(member)] == [b"g"]
    assert drain(bystander) == []


def test_ipv6_multicast_fan_out_and_membership_cleanup(lan: Lan) -> None:
    a, b = lan.a, lan.b
    eth0 = b.stack.interface("eth0")
    group = socket.inet_pton(socket.AF_INET6, GROUP6)
    socks = [udp(b, socket.AF_INET6, REUSEPORT, bind=("::", 5353)) for _ in range(2)]
    for s in socks:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group + eth0.index.to_bytes(
            4, "little"))
    assert eth0.groups[group] == 2
    tx = udp(a, socket.AF_INET6)
    tx.sendto(b"six", (GROUP6, 5353))
    for s in socks:
        assert [d for d, _ in drain(s)] == [b"six"]
    socks[0].close()
    assert eth0.groups[group] == 1
    socks[1].close()
    assert group not in eth0.groups


def test_join_by_ifindex_for_both_families(lan: Lan) -> None:
    """The index-based calls the guest ABI (WASIX sock_join_multicast_v4/v6) uses."""
    b = lan.b
    eth0 = b.stack.interface("eth0")
    s = core(udp(b, socket.AF_INET6, bind=("::", 5353)))
    g4, g6 = socket.inet_aton(GROUP4), socket.inet_pton(socket.AF_INET6, GROUP6)
    s.join_group(g4, eth0.index)
    s.join_group(g6)  # by route
    assert g4 in eth0.groups and g6 in eth0.groups
    with pytest.raises(OSError) as again:
        s.join_group(g6, eth0.index)
    assert again.value.errno == errno.EADDRINUSE
    s.leave_group(g4, eth0.index)
    s.leave_group(g6)
    assert g4 not in eth0.groups and g6 not in eth0.groups
    with pytest.raises(OSError) as gone:
        s.leave_group(g6)
    assert gone.value.errno == errno.EADDRNOTAVAIL


# --- SO_REUSEPORT unicast spreading --------------------------------------------
def _spread(seed: int) -> dict[int, int]:
    """Which of four SO_REUSEPORT sockets got each of 32 flows (by source port)."""
    net = Network(virtual_time=True, seed=seed)
    seg = net.segment("lan")
    a = net.host("a")
    a.connect(seg, "10.0.0.1/24")
    b = net.host("b")
    b.connect(seg, "10.0.0.2/24")
    socks = [udp(b, socket.AF_INET, REUSEPORT, bind=("", 7000)) for _ in range(4)]
    owner: dict[int, int] = {}
    for sport in range(20000, 20032):
        tx = udp(a, bind=("", sport))
        for _ in range(2):
            tx.sendto(b"x", ("10.0.0.2", 7000))
        tx.close()
    for i, s in enumerate(socks):
        for _data, src in drain(s, 0.1):
            assert owner.setdefault(src[1], i) == i  # a flow sticks to one socket
    net.close()
    return owner


def test_reuseport_spreads_unicast_flows_deterministically() -> None:
    first = _spread(1)
    assert len(first) == 32
    assert set(first.values()) == {0, 1, 2, 3}  # every socket gets some flows
    assert _spread(1) == first  # same inputs, same spreading
    assert _spread(2) == first  # the hash is of the flow, not of the seed


def test_reuseaddr_without_reuseport_gives_unicast_to_the_newest(
        lan: Lan) -> None:
    a, b = lan.a, lan.b
    old = udp(b, socket.AF_INET, REUSEADDR, bind=("", 7000))
    new = udp(b, socket.AF_INET, REUSEADDR, bind=("", 7000))
    udp(a).sendto(b"x", ("10.0.0.2", 7000))
    assert len(drain(new)) == 1 and drain(old) == []
    new.close()
    udp(a).sendto(b"y", ("10.0.0.2", 7000))
    assert [d for d, _ in drain(old)] == [b"y"]


# --- the ephemeral range ---------------------------------------------------------
def test_default_ephemeral_range_is_linuxs(lan: Lan) -> None:
    a = lan.a
    assert a.udp.ephemeral_range == EPHEMERAL_RANGE == (32768, 60999)
    ports = set()
    for _ in range(50):
        s = udp(a, bind=("", 0))
        port = s.getsockname()[1]
        assert EPHEMERAL_RANGE[0] <= port <= EPHEMERAL_RANGE[1]
        ports.add(port)
    assert len(ports) == 50  # all still open: all distinct


def test_configured_range_is_used_by_bind_connect_and_send(
        lan: Lan) -> None:
    a = lan.a
    a.udp.ephemeral_range = (50000, 50009)
    bound = udp(a, bind=("", 0))
    connected = udp(a, socket.AF_INET6)
    connected.connect(("fd00::2", 9))
    sent = udp(a)
    sent.sendto(b"x", ("10.0.0.2", 9))
    ports = [s.getsockname()[1] for s in (bound, connected, sent)]
    assert all(50000 <= p <= 50009 for p in ports) and len(set(ports)) == 3


def test_exhausted_range_then_close_frees_a_port(lan: Lan) -> None:
    a = lan.a
    a.udp.ephemeral_range = (50000, 50002)
    socks = [udp(a, bind=("", 0)) for _ in range(3)]
    assert sorted(s.getsockname()[1] for s in socks) == [50000, 50001, 50002]
    with pytest.raises(OSError) as bind_error:
        udp(a, bind=("", 0))
    assert bind_error.value.errno == errno.EADDRINUSE
    unbound = udp(a)
    with pytest.raises(OSError) as send_error:  # Linux's autobind failure is EAGAIN
        unbound.sendto(b"x", ("10.0.0.2", 9))
    assert send_error.value.errno == errno.EAGAIN
    with pytest.raises(OSError) as connect_error:
        unbound.connect(("10.0.0.2", 9))
    assert connect_error.value.errno == errno.EAGAIN
    # a v6-only socket does not compete with IPv4 ones for the range
    only6 = udp(a, socket.AF_INET6, (socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1), bind=("::", 0))
    assert 50000 <= only6.getsockname()[1] <= 50002
    freed = socks[1].getsockname()[1]
    socks[1].close()
    assert udp(a, bind=("", 0)).getsockname()[1] == freed


def test_range_of_one_port_is_shared_under_reuseaddr(lan: Lan) -> None:
    a = lan.a
    a.udp.ephemeral_range = (50000, 50000)
    first = udp(a, socket.AF_INET, REUSEADDR, bind=("", 0))
    second = udp(a, socket.AF_INET, REUSEADDR, bind=("", 0))
    assert first.getsockname()[1] == second.getsockname()[1] == 50000
    with pytest.raises(OSError) as exc:
        udp(a, bind=("", 0))
    assert exc.value.errno == errno.EADDRINUSE


# --- what close() and disconnect give back ---------------------------------------
def test_close_releases_the_port_and_the_memberships(lan: Lan) -> None:
    b = lan.b
    eth0 = b.stack.interface("eth0")
    group = socket.inet_aton(GROUP4)
    s = udp(b, bind=("", 6000))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group + socket.inet_aton(
        "10.0.0.2"))
    assert group in eth0.groups
    with pytest.raises(OSError) as exc:
        udp(b, bind=("", 6000))
    assert exc.value.errno == errno.EADDRINUSE
    s.close()
    assert group not in eth0.groups
    assert 6000 not in b.udp.ports
    again = udp(b, bind=("", 6000))
    assert again.getsockname() == ("0.0.0.0", 6000)
    s.close()  # closing twice is harmless
    with pytest.raises(OSError) as closed:
        s.sendto(b"x", ("10.0.0.1", 9))
    assert closed.value.errno == errno.EBADF


def test_disconnect_gives_back_an_autobound_port(lan: Lan) -> None:
    a = lan.a
    s = udp(a)
    s.connect(("10.0.0.2", 9))
    port = s.getsockname()[1]
    assert port in a.udp.ports
    core(s).disconnect()  # connect(AF_UNSPEC)
    assert s.getsockname() == ("0.0.0.0", 0) and port not in a.udp.ports


# --- ICMP errors from another host ----------------------------------------------------
@pytest.mark.parametrize("family,peer", [(socket.AF_INET, "10.0.0.2"),
                                         (socket.AF_INET6, "fd00::2")])
def test_port_unreachable_from_the_lan_refuses_the_connected_socket(
        lan: Lan, family: int, peer: str) -> None:
    net, a = lan.net, lan.a
    s = udp(a, family)
    s.connect((peer, 4444))
    s.send(b"anyone?")
    s.settimeout(1)
    with pytest.raises(ConnectionRefusedError):
        s.recv(100)
    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0  # reported once
    assert a.counters["udp.icmp_error"] == 1
    unconnected = udp(a, family)
    unconnected.sendto(b"anyone?", (peer, 4444))
    net.run_for(1)
    assert unconnected.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    assert a.counters["udp.icmp_error"] == 1
