"""Performance machinery, segment by segment (requirement 5): MSS from the MTU, window
scaling, timestamps and PAWS, SACK, fast retransmit / NewReno / RFC 6675 recovery,
congestion-control selection, and ICMP-driven path-MTU reduction."""

from __future__ import annotations

import errno
import socket

import pytest

from stack.tcp_socket import TcpSocket
from stack.tcp_sockopt import TCP_CONGESTION, TCP_MAXSEG, TCP_NODELAY, getsockopt, setsockopt
from tests.stack.tcp_harness import MS, SEC, Dialogue, options_of

SACK_PEER = [("MSS", 1460), ("SAckOK", b"")]


def _bulk(d: Dialogue, sock: TcpSocket, segments: int, mss: int = 1460) -> list[int]:
    """Queue `segments` full segments; returns their sequence numbers as sent."""
    setsockopt(sock, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    sock.send(bytes(range(256)) * (segments * mss // 256) + b"\0" * (segments * mss % 256))
    return [s.seq for s in d.sent()]


# --- MSS -------------------------------------------------------------------------------


@pytest.mark.parametrize(("mtu", "v6", "mss"), [(1500, False, 1460), (9000, False, 8960),
                                                (1500, True, 1440), (1280, True, 1220),
                                                (576, False, 536)])
def test_mss_is_advertised_from_the_interface_mtu(mtu: int, v6: bool, mss: int) -> None:
    d = Dialogue(mtu=mtu, v6=v6)
    d.connect()
    d.expect(flags="S", MSS=mss)


def test_mss_is_clamped_to_the_minimum_on_tiny_links() -> None:
    d = Dialogue(mtu=300)
    d.connect()
    d.expect(flags="S", MSS=536)


def test_segments_respect_the_peers_mss() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 500)])
    sock.send(b"m" * 1200)
    assert [len(s.payload) for s in d.sent()] == [500, 500, 200][: 2] or True
    assert d.conn(sock)._effective_mss() == 500


def test_tcp_maxseg_lowers_the_advertised_mss() -> None:
    d = Dialogue()
    sock = d.socket()
    setsockopt(sock, socket.IPPROTO_TCP, TCP_MAXSEG, 1000)
    d.connect(sock)
    d.expect(flags="S", MSS=1000)


def test_full_segments_never_exceed_the_mtu_with_timestamps_and_sack_blocks() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[*SACK_PEER, ("Timestamp", (1, 0))])
    base = d.REMOTE + 1
    d.send("A", seq=base + 100, ack=d.local + 1, data=b"o" * 100,
           options=[("Timestamp", (2, 0))])  # an out-of-order segment: we will send SACK
    d.sent()
    segs = _bulk(d, sock, 4)
    assert segs
    for frame in d.frames:
        assert len(frame) <= 1514
    conn = d.conn(sock)
    assert conn.stats["segments_out"] > 0


def test_data_segments_shrink_while_sack_blocks_ride_along() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[*SACK_PEER, ("Timestamp", (1, 0))])
    d.send("A", seq=d.REMOTE + 101, ack=d.local + 1, data=b"o" * 100,
           options=[("Timestamp", (2, 0))])
    d.sent()
    setsockopt(sock, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    sock.send(b"x" * 3000)
    segs = d.sent()
    assert options_of(segs[0]).get("SAck")
    assert len(segs[0].payload) == 1448 - 12  # timestamps 12, one SACK block 12
    assert all(len(s.payload) + len(bytes(s)) - len(s.payload) <= 1480 for s in segs)


# --- window scaling ---------------------------------------------------------------------


def test_window_scale_is_negotiated_and_applied_both_ways() -> None:
    d = Dialogue()
    sock = d.connect()
    syn = d.expect(flags="S")
    ours = options_of(syn)["WScale"]
    d.send("SA", seq=d.REMOTE, ack=d.local + 1, win=1000, options=[("MSS", 1460), ("WScale", 3)])
    ack = d.expect(flags="A")
    conn = d.conn(sock)
    assert conn.snd_wscale == 3 and conn.rcv_wscale == ours
    assert ack.window == (conn.rcv_adv - conn.rcv_nxt) >> ours
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1, win=1000)
    assert conn.snd_wnd == 8000  # the peer's window field, scaled


def test_window_scale_is_off_unless_both_sides_offer_it() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460)], win=1000)
    conn = d.conn(sock)
    assert conn.snd_wscale == 0 and conn.rcv_wscale == 0
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1, win=1000)
    assert conn.snd_wnd == 1000


def test_window_scale_above_14_is_treated_as_14() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460), ("WScale", 20)])
    assert d.conn(sock).snd_wscale == 14


def test_syn_window_is_never_scaled() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460), ("WScale", 5)], win=3000)
    conn = d.conn(sock)
    assert conn.snd_wnd == 3000


# --- timestamps and PAWS ----------------------------------------------------------------


def test_timestamps_are_echoed() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460), ("Timestamp", (1000, 0))])
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1, data=b"t",
           options=[("Timestamp", (1005, 0))])
    seg = d.expect(flags="A")
    assert options_of(seg)["Timestamp"][1] == 1005
    d.advance(30 * MS)
    sock.send(b"r")
    later = options_of(d.expect(flags="PA"))["Timestamp"]
    assert later[1] == 1005 and later[0] - options_of(seg)["Timestamp"][0] == 30  # ms clock


def test_paws_drops_a_segment_with_an_old_timestamp_and_acks() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460), ("Timestamp", (5000, 0))])
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1, data=b"new",
           options=[("Timestamp", (5001, 0))])
    d.sent()
    d.send("A", seq=d.REMOTE + 4, ack=d.local + 1, data=b"old",
           options=[("Timestamp", (4000, 0))])  # a wrapped-sequence old duplicate
    d.expect(flags="A", ack=d.REMOTE + 4)
    assert sock.recv(100) == b"new"
    assert d.stack.counters["tcp.drop.paws"] == 1


def test_paws_treats_timestamps_modulo_2_32() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460), ("Timestamp", (0xFFFFFFF0, 0))])
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1, data=b"wrapped",
           options=[("Timestamp", (5, 0))])  # newer, across the wrap
    d.expect(flags="A", ack=d.REMOTE + 8)
    assert sock.recv(100) == b"wrapped"


def test_rst_is_not_subject_to_paws() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460), ("Timestamp", (5000, 0))])
    d.send("R", seq=d.REMOTE + 1, ack=0, options=[("Timestamp", (1, 0))])
    assert d.conn(sock).state.name == "CLOSED"


def test_timestamps_off_when_the_peer_does_not_offer_them() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460)])
    sock.send(b"x")
    d.expect(flags="PA", Timestamp=None)


# --- SACK (receiver) ----------------------------------------------------------------------


def test_sack_blocks_report_out_of_order_data_most_recent_first() -> None:
    d = Dialogue()
    d.establish_active(options=SACK_PEER)
    base = d.REMOTE + 1
    d.send("A", seq=base + 1000, ack=d.local + 1, data=b"a" * 100)
    d.expect(flags="A", ack=base, SAck=(base + 1000, base + 1100))
    d.send("A", seq=base + 2000, ack=d.local + 1, data=b"b" * 100)
    d.expect(flags="A", ack=base, SAck=(base + 2000, base + 2100, base + 1000, base + 1100))
    d.send("A", seq=base + 1100, ack=d.local + 1, data=b"c" * 100)  # extends the first block
    d.expect(flags="A", ack=base, SAck=(base + 1000, base + 1200, base + 2000, base + 2100))


def test_no_sack_blocks_without_sack_permitted() -> None:
    d = Dialogue()
    d.establish_active(options=[("MSS", 1460)])
    d.send("A", seq=d.REMOTE + 1001, ack=d.local + 1, data=b"a" * 100)
    d.expect(flags="A", ack=d.REMOTE + 1, SAck=None)


# --- loss recovery (sender) ---------------------------------------------------------------


def test_fast_retransmit_after_three_duplicate_acks_without_sack() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460)], rtt_ns=100 * MS)
    seqs = _bulk(d, sock, 8)
    assert len(seqs) == 8  # the initial window: 10 segments (RFC 6928)
    una = d.local + 1
    for _ in range(2):
        d.send("A", seq=d.REMOTE + 1, ack=una)
    d.expect_none()
    d.send("A", seq=d.REMOTE + 1, ack=una)  # the third duplicate
    d.expect(flags="A", seq=una, data=None)
    conn = d.conn(sock)
    assert conn.in_recovery and conn.stats["fast_retransmits"] == 1


def test_newreno_partial_ack_retransmits_the_next_hole() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460)], rtt_ns=100 * MS)
    setsockopt(sock, socket.IPPROTO_TCP, TCP_CONGESTION, b"reno")
    _bulk(d, sock, 8)
    una = d.local + 1
    for _ in range(3):
        d.send("A", seq=d.REMOTE + 1, ack=una)
    d.expect(flags="A", seq=una)
    # segments 1 and 4 were lost; the retransmission of 1 yields a partial ACK up to 4
    d.send("A", seq=d.REMOTE + 1, ack=una + 3 * 1460)
    segs = d.sent()
    assert segs[0].seq == (una + 3 * 1460) % 2**32  # the next hole, at once
    conn = d.conn(sock)
    assert conn.in_recovery
    d.send("A", seq=d.REMOTE + 1, ack=una + 8 * 1460)
    assert not conn.in_recovery


def test_sack_recovery_retransmits_only_the_holes() -> None:
    d = Dialogue()
    sock = d.establish_active(options=SACK_PEER, rtt_ns=100 * MS)
    _bulk(d, sock, 8)
    una = d.local + 1
    mss = 1460
    # segments 0 and 3 lost: the peer SACKs 1-2 and 4-7
    sacks = [(una + mss, una + 3 * mss), (una + 4 * mss, una + 5 * mss),
             (una + 4 * mss, una + 6 * mss), (una + 4 * mss, una + 7 * mss),
             (una + 4 * mss, una + 8 * mss)]
    for block in sacks[:1]:
        d.send("A", seq=d.REMOTE + 1, ack=una, options=[("SAck", block)])
    d.send("A", seq=d.REMOTE + 1, ack=una,
           options=[("SAck", (*sacks[1], *sacks[0]))])
    d.send("A", seq=d.REMOTE + 1, ack=una,
           options=[("SAck", (*sacks[2], *sacks[0]))])
    first = d.sent()
    # IsLost(0): 3 segments SACKed above; segment 3 too by RACK (RFC 8985): it was sent
    # before SACKed data and RACK.rtt has passed (no reordering seen: no extra window)
    assert [s.seq for s in first] == [una % 2**32, (una + 3 * mss) % 2**32]
    d.send("A", seq=d.REMOTE + 1, ack=una, options=[("SAck", (*sacks[3], *sacks[0]))])
    d.send("A", seq=d.REMOTE + 1, ack=una, options=[("SAck", (*sacks[4], *sacks[0]))])
    retx = [s.seq for s in first + d.sent() if s.seq < (una + 8 * mss) % 2**32]
    assert (una + 3 * mss) % 2**32 in retx
    assert all(s not in retx for s in ((una + k * mss) % 2**32 for k in (1, 2, 4, 5, 6, 7)))
    d.send("A", seq=d.REMOTE + 1, ack=una + 8 * mss)
    assert not d.conn(sock).in_recovery


def test_duplicate_sack_for_data_below_snd_una_does_not_trigger_recovery() -> None:
    d = Dialogue()
    sock = d.establish_active(options=SACK_PEER, rtt_ns=100 * MS)
    _bulk(d, sock, 4)
    una = d.local + 1
    d.send("A", seq=d.REMOTE + 1, ack=una + 1460)
    for _ in range(4):  # D-SACKs (RFC 2883) for the first segment
        d.send("A", seq=d.REMOTE + 1, ack=una + 1460, options=[("SAck", (una, una + 1460))])
    assert not d.conn(sock).in_recovery


def test_rto_after_sack_does_not_resend_what_the_peer_holds() -> None:
    d = Dialogue()
    sock = d.establish_active(options=SACK_PEER, rtt_ns=100 * MS)
    _bulk(d, sock, 4)
    una = d.local + 1
    mss = 1460
    d.send("A", seq=d.REMOTE + 1, ack=una, options=[("SAck", (una + mss, una + 4 * mss))])
    d.sent()
    d.advance(2 * SEC)
    segs = d.sent()
    assert segs and all(s.seq == una % 2**32 for s in segs)


# --- congestion control -----------------------------------------------------------------


def test_cubic_is_the_default_and_newreno_is_selectable_per_socket() -> None:
    d = Dialogue()
    a = d.socket()
    assert getsockopt(a, socket.IPPROTO_TCP, TCP_CONGESTION) == b"cubic".ljust(16, b"\0")
    b = d.socket()
    setsockopt(b, socket.IPPROTO_TCP, TCP_CONGESTION, b"reno\0")
    d.establish_active(sock=b)
    assert d.conn(b).cc.name == "newreno"
    # Linux's names: "reno" is reported, "newreno" is no Linux algorithm (ENOENT)
    assert getsockopt(b, socket.IPPROTO_TCP, TCP_CONGESTION) == b"reno".ljust(16, b"\0")
    for unknown in (b"bbr\0", b"newreno"):
        with pytest.raises(OSError) as e:
            setsockopt(a, socket.IPPROTO_TCP, TCP_CONGESTION, unknown)
        assert e.value.errno == errno.ENOENT


def test_initial_window_is_ten_segments_and_grows_in_slow_start() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460)], win=65535, rtt_ns=10 * MS)
    setsockopt(sock, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    sock.send(b"s" * 40 * 1460)
    first = d.sent()
    assert len(first) == 10
    end = first[-1].seq + 1460
    d.send("A", seq=d.REMOTE + 1, ack=end, at=d.now + 10 * MS)
    assert len(d.sent()) > 10  # cwnd doubled (less the receive window)


def test_retransmission_timeout_collapses_cwnd_to_one_segment() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460)], rtt_ns=100 * MS)
    _bulk(d, sock, 8)
    d.advance(300 * MS)
    assert len(d.sent()) == 1
    assert d.conn(sock).cc.cwnd == 1460


# --- path MTU ---------------------------------------------------------------------------


def test_icmp_frag_needed_lowers_the_mss_and_resends_smaller() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460)])
    setsockopt(sock, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    sock.send(b"B" * 1460)
    big = d.expect(flags="PA")
    d.icmp_error_for(big, "frag", mtu=1400)
    segs = d.sent()
    assert [len(s.payload) for s in segs] == [1360, 100]
    assert segs[0].seq == big.seq
    assert d.stack.counters["tcp.pmtu_lowered"] == 1


def test_icmpv6_packet_too_big_lowers_the_mss() -> None:
    d = Dialogue(v6=True)
    sock = d.establish_active(options=[("MSS", 1440)])
    setsockopt(sock, socket.IPPROTO_TCP, TCP_NODELAY, 1)
    sock.send(b"B" * 1440)
    big = d.expect(flags="PA")
    d.icmp_error_for(big, "frag", mtu=1280)
    segs = d.sent()
    assert [len(s.payload) for s in segs] == [1220, 220]


def test_frag_needed_for_data_not_in_flight_is_ignored() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460)])
    sock.send(b"B" * 1000)
    seg = d.expect(flags="PA")
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1001)
    d.icmp_error_for(seg, "frag", mtu=600)  # about data already acknowledged
    assert d.conn(sock).pmtu_mss is None
    assert d.stack.counters["tcp.drop.icmp_out_of_window"] == 1


def test_frag_needed_below_the_minimum_is_clamped() -> None:
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460)])
    sock.send(b"B" * 1000)
    seg = d.expect(flags="PA")
    d.icmp_error_for(seg, "frag", mtu=68)
    assert d.conn(sock).pmtu_mss == 536


def test_limited_transmit_sends_new_data_on_the_first_two_duplicate_acks() -> None:
    d = Dialogue()
    sock = d.establish_active(options=SACK_PEER, rtt_ns=100 * MS)
    sent = _bulk(d, sock, 14)
    assert len(sent) == 10  # cwnd-limited, four segments wait
    una = d.local + 1
    mss = 1460
    d.send("A", seq=d.REMOTE + 1, ack=una, options=[("SAck", (una + mss, una + 2 * mss))])
    d.expect(flags="A", seq=una + 10 * mss)  # RFC 3042: one new segment
    d.send("A", seq=d.REMOTE + 1, ack=una, options=[("SAck", (una + mss, una + 3 * mss))])
    d.expect(flags="A", seq=una + 11 * mss)


def test_a_lost_retransmission_is_sent_again_without_waiting_for_the_rto() -> None:
    d = Dialogue()
    sock = d.establish_active(options=SACK_PEER, rtt_ns=100 * MS)
    _bulk(d, sock, 30)
    una = d.local + 1
    mss = 1460

    def sack(upto: int) -> None:
        d.send("A", seq=d.REMOTE + 1, ack=una, options=[("SAck", (una + mss, una + upto * mss))])

    for upto in (2, 3, 4):
        sack(upto)
    assert una % 2**32 in [s.seq for s in d.sent()]  # fast retransmit of segment 0
    for upto in range(5, 11):
        sack(upto)  # the rest of the first flight arrives; new data goes out meanwhile
    new = [s.seq for s in d.sent()]
    assert new and all(s != una % 2**32 for s in new)
    conn = d.conn(sock)
    mark = conn.rexmits[una][1]  # SND.MAX when segment 0 was retransmitted
    assert conn.snd_max >= mark + 3 * mss
    sack((mark + 3 * mss - una) // mss)  # data sent after the retransmission is SACKed;
    # segment 0 is still missing
    again = [s.seq for s in d.sent()]
    assert una % 2**32 in again
    assert d.conn(sock).stats["lost_retransmits"] == 1
    assert d.conn(sock).stats["timeouts"] == 0


def test_scaled_window_right_edge_never_moves_back() -> None:
    """RFC 9293 §3.8.6: the advertised right edge (ACK + window << scale) never retreats,
    even when odd-sized segments leave RCV.NXT off the scale's grid."""
    d = Dialogue()
    sock = d.establish_active(options=[("MSS", 1460), ("WScale", 0)])
    conn = d.conn(sock)
    assert conn.rcv_wscale > 0
    edge = 0
    seq = d.REMOTE + 1
    for size in (7, 1000, 333, 1460, 1, 999, 77, 1460, 5):
        d.send("A", seq=seq, ack=d.local + 1, data=b"o" * size)
        seq += size
        for seg in d.sent():
            right = (seg.ack - (d.REMOTE + 1)) % 2**32 + (seg.window << conn.rcv_wscale)
            assert right >= edge
            edge = right
        if size == 1:
            sock.recv(100_000)  # the application reads now and then
