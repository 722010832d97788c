"""RFC 9293 state machine, segment by segment (requirement 2; wire use, requirement 1).

Each test is a dialogue with one stack (see tests/stack/tcp_harness.py): the
peer's segments go in at explicit times, the stack's segments come out and
are checked field by field. The peer's ISS sits just below 2**32, so every
dialogue crosses the sequence-number wrap.
"""

from __future__ import annotations

import errno
import socket

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from stack import compiled
from stack.tcp_connection import TcpConfig, TcpState
from stack.tcp_socket import TcpSocket
from tests.stack.tcp_harness import MS, SEC, Dialogue

# --- requirement 1: what we put on the wire parses elsewhere -------------------------------


def test_emitted_segments_carry_valid_checksums_and_linux_option_layout() -> None:
    d = Dialogue()
    sock = d.connect()
    [raw] = d.frames
    frame = Ether(raw)
    syn = frame[TCP]
    # scapy recomputes the checksum from scratch: it must equal ours
    packet = IP(bytes(frame[IP]))
    del packet[TCP].chksum
    assert IP(bytes(packet))[TCP].chksum == syn.chksum
    assert [name for name, _ in syn.options] == ["MSS", "SAckOK", "Timestamp", "NOP", "WScale"]
    assert frame[IP].flags.DF
    d.sent()
    d.send("SA", seq=d.REMOTE, ack=d.local + 1, options=[("MSS", 1460)])
    d.expect(flags="A")
    assert sock.connect_result() == 0


def test_ipv6_connection_works_and_advertises_mss_for_ipv6() -> None:
    d = Dialogue(v6=True)
    d.connect()
    d.expect(flags="S", MSS=1440)
    d.send("SA", seq=d.REMOTE, ack=d.local + 1, options=[("MSS", 1440)])
    d.expect(flags="A", ack=d.REMOTE + 1)


# --- opening -------------------------------------------------------------------------------


def test_active_open_goes_syn_sent_then_established() -> None:
    d = Dialogue()
    sock = d.connect()
    d.expect(flags="S", ack=0, MSS=1460, WScale=..., SAckOK=..., Timestamp=...)
    assert d.conn(sock).state == TcpState.SYN_SENT
    assert sock.connect_result() is None
    d.send("SA", seq=d.REMOTE, ack=d.local + 1)
    d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 1)
    assert d.conn(sock).state == TcpState.ESTABLISHED
    assert sock.connect_result() == 0


def test_passive_open_goes_syn_received_then_established() -> None:
    d = Dialogue()
    listener = d.listen()
    d.send("S", seq=d.REMOTE, ack=0, options=[("MSS", 1400)])
    synack = d.expect(flags="SA", ack=d.REMOTE + 1, MSS=1460, WScale=None, SAckOK=None,
                      Timestamp=None)  # we offer only what the peer offered
    assert listener.listener is not None
    [child] = listener.listener.syn_queue.values()
    assert child.state == TcpState.SYN_RECEIVED
    with pytest.raises(BlockingIOError):
        listener.accept()
    d.send("A", seq=d.REMOTE + 1, ack=synack.seq + 1)
    d.expect_none()
    sock = listener.accept()
    assert d.conn(sock).state == TcpState.ESTABLISHED
    assert d.conn(sock).peer_mss == 1400


def test_simultaneous_open_reaches_established_through_syn_received() -> None:
    d = Dialogue()
    sock = d.connect()
    syn = d.expect(flags="S")
    # the peer's own SYN crosses ours
    d.send("S", seq=d.REMOTE, ack=0, options=[("MSS", 1460)])
    d.expect(flags="SA", seq=syn.seq, ack=d.REMOTE + 1)
    assert d.conn(sock).state == TcpState.SYN_RECEIVED
    # the peer's SYN-ACK (its SYN again, now acknowledging ours) completes the handshake
    d.send("SA", seq=d.REMOTE, ack=syn.seq + 1)
    assert d.conn(sock).state == TcpState.ESTABLISHED
    assert sock.connect_result() == 0
    sock.send(b"x")
    d.sent()
    d.send("A", seq=d.REMOTE + 1, ack=syn.seq + 2, data=b"y")
    assert sock.recv(10) == b"y"


def test_simultaneous_open_completes_on_a_plain_ack() -> None:
    d = Dialogue()
    sock = d.connect()
    syn = d.expect(flags="S")
    d.send("S", seq=d.REMOTE, ack=0)
    d.expect(flags="SA", seq=syn.seq, ack=d.REMOTE + 1)
    d.send("A", seq=d.REMOTE + 1, ack=syn.seq + 1)
    assert d.conn(sock).state == TcpState.ESTABLISHED


def test_retransmitted_syn_in_syn_received_gets_the_syn_ack_again() -> None:
    d = Dialogue()
    d.listen()
    d.send("S", seq=d.REMOTE, ack=0)
    first = d.expect(flags="SA", ack=d.REMOTE + 1)
    d.send("S", seq=d.REMOTE, ack=0)
    d.expect(flags="SA", seq=first.seq, ack=d.REMOTE + 1)


def test_syn_ack_is_retransmitted_with_backoff_then_the_child_is_dropped() -> None:
    d = Dialogue(TcpConfig(synack_retries=2))
    listener = d.listen()
    d.send("S", seq=d.REMOTE, ack=0)
    d.expect(flags="SA")
    d.advance(1 * SEC)
    d.expect(flags="SA")
    d.advance(2 * SEC)
    d.expect(flags="SA")
    d.advance(4 * SEC)
    d.expect_none()
    assert listener.listener is not None and not listener.listener.syn_queue
    assert not d.tcp.conns


def test_syn_is_retransmitted_with_exponential_backoff_then_etimedout() -> None:
    d = Dialogue(TcpConfig(syn_retries=3))
    sock = d.connect()
    times = []
    for _ in range(4):
        d.expect(flags="S")
        times.append(d.now)
        d.advance(100 * SEC if len(times) == 4 else 0)
        if len(times) < 4:
            d.at(d.now + (1 << (len(times) - 1)) * SEC)
    assert [t - times[0] for t in times] == [0, 1 * SEC, 3 * SEC, 7 * SEC]
    assert sock.connect_result() == errno.ETIMEDOUT


def test_syn_to_closed_port_is_refused_with_rst_ack() -> None:
    d = Dialogue()
    d.send("S", seq=d.REMOTE, ack=0, dport=81)
    d.expect(flags="RA", seq=0, ack=d.REMOTE + 1)
    assert d.stack.counters["tcp.drop.no_socket"] == 1


def test_ack_to_closed_port_gets_rst_with_its_ack_as_seq() -> None:
    d = Dialogue()
    d.send("A", seq=5, ack=777, dport=81, data=b"abc")
    d.expect(flags="R", seq=777)


def test_rst_to_closed_port_is_not_answered() -> None:
    d = Dialogue()
    d.send("R", seq=5, ack=0, dport=81)
    d.expect_none()


def test_connect_to_refusing_peer_fails_with_econnrefused() -> None:
    d = Dialogue()
    sock = d.connect()
    syn = d.expect(flags="S")
    d.send("RA", seq=0, ack=syn.seq + 1)
    assert sock.connect_result() == errno.ECONNREFUSED
    d.expect_none()


def test_rst_in_syn_sent_with_wrong_ack_is_ignored() -> None:
    d = Dialogue()
    sock = d.connect()
    syn = d.expect(flags="S")
    d.send("RA", seq=0, ack=syn.seq + 5)
    d.expect_none()
    assert d.conn(sock).state == TcpState.SYN_SENT


def test_syn_ack_with_bad_ack_in_syn_sent_gets_rst() -> None:
    d = Dialogue()
    sock = d.connect()
    syn = d.expect(flags="S")
    d.send("SA", seq=d.REMOTE, ack=syn.seq + 1000)
    d.expect(flags="R", seq=syn.seq + 1000)
    assert d.conn(sock).state == TcpState.SYN_SENT


def test_rst_in_syn_received_returns_child_to_listen_silently() -> None:
    d = Dialogue()
    listener = d.listen()
    d.send("S", seq=d.REMOTE, ack=0)
    d.expect(flags="SA")
    d.send("R", seq=d.REMOTE + 1, ack=0)
    d.expect_none()
    assert listener.listener is not None and not listener.listener.syn_queue
    # the listener still works
    d.send("S", seq=d.REMOTE + 100, ack=0, sport=50000)
    d.expect(flags="SA")


def test_bad_ack_in_syn_received_gets_rst() -> None:
    d = Dialogue()
    d.listen()
    d.send("S", seq=d.REMOTE, ack=0)
    synack = d.expect(flags="SA")
    d.send("A", seq=d.REMOTE + 1, ack=synack.seq + 50)
    d.expect(flags="R", seq=synack.seq + 50)


# --- closing ---------------------------------------------------------------------------


def test_active_close_goes_fin_wait_1_fin_wait_2_time_wait_closed() -> None:
    d = Dialogue(TcpConfig(msl_ns=5 * SEC))
    sock = d.establish_active()
    conn = d.conn(sock)
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA", seq=d.local + 1, ack=d.REMOTE + 1)
    assert conn.state == TcpState.FIN_WAIT_1
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 2)
    assert conn.state == TcpState.FIN_WAIT_2
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2)
    d.expect(flags="A", seq=d.local + 2, ack=d.REMOTE + 2)
    assert conn.state == TcpState.TIME_WAIT
    d.advance(10 * SEC - 1)
    assert conn.state == TcpState.TIME_WAIT
    d.advance(1)
    assert conn.state == TcpState.CLOSED
    assert not d.tcp.conns


def test_passive_close_goes_close_wait_then_last_ack_then_closed() -> None:
    d = Dialogue()
    _, sock = d.establish_passive()
    conn = d.conn(sock)
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 1)
    d.expect_none()  # Linux delays the FIN's ACK (CLOSE_WAIT in pingpong mode) ...
    assert conn.state == TcpState.CLOSE_WAIT
    assert sock.recv(10) == b""
    sock.close()
    d.expect(flags="FA", seq=d.local + 1, ack=d.REMOTE + 2)  # ... so our FIN carries it
    assert conn.state == TcpState.LAST_ACK
    d.send("A", seq=d.REMOTE + 2, ack=d.local + 2)
    assert conn.state == TcpState.CLOSED
    d.expect_none()


def test_fin_ack_is_delayed_like_linux_when_the_application_does_not_close() -> None:
    d = Dialogue()
    _, sock = d.establish_passive()
    conn = d.conn(sock)
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 1, data=b"request")
    d.expect(flags="A", ack=d.REMOTE + 8)  # the first data: acknowledged at once
    d.send("FA", seq=d.REMOTE + 8, ack=d.local + 1)
    assert conn.state == TcpState.CLOSE_WAIT
    d.advance(39 * MS)
    d.expect_none()
    d.advance(1 * MS)  # Linux's minimum delayed-ACK time, 40 ms
    d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 9)
    d.send("FA", seq=d.REMOTE + 8, ack=d.local + 1)  # a retransmitted FIN: ACKed at once
    d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 9)


def test_fin_ack_on_a_connection_that_received_no_data_goes_at_the_next_tick() -> None:
    """Linux's delayed-ACK interval (ato) is 0 until data arrives: measured on 6.18, the
    ACK of such a FIN comes within 2 ms; vnet sends it after 1 ms."""
    d = Dialogue()
    _, sock = d.establish_passive()
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 1)
    assert d.conn(sock).state == TcpState.CLOSE_WAIT
    d.expect_none()  # an application that closes now still acknowledges with its FIN
    d.advance(1 * MS)
    d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 2)


def test_fin_after_more_than_a_full_segment_is_acked_at_once() -> None:
    d = Dialogue()
    _, sock = d.establish_passive()  # MSS 1460, no timestamps
    d.send("FPA", seq=d.REMOTE + 1, ack=d.local + 1, data=b"x" * 1460)
    d.expect(flags="A", ack=d.REMOTE + 1462)  # 1461 unacknowledged > one MSS: as Linux
    assert sock.recv(2000) == b"x" * 1460


def test_fin_with_data_gets_one_delayed_ack() -> None:
    d = Dialogue()
    _, sock = d.establish_passive()
    d.send("FPA", seq=d.REMOTE + 1, ack=d.local + 1, data=b"bye")
    assert sock.recv(10) == b"bye"
    sock.close()
    d.expect(flags="FA", seq=d.local + 1, ack=d.REMOTE + 5)


def test_simultaneous_close_goes_through_closing_to_time_wait() -> None:
    d = Dialogue()
    sock = d.establish_active()
    conn = d.conn(sock)
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA", seq=d.local + 1)
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 1)  # crosses our FIN
    d.expect(flags="A", seq=d.local + 2, ack=d.REMOTE + 2)
    assert conn.state == TcpState.CLOSING
    d.send("A", seq=d.REMOTE + 2, ack=d.local + 2)
    assert conn.state == TcpState.TIME_WAIT


def test_fin_ack_acking_our_fin_goes_straight_to_time_wait() -> None:
    d = Dialogue()
    sock = d.establish_active()
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA")
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2)
    d.expect(flags="A", ack=d.REMOTE + 2)
    assert d.conn(sock).state == TcpState.TIME_WAIT


def test_half_close_still_receives_data_after_shutdown_wr() -> None:
    d = Dialogue()
    sock = d.establish_active()
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA")
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 2)
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 2, data=b"still talking")
    d.expect(flags="A", ack=d.REMOTE + 14)
    assert sock.recv(100) == b"still talking"
    with pytest.raises(OSError) as e:
        sock.send(b"no")
    assert e.value.errno == errno.EPIPE


def test_half_closed_peer_can_still_be_sent_to() -> None:
    d = Dialogue()
    _, sock = d.establish_passive()
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 1)
    assert sock.recv(10) == b""
    assert sock.send(b"reply") == 5
    d.expect(flags="PA", data=b"reply", ack=d.REMOTE + 2)  # the one segment: carries the ACK


def test_fin_is_retransmitted_until_acknowledged() -> None:
    d = Dialogue()
    sock = d.connect()
    d.expect(flags="S")
    d.send("SA", seq=d.REMOTE, ack=d.local + 1, at=100 * MS)  # RTT 100 ms: RTO 300 ms
    d.expect(flags="A")
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA", seq=d.local + 1)
    d.at(400 * MS - 1)
    d.expect_none()
    d.at(400 * MS)
    d.expect(flags="FA", seq=d.local + 1)
    d.at(1000 * MS)  # backed off: 600 ms
    d.expect(flags="FA", seq=d.local + 1)
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 2)
    d.advance(10 * SEC)
    d.expect_none()


def test_retransmitted_fin_in_time_wait_is_acked_and_restarts_2msl() -> None:
    d = Dialogue(TcpConfig(msl_ns=5 * SEC))
    sock = d.establish_active()
    conn = d.conn(sock)
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA")
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2)
    d.expect(flags="A", ack=d.REMOTE + 2)
    d.advance(8 * SEC)
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2)  # our ACK was lost
    d.expect(flags="A", seq=d.local + 2, ack=d.REMOTE + 2)
    d.advance(9 * SEC)
    assert conn.state == TcpState.TIME_WAIT  # 2*MSL restarted at t=8 s
    d.advance(1 * SEC)
    assert conn.state == TcpState.CLOSED


def test_data_in_time_wait_is_answered_with_an_ack_only() -> None:
    d = Dialogue()
    sock = d.establish_active()
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA")
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2)
    d.expect(flags="A")
    d.send("PA", seq=d.REMOTE + 2, ack=d.local + 2, data=b"late")
    d.expect(flags="A", seq=d.local + 2, ack=d.REMOTE + 2)
    assert d.conn(sock).state == TcpState.TIME_WAIT


def test_rst_in_time_wait_is_ignored_per_rfc_1337_when_configured() -> None:
    d = Dialogue(TcpConfig(rfc1337=True))
    sock = d.establish_active()
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA")
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2)
    d.expect(flags="A")
    d.send("R", seq=d.REMOTE + 2, ack=0)
    d.expect_none()
    assert d.conn(sock).state == TcpState.TIME_WAIT


def test_rst_in_time_wait_ends_it_like_linux_by_default() -> None:
    d = Dialogue()
    sock = d.establish_active()
    conn = d.conn(sock)
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA")
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2)
    d.expect(flags="A")
    assert conn.state == TcpState.TIME_WAIT
    d.send("R", seq=d.REMOTE + 2, ack=0)
    d.expect_none()
    assert conn.state == TcpState.CLOSED  # net.ipv4.tcp_rfc1337 = 0


def test_new_syn_with_higher_sequence_reopens_a_time_wait_connection() -> None:
    d = Dialogue()
    _listener, sock = d.establish_passive()
    conn = d.conn(sock)
    sock.shutdown(socket.SHUT_WR)  # we close first: TIME-WAIT is ours
    d.expect(flags="FA")
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2)
    d.expect(flags="A")
    assert conn.state == TcpState.TIME_WAIT
    d.advance(1 * SEC)
    d.send("S", seq=d.REMOTE + 100_000, ack=0)
    d.expect(flags="SA", ack=d.REMOTE + 100_001)
    assert conn.state == TcpState.CLOSED


def test_old_syn_in_time_wait_gets_an_ack() -> None:
    d = Dialogue()
    _, sock = d.establish_passive()
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA")
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2)
    d.expect(flags="A")
    d.send("S", seq=d.REMOTE - 5000, ack=0)
    d.expect(flags="A", ack=d.REMOTE + 2)
    assert d.conn(sock).state == TcpState.TIME_WAIT


def test_last_ack_times_out_when_the_peer_vanishes() -> None:
    d = Dialogue(TcpConfig(retries2=3))
    _, sock = d.establish_passive()
    conn = d.conn(sock)
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 1)
    sock.close()
    d.expect(flags="FA")
    d.advance(60 * SEC)
    assert len(d.sent()) == 3
    assert conn.state == TcpState.CLOSED


def test_orphaned_fin_wait_2_is_reaped_after_fin_timeout() -> None:
    d = Dialogue(TcpConfig(orphan_fin_timeout_ns=3 * SEC))
    sock = d.establish_active()
    conn = d.conn(sock)
    sock.close()
    d.expect(flags="FA")
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 2)
    assert conn.state == TcpState.FIN_WAIT_2
    d.advance(3 * SEC)
    assert conn.state == TcpState.CLOSED


@pytest.mark.skipif(compiled.ACTIVE, reason="spies on TcpConnection._set_state, which the "
                    "compiled engine calls natively (the scenarios above assert each state)")
def test_all_eleven_states_are_reached() -> None:
    seen: set[TcpState] = set()
    for make in (test_active_close_goes_fin_wait_1_fin_wait_2_time_wait_closed,
                 test_passive_close_goes_close_wait_then_last_ack_then_closed,
                 test_simultaneous_close_goes_through_closing_to_time_wait,
                 test_passive_open_goes_syn_received_then_established,
                 test_active_open_goes_syn_sent_then_established):
        original = TcpState.__dict__  # noqa: F841 (states are recorded through the hook)
        import stack.tcp_connection as tc

        real = tc.TcpConnection._set_state

        def spy(self: tc.TcpConnection, state: TcpState, real: object = real) -> None:
            seen.add(state)
            real(self, state)  # type: ignore[operator]

        tc.TcpConnection._set_state = spy  # type: ignore[method-assign]
        try:
            make()
        finally:
            tc.TcpConnection._set_state = real  # type: ignore[method-assign]
    seen.add(TcpState.LISTEN)  # listeners are TcpListener objects, not connections
    seen.add(TcpState.CLOSED)
    assert seen == set(TcpState)


# --- resets and RFC 5961 -------------------------------------------------------------------


def test_rst_at_rcv_nxt_resets_the_connection_with_econnreset() -> None:
    d = Dialogue()
    sock = d.establish_active()
    d.send("R", seq=d.REMOTE + 1, ack=0)
    d.expect_none()
    assert d.conn(sock).state == TcpState.CLOSED
    with pytest.raises(ConnectionResetError):
        sock.recv(10)


def test_rst_in_window_gets_challenge_ack() -> None:
    d = Dialogue()
    sock = d.establish_active()
    d.send("R", seq=d.REMOTE + 1000, ack=0)
    d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 1)
    assert d.conn(sock).state == TcpState.ESTABLISHED
    assert d.conn(sock).stats["challenge_acks"] == 1


def test_rst_out_of_window_is_dropped_silently() -> None:
    d = Dialogue()
    sock = d.establish_active()
    d.send("R", seq=d.REMOTE + 10_000_000, ack=0)
    d.send("R", seq=d.REMOTE - 10, ack=0)
    d.expect_none()
    assert d.conn(sock).state == TcpState.ESTABLISHED


def test_syn_on_established_connection_gets_challenge_ack() -> None:
    d = Dialogue()
    sock = d.establish_active()
    for seq in (d.REMOTE + 1, d.REMOTE + 500, d.REMOTE - 500):  # in window, and outside it
        d.send("S", seq=seq, ack=0)
        d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 1)
    assert d.conn(sock).state == TcpState.ESTABLISHED


def test_challenge_acks_are_rate_limited() -> None:
    d = Dialogue(TcpConfig(challenge_ack_limit=3))
    sock = d.establish_active()
    for _ in range(10):
        d.send("R", seq=d.REMOTE + 100, ack=0)
    assert len(d.sent()) == 3
    d.advance(1 * SEC)
    d.send("R", seq=d.REMOTE + 100, ack=0)
    assert len(d.sent()) == 1
    assert d.conn(sock).state == TcpState.ESTABLISHED


def test_ack_of_unsent_data_is_answered_and_dropped() -> None:
    d = Dialogue()
    sock = d.establish_active()
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 5000, data=b"bogus")
    d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 1)
    assert d.conn(sock).rcv_buf == b""


def test_ack_too_old_gets_challenge_ack_and_data_is_dropped() -> None:
    d = Dialogue()
    sock = d.establish_active()
    d.send("PA", seq=d.REMOTE + 1, ack=d.local - 200_000, data=b"blind")
    d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 1)
    assert sock.recv(10) == b"" if False else d.conn(sock).rcv_buf == b""


def test_segment_without_ack_bit_is_dropped() -> None:
    d = Dialogue()
    sock = d.establish_active()
    d.send("P", seq=d.REMOTE + 1, ack=0, data=b"noack")
    d.expect_none()
    assert d.conn(sock).rcv_buf == b""


def test_out_of_window_data_is_answered_with_an_ack() -> None:
    d = Dialogue()
    sock = d.establish_active()
    d.send("PA", seq=d.REMOTE + 1 + 10_000_000, ack=d.local + 1, data=b"far")
    d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 1)
    d.send("PA", seq=d.REMOTE - 100, ack=d.local + 1, data=b"old")
    d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 1)
    assert d.conn(sock).rcv_buf == b""


def test_close_with_unread_data_sends_rst() -> None:
    d = Dialogue()
    sock = d.establish_active()
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 1, data=b"unread")
    d.sent()
    sock.close()
    d.expect(flags="RA", seq=d.local + 1, ack=d.REMOTE + 7)


def test_listener_close_resets_unaccepted_connections() -> None:
    d = Dialogue()
    listener = d.listen()
    d.send("S", seq=d.REMOTE, ack=0)
    synack = d.expect(flags="SA")
    d.send("A", seq=d.REMOTE + 1, ack=synack.seq + 1)
    listener.close()
    d.expect(flags="RA", seq=synack.seq + 1)
    d.send("S", seq=d.REMOTE + 10, ack=0, sport=50001)
    d.expect(flags="RA")  # nothing listens any more


def test_connection_reset_while_queued_for_accept_is_still_accepted() -> None:
    """As Linux (tests/stack/test_tcp_vs_linux.py compares): accept() returns it, the
    first recv() says ECONNRESET, the next ones end of stream; the queue is then empty."""
    d = Dialogue()
    listener = d.listen()
    d.send("S", seq=d.REMOTE, ack=0)
    synack = d.expect(flags="SA")
    d.send("A", seq=d.REMOTE + 1, ack=synack.seq + 1)
    d.send("R", seq=d.REMOTE + 1, ack=0)
    child = listener.accept()
    with pytest.raises(ConnectionResetError):
        child.recv(10)
    assert child.recv(10) == b""
    with pytest.raises(BlockingIOError):
        listener.accept()


def _reset_in_accept_queue_with_1000_bytes(d: Dialogue) -> TcpSocket:
    """A listener whose one queued connection received 1000 bytes and then a RST."""
    listener = d.listen()
    d.send("S", seq=d.REMOTE, ack=0)
    synack = d.expect(flags="SA")
    d.send("A", seq=d.REMOTE + 1, ack=synack.seq + 1)
    d.send("PA", seq=d.REMOTE + 1, ack=synack.seq + 1, data=b"x" * 1000)
    d.send("R", seq=d.REMOTE + 1001, ack=0)
    return listener


def test_data_of_a_connection_reset_in_the_accept_queue_stays_charged() -> None:
    """It is still readable once accepted (data first, then ECONNRESET, as Linux), so
    its bytes count against the owner's socket memory until it is closed."""
    d = Dialogue()
    memory = d.stack.socket_memory
    before = memory.used
    listener = _reset_in_accept_queue_with_1000_bytes(d)
    assert memory.used == before + 1000
    child = listener.accept()
    assert child.recv(2000) == b"x" * 1000
    with pytest.raises(ConnectionResetError):
        child.recv(10)
    child.close()
    assert memory.used == before


def test_closing_a_listener_gives_back_what_its_reset_children_held() -> None:
    d = Dialogue()
    memory = d.stack.socket_memory
    before = memory.used
    listener = _reset_in_accept_queue_with_1000_bytes(d)
    assert memory.used == before + 1000
    listener.close()
    assert memory.used == before


@pytest.mark.parametrize("state", ["FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING",
                                   "LAST_ACK"])
def test_rst_in_closing_states_closes(state: str) -> None:
    d = Dialogue()
    sock = d.establish_active()
    conn = d.conn(sock)
    if state in ("FIN_WAIT_1", "FIN_WAIT_2", "CLOSING"):
        sock.shutdown(socket.SHUT_WR)
        d.expect(flags="FA")
        if state == "FIN_WAIT_2":
            d.send("A", seq=d.REMOTE + 1, ack=d.local + 2)
        if state == "CLOSING":
            d.send("FA", seq=d.REMOTE + 1, ack=d.local + 1)
            d.sent()
    else:
        d.send("FA", seq=d.REMOTE + 1, ack=d.local + 1)
        d.sent()
        if state == "LAST_ACK":
            sock.shutdown(socket.SHUT_WR)
            d.sent()
    assert conn.state == TcpState[state]
    fin_seen = state in ("CLOSE_WAIT", "LAST_ACK", "CLOSING")
    d.send("R", seq=d.REMOTE + 1 + fin_seen, ack=0)
    assert conn.state == TcpState.CLOSED
    d.expect_none()


def test_keepalive_style_probe_below_window_gets_ack() -> None:
    d = Dialogue()
    sock = d.establish_active()
    d.send("A", seq=d.REMOTE, ack=d.local + 1)  # SEG.SEQ = RCV.NXT - 1, no data
    d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 1)
    assert d.conn(sock).state == TcpState.ESTABLISHED


def test_timer_driven_time_wait_uses_configured_msl() -> None:
    d = Dialogue(TcpConfig(msl_ns=100 * MS))
    sock = d.establish_active()
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA")
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2)
    d.sent()
    d.advance(200 * MS)
    assert d.conn(sock).state == TcpState.CLOSED
