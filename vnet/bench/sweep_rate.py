"""Simulation-testing figures: the cost of schedule exploration, and sweep throughput.

    python -m vnet.bench.sweep_rate [--runs 5] [--seeds 20] [--skip-dask] [--json FILE]

Both use the demo topology (examples/demo.toml, its guests built into a
temporary directory first, with the build cache).

* **Exploration cost**: the demo run in this process `--runs` times under
  `--schedule fifo` and under `--schedule explore` (seeds 1..runs, the same
  for both), alternating, each timed by wall clock and by CPU time
  (`time.process_time`, every thread of the process). Reported: simulated
  seconds per wall second and per CPU second (median and best). Virtual time is what the demo's
  clients took (1.01 s), so the figure is the run's speed, build excluded.
* **Sweep throughput**: `vnet.sim.sweep.sweep` on `--seeds` seeds (the
  default schedule, explore) with 1 worker (this process), 2 worker
  processes, and a Dask `LocalCluster` of 2 single-threaded worker processes
  (if `distributed` is installed and not `--skip-dask`). Reported: seeds per
  minute, pool or cluster start-up included (as a user sees it), and the
  CPU time the sweep used in all its processes (this one and the reaped
  workers), so a loaded machine's figure can be read as seeds per CPU minute.

On a shared machine wall-clock figures are noisy: compare the CPU-time
figures, or the medians of several runs.

Touches: a temporary directory (built guests, sweep results), worker
processes it starts (a process pool, a Dask LocalCluster), nothing else.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DEMO_MODULES = ("chat_server", "chat_client", "http_server", "http_get", "lobby")


def demo_copy(directory: Path) -> Path:
    """examples/demo.toml beside freshly built guests in ``directory``; its path."""
    from vnet.build import build_wasm

    (directory / "build").mkdir(parents=True, exist_ok=True)
    for name in DEMO_MODULES:
        build_wasm([EXAMPLES / f"{name}.c"], directory / "build" / f"{name}.wasm", quiet=True)
    shutil.copyfile(EXAMPLES / "demo.toml", directory / "demo.toml")
    shutil.copyfile(EXAMPLES / "ticker.c", directory / "ticker.c")  # served by the web host
    return directory / "demo.toml"


def exploration_cost(topology: Path, runs: int) -> dict[str, Any]:
    """Demo runs under fifo and explore, alternating: speed in simulated s per wall/CPU s."""
    from vnet.sim.runner import run
    from vnet.sim.topology import load

    figures: dict[str, dict[str, list[float]]] = {
        s: {"wall_s": [], "cpu_s": [], "sim_s": []} for s in ("fifo", "explore")}
    for seed in range(1, runs + 1):
        for schedule in ("fifo", "explore"):
            topo = load(topology)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            result = run(topo, virtual_time=True, seed=seed, schedule=schedule,
                         out=io.BytesIO())
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            if not result.ok:
                raise RuntimeError(f"demo failed under {schedule}, seed {seed}: {result.ended}")
            figure = figures[schedule]
            figure["wall_s"].append(wall)
            figure["cpu_s"].append(cpu)
            figure["sim_s"].append(result.elapsed_ns / 1e9)
    report: dict[str, Any] = {}
    for schedule, figure in figures.items():
        speeds_wall = [s / w for s, w in zip(figure["sim_s"], figure["wall_s"], strict=True)]
        speeds_cpu = [s / c for s, c in zip(figure["sim_s"], figure["cpu_s"], strict=True)]
        report[schedule] = {
            "runs": runs,
            "sim_s_median": statistics.median(figure["sim_s"]),
            "wall_s_median": statistics.median(figure["wall_s"]),
            "cpu_s_median": statistics.median(figure["cpu_s"]),
            "sim_per_wall_median": statistics.median(speeds_wall),
            "sim_per_wall_best": max(speeds_wall),
            "sim_per_cpu_median": statistics.median(speeds_cpu),
            "sim_per_cpu_best": max(speeds_cpu),
        }
    return report


def _cpu_s() -> float:
    """CPU seconds of this process and of its reaped children (the sweep's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _figure(seeds: int, wall: float, cpu: float, failed: list[int]) -> dict[str, Any]:
    return {"seeds": seeds, "wall_s": wall, "cpu_s": cpu, "seeds_per_minute": 60 * seeds / wall,
            "seeds_per_cpu_minute": 60 * seeds / cpu if cpu > 0 else None, "failed": failed}


def sweep_throughput(topology: Path, seeds: int, dask: bool, work: Path) -> dict[str, Any]:
    """Seeds per minute on 1 and 2 local workers and on a 2-worker Dask LocalCluster."""
    from vnet.sim.sweep import sweep

    seed_list = list(range(1, seeds + 1))
    report: dict[str, Any] = {}
    for workers in (1, 2):
        started, cpu = time.perf_counter(), _cpu_s()
        result = sweep(topology, seed_list, results_dir=work / f"pool{workers}",
                       workers=workers)
        report[f"pool_{workers}"] = _figure(seeds, time.perf_counter() - started,
                                            _cpu_s() - cpu, [o.seed for o in result.failed])
    if dask:
        try:
            from distributed import LocalCluster
        except ImportError:
            report["dask_2"] = "distributed not installed (pip install 'vnet[cluster]')"
            return report
        started, cpu = time.perf_counter(), _cpu_s()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            result = sweep(topology, seed_list, results_dir=work / "dask",
                           cluster=cluster.scheduler_address)
        report["dask_2"] = _figure(seeds, time.perf_counter() - started, _cpu_s() - cpu,
                                   [o.seed for o in result.failed])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vnet.bench.sweep_rate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="demo runs per schedule")
    parser.add_argument("--seeds", type=int, default=20, help="seeds per sweep")
    parser.add_argument("--skip-dask", action="store_true", help="no Dask LocalCluster sweep")
    parser.add_argument("--skip-sweep", action="store_true", help="exploration cost only")
    parser.add_argument("--skip-cost", action="store_true", help="sweep throughput only")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ns = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vnet-sweep-rate-") as tmp:
        work = Path(tmp)
        topology = demo_copy(work / "demo")
        figures: dict[str, Any] = {}
        if not ns.skip_cost:
            figures["exploration"] = exploration_cost(topology, ns.runs)
        for schedule in ("fifo", "explore") if not ns.skip_cost else ():
            f = figures["exploration"][schedule]
            print(f"demo, schedule {schedule:<7}: {f['sim_s_median']:.3f} simulated s in "
                  f"{f['wall_s_median']:.2f} s wall / {f['cpu_s_median']:.2f} s CPU (median of "
                  f"{f['runs']}): {f['sim_per_wall_median']:.2f} simulated s per wall s "
                  f"(best {f['sim_per_wall_best']:.2f}), {f['sim_per_cpu_median']:.2f} per "
                  "CPU s", flush=True)
        if not ns.skip_sweep:
            figures["sweep"] = sweep_throughput(topology, ns.seeds, not ns.skip_dask, work)
            for engine, f in figures["sweep"].items():
                if isinstance(f, str):
                    print(f"sweep {engine}: {f}")
                    continue
                print(f"sweep {engine:<7}: {f['seeds']} demo seeds in {f['wall_s']:.1f} s wall, "
                      f"{f['cpu_s']:.1f} s CPU: {f['seeds_per_minute']:.0f} seeds per minute, "
                      f"{f['seeds_per_cpu_minute']:.0f} per CPU minute (failed: "
                      f"{f['failed'] or 'none'})", flush=True)
    if ns.json:
        Path(ns.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
