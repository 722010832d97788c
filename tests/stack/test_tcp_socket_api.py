"""SOCK_STREAM through the scripted-host API (requirement 7) and Linux's errors
(requirement 6), on a virtual-time network of two or three hosts.

Where an error comes from an ICMP message the test is a dialogue with one
stack (tests/stack/tcp_harness.py), so the ICMP is exactly the one named.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stack.ip import PROTO_TCP
from stack.tcp_connection import TcpState
from stack.tcp_sockopt import (
    TCP_CONGESTION,
    TCP_KEEPCNT,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
    TCP_NODELAY,
    TCP_USER_TIMEOUT,
)
from tests.stack.tcp_harness import Dialogue
from vnet.network import AF_INET, AF_INET6, SOCK_STREAM, Host, Network


class _BlackHole:
    """A TCP 'transport' that swallows every segment: a host that never answers."""

    def receive(self, meta: object, payload: memoryview) -> bool:
        return True

    def icmp_error(self, *args: object) -> None:
        pass


@pytest.fixture
def lan() -> Iterator[tuple[Network, Host, Host]]:
    net = Network(virtual_time=True, seed=5)
    seg = net.segment("lan", latency_ns=500_000)
    a, b = net.host("a"), net.host("b")
    a.connect(seg, "10.0.0.1/24", "fd00::1/64")
    b.connect(seg, "10.0.0.2/24", "fd00::2/64")
    yield net, a, b
    net.close()


def _serve(net: Network, host: Host, port: int, handler: Callable[[Any], None],
           family: int = AF_INET) -> None:
    """Listen on `port` and run handler(conn) for each accepted connection."""
    listener = host.socket(family, SOCK_STREAM)
    listener.bind(("", port))
    listener.listen(8)

    def loop() -> None:
        while True:
            conn, _ = listener.accept()
            net.spawn("handler", _bind(handler, conn))

    net.spawn(f"listen-{port}", loop)


def _bind(handler: Callable[[Any], None], conn: Any) -> Callable[[], None]:
    return lambda: handler(conn)


def _echo(conn: Any) -> None:
    while True:
        data = conn.recv(65536)
        if not data:
            conn.close()
            return
        conn.sendall(data)


# --- requirement 7: the API --------------------------------------------------------------


def test_connect_sendall_recv_shutdown_and_close(lan: tuple[Network, Host, Host]) -> None:
    net, a, b = lan
    _serve(net, b, 7, _echo)
    with a.socket(AF_INET, SOCK_STREAM) as sock:
        sock.connect(("10.0.0.2", 7))
        assert sock.getpeername() == ("10.0.0.2", 7)
        assert sock.getsockname()[0] == "10.0.0.1"
        payload = bytes(range(256)) * 4000  # 1 MB: more than the buffers hold, so send
        # from a task while this thread reads, or both ends would block (as on Linux)

        def send() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        net.spawn("sender", send)
        got = bytearray()
        while chunk := sock.recv(65536):
            got += chunk
        assert got == payload


def test_ipv6_stream_round_trip(lan: tuple[Network, Host, Host]) -> None:
    net, a, b = lan
    _serve(net, b, 7, _echo, family=AF_INET6)
    with a.socket(AF_INET6, SOCK_STREAM) as sock:
        sock.connect(("fd00::2", 7))
        sock.sendall(b"over v6")
        assert sock.recv(7, socket.MSG_WAITALL) == b"over v6"


def test_recv_with_msg_peek_leaves_the_data(lan: tuple[Network, Host, Host]) -> None:
    net, a, b = lan
    _serve(net, b, 7, _echo)
    with a.socket(AF_INET, SOCK_STREAM) as sock:
        sock.connect(("10.0.0.2", 7))
        sock.sendall(b"peekaboo")
        assert sock.recv(4, socket.MSG_PEEK) == b"peek"
        assert sock.recv(8, socket.MSG_WAITALL) == b"peekaboo"


def test_settimeout_makes_recv_and_accept_time_out(lan: tuple[Network, Host, Host]) -> None:
    net, a, b = lan
    _serve(net, b, 7, lambda conn: None)  # accepts, never answers
    with a.socket(AF_INET, SOCK_STREAM) as sock:
        sock.settimeout(2.5)
        assert sock.gettimeout() == 2.5
        sock.connect(("10.0.0.2", 7))
        start = net.scheduler.monotonic_ns()
        with pytest.raises(TimeoutError):
            sock.recv(10)
        assert net.scheduler.monotonic_ns() - start >= 2_500_000_000
    with a.socket(AF_INET, SOCK_STREAM) as listener:
        listener.bind(("", 9))
        listener.listen(1)
        listener.settimeout(1)
        with pytest.raises(TimeoutError):
            listener.accept()


def test_non_blocking_accept_and_recv_raise_blocking_io_error(
        lan: tuple[Network, Host, Host]) -> None:
    _net, a, _b = lan
    with a.socket(AF_INET, SOCK_STREAM) as listener:
        listener.bind(("", 9))
        listener.listen(1)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_setsockopt_and_getsockopt_round_trip(lan: tuple[Network, Host, Host]) -> None:
    _net, a, _b = lan
    with a.socket(AF_INET, SOCK_STREAM) as sock:
        for level, name, value in [(socket.IPPROTO_TCP, TCP_NODELAY, 1),
                                   (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
                                   (socket.IPPROTO_TCP, TCP_KEEPIDLE, 30),
                                   (socket.IPPROTO_TCP, TCP_KEEPINTVL, 5),
                                   (socket.IPPROTO_TCP, TCP_KEEPCNT, 4),
                                   (socket.IPPROTO_TCP, TCP_USER_TIMEOUT, 1500),
                                   (socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)]:
            sock.setsockopt(level, name, value)
            assert sock.getsockopt(level, name) == value
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 50_000)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 100_000
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8) == struct.pack("ii", 1, 0)
        sock.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, b"reno")
        assert sock.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16) == b"reno".ljust(16, b"\0")
        with pytest.raises(OSError) as e:
            sock.setsockopt(socket.IPPROTO_TCP, 9999, 1)
        assert e.value.errno == errno.ENOPROTOOPT


# --- requirement 6: errors like Linux ----------------------------------------------------


def test_connect_to_a_closed_port_raises_econnrefused(lan: tuple[Network, Host, Host]) -> None:
    _net, a, _b = lan
    with a.socket(AF_INET, SOCK_STREAM) as sock, pytest.raises(ConnectionRefusedError) as e:
        sock.connect(("10.0.0.2", 81))
    assert e.value.errno == errno.ECONNREFUSED


def test_recv_after_the_peer_resets_raises_econnreset(lan: tuple[Network, Host, Host]) -> None:
    net, a, b = lan

    def abort(conn: Any) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    _serve(net, b, 7, abort)
    with a.socket(AF_INET, SOCK_STREAM) as sock:
        sock.connect(("10.0.0.2", 7))
        with pytest.raises(ConnectionResetError) as e:
            sock.recv(10)
        assert e.value.errno == errno.ECONNRESET
        with pytest.raises(BrokenPipeError):  # after the error was reported: EPIPE
            sock.send(b"x")


def test_connect_to_a_silent_host_times_out_with_etimedout(
        lan: tuple[Network, Host, Host]) -> None:
    net, a, b = lan
    b.stack.set_transport(PROTO_TCP, _BlackHole())
    a.tcp.config.syn_retries = 2
    with a.socket(AF_INET, SOCK_STREAM) as sock, pytest.raises(TimeoutError) as e:
        sock.connect(("10.0.0.2", 7))
    assert e.value.errno == errno.ETIMEDOUT
    assert net.scheduler.monotonic_ns() >= 7_000_000_000  # 1 + 2 + 4 s of SYN backoff


def test_connect_to_an_absent_neighbor_raises_ehostunreach(
        lan: tuple[Network, Host, Host]) -> None:
    _net, a, _b = lan
    with a.socket(AF_INET, SOCK_STREAM) as sock, pytest.raises(OSError) as e:
        sock.connect(("10.0.0.77", 7))  # ARP fails: ICMP host unreachable from our own stack
    assert e.value.errno == errno.EHOSTUNREACH


def test_connect_without_a_route_raises_enetunreach(lan: tuple[Network, Host, Host]) -> None:
    _net, a, _b = lan
    with a.socket(AF_INET, SOCK_STREAM) as sock, pytest.raises(OSError) as e:
        sock.connect(("192.0.2.1", 7))
    assert e.value.errno == errno.ENETUNREACH


@pytest.mark.parametrize(("kind", "code"), [("host", errno.EHOSTUNREACH),
                                            ("net", errno.ENETUNREACH),
                                            ("port", errno.ECONNREFUSED)])
def test_icmp_unreachable_during_connect_fails_it_with_the_matching_errno(
        kind: str, code: int) -> None:
    d = Dialogue()
    sock = d.connect()
    syn = d.expect(flags="S")
    d.icmp_error_for(syn, kind)
    assert sock.connect_result() == code


def test_icmp_unreachable_on_an_established_connection_is_a_soft_error() -> None:
    d = Dialogue()
    sock = d.establish_active()
    sock.send(b"x")
    seg = d.expect(flags="PA")
    d.icmp_error_for(seg, "host")
    conn = d.conn(sock)
    assert conn.state == TcpState.ESTABLISHED  # RFC 1122 §4.2.3.9: not fatal
    assert conn.soft_error == errno.EHOSTUNREACH


def test_icmpv6_unreachable_during_connect_fails_it() -> None:
    d = Dialogue(v6=True)
    sock = d.connect()
    syn = d.expect(flags="S")
    d.icmp_error_for(syn, "host")
    assert sock.connect_result() == errno.EHOSTUNREACH


def test_send_after_shutdown_raises_epipe(lan: tuple[Network, Host, Host]) -> None:
    net, a, b = lan
    _serve(net, b, 7, _echo)
    with a.socket(AF_INET, SOCK_STREAM) as sock:
        sock.connect(("10.0.0.2", 7))
        sock.shutdown(socket.SHUT_WR)
        with pytest.raises(BrokenPipeError) as e:
            sock.send(b"late")
        assert e.value.errno == errno.EPIPE


def test_unconnected_socket_raises_enotconn(lan: tuple[Network, Host, Host]) -> None:
    _net, a, _b = lan
    with a.socket(AF_INET, SOCK_STREAM) as sock:
        for op in (lambda: sock.recv(1), sock.getpeername,
                   lambda: sock.shutdown(socket.SHUT_RDWR)):
            with pytest.raises(OSError) as e:
                op()
            assert e.value.errno == errno.ENOTCONN
        with pytest.raises(OSError) as e:
            sock.send(b"x")
        assert e.value.errno == errno.EPIPE  # as Linux: send() on a never-connected socket


def test_connect_twice_raises_eisconn(lan: tuple[Network, Host, Host]) -> None:
    net, a, b = lan
    _serve(net, b, 7, _echo)
    with a.socket(AF_INET, SOCK_STREAM) as sock:
        sock.connect(("10.0.0.2", 7))
        with pytest.raises(OSError) as e:
            sock.connect(("10.0.0.2", 7))
        assert e.value.errno == errno.EISCONN


def test_non_blocking_connect_is_einprogress_then_ealready_then_0_then_eisconn(
        lan: tuple[Network, Host, Host]) -> None:
    """As Linux (test_tcp_vs_linux.py compares): the first connect() after the handshake
    completed says 0, the ones after it EISCONN."""
    net, a, b = lan
    _serve(net, b, 7, _echo)
    with a.socket(AF_INET, SOCK_STREAM) as sock:
        sock.setblocking(False)
        with pytest.raises(BlockingIOError) as e:
            sock.connect(("10.0.0.2", 7))
        assert e.value.errno == errno.EINPROGRESS
        assert sock.connect_ex(("10.0.0.2", 7)) == errno.EALREADY
        net.run_for(0.01)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        assert sock.connect_ex(("10.0.0.2", 7)) == 0
        assert sock.connect_ex(("10.0.0.2", 7)) == errno.EISCONN


def test_non_blocking_connect_failure_is_reported_by_so_error(
        lan: tuple[Network, Host, Host]) -> None:
    net, a, _b = lan
    with a.socket(AF_INET, SOCK_STREAM) as sock:
        sock.setblocking(False)
        assert sock.connect_ex(("10.0.0.2", 81)) == errno.EINPROGRESS
        net.run_for(0.01)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0  # read once


def test_user_timeout_reports_etimedout_to_a_blocked_sender(
        lan: tuple[Network, Host, Host]) -> None:
    net, a, b = lan
    _serve(net, b, 7, lambda conn: None)
    with a.socket(AF_INET, SOCK_STREAM) as sock:
        sock.connect(("10.0.0.2", 7))
        sock.setsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT, 3000)
        b.stack.set_transport(PROTO_TCP, _BlackHole())
        sock.sendall(b"into the void")
        with pytest.raises(TimeoutError) as e:
            sock.recv(10)
        assert e.value.errno == errno.ETIMEDOUT
