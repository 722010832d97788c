"""IP protocol numbers and address conversions shared by IPv4 and IPv6.

Touches nothing but bytes. Addresses on the hot path are raw ``bytes`` (4 or
16 long, hashable, cheap to compare); the ``ipaddress`` conversions here are
for tests, configuration and debugging output.
"""

from __future__ import annotations

import ipaddress
from typing import TypeAlias

IpAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

# IANA "Assigned Internet Protocol Numbers" (IPv4 protocol / IPv6 next header).
PROTO_HOPOPT = 0
PROTO_ICMP = 1
PROTO_IGMP = 2
PROTO_IPIP = 4
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_IPV6 = 41
PROTO_ROUTING = 43
PROTO_FRAGMENT = 44
PROTO_ESP = 50
PROTO_AH = 51
PROTO_ICMPV6 = 58
PROTO_NONE = 59
PROTO_DSTOPTS = 60


def to_ipaddress(addr: bytes) -> IpAddress:
    """``b"\\x0a\\0\\0\\1"`` -> ``IPv4Address('10.0.0.1')``; 16 bytes give an IPv6Address."""
    if len(addr) == 4:
        return ipaddress.IPv4Address(addr)
    if len(addr) == 16:
        return ipaddress.IPv6Address(addr)
    raise ValueError(f"an IP address is 4 or 16 bytes, not {len(addr)}")


def from_ipaddress(addr: IpAddress | str) -> bytes:
    """``'10.0.0.1'`` or an ``ipaddress`` object -> its 4 or 16 raw bytes."""
    if isinstance(addr, str):
        addr = ipaddress.ip_address(addr)
    return addr.packed


def addr_str(addr: bytes) -> str:
    """Printable form of a raw 4- or 16-byte address."""
    return str(to_ipaddress(addr))
