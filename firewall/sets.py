"""Address and port sets as sorted integer intervals: cheap membership on the hot path.

An `AddressSet` holds IPv4 and IPv6 prefixes and ranges as merged, sorted
`(first, last)` integer intervals per family; `contains(addr_bytes)` is one
`int.from_bytes` and one `bisect`. It is built from text (`"10.0.0.0/8"`,
`"fd00::/8"`, `"10.0.0.1-10.0.0.9"`, a bare address), from `ipaddress`
networks, or from a netaddr `IPSet`/`IPNetwork`/`IPRange`, and converts back
to a netaddr `IPSet` for anyone who wants set algebra. A `PortSet` is the
same for 16-bit ports (`22`, `1000-2000`, service names such as `https`).

Parsing errors raise `SetValueError` with a reason a rule-file error can
quote; a prefix with host bits set is accepted (masked, as nft does) and
reported through `notes` so the parser can warn. Touches nothing.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["SERVICES", "AddressSet", "PortSet", "SetValueError"]

#: Service names accepted wherever a port is (a small, fixed subset of /etc/services).
SERVICES = {
    "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "dns": 53, "bootps": 67,
    "bootpc": 68, "tftp": 69, "http": 80, "pop3": 110, "ntp": 123, "imap": 143, "snmp": 161,
    "ldap": 389, "https": 443, "submission": 587, "imaps": 993, "pop3s": 995,
    "openvpn": 1194, "mqtt": 1883, "wireguard": 51820, "mdns": 5353, "http-alt": 8080,
}


class SetValueError(ValueError):
    """A value that cannot be an address or port (the message says why)."""


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    intervals.sort()
    merged: list[tuple[int, int]] = []
    for first, last in intervals:
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


class _Intervals:
    """Sorted disjoint intervals with a bisect lookup."""

    __slots__ = ("firsts", "intervals", "lasts")

    def __init__(self, intervals: list[tuple[int, int]]) -> None:
        self.intervals = _merge(intervals)
        self.firsts = [a for a, _ in self.intervals]
        self.lasts = [b for _, b in self.intervals]

    def __contains__(self, value: int) -> bool:
        i = bisect.bisect_right(self.firsts, value) - 1
        return i >= 0 and value <= self.lasts[i]

    def __bool__(self) -> bool:
        return bool(self.intervals)

    def intersects(self, other: _Intervals) -> bool:
        i = j = 0
        a, b = self.intervals, other.intervals
        while i < len(a) and j < len(b):
            if a[i][1] < b[j][0]:
                i += 1
            elif b[j][1] < a[i][0]:
                j += 1
            else:
                return True
        return False

    def covers(self, other: _Intervals) -> bool:
        """Every value of `other` is in self."""
        for first, last in other.intervals:
            i = bisect.bisect_right(self.firsts, first) - 1
            if i < 0 or self.lasts[i] < last:
                return False
        return True


def _parse_address(text: str) -> tuple[int, int, int, str | None]:
    """One address item -> (version, first, last, note)."""
    note = None
    text = text.strip()
    if "-" in text and "/" not in text:
        low_text, _, high_text = text.partition("-")
        try:
            low = ipaddress.ip_address(low_text.strip())
            high = ipaddress.ip_address(high_text.strip())
        except ValueError:
            raise SetValueError(f"{text!r} is not an address range") from None
        if low.version != high.version:
            raise SetValueError(f"range {text!r} mixes IPv4 and IPv6")
        if int(high) < int(low):
            raise SetValueError(f"range {text!r} is backwards (the first address is larger)")
        return low.version, int(low), int(high), None
    if "/" in text:
        addr_text, _, plen_text = text.partition("/")
        try:
            addr = ipaddress.ip_address(addr_text)
        except ValueError:
            raise SetValueError(f"{addr_text!r} is not an IPv4 or IPv6 address") from None
        bits = 32 if addr.version == 4 else 128
        if not plen_text.isdigit():
            raise SetValueError(f"prefix length {plen_text!r} is not a number")
        plen = int(plen_text)
        if plen > bits:
            raise SetValueError(f"prefix length /{plen} is impossible for IPv{addr.version} "
                                f"(at most /{bits})")
        net = ipaddress.ip_network(f"{addr}/{plen}", strict=False)
        if int(net.network_address) != int(addr):
            note = f"{text} has host bits set; it means {net}"
        return addr.version, int(net.network_address), int(net.broadcast_address), note
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise SetValueError(f"{text!r} is not an IPv4 or IPv6 address") from None
    return addr.version, int(addr), int(addr), None


class AddressSet:
    """IPv4 and IPv6 prefixes/ranges; `addr_bytes in s` tests membership."""

    __slots__ = ("items", "notes", "v4", "v6")

    def __init__(self, items: Iterable[Any] = ()) -> None:
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        self.items: list[str] = []
        self.notes: list[str] = []
        for item in items:
            for version, first, last, text in self._expand(item):
                (v4 if version == 4 else v6).append((first, last))
                self.items.append(text)
        self.v4 = _Intervals(v4)
        self.v6 = _Intervals(v6)

    def _expand(self, item: Any) -> Iterator[tuple[int, int, int, str]]:
        if isinstance(item, bytes) and len(item) in (4, 16):
            value = int.from_bytes(item, "big")
            yield (4 if len(item) == 4 else 6), value, value, str(ipaddress.ip_address(item))
            return
        if isinstance(item, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            yield (item.version, int(item.network_address), int(item.broadcast_address),
                   str(item))
            return
        if isinstance(item, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            yield item.version, int(item), int(item), str(item)
            return
        # netaddr objects, without importing netaddr unless they are used
        cidrs = getattr(item, "iter_cidrs", None) or getattr(item, "cidrs", None)
        if cidrs is not None and not isinstance(item, str):
            for cidr in cidrs():
                yield from self._expand(str(cidr))
            return
        if hasattr(item, "first") and hasattr(item, "last") and hasattr(item, "version"):
            yield item.version, int(item.first), int(item.last), str(item)
            return
        if not isinstance(item, str):
            raise SetValueError(f"{item!r} is not an address, prefix or range")
        version, first, last, note = _parse_address(item)
        if note:
            self.notes.append(note)
        yield version, first, last, item.strip()

    def __contains__(self, addr: bytes) -> bool:
        if len(addr) == 4:
            return int.from_bytes(addr, "big") in self.v4
        return int.from_bytes(addr, "big") in self.v6

    def __bool__(self) -> bool:
        return bool(self.v4) or bool(self.v6)

    @property
    def versions(self) -> frozenset[int]:
        return frozenset(v for v, s in ((4, self.v4), (6, self.v6)) if s)

    def intersects(self, other: AddressSet) -> bool:
        return self.v4.intersects(other.v4) or self.v6.intersects(other.v6)

    def covers(self, other: AddressSet) -> bool:
        return self.v4.covers(other.v4) and self.v6.covers(other.v6)

    def to_ipset(self) -> Any:
        """The same set as a netaddr IPSet."""
        import netaddr

        ipset = netaddr.IPSet()
        for version, ranges in ((4, self.v4), (6, self.v6)):
            for first, last in ranges.intervals:
                ipset.add(netaddr.IPRange(netaddr.IPAddress(first, version),
                                          netaddr.IPAddress(last, version)))
        return ipset

    def __repr__(self) -> str:
        return f"AddressSet({self.items!r})"


def parse_port(text: str) -> tuple[int, int]:
    """'22', '1000-2000', 'https' -> (first, last)."""
    text = text.strip()
    low_text, sep, high_text = text.partition("-")
    if not sep:
        value = _port_value(text)
        return value, value
    low = _port_value(low_text)
    high = _port_value(high_text)
    if high < low:
        raise SetValueError(f"port range {text!r} is out of order ({low} > {high})")
    return low, high


def _port_value(text: str) -> int:
    text = text.strip().lower()
    if text in SERVICES:
        return SERVICES[text]
    if not text.isdigit():
        raise SetValueError(f"{text!r} is not a port number or a known service name")
    value = int(text)
    if value > 65535:
        raise SetValueError(f"port {value} is out of range (0-65535)")
    return value


class PortSet:
    """Ports and port ranges; `port in s` tests membership."""

    __slots__ = ("items", "ranges")

    def __init__(self, items: Iterable[Any] = ()) -> None:
        intervals: list[tuple[int, int]] = []
        self.items: list[str] = []
        for item in items:
            if isinstance(item, bool):
                raise SetValueError(f"{item!r} is not a port")
            if isinstance(item, int):
                if not 0 <= item <= 65535:
                    raise SetValueError(f"port {item} is out of range (0-65535)")
                intervals.append((item, item))
                self.items.append(str(item))
            elif isinstance(item, tuple) and len(item) == 2:
                low, high = int(item[0]), int(item[1])
                if not 0 <= low <= 65535 or not 0 <= high <= 65535:
                    raise SetValueError(f"port range {item!r} is out of range (0-65535)")
                if high < low:
                    raise SetValueError(f"port range {low}-{high} is out of order")
                intervals.append((low, high))
                self.items.append(f"{low}-{high}")
            elif isinstance(item, str):
                intervals.append(parse_port(item))
                self.items.append(item.strip())
            else:
                raise SetValueError(f"{item!r} is not a port or port range")
        self.ranges = _Intervals(intervals)

    def __contains__(self, port: int) -> bool:
        return port in self.ranges

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def intersects(self, other: PortSet) -> bool:
        return self.ranges.intersects(other.ranges)

    def covers(self, other: PortSet) -> bool:
        return self.ranges.covers(other.ranges)

    def __repr__(self) -> str:
        return f"PortSet({self.items!r})"
