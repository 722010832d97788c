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

Loss recovery beyond RFC 6675 (D-SACK and undo, RACK-TLP, PRR, reordering, PAWS for
disordered ACKs, HyStart++ rounds) is described in stack/tcp_recovery.py.

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

Layout
------
`TcpConnection` is one class written across six modules, by RFC 9293's own
division of the work (§3.3.1 the TCB, §3.10 the events):

- stack/tcp_tcb.py: the transmission control block (every variable, declared
  once), the states, `unwrap`, `TcpConfig` and the constants;
- this module: opening, SEGMENT ARRIVES (acceptability, RST/SYN checks, ACK
  processing, data and FIN), ICMP errors, the user calls and readiness;
- stack/tcp_output.py: what to send and building it (`_output`, `_transmit`);
- stack/tcp_timers.py: the timers (a table of kinds) and the RTT estimator;
- stack/tcp_recovery.py: fast recovery, D-SACK/undo, RACK-TLP, PRR;
- stack/tcp_ecn.py: ECN.

The parts are classes of one inheritance chain (stack/tcp_tcb.py says the
order; one base each, so that mypyc compiles it) rather than helper objects
holding a reference to the connection: the per-segment path (`segment_arrives` ->
`_process_ack` -> `_rack_on_ack`/`_new_ack`/`_prr_on_ack` -> `_output` ->
`_send_data` -> `_transmit` -> `_ecn_mark`) reads dozens of connection
variables per segment, and as methods of the connection each read is one
attribute lookup and each call one method call, exactly as when it was one
file (a helper object would add `self.conn.` to every read, or state to keep
in step). Python's method cache makes the longer MRO free; compiled, each
read is a field of the native object and each call a vtable call.

Touches only its stack (IP output, timers, the TCP layer's tables).
"""

from __future__ import annotations

import errno

from .oserror import os_error
from .tcp_output import TcpOutput
from .tcp_tcb import (
    ACK,
    CAN_SEND,
    CLOSE_WAIT,
    CLOSED,
    CLOSING,
    COOKIE_WSCALE,
    CWR,
    ECE,
    ECN_CE,
    ECT0,
    ESTABLISHED,
    FIN,
    FIN_WAIT_1,
    FIN_WAIT_2,
    LAST_ACK,
    LISTEN,
    MASK,
    MS,
    PSH,
    RECEIVES_DATA,
    RST,
    SEC,
    SENDS_DATA,
    SYN,
    SYN_RECEIVED,
    SYN_SENT,
    SYNCHRONIZED,
    TIME_WAIT,
    TcpConfig,
    TcpState,
    unwrap,
)
from .wire import tcp as wire_tcp

__all__ = [
    "ACK", "CAN_SEND", "COOKIE_WSCALE", "CWR", "ECE", "ECN_CE", "ECT0", "FIN", "MASK", "MS",
    "PSH", "RECEIVES_DATA", "RST", "SEC", "SENDS_DATA", "SYN", "SYNCHRONIZED", "TcpConfig",
    "TcpConnection", "TcpState", "unwrap",
]


class TcpConnection(TcpOutput):
    """A connection from SYN to CLOSED (or TIME_WAIT's end)."""

    def _set_state(self, state: TcpState) -> None:
        self.state = state
        if state is CLOSED:  # the only change the layer acts on (`on_state_change`)
            self.layer.on_state_change(self)

    # ------------------------------------------------------------------ opening
    def open_active(self) -> None:
        """connect(): send SYN."""
        cfg = self.config
        self.rcv_wscale = self._choose_wscale() if cfg.window_scaling else 0
        self._set_state(SYN_SENT)
        self._send_syn()
        self._arm("rtx", self.rto_ns)

    def _choose_wscale(self) -> int:
        """The smallest shift (at most 14) whose 64 KiB window covers the receive buffer
        (or four times the default), i.e. 0xFFFF << shift >= that."""
        windows = -(-max(self.rcvbuf, self.config.rmem_default * 4) // 0xFFFF)
        return min(14, (windows - 1).bit_length()) if windows > 1 else 0

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
        self._set_state(SYN_RECEIVED)
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
        self._set_state(ESTABLISHED)

    def _negotiate(self, peer: wire_tcp.TcpOptions) -> None:
        cfg = self.config
        if peer.mss:
            self.peer_mss = max(64, peer.mss)
        if peer.wscale is not None and cfg.window_scaling:
            self.snd_wscale = min(peer.wscale, 14)
            if self.state is not SYN_SENT:
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
        if state is SYN_SENT:
            self._syn_sent_arrives(seg)
            return
        flags = seg.flags
        rcv_nxt = self.rcv_nxt
        delta = (seg.seq - rcv_nxt) & MASK  # `unwrap(seg.seq, rcv_nxt)`, inline
        seq = rcv_nxt + (delta - 0x100000000 if delta >= 0x80000000 else delta)
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
        if state is SYN_RECEIVED and flags & SYN and not flags & RST \
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
        if state is SYN_RECEIVED or state is TIME_WAIT:
            wnd = max(wnd, 1)
        if not ((seq == self.rcv_nxt and wnd > 0) or self._acceptable(seq, seg_len, wnd)):
            if not flags & RST:
                self.layer.stack.counters["tcp.out_of_window"] += 1
                self._dsack_duplicate(seq, seq + seg_len)
                self._send_ack()
                if state is TIME_WAIT and flags & FIN and seq + seg_len == self.rcv_nxt:
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
        if self.state is CLOSED:
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
        if self._process_ack(seg, seq + 1) and self.state is not CLOSED:
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
            self._set_state(ESTABLISHED)
            self._send_ack()
            self.start_keepalive()
            self._output()
        else:
            # simultaneous open
            self._peer_syn_options = seg.options
            self.snd_wnd = seg.window
            self.snd_wl1 = seq
            self._set_state(SYN_RECEIVED)
            self._send_syn()
        self._wake()

    def _rst_received(self) -> None:
        state = self.state
        if state is SYN_RECEIVED and self.listener is not None:
            self._abort(0, send_rst=False)  # back to LISTEN: the child just goes away
            return
        if state is SYN_RECEIVED:
            self._abort(errno.ECONNREFUSED, send_rst=False)
            return
        if state in (CLOSING, LAST_ACK, TIME_WAIT):
            if state is TIME_WAIT and self.config.rfc1337:
                return  # RFC 1337: ignore RST in TIME-WAIT
            self._set_closed()
            return
        self.reset_received = True
        self._abort(errno.ECONNRESET if state is not CLOSE_WAIT else errno.EPIPE,
                    send_rst=False)

    def _process_ack(self, seg: wire_tcp.TcpPacket, seq: int) -> bool:
        """Returns False when the segment must be dropped here."""
        ack = unwrap(seg.ack, self.snd_una)
        state = self.state
        if state is SYN_RECEIVED:
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
            self._set_state(ESTABLISHED)
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
            if state is FIN_WAIT_1 or self.state is FIN_WAIT_1:
                self._set_state(FIN_WAIT_2)
                if self.orphaned:
                    self._arm("fin_wait_2", self.config.orphan_fin_timeout_ns)
            elif self.state is CLOSING:
                self._enter_time_wait()
            elif self.state is LAST_ACK:
                self._set_closed()
                return False
        if self.state is TIME_WAIT and seg.flags & FIN:
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
            # a stretch ACK over a link that offloads acknowledges super-segments a
            # receiver took whole: it stands for one wire ACK per two segments
            acks = (-(-acked // (2 * mss)) if acked > 2 * mss
                    and self.stack.offload_output(self.rt.iface) else 1)
            self.cc.on_ack(now, acked, self.rtt_sample_ns or None, flight_before, acks)
        self.rtt_sample_ns = 0
        if self.loss_recover is not None and ack >= self.loss_recover:
            self.loss_recover = None
        self.dupacks = 0
        self.first_unacked_sent_ns = now if self.snd_una < self.snd_max else 0
        if self.snd_una == self.snd_max:
            self._cancel("rtx")
        else:
            self._arm("rtx", self.rto_ns)


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
            # a super-segment taken whole (GRO) is at least two full-sized segments: ACK
            # it at once, as Linux's __tcp_ack_snd_check does past one rcv_mss
            self.ack_pending += 1 if len(payload) <= self.adv_mss else 2
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
        state = self.state
        if state in (ESTABLISHED, SYN_RECEIVED):
            # Linux's tcp_fin: CLOSE_WAIT in pingpong mode, so the FIN's ACK waits for the
            # delayed-ACK timer and an application that closes at once acknowledges it
            # with its own FIN (8 segments per short connection, not 9) -- unless more
            # than one full segment is unacknowledged (__tcp_ack_snd_check: ACK now)
            self._set_state(CLOSE_WAIT)
            if self.rcv_nxt - self.last_ack_sent > self._effective_mss():
                self._send_ack()
                return
            self.ack_pending += 1
            if "dack" not in self._timers:
                # on a connection that has received no data yet, Linux's ato is still 0
                # and the timer is due at its next tick (ACK within a few ms, not 40)
                no_data = self.rcv_nxt == self.irs + 2
                config = self.config
                self._arm("dack", config.delayed_ack_no_data_ns if no_data
                          else config.delayed_ack_ns)
            return
        self._send_ack()
        if state == FIN_WAIT_1:
            if self.fin_seq is not None and self.snd_una > self.fin_seq:
                self._enter_time_wait()
            else:
                self._set_state(CLOSING)
        elif state == FIN_WAIT_2:
            self._enter_time_wait()

    def _enter_time_wait(self) -> None:
        self._cancel_all()
        self._set_state(TIME_WAIT)
        self._arm("timewait", 2 * self.config.msl_ns)


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
        if self.state in (SYN_SENT, SYN_RECEIVED) and self.listener is None:
            self._abort(err, send_rst=False)
            return
        self.soft_error = err

    # ------------------------------------------------------------------ application
    def send(self, data: bytes | memoryview) -> int:
        if self.error:
            err, self.error = self.error, 0
            raise os_error(err)
        if self.fin_queued or self.state not in CAN_SEND:
            if self.state in (SYN_SENT, SYN_RECEIVED):
                raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
            if self.state is CLOSED and not self.reset_received:
                raise os_error(errno.ENOTCONN)
            raise os_error(errno.EPIPE)
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
            raise os_error(err)
        if self.fin_received or self.shut_rd or self.reset_received:
            return b""
        if self.state in (CLOSED, LISTEN):
            raise os_error(errno.ENOTCONN)
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
        if self.state in (SYN_SENT,):
            self._abort(0, send_rst=False)
            return
        if self.fin_queued:
            return
        if self.state in CAN_SEND or self.state is SYN_RECEIVED:
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
        if self.state in (CLOSED, TIME_WAIT):
            return
        if self.state is SYN_SENT:
            self._set_closed()
            return
        if lingering and seconds == 0:
            self._abort(0, send_rst=True)  # SO_LINGER 0: abortive close
            return
        if self.rcv_buf and self.state in SYNCHRONIZED:
            self._abort(0, send_rst=True)  # unread data: RST (RFC 2525 §2.17, as Linux)
            return
        self.shutdown_write()
        if self.state is FIN_WAIT_2:
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
        if state not in (FIN_WAIT_1, FIN_WAIT_2) and not (
                state in (CLOSE_WAIT, CLOSING, LAST_ACK)
                and seq < self.rcv_nxt):
            return False
        if seq + len(seg.payload) <= self.rcv_nxt:
            return False  # only what we already have: acknowledged as usual
        self.layer.stack.counters["tcp.abort_on_data"] += 1
        self.layer.send_reset_for(self, seg)
        self._abort(errno.EPIPE if state is CLOSE_WAIT else errno.ECONNRESET,
                    send_rst=False)
        return True

    def _abort(self, err: int, send_rst: bool) -> None:
        if send_rst and self.state in SYNCHRONIZED | {SYN_RECEIVED}:
            self._transmit(self.snd_max, RST | ACK)
        if err:
            self.error = err
        self._set_closed()

    def _set_closed(self) -> None:
        self._cancel_all()
        self.state = CLOSED
        self.layer.on_state_change(self)
        self._wake()

    # ------------------------------------------------------------------ readiness
    def readable(self) -> bool:
        return bool(self.rcv_buf) or self.fin_received or bool(self.error) or (
            self.state is CLOSED) or self.shut_rd

    def writable(self) -> bool:
        if self.state in (SYN_SENT, SYN_RECEIVED):
            return False
        if self.state not in CAN_SEND or self.fin_queued or self.error:
            return True  # a write would fail at once: that is "ready" for poll
        return self.sndbuf - len(self.sendq) > 0
