"""The built-in demo (`scripts/demo`, `python -m vnet.demo`).

Runs the example guests from examples/build: a file-system tour in a
preopened scratch directory, then four tickers side by side in virtual time
(twice, to show the two runs agree). Touches a temporary directory and stdout.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from vnet.guest.runtime import Guest, GuestConfig, run_module
from vnet.output import PrefixedLines
from vnet.scheduler import Scheduler

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "examples" / "build"


def _tickers(seed: int) -> list[bytes]:
    sched = Scheduler(virtual=True, seed=seed)
    lines: list[bytes] = []
    out = sys.stdout.buffer
    guests = []
    for i in range(4):
        name = f"ticker{i}"
        show = PrefixedLines(name, out, width=7)

        def sink(data: bytes, show: PrefixedLines = show, name: str = name) -> None:
            lines.append(name.encode() + b":" + data)
            show(data)

        cfg = GuestConfig(module=str(BUILD / "ticker.wasm"), args=["ticker", name, "4"],
                          name=name, stdout=sink, stderr=sink)
        guests.append(Guest(sched, cfg))
    for guest in guests:
        guest.start()
    sched.run()
    return lines


def main() -> int:
    missing = [n for n in ("ticker",) if not (BUILD / f"{n}.wasm").is_file()]
    if missing:
        print(f"vnet demo: build the examples first (missing {', '.join(missing)})",
              file=sys.stderr)
        return 2
    tour = BUILD / "fs_tour.wasm"
    if tour.is_file():
        print("== fs_tour: args, env, clocks, sleep, random and a file in a preopened dir ==")
        with tempfile.TemporaryDirectory(prefix="vnet-demo-") as scratch:
            result = run_module(tour, ["fs_tour", "/scratch"], env=[("DEMO", "1")],
                                preopens=[(scratch, "/scratch")])
            sys.stdout.buffer.write(result.stdout)
            sys.stdout.buffer.write(result.stderr)
            print(f"-- fs_tour exited with {result.exit_code}; scratch dir held: "
                  f"{sorted(p.name for p in Path(scratch).iterdir())}")
    print("\n== four tickers in virtual time (seed 42), run twice ==")
    first = _tickers(42)
    print("-- second run --")
    second = _tickers(42)
    same = "identical" if first == second else "DIFFERENT"
    print(f"\nThe two virtual-time runs were {same} ({len(first)} output writes each).")
    return 0 if first == second else 1


if __name__ == "__main__":
    sys.exit(main())
