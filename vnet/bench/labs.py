"""Where benchmark programs run: native processes in a loopback-only network
namespace, wasm guests on two virtual hosts, and guests behind the TUN bridge.

Each lab starts programs and hands back a `Program` with the same surface:
`wait_for(text)` until its output shows the text, `wait()` until it exits,
`output` (stdout and stderr together). Every wait has a wall-clock timeout
and raises `BenchError` with the program's output when it runs out, so one
broken workload fails alone.

* `NativeLoopback` — one Linux network namespace, created and deleted here
  by the audited guard `vnet.testing.netns` (also on SIGINT/SIGTERM),
  holding only `lo`: no other link, no route out (checked before anything
  runs). Programs are the C sources compiled with `gcc -O2`, started with
  `ip netns exec`. `set_mtu` changes `lo`'s MTU for a workload.
* `VnetPair` — a `Network` in real time with two hosts, alpha (10.0.0.1) and
  bravo (10.0.0.2), on one segment at a given MTU; programs are the same C
  sources built to wasm. While the caller waits, its thread runs the
  scheduler loop (timers: delayed ACKs, retransmissions), as `vnet run` does.
* `TunLab` — a vnet router whose TUN port sits in a fresh namespace
  (10.201.0.1/24 on the kernel side, no default route), and a guest host g
  (10.202.0.2) behind it; kernel-side programs run in the namespace.

Touches: `ip` (namespaces, links, MTU; through `vnet.testing.netns`),
/dev/net/tun (TunLab), processes it starts and only those (killed by pid),
wasm guests on the networks it builds.
"""

from __future__ import annotations

import gc
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from vnet.guest.runtime import Guest, GuestConfig, settle_heap
from vnet.network import Host, Network
from vnet.testing.netns import Namespace, NamespaceError, namespace_problem, tun_problem

__all__ = ["BenchError", "NativeLoopback", "TunLab", "VnetPair", "namespace_problem",
           "tun_problem"]

WAIT_S = 60.0  # the longest a single step may take before the workload is declared failed


class BenchError(Exception):
    """A workload could not produce its figure; the message says why."""


@contextmanager
def bench_errors() -> Iterator[None]:
    """The namespace guard's refusals, as BenchError (one broken workload fails alone)."""
    try:
        yield
    except NamespaceError as e:
        raise BenchError(str(e)) from None


# --- programs --------------------------------------------------------------------

Waiter = Callable[[Callable[[], bool], float], bool]


def sleep_waiter(ready: Callable[[], bool], timeout_s: float) -> bool:
    """Wait for ready() by polling (nothing else needs this thread)."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def network_waiter(net: Network) -> Waiter:
    """Wait for ready() while this thread runs the network's scheduler loop."""

    def wait(ready: Callable[[], bool], timeout_s: float) -> bool:
        net.scheduler.run(until=ready, timeout_s=timeout_s)
        return ready()

    return wait


class Program:
    """A running benchmark program: native process or wasm guest."""

    name: str
    waiter: Waiter

    @property
    def output(self) -> str:
        raise NotImplementedError

    @property
    def done(self) -> bool:
        raise NotImplementedError

    @property
    def exit_code(self) -> int | None:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name}: exit {self.exit_code}; output:\n{self.output[-2000:]}"

    def wait_for(self, text: str, timeout_s: float = WAIT_S) -> None:
        if not self.waiter(lambda: text in self.output or self.done, timeout_s) or (
                text not in self.output):
            raise BenchError(f"never printed {text!r} — {self.describe()}")

    def wait(self, timeout_s: float = WAIT_S) -> str:
        """Wait for the end; the output, or BenchError unless it exited 0."""
        if not self.wait_done(timeout_s):
            self.stop()
            raise BenchError(f"did not finish in {timeout_s:.0f} s — {self.describe()}")
        if self.exit_code != 0:
            raise BenchError(f"failed — {self.describe()}")
        return self.output

    def wait_done(self, timeout_s: float) -> bool:
        """Wait until it ended, at most `timeout_s`: whether it did."""
        return self.waiter(lambda: self.done, timeout_s)

    def stop(self) -> None:
        raise NotImplementedError


class NativeProgram(Program):
    def __init__(self, name: str, argv: list[str], waiter: Waiter = sleep_waiter,
                 on_output: Callable[[], None] | None = None) -> None:
        self.name = name
        self.waiter = waiter
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._on_output = on_output
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._pump, daemon=True, name=f"out:{name}")
        self._reader.start()

    def _pump(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while chunk := os.read(stream.fileno(), 65536):
            with self._lock:
                self._buf.extend(chunk)
            if self._on_output is not None:
                self._on_output()
        if self._on_output is not None:
            self._on_output()

    @property
    def output(self) -> str:
        with self._lock:
            return self._buf.decode(errors="replace")

    @property
    def done(self) -> bool:
        return self.proc.poll() is not None and not self._reader.is_alive()

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by its pid
            self.proc.wait(5)
        self._reader.join(2)


class GuestProgram(Program):
    def __init__(self, net: Network, host: Host, module: Path, args: Sequence[str],
                 name: str) -> None:
        self.name = name
        self.net = net
        self.waiter = network_waiter(net)
        self._buf = bytearray()
        sched = net.scheduler

        def sink(data: bytes) -> None:  # called inside a host call (network lock held)
            self._buf.extend(data)
            sched.notify()

        self.guest = Guest(sched, GuestConfig(module=str(module), args=[module.stem, *args],
                                              host=host, stdout=sink, stderr=sink, name=name))
        self.guest.start()

    @property
    def output(self) -> str:
        text = bytes(self._buf).decode(errors="replace")
        if self.guest.trap:
            text += f"[trap: {self.guest.trap}]\n"
        return text

    @property
    def done(self) -> bool:
        return self.guest.done

    def wait_done(self, timeout_s: float) -> bool:
        # this thread runs the loop; the scheduler itself watches the guest's task end
        # (an `until` would be a Python call after every change: measurable in the rates)
        task = self.guest.task
        if task is None:
            return super().wait_done(timeout_s)
        self.net.scheduler.run(until_done=task, timeout_s=timeout_s)
        return self.done

    @property
    def exit_code(self) -> int | None:
        return self.guest.exit_code if self.guest.done else None

    def stop(self) -> None:
        task = self.guest.task
        if task is not None and not task.done:
            task.killed = True
            self.net.scheduler.notify()


# --- labs --------------------------------------------------------------------------

class NativeLoopback:
    """A namespace with only `lo`, for the native side of every comparison."""

    def __init__(self) -> None:
        self.ns = f"vnb{os.getpid()}"
        self.namespace = Namespace(self.ns)
        self.programs: list[NativeProgram] = []

    @property
    def created(self) -> bool:
        return self.namespace.created

    def create(self) -> NativeLoopback:
        with bench_errors():
            self.namespace.create()
            self.namespace.check_isolated([], prefixes=())
        return self

    def set_mtu(self, mtu: int) -> None:
        with bench_errors():
            self.namespace.ip("link", "set", "lo", "mtu", str(mtu))

    def start(self, binary: Path, *args: str) -> NativeProgram:
        program = NativeProgram(f"{binary.name} {' '.join(args)}",
                                self.namespace.command(str(binary), *args))
        self.programs.append(program)
        return program

    def stop_all(self) -> None:
        for program in self.programs:
            program.stop()
        self.programs.clear()

    def delete(self) -> None:
        self.stop_all()
        self.namespace.delete()


class VnetPair:
    """Two virtual hosts on one segment, in real time."""

    ALPHA = "10.0.0.1"
    BRAVO = "10.0.0.2"

    def __init__(self, mtu: int = 1500) -> None:
        # as `vnet run` does (this process runs one pair at a time): the heap so far,
        # the earlier runs' garbage collected first, out of the collector's sight
        gc.collect()
        settle_heap()
        self.net = Network(virtual_time=False)
        lan = self.net.segment("lan")
        self.hosts = {
            "alpha": self.net.host("alpha"),
            "bravo": self.net.host("bravo"),
        }
        self.hosts["alpha"].connect(lan, f"{self.ALPHA}/24", mtu=mtu)
        self.hosts["bravo"].connect(lan, f"{self.BRAVO}/24", mtu=mtu)
        self.programs: list[GuestProgram] = []

    def start(self, host: str, module: Path, *args: str) -> GuestProgram:
        program = GuestProgram(self.net, self.hosts[host], module, args,
                               f"{module.stem}@{host}#{len(self.programs)}")
        self.programs.append(program)
        return program

    def close(self) -> None:
        self.net.close()


class TunLab:
    """A guest host behind a vnet router whose TUN port is in a fresh namespace.

        kernel: netns vbt<pid>, TUN 10.201.0.1/24 ── router r (10.201.0.2, 10.202.0.1)
                route 10.202.0.0/24 via the TUN       └─ lan ── g 10.202.0.2 (default via r)
    """

    KERNEL = "10.201.0.1"
    GUEST = "10.202.0.2"

    def __init__(self, mtu: int = 1500) -> None:
        from vnet.link.tun_bridge import TunBridge

        self.ns = f"vbt{os.getpid()}"
        self.namespace = Namespace(self.ns)
        self.device = f"vbt{os.getpid()}"[:15]
        self.net = Network(virtual_time=False)
        lan = self.net.segment("lan")
        self.router = self.net.router("r")
        self.router.connect(lan, "10.202.0.1/24")
        self.guest_host = self.net.host("g")
        self.guest_host.connect(lan, f"{self.GUEST}/24")
        self.guest_host.add_route("0.0.0.0/0", gateway="10.202.0.1")
        self.bridge = TunBridge(self.net, self.router, device=self.device, netns=self.ns,
                                mtu=mtu, kernel_addresses=[f"{self.KERNEL}/24"],
                                router_addresses=["10.201.0.2/24"], routes=["10.202.0.0/24"])
        self.waiter = network_waiter(self.net)
        self.programs: list[Program] = []
        self._opened = False

    def open(self) -> TunLab:
        with bench_errors():
            self.namespace.create()
        try:
            self.bridge.open()
            self._opened = True
            with bench_errors():
                self.namespace.check_isolated([self.device], prefixes=["10.202.0.0/24"])
        except BaseException:
            self.close()
            raise
        return self

    def kernel(self, binary: Path, *args: str) -> NativeProgram:
        program = NativeProgram(f"kernel {binary.name} {' '.join(args)}",
                                self.namespace.command(str(binary), *args),
                                waiter=self.waiter, on_output=self.net.scheduler.notify)
        self.programs.append(program)
        return program

    def guest(self, module: Path, *args: str) -> GuestProgram:
        program = GuestProgram(self.net, self.guest_host, module, args,
                               f"{module.stem}@g#{len(self.programs)}")
        self.programs.append(program)
        return program

    def close(self) -> None:
        for program in self.programs:
            program.stop()
        self.net.close()
        if self._opened:
            self.bridge.close()
            self._opened = False
        self.namespace.delete()
