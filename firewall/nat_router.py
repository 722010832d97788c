"""A router's NAT on one outside interface, with RFC 4787 behaviour chosen per router.

`NatRouter(behaviour, ...).attach(stack, "wan0")` registers two functions on a
`stack.host.HostStack`'s hooks (`stack.hooks`):

- POSTROUTING, for packets leaving the outside interface: an IPv4 TCP or UDP
  packet or ICMP echo request from a source that is not the router's own gets
  a mapping (found or created) and its source rewritten to the mapping's
  external address and port (echo: identifier); an ICMP error about a packet
  that came in through a mapping has its embedded packet translated back too
  (RFC 5508 REQ-3/4) and, when it was not sent by the router itself, its
  outer source.
- PREROUTING, for packets arriving: on the outside interface, a packet to a
  pool address and a mapped port passes the mapping's filtering and has its
  destination rewritten to the inside endpoint (one without a mapping is the
  router's own, except a TCP SYN to a port the router does not listen on,
  which is dropped unanswered, RFC 5382 REQ-4/4a, where Linux would reset:
  a TCP simultaneous open through the NAT must not be reset); an ICMP error whose embedded
  packet left through a mapping goes to the inside host with the embedded
  packet translated (RFC 5508). On any other interface, a packet to a pool
  address is hairpinned (RFC 4787 REQ-9) when `hairpin` is on: source and
  destination both become external endpoints as seen from outside, and the
  routing decision sends it back inside. An ICMP error the router itself
  sends about a packet it translated on its way out (fragmentation needed
  on the outside link: the error is built after POSTROUTING, so it is
  addressed to the external address and loops back) is translated like one
  from outside and reaches the inside host, so path MTU discovery works
  through the NAT.

Behaviour (`NatBehaviour`, `PRESETS`):

- mapping: `endpoint-independent` (one external endpoint per inside endpoint),
  `address-dependent` (one per inside endpoint and remote address),
  `address-and-port-dependent` (one per remote address and port);
- filtering: the same three words: who may send in through a mapping (anyone;
  an address the inside endpoint sent to; an address and port it sent to);
- ports: `preserve` (the inside port when free on the external address, else
  a pseudo-random one) or `random`; both keep the range (0-1023 or
  1024-65535) and, with `port_parity`, the parity of the inside port;
- timeouts: a mapping lives while the time since its last *outbound* packet is
  below its timeout (inbound packets never refresh it, RFC 4787 REQ-6): UDP
  300 s (REQ-5 asks for at least 120 s), TCP 7440 s once the three-way
  handshake was seen both ways and no FIN or RST since, otherwise 240 s
  (RFC 5382 REQ-5), ICMP echo 60 s (RFC 5508 REQ-1);
- pool: several external addresses; `pairing` (REQ-2) gives every mapping of
  one inside address the same external address, otherwise each new mapping
  takes the next address in turn.

Fragments: the first fragment of a datagram carries its ports and is
translated like a whole packet (its transport checksum covers the whole
datagram, so the incremental update stays right); the translated address is
remembered by (source, destination, protocol, IP identification) for
`FRAGMENT_MEMORY` datagrams and `FRAGMENT_TIMEOUT_NS`, and the later fragments
get the same address. A later fragment that arrives before its first one
cannot be matched and is dropped (`nat.fragment_unmatched`); Linux
reassembles before NAT and would not drop it. Packets that are not IPv4 and
protocols other than TCP, UDP and ICMP pass untranslated, counted
(`counters["nat.untranslated"]`); the router's own traffic is never
translated. With `nptv6=(inside, outside)`, IPv6 packets leaving the
interface from the inside prefix get the outside prefix, and the reverse on
arrival, checksum-neutrally (RFC 6296); without it IPv6 is routed untouched
(no NAT66).

Bounds: the table holds at most `max_mappings` mappings and one inside
address at most `max_mappings_per_host` (so one host cannot take every port
from the others); a new flow beyond either is dropped and counted
(`nat.table_full`, `nat.host_limit`). Ports come from a `random.Random`
seeded by the caller, so a run is deterministic in virtual time. Checksums
are updated incrementally (RFC 1624), so a truncated packet embedded in an
ICMP error keeps a checksum consistent with its original.

Touches the stack it is attached to (its hooks, interfaces and clock), nothing else.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from stack.hooks import ACCEPT, DROP, Hook, PacketBuffer, Verdict
from stack.wire.checksum import internet_checksum, ones_sum, update

if TYPE_CHECKING:
    from stack.host import HostStack, IpMeta

__all__ = [
    "ADDRESS_AND_PORT_DEPENDENT",
    "ADDRESS_DEPENDENT",
    "ENDPOINT_INDEPENDENT",
    "PRESETS",
    "Mapping",
    "NatBehaviour",
    "NatRouter",
    "PacketView",
    "nat_behaviour",
    "npt_translate",
]

ENDPOINT_INDEPENDENT = "endpoint-independent"
ADDRESS_DEPENDENT = "address-dependent"
ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
KINDS = (ENDPOINT_INDEPENDENT, ADDRESS_DEPENDENT, ADDRESS_AND_PORT_DEPENDENT)
PRESERVE, RANDOM = "preserve", "random"

TCP, UDP, ICMP = 6, 17, 1
ECHO_REPLY, ECHO_REQUEST = 0, 8
ICMP_ERRORS = frozenset((3, 4, 5, 11, 12))
NS = 1_000_000_000
SWEEP_PER_PACKET = 8
FRAGMENT_MEMORY = 1024
FRAGMENT_TIMEOUT_NS = 30 * NS

_TCP_FIN, _TCP_SYN, _TCP_RST, _TCP_ACK = 0x01, 0x02, 0x04, 0x10


@dataclass(frozen=True)
class NatBehaviour:
    """How one NAT maps, filters, allocates ports and times mappings out (RFC 4787)."""

    mapping: str = ENDPOINT_INDEPENDENT
    filtering: str = ADDRESS_AND_PORT_DEPENDENT
    hairpin: bool = True
    ports: str = PRESERVE
    port_parity: bool = False
    pairing: bool = True
    udp_timeout_s: float = 300.0
    tcp_established_timeout_s: float = 7440.0
    tcp_transitory_timeout_s: float = 240.0
    icmp_timeout_s: float = 60.0
    max_mappings: int = 65536
    max_mappings_per_host: int = 4096

    def __post_init__(self) -> None:
        if self.mapping not in KINDS:
            raise ValueError(f"NAT mapping {self.mapping!r}: one of {', '.join(KINDS)}")
        if self.filtering not in KINDS:
            raise ValueError(f"NAT filtering {self.filtering!r}: one of {', '.join(KINDS)}")
        if self.ports not in (PRESERVE, RANDOM):
            raise ValueError(f"NAT ports {self.ports!r}: 'preserve' or 'random'")
        if self.udp_timeout_s < 120:
            raise ValueError("NAT udp_timeout_s: at least 120 s (RFC 4787 REQ-5)")
        if self.tcp_established_timeout_s < 7440:
            raise ValueError("NAT tcp_established_timeout_s: at least 7440 s (RFC 5382 REQ-5)")
        if self.tcp_transitory_timeout_s < 240:
            raise ValueError("NAT tcp_transitory_timeout_s: at least 240 s (RFC 5382 REQ-5)")
        if self.icmp_timeout_s < 60:
            raise ValueError("NAT icmp_timeout_s: at least 60 s (RFC 5508 REQ-1)")
        if self.max_mappings < 1 or self.max_mappings_per_host < 1:
            raise ValueError("NAT max_mappings and max_mappings_per_host: at least 1")


#: The names people use, as RFC 4787 section 3 relates them to its terms.
PRESETS: dict[str, NatBehaviour] = {
    "full-cone": NatBehaviour(ENDPOINT_INDEPENDENT, ENDPOINT_INDEPENDENT),
    "restricted-cone": NatBehaviour(ENDPOINT_INDEPENDENT, ADDRESS_DEPENDENT),
    "port-restricted-cone": NatBehaviour(ENDPOINT_INDEPENDENT, ADDRESS_AND_PORT_DEPENDENT),
    "symmetric": NatBehaviour(ADDRESS_AND_PORT_DEPENDENT, ADDRESS_AND_PORT_DEPENDENT,
                              ports=RANDOM),
}


def nat_behaviour(preset: str | NatBehaviour = "port-restricted-cone",
                  **overrides: object) -> NatBehaviour:
    """A preset by name (or a behaviour) with some fields changed."""
    if isinstance(preset, NatBehaviour):
        base = preset
    else:
        try:
            base = PRESETS[preset]
        except KeyError:
            raise ValueError(f"NAT behaviour {preset!r}: one of {', '.join(PRESETS)}") from None
    return replace(base, **overrides) if overrides else base  # type: ignore[arg-type]


@dataclass(slots=True, eq=False)
class Mapping:
    """One inside endpoint's external endpoint (for one remote, unless endpoint-independent)."""

    proto: int
    inside: bytes
    inside_port: int
    outside: bytes
    outside_port: int
    remote: tuple[bytes, int] | tuple[bytes] | tuple[()]  # the part of the remote in the key
    created_ns: int
    last_out_ns: int
    #: remotes the inside endpoint sent to, as filtering compares them
    permitted: set[tuple[bytes, int] | tuple[bytes] | tuple[()]] = field(default_factory=set)
    syn_out: bool = False
    syn_in: bool = False
    closing: bool = False
    packets_out: int = 0
    packets_in: int = 0

    @property
    def established(self) -> bool:
        return self.syn_out and self.syn_in and not self.closing


def _remote_part(kind: str, addr: bytes, port: int) -> tuple[bytes, int] | tuple[bytes] | tuple[
        ()]:
    if kind == ENDPOINT_INDEPENDENT:
        return ()
    if kind == ADDRESS_DEPENDENT:
        return (addr,)
    return (addr, port)


def _rewrite(buf: bytearray, offset: int, new: bytes, checksums: tuple[int, ...],
             udp_checksum: int = -1) -> None:
    """Put `new` at `offset` and update the checksum fields at `checksums` (RFC 1624);
    `udp_checksum`, if given, is a UDP checksum: zero stays zero, a result of 0 is 0xFFFF."""
    old = bytes(buf[offset:offset + len(new)])
    if old == new:
        return
    buf[offset:offset + len(new)] = new
    for at in checksums:
        if at + 2 > len(buf):
            continue
        value = int.from_bytes(buf[at:at + 2], "big")
        if at == udp_checksum and value == 0:
            continue
        value = update(value, old, new)
        if at == udp_checksum and value == 0:
            value = 0xFFFF
        buf[at:at + 2] = value.to_bytes(2, "big")


class PacketView:
    """Offsets of one IPv4 packet's addresses, ports and checksums in `buf` at `start`."""

    __slots__ = ("buf", "end", "first_fragment", "fragment", "l4", "proto", "start")

    def __init__(self, buf: bytearray, start: int, end: int) -> None:
        self.buf = buf
        self.start = start
        self.end = end
        self.proto = buf[start + 9]
        self.l4 = start + (buf[start] & 0x0F) * 4
        flags = int.from_bytes(buf[start + 6:start + 8], "big")
        self.fragment = bool(flags & 0x3FFF)
        self.first_fragment = not flags & 0x1FFF

    @classmethod
    def parse(cls, buf: bytearray, start: int = 0, end: int | None = None) -> PacketView | None:
        end = len(buf) if end is None else end
        if end - start < 20 or buf[start] >> 4 != 4 or (buf[start] & 0x0F) < 5:
            return None
        view = cls(buf, start, end)
        if view.l4 > end:
            return None
        return view

    @property
    def src(self) -> bytes:
        return bytes(self.buf[self.start + 12:self.start + 16])

    @property
    def dst(self) -> bytes:
        return bytes(self.buf[self.start + 16:self.start + 20])

    def has(self, n: int) -> bool:
        return self.l4 + n <= self.end

    def sport(self) -> int:
        """Source port; an ICMP echo's identifier."""
        at = self.l4 + 4 if self.proto == ICMP else self.l4
        return int.from_bytes(self.buf[at:at + 2], "big")

    def dport(self) -> int:
        """Destination port; an ICMP echo's identifier."""
        at = self.l4 + 4 if self.proto == ICMP else self.l4 + 2
        return int.from_bytes(self.buf[at:at + 2], "big")

    def _checksums(self, address: bool, outer_icmp: int) -> tuple[tuple[int, ...], int]:
        """The checksum fields an address (or a port) change touches, and the UDP one."""
        ip = (self.start + 10,) if address else ()
        extra = (outer_icmp,) if outer_icmp >= 0 else ()
        if self.proto == TCP:
            l4: tuple[int, ...] = (self.l4 + 16,)
        elif self.proto == UDP:
            l4 = (self.l4 + 6,)
        elif self.proto == ICMP and not address:
            l4 = (self.l4 + 2,)
        else:
            l4 = ()
        if self.fragment and not self.first_fragment:
            l4 = ()
        udp = self.l4 + 6 if self.proto == UDP else -1
        return ip + l4 + extra, udp

    def set_src(self, addr: bytes, outer_icmp: int = -1) -> None:
        sums, udp = self._checksums(True, outer_icmp)
        _rewrite(self.buf, self.start + 12, addr, sums, udp)

    def set_dst(self, addr: bytes, outer_icmp: int = -1) -> None:
        sums, udp = self._checksums(True, outer_icmp)
        _rewrite(self.buf, self.start + 16, addr, sums, udp)

    def set_sport(self, port: int, outer_icmp: int = -1) -> None:
        sums, udp = self._checksums(False, outer_icmp)
        at = self.l4 + 4 if self.proto == ICMP else self.l4
        _rewrite(self.buf, at, port.to_bytes(2, "big"), sums, udp)

    def set_dport(self, port: int, outer_icmp: int = -1) -> None:
        sums, udp = self._checksums(False, outer_icmp)
        at = self.l4 + 4 if self.proto == ICMP else self.l4 + 2
        _rewrite(self.buf, at, port.to_bytes(2, "big"), sums, udp)


def npt_translate(address: bytes, from_prefix: ipaddress.IPv6Network,
                  to_prefix: ipaddress.IPv6Network) -> bytes | None:
    """RFC 6296 checksum-neutral prefix translation of one address (None: not in
    `from_prefix`, or the adjustment would land on 0xFFFF, which section 3.5 drops)."""
    ip = ipaddress.IPv6Address(address)
    if ip not in from_prefix:
        return None
    plen = from_prefix.prefixlen
    host_mask = (1 << (128 - plen)) - 1
    value = (int(ip) & host_mask) | int(to_prefix.network_address)
    out = bytearray(value.to_bytes(16, "big"))
    # adjustment: the ones'-complement difference of the two prefixes (section 3.2)
    adjustment = ones_sum(from_prefix.network_address.packed) + (
        0xFFFF - ones_sum(to_prefix.network_address.packed))
    adjustment = adjustment % 0xFFFF or 0xFFFF
    if plen <= 48:
        word = 3
    else:
        word = next((w for w in range(4, 8) if out[2 * w:2 * w + 2] != b"\xff\xff"), -1)
        if word < 0:
            return None
    current = int.from_bytes(out[2 * word:2 * word + 2], "big")
    adjusted = current + adjustment
    adjusted = (adjusted & 0xFFFF) + (adjusted >> 16)
    adjusted = (adjusted & 0xFFFF) + (adjusted >> 16)
    if adjusted == 0xFFFF:
        adjusted = 0
    out[2 * word:2 * word + 2] = adjusted.to_bytes(2, "big")
    return bytes(out)


class NatRouter:
    """Source NAT with RFC 4787 behaviour for the traffic leaving one interface."""

    def __init__(self, behaviour: NatBehaviour, pool: list[bytes], *,
                 rng: random.Random | None = None,
                 nptv6: tuple[str, str] | None = None) -> None:
        if not pool or any(len(a) != 4 for a in pool):
            raise ValueError("NAT pool: one or more IPv4 addresses")
        self.behaviour = behaviour
        self.pool = list(pool)
        self._pool_set = frozenset(pool)
        self.rng = rng or random.Random(0)
        self.nptv6: tuple[ipaddress.IPv6Network, ipaddress.IPv6Network] | None = None
        if nptv6 is not None:
            inside, outside = (ipaddress.IPv6Network(p) for p in nptv6)
            if inside.prefixlen != outside.prefixlen or inside.prefixlen > 64:
                raise ValueError("NPTv6: two prefixes of the same length, at most /64")
            self.nptv6 = (inside, outside)
        self.counters: Counter[str] = Counter()
        self.stack: HostStack | None = None
        self.ifindex = -1
        self._now: Callable[[], int] = lambda: 0
        self._is_local: Callable[[bytes], bool] = lambda addr: False
        # key (proto, inside, inside port, *remote part) -> mapping, oldest outbound first
        self._by_inside: OrderedDict[tuple[object, ...], Mapping] = OrderedDict()
        self._by_outside: dict[tuple[int, bytes, int], Mapping] = {}
        self._paired: dict[bytes, list[object]] = {}  # inside address -> [outside, mappings]
        self._next_pool = 0
        self._per_host: Counter[bytes] = Counter()
        # (src, dst, proto, ident) of a datagram whose first fragment was translated ->
        # (new address, time): the later fragments' new source (out) or destination (in)
        self._fragments: OrderedDict[tuple[bytes, bytes, int, bytes], tuple[bytes, int]] = (
            OrderedDict())

    # --- attaching -------------------------------------------------------------------------
    def attach(self, stack: HostStack, ifname: str) -> None:
        """NAT what leaves `ifname` of `stack` (which must be free at PREROUTING/POSTROUTING)."""
        for hook in (Hook.PREROUTING, Hook.POSTROUTING):
            if stack.hooks.get(hook) is not None:
                raise ValueError(f"{stack.name}: the {hook} hook is already in use")
        self.stack = stack
        self.ifindex = stack.interface(ifname).index
        self._now = stack.driver.now_ns
        self._is_local = stack.is_local_address
        stack.hooks.register(Hook.PREROUTING, self.prerouting)
        stack.hooks.register(Hook.POSTROUTING, self.postrouting)

    def detach(self) -> None:
        if self.stack is not None:
            self.stack.hooks.unregister(Hook.PREROUTING, self.prerouting)
            self.stack.hooks.unregister(Hook.POSTROUTING, self.postrouting)
            self.stack = None

    # --- the table -------------------------------------------------------------------------
    def mappings(self) -> list[Mapping]:
        """The live mappings, oldest outbound packet first."""
        now = self._now()
        return [m for m in self._by_inside.values() if not self._expired(m, now)]

    def _timeout_ns(self, m: Mapping) -> int:
        b = self.behaviour
        if m.proto == UDP:
            return int(b.udp_timeout_s * NS)
        if m.proto == TCP:
            return int((b.tcp_established_timeout_s if m.established
                        else b.tcp_transitory_timeout_s) * NS)
        return int(b.icmp_timeout_s * NS)

    def _expired(self, m: Mapping, now: int) -> bool:
        return now - m.last_out_ns >= self._timeout_ns(m)

    def _remove(self, key: tuple[object, ...], m: Mapping) -> None:
        self._by_inside.pop(key, None)
        if self._by_outside.get((m.proto, m.outside, m.outside_port)) is m:
            del self._by_outside[(m.proto, m.outside, m.outside_port)]
        paired = self._paired.get(m.inside)
        if paired is not None:
            paired[1] = int(paired[1]) - 1  # type: ignore[call-overload]
            if paired[1] == 0:
                del self._paired[m.inside]
        self._per_host[m.inside] -= 1
        if self._per_host[m.inside] <= 0:
            del self._per_host[m.inside]
        self.counters["nat.expired"] += 1

    def _sweep(self, now: int) -> None:
        """Drop expired mappings from the oldest end (a few per packet)."""
        for _ in range(SWEEP_PER_PACKET):
            if not self._by_inside:
                return
            key, m = next(iter(self._by_inside.items()))
            if not self._expired(m, now):
                if m.proto == UDP or m.proto == ICMP:
                    return
                self._by_inside.move_to_end(key)  # a TCP mapping may outlive newer ones
                continue
            self._remove(key, m)

    def _live_outside(self, proto: int, addr: bytes, port: int, now: int) -> Mapping | None:
        m = self._by_outside.get((proto, addr, port))
        if m is None:
            return None
        if self._expired(m, now):
            self._remove((m.proto, m.inside, m.inside_port, *m.remote), m)
            return None
        return m

    def _pool_address(self, inside: bytes) -> bytes:
        if self.behaviour.pairing:
            paired = self._paired.get(inside)
            if paired is not None:
                paired[1] = int(paired[1]) + 1  # type: ignore[call-overload]
                return paired[0]  # type: ignore[return-value]
        outside = self.pool[self._next_pool % len(self.pool)]
        self._next_pool += 1
        if self.behaviour.pairing:
            self._paired[inside] = [outside, 1]
        return outside

    def _free(self, proto: int, addr: bytes, port: int, now: int) -> bool:
        return self._live_outside(proto, addr, port, now) is None

    def _allocate_port(self, proto: int, outside: bytes, inside_port: int, now: int) -> int:
        b = self.behaviour
        if proto == ICMP:
            low, high = 0, 65535
        elif inside_port < 1024:
            low, high = 1, 1023
        else:
            low, high = 1024, 65535
        parity = inside_port & 1 if b.port_parity else -1
        if b.ports == PRESERVE and self._free(proto, outside, inside_port, now):
            return inside_port
        span = high - low + 1
        for _ in range(64):
            port = low + self.rng.randrange(span)
            if parity >= 0 and port & 1 != parity:
                port = port + 1 if port < high else port - 1
            if self._free(proto, outside, port, now):
                return port
        start = self.rng.randrange(span)
        for i in range(span):
            port = low + (start + i) % span
            if (parity < 0 or port & 1 == parity) and self._free(proto, outside, port, now):
                return port
        return -1

    def _outbound_mapping(self, proto: int, inside: bytes, port: int, remote: bytes,
                          rport: int, now: int) -> Mapping | None:
        """The mapping for a packet going out (created if needed), refreshed."""
        b = self.behaviour
        key = (proto, inside, port, *_remote_part(b.mapping, remote, rport))
        m = self._by_inside.get(key)
        if m is not None and self._expired(m, now):
            self._remove(key, m)
            m = None
        if m is None:
            self._sweep(now)
            if len(self._by_inside) >= b.max_mappings:
                self.counters["nat.table_full"] += 1
                return None
            if self._per_host[inside] >= b.max_mappings_per_host:
                self.counters["nat.host_limit"] += 1
                return None
            outside = self._pool_address(inside)
            outside_port = self._allocate_port(proto, outside, port, now)
            if outside_port < 0:
                self.counters["nat.ports_exhausted"] += 1
                paired = self._paired.get(inside)
                if paired is not None:
                    paired[1] = int(paired[1]) - 1  # type: ignore[call-overload]
                    if paired[1] == 0:
                        del self._paired[inside]
                return None
            m = Mapping(proto, inside, port, outside, outside_port,
                        _remote_part(b.mapping, remote, rport), now, now)
            self._by_inside[key] = m
            self._by_outside[(proto, outside, outside_port)] = m
            self._per_host[inside] += 1
            self.counters["nat.mappings_created"] += 1
        else:
            self._by_inside.move_to_end(key)
        m.last_out_ns = now
        m.permitted.add(_remote_part(b.filtering, remote, rport))
        return m

    def _permits(self, m: Mapping, remote: bytes, rport: int) -> bool:
        return _remote_part(self.behaviour.filtering, remote, rport) in m.permitted

    def _router_listens(self, port: int) -> bool:
        """Has the router a TCP listener on `port` (its own service on a pool address)?"""
        tcp = self.stack.transports.get(TCP) if self.stack is not None else None
        return bool(getattr(tcp, "listeners", {}).get(port))

    @staticmethod
    def _tcp_flags(view: PacketView) -> int:
        return view.buf[view.l4 + 13] if view.proto == TCP and view.has(14) else 0

    @staticmethod
    def _fragment_key(view: PacketView) -> tuple[bytes, bytes, int, bytes]:
        return (view.src, view.dst, view.proto, bytes(view.buf[4:6]))

    def _remember_fragments(self, view: PacketView, new: bytes, now: int) -> None:
        """After translating a first fragment (keyed as it was before)."""
        key = self._fragment_key(view)
        self._fragments[key] = (new, now)
        self._fragments.move_to_end(key)
        while len(self._fragments) > FRAGMENT_MEMORY:
            self._fragments.popitem(last=False)

    def _later_fragment(self, view: PacketView, outbound: bool) -> Verdict:
        found = self._fragments.get(self._fragment_key(view))
        if found is None or self._now() - found[1] >= FRAGMENT_TIMEOUT_NS:
            self.counters["nat.fragment_unmatched"] += 1
            return DROP
        if outbound:
            view.set_src(found[0])
        else:
            view.set_dst(found[0])
        self.counters["nat.fragment"] += 1
        return Verdict(True, view.buf)

    # --- hooks -----------------------------------------------------------------------------
    def postrouting(self, hook: Hook, meta: IpMeta, packet: PacketBuffer) -> Verdict:
        if meta.out_ifindex != self.ifindex:
            return ACCEPT
        if meta.version == 6:
            return self._npt(packet, outbound=True)
        buf = bytearray(packet)
        view = PacketView.parse(buf)
        if view is None:
            return ACCEPT
        src = view.src
        if self._is_local(src) or src in self._pool_set:
            if view.proto == ICMP and view.has(8) and buf[view.l4] in ICMP_ERRORS:
                return self._error_out(view, translate_source=False)
            return ACCEPT
        if view.proto not in (TCP, UDP, ICMP):
            self.counters["nat.untranslated"] += 1
            return ACCEPT
        if view.fragment and not view.first_fragment:
            return self._later_fragment(view, outbound=True)
        if not view.has(8):
            self.counters["nat.untranslated"] += 1
            return ACCEPT
        if view.proto == ICMP:
            kind = buf[view.l4]
            if kind in ICMP_ERRORS:
                return self._error_out(view, translate_source=True)
            if kind != ECHO_REQUEST:
                self.counters["nat.untranslated"] += 1
                return ACCEPT
        now = self._now()
        sport, dst, dport = view.sport(), view.dst, view.dport()
        m = self._outbound_mapping(view.proto, src, sport, dst,
                                   0 if view.proto == ICMP else dport, now)
        if m is None:
            return DROP
        flags = self._tcp_flags(view)
        if flags & _TCP_SYN and not flags & _TCP_ACK:
            m.syn_out, m.syn_in, m.closing = True, False, False
        elif flags & (_TCP_FIN | _TCP_RST):
            m.closing = True
        elif flags & _TCP_SYN:
            m.syn_out = True  # an inside server's SYN-ACK
        m.packets_out += 1
        if view.fragment:
            self._remember_fragments(view, m.outside, now)
        view.set_src(m.outside)
        view.set_sport(m.outside_port)
        self.counters["nat.out"] += 1
        return Verdict(True, buf)

    def prerouting(self, hook: Hook, meta: IpMeta, packet: PacketBuffer) -> Verdict:
        if meta.version == 6:
            return self._npt(packet, outbound=False) if meta.ifindex == self.ifindex else ACCEPT
        dst = bytes(meta.dst)
        if dst not in self._pool_set:
            return ACCEPT
        buf = bytearray(packet)
        view = PacketView.parse(buf)
        if view is None or view.proto not in (TCP, UDP, ICMP):
            return ACCEPT
        if view.fragment and not view.first_fragment:
            if meta.ifindex != self.ifindex:
                return ACCEPT  # hairpinned datagrams are not tracked by fragment
            return self._later_fragment(view, outbound=False)
        if not view.has(8):
            return ACCEPT
        if meta.ifindex != self.ifindex:
            if view.fragment:
                return ACCEPT
            if view.proto == ICMP and buf[view.l4] in ICMP_ERRORS and self._is_local(view.src):
                # the router's own error about a packet it translated on the way out (say,
                # fragmentation needed on the outside link), looped back to the external
                # address: to the inside host, embedded packet translated back
                return self._error_in(view, self._now())
            return self._hairpin(view)
        now = self._now()
        if view.proto == ICMP:
            kind = buf[view.l4]
            if kind in ICMP_ERRORS:
                return self._error_in(view, now)
            if kind != ECHO_REPLY:
                return ACCEPT
        m = self._live_outside(view.proto, dst, view.dport(), now)
        if m is None:
            if view.proto == TCP and self._tcp_flags(view) & (_TCP_SYN | _TCP_ACK) == _TCP_SYN \
                    and not self._router_listens(view.dport()):
                # RFC 5382 REQ-4/4a: no reset for an unsolicited SYN (a simultaneous open
                # may be on its way out); the router's own listeners still get theirs
                self.counters["nat.unsolicited_syn"] += 1
                return DROP
            return ACCEPT  # not a mapping: for the router itself
        src = view.src
        if not self._permits(m, src, 0 if view.proto == ICMP else view.sport()):
            self.counters["nat.filtered"] += 1
            return DROP
        flags = self._tcp_flags(view)
        if flags & _TCP_SYN and flags & _TCP_ACK:
            m.syn_in = True
        elif flags & _TCP_SYN:
            m.syn_in = True  # a SYN to an inside server, the SYN-ACK goes out next
        elif flags & (_TCP_FIN | _TCP_RST):
            m.closing = True
        m.packets_in += 1
        if view.fragment:
            self._remember_fragments(view, m.inside, now)
        view.set_dst(m.inside)
        view.set_dport(m.inside_port)
        self.counters["nat.in"] += 1
        return Verdict(True, buf)

    def _hairpin(self, view: PacketView) -> Verdict:
        """A packet from inside to a pool address (RFC 4787 REQ-9)."""
        if not self.behaviour.hairpin or (view.proto == ICMP):
            return ACCEPT
        now = self._now()
        target = self._live_outside(view.proto, view.dst, view.dport(), now)
        if target is None:
            return ACCEPT
        src = view.src
        if self._is_local(src):
            return ACCEPT
        sender = self._outbound_mapping(view.proto, src, view.sport(), view.dst, view.dport(),
                                        now)
        if sender is None:
            return DROP
        if not self._permits(target, sender.outside, sender.outside_port):
            self.counters["nat.filtered"] += 1
            return DROP
        sender.packets_out += 1
        target.packets_in += 1
        view.set_src(sender.outside)
        view.set_sport(sender.outside_port)
        view.set_dst(target.inside)
        view.set_dport(target.inside_port)
        self.counters["nat.hairpin"] += 1
        return Verdict(True, view.buf)

    def _embedded(self, view: PacketView) -> PacketView | None:
        inner = PacketView.parse(view.buf, view.l4 + 8, view.end)
        if inner is None or inner.proto not in (TCP, UDP, ICMP) or not inner.has(8):
            return None
        return inner

    def _finish_error(self, view: PacketView) -> Verdict:
        buf = view.buf
        buf[view.l4 + 2:view.l4 + 4] = b"\0\0"
        buf[view.l4 + 2:view.l4 + 4] = internet_checksum(
            memoryview(buf)[view.l4:view.end]).to_bytes(2, "big")
        return Verdict(True, buf)

    def _error_in(self, view: PacketView, now: int) -> Verdict:
        """An ICMP error from outside about a packet that left through a mapping."""
        inner = self._embedded(view)
        if inner is None:
            return ACCEPT
        m = self._live_outside(inner.proto, inner.src, inner.sport(), now)
        if m is None:
            return ACCEPT  # about the router's own traffic
        if not self._permits(m, inner.dst, 0 if inner.proto == ICMP else inner.dport()):
            self.counters["nat.filtered"] += 1
            return DROP
        view.set_dst(m.inside)
        inner.set_src(m.inside, view.l4 + 2)
        inner.set_sport(m.inside_port, view.l4 + 2)
        self.counters["nat.icmp_error_in"] += 1
        return self._finish_error(view)

    def _error_out(self, view: PacketView, translate_source: bool) -> Verdict:
        """An ICMP error leaving, about a packet that came in through a mapping."""
        inner = self._embedded(view)
        if inner is None:
            if translate_source:
                self.counters["nat.icmp_error_dropped"] += 1
                return DROP
            return ACCEPT
        remote, rport = inner.src, 0 if inner.proto == ICMP else inner.sport()
        key = (inner.proto, inner.dst, inner.dport(),
               *_remote_part(self.behaviour.mapping, remote, rport))
        m = self._by_inside.get(key)
        if m is None or self._expired(m, self._now()):
            if translate_source:  # an inside address would leak out
                self.counters["nat.icmp_error_dropped"] += 1
                return DROP
            return ACCEPT
        if translate_source:
            view.set_src(m.outside)
        inner.set_dst(m.outside, view.l4 + 2)
        inner.set_dport(m.outside_port, view.l4 + 2)
        self.counters["nat.icmp_error_out"] += 1
        return self._finish_error(view)

    def _npt(self, packet: PacketBuffer, outbound: bool) -> Verdict:
        if self.nptv6 is None:
            return ACCEPT
        inside, outside = self.nptv6
        buf = bytearray(packet)
        if len(buf) < 40:
            return ACCEPT
        at = 8 if outbound else 24
        new = npt_translate(bytes(buf[at:at + 16]), inside if outbound else outside,
                            outside if outbound else inside)
        if new is None:
            return ACCEPT
        buf[at:at + 16] = new
        self.counters["nat.npt_out" if outbound else "nat.npt_in"] += 1
        return Verdict(True, buf)
