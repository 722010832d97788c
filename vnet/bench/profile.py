"""Where the time goes on vnet's data path: the TCP bulk workload under a profiler.

    python -m vnet.bench --profile [--quick]       (scripts/bench --profile)

Runs bulk.c's receiver and sender as wasm guests on two virtual hosts (real
time, MTU 1500) in a child process under py-spy, which samples every thread
— the guest threads as well as the scheduler loop — without pausing them.
The raw samples (collapsed stacks, one per line: speedscope and
flamegraph.pl read them) go to `profile.raw`; `profile.txt` sums them up:

* by thread: guest threads, the scheduler loop, the epoch ticker;
* by layer: each sample is charged to the layer of its innermost frame —
  guest wasm running (no GIL held), the host-call bridge, guest memory
  access, the WASI/WASIX functions, the TCP engine, wire formats, the IP
  layer, links, the scheduler, stdlib locks;
* the functions with the most self and inclusive time.

Only samples of the workload count: guest threads, the epoch ticker and the
main thread while it runs the scheduler loop (not imports or setup). Shares
are of CPU time: py-spy leaves out threads it sees idle, and since its idle
detection misses threads blocked in a `threading` wait on some kernels (the
reference machine's among them), samples whose innermost frame is such a
wait (`Condition.wait`, `Event.wait`, the scheduler's `_Gate.wait`, …) are
counted apart as waiting.

The child runs the pure-Python build (``VNET_PURE_PYTHON=1``) even where the
mypyc-compiled one is built: a Python profiler cannot see inside compiled
modules — it charges their time to the nearest interpreted caller, and with the
host-call layer compiled that is `wasmtime_func_call`, so every layer would
read as "guest wasm running". The shares are of the pure-Python build; the
compiled one spends less in each layer, not in the same proportions.

Without py-spy (it is a PyPI package; scripts/bench --profile installs it),
the child runs under cProfile with a profiler started in every thread, and
`profile.txt` is pstats' listing.

    python -m vnet.bench.profile target --mb 16 --mtu 1500     (the child)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .labs import BenchError, VnetPair

ROOT = Path(__file__).resolve().parents[2]

LAYERS: tuple[tuple[str, str], ...] = (
    # (pattern on "function (file)", layer); the first match wins
    (r"^wasmtime_func_call ", "guest wasm running (GIL released)"),
    (r"\(vnet/guest/abi\.py\)", "host-call bridge (vnet/guest/abi.py, ctypes)"),
    (r"\(vnet/guest/memory\.py\)", "guest memory reads/writes (vnet/guest/memory.py)"),
    (r"\(vnet/guest/", "WASI/WASIX host functions (vnet/guest)"),
    (r"\(stack/(tcp|congestion)", "TCP engine (stack/tcp*)"),
    (r"\(stack/wire/", "wire formats and checksums (stack/wire)"),
    (r"\(stack/", "IP layer and sockets (stack/host.py, …)"),
    (r"\(firewall/", "firewall"),
    (r"\(vnet/(nic|segment|capture|impairment|tun)", "links (NIC, segment)"),
    (r"\(vnet/scheduler\.py\)", "scheduler (vnet/scheduler.py)"),
    (r"\(vnet/network\.py\)", "vnet/network.py"),
    (r"\((threading|contextlib)\.py\)", "stdlib locks and context managers"),
    (r"\(wasmtime/", "wasmtime-py"),
)


def _frame(raw: str) -> str:
    """'func (path/to/file.py:123)' → 'func (repo-relative file)'."""
    m = re.fullmatch(r"(.*) \((.*?)(?::\d+)?\)", raw)
    if m is None:
        return raw
    func, path = m.groups()
    for marker in ("/site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    if path.startswith("/") and "/lib/python" in path:
        path = path.rsplit("/", 1)[1]
    return f"{func} ({path})"


def layer_of(frame: str) -> str:
    for pattern, layer in LAYERS:
        if re.search(pattern, frame):
            return layer
    return "other: " + (frame.split("(", 1)[1].rstrip(")") if "(" in frame else frame)


def parse_raw(text: str) -> list[tuple[str, list[str], int]]:
    """py-spy --threads raw output → (thread name, frames root→leaf, count)."""
    samples = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        parts = stack.split(";")
        head = parts[0]
        name = head.split(": ", 1)[1] if ": " in head else head
        samples.append((name, [_frame(f) for f in parts[1:] if f], int(count)))
    return samples


#: innermost frames that mean "blocked", whatever py-spy thought (see the docstring)
WAITING = ("Condition.wait (threading.py)", "Event.wait (threading.py)",
           "Thread.join (threading.py)", "Thread._wait_for_tstate_lock (threading.py)",
           "Semaphore.acquire (threading.py)",
           "_Gate.wait (vnet/scheduler.py)")  # a guest or the loop asleep on its gate


def _thread_group(name: str, frames: list[str]) -> str | None:
    if name.startswith("guest:"):
        return "guest threads (wasm + host calls)"
    if name == "vnet-epoch":
        return "epoch ticker"
    if name == "MainThread" and any(f.startswith("Scheduler._run_real ") for f in frames):
        return "scheduler loop (main thread: timers)"
    return None


def summarize(samples: list[tuple[str, list[str], int]], rate: int, header: str,
              frame_count: int = 0) -> str:
    groups: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    in_host_calls = 0
    guest_total = 0
    waiting = 0
    for name, frames, count in samples:
        group = _thread_group(name, frames)
        if group is None or not frames:
            continue
        if frames[-1] in WAITING:
            waiting += count
            continue
        groups[group] += count
        layers[layer_of(frames[-1])] += count
        self_time[frames[-1]] += count
        for f in set(frames):
            inclusive[f] += count
        if group.startswith("guest"):
            guest_total += count
            if any(f.startswith("_make_callback.<locals>.callback ") for f in frames):
                in_host_calls += count
    total = sum(groups.values())
    if not total:
        return header + "\nno samples of the workload were taken\n"

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    out = [header, f"{total} samples of the workload at {rate} Hz "
                   f"(~{total / rate:.1f} CPU-seconds); shares are of CPU time "
                   f"({waiting} more samples blocked in a threading wait left out)."]
    if frame_count:
        out.append(f"{frame_count} frames crossed the segment (data and ACKs): "
                   f"~{total / rate / frame_count * 1e6:.0f} µs of CPU per frame, all layers.")
    out.append("")
    out.append("By thread:")
    out += [f"  {pct(n)}  {g}" for g, n in groups.most_common()]
    if guest_total:
        out.append(f"  guest threads: {100 * in_host_calls / guest_total:.1f}% of their CPU "
                   f"time inside host calls (Python), the rest running wasm or in wasmtime")
    out += ["", "By layer (innermost frame):"]
    out += [f"  {pct(n)}  {layer}" for layer, n in layers.most_common()]
    out += ["", "Top functions, self time:"]
    out += [f"  {pct(n)}  {f}" for f, n in self_time.most_common(25)]
    out += ["", "Top functions, inclusive time:"]
    out += [f"  {pct(n)}  {f}" for f, n in inclusive.most_common(40)]
    return "\n".join(out) + "\n"


# --- the child: the workload itself -------------------------------------------------

def target(mb: float, mtu: int, module: Path) -> str:
    """Run the workload; its result line and how many frames crossed the segment."""
    pair = VnetPair(mtu)
    try:
        recv = pair.start("alpha", module, "recv", "5001")
        recv.wait_for("listening")
        send = pair.start("bravo", module, "send", VnetPair.ALPHA, "5001", str(mb))
        send.wait(timeout_s=600)
        out = recv.wait(timeout_s=600)
    finally:
        pair.close()
    frames = sum(nic.counters.tx_frames for host in pair.hosts.values()
                 for nic in host.nics.values())
    return f"{out.strip().splitlines()[-1]}\nframes: {frames}"


def _cprofile_target(mb: float, mtu: int, module: Path, out_txt: Path) -> str:
    import cProfile
    import io
    import pstats

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_in_thread(*_args: Any) -> None:
        sys.setprofile(None)
        prof = cProfile.Profile()
        with lock:
            profiles.append(prof)
        prof.enable()

    main = cProfile.Profile()
    threading.setprofile(start_in_thread)
    main.enable()
    try:
        result = target(mb, mtu, module)
    finally:
        main.disable()
        threading.setprofile(None)
    stats = pstats.Stats(main)
    for prof in profiles:
        try:
            stats.add(prof)
        except (TypeError, ValueError):
            pass
    buf = io.StringIO()
    stats.stream = buf  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(40)
    out_txt.write_text(f"cProfile (every thread), TCP bulk {mb} MiB, MTU {mtu}: {result}\n\n"
                       + buf.getvalue())
    return result


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def run_profile(out_dir: Path, mb: float, module: Path, log: Callable[[str], None],
                rate: int = 500, mtu: int = 1500) -> Path:
    """Profile the TCP bulk workload; returns the summary file."""
    raw = out_dir / "profile.raw"
    summary = out_dir / "profile.txt"
    spy = py_spy()
    child = [sys.executable, "-m", "vnet.bench.profile", "target", "--mb", str(mb),
             "--mtu", str(mtu), "--module", str(module)]
    env = {**os.environ, "VNET_PURE_PYTHON": "1"}  # see the module docstring
    if spy is None:
        log("profile: py-spy not found; using cProfile in every thread")
        child += ["--cprofile", str(summary)]
        proc = subprocess.run(child, capture_output=True, text=True, timeout=900, env=env)
        if proc.returncode != 0:
            raise BenchError(f"profiled run failed: {proc.stderr[-2000:]}")
        return summary
    log(f"profile: py-spy at {rate} Hz over TCP bulk, {mb} MiB, MTU {mtu}")
    proc = subprocess.run([spy, "record", "--nonblocking", "--threads", "--rate", str(rate),
                           "--format", "raw", "--output", str(raw), "--", *child],
                          capture_output=True, text=True, timeout=900, env=env)
    if proc.returncode != 0 or not raw.exists():
        raise BenchError(f"py-spy failed (exit {proc.returncode}): "
                         f"{(proc.stderr or proc.stdout)[-2000:]}")
    result = next((line for line in proc.stdout.splitlines() if line.startswith("bulk:")), "")
    frames = next((int(line.split()[1]) for line in proc.stdout.splitlines()
                   if line.startswith("frames: ")), 0)
    header = (f"py-spy profile of TCP bulk between two guests, {mb} MiB at MTU {mtu} "
              f"(real time, the pure-Python build: a profiler cannot see inside the "
              f"compiled one).\nThroughput while profiled: {result}")
    summary.write_text(summarize(parse_raw(raw.read_text()), rate, header, frames))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vnet.bench.profile")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("target", help="run the profiled workload (the child process)")
    t.add_argument("--mb", type=float, default=16)
    t.add_argument("--mtu", type=int, default=1500)
    t.add_argument("--module", type=Path, default=ROOT / "examples" / "build" / "bulk.wasm")
    t.add_argument("--cprofile", type=Path, default=None, help="profile with cProfile into FILE")
    args = parser.parse_args(argv)
    if args.cprofile is not None:
        print(_cprofile_target(args.mb, args.mtu, args.module, args.cprofile), flush=True)
    else:
        print(target(args.mb, args.mtu, args.module), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
