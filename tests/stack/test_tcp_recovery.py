"""Loss recovery that real peers rely on, segment by segment: D-SACK (RFC 2883) sent
and used, undo of spurious recoveries (RFC 3708 by D-SACK, RFC 3522 Eifel by
timestamps) and the reordering they reveal (Linux's tp->reordering), RACK-TLP
(RFC 8985), PRR (RFC 6937), PAWS letting a reordered pure ACK's SACK blocks through
(Linux's tcp_disordered_ack), and HyStart++ (RFC 9406) fed by the engine.

Unless a test says otherwise the handshake takes 100 ms (SRTT 100 ms, min RTT
100 ms, RTO 300 ms), the peer offers SACK, and `mss` is 1460 bytes.
"""

from __future__ import annotations

import socket

from stack.tcp_connection import TcpConfig, TcpConnection
from stack.tcp_socket import TcpSocket
from stack.tcp_sockopt import TCP_NODELAY, setsockopt
from tests.stack.tcp_harness import MS, SEC, Dialogue, options_of

MSS = 1460
RTT = 100 * MS
SACK_PEER = [("MSS", MSS), ("SAckOK", b"")]
M32 = 2**32


def _sacking_peer(config: TcpConfig | None = None, options: list | None = None
                  ) -> tuple[Dialogue, TcpSocket, TcpConnection]:
    d = Dialogue(config)
    sock = d.establish_active(options=options or SACK_PEER, rtt_ns=RTT)
    setsockopt(sock, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    return d, sock, d.conn(sock)


def _queue(sock: TcpSocket, segments: int) -> None:
    sock.send(bytes(range(256)) * (segments * MSS // 256) + b"\0" * (segments * MSS % 256))


def _sack(*blocks: tuple[int, int]) -> list:
    edges: list[int] = []
    for left, right in blocks:
        edges += [left % M32, right % M32]
    return [("SAck", tuple(edges))]


def _offsets(d: Dialogue, una: int) -> list[int]:
    """Segments the stack sent since last asked, as segment numbers from `una`."""
    return [((s.seq - una) % M32) // MSS for s in d.sent() if len(s.payload)]


# --- D-SACK, receiver side (RFC 2883 §4) ---------------------------------------------


def test_duplicate_below_rcv_nxt_is_reported_in_a_dsack_block_once() -> None:
    d, sock, conn = _sacking_peer()
    seq = d.REMOTE + 1
    d.send("A", seq=seq, ack=d.local + 1, data=b"a" * 100)
    d.expect(flags="A", ack=seq + 100, SAck=None)
    d.send("A", seq=seq, ack=d.local + 1, data=b"a" * 100)  # the same segment again
    d.expect(flags="A", ack=seq + 100, SAck=(seq % M32, (seq + 100) % M32))
    d.send("A", seq=seq + 100, ack=d.local + 1, data=b"b" * 100)
    d.expect(flags="A", ack=seq + 200, SAck=None)  # reported once
    assert sock.recv(1000) == b"a" * 100 + b"b" * 100
    assert conn.stats["dsacks_sent"] == 1


def test_partial_duplicate_reports_only_the_old_part() -> None:
    d, sock, _conn = _sacking_peer()
    seq = d.REMOTE + 1
    d.send("A", seq=seq, ack=d.local + 1, data=b"a" * 100)
    d.sent()
    d.send("A", seq=seq + 50, ack=d.local + 1, data=b"a" * 50 + b"b" * 100)
    d.expect(flags="A", ack=seq + 200, SAck=((seq + 50) % M32, (seq + 100) % M32))
    assert sock.recv(1000) == b"a" * 100 + b"b" * 100


def test_duplicate_of_out_of_order_data_is_reported_first_then_its_sack_block() -> None:
    d, _sock, _conn = _sacking_peer()
    seq = d.REMOTE + 1
    d.send("A", seq=seq + 100, ack=d.local + 1, data=b"b" * 100)
    d.expect(flags="A", ack=seq, SAck=((seq + 100) % M32, (seq + 200) % M32))
    d.send("A", seq=seq + 300, ack=d.local + 1, data=b"d" * 100)
    d.sent()
    d.send("A", seq=seq + 100, ack=d.local + 1, data=b"b" * 100)  # duplicate, out of order
    block = ((seq + 100) % M32, (seq + 200) % M32)
    d.expect(flags="A", ack=seq, SAck=(*block, *block, (seq + 300) % M32, (seq + 400) % M32))


def test_duplicate_dropped_by_paws_still_gets_a_dsack() -> None:
    """Linux answers a PAWS-rejected segment with tcp_send_dupack, D-SACK included: the
    retransmission that filled the hole carried a newer timestamp than the late
    original, so the original fails PAWS, and the sender still learns of it."""
    d, _sock, _conn = _sacking_peer(options=[*SACK_PEER, ("Timestamp", (1000, 0))])
    seq = d.REMOTE + 1
    d.send("A", seq=seq, ack=d.local + 1, data=b"r" * 100, options=[("Timestamp", (1200, 0))])
    d.sent()
    d.send("A", seq=seq, ack=d.local + 1, data=b"r" * 100, options=[("Timestamp", (1100, 0))])
    d.expect(flags="A", ack=seq + 100, SAck=(seq % M32, (seq + 100) % M32))
    assert d.stack.counters["tcp.drop.paws"] == 1


# --- D-SACK and timestamps, sender side: undo --------------------------------------------


def _spurious_fast_retransmit(d: Dialogue, conn: TcpConnection, una: int,
                              ts: bool = False) -> int:
    """Ten segments out; segment 0 is only late: the peer SACKs 1-3, the stack fast-
    retransmits 0. Returns the time the retransmission went out."""
    _queue_ts = [("Timestamp", (5000, conn._ts_now()))] if ts else []
    for k in (2, 3, 4):
        d.send("A", seq=d.REMOTE + 1, ack=una, options=[*_sack((una + MSS, una + k * MSS)),
                                                         *_queue_ts],
               at=d.now + MS)
    assert conn.in_recovery
    assert 0 in _offsets(d, una)
    return d.now


def test_dsack_of_every_retransmission_undoes_the_recovery() -> None:
    d, sock, conn = _sacking_peer()
    _queue(sock, 10)
    d.sent()
    una = d.local + 1
    before = (conn.cc.cwnd, conn.cc.ssthresh)
    d.at(d.now + RTT)
    _spurious_fast_retransmit(d, conn, una)
    assert conn.cc.cwnd < before[0]
    # the late original arrives: a partial ACK; then the retransmission, D-SACKed
    d.send("A", seq=d.REMOTE + 1, ack=una + 4 * MSS, at=d.now + MS)
    assert conn.in_recovery
    d.send("A", seq=d.REMOTE + 1, ack=una + 4 * MSS, options=_sack((una, una + MSS)),
           at=d.now + MS)
    assert not conn.in_recovery
    assert (conn.cc.cwnd, conn.cc.ssthresh) == before
    assert conn.stats["undos"] == 1 and conn.stats["dsacks_in"] == 1
    # what the peer sees: the full window again, not PRR's reduced one
    _queue(sock, 20)
    sent = _offsets(d, una)
    assert len(sent) == before[0] // MSS - 6  # cwnd less the 6 segments still in flight


def test_after_an_undo_the_same_reordering_is_not_taken_for_a_loss_again() -> None:
    """Linux's tp->reordering: the undone episode showed segments arrive up to 4 segments
    late, so DupThresh becomes 4 and RACK's window widens (a D-SACK doubles it): the
    next hole with 3 segments SACKed above it is waited for, not retransmitted."""
    d, sock, conn = _sacking_peer()
    _queue(sock, 10)
    d.sent()
    una = d.local + 1
    d.at(d.now + RTT)
    _spurious_fast_retransmit(d, conn, una)
    d.send("A", seq=d.REMOTE + 1, ack=una + 4 * MSS, at=d.now + MS)
    d.send("A", seq=d.REMOTE + 1, ack=una + 4 * MSS, options=_sack((una, una + MSS)),
           at=d.now + MS)
    assert conn.stats["undos"] == 1 and conn.scoreboard.dupthresh == 4
    d.send("A", seq=d.REMOTE + 1, ack=una + 10 * MSS, at=d.now + MS)
    d.sent()
    # the same again: segment 10 late, 11-13 SACKed
    una += 10 * MSS
    for k in (2, 3, 4):
        d.send("A", seq=d.REMOTE + 1, ack=una, options=_sack((una + MSS, una + k * MSS)),
               at=d.now + MS)
    assert 0 not in _offsets(d, una) and not conn.in_recovery
    d.send("A", seq=d.REMOTE + 1, ack=una + 4 * MSS, at=d.now + 10 * MS)  # it arrives
    assert 0 not in _offsets(d, una) and not conn.in_recovery
    assert conn.stats["retransmits"] == 1  # only the first, spurious one


def test_dsack_for_data_never_retransmitted_undoes_nothing() -> None:
    d, sock, conn = _sacking_peer()
    _queue(sock, 4)
    d.sent()
    una = d.local + 1
    d.send("A", seq=d.REMOTE + 1, ack=una + 2 * MSS, at=d.now + RTT)
    cwnd = conn.cc.cwnd
    d.send("A", seq=d.REMOTE + 1, ack=una + 2 * MSS, options=_sack((una, una + MSS)))
    assert conn.stats["dsacks_in"] == 1 and conn.stats["undos"] == 0
    assert conn.cc.cwnd == cwnd and not conn.in_recovery


def test_eifel_timestamps_show_the_original_arrived_and_undo_the_recovery() -> None:
    d, sock, conn = _sacking_peer(options=[*SACK_PEER, ("Timestamp", (5000, 0))])
    _queue(sock, 10)
    original = options_of(d.sent()[0])["Timestamp"][0]
    una = d.local + 1
    before = (conn.cc.cwnd, conn.cc.ssthresh)
    d.at(d.now + RTT)
    for k in (2, 3, 4):
        d.send("A", seq=d.REMOTE + 1, ack=una, at=d.now + MS,
               options=[*_sack((una + MSS, una + k * MSS)), ("Timestamp", (5001, original))])
    assert conn.in_recovery and 0 in _offsets(d, una)
    # the ACK for everything echoes the original's timestamp: it, not the
    # retransmission (sent 103 ms later), filled the hole
    d.send("A", seq=d.REMOTE + 1, ack=una + 10 * MSS, at=d.now + MS,
           options=[("Timestamp", (5002, original))])
    assert conn.stats["undos"] == 1
    assert conn.cc.ssthresh == before[1] and conn.cc.cwnd >= before[0]


def test_eifel_undoes_a_spurious_timeout_and_does_not_go_back() -> None:
    d, sock, conn = _sacking_peer(options=[*SACK_PEER, ("Timestamp", (5000, 0))])
    sock.send(b"x" * 1000)
    first = d.expect(flags="PA")
    original = options_of(first)["Timestamp"][0]
    cwnd = conn.cc.cwnd
    d.advance(300 * MS)  # RTO (one segment in flight: the probe timeout is later)
    d.expect(flags="PA", seq=d.local + 1)
    assert conn.stats["timeouts"] == 1 and conn.cc.cwnd == conn._effective_mss()
    sock.send(b"y" * 1000)  # waits: the loss window is one segment
    d.expect_none()
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1001, at=d.now + 10 * MS,
           options=[("Timestamp", (5001, original))])  # the original's ACK, only late
    assert conn.stats["undos"] == 1 and conn.cc.cwnd >= cwnd
    d.expect(flags="PA", seq=d.local + 1001, data=b"y" * 1000)


# --- RACK-TLP (RFC 8985) ---------------------------------------------------------------


def test_tail_loss_is_repaired_by_a_probe_and_rack_without_a_timeout() -> None:
    d, sock, conn = _sacking_peer()
    _queue(sock, 10)
    t0 = d.now
    assert len(d.sent()) == 10
    una = d.local + 1
    # segments 7, 8 and 9 are lost; the peer acknowledges 0-6 one RTT later
    d.send("A", seq=d.REMOTE + 1, ack=una + 7 * MSS, at=t0 + RTT)
    d.expect_none()
    # Tail Loss Probe after PTO = 2*SRTT (+2 ms, as Linux for more than one segment):
    # no new data to send, so the last segment again
    probes = d.next_segments()
    assert conn.srtt_ns is not None and d.now == t0 + RTT + 2 * conn.srtt_ns + 2 * MS
    assert [((s.seq - una) % M32) // MSS for s in probes] == [9]
    assert conn.stats["tlp_probes"] == 1
    # the probe arrives and is SACKed: RACK finds 7 and 8, sent before it and more than
    # RACK.rtt ago, lost, and recovery starts at once
    d.send("A", seq=d.REMOTE + 1, ack=una + 7 * MSS, options=_sack((una + 9 * MSS,
                                                                    una + 10 * MSS)),
           at=d.now + RTT)
    assert _offsets(d, una) == [7]
    d.send("A", seq=d.REMOTE + 1, ack=una + 8 * MSS, options=_sack((una + 9 * MSS,
                                                                    una + 10 * MSS)),
           at=d.now + RTT)
    assert _offsets(d, una) == [8]
    d.send("A", seq=d.REMOTE + 1, ack=una + 10 * MSS, at=d.now + RTT)
    assert not conn.in_recovery and conn.snd_una == conn.snd_max
    assert conn.stats["timeouts"] == 0 and conn.stats["retransmits"] == 3
    d.advance(2 * SEC)
    d.expect_none()


def _probe_the_last_segment(d: Dialogue, conn: TcpConnection, sock: TcpSocket) -> int:
    """Ten segments; the peer ACKs 0-7 an RTT later (8 is late, 9 lost or late); the
    probe, segment 9 again, goes out 2*SRTT + 2 ms after. Returns SND.UNA at the start."""
    _queue(sock, 10)
    d.sent()
    una = d.local + 1
    d.send("A", seq=d.REMOTE + 1, ack=una + 8 * MSS, at=d.now + RTT)
    assert [((s.seq - una) % M32) // MSS for s in d.next_segments()] == [9]
    assert conn.stats["tlp_probes"] == 1 and conn.stats["timeouts"] == 0
    return una


def test_a_probe_that_repaired_a_loss_reduces_the_window_once() -> None:
    """RFC 8985 §7.4.2: the probe was the only copy that arrived (no D-SACK for it), so
    a loss happened: cwnd is reduced (CUBIC: to 0.7), without a recovery episode."""
    d, sock, conn = _sacking_peer()
    una = _probe_the_last_segment(d, conn, sock)
    d.send("A", seq=d.REMOTE + 1, ack=una + 10 * MSS, at=d.now + RTT)
    before = conn.cc.cwnd
    _queue(sock, 1)  # the ACK that resolves the probe must go beyond it (as Linux)
    d.sent()
    d.send("A", seq=d.REMOTE + 1, ack=una + 11 * MSS, at=d.now + RTT)
    assert conn.cc.cwnd == int(before * 0.7) and conn.cc.ssthresh == conn.cc.cwnd
    assert conn.stats["timeouts"] == 0 and not conn.in_recovery


def test_a_probe_whose_original_also_arrived_changes_nothing() -> None:
    d, sock, conn = _sacking_peer()
    una = _probe_the_last_segment(d, conn, sock)
    # the original was only late: the ACK for the probe D-SACKs it
    d.send("A", seq=d.REMOTE + 1, ack=una + 10 * MSS, at=d.now + RTT - MS)
    d.send("A", seq=d.REMOTE + 1, ack=una + 10 * MSS, at=d.now + MS,
           options=_sack((una + 9 * MSS, una + 10 * MSS)))
    before = conn.cc.cwnd
    _queue(sock, 1)
    d.sent()
    d.send("A", seq=d.REMOTE + 1, ack=una + 11 * MSS, at=d.now + RTT)
    assert conn.cc.cwnd >= before and conn.cc.ssthresh == 2**31
    assert conn.tlp_high_seq is None


def test_rack_waits_a_reordering_window_before_declaring_a_segment_lost() -> None:
    d, sock, conn = _sacking_peer()
    _queue(sock, 10)
    t0 = d.now
    d.sent()
    una = d.local + 1
    # the peer SACKs segment 1 only: fewer than DupThresh SACKed, no reordering seen,
    # so RACK's window is min RTT / 4 = 25 ms past RACK.rtt
    d.send("A", seq=d.REMOTE + 1, ack=una, options=_sack((una + MSS, una + 2 * MSS)),
           at=t0 + RTT)
    assert 0 not in _offsets(d, una)
    d.advance(24 * MS)
    assert _offsets(d, una) == []
    d.advance(1 * MS)  # the RACK reordering timer fires
    assert _offsets(d, una) == [0]
    assert conn.in_recovery and conn.stats["rack_recoveries"] == 1


# --- PRR (RFC 6937) ----------------------------------------------------------------------


def _big_flight(d: Dialogue, sock: TcpSocket, conn: TcpConnection) -> int:
    """Ten segments out, then 80 more queued; the peer ACKs the first ten one by one
    (one RTT later, 1 ms apart), each ACK adding one MSS in slow start and letting two
    new segments out: cwnd and the flight are then 20 segments. Returns SND.UNA."""
    _queue(sock, 90)
    first = d.local + 1
    d.sent()
    d.at(d.now + RTT - MS)
    for k in range(1, 11):
        d.send("A", seq=d.REMOTE + 1, ack=first + k * MSS, at=d.now + MS)
    assert len(d.sent()) == 20
    assert conn.cc.cwnd == 20 * MSS and conn.snd_max - conn.snd_una == 20 * MSS
    return first + 10 * MSS


def test_prr_sends_in_proportion_above_ssthresh() -> None:
    """NewReno halves: ssthresh = RecoverFS / 2. While pipe > ssthresh, PRR lets out
    CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out on each ACK: one segment for
    every two delivered, where plain fast recovery would send none for half a window
    and then one per ACK."""
    d, sock, conn = _sacking_peer(TcpConfig(congestion="newreno"))
    una = _big_flight(d, sock, conn)
    d.at(d.now + RTT)
    sent_per_ack = []
    for k in range(2, 16):  # segment 0 lost; the peer SACKs 1, 2, ... one more per ACK
        d.send("A", seq=d.REMOTE + 1, ack=una, options=_sack((una + MSS, una + k * MSS)),
               at=d.now + MS)
        sent_per_ack.append(_offsets(d, una))
    # dupACKs 1 and 2: Limited Transmit, one new segment each (flight 22); the third
    # enters recovery: ssthresh = 22/2 = 11 segments, and only the fast retransmit
    assert sent_per_ack[:3] == [[20], [21], [0]]
    assert conn.recover_fs == 22 * MSS and conn.cc.ssthresh == 11 * MSS
    expected, prr_out = [], 1
    for delivered in range(2, 13):
        sndcnt = max(0, -(-delivered * 11 // 22) - prr_out)
        expected.append(sndcnt)
        prr_out += sndcnt
    assert [len(segs) for segs in sent_per_ack[3:]] == expected == [0, 1, 0, 1, 0, 1, 0, 1,
                                                                     0, 1, 0]
    assert conn._pipe() > conn.cc.ssthresh  # still in the proportional part


def test_prr_below_ssthresh_is_conservative_without_progress_and_slow_starts_with_it() -> None:
    """Half the flight lost at once: pipe falls to ssthresh and below. An ACK that only
    SACKs lets out what it delivered (PRR-CRB); one that also advances SND.UNA may send
    one segment more than delivered (PRR-SSRB), up to ssthresh - pipe."""
    d, sock, conn = _sacking_peer(TcpConfig(congestion="newreno"))
    una = _big_flight(d, sock, conn)
    d.at(d.now + RTT)
    sent_per_ack = []
    for k in range(11, 16):  # segments 0-9 lost; the peer SACKs 10, 11, ... one per ACK
        d.send("A", seq=d.REMOTE + 1, ack=una,
               options=_sack((una + 10 * MSS, una + k * MSS)), at=d.now + MS)
        sent_per_ack.append(_offsets(d, una))
    # two Limited Transmits; the third dupACK: RACK marks 0-9 lost (sent before SACKed
    # data, RACK.rtt ago); pipe = 9 unSACKed + 1 retransmitted = 10 <= ssthresh 11
    assert sent_per_ack[:3] == [[20], [21], [0]]
    assert conn.cc.ssthresh == 11 * MSS
    # CRB: each further SACK delivers one segment and lets one out (prr_delivered -
    # prr_out = 1), pipe stays at 10
    assert sent_per_ack[3:] == [[1], [2]]
    assert conn._pipe() == 10 * MSS
    # the retransmission of 0 arrives: SND.UNA advances by one segment and one more is
    # SACKed: delivered 2, pipe 8. CRB would send 2; SSRB sends max(2, 2) + 1 = 3
    d.send("A", seq=d.REMOTE + 1, ack=una + MSS,
           options=_sack((una + 10 * MSS, una + 16 * MSS)), at=d.now + MS)
    assert _offsets(d, una) == [3, 4, 5]
    assert conn._pipe() == 11 * MSS == conn.cc.ssthresh
    assert conn.stats["timeouts"] == 0


# --- PAWS and reordered pure ACKs (Linux tcp_disordered_ack) ---------------------------


def _reordered_acks(ack_offset: int) -> tuple[Dialogue, TcpConnection, int]:
    """Ten segments out; the peer's ACK with TSval 6000 (SACKing 5) overtakes its ACK
    with TSval 5999 (SACKing 1-2), which then arrives `ack_offset` bytes further on."""
    d, sock, conn = _sacking_peer(options=[*SACK_PEER, ("Timestamp", (5000, 0))])
    _queue(sock, 10)
    d.sent()
    una = d.local + 1
    echo = conn._ts_now()
    d.send("A", seq=d.REMOTE + 1, ack=una, at=d.now + RTT,
           options=[*_sack((una + 5 * MSS, una + 6 * MSS)), ("Timestamp", (6000, echo))])
    assert conn.ts_recent == 6000 and not conn.in_recovery
    d.sent()
    d.send("A", seq=d.REMOTE + 1, ack=una + ack_offset,
           options=[*_sack((una + MSS, una + 3 * MSS)), ("Timestamp", (5999, echo))])
    return d, conn, una


def test_reordered_pure_ack_passes_paws_and_its_sack_blocks_count() -> None:
    d, conn, una = _reordered_acks(0)
    # a pure duplicate ACK at RCV.NXT, one TS tick old: Linux keeps it, and so its SACK
    # blocks: 1, 2 and 5 SACKed above segment 0 -> lost -> fast retransmit at once
    assert d.stack.counters["tcp.drop.paws"] == 0
    assert conn.scoreboard.is_sacked(una + MSS) and conn.in_recovery
    assert 0 in _offsets(d, una)
    assert conn.ts_recent == 6000  # TS.Recent does not go backwards


def test_reordered_ack_that_acknowledges_new_data_still_fails_paws() -> None:
    d, conn, una = _reordered_acks(MSS)
    # not a duplicate ACK (it acknowledges new data): Linux drops it under PAWS
    assert d.stack.counters["tcp.drop.paws"] == 1
    assert conn.snd_una == una and not conn.scoreboard.is_sacked(una + MSS)
    assert [s.ack for s in d.sent()] == [d.REMOTE + 1]  # answered with a duplicate ACK


# --- HyStart++ through the engine (RFC 9406) ---------------------------------------------


def test_hystart_ends_slow_start_when_the_peer_s_acks_come_back_later() -> None:
    """The engine feeds CUBIC the RTT of every ACK (from the echoed timestamp) and the
    round boundaries: a peer whose ACKs take 50 ms for three rounds and then 70 ms sees
    the stack leave slow start into Conservative Slow Start, before any loss."""
    d = Dialogue()
    sock = d.socket()
    setsockopt(sock, socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    d.establish_active(sock=sock, options=[*SACK_PEER, ("WScale", 7), ("Timestamp", (1, 0))],
                       rtt_ns=50 * MS)
    conn = d.conn(sock)
    setsockopt(sock, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    sock.send(b"h" * (3 * 1024 * 1024))
    start = d.now
    pending: list[tuple[int, int, int]] = []  # (ACK time, ACK number, echoed TSval)
    cwnd_at_css = 0
    while pending or not cwnd_at_css:
        for seg in d.sent():
            if len(seg.payload):
                delay = 50 * MS if d.now - start < 160 * MS else 70 * MS
                pending.append((d.now + delay, seg.seq + len(seg.payload),
                                options_of(seg)["Timestamp"][0]))
        if not pending:
            break
        pending.sort()
        when, ack, tsval = pending.pop(0)
        d.send("A", seq=d.REMOTE + 1, ack=ack, win=65535, at=when,
               options=[("Timestamp", (2, tsval))])
        hystart = conn.cc.hystart  # type: ignore[attr-defined]
        if hystart is not None and hystart.in_css and not cwnd_at_css:
            cwnd_at_css = conn.cc.cwnd
            break
    assert cwnd_at_css, "never left slow start"
    assert d.now - start > 160 * MS  # only after the RTT rose
    assert conn.cc.ssthresh == 2**31 and conn.stats["retransmits"] == 0  # no loss
