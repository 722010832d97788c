"""The built-in demo (`scripts/demo`, `python -m vnet.sim.demo`).

Runs `examples/demo.toml` — a chat server with three clients, a game lobby
announced over multicast, and a web page fetched from an HTTP server, all
wasm guests on one virtual LAN in deterministic virtual time — and says where
the pcaps went: one per NIC, and `segment-lan.pcapng`, the LAN as a switch's
monitor port sees it (each frame once: the one to open in Wireshark), next to
a drawing of the topology (`topology.svg`). Touches examples/build (outputs)
and stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vnet.guest.runtime import GuestLoadError
from vnet.pictures.topology import write_topology_svg
from vnet.sim.runner import CapturePlan, print_summary, run
from vnet.sim.topology import TopologyError, load

ROOT = Path(__file__).resolve().parents[2]  # vnet/sim/demo.py -> the repository
TOPOLOGY = ROOT / "examples" / "demo.toml"
PCAPS = ROOT / "examples" / "build" / "demo-pcaps"


def main() -> int:
    try:
        topo = load(TOPOLOGY)
    except TopologyError as e:
        print(f"vnet demo: {e} (did the example build step run?)", file=sys.stderr)
        return 2
    print(f"== vnet demo: {TOPOLOGY.relative_to(ROOT)} — {len(topo.hosts)} hosts, "
          f"{len(topo.guest_names())} guests, virtual time, seed {topo.seed}\n")
    try:
        PCAPS.mkdir(parents=True, exist_ok=True)
        write_topology_svg(topo, PCAPS / "topology.svg")
        result = run(topo, plan=CapturePlan(pcap_dir=PCAPS, segments=["lan"]))
    except GuestLoadError as e:
        print(f"vnet demo: {e}", file=sys.stderr)
        return 2
    print_summary(result)
    where = PCAPS.relative_to(ROOT)
    print(f"\nOpen the LAN in Wireshark: `wireshark {where}/segment-lan.pcapng` (each frame "
          f"once;\n`tshark -N n -r {where}/segment-lan.pcapng` shows host names), or one NIC's "
          f"view:\n`tshark -r {where}/server-eth0.pcapng`. The topology: {where}/topology.svg."
          "\nThe same seed gives byte-identical captures on every run.")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
