"""TIME-WAIT without the connection: the slim record an orphaned connection becomes.

Why
---
A connection the application has closed spends 2*MSL (60 s) in TIME-WAIT after its
last ACK. As a whole `TcpConnection` it keeps some forty garbage-collected objects
alive that long (its congestion controller, SACK scoreboard, receive queue, RACK
lists, timer closures), and a client making thousands of connections a second keeps
hundreds of thousands of them: the collector then spends more time walking them than
the connections cost to run. Linux replaces the socket by a small
`inet_timewait_sock` at this point; `TimeWaitRecord` is that: the 4-tuple, the
sequence numbers, the timestamps and the window it answers with, and its expiry.

Rules
-----
- Only an orphaned connection (no socket: the application closed it) whose every
  other piece of state is settled becomes a record (`TimeWaitRecord.eligible`): no
  data queued either way, nothing in flight, no D-SACK to report, no ECN, no
  recovery, only the TIME-WAIT timer armed. Anything else stays a `TcpConnection`
  and behaves as before. A connection whose socket is still open stays whole too.
- A record answers every segment exactly as the connection it replaces would have
  in TIME-WAIT (`TcpConnection.segment_arrives` with state TIME_WAIT, followed
  step by step): PAWS, acceptability, a retransmitted FIN acknowledged with 2*MSL
  restarted, data or an old SYN answered with an ACK, RFC 5961 challenge ACKs, a
  RST ending it (unless `TcpConfig.rfc1337`), the same counters, the same bytes.
  The TCP layer decides whether a SYN reopens it (RFC 6191), as before.
- It takes over the connection's TIME-WAIT timer entry in the layer's
  `TcpTimerQueue` (the record is the entry's callback), so timers due at the same
  instant run in the same order as before.
- The replaced `TcpConnection` stays reachable from its closed socket only; a weak
  reference to the socket's handle on it (stack/weak_handle.py) lets the record mark
  it CLOSED when TIME-WAIT ends, as it would have marked itself, for as long as the
  socket is held; nothing keeps the connection alive or in a reference cycle.

Touches only its TCP layer's tables (`conns`, `conns_by_port`), its timer queue,
the stack's counters and the layer's IP output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .tcp_recovery import disordered_ack
from .tcp_tcb import (
    ACK,
    CLOSED,
    FIN,
    MASK,
    MS,
    RST,
    SYN,
    TIME_WAIT,
    effective_mss,
    unwrap,
)
from .weak_handle import target_of
from .wire import tcp as wire_tcp

if TYPE_CHECKING:
    from .host import OutputRoute
    from .socket_memory import SocketMemory
    from .tcp import TcpLayer
    from .tcp_connection import TcpConnection
    from .tcp_timer_queue import QueuedTimer


class TimeWaitRecord:
    """One 4-tuple in TIME-WAIT whose connection is gone (see the module docstring)."""

    __slots__ = (
        "adv_mss", "conn_ref", "due", "fin_seq", "key", "last_ack_sent", "layer", "local",
        "lport", "max_snd_wnd", "memory", "peer_mss", "pmtu_mss", "rcv_adv", "rcv_nxt",
        "remote", "rport", "rt", "rto_ns", "sendq_seq", "snd_max", "snd_nxt", "snd_una",
        "snd_wl1", "snd_wl2", "snd_wnd", "snd_wscale", "soft_error", "timer", "timer_at",
        "tos", "ts_enabled", "ts_offset", "ts_recent", "ttl", "window_field",
    )

    # what the layer's other paths read of a connection, constant for a record
    state = TIME_WAIT
    socket = None
    listener = None
    sendq = b""

    def __init__(self, conn: TcpConnection, memory: SocketMemory, window_field: int,
                 timer: QueuedTimer, due: int, timer_at: int) -> None:
        self.layer: TcpLayer = conn.layer
        self.key = conn.key
        self.local = conn.local
        self.lport = conn.lport
        self.remote = conn.remote
        self.rport = conn.rport
        self.rt: OutputRoute = conn.rt
        self.tos = conn.tos
        self.ttl = conn.ttl
        self.snd_una = conn.snd_una
        self.snd_nxt = conn.snd_nxt
        self.snd_max = conn.snd_max
        self.sendq_seq = conn.sendq_seq
        self.fin_seq = conn.fin_seq
        self.snd_wnd = conn.snd_wnd
        self.snd_wl1 = conn.snd_wl1
        self.snd_wl2 = conn.snd_wl2
        self.max_snd_wnd = conn.max_snd_wnd
        self.snd_wscale = conn.snd_wscale
        self.rcv_nxt = conn.rcv_nxt
        self.rcv_adv = conn.rcv_adv
        self.window_field = window_field
        self.ts_enabled = conn.ts_enabled
        self.ts_recent = conn.ts_recent
        self.ts_offset = conn.ts_offset
        self.last_ack_sent = conn.last_ack_sent
        self.rto_ns = conn.rto_ns
        self.peer_mss = conn.peer_mss
        self.adv_mss = conn.adv_mss
        self.pmtu_mss = conn.pmtu_mss
        self.soft_error = conn.soft_error
        self.memory = memory
        self.conn_ref = conn.handle  # weakly, through its closed socket (stack/weak_handle.py)
        self.timer: QueuedTimer | None = timer
        self.due = due
        self.timer_at = timer_at

    @staticmethod
    def eligible(conn: TcpConnection) -> bool:
        """Whether `conn` (in TIME-WAIT) may become a record without any change in what
        it would answer: orphaned, settled, and only its TIME-WAIT timer armed."""
        timers = conn._timers
        return (conn.socket is None and conn.listener is None and not conn.ecn_ok
                and not conn.rcv_buf and not conn.ooo.bytes and not len(conn.ooo)
                and conn.dsack_block is None and conn.snd_una == conn.snd_max
                and not conn.sendq and not conn.in_recovery and not conn.rexmits
                and not conn.rack_rexmit and conn.tx_head >= len(conn.tx_ends)
                and not conn.scoreboard.ranges
                and len(timers) == 1 and "timewait" in timers)

    # ------------------------------------------------------------------ helpers
    def _effective_mss(self) -> int:
        """As `TransmissionControlBlock._effective_mss`."""
        return effective_mss(self.peer_mss, self.adv_mss, self.pmtu_mss, self.ts_enabled)

    def _send_ack(self) -> None:
        """The ACK the connection's `_send_ack` would build in TIME-WAIT (no SACK block,
        no ECN: see `eligible`)."""
        layer = self.layer
        stack = layer.stack
        if self.ts_enabled:
            option_area = wire_tcp.timestamp_option_area(
                (layer.now() // MS + self.ts_offset) & MASK, self.ts_recent)
        else:
            option_area = b""
        rt = self.rt
        offload = stack.offload_output(rt.iface)
        segment = wire_tcp.build_segment(self.lport, self.rport, self.snd_max, self.rcv_nxt,
                                         ACK, self.window_field, option_area, b"", rt.src,
                                         self.remote, checksum=not offload)
        self.last_ack_sent = self.rcv_nxt
        layer.output(self, segment, 0, offload=offload, gso_size=0)

    def _send_challenge_ack(self) -> None:
        if self.layer.allow_challenge_ack():
            self._send_ack()

    def _restart(self) -> None:
        """2*MSL again (`TcpTimers._arm("timewait", ...)`: moving it later is lazy)."""
        when = self.layer.now() + 2 * self.layer.config.msl_ns
        timer = self.timer
        if timer is not None:
            if when >= self.timer_at:
                self.due = when
                return
            timer.cancel()
        self.due = when
        self.timer_at = when
        self.timer = self.layer.timer_queue.call_at(when, self)

    def __call__(self) -> None:
        """The timer entry fired (`TcpTimers._fire` for "timewait")."""
        driver = self.layer.stack.driver
        if self.due > driver.now_ns():  # restarted since it was armed
            self.timer_at = self.due
            self.timer = self.layer.timer_queue.call_at(self.due, self)
            return
        self.timer = None
        self.end()
        driver.wake()

    def end(self) -> None:
        """TIME-WAIT is over (expiry, a RST, a SYN reopening the 4-tuple)."""
        timer = self.timer
        if timer is not None:
            timer.cancel()
            self.timer = None
        layer = self.layer
        if layer.conns.get(self.key) is self:
            del layer.conns[self.key]
        group = layer.conns_by_port.get(self.lport)
        if group is not None:
            group.discard(self)
            if not group:
                del layer.conns_by_port[self.lport]
        conn = target_of(self.conn_ref)
        if conn is not None and conn.state == TIME_WAIT:
            conn.state = CLOSED  # what its own TIME-WAIT timer would have done
        layer.stack.driver.wake()

    def reusable(self, seg: wire_tcp.TcpPacket) -> bool:
        """`TcpLayer._time_wait_reusable`: a SYN that cannot be an old duplicate."""
        ts = seg.options.timestamp
        if self.ts_enabled and ts is not None:
            return ((ts[0] - self.ts_recent) & MASK) - 1 < 0x7FFFFFFF
        return unwrap(seg.seq, self.rcv_nxt) > self.rcv_nxt

    # ------------------------------------------------------------------ input
    def segment_arrives(self, seg: wire_tcp.TcpPacket) -> None:
        """`TcpConnection.segment_arrives` in TIME-WAIT, step by step."""
        counters = self.layer.stack.counters
        flags = seg.flags
        rcv_nxt = self.rcv_nxt
        seq = unwrap(seg.seq, rcv_nxt)
        payload_len = len(seg.buf) - seg.data_offset
        seg_len = payload_len + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        ts = seg.options.timestamp
        # PAWS (RFC 7323 §5.3)
        if self.ts_enabled and ts is not None and not flags & RST:
            tsval = ts[0]
            if self.ts_recent and ((tsval - self.ts_recent) & MASK) >= 0x80000000 and not (
                    disordered_ack(self, seg, seq, tsval, payload_len)):
                counters["tcp.drop.paws"] += 1
                self._send_ack()
                return
        # acceptability, with a window of at least one (as in TIME-WAIT)
        wnd = max(self.rcv_adv - rcv_nxt, 1)
        if seg_len == 0:
            acceptable = rcv_nxt <= seq < rcv_nxt + wnd
        else:
            acceptable = (rcv_nxt <= seq < rcv_nxt + wnd) or (
                rcv_nxt <= seq + seg_len - 1 < rcv_nxt + wnd) or (seq < rcv_nxt < seq + seg_len)
        if not acceptable:
            if not flags & RST:
                counters["tcp.out_of_window"] += 1
                self._send_ack()
                if flags & FIN and seq + seg_len == rcv_nxt:
                    self._restart()  # a retransmitted FIN: our last ACK was lost
            return
        if flags & RST:
            if seq == rcv_nxt:
                if not self.layer.config.rfc1337:
                    self.end()  # as Linux by default (net.ipv4.tcp_rfc1337 = 0)
            else:
                self._send_challenge_ack()
            return
        if flags & SYN:
            self._send_challenge_ack()
            return
        if not flags & ACK:
            return
        if self.ts_enabled and ts is not None and seq <= self.last_ack_sent and (
                (ts[0] - self.ts_recent) & MASK) < 0x80000000:
            self.ts_recent = ts[0]
        # `_process_ack` in TIME-WAIT: everything was acknowledged, nothing is in flight
        ack = unwrap(seg.ack, self.snd_una)
        if ack > self.snd_max:
            self._send_ack()
            return
        if ack < self.snd_una - max(self.max_snd_wnd, 1):
            self._send_challenge_ack()
            return
        if self.snd_wl1 < seq or (self.snd_wl1 == seq and self.snd_wl2 <= ack):
            window = seg.window << self.snd_wscale
            self.snd_wnd = window
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            self.max_snd_wnd = max(self.max_snd_wnd, window)
        if flags & FIN:
            self._send_ack()
            self._restart()
            return
        if payload_len:
            self._send_ack()  # data after the peer's FIN: nothing to take, say where we are
        self.layer.stack.driver.wake()

    def icmp_error(self, err: int, icmp_type: int, icmp_code: int, info: int,
                   frag_needed: bool) -> None:
        """`TcpConnection.icmp_error` in TIME-WAIT: only the path MTU and the soft error
        are noted (nothing is sent)."""
        if frag_needed and info:
            v4 = len(self.remote) == 4
            new_mss = max(info - (40 if v4 else 60), 536 if v4 else 1220)
            if self.pmtu_mss is None or new_mss < self.pmtu_mss:
                self.pmtu_mss = new_mss
                self.layer.stack.counters["tcp.pmtu_lowered"] += 1
            return
        self.soft_error = err
