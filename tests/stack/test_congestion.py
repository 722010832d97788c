"""Congestion control (stack.congestion): NewReno and CUBIC window arithmetic.

Every test drives an algorithm with explicit times through a tiny ACK clock:
a window-limited sender has ``cwnd`` bytes in flight, their ACKs return
evenly spread over one round trip, and each ACK frees room that is refilled
at once (so every ACK finds a FlightSize of ``cwnd``). CUBIC's
expected windows are computed here from RFC 9438's formulas, independently
of the implementation.
"""

from __future__ import annotations

import math

import pytest

from stack.congestion import (
    INITIAL_SSTHRESH,
    CongestionControl,
    Cubic,
    NewReno,
    initial_window,
    make,
)
from stack.congestion.cubic import ALPHA_CUBIC, BETA_CUBIC, C

MSS = 1000
MS = 1_000_000  # nanoseconds


def run_round(cc: NewReno, now: int, rtt: int, ack_bytes: int = MSS) -> int:
    """One round trip of ACKs for the ``cwnd`` bytes in flight at ``now``; returns the end time.

    Full ACKs of ``ack_bytes`` each, then one for the remainder.
    """
    window = cc.cwnd
    sizes = [ack_bytes] * (window // ack_bytes)
    if window % ack_bytes:
        sizes.append(window % ack_bytes)
    for i, size in enumerate(sizes, 1):
        cc.on_ack(now + rtt * i // len(sizes), size, rtt, cc.cwnd)
    return now + rtt


def grow_to(cc: NewReno, window: int, now: int, rtt: int) -> int:
    """Slow start until cwnd >= ``window``; returns the time."""
    while cc.cwnd < window:
        now = run_round(cc, now, rtt)
    return now


def cubic_w(t: float, w_max_segments: float, k: float) -> float:
    """RFC 9438 eq. 1, in segments."""
    return C * (t - k) ** 3 + w_max_segments


# --- construction and the interface ------------------------------------------


@pytest.mark.parametrize(
    ("mss", "iw"), [(536, 5360), (1000, 10000), (1460, 14600), (4000, 14600), (9000, 18000)]
)
def test_initial_window_follows_rfc_6928(mss: int, iw: int) -> None:
    assert initial_window(mss) == iw
    for name in ("newreno", "cubic"):
        cc = make(name, mss)
        assert (cc.cwnd, cc.ssthresh) == (iw, INITIAL_SSTHRESH)


def test_make_knows_cubic_newreno_and_reno_and_rejects_others() -> None:
    assert isinstance(make("cubic", MSS), Cubic)
    assert type(make("newreno", MSS)) is NewReno and type(make("Reno", MSS)) is NewReno
    for name in ("cubic", "newreno", "reno"):
        cc = make(name, MSS)
        assert isinstance(cc, CongestionControl)
        assert cc.name == ("cubic" if name == "cubic" else "newreno")
    with pytest.raises(ValueError, match="bbr"):
        make("bbr", MSS)
    with pytest.raises(ValueError):
        NewReno(0)


def test_set_mss_before_any_event_recomputes_the_initial_window() -> None:
    cc = make("cubic", 536)
    cc.set_mss(1460)
    assert cc.cwnd == 14600
    cc.on_ack(MS, 1460, MS, 14600)
    grown = cc.cwnd
    cc.set_mss(1200)  # later, PMTU: the window keeps its size in bytes
    assert cc.cwnd == grown and cc.mss == 1200


# --- slow start ---------------------------------------------------------------


@pytest.mark.parametrize("cls", [NewReno, Cubic])
@pytest.mark.parametrize("ack_every", [1, 2], ids=["every-segment", "delayed-acks"])
def test_slow_start_doubles_cwnd_every_round_trip(cls: type[NewReno], ack_every: int) -> None:
    cc = cls(MSS)
    now = 0
    for _ in range(6):
        before = cc.cwnd
        now = run_round(cc, now, 50 * MS, ack_every * MSS)
        assert cc.cwnd == 2 * before
    assert cc.cwnd == 64 * initial_window(MSS)


def test_byte_counting_limits_a_stretch_ack_to_two_mss() -> None:
    cc = NewReno(MSS)
    cc.on_ack(MS, 8 * MSS, MS, 10 * MSS)
    assert cc.cwnd == initial_window(MSS) + 2 * MSS


def test_slow_start_stops_at_ssthresh_and_the_rest_counts_toward_avoidance() -> None:
    cc = NewReno(MSS)
    now = run_round(cc, 0, 10 * MS)  # 20000
    cc.on_congestion(now, 20 * MSS)  # ssthresh 10000
    cc.on_timeout(now, 20 * MSS)  # cwnd 1000, ssthresh held at 10000
    assert (cc.cwnd, cc.ssthresh) == (MSS, 10 * MSS)
    cc.cwnd = 9 * MSS + 500
    cc.on_ack(now, 2 * MSS, MS, 9 * MSS)
    assert cc.cwnd == 10 * MSS  # capped at ssthresh
    assert cc.bytes_acked == 2 * MSS - 500  # the leftover went to congestion avoidance


# --- NewReno ------------------------------------------------------------------


def test_newreno_congestion_avoidance_adds_one_mss_per_round_trip() -> None:
    cc = NewReno(MSS)
    now = grow_to(cc, 40 * MSS, 0, 20 * MS)
    cc.on_congestion(now, cc.cwnd)
    cc.on_recovery_exit(now)
    assert cc.cwnd == cc.ssthresh == 20 * MSS
    for rounds in range(1, 31):
        now = run_round(cc, now, 20 * MS, 2 * MSS)
        assert cc.cwnd == (20 + rounds) * MSS


def test_newreno_halves_the_flight_on_congestion_with_a_two_mss_floor() -> None:
    cc = NewReno(MSS)
    now = grow_to(cc, 40 * MSS, 0, 20 * MS)
    cc.on_congestion(now, 31 * MSS)  # flight, not cwnd
    assert cc.ssthresh == cc.cwnd == 15500
    cc.cwnd = 18 * MSS  # the engine's recovery inflation
    cc.on_recovery_exit(now)
    assert cc.cwnd == 15500
    cc.on_congestion(now, MSS)
    assert cc.ssthresh == cc.cwnd == 2 * MSS


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_timeout_resets_to_one_mss_and_a_repeat_holds_ssthresh(cls: type[NewReno]) -> None:
    cc = cls(MSS)
    now = grow_to(cc, 40 * MSS, 0, 20 * MS)
    cc.on_timeout(now, cc.cwnd)
    expected = 20 * MSS if cls is NewReno else int(40 * MSS * BETA_CUBIC)
    assert (cc.cwnd, cc.ssthresh) == (MSS, expected)
    cc.on_timeout(now + 400 * MS, MSS)  # the retransmission was lost too
    assert (cc.cwnd, cc.ssthresh) == (MSS, expected)
    cc.on_ack(now + 420 * MS, MSS, None, MSS)  # new data acknowledged: slow start again
    assert cc.cwnd == 2 * MSS
    cc.on_timeout(now + 800 * MS, 2 * MSS)  # a fresh timeout recomputes ssthresh
    assert cc.ssthresh == 2 * MSS


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_timeout_during_fast_recovery_does_not_reduce_ssthresh_twice(cls: type[NewReno]) -> None:
    cc = cls(MSS)
    now = grow_to(cc, 40 * MSS, 0, 20 * MS)
    cc.on_congestion(now, cc.cwnd)
    reduced = cc.ssthresh
    cc.on_timeout(now + 300 * MS, cc.cwnd)  # the retransmission was lost as well
    assert (cc.cwnd, cc.ssthresh) == (MSS, reduced)
    now = grow_to(cc, reduced, now + 300 * MS, 20 * MS)
    assert cc.cwnd >= reduced  # slow start ran up to the episode's ssthresh


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_application_limited_sender_does_not_grow_cwnd(cls: type[NewReno]) -> None:
    cc = cls(MSS)
    iw = cc.cwnd
    for i in range(100):  # one segment at a time, far below the window
        cc.on_ack(i * 10 * MS, MSS, 10 * MS, MSS)
    assert cc.cwnd == iw
    cc.on_ack(1000 * MS, MSS, 10 * MS, iw // 2)  # the pipe was half full: it grows
    assert cc.cwnd == iw + MSS


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_idle_restart_drops_to_the_initial_window_and_remembers_three_quarters(
    cls: type[NewReno],
) -> None:
    cc = cls(MSS)
    now = grow_to(cc, 80 * MSS, 0, 20 * MS)
    cc.on_congestion(now, cc.cwnd)
    cc.on_recovery_exit(now)
    cc.on_idle_restart(now)  # ssthresh is above 3/4 of cwnd: it stays
    assert (cc.cwnd, cc.ssthresh) == (initial_window(MSS), 40 * MSS if cls is NewReno else 56 * MSS)
    now = grow_to(cc, cc.ssthresh, now, 20 * MS)
    while cc.cwnd < cc.ssthresh * 3 // 2:  # congestion avoidance well past ssthresh
        now = run_round(cc, now, 20 * MS)
    big = cc.cwnd
    cc.on_idle_restart(now + 5000 * MS)
    assert (cc.cwnd, cc.ssthresh) == (initial_window(MSS), big * 3 // 4)
    small = cls(MSS)
    small.on_idle_restart(0)
    assert (small.cwnd, small.ssthresh) == (initial_window(MSS), INITIAL_SSTHRESH)


# --- CUBIC --------------------------------------------------------------------


def cubic_after_loss(
    w_max_segments: int, rtt: int, *, fast_convergence: bool = False
) -> tuple[Cubic, int]:
    """A CUBIC sender that lost at exactly ``w_max_segments`` and left recovery."""
    cc = Cubic(MSS, fast_convergence=fast_convergence)
    now = grow_to(cc, w_max_segments * MSS // 2, 0, rtt)
    cc.cwnd = w_max_segments * MSS  # as if the last slow-start round had filled it
    cc.on_congestion(now, cc.cwnd)
    cc.on_recovery_exit(now)
    return cc, now


def test_cubic_grows_at_most_1_5x_per_round_trip_even_far_below_the_curve() -> None:
    cc, now = cubic_after_loss(100, 30_000 * MS)
    cc.on_ack(now, 2 * MSS, None, cc.cwnd)  # the epoch starts
    now += 2000 * MS  # past the Reno-friendly start: W_cubic(2 s) = 95.6 segments
    before = cc.cwnd
    # a 30 s round trip puts W_cubic(t + RTT) far above cwnd: target is clamped to 1.5*cwnd
    for i in range(1, before // (2 * MSS) + 1):
        cc.on_ack(now + i * MS, 2 * MSS, 30_000 * MS, cc.cwnd)
    assert cc.cwnd == pytest.approx(1.5 * before, abs=MSS)


def test_cubic_multiplicative_decrease_is_beta_0_7() -> None:
    cc, _ = cubic_after_loss(100, 100 * MS)
    assert cc.ssthresh == cc.cwnd == 70 * MSS
    assert cc.w_max == 100 * MSS
    tiny = Cubic(MSS)
    tiny.cwnd = 2 * MSS
    tiny.on_congestion(0, 2 * MSS)
    assert tiny.cwnd == tiny.ssthresh == 2 * MSS  # never below 2 MSS


def test_cubic_k_is_the_cube_root_of_the_reduction_over_c() -> None:
    cc, now = cubic_after_loss(100, 100 * MS)
    cc.on_ack(now + MS, MSS, 100 * MS, cc.cwnd)  # the epoch starts here
    assert cc.epoch_start_ns == now + MS
    assert cc.k == pytest.approx(math.cbrt((100 - 70) / 0.4), rel=1e-9)  # 4.217 s
    assert cc.k == pytest.approx(math.cbrt(100 * (1 - BETA_CUBIC) / C), rel=1e-9)


def test_cubic_window_follows_w_of_t_after_a_loss() -> None:
    rtt = 100 * MS
    w_max, cwnd_epoch = 1200, 840  # segments
    cc, now = cubic_after_loss(w_max, rtt)
    k = math.cbrt((w_max - cwnd_epoch) / C)  # 9.65 s
    epoch = now + rtt // (cwnd_epoch // 2)  # the first ACK of the first round
    worst = 0.0
    for _ in range(200):  # 20 s: through the plateau and well into the convex region
        now = run_round(cc, now, rtt, 2 * MSS)
        assert cc.epoch_start_ns == epoch
        expected = cubic_w((now - epoch) / 1e9, w_max, k) * MSS
        worst = max(worst, abs(cc.cwnd - expected))
        assert cc.cwnd == pytest.approx(expected, abs=2 * MSS), (now - epoch) / 1e9
    assert worst > 0  # the check compared something real
    assert cc.cwnd > 1.3 * w_max * MSS  # convex growth took it far beyond W_max


def test_cubic_growth_is_concave_below_w_max_and_convex_above() -> None:
    rtt = 100 * MS
    cc, now = cubic_after_loss(1000, rtt)
    k = math.cbrt((1000 - 700) / C)  # 9.09 s
    windows = [cc.cwnd]
    for _ in range(180):
        now = run_round(cc, now, rtt, 2 * MSS)
        windows.append(cc.cwnd)
    # growth per second (10 rounds), before and after t = K
    per_second = [windows[i + 10] - windows[i] for i in range(0, 180, 10)]
    before = per_second[: int(k) - 1]
    after = per_second[int(k) + 1 :]
    assert before == sorted(before, reverse=True) and before[0] > 10 * before[-1]
    assert after == sorted(after) and after[-1] > 10 * after[0]
    # the plateau sits at W_max around t = K
    assert windows[int(k * 10)] == pytest.approx(1000 * MSS, rel=0.002)
    assert all(w < 1000 * MSS for w in windows[: int(k * 10) - 10])
    assert all(w > 1000 * MSS for w in windows[int(k * 10) + 10 :])


def test_cubic_reno_friendly_region_dominates_at_a_small_bandwidth_delay_product() -> None:
    rtt = MS  # 1 ms round trips, 20-segment window: the cubic curve would take 2.5 s
    cc, now = cubic_after_loss(20, rtt)
    k = math.cbrt((20 - 14) / C)
    epoch = now + rtt // 14  # the first ACK of the first round
    windows = [cc.cwnd]
    for rounds in range(1, 41):
        now = run_round(cc, now, rtt)
        windows.append(cc.cwnd)
        w_cubic = cubic_w((now - epoch) / 1e9, 20, k) * MSS
        assert cc.cwnd > w_cubic + rounds * MSS // 4  # ahead, and pulling away
    # alpha_cubic = 0.53 segments per round trip until W_est reaches cwnd_prior (20) ...
    assert (windows[10] - windows[0]) / 10 == pytest.approx(ALPHA_CUBIC * MSS, rel=0.05)
    # ... then Reno's one segment per round trip
    assert (windows[40] - windows[20]) / 20 == pytest.approx(MSS, rel=0.05)


def test_fast_convergence_lowers_w_max_when_a_loss_comes_below_the_last_one() -> None:
    for fast in (True, False):
        cc, now = cubic_after_loss(100, 100 * MS, fast_convergence=fast)
        for _ in range(5):
            now = run_round(cc, now, 100 * MS)
        lower = cc.cwnd
        assert lower < 100 * MSS
        cc.on_congestion(now, lower)
        assert cc.w_max == pytest.approx(lower * (1 + BETA_CUBIC) / 2 if fast else lower)
        assert cc.cwnd == int(lower * BETA_CUBIC)
    # a loss above the old W_max just records the new maximum
    cc, now = cubic_after_loss(100, 100 * MS, fast_convergence=True)
    cc.cwnd = 120 * MSS
    cc.on_congestion(now, cc.cwnd)
    assert cc.w_max == 120 * MSS


def test_cubic_after_timeout_slow_starts_then_grows_from_k_zero() -> None:
    rtt = 100 * MS
    cc, now = cubic_after_loss(100, rtt)
    for _ in range(20):
        now = run_round(cc, now, rtt)
    before = cc.cwnd
    cc.on_timeout(now, before)
    assert cc.cwnd == MSS and cc.ssthresh == int(before * BETA_CUBIC)
    now = grow_to(cc, cc.ssthresh, now + 1000 * MS, rtt)
    # the epoch began when slow start reached ssthresh, on the plateau: K = 0, W_max = cwnd_epoch
    assert cc.k == 0 and cc.w_max == cc.ssthresh
    t0 = cc.epoch_start_ns
    assert t0 is not None and t0 < now
    start = cc.cwnd
    for _ in range(50):
        now = run_round(cc, now, rtt)
    # ahead of both the curve (convex from W_max) and Reno's pace
    assert cc.cwnd >= cubic_w((now - t0) / 1e9, cc.ssthresh / MSS, 0.0) * MSS
    assert cc.cwnd > start + 25 * MSS


def test_cubic_epoch_clock_skips_application_limited_periods() -> None:
    rtt = 100 * MS
    paused, now_p = cubic_after_loss(500, rtt)
    steady, now_s = cubic_after_loss(500, rtt)
    for _ in range(10):
        now_p = run_round(paused, now_p, rtt, 2 * MSS)
        now_s = run_round(steady, now_s, rtt, 2 * MSS)
    assert paused.cwnd == steady.cwnd
    for i in range(1, 301):  # 30 s of a trickle: one small ACK every 100 ms
        paused.on_ack(now_p + i * rtt, MSS, rtt, MSS)
    now_p += 300 * rtt
    assert paused.cwnd == steady.cwnd  # no growth while application-limited ...
    for _ in range(10):
        now_p = run_round(paused, now_p, rtt, 2 * MSS)
        now_s = run_round(steady, now_s, rtt, 2 * MSS)
    # ... and no jump afterwards: the curve continues where it paused
    assert paused.cwnd == pytest.approx(steady.cwnd, rel=0.001)


def test_congestion_control_is_deterministic() -> None:
    def trace() -> list[int]:
        cc, now = cubic_after_loss(300, 40 * MS, fast_convergence=True)
        out = []
        for i in range(60):
            now = run_round(cc, now, 40 * MS, 2 * MSS)
            if i % 20 == 19:
                cc.on_congestion(now, cc.cwnd)
                cc.on_recovery_exit(now)
            out.append(cc.cwnd)
        return out

    assert trace() == trace()


# --- HyStart++ (RFC 9406) ------------------------------------------------------------


def hystart_round(cc: NewReno, now: int, rtt: int) -> int:
    """One round trip as the engine reports it: a round start, then the ACK clock."""
    cc.on_round_start(now)
    return run_round(cc, now, rtt)


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_hystart_leaves_slow_start_on_an_rtt_rise_and_ends_it_after_five_css_rounds(
        cls: type[NewReno]) -> None:
    cc = cls(MSS)
    now = 0
    for _ in range(3):
        now = hystart_round(cc, now, 50 * MS)  # 10 -> 80 segments, RTT flat: slow start
    assert cc.cwnd == 80 * MSS and cc.hystart is not None and not cc.hystart.in_css
    # the RTT rises by 10 ms >= clamp(50 / 8, 4, 16) = 6.25 ms: after N_RTT_SAMPLE = 8
    # samples the flow enters Conservative Slow Start, growing by a quarter per ACK
    now = hystart_round(cc, now, 60 * MS)
    assert cc.hystart.in_css
    assert cc.cwnd == 80 * MSS + 7 * MSS + 73 * MSS // 4
    assert cc.ssthresh == INITIAL_SSTHRESH
    for _ in range(4):  # CSS rounds 2-5: about 1.25x each instead of 2x
        before = cc.cwnd
        now = hystart_round(cc, now, 60 * MS)
        assert 1.24 < cc.cwnd / before < 1.26
        assert cc.ssthresh == INITIAL_SSTHRESH
    # the fifth round of CSS is over: slow start ends, ssthresh = cwnd
    cc.on_round_start(now)
    assert cc.ssthresh == cc.cwnd and not cc.in_slow_start and cc.hystart is None


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_hystart_returns_to_slow_start_when_the_rtt_falls_back(cls: type[NewReno]) -> None:
    cc = cls(MSS)
    now = 0
    for rtt in (50, 50, 50, 60):
        now = hystart_round(cc, now, rtt * MS)
    assert cc.hystart is not None and cc.hystart.in_css
    # the next round's minimum RTT is back below the CSS baseline: the exit was spurious
    before = cc.cwnd
    now = hystart_round(cc, now, 50 * MS)
    assert not cc.hystart.in_css
    assert cc.cwnd > 1.9 * before  # 7 ACKs at a quarter, then full slow start again
    before = cc.cwnd
    now = hystart_round(cc, now, 50 * MS)
    assert cc.cwnd == 2 * before and cc.ssthresh == INITIAL_SSTHRESH


def test_hystart_only_watches_the_initial_slow_start() -> None:
    cc = Cubic(MSS)
    now = grow_to(cc, 40 * MSS, 0, 50 * MS)
    cc.on_congestion(now, cc.cwnd)
    cc.on_recovery_exit(now)
    cc.on_timeout(now, cc.cwnd)
    for rtt in (50, 50, 80, 80):  # an RTT rise in slow start after a loss: no CSS
        before = cc.cwnd
        now = hystart_round(cc, now, rtt * MS)
        assert cc.hystart is None and cc.cwnd == min(2 * before, cc.ssthresh)


def test_undo_restores_the_window_before_a_spurious_reduction() -> None:
    cc = Cubic(MSS)
    now = grow_to(cc, 40 * MSS, 0, 50 * MS)
    saved = cc.snapshot()
    cwnd, w_max = cc.cwnd, cc.w_max
    cc.on_congestion(now, cc.cwnd)
    assert cc.cwnd < cwnd
    cc.undo(saved)
    assert cc.cwnd == cwnd and cc.ssthresh == INITIAL_SSTHRESH and cc.w_max == w_max
