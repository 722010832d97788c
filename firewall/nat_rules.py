"""The nftables NAT statements of rule files: `snat`, `dnat`, `masquerade`, `redirect`.

Rule-file syntax (nft's), in chains of `type nat hook postrouting` (snat,
masquerade) or `type nat hook prerouting` (dnat, redirect)::

    chain postrouting {
        type nat hook postrouting priority srcnat
        oifname wan0 ip saddr 10.0.0.0/24 masquerade
        oifname wan1 snat to 203.0.113.1-203.0.113.4
        oifname wan2 snat to 198.51.100.1:20000-20999
    }
    chain prerouting {
        type nat hook prerouting priority dstnat
        iifname wan0 tcp dport 80 dnat to 10.0.0.2:8080      # port forwarding
        iifname lan0 tcp dport 53 redirect to :5353          # to the router itself
    }

`NatSpec` is one parsed statement; `RuleNat` is the connection-based
translation a `HostFirewall` runs at PREROUTING and POSTROUTING, the way
Linux's conntrack NAT does: the NAT chains are consulted for the first
packet of a connection only (for TCP, a SYN: a stray segment of no known
connection is neither translated nor tracked, as conntrack with
`nf_conntrack_tcp_loose=0` leaves it; add `ct state invalid drop` to the
forward chain to keep such packets in); the translation chosen then is applied to the
connection's later packets and undone on its replies, and ICMP errors about
a translated connection get their outer and embedded addresses and ports
translated (RFC 5508). A flow lives as Linux's conntrack keeps it (refreshed
by packets either way): UDP 30 s until a reply, then 120 s; TCP 120 s while
opening or closing, 10 s after a reset, 432000 s established; ICMP 30 s.

Port choice follows the kernel's (`nf_nat_l4proto_unique_tuple`): the
original source port is kept when it lies in the statement's range (the
whole range without one) and the reply tuple is unique; otherwise a
pseudo-random port of the range (without a range, from the class of the
original: 1-511, 600-1023 or 1024-65535) -- from a seeded `random.Random`,
so runs are deterministic but the ports are not Linux's. Among several
addresses (`snat to A-B`), an inside address always gets the same one (as
`persistent`). IPv4 only: a `dnat ip6`/`snat ip6` statement is refused by
the parser (no NAT66). Packets that are fragments, and protocols other than
TCP, UDP and ICMP echo, are not translated. A full table (`MAX_FLOWS`) drops
new connections that need translation, counted.

Touches nothing but its own table: packets, the clock and the interfaces'
addresses come in through its methods.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from stack.hooks import ACCEPT, DROP, Verdict
from stack.wire.checksum import internet_checksum

from .nat_router import ICMP, ICMP_ERRORS, TCP, UDP, PacketView

__all__ = ["DROP_CONNECTION", "MAX_FLOWS", "NAT_HOOK_OF", "NAT_VERDICTS", "NatFlow", "NatSpec",
           "RuleNat"]

SNAT, DNAT, MASQUERADE, REDIRECT = "snat", "dnat", "masquerade", "redirect"
NAT_VERDICTS = (SNAT, DNAT, MASQUERADE, REDIRECT)
#: The hook each statement belongs to.
NAT_HOOK_OF = {SNAT: "postrouting", MASQUERADE: "postrouting", DNAT: "prerouting",
               REDIRECT: "prerouting"}
NAT_FLAGS = ("random", "fully-random", "persistent")
MAX_FLOWS = 65536
NS = 1_000_000_000
UDP_UNREPLIED_NS, UDP_REPLIED_NS = 30 * NS, 120 * NS
TCP_ESTABLISHED_NS, TCP_TRANSITORY_NS, TCP_RESET_NS = 432000 * NS, 120 * NS, 10 * NS
ICMP_NS = 30 * NS

Key = tuple[int, bytes, int, bytes, int]


@dataclass(frozen=True)
class NatSpec:
    """One NAT statement: kind, address range and port range (0: keep), flags."""

    kind: str
    low: bytes | None = None
    high: bytes | None = None
    port_low: int = 0
    port_high: int = 0
    flags: tuple[str, ...] = ()

    @classmethod
    def parse(cls, kind: str, target: str | None, flags: tuple[str, ...] = ()) -> NatSpec:
        """`target` as nft writes it: `ADDR`, `ADDR-ADDR`, with `:PORT` or `:PORT-PORT`,
        or `:PORT...` alone (masquerade, redirect). ValueError says what is wrong."""
        if kind not in NAT_VERDICTS:
            raise ValueError(f"unknown NAT statement {kind!r}")
        for flag in flags:
            if flag not in NAT_FLAGS:
                raise ValueError(f"unknown NAT flag {flag!r} (flags: {', '.join(NAT_FLAGS)})")
        if target is None:
            if kind in (SNAT, DNAT):
                raise ValueError(f"{kind} needs an address: {kind} to ADDRESS[:PORT]")
            return cls(kind, flags=flags)
        address, _, ports = target.partition(":")
        if address and kind in (MASQUERADE, REDIRECT):
            raise ValueError(f"{kind} takes a port only: {kind} to :PORT")
        if not address and kind in (SNAT, DNAT):
            raise ValueError(f"{kind} needs an address: {kind} to ADDRESS[:PORT]")
        if ":" in ports:
            raise ValueError(f"{target!r}: IPv6 NAT (NAT66) is not supported; "
                             "see NPTv6 on Host.nat")
        low = high = None
        if address:
            first, _, last = address.partition("-")
            try:
                low = ipaddress.IPv4Address(first).packed
                high = ipaddress.IPv4Address(last).packed if last else low
            except ValueError:
                raise ValueError(f"{address!r} is not an IPv4 address or range") from None
            if high < low:
                raise ValueError(f"address range {address!r} runs backwards")
        port_low = port_high = 0
        if ports or target.endswith(":"):
            first, _, last = ports.partition("-")
            if not first.isdigit() or (last and not last.isdigit()):
                raise ValueError(f"{ports!r} is not a port or port range")
            port_low = int(first)
            port_high = int(last) if last else port_low
            if not 0 < port_low <= port_high < 65536:
                raise ValueError(f"port range {ports!r}: 1-65535, low to high")
        return cls(kind, low, high, port_low, port_high, flags)

    @property
    def hook(self) -> str:
        return NAT_HOOK_OF[self.kind]

    def __str__(self) -> str:
        target = ""
        if self.low is not None:
            target = str(ipaddress.IPv4Address(self.low))
            if self.high != self.low and self.high is not None:
                target += f"-{ipaddress.IPv4Address(self.high)}"
        if self.port_low:
            target += f":{self.port_low}"
            if self.port_high != self.port_low:
                target += f"-{self.port_high}"
        text = f"{self.kind} to {target}" if target else self.kind
        return f"{text} {','.join(self.flags)}" if self.flags else text


#: What a NAT chain's `drop` verdict makes `decide` answer: the new connection is dropped.
DROP_CONNECTION = NatSpec("drop")


@dataclass(slots=True, eq=False)
class NatFlow:
    """One translated connection: its original endpoints and what they became."""

    proto: int
    src: bytes
    sport: int
    dst: bytes
    dport: int
    new_src: bytes
    new_sport: int
    new_dst: bytes
    new_dport: int
    last_ns: int
    snat_decided: bool = False
    replied: bool = False
    tcp: str = "opening"  # opening, established, closing, reset

    def original_pre(self) -> Key:
        return (self.proto, self.src, self.sport, self.dst, self.dport)

    def original_post(self) -> Key:
        return (self.proto, self.src, self.sport, self.new_dst, self.new_dport)

    def reply_pre(self) -> Key:
        return (self.proto, self.new_dst, self.new_dport, self.new_src, self.new_sport)

    def reply_post(self) -> Key:
        return (self.proto, self.new_dst, self.new_dport, self.src, self.sport)

    def timeout_ns(self) -> int:
        if self.proto == UDP:
            return UDP_REPLIED_NS if self.replied else UDP_UNREPLIED_NS
        if self.proto == TCP:
            return {"established": TCP_ESTABLISHED_NS, "reset": TCP_RESET_NS}.get(
                self.tcp, TCP_TRANSITORY_NS)
        return ICMP_NS


def packet_key(view: PacketView) -> Key | None:
    """(proto, src, sport, dst, dport) of a TCP/UDP packet or ICMP echo (the identifier
    stands at sport in a request and at dport in a reply); None for anything else."""
    if view.proto in (TCP, UDP):
        return (view.proto, view.src, view.sport(), view.dst, view.dport())
    if view.proto == ICMP:
        kind = view.buf[view.l4]
        if kind == 8:
            return (ICMP, view.src, view.sport(), view.dst, 0)
        if kind == 0:
            return (ICMP, view.src, 0, view.dst, view.dport())
    return None


def _reverse(key: Key) -> Key:
    proto, src, sport, dst, dport = key
    return (proto, dst, dport, src, sport)


class RuleNat:
    """Connection-based NAT decided by a rule set's nat chains (what HostFirewall runs)."""

    def __init__(self, rng: random.Random | None = None, max_flows: int = MAX_FLOWS) -> None:
        self.rng = rng or random.Random(0)
        self.max_flows = max_flows
        self.counters: Counter[str] = Counter()
        self._index: dict[Key, tuple[NatFlow, bool]] = {}  # key -> (flow, is original dir)
        self._flows: dict[int, NatFlow] = {}

    def flows(self, now_ns: int) -> list[NatFlow]:
        return [f for f in self._flows.values() if now_ns - f.last_ns < f.timeout_ns()]

    # --- the table -------------------------------------------------------------------------
    def _find(self, key: Key, now: int) -> tuple[NatFlow, bool] | None:
        found = self._index.get(key)
        if found is None:
            return None
        flow = found[0]
        if now - flow.last_ns >= flow.timeout_ns():
            self._forget(flow)
            return None
        return found

    def _keys(self, flow: NatFlow) -> list[tuple[Key, bool]]:
        return [(flow.original_pre(), True), (flow.original_post(), True),
                (flow.reply_pre(), False), (flow.reply_post(), False)]

    def _forget(self, flow: NatFlow) -> None:
        for key, _ in self._keys(flow):
            if self._index.get(key, (None,))[0] is flow:
                del self._index[key]
        self._flows.pop(id(flow), None)
        self.counters["nat.expired"] += 1

    def _store(self, flow: NatFlow) -> None:
        for key, original in self._keys(flow):
            self._index[key] = (flow, original)
        self._flows[id(flow)] = flow

    def _taken(self, reply: Key, now: int) -> bool:
        return self._find(reply, now) is not None

    def _sweep(self, now: int) -> None:
        if len(self._flows) < self.max_flows:
            return
        for flow in list(self._flows.values()):
            if now - flow.last_ns >= flow.timeout_ns():
                self._forget(flow)

    # --- choosing the translation ----------------------------------------------------------
    def _choose_port(self, spec: NatSpec, original: int, fixed: bool,
                     taken: Callable[[int], bool]) -> int:
        if spec.port_low:
            low, high = spec.port_low, spec.port_high
        elif fixed:
            return original if not taken(original) else -1
        elif original == 0:
            low, high = 0, 65535
        elif original < 512:
            low, high = 1, 511
        elif original < 1024:
            low, high = 600, 1023
        else:
            low, high = 1024, 65535
        random_only = "random" in spec.flags or "fully-random" in spec.flags
        if low <= original <= high and not random_only and not taken(original):
            return original
        span = high - low + 1
        if spec.kind in (DNAT, REDIRECT) and not random_only:
            start = 0  # the kernel walks a destination range from its start
        else:
            start = self.rng.randrange(span)
        for i in range(span):
            port = low + (start + i) % span
            if not taken(port):
                return port
        return -1

    def _address(self, spec: NatSpec, inside: bytes) -> bytes:
        assert spec.low is not None and spec.high is not None
        low, high = int.from_bytes(spec.low, "big"), int.from_bytes(spec.high, "big")
        if low == high:
            return spec.low
        pick = sum(inside) * 2654435761 % (high - low + 1)  # stable per inside address
        return (low + pick).to_bytes(4, "big")

    def _new_flow(self, key: Key, now: int) -> NatFlow | None:
        self._sweep(now)
        if len(self._flows) >= self.max_flows:
            self.counters["nat.table_full"] += 1
            return None
        proto, src, sport, dst, dport = key
        return NatFlow(proto, src, sport, dst, dport, src, sport, dst, dport, now)

    def _apply_dnat(self, flow: NatFlow, spec: NatSpec, iif_address: bytes | None,
                    now: int) -> bool:
        if spec.kind == REDIRECT:
            if iif_address is None:
                return False
            address = iif_address
        else:
            address = self._address(spec, flow.src)
        flow.new_dst = address
        if flow.proto == ICMP:
            return not self._taken(flow.reply_pre(), now)

        def taken(port: int) -> bool:
            return self._taken((flow.proto, address, port, flow.new_src, flow.new_sport), now)

        port = self._choose_port(spec, flow.dport, fixed=not spec.port_low, taken=taken)
        if port < 0:
            return False
        flow.new_dport = port
        return True

    def _apply_snat(self, flow: NatFlow, spec: NatSpec, oif_address: bytes | None,
                    now: int) -> bool:
        if spec.kind == MASQUERADE:
            if oif_address is None:
                return False
            address = oif_address
        else:
            address = self._address(spec, flow.src)
        flow.new_src = address

        def taken(port: int) -> bool:
            if flow.proto == ICMP:
                return self._taken((ICMP, flow.new_dst, 0, address, port), now)
            return self._taken((flow.proto, flow.new_dst, flow.new_dport, address, port), now)

        port = self._choose_port(spec, flow.sport, fixed=False, taken=taken)
        if port < 0:
            return False
        flow.new_sport = port
        return True

    # --- the hooks -------------------------------------------------------------------------
    def prerouting(self, data: bytes | bytearray | memoryview, now: int,
                   decide: Callable[[], NatSpec | None], iif_address: bytes | None) -> Verdict:
        """A packet arriving: undo SNAT on replies, DNAT originals (the nat chain decides a
        new connection's translation: `decide` evaluates it)."""
        return self._hook(data, now, decide, iif_address, pre=True)

    def postrouting(self, data: bytes | bytearray | memoryview, now: int,
                    decide: Callable[[], NatSpec | None], oif_address: bytes | None) -> Verdict:
        """A packet leaving: SNAT originals, undo DNAT on replies."""
        return self._hook(data, now, decide, oif_address, pre=False)

    def _hook(self, data: bytes | bytearray | memoryview, now: int,
              decide: Callable[[], NatSpec | None], iface_address: bytes | None,
              pre: bool) -> Verdict:
        buf = bytearray(data)
        view = PacketView.parse(buf)
        if view is None or view.fragment or not view.has(8):
            return ACCEPT
        if view.proto == ICMP and buf[view.l4] in ICMP_ERRORS:
            return self._error(view, now)
        key = packet_key(view)
        if key is None:
            return ACCEPT
        found = self._find(key, now)
        if found is None:
            if view.proto == TCP and view.has(14) and view.buf[view.l4 + 13] & 0x12 != 0x02:
                # only a SYN starts a connection (conntrack with tcp_loose=0, vnet's
                # default): a stray segment is not translated and creates nothing
                self.counters["nat.untracked_tcp"] += 1
                return ACCEPT
            spec = decide()
            if spec is None:
                return ACCEPT
            if spec is DROP_CONNECTION:
                return DROP
            flow = self._new_flow(key, now)
            if flow is None:
                return DROP
            ok = (self._apply_dnat(flow, spec, iface_address, now) if pre
                  else self._apply_snat(flow, spec, iface_address, now))
            if not ok:
                self.counters["nat.no_tuple"] += 1
                return DROP
            flow.snat_decided = not pre
            self._store(flow)
            self.counters[f"nat.{spec.kind}"] += 1
            found = (flow, True)
        flow, original = found
        if original and not pre and not flow.snat_decided:
            flow.snat_decided = True
            spec = decide()
            if spec is DROP_CONNECTION:
                return DROP
            if spec is not None:
                for k, _ in self._keys(flow):
                    self._index.pop(k, None)
                if not self._apply_snat(flow, spec, iface_address, now):
                    self._store(flow)
                    self.counters["nat.no_tuple"] += 1
                    return DROP
                self._store(flow)
                self.counters[f"nat.{spec.kind}"] += 1
        flow.last_ns = now
        self._track(flow, view, original)
        if original and pre:
            view.set_dst(flow.new_dst)
            if flow.proto != ICMP:
                view.set_dport(flow.new_dport)
        elif original:
            view.set_src(flow.new_src)
            view.set_sport(flow.new_sport)
        elif pre:
            view.set_dst(flow.src)
            view.set_dport(flow.sport)
        else:
            view.set_src(flow.dst)
            if flow.proto != ICMP:
                view.set_sport(flow.dport)
        return Verdict(True, buf)

    def _track(self, flow: NatFlow, view: PacketView, original: bool) -> None:
        if not original:
            flow.replied = True
        if flow.proto != TCP or not view.has(14):
            return
        flags = view.buf[view.l4 + 13]
        if flags & 0x04:
            flow.tcp = "reset"
        elif flags & 0x01:
            flow.tcp = "closing"
        elif flow.tcp == "opening" and flow.replied and original and flags & 0x10:
            flow.tcp = "established"

    def _error(self, view: PacketView, now: int) -> Verdict:
        """An ICMP error about a translated connection: both headers translated."""
        inner = PacketView.parse(view.buf, view.l4 + 8, view.end)
        if inner is None or not inner.has(8):
            return ACCEPT
        key = packet_key(inner)
        if key is None:
            return ACCEPT
        found = self._find(_reverse(key), now)
        if found is None or found[1]:
            return ACCEPT
        flow = found[0]
        at = view.l4 + 2
        outer_dst, outer_src = view.dst, view.src
        if outer_dst == flow.new_src:
            view.set_dst(flow.src)
        if outer_src == flow.new_dst and flow.new_dst != flow.dst:
            view.set_src(flow.dst)
        inner.set_src(flow.src, at)
        inner.set_sport(flow.sport, at)
        inner.set_dst(flow.dst, at)
        if flow.proto != ICMP:
            inner.set_dport(flow.dport, at)
        buf = view.buf
        buf[at:at + 2] = b"\0\0"
        buf[at:at + 2] = internet_checksum(memoryview(buf)[view.l4:view.end]).to_bytes(2, "big")
        self.counters["nat.icmp_error"] += 1
        return Verdict(True, buf)
