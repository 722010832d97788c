"""The figures a benchmark run reports, and how each is compared with native.

Every figure has a value measured on vnet (wasm guests, vnet's stack) and,
where one exists, the same C program's value natively (gcc, the kernel's
loopback) from the same run. `ratio` is always vnet ÷ native, in the
figure's own unit; `relative` turns that into "fraction of native
performance" (the ratio when higher is better, its inverse when lower is
better), so 1.0 means "as good as native" for every figure alike.

A figure that could not be measured keeps `vnet`/`native` as None and says
why in `skipped` (for one side: `native_skipped`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


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


SPECS: tuple[Spec, ...] = (
    Spec("tcp_bulk_mtu1500", "TCP bulk, MTU 1500", "MB/s", True,
         "bulk.c over lo (MTU 1500)"),
    Spec("tcp_bulk_mtu65520", "TCP bulk, MTU 65520", "MB/s", True,
         "bulk.c over lo (MTU 65520)"),
    Spec("udp64_rate", "UDP 64 B delivered", "datagrams/s", True,
         "bulk.c udp-send/udp-recv over lo"),
    Spec("udp64_loss", "UDP 64 B loss", "%", False,
         "bulk.c udp-send/udp-recv over lo", charted=False),
    Spec("tcp_connrate", "TCP connections", "conn/s", True,
         "connrate.c over lo"),
    Spec("udp_rtt_p50", "UDP RTT p50", "µs", False, "udp_rtt.c over lo"),
    Spec("udp_rtt_p99", "UDP RTT p99", "µs", False, "udp_rtt.c over lo"),
    Spec("tun_kernel_to_guest", "TUN kernel → guest", "MB/s", True,
         "bulk.c over lo (MTU 1500), both ends native"),
    Spec("tun_guest_to_kernel", "TUN guest → kernel", "MB/s", True,
         "bulk.c over lo (MTU 1500), both ends native"),
    Spec("guest_idle_memory", "Memory per idle guest", "MiB", False,
         "PSS of one idle native tcp_echo_server process"),
    Spec("max_guests", "Concurrent guests (listener + 1 conn)", "guests", True,
         "no native counterpart"),
    Spec("hostcall_getsockname", "getsockname call", "ns/call", False,
         "the getsockname system call"),
    Spec("hostcall_send0", "send(0 B), connected UDP", "ns/call", False,
         "the send system call"),
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
            "detail": self.detail,
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    if value is None:
        return None
    return float(f"{value:.{digits + 3}g}") if abs(value) < 1 else round(value, digits)
