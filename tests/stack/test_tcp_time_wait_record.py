"""TIME-WAIT after close(): the slim record answers exactly as the whole connection did.

An orphaned connection (its socket closed) that reaches TIME-WAIT becomes a
`stack.tcp_time_wait.TimeWaitRecord`; one whose socket is still open (here: after
shutdown(SHUT_WR)) stays a `TcpConnection`. Each test plays one script of peer
segments against both, from the same seed, and asserts that the stack sent the same
bytes at the same times, counted the same things and ended in the same state: every
TIME-WAIT rule (ACK of a retransmitted FIN with 2*MSL restarted, data and old SYNs
answered with an ACK, RFC 5961 challenge ACKs, PAWS, RST ending it or not as
tcp_rfc1337 says, a newer SYN reopening it for the listener, the expiry) is then the
record's as much as the connection's, and the first of these is also checked
against its expected values, so the two cannot agree on something wrong.
"""

from __future__ import annotations

import errno
import gc
import socket
from collections.abc import Callable
from typing import Any

import pytest
from scapy.layers.inet import TCP
from scapy.layers.l2 import Ether

from stack.tcp_connection import TcpConfig, TcpConnection, TcpState
from stack.tcp_socket import TcpSocket
from stack.tcp_time_wait import TimeWaitRecord
from tests.stack.tcp_harness import MS, SEC, Dialogue

TS_OPTIONS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (5000, 0)), ("WScale", 7)]
PLAIN_OPTIONS = [("MSS", 1460)]
Script = Callable[[Dialogue, "Played"], None]


class Played:
    """What one run of a script shows: the frames (time, bytes), counters, states."""

    def __init__(self, d: Dialogue) -> None:
        self.d = d
        self.frames: list[tuple[int, bytes]] = []
        self.notes: list[Any] = []

    def collect(self) -> list[TCP]:
        """Frames sent since the last call, kept for the comparison, parsed."""
        new = [(self.d.now, bytes(raw)) for raw in self.d.frames]
        self.d.frames.clear()
        self.frames.extend(new)
        return [Ether(raw)[TCP] for _, raw in new if TCP in Ether(raw)]

    def peer(self, flags: str, seq: int, ack: int | None = None, data: bytes = b"",
             tsval: int | None = None, tsecr: int = 0, at: int | None = None,
             **fields: Any) -> list[TCP]:
        """One peer segment (with a timestamp when `tsval` is given); what came back."""
        options = [("NOP", None), ("NOP", None), ("Timestamp", (tsval, tsecr))] \
            if tsval is not None else []
        self.d.send(flags, seq=seq, ack=ack, data=data, options=options, at=at, **fields)
        return self.collect()


def _into_time_wait(d: Dialogue, orphan: bool, timestamps: bool, passive: bool
                    ) -> tuple[TcpSocket, TcpSocket | None]:
    """Establish, close our side first (close() or shutdown), take the peer's FIN-ACK."""
    options = TS_OPTIONS if timestamps else PLAIN_OPTIONS
    listener: TcpSocket | None = None
    if passive:
        listener, sock = d.establish_passive(options=options)
    else:
        sock = d.establish_active(options=options)
    d.advance(10 * MS)
    if orphan:
        sock.close()
    else:
        sock.shutdown(socket.SHUT_WR)
    d.expect(flags="FA", seq=d.local + 1)
    d.advance(10 * MS)
    ts = [("NOP", None), ("NOP", None), ("Timestamp", (6000, 0))] if timestamps else []
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2, options=ts)
    d.expect(flags="A", seq=d.local + 2, ack=d.REMOTE + 2)
    return sock, listener


def _play(script: Script, orphan: bool, *, timestamps: bool = True, passive: bool = False,
          config: TcpConfig | None = None, v6: bool = False) -> Played:
    d = Dialogue(config or TcpConfig(msl_ns=5 * SEC), v6=v6)
    sock, listener = _into_time_wait(d, orphan, timestamps, passive)
    entries = list(d.tcp.conns.values())
    assert len(entries) == 1
    # the slim record when (and only when) the application closed the socket
    assert isinstance(entries[0], TimeWaitRecord) == orphan
    played = Played(d)
    played.notes.append(("listener", listener is not None))
    script(d, played)
    played.collect()
    played.notes.append(("state", sock.conn.state if sock.conn is not None else None))
    played.notes.append(("counters", sorted(d.stack.counters.items())))
    played.notes.append(("table", sorted(d.tcp.conns)))
    return played


def _same_both_ways(script: Script, **kwargs: Any) -> Played:
    whole = _play(script, orphan=False, **kwargs)
    slim = _play(script, orphan=True, **kwargs)
    assert slim.frames == whole.frames
    assert slim.notes == whole.notes
    return slim


# --- the scripts ----------------------------------------------------------------------


def _retransmitted_fin_restarts_2msl(d: Dialogue, p: Played) -> None:
    d.advance(8 * SEC)
    back = p.peer("FA", seq=d.REMOTE + 1, ack=d.local + 2, tsval=7000)
    assert [(int(s.flags), s.seq, s.ack) for s in back] == [
        (0x10, (d.local + 2) & 0xFFFFFFFF, (d.REMOTE + 2) & 0xFFFFFFFF)]
    d.advance(9 * SEC)  # 2*MSL (10 s) from the retransmitted FIN has not passed
    assert len(d.tcp.conns) == 1
    back = p.peer("A", seq=d.REMOTE + 2, ack=d.local + 2, data=b"late", tsval=7100)
    assert [int(s.flags) for s in back] == [0x10]  # data in TIME-WAIT: an ACK
    d.advance(1 * SEC)
    assert not d.tcp.conns  # over: the 4-tuple is free
    back = p.peer("A", seq=d.REMOTE + 2, ack=d.local + 2, data=b"later", tsval=7200)
    assert [int(s.flags) for s in back] == [0x04]  # nobody there: RST


def test_retransmitted_fin_and_expiry_match_the_whole_connection() -> None:
    _same_both_ways(_retransmitted_fin_restarts_2msl)


def test_retransmitted_fin_and_expiry_without_timestamps() -> None:
    _same_both_ways(_retransmitted_fin_restarts_2msl, timestamps=False)


def test_retransmitted_fin_and_expiry_over_ipv6() -> None:
    _same_both_ways(_retransmitted_fin_restarts_2msl, v6=True)


def _stray_segments(d: Dialogue, p: Played) -> None:
    r, local = d.REMOTE, d.local
    p.peer("A", seq=r + 2, ack=local + 2, tsval=6100)  # a pure ACK: nothing to say
    p.peer("A", seq=r + 2, ack=local + 2, tsval=100)  # PAWS: an old timestamp
    p.peer("A", seq=r + 2, ack=local + 50, tsval=6200)  # acknowledges the future
    p.peer("A", seq=r + 2, ack=local - 500_000, tsval=6300)  # far below: challenge
    p.peer("A", seq=r + 200_000, ack=local + 2, data=b"x", tsval=6400)  # out of window
    p.peer("A", seq=r - 100, ack=local + 2, data=b"old", tsval=6500)  # already had it
    p.peer("S", seq=r - 5000, tsval=6600)  # an old SYN: ACK
    p.peer("SA", seq=r + 2, ack=local + 2, tsval=6700)  # SYN on a synchronized one
    p.peer("R", seq=r + 9, ack=0)  # in window, not RCV.NXT: challenge ACK
    p.peer("P", seq=r + 2, data=b"no ack flag", tsval=6800)
    d.advance(100 * MS)
    p.peer("A", seq=r + 2, ack=local + 2, win=0, tsval=6900)  # a window update
    p.peer("R", seq=r + 2, ack=0)  # at RCV.NXT: ends it (tcp_rfc1337 = 0)
    p.peer("A", seq=r + 2, ack=local + 2, data=b"after", tsval=7000)  # RST from nobody


def test_stray_segments_match_the_whole_connection() -> None:
    played = _same_both_ways(_stray_segments)
    counters = dict(played.notes[-2][1])
    assert counters["tcp.drop.paws"] == 1
    assert counters["tcp.out_of_window"] >= 2


def test_stray_segments_without_timestamps() -> None:
    _same_both_ways(_stray_segments, timestamps=False)


def test_stray_segments_with_rfc1337() -> None:
    _same_both_ways(_stray_segments, config=TcpConfig(msl_ns=5 * SEC, rfc1337=True))


def _new_syn_reopens(d: Dialogue, p: Played) -> None:
    d.advance(1 * SEC)
    back = p.peer("S", seq=d.REMOTE + 100_000, tsval=9000)
    assert [int(s.flags) for s in back] == [0x12]  # the listener answers: SYN-ACK


def test_a_newer_syn_reopens_it_for_the_listener() -> None:
    played = _same_both_ways(_new_syn_reopens, passive=True)
    assert dict(played.notes[-2][1])["tcp.time_wait_reused"] == 1


def test_a_higher_sequence_syn_reopens_it_without_timestamps() -> None:
    _same_both_ways(_new_syn_reopens, passive=True, timestamps=False)


def _port_reuse(d: Dialogue, p: Played) -> None:
    port = d.local_port
    other = d.socket()
    with pytest.raises(OSError) as e:
        other.bind(d.addr(d.local_ip), port)  # TIME-WAIT holds the port
    assert e.value.errno == errno.EADDRINUSE
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind(d.addr(d.local_ip), port)  # unless SO_REUSEADDR
    with pytest.raises(OSError) as e:
        other.connect(d.addr(d.remote_ip), d.remote_port)  # the same 4-tuple
    assert e.value.errno == errno.EADDRNOTAVAIL
    other.close()
    d.advance(11 * SEC)
    d.socket().bind(d.addr(d.local_ip), port)  # TIME-WAIT over: free for anyone


def test_the_record_holds_its_port_as_linux_time_wait_does() -> None:
    # (a whole connection here would still have its open socket holding the port);
    # without timestamps, since with them connect() may reuse the 4-tuple (below)
    _play(_port_reuse, orphan=True, timestamps=False)


def _reconnect_bound(d: Dialogue, p: Played) -> None:
    port = d.local_port
    other = d.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind(d.addr(d.local_ip), port)
    other.connect(d.addr(d.remote_ip), d.remote_port)  # the TIME-WAIT gives way
    syn = d.expect(flags="S")
    # as Linux's tcp_twsk_unique: 65537 past the old connection's end (SYN + FIN)
    assert syn.seq == (d.local + 2 + 65537) & 0xFFFFFFFF
    p.notes.append(("reused", d.stack.counters["tcp.time_wait_reused"]))


def test_a_bound_connect_reuses_a_time_wait_with_timestamps_as_linux() -> None:
    """tests/stack/test_tcp_vs_linux.py compares it with the kernel (the whole
    connection's case); here the slim record's: the old socket is closed, so only
    the record holds the port."""
    played = _play(_reconnect_bound, orphan=True)
    assert ("reused", 1) in played.notes


def test_path_mtu_news_in_time_wait_is_counted_alike() -> None:
    def script(d: Dialogue, p: Played) -> None:
        last = Ether(bytes(d.segment("A", seq=d.local + 2, ack=d.REMOTE + 2,
                                     sport=d.local_port, dport=d.remote_port)))
        # an ICMP error quoting one of our segments (same 4-tuple, SND.UNA)
        quoted = last[TCP].underlayer
        assert quoted is not None
        quoted.src, quoted.dst = d.local_ip, d.remote_ip
        d.icmp_error_for(quoted[TCP], "frag", mtu=1200)
        d.icmp_error_for(quoted[TCP], "host")
        p.collect()

    played = _same_both_ways(script)
    assert dict(played.notes[-2][1])["tcp.pmtu_lowered"] == 1


def test_the_closed_sockets_connection_reads_closed_once_time_wait_ends() -> None:
    d = Dialogue(TcpConfig(msl_ns=5 * SEC))
    sock, _ = _into_time_wait(d, orphan=True, timestamps=True, passive=False)
    assert sock.conn is not None
    assert sock.conn.state == TcpState.TIME_WAIT
    d.advance(10 * SEC)
    assert sock.conn.state == TcpState.CLOSED
    assert not d.tcp.conns and not d.tcp.conns_by_port


def _connections_alive() -> int:
    return sum(1 for obj in gc.get_objects() if type(obj) is TcpConnection)


def test_a_dropped_closed_socket_frees_its_connection_without_the_collector() -> None:
    """The record reaches the connection only through the closed socket's handle
    (stack/weak_handle.py), in a chain without a cycle: once the application lets go
    of the socket, socket and connection are freed by their reference counts, on the
    compiled build too (whose connection takes no weak reference), and the record
    ends its TIME-WAIT as before with nothing left to mark."""
    d = Dialogue(TcpConfig(msl_ns=5 * SEC))
    gc.collect()
    before = _connections_alive()
    gc.disable()
    try:
        sock, _ = _into_time_wait(d, orphan=True, timestamps=True, passive=False)
        record = next(iter(d.tcp.conns.values()))
        assert isinstance(record, TimeWaitRecord)
        assert _connections_alive() == before + 1
        del sock
        assert _connections_alive() == before  # gone at once: no collection ran
        d.advance(10 * SEC)
        assert not d.tcp.conns and not d.tcp.conns_by_port
    finally:
        gc.enable()


def test_closing_a_socket_already_in_time_wait_slims_it() -> None:
    d = Dialogue(TcpConfig(msl_ns=5 * SEC))
    sock, _ = _into_time_wait(d, orphan=False, timestamps=True, passive=False)
    assert not isinstance(next(iter(d.tcp.conns.values())), TimeWaitRecord)
    sock.close()
    assert isinstance(next(iter(d.tcp.conns.values())), TimeWaitRecord)
    d.send("FA", seq=d.REMOTE + 1, ack=d.local + 2)
    d.expect(flags="A", seq=d.local + 2, ack=d.REMOTE + 2)
    d.advance(10 * SEC)
    assert not d.tcp.conns
    assert sock.conn is not None and sock.conn.state == TcpState.CLOSED
