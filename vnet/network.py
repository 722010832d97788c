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

Guests run from Python too: `host.run("server.wasm", "7000")` starts a wasm
guest on the host and returns a `GuestProcess` (like `subprocess.Popen`:
`wait(timeout)`, `exit_code`, `stdout_lines`, `kill()`), and
`Network.from_topology("examples/demo.toml")` builds a topology file's hosts,
segments, routes and firewalls into these same objects (its guests start with
`net.start_guests()`).

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

Python programs run on a host too: `with host.sockets():` makes this
thread's standard `socket` module create sockets on the host and resolve
the network's host names (see `vnet.host_sockets`), so `http.client`,
`urllib.request`, `socketserver` and `smtplib` work unchanged;
`host.spawn(name, fn)` runs such code as a scheduler task (a server), and
`vnet.aio` is an asyncio event loop on a host, in the network's time.

This module wires vnet pieces together; it builds no packets itself.
"""

from __future__ import annotations

import errno
import functools
import io
import ipaddress
import itertools
import os
import socket as _socket
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firewall import ConnTrack, HostFirewall, LogRecord, Ruleset
from firewall.nat_router import NatBehaviour, NatRouter, nat_behaviour
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
from vnet.link.segment import Cable, Segment
from vnet.units import parse_duration_ns, parse_rate_bps, parse_size_bytes

from .scheduler import DEFAULT_SCHEDULE, GuestTask, Scheduler, Timer

if TYPE_CHECKING:
    from vnet.guest.context import GuestLimits
    from vnet.guest.runtime import Guest
    from vnet.sim.topology import Topology

AF_UNSPEC = _socket.AF_UNSPEC
SOCK_DGRAM = _socket.SOCK_DGRAM
SOCK_STREAM = _socket.SOCK_STREAM
IPPROTO_ICMP = _socket.IPPROTO_ICMP
IPPROTO_ICMPV6 = _socket.IPPROTO_ICMPV6

_current_task = threading.local()


class Unreachable(AssertionError):
    """`Network.ping_all` found hosts that cannot reach others: `pairs` lists
    (from host, to host, address) for each unanswered ping."""

    def __init__(self, pairs: list[tuple[str, str, str]]) -> None:
        self.pairs = pairs
        listed = "; ".join(f"{a} cannot reach {b} at {address}" for a, b, address in pairs)
        super().__init__(f"{len(pairs)} unanswered: {listed}")


class Network:
    """A whole virtual network on one scheduler (`with Network() as net:` closes it)."""

    #: The topology file's contents, for a network built by `from_topology`.
    topology: Topology | None = None

    def __init__(self, virtual_time: bool = False, seed: int = 0,
                 scheduler: Scheduler | None = None,
                 schedule: str = DEFAULT_SCHEDULE, cpus: str | None = None) -> None:
        # schedule (virtual time): "explore" (the default: the seed orders guests runnable
        # at the same instant) or "fifo" (first in, first out); vnet.scheduler, "Schedules".
        # cpus: "one" (the default: the network's threads share one CPU), "all" or a CPU
        # number; None reads VNET_CPUS (vnet.cpu_placement)
        self.scheduler = scheduler or Scheduler(virtual=virtual_time, seed=seed,
                                                schedule=schedule, cpus=cpus)
        self.seed = seed
        self.hosts: dict[str, Host] = {}
        self.segments: dict[str, Segment] = {}
        self.captures: list[Capture] = []
        self._mac_serial = 0
        #: Every guest `Host.run` started, in order.
        self.processes: list[GuestProcess] = []
        #: The per-NIC pcapng files `from_topology(..., pcap_dir=)` writes.
        self.pcaps: list[Path] = []
        self._nic_captures: list[Capture] = []
        self._segment_captures: list[Capture] = []

    @property
    def virtual(self) -> bool:
        return self.scheduler.virtual

    def segment(self, name: str, latency_ns: int = 0, snooping: bool = False, *,
                latency: str | float | None = None) -> Segment:
        """A switch; `latency` in units as in topology files ("1ms"), or `latency_ns`."""
        if name in self.segments:
            raise ValueError(f"segment {name!r} already exists")
        if latency is not None:
            latency_ns = parse_duration_ns(latency)
        seg = Segment(self.scheduler, name, latency_ns, snooping)
        self.segments[name] = seg
        for cap in self._segment_captures:
            seg.capture(cap)
        return seg

    def host(self, name: str, forwarding: bool = False) -> Host:
        if name in self.hosts:
            raise ValueError(f"host {name!r} already exists")
        host = Host(self, name, forwarding)
        self.hosts[name] = host
        return host

    def router(self, name: str, *, nat: str | NatBehaviour | None = None,
               nat_interface: str | None = None) -> Host:
        """A host that forwards. With `nat` (a preset: "full-cone", "restricted-cone",
        "port-restricted-cone", "symmetric"; or a NatBehaviour) the IPv4 traffic
        leaving `nat_interface` (default "eth1": the second interface connected, the
        first being the inside) is translated from the moment that interface is
        connected, as `host.nat(nat_interface, nat)` would."""
        router = self.host(name, forwarding=True)
        if nat is not None:
            router._pending_nat = (nat, nat_interface or "eth1")
        return router

    # --- links and whole-network checks (units as in topology files: vnet.units) --------
    def cable(self, name: str, latency: str | float | int = 0) -> Cable:
        """A point-to-point link (two ends); `latency` like "5ms" (a number: seconds)."""
        if name in self.segments:
            raise ValueError(f"segment or cable {name!r} already exists")
        cable = Cable(self.scheduler, name, parse_duration_ns(latency))
        self.segments[name] = cable
        for cap in self._segment_captures:
            cable.capture(cap)
        return cable

    def link(self, a: Host, b: Host, a_addresses: str | Sequence[str] = (),
             b_addresses: str | Sequence[str] = (), *, delay: str | float = 0,
             bandwidth: str | int | None = None, jitter: str | float = 0,
             loss: float = 0.0, reorder: float = 0.0, duplicate: float = 0.0,
             queue: int | str | None = None, name: str | None = None) -> Cable:
        """Join two hosts with a cable: a new NIC on each, with these addresses.

        `delay` is one-way ("5ms"), `bandwidth` each way ("10Mbit"), `jitter`
        (uniform +-, on the way out of each NIC), `loss` / `reorder` / `duplicate`
        probabilities on each NIC both ways, `queue` the rate queue's limit in packets
        (100) or bytes ("64KB"): the keys and units of a topology file's `[cables]`.
        """
        from vnet.sim.topology import LinkShape

        name = name or f"{a.name}-{b.name}"
        cable = self.cable(name, delay)
        shape = LinkShape(loss or None, reorder or None, duplicate or None, None,
                          parse_duration_ns(jitter) or None,
                          parse_rate_bps(bandwidth) if bandwidth is not None else None)
        if queue is not None:
            if bandwidth is None:
                raise ValueError("queue needs a bandwidth beside it")
            if isinstance(queue, int):
                shape.queue_packets = queue
            else:
                shape.queue_bytes = parse_size_bytes(queue)
        for host, addresses in ((a, a_addresses), (b, b_addresses)):
            listed = [addresses] if isinstance(addresses, str) else list(addresses)
            ifname = f"eth{len(host.nics)}"
            seed = zlib.crc32(f"{self.seed}:{host.name}:{ifname}:{name}".encode())
            host.connect(cable, *listed, ifname=ifname,
                         tx_impairment=shape.impairment(seed, "tx", cable=True),
                         rx_impairment=shape.impairment(seed + 1, "rx", cable=True))
        return cable

    def ping_all(self, timeout: float = 1.0, family: int | None = None) -> dict[
            tuple[str, str], float]:
        """Ping every other host's every address (IPv4 and IPv6, not link-local) from
        every host; returns {(from, address): round trip seconds}. Raises
        `Unreachable` listing who cannot reach whom when any ping is unanswered."""
        answered: dict[tuple[str, str], float] = {}
        failed: list[tuple[str, str, str]] = []
        for source in self.hosts.values():
            for target in self.hosts.values():
                if target is source:
                    continue
                for address in target.addresses():
                    version = 6 if ":" in address else 4
                    if family is not None and family != (
                            AF_INET6 if version == 6 else AF_INET):
                        continue
                    try:
                        rtt = source.ping(address, timeout=timeout)[0]
                    except OSError:  # no route: unreachable as well
                        rtt = None
                    if rtt is None:
                        failed.append((source.name, target.name, address))
                    else:
                        answered[(source.name, address)] = rtt
        if failed:
            raise Unreachable(failed)
        return answered

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def dns(self, host: Host | str, records: Sequence[Any] = (), policy: Any = None,
            ttl: int = 60, clients: Sequence[Host | str] | None = None,
            forward: Sequence[str] = ()) -> Any:
        """A DNS server on `host` (see `Host.serve_dns`); `clients` get it as their resolver.

        Each client's resolver is the server's first address on a network the
        client shares with it (else its first address).
        """
        server_host = self.hosts[host] if isinstance(host, str) else host
        server = server_host.serve_dns(records, policy, ttl, forward=forward)
        for client in clients or ():
            other = self.hosts[client] if isinstance(client, str) else client
            other.set_resolvers([_reachable_address(server_host, other)])
        return server

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

    def capture_segments(self, path: str | Path | None = None) -> Capture:
        """Capture every segment (now and later) to one pcapng, as ``segment/NAME``.

        Each frame appears once, as the switch forwards it (`capture()` records
        every NIC, so a frame shows twice: sent and received) — the capture
        to open in Wireshark, whose TCP analysis then sees no false
        retransmissions. A frame a NIC's impairment drops before the switch
        is not in it.
        """
        cap = Capture.to_file(path, clock=self.scheduler.realtime_ns) if path else (
            Capture.in_memory(clock=self.scheduler.realtime_ns))
        self._segment_captures.append(cap)
        for seg in self.segments.values():
            seg.capture(cap)
        return cap

    def close(self) -> None:
        for cap in self.captures:
            cap.close()
        self.scheduler.stop_all()
        for cap in [*self._nic_captures, *self._segment_captures]:
            cap.close()

    # --- topology files ------------------------------------------------------
    @classmethod
    def from_topology(cls, path: str | os.PathLike[str], *, seed: int | None = None,
                      virtual_time: bool | None = None,
                      pcap_dir: str | os.PathLike[str] | None = None,
                      schedule: str | None = None) -> Network:
        """The network a topology file describes (see `vnet.sim.topology`), not yet running.

        Hosts, segments (latency, loss, snooping), addresses, routes and
        firewalls are built exactly as `vnet sim` builds them; `seed`,
        `virtual_time` and `schedule` default to the file's `[sim]` values (the
        schedule, else "explore"; "fifo" opts out). With `pcap_dir`
        every NIC writes `DIR/HOST-NIC.pcapng` (`net.pcaps`), as
        `vnet sim --pcap-dir`. The file's guests start with `start_guests()`.
        Raises `vnet.sim.topology.TopologyError` for a bad file.
        """
        from vnet.sim import runner, topology

        spec = topology.load(Path(path))
        virtual = spec.virtual_time if virtual_time is None else virtual_time
        net, _hosts, captures, pcaps = runner.build(
            spec, virtual, spec.seed if seed is None else seed,
            Path(pcap_dir) if pcap_dir is not None else None,
            schedule=schedule or spec.schedule or DEFAULT_SCHEDULE)
        net.topology = spec
        net.pcaps = pcaps
        net._nic_captures = captures
        return net

    def start_guests(self) -> dict[str, GuestProcess]:
        """Start the topology file's guests, each after its start delay: {"host/guest": process}.

        Each guest gets its name as argv[0], its args, env, dirs and
        tcplisten sockets, as `vnet sim` starts it.
        """
        if self.topology is None:
            raise ValueError("start_guests() needs a network built by Network.from_topology")
        started: dict[str, GuestProcess] = {}
        for hspec in self.topology.hosts.values():
            host = self.hosts[hspec.name]
            for gspec in hspec.guests:
                started[f"{hspec.name}/{gspec.name}"] = host.run(
                    gspec.module, *gspec.args, argv0=gspec.name, env=dict(gspec.env),
                    dirs=[f"{real}::{seen}" for real, seen in gspec.dirs],
                    tcplisten=gspec.tcplisten, delay=gspec.start_ns / 1e9, name=gspec.name,
                    devices=gspec.devices)
        return started


class Host:
    """A virtual host: its stack, its NICs, and a socket factory."""

    def __init__(self, network: Network, name: str, forwarding: bool = False) -> None:
        import random

        self.network = network
        self.name = name
        driver: StackDriver = network.scheduler.driver_for(self)  # wakes only this host's tasks
        built = build_host(driver, name, rng=random.Random(f"{network.seed}:{name}"),
                           forwarding=forwarding)
        self.stack: HostStack = built.stack
        assert built.udp is not None and built.tcp is not None and built.icmp is not None
        self.udp: UdpLayer = built.udp
        self.icmp: IcmpEchoLayer = built.icmp
        self.tcp: TcpLayer = built.tcp
        self.nics: dict[str, Nic] = {}
        self.firewall: HostFirewall | None = None
        #: `Network.router(nat=...)`: (behaviour, outside interface) until it is connected.
        self._pending_nat: tuple[str | NatBehaviour, str] | None = None

    def __repr__(self) -> str:
        return f"<Host {self.name}>"

    def addresses(self) -> list[str]:
        """Its addresses (not loopback, not link-local), IPv4 first, as text."""
        found = [a.address for i in self.stack.interfaces.values() if not i.is_loopback
                 for a in i.addresses() if a.address[:2] != b"\xfe\x80"]
        return [_addr_text(a) for a in sorted(found, key=len)]

    # --- router services: RA, DHCP (stack.ra_sender, stack.dhcp) ---------------------
    def advertise(self, ifname: str, prefixes: Sequence[str] | None = None, *,
                  interval: str | float = 600, lifetime: int = 1800,
                  mtu: int | None = None, rdnss: Sequence[str] = (),
                  rdnss_lifetime: int | None = None, managed: bool = False,
                  other: bool = False, valid: int = 86400, preferred: int = 14400,
                  autonomous: bool = True, on_link: bool = True) -> None:
        """Send router advertisements on an interface: periodically (at most `interval`
        apart) and in answer to solicitations, with `prefixes` (default: the
        interface's global IPv6 prefixes), the MTU option (default the
        interface's; 0: none) and RDNSS resolvers (RFC 8106)."""
        from stack.ra_sender import RaConfig
        from stack.wire import ndp

        with self.network.scheduler.lock:
            iface = self.stack.interface(ifname)
            if prefixes is None:
                prefixes = [str(ipaddress.ip_interface(f"{_addr_text(a.address)}/"
                                                       f"{a.prefix_len}").network)
                            for a in iface.ipv6 if a.address[:2] != b"\xfe\x80"]
            infos = tuple(ndp.PrefixInfo(n.prefixlen, n.network_address.packed, on_link,
                                         autonomous, valid, preferred)
                          for n in (ipaddress.IPv6Network(p) for p in prefixes))
            config = RaConfig(infos, parse_duration_ns(interval), lifetime,
                              iface.mtu if mtu is None else mtu,
                              tuple(ipaddress.IPv6Address(r).packed for r in rdnss),
                              rdnss_lifetime, managed, other)
            self.stack.router_adverts.advertise(ifname, config)

    def _dhcp(self) -> Any:
        from stack.dhcp import DhcpLayer

        layer = getattr(self, "_dhcp_layer", None)
        if layer is None:
            layer = self._dhcp_layer = DhcpLayer(self.stack)
        return layer

    def dhcp_server(self, ifname: str, first: str, last: str, *, lease: str | float = 3600,
                    router: str | None = None, dns: Sequence[str] = (),
                    fixed: Mapping[str, str] | None = None) -> Any:
        """Serve DHCPv4 on an interface: leases of `first`..`last` for `lease` ("1h"),
        with the subnet mask of the interface's address, `router` (default that
        address; "" for none) and `dns` resolvers; `fixed` maps a MAC
        ("02:00:..") or a host name to an address. Returns the
        `stack.dhcp_server.DhcpServer` (its `leases(now)`, `counters`)."""
        from stack.dhcp_server import DhcpServer

        with self.network.scheduler.lock:
            iface = self.stack.interface(ifname)
            if not iface.ipv4:
                raise ValueError(f"{self.name}/{ifname} needs an IPv4 address to serve DHCP")
            own = iface.ipv4[0]
            routers = () if router == "" else (
                ipaddress.IPv4Address(router).packed if router else own.address,)
            fixed_map: dict[bytes | str, bytes] = {}
            for who, address in (fixed or {}).items():
                key: bytes | str = bytes.fromhex(who.replace(":", "")) if ":" in who else (
                    who.lower())
                fixed_map[key] = ipaddress.IPv4Address(address).packed
            server = DhcpServer(own.address, own.prefix_len,
                                ipaddress.IPv4Address(first).packed,
                                ipaddress.IPv4Address(last).packed,
                                parse_duration_ns(lease) // 1_000_000_000, routers,
                                tuple(ipaddress.IPv4Address(d).packed for d in dns), fixed_map)
            self._dhcp().serve(ifname, server)
        return server

    def mroute(self, group: str, from_interface: str, to_interfaces: Sequence[str]) -> None:
        """Forward multicast `group` arriving on `from_interface` out of `to_interfaces`
        (TTL decremented; static, no PIM): `stack.multicast_routing`."""
        from stack.multicast_routing import MulticastRoutes

        with self.network.scheduler.lock, self.network.scheduler.atomic():
            if self.stack.multicast_routes is None:
                self.stack.multicast_routes = MulticastRoutes(self.stack)
            self.stack.multicast_routes.add(ipaddress.ip_address(group).packed, from_interface,
                                            list(to_interfaces))

    def dhcp_client(self, ifname: str = "eth0") -> Any:
        """Configure an interface by DHCP (address, default route, resolvers in
        `stack.dns_servers`); returns the `stack.dhcp_client.DhcpClient` (its
        `state`, `lease`)."""
        with self.network.scheduler.lock, self.network.scheduler.atomic():
            return self._dhcp().start_client(ifname)

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
                      functools.partial(stack.receive_frame, iface), mtu, offload=True)
            iface.transmit = nic.transmit
            iface.offload = nic.offload  # super-frames between vnet hosts (stack.wire.gso)
            for cap in self.network.captures:
                nic.capture(cap)
            nic.attach(segment, tx_impairment=tx_impairment, rx_impairment=rx_impairment)
            self.nics[ifname] = nic
            for cidr in addresses:
                self.stack.add_address(ifname, cidr)
        if self._pending_nat is not None and self._pending_nat[1] == ifname:
            behaviour, _ = self._pending_nat
            self._pending_nat = None
            self.nat(ifname, behaviour)
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
            firewall = HostFirewall(rules, conntrack=conntrack, name=self.name)
            firewall.attach(self.stack)  # may refuse (e.g. nat chains beside Host.nat)
            self.firewall = firewall
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

    def nat(self, out_interface: str, behaviour: str | NatBehaviour = "port-restricted-cone",
            pool: list[str] | None = None, nptv6: tuple[str, str] | None = None,
            **options: Any) -> NatRouter:
        """NAT the IPv4 traffic leaving `out_interface` (a `firewall.nat_router.NatRouter`).

        `behaviour` is a preset (`full-cone`, `restricted-cone`, `port-restricted-cone`,
        `symmetric`) or a `NatBehaviour`; `options` change its fields (`hairpin=False`,
        `ports="random"`, `port_parity=True`, `pairing=False`, `udp_timeout_s=...`).
        `pool` lists the external addresses (default: the interface's IPv4
        addresses); one the interface lacks is added to it as a /32. `nptv6=(inside
        prefix, outside prefix)` also translates IPv6 prefixes (RFC 6296).
        """
        import random

        chosen = nat_behaviour(behaviour, **options)
        with self.network.scheduler.lock:
            iface = self.stack.interface(out_interface)
            if pool is None:
                addresses = [a.address for a in iface.ipv4]
            else:
                addresses = [ipaddress.IPv4Address(a).packed for a in pool]
                for address in addresses:
                    if not iface.has_address(address):
                        self.stack.add_address(out_interface,
                                               f"{ipaddress.IPv4Address(address)}/32")
            translator = NatRouter(chosen, addresses, nptv6=nptv6, rng=random.Random(
                f"{self.network.seed}:{self.name}:nat:{out_interface}"))
            translator.attach(self.stack, out_interface)
        return translator

    @property
    def counters(self) -> Any:
        return self.stack.counters

    def run(self, module: str | os.PathLike[str], *args: str,
            env: Mapping[str, str] | None = None,
            dirs: Mapping[str, str | os.PathLike[str]] | Sequence[str] | None = None,
            stdin: bytes = b"", tcplisten: Sequence[tuple[str, int]] = (),
            limits: GuestLimits | None = None, name: str | None = None,
            argv0: str | None = None, delay: float = 0.0,
            devices: Sequence[Any] = ()) -> GuestProcess:
        """Start a wasm guest on this host; returns its `GuestProcess` at once.

        `args` follow argv[0] (`argv0`, default the module's file stem).
        `dirs` preopens directories: a mapping {guest path: host directory}
        or strings "HOST[::GUEST]" as `vnet run --dir`. `tcplisten` hands
        the guest listening sockets as fds 3, 4, ... (`[("0.0.0.0", 7000)]`).
        The guest starts after `delay` seconds (virtual in virtual time) and
        runs whenever the network runs: in `process.wait()`, a blocking
        socket call, `net.run_for()`. `devices` grants TUN/TAP devices
        (`vnet.link.guest_tun.GuestDeviceGrant`, or "NAME[:tun|tap][=CIDR,...]"
        as `vnet run --guest-tun`), which the guest creates through /dev/net/tun.
        """
        from vnet.guest.runtime import Guest, GuestConfig, load_module

        path = Path(module)
        preopens: list[tuple[str, str]] = []
        if isinstance(dirs, Mapping):
            preopens = [(os.fspath(real), seen) for seen, real in dirs.items()]
        elif dirs is not None:
            for item in dirs:
                real, sep, seen = str(item).partition("::")
                preopens.append((real, seen if sep else real))
        program = argv0 or path.stem
        label = f"{self.name}/{name or program}"
        process = GuestProcess(self, label)
        config = GuestConfig(module=str(path), args=[program, *args],
                             env=[(str(k), str(v)) for k, v in (env or {}).items()],
                             preopens=preopens, stdin=stdin, stdout=process._out.extend,
                             stderr=process._err.extend, name=label, host=self,
                             tcplisten=list(tcplisten), devices=_device_grants(devices))
        if limits is not None:
            config.limits = limits
        process.guest = Guest(self.network.scheduler, config, load_module(path))
        sched = self.network.scheduler
        if delay > 0:
            with sched.lock:
                process._start_timer = sched.call_at(sched.monotonic_ns() + int(delay * 1e9),
                                                     process.guest.start)
        else:
            process.guest.start()
        self.network.processes.append(process)
        return process

    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0) -> HostSocket:
        """Like socket.socket(): AF_INET/AF_INET6, SOCK_STREAM (default) or SOCK_DGRAM."""
        return HostSocket(self, family, type, proto)

    # --- the socket module's functions, as this host sees the network ------------
    def getaddrinfo(self, host: str | bytes | None, port: str | int | bytes | None,
                    family: int = 0, type: int = 0, proto: int = 0,
                    flags: int = 0) -> list[tuple[Any, Any, int, str, tuple[Any, ...]]]:
        """socket.getaddrinfo() through the network's resolver (host names of the topology)."""
        return _getaddrinfo(self, host, port, family, type, proto, flags)

    def gethostname(self) -> str:
        return self.name

    def gethostbyname(self, name: str) -> str:
        """The first IPv4 address of `name` (socket.gaierror if it has none)."""
        return self.gethostbyname_ex(name)[2][0]

    def gethostbyname_ex(self, name: str) -> tuple[str, list[str], list[str]]:
        found = [a for a in self.network.resolve(name, asking=self) if len(a) == 4]
        if not found:
            raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
        return name, [], [_addr_text(a) for a in found]

    def gethostbyaddr(self, address: str) -> tuple[str, list[str], list[str]]:
        """The host name of an address (or of a name) of this network; socket.herror if none."""
        addresses = self.network.resolve(address, asking=self)
        for other in self.network.hosts.values():
            with self.network.scheduler.lock:
                if any(i.has_address(a) for i in other.stack.interfaces.values()
                       if not i.is_loopback for a in addresses):
                    mine = self.network.resolve(other.name)
                    return other.name, [], [_addr_text(a) for a in mine]
        if addresses and addresses[0] in (bytes(15) + b"\x01", bytes((127, 0, 0, 1))):
            return "localhost", [], [_addr_text(addresses[0])]
        raise _socket.herror(1, "Unknown host")

    def getfqdn(self, name: str = "") -> str:
        name = name.strip()
        if not name or name in ("0.0.0.0", "::"):
            return self.name
        try:
            return self.gethostbyaddr(name)[0]
        except OSError:
            return name

    def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        """socket.getnameinfo(): numeric unless NI_NUMERICHOST is unset and the address is known."""
        host, port = sockaddr[0], sockaddr[1]
        text = _addr_text(_addr_bytes(host, AF_INET6 if ":" in str(host) else AF_INET))
        if not flags & _socket.NI_NUMERICHOST:
            try:
                text = self.gethostbyaddr(text)[0]
            except OSError:
                if flags & _socket.NI_NAMEREQD:
                    raise _socket.gaierror(_socket.EAI_NONAME,
                                           "Name or service not known") from None
        service = str(port)
        if not flags & _socket.NI_NUMERICSERV:
            try:
                service = _socket.getservbyport(port, "udp" if flags & _socket.NI_DGRAM else "tcp")
            except OSError:
                pass
        return text, service

    def create_connection(self, address: tuple[str, int],
                          timeout: object = _socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                          source_address: tuple[str, int] | None = None) -> HostSocket:
        """socket.create_connection() on this host: each address of the name in turn."""
        host, port = address
        error: OSError | None = None
        for family, kind, proto, _canon, sockaddr in self.getaddrinfo(host, port, 0, SOCK_STREAM):
            sock = HostSocket(self, family, kind, proto)
            try:
                if timeout is not _socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                    sock.settimeout(timeout)  # type: ignore[arg-type]
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as e:
                error = e
                sock.close()
        if error is not None:
            raise error
        raise OSError("getaddrinfo returns an empty list")

    def create_server(self, address: tuple[str, int], *, family: int = AF_INET,
                      backlog: int | None = None, reuse_port: bool = False,
                      dualstack_ipv6: bool = False) -> HostSocket:
        """socket.create_server() on this host: bound and listening."""
        if reuse_port:
            raise ValueError("SO_REUSEPORT not supported on this platform")
        if dualstack_ipv6:
            raise ValueError("dualstack_ipv6 not supported on this platform")
        sock = HostSocket(self, family, SOCK_STREAM)
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(backlog if backlog is not None else 128)
        except OSError:
            sock.close()
            raise
        return sock

    def sockets(self) -> Any:
        """A context manager: inside it, this thread's `socket` module is this host's.

        `socket.socket()`, `socket.create_connection()`, `getaddrinfo()` and
        the other name functions, `select.select`/`select.poll` and the
        `selectors` poll/epoll selectors then create, resolve and wait on
        this host, so unmodified stdlib clients and servers run on it. Only
        the thread that entered the block is redirected (see
        `vnet.host_sockets`); everything is restored when the block ends,
        also on an exception.
        """
        from vnet.host_sockets import redirect

        return redirect(self)

    def spawn(self, name: str, body: Callable[[], Any]) -> GuestTask:
        """Run Python code as a scheduler task of this network, inside `self.sockets()`.

        The task runs like a guest: in virtual time only while the network
        runs (a blocking call elsewhere, `net.run_for`), its blocking socket
        calls and `select`/`poll` waits waiting in virtual time; a
        `socketserver` server's `serve_forever` runs this way.
        """
        def body_on_host() -> None:
            with self.sockets():
                body()

        return self.network.spawn(f"{self.name}/{name}", body_on_host)

    # --- DNS (vnet.dns) ---------------------------------------------------------------
    def serve_dns(self, records: Sequence[Any] = (), policy: Any = None, ttl: int = 60,
                  port: int = 53, forward: Sequence[str] = ()) -> Any:
        """Run a DNS server on this host (UDP and TCP `port`); returns its `DnsServer`.

        It answers the network's host names (A/AAAA, PTR), `records`
        (`{"name", "type", "value", "ttl"}` tables or `vnet.dns.StaticRecord`s:
        A, AAAA, CNAME, TXT, SRV, MX, PTR, NS) and applies `policy` (tables
        `{"clients": [...], "deny" or "allow": [names], "action": "refuse" |
        "nxdomain"}`), as `vnet.dns.zone` describes; recursive queries for other
        names go to the `forward` servers (addresses), if any. ValueError for bad
        records.
        """
        from vnet.dns import serve_dns

        return serve_dns(self, records, policy, ttl, port, forward)

    def set_resolvers(self, addresses: Sequence[str]) -> None:
        """This host's resolver list (`nameserver` lines of the guests' /etc/resolv.conf)."""
        packed = [ipaddress.ip_address(a).packed for a in addresses]
        with self.network.scheduler.lock:
            self.stack.dns_servers[:] = packed

    @property
    def resolvers(self) -> list[str]:
        return [str(ipaddress.ip_address(a)) for a in self.stack.dns_servers]

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


def _reachable_address(server: Host, client: Host) -> str:
    """The server's address a client reaches directly: on a network they share, IPv4 first."""
    mine = [a for i in server.stack.interfaces.values() if not i.is_loopback
            for a in i.addresses() if a.address[:2] != b"\xfe\x80"]
    theirs = [ipaddress.ip_interface(f"{ipaddress.ip_address(a.address)}/{a.prefix_len}")
              for i in client.stack.interfaces.values() if not i.is_loopback
              for a in i.addresses()]
    ordered = sorted(mine, key=lambda a: len(a.address))
    for a in ordered:
        ip = ipaddress.ip_address(a.address)
        if any(ip in net.network for net in theirs):
            return str(ip)
    if not ordered:
        raise ValueError(f"{server.name} has no address to serve DNS on")
    return str(ipaddress.ip_address(ordered[0].address))


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


def _is_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _resolve_one(host: Host, name: str, family: int) -> bytes:
    """The address a socket of `family` on `host` connects to for a host name (as glibc)."""
    for address in host.network.resolve(name, asking=host):
        if len(address) == (4 if family == AF_INET else 16):
            return address
    raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")


_KINDS = ((SOCK_STREAM, _socket.IPPROTO_TCP), (SOCK_DGRAM, _socket.IPPROTO_UDP),
          (_socket.SOCK_RAW, 0))


def _getaddrinfo(host: Host, name: str | bytes | None, port: str | int | bytes | None,
                 family: int, type: int, proto: int,
                 flags: int) -> list[tuple[Any, Any, int, str, tuple[Any, ...]]]:
    """glibc's getaddrinfo answers, for names the network's resolver knows."""
    if isinstance(name, bytes):
        name = name.decode("idna")
    if isinstance(port, bytes):
        port = port.decode()
    if name is None and port is None:
        raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
    if family not in (AF_UNSPEC, AF_INET, AF_INET6):
        raise _socket.gaierror(_socket.EAI_FAMILY, "ai_family not supported")
    kinds = [(k, p) for k, p in _KINDS if type in (0, k) and proto in (0, p)]
    if not kinds:
        raise _socket.gaierror(_socket.EAI_SOCKTYPE, "ai_socktype not supported")
    if type == _socket.SOCK_RAW and port is not None:
        raise _socket.gaierror(_socket.EAI_SERVICE, "Servname not supported for ai_socktype")
    numbers: list[tuple[int, int, int]] = []  # (kind, proto, port)
    for kind, kproto in kinds:
        if port is None:
            numbers.append((kind, kproto, 0))
        elif isinstance(port, int) or str(port).isdigit():
            numbers.append((kind, kproto, int(port)))
        elif flags & _socket.AI_NUMERICSERV:
            raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
        elif kind == _socket.SOCK_RAW:
            continue
        else:
            try:
                number = _socket.getservbyname(str(port), "tcp" if kind == SOCK_STREAM else "udp")
            except OSError:
                continue
            numbers.append((kind, kproto, number))
    if not numbers:
        raise _socket.gaierror(_socket.EAI_SERVICE, "Servname not supported for ai_socktype")
    if name is None:
        any4, any6 = bytes(4), bytes(16)
        loop4, loop6 = bytes((127, 0, 0, 1)), bytes(15) + b"\x01"
        addresses = [any4, any6] if flags & _socket.AI_PASSIVE else [loop6, loop4]
    elif _is_literal(name):
        addresses = [ipaddress.ip_address(name.split("%", 1)[0]).packed]
    elif flags & _socket.AI_NUMERICHOST:
        raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
    else:
        addresses = host.network.resolve(name, asking=host)
        if not addresses:
            raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
    wanted = [a for a in addresses if family == AF_UNSPEC or len(a) == (4 if family == AF_INET
                                                                        else 16)]
    if not wanted:
        if name is not None and _is_literal(name):
            raise _socket.gaierror(_socket.EAI_ADDRFAMILY,
                                   "Address family for hostname not supported")
        raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
    canon = name if flags & _socket.AI_CANONNAME and name is not None else ""
    answers: list[tuple[Any, Any, int, str, tuple[Any, ...]]] = []
    for address in wanted:
        fam = _socket.AddressFamily(AF_INET if len(address) == 4 else AF_INET6)
        for sock_kind, kproto, number in numbers:
            sockaddr: tuple[Any, ...] = ((_addr_text(address), number) if fam == AF_INET
                                         else (_addr_text(address), number, 0, 0))
            answers.append((fam, _socket.SocketKind(sock_kind), kproto, canon, sockaddr))
            canon = ""
    return answers


_fake_fds = itertools.count(0x4000_0000)
#: Every open HostSocket by its file number (a number no kernel fd has: see HostSocket.fileno).
open_host_sockets: weakref.WeakValueDictionary[int, HostSocket] = weakref.WeakValueDictionary()


class HostSocket:
    """A socket on a virtual host with the standard library's interface.

    Beyond the data calls: `makefile()` (the file objects keep the socket
    open until they are closed too, as a socket.socket does), `sendmsg`/
    `recvmsg` (no ancillary data: vnet has none to give yet), host names
    of the network in every address (`connect(("b", 80))`, resolved for
    the socket's family through `Network.resolve`), and `fileno()` giving
    a number no kernel fd has (0x40000000 and up), which `select`,
    `selectors` and asyncio accept inside `Host.sockets()`.
    """

    def __init__(self, host: Host, family: int, type: int, proto: int = 0) -> None:
        if family not in (AF_INET, AF_INET6):
            raise OSError(97, "Address family not supported by protocol")
        self.host = host
        self.family = _socket.AddressFamily(family)
        self.type = _socket.SocketKind(type)
        self.proto = proto
        self._timeout: float | None = _socket.getdefaulttimeout()
        self._core: Socket
        self._setup()
        with self._turn():
            if type == SOCK_STREAM and proto in (0, _socket.IPPROTO_TCP):
                self._core = host.tcp.socket(family)
            elif type == SOCK_DGRAM and proto in (0, _socket.IPPROTO_UDP):
                self._core = host.udp.socket(family)
            elif type == SOCK_DGRAM and proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
                self._core = host.icmp.socket(family)
            else:
                raise OSError(93, "Protocol not supported")

    def _setup(self) -> None:
        self._fd = next(_fake_fds)
        self._io_refs = 0  # open makefile() objects
        self._closed = False
        open_host_sockets[self._fd] = self

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """The network lock plus one atomic network turn (see Scheduler.atomic)."""
        if getattr(self, "_fd", 0) == -1:
            raise os_error(errno.EBADF)  # closed: every call fails as on a closed fd
        sched = self.host.network.scheduler
        with sched.lock, sched.atomic():
            yield

    # --- stdlib surface ----------------------------------------------------
    def __enter__(self) -> HostSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<HostSocket {self.host.name} fd={self.fileno()} family={self.family.name} "
                f"type={self.type.name}>")

    def fileno(self) -> int:
        """A number unique to this socket while it is open (no kernel fd has it); -1 once closed."""
        return self._fd

    @property
    def timeout(self) -> float | None:
        return self._timeout

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
        if isinstance(host, bytes):
            host = host.decode()
        if (isinstance(host, str) and host not in ("", "<broadcast>", "localhost")
                and not _is_literal(host)):
            return _resolve_one(self.host, host, self.family), port
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
        sock.family = _socket.AddressFamily(core.family)
        sock.type = _socket.SocketKind(core.type)
        sock.proto = 0
        sock._timeout = _socket.getdefaulttimeout()
        sock._core = core
        sock._setup()
        return sock

    def connect(self, address: Any) -> None:
        addr, port = self._to_wire(address)
        core = self._core
        with self._turn():
            core.connect(addr, port)
        if core.type != SOCK_STREAM:
            return  # a datagram socket's connect() only sets its peer
        if self._timeout == 0.0 and not core.connect_completed():  # (a repeated one: 0)
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
                    peer = child.accepted_peer()  # even when reset meanwhile
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
                    if self.type == SOCK_STREAM:  # a stream has no source address
                        return core.recv(bufsize, peek), None  # type: ignore[return-value]
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
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0,
                      flags: int = 0) -> tuple[int, tuple[Any, ...] | None]:
        data, address = self.recvfrom(nbytes or len(buffer), flags)
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data), address

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0,
                address: Any = None) -> int:
        """socket.sendmsg() without ancillary data (EINVAL if some is given)."""
        if list(ancdata):
            raise OSError(errno.EINVAL, "vnet: sendmsg() ancillary data is not supported")
        data = b"".join(bytes(b) for b in buffers)
        if address is not None:
            return self.sendto(data, flags, address)
        return self.send(data, flags)

    def recvmsg(self, bufsize: int, ancbufsize: int = 0,
                flags: int = 0) -> tuple[bytes, list[Any], int, tuple[Any, ...] | None]:
        """socket.recvmsg(): (data, [], msg_flags, address); MSG_TRUNC for a cut datagram."""
        if bufsize < 0:
            raise ValueError("negative buffer size in recvmsg()")
        if self.type == SOCK_STREAM:
            data = self.recv(bufsize, flags)
            return data, [], 0, None
        peek = bool(flags & _socket.MSG_PEEK)
        while True:
            with self._turn():
                core = self._core
                try:
                    data, src, port, truncated = core.recvfrom(bufsize, peek)
                    return (data, [], _socket.MSG_TRUNC if truncated else 0,
                            self._from_wire(src, port))
                except BlockingIOError:
                    pass
            self._wait(core.readable, "recv")

    def makefile(self, mode: str = "r", buffering: int | None = None, *,
                 encoding: str | None = None, errors: str | None = None,
                 newline: str | None = None) -> Any:
        """A file object reading and/or writing the socket, as socket.socket.makefile.

        Modes are combinations of r, w, b; the file counts as a reference, so
        the connection stays open until both it and the socket are closed.
        """
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
        writing = "w" in mode
        reading = "r" in mode or not writing
        raw = _socket.SocketIO(self, ("r" if reading else "") + ("w" if writing else ""))  # type: ignore[arg-type]
        self._io_refs += 1
        if buffering is None:
            buffering = -1
        if buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if "b" not in mode:
                raise ValueError("unbuffered streams must be binary")
            return raw
        buffer: Any
        if reading and writing:
            buffer = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if "b" in mode:
            return buffer
        text = io.TextIOWrapper(buffer, encoding, errors, newline)
        text.mode = mode  # type: ignore[misc]
        return text

    def _decref_socketios(self) -> None:
        """A makefile() object was closed (socket.SocketIO calls this)."""
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

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
        """Close the socket once no makefile() object is open any more (as socket.socket)."""
        self._closed = True
        if self._io_refs <= 0 and self._fd != -1:
            with self._turn():
                self._core.close()
            open_host_sockets.pop(self._fd, None)
            self._fd = -1

    def detach(self) -> int:
        raise OSError(errno.EOPNOTSUPP, "a virtual host's socket has no kernel fd to detach")


class GuestProcess:
    """A wasm guest started with `Host.run`: its output, its exit code, and a way to stop it.

    Like `subprocess.Popen`: `wait(timeout)` returns the exit code (raising
    `TimeoutError` if the guest has not exited after `timeout` seconds, or
    at once in virtual time when nothing is left that could make it exit),
    `exit_code` is None while it runs, `kill()` stops it (exit code 137, as
    SIGKILL). `stdout`/`stderr` hold everything it wrote so far, as text.
    Timeouts count virtual seconds in a virtual-time network.
    """

    def __init__(self, host: Host, name: str) -> None:
        self.host = host
        self.name = name
        self.guest: Guest
        self._out = bytearray()
        self._err = bytearray()
        self._start_timer: Timer | None = None
        self._killed_before_start = False

    def __repr__(self) -> str:
        state = "running" if self.exit_code is None else f"exit {self.exit_code}"
        return f"<GuestProcess {self.name} {state}>"

    @property
    def done(self) -> bool:
        """The guest has ended (exited, trapped or been killed); before it starts, False."""
        return self._killed_before_start or self.guest.done

    @property
    def exit_code(self) -> int | None:
        if not self.done:
            return None
        if self.guest.exit_code is None:  # killed before it ever ran
            from vnet.guest.runtime import KILLED_EXIT_CODE

            return KILLED_EXIT_CODE
        return self.guest.exit_code

    @property
    def trap(self) -> str | None:
        """Why the guest stopped when it did not exit by itself (a trap, "guest killed")."""
        return self.guest.trap

    @property
    def stdout(self) -> str:
        return bytes(self._out).decode(errors="replace")

    @property
    def stderr(self) -> str:
        return bytes(self._err).decode(errors="replace")

    @property
    def stdout_lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()

    def wait(self, timeout: float | None = None) -> int:
        """Let the network run until the guest ends; its exit code.

        Raises TimeoutError naming the guest and showing its output when it
        has not ended after `timeout` seconds (None: no limit), or, in
        virtual time, when every guest waits for something that cannot come.
        """
        network = self.host.network
        if not network.wait(lambda: self.done, timeout):
            raise TimeoutError(self._not_done(
                f"did not exit within {timeout} s" if timeout is not None else
                "cannot exit: every guest is blocked and no timer is pending"))
        code = self.exit_code
        assert code is not None
        return code

    def wait_for(self, text: str, timeout: float | None = None) -> None:
        """Run the network until the guest's stdout holds `text`; TimeoutError if it ends first."""
        needle = text.encode()
        self.host.network.wait(lambda: needle in self._out or self.done, timeout)
        if needle not in self._out:
            raise TimeoutError(self._not_done(f"never printed {text!r}"))

    def kill(self) -> int:
        """Stop the guest as SIGKILL would (at its next host call or CPU slice); its exit code."""
        task = self.guest.task
        sched = self.host.network.scheduler
        if task is None:  # its start delay has not run out: it never starts
            with sched.lock:
                if self._start_timer is not None:
                    self._start_timer.cancel()
            self._killed_before_start = True
            return self.wait(0)
        if task.done:
            return self.wait(0)
        with sched.lock:
            task.killed = True
            if task.on_kill is not None:
                task.on_kill()
        sched.notify()  # a blocked guest looks at its `killed` flag now, not at the next event
        return self.wait(None if sched.virtual else 5.0)

    def _not_done(self, what: str) -> str:
        return (f"guest {self.name} {what}\n--- stdout\n{self.stdout}--- stderr\n"
                f"{self.stderr}")


def _device_grants(devices: Sequence[Any]) -> list[Any]:
    """`Host.run(devices=...)`: grants, or their `--guest-tun` spellings, as grants."""
    from vnet.link.guest_tun import GuestDeviceGrant, parse_guest_tun

    return [d if isinstance(d, GuestDeviceGrant) else parse_guest_tun(str(d)) for d in devices]
