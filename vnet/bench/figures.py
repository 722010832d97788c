"""The figures a benchmark run reports, and how each is compared with native.

Every figure has a value measured on vnet (wasm guests, vnet's stack) and,
where one exists, the same C program's value natively (gcc, the kernel's
loopback) from the same run. `ratio` is always vnet ÷ native, in the
figure's own unit; `relative` turns that into "fraction of native
performance" (the ratio when higher is better, its inverse when lower is
better), so 1.0 means "as good as native" for every figure alike.

A figure that could not be measured keeps `vnet`/`native` as None and says
why in `skipped` (for one side: `native_skipped`).

Next to vnet and native, every figure carries the limits on this machine
(`Figure.limits`, in the figure's own unit, filled in by
vnet.bench.workloads.apply_limits): what the guest's own compute allows
(`guest_compute`), what the cheapest host call allows (`host_call_floor`:
the empty call's cost times the calls the figure's programs make per unit),
and what the kernel's loopback does with programs that do no per-byte work
(`kernel`). And every figure the issue's "Done when" list names carries its
target(s) (`Spec.targets`), so one run says what is met.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    """A "Done when" bound: vnet's value (or vnet ÷ native) against a number.

    `goal` marks a bound the issue gives as a goal beside the criterion.
    """

    op: str  # ">=" or "<="
    value: float
    of_native: bool = False  # compare vnet ÷ native instead of vnet's value
    goal: bool = False

    def text(self, unit: str) -> str:
        sign = "≥" if self.op == ">=" else "≤"
        number = f"{self.value:,.0f}" if self.value >= 100 else f"{self.value:g}"
        what = f"{sign} {number}x native" if self.of_native else f"{sign} {number} {unit}"
        return f"goal {what}" if self.goal else what

    def met(self, vnet: float | None, ratio: float | None) -> bool | None:
        value = ratio if self.of_native else vnet
        if value is None:
            return None
        return value >= self.value if self.op == ">=" else value <= self.value


LIMIT_KINDS = ("guest_compute", "host_call_floor", "kernel")
LIMIT_TITLES = {"guest_compute": "guest compute", "host_call_floor": "host-call floor",
                "kernel": "kernel"}


@dataclass(frozen=True)
class Spec:
    id: str
    title: str
    unit: str
    higher_is_better: bool
    native_meaning: str  # what the native column is
    #: False for figures whose ratio is context rather than a speed (UDP loss: a
    #: slower sender loses less); the chart's relative-performance panel leaves them out
    charted: bool = True
    targets: tuple[Target, ...] = ()
    #: the figure's targets hold only at this size (e.g. 1,000 guests); at another size
    #: (the quick run) met/not met is not judged
    target_size: int | None = None


SPECS: tuple[Spec, ...] = (
    Spec("tcp_bulk_mtu1500", "TCP bulk, MTU 1500", "MB/s", True,
         "bulk.c over lo (MTU 1500)", targets=(Target(">=", 0.25, of_native=True),)),
    Spec("tcp_bulk_mtu65520", "TCP bulk, MTU 65520", "MB/s", True,
         "bulk.c over lo (MTU 65520)"),
    Spec("tcp_static_mtu1500", "TCP bulk static sender, MTU 1500", "MB/s", True,
         "static_bulk.c over lo (MTU 1500)", targets=(Target(">=", 80, goal=True),)),
    Spec("tcp_static_mtu65520", "TCP bulk static sender, MTU 65520", "MB/s", True,
         "static_bulk.c over lo (MTU 65520)", targets=(Target(">=", 150),)),
    Spec("udp64_rate", "UDP 64 B delivered", "datagrams/s", True,
         "bulk.c udp-send/udp-recv over lo",
         targets=(Target(">=", 0.05, of_native=True), Target(">=", 50_000, goal=True))),
    Spec("udp64_loss", "UDP 64 B loss", "%", False,
         "bulk.c udp-send/udp-recv over lo", charted=False, targets=(Target("<=", 2),)),
    Spec("tcp_connrate", "TCP connections", "conn/s", True,
         "connrate.c over lo", targets=(Target(">=", 4_000),)),
    Spec("udp_rtt_p50", "UDP RTT p50", "µs", False, "udp_rtt.c over lo",
         targets=(Target("<=", 100),)),
    Spec("udp_rtt_p99", "UDP RTT p99", "µs", False, "udp_rtt.c over lo"),
    Spec("tun_kernel_to_guest", "TUN kernel → guest", "MB/s", True,
         "bulk.c over lo (MTU 1500), both ends native", targets=(Target(">=", 40),)),
    Spec("tun_guest_to_kernel", "TUN guest → kernel", "MB/s", True,
         "bulk.c over lo (MTU 1500), both ends native", targets=(Target(">=", 40),)),
    Spec("guest_idle_memory", "Memory per idle guest", "MiB", False,
         "PSS of one idle native tcp_echo_server process", targets=(Target("<=", 0.25),)),
    Spec("max_guests", "Concurrent guests (listener + 1 conn)", "guests", True,
         "no native counterpart"),
    Spec("fleet_connect", "Guests start + connect, one connection each", "s", False,
         "no native counterpart", targets=(Target("<=", 30),), target_size=1000),
    Spec("hostcall_getsockname", "getsockname call", "ns/call", False,
         "the getsockname system call",
         targets=(Target("<=", 6, of_native=True), Target("<=", 1000, goal=True))),
    Spec("hostcall_send0", "send(0 B), connected UDP", "ns/call", False,
         "the send system call"),
    Spec("hostcall_empty", "Empty call (host-call floor)", "ns/call", False,
         "the getppid system call"),
    Spec("guest_compute", "bulk.c per-byte work, no sockets", "MB/s", True,
         "the same C, gcc"),
    Spec("virtual_time_speed", "Idle-heavy topology, virtual time", "x real time", True,
         "no native counterpart", targets=(Target(">=", 100),)),
)
SPEC_BY_ID = {s.id: s for s in SPECS}
FIGURE_IDS = tuple(s.id for s in SPECS)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass
class Figure:
    spec: Spec
    vnet_runs: list[float] = field(default_factory=list)
    native_runs: list[float] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None  # the whole figure
    native_skipped: str | None = None  # only the native side
    #: set when the native value is borrowed from another figure (TUN rows)
    native_override: float | None = None
    #: the limits on this machine, in the figure's unit (LIMIT_KINDS), and how each was had
    limits: dict[str, float] = field(default_factory=dict)
    limit_notes: dict[str, str] = field(default_factory=dict)
    #: the size the figure was measured at, when its target depends on one
    size: int | None = None
    #: the run stopped before the end (a time budget): vnet's value is a lower bound
    lower_bound: bool = False
    #: one line for the table's last column (why a value is what it is)
    note: str | None = None

    @property
    def vnet(self) -> float | None:
        return None if self.skipped else median(self.vnet_runs)

    @property
    def native(self) -> float | None:
        if self.skipped or self.native_skipped:
            return None
        if self.native_override is not None:
            return self.native_override
        return median(self.native_runs)

    @property
    def ratio(self) -> float | None:
        v, n = self.vnet, self.native
        if v is None or n is None or n == 0:
            return None
        return v / n

    @property
    def relative(self) -> float | None:
        """Fraction of native performance (1.0 = as good as native)."""
        r = self.ratio
        if r is None or r == 0:
            return None
        return r if self.spec.higher_is_better else 1 / r

    def target_results(self) -> list[tuple[Target, bool | None]]:
        """Each target and whether it is met (None: not measured, or not at the target size)."""
        s = self.spec
        judged = s.target_size is None or self.size == s.target_size
        results: list[tuple[Target, bool | None]] = []
        for t in s.targets:
            met = t.met(self.vnet, self.ratio) if judged else None
            if self.lower_bound and met and t.op == "<=":
                met = None  # the run stopped early: the real value may be above the bound
            results.append((t, met))
        return results

    def verdict(self) -> str:
        """"met", "NOT met", "goal met", … for each target; why not judged otherwise."""
        parts = []
        s = self.spec
        for target, met in self.target_results():
            prefix = "goal " if target.goal else ""
            if met is None:
                why = (f"not judged at {self.size:,}" if s.target_size is not None
                       and self.size is not None and self.size != s.target_size else "—")
                parts.append(prefix + why)
            else:
                parts.append(prefix + ("met" if met else "NOT met"))
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        s = self.spec
        return {
            "id": s.id, "title": s.title, "unit": s.unit,
            "higher_is_better": s.higher_is_better,
            "vnet": _round(self.vnet), "native": _round(self.native),
            "ratio_vnet_to_native": _round(self.ratio, 4),
            "relative_performance": _round(self.relative, 4),
            "native_is": s.native_meaning,
            "vnet_runs": [_round(v) for v in self.vnet_runs],
            "native_runs": [_round(v) for v in self.native_runs],
            "skipped": self.skipped, "native_skipped": self.native_skipped,
            "limits": {k: _round(v) for k, v in self.limits.items()},
            "limit_notes": self.limit_notes,
            "targets": [{"text": t.text(s.unit), "op": t.op, "value": t.value,
                         "of_native": t.of_native, "goal": t.goal, "met": met}
                        for t, met in self.target_results()],
            "target_size": s.target_size, "size": self.size,
            "vnet_is_lower_bound": self.lower_bound, "note": self.note,
            "detail": self.detail,
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    if value is None:
        return None
    return float(f"{value:.{digits + 3}g}") if abs(value) < 1 else round(value, digits)
