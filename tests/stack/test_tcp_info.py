"""getsockopt(TCP_INFO) where the differential scenarios cannot reach: values Linux 6.18
gives, measured in a namespace (tests/stack/test_tcp_vs_linux.py compares the rest)."""

from __future__ import annotations

import struct

from stack.tcp_sockopt import getsockopt
from tests.stack.tcp_harness import Dialogue

TCP_INFO = 11
TCP_SYN_SENT = 2
TCPI_OPT_WSCALE = 4


def test_syn_sent_reports_no_negotiated_options() -> None:
    d = Dialogue()
    sock = d.connect()  # our SYN offered a window scale; nothing is negotiated yet
    raw = getsockopt(sock, 6, TCP_INFO)
    assert raw[0] == TCP_SYN_SENT
    assert raw[5] == 0


def test_established_reports_the_negotiated_window_scale() -> None:
    d = Dialogue()
    sock = d.establish_active(options=(("MSS", 1460), ("WScale", 7)))
    raw = getsockopt(sock, 6, TCP_INFO)
    assert raw[5] & TCPI_OPT_WSCALE
    assert raw[6] & 0xF == 7  # tcpi_snd_wscale: the peer's shift


def test_a_fresh_connection_reports_infinite_ssthresh() -> None:
    d = Dialogue()
    sock = d.establish_active()
    (ssthresh,) = struct.unpack_from("<I", getsockopt(sock, 6, TCP_INFO), 76)
    assert ssthresh == 0x7FFFFFFF  # TCP_INFINITE_SSTHRESH until the first loss
