"""HyStart++ (RFC 9406): leave slow start when the RTT starts to rise, before a loss.

Touches nothing but numbers: RTT samples and round boundaries in, a growth
divisor and an "end slow start now" verdict out. The congestion-control
algorithm (``NewReno``, and ``Cubic`` through it) owns one and asks it on
each ACK of slow start; the connection engine says when a round begins (the
first ACK at or beyond the SND.MAX recorded at the previous round's start).

Theory of operation (RFC 9406 §4.2), per round of slow start:

- The lowest RTT sample of the round is kept; after ``N_RTT_SAMPLE`` samples,
  if it has risen by at least ``clamp(lastRoundMinRTT / 8, 4 ms, 16 ms)``
  over the previous round's, slow start ends in *Conservative Slow Start*
  (CSS): growth is divided by ``CSS_GROWTH_DIVISOR`` and the round's minimum
  becomes the CSS baseline.
- In CSS, a round whose minimum (after ``N_RTT_SAMPLE`` samples) falls below
  the baseline shows the exit was spurious: back to slow start.
- After ``CSS_ROUNDS`` rounds of CSS, slow start ends: ssthresh = cwnd and
  congestion avoidance takes over.

Used in the initial slow start only (while ssthresh is still "arbitrarily
high"), as RFC 9406 §4.3 recommends; after a loss, slow start runs to
ssthresh as before. A congestion event ends it (the algorithm sets ssthresh).
"""

from __future__ import annotations

__all__ = ["CSS_GROWTH_DIVISOR", "CSS_ROUNDS", "N_RTT_SAMPLE", "HyStartPlusPlus"]

MS = 1_000_000
MIN_RTT_THRESH_NS = 4 * MS
MAX_RTT_THRESH_NS = 16 * MS
MIN_RTT_DIVISOR = 8
N_RTT_SAMPLE = 8
CSS_GROWTH_DIVISOR = 4
CSS_ROUNDS = 5


class HyStartPlusPlus:
    """The per-round RTT watch of RFC 9406; see the module docstring."""

    __slots__ = ("css_baseline_ns", "css_rounds", "current_min_ns", "in_css", "last_min_ns",
                 "samples")

    def __init__(self) -> None:
        self.last_min_ns: int | None = None  # lastRoundMinRTT
        self.current_min_ns: int | None = None  # currentRoundMinRTT
        self.samples = 0  # rttSampleCount
        self.css_baseline_ns: int | None = None  # cssBaselineMinRtt
        self.css_rounds = 0
        self.in_css = False

    def round_start(self) -> bool:
        """A new round begins; True when CSS has run its CSS_ROUNDS: end slow start."""
        self.last_min_ns = self.current_min_ns
        self.current_min_ns = None
        self.samples = 0
        if self.in_css:
            self.css_rounds += 1
            return self.css_rounds >= CSS_ROUNDS
        return False

    def rtt_sample(self, rtt_ns: int) -> None:
        current = rtt_ns if self.current_min_ns is None else min(self.current_min_ns, rtt_ns)
        self.current_min_ns = current
        self.samples += 1
        if self.samples < N_RTT_SAMPLE:
            return
        if not self.in_css:
            last = self.last_min_ns
            if last is None:
                return
            thresh = max(MIN_RTT_THRESH_NS, min(last // MIN_RTT_DIVISOR, MAX_RTT_THRESH_NS))
            if current >= last + thresh:
                self.in_css = True
                self.css_baseline_ns = current
                self.css_rounds = 0
        elif self.css_baseline_ns is not None and current < self.css_baseline_ns:
            self.in_css = False  # the RTT fell again: the exit was spurious
            self.css_baseline_ns = None

    @property
    def growth_divisor(self) -> int:
        return CSS_GROWTH_DIVISOR if self.in_css else 1
