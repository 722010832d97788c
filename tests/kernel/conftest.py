"""Kernel interop fixtures: a vnet network bridged to a throwaway Linux network namespace.

Every test gets its own lab from the `kernel_lab` fixture::

    kernel side: netns vk<pid>-<tag><n>            vnet, real time
      lo                                           router "r"                guest host "g"
      TUN vt<pid>-<n>   10.201.0.1/24   <─ TUN ─>    tun0 10.201.0.2/24        eth0 10.202.0.2/24
                        fd77:0:0:1::1/64             fd77:0:0:1::2/64          fd77:0:0:2::2/64
      routes via the TUN: 10.202.0.0/24,             eth0 10.202.0.1/24 ─ lan ─ default via r
                          fd77:0:0:2::/64                 fd77:0:0:2::1/64
                          (none with kernel_routes=False; bridge_routes=False
                          gives the bridge no `routes` at all)

With `transit_mtu=N` the router r reaches the LAN through a second router
r2 over a "transit" segment (10.203.0.0/24, fd77:0:0:3::/64) of MTU N, a
bottleneck that path MTU discovery must find.

Network safety: the namespace is made by the audited guard in
`vnet.testing.netns` and deleted in a `finally` (and at the end of the
session, should a test have died half-way; the guard also deletes it on
SIGINT/SIGTERM and at exit). Before anything runs, `check_isolated`
verifies that it holds only `lo` and the TUN device and that every route in
it is on-link through one of them and leads only to the virtual prefixes:
no default route, no gateway, no way off this machine. Every
kernel-side process runs inside it (`ip netns exec`) with the proxy
variables removed from its environment, and every address a test aims at is
one of the addresses above.

Privileges: the tests need root (namespaces, TUN devices) and the Debian
tools that `scripts/install-test-tools` installs. Without them they FAIL
with a message saying what is missing (CI runs as root); they never skip.

The vnet side runs its scheduler in a background thread for the whole test
(`KernelLab._run_loop`), so kernel-side subprocesses and vnet make progress
together; Python code on a virtual host runs as a scheduler task
(`KernelLab.in_guest` / `KernelLab.start_guest`), where the stdlib-like
socket calls of `vnet.network.HostSocket` block properly; example guests
built to wasm run with `KernelLab.start_wasm` (`kernel_example` builds them
and fails with a clear message when the C SDK cannot link them).

Numbers (throughput, retransmissions) that tests report through the
`interop_results` fixture are printed at the end of the run and written to
`kernel-interop.json` in pytest's base temporary directory.

Touches: `ip`, `/dev/net/tun`, processes it starts inside its namespaces,
files under pytest's temporary directories.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from firewall.nat import Publish
from vnet.guest.runtime import Guest, GuestConfig
from vnet.link.capture import Capture
from vnet.link.impairment import Impairment
from vnet.link.tun_bridge import TunBridge
from vnet.network import Host, Network
from vnet.scheduler import GuestTask
from vnet.testing import netns
from vnet.testing.netns import Namespace, check_isolated, clean_env, in_namespace

__all__ = ["check_isolated", "clean_env", "create_namespace", "delete_namespace",
           "require_kernel_privileges", "unique_name"]

# --- addresses ------------------------------------------------------------------
KERNEL4 = "10.201.0.1"
KERNEL6 = "fd77:0:0:1::1"
BRIDGE4 = "10.201.0.2"
BRIDGE6 = "fd77:0:0:1::2"
ROUTER4 = "10.202.0.1"
ROUTER6 = "fd77:0:0:2::1"
GUEST4 = "10.202.0.2"
GUEST6 = "fd77:0:0:2::2"
VIRTUAL_PREFIXES = ("10.202.0.0/24", "fd77:0:0:2::/64")
# With transit_mtu: the link between the bridge router r and an inner router r2.
TRANSIT_R4, TRANSIT_R6 = "10.203.0.1", "fd77:0:0:3::1"
TRANSIT_R2_4, TRANSIT_R2_6 = "10.203.0.2", "fd77:0:0:3::2"

TOOLS = ("ip", "ping", "curl", "nc", "tcpdump", "tshark", "ss", "sysctl")
WAIT_S = 30.0  # the longest an ordinary single step may take
_SERIAL = itertools.count(1)
_LIVE_NAMESPACES: set[str] = set()
_RESULTS: list[dict[str, Any]] = []
_RESULTS_PATH: list[Path] = []
KERNEL_PEERS = Path(__file__).resolve().parent / "kernel_peers.py"


def unique_name(prefix: str, tag: str) -> str:
    """prefix + pid + tag + a serial: unique per test, short enough for a device name."""
    name = f"{prefix}{os.getpid()}-{tag}{next(_SERIAL)}"
    assert len(name) <= 15 or prefix != "vt", name
    return name


# --- privileges -----------------------------------------------------------------
def require_kernel_privileges() -> None:
    """Fail (never skip) when the interop tests cannot run here; CI runs them as root."""
    problems = []
    if os.geteuid() != 0:
        problems.append("root (network namespaces and TUN devices need CAP_SYS_ADMIN and "
                        "CAP_NET_ADMIN)")
    if not os.path.exists("/dev/net/tun"):
        problems.append("/dev/net/tun")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        problems.append(f"the tools {', '.join(missing)} (run scripts/install-test-tools)")
    if problems:
        netns.refuse("kernel interop tests need " + "; ".join(problems))


DAD_OFF = ("net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")


def delete_namespace(ns: str) -> None:
    """Delete `ns` and every process still inside it; idempotent (vnet.testing.netns)."""
    netns.delete_namespace(ns)
    _LIVE_NAMESPACES.discard(ns)


def create_namespace(ns: str) -> Namespace:
    """A fresh namespace with only `lo` (up) and no IPv6 duplicate address detection."""
    namespace = Namespace(ns, sysctls=DAD_OFF).create()
    _LIVE_NAMESPACES.add(ns)
    return namespace


# --- the lab --------------------------------------------------------------------
@dataclass
class KernelProcess:
    """A process inside the lab's namespace, with its output collected by threads."""

    name: str
    popen: subprocess.Popen[bytes]
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    _readers: list[threading.Thread] = field(default_factory=list)

    @staticmethod
    def _collect(stream: IO[bytes], sink: bytearray) -> None:
        while chunk := os.read(stream.fileno(), 65536):
            sink.extend(chunk)

    def start_readers(self) -> None:
        for stream, sink in ((self.popen.stdout, self.stdout), (self.popen.stderr, self.stderr)):
            if stream is not None:
                reader = threading.Thread(target=self._collect, args=(stream, sink), daemon=True)
                reader.start()
                self._readers.append(reader)

    def write(self, data: bytes, close: bool = False) -> None:
        stdin = self.popen.stdin
        assert stdin is not None, f"{self.name}: started without stdin=PIPE"
        stdin.write(data)
        stdin.flush()
        if close:
            stdin.close()

    def wait_for(self, text: bytes, timeout_s: float = WAIT_S, stream: str = "stdout") -> None:
        sink = self.stdout if stream == "stdout" else self.stderr
        deadline = time.monotonic() + timeout_s
        while text not in sink:
            if self.popen.poll() is not None:
                for reader in self._readers:
                    reader.join(2)
                if text in sink:
                    return
                pytest.fail(f"{self.name} ended before printing {text!r}:\n{self.describe()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not print {text!r} in {timeout_s} s:\n"
                            f"{self.describe()}")
            time.sleep(0.01)

    def wait(self, timeout_s: float = WAIT_S) -> int:
        try:
            code = self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} did not end in {timeout_s} s:\n{self.describe()}")
        for reader in self._readers:
            reader.join(5)
        return code

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        for reader in self._readers:
            reader.join(2)

    def describe(self) -> str:
        return (f"--- {self.name} exit {self.popen.poll()}\n--- stdout\n"
                f"{bytes(self.stdout[-4000:]).decode(errors='replace')}\n--- stderr\n"
                f"{bytes(self.stderr[-4000:]).decode(errors='replace')}")


class GuestJob:
    """Python code running as a scheduler task on a virtual host."""

    def __init__(self, task: GuestTask, box: dict[str, Any]) -> None:
        self.task = task
        self._box = box

    @property
    def done(self) -> bool:
        return self.task.done

    def result(self, timeout_s: float = WAIT_S) -> Any:
        self.task.thread.join(timeout_s)
        if not self.task.done:
            pytest.fail(f"guest task {self.task.name} did not finish in {timeout_s} s")
        if self.task.error is not None:
            raise self.task.error
        return self._box.get("value")


class WasmGuest:
    """An example guest (wasm) running on a virtual host; its stdout+stderr collected."""

    def __init__(self, lab: KernelLab, module: Path, args: Sequence[str], host: Host,
                 preopens: Sequence[tuple[str, str]] = ()) -> None:
        self.output = bytearray()
        self._lock = threading.Lock()
        self.name = f"{module.stem} {' '.join(args)}"
        self.guest = Guest(lab.net.scheduler, GuestConfig(
            module=str(module), args=[module.stem, *args], host=host,
            preopens=list(preopens), stdout=self._sink, stderr=self._sink, name=module.stem))
        self.guest.start()

    def _sink(self, data: bytes) -> None:
        with self._lock:
            self.output.extend(data)

    @property
    def text(self) -> str:
        with self._lock:
            return self.output.decode(errors="replace")

    def wait_for(self, text: str, timeout_s: float = WAIT_S) -> None:
        wait_until(lambda: text in self.text or self.guest.done, timeout_s,
                   f"{self.name} to print {text!r}")
        if text not in self.text:
            pytest.fail(f"{self.name} exited {self.guest.exit_code} before printing {text!r}:"
                        f"\n{self.text}")

    def wait(self, timeout_s: float = WAIT_S) -> int:
        wait_until(lambda: self.guest.done, timeout_s, f"{self.name} to exit")
        if self.guest.trap:
            pytest.fail(f"{self.name} trapped: {self.guest.trap}\n{self.text}")
        assert self.guest.exit_code is not None
        return self.guest.exit_code


class KernelLab:
    """A vnet network (router + guest host) bridged to a fresh network namespace."""

    def __init__(self, tag: str, tmp: Path, *, to_kernel_impairment: Impairment | None = None,
                 from_kernel_impairment: Impairment | None = None, snat: bool = False,
                 publish: Sequence[str] = (), kernel_routes: bool = True,
                 bridge_routes: bool = True,
                 capture: bool = False, mtu: int = 1500,
                 transit_mtu: int | None = None) -> None:
        serial = next(_SERIAL)
        self.ns = f"vk{os.getpid()}-{tag}{serial}"
        self.dev = f"vt{os.getpid()}-{serial}"
        assert len(self.dev) <= 15
        self.tmp = tmp
        self.to_kernel_impairment = to_kernel_impairment
        self.from_kernel_impairment = from_kernel_impairment
        self.snat = snat
        self.publish = [Publish.parse(p) for p in publish]
        self.kernel_routes = kernel_routes and bridge_routes
        self.bridge_routes = bridge_routes
        self.mtu = mtu
        self.capture_path: Path | None = tmp / f"{self.ns}-vnet.pcapng" if capture else None
        self.capture: Capture | None = None
        self.net = Network()
        self.bridge: TunBridge | None = None
        self.namespace: Namespace | None = None
        self.processes: list[KernelProcess] = []
        self.loop_error: BaseException | None = None
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None
        lan = self.net.segment("lan")
        self.router = self.net.router("r")
        self.inner_router: Host | None = None
        if transit_mtu is None:
            self.router.connect(lan, f"{ROUTER4}/24", f"{ROUTER6}/64")
        else:
            # r ── transit (smaller MTU) ── r2 ── lan: a bottleneck neither end sees.
            transit = self.net.segment("transit")
            self.router.connect(transit, f"{TRANSIT_R4}/24", f"{TRANSIT_R6}/64",
                                mtu=transit_mtu)
            self.inner_router = self.net.router("r2")
            self.inner_router.connect(transit, f"{TRANSIT_R2_4}/24", f"{TRANSIT_R2_6}/64",
                                      mtu=transit_mtu)
            self.inner_router.connect(lan, f"{ROUTER4}/24", f"{ROUTER6}/64")
            self.inner_router.add_route("0.0.0.0/0", gateway=TRANSIT_R4)
            self.inner_router.add_route("::/0", gateway=TRANSIT_R6)
            self.router.add_route(VIRTUAL_PREFIXES[0], gateway=TRANSIT_R2_4)
            self.router.add_route(VIRTUAL_PREFIXES[1], gateway=TRANSIT_R2_6)
        self.guest: Host = self.net.host("g")
        self.guest.connect(lan, f"{GUEST4}/24", f"{GUEST6}/64")
        self.guest.add_route("0.0.0.0/0", gateway=ROUTER4)
        self.guest.add_route("::/0", gateway=ROUTER6)

    # --- lifetime ---------------------------------------------------------------
    def start(self) -> KernelLab:
        self.namespace = create_namespace(self.ns)
        # The routes are given to the bridge unless bridge_routes=False (they are also
        # what source NAT treats as inside); kernel_routes=False deletes them from the
        # kernel below.
        self.bridge = TunBridge(
            self.net, self.router, device=self.dev, netns=self.ns, mtu=self.mtu,
            kernel_addresses=[f"{KERNEL4}/24", f"{KERNEL6}/64"],
            router_addresses=[f"{BRIDGE4}/24", f"{BRIDGE6}/64"],
            routes=list(VIRTUAL_PREFIXES) if self.bridge_routes else [],
            to_kernel_impairment=self.to_kernel_impairment,
            from_kernel_impairment=self.from_kernel_impairment,
            snat=self.snat, publish=self.publish,
        ).open()
        if self.bridge_routes and not self.kernel_routes:
            for prefix in VIRTUAL_PREFIXES:
                family = "-6" if ":" in prefix else "-4"
                assert self.namespace is not None
                self.namespace.ip(family, "route", "del", prefix, "dev", self.dev)
        check_isolated(self.ns, [self.dev], prefixes=VIRTUAL_PREFIXES)
        if self.capture_path is not None:
            sched = self.net.scheduler
            self.capture = Capture.to_file(self.capture_path, clock=sched.realtime_ns)
            with sched.lock:
                self.bridge.capture(self.capture)
        self._loop = threading.Thread(target=self._run_loop, name=f"loop:{self.ns}",
                                      daemon=True)
        self._loop.start()
        return self

    def _run_loop(self) -> None:
        try:
            self.net.scheduler.run(until=self._stop.is_set)
        except BaseException as e:  # reported by check() and at teardown
            self.loop_error = e

    def check(self) -> None:
        if self.loop_error is not None:
            raise AssertionError(f"the vnet scheduler loop died: {self.loop_error!r}")

    def close_capture(self) -> Path:
        """Stop recording the bridge port and return the pcapng's path."""
        assert self.capture is not None and self.capture_path is not None
        with self.net.scheduler.lock:
            self.capture.close()
        return self.capture_path

    def close(self) -> None:
        try:
            for proc in self.processes:
                proc.stop(signal.SIGKILL)
            self._stop.set()
            self.net.scheduler.notify()
            if self._loop is not None:
                self._loop.join(10)
            self.net.close()
            if self.bridge is not None:
                self.bridge.close()
            if self.capture is not None:
                with self.net.scheduler.lock:
                    self.capture.close()
        finally:
            delete_namespace(self.ns)
        self.check()

    # --- kernel side --------------------------------------------------------------
    def popen(self, *argv: str, name: str | None = None, stdin: Any = subprocess.DEVNULL,
              stdout: Any = subprocess.PIPE) -> KernelProcess:
        """Start argv inside the namespace; its output is collected in the background."""
        popen = subprocess.Popen(in_namespace(self.ns, *argv), stdin=stdin,
                                 stdout=stdout, stderr=subprocess.PIPE, env=clean_env())
        proc = KernelProcess(name or argv[0], popen)
        proc.start_readers()
        self.processes.append(proc)
        return proc

    def run(self, *argv: str, timeout_s: float = WAIT_S, check: bool = True,
            input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run argv inside the namespace to completion."""
        proc = subprocess.run(in_namespace(self.ns, *argv), capture_output=True,
                              timeout=timeout_s, env=clean_env(), input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
        if check and proc.returncode != 0:
            pytest.fail(f"`{' '.join(argv)}` in {self.ns} exited {proc.returncode}:\n"
                        f"{proc.stdout.decode(errors='replace')[-3000:]}\n"
                        f"{proc.stderr.decode(errors='replace')[-3000:]}")
        return proc

    def echo_peer(self, kind: str, *args: str | int) -> KernelProcess:
        """Start a kernel-side echo peer (kernel_peers.py: tcp-echo / udp-echo) and wait."""
        proc = self.popen(sys.executable, "-I", str(KERNEL_PEERS), kind, *map(str, args),
                          name=f"kernel {kind}")
        proc.wait_for(b"ready")
        return proc

    def sysctl(self, key: str, value: int | str) -> None:
        """`sysctl -w key=value` inside the namespace (per-namespace keys only)."""
        self.run("sysctl", "-qw", f"{key}={value}")

    def wait_listening(self, port: int, udp: bool = False, timeout_s: float = WAIT_S) -> None:
        """Wait until a kernel-side socket listens on (or, UDP, is bound to) `port`."""
        flags = "-Hlnu" if udp else "-Hlnt"
        deadline = time.monotonic() + timeout_s
        while True:
            out = self.run("ss", flags, check=False).stdout.decode()
            if re.search(rf":{port}\s", out):
                return
            if time.monotonic() > deadline:
                pytest.fail(f"nothing listens on kernel-side port {port} after {timeout_s} s")
            time.sleep(0.02)

    @contextmanager
    def tcpdump(self, path: Path, *bpf: str, snaplen: int = 0) -> Iterator[KernelProcess]:
        """Capture the TUN device from inside the namespace while the block runs."""
        proc = self.popen("tcpdump", "-i", self.dev, "-n", "-s", str(snaplen), "-U", "-B", "65536",
                          "--immediate-mode", "-w", str(path), *bpf, name="tcpdump")
        proc.wait_for(b"listening on", stream="stderr")
        try:
            yield proc
        finally:
            time.sleep(0.2)  # let the last packets reach the capture
            proc.stop(signal.SIGINT)

    def wait_bridge_quiet(self, quiet_s: float = 0.5, timeout_s: float = WAIT_S) -> None:
        """Wait until no packet has crossed the bridge for quiet_s (flows fully wound down)."""
        assert self.bridge is not None
        bridge = self.bridge
        deadline = time.monotonic() + timeout_s
        last = (-1, -1)
        since = time.monotonic()
        while time.monotonic() < deadline:
            now = (bridge.packets_to_kernel, bridge.packets_from_kernel)
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.05)
        pytest.fail(f"the bridge did not go quiet within {timeout_s} s")

    def kernel_counters(self) -> dict[str, int]:
        """The namespace's SNMP counters: {"Tcp.RetransSegs": n, "Icmp6InPktTooBigs": n}.

        /proc/net/snmp and /proc/net/netstat (header and value lines in pairs)
        give "Group.Name"; /proc/net/snmp6 (one "Name value" per line) its own names.
        """
        counters: dict[str, int] = {}
        text = self.run("cat", "/proc/net/snmp", "/proc/net/netstat").stdout.decode()
        lines = text.splitlines()
        for header, values in zip(lines[::2], lines[1::2], strict=False):
            names, numbers = header.split(), values.split()
            if not names or names[0] != numbers[0]:
                continue
            prefix = names[0].rstrip(":")
            for name, number in zip(names[1:], numbers[1:], strict=False):
                counters[f"{prefix}.{name}"] = int(number)
        for line in self.run("cat", "/proc/net/snmp6").stdout.decode().splitlines():
            name, _, number = line.partition(" ")
            if number.strip().isdigit():
                counters[name] = int(number)
        return counters

    # --- vnet side ----------------------------------------------------------------
    def start_guest(self, fn: Callable[[], Any], name: str = "script") -> GuestJob:
        """Run fn as a scheduler task (its HostSocket calls block through the scheduler)."""
        self.check()
        box: dict[str, Any] = {}

        def body() -> None:
            box["value"] = fn()

        return GuestJob(self.net.spawn(name, body), box)

    def start_wasm(self, module: Path, *args: str,
                   preopens: Sequence[tuple[str, str]] = ()) -> WasmGuest:
        """Start an example guest (wasm) on the guest host."""
        self.check()
        return WasmGuest(self, module, args, self.guest, preopens)

    def in_guest(self, fn: Callable[[], Any], timeout_s: float = WAIT_S,
                 name: str = "script") -> Any:
        return self.start_guest(fn, name).result(timeout_s)


# --- fixtures --------------------------------------------------------------------
@pytest.fixture(scope="session")
def kernel_privileges() -> None:
    require_kernel_privileges()


@pytest.fixture
def kernel_lab(kernel_privileges: None, request: pytest.FixtureRequest,
               tmp_path: Path) -> Iterator[Callable[..., KernelLab]]:
    """kernel_lab(**options) -> a started KernelLab; every lab is torn down afterwards."""
    labs: list[KernelLab] = []
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    tag = re.sub(r"[^a-z0-9]", "", module)[:6]

    def make(**options: Any) -> KernelLab:
        lab = KernelLab(tag, tmp_path, **options)
        labs.append(lab)
        return lab.start()

    try:
        yield make
    finally:
        errors = []
        for lab in labs:
            try:
                lab.close()
            except BaseException as e:  # close every lab before reporting
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session", autouse=True)
def _namespaces_deleted() -> Iterator[None]:
    """Last line of defence: no namespace of ours outlives the session."""
    yield
    for ns in list(_LIVE_NAMESPACES):
        delete_namespace(ns)


@pytest.fixture(scope="session")
def interop_results(tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[Callable[..., None]]:
    """record(test, **numbers): collected, printed at the end, written to JSON."""
    path = tmp_path_factory.getbasetemp() / "kernel-interop.json"
    _RESULTS_PATH.append(path)

    def record(test: str, **values: Any) -> None:
        entry = {"test": test, **values}
        _RESULTS.append(entry)
        print(f"\n[kernel interop] {json.dumps(entry)}", file=sys.stderr)
        path.write_text(json.dumps(_RESULTS, indent=2) + "\n")

    yield record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RESULTS:
        return
    terminalreporter.section("kernel interop numbers")
    for entry in _RESULTS:
        terminalreporter.write_line(json.dumps(entry))
    if _RESULTS_PATH:
        terminalreporter.write_line(f"(written to {_RESULTS_PATH[0]})")


# --- payloads ----------------------------------------------------------------------
@dataclass(frozen=True)
class Payload:
    path: Path
    data: bytes
    sha256: str


def make_payload(directory: Path, name: str, size: int, seed: int) -> Payload:
    import random

    data = random.Random(seed).randbytes(size)
    path = directory / name
    path.write_bytes(data)
    return Payload(path, data, hashlib.sha256(data).hexdigest())


@pytest.fixture(scope="session")
def payloads(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Payload]:
    """payloads(size) -> pseudo-random bytes of that size, also in a file; cached."""
    directory = tmp_path_factory.mktemp("payloads")
    made: dict[int, Payload] = {}

    def get(size: int) -> Payload:
        if size not in made:
            made[size] = make_payload(directory, f"payload-{size}.bin", size, seed=size)
        return made[size]

    return get


# --- wasm examples --------------------------------------------------------------------
_BUILD_FAILURES: dict[str, str] = {}


@pytest.fixture(scope="session")
def kernel_example(example_wasm: Callable[[str], Path]) -> Callable[[str], Path]:
    """kernel_example("http_server") -> the built example, or a clear failure if it won't build."""
    from vnet.build import BuildError

    def get(name: str) -> Path:
        if name in _BUILD_FAILURES:
            pytest.fail(_BUILD_FAILURES[name], pytrace=False)
        try:
            return example_wasm(name)
        except BuildError as e:
            _BUILD_FAILURES[name] = (
                f"examples/{name}.c does not build to wasm ({e}); this test needs the C SDK "
                "in vnet/sdk to link (the compiler's diagnostics are on stderr)")
            pytest.fail(_BUILD_FAILURES[name], pytrace=False)

    return get


# --- small helpers shared by the tests ------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tshark_fields(path: Path, display_filter: str, fields: Sequence[str],
                  *prefs: str) -> list[list[str]]:
    """Each packet of a capture matching display_filter, as the values of fields (tshark)."""
    argv = ["tshark", "-n", "-r", str(path), "-Y", display_filter, "-T", "fields",
            "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for pref in prefs:
        argv += ["-o", pref]
    for name in fields:
        argv += ["-e", name]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=clean_env())
    if proc.returncode != 0:
        pytest.fail(f"tshark failed on {path}: {proc.stderr.strip()}", pytrace=False)
    return [line.split("\t") for line in proc.stdout.splitlines()]


def wait_until(ready: Callable[[], bool], timeout_s: float = WAIT_S, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what or ready}")
        time.sleep(0.01)
