"""Virtual networks for Python: hosts, segments, and a stdlib-like socket API.

    net = Network(virtual_time=True, seed=1)
    lan = net.segment("lan")
    a = net.host("a"); a.connect(lan, "10.0.0.1/24", "fd00::1/64")
    b = net.host("b"); b.connect(lan, "10.0.0.2/24", "fd00::2/64")
    cap = net.capture()                      # every NIC, one pcapng
    with b.socket(AF_INET, SOCK_DGRAM) as rx, a.socket(AF_INET, SOCK_DGRAM) as tx:
        rx.bind(("10.0.0.2", 9))
        tx.sendto(b"hi", ("10.0.0.2", 9))
        data, addr = rx.recvfrom(100)         # blocks: the network runs meanwhile

A `Host` is a `stack.host.HostStack` plus its NICs and, once `set_firewall`
is called, a `firewall.HostFirewall` on its hooks; what the resolver answers
a host is passed on to its firewall (and to every router's) for domain-name
rules. `HostSocket` has the
standard library's socket method names and semantics (blocking with optional
timeouts, OSError subclasses with Linux errno values) over the stack's
non-blocking sockets. A blocking call made from a scheduler task waits through
the scheduler; one made from any other thread (a test's main thread) runs the
scheduler's loop itself until it can return — so in virtual time a test
"sleeps" through simulated seconds instantly.

This module wires vnet pieces together; it builds no packets itself.
"""

from __future__ import annotations

import ipaddress
import socket as _socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from firewall import ConnTrack, HostFirewall, LogRecord, Ruleset
from stack.build import build_host
from stack.driver import StackDriver
from stack.host import HostStack
from stack.interface import InterfaceAddress
from stack.oserror import os_error
from stack.ping import IcmpEchoLayer
from stack.socket import Socket
from stack.tcp import TcpLayer
from stack.udp import AF_INET, AF_INET6, UdpLayer
from stack.wire import icmpv4, icmpv6
from vnet.link.capture import LINKTYPE_RAW, Capture, Direction
from vnet.link.impairment import Impairment
from vnet.link.nic import Nic
from vnet.link.segment import Segment

from .scheduler import GuestTask, Scheduler

AF_UNSPEC = _socket.AF_UNSPEC
SOCK_DGRAM = _socket.SOCK_DGRAM
SOCK_STREAM = _socket.SOCK_STREAM
IPPROTO_ICMP = _socket.IPPROTO_ICMP
IPPROTO_ICMPV6 = _socket.IPPROTO_ICMPV6

_current_task = threading.local()


class Network:
    """A whole virtual network on one scheduler."""

    def __init__(self, virtual_time: bool = False, seed: int = 0,
                 scheduler: Scheduler | None = None) -> None:
        self.scheduler = scheduler or Scheduler(virtual=virtual_time, seed=seed)
        self.seed = seed
        self.hosts: dict[str, Host] = {}
        self.segments: dict[str, Segment] = {}
        self.captures: list[Capture] = []
        self._mac_serial = 0

    @property
    def virtual(self) -> bool:
        return self.scheduler.virtual

    def segment(self, name: str, latency_ns: int = 0, snooping: bool = False) -> Segment:
        if name in self.segments:
            raise ValueError(f"segment {name!r} already exists")
        seg = Segment(self.scheduler, name, latency_ns, snooping)
        self.segments[name] = seg
        return seg

    def host(self, name: str, forwarding: bool = False) -> Host:
        if name in self.hosts:
            raise ValueError(f"host {name!r} already exists")
        host = Host(self, name, forwarding)
        self.hosts[name] = host
        return host

    def router(self, name: str) -> Host:
        return self.host(name, forwarding=True)

    def allocate_mac(self) -> bytes:
        """Locally administered, unicast, deterministic: 02:00:00:00:xx:xx."""
        self._mac_serial += 1
        return bytes((0x02, 0, 0, 0, self._mac_serial >> 8, self._mac_serial & 0xFF))

    def capture(self, path: str | Path | None = None) -> Capture:
        """Capture every NIC (now and later) to a pcapng file or to memory."""
        cap = Capture.to_file(path, clock=self.scheduler.realtime_ns) if path else (
            Capture.in_memory(clock=self.scheduler.realtime_ns))
        self.captures.append(cap)
        for host in self.hosts.values():
            for nic in host.nics.values():
                nic.capture(cap)
            host.log_firewall_to(cap)
        return cap

    # --- names -------------------------------------------------------------
    def resolve(self, name: str, asking: Host | None = None) -> list[bytes]:
        """The virtual resolver: addresses for a name, in getaddrinfo's preferred order.

        `localhost` gives the loopback addresses; an IP literal gives itself; a
        host of this network gives its non-loopback, non-link-local addresses,
        in the order glibc's getaddrinfo returns them with its default
        policy table (IPv6 first, ::1 before 127.0.0.1). Unknown names give an
        empty list.
        """
        key = name.strip().rstrip(".").lower()
        if key in ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"):
            return [bytes(15) + b"\x01", bytes((127, 0, 0, 1))]
        try:
            return [ipaddress.ip_address(key.split("%", 1)[0]).packed]
        except ValueError:
            pass
        host = self.hosts.get(key)
        if host is None and asking is not None and key == asking.name.lower():
            host = asking
        if host is None:
            return []
        found = [a.address for i in host.stack.interfaces.values() if not i.is_loopback
                 for a in i.addresses() if a.address[:2] != b"\xfe\x80"]

        answer = sorted(found, key=lambda a: len(a) == 4)  # stable: IPv6 first, as glibc
        if asking is not None:
            self.learn_resolution(key, answer, asking)
        return answer

    def learn_resolution(self, name: str, addresses: list[bytes], asking: Host) -> None:
        """Tell the firewalls what the resolver answered: the asking host's and the routers'."""
        now = self.scheduler.monotonic_ns()
        for host in self.hosts.values():
            if host.firewall is not None and (host is asking or host.stack.forwarding):
                host.firewall.learn(name, addresses, now)

    # --- running -----------------------------------------------------------
    def wait(self, ready: Callable[[], bool], timeout_s: float | None) -> bool:
        """Block until ready() (True) or the timeout (False), letting the network run."""
        sched = self.scheduler
        deadline = None if timeout_s is None else sched.monotonic_ns() + int(timeout_s * 1e9)
        task: GuestTask | None = getattr(_current_task, "task", None)
        if task is not None:
            if sched.virtual:  # one thread at a time: a blocked task must not hold the lock
                return sched.block(task, ready, deadline)
            with sched.lock:
                return sched.block(task, ready, deadline)
        if sched.virtual:
            if deadline is not None:
                sched.call_at(deadline, lambda: None)
            sched.run(until=lambda: ready() or (deadline is not None
                                                and sched.monotonic_ns() >= deadline))
            return ready()
        remaining = None if timeout_s is None else timeout_s
        sched.run(until=ready, timeout_s=remaining)
        return ready()

    def run_for(self, seconds: float) -> None:
        """Let the network run for a while (virtual or real seconds)."""
        if self.virtual:
            self.scheduler.run_for(int(seconds * 1e9))
        else:
            end = time.monotonic() + seconds
            self.scheduler.run(until=lambda: time.monotonic() >= end, timeout_s=seconds)

    def spawn(self, name: str, body: Callable[[], Any]) -> GuestTask:
        """Run Python code as a scheduler task (its blocking socket calls wait properly)."""

        def run(task: GuestTask) -> None:
            _current_task.task = task
            body()

        return self.scheduler.spawn(name, run)

    def close(self) -> None:
        for cap in self.captures:
            cap.close()
        self.scheduler.stop_all()


class Host:
    """A virtual host: its stack, its NICs, and a socket factory."""

    def __init__(self, network: Network, name: str, forwarding: bool = False) -> None:
        import random

        self.network = network
        self.name = name
        driver: StackDriver = network.scheduler
        built = build_host(driver, name, rng=random.Random(f"{network.seed}:{name}"),
                           forwarding=forwarding)
        self.stack: HostStack = built.stack
        assert built.udp is not None and built.tcp is not None and built.icmp is not None
        self.udp: UdpLayer = built.udp
        self.icmp: IcmpEchoLayer = built.icmp
        self.tcp: TcpLayer = built.tcp
        self.nics: dict[str, Nic] = {}
        self.firewall: HostFirewall | None = None

    def __repr__(self) -> str:
        return f"<Host {self.name}>"

    def connect(self, segment: Segment, *addresses: str, ifname: str | None = None,
                mac: bytes | None = None, mtu: int = 1500,
                tx_impairment: Impairment | None = None,
                rx_impairment: Impairment | None = None) -> Nic:
        """Give the host an Ethernet interface on `segment` with the given addresses.

        Impairments (loss, reordering, duplication, delay) apply to the frames
        this interface sends (`tx_impairment`) and receives (`rx_impairment`).
        """
        ifname = ifname or f"eth{len(self.nics)}"
        mac = mac or self.network.allocate_mac()
        sched = self.network.scheduler
        with sched.lock, sched.atomic():
            iface = self.stack.add_interface(ifname, mac, mtu)
            stack = self.stack
            nic = Nic(self.network.scheduler, f"{self.name}/{ifname}", mac,
                      lambda frame: stack.receive_frame(iface, frame), mtu, offload=True)
            iface.transmit = nic.transmit
            iface.offload = nic.offload  # super-frames between vnet hosts (stack.wire.gso)
            for cap in self.network.captures:
                nic.capture(cap)
            nic.attach(segment, tx_impairment=tx_impairment, rx_impairment=rx_impairment)
            self.nics[ifname] = nic
            for cidr in addresses:
                self.stack.add_address(ifname, cidr)
        return nic

    def add_address(self, ifname: str, cidr: str) -> InterfaceAddress:
        with self.network.scheduler.lock:
            return self.stack.add_address(ifname, cidr)

    def add_route(self, prefix: str, gateway: str | None = None, ifname: str | None = None,
                  metric: int = 0) -> None:
        with self.network.scheduler.lock:
            self.stack.add_route(prefix, gateway, ifname, metric)

    def set_firewall(self, rules: Ruleset | str | Path | None,
                     conntrack: ConnTrack | None = None) -> HostFirewall | None:
        """Filter this host's traffic: a Ruleset, rule text, or a rule file's Path (None: off).

        Packets the rules log go to every capture of the network, on an
        interface named HOST/firewall, with a comment naming the rule.
        """
        if isinstance(rules, Path):
            rules = Ruleset.load(rules)
        elif isinstance(rules, str):
            rules = Ruleset.parse(rules)
        with self.network.scheduler.lock:
            if self.firewall is not None:
                self.firewall.detach()
                self.firewall = None
            if rules is None:
                return None
            self.firewall = HostFirewall(rules, conntrack=conntrack, name=self.name)
            self.firewall.attach(self.stack)
            for cap in self.network.captures:
                self.log_firewall_to(cap)
            return self.firewall

    def log_firewall_to(self, cap: Capture) -> None:
        """Record the packets this host's firewall logs in `cap`, as commented packets."""
        if self.firewall is None:
            return
        name = f"{self.name}/firewall"
        clock = self.network.scheduler.realtime_ns
        directions = {"input": Direction.INBOUND, "output": Direction.OUTBOUND}

        def record(entry: LogRecord) -> None:
            cap.interface(name, LINKTYPE_RAW, clock=clock).record(
                entry.packet, directions.get(entry.hook), comment=entry.comment())

        self.firewall.log_sinks.append(record)

    @property
    def counters(self) -> Any:
        return self.stack.counters

    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0) -> HostSocket:
        """Like socket.socket(): AF_INET/AF_INET6, SOCK_STREAM (default) or SOCK_DGRAM."""
        return HostSocket(self, family, type, proto)

    def ping(self, address: str, count: int = 1, timeout: float = 1.0, size: int = 56,
             interval: float = 0.0) -> list[float | None]:
        """Echo requests like ping(8); returns each round-trip time in seconds or None."""
        family = AF_INET6 if ":" in address else AF_INET
        proto = IPPROTO_ICMPV6 if family == AF_INET6 else IPPROTO_ICMP
        results: list[float | None] = []
        sched = self.network.scheduler
        with self.socket(family, SOCK_DGRAM, proto) as sock:
            sock.settimeout(timeout)
            request_type = icmpv6.TYPE_ECHO_REQUEST if family == AF_INET6 else (
                icmpv4.TYPE_ECHO_REQUEST)
            for seq in range(1, count + 1):
                header = bytes((request_type, 0, 0, 0, 0, 0)) + seq.to_bytes(2, "big")
                sent = sched.monotonic_ns()
                sock.sendto(header + bytes(range(size % 256)) * (size // 256)
                            + bytes(range(size % 256)), (address, 0))
                rtt = None
                deadline = sent + int(timeout * 1e9)
                while sched.monotonic_ns() < deadline:
                    try:
                        data, _src = sock.recvfrom(65535)
                    except TimeoutError:
                        break
                    if int.from_bytes(data[6:8], "big") == seq:
                        rtt = (sched.monotonic_ns() - sent) / 1e9
                        break
                results.append(rtt)
                if interval and seq < count:
                    self.network.run_for(interval)
        return results


def _addr_bytes(host: Any, family: int, stack: HostStack | None = None) -> bytes:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        raise TypeError("address must be a str")
    if host == "":
        return bytes(4) if family == AF_INET else bytes(16)
    if host == "<broadcast>" and family == AF_INET:
        return b"\xff" * 4
    if host == "localhost":
        return bytes((127, 0, 0, 1)) if family == AF_INET else bytes(15) + b"\x01"
    if "%" in host:
        host = host.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known") from None
    if family == AF_INET:
        if ip.version != 4:
            raise _socket.gaierror(_socket.EAI_ADDRFAMILY,
                                   "Address family for hostname not supported")
        return ip.packed
    if ip.version == 4:
        raise _socket.gaierror(_socket.EAI_ADDRFAMILY,
                               "Address family for hostname not supported")
    return ip.packed


def _addr_text(addr: bytes) -> str:
    return _socket.inet_ntop(AF_INET if len(addr) == 4 else AF_INET6, addr)


class HostSocket:
    """A socket on a virtual host with the standard library's interface."""

    def __init__(self, host: Host, family: int, type: int, proto: int = 0) -> None:
        if family not in (AF_INET, AF_INET6):
            raise OSError(97, "Address family not supported by protocol")
        self.host = host
        self.family = family
        self.type = type
        self.proto = proto
        self._timeout: float | None = _socket.getdefaulttimeout()
        self._core: Socket
        with self._turn():
            if type == SOCK_STREAM and proto in (0, _socket.IPPROTO_TCP):
                self._core = host.tcp.socket(family)
            elif type == SOCK_DGRAM and proto in (0, _socket.IPPROTO_UDP):
                self._core = host.udp.socket(family)
            elif type == SOCK_DGRAM and proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
                self._core = host.icmp.socket(family)
            else:
                raise OSError(93, "Protocol not supported")

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """The network lock plus one atomic network turn (see Scheduler.atomic)."""
        sched = self.host.network.scheduler
        with sched.lock, sched.atomic():
            yield

    # --- stdlib surface ----------------------------------------------------
    def __enter__(self) -> HostSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<HostSocket {self.host.name} family={self.family} type={self.type}>"

    def fileno(self) -> int:
        return -1

    def settimeout(self, value: float | None) -> None:
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def _to_wire(self, address: Any) -> tuple[bytes, int]:
        if not isinstance(address, tuple) or len(address) < 2:
            raise TypeError(f"{'AF_INET' if self.family == AF_INET else 'AF_INET6'} address "
                            "must be a tuple (host, port)")
        host, port = address[0], address[1]
        if not isinstance(port, int):
            raise TypeError("'port' must be an integer")
        if not 0 <= port <= 0xFFFF:
            raise OverflowError("port must be 0-65535.")
        return _addr_bytes(host, self.family), port

    def _from_wire(self, addr: bytes, port: int) -> tuple[Any, ...]:
        if self.family == AF_INET:
            return (_addr_text(addr), port)
        return (_addr_text(addr), port, 0, 0)

    def bind(self, address: Any) -> None:
        addr, port = self._to_wire(address)
        with self._turn():
            self._core.bind(addr, port)

    @classmethod
    def _wrap(cls, host: Host, core: Socket) -> HostSocket:
        sock = cls.__new__(cls)
        sock.host = host
        sock.family = core.family
        sock.type = core.type
        sock.proto = 0
        sock._timeout = _socket.getdefaulttimeout()
        sock._core = core
        return sock

    def connect(self, address: Any) -> None:
        addr, port = self._to_wire(address)
        core = self._core
        with self._turn():
            core.connect(addr, port)
        if core.type != SOCK_STREAM:
            return  # a datagram socket's connect() only sets its peer
        if self._timeout == 0.0:
            raise BlockingIOError(115, "Operation now in progress")
        if not self.host.network.wait(lambda: core.connect_result() is not None, self._timeout):
            raise TimeoutError("timed out")
        with self._turn():
            result = core.connect_result()
        if result:
            raise os_error(result)

    def listen(self, backlog: int = 128) -> None:
        with self._turn():
            self._core.listen(backlog)  # EOPNOTSUPP on a datagram socket

    def accept(self) -> tuple[HostSocket, tuple[Any, ...]]:
        core = self._core
        while True:
            with self._turn():
                try:
                    child: Socket | None = core.accept()  # EOPNOTSUPP on a datagram socket
                except BlockingIOError:
                    child = None
                if child is not None:
                    peer = child.getpeername()
                    return HostSocket._wrap(self.host, child), self._from_wire(*peer)
            self._wait(core.readable, "accept")

    def connect_ex(self, address: Any) -> int:
        try:
            self.connect(address)
        except OSError as e:
            return e.errno or 1
        return 0

    def getsockname(self) -> tuple[Any, ...]:
        with self._turn():
            addr, port = self._core.getsockname()
            return self._from_wire(addr, port)

    def getpeername(self) -> tuple[Any, ...]:
        with self._turn():
            addr, port = self._core.getpeername()
            return self._from_wire(addr, port)

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        timeout = self._timeout
        if timeout == 0.0:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        if not self.host.network.wait(ready, timeout):
            raise TimeoutError("timed out")

    def sendto(self, data: bytes, *args: Any) -> int:
        if len(args) == 1:
            address = args[0]
        elif len(args) == 2:
            address = args[1]
        else:
            raise TypeError("sendto() takes 2 or 3 arguments")
        if self.type == SOCK_STREAM:
            return self.send(data)  # a stream ignores the address, as Linux does
        addr, port = self._to_wire(address)
        with self._turn():
            return self._core.sendto(memoryview(data), addr, port)

    def send(self, data: bytes, flags: int = 0) -> int:
        core = self._core
        if self.type != SOCK_STREAM:
            with self._turn():
                return core.send(memoryview(data))  # a datagram goes whole or fails
        while True:  # a stream waits for room
            with self._turn():
                try:
                    return core.send(memoryview(data))
                except BlockingIOError:
                    pass
            self._wait(core.writable, "send")

    def sendall(self, data: bytes, flags: int = 0) -> None:
        view = memoryview(data)
        while view:
            sent = self.send(view, flags)  # type: ignore[arg-type]
            view = view[sent:]

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, tuple[Any, ...]]:
        peek = bool(flags & _socket.MSG_PEEK)
        while True:
            with self._turn():
                core = self._core
                try:
                    if self.type == SOCK_STREAM:
                        return core.recv(bufsize, peek), ()  # a stream has no source address
                    data, src, port, _trunc = core.recvfrom(bufsize, peek)
                    return data, self._from_wire(src, port)
                except BlockingIOError:
                    pass
            self._wait(core.readable, "recv")

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = self.recvfrom(bufsize, flags)[0]
        if flags & _socket.MSG_WAITALL and self.type == SOCK_STREAM:
            chunks = [data]
            got = len(data)
            while data and got < bufsize:
                data = self.recvfrom(bufsize - got, flags & ~_socket.MSG_WAITALL)[0]
                chunks.append(data)
                got += len(data)
            return b"".join(chunks)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        data = self.recv(nbytes or len(buffer), flags)
        buffer[: len(data)] = data
        return len(data)

    def setsockopt(self, level: int, optname: int, value: int | bytes) -> None:
        with self._turn():
            self._core.setsockopt(level, optname, value)

    def getsockopt(self, level: int, optname: int, buflen: int = 0) -> int | bytes:
        with self._turn():
            value = self._core.getsockopt(level, optname)
        if isinstance(value, bytes):
            if buflen:
                return value[:buflen]
            return int.from_bytes(value[:4].ljust(4, b"\0"), "little", signed=True)
        if buflen:
            return value.to_bytes(4, "little", signed=True)[:buflen]
        return value

    def shutdown(self, how: int) -> None:
        with self._turn():
            self._core.shutdown(how)

    def close(self) -> None:
        with self._turn():
            self._core.close()
