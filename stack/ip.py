"""What the IP layers of a host share: packet metadata, output routes, constants.

`IpMeta` travels with a received (or forwarded, or sent) packet from the IP
layer to the transports and the netfilter hooks; `OutputRoute` is the answer
of `HostStack.route_output`; `Transport` is what a layer-4 protocol offers the
IP layers. Pure data and tiny predicates: touches nothing.
"""

from __future__ import annotations

# `memoryview` and `Interface` are imported (not only for type checking) for mypyc
# (scripts/compile-stack): a compiled dataclass builds its __annotations__ at import
# from the module's globals, where a builtin or a type-checking-only name is not.
from builtins import memoryview
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .interface import Interface
from .wire import ipv6

# The IANA protocol numbers live in stack/wire/ip.py; re-exported for the IP layers.
from .wire.ip import PROTO_FRAGMENT as PROTO_FRAGMENT
from .wire.ip import PROTO_HOPOPT as PROTO_HOPOPT
from .wire.ip import PROTO_ICMP as PROTO_ICMP
from .wire.ip import PROTO_ICMPV6 as PROTO_ICMPV6
from .wire.ip import PROTO_IGMP as PROTO_IGMP
from .wire.ip import PROTO_NONE as PROTO_NONE
from .wire.ip import PROTO_TCP as PROTO_TCP
from .wire.ip import PROTO_UDP as PROTO_UDP

if TYPE_CHECKING:
    from .neighbor import LinkPath


ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806

LIMITED_BROADCAST = b"\xff\xff\xff\xff"
ALL_HOSTS_V4 = bytes((224, 0, 0, 1))
ALL_NODES_V6 = ipv6.ALL_NODES
ALL_ROUTERS_V6 = ipv6.ALL_ROUTERS
UNSPECIFIED_V6 = bytes(16)
ANY_V4 = bytes(4)
LOOPBACK_V4 = bytes((127, 0, 0, 1))
LOOPBACK_V6 = bytes(15) + b"\x01"
V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96

DEFAULT_TTL = 64


def is_multicast(addr: bytes) -> bool:
    return (addr[0] & 0xF0) == 0xE0 if len(addr) == 4 else addr[0] == 0xFF


def is_v4_mapped(addr: bytes) -> bool:
    return len(addr) == 16 and addr[:12] == V4_MAPPED_PREFIX


def to_v4_mapped(addr4: bytes) -> bytes:
    """An IPv4 address as the IPv4-mapped IPv6 address ::ffff:a.b.c.d."""
    return V4_MAPPED_PREFIX + addr4


def unmap_v4(addr: bytes) -> bytes:
    """IPv4-mapped IPv6 → the IPv4 address; anything else unchanged."""
    return addr[12:] if is_v4_mapped(addr) else addr


class IpMeta:
    """What transports learn about a received packet besides its payload.

    Written out rather than a dataclass: one is built for every packet received, and
    a dataclass's ``__init__`` is generated Python that the compiled build
    (vnet/compile_stack.py) calls as such (about 0.5 us); this one is compiled.
    Equal when every field is, as a dataclass would be."""

    __slots__ = ("csum_trusted", "dst", "ifindex", "is_broadcast", "is_multicast",
                 "out_ifindex", "packet", "router_alert", "src", "tos", "ttl", "version")

    def __init__(self, version: int, src: bytes, dst: bytes, ifindex: int, ttl: int, tos: int,
                 is_broadcast: bool, is_multicast: bool, packet: memoryview,
                 router_alert: bool = False, out_ifindex: int = 0,
                 csum_trusted: bool = False) -> None:
        self.version = version
        self.src = src
        self.dst = dst
        self.ifindex = ifindex
        self.ttl = ttl
        self.tos = tos
        self.is_broadcast = is_broadcast
        self.is_multicast = is_multicast
        self.packet = packet  # the whole IP packet (for ICMP errors about it)
        self.router_alert = router_alert
        self.out_ifindex = out_ifindex  # FORWARD hook: the interface the packet leaves by
        #: It came as a super-frame (`stack.wire.gso.GsoFrame`): trust its transport checksum.
        self.csum_trusted = csum_trusted

    def _fields(self) -> tuple[object, ...]:
        return (self.version, self.src, self.dst, self.ifindex, self.ttl, self.tos,
                self.is_broadcast, self.is_multicast, self.packet, self.router_alert,
                self.out_ifindex, self.csum_trusted)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IpMeta):
            return NotImplemented
        return self._fields() == other._fields()

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, IpMeta):
            return NotImplemented
        return self._fields() != other._fields()

    def __repr__(self) -> str:
        return (f"IpMeta(version={self.version!r}, src={self.src!r}, dst={self.dst!r}, "
                f"ifindex={self.ifindex!r}, ttl={self.ttl!r}, tos={self.tos!r}, "
                f"is_broadcast={self.is_broadcast!r}, is_multicast={self.is_multicast!r}, "
                f"packet={self.packet!r}, router_alert={self.router_alert!r}, "
                f"out_ifindex={self.out_ifindex!r}, csum_trusted={self.csum_trusted!r})")


@dataclass(slots=True)
class OutputRoute:
    """Where a packet to `dst` goes: out `iface`, from `src`, to `next_hop`.

    `link` is the IP layers' cache of the last hop (a `stack.neighbor.LinkPath`: the
    neighbour's MAC and the Ethernet header), filled on a send that resolved it and
    checked before every use; it is no part of the route's value."""

    dst: bytes
    src: bytes
    iface: Interface
    next_hop: bytes
    is_broadcast: bool
    is_multicast: bool
    link: LinkPath | None = field(default=None, compare=False, repr=False)

    @property
    def mtu(self) -> int:
        return self.iface.mtu


class Transport(Protocol):
    """A layer-4 protocol the stack delivers to (UDP, TCP)."""

    def receive(self, meta: IpMeta, payload: memoryview) -> bool:
        """Handle a datagram for this host; False means "no socket" (→ ICMP unreachable)."""
        ...

    def icmp_error(self, version: int, err: int, invoking: memoryview, icmp_type: int,
                   icmp_code: int, info: int) -> None:
        """An ICMP error quoted a packet this protocol sent."""
        ...
