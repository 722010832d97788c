"""The one audited guard around Linux network namespaces, for kernel-touching tests and the bench.

Every test that runs something on the Linux kernel (the reference stack, the
TUN bridge, native builds of the examples, nftables) and the benchmark's
native side do it inside a throwaway network namespace made here:

    with Namespace(f"vnb{os.getpid()}", sysctls=("net.ipv6.conf.all.accept_dad=0",)) as ns:
        ns.add_veth("eth0", "peer0", address="02:00:00:00:00:01")
        ns.add_address("eth0", "10.0.0.1/24")
        ns.set_up("eth0", "peer0")
        ns.check_isolated(["eth0", "peer0"], prefixes=["10.0.0.0/24"])
        ns.run("ping", "-c1", "10.0.0.1")

`Namespace.create` deletes a namespace of the same name left by a crashed run
(names carry the pid, so only our own can collide), adds the namespace,
applies the requested sysctls (before any link exists, so every interface
inherits them) and brings `lo` up. `Namespace.delete` kills whatever still
runs inside, deletes the namespace (and with it every veth and TUN device
in it) and the hosts file it wrote; it is idempotent. Every live namespace is
in a registry that is emptied at interpreter exit and on SIGINT/SIGTERM, so
a Ctrl-C or a `timeout` leaves nothing behind (SIGKILL can: the next run
with the same pid, or `reap_stale`, deletes it).

Safety rule: no traffic may leave this machine. `check_isolated` refuses to
go on (raises `NamespaceError`) unless the namespace holds exactly `lo` and
the devices the caller names; no veth of it has its peer in a namespace that
is not one of ours (the machine's own namespace has no name, so a peer there
shows as ``link-netnsid``); and every route, in every table, is on-link
through one of those devices -- no default route, no gateway -- and, when
``prefixes`` is given, leads only to those test prefixes, to the networks of
the namespace's own addresses, or to loopback, link-local and multicast
scopes. Callers run it after wiring and before anything runs.

`namespace_problem`, `tun_problem`, `require_root` and `refuse` say, with the
same messages the suites always gave, why namespaces cannot be made here;
`refuse` fails (or, if asked, skips) the calling pytest test.

Touches: the `ip` command (iproute2: namespaces, links, addresses, routes,
``ip netns exec``), ``sysctl`` inside the namespaces it made, /proc (pids,
/proc/sys through sysctl), /sys (device state, through iproute2),
/etc/netns/<name>/hosts for namespaces given a hosts file, processes it
started or that run inside its own namespaces (killed by pid), and signal
handlers for SIGINT/SIGTERM (chained to the previous ones).
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

__all__ = [
    "Namespace",
    "NamespaceError",
    "check_isolated",
    "clean_env",
    "delete_all",
    "delete_namespace",
    "in_namespace",
    "list_namespaces",
    "namespace_problem",
    "refuse",
    "require_root",
    "tun_problem",
]

NETNS_ETC = Path("/etc/netns")
#: Destinations every namespace has routes to without being able to leave the machine.
LOCAL_SCOPES = tuple(ipaddress.ip_network(p) for p in (
    "127.0.0.0/8", "::1/128", "fe80::/10", "224.0.0.0/4", "ff00::/8"))
_ROUTE_TYPES = {"unicast", "local", "broadcast", "multicast", "anycast", "unreachable",
                "blackhole", "prohibit", "throw", "nat"}


class NamespaceError(RuntimeError):
    """A namespace could not be made, used or proved isolated; the message says why."""


# --- privileges ---------------------------------------------------------------------
def namespace_problem() -> str | None:
    """Why this process cannot make network namespaces, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs the ip command (Debian package iproute2)"
    return None


def tun_problem() -> str | None:
    """Why a TUN device cannot be bridged into a namespace here, or None."""
    problem = namespace_problem()
    if problem:
        return problem
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    return None


def refuse(message: str, *, skip: bool = False) -> NoReturn:
    """Fail (or skip) the calling pytest test with message, without a traceback."""
    import pytest

    if skip:
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


def require_root(message: str, *, skip: bool = False) -> None:
    """Fail (or skip) the calling pytest test with message unless this process is root."""
    if os.geteuid() != 0:
        refuse(message, skip=skip)


def clean_env() -> dict[str, str]:
    """The environment for processes inside a namespace: no proxies, C locale."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["LC_ALL"] = "C"
    return env


# --- iproute2 -------------------------------------------------------------------------
def _ip(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise NamespaceError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc.stdout


def in_namespace(name: str, *argv: str) -> list[str]:
    """argv as run inside namespace `name`: `ip netns exec NAME argv`."""
    return ["ip", "netns", "exec", name, *argv]


def list_namespaces() -> list[str]:
    """The names of the machine's named network namespaces (`ip netns list`)."""
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


# --- the registry: what is deleted at exit and on SIGINT/SIGTERM ----------------------
_LIVE: dict[str, Namespace] = {}
_REGISTRY_LOCK = threading.RLock()  # a signal handler may take it again
_PREVIOUS_HANDLERS: dict[int, Any] = {}
_HOOKS_INSTALLED = False


def _on_signal(signum: int, frame: FrameType | None) -> None:
    delete_all()
    previous = _PREVIOUS_HANDLERS.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_hooks() -> None:
    """atexit always; signal handlers when called from the main thread (Python's rule)."""
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(delete_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        if previous == signal.SIG_IGN:
            continue
        _PREVIOUS_HANDLERS[signum] = previous
        signal.signal(signum, _on_signal)


def delete_all() -> None:
    """Delete every namespace this process made and has not deleted yet."""
    with _REGISTRY_LOCK:
        live = list(_LIVE.values())
    for ns in live:
        ns.delete()


def delete_namespace(name: str, *, kill_processes: bool = True) -> None:
    """Delete `name` and every process still inside it, and its hosts file; idempotent."""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                          timeout=30).stdout.split() if kill_processes else []
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30, check=False)
    _remove_hosts_file(name)
    with _REGISTRY_LOCK:
        _LIVE.pop(name, None)


def _remove_hosts_file(name: str) -> None:
    hosts_dir = NETNS_ETC / name
    if not hosts_dir.exists():
        return
    (hosts_dir / "hosts").unlink(missing_ok=True)
    try:
        hosts_dir.rmdir()
        hosts_dir.parent.rmdir()  # only if nothing else is in /etc/netns
    except OSError:
        pass


# --- the isolation check ----------------------------------------------------------------
def _route_destination(words: list[str]) -> str:
    return words[1] if words[0] in _ROUTE_TYPES and len(words) > 1 else words[0]


def check_isolated(name: str, devices: Sequence[str],
                   prefixes: Iterable[str] | None = None) -> None:
    """Refuse (NamespaceError) unless `name` provably has no way off this machine.

    It must hold exactly lo and `devices`; a veth's peer must be in a namespace
    this process made; every route must be on-link through lo or `devices`
    (no default, no gateway), and with `prefixes` lead only to them, to the
    networks of the namespace's own addresses, or to loopback, link-local and
    multicast destinations.
    """
    links = _ip("-n", name, "-o", "link", "show")
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
    if names != sorted(["lo", *devices]):
        raise NamespaceError(f"{name}: unexpected links {names}")
    with _REGISTRY_LOCK:
        ours = set(_LIVE)
    for line in links.splitlines():
        words = line.split()
        device = line.split(":")[1].strip().split("@")[0]
        if "link-netnsid" in words:
            raise NamespaceError(f"{name}: {device} leads to a namespace that is not ours "
                                 "(perhaps the machine's own)")
        if "link-netns" in words and words[words.index("link-netns") + 1] not in ours:
            raise NamespaceError(f"{name}: {device} leads to namespace "
                                 f"{words[words.index('link-netns') + 1]}, not one of ours")
    allowed_devices = {"lo", *devices}
    allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None
    if prefixes is not None:
        allowed = [*LOCAL_SCOPES, *(ipaddress.ip_network(p, strict=False) for p in prefixes)]
        for line in _ip("-n", name, "-o", "addr", "show").splitlines():
            words = line.split()
            for family in ("inet", "inet6"):
                if family in words:
                    allowed.append(ipaddress.ip_interface(words[words.index(family) + 1]).network)
    for family in ("-4", "-6"):
        for line in _ip("-n", name, family, "route", "show", "table", "all").splitlines():
            words = line.split()
            if not words:
                continue
            dev = words[words.index("dev") + 1] if "dev" in words else None
            destination = _route_destination(words)
            if destination == "default" or "via" in words or dev not in allowed_devices:
                raise NamespaceError(f"{name}: route that could leave the namespace: {line}")
            if allowed is not None:
                network = ipaddress.ip_network(destination, strict=False)
                if not any(network.version == a.version and network.subnet_of(a)  # type: ignore[arg-type]
                           for a in allowed):
                    raise NamespaceError(f"{name}: route to {destination}, which is not "
                                         f"a test prefix: {line}")


# --- the guard ------------------------------------------------------------------------
class Namespace:
    """One throwaway network namespace: created, wired, checked, and always deleted.

    Use as a context manager, or call `create()` and `delete()` (the registry
    deletes it at exit or on SIGINT/SIGTERM should `delete()` never run).
    """

    def __init__(self, name: str, *, sysctls: Sequence[str] = (),
                 hosts_file: str | None = None, kill_processes: bool = True) -> None:
        self.name = name
        self.sysctls = list(sysctls)
        self.hosts_file = hosts_file
        #: Kill what still runs inside before deleting (False: leave it to its owner).
        self.kill_processes = kill_processes
        self.created = False

    def __repr__(self) -> str:
        return f"Namespace({self.name!r}, created={self.created})"

    # --- lifetime ---------------------------------------------------------------------
    def create(self) -> Namespace:
        """A fresh namespace: a leftover of the same name deleted, sysctls set, lo up."""
        _install_hooks()
        if self.name in list_namespaces():
            delete_namespace(self.name)  # left over by a crashed run that had our pid
        _ip("netns", "add", self.name)
        self.created = True
        with _REGISTRY_LOCK:
            _LIVE[self.name] = self
        try:
            if self.hosts_file is not None:
                hosts_dir = NETNS_ETC / self.name
                hosts_dir.mkdir(parents=True, exist_ok=True)
                (hosts_dir / "hosts").write_text(self.hosts_file)
            if self.sysctls:  # before any link exists, so every interface inherits them
                self.sysctl(*self.sysctls)
            self.ip("link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise
        return self

    def delete(self) -> None:
        """Kill what runs inside, delete the namespace and its devices; idempotent."""
        if self.created:
            self.created = False
            delete_namespace(self.name, kill_processes=self.kill_processes)

    def __enter__(self) -> Namespace:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.delete()

    # --- wiring -----------------------------------------------------------------------
    def ip(self, *args: str, check: bool = True) -> str:
        """`ip -n NAME args`; its stdout, NamespaceError if it fails and check."""
        return _ip("-n", self.name, *args, check=check)

    def sysctl(self, *assignments: str, check: bool = True) -> None:
        """`sysctl -qw key=value ...` inside the namespace (per-namespace keys only)."""
        self.run("sysctl", "-qw", *assignments, check=check)

    def add_veth(self, name: str, peer: str, *, peer_netns: Namespace | str | None = None,
                 index: int | None = None, address: str | None = None,
                 peer_index: int | None = None, peer_address: str | None = None) -> None:
        """A veth pair: `name` here, `peer` here too or in peer_netns (one of ours)."""
        argv = ["link", "add", name]
        if index is not None:
            argv += ["index", str(index)]
        if address is not None:
            argv += ["address", address]
        argv += ["type", "veth", "peer", "name", peer]
        if peer_netns is not None:
            target = peer_netns.name if isinstance(peer_netns, Namespace) else peer_netns
            with _REGISTRY_LOCK:
                ours = target in _LIVE
            if not ours:
                raise NamespaceError(f"{self.name}: refusing a veth into {target}, "
                                     "which is not a namespace of ours")
            argv += ["netns", target]
        if peer_index is not None:
            argv += ["index", str(peer_index)]
        if peer_address is not None:
            argv += ["address", peer_address]
        self.ip(*argv)

    def adopt(self, device: str, from_netns: str | None = None) -> None:
        """Move `device` into this namespace (deleted with it, if virtual)."""
        _ip(*(("-n", from_netns) if from_netns else ()), "link", "set", "dev", device,
            "netns", self.name)

    def add_address(self, device: str, cidr: str) -> None:
        """Give `device` an address (IPv6 without duplicate address detection)."""
        self.ip("addr", "add", cidr, "dev", device, *(("nodad",) if ":" in cidr else ()))

    def set_up(self, *devices: str) -> None:
        for device in devices:
            self.ip("link", "set", device, "up")

    def check_isolated(self, devices: Sequence[str],
                       prefixes: Iterable[str] | None = None) -> None:
        """See `check_isolated`: refuse to go on unless this namespace has no way out."""
        check_isolated(self.name, devices, prefixes)

    # --- running things inside ----------------------------------------------------------
    def command(self, *argv: str) -> list[str]:
        """argv as run inside the namespace (`ip netns exec NAME argv`), for Popen."""
        return in_namespace(self.name, *argv)

    def run(self, *argv: str, input: str | None = None, timeout: float = 60,
            check: bool = True, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the namespace to completion (text I/O)."""
        proc = subprocess.run(self.command(*argv), input=input, capture_output=True, text=True,
                              timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise NamespaceError(f"{' '.join(argv[:6])} … in {self.name} failed "
                                 f"({proc.returncode}): {proc.stderr.strip()}")
        return proc
