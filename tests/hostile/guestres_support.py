"""An attacker guest beside a victim transfer, in a vnet process of its own, measured.

Shared by tests/hostile/test_memory.py, test_iovecs.py and test_poll.py (the
resource-accounting attacks). `run_attack()` starts
`python -m tests.hostile.guestres_support SPEC` as a subprocess, so the RSS
it reports is that of a vnet process running only this scenario: the
network of three hosts on one LAN — `evil` (10.0.0.66, the attacker),
`va` (10.0.0.1) and `vb` (10.0.0.2) — the attacker guest on `evil` and
the victim, examples/bulk.c, sending VICTIM_MIB MiB from `va` to `vb`.

The child reads VmRSS from /proc/self/status once every module is compiled
and the network built, just before any guest starts (the baseline), and
VmHWM (the peak RSS) when all guests are done. The containment bound the
tests assert is

    peak RSS - baseline  <  sum of the guests' --max-memory  +  RSS_SLACK

RSS_SLACK (64 MiB) covers what vnet itself allocates while running: Python
objects for frames, timers and connections, wasmtime's instance state and
allocator fragmentation. It does not grow with what a guest asks for.

Also here: building an attack's C source natively with gcc and running it
as the Linux reference, in a private network namespace that dies with it
(`unshare -n`, loopback only), with RLIMIT_NOFILE set to the guest's
--max-fds and without CAP_NET_ADMIN/CAP_NET_RAW, as an unprivileged process.

Touches: a subprocess of the test's Python; gcc, unshare, prlimit and
setpriv for the native reference.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024
RSS_SLACK = 64 * MIB
VICTIM_MIB = 8
VICTIM_MAX_MEMORY = 32 * MIB
ROOT = Path(__file__).resolve().parent.parent.parent
ATTACKS = Path(__file__).resolve().parent / "c"


@dataclass
class AttackResult:
    """What one attacker-beside-victim run showed."""

    attacker_stdout: str
    attacker_exit: int | None
    attacker_trap: str | None
    victim_sent: str
    victim_received: str
    victims_done: bool
    baseline_rss: int
    peak_rss: int
    max_memory_total: int
    internal_errors: list[str] = field(default_factory=list)
    attacker_stderr: str = ""
    attacker_host_drops: dict[str, int] = field(default_factory=dict)
    file_size: int = -1  # set by a test that gave the attacker a file to write
    socket_memory_peak: int = 0  # the most the attacker's socket queues held
    socket_memory_used_at_end: int = 0
    attacker_oom_kills: int = 0  # the attacker's GuestStats: killed over --max-memory
    attacker_memory_reclaimed: int = 0  # ... and socket bytes dropped to get it under

    @property
    def rss_growth(self) -> int:
        return self.peak_rss - self.baseline_rss

    def calls(self) -> dict[str, tuple[int, str]]:
        """`call NAME RESULT ERRNO` lines: NAME -> (result, errno name); first one wins."""
        found: dict[str, tuple[int, str]] = {}
        for line in self.attacker_stdout.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "call" and parts[1] not in found:
                found[parts[1]] = (int(parts[2]), parts[3])
        return found

    def value(self, key: str) -> int:
        """The number on the attacker's `KEY N` line."""
        for line in self.attacker_stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
        raise KeyError(f"no '{key}' line in:\n{self.attacker_stdout}")

    def victim_transfer(self) -> tuple[str, str]:
        """(what the victim's sender reported, what its receiver reported): bytes and hash."""
        def summary(text: str, verb: str) -> str:
            found = re.search(rf"bulk: {verb} (\d+ bytes fnv1a64=[0-9a-f]+)", text)
            return found.group(1) if found else f"(no '{verb}' line)"

        return summary(self.victim_sent, "sent"), summary(self.victim_received, "received")

    def describe(self) -> str:
        return (f"attacker exit {self.attacker_exit} trap {self.attacker_trap}\n"
                f"--- attacker stdout\n{self.attacker_stdout}"
                f"--- attacker stderr\n{self.attacker_stderr}"
                f"--- victim\n{self.victim_sent}\n{self.victim_received}\n"
                f"rss baseline {self.baseline_rss / MIB:.1f} MiB, peak "
                f"{self.peak_rss / MIB:.1f} MiB, guests' limits "
                f"{self.max_memory_total / MIB:.0f} MiB; internal errors "
                f"{self.internal_errors}")


def run_attack(attack_wasm: Path, args: list[str], bulk_wasm: Path, *,
               max_memory: int, max_fds: int = 1024, virtual_time: bool = True,
               preopen: Path | None = None, timeout_s: float = 300) -> AttackResult:
    """Run the attacker beside the victim in a fresh Python process; see the module doc.

    `preopen`: a host directory the attacker sees as /out.
    """
    spec = {"attack": str(attack_wasm), "args": args, "bulk": str(bulk_wasm),
            "max_memory": max_memory, "max_fds": max_fds, "virtual": virtual_time,
            "preopen": str(preopen) if preopen else "", "timeout_s": timeout_s}
    proc = subprocess.run([sys.executable, "-m", "tests.hostile.guestres_support",
                           json.dumps(spec)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout_s + 60)
    if proc.returncode != 0:
        raise AssertionError(f"scenario process failed ({proc.returncode}):\n{proc.stderr}")
    return AttackResult(**json.loads(proc.stdout.splitlines()[-1]))


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _scenario(spec: dict[str, object]) -> dict[str, object]:
    from vnet.guest.context import GuestLimits
    from vnet.guest.runtime import Guest, GuestConfig
    from vnet.network import Network

    net = Network(virtual_time=bool(spec["virtual"]), seed=1)
    lan = net.segment("lan")
    hosts = {}
    for name, address in (("evil", "10.0.0.66/24"), ("va", "10.0.0.1/24"),
                          ("vb", "10.0.0.2/24")):
        hosts[name] = net.host(name)
        hosts[name].connect(lan, address)
    outputs: dict[str, bytearray] = {"evil": bytearray(), "va": bytearray(), "vb": bytearray()}
    errors: dict[str, bytearray] = {"evil": bytearray(), "va": bytearray(), "vb": bytearray()}

    def guest(host: str, module: str, args: list[str], limits: GuestLimits,
              preopens: list[tuple[str, str]] | None = None) -> Guest:
        return Guest(net.scheduler, GuestConfig(module=module, args=args, host=hosts[host],
                                                stdout=outputs[host].extend,
                                                stderr=errors[host].extend, name=host,
                                                limits=limits, preopens=preopens or []))

    max_memory = int(spec["max_memory"])  # type: ignore[call-overload]
    attack_args = [str(a) for a in spec["args"]]  # type: ignore[attr-defined]
    attacker = guest("evil", str(spec["attack"]), ["attack", *attack_args],
                     GuestLimits(memory_bytes=max_memory,
                                 max_fds=int(spec["max_fds"])),  # type: ignore[call-overload]
                     [(str(spec["preopen"]), "/out")] if spec["preopen"] else None)
    victim_limits = GuestLimits(memory_bytes=VICTIM_MAX_MEMORY)
    server = guest("vb", str(spec["bulk"]), ["bulk", "recv", "5001"], victim_limits)
    client = guest("va", str(spec["bulk"]),
                   ["bulk", "send", "10.0.0.2", "5001", str(VICTIM_MIB)], victim_limits)
    baseline = _status_kib("VmRSS")
    timeout = float(spec["timeout_s"])  # type: ignore[arg-type]
    server.start()
    net.scheduler.run(until=lambda: b"listening" in outputs["vb"], timeout_s=timeout)
    attacker.start()
    client.start()
    net.scheduler.run(until=lambda: attacker.done and client.done and server.done,
                      timeout_s=timeout)
    peak = _status_kib("VmHWM")
    memory = attacker.ctx.extensions.get("socket_memory")
    result = {
        "attacker_stdout": outputs["evil"].decode(errors="replace"),
        "attacker_stderr": errors["evil"].decode(errors="replace"),
        "attacker_exit": attacker.exit_code if attacker.done else None,
        "attacker_trap": attacker.trap,
        "victim_sent": outputs["va"].decode(errors="replace"),
        "victim_received": outputs["vb"].decode(errors="replace"),
        "victims_done": client.done and server.done,
        "baseline_rss": baseline,
        "peak_rss": peak,
        "max_memory_total": max_memory + 2 * VICTIM_MAX_MEMORY,
        "internal_errors": [*attacker.ctx.diagnostics, *client.ctx.diagnostics,
                            *server.ctx.diagnostics],
        "socket_memory_peak": memory.peak if memory is not None else 0,
        "socket_memory_used_at_end": memory.used if memory is not None else 0,
        "attacker_host_drops": dict(hosts["evil"].counters.drops()),
        "attacker_oom_kills": attacker.ctx.stats.oom_kills,
        "attacker_memory_reclaimed": attacker.ctx.stats.memory_reclaimed,
    }
    net.scheduler.stop_all()
    return result


# --- the Linux reference --------------------------------------------------------------

def native_available() -> str | None:
    """Why the native reference cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "the native reference needs root (unshare -n)"
    for tool in ("gcc", "unshare", "prlimit", "setpriv", "ip"):
        if shutil.which(tool) is None:
            return f"the native reference needs {tool}"
    return None


def run_native(source: Path, args: list[str], out_dir: Path, max_fds: int = 1024) -> str:
    """The attack built with gcc and run as an unprivileged Linux process; its stdout."""
    binary = out_dir / source.stem
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", str(source), "-o",
                    str(binary)], check=True, capture_output=True, timeout=120)
    # in a new network namespace (loopback only, gone when the process exits), with
    # RLIMIT_NOFILE = max_fds and no CAP_NET_ADMIN/CAP_NET_RAW, like an ordinary user
    script = ('ip link set lo up && n=$1 && shift && exec prlimit --nofile=$n setpriv '
              '--bounding-set -net_admin,-net_raw --inh-caps -net_admin,-net_raw "$@"')
    proc = subprocess.run(["unshare", "-n", "sh", "-c", script, "sh", str(max_fds), str(binary),
                           *args],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"native {source.name} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc.stdout


if __name__ == "__main__":
    print(json.dumps(_scenario(json.loads(sys.argv[1]))))
