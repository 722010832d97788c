"""The built-in demo (`scripts/demo`, `python -m vnet.sim.demo`).

Runs `examples/demo.toml` — a chat server with three clients, a game lobby
announced over multicast, and a web page fetched from an HTTP server, all
wasm guests on one virtual LAN in deterministic virtual time — and says where
the pcaps went: one per NIC, and `segment-lan.pcapng`, the LAN as a switch's
monitor port sees it (each frame once: the one to open in Wireshark), next to
a drawing of the topology (`topology.svg`). Touches examples/build (outputs)
and stdout; in an installed package (`vnet demo [DIR]`), DIR (default
./vnet-demo), where it copies and builds the packaged examples.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from vnet.guest.runtime import GuestLoadError
from vnet.pictures.topology import write_topology_svg
from vnet.sim.runner import CapturePlan, print_summary, run
from vnet.sim.topology import TopologyError, load

ROOT = Path(__file__).resolve().parents[2]  # vnet/sim/demo.py -> the repository
TOPOLOGY = ROOT / "examples" / "demo.toml"
PCAPS = ROOT / "examples" / "build" / "demo-pcaps"
# the examples as a wheel carries them (vnet/sim/examples: a link to examples/ in a checkout)
PACKAGED_EXAMPLES = Path(__file__).resolve().parent / "examples"


def prepare_installed(workdir: Path) -> tuple[Path, Path, Path]:
    """An installed vnet (no checkout): copy the packaged examples into `workdir` and
    build the demo's guests there. Returns (root, topology, pcap dir)."""
    from vnet.examples_build import main as build_examples

    examples = workdir / "examples"
    examples.mkdir(parents=True, exist_ok=True)
    for source in PACKAGED_EXAMPLES.iterdir():
        if source.is_file() and source.suffix in (".c", ".toml"):
            shutil.copyfile(source, examples / source.name)
    if build_examples([str(examples), str(examples / "build")]) != 0:
        raise SystemExit(2)
    return workdir, examples / "demo.toml", examples / "build" / "demo-pcaps"


def main(argv: list[str] | None = None) -> int:
    """Run the demo: from the checkout's examples/ (scripts/demo builds them), or, in an
    installed package, from the packaged examples copied to a work directory
    (`vnet demo [DIR]`, default ./vnet-demo)."""
    args = sys.argv[1:] if argv is None else argv
    root, topology, pcaps = ROOT, TOPOLOGY, PCAPS
    if args or not TOPOLOGY.is_file():
        root, topology, pcaps = prepare_installed(Path(args[0] if args else "vnet-demo"))
    try:
        topo = load(topology)
    except TopologyError as e:
        print(f"vnet demo: {e} (did the example build step run?)", file=sys.stderr)
        return 2
    print(f"== vnet demo: {topology.relative_to(root)} — {len(topo.hosts)} hosts, "
          f"{len(topo.guest_names())} guests, virtual time, seed {topo.seed}\n")
    try:
        pcaps.mkdir(parents=True, exist_ok=True)
        write_topology_svg(topo, pcaps / "topology.svg")
        result = run(topo, plan=CapturePlan(pcap_dir=pcaps, segments=["lan"]))
    except GuestLoadError as e:
        print(f"vnet demo: {e}", file=sys.stderr)
        return 2
    print_summary(result)
    where = pcaps.relative_to(root) if root == ROOT else pcaps
    print(f"\nOpen the LAN in Wireshark: `wireshark {where}/segment-lan.pcapng` (each frame "
          f"once;\n`tshark -N n -r {where}/segment-lan.pcapng` shows host names), or one NIC's "
          f"view:\n`tshark -r {where}/server-eth0.pcapng`. The topology: {where}/topology.svg."
          "\nThe same seed gives byte-identical captures on every run.")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
