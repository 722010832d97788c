"""Rules, chains and rule sets, and how a packet is judged against them.

A `Ruleset` is a set of named `Chain`s. The chains called `input`, `output`
and `forward` are *base chains*: the stack's firewall hooks of the same
names start there, and each has a default `policy` (accept or drop). Other
chains are reached by `jump` (which returns) or `goto` (which does not).
A chain is an ordered list of `Rule`s; the first rule whose every match
expression holds decides, in file order. A rule with no verdict (only a
`log`) lets evaluation go on to the next rule. Every rule and every policy
counts the packets and bytes it saw.

A rule is its match expressions (`Expr` subclasses: family, protocol,
addresses with prefixes, sets, names and the dynamic `@lan`/`@local` sets,
ports, ICMP type/code, TCP flags, connection state, interfaces, rate
limits), an optional `log`, and a verdict: accept, drop, reject (a TCP
reset or an ICMP/ICMPv6 unreachable, `RejectSpec`), jump, goto or return.
Expressions are immutable descriptions; `Ruleset.link()` compiles each into
a small closure over a `PacketInfo` (and a rate limiter's private state),
resolves jumps and rejects loops, so evaluation is a loop over closures.

`Ruleset.evaluate(hook, packet, now_ns)` returns a `Verdict`: `action` is
"accept", "drop" or "reject" (with `reject`, the response to send), `rule`
the deciding rule (None for the policy) and `logs` the log statements that
fired on the way, each of which becomes a log line and a capture comment.
Verdicts for a rule are built once, so judging a packet allocates nothing
unless something logs.

Rules are built from text (`Ruleset.parse`, `Chain.append("tcp dport 22
accept")`, see `firewall.parser`) or from Python (`Rule.build(proto="tcp",
dport=22, action="accept")`). `Ruleset.format()` prints the rules back in
the same syntax, with counters. This module touches nothing outside its
objects: the clock comes in with each packet, names come from the
`NameTable` the owner attaches, and `@lan`/`@local` from its `Environment`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .conntrack import STATE_NAMES
from .names import NamePattern, NameTable, is_name_pattern
from .packet import (
    ACK,
    CWR,
    ECE,
    FIN,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_IGMP,
    PROTO_TCP,
    PROTO_UDP,
    PSH,
    RST,
    SYN,
    URG,
    PacketInfo,
)
from .sets import AddressSet, PortSet, SetValueError

__all__ = [
    "HOOKS",
    "AddressExpr",
    "Chain",
    "CtStateExpr",
    "Environment",
    "Expr",
    "FamilyExpr",
    "IcmpCodeExpr",
    "IcmpTypeExpr",
    "IfaceExpr",
    "LimitExpr",
    "Location",
    "LogStatement",
    "PortExpr",
    "ProtoExpr",
    "RejectSpec",
    "Rule",
    "RuleBuildError",
    "Ruleset",
    "TcpFlagsExpr",
    "Verdict",
]

#: Base chain name -> the stack hook it is attached to.
HOOKS = ("input", "output", "forward")

ACCEPT = "accept"
DROP = "drop"
REJECT = "reject"
JUMP = "jump"
GOTO = "goto"
RETURN = "return"
CONTINUE = "continue"  # no verdict: go on with the next rule
TERMINAL = (ACCEPT, DROP, REJECT)

PROTOCOLS = {"tcp": PROTO_TCP, "udp": PROTO_UDP, "icmp": PROTO_ICMP, "icmpv6": PROTO_ICMPV6,
             "ipv6-icmp": PROTO_ICMPV6, "igmp": PROTO_IGMP, "gre": 47, "esp": 50, "ah": 51,
             "sctp": 132, "udplite": 136}
PROTOCOL_NAMES = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP: "icmp",
                  PROTO_ICMPV6: "icmpv6", PROTO_IGMP: "igmp", 47: "gre", 50: "esp", 51: "ah",
                  132: "sctp", 136: "udplite"}

ICMP_TYPES = {
    "echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
    "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10,
    "time-exceeded": 11, "parameter-problem": 12, "timestamp-request": 13,
    "timestamp-reply": 14, "info-request": 15, "info-reply": 16,
    "address-mask-request": 17, "address-mask-reply": 18,
}
ICMPV6_TYPES = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
    "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
    "mld-listener-query": 130, "mld-listener-report": 131, "mld-listener-done": 132,
    "mld-listener-reduction": 132, "nd-router-solicit": 133, "nd-router-advert": 134,
    "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136, "nd-redirect": 137,
    "router-renumbering": 138, "ind-neighbor-solicit": 141, "ind-neighbor-advert": 142,
    "mld2-listener-report": 143,
}
ICMP_CODES = {
    "net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2,
    "port-unreachable": 3, "frag-needed": 4, "net-prohibited": 9, "host-prohibited": 10,
    "admin-prohibited": 13,
}
ICMPV6_CODES = {
    "no-route": 0, "admin-prohibited": 1, "addr-unreachable": 3, "port-unreachable": 4,
    "policy-fail": 5, "reject-route": 6,
}
#: nft's `icmpx` codes: (ICMPv4 code, ICMPv6 code) of destination unreachable.
ICMPX_CODES = {"port-unreachable": (3, 4), "admin-prohibited": (13, 1), "no-route": (0, 0),
               "host-unreachable": (1, 3)}
TCP_FLAGS = {"fin": FIN, "syn": SYN, "rst": RST, "psh": PSH, "ack": ACK, "urg": URG,
             "ecn": ECE, "ece": ECE, "cwr": CWR}
_FLAG_ORDER = ("fin", "syn", "rst", "psh", "ack", "urg", "ecn", "cwr")

_RATE_UNITS = {"second": 1_000_000_000, "minute": 60_000_000_000, "hour": 3_600_000_000_000,
               "day": 86_400_000_000_000, "week": 604_800_000_000_000}
_BYTE_UNITS = {"bytes": 1, "kbytes": 1024, "mbytes": 1024 * 1024}

Predicate = Callable[[PacketInfo], bool]


class RuleBuildError(ValueError):
    """A rule built from Python values that cannot be (the message says why)."""


@dataclass(frozen=True)
class Location:
    """Where a rule came from: file (or "<string>"), 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Environment(Protocol):
    """What `@local` and `@lan` mean on the host a rule set is attached to."""

    def local_addresses(self) -> AddressSet:
        """The host's own addresses."""
        ...

    def local_networks(self) -> AddressSet:
        """The networks of the host's non-loopback interfaces (its own virtual LANs)."""
        ...

    def lan_interfaces(self) -> frozenset[str]:
        """The names of the interfaces those networks are on (`iifname @lan`)."""
        ...


class _NoEnvironment:
    _empty = AddressSet()

    def local_addresses(self) -> AddressSet:
        return self._empty

    def local_networks(self) -> AddressSet:
        return self._empty

    def lan_interfaces(self) -> frozenset[str]:
        return frozenset()


def _flags_text(value: int, sep: str = ",") -> str:
    return sep.join(n for n in _FLAG_ORDER if value & TCP_FLAGS[n]) or "0x0"


def _set_text(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _neg(negate: bool) -> str:
    return "!= " if negate else ""


# ==========================================================================================
# Match expressions
# ==========================================================================================
class Expr:
    """One match expression. Immutable; `compile` makes its predicate."""

    #: The IP version this expression implies (None: either).
    family: int | None = None
    #: The protocols this expression implies (None: any).
    protocols: frozenset[int] | None = None
    #: The hooks where it can match (None: all).
    hooks: frozenset[str] | None = None

    def compile(self, ruleset: Ruleset) -> Predicate:
        raise NotImplementedError

    def __str__(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"


class FamilyExpr(Expr):
    """`meta nfproto ipv4|ipv6`."""

    def __init__(self, version: int) -> None:
        if version not in (4, 6):
            raise RuleBuildError(f"IP version is 4 or 6, not {version!r}")
        self.family = version

    def compile(self, ruleset: Ruleset) -> Predicate:
        version = self.family
        return lambda pkt: pkt.version == version

    def __str__(self) -> str:
        return f"meta nfproto ipv{self.family}"


class ProtoExpr(Expr):
    """`meta l4proto X` (also `ip protocol X`, v4 only, and `ip6 nexthdr X`, v6 only)."""

    def __init__(self, protocols: Iterable[int], negate: bool = False,
                 family: int | None = None) -> None:
        self.values = frozenset(protocols)
        self.negate = negate
        self.family = family
        if not negate:
            self.protocols = self.values

    def compile(self, ruleset: Ruleset) -> Predicate:
        values, negate, family = self.values, self.negate, self.family
        if family is not None:
            return lambda pkt: pkt.version == family and (pkt.proto in values) != negate
        if len(values) == 1 and not negate:
            (only,) = values
            return lambda pkt: pkt.proto == only
        return lambda pkt: (pkt.proto in values) != negate

    def __str__(self) -> str:
        names = [PROTOCOL_NAMES.get(p, str(p)) for p in sorted(self.values)]
        spelling = {None: "meta l4proto", 4: "ip protocol", 6: "ip6 nexthdr"}[self.family]
        return f"{spelling} {_neg(self.negate)}{_set_text(names)}"


class AddressValue:
    """What an address expression compares against: prefixes, names, dynamic sets."""

    __slots__ = ("addresses", "dynamic", "items", "names")

    def __init__(self, items: Iterable[Any]) -> None:
        plain: list[Any] = []
        names: list[str] = []
        dynamic: set[str] = set()
        shown: list[str] = []
        for item in items:
            if isinstance(item, str):
                text = item.strip()
                if text in ("@lan", "@local"):
                    dynamic.add(text[1:])
                    shown.append(text)
                    continue
                if is_name_pattern(text) and not _looks_numeric(text):
                    names.append(text)
                    shown.append(text.lower().rstrip("."))
                    continue
                plain.append(text)
                shown.append(text)
            else:
                plain.append(item)
                shown.append(str(item))
        try:
            self.addresses = AddressSet(plain)
        except SetValueError as e:
            raise RuleBuildError(str(e)) from None
        self.names = NamePattern(names)
        self.dynamic = frozenset(dynamic)
        self.items = shown
        if not shown:
            raise RuleBuildError("an empty address set matches nothing")

    @property
    def versions(self) -> frozenset[int]:
        if self.names or self.dynamic:
            return frozenset((4, 6))
        return self.addresses.versions


def _looks_numeric(text: str) -> bool:
    return all(part.isdigit() for part in text.split(".") if part)


class AddressExpr(Expr):
    """`ip saddr X`, `ip6 daddr X`, or family-agnostic `saddr X` / `daddr X`."""

    def __init__(self, field: str, value: AddressValue | Iterable[Any] | str,
                 negate: bool = False, family: int | None = None) -> None:
        if field not in ("saddr", "daddr"):
            raise RuleBuildError(f"an address field is saddr or daddr, not {field!r}")
        if isinstance(value, str):
            value = [value]
        self.field = field
        self.value = value if isinstance(value, AddressValue) else AddressValue(value)
        self.negate = negate
        self.family = family
        if family is not None:
            other = self.value.addresses.versions - {family}
            if other:
                wrong = next(iter(other))
                raise RuleBuildError(
                    f"{'ip' if family == 4 else 'ip6'} {field} matches IPv{family}, but "
                    f"the value holds IPv{wrong} addresses")

    def compile(self, ruleset: Ruleset) -> Predicate:
        aset = self.value.addresses
        pattern = self.value.names
        dynamic = self.value.dynamic
        negate = self.negate
        family = self.family
        src = self.field == "saddr"
        simple = not pattern and not dynamic

        def contains(addr: bytes, now: int) -> bool:
            if addr in aset:
                return True
            if pattern and ruleset.names.matches(pattern, addr, now):
                return True
            if "local" in dynamic and addr in ruleset.env.local_addresses():
                return True
            return "lan" in dynamic and addr in ruleset.env.local_networks()

        if simple and family is None:
            if src:
                return lambda pkt: (pkt.src in aset) != negate
            return lambda pkt: (pkt.dst in aset) != negate
        if simple:
            if src:
                return lambda pkt: pkt.version == family and (pkt.src in aset) != negate
            return lambda pkt: pkt.version == family and (pkt.dst in aset) != negate
        if src:
            return lambda pkt: ((family is None or pkt.version == family)
                                and contains(pkt.src, pkt.now) != negate)
        return lambda pkt: ((family is None or pkt.version == family)
                            and contains(pkt.dst, pkt.now) != negate)

    def __str__(self) -> str:
        prefix = {None: "", 4: "ip ", 6: "ip6 "}[self.family]
        return f"{prefix}{self.field} {_neg(self.negate)}{_set_text(self.value.items)}"


class PortExpr(Expr):
    """`tcp dport X`, `udp sport X`, or `th dport X` (TCP or UDP)."""

    def __init__(self, proto: str, field: str, ports: PortSet | Iterable[Any] | int | str,
                 negate: bool = False) -> None:
        if proto not in ("tcp", "udp", "th"):
            raise RuleBuildError(f"ports belong to tcp, udp or th, not {proto!r}")
        if field not in ("sport", "dport"):
            raise RuleBuildError(f"a port field is sport or dport, not {field!r}")
        if isinstance(ports, (int, str)):
            ports = [ports]
        try:
            self.ports = ports if isinstance(ports, PortSet) else PortSet(ports)
        except SetValueError as e:
            raise RuleBuildError(str(e)) from None
        if not self.ports:
            raise RuleBuildError("an empty port set matches nothing")
        self.proto = proto
        self.field = field
        self.negate = negate
        self.port_protocols = frozenset({"tcp": (PROTO_TCP,), "udp": (PROTO_UDP,),
                                         "th": (PROTO_TCP, PROTO_UDP)}[proto])
        self.protocols = self.port_protocols

    def compile(self, ruleset: Ruleset) -> Predicate:
        ports = self.ports
        negate = self.negate
        protos = self.port_protocols
        if len(protos) == 1:
            (proto,) = protos
            if len(ports.ranges.intervals) == 1 and not negate:
                low, high = ports.ranges.intervals[0]
                if self.field == "dport":
                    return lambda pkt: pkt.proto == proto and pkt.l4_ok and (
                        low <= pkt.dport <= high)
                return lambda pkt: pkt.proto == proto and pkt.l4_ok and low <= pkt.sport <= high
            if self.field == "dport":
                return lambda pkt: pkt.proto == proto and pkt.l4_ok and (
                    (pkt.dport in ports) != negate)
            return lambda pkt: pkt.proto == proto and pkt.l4_ok and (
                (pkt.sport in ports) != negate)
        if self.field == "dport":
            return lambda pkt: pkt.proto in protos and pkt.l4_ok and (
                (pkt.dport in ports) != negate)
        return lambda pkt: pkt.proto in protos and pkt.l4_ok and (
            (pkt.sport in ports) != negate)

    def __str__(self) -> str:
        return f"{self.proto} {self.field} {_neg(self.negate)}{_set_text(self.ports.items)}"


class IcmpTypeExpr(Expr):
    """`icmp type X` (IPv4) or `icmpv6 type X` (IPv6)."""

    def __init__(self, version: int, types: Iterable[int], negate: bool = False) -> None:
        self.family = version
        self.values = frozenset(types)
        if not self.values:
            raise RuleBuildError("an empty ICMP type set matches nothing")
        for value in self.values:
            if not 0 <= value <= 255:
                raise RuleBuildError(f"ICMP type {value} is out of range (0-255)")
        self.negate = negate
        self.protocols = frozenset((PROTO_ICMP if version == 4 else PROTO_ICMPV6,))

    def compile(self, ruleset: Ruleset) -> Predicate:
        proto = PROTO_ICMP if self.family == 4 else PROTO_ICMPV6
        version, values, negate = self.family, self.values, self.negate
        return lambda pkt: (pkt.proto == proto and pkt.version == version and pkt.l4_ok
                            and (pkt.icmp_type in values) != negate)

    def __str__(self) -> str:
        table = ICMP_TYPES if self.family == 4 else ICMPV6_TYPES
        names = {v: k for k, v in reversed(list(table.items()))}
        items = [names.get(v, str(v)) for v in sorted(self.values)]
        kw = "icmp" if self.family == 4 else "icmpv6"
        return f"{kw} type {_neg(self.negate)}{_set_text(items)}"


class IcmpCodeExpr(Expr):
    """`icmp code X` / `icmpv6 code X`."""

    def __init__(self, version: int, codes: Iterable[int], negate: bool = False) -> None:
        self.family = version
        self.values = frozenset(codes)
        if not self.values:
            raise RuleBuildError("an empty ICMP code set matches nothing")
        self.negate = negate
        self.protocols = frozenset((PROTO_ICMP if version == 4 else PROTO_ICMPV6,))

    def compile(self, ruleset: Ruleset) -> Predicate:
        proto = PROTO_ICMP if self.family == 4 else PROTO_ICMPV6
        version, values, negate = self.family, self.values, self.negate
        return lambda pkt: (pkt.proto == proto and pkt.version == version and pkt.l4_ok
                            and (pkt.icmp_code in values) != negate)

    def __str__(self) -> str:
        table = ICMP_CODES if self.family == 4 else ICMPV6_CODES
        names = {v: k for k, v in table.items()}
        items = [names.get(v, str(v)) for v in sorted(self.values)]
        kw = "icmp" if self.family == 4 else "icmpv6"
        return f"{kw} code {_neg(self.negate)}{_set_text(items)}"


class TcpFlagsExpr(Expr):
    """TCP flags, as nft: `tcp flags syn,ack` (any of), `tcp flags == syn` (exactly),
    `tcp flags syn / syn,ack` (these bits of the mask), `tcp flags { syn, syn|ack }`."""

    protocols = frozenset((PROTO_TCP,))

    def __init__(self, mode: str, value: int = 0, mask: int = 0, negate: bool = False,
                 values: Iterable[int] = ()) -> None:
        if mode not in ("any", "exact", "masked", "set"):
            raise RuleBuildError(f"tcp flags mode {mode!r}")
        self.mode = mode
        self.value = value
        self.mask = mask
        self.values = frozenset(values)
        self.negate = negate

    def compile(self, ruleset: Ruleset) -> Predicate:
        mode, value, mask, negate, values = self.mode, self.value, self.mask, self.negate, (
            self.values)
        if mode == "any":
            return lambda pkt: pkt.proto == PROTO_TCP and pkt.l4_ok and (
                bool(pkt.tcp_flags & mask) != negate)
        if mode == "exact":
            return lambda pkt: pkt.proto == PROTO_TCP and pkt.l4_ok and (
                (pkt.tcp_flags == value) != negate)
        if mode == "masked":
            return lambda pkt: pkt.proto == PROTO_TCP and pkt.l4_ok and (
                ((pkt.tcp_flags & mask) == value) != negate)
        return lambda pkt: pkt.proto == PROTO_TCP and pkt.l4_ok and (
            (pkt.tcp_flags in values) != negate)

    @property
    def never_matches(self) -> bool:
        return not self.negate and (
            (self.mode == "masked" and self.value & ~self.mask != 0)
            or (self.mode == "any" and self.mask == 0))

    def __str__(self) -> str:
        neg = _neg(self.negate)
        if self.mode == "any":
            return f"tcp flags {neg}{_flags_text(self.mask)}"
        if self.mode == "exact":
            return f"tcp flags {'!=' if self.negate else '=='} {_flags_text(self.value, '|')}"
        if self.mode == "masked":
            return f"tcp flags {neg}{_flags_text(self.value)} / {_flags_text(self.mask)}"
        items = [_flags_text(v, "|") for v in sorted(self.values)]
        return f"tcp flags {neg}{{ {', '.join(items)} }}"


class CtStateExpr(Expr):
    """`ct state new,established` (any of the listed states)."""

    def __init__(self, states: Iterable[str] | int, negate: bool = False) -> None:
        if isinstance(states, int):
            self.mask = states
        else:
            mask = 0
            for state in states:
                bit = STATE_NAMES.get(state.strip().lower())
                if bit is None:
                    raise RuleBuildError(f"unknown connection state {state!r} (states: "
                                         f"{', '.join(STATE_NAMES)})")
                mask |= bit
            self.mask = mask
        if not self.mask:
            raise RuleBuildError("an empty ct state set matches nothing")
        self.negate = negate

    def compile(self, ruleset: Ruleset) -> Predicate:
        mask, negate = self.mask, self.negate
        return lambda pkt: bool(pkt.ct_state & mask) != negate

    def __str__(self) -> str:
        names = ",".join(n for n, bit in STATE_NAMES.items() if self.mask & bit)
        return f"ct state {_neg(self.negate)}{names}"


class IfaceExpr(Expr):
    """`iifname eth*` / `oifname lo` (`iif`/`oif` are accepted as the same thing).

    `@lan` among the names stands for the host's Ethernet interfaces -- those
    of its own virtual LANs -- and never loopback or a TUN bridge's port.
    """

    def __init__(self, field: str, patterns: Iterable[str] | str, negate: bool = False) -> None:
        if field not in ("iifname", "oifname"):
            raise RuleBuildError(f"an interface field is iifname or oifname, not {field!r}")
        if isinstance(patterns, str):
            patterns = [patterns]
        self.patterns = tuple(p.strip() for p in patterns)
        if not self.patterns or not all(self.patterns):
            raise RuleBuildError("an interface name cannot be empty")
        self.field = field
        self.negate = negate
        self.hooks = frozenset(("input", "forward") if field == "iifname"
                               else ("output", "forward"))
        self._regex = re.compile("|".join(fnmatch.translate(p) for p in self.patterns))

    def compile(self, ruleset: Ruleset) -> Predicate:
        regex = self._regex
        if "@lan" in self.patterns:
            env = ruleset.env

            def on_lan_or_named(name: str) -> bool:
                return name in env.lan_interfaces() or (
                    name != "@lan" and regex.match(name) is not None)

            return self._predicate(on_lan_or_named)
        cache: dict[str, bool] = {}

        def named(name: str) -> bool:
            hit = cache.get(name)
            if hit is None:
                hit = bool(name) and regex.match(name) is not None
                if len(cache) < 256:
                    cache[name] = hit
            return hit

        return self._predicate(named)

    def _predicate(self, matches: Callable[[str], bool]) -> Predicate:
        negate = self.negate

        if self.field == "iifname":
            return lambda pkt: bool(pkt.iif) and matches(pkt.iif) != negate
        return lambda pkt: bool(pkt.oif) and matches(pkt.oif) != negate

    def __str__(self) -> str:
        items = [f'"{p}"' if "*" in p or "?" in p else p for p in self.patterns]
        return f"{self.field} {_neg(self.negate)}{_set_text(items)}"


class LimitExpr(Expr):
    """`limit rate [over] N/UNIT [burst M packets]` or with bytes (`N mbytes/second`).

    A token bucket exactly as the kernel's nft_limit: it starts full, refills
    at `rate` per unit, and holds `burst` packets (0 or no burst: 5), or, for
    a byte rate, one unit's worth of `rate + burst` bytes; a packet matches
    when it can take its cost (with `over`: when it cannot). The kernel
    comparison test pins this down.
    """

    def __init__(self, rate: int, unit: str = "second", *, bytes_mode: bool = False,
                 burst: int | None = None, over: bool = False) -> None:
        if unit not in _RATE_UNITS:
            raise RuleBuildError(f"rate unit is one of {', '.join(_RATE_UNITS)}, not {unit!r}")
        if rate <= 0:
            raise RuleBuildError("a rate limit must be at least 1 per unit")
        self.rate = rate
        self.unit = unit
        self.bytes_mode = bytes_mode
        if burst is not None and burst < 0:
            raise RuleBuildError("burst cannot be negative")
        self.burst = burst or (0 if bytes_mode else 5)
        self.over = over

    def compile(self, ruleset: Ruleset) -> Predicate:
        unit_ns = _RATE_UNITS[self.unit]
        rate = self.rate
        per_packet = unit_ns // rate
        if self.bytes_mode:
            capacity = unit_ns * (rate + self.burst) // rate
        else:
            capacity = per_packet * self.burst
        tokens = capacity  # nanoseconds of credit
        last: int | None = None
        over = self.over
        bytes_mode = self.bytes_mode

        def take(pkt: PacketInfo) -> bool:
            nonlocal tokens, last
            now = pkt.now
            if last is not None and now > last:
                tokens = min(capacity, tokens + (now - last))
            last = now
            cost = unit_ns * pkt.length // rate if bytes_mode else per_packet
            if tokens >= cost:
                tokens -= cost
                return not over
            return over

        return take

    def __str__(self) -> str:
        over = "over " if self.over else ""
        if self.bytes_mode:
            amount = self.rate
            unit = "bytes"
            for name, size in (("mbytes", 1024 * 1024), ("kbytes", 1024)):
                if amount % size == 0:
                    amount, unit = amount // size, name
                    break
            burst = f" burst {self.burst} bytes" if self.burst else ""
            return f"limit rate {over}{amount} {unit}/{self.unit}{burst}"
        burst = f" burst {self.burst} packets" if self.burst != 5 else ""
        return f"limit rate {over}{self.rate}/{self.unit}{burst}"


# ==========================================================================================
# Rules, verdicts, chains
# ==========================================================================================
@dataclass(frozen=True)
class LogStatement:
    """`log [prefix "..."] [level LEVEL]`: count and mark the packet (capture comment)."""

    prefix: str = ""
    level: str = "warn"

    def __str__(self) -> str:
        text = "log"
        if self.prefix:
            text += f' prefix "{self.prefix}"'
        if self.level != "warn":
            text += f" level {self.level}"
        return text


@dataclass(frozen=True)
class RejectSpec:
    """How to reject: "auto" (TCP reset for TCP, else ICMP/ICMPv6 port unreachable),
    "tcp-reset", or "icmp"/"icmpv6"/"icmpx" with a code name."""

    kind: str = "auto"
    code: str = "port-unreachable"

    @property
    def family(self) -> int | None:
        return {"icmp": 4, "icmpv6": 6}.get(self.kind)

    def response(self, pkt: PacketInfo) -> tuple[str, int, int]:
        """("tcp-reset", 0, 0) or ("icmp", type, code) for this packet (type per its family)."""
        kind = self.kind
        if kind == "tcp-reset" or (kind == "auto" and pkt.proto == PROTO_TCP):
            if pkt.proto == PROTO_TCP:
                return ("tcp-reset", 0, 0)
            kind = "auto"
        if kind == "icmp":
            return ("icmp", 3, ICMP_CODES[self.code])
        if kind == "icmpv6":
            return ("icmp", 1, ICMPV6_CODES[self.code])
        v4, v6 = ICMPX_CODES[self.code if kind == "icmpx" else "port-unreachable"]
        return ("icmp", 3, v4) if pkt.version == 4 else ("icmp", 1, v6)

    def __str__(self) -> str:
        if self.kind == "auto":
            return "reject"
        if self.kind == "tcp-reset":
            return "reject with tcp reset"
        return f"reject with {self.kind} {self.code}"


class Verdict:
    """What the rules decided about one packet."""

    __slots__ = ("action", "chain", "logs", "reject", "rule")

    def __init__(self, action: str, rule: Rule | None = None, chain: str = "",
                 reject: RejectSpec | None = None, logs: tuple[LogMark, ...] = ()) -> None:
        self.action = action
        self.rule = rule
        self.chain = chain
        self.reject = reject
        self.logs = logs

    @property
    def accepted(self) -> bool:
        return self.action == ACCEPT

    def with_logs(self, logs: tuple[LogMark, ...]) -> Verdict:
        return Verdict(self.action, self.rule, self.chain, self.reject, logs)

    def describe(self) -> str:
        where = f"rule {self.rule.describe_position()}" if self.rule else f"policy of {self.chain}"
        what = str(self.reject) if self.action == REJECT and self.reject else self.action
        return f"{what} by {where}"

    def __repr__(self) -> str:
        return f"<Verdict {self.describe()}>"


@dataclass(frozen=True)
class LogMark:
    """A log statement that fired: which rule, with what prefix."""

    rule: Rule
    chain: str
    prefix: str
    level: str


_VERDICT_WORDS = (ACCEPT, DROP, REJECT, JUMP, GOTO, RETURN, CONTINUE)


class Rule:
    """Match expressions, an optional log, a verdict; counts packets and bytes."""

    def __init__(self, exprs: Sequence[Expr] = (), verdict: str = CONTINUE, *,
                 target: str | None = None, reject: RejectSpec | None = None,
                 log: LogStatement | None = None, comment: str | None = None,
                 location: Location | None = None) -> None:
        if verdict not in _VERDICT_WORDS:
            raise RuleBuildError(f"verdict is one of {', '.join(_VERDICT_WORDS)}, not "
                                 f"{verdict!r}")
        if verdict in (JUMP, GOTO) and not target:
            raise RuleBuildError(f"{verdict} needs a chain name")
        self.exprs = tuple(exprs)
        self.verdict = verdict
        self.target = target
        self.reject = (reject or RejectSpec()) if verdict == REJECT else None
        self.log = log
        self.comment = comment
        self.location = location
        self.packets = 0
        self.bytes = 0
        self.chain: Chain | None = None
        self._preds: tuple[Predicate, ...] = ()
        self._target_chain: Chain | None = None
        self._verdict: Verdict | None = None

    # --- construction helpers ------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, *, file: str = "<rule>") -> Rule:
        """One rule in the rule-file syntax, e.g. `tcp dport { 80, 443 } accept`."""
        from .parser import parse_rule

        return parse_rule(text, file=file)

    @classmethod
    def build(cls, *, action: str = ACCEPT, family: int | None = None,
              proto: str | int | Iterable[str | int] | None = None,
              saddr: Any = None, daddr: Any = None, sport: Any = None, dport: Any = None,
              icmp_type: str | int | Iterable[str | int] | None = None,
              icmp_code: str | int | Iterable[str | int] | None = None,
              tcp_flags: str | None = None, ct_state: str | Iterable[str] | None = None,
              iif: str | Iterable[str] | None = None, oif: str | Iterable[str] | None = None,
              limit: str | None = None, log: str | bool | None = None,
              reject_with: str | None = None, comment: str | None = None) -> Rule:
        """A rule from Python values, e.g. `Rule.build(proto="udp", dport="27015-27030")`.

        `action` is accept, drop, reject, return, continue, `jump NAME` or
        `goto NAME`. Addresses take text (prefixes, ranges, names, `*.domain`,
        `@lan`), ipaddress objects or a netaddr IPSet, alone or in a list.
        """
        exprs: list[Expr] = []
        protos: list[int] = []
        if proto is not None and proto != "any":
            items = [proto] if isinstance(proto, (str, int)) else list(proto)
            for p in items:
                if isinstance(p, int):
                    protos.append(p)
                elif p.lower() in PROTOCOLS:
                    protos.append(PROTOCOLS[p.lower()])
                else:
                    raise RuleBuildError(f"unknown protocol {p!r}")
        port_proto = "th"
        if protos and set(protos) <= {PROTO_TCP, PROTO_UDP} and len(protos) == 1:
            port_proto = PROTOCOL_NAMES[protos[0]]
        if protos and not (len(protos) == 1 and (sport is not None or dport is not None
                                                 or icmp_type is not None)):
            exprs.append(ProtoExpr(protos))
        for field, value in (("saddr", saddr), ("daddr", daddr)):
            if value is not None:
                values = [value] if isinstance(value, (str, bytes)) or not isinstance(
                    value, Iterable) or hasattr(value, "iter_cidrs") else list(value)
                exprs.append(AddressExpr(field, values, family=family))
        for field, value in (("sport", sport), ("dport", dport)):
            if value is not None:
                if protos and not set(protos) <= {PROTO_TCP, PROTO_UDP}:
                    raise RuleBuildError("ports need proto tcp or udp")
                values = [value] if isinstance(value, (str, int)) else list(value)
                exprs.append(PortExpr(port_proto, field, values))
        if (icmp_type is not None or icmp_code is not None) and protos and not set(protos) <= {
                PROTO_ICMP, PROTO_ICMPV6}:
            raise RuleBuildError("ICMP types and codes need proto icmp or icmpv6")
        icmp_version = 6 if (protos == [PROTO_ICMPV6] or family == 6) else 4
        if icmp_type is not None:
            exprs.append(IcmpTypeExpr(icmp_version, _icmp_values(icmp_type, icmp_version,
                                                                 "type")))
        if icmp_code is not None:
            exprs.append(IcmpCodeExpr(icmp_version, _icmp_values(icmp_code, icmp_version,
                                                                 "code")))
        if tcp_flags is not None:
            exprs.append(_parse_inline(f"tcp flags {tcp_flags}"))
        if ct_state is not None:
            states = ct_state.split(",") if isinstance(ct_state, str) else list(ct_state)
            exprs.append(CtStateExpr(states))
        if iif is not None:
            exprs.append(IfaceExpr("iifname", iif))
        if oif is not None:
            exprs.append(IfaceExpr("oifname", oif))
        if limit is not None:
            exprs.append(_parse_inline(f"limit rate {limit}"))
        if family is not None and not any(e.family == family for e in exprs):
            exprs.insert(0, FamilyExpr(family))
        log_stmt = None
        if log:
            log_stmt = LogStatement(prefix=log if isinstance(log, str) else "")
        verdict, _, target = action.strip().partition(" ")
        reject = None
        if verdict == REJECT:
            reject = RejectSpec()
            if reject_with:
                reject_rule = Rule.parse(f"reject with {reject_with}")
                reject = reject_rule.reject
        return cls(exprs, verdict, target=target.strip() or None, reject=reject, log=log_stmt,
                   comment=comment)

    # --- evaluation support ----------------------------------------------------------------
    def _compile(self, ruleset: Ruleset, chain: Chain) -> None:
        self.chain = chain
        self._preds = tuple(e.compile(ruleset) for e in self.exprs)
        if self.verdict in TERMINAL:
            self._verdict = Verdict(self.verdict, self, chain.name, self.reject)

    def matches(self, pkt: PacketInfo) -> bool:
        """Do all this rule's expressions hold? (Rate limits consume tokens.)"""
        return all(pred(pkt) for pred in self._preds)

    @property
    def family(self) -> int | None:
        """The IP version this rule is restricted to, if its expressions imply one."""
        families = {e.family for e in self.exprs if e.family is not None}
        if self.reject is not None and self.reject.family is not None:
            families.add(self.reject.family)
        return families.pop() if len(families) == 1 else None

    def describe_position(self) -> str:
        chain = self.chain.name if self.chain else "?"
        index = self.chain.rules.index(self) + 1 if self.chain and self in self.chain.rules else 0
        where = f" ({self.location.file}:{self.location.line})" if self.location else ""
        return f"{chain}#{index}{where}"

    def reset_counters(self) -> None:
        self.packets = self.bytes = 0

    def text(self) -> str:
        parts = [str(e) for e in self.exprs]
        if self.log is not None:
            parts.append(str(self.log))
        if self.verdict == REJECT:
            parts.append(str(self.reject))
        elif self.verdict in (JUMP, GOTO):
            parts.append(f"{self.verdict} {self.target}")
        elif self.verdict != CONTINUE:
            parts.append(self.verdict)
        if self.comment:
            parts.append(f'comment "{self.comment}"')
        return " ".join(parts)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<Rule {self.text()!r}>"

    def copy(self) -> Rule:
        return Rule(self.exprs, self.verdict, target=self.target, reject=self.reject,
                    log=self.log, comment=self.comment, location=self.location)


def _icmp_values(value: str | int | Iterable[str | int], version: int, what: str) -> list[int]:
    table = (ICMP_TYPES if version == 4 else ICMPV6_TYPES) if what == "type" else (
        ICMP_CODES if version == 4 else ICMPV6_CODES)
    items = [value] if isinstance(value, (str, int)) else list(value)
    out = []
    for item in items:
        if isinstance(item, int):
            out.append(item)
        elif item.isdigit():
            out.append(int(item))
        elif item in table:
            out.append(table[item])
        else:
            raise RuleBuildError(f"unknown ICMP{'v6' if version == 6 else ''} {what} {item!r}")
    return out


def _parse_inline(text: str) -> Expr:
    rule = Rule.parse(text)
    if len(rule.exprs) != 1:
        raise RuleBuildError(f"{text!r} is not one expression")
    return rule.exprs[0]


class Chain:
    """An ordered list of rules; base chains (input/output/forward) also have a policy."""

    def __init__(self, name: str, policy: str | None = None,
                 location: Location | None = None, hook: str | None = None) -> None:
        self.name = name
        if hook is not None and hook not in HOOKS:
            raise RuleBuildError(f"hook is one of {', '.join(HOOKS)}, not {hook!r}")
        self.hook = hook or (name if name in HOOKS else None)
        if policy is not None and self.hook is None:
            raise RuleBuildError(f"chain {name!r} is not a base chain (input, output, "
                                 "forward): only those have a policy")
        if policy not in (None, ACCEPT, DROP):
            raise RuleBuildError(f"a chain policy is accept or drop, not {policy!r} (end the "
                                 "chain with a reject rule to reject everything else)")
        self.policy = policy or ACCEPT
        self.policy_set = policy is not None
        self.location = location
        self.rules: list[Rule] = []
        self.policy_packets = 0
        self.policy_bytes = 0
        self.ruleset: Ruleset | None = None
        self._policy_verdict = Verdict(self.policy, None, name)

    def append(self, rule: Rule | str) -> Rule:
        """Add a rule at the end (a Rule, or rule text)."""
        if isinstance(rule, str):
            rule = Rule.parse(rule)
        self.rules.append(rule)
        if self.ruleset is not None:
            self.ruleset._dirty = True
        return rule

    def insert(self, index: int, rule: Rule | str) -> Rule:
        if isinstance(rule, str):
            rule = Rule.parse(rule)
        self.rules.insert(index, rule)
        if self.ruleset is not None:
            self.ruleset._dirty = True
        return rule

    def extend(self, rules: Iterable[Rule | str]) -> None:
        for rule in rules:
            self.append(rule)

    def set_policy(self, policy: str) -> None:
        if self.hook is None:
            raise RuleBuildError(f"chain {self.name!r} is not a base chain")
        if policy not in (ACCEPT, DROP):
            raise RuleBuildError(f"a chain policy is accept or drop, not {policy!r}")
        self.policy = policy
        self.policy_set = True
        self._policy_verdict = Verdict(policy, None, self.name)

    def __iter__(self) -> Any:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"<Chain {self.name} rules={len(self.rules)} policy={self.policy}>"


_NO_CHAIN = Verdict(ACCEPT, None, "")


class Ruleset:
    """Chains, their rules, and the state they need to judge packets."""

    def __init__(self) -> None:
        self.chains: dict[str, Chain] = {}
        self.names = NameTable()
        self.env: Environment = _NoEnvironment()
        self.source: str | None = None  # where it was loaded from, for `show`
        self.warnings: list[Any] = []  # parser.Problem, for rule files
        self._base: dict[str, Chain] = {}
        self._dirty = True
        self._logs: list[LogMark] = []

    # --- building ---------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, *, file: str = "<string>") -> Ruleset:
        """Rules from text in the rule-file syntax (see `firewall.parser`)."""
        from .parser import parse_text

        return parse_text(text, file=file)

    @classmethod
    def load(cls, path: Any) -> Ruleset:
        """Rules from a file (includes are resolved relative to it)."""
        from .parser import parse_file

        return parse_file(path)

    def chain(self, name: str, policy: str | None = None) -> Chain:
        """The chain called `name`, created if needed (with `policy`, for a base chain)."""
        chain = self.chains.get(name)
        if chain is None:
            chain = Chain(name, policy)
            self.add_chain(chain)
        elif policy is not None:
            chain.set_policy(policy)
        return chain

    def add_chain(self, chain: Chain) -> Chain:
        if chain.name in self.chains:
            raise RuleBuildError(f"chain {chain.name!r} already exists")
        self.chains[chain.name] = chain
        chain.ruleset = self
        self._dirty = True
        return chain

    def copy(self) -> Ruleset:
        """The same rules with fresh counters, limiters and name table (one per host)."""
        other = Ruleset()
        other.source = self.source
        other.warnings = list(self.warnings)
        for chain in self.chains.values():
            new = Chain(chain.name, chain.policy if chain.policy_set else None, chain.location,
                        chain.hook)
            for rule in chain.rules:
                new.rules.append(rule.copy())
            other.add_chain(new)
        return other

    def link(self) -> None:
        """Compile every rule, resolve jumps, and refuse loops (RuleBuildError)."""
        for chain in self.chains.values():
            chain.ruleset = self
            for rule in chain.rules:
                if rule.verdict in (JUMP, GOTO):
                    target = self.chains.get(rule.target or "")
                    if target is None:
                        raise RuleBuildError(f"{rule.verdict} to unknown chain {rule.target!r}")
                    if target.hook is not None:
                        raise RuleBuildError(f"cannot {rule.verdict} to base chain "
                                             f"{target.name!r}")
                    rule._target_chain = target
                rule._compile(self, chain)
        self._check_loops()
        base: dict[str, Chain] = {}
        for chain in self.chains.values():
            if chain.hook is not None:
                if chain.hook in base:
                    raise RuleBuildError(f"chains {base[chain.hook].name!r} and {chain.name!r} "
                                         f"both attach to hook {chain.hook}")
                base[chain.hook] = chain
        self._base = base
        self._dirty = False

    def _check_loops(self) -> None:
        state: dict[str, int] = {}

        def visit(chain: Chain, path: list[str]) -> None:
            mark = state.get(chain.name)
            if mark == 2:
                return
            if mark == 1:
                cycle = " -> ".join([*path[path.index(chain.name):], chain.name])
                raise RuleBuildError(f"jump loop: {cycle}")
            state[chain.name] = 1
            for rule in chain.rules:
                if rule._target_chain is not None:
                    visit(rule._target_chain, [*path, chain.name])
            state[chain.name] = 2

        for chain in self.chains.values():
            visit(chain, [])

    @property
    def uses_conntrack(self) -> bool:
        return any(isinstance(e, CtStateExpr) for r in self.rules() for e in r.exprs)

    @property
    def uses_names(self) -> bool:
        return any(isinstance(e, AddressExpr) and e.value.names
                   for r in self.rules() for e in r.exprs)

    def rules(self) -> Iterable[Rule]:
        for chain in self.chains.values():
            yield from chain.rules

    # --- judging ---------------------------------------------------------------------------
    def evaluate(self, hook: str, packet: PacketInfo | bytes | bytearray | memoryview,
                 now_ns: int = 0) -> Verdict:
        """Judge one packet at a hook ("input", "output", "forward")."""
        if self._dirty:
            self.link()
        chain = self._base.get(hook)
        if chain is None:
            return _NO_CHAIN
        if isinstance(packet, PacketInfo):
            pkt = packet
        else:
            parsed = PacketInfo.parse(packet)
            if parsed is None:
                return chain._policy_verdict
            pkt = parsed
        pkt.now = now_ns
        logs = self._logs
        verdict = self._run(chain, pkt, 0)
        if verdict is None:
            chain.policy_packets += 1
            chain.policy_bytes += pkt.length
            verdict = chain._policy_verdict
        if logs:
            verdict = verdict.with_logs(tuple(logs))
            logs.clear()
        return verdict

    def _run(self, chain: Chain, pkt: PacketInfo, depth: int) -> Verdict | None:
        """None: fell off the end (or `return`): back to the caller."""
        for rule in chain.rules:
            for pred in rule._preds:
                if not pred(pkt):
                    break
            else:
                rule.packets += 1
                rule.bytes += pkt.length
                if rule.log is not None:
                    self._logs.append(LogMark(rule, chain.name, rule.log.prefix, rule.log.level))
                verdict = rule._verdict
                if verdict is not None:
                    return verdict
                kind = rule.verdict
                if kind == CONTINUE:
                    continue
                if kind == RETURN:
                    return None
                target = rule._target_chain
                assert target is not None
                result = self._run(target, pkt, depth + 1)
                if kind == GOTO or result is not None:
                    return result
        return None

    # --- showing ----------------------------------------------------------------------------
    def reset_counters(self) -> None:
        for chain in self.chains.values():
            chain.policy_packets = chain.policy_bytes = 0
            for rule in chain.rules:
                rule.reset_counters()

    def format(self, *, counters: bool = False, locations: bool = False) -> str:
        """The rules in the rule-file syntax (optionally with counters and origins)."""
        lines: list[str] = []
        for chain in self.chains.values():
            if lines:
                lines.append("")
            lines.append(f"chain {chain.name} {{")
            if chain.hook is not None and chain.hook != chain.name:
                lines.append(f"    type filter hook {chain.hook} priority 0")
            if chain.hook is not None:
                policy = f"    policy {chain.policy}"
                if counters:
                    policy += (f"  # policy counter packets {chain.policy_packets} "
                               f"bytes {chain.policy_bytes}")
                lines.append(policy)
            for rule in chain.rules:
                text = "    " + rule.text()
                notes = []
                if counters:
                    notes.append(f"packets {rule.packets} bytes {rule.bytes}")
                if locations and rule.location is not None:
                    notes.append(f"{rule.location.file}:{rule.location.line}")
                if notes:
                    text += "  # " + ", ".join(notes)
                lines.append(text)
            lines.append("}")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"<Ruleset chains={list(self.chains)}>"
