"""Topology files: a whole virtual network and its guests, in TOML.

    [sim]
    virtual_time = true          # deterministic mode (also: vnet sim --virtual-time)
    seed = 7
    schedule = "explore"         # the default: the seed orders simultaneous guests;
                                 #   "fifo": first in, first out, whatever the seed
    duration = "60s"             # give up after this long (virtual or real time)
    clients = ["alice/chat"]     # the run ends when these guests exit (default: all)

    [segments.lan]
    latency = "1ms"              # one-way, per frame
    snooping = false             # IGMP/MLD snooping
    loss = 0.0                   # impairment of every NIC on the segment, both ways:
    reorder = 0.0                #   loss / reorder / duplicate are probabilities
    duplicate = 0.0

    [segments.lan.vxlan]         # real time only: share this segment over VXLAN (RFC 7348)
    vni = 42                     # 0..16777215, the same on every end
    local = "192.0.2.1"          # this machine's underlay address (the socket binds it)
    remote = ["192.0.2.2"]       # every other end, explicitly (no default, no multicast)
    port = 4789                  # UDP port, the same on every end (default 4789)
    # NICs on the segment: mtu = 1450 (VXLAN adds 50 bytes over IPv4, 70 over IPv6)

    [segments.lan]               # link keys (also per NIC, overriding the segment's):
    bandwidth = "10Mbit"         #   each NIC's way in and out (store and forward)
    jitter = "2ms"               #   uniform +-, on each NIC's way out (can reorder)
    delay = "5ms"                #   extra one-way delay on each NIC's way out
    queue = 100                  #   the rate queue: packets, or bytes ("64KB")

    [cables.wan]                 # a point-to-point link: two NICs say cable = "wan"
    latency = "20ms"             #   (not segment); bandwidth serialized once (one wire)
    bandwidth = "10Mbit"         #   and the other link keys as on a segment

    [defaults]                   # keys every host starts from (a host's own win)
    routes = [{ to = "default", via = "10.0.0.254" }]
    [templates.pc]               # a host with template = "pc" starts from these
    dhcp = true
    [hosts.pc]
    template = "pc"
    count = 3                    # pc1, pc2, pc3 ([hosts."pc-{n}"]: pc-1 ...); in every
                                 #   string {n}, {10+n}, {2*n-1}: "10.0.0.{10+n}/24"

    [hosts.server]
    forwarding = false           # true: a router between its segments
    dhcp = true                  # every NIC by DHCP (or per NIC: dhcp = true)
    mroutes = [{ group = "239.1.1.1", from = "eth0", to = ["eth1"] }]  # (routers)
    routes = [{ to = "0.0.0.0/0", via = "10.0.0.254" }]   # via: on a link of the host
    firewall = "server.rules"    # rules (relative to this file); or inline rules:
    # firewall_rules = '''
    # chain input { policy drop; ct state established,related accept; tcp dport 7000 accept }
    # '''

    [[hosts.server.nics]]
    segment = "lan"
    addresses = ["10.0.0.1/24", "fd00::1/64"]
    name = "eth0"                # default eth0, eth1, …
    mtu = 1500
    mac = "02:00:00:00:00:01"    # default: allocated in order; on a VXLAN segment derived
                                 #   from the VNI, local address, host and NIC names

    [hosts.gw.nat]               # NAT what leaves one interface (needs forwarding = true)
    interface = "eth1"
    behaviour = "port-restricted-cone"   # full-cone | restricted-cone |
                                         # port-restricted-cone | symmetric
    mapping = "endpoint-independent"     # overrides of the preset: mapping and filtering
    filtering = "address-and-port-dependent"  # are endpoint-independent, address-dependent
    hairpin = true                       #   or address-and-port-dependent
    ports = "preserve"                   # or "random"
    port_parity = false
    pool = ["203.0.113.1"]               # default: the interface's IPv4 addresses
    pairing = true
    udp_timeout = "5m"                   # also tcp_established_timeout, tcp_transitory_timeout,
                                         # icmp_timeout ("2h4m", "240s", seconds as a number)
    max_mappings = 65536                 # the table's bound, and one inside host's share
    max_mappings_per_host = 4096
    nptv6 = { inside = "fd00:1::/48", outside = "2001:db8:1::/48" }   # RFC 6296 prefixes
    # several outside interfaces: [[hosts.gw.nat]] tables; inline: nat = { interface = "eth1" }

    [hosts.gw.ra]                # router advertisements (forwarding = true); [[...]]: several
    interface = "eth0"
    prefixes = ["fd00:1::/64"]   # default: the interface's; or { prefix = "...", on_link =
                                 #   true, autonomous = true, valid = "1d", preferred = "4h" }
    interval = "600s"            # MaxRtrAdvInterval (4 s - 1800 s); lifetime = "30m"
    mtu = 1500                   # default the interface's; 0: no MTU option
    rdnss = ["fd00:1::53"]       # resolvers (RFC 8106); rdnss_lifetime, managed, other,
                                 #   hop_limit

    [hosts.gw.dhcp_server]       # DHCPv4 on an interface with a static IPv4 address
    interface = "eth0"
    range = ["10.0.0.100", "10.0.0.199"]
    lease = "1h"
    router = "10.0.0.1"          # default: the interface's address; "" for none
    dns = ["10.0.0.53"]
    fixed = { printer = "10.0.0.5", "02:00:00:00:00:09" = "10.0.0.6" }  # name or MAC

    [hosts.gw.tun]               # real time only: a TUN bridge to the kernel (vnet run --tun)
    device = "vnet0"
    netns = "vnet-test"          # made and deleted by the audited guard if missing
    kernel_addresses = ["10.200.0.1/30"]
    addresses = ["10.200.0.2/30"]
    nat = false                  # true: source NAT to the bridge address (--tun-nat)
    publish = ["8080:10.0.0.1:80"]    # [HOSTADDR:]PORT:GUESTADDR:PORT[/udp]

    [[faults]]                   # at a time since the start: a fault (vnet.sim.faults)
    at = "2s"
    action = "partition"         # link-down | link-up (nic) | partition | heal (segment,
    segment = "lan"              #   groups) | impair (nic or segment; loss, delay, jitter,
    groups = [["alice", "bob"], ["server"]]  # rate in bit/s) | kill | restart (guest)
    for = "3s"                   # undo after this long (a kill: restart then)
    # after = { guest = "server/chat", prints = "listening" }   # at counts from then
    # action = "freeze", host = "server", for = "2s": paused as a VM (virtual time; thaw)

    [random_faults]              # a plan drawn from the seed, within these bounds:
    within = "60s"               # every fault starts in the first minute
    partitions = 3               # up to 3 partitions (of segments, default all) ...
    partition_max = "5s"         # ... of up to 5 s each
    link_flaps = 2               # up to 2 link flaps (of nics = ["host/eth0"], default all)
    link_flap_max = "1s"
    kills = 1                    # up to 1 kill of one of kill_guests = ["server/chat"],
    restart_max = "2s"           #   restarted up to 2 s later (no restart_max: stays dead)
    # freezes = 1, freeze_max = "1s", freeze_hosts = ["server"]   (virtual time)

    [[hosts.server.guests]]
    name = "chat"
    module = "../examples/build/chat_server.wasm"   # relative to this file
    args = ["7000"]
    env = { GREETING = "hi" }
    dirs = ["www::/www"]         # HOST[::GUEST], relative to this file
    tcplisten = ["0.0.0.0:8080"]
    start = "500ms"              # start delay
    stop = "30s"                 # killed then (a kill fault)
    memory = "64MB"              # limits: linear memory, open fds, CPU time
    fds = 64
    cpu_time = "10s"
    devices = [{ name = "tun0", kind = "tun", addresses = ["10.8.0.1/24"] }]  # TUN/TAP it
                                 # may create (/dev/net/tun), or "tun0:tun=10.8.0.1/24"

Units are strings everywhere, the same as in the Python API (`vnet.units`):
durations "2ms" / "1.5s" / "3min", rates "10Mbit" / "1Gbit" / "512kbit", sizes
"64KB" / "1MB" (1024-based, as tc).

Several guests on one host share its stack, ports and interfaces. Every
problem — a TOML syntax error, an unknown key, a bad CIDR, overlapping
addresses, a missing module, a reference to an undefined segment — is a
`TopologyError` naming the file, the line and the reason. This module reads
files and validates; `vnet.sim.runner` runs what it returns.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vnet.link.guest_tun import GuestDeviceGrant, parse_guest_tun
from vnet.sim.faults import ACTIONS, FaultSpec, RandomFaults

if TYPE_CHECKING:
    from firewall import Ruleset
    from firewall.nat_router import NatBehaviour
    from vnet.guest.context import GuestLimits
    from vnet.link.impairment import Impairment
    from vnet.sim.topology_dns import DnsSpec


class TopologyError(Exception):
    """A bad topology file: `str()` is 'FILE:LINE: reason'."""

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass
class VxlanSpec:
    """A `[segments.NAME.vxlan]` table: the arguments of `vnet.link.vxlan.VxlanPort`."""

    vni: int
    local: str
    remotes: list[str]
    port: int = 4789
    line: int | None = None  # where the table is, for errors found when it opens


@dataclass
class LinkShape:
    """What a segment, a cable or one NIC does to frames (None: not set here).

    Keys `bandwidth`, `jitter`, `delay`, `queue` and `loss` / `reorder` /
    `duplicate`; a NIC's own values override its segment's (`over`).
    """

    loss: float | None = None
    reorder: float | None = None
    duplicate: float | None = None
    delay_ns: int | None = None
    jitter_ns: int | None = None
    bandwidth_bps: int | None = None
    queue_packets: int | None = None
    queue_bytes: int | None = None

    def over(self, base: LinkShape) -> LinkShape:
        """These values where set, else `base`'s."""
        return LinkShape(*(mine if mine is not None else theirs for mine, theirs in zip(
            self.astuple(), base.astuple(), strict=True)))

    def astuple(self) -> tuple[Any, ...]:
        return (self.loss, self.reorder, self.duplicate, self.delay_ns, self.jitter_ns,
                self.bandwidth_bps, self.queue_packets, self.queue_bytes)

    def impairment(self, seed: int, direction: str, cable: bool = False) -> Impairment | None:
        """The Impairment of one direction of one NIC ("tx": NIC to link, "rx": link to NIC).

        Loss, reordering and duplication apply both ways; on a segment the bandwidth
        and its queue too (the NIC's uplink and the switch port's egress, full duplex,
        store and forward: a frame is serialized twice), on a `cable` only on the way
        out (one wire); delay and jitter once, on the way out. None when nothing is set.
        """
        from vnet.link.impairment import Impairment

        loss, reorder, duplicate = self.loss or 0.0, self.reorder or 0.0, self.duplicate or 0.0
        delay = (self.delay_ns or 0) if direction == "tx" else 0
        jitter = (self.jitter_ns or 0) if direction == "tx" else 0
        rate = self.bandwidth_bps if direction == "tx" or not cable else None
        if not (loss or reorder or duplicate or delay or jitter or rate):
            return None
        return Impairment(loss=loss, reorder=reorder, duplicate=duplicate, delay_ns=delay,
                          jitter_ns=jitter, rate_bps=rate,
                          queue_limit=self.queue_packets if rate else None,
                          queue_limit_bytes=self.queue_bytes if rate else None, seed=seed)


@dataclass
class SegmentSpec:
    name: str
    latency_ns: int = 0
    snooping: bool = False
    loss: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0
    vxlan: VxlanSpec | None = None
    #: Every link key of the segment (loss, reorder, duplicate repeated here).
    shape: LinkShape = field(default_factory=LinkShape)
    #: A `[cables.NAME]`: a point-to-point link with two ends, not a switch.
    cable: bool = False


@dataclass
class NicSpec:
    segment: str
    addresses: list[str]
    name: str
    mtu: int = 1500
    mac: bytes | None = None  # None: allocated (on a VXLAN segment: derived, see runner)
    #: The NIC's own link keys (bandwidth, jitter, ...), over its segment's.
    shape: LinkShape = field(default_factory=LinkShape)
    #: Its address, gateway and resolvers come from a DHCP server (stack.dhcp).
    dhcp: bool = False


@dataclass
class GuestSpec:
    name: str
    module: Path
    args: list[str] = field(default_factory=list)
    env: list[tuple[str, str]] = field(default_factory=list)
    dirs: list[tuple[str, str]] = field(default_factory=list)
    tcplisten: list[tuple[str, int]] = field(default_factory=list)
    start_ns: int = 0
    #: `memory`, `fds`, `cpu_time` (a vnet.guest.context.GuestLimits), None: the defaults.
    limits: GuestLimits | None = None
    #: `stop`: killed this long after the run starts (None: runs to the end).
    stop_ns: int | None = None
    #: TUN/TAP devices granted to the guest (its `devices` key; `_guest_devices`).
    devices: list[GuestDeviceGrant] = field(default_factory=list)


@dataclass
class NatSpec:
    """A `[hosts.NAME.nat]` table: the arguments of `Host.nat`."""

    interface: str
    behaviour: NatBehaviour
    pool: list[str] | None = None
    nptv6: tuple[str, str] | None = None


@dataclass
class HostSpec:
    name: str
    forwarding: bool = False
    nics: list[NicSpec] = field(default_factory=list)
    routes: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    guests: list[GuestSpec] = field(default_factory=list)
    firewall: Ruleset | None = None  # each run attaches its own copy
    nat: list[NatSpec] = field(default_factory=list)
    #: Router advertisements it sends (`ra`), DHCP servers it runs (`dhcp_server`),
    #: static multicast routes (`mroutes`), a TUN bridge (`tun`): see `routers`.
    ra: list[RaSpec] = field(default_factory=list)
    dhcp_servers: list[DhcpServerSpec] = field(default_factory=list)
    mroutes: list[MrouteSpec] = field(default_factory=list)
    tun: TunSpec | None = None
    dns: DnsSpec | None = None  # a DNS server on this host (vnet.sim.topology_dns)
    resolvers: list[str] = field(default_factory=list)  # addresses or host names


@dataclass
class Topology:
    path: Path
    virtual_time: bool = False
    seed: int = 0
    schedule: str | None = None  # [sim] schedule: "fifo" / "explore" (vnet.scheduler)
    duration_ns: int | None = None
    clients: list[str] = field(default_factory=list)  # "host/guest"
    segments: dict[str, SegmentSpec] = field(default_factory=dict)
    hosts: dict[str, HostSpec] = field(default_factory=dict)
    #: ``[[faults]]`` in file order, and the ``[random_faults]`` bounds (vnet.sim.faults).
    faults: list[FaultSpec] = field(default_factory=list)
    random_faults: RandomFaults | None = None

    def guest_names(self) -> list[str]:
        return [f"{h.name}/{g.name}" for h in self.hosts.values() for g in h.guests]


_UNITS = {None: 1_000_000_000, "s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "µs": 1_000,
          "ns": 1, "m": 60_000_000_000, "min": 60_000_000_000, "h": 3_600_000_000_000}
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class _Locator:
    """Finds the line of a key path in the TOML source, for error messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        #: A host stamped out by `count` -> the table it came from ("client3" -> "client").
        self.host_aliases: dict[str, str] = {}

    def _table_start(self, table: str, index: int | None) -> int | None:
        pattern = re.compile(r"^\s*\[\[?\s*" + re.escape(table).replace(r"\.", r"\s*\.\s*")
                             + r"\s*\]\]?\s*(#.*)?$")
        seen = -1
        for number, line in enumerate(self.lines, 1):
            if pattern.match(line):
                seen += 1
                if index is None or seen == index:
                    return number
        return None

    def _is_table_prefix(self, table: str) -> bool:
        prefix = re.compile(r"^\s*\[\[?\s*" + re.escape(table) + r"\.")
        return any(prefix.match(line) for line in self.lines)

    def line(self, *path: str | int) -> int | None:
        """Best-effort line for a key path like ("hosts", "a", "nics", 1, "addresses").

        Walks the path through table headers ([a.b], and the n-th [[a.b]] for an
        index), then looks for `key =` inside the last table found.
        """
        if len(path) > 1 and path[0] == "hosts" and path[1] in self.host_aliases:
            path = ("hosts", self.host_aliases[str(path[1])], *path[2:])
        start = 1
        table: list[str] = []
        key: str | None = None
        i = 0
        while i < len(path):
            part = path[i]
            if isinstance(part, int):
                i += 1
                continue
            candidate = ".".join([*table, part])
            following = path[i + 1] if i + 1 < len(path) else None
            index = following if isinstance(following, int) else None
            found = self._table_start(candidate, index)
            if found is not None:
                table.append(part)
                start = found
            elif self._is_table_prefix(candidate):
                table.append(part)
            else:
                key = part
                break
            i += 1
        if key is None:
            return start
        key_pattern = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        for number in range(start, len(self.lines) + 1):
            text = self.lines[number - 1]
            if number > start and re.match(r"^\s*\[", text):
                break
            if key_pattern.match(text):
                return number
        return start


def _duration(value: Any, where: tuple[Path, _Locator, tuple[str | int, ...]]) -> int:
    """Nanoseconds from "500ms", "2s", 1.5 ... (vnet.units: the Python API's parser too)."""
    from vnet.units import parse_duration_ns

    path, locator, key = where
    try:
        return parse_duration_ns(value)
    except ValueError as e:
        raise TopologyError(path, locator.line(*key), str(e)) from None


def _check_keys(table: dict[str, Any], allowed: set[str], path: Path, locator: _Locator,
                key_path: tuple[str | int, ...], what: str) -> None:
    for key in table:
        if key not in allowed:
            raise TopologyError(path, locator.line(*key_path, key),
                                f"unknown key {key!r} in {what} "
                                f"(allowed: {', '.join(sorted(allowed))})")


def _expect(value: Any, kind: type | tuple[type, ...], path: Path, line: int | None,
            what: str) -> Any:
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TopologyError(path, line, f"{what} must be a {names}, not {value!r}")
    return value


def _firewall(hspec: dict[str, Any], path: Path, loc: _Locator, hkey: tuple[str, ...],
              base: Path) -> Ruleset | None:
    """A host's `firewall` (a rule file) or `firewall_rules` (inline), parsed and checked."""
    from firewall import RuleFileError, Ruleset
    from firewall.parser import parse_file

    if "firewall" in hspec and "firewall_rules" in hspec:
        raise TopologyError(path, loc.line(*hkey, "firewall_rules"), "give firewall (a rule "
                            "file) or firewall_rules (inline rules), not both")
    if "firewall" in hspec:
        line = loc.line(*hkey, "firewall")
        name = _expect(hspec["firewall"], str, path, line, "firewall")
        rules_path = Path(name) if Path(name).is_absolute() else base / name
        try:
            return parse_file(rules_path)
        except RuleFileError as e:
            raise TopologyError(path, line, f"firewall: {e.errors[0]}") from None
    if "firewall_rules" in hspec:
        line = loc.line(*hkey, "firewall_rules") or 1
        text = _expect(hspec["firewall_rules"], str, path, line, "firewall_rules")
        # a multi-line string starts on the line after the key
        source = loc.lines[line - 1] if line <= len(loc.lines) else ""
        first = line + 1 if source.rstrip().endswith(('"""', "'''")) else line
        try:
            return Ruleset.parse(text, file=str(path))
        except RuleFileError as e:
            problem = e.errors[0]
            raise TopologyError(path, first + problem.location.line - 1,
                                f"firewall_rules: {problem.message}") from None
    return None


def load(path: str | Path) -> Topology:
    """Read and validate a topology file."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise TopologyError(p, None, "no such file") from None
    except OSError as e:
        raise TopologyError(p, None, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise TopologyError(p, None, "not a text file (UTF-8)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        match = re.search(r"line (\d+)", str(e))
        raise TopologyError(p, int(match.group(1)) if match else None,
                            f"TOML syntax error: {e}") from None
    return parse(data, p, text)


def parse(data: dict[str, Any], path: Path, text: str = "") -> Topology:
    loc = _Locator(text)
    base = path.resolve().parent
    _check_keys(data, {"sim", "segments", "hosts", *_FAULT_TABLES, *_LINK_TABLES}, path, loc,
                (), "the top level")
    topo = Topology(path)

    sim = _expect(data.get("sim", {}), dict, path, loc.line("sim"), "[sim]")
    _check_keys(sim, {"virtual_time", "seed", "duration", "clients", "schedule"}, path, loc,
                ("sim",), "[sim]")
    _sim_schedule(sim, topo, path, loc)
    topo.virtual_time = _expect(sim.get("virtual_time", False), bool, path,
                                loc.line("sim", "virtual_time"), "virtual_time")
    topo.seed = _expect(sim.get("seed", 0), int, path, loc.line("sim", "seed"), "seed")
    if "duration" in sim:
        topo.duration_ns = _duration(sim["duration"], (path, loc, ("sim", "duration")))
    clients = _expect(sim.get("clients", []), list, path, loc.line("sim", "clients"), "clients")

    segments = _expect(data.get("segments", {}), dict, path, loc.line("segments"),
                       "[segments]")
    for name, spec in segments.items():
        key = ("segments", name)
        _expect(spec, dict, path, loc.line(*key), f"segment {name}")
        if not _NAME.match(name):
            raise TopologyError(path, loc.line(*key), f"bad segment name {name!r}")
        _check_keys(spec, {"latency", "snooping", "loss", "reorder", "duplicate", "vxlan",
                           *_SHAPE_KEYS}, path, loc, key, f"segment {name!r}")
        seg = SegmentSpec(name)
        if "latency" in spec:
            seg.latency_ns = _duration(spec["latency"], (path, loc, (*key, "latency")))
        seg.snooping = _expect(spec.get("snooping", False), bool, path,
                               loc.line(*key, "snooping"), "snooping")
        for field_name in ("loss", "reorder", "duplicate"):
            value = _expect(spec.get(field_name, 0.0), (int, float), path,
                            loc.line(*key, field_name), field_name)
            if not 0.0 <= value <= 1.0:
                raise TopologyError(path, loc.line(*key, field_name),
                                    f"{field_name} is a probability between 0 and 1")
            setattr(seg, field_name, float(value))
        seg.shape = _shape(spec, path, loc, key)
        if "vxlan" in spec:
            seg.vxlan = _vxlan(spec["vxlan"], path, loc, (*key, "vxlan"))
            if topo.virtual_time:
                raise TopologyError(path, loc.line(*key, "vxlan"),
                                    f"segment {name!r} has a VXLAN port, which runs in real "
                                    "time only (virtual_time = false)")
        topo.segments[name] = seg

    _cables(data, topo, path, loc)
    hosts = _expand_hosts(data, path, loc)
    if not hosts:
        raise TopologyError(path, None, "the topology has no hosts")
    seen_addresses: dict[str, str] = {}
    for hname, hspec in hosts.items():
        hkey = ("hosts", hname)
        _expect(hspec, dict, path, loc.line(*hkey), f"host {hname}")
        if not _NAME.match(hname):
            raise TopologyError(path, loc.line(*hkey), f"bad host name {hname!r}")
        _check_keys(hspec, {"forwarding", "nics", "routes", "guests", "firewall",
                            "firewall_rules", "nat", *_ROUTER_KEYS, "dns", "resolvers"},
                    path, loc, hkey,
                    f"host {hname!r}")
        host = HostSpec(hname)
        host.firewall = _firewall(hspec, path, loc, hkey, base)
        host.forwarding = _expect(hspec.get("forwarding", False), bool, path,
                                  loc.line(*hkey, "forwarding"), "forwarding")
        nics = _expect(hspec.get("nics", []), list, path, loc.line(*hkey, "nics"), "nics")
        for index, nspec in enumerate(nics):
            nkey = (*hkey, "nics", index)
            _expect(nspec, dict, path, loc.line(*nkey), "a nic")
            _check_keys(nspec, {"segment", "addresses", "name", "mtu", "mac", *_NIC_KEYS}, path,
                        loc, nkey, f"a nic of host {hname!r}")
            segment = _nic_link(nspec, topo, path, loc, nkey)
            addresses = _expect(nspec.get("addresses", []), list, path,
                                loc.line(*nkey, "addresses"), "addresses")
            for cidr in addresses:
                try:
                    iface = ipaddress.ip_interface(cidr)
                except (ValueError, TypeError):
                    raise TopologyError(path, loc.line(*nkey, "addresses"),
                                        f"bad address {cidr!r}: expected ADDRESS/PREFIX "
                                        "like 10.0.0.1/24") from None
                if "/" not in str(cidr):
                    raise TopologyError(path, loc.line(*nkey, "addresses"),
                                        f"address {cidr!r} needs a prefix length (/24, /64)")
                owner = seen_addresses.get(str(iface.ip))
                if owner is not None:
                    raise TopologyError(path, loc.line(*nkey, "addresses"),
                                        f"address {iface.ip} is used twice "
                                        f"({owner} and {hname})")
                seen_addresses[str(iface.ip)] = hname
            name = nspec.get("name", f"eth{index}")
            mtu = _expect(nspec.get("mtu", 1500), int, path, loc.line(*nkey, "mtu"), "mtu")
            if not 68 <= mtu <= 65535:
                raise TopologyError(path, loc.line(*nkey, "mtu"), "mtu must be 68-65535")
            mac = None
            if "mac" in nspec:
                mac_text = _expect(nspec["mac"], str, path, loc.line(*nkey, "mac"), "mac")
                if not _MAC.match(mac_text):
                    raise TopologyError(path, loc.line(*nkey, "mac"),
                                        f"bad mac {mac_text!r}: expected six hex bytes like "
                                        "02:00:00:00:00:01")
                mac = bytes.fromhex(mac_text.replace(":", "").replace("-", ""))
                if mac[0] & 1:
                    raise TopologyError(path, loc.line(*nkey, "mac"),
                                        f"mac {mac_text} is a group address, not a NIC's")
            host.nics.append(NicSpec(segment, [str(a) for a in addresses], str(name), mtu, mac))
            _nic_extras(nspec, host, host.nics[-1], hspec, path, loc, nkey)
        if "nat" in hspec:
            host.nat = _nats(hspec["nat"], host, path, loc, hkey)
        routes = _expect(hspec.get("routes", []), list, path, loc.line(*hkey, "routes"),
                         "routes")
        for route in routes:
            line = loc.line(*hkey, "routes")
            _expect(route, dict, path, line, "a route")
            _check_keys(route, {"to", "via", "dev"}, path, loc, (*hkey, "routes"), "a route")
            to = route.get("to")
            try:
                ipaddress.ip_network(to if to != "default" else "0.0.0.0/0", strict=False)
                if route.get("via") is not None:
                    ipaddress.ip_address(route["via"])
            except (ValueError, TypeError):
                raise TopologyError(path, line, f"bad route {route!r}") from None
            _check_route(route, host, hspec, path, line)
            host.routes.append((str(to), route.get("via"), route.get("dev")))
        guests = _expect(hspec.get("guests", []), list, path, loc.line(*hkey, "guests"),
                         "guests")
        for index, gspec in enumerate(guests):
            gkey = (*hkey, "guests", index)
            _expect(gspec, dict, path, loc.line(*gkey), "a guest")
            _check_keys(gspec, {"name", "module", "args", "env", "dirs", "tcplisten", "start",
                                *_GUEST_LIMIT_KEYS, "devices"}, path, loc, gkey,
                        f"a guest of host {hname!r}")
            module = gspec.get("module")
            if not isinstance(module, str):
                raise TopologyError(path, loc.line(*gkey), "a guest needs module = \"FILE.wasm\"")
            module_path = (base / module) if not Path(module).is_absolute() else Path(module)
            if not module_path.is_file():
                raise TopologyError(path, loc.line(*gkey, "module"),
                                    f"guest module {module} not found ({module_path})")
            gname = gspec.get("name", module_path.stem)
            if not isinstance(gname, str) or not _NAME.match(gname):
                raise TopologyError(path, loc.line(*gkey, "name"), f"bad guest name {gname!r}")
            if any(g.name == gname for g in host.guests):
                raise TopologyError(path, loc.line(*gkey, "name"),
                                    f"host {hname!r} already has a guest named {gname!r}")
            args = _expect(gspec.get("args", []), list, path, loc.line(*gkey, "args"), "args")
            env = _expect(gspec.get("env", {}), dict, path, loc.line(*gkey, "env"), "env")
            dirs = []
            for item in _expect(gspec.get("dirs", []), list, path, loc.line(*gkey, "dirs"),
                                "dirs"):
                host_dir, sep, guest_dir = str(item).partition("::")
                host_path = base / host_dir if not Path(host_dir).is_absolute() else Path(
                    host_dir)
                if not host_path.is_dir():
                    raise TopologyError(path, loc.line(*gkey, "dirs"),
                                        f"directory {host_dir} not found ({host_path})")
                dirs.append((str(host_path), guest_dir if sep else host_dir))
            listeners = []
            for item in _expect(gspec.get("tcplisten", []), list, path,
                                loc.line(*gkey, "tcplisten"), "tcplisten"):
                addr, _, port = str(item).rpartition(":")
                try:
                    ipaddress.ip_address(addr.strip("[]"))
                    port_number = int(port)
                    if not 0 < port_number < 65536:
                        raise ValueError
                except ValueError:
                    raise TopologyError(path, loc.line(*gkey, "tcplisten"),
                                        f"bad tcplisten {item!r}: expected ADDR:PORT") from None
                listeners.append((addr.strip("[]"), port_number))
            start = _duration(gspec.get("start", 0), (path, loc, (*gkey, "start")))
            host.guests.append(GuestSpec(gname, module_path, [str(a) for a in args],
                                         [(str(k), str(v)) for k, v in env.items()], dirs,
                                         listeners, start))
            _guest_limits(gspec, host.guests[-1], path, loc, gkey)
            host.guests[-1].devices = _guest_devices(gspec.get("devices", []), path,
                                                     loc.line(*gkey, "devices"))
        _router_keys(hspec, host, topo, path, loc, hkey)
        topo.hosts[hname] = host
    _check_links(topo, path, loc)
    for host in topo.hosts.values():
        for index, nat in enumerate(host.nat):
            for address in nat.pool or ():
                owner = seen_addresses.get(address)
                if owner is not None and owner != host.name:
                    raise TopologyError(path, loc.line("hosts", host.name, "nat", index, "pool"),
                                        f"NAT pool address {address} belongs to host {owner}")
    names = set(topo.guest_names())
    for client in clients:
        if client not in names:
            raise TopologyError(path, loc.line("sim", "clients"),
                                f"client {client!r} is not a guest (guests: "
                                f"{', '.join(sorted(names)) or 'none'})")
    topo.clients = [str(c) for c in clients]
    _faults(data, topo, path, loc)
    _guest_stops(topo)
    from vnet.sim.topology_dns import dns_keys  # dns = {...}, resolvers = [...]

    dns_keys(hosts, topo, path, loc)
    return topo


_NAT_KEYS = {"interface", "behaviour", "mapping", "filtering", "hairpin", "ports", "port_parity",
             "pool", "pairing", "udp_timeout", "tcp_established_timeout",
             "tcp_transitory_timeout", "icmp_timeout", "max_mappings", "max_mappings_per_host",
             "nptv6"}
_NAT_FLAGS = ("hairpin", "port_parity", "pairing")
_NAT_TIMEOUTS = ("udp_timeout", "tcp_established_timeout", "tcp_transitory_timeout",
                 "icmp_timeout")
_COMPOUND = re.compile(r"(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|min|m|h)")


def _vxlan(spec: Any, path: Path, loc: _Locator, key: tuple[str, ...]) -> VxlanSpec:
    """Validate a `[segments.NAME.vxlan]` table (addresses, VNI, port; explicit remotes)."""
    line = loc.line(*key)
    _expect(spec, dict, path, line, "vxlan")
    _check_keys(spec, {"vni", "local", "remote", "port"}, path, loc, key, "vxlan")
    if "vni" not in spec:
        raise TopologyError(path, line, "vxlan needs vni = N (0..16777215)")
    vni = _expect(spec["vni"], int, path, loc.line(*key, "vni"), "vni")
    if not 0 <= vni <= 0xFFFFFF:
        raise TopologyError(path, loc.line(*key, "vni"), f"vni must be 0..16777215, not {vni}")
    port = _expect(spec.get("port", 4789), int, path, loc.line(*key, "port"), "port")
    if not 1 <= port <= 65535:
        raise TopologyError(path, loc.line(*key, "port"), f"port must be 1..65535, not {port}")
    if "local" not in spec:
        raise TopologyError(path, line, "vxlan needs local = \"ADDRESS\" (this machine's "
                            "underlay address)")
    local_text = _expect(spec["local"], str, path, loc.line(*key, "local"), "local")
    try:
        local = ipaddress.ip_address(local_text)
    except ValueError:
        raise TopologyError(path, loc.line(*key, "local"),
                            f"local {local_text!r} is not an IP address") from None
    if local.is_multicast or local.is_unspecified:
        raise TopologyError(path, loc.line(*key, "local"),
                            f"local {local} must be a unicast address of this machine")
    if "remote" not in spec:
        raise TopologyError(path, line, "vxlan needs remote = [\"ADDRESS\", ...]: every "
                            "other end, given explicitly")
    remote_line = loc.line(*key, "remote")
    remotes_value = spec["remote"]
    if isinstance(remotes_value, str):
        remotes_value = [remotes_value]
    remote_list = _expect(remotes_value, list, path, remote_line, "remote")
    if not remote_list:
        raise TopologyError(path, remote_line, "remote is empty: name every other end "
                            "explicitly (there is no default remote and no multicast group)")
    remotes: list[str] = []
    for text in remote_list:
        _expect(text, str, path, remote_line, "a remote")
        try:
            remote = ipaddress.ip_address(text)
        except ValueError:
            raise TopologyError(path, remote_line, f"remote {text!r} is not an IP address"
                                ) from None
        if remote.version != local.version:
            raise TopologyError(path, remote_line, f"remote {remote} is not of the address "
                                f"family of local {local}")
        if remote.is_multicast or remote.is_unspecified or str(remote) == "255.255.255.255":
            raise TopologyError(path, remote_line, f"remote {remote} must be one unicast "
                                "address (multicast groups and broadcast are refused)")
        if remote == local:
            raise TopologyError(path, remote_line, f"remote {remote} is the local address")
        remotes.append(str(remote))
    return VxlanSpec(vni, str(local), remotes, port, line)


def _compound_duration(value: Any, path: Path, line: int | None) -> float:
    """Seconds from a number of seconds or a string like "5m", "2h4m", "1m30s", "240s"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str) and value.strip():
        text = value.replace(" ", "")
        parts = list(_COMPOUND.finditer(text))
        if parts and "".join(m.group(0) for m in parts) == text:
            return sum(float(m.group(1)) * _UNITS[m.group(2)] for m in parts) / 1e9
    raise TopologyError(path, line, f"bad duration {value!r} (examples: \"5m\", \"2h4m\", "
                        "\"240s\", 300)")


def _nats(value: Any, host: HostSpec, path: Path, loc: _Locator,
          hkey: tuple[str, ...]) -> list[NatSpec]:
    """A host's `nat` table (or array of tables), checked against its NICs."""
    tables = value if isinstance(value, list) else [value]
    if not host.forwarding:
        raise TopologyError(path, loc.line(*hkey, "nat"), f"host {host.name!r} has a NAT but "
                            "does not forward: set forwarding = true (a router)")
    found = []
    for index, table in enumerate(tables):
        key: tuple[str | int, ...] = (*hkey, "nat", index)
        found.append(_nat(_expect(table, dict, path, loc.line(*key), "nat"), host, path, loc,
                          key))
        if sum(1 for n in found if n.interface == found[-1].interface) > 1:
            raise TopologyError(path, loc.line(*key, "interface"),
                                f"interface {found[-1].interface!r} has two NATs")
    return found


def _nat(spec: dict[str, Any], host: HostSpec, path: Path, loc: _Locator,
         key: tuple[str | int, ...]) -> NatSpec:
    from firewall.nat_router import KINDS, PRESETS, nat_behaviour

    _check_keys(spec, _NAT_KEYS, path, loc, key, f"the nat of host {host.name!r}")
    interface = spec.get("interface")
    nic_names = [n.name for n in host.nics]
    if not isinstance(interface, str):
        raise TopologyError(path, loc.line(*key), "a nat needs interface = \"NAME\" (the "
                            "outside interface: " + (", ".join(nic_names) or "no nics") + ")")
    if interface not in nic_names:
        raise TopologyError(path, loc.line(*key, "interface"),
                            f"host {host.name!r} has no interface {interface!r} "
                            f"(its nics: {', '.join(nic_names) or 'none'})")
    behaviour = spec.get("behaviour", "port-restricted-cone")
    if behaviour not in PRESETS:
        raise TopologyError(path, loc.line(*key, "behaviour"),
                            f"NAT behaviour {behaviour!r}: one of {', '.join(PRESETS)}")
    fields: dict[str, object] = {}
    for name in ("mapping", "filtering"):
        if name in spec:
            if spec[name] not in KINDS:
                raise TopologyError(path, loc.line(*key, name),
                                    f"NAT {name} {spec[name]!r}: one of {', '.join(KINDS)}")
            fields[name] = spec[name]
    for name in _NAT_FLAGS:
        if name in spec:
            fields[name] = _expect(spec[name], bool, path, loc.line(*key, name), name)
    if "ports" in spec:
        if spec["ports"] not in ("preserve", "random"):
            raise TopologyError(path, loc.line(*key, "ports"),
                                f"NAT ports {spec['ports']!r}: \"preserve\" or \"random\"")
        fields["ports"] = spec["ports"]
    for name in ("max_mappings", "max_mappings_per_host"):
        if name in spec:
            fields[name] = _expect(spec[name], int, path, loc.line(*key, name), name)
    for name in _NAT_TIMEOUTS:
        if name in spec:
            fields[f"{name}_s"] = _compound_duration(spec[name], path, loc.line(*key, name))
    try:
        chosen = nat_behaviour(behaviour, **fields)
    except ValueError as e:  # a timeout below its RFC minimum, a limit below 1
        culprit = next((name for name in (*_NAT_TIMEOUTS, "max_mappings") if name in str(e)),
                       None)
        raise TopologyError(path, loc.line(*key, culprit) if culprit else loc.line(*key),
                            str(e).replace("_s:", ":")) from None
    pool = None
    if "pool" in spec:
        items = _expect(spec["pool"], list, path, loc.line(*key, "pool"), "pool")
        pool = []
        for item in items:
            try:
                pool.append(str(ipaddress.IPv4Address(item)))
            except (ValueError, TypeError):
                raise TopologyError(path, loc.line(*key, "pool"),
                                    f"NAT pool: {item!r} is not an IPv4 address") from None
        if not pool:
            raise TopologyError(path, loc.line(*key, "pool"), "NAT pool is empty")
    nptv6 = None
    if "nptv6" in spec:
        line = loc.line(*key, "nptv6")
        table = _expect(spec["nptv6"], dict, path, line, "nptv6")
        _check_keys(table, {"inside", "outside"}, path, loc, (*key, "nptv6"), "nptv6")
        try:
            inside, outside = (ipaddress.IPv6Network(table[k]) for k in ("inside", "outside"))
        except KeyError:
            raise TopologyError(path, line, "nptv6 needs inside and outside prefixes") from None
        except (ValueError, TypeError) as e:
            raise TopologyError(path, line, f"nptv6: {e}") from None
        if inside.prefixlen != outside.prefixlen or inside.prefixlen > 64:
            raise TopologyError(path, line, "nptv6: two prefixes of the same length, at most "
                                "/64 (RFC 6296)")
        nptv6 = (str(inside), str(outside))
    return NatSpec(interface, chosen, pool, nptv6)


# --- faults (vnet.sim.faults) -------------------------------------------------------

_FAULT_TABLES = ("faults", "random_faults")
_FAULT_KEYS = {"at", "action", "nic", "segment", "groups", "guest", "loss", "delay", "jitter",
               "rate", "for", "after", "host"}
_RANDOM_FAULT_KEYS = {"within", "partitions", "partition_max", "segments", "link_flaps",
                      "link_flap_max", "nics", "kills", "kill_guests", "restart_max",
                      "freezes", "freeze_max", "freeze_hosts"}


def _fault_nic(topo: Topology, value: Any, path: Path, line: int | None) -> str:
    name = _expect(value, str, path, line, "nic")
    host, _, ifname = name.partition("/")
    if host not in topo.hosts or ifname not in [n.name for n in topo.hosts[host].nics]:
        known = [f"{h.name}/{n.name}" for h in topo.hosts.values() for n in h.nics]
        raise TopologyError(path, line, f"no NIC {name!r} (nics: {', '.join(known) or 'none'})")
    return name


def _fault_guest(topo: Topology, value: Any, path: Path, line: int | None) -> str:
    name = _expect(value, str, path, line, "guest")
    if name not in topo.guest_names():
        raise TopologyError(path, line, f"no guest {name!r} (guests: "
                            f"{', '.join(topo.guest_names()) or 'none'})")
    return name


def _fault_segment(topo: Topology, value: Any, path: Path, line: int | None) -> str:
    name = _expect(value, str, path, line, "segment")
    if name not in topo.segments:
        raise TopologyError(path, line, f"segment {name!r} is not defined under [segments]")
    return name


def _faults(data: dict[str, Any], topo: Topology, path: Path, loc: _Locator) -> None:
    """``[[faults]]`` and ``[random_faults]``, checked against the hosts, NICs and guests."""
    items = _expect(data.get("faults", []), list, path, loc.line("faults"), "[[faults]]")
    for index, item in enumerate(items):
        key: tuple[str | int, ...] = ("faults", index)
        _expect(item, dict, path, loc.line(*key), "a fault")
        _check_keys(item, _FAULT_KEYS, path, loc, key, "a fault")
        action = item.get("action")
        if action not in ACTIONS:
            raise TopologyError(path, loc.line(*key, "action"),
                                f"fault action {action!r}: one of {', '.join(ACTIONS)}")
        if "at" not in item:
            raise TopologyError(path, loc.line(*key), "a fault needs at = \"TIME\" (e.g. \"2s\")")
        spec = FaultSpec(_duration(item["at"], (path, loc, (*key, "at"))), action)
        if action in ("link-down", "link-up") or ("nic" in item):
            if "nic" not in item and action in ("link-down", "link-up"):
                raise TopologyError(path, loc.line(*key), f"{action} needs nic = \"HOST/IF\"")
            if "nic" in item:
                spec.nic = _fault_nic(topo, item["nic"], path, loc.line(*key, "nic"))
        if "segment" in item:
            spec.segment = _fault_segment(topo, item["segment"], path, loc.line(*key, "segment"))
        if action in ("partition", "heal") and spec.segment is None:
            raise TopologyError(path, loc.line(*key), f"{action} needs segment = \"NAME\"")
        if action == "impair" and spec.nic is None and spec.segment is None:
            raise TopologyError(path, loc.line(*key), "impair needs nic or segment")
        if action == "partition":
            line = loc.line(*key, "groups")
            groups = _expect(item.get("groups"), list, path, line or loc.line(*key), "groups")
            on_segment = {h.name for h in topo.hosts.values()
                          if any(n.segment == spec.segment for n in h.nics)}
            for group in groups:
                _expect(group, list, path, line, "a group")
                for host in group:
                    if host not in on_segment:
                        raise TopologyError(path, line, f"host {host!r} has no NIC on segment "
                                            f"{spec.segment!r}")
                spec.groups.append([str(h) for h in group])
            if not spec.groups:
                raise TopologyError(path, line, "groups = [[\"a\"], [\"b\"]]: at least one")
        if action in ("kill", "restart"):
            if "guest" not in item:
                raise TopologyError(path, loc.line(*key), f"{action} needs guest = \"HOST/NAME\"")
            spec.guest = _fault_guest(topo, item["guest"], path, loc.line(*key, "guest"))
        if "loss" in item:
            spec.loss = float(_expect(item["loss"], (int, float), path, loc.line(*key, "loss"),
                                      "loss"))
            if not 0.0 <= spec.loss <= 1.0:
                raise TopologyError(path, loc.line(*key, "loss"), "loss is a probability 0-1")
        for name in ("delay", "jitter"):
            if name in item:
                setattr(spec, f"{name}_ns", _duration(item[name], (path, loc, (*key, name))))
        if "rate" in item:
            spec.rate_bps = _expect(item["rate"], int, path, loc.line(*key, "rate"), "rate")
            if spec.rate_bps <= 0:
                raise TopologyError(path, loc.line(*key, "rate"), "rate is bits per second > 0")
        if "for" in item:
            if action in ("link-up", "heal", "restart"):
                raise TopologyError(path, loc.line(*key, "for"), f"{action} takes no \"for\"")
            spec.duration_ns = _duration(item["for"], (path, loc, (*key, "for")))
        if "after" in item:
            line = loc.line(*key, "after")
            after = _expect(item["after"], dict, path, line, "after")
            _check_keys(after, {"guest", "prints"}, path, loc, (*key, "after"), "after")
            if "guest" not in after or "prints" not in after:
                raise TopologyError(path, line, "after = { guest = \"HOST/NAME\", prints = "
                                    "\"TEXT\" }")
            spec.after_guest = _fault_guest(topo, after["guest"], path, line)
            spec.after_output = _expect(after["prints"], str, path, line, "prints")
            if not spec.after_output:
                raise TopologyError(path, line, "after: prints must not be empty")
        _fault_host(item, spec, topo, path, loc, key)
        topo.faults.append(spec)
    if "random_faults" in data:
        key = ("random_faults",)
        table = _expect(data["random_faults"], dict, path, loc.line(*key), "[random_faults]")
        _check_keys(table, _RANDOM_FAULT_KEYS, path, loc, key, "[random_faults]")
        if "within" not in table:
            raise TopologyError(path, loc.line(*key), "[random_faults] needs within = \"60s\"")
        bounds = RandomFaults(_duration(table["within"], (path, loc, (*key, "within"))))
        for name in ("partitions", "link_flaps", "kills"):
            if name in table:
                count = _expect(table[name], int, path, loc.line(*key, name), name)
                if count < 0:
                    raise TopologyError(path, loc.line(*key, name), f"{name} must be >= 0")
                setattr(bounds, name, count)
        for name in ("partition_max", "link_flap_max", "restart_max"):
            if name in table:
                setattr(bounds, f"{name}_ns", _duration(table[name], (path, loc, (*key, name))))
        bounds.segments = [_fault_segment(topo, s, path, loc.line(*key, "segments"))
                           for s in _expect(table.get("segments", []), list, path,
                                            loc.line(*key, "segments"), "segments")]
        bounds.nics = [_fault_nic(topo, n, path, loc.line(*key, "nics"))
                       for n in _expect(table.get("nics", []), list, path,
                                        loc.line(*key, "nics"), "nics")]
        bounds.kill_guests = [_fault_guest(topo, g, path, loc.line(*key, "kill_guests"))
                              for g in _expect(table.get("kill_guests", []), list, path,
                                               loc.line(*key, "kill_guests"), "kill_guests")]
        if bounds.kills and not bounds.kill_guests:
            raise TopologyError(path, loc.line(*key, "kills"),
                                "kills needs kill_guests = [\"HOST/NAME\", ...]")
        _random_freezes(table, bounds, topo, path, loc, key)
        topo.random_faults = bounds


# --- schedule exploration and frozen hosts (vnet.scheduler, vnet.sim.faults) ---------------

def _sim_schedule(sim: dict[str, Any], topo: Topology, path: Path, loc: _Locator) -> None:
    """``[sim] schedule = "explore" | "fifo"`` (absent: the caller's default, explore)."""
    from vnet.scheduler import SCHEDULES

    if "schedule" not in sim:
        return
    line = loc.line("sim", "schedule")
    value = _expect(sim["schedule"], str, path, line, "schedule")
    if value not in SCHEDULES:
        raise TopologyError(path, line, f"schedule {value!r}: one of {', '.join(SCHEDULES)}")
    topo.schedule = value


def _fault_host(item: dict[str, Any], spec: FaultSpec, topo: Topology, path: Path,
                loc: _Locator, key: tuple[str | int, ...]) -> None:
    """A fault's ``host = "NAME"`` (freeze / thaw need one; nothing else takes it)."""
    if spec.action not in ("freeze", "thaw"):
        if "host" in item:
            raise TopologyError(path, loc.line(*key, "host"),
                                f"{spec.action} takes no host (only freeze and thaw do)")
        return
    if "host" not in item:
        raise TopologyError(path, loc.line(*key), f"{spec.action} needs host = \"NAME\"")
    name = _expect(item["host"], str, path, loc.line(*key, "host"), "host")
    if name not in topo.hosts:
        raise TopologyError(path, loc.line(*key, "host"), f"no host {name!r} (hosts: "
                            f"{', '.join(topo.hosts) or 'none'})")
    spec.host = name  # virtual time only: `vnet sim` refuses it in real time


def _random_freezes(table: dict[str, Any], bounds: RandomFaults, topo: Topology, path: Path,
                    loc: _Locator, key: tuple[str, ...]) -> None:
    """``[random_faults]`` freezes = N, freeze_max = "1s", freeze_hosts = ["NAME", ...]."""
    if "freezes" in table:
        count = _expect(table["freezes"], int, path, loc.line(*key, "freezes"), "freezes")
        if count < 0:
            raise TopologyError(path, loc.line(*key, "freezes"), "freezes must be >= 0")
        bounds.freezes = count
    if "freeze_max" in table:
        bounds.freeze_max_ns = _duration(table["freeze_max"], (path, loc, (*key, "freeze_max")))
    line = loc.line(*key, "freeze_hosts")
    for name in _expect(table.get("freeze_hosts", []), list, path, line, "freeze_hosts"):
        if name not in topo.hosts:
            raise TopologyError(path, line, f"no host {name!r} (hosts: "
                                f"{', '.join(topo.hosts) or 'none'})")
        bounds.freeze_hosts.append(name)


# --- links, templates, routers (bandwidth/jitter/queue, cables, count, RA, DHCP, ...) ---

_LINK_TABLES = ("cables", "defaults", "templates")
_SHAPE_KEYS = {"bandwidth", "jitter", "delay", "queue"}
_NIC_KEYS = {"cable", "dhcp", "loss", "reorder", "duplicate", *_SHAPE_KEYS}
_ROUTER_KEYS = {"dhcp", "ra", "dhcp_server", "mroutes", "tun"}
_GUEST_LIMIT_KEYS = {"memory", "fds", "cpu_time", "stop"}
_TEMPLATE_KEYS = {"template", "count"}
_COUNT_EXPR = re.compile(r"\{([0-9n+\-*/% ()]+)\}")


@dataclass
class RaPrefix:
    """One Prefix Information option of a router's advertisements (RFC 4861 4.6.2)."""

    prefix: str
    on_link: bool = True
    autonomous: bool = True
    valid_s: int = 86400
    preferred_s: int = 14400


@dataclass
class RaSpec:
    """A `[hosts.NAME.ra]` table: router advertisements on one interface (stack.ra_sender)."""

    interface: str
    prefixes: list[RaPrefix] = field(default_factory=list)
    interval_s: float = 600.0  # MaxRtrAdvInterval; MinRtrAdvInterval is a third of it
    lifetime_s: int = 1800  # the router lifetime (0: not a default router)
    mtu: int | None = None  # None: the interface's; 0: no MTU option
    rdnss: list[str] = field(default_factory=list)
    rdnss_lifetime_s: int | None = None  # None: 3 x interval (RFC 8106 suggests >= 3x)
    managed: bool = False
    other: bool = False
    hop_limit: int = 64


@dataclass
class DhcpServerSpec:
    """A `[hosts.NAME.dhcp_server]` table: a DHCPv4 server on one interface (stack.dhcp)."""

    interface: str
    first: str
    last: str
    lease_s: int = 3600
    router: str | None = None  # None: the interface's address; "" : no router option
    dns: list[str] = field(default_factory=list)
    #: host name or MAC -> fixed address ("static leases")
    fixed: dict[str, str] = field(default_factory=dict)


@dataclass
class MrouteSpec:
    """One `mroutes` entry: forward `group` arriving on `source` out of `to` (TTL - 1)."""

    group: str
    source: str
    to: list[str]


@dataclass
class TunSpec:
    """A `[hosts.NAME.tun]` table: a TUN bridge to the kernel (real time only), as
    `vnet run --tun` (vnet.link.tun_bridge)."""

    device: str = "vnet0"
    netns: str | None = None
    kernel_addresses: list[str] = field(default_factory=lambda: ["10.200.0.1/30"])
    addresses: list[str] = field(default_factory=lambda: ["10.200.0.2/30"])
    nat: bool = False
    publish: list[str] = field(default_factory=list)
    line: int | None = None


def _shape(spec: dict[str, Any], path: Path, loc: _Locator,
           key: tuple[str | int, ...]) -> LinkShape:
    """The link keys of a segment, cable or NIC, in vnet.units' units."""
    from vnet.units import parse_duration_ns, parse_rate_bps, parse_size_bytes

    shape = LinkShape()
    for name in ("loss", "reorder", "duplicate"):
        if name in spec:
            value = _expect(spec[name], (int, float), path, loc.line(*key, name), name)
            if not 0.0 <= value <= 1.0:
                raise TopologyError(path, loc.line(*key, name),
                                    f"{name} is a probability between 0 and 1")
            setattr(shape, name, float(value))
    for name, parse_unit, attribute in (("bandwidth", parse_rate_bps, "bandwidth_bps"),
                                        ("jitter", parse_duration_ns, "jitter_ns"),
                                        ("delay", parse_duration_ns, "delay_ns")):
        if name in spec:
            try:
                setattr(shape, attribute, parse_unit(spec[name]))
            except ValueError as e:
                raise TopologyError(path, loc.line(*key, name), f"{name}: {e}") from None
    if "queue" in spec:
        line = loc.line(*key, "queue")
        value = spec["queue"]
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise TopologyError(path, line, "queue is at least 1 packet")
            shape.queue_packets = value
        else:
            try:
                shape.queue_bytes = parse_size_bytes(value)
            except ValueError as e:
                raise TopologyError(path, line, f"queue: a number of packets (100) or a "
                                    f"size (\"64KB\"): {e}") from None
            if shape.queue_bytes < 1:
                raise TopologyError(path, line, "queue is at least 1 byte")
        if "bandwidth" not in spec:
            raise TopologyError(path, line, "queue needs bandwidth = \"RATE\" beside it (a "
                                "queue fills only behind a rate limit)")
    return shape


def _cables(data: dict[str, Any], topo: Topology, path: Path, loc: _Locator) -> None:
    """`[cables.NAME]`: point-to-point links (two NICs name them with `cable = "NAME"`)."""
    cables = _expect(data.get("cables", {}), dict, path, loc.line("cables"), "[cables]")
    for name, spec in cables.items():
        key = ("cables", name)
        _expect(spec, dict, path, loc.line(*key), f"cable {name}")
        if not _NAME.match(name):
            raise TopologyError(path, loc.line(*key), f"bad cable name {name!r}")
        if name in topo.segments:
            raise TopologyError(path, loc.line(*key), f"{name!r} is both a segment and a "
                                "cable")
        _check_keys(spec, {"latency", "loss", "reorder", "duplicate", *_SHAPE_KEYS}, path, loc,
                    key, f"cable {name!r}")
        seg = SegmentSpec(name, cable=True)
        if "latency" in spec:
            seg.latency_ns = _duration(spec["latency"], (path, loc, (*key, "latency")))
        seg.shape = _shape(spec, path, loc, key)
        seg.loss = seg.shape.loss or 0.0
        seg.reorder = seg.shape.reorder or 0.0
        seg.duplicate = seg.shape.duplicate or 0.0
        topo.segments[name] = seg


def _nic_link(nspec: dict[str, Any], topo: Topology, path: Path, loc: _Locator,
              nkey: tuple[str | int, ...]) -> str:
    """The segment or cable a NIC is on."""
    if "segment" in nspec and "cable" in nspec:
        raise TopologyError(path, loc.line(*nkey, "cable"), "a nic is on a segment or a "
                            "cable, not both")
    kind = "cable" if "cable" in nspec else "segment"
    name = nspec.get(kind)
    if not isinstance(name, str):
        raise TopologyError(path, loc.line(*nkey), "a nic needs segment = \"NAME\" (or "
                            "cable = \"NAME\")")
    spec = topo.segments.get(name)
    if spec is None or spec.cable != (kind == "cable"):
        table = "[cables]" if kind == "cable" else "[segments]"
        raise TopologyError(path, loc.line(*nkey, kind), f"{kind} {name!r} is not defined "
                            f"under {table}")
    return name


def _nic_extras(nspec: dict[str, Any], host: HostSpec, nic: NicSpec, hspec: dict[str, Any],
                path: Path, loc: _Locator, nkey: tuple[str | int, ...]) -> None:
    nic.shape = _shape(nspec, path, loc, nkey)
    host_dhcp = _expect(hspec.get("dhcp", False), bool, path, loc.line(*nkey[:2], "dhcp"),
                        "dhcp")
    nic.dhcp = _expect(nspec.get("dhcp", host_dhcp), bool, path, loc.line(*nkey, "dhcp"),
                       "dhcp")
    if nic.dhcp and any(ipaddress.ip_interface(a).version == 4 for a in nic.addresses):
        raise TopologyError(path, loc.line(*nkey, "dhcp"), f"nic {nic.name} of host "
                            f"{host.name!r} has dhcp = true and a static IPv4 address: one "
                            "or the other")


def _check_links(topo: Topology, path: Path, loc: _Locator) -> None:
    """A cable has at most two ends."""
    ends: dict[str, list[str]] = {}
    for host in topo.hosts.values():
        for index, nic in enumerate(host.nics):
            if topo.segments[nic.segment].cable:
                ends.setdefault(nic.segment, []).append(f"{host.name}/{nic.name}")
                if len(ends[nic.segment]) > 2:
                    raise TopologyError(path, loc.line("hosts", host.name, "nics", index,
                                                       "cable"),
                                        f"cable {nic.segment!r} already joins "
                                        f"{' and '.join(ends[nic.segment][:2])}")


def _check_route(route: dict[str, Any], host: HostSpec, hspec: dict[str, Any], path: Path,
                 line: int | None) -> None:
    """A route goes through an interface the host has, to a gateway on one of its links."""
    names = [n.name for n in host.nics]
    if "tun" in hspec:
        names.append("tun0")
    dev = route.get("dev")
    if dev is not None and dev not in [*names, "lo"]:
        raise TopologyError(path, line, f"route to {route.get('to')}: host {host.name!r} has "
                            f"no interface {dev!r} (its nics: {', '.join(names) or 'none'})")
    via = route.get("via")
    if via is None:
        if dev is None:
            raise TopologyError(path, line, f"route to {route.get('to')}: give via = "
                                "\"GATEWAY\" or dev = \"INTERFACE\"")
        return
    gateway = ipaddress.ip_address(via)
    candidates = [n for n in host.nics if dev is None or n.name == dev]
    if any(gateway in ipaddress.ip_interface(a).network for n in candidates
           for a in n.addresses) or (gateway.version == 6 and gateway.is_link_local):
        return
    if any(n.dhcp for n in candidates) and gateway.version == 4:
        return  # the DHCP lease will say; the stack refuses it then
    where = f" through {dev}" if dev else ""
    raise TopologyError(path, line, f"route to {route.get('to')}: gateway {via} is not on a "
                        f"network of host {host.name!r}{where} (its addresses: "
                        + (", ".join(a for n in candidates for a in n.addresses) or "none")
                        + ")")


def _guest_limits(gspec: dict[str, Any], guest: GuestSpec, path: Path, loc: _Locator,
                  gkey: tuple[str | int, ...]) -> None:
    """`memory = "64MB"`, `fds = 64`, `cpu_time = "2s"`, `stop = "30s"` of one guest."""
    from vnet.guest.context import GuestLimits
    from vnet.units import parse_size_bytes

    if not any(k in gspec for k in ("memory", "fds", "cpu_time")):
        limits = None
    else:
        limits = GuestLimits()
        if "memory" in gspec:
            try:
                limits.memory_bytes = parse_size_bytes(gspec["memory"])
            except ValueError as e:
                raise TopologyError(path, loc.line(*gkey, "memory"), f"memory: {e}") from None
            if limits.memory_bytes < 65536:
                raise TopologyError(path, loc.line(*gkey, "memory"), "memory is at least "
                                    "\"64KB\" (one wasm page)")
        if "fds" in gspec:
            limits.max_fds = _expect(gspec["fds"], int, path, loc.line(*gkey, "fds"), "fds")
            if limits.max_fds < 3:
                raise TopologyError(path, loc.line(*gkey, "fds"), "fds is at least 3 (stdio)")
        if "cpu_time" in gspec:
            cpu_ns = _duration(gspec["cpu_time"], (path, loc, (*gkey, "cpu_time")))
            limits.cpu_time_ms = max(1, cpu_ns // 1_000_000)
    guest.limits = limits
    if "stop" in gspec:
        guest.stop_ns = _duration(gspec["stop"], (path, loc, (*gkey, "stop")))
        if guest.stop_ns <= guest.start_ns:
            raise TopologyError(path, loc.line(*gkey, "stop"), "stop comes after start")


def _guest_stops(topo: Topology) -> None:
    """A guest's `stop` is a kill fault at that time (vnet.sim.faults)."""
    for host in topo.hosts.values():
        for guest in host.guests:
            if guest.stop_ns is not None:
                topo.faults.append(FaultSpec(guest.stop_ns, "kill",
                                             guest=f"{host.name}/{guest.name}"))


def _count_text(text: str, n: int) -> str:
    """`{n}`, `{10+n}`, `{2*n-1}` in a stamped host's strings, with n = 1, 2, ..."""
    import ast

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name) and node.id == "n":
            return n
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp):
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, (ast.FloorDiv, ast.Div)) and right:
                return left // right
            if isinstance(node.op, ast.Mod) and right:
                return left % right
        raise ValueError(text)

    return _COUNT_EXPR.sub(lambda m: str(value(ast.parse(m.group(1), mode="eval"))), text)


def _stamp(value: Any, n: int) -> Any:
    if isinstance(value, str):
        return _count_text(value, n)
    if isinstance(value, list):
        return [_stamp(v, n) for v in value]
    if isinstance(value, dict):
        return {k: _stamp(v, n) for k, v in value.items()}
    return value


def _expand_hosts(data: dict[str, Any], path: Path, loc: _Locator) -> dict[str, Any]:
    """`[hosts]` with `[defaults]` and `[templates.NAME]` merged in and `count` stamped out.

    A host's own keys win over its template's, which win over `[defaults]`
    (whole values: a host's `nics` replaces the template's). `count = N` makes
    N hosts named NAME1..NAMEN (or with `{n}` in a quoted name: "client{n}")
    with `{n}`, `{10+n}`, `{2*n}` ... replaced in every string of their table.
    """
    hosts = _expect(data.get("hosts", {}), dict, path, loc.line("hosts"), "[hosts]")
    defaults = _expect(data.get("defaults", {}), dict, path, loc.line("defaults"),
                       "[defaults]")
    templates = _expect(data.get("templates", {}), dict, path, loc.line("templates"),
                        "[templates]")
    for tname, template in templates.items():
        _expect(template, dict, path, loc.line("templates", tname), f"template {tname}")
    expanded: dict[str, Any] = {}
    for hname, hspec in hosts.items():
        hkey = ("hosts", hname)
        _expect(hspec, dict, path, loc.line(*hkey), f"host {hname}")
        merged = dict(defaults)
        if "template" in hspec:
            tname = hspec["template"]
            if not isinstance(tname, str) or tname not in templates:
                raise TopologyError(path, loc.line(*hkey, "template"),
                                    f"template {tname!r} is not defined under [templates] "
                                    f"(templates: {', '.join(templates) or 'none'})")
            merged.update(templates[tname])
        merged.update(hspec)
        count = merged.pop("count", None)
        merged.pop("template", None)
        if count is None:
            if hname in expanded:
                raise TopologyError(path, loc.line(*hkey), f"host {hname!r} is defined twice")
            expanded[hname] = merged
            continue
        count = _expect(count, int, path, loc.line(*hkey, "count"), "count")
        if not 1 <= count <= 4096:
            raise TopologyError(path, loc.line(*hkey, "count"), "count must be 1-4096")
        for n in range(1, count + 1):
            name = _count_text(hname, n) if "{" in hname else f"{hname}{n}"
            if name in expanded or (name in hosts and name != hname):
                raise TopologyError(path, loc.line(*hkey, "count"),
                                    f"count makes a host {name!r}, which already exists")
            try:
                expanded[name] = _stamp(merged, n)
            except (ValueError, SyntaxError, RecursionError):
                raise TopologyError(path, loc.line(*hkey), "bad {expression} in a counted "
                                    "host: use n, integers and + - * // % ()") from None
            loc.host_aliases[name] = hname
    return expanded


def _interface_of(host: HostSpec, value: Any, path: Path, line: int | None,
                  what: str) -> NicSpec:
    name = _expect(value, str, path, line, f"{what} interface")
    for nic in host.nics:
        if nic.name == name:
            return nic
    raise TopologyError(path, line, f"{what}: host {host.name!r} has no interface {name!r} "
                        f"(its nics: {', '.join(n.name for n in host.nics) or 'none'})")


def _router_keys(hspec: dict[str, Any], host: HostSpec, topo: Topology, path: Path,
                 loc: _Locator, hkey: tuple[str, ...]) -> None:
    """`ra`, `dhcp_server`, `mroutes`, `tun` of one host."""
    if "ra" in hspec:
        value = hspec["ra"]
        for index, table in enumerate(value if isinstance(value, list) else [value]):
            key: tuple[str | int, ...] = (*hkey, "ra", index) if isinstance(value, list) else (
                *hkey, "ra")
            host.ra.append(_ra(_expect(table, dict, path, loc.line(*key), "ra"), host, path,
                               loc, key))
    if "dhcp_server" in hspec:
        value = hspec["dhcp_server"]
        for index, table in enumerate(value if isinstance(value, list) else [value]):
            key = (*hkey, "dhcp_server", index) if isinstance(value, list) else (
                *hkey, "dhcp_server")
            host.dhcp_servers.append(_dhcp_server(
                _expect(table, dict, path, loc.line(*key), "dhcp_server"), host, path, loc,
                key))
    if "mroutes" in hspec:
        line = loc.line(*hkey, "mroutes")
        if not host.forwarding:
            raise TopologyError(path, line, f"host {host.name!r} has mroutes but does not "
                                "forward: set forwarding = true (a router)")
        for item in _expect(hspec["mroutes"], list, path, line, "mroutes"):
            _expect(item, dict, path, line, "an mroute")
            _check_keys(item, {"group", "from", "to"}, path, loc, (*hkey, "mroutes"),
                        "an mroute")
            try:
                group = ipaddress.ip_address(item.get("group"))
            except (ValueError, TypeError):
                raise TopologyError(path, line, f"mroute group {item.get('group')!r} is not "
                                    "an IP address") from None
            if not group.is_multicast or (group.version == 4 and str(group).startswith(
                    "224.0.0.")) or (group.version == 6 and (group.packed[1] & 0x0F) <= 2):
                raise TopologyError(path, line, f"mroute group {group} is not a routable "
                                    "multicast group (224.0.0.x and ff02:: stay on their link)")
            source = _interface_of(host, item.get("from"), path, line, "mroute from").name
            outs = item.get("to")
            outs = [outs] if isinstance(outs, str) else _expect(outs, list, path, line, "to")
            to = [_interface_of(host, o, path, line, "mroute to").name for o in outs]
            if not to or source in to:
                raise TopologyError(path, line, "mroute to: other interfaces than from")
            host.mroutes.append(MrouteSpec(str(group), source, to))
    if "tun" in hspec:
        host.tun = _tun(hspec["tun"], topo, path, loc, (*hkey, "tun"))


def _seconds(value: Any, path: Path, line: int | None) -> int:
    return int(_compound_duration(value, path, line))


def _ra(spec: dict[str, Any], host: HostSpec, path: Path, loc: _Locator,
        key: tuple[str | int, ...]) -> RaSpec:
    _check_keys(spec, {"interface", "prefixes", "interval", "lifetime", "mtu", "rdnss",
                       "rdnss_lifetime", "managed", "other", "hop_limit"}, path, loc, key,
                f"the ra of host {host.name!r}")
    if not host.forwarding:
        raise TopologyError(path, loc.line(*key), f"host {host.name!r} advertises itself as "
                            "a router (ra) but does not forward: set forwarding = true")
    nic = _interface_of(host, spec.get("interface"), path, loc.line(*key, "interface")
                        or loc.line(*key), "ra")
    ra = RaSpec(nic.name)
    line = loc.line(*key, "prefixes")
    items = _expect(spec.get("prefixes", []), list, path, line, "prefixes")
    if not items:  # default: the interface's global /64s
        items = [str(ipaddress.ip_interface(a).network) for a in nic.addresses
                 if ipaddress.ip_interface(a).version == 6
                 and not ipaddress.ip_interface(a).is_link_local]
        if not items:
            raise TopologyError(path, loc.line(*key), f"ra on {nic.name}: no prefixes given "
                                "and the interface has no IPv6 prefix to advertise")
    for item in items:
        table = {"prefix": item} if isinstance(item, str) else _expect(
            item, dict, path, line, "a prefix")
        _check_keys(table, {"prefix", "on_link", "autonomous", "valid", "preferred"}, path,
                    loc, (*key, "prefixes"), "a prefix")
        try:
            network = ipaddress.IPv6Network(table.get("prefix"))
        except (ValueError, TypeError):
            raise TopologyError(path, line, f"ra prefix {table.get('prefix')!r}: expected an "
                                "IPv6 prefix like \"fd00:1::/64\"") from None
        prefix = RaPrefix(str(network))
        for flag in ("on_link", "autonomous"):
            if flag in table:
                setattr(prefix, flag, _expect(table[flag], bool, path, line, flag))
        if "valid" in table:
            prefix.valid_s = _seconds(table["valid"], path, line)
        if "preferred" in table:
            prefix.preferred_s = _seconds(table["preferred"], path, line)
        if prefix.preferred_s > prefix.valid_s:
            raise TopologyError(path, line, f"ra prefix {network}: preferred lifetime above "
                                "the valid lifetime (RFC 4862 5.5.3 ignores it)")
        ra.prefixes.append(prefix)
    if "interval" in spec:
        ra.interval_s = _compound_duration(spec["interval"], path, loc.line(*key, "interval"))
        if not 4 <= ra.interval_s <= 1800:
            raise TopologyError(path, loc.line(*key, "interval"), "ra interval (MaxRtrAdv"
                                "Interval) is 4 s to 1800 s (RFC 4861 6.2.1)")
    if "lifetime" in spec:
        ra.lifetime_s = _seconds(spec["lifetime"], path, loc.line(*key, "lifetime"))
        if ra.lifetime_s > 9000:
            raise TopologyError(path, loc.line(*key, "lifetime"), "ra lifetime is at most "
                                "9000 s (RFC 4861 6.2.1)")
    if "mtu" in spec:
        ra.mtu = _expect(spec["mtu"], int, path, loc.line(*key, "mtu"), "mtu")
        if ra.mtu and not 1280 <= ra.mtu <= nic.mtu:
            raise TopologyError(path, loc.line(*key, "mtu"), f"ra mtu is 1280 to the "
                                f"interface's {nic.mtu} (0: no MTU option)")
    for name in ("managed", "other"):
        if name in spec:
            setattr(ra, name, _expect(spec[name], bool, path, loc.line(*key, name), name))
    if "hop_limit" in spec:
        ra.hop_limit = _expect(spec["hop_limit"], int, path, loc.line(*key, "hop_limit"),
                               "hop_limit")
        if not 0 <= ra.hop_limit <= 255:
            raise TopologyError(path, loc.line(*key, "hop_limit"), "hop_limit is 0-255")
    line = loc.line(*key, "rdnss")
    for text in _expect(spec.get("rdnss", []), list, path, line, "rdnss"):
        try:
            ra.rdnss.append(str(ipaddress.IPv6Address(text)))
        except (ValueError, TypeError):
            raise TopologyError(path, line, f"rdnss {text!r} is not an IPv6 address") from None
    if "rdnss_lifetime" in spec:
        ra.rdnss_lifetime_s = _seconds(spec["rdnss_lifetime"], path,
                                       loc.line(*key, "rdnss_lifetime"))
    return ra


def _dhcp_server(spec: dict[str, Any], host: HostSpec, path: Path, loc: _Locator,
                 key: tuple[str | int, ...]) -> DhcpServerSpec:
    _check_keys(spec, {"interface", "range", "lease", "router", "dns", "fixed"}, path, loc,
                key, f"the dhcp_server of host {host.name!r}")
    nic = _interface_of(host, spec.get("interface"), path, loc.line(*key, "interface")
                        or loc.line(*key), "dhcp_server")
    own = [ipaddress.ip_interface(a) for a in nic.addresses
           if ipaddress.ip_interface(a).version == 4]
    if not own:
        raise TopologyError(path, loc.line(*key, "interface"), f"dhcp_server on {nic.name}: "
                            "the interface needs a static IPv4 address")
    network = own[0].network
    line = loc.line(*key, "range")
    pool = spec.get("range")
    if not (isinstance(pool, list) and len(pool) == 2):
        raise TopologyError(path, line or loc.line(*key), "dhcp_server needs range = "
                            "[\"FIRST\", \"LAST\"] (addresses it leases)")
    try:
        first, last = (ipaddress.IPv4Address(a) for a in pool)
    except (ValueError, TypeError):
        raise TopologyError(path, line, f"range {pool!r}: two IPv4 addresses") from None
    if first > last or first not in network or last not in network or (
            first == network.network_address or last == network.broadcast_address):
        raise TopologyError(path, line, f"range {first} - {last} is not inside {network} "
                            "(host addresses, first <= last)")
    server = DhcpServerSpec(nic.name, str(first), str(last))
    if "lease" in spec:
        server.lease_s = _seconds(spec["lease"], path, loc.line(*key, "lease"))
        if server.lease_s < 10:
            raise TopologyError(path, loc.line(*key, "lease"), "lease is at least 10 s")
    if "router" in spec:
        router = _expect(spec["router"], str, path, loc.line(*key, "router"), "router")
        if router:
            try:
                if ipaddress.IPv4Address(router) not in network:
                    raise ValueError
            except ValueError:
                raise TopologyError(path, loc.line(*key, "router"), f"router {router!r} is not "
                                    f"an address in {network}") from None
        server.router = router
    line = loc.line(*key, "dns")
    for text in _expect(spec.get("dns", []), list, path, line, "dns"):
        try:
            server.dns.append(str(ipaddress.IPv4Address(text)))
        except (ValueError, TypeError):
            raise TopologyError(path, line, f"dns {text!r} is not an IPv4 address") from None
    line = loc.line(*key, "fixed")
    for who, address in _expect(spec.get("fixed", {}), dict, path, line, "fixed").items():
        try:
            fixed = ipaddress.IPv4Address(address)
        except (ValueError, TypeError):
            raise TopologyError(path, line, f"fixed {who}: {address!r} is not an IPv4 "
                                "address") from None
        if fixed not in network:
            raise TopologyError(path, line, f"fixed {who}: {fixed} is not in {network}")
        server.fixed[str(who).lower()] = str(fixed)
    return server


def _tun(spec: Any, topo: Topology, path: Path, loc: _Locator,
         key: tuple[str, ...]) -> TunSpec:
    line = loc.line(*key)
    _expect(spec, dict, path, line, "tun")
    _check_keys(spec, {"device", "netns", "kernel_addresses", "addresses", "nat", "publish"},
                path, loc, key, "tun")
    if topo.virtual_time:
        raise TopologyError(path, line, "a TUN bridge runs in real time only "
                            "(virtual_time = false)")
    tun = TunSpec(line=line)
    if "device" in spec:
        tun.device = _expect(spec["device"], str, path, loc.line(*key, "device"), "device")
        if not re.match(r"^[A-Za-z0-9_.-]{1,15}$", tun.device):
            raise TopologyError(path, loc.line(*key, "device"), f"device {tun.device!r}: "
                                "1 to 15 letters, digits, _ . -")
    if "netns" in spec:
        tun.netns = _expect(spec["netns"], str, path, loc.line(*key, "netns"), "netns")
    for name in ("kernel_addresses", "addresses"):
        if name in spec:
            items = _expect(spec[name], list, path, loc.line(*key, name), name)
            for item in items:
                try:
                    ipaddress.ip_interface(item)
                except (ValueError, TypeError):
                    raise TopologyError(path, loc.line(*key, name), f"{name}: bad address "
                                        f"{item!r}") from None
            setattr(tun, name, [str(a) for a in items])
    if "nat" in spec:
        tun.nat = _expect(spec["nat"], bool, path, loc.line(*key, "nat"), "nat")
    if "publish" in spec:
        from firewall.nat import Publish

        for item in _expect(spec["publish"], list, path, loc.line(*key, "publish"), "publish"):
            try:
                Publish.parse(str(item))
            except ValueError as e:
                raise TopologyError(path, loc.line(*key, "publish"), f"publish: {e}") from None
            tun.publish.append(str(item))
    return tun


def _guest_devices(value: object, path: Path, line: int | None) -> list[GuestDeviceGrant]:
    """A guest's ``devices``: the TUN/TAP devices it may create through /dev/net/tun.

    Each is a table ``{name = "tun0", kind = "tun" | "tap", addresses = ["10.8.0.1/24"],
    routes = ["10.2.0.0/24"], mtu = 1500}`` (only ``name`` required) or the string
    ``"NAME[:tun|tap][=CIDR,...]"`` as ``vnet run --guest-tun`` takes it.
    """
    if not isinstance(value, list):
        raise TopologyError(path, line, "devices must be a list of devices")
    grants: list[GuestDeviceGrant] = []
    for item in value:
        try:
            if isinstance(item, str):
                grant = parse_guest_tun(item)
            elif isinstance(item, dict):
                unknown = set(item) - {"name", "kind", "addresses", "routes", "mtu"}
                if unknown:
                    raise ValueError(f"unknown key {sorted(unknown)[0]!r} (keys: name, kind, "
                                     "addresses, routes, mtu)")
                if not isinstance(item.get("name"), str):
                    raise ValueError("a device needs name = \"tun0\"")
                grant = GuestDeviceGrant(item["name"], str(item.get("kind", "tun")),
                                         tuple(str(a) for a in item.get("addresses", [])),
                                         tuple(str(r) for r in item.get("routes", [])),
                                         int(item.get("mtu", 1500)))
            else:
                raise ValueError(f"{item!r} is neither a table nor \"NAME[:KIND][=CIDR,...]\"")
        except (ValueError, TypeError) as e:
            raise TopologyError(path, line, f"bad device: {e}") from None
        if any(g.name == grant.name for g in grants):
            raise TopologyError(path, line, f"device {grant.name} is granted twice")
        grants.append(grant)
    return grants
