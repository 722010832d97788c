"""Rules, chains and rule sets, and how a packet is judged against them.

A `Ruleset` is a set of named `Chain`s. The chains called `input`, `output`
and `forward` are *base chains*: the stack's firewall hooks of the same
names start there, and each has a default `policy` (accept or drop). Other
chains are reached by `jump` (which returns) or `goto` (which does not).
A chain is an ordered list of `Rule`s; the first rule whose every match
expression holds decides, in file order. A rule with no verdict (only a
`log`) lets evaluation go on to the next rule. Every rule and every policy
counts the packets and bytes it saw.

The chains `prerouting` and `postrouting` (or any chain given `type nat hook
prerouting|postrouting`) are NAT chains: their verdicts `snat`, `dnat`,
`masquerade` and `redirect` carry a `firewall.nat_rules.NatSpec`
(`Rule.nat`), which `HostFirewall` applies to a connection's first packet.

A rule is its match expressions (`Expr` subclasses: family, protocol,
addresses with prefixes, sets, names and the dynamic `@lan`/`@local` sets,
ports, ICMP type/code, TCP flags, connection state, interfaces, rate
limits; they live in firewall/matches.py), an optional `log`, and a
verdict: accept, drop, reject (a TCP reset or an ICMP/ICMPv6 unreachable,
`RejectSpec`), jump, goto or return.
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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .matches import (
    ICMP_CODES,
    ICMP_TYPES,
    ICMPV6_CODES,
    ICMPV6_TYPES,
    ICMPX_CODES,
    PROTOCOL_NAMES,
    PROTOCOLS,
    AddressExpr,
    CtStateExpr,
    Expr,
    FamilyExpr,
    IcmpCodeExpr,
    IcmpTypeExpr,
    IfaceExpr,
    LimitExpr,
    PortExpr,
    Predicate,
    ProtoExpr,
    RuleBuildError,
    TcpFlagsExpr,
)
from .names import NameTable
from .nat_rules import NAT_VERDICTS, NatSpec
from .packet import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    PacketInfo,
)
from .sets import AddressSet

__all__ = [
    "HOOKS",
    "NAT_HOOKS",
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
#: The hooks of `type nat` chains (snat/masquerade at postrouting, dnat/redirect at prerouting).
NAT_HOOKS = ("prerouting", "postrouting")
ALL_HOOKS = HOOKS + NAT_HOOKS

ACCEPT = "accept"
DROP = "drop"
REJECT = "reject"
JUMP = "jump"
GOTO = "goto"
RETURN = "return"
CONTINUE = "continue"  # no verdict: go on with the next rule
TERMINAL = (ACCEPT, DROP, REJECT, *NAT_VERDICTS)



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


_VERDICT_WORDS = (ACCEPT, DROP, REJECT, JUMP, GOTO, RETURN, CONTINUE, *NAT_VERDICTS)


class Rule:
    """Match expressions, an optional log, a verdict; counts packets and bytes."""

    def __init__(self, exprs: Sequence[Expr] = (), verdict: str = CONTINUE, *,
                 target: str | None = None, reject: RejectSpec | None = None,
                 log: LogStatement | None = None, comment: str | None = None,
                 location: Location | None = None, nat: NatSpec | None = None) -> None:
        if verdict not in _VERDICT_WORDS:
            raise RuleBuildError(f"verdict is one of {', '.join(_VERDICT_WORDS)}, not "
                                 f"{verdict!r}")
        if verdict in (JUMP, GOTO) and not target:
            raise RuleBuildError(f"{verdict} needs a chain name")
        self.exprs = tuple(exprs)
        self.verdict = verdict
        self.target = target
        self.reject = (reject or RejectSpec()) if verdict == REJECT else None
        if verdict in NAT_VERDICTS:
            nat = nat or NatSpec.parse(verdict, None)
            if nat.kind != verdict:
                raise RuleBuildError(f"a {verdict} rule with a {nat.kind} statement")
        self.nat = nat if verdict in NAT_VERDICTS else None
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
        elif self.nat is not None:
            parts.append(str(self.nat))
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
                    log=self.log, comment=self.comment, location=self.location, nat=self.nat)


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
        if hook is not None and hook not in ALL_HOOKS:
            raise RuleBuildError(f"hook is one of {', '.join(ALL_HOOKS)}, not {hook!r}")
        self.hook = hook or (name if name in ALL_HOOKS else None)
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
    def uses_nat(self) -> bool:
        """Has it `type nat` chains (prerouting, postrouting)?"""
        return any(chain.hook in NAT_HOOKS for chain in self.chains.values())

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
                kind = "nat" if chain.hook in NAT_HOOKS else "filter"
                lines.append(f"    type {kind} hook {chain.hook} priority 0")
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
