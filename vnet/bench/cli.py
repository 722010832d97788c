"""`python -m vnet.bench` (what scripts/bench runs): options, then the run.

    python -m vnet.bench [--quick] [--out DIR] [--only NAMES] [--profile]

Builds the programs (wasm with `vnet.build`, native with `gcc -O2 -Wall`),
creates the loopback-only namespace for the native side (root only; without
it the native column stays empty and says why), runs the workloads, deletes
the namespace, and writes DIR/bench.json and DIR/bench.png, printing the
table, and DIR/bench.md (the same table as Markdown rows, for the README).
The `limits` workload (guest compute and the host-call floor, a few seconds)
always runs first, even with --only: every figure's limit columns come from
it. `--profile` runs the profiler instead (see vnet.bench.profile).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from vnet.build import BuildError, build_wasm

from .figures import SPECS, Figure
from .labs import BenchError, NativeLoopback, namespace_problem
from .machine import loadavg, machine_info
from .report import markdown, table, write_chart, write_json
from .settings import FULL, QUICK, memory_budget
from .workloads import WORKLOAD_FIGURES, WORKLOADS, Context, run_workloads

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {
    "bulk": ROOT / "examples" / "bulk.c",
    "connrate": ROOT / "examples" / "connrate.c",
    "udp_rtt": ROOT / "examples" / "udp_rtt.c",
    "tcp_echo_server": ROOT / "examples" / "tcp_echo_server.c",
    "hostcall": Path(__file__).resolve().parent / "hostcall.c",
    "static_bulk": Path(__file__).resolve().parent / "static_bulk.c",
    "ceiling": Path(__file__).resolve().parent / "ceiling.c",
    "ticker": Path(__file__).resolve().parent / "ticker.c",
}
LOAD_WARNING = 1.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build_all(out: Path) -> tuple[dict[str, Path], dict[str, Path], str | None]:
    """(wasm modules, native binaries, why native is unavailable or None)."""
    wasm = {name: build_wasm([src], out / "wasm" / f"{name}.wasm", quiet=True)
            for name, src in SOURCES.items()}
    if shutil.which("gcc") is None:
        return wasm, {}, "needs gcc (Debian package gcc)"
    native = {}
    (out / "native").mkdir(parents=True, exist_ok=True)
    for name, src in SOURCES.items():
        binary = out / "native" / name
        proc = subprocess.run(["gcc", "-O2", "-Wall", str(src), "-o", str(binary)],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise BenchError(f"gcc {src.name} failed:\n{proc.stderr}")
        native[name] = binary
    return wasm, native, None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="vnet's data path next to the same C programs natively "
                    "(gcc, the kernel's loopback in a private network namespace).")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: small workloads, one repetition (< 2 minutes)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results",
                        help="where bench.json, bench.png and profiles go "
                             "(default: bench-results/)")
    parser.add_argument("--only", default="",
                        help="comma-separated workloads to run: " + ",".join(WORKLOADS))
    parser.add_argument("--profile", action="store_true",
                        help="profile the TCP bulk workload (py-spy) instead of benchmarking")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(WORKLOADS)}")
    if "limits" not in names:
        names.insert(0, "limits")  # every figure's limit columns come from it
    args.workloads = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = memory_budget(QUICK if args.quick else FULL)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    load = loadavg()
    if load[0] > LOAD_WARNING:
        log(f"note: load average {load[0]} — other work on this machine will skew the numbers")
    try:
        wasm, native_bin, native_problem = build_all(out)
    except (BuildError, BenchError) as e:
        print(f"vnet bench: {e}", file=sys.stderr)
        return 2

    if args.profile:
        from .profile import run_profile

        try:
            summary = run_profile(out, settings.profile_mb, wasm["bulk"], log)
        except BenchError as e:
            print(f"vnet bench: {e}", file=sys.stderr)
            return 1
        print(summary.read_text())
        print(f"written: {summary}" + (f", {out / 'profile.raw'}"
                                       if (out / "profile.raw").exists() else ""))
        return 0

    native: NativeLoopback | None = None
    if native_problem is None:
        native_problem = namespace_problem()
    if native_problem is None:
        try:
            native = NativeLoopback().create()
        except BenchError as e:
            native_problem = f"namespace setup failed: {e}"
            native = None
    if native_problem:
        log(f"native side skipped: {native_problem}")
    info = machine_info()
    log(f"{settings.name} run: {', '.join(args.workloads)} "
        f"({info['cpu_model']}, {info['cores']} cores, load {load[0]})")
    ctx = Context(settings, wasm, native_bin, native, native_problem, log)
    started = time.monotonic()
    try:
        run_workloads(ctx, args.workloads, out)
    finally:
        if native is not None:
            native.delete()
    elapsed = time.monotonic() - started
    info["loadavg_end"] = loadavg()
    info["loadavg_at_workload_start"] = ctx.loads

    not_run = {fid for name, fids in WORKLOAD_FIGURES.items() if name not in args.workloads
               for fid in fids}
    figures: list[Figure] = []
    for spec in SPECS:
        fig = ctx.figures.get(spec.id) or Figure(spec)
        if spec.id in not_run:
            fig.skipped = "not run (--only)"
        figures.append(fig)

    title = (f"vnet vs native ({settings.name} run, {info['date'][:10]}): "
             f"{info['cpu_model']}, {info['cores']} cores, Python {info['python']}, "
             f"wasmtime {info['wasmtime']}")
    chart_path = out / "bench.png"
    chart = write_chart(chart_path, figures, title)
    payload = {
        "schema": "vnet-bench/2",  # 2: limits, targets, size, note per figure
        "mode": settings.name,
        "command": " ".join(["scripts/bench", *(argv if argv is not None else sys.argv[1:])]),
        "machine": info,
        "duration_s": round(elapsed, 1),
        "native_setup": ("gcc -O2 -Wall; processes in a fresh network namespace with only lo "
                         "(no route out); lo's MTU set per workload") if native else None,
        "vnet_setup": "wasm guests built with vnet build (zig cc -O2); real-time scheduler; "
                      "two virtual hosts on one segment unless the figure says otherwise",
        "ratio": "vnet ÷ native, in each figure's unit; relative_performance is the ratio "
                 "when higher is better and its inverse otherwise (1 = native)",
        "limits": "each figure's limits on this machine, in its unit: guest_compute (the "
                  "programs' own per-byte work in wasm, no sockets), host_call_floor (the "
                  "empty host call's cost times the host calls per unit), kernel (the "
                  "kernel's loopback with programs doing no per-byte work, or the empty "
                  "system call); limit_notes says how each was had",
        "targets": "the issue's Done-when bounds for the figure; met is null when not "
                   "measured or not measured at the target's size (target_size)",
        "settings": settings.as_json(),
        "chart": chart,
        "figures": [f.to_json() for f in figures],
    }
    json_path = out / "bench.json"
    write_json(json_path, payload)
    header = (f"vnet benchmarks — {settings.name} run, {info['date']}\n"
              f"{info['cpu_model']}, {info['cores']} cores, Python {info['python']}, "
              f"wasmtime {info['wasmtime']}, gcc {info['gcc']}, "
              f"VNET_CPUS={info['vnet_cpus']}; load average "
              f"{info['loadavg_start'][0]} at start, {info['loadavg_end'][0]} at end; "
              f"{elapsed:.0f} s")
    print(table(figures, header))
    md_path = out / "bench.md"
    md_path.write_text(markdown(figures, payload) + "\n")
    print(f"\nwritten: {json_path}, {chart_path}, {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
