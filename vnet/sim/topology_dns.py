"""The DNS keys of a topology file: `dns = {...}` on a host or router, `resolvers = [...]`.

    [hosts.ns.dns]                       # a DNS server on this host (UDP and TCP 53)
    ttl = 60                             # of the topology names' answers (default 60)
    records = [                          # static records: A AAAA CNAME TXT SRV MX PTR NS
      { name = "api.example.test", type = "CNAME", value = "web" },
      { name = "example.test", type = "MX", value = "10 mail.example.test", ttl = 300 },
      { name = "_game._udp.example.test", type = "SRV", value = "5 10 27015 web" },
      { name = "example.test", type = "TXT", value = ["v=spf1 -all"] },
    ]
    forward = ["203.0.113.53"]           # optional: recursive queries for other names go
                                         #   there (answers with RA); without: NXDOMAIN
    policy = [                           # per client: names it may not look up
      { clients = ["kid"], deny = ["*.games.test"], action = "refuse" },   # or "nxdomain"
      { clients = ["10.0.9.0/24"], allow = ["web", "*.example.test"], action = "nxdomain" },
    ]

    [hosts.kid]
    resolvers = ["ns"]                   # addresses, or host names: that host's address
                                         #   on a network both share (IPv4 first)

The server answers every topology host name (A/AAAA, PTR) and the records
(see `vnet.dns.zone`); a host with resolvers sees them in its guests'
/etc/resolv.conf and its SDK getaddrinfo asks them on the wire. Errors are
`TopologyError`s with the file and line, like every other key. Called once
by `vnet.sim.topology.parse` after the hosts are read; touches nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vnet.dns import forwarders_from, policy_from, records_from
from vnet.dns.zone import DEFAULT_TTL, PolicyRule, StaticRecord

if TYPE_CHECKING:
    from vnet.sim.topology import Topology, _Locator

DNS_KEYS = {"records", "policy", "ttl", "forward"}


@dataclass
class DnsSpec:
    """A host's `dns` table: the arguments of `Host.serve_dns`."""

    records: list[StaticRecord] = field(default_factory=list)
    policy: list[PolicyRule] = field(default_factory=list)
    ttl: int = DEFAULT_TTL
    forward: list[str] = field(default_factory=list)  # upstream servers' addresses


def dns_keys(hosts: dict[str, Any], topo: Topology, path: Path, loc: _Locator) -> None:
    """Fill each HostSpec's `dns` and `resolvers` from the host tables (after `[defaults]`,
    templates and `count` were applied)."""
    from vnet.sim.topology import TopologyError, _check_keys, _expect

    for hname, hspec in hosts.items():
        host = topo.hosts[hname]
        hkey = ("hosts", hname)
        if "dns" in hspec:
            table = _expect(hspec["dns"], dict, path, loc.line(*hkey, "dns"), "dns")
            _check_keys(table, DNS_KEYS, path, loc, (*hkey, "dns"), f"the dns of host {hname!r}")
            ttl = _expect(table.get("ttl", DEFAULT_TTL), int, path,
                          loc.line(*hkey, "dns", "ttl"), "ttl")
            if not 0 <= ttl < 2 ** 31:
                raise TopologyError(path, loc.line(*hkey, "dns", "ttl"),
                                    "ttl must be 0..2147483647 seconds")
            records = _expect(table.get("records", []), list, path,
                              loc.line(*hkey, "dns", "records"), "records")
            spec = DnsSpec(ttl=ttl)
            for index, record in enumerate(records):
                try:
                    spec.records += records_from([record])
                except ValueError as e:
                    raise TopologyError(path, _item_line(loc, (*hkey, "dns", "records"), index),
                                        str(e).replace("record 1", f"record {index + 1}",
                                                       1)) from None
            policy = table.get("policy", [])
            if isinstance(policy, dict):
                policy = [policy]
            _expect(policy, list, path, loc.line(*hkey, "dns", "policy"), "policy")
            for index, rule in enumerate(policy):
                try:
                    spec.policy += policy_from([rule])
                except ValueError as e:
                    raise TopologyError(path, _item_line(loc, (*hkey, "dns", "policy"), index),
                                        str(e).replace("rule 1", f"rule {index + 1}",
                                                       1)) from None
            forward = _expect(table.get("forward", []), list, path,
                              loc.line(*hkey, "dns", "forward"), "forward")
            try:
                forwarders_from(forward)
            except (ValueError, TypeError) as e:
                raise TopologyError(path, loc.line(*hkey, "dns", "forward"), str(e)) from None
            spec.forward = [str(f) for f in forward]
            host.dns = spec
        if "resolvers" in hspec:
            line = loc.line(*hkey, "resolvers")
            resolvers = _expect(hspec["resolvers"], list, path, line, "resolvers")
            for item in resolvers:
                if not isinstance(item, str):
                    raise TopologyError(path, line, f"a resolver is an address or a host name, "
                                        f"not {item!r}")
                try:
                    ipaddress.ip_address(item)
                    continue
                except ValueError:
                    pass
                if item not in topo.hosts:
                    raise TopologyError(path, line, f"resolver {item!r} is neither an IP "
                                        "address nor a host of this topology")
                if item != hname and "dns" not in hosts[item]:
                    raise TopologyError(path, line, f"resolver {item!r} runs no DNS server "
                                        f"(give host {item!r} a dns table)")
            host.resolvers = [str(r) for r in resolvers]


def _item_line(loc: _Locator, key: tuple[str, ...], index: int) -> int | None:
    """The line of the index-th inline table of an array (tables one per line or several)."""
    start = loc.line(*key)
    if start is None:
        return None
    seen = 0
    for number in range(start, len(loc.lines) + 1):
        seen += loc.lines[number - 1].count("{")
        if seen > index:
            return number
    return start
