"""The vnet firewall: rules, their parser, connection tracking, name rules.

May import `stack`, never `vnet`. The public surface:

- `Ruleset`, `Chain`, `Rule`, `Verdict` and the match expressions
  (`firewall.rules`): build rules from text (`Ruleset.parse`, `Ruleset.load`)
  or from Python (`Rule.build`), evaluate packets, print them with counters;
- `RuleFileError`, `Problem` (`firewall.parser`): errors and warnings with
  file, line and column;
- `ConnTrack` (`firewall.conntrack`): sans-IO connection tracking;
- `NameTable` (`firewall.names`): addresses learned from the resolver;
- `HostFirewall` (`firewall.host_firewall`): all of the above on one
  `stack.host.HostStack`'s hooks, with rejects and logging;
- `grants`: the `vnet run` short forms (`tcp:10.0.0.0/8:443`) and the
  secure-by-default sandbox rules;
- `commands`: `vnet firewall check` and `vnet firewall show`.

Typical use::

    from firewall import HostFirewall, Ruleset
    fw = HostFirewall(Ruleset.load("rules.nft")).attach(host.stack)
    fw.learn("api.example.test", [addr])      # what the host's resolver answered
    print(fw.show())                          # rules with counters, conntrack, names
"""

from .conntrack import (
    ESTABLISHED,
    INVALID,
    NEW,
    RELATED,
    UNTRACKED,
    Connection,
    ConnTrack,
    Timeouts,
)
from .grants import Grant, GrantError, parse_grant, sandbox_ruleset
from .host_firewall import HostFirewall, LogRecord
from .names import NamePattern, NameTable
from .packet import PacketInfo
from .parser import Problem, RuleFileError
from .rules import (
    Chain,
    Location,
    RejectSpec,
    Rule,
    RuleBuildError,
    Ruleset,
    Verdict,
)
from .sets import AddressSet, PortSet

__all__ = [
    "ESTABLISHED",
    "INVALID",
    "NEW",
    "RELATED",
    "UNTRACKED",
    "AddressSet",
    "Chain",
    "ConnTrack",
    "Connection",
    "Grant",
    "GrantError",
    "HostFirewall",
    "Location",
    "LogRecord",
    "NamePattern",
    "NameTable",
    "PacketInfo",
    "PortSet",
    "Problem",
    "RejectSpec",
    "Rule",
    "RuleBuildError",
    "RuleFileError",
    "Ruleset",
    "Timeouts",
    "Verdict",
    "parse_grant",
    "sandbox_ruleset",
]
