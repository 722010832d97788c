"""The idle-heavy virtual-time topology of issue 12, as a library and a measurement.

    python -m tests.scheduler.idle_heavy [--hosts 50] [--seconds 600] [--seed 1]

`hosts` virtual hosts on one switched LAN (100 µs latency), each running
tests/scheduler/c/idle_udp.c: a UDP socket that sends a 16-byte datagram to
the next host of the ring once a second and otherwise waits in poll(). In
virtual time the run is mostly idle: a frame now and then, and a sea of
sleeping guests. Prints simulated seconds per wall second (and per CPU
second of this process) and a digest of every guest's output. Touches only
the virtual network it builds (and the wasm it compiles into a temp dir).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vnet.build import build_wasm
from vnet.guest.runtime import Guest, GuestConfig, load_module
from vnet.network import Network

SOURCE = Path(__file__).parent / "c" / "idle_udp.c"
PORT = "7000"


def build(out_dir: Path) -> Path:
    return build_wasm([SOURCE], out_dir / "idle_udp.wasm", flags=["-O2"], quiet=True)


@dataclass
class IdleRun:
    outputs: list[bytes]
    simulated_ns: int
    wall_s: float
    cpu_s: float
    wakeups: list[int]

    @property
    def digest(self) -> str:
        return hashlib.sha256(b"\0".join(self.outputs)).hexdigest()[:16]


def run(wasm: Path, hosts: int, seconds: int, seed: int = 1,
        capture: Path | None = None) -> IdleRun:
    """Run the ring to completion in virtual time; returns outputs and timings.

    With `capture`, every NIC is captured to that pcapng file.
    """
    module = load_module(wasm)
    net = Network(virtual_time=True, seed=seed)
    try:
        lan = net.segment("lan", latency_ns=100_000)
        if capture is not None:
            net.capture(capture)
        outputs = [bytearray() for _ in range(hosts)]
        guests = []
        for i in range(hosts):
            host = net.host(f"h{i + 1}")
            host.connect(lan, f"10.0.{i // 200}.{i % 200 + 1}/16")
        for i in range(hosts):
            j = (i + 1) % hosts
            peer = f"10.0.{j // 200}.{j % 200 + 1}"
            out = outputs[i]
            config = GuestConfig(module=str(wasm), args=["idle_udp", PORT, peer, str(seconds)],
                                 name=f"g{i + 1}", host=net.hosts[f"h{i + 1}"],
                                 stdout=out.extend, stderr=out.extend)
            guests.append(Guest(net.scheduler, config, module))
        wall0, cpu0 = time.monotonic(), time.process_time()
        for guest in guests:
            guest.start()
        net.scheduler.run()
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        return IdleRun([bytes(o) for o in outputs], net.scheduler.monotonic_ns(), wall, cpu,
                       [g.task.wakeups for g in guests if g.task is not None])
    finally:
        net.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wasm = build(Path(tmp))
        result = run(wasm, args.hosts, args.seconds, args.seed)
    simulated_s = result.simulated_ns / 1e9
    print(f"idle-heavy: {args.hosts} hosts, {simulated_s:.1f} simulated s in "
          f"{result.wall_s:.2f} wall s ({simulated_s / result.wall_s:.1f}x real time; "
          f"{simulated_s / result.cpu_s:.1f} simulated s per CPU s), "
          f"wake-ups {sum(result.wakeups)}, output digest {result.digest}")
    print(result.outputs[0].decode(errors="replace").strip())


if __name__ == "__main__":
    main()
