"""`vnet sim`: run a topology file — hosts, segments, guests — and report.

Builds a `vnet.network.Network` from a `vnet.sim.topology.Topology`, starts each
guest on its host after its start delay, shows every line a guest prints
prefixed with `host/guest`, writes one pcapng per NIC to the chosen
directory, and ends when the client guests (or, if none are named, all
guests) have exited, or when the duration runs out — always, even beside
guests that spin or busy-wait (host calls are charged virtual time, see
vnet.scheduler). Then it stops the remaining guests and prints a summary:
exit codes, frames and bytes per NIC, drops, and the faults applied (the
topology's ``[[faults]]`` and the ``[random_faults]`` drawn from the seed,
armed by `schedule_faults` before the run: vnet.sim.faults). The exit
status is 0 when every client exited 0.

Captures (all optional, all closed and complete however the run ends):

- ``pcap_dir``: ``DIR/HOST-NIC.pcapng`` per NIC (what that NIC sent and
  received; a frame crossing a segment appears in two files);
- ``pcap_segments``: per-segment captures, each frame once, as a monitor
  port on the switch sees it -- the ones Wireshark's TCP analysis trusts.
  Into ``pcap`` (a path, or ``"-"`` for a live pcapng stream on stdout,
  flushed per packet; guest output and the summary then go to stderr) when
  given, else ``DIR/segment-NAME.pcapng``. ``pcap`` without segments named
  captures every segment;
- ``pcap_loopback``: each host's ``lo`` too (``DIR/HOST-lo.pcapng``, or in ``pcap``);
- ``pcap_filter``: keep only frames matching a firewall match
  (``"tcp dport 80"``, see `vnet.link.capture.CaptureFilter`).

A segment with a ``[segments.NAME.vxlan]`` table (real time only) gets a
`vnet.link.vxlan.VxlanPort` when the run starts (`open_vxlan`): its UDP
socket binds the table's ``local`` address and port and the segment is
shared with the remotes named there; it is closed when the run ends, and
its frames and drops are in the summary as ``SEGMENT/vxlanVNI``. A port
that cannot open (the address is not this machine's, the port is taken) is
a `TopologyError` at the table's line.

Every capture carries a name-resolution block (each host's addresses ->
its name) and interface descriptions (host, NIC, MAC, addresses, segment).
``interrupted`` (a callable, e.g. `vnet.sim.signals.Interrupts.interrupted`)
ends the run as a signal would: the guests are stopped and the result says
``ended="interrupted"``.

Touches the network it builds, guest output streams, the pcap directory
and the pcap file or stream.
"""

from __future__ import annotations

import hashlib
import ipaddress
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from vnet.guest.runtime import KILLED_EXIT_CODE, Guest, GuestConfig, load_module, settle_heap
from vnet.link.capture import Capture, CaptureFilter
from vnet.link.impairment import Impairment
from vnet.link.loopback_tap import capture_loopback
from vnet.link.vxlan import VxlanError, VxlanPort
from vnet.network import Host, Network
from vnet.scheduler import DEFAULT_SCHEDULE, Scheduler
from vnet.sim.drop_reasons import explain as explain_drop
from vnet.sim.faults import FaultInjector, draw_random
from vnet.sim.faults import plan as fault_plan
from vnet.sim.output import PrefixedLines
from vnet.sim.progress import Heartbeat
from vnet.sim.router_services import open_tuns, start_router_services
from vnet.sim.topology import LinkShape, NicSpec, SegmentSpec, Topology, TopologyError, VxlanSpec


@dataclass
class GuestResult:
    name: str
    exit_code: int | None
    trap: str | None


@dataclass
class SimResult:
    ended: str  # "clients exited", "duration reached", "deadlock"
    elapsed_ns: int
    guests: list[GuestResult]
    clients: list[str]
    nic_stats: dict[str, dict[str, int]]
    drops: dict[str, dict[str, int]]
    pcaps: list[Path] = field(default_factory=list)
    #: Packets written per capture (its path, or "-" for stdout).
    pcap_packets: dict[str, int] = field(default_factory=dict)
    #: Packets a live capture could not write because its reader closed the pipe.
    pcap_lost: int = 0
    #: One line per fault applied (vnet.sim.faults), in order.
    faults: list[str] = field(default_factory=list)
    #: The run's seed and schedule ("fifo" / "explore"); virtual time or not.
    seed: int = 0
    schedule: str = DEFAULT_SCHEDULE
    virtual: bool = False

    @property
    def ok(self) -> bool:
        by_name = {g.name: g for g in self.guests}
        return all(by_name[c].exit_code == 0 for c in self.clients)


def _seed_for(*parts: object) -> int:
    return zlib.crc32(":".join(str(p) for p in parts).encode())


def _impairment(segment: SegmentSpec, seed: int, host: str, nic: str,
                direction: str, nic_spec: NicSpec | None = None) -> Impairment | None:
    """The impairment of one direction of one NIC (its own link keys over its segment's),
    seeded per NIC."""
    shape = segment.shape.over(LinkShape(segment.loss or None, segment.reorder or None,
                                          segment.duplicate or None))
    if nic_spec is not None:
        shape = nic_spec.shape.over(shape)
    return shape.impairment(_seed_for(seed, host, nic, direction), direction, segment.cable)


class CapturePlan:
    """What to capture and where (see the module docstring)."""

    def __init__(self, pcap_dir: Path | None = None, pcap: str | Path | None = None,
                 segments: Sequence[str] = (), loopback: bool = False,
                 filter: str | CaptureFilter | None = None) -> None:
        self.pcap_dir = pcap_dir
        self.pcap = pcap
        self.segments = list(segments)
        self.loopback = loopback
        self.filter = CaptureFilter(filter) if isinstance(filter, str) else filter

    @property
    def live(self) -> bool:
        return str(self.pcap) == "-"

    def check(self, topo: Topology) -> None:
        """Raise ValueError (one line for the user) if this topology cannot follow the plan."""
        for name in self.segments:
            if name not in topo.segments:
                raise ValueError(f"--pcap-segment {name}: no such segment (segments: "
                                 f"{', '.join(sorted(topo.segments)) or 'none'})")
        if self.segments and self.pcap is None and self.pcap_dir is None:
            raise ValueError("--pcap-segment needs --pcap FILE (or -) or --pcap-dir DIR")
        if self.loopback and self.pcap is None and self.pcap_dir is None:
            raise ValueError("--pcap-loopback needs --pcap FILE (or -) or --pcap-dir DIR")


def nic_description(host: str, ifname: str, mac: bytes | None, addresses: Sequence[str],
                    segment: str) -> str:
    """What an interface description says: host, NIC, MAC, addresses, segment."""
    parts = [f"{host} {ifname}"]
    if mac is not None:
        parts.append(":".join(f"{b:02x}" for b in mac))
    parts.extend(addresses)
    return " ".join(parts) + f" on segment {segment}"


def address_names(net: Network) -> list[tuple[bytes, str]]:
    """Every address of every host (loopback excluded) with the host's name."""
    entries = []
    for host in net.hosts.values():
        for iface in host.stack.interfaces.values():
            if iface.is_loopback:
                continue
            for addr in iface.addresses():
                entries.append((addr.address, host.name))
    return entries


def topology_names(topo: Topology) -> list[tuple[bytes, str]]:
    """The addresses a topology file gives its hosts, with the host's name."""
    return [(ipaddress.ip_interface(a).ip.packed, hspec.name)
            for hspec in topo.hosts.values() for nic in hspec.nics for a in nic.addresses]


def _open_capture(target: str | Path, clock: Callable[[], int],
                  filter: CaptureFilter | None, names: list[tuple[bytes, str]]) -> Capture:
    """A new capture that names the topology's addresses before its first packet.

    (Wireshark resolves a packet's addresses with the names read so far, so
    the block goes first; link-local addresses follow once the NICs exist.)
    """
    if str(target) == "-":
        cap = Capture.to_stream(sys.stdout.buffer, clock=clock, filter=filter)
    else:
        cap = Capture.to_file(target, clock=clock, filter=filter)
    cap.add_names(names)
    return cap


def build(topo: Topology, virtual_time: bool, seed: int, pcap_dir: Path | None,
          plan: CapturePlan | None = None, schedule: str = DEFAULT_SCHEDULE,
          ) -> tuple[Network, dict[str, Host], list[Capture], list[Path]]:
    plan = plan or CapturePlan(pcap_dir=pcap_dir)
    pcap_dir = plan.pcap_dir
    net = Network(virtual_time=virtual_time, seed=seed,
                  scheduler=Scheduler(virtual=virtual_time, seed=seed, schedule=schedule))
    clock = net.scheduler.realtime_ns
    captures: list[Capture] = []
    pcaps: list[Path] = []
    names = topology_names(topo)
    if pcap_dir is not None:
        pcap_dir.mkdir(parents=True, exist_ok=True)
    # Every interface's description, by capture interface name.
    descriptions: dict[str, str] = {}
    members: dict[str, list[str]] = {name: [] for name in topo.segments}
    for hspec in topo.hosts.values():
        for nic_spec in hspec.nics:
            members[nic_spec.segment].append(
                " ".join([hspec.name + (" (router)" if hspec.forwarding else ""),
                          *nic_spec.addresses]))
    for spec in topo.segments.values():
        seg = net.cable(spec.name, spec.latency_ns / 1e9) if spec.cable else net.segment(
            spec.name, latency_ns=spec.latency_ns, snooping=spec.snooping)
        descriptions[f"{seg.kind}/{spec.name}"] = (
            f"segment {spec.name}: " + ", ".join(members[spec.name]))
    shared: Capture | None = None
    if plan.pcap is not None:
        shared = _open_capture(plan.pcap, clock, plan.filter, names)
        captures.append(shared)
        if not plan.live:
            pcaps.append(Path(plan.pcap))
    for name in (plan.segments or (list(topo.segments) if shared is not None else [])):
        segment = net.segments[name]
        cap = shared
        if cap is None:
            assert pcap_dir is not None
            path = pcap_dir / f"segment-{name}.pcapng"
            cap = _open_capture(path, clock, plan.filter, names)
            captures.append(cap)
            pcaps.append(path)
        cap.describe(f"{segment.kind}/{name}", descriptions[f"{segment.kind}/{name}"])
        segment.capture(cap)
    hosts: dict[str, Host] = {}
    for hspec in topo.hosts.values():
        host = net.host(hspec.name, forwarding=hspec.forwarding)
        hosts[hspec.name] = host
        if hspec.firewall is not None:
            host.set_firewall(hspec.firewall.copy())
        if plan.loopback:
            cap = shared
            if cap is None:
                assert pcap_dir is not None
                path = pcap_dir / f"{hspec.name}-lo.pcapng"
                cap = _open_capture(path, clock, plan.filter, names)
                captures.append(cap)
                pcaps.append(path)
            cap.describe(f"{hspec.name}/lo", f"{hspec.name} lo 127.0.0.1/8 ::1/128")
            capture_loopback(host.stack, cap, clock, hspec.name)
        for nic_spec in hspec.nics:
            seg_spec = topo.segments[nic_spec.segment]
            mac = nic_spec.mac
            if mac is None and seg_spec.vxlan is not None:
                mac = vxlan_mac(seg_spec.vxlan, hspec.name, nic_spec.name)
            nic = host.connect(
                net.segments[nic_spec.segment], *nic_spec.addresses, ifname=nic_spec.name,
                mtu=nic_spec.mtu, mac=mac,
                tx_impairment=_impairment(seg_spec, seed, hspec.name, nic_spec.name, "tx",
                                          nic_spec),
                rx_impairment=_impairment(seg_spec, seed, hspec.name, nic_spec.name, "rx",
                                          nic_spec))
            if pcap_dir is not None:
                path = pcap_dir / f"{hspec.name}-{nic_spec.name}.pcapng"
                cap = _open_capture(path, clock, plan.filter, names)
                cap.describe(nic.name, nic_description(hspec.name, nic_spec.name, nic.mac,
                                                       nic_spec.addresses, nic_spec.segment))
                nic.capture(cap)
                host.log_firewall_to(cap)
                captures.append(cap)
                pcaps.append(path)
        if shared is not None:
            host.log_firewall_to(shared)
        for to, via, dev in hspec.routes:
            host.add_route(to, gateway=via, ifname=dev)
        for nat in hspec.nat:
            host.nat(nat.interface, nat.behaviour, pool=nat.pool, nptv6=nat.nptv6)
        start_router_services(hspec, host)  # RA, DHCP servers and clients, mroutes
    start_dns(topo, hosts)
    named = set(names)
    later = [entry for entry in address_names(net) if entry not in named]
    for cap in captures:
        cap.add_names(later)
    return net, hosts, captures, pcaps


def start_dns(topo: Topology, hosts: dict[str, Host]) -> None:
    """The topology's DNS servers, then each host's resolver list (vnet.sim.topology_dns)."""
    from vnet.network import _reachable_address

    for hspec in topo.hosts.values():
        if hspec.dns is not None:
            hosts[hspec.name].serve_dns(hspec.dns.records, hspec.dns.policy, hspec.dns.ttl,
                                        forward=hspec.dns.forward)
    for hspec in topo.hosts.values():
        if hspec.resolvers:
            host = hosts[hspec.name]
            host.set_resolvers([r if r not in hosts else _reachable_address(hosts[r], host)
                                for r in hspec.resolvers])


def vxlan_mac(vxlan: VxlanSpec, host: str, nic: str) -> bytes:
    """A NIC's MAC on a VXLAN segment: locally administered, unicast, and different on
    every machine sharing the segment (allocation in order would give each the same)."""
    digest = hashlib.sha256(f"{vxlan.vni}/{vxlan.local}/{host}/{nic}".encode()).digest()
    return bytes([(digest[0] & 0xFC) | 0x02]) + digest[1:6]


def open_vxlan(topo: Topology, net: Network) -> list[VxlanPort]:
    """Open the VXLAN port of every segment that has one (TopologyError if one cannot)."""
    ports: list[VxlanPort] = []
    try:
        for spec in topo.segments.values():
            vx = spec.vxlan
            if vx is None:
                continue
            if net.virtual:
                raise TopologyError(topo.path, vx.line, f"segment {spec.name!r} has a VXLAN "
                                    "port, which runs in real time only (not --virtual-time)")
            try:
                ports.append(VxlanPort(net.scheduler, net.segments[spec.name], vni=vx.vni,
                                       local=vx.local, remotes=vx.remotes, port=vx.port).open())
            except VxlanError as e:
                raise TopologyError(topo.path, vx.line, str(e)) from None
    except BaseException:
        for port in ports:
            port.close()
        raise
    return ports


def run(topo: Topology, *, virtual_time: bool | None = None, seed: int | None = None,
        pcap_dir: Path | None = None, duration_ns: int | None = None,
        out: BinaryIO | None = None, plan: CapturePlan | None = None,
        interrupted: Callable[[], bool] | None = None,
        schedule: str | None = None, progress_s: float | None = None,
        settle: bool = False) -> SimResult:
    """Build and run the topology; ``schedule`` (default: the file's, else "explore") is
    the order of guests runnable at one virtual instant (vnet.scheduler, "Schedules").
    ``settle``: the process runs this one topology and exits (`vnet sim`): the start-up
    heap is frozen once the guests are started (`vnet.guest.runtime.settle_heap`)."""
    virtual = topo.virtual_time if virtual_time is None else virtual_time
    seed_value = topo.seed if seed is None else seed
    schedule_name = schedule or topo.schedule or DEFAULT_SCHEDULE
    plan = plan or CapturePlan(pcap_dir=pcap_dir)
    plan.check(topo)
    if out is not None:
        stream = out
    else:  # a live capture owns stdout
        stream = sys.stderr.buffer if plan.live else sys.stdout.buffer
    stop = interrupted or (lambda: False)
    net, hosts, captures, pcaps = build(topo, virtual, seed_value, plan.pcap_dir, plan,
                                        schedule_name)
    vxlan_ports: list[VxlanPort] = []
    tuns: list[Any] = []
    try:
        vxlan_ports = open_vxlan(topo, net)
        tuns = open_tuns(topo, net, captures[0] if captures else None)
        return _run(topo, net, hosts, captures, pcaps, virtual, duration_ns, stream, stop,
                    vxlan_ports, progress_s, settle)
    finally:
        net.scheduler.stop_all()
        for port in vxlan_ports:
            port.close()
        for bridge in tuns:
            bridge.close()
        for cap in captures:
            cap.close()


def _run(topo: Topology, net: Network, hosts: dict[str, Host], captures: list[Capture],
         pcaps: list[Path], virtual: bool, duration_ns: int | None, stream: BinaryIO,
         stop: Callable[[], bool], vxlan_ports: Sequence[VxlanPort] = (),
         progress_s: float | None = None, settle: bool = False) -> SimResult:
    sched = net.scheduler
    width = max((len(n) for n in topo.guest_names()), default=8)
    guests: dict[str, Guest] = {}
    sinks: list[PrefixedLines] = []
    injector = FaultInjector(net, hosts, guests, sched.seed)
    for hspec in topo.hosts.values():
        for gspec in hspec.guests:
            label = f"{hspec.name}/{gspec.name}"
            sink = PrefixedLines(label, stream, width)
            sinks.append(sink)
            cfg = GuestConfig(module=str(gspec.module), args=[gspec.name, *gspec.args],
                              env=gspec.env, preopens=gspec.dirs,
                              stdout=injector.watch_output(label, sink),
                              stderr=injector.watch_output(label, sink),
                              name=label, host=hosts[hspec.name], tcplisten=gspec.tcplisten,
                              devices=gspec.devices)
            if gspec.limits is not None:
                cfg.limits = gspec.limits
            guest = Guest(sched, cfg, load_module(gspec.module))
            guests[label] = guest
            if gspec.start_ns:
                sched.call_at(gspec.start_ns, guest.start)
            else:
                guest.start()
    clients = topo.clients or list(guests)
    if settle:
        settle_heap()  # one run per process: full collections need not walk the start-up heap
    schedule_faults(topo, injector)
    limit = duration_ns if duration_ns is not None else topo.duration_ns
    started_wall = time.monotonic()

    def clients_done() -> bool:
        return all(guests[c].done for c in clients)

    if virtual and limit is not None:
        sched.call_at(limit, lambda: None)
    until_limit = (lambda: sched.monotonic_ns() >= limit) if limit is not None else (
        lambda: False)
    heartbeat = (Heartbeat(progress_s, sched.monotonic_ns, guests, hosts).start()
                 if progress_s else None)
    try:
        finished = sched.run(until=lambda: clients_done() or until_limit() or stop(),
                             timeout_s=None if virtual or limit is None else limit / 1e9)
    finally:
        if heartbeat is not None:
            heartbeat.stop()
    if stop():
        ended = "interrupted"
    elif clients_done():
        ended = "clients exited"
    elif finished or until_limit():
        ended = "duration reached"
    else:
        ended = "deadlock (every guest waits for something that cannot happen)" if virtual else (
            "duration reached")
    elapsed = sched.monotonic_ns() if virtual else int((time.monotonic() - started_wall) * 1e9)
    sched.stop_all()
    for sink in sinks:
        sink.flush()
    for cap in captures:
        cap.close()
    packets = {(cap.path or "-"): cap.packets for cap in captures}
    lost = sum(cap.dropped_after_close for cap in captures if cap.broken)
    results = [GuestResult(name, g.exit_code if g.exit_code is not None else None,
                           f"killed by a fault at {injector.killed[name] / 1e9:.3f} s"
                           if name in injector.killed else g.trap)
               for name, g in guests.items()]
    nic_stats = {}
    drops = {}
    for host in hosts.values():
        nic_stats.update(host_nic_stats(host))
        drops[host.name] = host.counters.drops()
    for nic_name, count in injector.rx_dropped_frozen.items():
        host_drops = drops.setdefault(nic_name.partition("/")[0], {})
        host_drops["rx_dropped_frozen"] = host_drops.get("rx_dropped_frozen", 0) + count
    for port in vxlan_ports:
        v = port.counters
        nic_stats[f"{port.segment.name}/{port.name}"] = {
            "tx_frames": v.tx_frames, "tx_bytes": v.tx_bytes,
            "rx_frames": v.rx_frames, "rx_bytes": v.rx_bytes}
        vxlan_drops = {key: value for key, value in v.as_dict().items()
                       if value and (key.startswith("drop_") or key == "tx_errors")}
        if vxlan_drops:
            drops[f"{port.segment.name}/{port.name}"] = vxlan_drops
    return SimResult(ended, elapsed, results, clients, nic_stats, drops, pcaps, packets,
                     lost, list(injector.log), sched.seed, sched.schedule, virtual)


def host_nic_stats(host: Host) -> dict[str, dict[str, int]]:
    """Frames and bytes each way per NIC of one host, keyed "host/nic" (the summaries')."""
    return {f"{host.name}/{ifname}": {"tx_frames": nic.counters.tx_frames,
                                      "tx_bytes": nic.counters.tx_bytes,
                                      "rx_frames": nic.counters.rx_frames,
                                      "rx_bytes": nic.counters.rx_bytes}
            for ifname, nic in host.nics.items()}


def schedule_faults(topo: Topology, injector: FaultInjector) -> None:
    """Arm the topology's `[[faults]]` and the `[random_faults]` drawn from the seed."""
    specs = list(topo.faults)
    if topo.random_faults is not None:
        on_segment: dict[str, list[str]] = {name: [] for name in topo.segments}
        nics = []
        for hspec in topo.hosts.values():
            for nic in hspec.nics:
                on_segment[nic.segment].append(hspec.name)
                nics.append(f"{hspec.name}/{nic.name}")
        specs += draw_random(topo.random_faults, injector.seed, on_segment, nics)
    injector.schedule(fault_plan(specs))
    injector.schedule_after(specs)


def print_summary(result: SimResult, stream: TextIO | None = None) -> None:
    write = (stream if stream is not None else sys.stdout).write
    how = (f" (virtual time, seed {result.seed}, schedule {result.schedule})"
           if result.virtual else "")
    write(f"\nvnet sim: {result.ended} after {result.elapsed_ns / 1e9:.3f} s{how}\n")
    width = max((len(g.name) for g in result.guests), default=5)
    write(f"{'guest':<{width}}  exit\n")
    for g in result.guests:
        if g.exit_code is None:
            status = "did not start"
        elif g.exit_code == KILLED_EXIT_CODE and g.trap == "guest killed":
            status = "stopped at the end"
        else:
            status = str(g.exit_code) + (f" (trap: {g.trap})" if g.trap else "")
        role = " (client)" if g.name in result.clients else ""
        write(f"{g.name:<{width}}  {status}{role}\n")
    if result.nic_stats:
        nwidth = max(len(n) for n in result.nic_stats)
        write(f"\n{'nic':<{nwidth}}  {'tx frames':>9} {'tx bytes':>10} {'rx frames':>9} "
              f"{'rx bytes':>10}\n")
        for name, s in result.nic_stats.items():
            write(f"{name:<{nwidth}}  {s['tx_frames']:>9} {s['tx_bytes']:>10} "
                  f"{s['rx_frames']:>9} {s['rx_bytes']:>10}\n")
    if result.faults:
        write("\nfaults:\n")
        for line in result.faults:
            write(f"  {line}\n")
    dropped = {h: d for h, d in result.drops.items() if d}
    if dropped:
        write("\ndrops (what each means: normal, limit, config, bad input):\n")
        hwidth = max(len(h) for h in dropped)
        cwidth = max(len(k) for reasons in dropped.values() for k in reasons)
        for host, reasons in dropped.items():
            for counter, count in sorted(reasons.items()):
                why = explain_drop(counter)
                write(f"  {host:<{hwidth}}  {counter:<{cwidth}} {count:>6}  "
                      f"{why.kind}: {why.text}\n")
    if result.pcaps:
        write(f"\npcaps: {result.pcaps[0].parent}/ ({len(result.pcaps)} files)\n")
    if "-" in result.pcap_packets:
        lost = (f" (the reader closed the pipe: {result.pcap_lost} more not written)"
                if result.pcap_lost else "")
        write(f"\npcap: {result.pcap_packets['-']} packets written to stdout{lost}\n")
