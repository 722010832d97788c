"""`vnet sweep`: run one topology once per seed, in virtual time, and list the failures.

    vnet sweep TOPOLOGY.toml --seeds 1-1000 [--workers N | --cluster ADDRESS]
               [--check CMD] [--results DIR] [--keep] [--duration D]
               [--schedule explore|fifo]

Each seed is one `vnet sim TOPOLOGY --virtual-time --seed N --schedule S` run
(the topology's `[[faults]]` and `[random_faults]` included, so a random fault
plan is drawn from the seed too). The schedule is ``explore`` unless
``--schedule`` or the file's ``[sim] schedule`` says otherwise: a sweep is
where the seed should also choose the order of guests runnable at the same
virtual instant (vnet.scheduler, "Schedules"), so a race the network does
not rule out shows up as failing seeds. A seed **passes** when every client guest
exited 0 — or, with ``--check CMD``, when CMD exits 0 after the run. CMD runs
through the shell, in the seed's results directory, with:

==========================  ==================================================
``VNET_SWEEP_SEED``         the seed
``VNET_SWEEP_DIR``          the seed's results directory (also the cwd)
``VNET_SWEEP_TOPOLOGY``     the topology file (absolute)
``VNET_SWEEP_CLIENTS_OK``   ``1`` when every client exited 0, else ``0``
==========================  ==================================================

The seed's directory, ``RESULTS/seed-N/``, holds ``output.txt`` (every guest
line, prefixed ``host/guest``), ``summary.txt`` (what `vnet sim` prints at
the end, faults included), ``result.json`` (exit codes, how the run ended)
and ``pcaps/HOST-NIC.pcapng``. A pytest file makes a good check:
``--check 'pytest -q /path/to/test_run.py'`` with tests reading
``VNET_SWEEP_DIR``. Passing seeds' pcaps are deleted afterwards unless
``--keep``; failing seeds keep everything, and the table prints the command
that replays each one (``vnet sim ... --seed N --schedule S --pcap-dir RESULTS/seed-N/replay``),
whose captures are byte-identical to ``RESULTS/seed-N/pcaps``.

Where seeds run
---------------
By default on every local core: a process pool (``--workers N``, default
``os.cpu_count()``; spawned processes, one seed at a time each; with one
worker, this process runs the seeds itself). With
``--cluster ADDRESS`` (``tcp://HOST:8786``), on a Dask distributed cluster
(the optional extra ``pip install 'vnet[cluster]'``); its workers need vnet
installed and must see the topology file and its modules at the same paths
(a shared filesystem or the same checkout). Prefer one thread per worker
process (``dask worker --nthreads 1``): a run is pure-Python work.

Either way a seed is run by `run_seed` in a fresh temporary directory on the
worker, which sends back the output and pcap bytes; this process writes them
under RESULTS and runs the check, so the results are the same whichever way
they ran.

Why Dask and not Ray: ``distributed`` is pure Python (a few MB of wheels,
against Ray's ~70 MB binary wheel with its own object store, raylet and GCS
server); a ``LocalCluster`` of two worker processes starts in a couple of
seconds on two cores and stops cleanly in-process, which is what a test
needs; and all a sweep needs is "run this function on these arguments and
give me the results as they finish" (``Client.map`` + ``as_completed``).

This module touches the results directory, subprocesses (the check command),
a process pool or a Dask client; it runs `vnet.sim.runner.run`.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

__all__ = ["SeedJob", "SeedOutcome", "SweepResult", "parse_seeds", "replay_command", "run_seed",
           "sweep"]


@dataclass(frozen=True)
class SeedJob:
    """One run to make: the topology (absolute path), the seed, an optional duration."""

    topology: str
    seed: int
    duration_ns: int | None = None
    schedule: str = "explore"


@dataclass
class SeedOutcome:
    """What one seed's run produced (sent back from the worker)."""

    seed: int
    clients_ok: bool
    ended: str
    exit_codes: dict[str, int | None]
    clients: list[str]
    output: bytes
    summary: str
    pcaps: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None  # the run itself failed (a bad module, a crash in vnet)
    #: Filled in by the sweep after the check: the verdict and why.
    passed: bool = False
    reason: str = ""


@dataclass
class SweepResult:
    outcomes: list[SeedOutcome]
    results_dir: Path
    topology: Path
    engine: str  # "process pool (N workers)" or "dask cluster ADDRESS"
    wall_s: float
    schedule: str = "explore"

    @property
    def failed(self) -> list[SeedOutcome]:
        return [o for o in self.outcomes if not o.passed]

    def table(self) -> list[tuple[int, str, str]]:
        """(seed, reason, replay command) of each failing seed, by seed."""
        return [(o.seed, o.reason, replay_command(self.topology, o.seed, self.results_dir,
                                                  self.schedule))
                for o in sorted(self.failed, key=lambda o: o.seed)]


_SEED_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_seeds(text: str) -> list[int]:
    """"1-1000", "7", "1,5,10-12" -> seeds in order, each once. ValueError if malformed."""
    seeds: list[int] = []
    seen: set[int] = set()
    for part in text.split(","):
        match = _SEED_RANGE.match(part)
        if not match:
            raise ValueError(f"bad seed list {text!r} (examples: 1-1000, 7, 1,5,10-12)")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValueError(f"bad seed range {part.strip()!r}: {last} < {first}")
        for seed in range(first, last + 1):
            if seed not in seen:
                seen.add(seed)
                seeds.append(seed)
    return seeds


def replay_command(topology: Path, seed: int, results_dir: Path,
                   schedule: str = "explore") -> str:
    """The `vnet sim` command that replays one seed into RESULTS/seed-N/replay."""
    return shlex.join(["vnet", "sim", str(topology), "--virtual-time", "--seed", str(seed),
                       "--schedule", schedule,
                       "--pcap-dir", str(results_dir / f"seed-{seed}" / "replay")])


def run_seed(job: SeedJob) -> SeedOutcome:
    """Run the topology once with ``job.seed`` in virtual time (on a worker)."""
    from vnet.sim.runner import print_summary, run
    from vnet.sim.topology import load

    out = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix=f"vnet-sweep-{job.seed}-") as tmp:
        pcap_dir = Path(tmp) / "pcaps"
        try:
            topo = load(job.topology)
            result = run(topo, virtual_time=True, seed=job.seed, pcap_dir=pcap_dir,
                         duration_ns=job.duration_ns, out=out, schedule=job.schedule)
        except Exception as e:  # a bad file or module, or a bug: the seed fails, visibly
            return SeedOutcome(job.seed, False, "error", {}, [], out.getvalue(), "",
                               error=f"{type(e).__name__}: {e}")
        text = io.StringIO()
        print_summary(result, text)
        pcaps = {p.name: p.read_bytes() for p in sorted(pcap_dir.iterdir())}
    summary = text.getvalue().replace(str(pcap_dir), "pcaps")
    codes = {g.name: g.exit_code for g in result.guests}
    return SeedOutcome(job.seed, result.ok, result.ended, codes, list(result.clients),
                       out.getvalue(), summary, pcaps)


def _clients_reason(outcome: SeedOutcome) -> str:
    if outcome.error is not None:
        return f"error: {outcome.error}"
    bad = [f"{c}={outcome.exit_codes.get(c)}" for c in outcome.clients
           if outcome.exit_codes.get(c) != 0]
    return "exit " + " ".join(bad) if bad else "clients exited 0"


def _write_seed(outcome: SeedOutcome, seed_dir: Path) -> None:
    if seed_dir.exists():
        shutil.rmtree(seed_dir)
    (seed_dir / "pcaps").mkdir(parents=True)
    (seed_dir / "output.txt").write_bytes(outcome.output)
    (seed_dir / "summary.txt").write_text(outcome.summary)
    for name, data in outcome.pcaps.items():
        (seed_dir / "pcaps" / name).write_bytes(data)
    record = {"seed": outcome.seed, "clients_ok": outcome.clients_ok, "ended": outcome.ended,
              "exit_codes": outcome.exit_codes, "clients": outcome.clients,
              "error": outcome.error}
    (seed_dir / "result.json").write_text(json.dumps(record, indent=2) + "\n")


def _judge(outcome: SeedOutcome, seed_dir: Path, topology: Path, check: str | None,
           keep: bool) -> SeedOutcome:
    """Write the seed's results, run the check, delete a passing seed's pcaps."""
    _write_seed(outcome, seed_dir)
    if check is None or outcome.error is not None:
        outcome.passed = outcome.clients_ok and outcome.error is None
        outcome.reason = _clients_reason(outcome)
    else:
        env = dict(os.environ, VNET_SWEEP_SEED=str(outcome.seed), VNET_SWEEP_DIR=str(seed_dir),
                   VNET_SWEEP_TOPOLOGY=str(topology),
                   VNET_SWEEP_CLIENTS_OK="1" if outcome.clients_ok else "0")
        proc = subprocess.run(check, shell=True, cwd=seed_dir, env=env, capture_output=True)
        (seed_dir / "check.txt").write_bytes(proc.stdout + proc.stderr)
        outcome.passed = proc.returncode == 0
        outcome.reason = (f"check exited {proc.returncode} (check.txt)"
                          if proc.returncode else "check exited 0")
    if outcome.passed and not keep:
        shutil.rmtree(seed_dir / "pcaps", ignore_errors=True)
    outcome.pcaps = {}  # on disk now; do not hold 1000 seeds' captures in memory
    return outcome


def _local_pool(jobs: list[SeedJob], workers: int) -> Iterator[SeedOutcome]:
    if workers == 1:  # no pool to start: this process runs the seeds, one after another
        for job in jobs:
            yield run_seed(job)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run_seed, job): job for job in jobs}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as e:  # the worker process died (a crash, the OOM killer)
                yield _lost(futures[future], e)


def _dask_cluster(jobs: list[SeedJob], address: str) -> Iterator[SeedOutcome]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_as_completed
    except ImportError:
        raise RuntimeError("--cluster needs Dask distributed: pip install 'vnet[cluster]'"
                           ) from None
    with Client(address, timeout="30s") as client:
        futures = client.map(run_seed, jobs, pure=False)
        by_key = {future.key: job for future, job in zip(futures, jobs, strict=True)}
        for future in dask_as_completed(futures):
            try:
                yield future.result()
            except Exception as e:  # the worker died, or could not import vnet
                yield _lost(by_key[future.key], e)


def _lost(job: SeedJob, error: BaseException) -> SeedOutcome:
    """A seed whose worker never sent a result back: it fails, saying why."""
    return SeedOutcome(job.seed, False, "error", {}, [], b"", "",
                       error=f"worker failed: {type(error).__name__}: {error}")


def sweep(topology: str | Path, seeds: Iterable[int], *, results_dir: str | Path,
          workers: int | None = None, cluster: str | None = None, check: str | None = None,
          keep: bool = False, duration_ns: int | None = None,
          progress: Callable[[SeedOutcome, int, int], None] | None = None,
          schedule: str | None = None) -> SweepResult:
    """Run every seed; write RESULTS/seed-N/ and RESULTS/sweep.json; return the verdicts.

    ``schedule``: "explore" or "fifo"; by default the file's ``[sim] schedule``, else
    "explore" (see the module docstring).
    """
    from vnet.scheduler import SCHEDULES
    from vnet.sim.topology import load

    topo_path = Path(topology).resolve()
    topo = load(topo_path)  # a bad file fails here, once, with FILE:LINE
    chosen = schedule or topo.schedule or "explore"
    if chosen not in SCHEDULES:
        raise ValueError(f"schedule {chosen!r}: one of {', '.join(SCHEDULES)}")
    results = Path(results_dir).resolve()
    results.mkdir(parents=True, exist_ok=True)
    jobs = [SeedJob(str(topo_path), seed, duration_ns, chosen) for seed in seeds]
    if not jobs:
        raise ValueError("no seeds to run")
    started = time.monotonic()
    if cluster is not None:
        engine = f"dask cluster {cluster}"
        produced = _dask_cluster(jobs, cluster)
    else:
        count = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
        engine = f"process pool ({count} worker{'s' if count != 1 else ''})"
        produced = _local_pool(jobs, count)
    outcomes: list[SeedOutcome] = []
    # Checks are subprocesses: run them beside the next seeds, as many as there are workers.
    with ThreadPoolExecutor(max_workers=max(1, workers or os.cpu_count() or 1)) as checks:
        pending: list[Future[SeedOutcome]] = []
        for outcome in produced:
            pending.append(checks.submit(_judge, outcome, results / f"seed-{outcome.seed}",
                                         topo_path, check, keep))
        for future in as_completed(pending):
            judged = future.result()
            outcomes.append(judged)
            if progress is not None:
                progress(judged, len(outcomes), len(jobs))
    outcomes.sort(key=lambda o: o.seed)
    result = SweepResult(outcomes, results, topo_path, engine, time.monotonic() - started,
                         chosen)
    record = {"topology": str(topo_path), "engine": engine, "check": check, "schedule": chosen,
              "seeds": [{k: v for k, v in asdict(o).items() if k not in ("output", "pcaps",
                                                                          "summary")}
                        for o in outcomes]}
    (results / "sweep.json").write_text(json.dumps(record, indent=2) + "\n")
    return result


def print_table(result: SweepResult, stream: TextIO | None = None) -> None:
    """The failing seeds, each with its reason and replay command."""
    write = (stream if stream is not None else sys.stdout).write
    total = len(result.outcomes)
    failed = result.table()
    write(f"vnet sweep: {total} seeds, {total - len(failed)} passed, {len(failed)} failed "
          f"(schedule {result.schedule}, {result.engine}, {result.wall_s:.1f} s)\n")
    if not failed:
        return
    width = max(4, *(len(str(seed)) for seed, _, _ in failed))
    rwidth = max(len("why"), *(len(reason) for _, reason, _ in failed))
    write(f"\n{'seed':>{width}}  {'why':<{rwidth}}  replay (pcaps kept in "
          f"{result.results_dir}/seed-N/pcaps)\n")
    for seed, reason, command in failed:
        write(f"{seed:>{width}}  {reason:<{rwidth}}  {command}\n")


def main_args(topology: str, seeds: str, *, workers: int | None, cluster: str | None,
              check: str | None, results: str | None, keep: bool,
              duration_ns: int | None, schedule: str | None = None) -> int:
    """`vnet sweep` (called by vnet.cli): 0 when every seed passed, 1 otherwise."""
    seed_list = parse_seeds(seeds)
    results_dir = Path(results) if results else Path(f"sweep-{Path(topology).stem}")

    def progress(outcome: SeedOutcome, done: int, total: int) -> None:
        if not outcome.passed:
            print(f"vnet sweep: seed {outcome.seed} failed ({outcome.reason}) [{done}/{total}]",
                  file=sys.stderr, flush=True)

    result = sweep(topology, seed_list, results_dir=results_dir, workers=workers,
                   cluster=cluster, check=check, keep=keep, duration_ns=duration_ns,
                   progress=progress, schedule=schedule)
    print_table(result)
    return 1 if result.failed else 0


def summarize(outcomes: list[SeedOutcome]) -> dict[int, bool]:
    """seed -> passed (what two sweeps are compared on)."""
    return {o.seed: o.passed for o in outcomes}
