"""Data for a socket the application closed is answered with RST, as Linux does.

Linux's tcp_rcv_state_process (RCV_SHUTDOWN, TCPAbortOnData): after close()
— or shutdown(SHUT_RD) — new data in FIN-WAIT-1/2 gets a RST built from the
segment (seq = its ACK) and the connection ends; the peer's next write then
fails at once instead of filling a dead socket's window. The kernel
comparison is in tests/kernel/test_close_reset.py.
"""

from __future__ import annotations

import errno
import socket

import pytest

from stack.tcp_connection import TcpState
from tests.stack.tcp_harness import SEC, Dialogue


def test_data_after_close_in_fin_wait_2_is_answered_with_rst() -> None:
    d = Dialogue()
    sock = d.establish_active()
    conn = d.conn(sock)
    sock.close()
    d.expect(flags="FA", seq=d.local + 1, ack=d.REMOTE + 1)
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 2)
    assert conn.state == TcpState.FIN_WAIT_2
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 2, data=b"anyone there?")
    d.expect(flags="R", seq=d.local + 2)
    assert conn.state == TcpState.CLOSED
    assert d.stack.counters["tcp.abort_on_data"] == 1
    assert conn.key not in d.tcp.conns
    d.send("PA", seq=d.REMOTE + 14, ack=d.local + 2, data=b"more")
    d.expect(flags="R", seq=d.local + 2)  # nothing there any more: the ordinary reset


def test_data_after_close_in_fin_wait_1_is_answered_with_rst() -> None:
    d = Dialogue()
    sock = d.establish_active()
    sock.close()
    d.expect(flags="FA", seq=d.local + 1)
    # the peer has not seen our FIN yet and keeps writing
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 1, data=b"x" * 100)
    d.expect(flags="R", seq=d.local + 1)
    assert d.conn(sock).state == TcpState.CLOSED


def test_old_data_after_close_is_only_acknowledged() -> None:
    d = Dialogue()
    sock = d.establish_active()
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 1, data=b"read it")
    d.sent()
    assert sock.recv(100) == b"read it"
    d.sent()
    sock.close()
    d.expect(flags="FA", seq=d.local + 1, ack=d.REMOTE + 8)
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 2, data=b"read it")  # a retransmission
    d.expect(flags="A", seq=d.local + 2, ack=d.REMOTE + 8)
    assert d.conn(sock).state == TcpState.FIN_WAIT_1
    d.send("FA", seq=d.REMOTE + 8, ack=d.local + 2)  # and a FIN is still a clean close
    d.expect(flags="A", ack=d.REMOTE + 9)
    assert d.conn(sock).state == TcpState.TIME_WAIT


def test_a_half_closed_socket_still_receives() -> None:
    d = Dialogue()
    sock = d.establish_active()
    sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA")
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 2, data=b"reply")
    d.advance(1 * SEC)
    assert [s.flags for s in d.sent()] == ["A"]
    assert sock.recv(100) == b"reply"


def test_data_after_shutdown_rdwr_resets_and_reports_econnreset() -> None:
    d = Dialogue()
    sock = d.establish_active()
    sock.shutdown(socket.SHUT_RDWR)
    d.expect(flags="FA")
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 2, data=b"unwanted")
    d.expect(flags="R", seq=d.local + 2)
    with pytest.raises(OSError) as e:
        sock.recv(100)
    assert e.value.errno == errno.ECONNRESET


def test_close_with_unread_data_resets_and_later_data_gets_the_ordinary_reset() -> None:
    d = Dialogue()
    sock = d.establish_active()
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 1, data=b"unread")
    d.sent()
    sock.close()
    d.expect(flags="RA", seq=d.local + 1, ack=d.REMOTE + 7)
    d.send("PA", seq=d.REMOTE + 7, ack=d.local + 1, data=b"more")
    d.expect(flags="R", seq=d.local + 1)
