"""A run's summary as JSON, for scripts: `vnet sim --json` and `vnet run --json`.

The same facts the human summary prints — how the run ended, each guest's exit
status and trap, frames and bytes per NIC, every drop counter with what it
means (vnet.sim.drop_reasons), the faults applied, the captures written — as
one JSON object with stable keys (`"format": "vnet-summary/1"`). Touches only
the file it is asked to write.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vnet.scheduler import DEFAULT_SCHEDULE
from vnet.sim.drop_reasons import explain

FORMAT = "vnet-summary/1"


def drops_json(drops: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """One entry per nonzero counter: where, which, how many, what kind, what it means."""
    listed = []
    for where, counters in drops.items():
        for counter, count in sorted(counters.items()):
            if not count:
                continue
            why = explain(counter)
            listed.append({"where": where, "counter": counter, "count": count,
                           "kind": why.kind, "meaning": why.text})
    return listed


def sim_summary(result: Any, *, seed: int, virtual_time: bool,
                schedule: str = DEFAULT_SCHEDULE) -> dict[str, Any]:
    """`vnet sim`'s summary (a vnet.sim.runner.SimResult) as a JSON-ready dict."""
    return {
        "format": FORMAT,
        "command": "sim",
        "ok": result.ok,
        "ended": result.ended,
        "elapsed_s": result.elapsed_ns / 1e9,
        "virtual_time": virtual_time,
        "seed": seed,
        "schedule": schedule,
        "guests": [{"name": g.name, "exit_code": g.exit_code, "trap": g.trap,
                    "client": g.name in result.clients} for g in result.guests],
        "nics": {name: dict(stats) for name, stats in result.nic_stats.items()},
        "drops": drops_json(result.drops),
        "faults": list(result.faults),
        "pcaps": [str(p) for p in result.pcaps],
        "pcap_packets": dict(result.pcap_packets),
    }


def write_json(summary: Mapping[str, Any], target: str) -> None:
    """Write to a file, or to stdout for "-"."""
    text = json.dumps(summary, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(target).write_text(text)
