"""The per-guest state every host call receives: memory, fds, clock, limits.

A `GuestContext` is created by `vnet.guest.runtime.Guest` for one instance and
passed as the first argument to every host-function implementation. It is the
only way an implementation reaches the guest's memory, its fd table, the
scheduler's clock and the guest's blocking primitive. It touches no wasm API
itself except through `GuestMemory`.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .fdtable import FdTable
from .memory import GuestMemory

if TYPE_CHECKING:
    from vnet.scheduler import GuestTask, Scheduler

    from .abi import GuestExit


@dataclass
class GuestLimits:
    """Per-guest resource caps.

    memory_bytes: the most linear memory the guest may grow to (wasm pages are
    64 KiB). max_fds: open fds including stdio and preopens. cpu_slice_ms: how
    long a guest runs before the scheduler may switch to another (epoch
    interruption). cpu_time_ms: total CPU budget (0 = unlimited); a guest past
    it is stopped with a trap.
    """

    memory_bytes: int = 256 * 1024 * 1024
    max_fds: int = 1024
    cpu_slice_ms: int = 10
    cpu_time_ms: int = 0


@dataclass
class GuestStats:
    host_calls: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    internal_errors: Counter[str] = field(default_factory=Counter)
    preemptions: int = 0
    #: bytes of socket queues dropped to bring the guest back under --max-memory
    memory_reclaimed: int = 0
    #: 1 once the guest was killed for going over --max-memory (linear + sockets)
    oom_kills: int = 0


class GuestContext:
    """Everything a host call may touch for one guest."""

    def __init__(
        self,
        name: str,
        scheduler: Scheduler,
        args: list[str],
        env: list[tuple[str, str]],
        limits: GuestLimits,
        rng: random.Random,
        debug: bool = False,
    ) -> None:
        self.name = name
        self.scheduler = scheduler
        self.args = args
        self.env = env
        self.limits = limits
        self.rng = rng
        self.debug = debug
        self.fds = FdTable(limits.max_fds)
        self.configurable_interfaces: set[str] = set()
        self.stats = GuestStats()
        self._memory: GuestMemory | None = None  # `memory`: set once the instance exists
        self.task: GuestTask | None = None  # set when the scheduler starts it
        self.exit_request: GuestExit | None = None
        self.host_call_lock = scheduler.host_call_lock
        #: Extra per-guest state owned by ABI modules (sockets, resolver …).
        self.extensions: dict[str, Any] = {}
        self.diagnostics: list[str] = []
        #: Set by the runtime for a guest with a network: called when linear memory
        #: plus socket memory may be over --max-memory; reclaims, and returns the
        #: GuestExit that kills the guest if it is still over (vnet.guest.wasix).
        self.enforce_memory_limit: Callable[[], GuestExit | None] | None = None
        #: Set by vnet.guest.threads for a guest built with -pthread: a block may
        #: switch to another of the guest's threads instead of waiting.
        self.thread_blocker: Callable[[Callable[[], bool], int | None], bool] | None = None

    #: `memory` once the instance has one, as a plain attribute (every host call reads
    #: it, often more than once): unset before, so a call that came too early fails
    #: with AttributeError (an internal error, EIO) rather than reading None.
    mem: GuestMemory
    __deletable__ = ("mem",)  # mypyc: `mem` may be deleted (compiled, a declared slot)

    @property
    def memory(self) -> GuestMemory | None:
        """The guest's linear memory once the instance exists (set by the runtime)."""
        return self._memory

    @memory.setter
    def memory(self, value: GuestMemory | None) -> None:
        self._memory = value
        if value is not None:
            self.mem = value  # keep `mem` in step
        elif hasattr(self, "mem"):
            del self.mem

    def now_ns(self) -> int:
        return self.scheduler.monotonic_ns()

    def block_until(self, ready: Callable[[], bool], deadline_ns: int | None = None) -> bool:
        """Wait (without holding up other guests) until ready() or the deadline.

        Returns ready()'s final value. Must be called from inside a host call.
        """
        if self.thread_blocker is not None:
            return self.thread_blocker(ready, deadline_ns)
        assert self.task is not None
        return self.scheduler.block(self.task, ready, deadline_ns)

    def count_fault(self, where: str) -> None:
        self.stats.faults[where] += 1

    def count_internal_error(self, where: str, error: BaseException) -> None:
        self.stats.internal_errors[where] += 1
        self.diagnostics.append(f"internal error in {where}: {type(error).__name__}: {error}")
