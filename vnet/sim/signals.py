"""SIGINT and SIGTERM during a run: stop cleanly instead of dying half-way.

`Interrupts` replaces the handlers of SIGINT and SIGTERM for the length of a
`vnet run` or `vnet sim` (a context manager; the previous handlers come
back at the end). The first signal only sets `signum`: the run loop checks
`interrupted()` (within half a second in real time, after the running guest's
turn in virtual time), stops the guests, and the command then flushes and
closes every capture, prints its summary, removes what it created (TUN
devices, namespaces) and exits with `exit_status` (128 + the signal: 130 for
SIGINT, 143 for SIGTERM), as a shell reports a process killed by it. A second
signal raises KeyboardInterrupt where the main thread is, so a run stuck in
cleanup can still be broken; `finally` blocks still close the captures.

The namespace guard (`vnet.testing.netns`) installs its own handlers when it
creates a namespace, chained to these: it deletes its namespaces first, then
calls ours. Touches only the process's signal handlers, from the main thread.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["Interrupts"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """The signal that asked the run to stop, if any."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def interrupted(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_status(self) -> int:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + (self.signum or 0)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # a second signal: stop waiting for a clean end
        self.signum = signum

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            # The namespace guard may have chained itself on top of us: leave it in place.
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, previous)
        self._previous.clear()
