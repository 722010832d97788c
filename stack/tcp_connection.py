"""One TCP connection: the RFC 9293 state machine with its buffers and timers.

Theory of operation
-------------------
Segments come in through `segment_arrives`, the application acts through
`send`/`recv`/`shutdown`/`close`, and time acts through timers the
connection arms on the stack's driver (retransmission/persist, delayed ACK,
keepalive, TIME_WAIT/FIN_WAIT_2). Everything goes out through `_transmit`,
which builds the segment and hands it to the stack's IP output.

Sequence numbers are *unwrapped*: inside the connection every sequence and
acknowledgment number is an unbounded Python int (ISS is a random 32-bit
value; 2**32 is never subtracted), and each 32-bit number from the wire is
unwrapped relative to a nearby reference (RCV.NXT for sequence numbers,
SND.UNA for acknowledgments). Window arithmetic is then plain integer
comparison. Only `_transmit` masks back to 32 bits.

Send side: `sendq` holds unacknowledged and unsent data starting at
`sendq_seq`; SND.UNA ≤ SND.NXT ≤ SND.MAX, where SND.NXT falls back to
SND.UNA after a retransmission timeout (go-back-N, skipping SACKed ranges).
How much may be in flight is min(cwnd - pipe, SND.UNA + SND.WND - SND.NXT);
cwnd comes from the congestion-control module (CUBIC by default, NewReno on
request) and pipe is RFC 6675's estimate when SACK is on, otherwise
SND.MAX - SND.UNA. Loss is detected by three duplicate ACKs or by RFC 6675's
IsLost on the SACK scoreboard; recovery retransmits holes (SACK) or the
segment at SND.UNA on each partial ACK (NewReno, RFC 6582). With SACK on, a
duplicate ACK counts only if it SACKs new data (RFC 6675 §2), so D-SACKs and
duplicated or reordered ACKs are not loss signals. The first two duplicate
ACKs each let one new segment out (Limited Transmit, RFC 3042). In SACK
recovery a retransmission counts as lost again once data sent after it is
SACKed more than DupThresh-1 segments beyond (the idea of Linux's RACK, by
sequence rather than time) and is resent without waiting for the RTO; at
5 % loss this removes most timeouts. Every data segment is cut
to the MSS less its options, SACK blocks included (as Linux's
tcp_current_mss), so a segment never outgrows the path. The retransmission
timer doubles as the persist timer: with nothing in flight and data held
back by the peer's window it probes a zero window (SND.UNA-1, no data, as
Linux) and uses a window too small for sender SWS avoidance (the override
timeout of RFC 9293 §3.8.6.2.1), so a lost window update never stalls the
connection. RTT comes from timestamps, else from one timed segment at a
time (Karn), and from the handshake unless the SYN was retransmitted (then
RTO restarts at 3 s, RFC 6298 §5.7). Giving up after tcp_retries2 or
TCP_USER_TIMEOUT sends no RST (as Linux's tcp_write_err); a keepalive
timeout does (as Linux). Pure ACKs and RSTs carry SND.MAX as their sequence
number, so they stay acceptable to the peer while SND.NXT is rewound.

Loss recovery beyond RFC 6675 (the section "loss recovery extensions"):
- D-SACK (RFC 2883): a segment that arrives again (below RCV.NXT, or over data
  already queued out of order; also when PAWS drops it, as Linux's
  tcp_send_dupack) is reported in the first SACK block of the next ACK,
  once. Received D-SACKs undo a spurious recovery (RFC 3708, as Linux's
  undo_retrans): every retransmission of a loss episode (fast recovery or
  RTO) is remembered, each D-SACK crosses one off, and when none is left
  the congestion state from before the episode comes back (`cc.undo`) and
  recovery ends. With timestamps, Eifel (RFC 3522, Linux's
  tcp_packet_delayed) does the same when the ACK covering the episode's
  retransmissions echoes a timestamp older than the first of them; after a
  spurious RTO sending resumes at SND.MAX instead of going back (RFC 4015).
- RACK (RFC 8985 §6): the send time of each original segment is kept (in
  send order, which is also sequence order) with the retransmissions'; a
  segment sent before the most recently sent delivered one is lost once
  RACK.rtt + reo_wnd have passed (reo_wnd = min RTT / 4, times a multiplier
  D-SACKs raise, or 0 before any reordering was seen in recovery or with
  DupThresh segments SACKed). The scoreboard's IsLost() honours it; a timer
  rechecks when the window runs out. TLP (§7): 2*SRTT (+2 ms, or +200 ms for
  a one-segment flight, as Linux) after the last send or ACK with data
  outstanding, one probe: new data if the windows allow, else the last
  segment again; its SACK lets RACK find the tail losses, so they recover
  without an RTO. A probe that repaired a loss reduces the window once.
- PRR (RFC 6937): in SACK recovery the window is pipe + sndcnt, recomputed on
  each ACK: proportional while pipe > ssthresh; at or below it, as Linux,
  max(prr_delivered - prr_out, what this ACK delivered), plus one segment
  (PRR-SSRB) when the ACK advanced SND.UNA and no retransmission was lost;
  whole segments, rounded up.
- Reordering (Linux's tp->reordering): when a hole fills without a
  retransmission, or an episode is undone, DupThresh grows to how many
  segments late the data came (at most 300), so the same reordering is not
  taken for a loss again; RACK's timer still finds real losses. RACK also
  judges retransmissions: one sent before a segment since delivered, and
  RACK.rtt + reo_wnd ago, is sent again.
- PAWS lets through a pure duplicate ACK at RCV.NXT whose timestamp is at most
  an RTO older than TS.Recent and that would not update the window (Linux's
  tcp_disordered_ack), so its SACK blocks count; TS.Recent never moves back.
- Rounds (the first ACK at or beyond the SND.MAX of the last round's start)
  are reported to the congestion control, with each ACK's RTT sample, for
  HyStart++ (RFC 9406, stack.congestion.hystart).

Receive side: in-order data goes to `rcv_buf` for the application; data
above RCV.NXT waits in the out-of-order queue (bounded by SO_RCVBUF) and is
reported with SACK blocks. The advertised window is the free buffer space,
never shrunk (RFC 9293 §3.8.6), with receiver silly-window avoidance, and
scaled by the negotiated shift (RFC 7323).

Robustness: PAWS on timestamps (RFC 7323 §5), RFC 5961 challenge ACKs for
in-window RSTs and for SYNs on synchronized connections, ACK acceptability
against the largest window seen, and RFC 9293's answers to out-of-window
segments. In SYN-RECEIVED a repeated SYN gets the SYN-ACK again, and the
peer's SYN-ACK of a simultaneous open completes the handshake (as Linux
accepts it). In TIME-WAIT a retransmitted FIN is acknowledged and restarts
2*MSL, other segments get an ACK, and a RST ends it as on Linux by default
(net.ipv4.tcp_rfc1337 = 0; `TcpConfig.rfc1337` ignores it instead); a new
SYN that cannot be an old duplicate reopens the 4-tuple (tcp.py). Errors
reach the application with Linux's errno values.

Touches only its stack (IP output, timers, the TCP layer's tables).
"""

from __future__ import annotations

import errno
import os
from bisect import bisect_left
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from .congestion import CongestionControl
from .congestion import make as make_congestion
from .tcp_sack import MAX_REORDERING, ReceiveQueue, SackScoreboard
from .wire import tcp as wire_tcp

if TYPE_CHECKING:
    from .driver import TimerHandle
    from .host import OutputRoute
    from .tcp import TcpLayer, TcpSocket

MASK = 0xFFFFFFFF
FIN = wire_tcp.FIN
SYN = wire_tcp.SYN
RST = wire_tcp.RST
PSH = wire_tcp.PSH
ACK = wire_tcp.ACK
ECE = wire_tcp.ECE
CWR = wire_tcp.CWR
ECT0 = 2  # the IP header's ECN field (RFC 3168 §5): ECN-Capable Transport(0)
ECN_CE = 3  # Congestion Experienced

MS = 1_000_000
SEC = 1_000_000_000
COOKIE_WSCALE = 7  # the window scale a SYN-cookie SYN-ACK announces


def unwrap(seq32: int, reference: int) -> int:
    """The unbounded sequence number closest to `reference` whose low 32 bits are seq32."""
    delta = (seq32 - reference) & MASK
    if delta >= 0x80000000:
        delta -= 0x100000000
    return reference + delta


class TcpState(Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


SYNCHRONIZED = frozenset({
    TcpState.ESTABLISHED, TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_2, TcpState.CLOSE_WAIT,
    TcpState.CLOSING, TcpState.LAST_ACK, TcpState.TIME_WAIT,
})
CAN_SEND = frozenset({TcpState.ESTABLISHED, TcpState.CLOSE_WAIT})
SENDS_DATA = frozenset({TcpState.ESTABLISHED, TcpState.CLOSE_WAIT, TcpState.FIN_WAIT_1,
                        TcpState.CLOSING, TcpState.LAST_ACK})
RECEIVES_DATA = frozenset({TcpState.ESTABLISHED, TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_2})


@dataclass
class TcpConfig:
    """Per-stack TCP settings (Linux sysctl names in comments)."""

    msl_ns: int = 30 * SEC  # TIME_WAIT lasts 2*MSL = 60 s, as Linux
    rto_initial_ns: int = 1 * SEC  # RFC 6298 (2.1)
    rto_min_ns: int = 200 * MS  # Linux TCP_RTO_MIN (RFC 6298 says 1 s; Linux and we use 200 ms)
    rto_max_ns: int = 120 * SEC  # TCP_RTO_MAX
    syn_retries: int = 6  # tcp_syn_retries
    synack_retries: int = 5  # tcp_synack_retries
    retries2: int = 15  # tcp_retries2
    orphan_fin_timeout_ns: int = 60 * SEC  # tcp_fin_timeout
    delayed_ack_ns: int = 40 * MS  # Linux's minimum delayed-ACK time
    quickack_segments: int = 16
    timestamps: bool = True  # tcp_timestamps
    sack: bool = True  # tcp_sack
    window_scaling: bool = True  # tcp_window_scaling
    rmem_default: int = 131072  # tcp_rmem[1]
    wmem_default: int = 16384 * 8  # tcp_wmem[1] (Linux 16 KiB, auto-tuned up; we start larger)
    buffer_max: int = 16 * 1024 * 1024
    keepalive_time_ns: int = 7200 * SEC  # tcp_keepalive_time
    keepalive_intvl_ns: int = 75 * SEC
    keepalive_probes: int = 9
    congestion: str = "cubic"  # tcp_congestion_control
    syncookies: bool = True  # tcp_syncookies = 1: only when the SYN queue overflows
    max_syn_backlog: int = 256
    challenge_ack_limit: int = 1000  # per second, per stack
    rfc1337: bool = False  # tcp_rfc1337: True ignores RSTs in TIME-WAIT (Linux default: no)
    ecn: int = 2  # tcp_ecn: 0 off, 1 request ECN on outgoing SYNs and accept, 2 accept only


class TcpConnection:
    """A connection from SYN to CLOSED (or TIME_WAIT's end)."""

    def __init__(self, layer: TcpLayer, family: int, local: bytes, lport: int, remote: bytes,
                 rport: int, rt: OutputRoute, iss: int) -> None:
        self.layer = layer
        self.stack = layer.stack
        self.config: TcpConfig = layer.config
        self.family = family
        self.local = local
        self.lport = lport
        self.remote = remote
        self.rport = rport
        self.rt = rt
        self.state = TcpState.CLOSED
        self.socket: TcpSocket | None = None  # None while queued in a listener or orphaned
        self.listener: Any = None  # the TcpListener that made us (SYN_RECEIVED children)
        self.accepted = False
        # send sequence space
        self.iss = iss
        self.snd_una = iss
        self.snd_nxt = iss
        self.snd_max = iss
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self.sendq = bytearray()
        self.sendq_seq = iss + 1
        self.sndbuf = self.config.wmem_default
        self.fin_queued = False
        self.fin_seq: int | None = None
        # receive sequence space
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0
        self.rcv_buf = bytearray()
        self.rcvbuf = self.config.rmem_default
        self.ooo = ReceiveQueue()
        self.fin_received = False
        self.shut_rd = False
        # options
        self.ts_enabled = False
        self.ts_recent = 0
        self.ts_offset = layer.rng.getrandbits(32)
        self.last_ack_sent = 0
        self.sack_enabled = False
        self.snd_wscale = 0
        self.rcv_wscale = 0
        self.peer_mss = 536 if family == 2 else 1220
        self.adv_mss = self._mss_for_mtu(rt.iface.mtu)
        self.pmtu_mss: int | None = None
        self.mss = min(self.peer_mss, self.adv_mss)
        self.nodelay = False
        self.keepalive = False
        self.keepalive_time_ns = self.config.keepalive_time_ns
        self.keepalive_intvl_ns = self.config.keepalive_intvl_ns
        self.keepalive_probes = self.config.keepalive_probes
        self.linger: tuple[bool, int] = (False, 0)
        self.user_timeout_ns = 0
        self.ttl: int | None = None
        self.tos = 0
        # ECN (RFC 3168): see _ecn_* below
        self.ecn_ok = False  # negotiated on the handshake
        self.ecn_requested = False  # our SYN asked for it (ECE|CWR)
        self.ecn_demand_cwr = False  # a CE arrived: ECE on every segment until the peer's CWR
        self.ecn_queue_cwr = False  # cwnd was reduced: CWR on the next new data segment
        self.ecn_cwr_high = iss  # no second reduction for ECE before SND.UNA passes this
        self.ecn_episode = (iss, 0)  # the last loss episode (recover, timeouts) CWR announced
        self.ip_ecn_in = 0  # the ECN field of the IP packet that carried the segment arriving
        # congestion control and loss recovery
        self.cc: CongestionControl = make_congestion(self.config.congestion, self.mss)
        self.scoreboard = SackScoreboard()
        self.in_recovery = False
        self.recover = iss
        self.high_rxt = iss
        self.dupacks = 0
        self.recovery_inflation = 0
        self.limited_transmit = 0  # RFC 3042: new data allowed past cwnd on dupACKs 1 and 2
        # SACK recovery: retransmitted ranges -> SND.MAX when sent, to notice them lost again
        self.rexmits: dict[int, tuple[int, int]] = {}
        self.lost_again: list[tuple[int, int]] = []
        self._init_recovery_extensions()
        # RTT and retransmission
        self.srtt_ns: int | None = None
        self.rttvar_ns = 0
        self.rto_ns = self.config.rto_initial_ns
        self.backoff = 0
        self.retries = 0
        self.rtt_seq: int | None = None
        self.rtt_sent_ns = 0
        self.first_unacked_sent_ns = 0
        self.syn_sent_ns = 0
        # delayed ACK
        self.ack_pending = 0
        self.quickack = self.config.quickack_segments
        # keepalive
        self.last_heard_ns = 0
        self.keepalive_sent = 0
        # errors
        self.error = 0  # pending SO_ERROR / returned once by recv/send
        self.soft_error = 0
        self.reset_received = False
        self.orphaned = False
        # timers
        self._timers: dict[str, TimerHandle] = {}
        self._timer_due: dict[str, int] = {}
        # statistics
        self.stats: dict[str, int] = {"segments_in": 0, "segments_out": 0, "retransmits": 0,
                                      "fast_retransmits": 0, "timeouts": 0, "dupacks_in": 0,
                                      "bytes_acked": 0, "bytes_received": 0,
                                      "challenge_acks": 0, "ooo_segments": 0,
                                      "lost_retransmits": 0, "dsacks_sent": 0, "dsacks_in": 0,
                                      "undos": 0, "tlp_probes": 0, "rack_recoveries": 0,
                                      "reordering": 3}

    # ------------------------------------------------------------------ helpers
    @property
    def key(self) -> tuple[bytes, int, bytes, int]:
        return (self.local, self.lport, self.remote, self.rport)

    def _mss_for_mtu(self, mtu: int) -> int:
        overhead = 40 if len(self.remote) == 4 else 60
        return max(536 if len(self.remote) == 4 else 1220, min(mtu - overhead, 65495))

    def now(self) -> int:
        return self.stack.driver.now_ns()

    def _ts_now(self) -> int:
        return (self.now() // MS + self.ts_offset) & MASK

    def _effective_mss(self) -> int:
        """Payload bytes per segment: the smaller MSS less the timestamp option."""
        mss = min(self.peer_mss, self.adv_mss)
        if self.pmtu_mss is not None:
            mss = min(mss, self.pmtu_mss)
        if self.ts_enabled:
            mss -= 12
        return max(mss, 64)

    def _arm(self, kind: str, delay_ns: int) -> None:
        when = self.now() + delay_ns
        old = self._timers.get(kind)
        if old is not None:
            if self._timer_due.get(kind) == when:
                return
            old.cancel()
        self._timer_due[kind] = when
        self._timers[kind] = self.stack.driver.call_at(when, lambda: self._fire(kind))

    def _cancel(self, kind: str) -> None:
        timer = self._timers.pop(kind, None)
        self._timer_due.pop(kind, None)
        if timer is not None:
            timer.cancel()

    def _cancel_all(self) -> None:
        for kind in list(self._timers):
            self._cancel(kind)

    def _fire(self, kind: str) -> None:
        self._timers.pop(kind, None)
        self._timer_due.pop(kind, None)
        if kind == "rtx":
            self._on_retransmit_timer()
        elif kind == "tlp":
            self._on_tlp_timer()
            return  # only sends: no readiness changes
        elif kind == "rack":
            self._on_rack_timer()
            return
        elif kind == "dack":
            if self.ack_pending:
                self._send_ack()
        elif kind == "keepalive":
            self._on_keepalive_timer()
        elif kind == "timewait":
            self._set_closed()
        elif kind == "fin_wait_2":
            self._abort(0, send_rst=False)
        self._wake()

    def _wake(self) -> None:
        self.stack.driver.wake()

    def _set_state(self, state: TcpState) -> None:
        self.state = state
        self.layer.on_state_change(self)

    # ------------------------------------------------------------------ output
    def _advertise_window(self) -> int:
        """The window to advertise now (bytes, before scaling); never shrinks the right edge."""
        used = len(self.rcv_buf) + self.ooo.bytes
        free = max(0, self.rcvbuf - used)
        if self.shut_rd:
            free = max(free, self.rcvbuf)
        right = self.rcv_nxt + free
        current = self.rcv_adv - self.rcv_nxt
        if current > 0 and right - self.rcv_adv < min(self.rcvbuf // 2, self.adv_mss):
            right = self.rcv_adv  # receiver SWS avoidance: hold the old edge
        right = max(right, self.rcv_adv)
        window = right - self.rcv_nxt
        # the scaled field cannot say every byte count: round up (as Linux), since rounding
        # down would pull the right edge back below RCV.ADV, i.e. shrink the window
        step = (1 << self.rcv_wscale) - 1
        return min((window + step) & ~step, 0xFFFF << self.rcv_wscale)

    def _syn_options(self, peer: wire_tcp.TcpOptions | None) -> wire_tcp.TcpOptions:
        cfg = self.config
        want_ts = cfg.timestamps and (peer is None or peer.timestamp is not None)
        want_sack = cfg.sack and (peer is None or peer.sack_permitted)
        want_ws = cfg.window_scaling and (peer is None or peer.wscale is not None)
        return wire_tcp.TcpOptions(
            mss=self.adv_mss,
            wscale=self.rcv_wscale if want_ws else None,
            sack_permitted=want_sack,
            timestamp=(self._ts_now(), self.ts_recent if peer is not None else 0)
            if want_ts else None,
        )

    def _data_options(self) -> wire_tcp.TcpOptions:
        """Options of a non-SYN segment now: timestamps, and SACK blocks while data is queued
        out of order (most recent first, RFC 2018 §4)."""
        if self.sack_enabled and (len(self.ooo) or self.dsack_block is not None):
            count = 3 if self.ts_enabled else 4
            blocks = tuple((s & MASK, e & MASK)
                           for s, e in self._sack_blocks_to_send(count))
            return wire_tcp.TcpOptions(
                timestamp=(self._ts_now(), self.ts_recent) if self.ts_enabled else None,
                sack_blocks=blocks)
        if self.ts_enabled:
            return wire_tcp.TcpOptions(timestamp=(self._ts_now(), self.ts_recent))
        return wire_tcp.NO_OPTIONS

    def _transmit(self, seq: int, flags: int, payload: bytes | bytearray | memoryview = b"",
                  options: wire_tcp.TcpOptions | None = None) -> None:
        ack = self.rcv_nxt if flags & ACK else 0
        if options is None:
            options = self._data_options()
        if flags & SYN:
            window = min(self._advertise_window(), 0xFFFF)
            self.rcv_adv = max(self.rcv_adv, self.rcv_nxt + window)
        else:
            window = self._advertise_window()
            self.rcv_adv = max(self.rcv_adv, self.rcv_nxt + window)
            window >>= self.rcv_wscale
        ecn = 0
        if self.ecn_ok and not flags & (SYN | RST):
            flags, ecn = self._ecn_mark(seq, flags, len(payload))
        header = wire_tcp.TcpRepr(self.lport, self.rport, seq & MASK, ack & MASK, flags,
                                  window, 0, options)
        segment = header.build(payload, self.rt.src, self.remote)
        if flags & ACK:
            self.last_ack_sent = self.rcv_nxt
            self.ack_pending = 0
            self._cancel("dack")
        self.stats["segments_out"] += 1
        self.layer.output(self, segment, ecn)

    def _send_ack(self) -> None:
        # SND.MAX, not SND.NXT: after a timeout SND.NXT falls back to SND.UNA, and the
        # peer, which may hold more than we know, would find that sequence number below
        # its RCV.NXT and drop the ACK unread; with both ends retransmitting that deadlocks
        self._transmit(self.snd_max, ACK)

    def _send_challenge_ack(self) -> None:
        if self.layer.allow_challenge_ack():
            self.stats["challenge_acks"] += 1
            self._send_ack()

    def _send_syn(self) -> None:
        if self.retries == 0:
            self.syn_sent_ns = self.now()  # for the handshake's RTT sample (Karn: first only)
        flags = SYN | (ACK if self.state == TcpState.SYN_RECEIVED else 0)
        flags |= self._ecn_syn_flags()
        peer = self._peer_syn_options if self.state == TcpState.SYN_RECEIVED else None
        self._transmit(self.iss, flags, b"", self._syn_options(peer))
        self.snd_nxt = max(self.snd_nxt, self.iss + 1)
        self.snd_max = max(self.snd_max, self.snd_nxt)

    _peer_syn_options: wire_tcp.TcpOptions | None = None
    _persist_force = False  # the persist timer fired: send into a small window once

    def _pipe(self) -> int:
        if self.sack_enabled and self.in_recovery:
            return self.scoreboard.pipe(self.snd_una, self.snd_max, self.high_rxt,
                                        self._effective_mss())
        return self.snd_max - self.snd_una if self.snd_nxt >= self.snd_max else (
            self.snd_nxt - self.snd_una)

    def _output(self) -> None:
        """Send whatever the windows, Nagle and the state allow."""
        if self.state not in SENDS_DATA:
            return
        mss = self._effective_mss()
        cwnd = (self.prr_cwnd if self.in_recovery and self.sack_enabled else self.cc.cwnd) + (
            self.recovery_inflation + self.limited_transmit)
        sent_any = False
        # RFC 6675 loss recovery: retransmit holes first (those whose retransmission was
        # lost too before the rest)
        if self.sack_enabled and self.in_recovery:
            while True:
                pipe = self._pipe()
                if cwnd - pipe < mss and pipe > 0:
                    break
                if self.lost_again:
                    start, end = self.lost_again.pop(0)
                    start = max(start, self.snd_una)
                    if end <= start:
                        continue
                    sent = self._send_data(start, end - start, retransmit=True)
                    self.rexmits[start] = (start + sent, self.snd_max)
                    if start + sent < end:  # cut short by SACK blocks: the rest is next
                        self.lost_again.insert(0, (start + sent, end))
                    sent_any = True
                    continue
                hole = self.scoreboard.next_hole(max(self.high_rxt, self.snd_una),
                                                 self.snd_max, mss)
                if hole is None:
                    break
                start, end = hole
                sent = self._send_data(start, end - start, retransmit=True)
                self.rexmits[start] = (start + sent, self.snd_max)
                self.high_rxt = start + sent
                sent_any = True
        while True:
            data_end = self.sendq_seq + len(self.sendq)
            if self.snd_nxt < self.snd_max and self.scoreboard.ranges:
                # after an RTO: skip what the peer already holds
                for s, e in self.scoreboard.ranges:
                    if s <= self.snd_nxt < e:
                        self.snd_nxt = e
            available = data_end - self.snd_nxt
            in_flight = self._pipe() if self.in_recovery and self.sack_enabled else (
                self.snd_nxt - self.snd_una)
            cwnd_room = cwnd - in_flight
            wnd_room = self.snd_una + self.snd_wnd - self.snd_nxt
            room = min(cwnd_room, wnd_room)
            fin_now = (self.fin_queued and self.fin_seq is None) or (
                self.fin_seq is not None and self.snd_nxt <= self.fin_seq
                and self.snd_nxt >= data_end)
            if available <= 0:
                if fin_now and (self.snd_nxt >= data_end) and cwnd_room > 0:
                    self._send_fin(data_end)
                    sent_any = True
                break
            if room <= 0:
                if self.snd_wnd == 0 or wnd_room <= 0:
                    if self.snd_una == self.snd_max:
                        self._arm_persist()
                break
            length = min(mss, available, room)
            retransmitting = self.snd_nxt < self.snd_max
            if length < mss and not retransmitting and not self._persist_force:
                more_coming = available > length
                if more_coming and length < self.max_snd_wnd // 2:
                    if self.snd_una == self.snd_max:
                        self._arm_persist()  # the window update that would free us may be lost
                    break  # sender SWS avoidance: wait for a usable window
                if (not self.nodelay and self.snd_nxt > self.snd_una and not
                        (self.fin_queued and not more_coming)):
                    break  # Nagle: one small segment in flight at a time
            with_fin = self.fin_queued and self.snd_nxt + length == data_end and (
                self.fin_seq is None or self.fin_seq == data_end)
            self._persist_force = False
            sent = self._send_data(self.snd_nxt, length, retransmit=retransmitting, fin=with_fin)
            if sent < length:
                with_fin = False
            self.snd_nxt += sent + (1 if with_fin else 0)
            if with_fin:
                self._fin_sent(data_end)
            self.snd_max = max(self.snd_max, self.snd_nxt)
            sent_any = True
        if sent_any and "rtx" not in self._timers:
            self._arm("rtx", self.rto_ns)
        if sent_any:
            self._arm_tlp()
        if self.snd_una != self.snd_max:
            self._cancel("persist")

    def _send_data(self, seq: int, length: int, retransmit: bool, fin: bool = False) -> int:
        """Send [seq, seq+length) from the send queue; returns the bytes actually sent.

        SACK blocks in the options take room from the payload (as Linux's
        tcp_current_mss), so a segment never outgrows the MSS the peer and
        the path allow: the payload is shortened (and a FIN then waits).
        """
        options = self._data_options()
        room = self._effective_mss()
        if options.sack_blocks:
            room -= 4 + 8 * min(len(options.sack_blocks), 3 if self.ts_enabled else 4)
        if length > room:
            length = room
            fin = False
        offset = seq - self.sendq_seq
        payload = self.sendq[offset: offset + length]
        flags = ACK | (PSH if seq + length >= self.sendq_seq + len(self.sendq) else 0)
        if fin:
            flags |= FIN
        now = self.now()
        if retransmit:
            self.stats["retransmits"] += 1
            if self.rtt_seq is not None and seq <= self.rtt_seq:
                self.rtt_seq = None  # Karn: no sample from a retransmitted range
        elif self.rtt_seq is None and not self.ts_enabled:
            self.rtt_seq = seq + length
            self.rtt_sent_ns = now
        if self.snd_una == self.snd_max or self.first_unacked_sent_ns == 0:
            self.first_unacked_sent_ns = now
        self._note_sent(seq, length, retransmit, now)
        self._transmit(seq, flags, payload, options)
        return length

    def _send_fin(self, data_end: int) -> None:
        self._transmit(data_end, FIN | ACK)
        if self.fin_seq is None or self.snd_nxt <= data_end:
            self.snd_nxt = data_end + 1
        self._fin_sent(data_end)
        self.snd_max = max(self.snd_max, self.snd_nxt)

    def _fin_sent(self, data_end: int) -> None:
        if self.fin_seq is None:
            self.fin_seq = data_end
            if self.state == TcpState.ESTABLISHED:
                self._set_state(TcpState.FIN_WAIT_1)
            elif self.state == TcpState.CLOSE_WAIT:
                self._set_state(TcpState.LAST_ACK)

    def _arm_persist(self) -> None:
        if "persist" in self._timers or "rtx" in self._timers:
            return
        delay = min(self.rto_ns << min(self.backoff, 16), self.config.rto_max_ns)
        self._arm("rtx", delay)  # the retransmission timer doubles as the persist timer

    # ------------------------------------------------------------------ timers
    def _on_retransmit_timer(self) -> None:
        state = self.state
        cfg = self.config
        if state == TcpState.SYN_SENT:
            self.retries += 1
            if self.retries > cfg.syn_retries:
                self._abort(self.soft_error or errno.ETIMEDOUT, send_rst=False)
                return
            self.rto_ns = min(self.rto_ns * 2, cfg.rto_max_ns)
            self.stats["retransmits"] += 1
            self._send_syn()
            self._arm("rtx", self.rto_ns)
            return
        if state == TcpState.SYN_RECEIVED:
            self.retries += 1
            if self.retries > cfg.synack_retries:
                self._abort(errno.ETIMEDOUT, send_rst=False)
                return
            self.rto_ns = min(self.rto_ns * 2, cfg.rto_max_ns)
            self.stats["retransmits"] += 1
            self._send_syn()
            self._arm("rtx", self.rto_ns)
            return
        if state not in SENDS_DATA and state not in (TcpState.FIN_WAIT_2,):
            return
        outstanding = self.snd_max > self.snd_una
        if not outstanding:
            # the persist timer (RFC 9293 §3.8.6.1): nothing in flight, data held back by
            # the peer's window. A window too small to use (sender SWS avoidance) is used
            # now, as the SWS override timeout says; a zero window is probed.
            data_waiting = self.sendq_seq + len(self.sendq) > self.snd_nxt
            if data_waiting and self.snd_una + self.snd_wnd > self.snd_nxt:
                self._persist_force = True
                self._output()
                self._persist_force = False
                if self.snd_una == self.snd_max:
                    self._arm_persist()
            elif data_waiting:
                self._zero_window_probe()
            return
        now = self.now()
        self.retries += 1
        # giving up sends no RST, as Linux's tcp_write_err (the peer is unreachable anyway)
        if self.user_timeout_ns and now - self.first_unacked_sent_ns >= self.user_timeout_ns:
            self._abort(errno.ETIMEDOUT, send_rst=False)
            return
        if not self.user_timeout_ns and self.retries > cfg.retries2:
            self._abort(self.soft_error or errno.ETIMEDOUT, send_rst=False)
            return
        self.stats["timeouts"] += 1
        self._begin_loss_episode(timeout=True)
        self.cc.on_timeout(now, self.snd_max - self.snd_una)
        self.in_recovery = False
        self.recovery_inflation = 0
        self.limited_transmit = 0
        self.rexmits.clear()
        self.lost_again.clear()
        self.dupacks = 0
        self.snd_nxt = self.snd_una
        self.high_rxt = self.snd_una
        self.rtt_seq = None
        self.backoff += 1
        self.rto_ns = min(self.rto_ns * 2, cfg.rto_max_ns)
        if self.snd_nxt == self.fin_seq and self.sendq_seq + len(self.sendq) == self.fin_seq:
            self.stats["retransmits"] += 1
            self._send_fin(self.fin_seq)
        else:
            self._output()
        self._arm("rtx", self.rto_ns)

    def _zero_window_probe(self) -> None:
        """Persist: elicit an ACK carrying the peer's window (Linux: seq SND.UNA-1, no data)."""
        self.backoff += 1
        self._transmit(self.snd_una - 1, ACK)
        delay = min(self.rto_ns << min(self.backoff, 16), self.config.rto_max_ns)
        self._arm("rtx", delay)

    def _on_keepalive_timer(self) -> None:
        if not self.keepalive or self.state not in SYNCHRONIZED - {TcpState.TIME_WAIT}:
            return
        now = self.now()
        idle = now - self.last_heard_ns
        if self.keepalive_sent and idle < self.keepalive_intvl_ns * self.keepalive_sent:
            self.keepalive_sent = 0
        if idle >= self.keepalive_time_ns:
            if self.keepalive_sent >= self.keepalive_probes:
                self._abort(errno.ETIMEDOUT, send_rst=True)
                return
            self.keepalive_sent += 1
            self._transmit(self.snd_una - 1, ACK)
            self._arm("keepalive", self.keepalive_intvl_ns)
        else:
            self._arm("keepalive", self.keepalive_time_ns - idle)

    def start_keepalive(self) -> None:
        if self.keepalive and self.state in SYNCHRONIZED:
            self.keepalive_sent = 0
            self._arm("keepalive", self.keepalive_time_ns)
        elif not self.keepalive:
            self._cancel("keepalive")

    # ------------------------------------------------------------------ RTT
    def _handshake_rtt(self) -> None:
        """The handshake completed: sample its RTT unless the SYN was retransmitted (Karn),
        in which case RTO restarts from 3 s (RFC 6298 §5.7)."""
        if self.retries == 0:
            self._rtt_sample(self.now() - self.syn_sent_ns)
        else:
            self.rto_ns = max(3 * SEC, self.config.rto_min_ns)
        self.retries = 0
        self.backoff = 0

    def _rtt_sample(self, rtt_ns: int) -> None:
        rtt_ns = max(rtt_ns, 1)
        self.rtt_sample_ns = rtt_ns
        if self.min_rtt_ns is None or rtt_ns < self.min_rtt_ns:
            self.min_rtt_ns = rtt_ns
        if self.srtt_ns is None:
            self.srtt_ns = rtt_ns
            self.rttvar_ns = rtt_ns // 2
        else:
            delta = abs(self.srtt_ns - rtt_ns)
            self.rttvar_ns = (3 * self.rttvar_ns + delta) // 4
            self.srtt_ns = (7 * self.srtt_ns + rtt_ns) // 8
        rto = self.srtt_ns + max(MS, 4 * self.rttvar_ns)
        self.rto_ns = min(max(rto, self.config.rto_min_ns), self.config.rto_max_ns)

    # ------------------------------------------------------------------ opening
    def open_active(self) -> None:
        """connect(): send SYN."""
        cfg = self.config
        self.rcv_wscale = self._choose_wscale() if cfg.window_scaling else 0
        self._set_state(TcpState.SYN_SENT)
        self._send_syn()
        self._arm("rtx", self.rto_ns)

    def _choose_wscale(self) -> int:
        shift = 0
        while (0xFFFF << shift) < max(self.rcvbuf, self.config.rmem_default * 4) and shift < 14:
            shift += 1
        return shift

    def open_passive(self, syn: wire_tcp.TcpPacket, syn_seq: int) -> None:
        """A listener got a SYN: become SYN-RECEIVED and answer SYN-ACK."""
        self.irs = syn_seq
        self.rcv_nxt = syn_seq + 1
        self.rcv_adv = self.rcv_nxt
        self._negotiate(syn.options)
        self._peer_syn_options = syn.options
        self.snd_wnd = syn.window  # never scaled in a SYN
        self.snd_wl1 = syn_seq
        self.snd_wl2 = self.iss
        self.max_snd_wnd = self.snd_wnd
        self.last_heard_ns = self.now()
        self._set_state(TcpState.SYN_RECEIVED)
        self._send_syn()
        self._arm("rtx", self.rto_ns)

    def open_from_cookie(self, ack_seg: wire_tcp.TcpPacket, seq: int, mss: int,
                         wscale: int | None, sack: bool) -> None:
        """A valid SYN-cookie ACK: go straight to ESTABLISHED."""
        self.irs = seq - 1
        self.rcv_nxt = seq
        # the cookie's SYN-ACK offered 65535 bytes: data riding on this ACK (a client's
        # retransmission after its first ACK found the accept queue full) is in window
        self.rcv_adv = self.rcv_nxt + 0xFFFF
        self.peer_mss = mss
        if wscale is not None and self.config.window_scaling:
            self.snd_wscale = min(wscale, 14)
            self.rcv_wscale = COOKIE_WSCALE  # what the cookie's SYN-ACK announced
        self.sack_enabled = sack and self.config.sack
        if ack_seg.options.timestamp is not None and self.config.timestamps:
            self.ts_enabled = True
            self.ts_recent = ack_seg.options.timestamp[0]
        self.snd_una = self.snd_nxt = self.snd_max = self.iss + 1
        self.sendq_seq = self.iss + 1
        self.snd_wnd = ack_seg.window << self.snd_wscale
        self.snd_wl1 = seq
        self.snd_wl2 = self.snd_una
        self.max_snd_wnd = self.snd_wnd
        self.cc.set_mss(self._effective_mss())
        self.last_heard_ns = self.now()
        self._set_state(TcpState.ESTABLISHED)

    def _negotiate(self, peer: wire_tcp.TcpOptions) -> None:
        cfg = self.config
        if peer.mss:
            self.peer_mss = max(64, peer.mss)
        if peer.wscale is not None and cfg.window_scaling:
            self.snd_wscale = min(peer.wscale, 14)
            if self.state != TcpState.SYN_SENT:
                self.rcv_wscale = self._choose_wscale()
        else:
            self.snd_wscale = 0
            self.rcv_wscale = 0
        self.sack_enabled = peer.sack_permitted and cfg.sack
        if peer.timestamp is not None and cfg.timestamps:
            self.ts_enabled = True
            self.ts_recent = peer.timestamp[0]
        else:
            self.ts_enabled = False
        self.cc.set_mss(self._effective_mss())

    # ------------------------------------------------------------------ input
    def segment_arrives(self, seg: wire_tcp.TcpPacket) -> None:
        self.stats["segments_in"] += 1
        state = self.state
        if state == TcpState.SYN_SENT:
            self._syn_sent_arrives(seg)
            return
        flags = seg.flags
        seq = unwrap(seg.seq, self.rcv_nxt)
        payload = seg.payload
        seg_len = len(payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        opts = seg.options
        # PAWS (RFC 7323 §5.3)
        if self.ts_enabled and opts.timestamp is not None and not flags & RST:
            tsval = opts.timestamp[0]
            if self.ts_recent and ((tsval - self.ts_recent) & MASK) >= 0x80000000 and not (
                    self._disordered_ack(seg, seq, tsval)):
                self.layer.stack.counters["tcp.drop.paws"] += 1
                self._dsack_duplicate(seq, seq + seg_len)
                self._send_ack()
                return
        if state == TcpState.SYN_RECEIVED and flags & SYN and not flags & RST \
                and seq == self.irs:
            if not flags & ACK:
                self._send_syn()  # the peer retransmitted its SYN: SYN-ACK again
                return
            # simultaneous open: the peer's SYN-ACK repeats its SYN and acknowledges ours;
            # take it as the ACK that completes the handshake (as Linux does)
            self._syn_ack_in_syn_received(seg, seq)
            return
        # sequence acceptability (RFC 9293 §3.10.7.4)
        wnd = self.rcv_adv - self.rcv_nxt
        if state == TcpState.SYN_RECEIVED or state == TcpState.TIME_WAIT:
            wnd = max(wnd, 1)
        acceptable = self._acceptable(seq, seg_len, wnd)
        if not acceptable:
            if not flags & RST:
                self.layer.stack.counters["tcp.out_of_window"] += 1
                self._dsack_duplicate(seq, seq + seg_len)
                self._send_ack()
                if state == TcpState.TIME_WAIT and flags & FIN and seq + seg_len == self.rcv_nxt:
                    # a retransmitted FIN: our last ACK was lost; restart 2*MSL (RFC 9293)
                    self._arm("timewait", 2 * self.config.msl_ns)
            return
        # RST (RFC 5961 §3)
        if flags & RST:
            if seq == self.rcv_nxt:
                self._rst_received()
            else:
                self._send_challenge_ack()
            return
        # SYN on a synchronized connection (RFC 5961 §4)
        if flags & SYN:
            self._send_challenge_ack()
            return
        if not flags & ACK:
            return
        if self.ts_enabled and opts.timestamp is not None and seq <= self.last_ack_sent and (
                (opts.timestamp[0] - self.ts_recent) & MASK) < 0x80000000:
            self.ts_recent = opts.timestamp[0]  # never backwards (a disordered ACK's is older)
        self.last_heard_ns = self.now()
        self.keepalive_sent = 0
        outstanding = self.snd_max > self.snd_una
        if not self._process_ack(seg, seq):
            return
        if self.state == TcpState.CLOSED:
            return
        if flags & ECE and self.ecn_ok and outstanding:
            self._ecn_echo_arrives()
        if payload and self._abort_on_data_after_close(seg, seq):
            return
        if payload and self.ecn_ok:
            self._ecn_data_arrives(flags)
        if payload:
            if self.state in RECEIVES_DATA:
                self._receive_data(seq, payload, bool(flags & PSH))
            else:
                self._send_ack()  # data after the peer's FIN: nothing to take, say where we are
        if flags & FIN:
            self._fin_arrives(seq + len(payload))
        elif self.ack_pending and self.state in RECEIVES_DATA:
            self._maybe_delay_ack()
        self._output()
        self._wake()

    def _syn_ack_in_syn_received(self, seg: wire_tcp.TcpPacket, seq: int) -> None:
        ack = unwrap(seg.ack, self.snd_una)
        if not (self.snd_una < ack <= self.snd_max):
            self.layer.send_reset_for(self, seg)
            return
        if self._process_ack(seg, seq + 1) and self.state != TcpState.CLOSED:
            self.snd_wnd = seg.window  # a SYN's window is never scaled (RFC 7323 §2.2)
            self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
            self._output()
        self._wake()

    def _acceptable(self, seq: int, seg_len: int, wnd: int) -> bool:
        rcv_nxt = self.rcv_nxt
        if seg_len == 0:
            if wnd == 0:
                return seq == rcv_nxt
            return rcv_nxt <= seq < rcv_nxt + wnd
        if wnd == 0:
            return False
        return (rcv_nxt <= seq < rcv_nxt + wnd) or (
            rcv_nxt <= seq + seg_len - 1 < rcv_nxt + wnd) or (seq < rcv_nxt < seq + seg_len)

    def _syn_sent_arrives(self, seg: wire_tcp.TcpPacket) -> None:
        flags = seg.flags
        ack = unwrap(seg.ack, self.snd_una) if flags & ACK else None
        if ack is not None and (ack <= self.iss or ack > self.snd_max):
            if not flags & RST:
                self.layer.send_reset_for(self, seg)
            return
        if flags & RST:
            if ack is not None:
                self._abort(errno.ECONNREFUSED, send_rst=False)
            return
        if not flags & SYN:
            return
        seq = seg.seq
        self.irs = seq
        self.rcv_nxt = seq + 1
        self.rcv_adv = self.rcv_nxt
        self._negotiate(seg.options)
        self._ecn_negotiate_active(flags)
        self.last_heard_ns = self.now()
        if ack is not None:
            self.snd_una = ack
            self.sendq_seq = self.iss + 1
            self.snd_wnd = seg.window  # a SYN's window is never scaled (RFC 7323 §2.2)
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            self.max_snd_wnd = self.snd_wnd
            self._cancel("rtx")
            self._handshake_rtt()
            self._set_state(TcpState.ESTABLISHED)
            self._send_ack()
            self.start_keepalive()
            self._output()
        else:
            # simultaneous open
            self._peer_syn_options = seg.options
            self.snd_wnd = seg.window
            self.snd_wl1 = seq
            self._set_state(TcpState.SYN_RECEIVED)
            self._send_syn()
        self._wake()

    def _rst_received(self) -> None:
        state = self.state
        if state == TcpState.SYN_RECEIVED and self.listener is not None:
            self._abort(0, send_rst=False)  # back to LISTEN: the child just goes away
            return
        if state == TcpState.SYN_RECEIVED:
            self._abort(errno.ECONNREFUSED, send_rst=False)
            return
        if state in (TcpState.CLOSING, TcpState.LAST_ACK, TcpState.TIME_WAIT):
            if state == TcpState.TIME_WAIT and self.config.rfc1337:
                return  # RFC 1337: ignore RST in TIME-WAIT
            self._set_closed()
            return
        self.reset_received = True
        self._abort(errno.ECONNRESET if state != TcpState.CLOSE_WAIT else errno.EPIPE,
                    send_rst=False)

    def _process_ack(self, seg: wire_tcp.TcpPacket, seq: int) -> bool:
        """Returns False when the segment must be dropped here."""
        ack = unwrap(seg.ack, self.snd_una)
        state = self.state
        if state == TcpState.SYN_RECEIVED:
            if not (self.snd_una < ack <= self.snd_max):
                self.layer.send_reset_for(self, seg)
                return False
            if not self.layer.established_from_syn_received(self):
                return False  # accept queue full: stay half-open, the SYN-ACK timer runs on
            self._cancel("rtx")
            self._handshake_rtt()
            self.snd_wnd = seg.window << self.snd_wscale
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
            self._set_state(TcpState.ESTABLISHED)
            self.start_keepalive()
        if ack > self.snd_max:
            self._send_ack()  # acks something not yet sent
            return False
        if ack < self.snd_una - max(self.max_snd_wnd, 1):
            self._send_challenge_ack()  # RFC 5961 §5.2
            return False
        opts = seg.options
        now = self.now()
        mss = self._effective_mss()
        newly_sacked = 0
        una_before = self.snd_una
        had_sacked = bool(self.scoreboard.ranges)
        dsack = False
        if self.sack_enabled and opts.sack_blocks:
            blocks = [(unwrap(s, self.snd_una), unwrap(e, self.snd_una))
                      for s, e in opts.sack_blocks]
            dsack = self._dsack_arrived(blocks, ack)
            newly_sacked = self.scoreboard.update(self.snd_una, blocks, self.snd_max)
            if newly_sacked and self.rexmits:
                self._detect_lost_retransmissions(mss)
        window = seg.window << self.snd_wscale
        window_update = False
        if self.snd_wl1 < seq or (self.snd_wl1 == seq and self.snd_wl2 <= ack):
            window_update = window != self.snd_wnd
            self.snd_wnd = window
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            self.max_snd_wnd = max(self.max_snd_wnd, window)
            if window > 0 and self.snd_una == self.snd_max:
                self.backoff = 0
        if self.sack_enabled and (self.tx_head < len(self.tx_ends) or self.rack_rexmit):
            self._rack_on_ack(ack, now, had_sacked)
        if ack > self.snd_una:
            self._new_ack(ack, opts, now, mss)
        elif (ack == self.snd_una and self.snd_max > self.snd_una and not seg.payload
              and not seg.flags & (SYN | FIN) and not window_update
              and (newly_sacked or not (self.sack_enabled and opts.sack_blocks))):
            # with SACK, a duplicate ACK must SACK new data (RFC 6675 §2): D-SACKs and
            # repeated blocks (duplicated or reordered ACKs) are not loss signals
            self._duplicate_ack(now, mss, newly_sacked)
        if (self.sack_enabled and not self.in_recovery
                and self.snd_una < self.scoreboard.rack_lost_below):
            self._rack_maybe_recover(now, mss)
        if self.sack_enabled and self.in_recovery:
            self._prr_on_ack(max(0, self.snd_una - una_before) + newly_sacked,
                             self.snd_una > una_before)
        if self.tlp_high_seq is not None:
            self._tlp_on_ack(ack, dsack, newly_sacked > 0 or len(seg.payload) > 0
                             or self.snd_una > una_before)
        if self.snd_una < self.snd_max:
            self._arm_tlp()
        # our FIN acknowledged?
        if self.fin_seq is not None and self.snd_una > self.fin_seq:
            if state == TcpState.FIN_WAIT_1 or self.state == TcpState.FIN_WAIT_1:
                self._set_state(TcpState.FIN_WAIT_2)
                if self.orphaned:
                    self._arm("fin_wait_2", self.config.orphan_fin_timeout_ns)
            elif self.state == TcpState.CLOSING:
                self._enter_time_wait()
            elif self.state == TcpState.LAST_ACK:
                self._set_closed()
                return False
        if self.state == TcpState.TIME_WAIT and seg.flags & FIN:
            self._send_ack()
            self._arm("timewait", 2 * self.config.msl_ns)
            return False
        return True

    def _new_ack(self, ack: int, opts: wire_tcp.TcpOptions, now: int, mss: int) -> None:
        acked = ack - self.snd_una
        data_end = self.sendq_seq + len(self.sendq)
        removable = min(ack, data_end) - self.sendq_seq
        if removable > 0:
            del self.sendq[:removable]
            self.sendq_seq += removable
        self.stats["bytes_acked"] += acked
        # RTT: timestamps first (RFC 7323 §4), else Karn's sample
        if self.ts_enabled and opts.timestamp is not None and opts.timestamp[1]:
            echoed = opts.timestamp[1]
            rtt_ms = (self._ts_now() - echoed) & MASK
            if rtt_ms < 0x80000000:
                self._rtt_sample(max(rtt_ms, 1) * MS if rtt_ms else MS // 2)
        elif self.rtt_seq is not None and ack >= self.rtt_seq:
            self._rtt_sample(now - self.rtt_sent_ns)
            self.rtt_seq = None
        self.retries = 0
        self.backoff = 0
        flight_before = self.snd_max - self.snd_una
        self._eifel_check(ack, opts)
        self.snd_una = ack
        if self.snd_nxt < ack:
            self.snd_nxt = ack
        self.scoreboard.advance(ack)
        self.limited_transmit = 0
        if self.in_recovery:
            if ack >= self.recover:
                self.in_recovery = False
                self.recovery_inflation = 0
                self.rexmits.clear()
                self.lost_again.clear()
                self.cc.on_recovery_exit(now)
            elif not self.sack_enabled:
                # NewReno partial ACK (RFC 6582 §3.2 step 3): retransmit the next hole
                self.recovery_inflation = max(0, self.recovery_inflation - acked + mss)
                self._send_data(self.snd_una, min(mss, self.sendq_seq + len(self.sendq)
                                                  - self.snd_una), retransmit=True)
                self.stats["fast_retransmits"] += 1
        else:
            if ack >= self.round_end:
                self.round_end = self.snd_max
                self.cc.on_round_start(now)
            self.cc.on_ack(now, acked, self.rtt_sample_ns or None, flight_before)
        self.rtt_sample_ns = 0
        if self.loss_recover is not None and ack >= self.loss_recover:
            self.loss_recover = None
        self.dupacks = 0
        self.first_unacked_sent_ns = now if self.snd_una < self.snd_max else 0
        if self.snd_una == self.snd_max:
            self._cancel("rtx")
        else:
            self._arm("rtx", self.rto_ns)

    def _detect_lost_retransmissions(self, mss: int) -> None:
        """A retransmission is lost when data sent after it is SACKed while it is not
        (more than DupThresh-1 segments later, to allow for reordering): send it again
        instead of waiting for the RTO (as Linux's RACK, by sequence instead of time)."""
        high = self.scoreboard.highest_sacked()
        if high is None:
            return
        for start, (end, mark) in list(self.rexmits.items()):
            if end <= self.snd_una or self.scoreboard.is_sacked(start):
                del self.rexmits[start]
            elif high > mark + 2 * mss:
                del self.rexmits[start]
                self.lost_again.append((start, end))
                self.stats["lost_retransmits"] += 1

    def _duplicate_ack(self, now: int, mss: int, newly_sacked: int) -> None:
        self.dupacks += 1
        self.stats["dupacks_in"] += 1
        if self.in_recovery:
            if not self.sack_enabled:
                self.recovery_inflation += mss  # RFC 5681 step 4: inflate per dupACK
            return
        lost = self.dupacks >= self.scoreboard.dupthresh or (self.sack_enabled and
                                     self.scoreboard.is_lost(self.snd_una, mss))
        if not lost:
            # Limited Transmit (RFC 3042): each of the first two duplicate ACKs lets one
            # new segment out, so a small flight still produces the ACKs recovery needs
            self.limited_transmit = min(self.dupacks, 2) * mss
            return
        self.limited_transmit = 0
        if not self.sack_enabled and self.snd_una <= self.recover and self.recover != self.iss:
            # RFC 6582 §3.2 step 1: no new recovery until the previous one is over
            if self.snd_una < self.recover:
                return
        self._enter_recovery(now, mss)

    def _enter_recovery(self, now: int, mss: int) -> None:
        """Fast retransmit and fast recovery begin (RFC 6675 / RFC 6582), PRR with SACK."""
        self._begin_loss_episode(timeout=False)
        self.in_recovery = True
        self.limited_transmit = 0
        self.recover = self.snd_max
        self.cc.on_congestion(now, self.snd_max - self.snd_una)
        self.high_rxt = self.snd_una
        self.stats["fast_retransmits"] += 1
        length = min(mss, self.sendq_seq + len(self.sendq) - self.snd_una)
        if length > 0:
            sent = self._send_data(self.snd_una, length, retransmit=True)
            self.high_rxt = self.snd_una + sent
            if self.sack_enabled:
                self.rexmits[self.snd_una] = (self.high_rxt, self.snd_max)
        elif self.fin_seq is not None:
            self._send_fin(self.fin_seq)
        if not self.sack_enabled:
            self.recovery_inflation = 3 * mss
        self._arm("rtx", self.rto_ns)
        self.prr_cwnd = self._pipe()
        self.prr_entry_len = self.prr_out  # the fast retransmit is part of this ACK's PRR

    def _receive_data(self, seq: int, payload: memoryview, push: bool) -> None:
        if self.shut_rd:
            self.rcv_nxt = max(self.rcv_nxt, seq + len(payload))  # discard, but acknowledge
            self.ack_pending += 1
            return
        right = self.rcv_adv
        if seq < self.rcv_nxt:
            self._dsack_duplicate(seq, self.rcv_nxt)  # the part we already had
            payload = payload[self.rcv_nxt - seq:]
            seq = self.rcv_nxt
        if seq + len(payload) > right:
            payload = payload[: max(0, right - seq)]
        if not payload:
            self.ack_pending += 1
            self._send_ack()
            return
        self.stats["bytes_received"] += len(payload)
        if seq == self.rcv_nxt:
            had_holes = len(self.ooo) > 0
            self.rcv_buf += payload
            self.rcv_nxt += len(payload)
            for chunk in self.ooo.pop_in_order(self.rcv_nxt):
                self.rcv_buf += chunk
                self.rcv_nxt += len(chunk)
            self.ack_pending += 1
            if had_holes or self.dsack_block is not None:
                self._send_ack()  # a filled hole is acknowledged at once (RFC 5681 §4.2)
        else:
            self.stats["ooo_segments"] += 1
            duplicate = self.ooo.overlap(seq, seq + len(payload))
            if duplicate is not None:
                self._dsack_duplicate(*duplicate)
            if not self.ooo.add(seq, bytes(payload), max(self.rcvbuf, right - self.rcv_nxt)):
                self.layer.stack.counters["tcp.drop.ooo_full"] += 1
            self._send_ack()  # out of order: duplicate ACK with SACK at once

    def _maybe_delay_ack(self) -> None:
        if self.quickack > 0:
            self.quickack -= 1
            self._send_ack()
        elif self.ack_pending >= 2:
            self._send_ack()
        elif "dack" not in self._timers:
            self._arm("dack", self.config.delayed_ack_ns)

    def _fin_arrives(self, fin_seq: int) -> None:
        if fin_seq != self.rcv_nxt:
            self._send_ack()  # FIN beyond a hole: acknowledge what we have
            return
        if self.fin_received:
            self._send_ack()
            return
        self.fin_received = True
        self.rcv_nxt += 1
        self._send_ack()
        state = self.state
        if state in (TcpState.ESTABLISHED, TcpState.SYN_RECEIVED):
            self._set_state(TcpState.CLOSE_WAIT)
        elif state == TcpState.FIN_WAIT_1:
            if self.fin_seq is not None and self.snd_una > self.fin_seq:
                self._enter_time_wait()
            else:
                self._set_state(TcpState.CLOSING)
        elif state == TcpState.FIN_WAIT_2:
            self._enter_time_wait()

    def _enter_time_wait(self) -> None:
        self._cancel_all()
        self._set_state(TcpState.TIME_WAIT)
        self._arm("timewait", 2 * self.config.msl_ns)

    # ------------------------------------------------------------------ ECN
    # RFC 3168 as Linux does it (net.ipv4.tcp_ecn, tcp_ecn_* in tcp_input/tcp_output.c).
    # Handshake: an ECN-setup SYN carries ECE|CWR (only with tcp_ecn = 1, and not on a
    # retransmitted SYN: tcp_ecn_fallback); its SYN-ACK carries ECE alone (tcp_ecn = 1
    # or 2); anything else leaves the connection without ECN. On an ECN connection new
    # data segments leave ECT(0), retransmissions and pure ACKs not-ECT. A data segment
    # that arrives CE-marked makes every segment we send carry ECE (ACKed at once) until
    # a data segment with CWR arrives. ECE on an ACK reduces cwnd once per window of
    # data (the congestion module's multiplicative decrease, as for a loss, without a
    # retransmission), not during loss recovery; the next new data segment after any
    # reduction (ECE, fast recovery or a timeout) carries CWR.
    def _ecn_syn_flags(self) -> int:
        if self.state == TcpState.SYN_RECEIVED:
            return ECE if self.ecn_ok else 0
        if self.state == TcpState.SYN_SENT and self.config.ecn == 1 and self.retries == 0:
            self.ecn_requested = True
            return ECE | CWR
        return 0

    def _ecn_negotiate_active(self, flags: int) -> None:
        """Our SYN asked for ECN: the SYN-ACK grants it with ECE alone (RFC 3168 §6.1.1);
        a simultaneous-open SYN with ECE|CWR."""
        if not self.ecn_requested:
            self.ecn_ok = False
        elif flags & ACK:
            self.ecn_ok = bool(flags & ECE) and not flags & CWR
        else:
            self.ecn_ok = flags & (ECE | CWR) == ECE | CWR
        self.ecn_episode = (self.recover, self.stats["timeouts"])

    def ecn_setup_syn_accepted(self, syn_flags: int, ip_ecn: int) -> bool:
        """Whether a passive open grants ECN to this SYN (Linux tcp_ecn_create_request):
        the SYN asks with ECE|CWR, its IP header is not ECT, and tcp_ecn is not 0."""
        return (self.config.ecn != 0 and syn_flags & (ECE | CWR) == ECE | CWR
                and ip_ecn == 0)

    def _ecn_mark(self, seq: int, flags: int, length: int) -> tuple[int, int]:
        """ECE/CWR flags and the IP ECN field for a segment of an ECN connection."""
        ecn = 0
        if length and seq >= self.snd_max:  # new data: ECN-capable
            ecn = ECT0
            episode = (self.recover, self.stats["timeouts"])
            if episode != self.ecn_episode:  # a loss reduction since the last CWR
                self.ecn_episode = episode
                self.ecn_queue_cwr = True
            if self.ecn_queue_cwr:
                self.ecn_queue_cwr = False
                flags |= CWR
        if self.ecn_demand_cwr:
            flags |= ECE
        return flags, ecn

    def _ecn_data_arrives(self, flags: int) -> None:
        """The ECN signals of an arriving data segment: CWR ends our echo, CE starts it."""
        if flags & CWR and self.ecn_demand_cwr:
            self.ecn_demand_cwr = False
            self.quickack = max(self.quickack, 1)  # ICSK_ACK_NOW
        if self.ip_ecn_in == ECN_CE:
            self.layer.stack.counters["tcp.ecn_ce_in"] += 1
            if not self.ecn_demand_cwr:
                self.ecn_demand_cwr = True
                self.quickack = max(self.quickack, 2)  # the sender may have a tiny cwnd

    def _ecn_echo_arrives(self) -> None:
        """ECE on an ACK: congestion, once per window of data, unless already reducing."""
        if self.in_recovery or self.snd_una < self.ecn_cwr_high:
            return
        now = self.now()
        self.layer.stack.counters["tcp.ecn_reductions"] += 1
        self.cc.on_congestion(now, self.snd_max - self.snd_una)
        self.cc.on_recovery_exit(now)  # no retransmission to wait for: cwnd = ssthresh now
        self.ecn_cwr_high = self.snd_max
        self.ecn_queue_cwr = True

    # ------------------------------------------------------------------ loss recovery extensions
    # D-SACK (RFC 2883), undo of spurious recoveries (RFC 3708, Eifel RFC 3522), RACK-TLP
    # (RFC 8985) and PRR (RFC 6937). See "Loss recovery" in the module docstring.
    dsack_block: tuple[int, int] | None
    undo_marker: int | None
    undo_cc: tuple[Any, ...] | None
    loss_recover: int | None
    min_rtt_ns: int | None
    tlp_high_seq: int | None
    round_end: int

    def _init_recovery_extensions(self) -> None:
        iss = self.iss
        self.dsack_block = None  # to report first in the next ACK
        self.undo_marker = None  # SND.UNA when the loss episode began
        self.undo_retrans: list[tuple[int, int]] = []  # its retransmissions not yet D-SACKed
        self.undo_cc = None  # the congestion state before it
        self.undo_ts = 0  # our TSval at its first retransmission (0: none yet)
        self.undo_fack = iss  # the highest SACKed sequence when it began
        self.undo_high = iss  # the end of its highest retransmission
        self.loss_recover = None  # SND.MAX at the RTO, until acknowledged
        # RACK: the send times of original transmissions, in order (ends ascending)
        self.tx_ends: list[int] = []
        self.tx_times: list[int] = []
        self.tx_head = 0  # entries before this index are acknowledged
        self.rack_scan = 0  # entries before this index were judged lost
        self.rack_rexmit: dict[int, tuple[int, int]] = {}  # retransmitted start -> (end, time)
        self.rack_xmit_ns = -1  # send time of the most recently sent segment delivered
        self.rack_end = iss
        self.rack_rtt_ns = 0
        self.rack_reordering_seen = False
        self.rack_reo_mult = 1
        self.rack_dsack_round = iss
        self.rack_recoveries = 0
        self.min_rtt_ns = None
        self.rtt_sample_ns = 0  # the RTT sample this ACK gave (0: none)
        # TLP
        self.tlp_high_seq = None  # SND.MAX after the probe, until resolved
        self.tlp_retrans = False
        self.tlp_due = 0
        self.tlp_armed = (-1, 0, 0)  # (now, SND.UNA, SND.MAX) when last armed
        # PRR
        self.prr_delivered = 0
        self.prr_out = 0
        self.recover_fs = 0
        self.prr_cwnd = 0
        self.prr_entry_len = 0
        # slow-start rounds (HyStart++)
        self.round_end = iss

    def _note_sent(self, seq: int, length: int, retransmit: bool, now: int) -> None:
        if retransmit:
            self.rack_rexmit[seq] = (seq + length, now)
            if self.undo_marker is not None:
                self.undo_retrans.append((seq, seq + length))
                self.undo_high = max(self.undo_high, seq + length)
                if not self.undo_ts and self.ts_enabled:
                    self.undo_ts = self._ts_now()
        elif self.sack_enabled:
            end = seq + length
            if len(self.tx_ends) == self.tx_head or end > self.tx_ends[-1]:
                self.tx_ends.append(end)
                self.tx_times.append(now)
        if self.in_recovery:
            self.prr_out += length

    # --- D-SACK, receiver side
    def _dsack_duplicate(self, start: int, end: int) -> None:
        """[start, end) arrived again: the next ACK reports it in a D-SACK block (RFC 2883:
        data below RCV.NXT, or data already in the out-of-order queue)."""
        if not self.sack_enabled or end <= start or self.state == TcpState.TIME_WAIT:
            return  # (Linux's TIME-WAIT minisocket keeps no SACK state)
        if start < self.rcv_nxt:
            end = min(end, self.rcv_nxt)
        else:
            overlap = self.ooo.overlap(start, end)
            if overlap is None:
                return
            start, end = overlap
        self.dsack_block = (start, end)

    def _sack_blocks_to_send(self, count: int) -> list[tuple[int, int]]:
        """The D-SACK block first (sent once), then the SACK blocks, most recent first."""
        blocks: list[tuple[int, int]] = []
        if self.dsack_block is not None:
            blocks.append(self.dsack_block)
            self.dsack_block = None
            self.stats["dsacks_sent"] += 1
        if len(self.ooo):
            blocks.extend(self.ooo.sack_blocks(self.rcv_nxt, count - len(blocks)))
        return blocks

    # --- D-SACK, sender side, and undo
    def _dsack_arrived(self, blocks: list[tuple[int, int]], ack: int) -> bool:
        """Whether the first block is a D-SACK (RFC 2883 §4); count a D-SACKed
        retransmission and undo the episode once all of them were (RFC 3708)."""
        start, end = blocks[0]
        if end <= start or not (start < ack or (len(blocks) > 1 and blocks[1][0] <= start
                                                and end <= blocks[1][1])):
            return False
        self.stats["dsacks_in"] += 1
        self.rack_reordering_seen = True
        if ack >= self.rack_dsack_round:  # RFC 8985 §6.2: widen the window once per round
            self.rack_reo_mult = min(self.rack_reo_mult + 1, 16)
            self.rack_dsack_round = self.snd_max
            self.rack_recoveries = 0
        if self.undo_marker is None or end <= self.undo_marker:
            return True
        for i, (s, e) in enumerate(self.undo_retrans):
            if s < end and start < e:
                del self.undo_retrans[i]
                break
        else:
            return True
        if not self.undo_retrans:
            self._undo()
        return True

    def _eifel_check(self, ack: int, opts: wire_tcp.TcpOptions) -> None:
        """RFC 3522: an ACK covering every retransmission of the episode that echoes a
        timestamp older than the first of them was caused by the originals: undo."""
        if (self.undo_marker is None or not self.undo_ts or opts.timestamp is None
                or not (self.in_recovery or self.loss_recover is not None)):
            return
        ecr = opts.timestamp[1]
        if not ecr or ((ecr - self.undo_ts) & MASK) < 0x80000000:
            return
        if ack < self.undo_high:
            return  # a retransmission of the episode is still outstanding
        self._undo()

    def _begin_loss_episode(self, timeout: bool) -> None:
        """Fast recovery or an RTO begins: remember what to undo (once per episode)."""
        new = self.undo_marker is None or not (self.in_recovery or self.loss_recover is not None)
        if new:
            self.undo_marker = self.snd_una
            self.undo_fack = self.scoreboard.highest_sacked() or self.snd_una
            self.undo_retrans = []
            self.undo_high = self.snd_una
            self.undo_cc = self.cc.snapshot()
            self.undo_ts = 0
        self.tlp_high_seq = None
        self.tlp_due = 0
        self._cancel("tlp")
        if timeout:
            self.loss_recover = self.snd_max
            return
        self.prr_delivered = 0
        self.prr_out = 0
        self.recover_fs = self.snd_max - self.snd_una
        self.rack_recoveries += 1
        if self.rack_recoveries >= 16:
            self.rack_reo_mult = 1  # RFC 8985 §6.2: the widened window decays

    def _undo(self) -> None:
        """The episode's retransmissions were spurious: restore the window, leave recovery."""
        if self.undo_marker is not None:
            self._note_reordering(self.undo_marker, self.undo_fack)
        if self.undo_cc is not None:
            self.cc.undo(self.undo_cc)
        self.stats["undos"] += 1
        self.undo_marker = None
        self.undo_retrans = []
        self.undo_cc = None
        self.undo_ts = 0
        self.scoreboard.rack_lost_below = 0
        self.rack_scan = 0  # judge every outstanding segment again
        if self.in_recovery:
            self.in_recovery = False
            self.recovery_inflation = 0
            self.rexmits.clear()
            self.lost_again.clear()
            self.recover = self.snd_una  # a real loss after this may start a recovery
        if self.loss_recover is not None:
            # a spurious RTO (RFC 4015's response): carry on with new data, do not go back
            self.loss_recover = None
            self.snd_nxt = max(self.snd_nxt, self.snd_max)

    # --- RACK
    def _rack_on_ack(self, ack: int, now: int, had_sacked: bool) -> None:
        """RFC 8985 §6.2 steps 1-3: the most recently sent delivered segment, then losses."""
        ends, times = self.tx_ends, self.tx_times
        head = self.tx_head
        best_t, best_end = self.rack_xmit_ns, self.rack_end
        if head < len(ends) and ends[head] <= ack:
            # originals are in send order: the last one acknowledged was sent last
            last = bisect_left(ends, ack + 1, head) - 1
            if times[last] > best_t or (times[last] == best_t and ends[last] > best_end):
                best_t, best_end = times[last], ends[last]
            head = last + 1
        if not had_sacked and not self.scoreboard.ranges and not self.rack_rexmit:
            self.tx_head = head  # the common case: nothing SACKed, nothing resent
            if head > 1024 and 2 * head > len(ends):
                del ends[:head]
                del times[:head]
                self.rack_scan = max(0, self.rack_scan - head)
                self.tx_head = 0
            if best_t != self.rack_xmit_ns or best_end != self.rack_end:
                self.rack_xmit_ns, self.rack_end = best_t, best_end
                self.rack_rtt_ns = now - best_t
            return
        if head == len(ends):
            ends.clear()
            times.clear()
            self.rack_scan = 0
            head = 0
        elif head > 1024 and 2 * head > len(ends):
            del ends[:head]
            del times[:head]
            self.rack_scan = max(0, self.rack_scan - head)
            head = 0
        self.tx_head = head
        high = self.scoreboard.highest_sacked()
        if high is not None and high > ack:
            i = bisect_left(ends, high, head)
            if i < len(ends) and (times[i] > best_t or (times[i] == best_t
                                                         and ends[i] > best_end)):
                best_t, best_end = times[i], ends[i]
        if self.rack_rexmit:
            min_rtt = self.min_rtt_ns or 0
            for start, (end, sent) in list(self.rack_rexmit.items()):
                if end <= ack or self.scoreboard.is_sacked(end - 1):
                    del self.rack_rexmit[start]
                    # a retransmission's ACK is ambiguous; one sooner than min RTT was
                    # the original's (RFC 8985 §6.2 step 2)
                    if now - sent >= min_rtt and (sent > best_t or (sent == best_t
                                                                   and end > best_end)):
                        best_t, best_end = sent, end
        if best_t != self.rack_xmit_ns or best_end != self.rack_end:
            self.rack_xmit_ns, self.rack_end = best_t, best_end
            self.rack_rtt_ns = now - best_t
        if had_sacked and ack > self.snd_una and not self.in_recovery and (
                self.loss_recover is None):
            self.rack_reordering_seen = True  # a hole filled without a retransmission
            self._note_reordering(self.snd_una, self.scoreboard.highest_sacked() or ack)
        if self.scoreboard.ranges:
            self._rack_detect_loss(now)

    def _note_reordering(self, low: int, high: int) -> None:
        """Data at `low` arrived after data up to `high`: DupThresh becomes at least that
        distance in segments (Linux's tcp_check_sack_reordering), so the next reordering
        as deep is not taken for a loss; RACK's timer still finds real losses."""
        degree = -(-(high - low) // self._effective_mss())
        if degree > self.scoreboard.dupthresh:
            self.scoreboard.dupthresh = min(degree, MAX_REORDERING)
            self.stats["reordering"] = self.scoreboard.dupthresh

    def _rack_reo_wnd(self) -> int:
        """RFC 8985 §6.2 step 4."""
        if not self.rack_reordering_seen:
            if self.in_recovery or self.loss_recover is not None:
                return 0
            if self.scoreboard.sacked_bytes() >= (self.scoreboard.dupthresh
                                                  * self._effective_mss()):
                return 0
        min_rtt = self.min_rtt_ns or self.srtt_ns or 0
        return min(self.rack_reo_mult * min_rtt // 4, self.srtt_ns or min_rtt)

    def _rack_detect_loss(self, now: int) -> None:
        """RFC 8985 §6.2 step 5: a segment sent before the most recently delivered one is
        lost once RACK.rtt + reo_wnd have passed since it was sent; original sends are
        in time order, so the lost ones are a prefix and the scoreboard keeps its end."""
        if self.rack_xmit_ns < 0:
            return
        deadline = now - self.rack_rtt_ns - self._rack_reo_wnd()
        ends, times = self.tx_ends, self.tx_times
        i = max(self.tx_head, self.rack_scan)
        lost_below = self.scoreboard.rack_lost_below
        wait = 0
        while i < len(ends):
            sent, end = times[i], ends[i]
            if sent > self.rack_xmit_ns or (sent == self.rack_xmit_ns and end >= self.rack_end):
                break
            if sent > deadline:
                if self.scoreboard.is_sacked(end - 1):
                    lost_below = end  # delivered: nothing to wait for (nor to mark)
                    i += 1
                    continue
                wait = sent - deadline
                break
            lost_below = end
            i += 1
        self.rack_scan = i
        if lost_below > self.scoreboard.rack_lost_below:
            self.scoreboard.rack_lost_below = lost_below
        if self.in_recovery and self.rack_rexmit:
            # a retransmission is lost the same way (sent before what was delivered, and
            # RACK.rtt + reo_wnd ago): send it again at once
            for start, (end, sent) in list(self.rack_rexmit.items()):
                if sent >= self.rack_xmit_ns:
                    continue  # (a tie: sent after what was delivered, not before)
                if sent > deadline:
                    wait = sent - deadline if not wait else min(wait, sent - deadline)
                    continue
                del self.rack_rexmit[start]
                if self.rexmits.pop(start, None) is not None:
                    self.lost_again.append((start, end))
                    self.stats["lost_retransmits"] += 1
        if wait > 0:
            # on a whole millisecond, as a jiffy-based timer: the instant is shared with
            # other events, which in virtual time saves the scheduler a stop
            wait = -(-(now + wait) // MS) * MS - now
            due = self._timer_due.get("rack")
            if due is None or due > now + wait:
                self._arm("rack", wait)

    def _rack_maybe_recover(self, now: int, mss: int) -> None:
        if (not self.in_recovery and self.loss_recover is None and self.scoreboard.ranges
                and self.snd_una < self.scoreboard.rack_lost_below
                and self.state in SENDS_DATA):
            self.stats["rack_recoveries"] += 1
            self._enter_recovery(now, mss)

    def _on_rack_timer(self) -> None:
        if self.state not in SENDS_DATA or self.snd_una >= self.snd_max:
            return
        now = self.now()
        self._rack_detect_loss(now)
        self._rack_maybe_recover(now, self._effective_mss())
        self.prr_entry_len = 0
        if self.in_recovery:
            self._output()

    # --- TLP
    def _arm_tlp(self) -> None:
        """RFC 8985 §7.2: a probe timeout of 2*SRTT (plus a delayed ACK's worth for a
        one-segment flight, as Linux), unless the RTO comes first."""
        if (not self.sack_enabled or self.srtt_ns is None or self.in_recovery
                or self.loss_recover is not None or self.tlp_high_seq is not None
                or self.snd_una >= self.snd_max or self.state not in SENDS_DATA):
            return
        now = self.now()
        if self.tlp_armed == (now, self.snd_una, self.snd_max):
            return  # done for this instant already (the ACK, then what it let out)
        self.tlp_armed = (now, self.snd_una, self.snd_max)
        pto = 2 * self.srtt_ns + (200 * MS if self.snd_max - self.snd_una <= self.cc.mss
                                  else 2 * MS)
        due = now + pto
        rtx_due = self._timer_due.get("rtx")
        if rtx_due is not None and due >= rtx_due:
            self.tlp_due = 0
            if "tlp" in self._timers:
                self._cancel("tlp")
            return
        self.tlp_due = due
        self._arm("tlp", pto)

    def _on_tlp_timer(self) -> None:
        now = self.now()
        if not self.tlp_due:
            return
        if now < self.tlp_due:
            self._arm("tlp", self.tlp_due - now)  # re-armed later since: wait on
            return
        self.tlp_due = 0
        if (self.in_recovery or self.loss_recover is not None or self.tlp_high_seq is not None
                or self.snd_una >= self.snd_max or self.state not in SENDS_DATA):
            return
        mss = self._effective_mss()
        data_end = self.sendq_seq + len(self.sendq)
        wnd_room = self.snd_una + self.snd_wnd - self.snd_nxt
        if self.snd_nxt == self.snd_max and data_end > self.snd_nxt and (
                wnd_room >= min(mss, data_end - self.snd_nxt)):
            sent = self._send_data(self.snd_nxt, min(mss, data_end - self.snd_nxt, wnd_room),
                                   retransmit=False)  # new data makes the best probe
            self.snd_nxt += sent
            self.snd_max = max(self.snd_max, self.snd_nxt)
            self.tlp_retrans = False
        else:
            last_end = min(self.snd_max, data_end)
            if last_end <= self.snd_una:
                return  # only a FIN outstanding: the RTO resends it
            start = max(self.snd_una, last_end - mss)
            self._send_data(start, last_end - start, retransmit=True)
            self.tlp_retrans = True
        self.tlp_high_seq = self.snd_max
        self.stats["tlp_probes"] += 1
        self._arm("rtx", self.rto_ns)

    def _tlp_on_ack(self, ack: int, dsack: bool, not_dup: bool) -> None:
        """RFC 8985 §7.4: did the probe repair a loss? Then reduce the window once."""
        high = self.tlp_high_seq
        assert high is not None
        if ack < high:
            return
        if not self.tlp_retrans or dsack:
            self.tlp_high_seq = None  # new data probed, or both copies arrived: no loss
        elif ack > high:
            self.tlp_high_seq = None
            if not self.in_recovery:
                now = self.now()
                self.cc.on_congestion(now, self.snd_max - self.snd_una)
                self.cc.on_recovery_exit(now)
        elif not not_dup:
            self.tlp_high_seq = None

    # --- PRR
    def _prr_on_ack(self, delivered: int, una_advanced: bool) -> None:
        """RFC 6937: how much may be sent on this ACK during recovery. Above ssthresh,
        in proportion to what was delivered; at or below it, back up towards ssthresh by
        slow start (PRR-SSRB) when the ACK advanced SND.UNA and no retransmission was lost
        (as Linux), otherwise only what was delivered (conservative)."""
        mss = self._effective_mss()
        self.prr_delivered += delivered
        # on the ACK that began recovery, count as Linux does: from before the fast
        # retransmit, which is then the first segment PRR allows (at least one)
        entry, self.prr_entry_len = self.prr_entry_len, 0
        pipe = self._pipe() - entry
        prr_out = self.prr_out - entry
        ssthresh = self.cc.ssthresh
        if pipe > ssthresh:
            sndcnt = -(-self.prr_delivered * ssthresh // max(self.recover_fs, 1)) - prr_out
        else:
            # at least what this ACK delivered, so the ACK clock never stops (as Linux;
            # RFC 6937's pure CRB, prr_delivered - prr_out alone, can stall with a lost
            # retransmission at SND.UNA and nothing left to SACK)
            limit = max(self.prr_delivered - prr_out, delivered)
            if una_advanced and not self.lost_again:
                limit += mss  # PRR-SSRB
            sndcnt = min(ssthresh - pipe, limit)
        segments = -(-sndcnt // mss) if sndcnt > 0 else 0
        if entry:
            segments = max(segments, 1)
        self.prr_cwnd = pipe + segments * mss

    def _disordered_ack(self, seg: wire_tcp.TcpPacket, seq: int, tsval: int) -> bool:
        """Linux's tcp_disordered_ack: a pure duplicate ACK whose timestamp is older than
        TS.Recent only because ACKs were reordered passes PAWS, so its SACK blocks count.
        It carries no data, is at RCV.NXT, acknowledges SND.UNA, would not update the
        window, and its timestamp is within one RTO of TS.Recent."""
        if not seg.flags & ACK or seg.flags & (SYN | FIN | RST) or len(seg.payload):
            return False
        if seq != self.rcv_nxt or unwrap(seg.ack, self.snd_una) != self.snd_una:
            return False
        window = seg.window << self.snd_wscale
        if seq > self.snd_wl1 or (seq == self.snd_wl1 and window > self.snd_wnd):
            return False
        return ((self.ts_recent - tsval) & MASK) <= self.rto_ns * 1024 // SEC

    # ------------------------------------------------------------------ ICMP
    def icmp_error(self, err: int, icmp_type: int, icmp_code: int, info: int,
                   frag_needed: bool) -> None:
        if frag_needed and info:
            overhead = 40 if len(self.remote) == 4 else 60
            new_mss = max(info - overhead, 536 if len(self.remote) == 4 else 1220)
            if self.pmtu_mss is None or new_mss < self.pmtu_mss:
                self.pmtu_mss = new_mss
                self.cc.set_mss(self._effective_mss())
                self.layer.stack.counters["tcp.pmtu_lowered"] += 1
                # retransmit what no longer fits
                self.snd_nxt = self.snd_una
                self._output()
            return
        if self.state in (TcpState.SYN_SENT, TcpState.SYN_RECEIVED) and self.listener is None:
            self._abort(err, send_rst=False)
            return
        self.soft_error = err

    # ------------------------------------------------------------------ application
    def send(self, data: bytes | memoryview) -> int:
        if self.error:
            err, self.error = self.error, 0
            raise OSError(err, os.strerror(err))
        if self.fin_queued or self.state not in CAN_SEND:
            if self.state in (TcpState.SYN_SENT, TcpState.SYN_RECEIVED):
                raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
            if self.state == TcpState.CLOSED and not self.reset_received:
                raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
            raise OSError(errno.EPIPE, os.strerror(errno.EPIPE))
        room = self.sndbuf - len(self.sendq)
        if room <= 0:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        chunk = data[:room]
        self.sendq += chunk
        if self.snd_una == self.snd_max and self.first_unacked_sent_ns == 0:
            idle_since = self.last_heard_ns
            if idle_since and self.srtt_ns and self.now() - idle_since > self.rto_ns:
                self.cc.on_idle_restart(self.now())
        self._output()
        return len(chunk)

    def recv(self, size: int, peek: bool = False) -> bytes:
        if self.rcv_buf:
            chunk = bytes(self.rcv_buf[:size])
            if not peek:
                before = self._advertise_window()
                del self.rcv_buf[:size]
                self._window_update_after_read(before)
            return chunk
        if self.error:
            err = self.error
            if not peek:
                self.error = 0
            raise OSError(err, os.strerror(err))
        if self.fin_received or self.shut_rd or self.reset_received:
            return b""
        if self.state in (TcpState.CLOSED, TcpState.LISTEN):
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    def _window_update_after_read(self, before: int) -> None:
        if self.state not in RECEIVES_DATA:
            return
        used = len(self.rcv_buf) + self.ooo.bytes
        free = self.rcvbuf - used
        advertised = self.rcv_adv - self.rcv_nxt
        # RFC 9293 §3.8.6.2.2: update when the window opens by 2 MSS or half the buffer
        if free - advertised >= min(self.rcvbuf // 2, 2 * self.adv_mss):
            self._send_ack()

    def shutdown_write(self) -> None:
        if self.state in (TcpState.SYN_SENT,):
            self._abort(0, send_rst=False)
            return
        if self.fin_queued:
            return
        if self.state in CAN_SEND or self.state == TcpState.SYN_RECEIVED:
            self.fin_queued = True
            self._output()

    def shutdown_read(self) -> None:
        self.shut_rd = True
        self.rcv_buf.clear()
        self.ooo.clear()

    def close(self) -> None:
        """The application closed its socket: finish gracefully, or reset when Linux would."""
        self.orphaned = True
        self.socket = None
        lingering, seconds = self.linger
        if self.state in (TcpState.CLOSED, TcpState.TIME_WAIT):
            return
        if self.state == TcpState.SYN_SENT:
            self._set_closed()
            return
        if lingering and seconds == 0:
            self._abort(0, send_rst=True)  # SO_LINGER 0: abortive close
            return
        if self.rcv_buf and self.state in SYNCHRONIZED:
            self._abort(0, send_rst=True)  # unread data: RST (RFC 2525 §2.17, as Linux)
            return
        self.shutdown_write()
        if self.state == TcpState.FIN_WAIT_2:
            self._arm("fin_wait_2", self.config.orphan_fin_timeout_ns)

    def abort(self) -> None:
        self._abort(0, send_rst=True)

    def _abort_on_data_after_close(self, seg: wire_tcp.TcpPacket, seq: int) -> bool:
        """New data for a connection whose application can no longer read it: reset.

        As Linux's tcp_rcv_state_process (step 7, "RFC 1122 says we MUST send a
        reset"): once the application closed the socket or shut its reading side
        (RCV_SHUTDOWN), a segment carrying data beyond RCV.NXT in FIN-WAIT-1/2 (or
        old data in CLOSE-WAIT, CLOSING, LAST-ACK) is answered with a RST built
        from the segment (seq = its ACK, as tcp_v4_send_reset) and the connection
        ends at once (TCPAbortOnData). The peer learns right away that nobody
        will read what it writes, instead of filling a dead socket's window.
        """
        if not (self.orphaned or self.shut_rd):
            return False
        state = self.state
        if state not in (TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_2) and not (
                state in (TcpState.CLOSE_WAIT, TcpState.CLOSING, TcpState.LAST_ACK)
                and seq < self.rcv_nxt):
            return False
        if seq + len(seg.payload) <= self.rcv_nxt:
            return False  # only what we already have: acknowledged as usual
        self.layer.stack.counters["tcp.abort_on_data"] += 1
        self.layer.send_reset_for(self, seg)
        self._abort(errno.EPIPE if state == TcpState.CLOSE_WAIT else errno.ECONNRESET,
                    send_rst=False)
        return True

    def _abort(self, err: int, send_rst: bool) -> None:
        if send_rst and self.state in SYNCHRONIZED | {TcpState.SYN_RECEIVED}:
            self._transmit(self.snd_max, RST | ACK)
        if err:
            self.error = err
        self._set_closed()

    def _set_closed(self) -> None:
        self._cancel_all()
        self.state = TcpState.CLOSED
        self.layer.on_state_change(self)
        self._wake()

    # ------------------------------------------------------------------ readiness
    def readable(self) -> bool:
        return bool(self.rcv_buf) or self.fin_received or bool(self.error) or (
            self.state == TcpState.CLOSED) or self.shut_rd

    def writable(self) -> bool:
        if self.state in (TcpState.SYN_SENT, TcpState.SYN_RECEIVED):
            return False
        if self.state not in CAN_SEND or self.fin_queued or self.error:
            return True  # a write would fail at once: that is "ready" for poll
        return self.sndbuf - len(self.sendq) > 0
