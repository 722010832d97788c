"""TCP loss recovery: fast retransmit and recovery (RFC 6675 with SACK, RFC 6582
NewReno without) and the extensions Linux adds: the part of `TcpConnection` that
decides what was lost and how much may be sent meanwhile.

RFC 6675 recovery is described in stack/tcp_connection.py's theory of operation;
the SACK scoreboard and the out-of-order queue are in stack/tcp_sack.py, the
window arithmetic (cwnd, ssthresh, undo snapshots) in stack/congestion/.

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

Written as a part of the connection class (it inherits `TcpEcn`; the chain is
in stack/tcp_tcb.py), not as a helper object holding a reference to the
connection: `_note_sent`, `_rack_on_ack` and `_prr_on_ack` run for every
segment sent or ACK received, and as methods of the connection they read its
variables with one attribute lookup each (a helper object would add
`self.conn.` to every read, or copies of state to keep in step), so the
per-segment path costs what it did before the split.

Touches only its connection's variables, congestion control and scoreboard,
and sends through the connection's output.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Protocol

from .tcp_ecn import TcpEcn
from .tcp_sack import MAX_REORDERING
from .tcp_tcb import (
    ACK,
    FIN,
    MASK,
    MS,
    RST,
    SEC,
    SENDS_DATA,
    SYN,
    TIME_WAIT,
    unwrap,
)
from .wire import tcp as wire_tcp


class AckState(Protocol):
    """What `disordered_ack` reads of a connection (or of its TIME-WAIT record)."""

    rcv_nxt: int
    snd_una: int
    snd_wl1: int
    snd_wnd: int
    snd_wscale: int
    ts_recent: int
    rto_ns: int


def disordered_ack(state: AckState, seg: wire_tcp.TcpPacket, seq: int, tsval: int,
                   payload_len: int) -> bool:
    """Linux's tcp_disordered_ack: a pure duplicate ACK whose timestamp is older than
    TS.Recent only because ACKs were reordered passes PAWS, so its SACK blocks count.
    It carries no data, is at RCV.NXT, acknowledges SND.UNA, would not update the
    window, and its timestamp is within one RTO of TS.Recent."""
    flags = seg.flags
    if not flags & ACK or flags & (SYN | FIN | RST) or payload_len:
        return False
    if seq != state.rcv_nxt or unwrap(seg.ack, state.snd_una) != state.snd_una:
        return False
    window = seg.window << state.snd_wscale
    if seq > state.snd_wl1 or (seq == state.snd_wl1 and window > state.snd_wnd):
        return False
    return ((state.ts_recent - tsval) & MASK) <= state.rto_ns * 1024 // SEC


class TcpRecovery(TcpEcn):
    """Loss detection and recovery of one connection."""

    # ------------------------------------------------------------------ fast recovery
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


    # ------------------------------------------------------------------ extensions
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
        if not self.sack_enabled or end <= start or self.state is TIME_WAIT:
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
            due = self._timer_due("rack")
            if due < 0 or due > now + wait:
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
        rtx_due = self._timer_due("rtx")
        if rtx_due >= 0 and due >= rtx_due:
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
        """`disordered_ack` for this connection."""
        return disordered_ack(self, seg, seq, tsval, len(seg.payload))
