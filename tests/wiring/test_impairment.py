"""Impairments: exact, seed-determined decisions, alone and on a link in virtual time.

The exact counts below are what ``random.Random(seed)`` gives for these
settings; they change only if the order of decisions in ``Impairment.decide``
changes, which would also change every recorded capture: update them
deliberately.
"""

from __future__ import annotations

import itertools
from functools import partial

import pytest

from tests.wiring.helpers import Sink, frame, mac
from vnet.link.impairment import Impairment, ImpairmentStats
from vnet.link.segment import DROP_EGRESS_IMPAIRMENT, Segment
from vnet.scheduler import Scheduler

N = 10_000


def decide_many(imp: Impairment, n: int = N, spacing_ns: int = 1_000) -> list[tuple[int, ...]]:
    return [imp.decide(i * spacing_ns, 100) for i in range(n)]


def test_no_impairment_delivers_every_frame_once_without_delay() -> None:
    imp = Impairment()
    assert set(decide_many(imp, 100)) == {(0,)}
    assert imp.stats == ImpairmentStats(frames=100)


@pytest.mark.parametrize(
    ("seed", "dropped", "reordered"),
    [(1, 220, 504), (2, 197, 511)],
)
def test_loss_and_reorder_counts_are_exact_for_a_seed(
    seed: int, dropped: int, reordered: int
) -> None:
    imp = Impairment(loss=0.02, reorder=0.05, seed=seed)
    decisions = decide_many(imp)
    assert imp.stats == ImpairmentStats(frames=N, dropped=dropped, reordered=reordered)
    assert decisions.count(()) == dropped
    assert decisions.count((1_000_000,)) == reordered  # default hold-back: 1 ms


def test_same_seed_same_decisions_other_seed_other_decisions() -> None:
    def run(seed: int) -> list[tuple[int, ...]]:
        return decide_many(Impairment(loss=0.1, duplicate=0.05, reorder=0.05, delay_ns=1_000,
                                      jitter_ns=500, seed=seed))

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_all_features_together_have_exact_counts_and_bounds() -> None:
    imp = Impairment(loss=0.1, duplicate=0.05, reorder=0.05, reorder_delay_ns=10_000,
                     delay_ns=1_000, jitter_ns=500, seed=7)
    decisions = decide_many(imp)
    assert imp.stats == ImpairmentStats(frames=N, dropped=1012, duplicated=487, reordered=453)
    copies = [d for copies in decisions for d in copies]
    assert len(copies) == N - 1012 + 487
    assert sum(1 for c in decisions if len(c) == 2) == 487
    held = [d for d in copies if d >= 10_000]
    assert len(held) == 453
    assert all(500 <= d <= 1_500 for d in copies if d < 10_000)
    assert all(10_500 <= d <= 11_500 for d in held)


def test_probabilities_are_roughly_honoured() -> None:
    imp = Impairment(loss=0.3, duplicate=0.2, seed=123)
    decide_many(imp, 20_000)
    assert 0.28 < imp.stats.dropped / 20_000 < 0.32
    assert 0.18 < imp.stats.duplicated / (20_000 - imp.stats.dropped) < 0.22


def test_parameters_can_change_mid_run() -> None:
    imp = Impairment(seed=3)
    assert decide_many(imp, 10) == [(0,)] * 10
    imp.loss = 1.0
    assert decide_many(imp, 10) == [()] * 10
    imp.loss, imp.delay_ns = 0.0, 500
    assert imp.decide(0, 100) == (500,)
    assert imp.stats == ImpairmentStats(frames=21, dropped=10)


def test_rate_serializes_frames_back_to_back() -> None:
    imp = Impairment(rate_bps=8_000_000)  # 100 bytes = 100 us on the wire
    assert decide_many(imp, 3, spacing_ns=1_000) == [(100_000,), (199_000,), (298_000,)]
    # An idle link starts afresh.
    assert imp.decide(10_000_000, 100) == (100_000,)


def test_rate_queue_limit_tail_drops() -> None:
    imp = Impairment(rate_bps=8_000_000, queue_limit=10)
    decisions = decide_many(imp, 12, spacing_ns=1_000)
    assert decisions[:10] == [(100_000 + i * 99_000,) for i in range(10)]
    assert decisions[10:] == [(), ()]
    assert imp.stats.queue_dropped == 2
    # Once the first frame has left, one slot is free again.
    assert imp.decide(100_000, 100) != ()


@pytest.mark.parametrize(
    "kwargs",
    [{"rate_bps": 8e6}, {"delay_ns": 1e3}, {"reorder": 1.0, "reorder_delay_ns": 2e3}],
)
def test_float_parameters_delay_frames_by_whole_nanoseconds(kwargs: dict[str, float]) -> None:
    """A rate written as ``8e6`` (or a time as ``1e3``), also set mid-run, delays a frame
    as its int would, and the virtual clock stays in whole nanoseconds: the compiled
    segment and scheduler take only ints (they raised TypeError on the float rate)."""
    expected = {"rate_bps": 60_010, "delay_ns": 1_010, "reorder": 2_010}[next(iter(kwargs))]
    for set_mid_run in (False, True):
        sched = Scheduler(virtual=True)
        seg = Segment(sched, "lan", latency_ns=10)
        a, b = Sink("a", sched), Sink("b", sched)
        imp = Impairment() if set_mid_run else Impairment(**kwargs)  # type: ignore[arg-type]
        if set_mid_run:
            for name, value in kwargs.items():
                setattr(imp, name, value)
        pa = seg.attach(a, ingress=imp)
        seg.attach(b)
        pa.send(frame(b"\xff" * 6, mac(1)))
        sched.run_for(500_000)
        assert b.times == [expected]
        assert type(b.times[0]) is int


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss": -0.1},
        {"loss": 1.5},
        {"duplicate": 2},
        {"reorder": -1},
        {"delay_ns": -1},
        {"jitter_ns": -5},
        {"reorder_delay_ns": -1},
        {"rate_bps": 0},
        {"queue_limit": 0},
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Impairment(**kwargs)  # type: ignore[arg-type]


def run_lossy_link(seed: int) -> tuple[list[int], list[int], ImpairmentStats]:
    """1000 numbered frames, one per 100 us, over 2 % loss / 5 % reorder (hold 1 ms)."""
    sched = Scheduler(virtual=True)
    seg = Segment(sched, "lossy", latency_ns=50_000)
    tx, rx = Sink("tx", sched), Sink("rx", sched)
    port = seg.attach(tx)
    seg.attach(rx, egress=Impairment(loss=0.02, reorder=0.05, seed=seed))
    for i in range(1000):
        f = frame(mac(2), mac(1), i.to_bytes(4, "big"))
        sched.call_at(i * 100_000, partial(port.send, f))
    sched.run_for(200_000_000)
    seqs = [int.from_bytes(f[14:18], "big") for f in rx.frames]
    imp = seg.ports[1].egress
    assert imp is not None
    return seqs, rx.times, imp.stats


def test_lossy_reordering_link_in_virtual_time_is_exact_and_repeatable() -> None:
    seqs, times, stats = run_lossy_link(seed=42)
    assert (stats.dropped, stats.reordered) == (19, 43)
    assert len(seqs) == 1000 - 19
    assert len(set(seqs)) == len(seqs)
    overtaken = sum(1 for a, b in itertools.pairwise(seqs) if a > b)
    assert overtaken == 43  # every held frame was overtaken (1 ms hold, 100 us spacing)
    # Each frame arrives after 50 us latency, plus 1 ms when held back.
    for seq, t in zip(seqs, times, strict=True):
        assert t - seq * 100_000 in (50_000, 1_050_000)
    assert run_lossy_link(seed=42) == (seqs, times, stats)
    assert run_lossy_link(seed=43)[0] != seqs


def test_egress_loss_is_counted_on_the_port() -> None:
    sched = Scheduler(virtual=True)
    seg = Segment(sched, "lan")
    a, b, c = Sink("a"), Sink("b"), Sink("c")
    pa = seg.attach(a)
    pb = seg.attach(b, egress=Impairment(loss=1.0))
    seg.attach(c)
    pa.send(frame(b"\xff" * 6, mac(1)))
    assert (b.frames, len(c.frames)) == ([], 1)
    assert pb.counters.drops == {DROP_EGRESS_IMPAIRMENT: 1}


def test_ingress_duplicate_and_delay_reach_every_port() -> None:
    sched = Scheduler(virtual=True)
    seg = Segment(sched, "lan", latency_ns=10)
    a, b = Sink("a", sched), Sink("b", sched)
    pa = seg.attach(a, ingress=Impairment(duplicate=1.0, delay_ns=1_000))
    seg.attach(b)
    pa.send(frame(b"\xff" * 6, mac(1)))
    sched.run_for(5_000)
    assert b.times == [1_010, 1_010]
