"""Short grants for the command line, and the rules `vnet run` starts from.

A grant is `PROTO:HOST:PORTS`::

    PROTO  tcp | udp | icmp | icmpv6 | any
    HOST   * (or any)  | 10.0.0.5 | 10.0.0.0/8 | [fd00::1] | [fd00::/8]
           | api.example.test | *.game.test | @lan
    PORTS  * (or any)  | 443 | 27015-27030 | 80,443 | https
           (for icmp/icmpv6: * or a type, e.g. echo-request)

`--allow` and `--deny` are about packets coming in (HOST is the source,
PORTS the local port, like `ufw allow from HOST to any port PORTS`),
`--allow-out` and `--deny-out` about packets going out (HOST is the
destination). An allow accepts; `--deny` drops (a sender sees a timeout);
`--deny-out` rejects with an ICMP administratively-prohibited (the guest's
connect fails at once with EHOSTUNREACH; its sendto with EPERM). Names are
matched against what the guest's resolver answered (see `firewall.names`).

`sandbox_ruleset(grants)` is what `vnet run` enforces when no `--firewall`
file is given: secure by default, a guest reaches its own virtual network
and nothing else -- the networks of its Ethernet interfaces (`daddr @lan`)
through those interfaces (`oifname @lan`), link-scoped multicast
(224.0.0.0/24, ff02::/16) and the limited broadcast 255.255.255.255 on
them too, and loopback -- never a TUN bridge's port, which leads to the
real kernel: no unicast, broadcast or multicast goes through a bridge, and
no multicast beyond the link (239.0.0.0/8, 224.0.1.0 and up, ff05::/16 ...)
leaves at all, unless a grant allows it (`--allow-out udp:239.1.2.3:5000`,
`--allow-out udp:255.255.255.255:*`). Only its own network, from its own
interfaces, reaches it (plus pings, as ufw allows them); replies to its own
flows come back (`ct state established,related`), and nothing is forwarded
but between its own networks. Grants go after that prelude, in command-line order, before the
catch-all rules. DNS is the exception to "its own network": a guest
sends DNS (UDP and TCP port 53) to its host's resolvers (`vnet run
--resolver`) and nowhere else, not even on its own network (a rejected
query fails at once) — after the grants, so `--allow-out udp:*:53` still
opens it. With a `--firewall` file, `apply_grants` puts them at the top
of its input and output chains, and the file says itself where DNS may go
(`daddr 10.0.0.53 udp dport 53 accept`). Touches nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .matches import ICMP_TYPES, ICMPV6_TYPES
from .names import is_name_pattern
from .rules import Chain, Rule, Ruleset
from .sets import SetValueError, parse_port

__all__ = ["Grant", "GrantError", "apply_grants", "parse_grant", "sandbox_ruleset"]

GRANT_GRAMMAR = "PROTO:HOST:PORTS, e.g. tcp:10.0.0.0/8:443, udp:*.game.test:27015, any:@lan:*"
_GRANT = re.compile(r"^(?P<proto>[A-Za-z0-9]+):(?P<host>\[[^\]]*\]|[^:\[\]]*):(?P<ports>.*)$")
_PROTOS = ("tcp", "udp", "icmp", "icmpv6", "any")


class GrantError(ValueError):
    """A grant that does not parse; the message says what is wrong and shows the grammar."""


@dataclass(frozen=True)
class Grant:
    """One `--allow`/`--allow-out`/`--deny`/`--deny-out` grant."""

    direction: str  # "in" or "out"
    action: str  # "allow" or "deny"
    proto: str
    host: str | None  # None: any host
    ports: str | None  # None: any port (or any ICMP type)
    text: str

    @property
    def chain(self) -> str:
        return "input" if self.direction == "in" else "output"

    def rule_text(self) -> str:
        parts: list[str] = []
        if self.host is not None:
            parts.append(f"{'saddr' if self.direction == 'in' else 'daddr'} {self.host}")
        if self.proto in ("tcp", "udp"):
            parts.append(f"{self.proto} dport {self.ports}" if self.ports else self.proto)
        elif self.proto in ("icmp", "icmpv6"):
            parts.append(f"{self.proto} type {self.ports}" if self.ports else self.proto)
        if self.action == "allow":
            parts.append("accept")
        elif self.direction == "in":
            parts.append("drop")
        else:
            parts.append("reject with icmpx admin-prohibited")
        flag = {("in", "allow"): "--allow", ("out", "allow"): "--allow-out",
                ("in", "deny"): "--deny", ("out", "deny"): "--deny-out"}[
                    (self.direction, self.action)]
        return " ".join(parts) + f' comment "{flag} {self.text}"'

    def rule(self) -> Rule:
        return Rule.parse(self.rule_text(), file=f"<{self.text}>")


def parse_grant(text: str, direction: str = "in", action: str = "allow") -> Grant:
    """`tcp:10.0.0.0/8:443` -> Grant (GrantError if it is not that shape)."""
    if text.count(":") > 2 and "[" not in text:
        raise GrantError(f"{text!r}: put an IPv6 address in brackets, e.g. tcp:[fd00::1]:443")
    match = _GRANT.match(text.strip())
    if not match:
        raise GrantError(f"{text!r}: expected {GRANT_GRAMMAR}")
    proto = match["proto"].lower()
    if proto not in _PROTOS:
        raise GrantError(f"{text!r}: protocol {proto!r} is not one of {', '.join(_PROTOS)}")
    host = _host(match["host"], text)
    ports = _ports(match["ports"].strip(), proto, text)
    return Grant(direction, action, proto, host, ports, text.strip())


def _host(raw: str, text: str) -> str | None:
    host = raw.strip()
    if host.startswith("["):
        host = host[1:-1].strip()
        try:
            ipaddress.ip_network(host, strict=False)
        except ValueError:
            raise GrantError(f"{text!r}: {host!r} in brackets is not an IPv6 address or "
                             "prefix") from None
        if ipaddress.ip_network(host, strict=False).version != 6:
            raise GrantError(f"{text!r}: brackets are for IPv6; write IPv4 as is")
        return host
    if host in ("", "*", "any"):
        return None
    if host == "@lan" or host == "@local":
        return host
    try:
        ipaddress.ip_network(host, strict=False)
        if "/" in host:
            plen = int(host.split("/")[1])
            if plen > 32:
                raise ValueError
        return host
    except ValueError:
        pass
    if re.match(r"^[0-9./]+$", host):
        raise GrantError(f"{text!r}: {host!r} is not an IPv4 address or prefix")
    if not is_name_pattern(host):
        raise GrantError(f"{text!r}: {host!r} is not an address, prefix, host name or "
                         "*.domain")
    return host.lower()


def _ports(raw: str, proto: str, text: str) -> str | None:
    if raw in ("", "*", "any"):
        return None
    if proto == "any":
        raise GrantError(f"{text!r}: protocol 'any' takes no ports (use '*'), or name tcp/udp")
    if proto in ("icmp", "icmpv6"):
        table = ICMP_TYPES if proto == "icmp" else ICMPV6_TYPES
        for item in raw.split(","):
            item = item.strip()
            if item not in table and not (item.isdigit() and int(item) <= 255):
                raise GrantError(f"{text!r}: {item!r} is not an {proto} type "
                                 f"(e.g. echo-request)")
        items = [i.strip() for i in raw.split(",")]
    else:
        items = []
        for item in raw.split(","):
            try:
                parse_port(item)
            except SetValueError as e:
                raise GrantError(f"{text!r}: {e}") from None
            items.append(item.strip())
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


SANDBOX_INPUT_PRELUDE = """\
    ct state established,related accept
    ct state invalid drop
    iifname lo accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert,
                  mld-listener-query } accept
    icmp type echo-request accept
    icmpv6 type echo-request accept
"""
SANDBOX_INPUT_TAIL = """\
    iifname @lan saddr @lan accept
"""
SANDBOX_OUTPUT_PRELUDE = """\
    ct state established,related accept
    oifname lo accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit,
                  mld2-listener-report } accept
"""
SANDBOX_OUTPUT_TAIL = """\
    oifname @lan daddr @lan accept
    oifname @lan daddr { 224.0.0.0/24, 255.255.255.255, ff02::/16 } accept
    oifname @lan ip protocol igmp accept
    reject with icmpx admin-prohibited
"""
SANDBOX_FORWARD = """\
    ct state established,related accept
    iifname @lan oifname @lan saddr @lan daddr @lan accept
"""


def sandbox_dns_rules(resolvers: Sequence[str] = ()) -> str:
    """The output rules for DNS: to the host's resolvers, and nowhere else on port 53."""
    text = ""
    if resolvers:
        targets = ", ".join(str(ipaddress.ip_address(r)) for r in resolvers)
        for proto in ("udp", "tcp"):
            text += (f"    daddr {{ {targets} }} {proto} dport 53 accept "
                     f'comment "DNS to the host\'s resolver"\n')
    for proto in ("udp", "tcp"):
        text += (f"    {proto} dport 53 reject with icmpx admin-prohibited "
                 f'comment "DNS only to the host\'s resolver"\n')
    return text


def sandbox_ruleset(grants: Sequence[Grant] = (), resolvers: Sequence[str] = ()) -> Ruleset:
    """The rules `vnet run` enforces without --firewall (see the module docstring)."""
    inbound = "".join(f"    {g.rule_text()}\n" for g in grants if g.direction == "in")
    outbound = "".join(f"    {g.rule_text()}\n" for g in grants if g.direction == "out")
    outbound += sandbox_dns_rules(resolvers)
    text = ("# vnet run: the guest reaches its own virtual network and nothing else\n"
            "chain input {\n    policy drop\n" + SANDBOX_INPUT_PRELUDE + inbound
            + SANDBOX_INPUT_TAIL + "}\n"
            "chain output {\n    policy drop\n" + SANDBOX_OUTPUT_PRELUDE + outbound
            + SANDBOX_OUTPUT_TAIL + "}\n"
            "chain forward {\n    policy drop\n" + SANDBOX_FORWARD + "}\n")
    ruleset = Ruleset.parse(text, file="<vnet run sandbox>")
    return ruleset


def apply_grants(ruleset: Ruleset, grants: Sequence[Grant]) -> Ruleset:
    """Put grants at the top of a rule file's input/output chains, in the order given."""
    positions = {"input": 0, "output": 0}
    for grant in grants:
        chain = ruleset.chains.get(grant.chain)
        if chain is None:
            chain = ruleset.add_chain(Chain(grant.chain))
        chain.insert(positions[grant.chain], grant.rule())
        positions[grant.chain] += 1
    ruleset.link()
    return ruleset
