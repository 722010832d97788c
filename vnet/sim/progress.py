"""A heartbeat for long simulations: `vnet sim --progress [SECONDS]`.

Every SECONDS of wall time a daemon thread prints one line on stderr — how
far the simulation's clock has got, how fast that is against the wall clock,
how many guests still run and how many frames the NICs have carried:

    vnet sim: 12.500 s simulated in 3.0 s (4.2x), 5/9 guests running, 1234 frames

It only reads (the scheduler's clock, guests' `done`, NIC counters), never
takes the network's lock, and so never changes what the guests see. Touches
stderr.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO


class Heartbeat:
    def __init__(self, interval_s: float, clock_ns: Callable[[], int],
                 guests: Mapping[str, Any], hosts: Mapping[str, Any],
                 stream: TextIO | None = None) -> None:
        self.interval_s = interval_s
        self.clock_ns = clock_ns
        self.guests = guests
        self.hosts = hosts
        self.stream = stream if stream is not None else sys.stderr
        self.beats = 0
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._start_ns = clock_ns()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="vnet-progress")

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def line(self) -> str:
        wall = time.monotonic() - self._started
        simulated = (self.clock_ns() - self._start_ns) / 1e9
        running = sum(1 for g in list(self.guests.values()) if not g.done)
        frames = sum(nic.counters.tx_frames for host in list(self.hosts.values())
                     for nic in list(host.nics.values()))
        speed = f" ({simulated / wall:.1f}x)" if wall > 0 else ""
        return (f"vnet sim: {simulated:.3f} s simulated in {wall:.1f} s{speed}, "
                f"{running}/{len(self.guests)} guests running, {frames} frames")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beats += 1
            print(self.line(), file=self.stream, flush=True)
