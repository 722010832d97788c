"""CUBIC congestion control (RFC 9438), with HyStart++ (RFC 9406) in slow start.

Touches nothing but numbers: bytes and nanoseconds in, ``cwnd`` and
``ssthresh`` out. Time comes only from the ``now_ns`` arguments and round-
trip time only from the ``rtt_ns`` samples, so a run is reproducible in
virtual time.

Theory of operation
-------------------

CUBIC replaces Reno's linear growth in congestion avoidance by a cubic
function of the time since the current congestion-avoidance stage (the
*epoch*) began (RFC 9438 4.2)::

    W_cubic(t) = C * (t - K)^3 + W_max        C = 0.4 segments/s^3
    K = cbrt((W_max - cwnd_epoch) / C)         seconds

W_max is the window where the last congestion event happened. The curve
leaves ``cwnd_epoch`` (the window when the epoch began, normally
``beta_cubic * W_max`` with beta_cubic = 0.7) steeply, flattens out as it
approaches W_max at t = K (the *concave* region: probe carefully near the
last known limit), then climbs ever faster beyond it (the *convex* region:
the limit has moved, find the new one). The shape depends on elapsed time,
not on ACK arrivals, so flows with different RTTs grow alike.

On each new ACK in congestion avoidance, with t the time since the epoch:

1. ``target = W_cubic(t + RTT)`` clamped to ``[cwnd, 1.5*cwnd]`` (4.2):
   where the curve will be one round trip from now.
2. The Reno-friendly estimate (4.3): ``W_est`` starts at ``cwnd_epoch`` and
   grows by ``alpha_cubic * segments_acked / cwnd`` per ACK, i.e. by
   alpha_cubic segments per RTT, with alpha_cubic = 3*(1-beta)/(1+beta)
   (about 0.53, which makes AIMD(alpha, 0.7) as aggressive as Reno's
   AIMD(1, 0.5)); once W_est reaches ``cwnd_prior`` (the window before the
   last reduction) alpha_cubic becomes 1.
3. If ``W_cubic(t) < W_est`` CUBIC is in the Reno-friendly region and cwnd
   is raised to W_est. This dominates when RTT and window are small (low
   bandwidth-delay product), where the cubic curve would be slower than
   Reno.
4. Otherwise (concave or convex region) cwnd grows by
   ``(target - cwnd) / cwnd`` per segment acknowledged, so that it reaches
   ``target`` after one round trip.

A congestion event (4.6, 4.7) records W_max = cwnd, or with *fast
convergence* ``cwnd * (1 + beta) / 2`` when cwnd is below the previous
W_max (the flow's share is shrinking: release bandwidth sooner); ssthresh =
cwnd = ``beta * cwnd`` (at least 2 MSS). A retransmission timeout (4.8)
sets ssthresh the same way and cwnd to 1 MSS; slow start then runs up to
ssthresh and the next epoch starts with K = 0 and W_max = cwnd_epoch
(convex growth from where it is).

Decisions
---------

- **Bytes throughout.** cwnd, ssthresh, W_max, W_est and cwnd_prior are
  bytes (floats where the RFC's arithmetic is fractional); the RFC's
  segment formulas are applied with ``segments = bytes / MSS``, so
  ``W_cubic`` in bytes is ``C*MSS*(t-K)^3 + W_max``. Fractional growth is
  carried between ACKs so nothing is lost to rounding. Growth is counted
  per byte acknowledged (segments_acked = acked / MSS), which is what RFC
  9438 4.3 asks for with Appropriate Byte Counting.
- **ssthresh from cwnd, not FlightSize.** RFC 9438 4.6 allows either
  provided cwnd cannot outgrow the data actually in flight; the shared
  Reno machinery grows cwnd only when the flight is at least half of it
  (RFC 7661's validated window). Linux does the same, and it avoids
  collapsing the window of an application-limited flow.
- **The epoch starts at the first ACK of congestion avoidance** (after
  recovery, or when slow start reaches ssthresh), not at the loss, as
  4.2 defines t. ACKs that find the pipe less than half full push the epoch
  forward by the time since the previous ACK, so t excludes application-
  limited periods (4.2's MUST NOT).
- **RTT** is smoothed here from the samples the engine passes (RFC 6298
  gain 1/8); passing the connection's SRTT instead works too. Before any
  sample the target is ``W_cubic(t)``.
- **Fast convergence** is on by default (4.7 SHOULD); pass
  ``fast_convergence=False`` for a lone flow.
- Slow start, byte counting, the once-per-episode rule for ssthresh on
  timeouts, idle restart and ``set_mss`` are Reno's (``NewReno``), and so is
  HyStart++ (RFC 9438 4.10 recommends it; ``hystart.py``). ``set_mss`` and
  idle restart also end the epoch (K depends on the MSS).
- **Undo** of a spurious recovery restores W_max and cwnd_prior with the
  window, and ends the epoch.
"""

from __future__ import annotations

from typing import Any

from .newreno import NewReno

__all__ = ["ALPHA_CUBIC", "BETA_CUBIC", "C", "Cubic"]

#: Aggressiveness of the cubic curve, segments per second cubed (RFC 9438 4.1).
C = 0.4
#: Multiplicative decrease factor.
BETA_CUBIC = 0.7
#: Reno-friendly additive increase, segments per RTT (RFC 9438 4.3).
ALPHA_CUBIC = 3 * (1 - BETA_CUBIC) / (1 + BETA_CUBIC)

_NS = 1_000_000_000


class Cubic(NewReno):
    """RFC 9438 CUBIC; all window sizes in bytes, times in nanoseconds."""

    name = "cubic"

    __slots__ = (
        "_alpha",
        "_carry",
        "_cwnd_epoch",
        "_last_ack_ns",
        "_srtt_ns",
        "_t_epoch_ns",
        "cwnd_prior",
        "fast_convergence",
        "k",
        "w_est",
        "w_max",
    )

    #: Window (bytes) at the last congestion event, after fast convergence;
    #: 0 before the first event and after a timeout (the next epoch sets it).
    w_max: float
    #: Seconds from the epoch start until W_cubic reaches W_max.
    k: float
    #: Reno-friendly window estimate, bytes.
    w_est: float
    #: cwnd when ssthresh was last set, bytes.
    cwnd_prior: float
    fast_convergence: bool

    def __init__(self, mss: int, *, fast_convergence: bool = True,
                 hystart: bool = True) -> None:
        super().__init__(mss, hystart=hystart)
        self.fast_convergence = fast_convergence
        self.w_max = 0.0
        self.k = 0.0
        self.w_est = 0.0
        self.cwnd_prior = 0.0
        self._alpha = ALPHA_CUBIC
        self._carry = 0.0  # growth not yet added to cwnd, bytes (< 1)
        self._cwnd_epoch = 0
        self._t_epoch_ns: int | None = None  # None: no epoch running
        self._last_ack_ns = 0
        self._srtt_ns: int | None = None

    @property
    def epoch_start_ns(self) -> int | None:
        """When the current congestion-avoidance epoch began (``None``: none running)."""
        return self._t_epoch_ns

    def w_cubic(self, t: float) -> float:
        """RFC 9438 eq. 1 in bytes: the window ``t`` seconds into the epoch."""
        d = t - self.k
        return C * self.mss * d * d * d + self.w_max

    # --- events ---------------------------------------------------------------

    def on_ack(self, now_ns: int, acked: int, rtt_ns: int | None, in_flight: int,
               acks: int = 1) -> None:
        if rtt_ns is not None and rtt_ns > 0:
            srtt = self._srtt_ns
            self._srtt_ns = rtt_ns if srtt is None else srtt + ((rtt_ns - srtt) >> 3)
        super().on_ack(now_ns, acked, rtt_ns, in_flight, acks)

    def on_congestion(self, now_ns: int, in_flight: int) -> None:
        self._pristine = False
        self._in_recovery = True
        cwnd = self.cwnd
        if self.fast_convergence and cwnd < self.w_max:
            self.w_max = cwnd * (1 + BETA_CUBIC) / 2
        else:
            self.w_max = float(cwnd)
        self.cwnd_prior = float(cwnd)
        self.ssthresh = max(int(cwnd * BETA_CUBIC), 2 * self.mss)
        self.cwnd = self.ssthresh
        self.bytes_acked = 0
        self._end_epoch()

    def on_recovery_exit(self, now_ns: int) -> None:
        super().on_recovery_exit(now_ns)
        self._end_epoch()

    def snapshot(self) -> tuple[Any, ...]:
        return (self.cwnd, self.ssthresh, self.w_max, self.cwnd_prior)

    def undo(self, state: tuple[Any, ...]) -> None:
        super().undo(state)
        self.w_max = state[2]  # the congestion event did not happen
        self.cwnd_prior = state[3]
        self._end_epoch()

    def on_timeout(self, now_ns: int, in_flight: int) -> None:
        self._pristine = False
        if self._reduce_again():
            self.cwnd_prior = float(self.cwnd)
            self.ssthresh = max(int(self.cwnd * BETA_CUBIC), 2 * self.mss)
        self.w_max = 0.0  # 4.8: the next epoch starts with K = 0, W_max = cwnd_epoch
        self._timed_out = True
        self._in_recovery = False
        self.cwnd = self.mss
        self.bytes_acked = 0
        self._end_epoch()

    def on_idle_restart(self, now_ns: int) -> None:
        super().on_idle_restart(now_ns)
        self._end_epoch()

    def set_mss(self, mss: int) -> None:
        super().set_mss(mss)
        self._end_epoch()

    # --- congestion avoidance -------------------------------------------------

    def _end_epoch(self) -> None:
        self._t_epoch_ns = None
        self._carry = 0.0

    def _start_epoch(self, now_ns: int) -> None:
        cwnd = self.cwnd
        self._t_epoch_ns = now_ns
        self._last_ack_ns = now_ns
        self._cwnd_epoch = cwnd
        self.w_est = float(cwnd)
        self._alpha = ALPHA_CUBIC if self.w_est < self.cwnd_prior else 1.0
        self._carry = 0.0
        if self.w_max <= cwnd:
            # no congestion event yet, or after a timeout (4.8): plateau here
            self.w_max = float(cwnd)
            self.k = 0.0
        else:
            self.k = ((self.w_max - cwnd) / (C * self.mss)) ** (1 / 3)

    def _app_limited(self, now_ns: int) -> None:
        if self._t_epoch_ns is not None:
            self._t_epoch_ns += now_ns - self._last_ack_ns
            self._last_ack_ns = now_ns

    def _avoid_congestion(self, now_ns: int, acked: int) -> None:
        epoch_ns = self._t_epoch_ns
        if epoch_ns is None:
            self._start_epoch(now_ns)
            epoch_ns = now_ns  # what `_start_epoch` set `_t_epoch_ns` to
        self._last_ack_ns = now_ns
        cwnd = self.cwnd
        t = (now_ns - epoch_ns) / _NS

        # Reno-friendly estimate (eq. 4 with byte counting).
        w_est = self.w_est + self._alpha * acked * self.mss / cwnd
        self.w_est = w_est
        if w_est >= self.cwnd_prior:
            self._alpha = 1.0

        if self.w_cubic(t) < w_est:
            # Reno-friendly region: cwnd follows W_est (never shrinks).
            if w_est > cwnd:
                self.cwnd = int(w_est)
                self._carry = w_est - self.cwnd
            return

        # Concave (cwnd < W_max) or convex region: close the gap to target in one RTT.
        rtt = 0.0 if self._srtt_ns is None else self._srtt_ns / _NS
        target = self.w_cubic(t + rtt)
        if target <= cwnd:
            return
        target = min(target, 1.5 * cwnd)
        carry = self._carry + (target - cwnd) * acked / cwnd
        whole = int(carry)
        self.cwnd = cwnd + whole
        self._carry = carry - whole

    def __repr__(self) -> str:
        return (
            f"<Cubic cwnd={self.cwnd} ssthresh={self.ssthresh} mss={self.mss}"
            f" w_max={self.w_max:.0f} k={self.k:.3f}s w_est={self.w_est:.0f}>"
        )
