"""`vnet firewall check` and `vnet firewall show`, and the rules `vnet run` loads.

The command line itself lives in `vnet.cli`; this module does the work and
returns exit statuses, writing to the streams it is given:

    vnet firewall check FILE...        validate; errors and warnings with file:line:col
                                       and a caret; exit 0 (valid), 1 (valid but
                                       --strict and warnings), 2 (errors)
    vnet firewall show [--firewall FILE] [--allow G] [--allow-out G] [--deny G]
                       [--deny-out G]  print the rules `vnet run` would enforce with
                                       these flags, in rule syntax, with counters

`run_ruleset(...)` builds that rule set for `vnet run`: the file's rules (or
the sandbox defaults of `firewall.grants`) with the grants applied. Errors
are raised as `FirewallConfigError` with a one-line message. Touches the
rule files it reads and the streams it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from .grants import Grant, GrantError, apply_grants, parse_grant, sandbox_ruleset
from .parser import RuleFileError, parse_file
from .rules import Ruleset

__all__ = ["FirewallConfigError", "check", "grants_from_flags", "run_ruleset", "show"]


class FirewallConfigError(ValueError):
    """Bad --firewall/--allow/... input; `str()` is the message to print."""


def grants_from_flags(allow: Sequence[str] = (), allow_out: Sequence[str] = (),
                      deny: Sequence[str] = (), deny_out: Sequence[str] = ()) -> list[Grant]:
    grants: list[Grant] = []
    for flag, values, direction, action in (("--allow", allow, "in", "allow"),
                                            ("--allow-out", allow_out, "out", "allow"),
                                            ("--deny", deny, "in", "deny"),
                                            ("--deny-out", deny_out, "out", "deny")):
        for value in values:
            try:
                grants.append(parse_grant(value, direction, action))
            except GrantError as e:
                raise FirewallConfigError(f"{flag} {e}") from None
    return grants


def run_ruleset(firewall: str | None = None, allow: Sequence[str] = (),
                allow_out: Sequence[str] = (), deny: Sequence[str] = (),
                deny_out: Sequence[str] = (), resolvers: Sequence[str] = ()) -> Ruleset:
    """The rules `vnet run` enforces for these flags (`resolvers`: the host's DNS servers)."""
    grants = grants_from_flags(allow, allow_out, deny, deny_out)
    if firewall is None:
        return sandbox_ruleset(grants, resolvers)
    try:
        ruleset = parse_file(firewall)
    except RuleFileError as e:
        raise FirewallConfigError(str(e.errors[0]) + (
            f" (and {len(e.errors) - 1} more errors)" if len(e.errors) > 1 else "")) from None
    return apply_grants(ruleset, grants)


def check(paths: Sequence[str], out: TextIO, err: TextIO, strict: bool = False) -> int:
    """Validate rule files; print problems; 0 ok, 1 warnings under --strict, 2 errors."""
    status = 0
    for path in paths:
        try:
            ruleset = parse_file(path)
        except RuleFileError as e:
            print(e.render(), file=err)
            errors = len(e.errors)
            print(f"{path}: {errors} error{'s' if errors != 1 else ''}", file=err)
            status = 2
            continue
        for warning in ruleset.warnings:
            print(warning.render(), file=err)
        rules = sum(len(c.rules) for c in ruleset.chains.values())
        note = f", {len(ruleset.warnings)} warnings" if ruleset.warnings else ""
        print(f"{path}: ok ({len(ruleset.chains)} chains, {rules} rules{note})", file=out)
        if strict and ruleset.warnings and status == 0:
            status = 1
    return status


def show(out: TextIO, err: TextIO, firewall: str | None = None, allow: Sequence[str] = (),
         allow_out: Sequence[str] = (), deny: Sequence[str] = (),
         deny_out: Sequence[str] = ()) -> int:
    """Print the rules `vnet run` would load with these flags (counters at zero)."""
    try:
        ruleset = run_ruleset(firewall, allow, allow_out, deny, deny_out)
    except FirewallConfigError as e:
        print(f"vnet firewall show: {e}", file=err)
        return 2
    source = firewall or "the vnet run sandbox defaults"
    print(f"# rules vnet run enforces (from {source})", file=out)
    print(ruleset.format(counters=True), end="", file=out)
    return 0
