"""TCP timers (RFC 9293 §3.10.8, RFC 6298): the part of `TcpConnection` that arms
them and acts when they fire.

Rules
-----
- A timer kind is a short string, the key of `TIMERS` and of the connection's
  `_timers` (the armed entries of the layer's `TcpTimerQueue`). Strings, not an
  Enum: `_arm` runs on every ACK, and a str key hashes in C where an Enum
  member's `__hash__` is a Python call.
- What a timer does when it fires is its row in `TIMERS`: the method to call,
  and whether the application must be woken afterwards (readiness may have
  changed). `_fire` looks the row up; nothing else dispatches on the kind.
- At most one timer of each kind is armed; arming it again moves it. Moving it
  later is lazy (as Linux's sk_reset_timer on a pending timer is cheap): the
  queued entry already armed stays, its `due` holds the new due time, and when
  it fires early `_fire` queues it again for the due time. Every ACK pushes the
  retransmission and TLP timers later; this way a bulk transfer arms about one
  timer per RTO instead of two per ACK. The entry's `when` is when it fires.
  Moving a timer earlier re-arms it.
- Timers are armed on the layer's `TcpTimerQueue` (stack/tcp_timer_queue.py),
  which keeps every connection's timers behind one driver timer, with the
  driver's meaning: each fires at its time exactly.

Kinds
-----
rtx         retransmission timeout (RFC 6298), doubling as the persist timer
            (zero-window probe, RFC 9293 §3.8.6.1) when nothing is in flight;
            SYN and SYN-ACK retransmission before the handshake completes
tlp         tail loss probe (RFC 8985 §7), stack/tcp_recovery.py
rack        RACK reordering-window expiry (RFC 8985 §6.3), stack/tcp_recovery.py
dack        delayed ACK
keepalive   SO_KEEPALIVE probes (Linux's tcp_keepalive_* semantics)
timewait    the end of 2*MSL in TIME-WAIT
fin_wait_2  an orphaned connection's FIN-WAIT-2 limit (tcp_fin_timeout)

The RTT estimator (RFC 6298 §2, samples from timestamps or Karn's rule) lives
here too, since it sets the retransmission timeout.

Written as a part of the connection class (it inherits `TcpRecovery`; the
chain is in stack/tcp_tcb.py), not as a helper object holding a reference to
the connection: `_arm` and `_rtt_sample` run for every ACK, and as methods of
the connection they read its variables with one attribute lookup each, exactly
as before the split.

Touches only its connection's variables and its layer's timer queue.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import NamedTuple

from .tcp_recovery import TcpRecovery
from .tcp_tcb import (
    ACK,
    FIN_WAIT_2,
    MS,
    SEC,
    SENDS_DATA,
    SYN_RECEIVED,
    SYN_SENT,
    SYNCHRONIZED,
    TIME_WAIT,
)


class TimerKind(NamedTuple):
    """What one kind of timer does when it fires."""

    on_fire: Callable[[TcpTimers], None]
    wakes: bool  # readiness may have changed: wake the application afterwards


def _send_delayed_ack(conn: TcpTimers) -> None:
    if conn.ack_pending:
        conn._send_ack()


def _time_wait_over(conn: TcpTimers) -> None:
    conn._set_closed()


def _fin_wait_2_timeout(conn: TcpTimers) -> None:
    conn._abort(0, send_rst=False)


class TcpTimers(TcpRecovery):
    """Timers and the RTT estimator of one connection."""

    def _arm(self, kind: str, delay_ns: int) -> None:
        when = self.now() + delay_ns
        timers = self._timers
        old = timers.get(kind)
        if old is not None:
            if when >= old.when:
                old.due = when  # later: the armed entry sleeps on (`_fire`)
                return
            old.cancel()
        timers[kind] = self.layer.timer_queue.fire_at(when, self, kind)

    def _cancel(self, kind: str) -> None:
        timer = self._timers.pop(kind, None)
        if timer is not None:
            timer.cancel()

    def _cancel_all(self) -> None:
        timers = self._timers
        if timers:
            for timer in timers.values():
                timer.cancel()
            timers.clear()

    def _fire(self, kind: str) -> None:
        timer = self._timers.get(kind)
        if timer is not None and timer.due > self.now():  # moved later since it was armed
            self.layer.timer_queue.requeue(timer, self)
            return
        if timer is not None:
            del self._timers[kind]
        row = TIMERS[kind]
        row.on_fire(self)
        if row.wakes:
            self._wake()

    def _arm_persist(self) -> None:
        if "persist" in self._timers or "rtx" in self._timers:
            return
        delay = min(self.rto_ns << min(self.backoff, 16), self.config.rto_max_ns)
        self._arm("rtx", delay)  # the retransmission timer doubles as the persist timer


    def _on_retransmit_timer(self) -> None:
        state = self.state
        cfg = self.config
        if state is SYN_SENT:
            self.retries += 1
            if self.retries > cfg.syn_retries:
                self._abort(self.soft_error or errno.ETIMEDOUT, send_rst=False)
                return
            self.rto_ns = min(self.rto_ns * 2, cfg.rto_max_ns)
            self.stats["retransmits"] += 1
            self._send_syn()
            self._arm("rtx", self.rto_ns)
            return
        if state is SYN_RECEIVED:
            self.retries += 1
            if self.retries > cfg.synack_retries:
                self._abort(errno.ETIMEDOUT, send_rst=False)
                return
            self.rto_ns = min(self.rto_ns * 2, cfg.rto_max_ns)
            self.stats["retransmits"] += 1
            self._send_syn()
            self._arm("rtx", self.rto_ns)
            return
        if state not in SENDS_DATA and state not in (FIN_WAIT_2,):
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
        if not self.keepalive or self.state not in SYNCHRONIZED - {TIME_WAIT}:
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


TIMERS: dict[str, TimerKind] = {
    "rtx": TimerKind(lambda conn: conn._on_retransmit_timer(), wakes=True),
    "tlp": TimerKind(lambda conn: conn._on_tlp_timer(), wakes=False),  # only sends
    "rack": TimerKind(lambda conn: conn._on_rack_timer(), wakes=False),
    "dack": TimerKind(_send_delayed_ack, wakes=True),
    "keepalive": TimerKind(lambda conn: conn._on_keepalive_timer(), wakes=True),
    "timewait": TimerKind(_time_wait_over, wakes=True),
    "fin_wait_2": TimerKind(_fin_wait_2_timeout, wakes=True),
}
