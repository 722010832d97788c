"""DNS on the virtual wire: a server on a host, resolvers per host, /etc for guests.

- `vnet.dns.zone`: what a server answers (sans-IO), static records, policy;
- `vnet.dns.server`: the server on a host's UDP and TCP port 53;
- `vnet.dns.etc`: the read-only `/etc` (resolv.conf, hosts) guests see;
- the message format itself is `stack.wire.dns`.

`serve_dns(host, records=..., policy=...)` is what `Host.serve_dns`,
`Network.dns` and a topology's `dns = {...}` call; `records_from` and
`policy_from` turn the configuration's plain values (dicts of strings, as
in a topology file) into the zone's objects, with a ValueError that says
what is wrong. Touches what those modules touch.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .zone import DEFAULT_TTL, DnsZone, PolicyRule, StaticRecord, static_record

if TYPE_CHECKING:
    from vnet.network import Host

    from .server import DnsServer

__all__ = ["DnsZone", "PolicyRule", "StaticRecord", "forwarders_from", "policy_from",
           "records_from", "serve_dns", "static_record"]

RECORD_KEYS = {"name", "type", "value", "ttl"}
POLICY_KEYS = {"clients", "deny", "allow", "action"}


def records_from(items: Iterable[StaticRecord | Mapping[str, Any]]) -> list[StaticRecord]:
    """Records from `StaticRecord`s or `{name, type, value, ttl}` tables."""
    found = []
    for index, item in enumerate(items):
        if isinstance(item, StaticRecord):
            found.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ValueError(f"record {index + 1} is not a table {{ name, type, value }}")
        unknown = set(item) - RECORD_KEYS
        if unknown:
            raise ValueError(f"record {index + 1}: unknown key {sorted(unknown)[0]!r} "
                             f"(known: {', '.join(sorted(RECORD_KEYS))})")
        missing = [k for k in ("name", "type", "value") if k not in item]
        if missing:
            raise ValueError(f"record {index + 1} needs {missing[0]} = ...")
        if not isinstance(item["name"], str) or not isinstance(item["type"], str):
            raise ValueError(f"record {index + 1}: name and type are strings")
        try:
            found.append(static_record(item["name"], item["type"], item["value"],
                                       item.get("ttl", DEFAULT_TTL)))
        except ValueError as e:
            raise ValueError(f"record {index + 1} ({item['name']}): {e}") from None
    return found


def policy_from(items: Iterable[PolicyRule | Mapping[str, Any]] | Mapping[str, Any] | None,
                ) -> list[PolicyRule]:
    """Policy rules from `PolicyRule`s or `{clients, deny | allow, action}` tables."""
    if items is None:
        return []
    if isinstance(items, Mapping):
        items = [items]
    rules = []
    for index, item in enumerate(items):
        if isinstance(item, PolicyRule):
            rules.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ValueError(f"policy rule {index + 1} is not a table")
        unknown = set(item) - POLICY_KEYS
        if unknown:
            raise ValueError(f"policy rule {index + 1}: unknown key {sorted(unknown)[0]!r} "
                             f"(known: {', '.join(sorted(POLICY_KEYS))})")
        clients = item.get("clients", ["*"])
        if isinstance(clients, str):
            clients = [clients]
        for key in ("deny", "allow"):
            value = item.get(key)
            if value is not None and (not isinstance(value, list)
                                      or not all(isinstance(v, str) for v in value)):
                raise ValueError(f"policy rule {index + 1}: {key} is a list of names")
        try:
            rules.append(PolicyRule.make(clients, item.get("deny"), item.get("allow"),
                                         item.get("action", "refuse")))
        except ValueError as e:
            raise ValueError(f"policy rule {index + 1}: {e}") from None
    return rules


def forwarders_from(items: Iterable[str]) -> list[bytes]:
    """Forwarder addresses (ValueError for one that is not an IP address)."""
    found = []
    for item in items:
        try:
            if not isinstance(item, str):
                raise ValueError
            found.append(ipaddress.ip_address(item).packed)
        except ValueError:
            raise ValueError(f"forwarder {item!r} is not an IP address") from None
    return found


def serve_dns(host: Host, records: Iterable[StaticRecord | Mapping[str, Any]] = (),
              policy: Any = None, ttl: int = DEFAULT_TTL, port: int = 53,
              forward: Iterable[str] = ()) -> DnsServer:
    """Start a DNS server on `host` for the network's names, `records` and `policy`,
    passing recursive queries for other names to the `forward` servers (addresses)."""
    from .server import DnsServer

    network = host.network

    def host_addresses(name: str) -> list[bytes]:
        if name not in network.hosts:
            return []
        with network.scheduler.lock:
            return network.resolve(name)

    def address_owner(address: bytes) -> str | None:
        with network.scheduler.lock:
            for other in network.hosts.values():
                for iface in other.stack.interfaces.values():
                    if not iface.is_loopback and iface.has_address(address):
                        return other.name
        return None

    zone = DnsZone(host.name, host_addresses=host_addresses, address_owner=address_owner,
                   records=records_from(records), policy=policy_from(policy), ttl=ttl,
                   forwarders=forwarders_from(forward))
    return DnsServer(host, zone, port).start()
