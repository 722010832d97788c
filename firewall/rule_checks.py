"""Static checks of parsed rules: the rule file's warnings (and a few errors).

A rule that can never match (contradicting families or protocols, disjoint
values of one match, a flag mask that excludes its own value, a match the
chain's hook cannot see, a rule after an unconditional verdict), a duplicate
rule, a chain nothing jumps to: each is reported as a `Problem` at the rule's
place, while the file is parsed (`check_rule`) or once it is whole
(`check_ruleset`). Jumps to unknown or base chains are errors.

Touches nothing: rules in, problems out.
"""

from __future__ import annotations

from collections.abc import Callable

from .lexer import Problem, Token, suggest
from .matches import (
    AddressExpr,
    CtStateExpr,
    Expr,
    IcmpCodeExpr,
    IcmpTypeExpr,
    PortExpr,
    RuleBuildError,
    TcpFlagsExpr,
)
from .rules import (
    GOTO,
    JUMP,
    TERMINAL,
    Chain,
    Location,
    Rule,
    Ruleset,
)


def check_rule(rule: Rule, exprs: list[tuple[Expr, Token]], first: Token,
               warn: Callable[[Token, str, int], None]) -> None:
    """Warn about rules that can never match."""
    families: dict[int, Token] = {}
    for expr, tok in exprs:
        if expr.family is not None:
            families.setdefault(expr.family, tok)
    if rule.reject is not None and rule.reject.family is not None:
        families.setdefault(rule.reject.family, first)
    if len(families) > 1:
        warn(first, "this rule can never match: it asks for both IPv4 and IPv6 "
             f"(from '{families[4].text}' and '{families[6].text}')", 1)
        return
    protocols: frozenset[int] | None = None
    for expr, tok in exprs:
        if expr.protocols is None:
            continue
        protocols = expr.protocols if protocols is None else protocols & expr.protocols
        if not protocols:
            warn(tok, f"this rule can never match: '{tok.text}' contradicts the "
                 "protocol asked for earlier in the rule", len(tok.text))
            return
    for expr, tok in exprs:
        if isinstance(expr, TcpFlagsExpr) and expr.never_matches:
            warn(tok, "this rule can never match: the flag value has bits outside "
                 "its mask", len(tok.text))
            return
    seen: dict[type, list[Expr]] = {}
    for expr, tok in exprs:
        for other in seen.get(type(expr), []):
            if disjoint(expr, other):
                warn(tok, f"this rule can never match: '{expr}' and '{other}' cannot "
                     "both hold", len(tok.text))
                return
        seen.setdefault(type(expr), []).append(expr)


def disjoint(a: Expr, b: Expr) -> bool:
    """Two positive expressions of one kind that no packet can satisfy together."""
    if getattr(a, "negate", False) or getattr(b, "negate", False):
        return False
    if isinstance(a, PortExpr) and isinstance(b, PortExpr):
        return a.field == b.field and a.proto == b.proto and not a.ports.intersects(b.ports)
    if isinstance(a, AddressExpr) and isinstance(b, AddressExpr):
        va, vb = a.value, b.value
        if a.field != b.field or va.names or vb.names or va.dynamic or vb.dynamic:
            return False
        return not va.addresses.intersects(vb.addresses)
    if isinstance(a, IcmpTypeExpr) and isinstance(b, IcmpTypeExpr):
        return a.family == b.family and not (a.values & b.values)
    if isinstance(a, IcmpCodeExpr) and isinstance(b, IcmpCodeExpr):
        return a.family == b.family and not (a.values & b.values)
    if isinstance(a, CtStateExpr) and isinstance(b, CtStateExpr):
        return not (a.mask & b.mask)
    return False


def check_ruleset(ruleset: Ruleset, problems: list[Problem],
                  report: Callable[[Problem], None]) -> None:
    """Errors and warnings about a whole ruleset: hooks claimed twice, jumps to unknown or
    base chains, shadowed and duplicate rules, matches a hook cannot see, unused chains."""
    used: set[str] = set()
    hooks: dict[str, Chain] = {}
    for chain in ruleset.chains.values():
        if chain.hook is not None:
            if chain.hook in hooks:
                report(Problem(chain.location or Location("<rules>", 1, 1),
                                   f"chains {hooks[chain.hook].name!r} and {chain.name!r} "
                                   f"both attach to hook {chain.hook}"))
            hooks[chain.hook] = chain
        texts: dict[str, Rule] = {}
        shadow: Rule | None = None
        for rule in chain.rules:
            loc = rule.location or Location("<rules>", 1, 1)
            if rule.verdict in (JUMP, GOTO) and rule.target:
                used.add(rule.target)
                target = ruleset.chains.get(rule.target)
                if target is None:
                    report(Problem(loc, f"{rule.verdict} to unknown chain {rule.target!r}"
                                       + suggest(rule.target, list(ruleset.chains))))
                elif target.hook is not None:
                    report(Problem(loc, f"cannot {rule.verdict} to base chain "
                                       f"{target.name!r} (it is attached to a hook)"))
            if shadow is not None:
                where = shadow.location
                report(Problem(loc, "this rule can never match: the rule at line "
                                   f"{where.line if where else '?'} decides every packet "
                                   "first", "warning"))
            elif not rule.exprs and (rule.verdict in TERMINAL or rule.verdict in (GOTO,
                                                                                  "return")):
                shadow = rule
            if chain.hook is not None:
                for expr in rule.exprs:
                    if expr.hooks is not None and chain.hook not in expr.hooks:
                        report(Problem(loc, f"this rule can never match: '{expr}' never "
                                           f"holds in the {chain.hook} hook", "warning"))
                        break
            text = rule.text()
            if text in texts and shadow is None:
                first = texts[text].location
                report(Problem(loc, f"duplicate rule (same as line "
                                   f"{first.line if first else '?'}): it only matches "
                                   "what the first one did not", "warning"))
            texts.setdefault(text, rule)
    for chain in ruleset.chains.values():
        if chain.hook is None and chain.name not in used:
            report(Problem(chain.location or Location("<rules>", 1, 1),
                               f"chain {chain.name!r} is never used (nothing jumps to it, and "
                               "it is not input, output or forward)", "warning"))
    if not any(p.severity == "error" for p in problems):
        try:
            ruleset.link()
        except RuleBuildError as e:
            report(Problem(Location("<rules>", 1, 1), str(e)))
