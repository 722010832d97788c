"""How many guests one vnet process runs, and what an idle one costs.

    python -m vnet.bench.scale --module tcp_echo_server.wasm [--cap N] [--time-budget S]
                               [--memory-budget BYTES] [--idle-sample K] [--batch B]
    python -m vnet.bench.scale --module tcp_echo_server.wasm --fleet N [--time-budget S]

Runs in a process of its own (`scripts/bench` starts it), so its memory
figures are not muddled by earlier workloads and its thousands of threads
end with it. Every guest is `tcp_echo_server 7` on a virtual host of its own
(`lo` only: the guest is what is being counted, not a LAN's ARP traffic),
in real time.

1. One warm-up guest, then the RSS baseline.
2. K more guests, left idle (blocked in accept): RSS growth / K is the
   memory per idle guest.
3. Every guest gets one connection: a scripted socket on its host connects
   to 127.0.0.1:7, sends a byte and reads the echo, and stays open.
4. Batches of B more guests, each started, seen listening, connected and
   echoed, until the cap, the time budget or the memory budget is reached,
   or something fails (a guest that does not start, listen or echo within
   60 s). The answer is the number of guests with a working connection.

With `--fleet N` it answers "how long do N guests take to start and get one
connection each" instead (the issue's "1,000 guests with one connection
each start and connect within 30 s"): all N guests are started at once,
each on its own host; the clock runs from the first start until every one
listens and has had its echoed connection (made one after another, as in
step 3). If the time budget runs out first, it says how many got there.

Prints one JSON object on the last line of stdout; progress goes to stderr.
Touches only the virtual network it builds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import sys
import threading
import time
from typing import Any

from vnet.guest.runtime import Guest, GuestConfig, load_module
from vnet.network import Host, HostSocket, Network

STEP_TIMEOUT_S = 60.0


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Fleet:
    def __init__(self, module_path: str) -> None:
        self.module_path = module_path
        self.module = load_module(module_path)
        self.net = Network(virtual_time=False)
        self.sched = self.net.scheduler
        self.guests: list[tuple[Host, Guest, bytearray]] = []
        self.conns: list[HostSocket] = []

    def start(self, count: int) -> list[tuple[Host, Guest, bytearray]]:
        batch = []
        for _ in range(count):
            i = len(self.guests)
            host = self.net.host(f"h{i}")
            out = bytearray()

            def sink(data: bytes, out: bytearray = out, notify: Any = self.sched.notify) -> None:
                out.extend(data)
                notify()

            guest = Guest(self.sched, GuestConfig(module=self.module_path,
                                             args=["tcp_echo_server", "7"], host=host,
                                             stdout=sink, stderr=sink, name=f"g{i}"),
                          self.module)
            guest.start()
            entry = (host, guest, out)
            self.guests.append(entry)
            batch.append(entry)
        return batch

    def wait_listening(self, batch: list[tuple[Host, Guest, bytearray]]) -> str | None:
        """None once every guest in the batch listens; else what went wrong."""
        self.sched.run(until=lambda: all(b"listening" in o or g.done for _, g, o in batch),
                       timeout_s=STEP_TIMEOUT_S)
        for _host, guest, out in batch:
            if b"listening" not in out:
                what = f"trap {guest.trap}" if guest.trap else (
                    f"exit {guest.exit_code}" if guest.done else "no answer in 60 s")
                return f"guest {guest.config.name} did not start listening ({what})"
        return None

    def connect(self, batch: list[tuple[Host, Guest, bytearray]]) -> str | None:
        for host, guest, _out in batch:
            try:
                self.conns.append(echo_connection(host))
            except OSError as e:
                return f"guest {guest.config.name}: connection failed: {e!r}"
        return None

    def close(self) -> None:
        self.net.close()


def echo_connection(host: Host) -> HostSocket:
    sock = host.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(STEP_TIMEOUT_S)
    sock.connect(("127.0.0.1", 7))
    sock.sendall(b"x")
    if sock.recv(1) != b"x":
        raise OSError("no echo")
    return sock


def search(module: str, cap: int, time_budget_s: float, memory_budget: int, idle_sample: int,
           batch: int, log: Any) -> dict[str, Any]:
    started = time.monotonic()
    fleet = Fleet(module)
    warm = fleet.start(1)
    problem = fleet.wait_listening(warm)
    if problem:
        raise RuntimeError(problem)
    gc.collect()
    baseline = rss_bytes()
    idle = fleet.start(idle_sample)
    problem = fleet.wait_listening(idle)
    if problem:
        raise RuntimeError(problem)
    gc.collect()
    idle_rss = rss_bytes()
    idle_per_guest = (idle_rss - baseline) / idle_sample
    log(f"scale: {idle_sample} idle guests: {idle_per_guest / 2**20:.2f} MiB each")
    steps: list[dict[str, Any]] = []
    reason = fleet.connect(fleet.guests)
    while reason is None:
        n = len(fleet.conns)
        rss = rss_bytes()
        if n >= cap:
            reason = f"cap of {cap} guests reached"
        elif time.monotonic() - started >= time_budget_s:
            reason = f"time budget of {time_budget_s:.0f} s spent"
        elif rss >= memory_budget:
            reason = f"memory budget of {memory_budget / 2**30:.1f} GiB reached"
        if reason is not None:
            break
        t0 = time.monotonic()
        try:
            new = fleet.start(min(batch, cap - n))
        except RuntimeError as e:  # e.g. "can't start new thread"
            reason = f"failure: {e}"
            break
        reason = fleet.wait_listening(new)
        t1 = time.monotonic()
        if reason is None:
            reason = fleet.connect(new)
            if reason is not None:
                reason = f"failure: {reason}"
        else:
            reason = f"failure: {reason}"
        t2 = time.monotonic()
        steps.append({"guests": len(fleet.conns), "start_s": round(t1 - t0, 3),
                      "connect_s": round(t2 - t1, 3), "rss_bytes": rss_bytes()})
        log(f"scale: {len(fleet.conns)} guests, RSS {steps[-1]['rss_bytes'] / 2**20:.0f} MiB, "
            f"batch started in {t1 - t0:.2f} s, connected in {t2 - t1:.2f} s")
    most = len(fleet.conns)
    final_rss = rss_bytes()
    # the oldest and newest connections must still echo
    sample = fleet.conns[:5] + fleet.conns[-5:]
    still = 0
    for sock in sample:
        try:
            sock.sendall(b"y")
            still += sock.recv(1) == b"y"
        except OSError:
            pass
    return {
        "max_guests": most,
        "stopped_because": reason,
        "seconds": round(time.monotonic() - started, 1),
        "idle_sample": idle_sample,
        "idle_bytes_per_guest": idle_per_guest,
        "bytes_per_connected_guest": (final_rss - baseline) / max(1, most - 1),
        "baseline_rss_bytes": baseline,
        "final_rss_bytes": final_rss,
        "threads": threading.active_count(),
        "echo_recheck": f"{still}/{len(sample)}",
        "cap": cap, "time_budget_s": time_budget_s, "memory_budget_bytes": memory_budget,
        "steps": steps,
    }


def fleet(module: str, count: int, time_budget_s: float, log: Any) -> dict[str, Any]:
    """Seconds for `count` guests to start, listen and each echo one connection."""
    fleet = Fleet(module)
    started = time.monotonic()
    guests = fleet.start(count)
    launched = time.monotonic() - started
    fleet.sched.run(until=lambda: all(b"listening" in o or g.done for _, g, o in guests),
                    timeout_s=time_budget_s)
    listening_at = time.monotonic() - started
    listening = sum(b"listening" in o for _, _, o in guests)
    problem = None
    for host, guest, out in guests:
        if time.monotonic() - started > time_budget_s:
            problem = f"time budget of {time_budget_s:.0f} s spent"
            break
        if b"listening" not in out:
            problem = f"guest {guest.config.name} did not start listening"
            break
        try:
            fleet.conns.append(echo_connection(host))
        except OSError as e:
            problem = f"guest {guest.config.name}: connection failed: {e!r}"
            break
    seconds = time.monotonic() - started
    log(f"fleet: {len(fleet.conns)} of {count} guests connected in {seconds:.1f} s "
        f"(started in {launched:.1f} s, all listening at {listening_at:.1f} s)")
    return {"guests": count, "connected": len(fleet.conns), "seconds": seconds,
            "started_s": round(launched, 3), "listening_s": round(listening_at, 3),
            "listening": listening, "problem": problem, "rss_bytes": rss_bytes(),
            "threads": threading.active_count(), "time_budget_s": time_budget_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vnet.bench.scale")
    parser.add_argument("--module", required=True, help="tcp_echo_server.wasm")
    parser.add_argument("--cap", type=int, default=1000)
    parser.add_argument("--time-budget", type=float, default=120.0)
    parser.add_argument("--memory-budget", type=int, default=4 * 2**30)
    parser.add_argument("--idle-sample", type=int, default=20)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--fleet", type=int, default=0,
                        help="time N guests starting and connecting instead of searching")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.fleet:
        print(json.dumps(fleet(args.module, args.fleet, args.time_budget, log)), flush=True)
        sys.stderr.flush()
        os._exit(0)
    result = search(args.module, args.cap, args.time_budget, args.memory_budget,
                    args.idle_sample, args.batch, log)
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    os._exit(0)  # thousands of guest threads: no need to wind each one down


if __name__ == "__main__":
    sys.exit(main())
