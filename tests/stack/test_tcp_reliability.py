"""Reliability: buffers, reassembly, RTO, persist, delayed ACK, Nagle, keepalive,
user timeout, SO_LINGER (requirement 4). Segment-level dialogues with one stack.

Unless a test says otherwise the handshake takes 100 ms, so the first RTO is
RFC 6298's SRTT + 4*RTTVAR = 100 + 4*50 = 300 ms.
"""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from stack.tcp_connection import TcpConfig, TcpState
from stack.tcp_socket import TcpSocket
from stack.tcp_sockopt import (
    TCP_KEEPCNT,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
    TCP_NODELAY,
    TCP_USER_TIMEOUT,
    getsockopt,
    setsockopt,
)
from tests.stack.tcp_harness import MS, SEC, Dialogue

RTT = 100 * MS


def _established(config: TcpConfig | None = None) -> tuple[Dialogue, TcpSocket]:
    d = Dialogue(config)
    return d, d.establish_active(rtt_ns=RTT)


# --- buffers -----------------------------------------------------------------------------


def test_so_sndbuf_bounds_what_send_accepts() -> None:
    d = Dialogue()
    sock = d.socket()
    setsockopt(sock, socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    assert getsockopt(sock, socket.SOL_SOCKET, socket.SO_SNDBUF) == 8192  # doubled, as Linux
    d.establish_active(sock=sock, win=1000)
    assert sock.send(b"x" * 20000) == 8192
    with pytest.raises(BlockingIOError):
        sock.send(b"more")
    assert not sock.writable()
    d.sent()
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1 + 1000, win=65535)
    assert sock.writable()
    assert sock.send(b"y" * 5000) == 1000


def test_so_rcvbuf_sets_the_advertised_window() -> None:
    d = Dialogue()
    sock = d.socket()
    setsockopt(sock, socket.SOL_SOCKET, socket.SO_RCVBUF, 3000)
    d.connect(sock)
    d.expect(flags="S", win=6000, WScale=...)
    d.send("SA", seq=d.REMOTE, ack=d.local + 1, options=[("MSS", 1460), ("WScale", 2)])
    d.expect(flags="A", win=6000 >> d.conn(sock).rcv_wscale)


def test_receive_window_closes_as_the_buffer_fills_and_reopens_after_recv() -> None:
    d = Dialogue()
    sock = d.socket()
    setsockopt(sock, socket.SOL_SOCKET, socket.SO_RCVBUF, 2304)  # 4608 bytes of buffer
    d.establish_active(sock=sock, options=[("MSS", 1152)])
    seq = d.REMOTE + 1
    for _ in range(4):
        d.send("A", seq=seq, ack=d.local + 1, data=b"d" * 1152)
        seq += 1152
    acks = d.sent()
    assert acks[-1].ack == seq % 2**32 and acks[-1].window == 0
    # a segment beyond the closed window is not taken, only acknowledged
    d.send("A", seq=seq, ack=d.local + 1, data=b"e" * 100)
    d.expect(flags="A", ack=seq, win=0)
    assert len(sock.recv(10_000)) == 4608
    update = d.expect(flags="A", ack=seq)  # window update once the application read
    assert update.window == 4608


def test_out_of_order_segments_wait_and_are_reassembled() -> None:
    d, sock = _established()
    base = d.REMOTE + 1
    d.send("A", seq=base + 200, ack=d.local + 1, data=b"C" * 100)
    d.expect(flags="A", ack=base)  # duplicate ACK at once
    d.send("A", seq=base + 100, ack=d.local + 1, data=b"B" * 100)
    d.expect(flags="A", ack=base)
    assert not sock.readable()
    d.send("A", seq=base, ack=d.local + 1, data=b"A" * 100)
    d.expect(flags="A", ack=base + 300)  # the hole filled: acknowledged at once
    assert sock.recv(1000) == b"A" * 100 + b"B" * 100 + b"C" * 100


def test_overlapping_and_duplicate_segments_are_trimmed() -> None:
    d, sock = _established()
    base = d.REMOTE + 1
    d.send("A", seq=base, ack=d.local + 1, data=b"0123456789")
    d.send("A", seq=base + 5, ack=d.local + 1, data=b"56789abcde")
    d.send("A", seq=base, ack=d.local + 1, data=b"0123")
    d.send("A", seq=base + 20, ack=d.local + 1, data=b"klmn")
    d.send("A", seq=base + 12, ack=d.local + 1, data=b"cdefghijklmnop")
    d.sent()
    assert sock.recv(100) == b"0123456789abcdefghijklmnop"


def test_segment_straddling_the_window_edge_is_trimmed_to_the_window() -> None:
    d = Dialogue()
    sock = d.socket()
    setsockopt(sock, socket.SOL_SOCKET, socket.SO_RCVBUF, 2304)
    d.establish_active(sock=sock)
    window = d.conn(sock).rcv_adv - d.conn(sock).rcv_nxt
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1, data=b"z" * (window + 500))
    d.expect(flags="A", ack=d.REMOTE + 1 + window)
    assert len(sock.recv(100_000)) == window


# --- RTO -----------------------------------------------------------------------------------


def test_rto_is_srtt_plus_four_rttvar_after_the_first_sample() -> None:
    d, sock = _established()
    sock.send(b"a" * 100)
    start = d.now
    d.expect(flags="PA")
    d.at(start + 300 * MS - 1)
    d.expect_none()
    d.at(start + 300 * MS)
    d.expect(flags="PA", seq=d.local + 1, data=b"a" * 100)


def test_rto_backs_off_exponentially_up_to_rto_max() -> None:
    d, sock = _established(TcpConfig(rto_max_ns=2 * SEC, retries2=8))
    sock.send(b"a")
    d.sent()
    times = []
    start = d.now
    for _ in range(6):
        [seg] = d.next_segments(step_ns=10 * MS)
        assert seg.seq == (d.local + 1) % 2**32
        times.append(round((d.now - start) / MS, -1))
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps == [300, 600, 1200, 2000, 2000, 2000]


def test_rto_never_goes_below_rto_min() -> None:
    d = Dialogue()
    sock = d.establish_active(rtt_ns=1 * MS)
    assert d.conn(sock).rto_ns == 200 * MS
    sock.send(b"a")
    d.sent()
    d.at(d.now + 199 * MS)
    d.expect_none()
    d.at(d.now + 1 * MS)
    d.expect(flags="PA")


def test_rtt_samples_smooth_srtt_and_rttvar() -> None:
    d, sock = _established()
    conn = d.conn(sock)
    assert conn.srtt_ns == 100 * MS and conn.rttvar_ns == 50 * MS
    sock.send(b"x" * 10)
    d.sent()
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 11, at=d.now + 200 * MS)
    # RTTVAR = 3/4*50 + 1/4*|100-200| = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5
    assert conn.rttvar_ns == 62_500_000 and conn.srtt_ns == 112_500_000
    assert conn.rto_ns == 112_500_000 + 4 * 62_500_000


def test_karn_takes_no_rtt_sample_from_a_retransmitted_segment() -> None:
    d, sock = _established()
    conn = d.conn(sock)
    sock.send(b"x" * 10)
    d.sent()
    d.advance(300 * MS)
    d.expect(flags="PA")  # retransmitted
    srtt = conn.srtt_ns
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 11, at=d.now + 5 * MS)
    assert conn.srtt_ns == srtt  # the ambiguous ACK gave no sample
    assert conn.rto_ns == 600 * MS  # and the backed-off RTO stays until a fresh sample
    sock.send(b"y" * 10)
    d.sent()
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 21, at=d.now + 200 * MS)
    assert conn.srtt_ns != srtt


def test_timestamps_give_rtt_samples_even_for_retransmissions() -> None:
    d = Dialogue()
    sock = d.establish_active(rtt_ns=RTT, options=[("MSS", 1460), ("Timestamp", (7, 0))])
    conn = d.conn(sock)
    sock.send(b"x" * 10)
    first = d.expect(flags="PA")
    d.advance(300 * MS)
    retx = d.expect(flags="PA")
    tsval = dict(retx.options)["Timestamp"][0]
    assert tsval != dict(first.options)["Timestamp"][0]
    # the peer echoes the retransmission's TSval 40 ms later: a 40 ms sample
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 11, at=d.now + 40 * MS,
           options=[("Timestamp", (8, tsval))])
    assert conn.srtt_ns == (7 * 100 * MS + 40 * MS) // 8


def test_retransmission_carries_the_data_again_and_recovers_after_the_ack() -> None:
    d, sock = _established()
    sock.send(b"hello world")
    d.expect(flags="PA", data=b"hello world")
    d.advance(300 * MS)
    d.expect(flags="PA", seq=d.local + 1, data=b"hello world")
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 12)
    d.advance(10 * SEC)
    d.expect_none()


# --- zero window and persist -------------------------------------------------------------


def test_zero_window_is_probed_by_the_persist_timer_with_backoff() -> None:
    d, sock = _established()
    sock.send(b"p" * 100)
    d.expect(flags="PA")
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 101, win=0)
    sock.send(b"q" * 100)
    d.expect_none()  # no room: nothing goes out
    start = d.now
    probes: list[int] = []
    while len(probes) < 3:
        d.advance(10 * MS)
        for seg in d.sent():
            assert seg.seq == (d.local + 100) % 2**32 and len(seg.payload) == 0  # SND.UNA-1
            probes.append(d.now - start)
            d.send("A", seq=d.REMOTE + 1, ack=d.local + 101, win=0)  # still closed
    assert 300 * MS <= probes[0] < probes[1] - probes[0] < probes[2] - probes[1]  # backing off
    d.sent()
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 101, win=1000)  # the window opens
    d.expect(flags="PA", seq=d.local + 101, data=b"q" * 100)


def test_window_update_alone_is_not_a_duplicate_ack() -> None:
    d, sock = _established()
    sock.send(b"a" * 3000)
    d.sent()
    conn = d.conn(sock)
    for win in (1000, 2000, 3000, 4000):
        d.send("A", seq=d.REMOTE + 1, ack=d.local + 1, win=win)
    assert conn.dupacks == 0 and not conn.in_recovery


# --- delayed ACK -------------------------------------------------------------------------


def _past_quickack(d: Dialogue, sock: TcpSocket) -> int:
    """Feed the quick-ACK segments of connection start; returns the next sequence number."""
    seq = d.REMOTE + 1
    conn = d.conn(sock)
    while conn.quickack:
        d.send("A", seq=seq, ack=d.local + 1, data=b"q" * 100)
        seq += 100
    sock.recv(100_000)
    d.sent()
    return seq


def test_quickack_acks_every_segment_at_connection_start() -> None:
    d, _sock = _established()
    seq = d.REMOTE + 1
    for _ in range(5):
        d.send("A", seq=seq, ack=d.local + 1, data=b"q" * 100)
        seq += 100
        d.expect(flags="A", ack=seq)


def test_delayed_ack_acks_every_second_full_segment() -> None:
    d, sock = _established()
    seq = _past_quickack(d, sock)
    d.send("A", seq=seq, ack=d.local + 1, data=b"f" * 1460)
    d.expect_none()
    d.send("A", seq=seq + 1460, ack=d.local + 1, data=b"f" * 1460)
    d.expect(flags="A", ack=seq + 2920)


def test_delayed_ack_is_sent_after_a_bounded_delay() -> None:
    d, sock = _established()
    seq = _past_quickack(d, sock)
    d.send("A", seq=seq, ack=d.local + 1, data=b"f" * 1460)
    start = d.now
    d.at(start + 40 * MS - 1)
    d.expect_none()
    d.at(start + 40 * MS)
    d.expect(flags="A", ack=seq + 1460)


def test_delayed_ack_rides_on_outgoing_data() -> None:
    d, sock = _established()
    seq = _past_quickack(d, sock)
    d.send("A", seq=seq, ack=d.local + 1, data=b"f" * 100)
    sock.send(b"reply")
    d.expect(flags="PA", ack=seq + 100, data=b"reply")
    d.advance(1 * SEC)
    d.sent()  # (only a possible retransmission; no lone ACK was owed)


# --- Nagle ---------------------------------------------------------------------------------


def test_nagle_holds_small_segments_while_data_is_unacknowledged() -> None:
    d, sock = _established()
    sock.send(b"a")
    d.expect(flags="PA", data=b"a")
    sock.send(b"b")
    sock.send(b"c")
    d.expect_none()
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 2)
    d.expect(flags="PA", seq=d.local + 2, data=b"bc")


def test_tcp_nodelay_sends_small_segments_at_once() -> None:
    d, sock = _established()
    setsockopt(sock, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    sock.send(b"a")
    d.expect(flags="PA", data=b"a")
    sock.send(b"b")
    d.expect(flags="PA", seq=d.local + 2, data=b"b")


def test_setting_tcp_nodelay_flushes_what_nagle_held() -> None:
    d, sock = _established()
    sock.send(b"a")
    sock.send(b"b")
    d.expect(flags="PA", data=b"a")
    setsockopt(sock, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    d.expect(flags="PA", data=b"b")


def test_nagle_never_holds_full_segments() -> None:
    d, sock = _established()
    sock.send(b"a")
    d.sent()
    sock.send(b"z" * 1460 * 2)
    segs = d.sent()
    assert [len(s.payload) for s in segs] == [1460, 1460]


# --- keepalive, user timeout, linger -----------------------------------------------------


def _keepalive(sock: TcpSocket, idle: int, intvl: int, cnt: int) -> None:
    setsockopt(sock, socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    setsockopt(sock, socket.IPPROTO_TCP, TCP_KEEPIDLE, idle)
    setsockopt(sock, socket.IPPROTO_TCP, TCP_KEEPINTVL, intvl)
    setsockopt(sock, socket.IPPROTO_TCP, TCP_KEEPCNT, cnt)


def test_keepalive_probes_after_idle_then_times_out_with_rst() -> None:
    d, sock = _established()
    _keepalive(sock, idle=10, intvl=2, cnt=3)
    start = d.now
    d.at(start + 10 * SEC - 1)
    d.expect_none()
    for k in range(3):
        d.at(start + (10 + 2 * k) * SEC)
        d.expect(flags="A", seq=d.local, ack=d.REMOTE + 1)  # SND.UNA - 1, no data
    d.at(start + 16 * SEC)
    d.expect(flags="RA")
    assert d.conn(sock).state == TcpState.CLOSED
    with pytest.raises(TimeoutError) as e:
        sock.recv(10)
    assert e.value.errno == errno.ETIMEDOUT


def test_answered_keepalive_keeps_the_connection_and_restarts_idle() -> None:
    d, sock = _established()
    _keepalive(sock, idle=10, intvl=2, cnt=2)
    start = d.now
    d.at(start + 10 * SEC)
    d.expect(flags="A", seq=d.local)
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1)  # the peer answers
    d.at(start + 19 * SEC)
    d.expect_none()
    d.at(start + 20 * SEC)
    d.expect(flags="A", seq=d.local)
    assert d.conn(sock).state == TcpState.ESTABLISHED


def test_keepalive_off_sends_nothing_when_idle() -> None:
    d, _sock = _established(TcpConfig(keepalive_time_ns=1 * SEC))
    d.advance(100 * SEC)
    d.expect_none()


def test_user_timeout_aborts_with_etimedout() -> None:
    d, sock = _established()
    setsockopt(sock, socket.IPPROTO_TCP, TCP_USER_TIMEOUT, 2000)
    sock.send(b"lost")
    d.advance(1999 * MS)
    assert d.conn(sock).state == TcpState.ESTABLISHED
    d.advance(3 * SEC)
    assert d.conn(sock).state == TcpState.CLOSED
    with pytest.raises(OSError) as e:
        sock.send(b"x")
    assert e.value.errno == errno.ETIMEDOUT


def test_retransmissions_give_up_after_retries2_with_etimedout() -> None:
    d, sock = _established(TcpConfig(retries2=3))
    sock.send(b"lost")
    d.advance(60 * SEC)
    assert len(d.sent()) == 4  # the original and three retransmissions
    assert sock.take_error() == errno.ETIMEDOUT


def test_so_linger_zero_close_sends_rst_and_discards() -> None:
    d, sock = _established()
    setsockopt(sock, socket.SOL_SOCKET, socket.SO_LINGER,
               struct.pack("<ii", 1, 0))
    sock.send(b"never delivered")
    d.sent()
    conn = d.conn(sock)
    sock.close()
    d.expect(flags="RA")
    assert conn.state == TcpState.CLOSED
    assert not d.tcp.conns  # no TIME-WAIT either


def test_ordinary_close_sends_queued_data_then_fin() -> None:
    d, sock = _established()
    sock.send(b"last words")
    sock.close()
    segs = d.sent()
    assert bytes(segs[0].payload) == b"last words"
    assert segs[-1].flags & 0x01


def test_persist_timer_uses_a_small_window_when_the_window_update_was_lost() -> None:
    """Sender SWS avoidance holds data for a window smaller than an MSS; if the ACK
    that reopens the window is lost, the persist timer must still move data (a
    10 MB lossy transfer deadlocked here before)."""
    d, sock = _established()
    setsockopt(sock, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    sock.send(b"w" * 2920)
    d.sent()
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1 + 2920, win=700)  # nearly full receiver
    sock.send(b"v" * 5000)
    d.expect_none()  # 700 < MSS and more is queued: held back (sender SWS avoidance)
    # the peer's window update is lost; the persist timer fires after an RTO
    [seg] = d.next_segments(limit_ns=10 * SEC)
    assert seg.seq == (d.local + 1 + 2920) % 2**32 and bytes(seg.payload) == b"v" * 700
    assert d.now - RTT < 1 * SEC  # one RTO (RFC 9293 §3.8.6.1), not a stall


def test_acks_carry_snd_max_while_a_timeout_has_rewound_snd_nxt() -> None:
    """After an RTO, SND.NXT goes back to SND.UNA (go-back-N). An ACK sent then must
    still carry the highest sequence number sent: the peer may hold all of it, and
    would drop an ACK whose sequence number is below its RCV.NXT."""
    d, sock = _established()
    setsockopt(sock, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    sock.send(b"r" * 3000)
    d.sent()
    d.advance(300 * MS)
    d.expect(flags="A", seq=d.local + 1)  # the timeout resends the first segment
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 1, data=b"hi")
    d.expect(flags="A", seq=d.local + 1 + 3000, ack=d.REMOTE + 3)
