"""Run the example guests two ways behind one interface: natively on Linux, and on vnet.

A *lab* is two hosts, ``alpha`` and ``bravo``, on one Ethernet link:

    alpha  eth0 02:00:00:00:00:01  10.0.0.1/24  fd00::1/64
    bravo  eth0 02:00:00:00:00:02  10.0.0.2/24  fd00::2/64

`NativeLab` gives each host a Linux network namespace (``lo`` plus one end
of a veth pair named ``eth0``, index 2, the MAC above) and runs the examples
compiled with gcc inside them (``ip netns exec``). The names ``alpha`` and
``bravo`` resolve through a hosts file that ``ip netns exec`` mounts over
``/etc/hosts`` (``/etc/netns/NS/hosts``). Safety: the namespaces hold only
``lo`` and ``eth0``, whose peer is the other namespace; there is no default
route and no link to the machine's own namespace, which `NativeNet.create`
verifies before anything runs (with the audited guard, `vnet.testing.netns`).
Both namespaces and the hosts files are deleted afterwards, also on
SIGINT/SIGTERM.

`VnetLab` builds the same topology as a `vnet.network.Network` in virtual
time (hosts connected to one segment in that order get exactly those MACs)
and runs the examples as wasm guests on the virtual hosts.

Tests start programs with `Lab.start(host, example, *args)` and get a
`Program`: `wait_for(text)` until its stdout shows text, `wait()` until it
exits, then `stdout`, `stderr` and `exit_code`. The same test body runs on
both labs, so both must show the same observable behaviour.

Touches: ``ip`` and the processes it starts, ``/etc/netns`` (native only).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from vnet.guest.runtime import Guest, GuestConfig
from vnet.link.nic import Nic
from vnet.network import Host, Network
from vnet.testing import netns
from vnet.testing.netns import Namespace

WAIT_S = 20.0  # the longest any single wait may take in wall-clock time


@dataclass(frozen=True)
class HostSpec:
    name: str
    mac: str
    ipv4: str
    ipv6: str


HOSTS = (
    HostSpec("alpha", "02:00:00:00:00:01", "10.0.0.1/24", "fd00::1/64"),
    HostSpec("bravo", "02:00:00:00:00:02", "10.0.0.2/24", "fd00::2/64"),
)
HOSTS_FILE = "".join(
    ["127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"]
    + [f"{h.ipv4.split('/')[0]} {h.name}\n{h.ipv6.split('/')[0]} {h.name}\n" for h in HOSTS]
)


class Program(ABC):
    """One running example: its output so far and, once it ended, its exit code."""

    name: str

    @property
    @abstractmethod
    def stdout(self) -> str: ...

    @property
    @abstractmethod
    def stderr(self) -> str: ...

    @property
    @abstractmethod
    def exit_code(self) -> int | None: ...

    @abstractmethod
    def wait_for(self, text: str, timeout_s: float = WAIT_S) -> None:
        """Return once `text` is in stdout; fail the test if the program ends first."""

    @abstractmethod
    def wait(self, timeout_s: float = WAIT_S) -> int:
        """Return the exit code once the program has ended; fail the test if it does not."""

    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def describe(self) -> str:
        return (f"{self.name}: exit {self.exit_code}\n--- stdout\n{self.stdout}"
                f"--- stderr\n{self.stderr}")


class Lab(ABC):
    """Two hosts on one link, and a way to run examples on them."""

    kind: str

    @abstractmethod
    def start(self, host: str, example: str, *args: str,
              dirs: dict[str, Path] | None = None,
              tcplisten: tuple[str, int] | None = None) -> Program:
        """Start examples/`example` on `host`.

        `dirs` maps a path the program sees (used in `args`) to a real
        directory: a WASI preopen under vnet, the real path natively.
        `tcplisten` opens a listening TCP socket (address, port) for it as fd 3.
        """

    def run(self, host: str, example: str, *args: str, **kw: object) -> Program:
        program = self.start(host, example, *args, **kw)  # type: ignore[arg-type]
        program.wait()
        return program

    def wait_all(self, *programs: Program) -> None:
        for program in programs:
            program.wait()

    @abstractmethod
    def close(self) -> None: ...


# ---------------------------------------------------------------------------
# Native: gcc binaries in Linux network namespaces
# ---------------------------------------------------------------------------

def require_root() -> None:
    netns.require_root("the native example tests must run as root: they create network "
                       "namespaces with `ip netns add` (CI runs them as root)")


class NativeNet:
    """The two namespaces of a native lab (created once per test session)."""

    def __init__(self) -> None:
        self.namespaces = {h.name: f"vnx-{h.name}-{os.getpid()}" for h in HOSTS}
        self.created: list[Namespace] = []

    @staticmethod
    def reap_stale() -> None:
        """Delete namespaces (and hosts files) left by runs of ours that were killed."""
        for ns in netns.list_namespaces():
            parts = ns.split("-")
            if len(parts) != 3 or parts[0] != "vnx" or not parts[2].isdigit():
                continue
            if Path(f"/proc/{parts[2]}").exists():
                continue  # that run is still going
            netns.delete_namespace(ns)

    def create(self) -> None:
        require_root()
        self.reap_stale()
        for spec in HOSTS:
            # accept_dad=0 before any link exists, so every interface inherits it: no DAD delay.
            namespace = Namespace(self.namespaces[spec.name], hosts_file=HOSTS_FILE,
                                  sysctls=("net.ipv6.conf.all.accept_dad=0",
                                           "net.ipv6.conf.default.accept_dad=0"))
            self.created.append(namespace.create())
        a, b = HOSTS
        ns_a, ns_b = self.created
        ns_a.add_veth("eth0", "eth0", peer_netns=ns_b, index=2, address=a.mac, peer_index=2,
                      peer_address=b.mac)
        for spec, namespace in zip(HOSTS, self.created, strict=True):
            namespace.add_address("eth0", spec.ipv4)
            namespace.add_address("eth0", spec.ipv6)
            namespace.set_up("eth0")
        self.check_isolated()

    def check_isolated(self) -> None:
        """Refuse to run anything unless neither namespace has a way out."""
        for spec in HOSTS:
            netns.check_isolated(self.namespaces[spec.name], ["eth0"],
                                 prefixes=(spec.ipv4, spec.ipv6))

    def delete(self) -> None:
        for namespace in self.created:
            namespace.delete()
        self.created.clear()


# Opens fd 3 as a listening socket, then becomes the program (--tcplisten natively).
_TCPLISTEN_LAUNCHER = """
import os, socket, sys
addr, port, prog = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(128)
fd = s.detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.execv(prog[0], prog)
"""


class NativeProgram(Program):
    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        self._out = bytearray()
        self._err = bytearray()
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._pump, args=(self._proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._pump, args=(self._proc.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _pump(self, stream: object, sink: bytearray) -> None:
        read = stream.read1  # type: ignore[attr-defined]
        while True:
            chunk = read(65536)
            with self._cond:
                if not chunk:
                    self._cond.notify_all()
                    return
                sink.extend(chunk)
                self._cond.notify_all()

    @property
    def stdout(self) -> str:
        with self._cond:
            return self._out.decode(errors="replace")

    @property
    def stderr(self) -> str:
        with self._cond:
            return self._err.decode(errors="replace")

    @property
    def exit_code(self) -> int | None:
        return self._proc.poll()

    def wait_for(self, text: str, timeout_s: float = WAIT_S) -> None:
        needle = text.encode()
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while needle not in self._out:
                left = deadline - time.monotonic()
                if left <= 0 or (self._proc.poll() is not None
                                 and not self._readers[0].is_alive()):
                    break
                self._cond.wait(min(left, 0.1))
        if needle not in self._out:
            pytest.fail(f"never printed {text!r}\n{self.describe()}", pytrace=False)

    def wait(self, timeout_s: float = WAIT_S) -> int:
        try:
            code = self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"did not exit within {timeout_s} s\n{self.describe()}", pytrace=False)
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()  # our own child, by its pid
            self._proc.wait(5)


class NativeLab(Lab):
    kind = "native"

    def __init__(self, net: NativeNet, binaries: Callable[[str], Path]) -> None:
        self.net = net
        self.binaries = binaries
        self.programs: list[NativeProgram] = []

    def start(self, host: str, example: str, *args: str,
              dirs: dict[str, Path] | None = None,
              tcplisten: tuple[str, int] | None = None) -> Program:
        real_args = [str(dirs[a]) if dirs and a in dirs else a for a in args]
        argv = [str(self.binaries(example)), *real_args]
        if tcplisten is not None:
            argv = [sys.executable, "-I", "-c", _TCPLISTEN_LAUNCHER, tcplisten[0],
                    str(tcplisten[1]), *argv]
        program = NativeProgram(f"{example}@{host}",
                                netns.in_namespace(self.net.namespaces[host], *argv))
        self.programs.append(program)
        return program

    def exec_python(self, host: str, *args: str) -> str:
        """Run `python -I ARGS…` (a script, or -c CODE) in host's namespace; its stdout."""
        proc = subprocess.run(netns.in_namespace(self.net.namespaces[host],
                                                 sys.executable, "-I", *args),
                              capture_output=True, text=True, timeout=WAIT_S)
        if proc.returncode != 0:
            pytest.fail(f"python {args[0]} failed: {proc.stderr}", pytrace=False)
        return proc.stdout

    def close(self) -> None:
        for program in self.programs:
            program.kill()


# ---------------------------------------------------------------------------
# vnet: wasm guests on virtual hosts, in virtual time
# ---------------------------------------------------------------------------

class VnetProgram(Program):
    def __init__(self, lab: VnetLab, name: str, config: GuestConfig) -> None:
        self.name = name
        self.lab = lab
        self._out = bytearray()
        self._err = bytearray()
        config.stdout = self._out.extend
        config.stderr = self._err.extend
        self.guest = Guest(lab.net.scheduler, config)
        self.guest.start()

    @property
    def stdout(self) -> str:
        return bytes(self._out).decode(errors="replace")

    @property
    def stderr(self) -> str:
        text = bytes(self._err).decode(errors="replace")
        if self.guest.trap:
            text += f"[trap: {self.guest.trap}]\n"
        return text

    @property
    def exit_code(self) -> int | None:
        return self.guest.exit_code if self.guest.done else None

    def wait_for(self, text: str, timeout_s: float = WAIT_S) -> None:
        needle = text.encode()
        self.lab.run_until(lambda: needle in self._out or self.guest.done, timeout_s)
        if needle not in self._out:
            pytest.fail(f"never printed {text!r}\n{self.describe()}", pytrace=False)

    def wait(self, timeout_s: float = WAIT_S) -> int:
        if not self.lab.run_until(lambda: self.guest.done, timeout_s):
            pytest.fail(f"did not exit\n{self.describe()}", pytrace=False)
        code = self.exit_code
        assert code is not None
        return code


class VnetLab(Lab):
    kind = "vnet"

    def __init__(self, wasm: Callable[[str], Path], seed: int = 1, latency_ns: int = 0) -> None:
        self.wasm = wasm
        self.net = Network(virtual_time=True, seed=seed)
        self.lan = self.net.segment("lan", latency_ns=latency_ns)
        self.hosts: dict[str, Host] = {}
        self.nics: dict[str, Nic] = {}
        for spec in HOSTS:
            host = self.net.host(spec.name)
            self.nics[spec.name] = host.connect(self.lan, spec.ipv4, spec.ipv6)
            self.hosts[spec.name] = host
        self.programs: list[VnetProgram] = []

    def start(self, host: str, example: str, *args: str,
              dirs: dict[str, Path] | None = None,
              tcplisten: tuple[str, int] | None = None) -> Program:
        config = GuestConfig(
            module=str(self.wasm(example)), args=[example, *args], host=self.hosts[host],
            name=f"{example}@{host}#{len(self.programs)}",
            preopens=[(str(real), seen) for seen, real in (dirs or {}).items()],
            tcplisten=[tcplisten] if tcplisten else [],
        )
        program = VnetProgram(self, config.name, config)
        self.programs.append(program)
        return program

    def run_until(self, ready: Callable[[], bool], timeout_s: float) -> bool:
        """Run the network until ready() (True) or a deadlock / wall-clock timeout (False)."""
        give_up = time.monotonic() + timeout_s
        self.net.scheduler.run(until=lambda: ready() or time.monotonic() > give_up,
                               timeout_s=timeout_s)
        return ready()

    def close(self) -> None:
        self.net.close()
