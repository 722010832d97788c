"""Inputs the fuzzers found, kept as deterministic tests (Linux decides what is right).

Each test replays one input that a fuzzer (hypothesis under VNET_FUZZ=long,
or the coverage-guided targets in fuzz/) reported, and asserts what vnet
must do with it. Where the question was "is the stack or the fuzz test
wrong", the answer came from the Linux kernel: the same segment sequence is
played against a kernel socket in a private network namespace
(tests/stack/kernel_tcp_peer.py) and against vnet, and the two are compared.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.stack import kernel_tcp_peer
from tests.stack.linux_reference import require_root
from tests.stack.tcp_harness import Dialogue

SYN_OPTIONS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (100, 0)), ("WScale", 2)]
NEWEST_TS = [("Timestamp", (0x7FFFFFFF, 0))]


def _forged_zero_window(ahead: int) -> list[tuple[Any, ...]]:
    """VNET_FUZZ=long's failing input, then the fuzz test's liveness check, then more data.

    An established connection gets PSH|ACK, window 0, no data, `ahead` bytes beyond
    RCV.NXT (in the receive window, so acceptable). RFC 9293 §3.10.7.4 and Linux's
    tcp_may_update_window take its window because its SEQ is newer than SND.WL1, and
    from then on only a segment whose SEQ reaches that point may update the window.
    The peer then sends 10 bytes and an ACK with a window at its real sequence number,
    and the application sends: Linux sends the data only if the ACK's SEQ reached the
    forged one (ahead <= 10), else it probes the zero window. Two more bytes from the
    peer move its sequence past the forged one, and its next ACK opens the window.
    """
    return [
        ("segment", "S", 0, 0, 65535, SYN_OPTIONS, b""),
        ("segment", "A", 1, 1, 65535, [], b""),
        ("accept",),
        ("segment", "PA", 1 + ahead, 1, 0, [], b""),
        ("wait", 1.0),
        ("segment", "PA", 1, 1, 65535, NEWEST_TS, b"still here"),
        ("app_recv", 100),
        ("segment", "A", 11, 1, 65535, NEWEST_TS, b""),
        ("app_send", b"reply"),
        ("wait", 0.5),
        ("segment", "PA", 11, 1, 0, NEWEST_TS, b"ab"),  # window 0: the ACK below opens it
        ("segment", "A", 13, 1, 65535, NEWEST_TS, b""),
    ]


def _first_send_and_probes(results: list[tuple[Any, list[Any]]]) -> tuple[int | None, bool]:
    """The step at which "reply" first left, and whether the zero window was probed
    before that (SEQ SND.UNA-1 with no data: relative SEQ 0 after the handshake).
    Retransmission timing differs between the two stacks and is not compared."""
    probed = False
    for step, (_outcome, segments) in enumerate(results):
        if any(bytes(s[4]) == b"reply" for s in segments):
            return step, probed
        probed = probed or (step > 2 and any(s[1] == 0 and not s[4] for s in segments))
    return None, probed


def test_forged_out_of_order_zero_window_freezes_the_window_until_the_peer_passes_it() -> None:
    """vnet, deterministically: the exact input hypothesis found (11 bytes ahead). The
    ACK at step 7 (SEQ older than the forged one) does not open the window, the send at
    step 8 waits and the zero window is probed, and the ACK at step 11, after the
    peer's sequence passed the forged one, opens it."""
    assert _first_send_and_probes(kernel_tcp_peer.run_vnet(_forged_zero_window(11))) == (
        11, True)


def test_a_window_update_at_the_forged_sequence_number_is_taken() -> None:
    assert _first_send_and_probes(kernel_tcp_peer.run_vnet(_forged_zero_window(10))) == (
        8, False)


@pytest.mark.parametrize("ahead", [5, 10, 11, 300])
def test_forged_zero_window_is_handled_as_linux_handles_it(ahead: int) -> None:
    require_root()
    steps = _forged_zero_window(ahead)
    linux = _first_send_and_probes(kernel_tcp_peer.run(steps, settle=0.1))
    vnet = _first_send_and_probes(kernel_tcp_peer.run_vnet(steps, settle=0.1))
    assert vnet == linux
    # 300 ahead: the 12 bytes the peer sent never reach the forged SEQ; both still probe
    assert linux == {5: (8, False), 10: (8, False), 11: (11, True), 300: (None, True)}[ahead]


def test_an_ack_to_a_listener_before_the_clock_reaches_two_cookie_periods_gets_a_reset() -> None:
    """fuzz/tcp_engine.py found it: a listener's SYN-cookie check took any bare ACK whose
    cookie counter said "one or two periods (64 s) ago" and hashed a negative period
    number while the stack's clock was under 128 s (virtual time starts at 0), raising
    OverflowError out of receive_frame. The top byte of ACK-1 carries the counter, so
    256 ACKs cover every value: each gets the RST a bad cookie gets (as Linux), and the
    listener still accepts."""
    d = Dialogue()
    listener = d.listen()
    for top in range(256):
        d.send("A", seq=d.REMOTE + 1, ack=(top << 24) | 1, sport=40000 + top)
        d.expect(flags="R", seq=(top << 24) | 1)
    assert d.stack.counters["tcp.rst_out"] == 256
    d.send("S", seq=d.REMOTE, ack=0, sport=50999)
    synack = d.expect(flags="SA")
    d.send("A", seq=d.REMOTE + 1, ack=synack.seq + 1, sport=50999)
    assert listener.accept().getpeername()[1] == 50999
