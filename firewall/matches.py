"""Match expressions: the conditions of a firewall rule, and their vocabulary.

Each `Expr` subclass is one kind of match: IP family, protocol, addresses
(prefixes, sets, host names and `*.domain` patterns from the `NameTable`, the
dynamic `@lan`/`@local` sets), ports, ICMP/ICMPv6 type and code, TCP flags,
connection state, interfaces, rate limits. An expression is an immutable
description; `compile(ruleset)` turns it into a predicate over a
`PacketInfo` (a closure, with a rate limiter's private state), which is what
judging a packet runs. `str(expr)` prints it back in the rule-file syntax.
Also here, because the parser and the printer share them: the names of
protocols, ICMP types and codes, and TCP flags.

Rules, verdicts, chains and the evaluation loop are in firewall/rules.py.
Touches nothing outside its objects: the clock comes in with each packet,
names and `@lan`/`@local` from the rule set being compiled.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .conntrack import STATE_NAMES
from .names import NamePattern, is_name_pattern
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

if TYPE_CHECKING:
    from .rules import Ruleset

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
        self.hooks = frozenset(("input", "forward", "prerouting") if field == "iifname"
                               else ("output", "forward", "postrouting"))
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
