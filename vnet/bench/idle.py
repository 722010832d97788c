"""The virtual-time figure: how many simulated seconds an idle-heavy network
runs per wall-clock second.

    python -m vnet.bench.idle --module ticker.wasm [--hosts 50] [--minutes 10] [--seed 1]

HOSTS virtual hosts h0 … h{HOSTS-1} (10.0.x.y/16) on one segment, each
running the bench's `ticker` guest (vnet/bench/ticker.c): one 32-byte UDP
datagram to the next host every simulated second, MINUTES * 60 of them, then
one more second of listening. The network runs in virtual time with a fixed
seed, so each run does the same work. The figure is simulated seconds ÷ wall
seconds from the first guest started to the last one done (guest start-up
included). Every guest must report every datagram sent and received, or the
run fails.

Runs in a process of its own (`scripts/bench` starts it), like
vnet.bench.scale. Prints one JSON object on the last line of stdout.
Touches only the virtual network it builds.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from vnet.guest.runtime import Guest, GuestConfig, load_module
from vnet.network import Network

PORT = 7000
_DONE = re.compile(rb"ticker: sent (\d+) received (\d+) in ([\d.]+) s")


def address(i: int) -> str:
    return f"10.0.{1 + i // 250}.{1 + i % 250}"


def run(module_path: str, hosts: int, minutes: float, seed: int) -> dict[str, Any]:
    ticks = max(1, int(minutes * 60))
    module = load_module(module_path)
    net = Network(virtual_time=True, seed=seed)
    sched = net.scheduler
    lan = net.segment("lan")
    outputs: list[bytearray] = []
    guests: list[Guest] = []
    for i in range(hosts):
        host = net.host(f"h{i}")
        host.connect(lan, f"{address(i)}/16")
        out = bytearray()
        outputs.append(out)
        guests.append(Guest(sched, GuestConfig(
            module=module_path, args=["ticker", str(PORT), address((i + 1) % hosts), str(ticks)],
            host=host, stdout=out.extend, stderr=out.extend, name=f"t{i}"), module))
    sim_start = sched.monotonic_ns()
    wall_start = time.monotonic()
    cpu_start = time.process_time()
    for guest in guests:
        guest.start()
    sched.run(until=lambda: all(g.done for g in guests))
    wall = time.monotonic() - wall_start
    cpu = time.process_time() - cpu_start
    simulated = (sched.monotonic_ns() - sim_start) / 1e9
    problems = []
    sent = received = 0
    for guest, out in zip(guests, outputs, strict=True):
        found = _DONE.search(bytes(out))
        if not guest.done or guest.exit_code != 0 or found is None:
            problems.append(f"{guest.config.name}: exit {guest.exit_code} trap {guest.trap}: "
                            f"{bytes(out)[-300:]!r}")
            continue
        sent += int(found.group(1))
        received += int(found.group(2))
    net.close()
    if problems:
        raise RuntimeError("; ".join(problems[:3]))
    if sent != hosts * ticks or received != sent:
        raise RuntimeError(f"{sent} datagrams sent and {received} received, "
                           f"expected {hosts * ticks} each")
    return {"hosts": hosts, "simulated_minutes": minutes, "datagrams": sent,
            "simulated_s": round(simulated, 3), "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3), "speed": simulated / wall, "seed": seed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vnet.bench.idle")
    parser.add_argument("--module", required=True, help="ticker.wasm")
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.module, args.hosts, args.minutes, args.seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
