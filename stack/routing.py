"""The routing table of one host: longest-prefix match over IPv4 and IPv6.

Routes come from three places: on-link routes the stack adds for each
interface address ("connected"), routes a user or topology adds ("static",
including default gateways), and routes learned from IPv6 router
advertisements ("ra"). `lookup` picks the longest matching prefix and, among
equals, the lowest metric, then the earliest added. Pure data: touches nothing.

Lookup walks the prefix lengths present in the table from longest to
shortest, with one dict probe each, so it costs O(distinct prefix lengths).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .interface import mask_address


@dataclass(frozen=True, slots=True)
class Route:
    prefix: bytes  # network address, host bits zero
    prefix_len: int
    ifindex: int
    gateway: bytes | None = None  # None: on-link
    metric: int = 0
    source: str = "static"  # "connected", "static", "ra"
    preferred_source: bytes | None = None

    @property
    def version(self) -> int:
        return 4 if len(self.prefix) == 4 else 6

    def __str__(self) -> str:
        net = f"{ipaddress.ip_address(self.prefix)}/{self.prefix_len}"
        if self.prefix_len == 0:
            net = "default"
        via = f" via {ipaddress.ip_address(self.gateway)}" if self.gateway else ""
        return f"{net}{via} dev#{self.ifindex} metric {self.metric} proto {self.source}"


class RouteTable:
    def __init__(self) -> None:
        # version → prefix_len → network → routes (lowest metric first)
        self._by_len: dict[int, dict[int, dict[bytes, list[Route]]]] = {4: {}, 6: {}}
        self._lengths: dict[int, list[int]] = {4: [], 6: []}
        #: Bumped by every change: what caches of routing decisions compare against.
        self.generation = 0

    def add(self, route: Route) -> Route:
        route = Route(mask_address(route.prefix, route.prefix_len), route.prefix_len,
                      route.ifindex, route.gateway, route.metric, route.source,
                      route.preferred_source)
        table = self._by_len[route.version]
        bucket = table.setdefault(route.prefix_len, {}).setdefault(route.prefix, [])
        if route in bucket:
            return route
        bucket.append(route)
        bucket.sort(key=lambda r: r.metric)
        self._lengths[route.version] = sorted(table, reverse=True)
        self.generation += 1
        return route

    def remove(self, route: Route) -> bool:
        table = self._by_len[route.version]
        bucket = table.get(route.prefix_len, {}).get(route.prefix)
        if not bucket or route not in bucket:
            return False
        bucket.remove(route)
        self.generation += 1
        if not bucket:
            del table[route.prefix_len][route.prefix]
            if not table[route.prefix_len]:
                del table[route.prefix_len]
        self._lengths[route.version] = sorted(table, reverse=True)
        return True

    def remove_where(self, ifindex: int | None = None, source: str | None = None,
                     prefix: bytes | None = None, prefix_len: int | None = None) -> int:
        doomed = [
            r for r in self.routes()
            if (ifindex is None or r.ifindex == ifindex)
            and (source is None or r.source == source)
            and (prefix is None or (len(r.prefix) == len(prefix)
                                    and r.prefix == mask_address(prefix, r.prefix_len)))
            and (prefix_len is None or r.prefix_len == prefix_len)
        ]
        for r in doomed:
            self.remove(r)
        return len(doomed)

    def lookup(self, dst: bytes, ifindex: int | None = None) -> Route | None:
        """Best route to dst (optionally only through one interface)."""
        version = 4 if len(dst) == 4 else 6
        table = self._by_len[version]
        value = int.from_bytes(dst, "big")
        bits = len(dst) * 8
        for plen in self._lengths[version]:
            mask = ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1) if plen else 0
            bucket = table[plen].get((value & mask).to_bytes(len(dst), "big"))
            if bucket:
                if ifindex is None:
                    return bucket[0]
                for route in bucket:
                    if route.ifindex == ifindex:
                        return route
        return None

    def routes(self, version: int | None = None) -> list[Route]:
        out = []
        for v in (4, 6) if version is None else (version,):
            for plen in self._lengths[v]:
                for bucket in self._by_len[v][plen].values():
                    out.extend(bucket)
        return out
