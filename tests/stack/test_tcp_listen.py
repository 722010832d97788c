"""listen/accept: SYN queue, accept queue, SYN cookies, non-blocking accept (requirement 3).

Dialogues with one stack (tests/stack/tcp_harness.py); many peers are told
apart by their source port. The SYN flood between two scripted hosts is in
test_tcp_simulation.py.
"""

from __future__ import annotations

import errno
import socket

import pytest

from stack.tcp_connection import TcpConfig, TcpState
from tests.stack.tcp_harness import MS, SEC, Dialogue


def _syn(d: Dialogue, sport: int, options: list[tuple[str, object]] | None = None) -> None:
    d.send("S", seq=d.REMOTE + sport, ack=0, sport=sport, options=options or [("MSS", 1460)])


def test_accept_on_empty_queue_raises_eagain_without_blocking() -> None:
    d = Dialogue()
    listener = d.listen()
    with pytest.raises(BlockingIOError) as e:
        listener.accept()
    assert e.value.errno == errno.EAGAIN
    assert not listener.readable()


def test_accept_returns_connections_in_arrival_order_and_readiness_follows() -> None:
    d = Dialogue()
    listener = d.listen()
    for sport in (50001, 50002):
        _syn(d, sport)
        synack = d.expect(flags="SA")
        d.send("A", seq=d.REMOTE + sport + 1, ack=synack.seq + 1, sport=sport)
    assert listener.readable()
    first, second = listener.accept(), listener.accept()
    assert first.getpeername()[1] == 50001 and second.getpeername()[1] == 50002
    assert not listener.readable()


def test_accept_queue_full_drops_new_syns_until_the_application_accepts() -> None:
    d = Dialogue()
    listener = d.listen(backlog=2)
    for sport in (50001, 50002, 50003):  # backlog + 1, as Linux (sk_acceptq_is_full: >)
        _syn(d, sport)
        synack = d.expect(flags="SA")
        d.send("A", seq=d.REMOTE + sport + 1, ack=synack.seq + 1, sport=sport)
    _syn(d, 50004)
    d.expect_none()  # dropped: the client will retry
    assert listener.listener is not None and listener.listener.overflows == 1
    listener.accept()
    _syn(d, 50004)
    d.expect(flags="SA", ack=d.REMOTE + 50004 + 1)


def test_handshake_completing_into_a_full_accept_queue_waits_in_syn_received() -> None:
    d = Dialogue()
    listener = d.listen(backlog=0)  # room for one, as Linux
    _syn(d, 50001)
    a = d.expect(flags="SA")
    _syn(d, 50002)
    b = d.expect(flags="SA")
    d.send("A", seq=d.REMOTE + 50001 + 1, ack=a.seq + 1, sport=50001)
    d.send("A", seq=d.REMOTE + 50002 + 1, ack=b.seq + 1, sport=50002)  # no room: ignored
    assert listener.listener is not None
    assert len(listener.listener.accept_queue) == 1 and len(listener.listener.syn_queue) == 1
    listener.accept()
    d.sent()
    d.advance(1 * SEC)  # its SYN-ACK is retransmitted; the next ACK gets in
    retry = d.expect(flags="SA")
    d.send("A", seq=d.REMOTE + 50002 + 1, ack=retry.seq + 1, sport=50002)
    assert listener.accept().getpeername()[1] == 50002


def test_syn_queue_full_answers_with_syn_cookies() -> None:
    d = Dialogue()
    listener = d.listen(backlog=8)
    assert listener.listener is not None
    for sport in range(50000, 50008):  # half-open clients fill the SYN queue
        _syn(d, sport)
        d.expect(flags="SA")
    assert len(listener.listener.syn_queue) == 8
    _syn(d, 51000)
    cookie = d.expect(flags="SA", ack=d.REMOTE + 51000 + 1, MSS=1460)
    assert len(listener.listener.syn_queue) == 8  # no state kept
    assert d.stack.counters["tcp.syncookies_sent"] == 1
    d.send("A", seq=d.REMOTE + 51000 + 1, ack=cookie.seq + 1, sport=51000)
    sock = listener.accept()
    conn = d.conn(sock)
    assert conn.state == TcpState.ESTABLISHED and conn.peer_mss == 1460
    sock.send(b"cookie works")
    d.expect(flags="PA", seq=cookie.seq + 1, ack=d.REMOTE + 51000 + 1, data=b"cookie works")


def test_syn_cookie_carries_window_scale_sack_and_timestamps_in_the_timestamp() -> None:
    d = Dialogue()
    listener = d.listen(backlog=1)
    for sport in range(50000, 50008):
        _syn(d, sport)
        d.sent()
    options = [("MSS", 1400), ("SAckOK", b""), ("Timestamp", (1000, 0)), ("WScale", 6)]
    _syn(d, 51000, options)
    cookie = d.expect(flags="SA", MSS=1300, SAckOK=..., WScale=...)
    tsval = dict(cookie.options)["Timestamp"][0]
    d.send("A", seq=d.REMOTE + 51000 + 1, ack=cookie.seq + 1, sport=51000,
           options=[("Timestamp", (1001, tsval))])
    sock = listener.accept()
    conn = d.conn(sock)
    assert conn.snd_wscale == 6 and conn.sack_enabled and conn.ts_enabled
    d.advance(5 * MS)
    sock.send(b"x")
    seg = d.expect(flags="PA", data=b"x")
    later = dict(seg.options)["Timestamp"]
    assert later[1] == 1001 and (later[0] - tsval) % 2**32 < 2**31  # our clock never runs back


def test_cookie_ack_into_a_full_accept_queue_is_dropped_and_admitted_later() -> None:
    """Linux (tcp_v4_syn_recv_sock): a valid cookie ACK that finds the accept queue
    full is dropped, not reset; the client's retransmission gets in once there is room."""
    d = Dialogue()
    listener = d.listen(backlog=7)  # an accept queue of 8, a SYN queue of 8
    assert listener.listener is not None
    synacks = {}
    for sport in range(50000, 50008):  # eight half-open children fill the SYN queue
        _syn(d, sport)
        synacks[sport] = d.expect(flags="SA")
    _syn(d, 51000)
    cookie = d.expect(flags="SA", ack=d.REMOTE + 51000 + 1)
    for sport, synack in synacks.items():  # they complete: the accept queue is full
        d.send("A", seq=d.REMOTE + sport + 1, ack=synack.seq + 1, sport=sport)
    assert len(listener.listener.accept_queue) == 8
    d.sent()
    request = dict(seq=d.REMOTE + 51000 + 1, ack=cookie.seq + 1, sport=51000, data=b"GET /")
    d.send("PA", **request)
    d.expect_none()  # no RST: the client will retransmit
    assert d.stack.counters["tcp.drop.accept_queue_full"] == 1
    assert len(listener.listener.accept_queue) == 8
    listener.accept()
    d.send("PA", at=d.now + 200 * MS, **request)  # the client's retransmission
    d.expect(flags="A", seq=cookie.seq + 1, ack=d.REMOTE + 51000 + 1 + 5)
    peers = []
    while True:
        try:
            peers.append(listener.accept())
        except BlockingIOError:
            break
    admitted = [p for p in peers if p.getpeername()[1] == 51000]
    assert len(admitted) == 1 and admitted[0].recv(100) == b"GET /"


def test_forged_or_stale_cookie_ack_gets_rst() -> None:
    d = Dialogue()
    listener = d.listen(backlog=1)
    for sport in range(50000, 50008):
        _syn(d, sport)
        d.sent()
    _syn(d, 51000)
    cookie = d.expect(flags="SA")
    d.send("A", seq=d.REMOTE + 51000 + 1, ack=cookie.seq + 12345, sport=51000)
    d.expect(flags="R", seq=cookie.seq + 12345)
    d.advance(200 * SEC)  # cookies live a few minutes at most
    d.sent()
    d.send("A", seq=d.REMOTE + 51000 + 1, ack=cookie.seq + 1, sport=51000)
    d.expect(flags="R")
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_cookie_for_another_four_tuple_is_rejected() -> None:
    d = Dialogue()
    d.listen(backlog=1)
    for sport in range(50000, 50008):
        _syn(d, sport)
        d.sent()
    _syn(d, 51000)
    cookie = d.expect(flags="SA")
    d.send("A", seq=d.REMOTE + 51000 + 1, ack=cookie.seq + 1, sport=51001)
    d.expect(flags="R")


def test_without_syncookies_a_full_syn_queue_drops_syns() -> None:
    d = Dialogue(TcpConfig(syncookies=False))
    d.listen(backlog=1)
    for sport in range(50000, 50008):
        _syn(d, sport)
        d.sent()
    _syn(d, 51000)
    d.expect_none()
    assert d.stack.counters["tcp.drop.syn_queue_full"] == 1


def test_half_open_entries_expire_and_free_the_syn_queue() -> None:
    d = Dialogue(TcpConfig(synack_retries=1))
    listener = d.listen(backlog=1)
    assert listener.listener is not None
    for sport in range(50000, 50008):
        _syn(d, sport)
    d.advance(10 * SEC)
    assert not listener.listener.syn_queue
    d.sent()
    _syn(d, 51000)
    d.expect(flags="SA")
    assert len(listener.listener.syn_queue) == 1  # a real entry again, not a cookie


def test_listen_again_changes_the_backlog() -> None:
    d = Dialogue()
    listener = d.listen(backlog=1)
    listener.listen(5)
    assert listener.listener is not None and listener.listener.backlog == 5


def test_connect_on_a_listening_socket_is_eisconn_and_send_is_enotconn() -> None:
    d = Dialogue()
    listener = d.listen()
    with pytest.raises(OSError) as e:
        listener.connect(d.addr("10.0.0.2"), 80)
    assert e.value.errno == errno.EISCONN
    with pytest.raises(OSError) as e:
        listener.send(b"x")
    assert e.value.errno == errno.EPIPE  # as Linux's send() on a listening socket


def test_accepted_socket_inherits_listener_options() -> None:
    from stack.tcp_sockopt import TCP_NODELAY, setsockopt

    d = Dialogue()
    listener = d.listen()
    setsockopt(listener, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    setsockopt(listener, socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    _syn(d, 50001)
    synack = d.expect(flags="SA")
    d.send("A", seq=d.REMOTE + 50001 + 1, ack=synack.seq + 1, sport=50001)
    child = listener.accept()
    assert child.nodelay and d.conn(child).nodelay and d.conn(child).keepalive
