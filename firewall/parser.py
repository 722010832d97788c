"""The rule-file format: text -> `Ruleset`, with errors that name file, line and column.

The syntax is nftables' rule language, trimmed to what vnet filters, so an
nft user reads it without a manual (and a ufw user recognises every word)::

    # a comment
    include "common.rules"              # relative to this file; globs allowed
    define game_ports = 27015-27030     # used as $game_ports

    chain input {                       # input, output, forward: the hooks
        policy drop                     # accept (the default) or drop
        ct state established,related accept
        ct state invalid drop
        iifname lo accept
        udp dport $game_ports limit rate 50/second accept
        ip saddr { 10.0.0.0/8, 192.168.0.0/16 } tcp dport { ssh, 8080 } accept
        icmp type echo-request accept
        log prefix "in: " drop
    }
    chain output {
        policy drop
        ip daddr api.example.test tcp dport 443 accept    # a name: see firewall.names
        oifname @lan daddr @lan accept                    # this host's own networks
        reject with icmpx admin-prohibited
    }

Statements end at a newline or `;`; a `{ set }` may span lines. A file may
also wrap its chains in `table inet NAME { ... }` and give a chain `type
filter hook input priority 0;` as nft does (the chain's name then does not
matter); `flush ruleset` and `counter` are accepted and ignored (every rule
counts). `counter packets N bytes N`, as `nft list ruleset` prints it, is
accepted too.

NAT, as nft writes it (see firewall/nat_rules.py): chains `prerouting` and
`postrouting` (or `type nat hook prerouting|postrouting priority ...`) hold
`snat to ADDR[-ADDR][:PORT[-PORT]]`, `masquerade [to :PORTS] [random]`
(postrouting), `dnat to ADDR[:PORT]` and `redirect to :PORT` (prerouting).

Differences from nft, on purpose: `saddr`/`daddr` without `ip`/`ip6` match
either family; an address may be a host name or `*.domain` (learned from the
host's resolver, never resolved here); `@lan` and `@local` are this host's
networks and addresses, and `iifname @lan` / `oifname @lan` its Ethernet
interfaces (not loopback, not a TUN bridge's port); plain `reject` sends a TCP reset to TCP and an
ICMP/ICMPv6 port unreachable otherwise (nft sends ICMP to TCP too; `reject
with icmpx port-unreachable` gives that).

Every error is collected (the parser resynchronises at the end of the
statement) and reported as `FILE:LINE:COLUMN: error: reason`, with the
source line and a caret; unknown words get a "did you mean" suggestion.
Warnings flag rules that can never match (contradicting families or
protocols, an interface the hook cannot have, rules after an unconditional
verdict, a flag mask that excludes its own value), duplicate rules, host
bits in prefixes and chains nothing jumps to.

This module is the grammar; the tokens, the token stream and the error
messages are in firewall/lexer.py, the warnings about rules that can never
match in firewall/rule_checks.py. Touches only the files it is asked to read.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from .conntrack import STATE_NAMES
from .lexer import (
    EOF,
    NEWLINE,
    PUNCT,
    STRING,
    WORD,
    AbandonStatement,
    Problem,
    RuleFileError,
    Token,
    TokenStream,
    describe,
    suggest,
    tokenize,
)
from .matches import (
    ICMP_CODES,
    ICMP_TYPES,
    ICMPV6_CODES,
    ICMPV6_TYPES,
    ICMPX_CODES,
    PROTOCOLS,
    TCP_FLAGS,
    AddressExpr,
    AddressValue,
    CtStateExpr,
    Expr,
    FamilyExpr,
    IcmpCodeExpr,
    IcmpTypeExpr,
    IfaceExpr,
    LimitExpr,
    PortExpr,
    ProtoExpr,
    RuleBuildError,
    TcpFlagsExpr,
)
from .nat_rules import NAT_FLAGS, NAT_VERDICTS, NatSpec
from .rule_checks import check_rule, check_ruleset
from .rules import (
    CONTINUE,
    GOTO,
    HOOKS,
    JUMP,
    NAT_HOOKS,
    REJECT,
    Chain,
    Location,
    LogStatement,
    RejectSpec,
    Rule,
    Ruleset,
)

__all__ = ["Problem", "RuleFileError", "parse_file", "parse_rule", "parse_text"]

MAX_INCLUDE_DEPTH = 16


# ==========================================================================================
# The parser
# ==========================================================================================
_TOP_KEYWORDS = ("chain", "include", "define", "table", "flush")
_MATCH_KEYWORDS = ("ip", "ip6", "saddr", "daddr", "meta", "tcp", "udp", "th", "icmp",
                   "icmpv6", "igmp", "ct", "iif", "iifname", "oif", "oifname", "limit")
_STATEMENT_KEYWORDS = ("counter", "log", "comment")
_VERDICT_KEYWORDS = ("accept", "drop", "reject", "jump", "goto", "return", "continue",
                     *NAT_VERDICTS)
_RULE_KEYWORDS = _MATCH_KEYWORDS + _STATEMENT_KEYWORDS + _VERDICT_KEYWORDS
_CHAIN_KEYWORDS = ("policy", "type", *_RULE_KEYWORDS)


@dataclass
class _Context:
    ruleset: Ruleset
    problems: list[Problem] = field(default_factory=list)
    defines: dict[str, list[Token]] = field(default_factory=dict)
    sources: dict[str, list[str]] = field(default_factory=dict)
    include_stack: list[str] = field(default_factory=list)
    chain_tokens: dict[str, Token] = field(default_factory=dict)

    def report(self, problem: Problem) -> None:
        if not problem.source_line:
            lines = self.sources.get(problem.location.file)
            if lines and 0 < problem.location.line <= len(lines):
                problem.source_line = lines[problem.location.line - 1]
        self.problems.append(problem)


class _Parser(TokenStream):
    """The grammar: statements, chains, rules and their matches, over a token stream."""

    def __init__(self, ctx: _Context, tokens: list[Token], base_dir: Path | None) -> None:
        super().__init__(tokens, ctx.report, ctx.defines)
        self.ctx = ctx
        self.base_dir = base_dir

    # --- top level ---------------------------------------------------------------------
    def parse_top(self, inside_table: bool = False) -> None:
        while True:
            self.skip_separators()
            tok = self.peek()
            if tok.kind == EOF:
                if inside_table:
                    self.ctx.report(Problem(tok.location, "missing '}' to close the table"))
                return
            if tok.kind == PUNCT and tok.text == "}":
                if inside_table:
                    self.next()
                    return
                self.next()
                self.ctx.report(Problem(tok.location, "unexpected '}' (nothing to close)"))
                continue
            try:
                self.parse_top_statement(tok)
            except AbandonStatement:
                self.skip_statement()

    def parse_top_statement(self, tok: Token) -> None:
        if tok.kind != WORD:
            self.fail(tok, f"expected chain, include, define or table, found {describe(tok)}")
        word = tok.text
        if word == "chain":
            self.next()
            self.parse_chain()
        elif word == "include":
            self.next()
            self.parse_include()
        elif word == "define":
            self.next()
            self.parse_define()
        elif word == "table":
            self.next()
            family = self.expect_word("a table family (inet)")
            if family.text != "inet":
                self.fail(family, f"only 'table inet' is supported (one table for IPv4 and "
                          f"IPv6), not {family.text!r}")
            self.expect_word("a table name")
            self.expect_punct("{")
            self.parse_top(inside_table=True)
        elif word == "flush":
            self.next()
            what = self.expect_word("'ruleset'")
            if what.text != "ruleset":
                self.fail(what, "only 'flush ruleset' is understood here")
            self.end_statement()
        elif word in _RULE_KEYWORDS or word == "policy":
            self.fail(tok, "a rule must be inside a chain: chain input { ... }")
        else:
            self.fail(tok, f"unknown keyword {word!r}" + suggest(word, _TOP_KEYWORDS))

    def parse_include(self) -> None:
        tok = self.next()
        if tok.kind != STRING:
            self.fail(tok, 'include needs a quoted file name: include "other.rules"')
        self.end_statement()
        base = self.base_dir or Path.cwd()
        pattern = tok.text if os.path.isabs(tok.text) else str(base / tok.text)
        if glob.has_magic(pattern):
            paths = sorted(glob.glob(pattern))
        else:
            paths = [pattern]
            if not os.path.exists(pattern):
                self.fail(tok, f"cannot include {tok.text!r}: no such file ({pattern})",
                          len(tok.text) + 2)
        for path in paths:
            resolved = str(Path(path).resolve())
            if resolved in self.ctx.include_stack:
                chain = " -> ".join([*self.ctx.include_stack, resolved])
                self.fail(tok, f"include loop: {chain}", len(tok.text) + 2)
            if len(self.ctx.include_stack) >= MAX_INCLUDE_DEPTH:
                self.fail(tok, "includes nest too deeply", len(tok.text) + 2)
            try:
                text = Path(path).read_text()
            except (OSError, UnicodeDecodeError) as e:
                self.fail(tok, f"cannot include {tok.text!r}: {getattr(e, 'strerror', e)}")
            _parse_into(self.ctx, text, path, Path(path).parent)

    def parse_define(self) -> None:
        name = self.expect_word("a variable name")
        if not name.text.replace("_", "").replace("-", "").isalnum():
            self.fail(name, f"bad variable name {name.text!r}")
        self.expect_punct("=")
        body: list[Token] = []
        tok = self.peek()
        if tok.kind == PUNCT and tok.text == "{":
            depth = 0
            while True:
                tok = self.next()
                if tok.kind == EOF:
                    self.fail(tok, "missing '}' to close the set")
                if tok.kind == NEWLINE:
                    continue
                body.append(tok)
                if tok.kind == PUNCT and tok.text == "{":
                    depth += 1
                elif tok.kind == PUNCT and tok.text == "}":
                    depth -= 1
                    if depth == 0:
                        break
        else:
            while not self.at_end_of_statement():
                body.append(self.next())
            if not body:
                self.fail(self.peek(), f"define {name.text} = needs a value")
        self.end_statement()
        self.ctx.defines[name.text] = body

    # --- chains ------------------------------------------------------------------------
    def parse_chain(self) -> None:
        name_tok = self.expect_word("a chain name")
        name = name_tok.text
        self.expect_punct("{")
        ruleset = self.ctx.ruleset
        chain = ruleset.chains.get(name)
        if chain is None:
            chain = Chain(name, location=name_tok.location)
            ruleset.add_chain(chain)
            self.ctx.chain_tokens[name] = name_tok
        while True:
            self.skip_separators()
            tok = self.peek()
            if tok.kind == EOF:
                self.ctx.report(Problem(name_tok.location,
                                        f"chain {name} is not closed: missing '}}'"))
                return
            if tok.kind == PUNCT and tok.text == "}":
                self.next()
                return
            try:
                self.parse_chain_statement(chain, tok)
            except AbandonStatement:
                self.skip_statement()

    def parse_chain_statement(self, chain: Chain, tok: Token) -> None:
        if tok.kind == WORD and tok.text == "policy":
            self.next()
            value = self.expect_word("accept or drop")
            if chain.hook is None:
                self.fail(tok, f"chain {chain.name!r} has no hook (base chains are input, "
                          "output and forward), so it has no policy")
            if value.text not in ("accept", "drop"):
                extra = (" (end the chain with a 'reject' rule to reject the rest)"
                         if value.text == "reject" else "")
                self.fail(value, f"a policy is accept or drop, not {value.text!r}{extra}")
            if chain.policy_set and chain.policy != value.text:
                self.fail(value, f"chain {chain.name} already has policy {chain.policy}")
            chain.set_policy(value.text)
            self.end_statement()
            return
        if tok.kind == WORD and tok.text == "type":
            self.next()
            kind = self.expect_word("filter or nat")
            if kind.text not in ("filter", "nat"):
                self.fail(kind, f"chains are 'type filter' or 'type nat', not {kind.text!r}")
            hook_kw = self.expect_word("hook")
            if hook_kw.text != "hook":
                self.fail(hook_kw, "expected 'hook'")
            hooks = HOOKS if kind.text == "filter" else NAT_HOOKS
            hook = self.expect_word(" or ".join(hooks))
            if hook.text not in hooks:
                self.fail(hook, f"a {kind.text} chain's hook is {' or '.join(hooks)}, not "
                          f"{hook.text!r}" + suggest(hook.text, hooks))
            if self.peek().kind == WORD and self.peek().text == "priority":
                self.next()
                self.expect_word("a priority")
            if chain.rules and chain.hook != hook.text:
                self.fail(tok, "give the hook before the chain's rules")
            if chain.hook is not None and chain.hook != hook.text:
                self.fail(hook, f"chain {chain.name} is already attached to {chain.hook}")
            chain.hook = hook.text
            chain.ruleset = self.ctx.ruleset
            self.end_statement()
            return
        rule = self.parse_rule_tokens()
        if rule.nat is not None and chain.hook is not None and chain.hook != rule.nat.hook:
            self.ctx.report(Problem(tok.location, f"{rule.verdict} belongs in a chain of type "
                                    f"nat hook {rule.nat.hook}, not in {chain.name!r} "
                                    f"(hook {chain.hook})", "error", length=len(tok.text)))
            return
        chain.rules.append(rule)

    # --- rules -------------------------------------------------------------------------
    def parse_rule_tokens(self) -> Rule:
        first = self.peek()
        exprs: list[tuple[Expr, Token]] = []
        log: LogStatement | None = None
        comment: str | None = None
        verdict = CONTINUE
        target: str | None = None
        reject: RejectSpec | None = None
        nat: NatSpec | None = None
        verdict_tok: Token | None = None
        while not self.at_end_of_statement():
            tok = self.next()
            if tok.kind != WORD:
                self.fail(tok, f"expected a match, statement or verdict, found {describe(tok)}")
            word = tok.text
            if verdict_tok is not None and word != "comment":
                self.fail(tok, f"nothing but a comment may follow the verdict "
                          f"{verdict_tok.text!r}")
            if word in _VERDICT_KEYWORDS:
                verdict_tok = tok
                verdict = word
                if word in (JUMP, GOTO):
                    target = self.expect_word("a chain name").text
                elif word == REJECT:
                    reject = self.parse_reject()
                elif word in NAT_VERDICTS:
                    nat = self.parse_nat(tok)
                continue
            if word == "counter":
                if self.peek().kind == WORD and self.peek().text == "packets":
                    self.next()
                    self.expect_number("a packet count")
                    byte_kw = self.expect_word("bytes")
                    if byte_kw.text != "bytes":
                        self.fail(byte_kw, "expected 'bytes'")
                    self.expect_number("a byte count")
                continue
            if word == "log":
                log = self.parse_log(tok)
                continue
            if word == "comment":
                text = self.next()
                if text.kind != STRING:
                    self.fail(text, 'comment needs a quoted string: comment "why"')
                comment = text.text
                continue
            for expr in self.parse_match(tok):
                exprs.append((expr, tok))
        self.end_statement()
        if verdict == REJECT and reject is not None:
            exprs = self.reject_dependencies(exprs, reject, first)
        rule = Rule([e for e, _ in exprs], verdict, target=target, reject=reject, log=log,
                    comment=comment, location=first.location, nat=nat)
        check_rule(rule, exprs, first, self.warn)
        return rule

    def parse_nat(self, tok: Token) -> NatSpec:
        """`snat [ip] to ADDR[-ADDR][:PORT[-PORT]] [FLAGS]`, `dnat [ip] to ...`,
        `masquerade [to :PORT[-PORT]] [FLAGS]`, `redirect [to [:]PORT[-PORT]]`."""
        kind = tok.text
        follow = self.peek()
        if follow.kind == WORD and follow.text in ("ip", "ip6"):
            self.next()
            if follow.text == "ip6":
                self.fail(follow, f"{kind} ip6: IPv6 NAT (NAT66) is not supported "
                          "(NPTv6 is, on a NAT router)")
        target: str | None = None
        if self.peek().kind == WORD and self.peek().text == "to":
            self.next()
            target_tok = self.expect_word("an address or :port")
            target = target_tok.text
            if kind in ("masquerade", "redirect") and target.replace("-", "").isdigit():
                target = ":" + target
        else:
            target_tok = tok
        flags: list[str] = []
        while self.peek().kind == WORD and self.peek().text in NAT_FLAGS:
            flags.append(self.next().text)
            if self.peek().kind == PUNCT and self.peek().text == ",":
                self.next()
        try:
            return NatSpec.parse(kind, target, tuple(flags))
        except ValueError as e:
            self.fail(target_tok, str(e))

    def expect_number(self, what: str) -> int:
        tok = self.expect_word(what)
        if not tok.text.isdigit():
            self.fail(tok, f"expected {what}, found {tok.text!r}")
        return int(tok.text)

    def reject_dependencies(self, exprs: list[tuple[Expr, Token]], reject: RejectSpec,
                            first: Token) -> list[tuple[Expr, Token]]:
        """`reject with tcp reset` only applies to TCP, `with icmp` to IPv4 (as nft)."""
        if reject.kind == "tcp-reset" and not any(
                e.protocols is not None for e, _ in exprs):
            return [(ProtoExpr([PROTOCOLS["tcp"]]), first), *exprs]
        family = reject.family
        if family is not None and not any(e.family is not None for e, _ in exprs):
            return [(FamilyExpr(family), first), *exprs]
        return exprs

    def parse_reject(self) -> RejectSpec:
        tok = self.peek()
        if not (tok.kind == WORD and tok.text == "with"):
            return RejectSpec()
        self.next()
        kind = self.expect_word("tcp, icmp, icmpv6 or icmpx")
        if kind.text == "tcp":
            reset = self.expect_word("reset")
            if reset.text != "reset":
                self.fail(reset, "expected 'reject with tcp reset'")
            return RejectSpec("tcp-reset")
        tables: dict[str, dict[str, object]] = {
            "icmp": dict(ICMP_CODES), "icmpv6": dict(ICMPV6_CODES), "icmpx": dict(ICMPX_CODES)}
        if kind.text not in tables:
            self.fail(kind, f"reject with tcp reset | icmp CODE | icmpv6 CODE | icmpx CODE, "
                      f"not {kind.text!r}" + suggest(kind.text, list(tables)))
        code = self.expect_word("a code name")
        if code.text == "type":  # nft's older spelling: reject with icmp type host-unreachable
            code = self.expect_word("a code name")
        table = tables[kind.text]
        if code.text not in table:
            self.fail(code, f"unknown {kind.text} reject code {code.text!r} (codes: "
                      f"{', '.join(table)})" + suggest(code.text, list(table)))
        return RejectSpec(kind.text, code.text)

    def parse_log(self, tok: Token) -> LogStatement:
        prefix = ""
        level = "warn"
        while self.peek().kind == WORD and self.peek().text in ("prefix", "level"):
            key = self.next()
            if key.text == "prefix":
                value = self.next()
                if value.kind != STRING:
                    self.fail(value, 'log prefix needs a quoted string: log prefix "in: "')
                prefix = value.text
            else:
                value = self.expect_word("a log level")
                levels = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
                if value.text not in levels:
                    self.fail(value, f"unknown log level {value.text!r}"
                              + suggest(value.text, levels))
                level = value.text
        return LogStatement(prefix, level)

    # --- matches -----------------------------------------------------------------------
    def parse_match(self, tok: Token) -> list[Expr]:
        word = tok.text
        try:
            return self._parse_match(tok, word)
        except RuleBuildError as e:
            self.fail(tok, str(e), len(word))

    def _negation(self) -> bool:
        tok = self.peek()
        if tok.kind == PUNCT and tok.text == "!=":
            self.next()
            return True
        if tok.kind == PUNCT and tok.text == "==":
            self.next()
        return False

    def _parse_match(self, tok: Token, word: str) -> list[Expr]:
        if word in ("ip", "ip6"):
            family = 4 if word == "ip" else 6
            fields = ("saddr", "daddr", "protocol") if family == 4 else (
                "saddr", "daddr", "nexthdr")
            sub = self.expect_word(f"{' or '.join(fields)} after {word}")
            if sub.text in ("saddr", "daddr"):
                negate = self._negation()
                return [AddressExpr(sub.text, self.address_values(), negate, family)]
            if sub.text in fields:
                negate = self._negation()
                return [ProtoExpr(self.protocol_values(), negate, family)]
            if (word, sub.text) in (("ip", "nexthdr"), ("ip6", "protocol")):
                self.fail(sub, f"{word} has {fields[2]}, not {sub.text}")
            self.fail(sub, f"unknown {word} field {sub.text!r} (fields: {', '.join(fields)})"
                      + suggest(sub.text, fields))
        if word in ("saddr", "daddr"):
            negate = self._negation()
            return [AddressExpr(word, self.address_values(), negate)]
        if word == "meta":
            sub = self.expect_word("l4proto, nfproto, iifname or oifname after meta")
            meta_fields = ("l4proto", "nfproto", "protocol", "iifname", "oifname", "iif", "oif")
            if sub.text == "l4proto":
                negate = self._negation()
                return [ProtoExpr(self.protocol_values(), negate)]
            if sub.text in ("nfproto", "protocol"):
                value = self.expect_word("ipv4 or ipv6")
                names = {"ipv4": 4, "ipv6": 6, "ip": 4, "ip6": 6}
                if value.text not in names:
                    self.fail(value, f"expected ipv4 or ipv6, not {value.text!r}")
                return [FamilyExpr(names[value.text])]
            if sub.text in ("iifname", "oifname", "iif", "oif"):
                return self._parse_match(sub, sub.text)
            self.fail(sub, f"unknown meta field {sub.text!r} (fields: l4proto, nfproto, "
                      "iifname, oifname)" + suggest(sub.text, meta_fields))
        if word in ("tcp", "udp", "th"):
            follow = self.peek()
            l4_fields = ("sport", "dport", "flags") if word == "tcp" else ("sport", "dport")
            if follow.kind == WORD and follow.text in l4_fields:
                self.next()
                if follow.text == "flags":
                    return [self.tcp_flags()]
                negate = self._negation()
                return [PortExpr(word, follow.text, self.port_values(), negate)]
            if word != "th" and self.bare_protocol_ok(follow):
                return [ProtoExpr([PROTOCOLS[word]])]
            self.fail(follow, f"unknown {word} field {follow.text!r} (fields: "
                      f"{', '.join(l4_fields)})" + suggest(follow.text, l4_fields))
        if word in ("icmp", "icmpv6"):
            version = 4 if word == "icmp" else 6
            follow = self.peek()
            if follow.kind == WORD and follow.text in ("type", "code"):
                self.next()
                negate = self._negation()
                if follow.text == "type":
                    table = ICMP_TYPES if version == 4 else ICMPV6_TYPES
                    return [IcmpTypeExpr(version, self.named_numbers(table, f"{word} type",
                                                                     255), negate)]
                table = ICMP_CODES if version == 4 else ICMPV6_CODES
                return [IcmpCodeExpr(version, self.named_numbers(table, f"{word} code", 255),
                                     negate)]
            if self.bare_protocol_ok(follow):
                return [ProtoExpr([PROTOCOLS[word]]), FamilyExpr(version)]
            self.fail(follow, f"unknown {word} field {follow.text!r} (fields: type, code)"
                      + suggest(follow.text, ("type", "code")))
        if word == "igmp":
            return [ProtoExpr([PROTOCOLS["igmp"]]), FamilyExpr(4)]
        if word == "ct":
            sub = self.expect_word("state after ct")
            if sub.text != "state":
                self.fail(sub, f"unknown ct field {sub.text!r} (fields: state)"
                          + suggest(sub.text, ("state",)))
            negate = self._negation()
            states = self.list_values("a connection state")
            for state_tok in states:
                if state_tok.text not in STATE_NAMES:
                    self.fail(state_tok, f"unknown connection state {state_tok.text!r} "
                              f"(states: {', '.join(STATE_NAMES)})"
                              + suggest(state_tok.text, list(STATE_NAMES)))
            return [CtStateExpr([t.text for t in states], negate)]
        if word in ("iif", "iifname", "oif", "oifname"):
            negate = self._negation()
            ifaces = self.list_values("an interface name", allow_strings=True)
            field = "iifname" if word.startswith("i") else "oifname"
            return [IfaceExpr(field, [t.text for t in ifaces], negate)]
        if word == "limit":
            return [self.limit()]
        self.fail(tok, f"unknown keyword {word!r}" + suggest(word, _CHAIN_KEYWORDS))

    def bare_protocol_ok(self, follow: Token) -> bool:
        """`tcp accept`, `udp ip saddr ...`: a protocol word on its own."""
        if follow.kind in (NEWLINE, EOF) or (follow.kind == PUNCT and follow.text in (";", "}")):
            return True
        return follow.kind == WORD and follow.text in _RULE_KEYWORDS

    # --- values ------------------------------------------------------------------------
    def list_values(self, what: str, allow_strings: bool = False) -> list[Token]:
        """One value, a comma list (`a,b`) or a `{ set }` of words."""
        kinds = (WORD, STRING) if allow_strings else (WORD,)
        tok = self.peek()
        if tok.kind == PUNCT and tok.text == "{":
            return self.set_values(what, kinds)
        values = []
        while True:
            value = self.next()
            if value.kind not in kinds:
                self.fail(value, f"expected {what}, found {describe(value)}")
            values.append(value)
            comma = self.peek()
            if comma.kind == PUNCT and comma.text == ",":
                self.next()
                continue
            return values

    def set_values(self, what: str, kinds: tuple[str, ...] = (WORD,)) -> list[Token]:
        open_tok = self.expect_punct("{")
        values: list[Token] = []
        expect_value = True
        while True:
            tok = self.next()
            if tok.kind == NEWLINE:
                continue
            if tok.kind == EOF:
                self.fail(open_tok, "missing '}' to close the set")
            if tok.kind == PUNCT and tok.text == "}":
                if not values:
                    self.fail(tok, f"empty set: give at least one {what}")
                return values
            if tok.kind == PUNCT and tok.text == "{":
                self.pos -= 1
                values.extend(self.set_values(what, kinds))  # a $define that is a set
                expect_value = False
                continue
            if tok.kind == PUNCT and tok.text == ",":
                if expect_value:
                    self.fail(tok, f"expected {what} before ','")
                expect_value = True
                continue
            if tok.kind not in kinds:
                self.fail(tok, f"expected {what} or '}}', found {describe(tok)}")
            if not expect_value:
                self.fail(tok, f"expected ',' or '}}' between set elements, found "
                          f"{describe(tok)}")
            values.append(tok)
            expect_value = False

    def address_values(self) -> AddressValue:
        tokens = self.list_values("an address, prefix, range or host name")
        items: list[str] = []
        for tok in tokens:
            try:
                value = AddressValue([tok.text])
            except RuleBuildError as e:
                self.fail(tok, f"bad address {tok.text!r}: {e}")
            for note in value.addresses.notes:
                self.warn(tok, note, len(tok.text))
            items.append(tok.text)
        return AddressValue(items)

    def port_values(self) -> list[str]:
        tokens = self.list_values("a port or port range")
        for tok in tokens:
            try:
                PortExpr("th", "dport", [tok.text])
            except RuleBuildError as e:
                self.fail(tok, f"bad port {tok.text!r}: {e}")
        return [t.text for t in tokens]

    def protocol_values(self) -> list[int]:
        values = []
        for tok in self.list_values("a protocol"):
            name = tok.text.lower()
            if name in PROTOCOLS:
                values.append(PROTOCOLS[name])
            elif name.isdigit() and int(name) <= 255:
                values.append(int(name))
            else:
                self.fail(tok, f"unknown protocol {tok.text!r} (tcp, udp, icmp, icmpv6, igmp, "
                          "or a number 0-255)" + suggest(name, list(PROTOCOLS)))
        return values

    def named_numbers(self, table: dict[str, int], what: str, maximum: int) -> list[int]:
        values = []
        for tok in self.list_values(what):
            if tok.text in table:
                values.append(table[tok.text])
            elif tok.text.isdigit() and int(tok.text) <= maximum:
                values.append(int(tok.text))
            else:
                self.fail(tok, f"unknown {what} {tok.text!r}" + suggest(tok.text, list(table)))
        return values

    def _flag_value(self, tok: Token, text: str) -> int:
        value = 0
        for part in text.replace("|", ",").split(","):
            part = part.strip()
            if not part:
                continue
            bit = TCP_FLAGS.get(part)
            if bit is None:
                self.fail(tok, f"unknown tcp flag {part!r} (flags: fin, syn, rst, psh, ack, "
                          "urg, ecn, cwr)" + suggest(part, list(TCP_FLAGS)))
            value |= bit
        return value

    def _flag_list(self) -> tuple[int, Token]:
        """Flags joined by ',' or '|' (or one word holding them)."""
        first = self.peek()
        value = 0
        while True:
            tok = self.expect_word("a tcp flag")
            text = tok.text
            if "/" in text:  # `syn/syn,ack` written without spaces
                left, _, right = text.partition("/")
                self.tokens.insert(self.pos, Token(WORD, right, tok.file, tok.line,
                                                   tok.column + len(left) + 1))
                self.tokens.insert(self.pos, Token(PUNCT, "/", tok.file, tok.line,
                                                   tok.column + len(left)))
                text = left
            value |= self._flag_value(tok, text)
            sep = self.peek()
            if sep.kind == PUNCT and sep.text in (",", "|"):
                self.next()
                continue
            return value, first

    def _flag_set(self) -> list[int]:
        """`{ syn, syn|ack }`: exact flag values joined by '|', separated by ','."""
        open_tok = self.expect_punct("{")
        values: list[int] = []
        while True:
            tok = self.next()
            if tok.kind == NEWLINE:
                continue
            if tok.kind == PUNCT and tok.text == "}":
                if not values:
                    self.fail(tok, "empty set: give at least one flag combination")
                return values
            if tok.kind == EOF:
                self.fail(open_tok, "missing '}' to close the set")
            if tok.kind != WORD:
                self.fail(tok, f"expected tcp flags, found {describe(tok)}")
            value = self._flag_value(tok, tok.text)
            while self.peek().kind == PUNCT and self.peek().text == "|":
                self.next()
                more = self.expect_word("a tcp flag")
                value |= self._flag_value(more, more.text)
            values.append(value)
            sep = self.peek()
            if sep.kind == PUNCT and sep.text == ",":
                self.next()

    def tcp_flags(self) -> TcpFlagsExpr:
        tok = self.peek()
        if tok.kind == PUNCT and tok.text == "&":
            self.next()
            paren = self.peek().kind == PUNCT and self.peek().text == "("
            if paren:
                self.next()
            mask, _ = self._flag_list()
            if paren:
                self.expect_punct(")")
            op = self.next()
            if op.kind != PUNCT or op.text not in ("==", "!="):
                self.fail(op, "expected == or != after the mask: tcp flags & (syn|ack) == syn")
            value, _ = self._flag_list()
            return TcpFlagsExpr("masked", value, mask, op.text == "!=")
        negate = False
        if tok.kind == PUNCT and tok.text in ("==", "!="):
            self.next()
            negate = tok.text == "!="
            if self.peek().kind == PUNCT and self.peek().text == "{":
                return TcpFlagsExpr("set", values=self._flag_set(), negate=negate)
            value, _ = self._flag_list()
            return TcpFlagsExpr("exact", value, negate=negate)
        if tok.kind == PUNCT and tok.text == "{":
            return TcpFlagsExpr("set", values=self._flag_set())
        value, _ = self._flag_list()
        slash = self.peek()
        if slash.kind == PUNCT and slash.text == "/":
            self.next()
            mask, _ = self._flag_list()
            return TcpFlagsExpr("masked", value, mask)
        return TcpFlagsExpr("any", mask=value)

    def limit(self) -> LimitExpr:
        rate_kw = self.expect_word("rate")
        if rate_kw.text != "rate":
            self.fail(rate_kw, "expected 'limit rate N/second'")
        over = False
        if self.peek().kind == WORD and self.peek().text == "over":
            self.next()
            over = True
        amount_tok = self.expect_word("a rate like 10/second")
        amount_text, slash, unit = amount_tok.text.partition("/")
        bytes_mode = False
        scale = 1
        if not slash:
            # `10 mbytes/second`
            unit_tok = self.expect_word("a unit like mbytes/second")
            byte_unit, slash, unit = unit_tok.text.partition("/")
            if byte_unit not in ("bytes", "kbytes", "mbytes") or not slash:
                self.fail(unit_tok, f"expected bytes/kbytes/mbytes per unit, e.g. "
                          f"'1 mbytes/second', not {unit_tok.text!r}")
            bytes_mode = True
            scale = {"bytes": 1, "kbytes": 1024, "mbytes": 1024 * 1024}[byte_unit]
        if not amount_text.isdigit():
            self.fail(amount_tok, f"expected a rate like 10/second, not {amount_tok.text!r}")
        units = ("second", "minute", "hour", "day", "week")
        if unit not in units:
            self.fail(amount_tok, f"unknown rate unit {unit!r} (units: {', '.join(units)})"
                      + suggest(unit, units))
        rate = int(amount_text) * scale
        if rate == 0:
            self.fail(amount_tok, "a rate of 0 never lets anything through; use drop")
        burst: int | None = None
        if self.peek().kind == WORD and self.peek().text == "burst":
            self.next()
            burst = self.expect_number("a burst size")
            unit_tok = self.expect_word("packets or bytes")
            if bytes_mode and unit_tok.text not in ("bytes", "kbytes", "mbytes"):
                self.fail(unit_tok, "a byte rate has a burst in bytes, kbytes or mbytes")
            if not bytes_mode and unit_tok.text != "packets":
                self.fail(unit_tok, "a packet rate has a burst in packets")
            if bytes_mode:
                burst *= {"bytes": 1, "kbytes": 1024, "mbytes": 1024 * 1024}[unit_tok.text]
        return LimitExpr(rate, unit, bytes_mode=bytes_mode, burst=burst, over=over)



# ==========================================================================================
# Whole-file checks and entry points
# ==========================================================================================
def _parse_into(ctx: _Context, text: str, file: str, base: Path | None) -> None:
    ctx.sources[file] = text.split("\n")
    resolved = str(Path(file).resolve()) if not file.startswith("<") else file
    ctx.include_stack.append(resolved)
    try:
        tokens = tokenize(text, file, ctx.report)
        _Parser(ctx, tokens, base).parse_top()
    finally:
        ctx.include_stack.pop()


def _finish(ctx: _Context) -> Ruleset:
    check_ruleset(ctx.ruleset, ctx.problems, ctx.report)
    errors = [p for p in ctx.problems if p.severity == "error"]
    if errors:
        raise RuleFileError(ctx.problems)
    ctx.ruleset.warnings = [p for p in ctx.problems if p.severity == "warning"]
    return ctx.ruleset


def parse_text(text: str, *, file: str = "<string>", base_dir: str | None = None) -> Ruleset:
    """Parse rule text (includes resolve relative to `base_dir`, else the cwd)."""
    ctx = _Context(Ruleset())
    _parse_into(ctx, text, file, Path(base_dir) if base_dir is not None else None)
    ctx.ruleset.source = file
    return _finish(ctx)


def parse_file(path: str | os.PathLike[str]) -> Ruleset:
    """Parse a rule file; RuleFileError lists every error with file:line:column."""
    file = os.fspath(path)
    try:
        text = Path(file).read_text()
    except FileNotFoundError:
        raise RuleFileError([Problem(Location(file, 1, 1), "no such file")]) from None
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or "not a UTF-8 text file"
        raise RuleFileError([Problem(Location(file, 1, 1), f"cannot read: {reason}")]) from None
    ctx = _Context(Ruleset())
    _parse_into(ctx, text, file, Path(file).parent)
    ctx.ruleset.source = file
    return _finish(ctx)


def parse_rule(text: str, *, file: str = "<rule>") -> Rule:
    """One rule (no chain around it)."""
    ctx = _Context(Ruleset())
    ctx.sources[file] = text.split("\n")
    tokens = tokenize(text, file, ctx.report)
    parser = _Parser(ctx, tokens, None)
    rule: Rule | None = None
    try:
        parser.skip_separators()
        rule = parser.parse_rule_tokens()
        parser.skip_separators()
        tok = parser.peek()
        if tok.kind != EOF:
            parser.fail(tok, f"expected one rule, found more: {describe(tok)}")
    except AbandonStatement:
        pass
    errors = [p for p in ctx.problems if p.severity == "error"]
    if errors or rule is None:
        raise RuleFileError(ctx.problems)
    return rule
