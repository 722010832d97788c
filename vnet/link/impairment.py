"""Link impairments: loss, duplication, reordering, delay, jitter and a rate limit.

An ``Impairment`` sits on one direction of one link (a segment port's
ingress or egress, or one end of a cable). It touches nothing but its own
state and its own ``random.Random``: it never reads a clock or arms a timer.
The link asks it about each frame, passing the current scheduler time, and
gets back *when* to deliver each copy; the link does the scheduling.

Theory of operation
-------------------
``decide(now_ns, length)`` returns a tuple of extra delays in nanoseconds,
one per copy to deliver: ``()`` means the frame is lost, ``(0,)`` means
deliver it as is, two entries mean it was duplicated. Decisions are taken in
a fixed order, drawing from the generator only for the features that are
enabled, so a given seed and a given sequence of frames always give the same
decisions -- that is what keeps virtual-time runs byte-identical:

1. **loss**: with probability ``loss`` the frame is dropped (nothing else is
   drawn for it);
2. **duplicate**: with probability ``duplicate`` a second copy follows;
3. for each copy:

   a. **rate**: with ``rate_bps`` the copy is serialized behind the frames
      already queued on this direction (``length * 8 / rate_bps`` seconds
      each); with ``queue_limit`` a copy arriving when that many frames are
      still waiting to be serialized is tail-dropped, and with
      ``queue_limit_bytes`` one that would bring the bytes waiting above it
      (a byte-limited FIFO, as tc's ``bfifo limit``);
   b. **delay / jitter**: ``delay_ns`` plus a uniform offset in
      ``[-jitter_ns, +jitter_ns]`` (never below zero). As with Linux netem,
      jitter alone can reorder frames;
   c. **reorder**: with probability ``reorder`` the copy is held back an extra
      ``reorder_delay_ns``, so frames sent after it within that time overtake
      it.

Every decision is counted in ``stats`` (an ``ImpairmentStats``).

An Impairment is stateful (its generator, its rate queue): give each
direction of each link its own instance. Its parameters are plain attributes
that may be changed between frames (a link that degrades mid-run); they are
validated only by the constructor.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

__all__ = ["Impairment", "ImpairmentStats"]

#: Default hold-back of a reordered frame: 1 ms.
DEFAULT_REORDER_DELAY_NS = 1_000_000

_ONCE: tuple[int, ...] = (0,)
_LOST: tuple[int, ...] = ()


@dataclass(slots=True)
class ImpairmentStats:
    """What an Impairment did. ``frames`` counts every frame it was asked about."""

    frames: int = 0
    dropped: int = 0  # lost by the ``loss`` probability
    duplicated: int = 0  # frames that got a second copy
    reordered: int = 0  # copies held back by ``reorder``
    queue_dropped: int = 0  # copies tail-dropped by the rate queue's ``queue_limit``


class Impairment:
    """Loss, duplication, reordering, delay, jitter and rate for one link direction.

    Probabilities are in ``[0, 1]``; times are nanoseconds; ``rate_bps`` is
    bits per second (None: unlimited). ``seed`` seeds this impairment's own
    generator, so results are reproducible and independent of other users of
    ``random``.
    """

    def __init__(
        self,
        loss: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        reorder_delay_ns: int = DEFAULT_REORDER_DELAY_NS,
        delay_ns: int = 0,
        jitter_ns: int = 0,
        rate_bps: int | None = None,
        queue_limit: int | None = None,
        seed: int = 0,
        queue_limit_bytes: int | None = None,
    ) -> None:
        for label, p in (("loss", loss), ("duplicate", duplicate), ("reorder", reorder)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"impairment {label} must be a probability in [0, 1], not {p!r}")
        for label, t in (
            ("reorder_delay_ns", reorder_delay_ns),
            ("delay_ns", delay_ns),
            ("jitter_ns", jitter_ns),
        ):
            if t < 0:
                raise ValueError(f"impairment {label} must be >= 0, not {t!r}")
        if rate_bps is not None and rate_bps <= 0:
            raise ValueError(f"impairment rate_bps must be > 0 or None, not {rate_bps!r}")
        if queue_limit is not None and queue_limit < 1:
            raise ValueError(f"impairment queue_limit must be >= 1 or None, not {queue_limit!r}")
        if queue_limit_bytes is not None and queue_limit_bytes < 1:
            raise ValueError("impairment queue_limit_bytes must be >= 1 or None, not "
                             f"{queue_limit_bytes!r}")
        self.loss = float(loss)
        self.duplicate = float(duplicate)
        self.reorder = float(reorder)
        self.reorder_delay_ns = int(reorder_delay_ns)
        self.delay_ns = int(delay_ns)
        self.jitter_ns = int(jitter_ns)
        self.rate_bps = None if rate_bps is None else int(rate_bps)
        self.queue_limit = queue_limit
        self.queue_limit_bytes = queue_limit_bytes
        self.seed = seed
        self.stats = ImpairmentStats()
        self._random = random.Random(seed).random
        # Departure times (scheduler ns) of copies still being serialized, oldest first.
        self._queue: deque[int] = deque()
        # Their lengths, kept only with queue_limit_bytes (and their sum).
        self._queue_lengths: deque[int] = deque()
        self._queued_bytes = 0
        self._busy_until = 0

    def __repr__(self) -> str:
        parts = [
            f"{name}={value!r}"
            for name, value in (
                ("loss", self.loss),
                ("duplicate", self.duplicate),
                ("reorder", self.reorder),
                ("delay_ns", self.delay_ns),
                ("jitter_ns", self.jitter_ns),
                ("rate_bps", self.rate_bps),
            )
            if value
        ]
        return f"Impairment({', '.join(parts)}, seed={self.seed!r})"

    def decide(self, now_ns: int, length: int) -> tuple[int, ...]:
        """Extra delay of each copy of a ``length``-byte frame sent at ``now_ns``; () = lost."""
        stats = self.stats
        stats.frames += 1
        loss = self.loss
        duplicate = self.duplicate
        reorder = self.reorder
        jitter = self.jitter_ns
        rate = self.rate_bps
        if not (loss or duplicate or reorder or jitter or rate or self.delay_ns):
            return _ONCE
        rnd = self._random
        if loss and rnd() < loss:
            stats.dropped += 1
            return _LOST
        copies = 1
        if duplicate and rnd() < duplicate:
            copies = 2
            stats.duplicated += 1
        delays: list[int] = []
        for _ in range(copies):
            delay = 0
            if rate:
                queued = self._serialize(now_ns, length, rate)
                if queued is None:
                    continue
                delay = queued
            delay += self.delay_ns
            if jitter:
                delay += int((rnd() * 2.0 - 1.0) * jitter)
                if delay < 0:
                    delay = 0
            if reorder and rnd() < reorder:
                delay += self.reorder_delay_ns
                stats.reordered += 1
            # whole nanoseconds even if a parameter was set to a float mid-run: the
            # compiled scheduler and segment take only ints (vnet/compile_stack.py)
            delays.append(int(delay))
        return tuple(delays)

    def _serialize(self, now_ns: int, length: int, rate_bps: int) -> int | None:
        """Queue a copy behind the ones still serializing; its wait, or None if tail-dropped."""
        queue = self._queue
        byte_limit = self.queue_limit_bytes
        if byte_limit is None:
            while queue and queue[0] <= now_ns:
                queue.popleft()
        else:
            lengths = self._queue_lengths
            while queue and queue[0] <= now_ns:
                queue.popleft()
                self._queued_bytes -= lengths.popleft()
            if self._queued_bytes + length > byte_limit and queue:
                self.stats.queue_dropped += 1
                return None
            lengths.append(length)
            self._queued_bytes += length
        if self.queue_limit is not None and len(queue) >= self.queue_limit:
            if byte_limit is not None:
                self._queued_bytes -= self._queue_lengths.pop()
            self.stats.queue_dropped += 1
            return None
        tx_ns = (length * 8 * 1_000_000_000 + rate_bps - 1) // rate_bps
        start = self._busy_until if self._busy_until > now_ns else now_ns
        self._busy_until = start + tx_ns
        queue.append(self._busy_until)
        return self._busy_until - now_ns
