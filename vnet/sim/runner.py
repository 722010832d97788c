"""`vnet sim`: run a topology file — hosts, segments, guests — and report.

Builds a `vnet.network.Network` from a `vnet.sim.topology.Topology`, starts each
guest on its host after its start delay, shows every line a guest prints
prefixed with `host/guest`, writes one pcapng per NIC to the chosen
directory, and ends when the client guests (or, if none are named, all
guests) have exited, or when the duration runs out — always, even beside
guests that spin or busy-wait (host calls are charged virtual time, see
vnet.scheduler). Then it stops the remaining guests and prints a summary:
exit codes, frames and bytes per NIC, and drops. The exit status is 0 when every client exited 0.

Touches the network it builds, guest output streams and the pcap directory.
"""

from __future__ import annotations

import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

from vnet.guest.runtime import KILLED_EXIT_CODE, Guest, GuestConfig, load_module
from vnet.link.capture import Capture
from vnet.link.impairment import Impairment
from vnet.network import Host, Network
from vnet.sim.output import PrefixedLines
from vnet.sim.topology import SegmentSpec, Topology


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

    @property
    def ok(self) -> bool:
        by_name = {g.name: g for g in self.guests}
        return all(by_name[c].exit_code == 0 for c in self.clients)


def _seed_for(*parts: object) -> int:
    return zlib.crc32(":".join(str(p) for p in parts).encode())


def _impairment(segment: SegmentSpec, seed: int, host: str, nic: str,
                direction: str) -> Impairment | None:
    """The segment's impairment for one direction of one NIC, seeded per NIC."""
    if not (segment.loss or segment.reorder or segment.duplicate):
        return None
    return Impairment(loss=segment.loss, reorder=segment.reorder, duplicate=segment.duplicate,
                      seed=_seed_for(seed, host, nic, direction))


def build(topo: Topology, virtual_time: bool, seed: int,
          pcap_dir: Path | None) -> tuple[Network, dict[str, Host], list[Capture], list[Path]]:
    net = Network(virtual_time=virtual_time, seed=seed)
    captures: list[Capture] = []
    pcaps: list[Path] = []
    for spec in topo.segments.values():
        net.segment(spec.name, latency_ns=spec.latency_ns, snooping=spec.snooping)
    hosts: dict[str, Host] = {}
    for hspec in topo.hosts.values():
        host = net.host(hspec.name, forwarding=hspec.forwarding)
        hosts[hspec.name] = host
        if hspec.firewall is not None:
            host.set_firewall(hspec.firewall.copy())
        for nic_spec in hspec.nics:
            seg_spec = topo.segments[nic_spec.segment]
            nic = host.connect(
                net.segments[nic_spec.segment], *nic_spec.addresses, ifname=nic_spec.name,
                mtu=nic_spec.mtu,
                tx_impairment=_impairment(seg_spec, seed, hspec.name, nic_spec.name, "tx"),
                rx_impairment=_impairment(seg_spec, seed, hspec.name, nic_spec.name, "rx"))
            if pcap_dir is not None:
                pcap_dir.mkdir(parents=True, exist_ok=True)
                path = pcap_dir / f"{hspec.name}-{nic_spec.name}.pcapng"
                cap = Capture.to_file(path, clock=net.scheduler.realtime_ns)
                nic.capture(cap)
                host.log_firewall_to(cap)
                captures.append(cap)
                pcaps.append(path)
        for to, via, dev in hspec.routes:
            host.add_route(to, gateway=via, ifname=dev)
    return net, hosts, captures, pcaps


def run(topo: Topology, *, virtual_time: bool | None = None, seed: int | None = None,
        pcap_dir: Path | None = None, duration_ns: int | None = None,
        out: BinaryIO | None = None) -> SimResult:
    virtual = topo.virtual_time if virtual_time is None else virtual_time
    seed_value = topo.seed if seed is None else seed
    stream = out if out is not None else sys.stdout.buffer
    net, hosts, captures, pcaps = build(topo, virtual, seed_value, pcap_dir)
    sched = net.scheduler
    width = max((len(n) for n in topo.guest_names()), default=8)
    guests: dict[str, Guest] = {}
    sinks: list[PrefixedLines] = []
    for hspec in topo.hosts.values():
        for gspec in hspec.guests:
            label = f"{hspec.name}/{gspec.name}"
            sink = PrefixedLines(label, stream, width)
            sinks.append(sink)
            cfg = GuestConfig(module=str(gspec.module), args=[gspec.name, *gspec.args],
                              env=gspec.env, preopens=gspec.dirs, stdout=sink, stderr=sink,
                              name=label, host=hosts[hspec.name], tcplisten=gspec.tcplisten)
            guest = Guest(sched, cfg, load_module(gspec.module))
            guests[label] = guest
            if gspec.start_ns:
                sched.call_at(gspec.start_ns, guest.start)
            else:
                guest.start()
    clients = topo.clients or list(guests)
    limit = duration_ns if duration_ns is not None else topo.duration_ns
    started_wall = time.monotonic()

    def clients_done() -> bool:
        return all(guests[c].done for c in clients)

    if virtual and limit is not None:
        sched.call_at(limit, lambda: None)
    until_limit = (lambda: sched.monotonic_ns() >= limit) if limit is not None else (
        lambda: False)
    finished = sched.run(until=lambda: clients_done() or until_limit(),
                         timeout_s=None if virtual or limit is None else limit / 1e9)
    if clients_done():
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
    results = [GuestResult(name, g.exit_code if g.exit_code is not None else None, g.trap)
               for name, g in guests.items()]
    nic_stats = {}
    drops = {}
    for host in hosts.values():
        for ifname, nic in host.nics.items():
            c = nic.counters
            nic_stats[f"{host.name}/{ifname}"] = {"tx_frames": c.tx_frames,
                                                  "tx_bytes": c.tx_bytes,
                                                  "rx_frames": c.rx_frames,
                                                  "rx_bytes": c.rx_bytes}
        drops[host.name] = host.counters.drops()
    return SimResult(ended, elapsed, results, clients, nic_stats, drops, pcaps)


def print_summary(result: SimResult, stream: TextIO | None = None) -> None:
    write = (stream if stream is not None else sys.stdout).write
    write(f"\nvnet sim: {result.ended} after {result.elapsed_ns / 1e9:.3f} s\n")
    width = max((len(g.name) for g in result.guests), default=5)
    write(f"{'guest':<{width}}  exit\n")
    for g in result.guests:
        if g.exit_code is None:
            status = "did not start"
        elif g.exit_code == KILLED_EXIT_CODE and g.trap and "killed" in g.trap:
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
    dropped = {h: d for h, d in result.drops.items() if d}
    if dropped:
        write("\ndrops:\n")
        for host, reasons in dropped.items():
            listed = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
            write(f"  {host}: {listed}\n")
    if result.pcaps:
        write(f"\npcaps: {result.pcaps[0].parent}/ ({len(result.pcaps)} files)\n")
