"""Differential-test harness: run one socket scenario on the Linux kernel and on vnet.

A *scenario* is a list of steps, each a tuple naming an operation on named
sockets::

    ("socket", "s1", AF_INET6, SOCK_DGRAM)
    ("setsockopt", "s1", IPPROTO_IPV6, IPV6_V6ONLY, 1)
    ("bind", "s1", ("::", 5000))
    ("sendto", "s2", b"x", ("10.0.0.1", 5000))
    ("recvfrom", "s1", 100, 0.5)             # bufsize, timeout[, flags]
    ("getsockopt", "s1", SOL_SOCKET, SO_ERROR)
    ("sleep", 0.05)
    ("disconnect", "s1")                     # connect(AF_UNSPEC)
    ("port_range", 41000, 41001)             # the ephemeral port range, until the end
    ("connect_nb", "c", ("10.0.0.1", 80))    # non-blocking connect: "EINPROGRESS" (or 0)
    ("tcp_info", "s", ("state",))            # TCP_INFO: its length and the fields named
    ("listen", "l", 8)                       # a stream socket: listen(backlog)
    ("accept", "l", "s", 0.5)                # accept within the timeout; the new socket is "s"

Each step's *outcome* is what the call returned, or the errno name of the
OSError it raised (``"EADDRINUSE"``; ``"timeout"`` for a timed-out receive;
``"gaierror:EAI_..."`` for address-parsing errors; the exception's type name
for TypeError/ValueError/OverflowError). `normalise` then replaces ephemeral
port numbers in addresses by placeholders (``"EPH0"``, ``"EPH1"`` … in order
of appearance, so equal ports stay equal) — only ports inside the configured
ephemeral range are replaced, so a port outside it shows up as a mismatch.

The file has two halves. The first (`run_steps` and friends) uses only the
standard library and is also run as a script inside the test's network
namespace (``ip netns exec NS python linux_reference.py`` reading scenarios
on stdin, printing outcomes), so the kernel and vnet execute the very same
step code. The second half creates and deletes that namespace
(`LinuxNamespace`) and runs scenarios on a virtual host (`run_virtual`).

Safety: the namespace holds only ``lo`` and a veth pair whose *both* ends
stay inside it (``eth0`` with the test addresses, ``peer0`` with none and
IPv6 disabled). It has no default route and no link to the host's
namespace, so nothing a scenario sends can leave this machine;
`LinuxNamespace.create` verifies that before any scenario runs, with the
audited guard in `vnet.testing.netns` (which also deletes the namespace on
SIGINT/SIGTERM and at exit).
"""

from __future__ import annotations

import ast
import errno
import os
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

Step = tuple[Any, ...]
Outcome = Any

# The addresses both sides give their one Ethernet interface.
IFNAME = "eth0"
MAC = "02:00:00:00:00:01"  # what vnet's Network gives its first NIC: same link-local
ADDR4 = "10.0.0.1/24"
ADDR6 = "fd00::1/64"
EPHEMERAL_RANGE = (41000, 41999)  # configured on both sides

_EAI_NAMES = {getattr(socket, n): n for n in dir(socket) if n.startswith("EAI_")}


# --------------------------------------------------------------------------
# First half: the step executor (standard library only).
# --------------------------------------------------------------------------
class Env:
    """Where a scenario runs: sockets, time, ifindexes, and what Python's API lacks."""

    PORT_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"  # per network namespace

    def __init__(self) -> None:
        self.saved_range: str | None = None

    def socket(self, family: int, type: int) -> Any:
        return socket.socket(family, type)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def ifindex(self, name: str) -> int:
        return socket.if_nametoindex(name)

    def disconnect(self, sock: Any) -> None:
        """connect() with an AF_UNSPEC address, which Python's socket API cannot express."""
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.connect(sock.fileno(), bytes(16), 16) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    def set_port_range(self, low: int, high: int) -> None:
        with open(self.PORT_RANGE) as f:
            current = f.read()
        if self.saved_range is None:
            self.saved_range = current
        with open(self.PORT_RANGE, "w") as f:
            f.write(f"{low} {high}")

    def restore(self) -> None:
        if self.saved_range is not None:
            with open(self.PORT_RANGE, "w") as f:
                f.write(self.saved_range)
            self.saved_range = None


def _value(spec: Any, env: Env) -> Any:
    """Option values: ints and bytes as given, or a tuple naming a C struct to pack."""
    if not isinstance(spec, tuple):
        return spec
    kind, *args = spec

    def index(ifname: str | int) -> int:
        return ifname if isinstance(ifname, int) else env.ifindex(ifname)

    if kind == "inaddr":  # struct in_addr
        return socket.inet_aton(args[0])
    if kind == "mreq":  # struct ip_mreq: group, interface address
        return socket.inet_aton(args[0]) + socket.inet_aton(args[1])
    if kind == "mreqn":  # struct ip_mreqn: group, address, ifindex
        return socket.inet_aton(args[0]) + socket.inet_aton(args[1]) + struct.pack(
            "@i", index(args[2]))
    if kind == "mreq6":  # struct ipv6_mreq: group, ifindex
        return socket.inet_pton(socket.AF_INET6, args[0]) + struct.pack("@I", index(args[1]))
    if kind == "ifindex":
        return index(args[0])
    if kind == "ifname":
        return args[0].encode() + b"\0"
    raise ValueError(f"unknown option value {spec!r}")


def _data(spec: bytes | int) -> bytes:
    """Payloads: bytes, or an int n meaning n bytes of a fixed pattern."""
    if isinstance(spec, int):
        return bytes(i & 0xFF for i in range(spec))
    return spec


def _show(data: bytes) -> bytes | str:
    """Received data as an outcome: short payloads verbatim, long ones by size."""
    return data if len(data) <= 64 else f"<{len(data)} bytes>"


def _error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and exc.errno is None:
        return "timeout"
    if isinstance(exc, socket.gaierror):
        return "gaierror:" + _EAI_NAMES.get(exc.errno or 0, str(exc.errno))
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


def _step(step: Step, socks: dict[str, Any], env: Env) -> Outcome:
    op = step[0]
    if op == "sleep":
        env.sleep(step[1])
        return None
    if op == "port_range":
        env.set_port_range(step[1], step[2])
        return None
    name = step[1]
    if op == "socket":
        socks[name] = env.socket(step[2], step[3] if len(step) > 3 else socket.SOCK_DGRAM)
        return None
    if name not in socks:
        return "no socket"  # an earlier step (accept) failed to make it
    s = socks[name]
    if op == "bind":
        return s.bind(step[2])
    if op == "connect":
        return s.connect(step[2])
    if op == "connect_nb":
        s.setblocking(False)
        code = s.connect_ex(step[2])
        return errno.errorcode.get(code, code) if code else 0
    if op == "listen":
        return s.listen(step[2])
    if op == "accept":
        s.settimeout(step[3])
        child, peer = s.accept()
        socks[step[2]] = child
        return peer
    if op == "sendto":
        return s.sendto(_data(step[2]), step[3])
    if op == "send":
        return s.send(_data(step[2]))
    if op in ("recvfrom", "recv"):
        bufsize, timeout = step[2], step[3]
        flags = step[4] if len(step) > 4 else 0
        s.settimeout(timeout)
        data, addr = s.recvfrom(bufsize, flags)
        return _show(data) if op == "recv" else (_show(data), addr)
    if op == "drain":  # every datagram that arrives within the timeout, in order
        s.settimeout(step[2])
        got: list[Outcome] = []
        while True:
            try:
                data, addr = s.recvfrom(65536)
            except TimeoutError:
                return got
            got.append((_show(data), addr))
    if op == "getsockname":
        return s.getsockname()
    if op == "getpeername":
        return s.getpeername()
    if op == "setsockopt":
        return s.setsockopt(step[2], step[3], _value(step[4], env))
    if op == "tcp_info":  # getsockopt(TCP_INFO): (length, {field: value}) for the fields named
        raw = s.getsockopt(socket.IPPROTO_TCP, 11, 512)
        def u32(offset: int) -> int:
            return int.from_bytes(raw[offset:offset + 4], "little")

        fields = {"state": raw[0], "options": raw[5], "unacked": raw[24:28],
                  "sacked": raw[28:32], "ecn_word": raw[276:280], "ssthresh": raw[76:80],
                  # facts that hold whatever the MTU and timing
                  "snd_mss=TCP_MAXSEG": u32(16) == s.getsockopt(socket.IPPROTO_TCP, 2),
                  "rto>=200ms": u32(8) >= 200_000, "cwnd>0": u32(80) > 0,
                  "advmss>0": u32(84) > 0, "snd_wnd>0": u32(228) > 0,
                  "rcv_wnd>0": u32(232) > 0}
        return (len(raw), {name: int.from_bytes(value, "little")
                           if isinstance(value, bytes) else value
                           for name in step[2] for value in (fields[name],)})
    if op == "getsockopt":
        if len(step) > 4:
            return s.getsockopt(step[2], step[3], step[4])
        return s.getsockopt(step[2], step[3])
    if op == "close":
        return s.close()
    if op == "shutdown":
        return s.shutdown(step[2])
    if op == "disconnect":
        return env.disconnect(s)
    raise ValueError(f"unknown step {step!r}")


def run_steps(steps: Sequence[Step], env: Env) -> list[Outcome]:
    """Run a scenario; one outcome per step. Every socket is closed at the end."""
    socks: dict[str, Any] = {}
    outcomes: list[Outcome] = []
    try:
        for step in steps:
            try:
                outcomes.append(_step(step, socks, env))
            except (OSError, TypeError, ValueError, OverflowError) as exc:
                outcomes.append(_error(exc))
    finally:
        for s in socks.values():
            try:
                s.close()
            except OSError:
                pass
        env.restore()
    return outcomes


def _main() -> None:
    """Script mode (inside the namespace): stdin {name: steps} → stdout {name: outcomes}."""
    scenarios = ast.literal_eval(sys.stdin.read())
    env = Env()
    results = {name: run_steps(steps, env) for name, steps in scenarios.items()}
    if env.saved_range is not None:
        raise RuntimeError("the port range was not restored")
    sys.stdout.write(repr(results))


# --------------------------------------------------------------------------
# Second half: the test process side.
# --------------------------------------------------------------------------
def normalise(outcomes: Sequence[Outcome], ephemeral: tuple[int, int] = EPHEMERAL_RANGE,
              canonical: bool = False) -> list[Outcome]:
    """Replace ephemeral ports in socket addresses by EPH<n> placeholders.

    canonical: also rewrite each address's text as inet_ntop spells it (what
    the kernel side always does), so that one known formatting bug does not
    mask every other comparison in a scenario.
    """
    low, high = ephemeral
    names: dict[int, str] = {}

    def is_address(value: tuple[Any, ...]) -> bool:
        if len(value) not in (2, 4) or not isinstance(value[0], str):
            return False
        if not isinstance(value[1], int) or isinstance(value[1], bool):
            return False
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in value[0] else socket.AF_INET, value[0])
        except OSError:
            return False
        return True

    def walk(value: Any) -> Any:
        if isinstance(value, tuple):
            if is_address(value):
                text, port = value[0], value[1]
                if canonical:
                    family = socket.AF_INET6 if ":" in text else socket.AF_INET
                    text = socket.inet_ntop(family, socket.inet_pton(family, text))
                if low <= port <= high:
                    port = names.setdefault(port, f"EPH{len(names)}")
                return (text, port, *value[2:])
            return tuple(walk(v) for v in value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return [walk(o) for o in outcomes]


def require_root() -> None:
    """Kernel reference tests need root for `ip netns`; CI runs as root, so fail loudly."""
    from vnet.testing import netns  # not at the top: the first half runs as a bare script

    netns.require_root("the Linux reference tests must run as root: they create a network "
                       "namespace with `ip netns add` (CI runs them as root)")


class LinuxNamespace:
    """A throwaway network namespace shaped like vnet's test host, with no way out.

    Made, checked and deleted by the audited guard, `vnet.testing.netns.Namespace`.
    """

    def __init__(self, name: str | None = None,
                 ephemeral: tuple[int, int] = EPHEMERAL_RANGE) -> None:
        from vnet.testing import netns  # not at the top: the first half runs as a bare script

        self.name = name or f"vnet-udp-{os.getpid()}"
        self.ephemeral = ephemeral
        low, high = ephemeral
        self.namespace = netns.Namespace(self.name, sysctls=(
            "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
            f"net.ipv4.ip_local_port_range={low} {high}"))

    @property
    def created(self) -> bool:
        return self.namespace.created

    def _ip(self, *args: str) -> str:
        return self.namespace.ip(*args)

    def exec(self, *argv: str, input: str | None = None, timeout: float = 60) -> str:
        return self.namespace.run(*argv, input=input, timeout=timeout).stdout

    def sysctl(self, key: str) -> str:
        return self.exec("sysctl", "-n", key).strip()

    def create(self) -> None:
        self.namespace.create()
        # Both ends of the veth pair live in the namespace: eth0 carries the
        # addresses, peer0 none. Index 2 and vnet's first MAC, as on the virtual host.
        self.namespace.add_veth(IFNAME, "peer0", index=2, address=MAC, peer_index=3,
                                peer_address="02:00:00:00:00:02")
        self.namespace.sysctl("net.ipv6.conf.peer0.disable_ipv6=1")
        self.namespace.add_address(IFNAME, ADDR4)
        self.namespace.add_address(IFNAME, ADDR6)
        self.namespace.set_up("peer0", IFNAME)
        self.check_isolated()

    def check_isolated(self) -> None:
        """Refuse to run anything unless the namespace provably has no way out."""
        self.namespace.check_isolated([IFNAME, "peer0"], prefixes=(ADDR4, ADDR6))

    def delete(self) -> None:
        self.namespace.delete()

    def run(self, scenarios: dict[str, Sequence[Step]]) -> dict[str, list[Outcome]]:
        """Run every scenario with real sockets in one interpreter inside the namespace."""
        text = repr({name: _plain(list(steps)) for name, steps in scenarios.items()})
        out = self.exec(sys.executable, "-I", __file__, input=text, timeout=120)
        results: dict[str, list[Outcome]] = ast.literal_eval(out)
        return results


def _plain(value: Any) -> Any:
    """Steps as literals: socket's IntEnum constants become plain ints."""
    if isinstance(value, bool) or not isinstance(value, (int, tuple, list)):
        return value
    if isinstance(value, int):
        return int(value)
    return type(value)(_plain(v) for v in value)


@contextmanager
def linux_namespace(ephemeral: tuple[int, int] = EPHEMERAL_RANGE) -> Iterator[LinuxNamespace]:
    ns = LinuxNamespace(ephemeral=ephemeral)
    try:
        ns.create()
        yield ns
    finally:
        ns.delete()


class VirtualEnv(Env):
    """The same host on a vnet `Network` in virtual time: eth0 with ADDR4 and ADDR6."""

    def __init__(self, ephemeral: tuple[int, int] = EPHEMERAL_RANGE,
                 configure: Callable[[Any], None] | None = None) -> None:
        from vnet.network import Network

        super().__init__()
        self.net = Network(virtual_time=True, seed=1)
        lan = self.net.segment("lan")
        self.host = self.net.host("h")
        self.host.connect(lan, ADDR4, ADDR6, ifname=IFNAME)
        self.host.udp.ephemeral_range = ephemeral
        self.host.tcp.ephemeral_range = ephemeral
        if configure is not None:
            configure(self.host)

    def socket(self, family: int, type: int) -> Any:
        return self.host.socket(family, type)

    def sleep(self, seconds: float) -> None:
        self.net.run_for(seconds)

    def ifindex(self, name: str) -> int:
        return int(self.host.stack.interface(name).index)

    def disconnect(self, sock: Any) -> None:
        sock._core.disconnect()  # HostSocket has no AF_UNSPEC connect (nor does Python's)

    def set_port_range(self, low: int, high: int) -> None:
        self.host.udp.ephemeral_range = (low, high)  # one sysctl for both on Linux
        self.host.tcp.ephemeral_range = (low, high)

    def restore(self) -> None:
        pass  # every scenario gets a fresh network

    def close(self) -> None:
        self.net.close()


def run_virtual(steps: Sequence[Step], ephemeral: tuple[int, int] = EPHEMERAL_RANGE,
                configure: Callable[[Any], None] | None = None) -> list[Outcome]:
    env = VirtualEnv(ephemeral, configure)
    try:
        return run_steps(steps, env)
    finally:
        env.close()


if __name__ == "__main__":
    _main()
