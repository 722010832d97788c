"""NewReno congestion control (RFC 5681, RFC 3465 byte counting, RFC 6582 recovery exit).

Touches nothing but numbers: bytes and nanoseconds in, ``cwnd`` and
``ssthresh`` out. No clock, no segments, no timers; the connection engine
decides when an event happened and calls the matching method.

Rules, all in bytes:

- Initial window (RFC 6928): ``min(10*MSS, max(2*MSS, 14600))``.
- Slow start while ``cwnd < ssthresh``: each ACK grows cwnd by the bytes it
  newly acknowledges, at most L = 2*MSS (RFC 3465 Appropriate Byte
  Counting), so cwnd doubles per round trip with or without delayed ACKs.
  cwnd stops at ssthresh; bytes of that ACK left over count towards
  congestion avoidance.
- Congestion avoidance: acknowledged bytes accumulate in ``bytes_acked``;
  each time they reach cwnd, cwnd grows by one MSS (RFC 3465 2.1). That is
  RFC 5681's ``cwnd += MSS*MSS/cwnd`` per ACK, counted exactly: one MSS per
  window of data acknowledged, i.e. per round trip.
- Growth needs a full pipe (RFC 7661's validated window): an ACK grows cwnd
  only when the flight it found (``in_flight``) was at least half of cwnd.
  An application-limited sender therefore cannot inflate cwnd far beyond
  what it has really used.
- Loss found by duplicate ACKs or SACK (``on_congestion``): ssthresh =
  max(FlightSize/2, 2*MSS) (RFC 5681 eq. 4) and cwnd = ssthresh; the
  engine runs fast recovery (any inflation or PRR is the engine's).
  ``on_recovery_exit`` sets cwnd = ssthresh (RFC 6582 3.2 step 3, the
  "full" deflation).
- Retransmission timeout: ssthresh as above, cwnd = 1 MSS (the loss
  window). One loss episode reduces ssthresh once: if the timer fires
  again before any new data is acknowledged (RFC 5681 3.1: a segment
  retransmitted by the timer was lost again), or fires during fast
  recovery (which already set ssthresh; Linux does the same), ssthresh is
  held and only cwnd drops.
- Restart after idle (RFC 5681 4.1): cwnd = min(cwnd, IW); ssthresh first
  remembers 3/4 of the old cwnd (RFC 2861 3, as Linux does), so slow start
  climbs quickly back to where the connection was.
- ``set_mss`` before anything happened recomputes the initial window for
  the new MSS; later it keeps cwnd and ssthresh in bytes (RFC 5681 counts
  bytes) and only changes the step.
- HyStart++ (RFC 9406, ``hystart``) watches the initial slow start: when
  the RTT rises it divides growth by 4 (Conservative Slow Start) and, after
  5 rounds of it, sets ssthresh = cwnd; a falling RTT resumes slow start.
  ``hystart=False`` turns it off. The engine reports rounds
  (``on_round_start``) and passes per-ACK RTT samples to ``on_ack``.
- ``snapshot()`` / ``undo(state)``: the engine found a recovery spurious
  (D-SACK, Eifel): cwnd and ssthresh go back to at least what they were
  (as Linux's undo: the larger of now and before).
"""

from __future__ import annotations

from typing import Any

from .hystart import HyStartPlusPlus

__all__ = ["INITIAL_SSTHRESH", "NewReno", "initial_window"]

#: ssthresh before the first loss: "arbitrarily high" (RFC 5681 3.1).
INITIAL_SSTHRESH = 2**31


def initial_window(mss: int) -> int:
    """RFC 6928 initial window in bytes: ``min(10*MSS, max(2*MSS, 14600))``."""
    return min(10 * mss, max(2 * mss, 14600))


class NewReno:
    """RFC 5681 slow start and congestion avoidance with byte counting; all sizes in bytes."""

    name = "newreno"

    __slots__ = (
        "_in_recovery",
        "_pristine",
        "_timed_out",
        "bytes_acked",
        "cwnd",
        "hystart",
        "mss",
        "ssthresh",
    )

    cwnd: int
    ssthresh: int
    mss: int
    #: RFC 3465 congestion-avoidance byte counter.
    bytes_acked: int

    def __init__(self, mss: int, *, hystart: bool = True) -> None:
        if mss <= 0:
            raise ValueError(f"MSS must be positive, not {mss}")
        self.mss = mss
        self.cwnd = initial_window(mss)
        self.ssthresh = INITIAL_SSTHRESH
        self.bytes_acked = 0
        self._pristine = True  # nothing happened yet: set_mss may recompute IW
        self._timed_out = False  # an RTO fired and no new data was acknowledged since
        self._in_recovery = False  # between on_congestion and on_recovery_exit
        self.hystart: HyStartPlusPlus | None = HyStartPlusPlus() if hystart else None

    @property
    def in_slow_start(self) -> bool:
        return self.cwnd < self.ssthresh

    def set_mss(self, mss: int) -> None:
        if mss <= 0:
            raise ValueError(f"MSS must be positive, not {mss}")
        self.mss = mss
        if self._pristine:
            self.cwnd = initial_window(mss)
        else:
            self.cwnd = max(self.cwnd, mss)
            self.ssthresh = max(self.ssthresh, 2 * mss)

    # --- events ---------------------------------------------------------------

    def on_ack(self, now_ns: int, acked: int, rtt_ns: int | None, in_flight: int,
               acks: int = 1) -> None:
        """A cumulative ACK of ``acked`` new bytes, outside recovery.

        ``in_flight`` is the FlightSize the ACK found: bytes outstanding as
        it arrived, the ``acked`` bytes included. ``acks``: how many ACKs a
        wire would have carried for this one -- a receiver that took
        super-segments whole (GRO) ACKs many segments at once, and Linux
        counts each segment such an ACK covers; byte counting's 2*MSS limit
        then applies per wire ACK.
        """
        if acked <= 0:
            return
        hystart = self.hystart
        if hystart is not None and rtt_ns and self.cwnd < self.ssthresh:
            hystart.rtt_sample(rtt_ns)
        self._pristine = False
        self._timed_out = False
        if 2 * in_flight < self.cwnd:
            self._app_limited(now_ns)
            return
        if self.cwnd < self.ssthresh:
            acked = self._slow_start(acked, acks)
            if acked <= 0:
                return
        self._avoid_congestion(now_ns, acked)

    def on_round_start(self, now_ns: int) -> None:
        """A new round trip begins (HyStart++ rounds); may end slow start."""
        hystart = self.hystart
        if hystart is None:
            return
        if self.ssthresh != INITIAL_SSTHRESH:
            self.hystart = None  # only the initial slow start (RFC 9406 §4.3)
        elif hystart.round_start():
            self.ssthresh = self.cwnd  # CSS ran its rounds: congestion avoidance
            self.hystart = None

    def snapshot(self) -> tuple[Any, ...]:
        """What ``undo`` restores: the window before a loss episode."""
        return (self.cwnd, self.ssthresh)

    def undo(self, state: tuple[Any, ...]) -> None:
        """The episode was spurious: back to at least the window from ``snapshot``."""
        cwnd, ssthresh = state[0], state[1]
        self.cwnd = max(self.cwnd, cwnd)
        self.ssthresh = max(self.ssthresh, ssthresh)
        self._in_recovery = False
        self._timed_out = False
        self.bytes_acked = 0

    def on_congestion(self, now_ns: int, in_flight: int) -> None:
        """Loss detected by duplicate ACKs or SACK: entering fast recovery."""
        self._pristine = False
        self._in_recovery = True
        self.ssthresh = max(in_flight // 2, 2 * self.mss)
        self.cwnd = self.ssthresh
        self.bytes_acked = 0

    def on_recovery_exit(self, now_ns: int) -> None:
        """Fast recovery is over (a full ACK): deflate to ssthresh."""
        self._in_recovery = False
        self.cwnd = self.ssthresh
        self.bytes_acked = 0

    def on_timeout(self, now_ns: int, in_flight: int) -> None:
        """The retransmission timer fired: back to the loss window and slow start."""
        self._pristine = False
        if self._reduce_again():
            self.ssthresh = max(in_flight // 2, 2 * self.mss)
        self._timed_out = True
        self._in_recovery = False
        self.cwnd = self.mss
        self.bytes_acked = 0

    def on_idle_restart(self, now_ns: int) -> None:
        """Sending resumes after an idle period longer than the RTO."""
        self._pristine = False
        iw = initial_window(self.mss)
        if self.cwnd > iw:
            self.ssthresh = max(self.ssthresh, self.cwnd * 3 // 4)
            self.cwnd = iw
        self.bytes_acked = 0

    # --- pieces a subclass may replace ---------------------------------------

    def _reduce_again(self) -> bool:
        """Whether a timeout starts a new loss episode (and so recomputes ssthresh)."""
        return not (self._timed_out or self._in_recovery)

    def _slow_start(self, acked: int, acks: int = 1) -> int:
        """Grow cwnd by ``min(acked, 2*MSS)`` per wire ACK, not past ssthresh; return bytes
        left over."""
        room = self.ssthresh - self.cwnd
        step = min(acked, 2 * self.mss * acks)
        if self.hystart is not None and self.hystart.in_css:
            step = max(1, step // self.hystart.growth_divisor)  # RFC 9406 CSS
        if step < room:
            self.cwnd += step
            return 0
        self.cwnd = self.ssthresh
        return acked - room

    def _avoid_congestion(self, now_ns: int, acked: int) -> None:
        """One MSS per cwnd bytes acknowledged (RFC 3465 2.1)."""
        self.bytes_acked += acked
        if self.bytes_acked >= self.cwnd:
            self.bytes_acked -= self.cwnd
            self.cwnd += self.mss

    def _app_limited(self, now_ns: int) -> None:
        """An ACK that found the pipe less than half full: cwnd does not grow."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} cwnd={self.cwnd} ssthresh={self.ssthresh} mss={self.mss}>"
