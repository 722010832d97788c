"""How big each workload is: `QUICK` (a smoke run, well under two minutes)
and `FULL` (the numbers for the README; 15 to 20 minutes on the 2-core
reference machine). The native side gets bigger workloads than vnet so that
both run for a comparable, timeable stretch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Settings:
    name: str
    reps: int  # each workload runs this many times per side; figures are medians
    bulk_mb_native: float  # MiB per TCP bulk transfer
    bulk_mb_vnet: float
    static_mb_native: float  # MiB per static-buffer TCP transfer (static_bulk.c)
    static_mb_vnet: float
    udp_count_native: int  # 64-byte datagrams per UDP run
    udp_count_vnet: int
    conn_native: int  # connections per connection-rate run
    conn_vnet: int
    rtt_native: int  # probes per latency run
    rtt_vnet: int
    tun_mb: float  # MiB each way through the TUN bridge
    hostcall_native: int  # calls per kind in the host-call loop
    hostcall_vnet: int
    scale_cap: int  # stop the concurrent-guest search at this many guests
    scale_time_s: float  # ... or after this long
    scale_memory_bytes: int  # ... or when the process's RSS passes this
    scale_idle_sample: int  # idle guests started to measure memory per idle guest
    scale_batch: int  # guests started at a time during the search
    idle_native_procs: int  # idle native servers measured for memory
    profile_mb: float  # MiB moved by the profiled TCP bulk run
    compute_mb_native: float  # MiB of bulk.c's per-byte work timed without sockets
    compute_mb_vnet: float
    empty_calls_native: int  # empty calls timed for the host-call floor
    empty_calls_vnet: int
    fleet_guests: int  # guests started at once, each then given one connection
    fleet_budget_s: float  # ... given up after this long
    idle_hosts: int  # hosts in the idle-heavy virtual-time topology
    idle_minutes: float  # simulated minutes it runs (one datagram per host per second)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


QUICK = Settings(
    name="quick", reps=1,
    bulk_mb_native=128, bulk_mb_vnet=8,
    static_mb_native=256, static_mb_vnet=8,
    udp_count_native=200_000, udp_count_vnet=5_000,
    conn_native=4_000, conn_vnet=300,
    rtt_native=1_000, rtt_vnet=500,
    tun_mb=8,
    hostcall_native=300_000, hostcall_vnet=20_000,
    scale_cap=40, scale_time_s=30, scale_memory_bytes=2 * 2**30,
    scale_idle_sample=10, scale_batch=10,
    idle_native_procs=5,
    profile_mb=16,
    compute_mb_native=64, compute_mb_vnet=16,
    empty_calls_native=300_000, empty_calls_vnet=50_000,
    fleet_guests=50, fleet_budget_s=60,
    idle_hosts=50, idle_minutes=1,
)

FULL = Settings(
    name="full", reps=3,
    bulk_mb_native=512, bulk_mb_vnet=48,
    static_mb_native=2048, static_mb_vnet=64,
    udp_count_native=1_000_000, udp_count_vnet=20_000,
    conn_native=20_000, conn_vnet=1_500,
    rtt_native=5_000, rtt_vnet=3_000,
    tun_mb=48,
    hostcall_native=2_000_000, hostcall_vnet=100_000,
    scale_cap=3_000, scale_time_s=240, scale_memory_bytes=8 * 2**30,
    scale_idle_sample=100, scale_batch=50,
    idle_native_procs=10,
    profile_mb=64,
    compute_mb_native=256, compute_mb_vnet=128,
    empty_calls_native=2_000_000, empty_calls_vnet=300_000,
    fleet_guests=1000, fleet_budget_s=300,
    idle_hosts=50, idle_minutes=10,
)


def memory_budget(settings: Settings) -> Settings:
    """Cap the scale search's memory budget at half of what the machine has free."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    except (OSError, ValueError, IndexError):
        return settings
    available = info.get("MemAvailable")
    if available is None:
        return settings
    return replace(settings, scale_memory_bytes=min(settings.scale_memory_bytes, available // 2))
