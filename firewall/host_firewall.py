"""A rule set, a connection table and a name table, attached to one host's stack.

`HostFirewall(ruleset).attach(stack)` registers its `hook` at the INPUT,
OUTPUT and FORWARD hooks (`stack.hooks.Hook`) of a `stack.host.HostStack`,
and, when the rules have nat chains, its `nat_hook` at PREROUTING and
POSTROUTING, where `firewall.nat_rules.RuleNat` translates connections as
the chains decide for their first packet (IPv4 only; the rewritten packet
is the hook's verdict). Each filter hook call answers a
`stack.hooks.Verdict` (accept or drop; the filter never rewrites) and:

1. parses the packet once (`PacketInfo`) and fills in the interface names
   (the output interface of a forwarded packet comes from the routing table);
2. tracks it (`ConnTrack.track`) when the rules ask about `ct state`; a
   packet arriving on loopback was tracked when it left, so it keeps the
   state it had at OUTPUT (Linux carries the skb's conntrack entry across
   `lo`): a RST answering a SYN to a closed local port removes the flow
   at OUTPUT, yet arrives at INPUT as ESTABLISHED, not INVALID, and
   connect() fails with ECONNREFUSED. The states of the last
   `LOOPBACK_MEMORY` packets sent through `lo` are remembered by their
   first `LOOPBACK_KEY_LEN` bytes (IP header, ports, sequence numbers,
   checksum); one not remembered is classified against the table;
3. judges it (`Ruleset.evaluate`) and, for an accepted packet, confirms its
   new flow in the table (a full table refuses it: the packet is dropped);
4. for `reject`, sends the answer (`firewall.reject`) once the hook has
   returned: from INPUT and FORWARD through the stack's output path (it
   passes the OUTPUT hook as RELATED, as the kernel's does), from OUTPUT back
   into the host through its loopback, where the socket that sent the packet
   sees it -- so a rejected connect() fails with ECONNREFUSED (reset, port
   unreachable) or EHOSTUNREACH (host/admin unreachable), and the send itself
   fails with EPERM, as on Linux;
5. for `log`, builds a `LogRecord` and hands it to every `log_sinks` callable
   (vnet wires one per capture: the packet with a pcapng comment) and to a
   bounded in-memory `log` ring.

Fragments: INPUT and OUTPUT see whole packets (the stack reassembles before
its INPUT hook, and fragments after OUTPUT). A router's FORWARD hook sees
fragments: the first fragment is judged normally and its verdict is
remembered for its siblings (`FRAGMENT_MEMORY` entries, 30 s); a later
fragment whose first fragment was never seen is judged without ports and as
`ct state invalid`.

A guest cannot tell a firewall drop from a lost packet: nothing is sent and
no error is reported, except EPERM to the local sender of a packet the
OUTPUT hook refused (what Linux reports). Touches its stack (hooks, routing
table, interfaces, the driver's clock and `defer`), nothing else.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stack.hooks import ACCEPT as ACCEPT_PACKET
from stack.hooks import DROP as DROP_PACKET
from stack.hooks import Hook
from stack.hooks import Verdict as HookVerdict
from stack.icmp import TokenBucket

from .conntrack import INVALID, RELATED, UNTRACKED, ConnTrack, summarize
from .names import DEFAULT_TTL_NS, DNS_PORT, DnsAnswerLearner
from .nat_rules import DROP_CONNECTION, NatSpec, RuleNat
from .packet import FIRST_FRAGMENT, LATER_FRAGMENT, PROTO_TCP, PROTO_UDP, PacketInfo
from .reject import build_reject
from .rules import ACCEPT, DROP, REJECT, Ruleset, Verdict
from .sets import AddressSet

if TYPE_CHECKING:
    from stack.host import HostStack, IpMeta

__all__ = ["FRAGMENT_MEMORY", "HostFirewall", "LogRecord", "StackEnvironment"]

#: Connection tables made for a stack when none is given: a host's, and a router's (which
#: also caps what one source address may hold, so one guest cannot crowd out the rest).
HOST_CONNTRACK_MAX = 16384
ROUTER_CONNTRACK_MAX = 65536
ROUTER_CONNTRACK_PER_SOURCE = 4096
FRAGMENT_MEMORY = 1024
FRAGMENT_TIMEOUT_NS = 30 * 1_000_000_000
LOG_MEMORY = 1000
LOOPBACK_MEMORY = 1024
LOOPBACK_KEY_LEN = 64
REJECT_RATE_PER_S = 1000
REJECT_BURST = 50
#: The stack hooks a firewall filters at (its rule language's base chains).
FILTER_HOOKS = (Hook.INPUT, Hook.OUTPUT, Hook.FORWARD)
#: The stack hooks its NAT chains run at, when the rules have any.
NAT_STACK_HOOKS = (Hook.PREROUTING, Hook.POSTROUTING)


@dataclass(frozen=True)
class LogRecord:
    """One packet a `log` statement marked."""

    time_ns: int
    host: str
    hook: str
    chain: str
    rule: str  # "input#3 (rules.nft:12)"
    prefix: str
    level: str
    action: str  # the final verdict: accept, drop, reject
    iif: str
    oif: str
    packet: bytes  # the IP packet

    def comment(self) -> str:
        """The pcapng comment for this packet."""
        return (f"vnet-fw {self.host} {self.hook}: {self.prefix}{self.action} "
                f"(log in {self.rule})")

    def line(self) -> str:
        """A kernel-style log line: `PREFIX IN=eth0 OUT= SRC=... DST=... PROTO=TCP ...`."""
        pkt = PacketInfo.parse(self.packet)
        fields = [f"IN={self.iif}", f"OUT={self.oif}"]
        if pkt is not None:
            fields += [f"SRC={ipaddress.ip_address(pkt.src)}",
                       f"DST={ipaddress.ip_address(pkt.dst)}", f"LEN={pkt.length}"]
            names = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}
            fields.append(f"PROTO={names.get(pkt.proto, pkt.proto)}")
            if pkt.proto in (PROTO_TCP, PROTO_UDP) and pkt.l4_ok:
                fields += [f"SPT={pkt.sport}", f"DPT={pkt.dport}"]
            elif pkt.icmp_type >= 0:
                fields += [f"TYPE={pkt.icmp_type}", f"CODE={pkt.icmp_code}"]
        return f"{self.prefix}{' '.join(fields)}"


class StackEnvironment:
    """`@local` and `@lan` for a HostStack.

    `@local` is every address of the host; `@lan` the networks of its Ethernet
    interfaces -- its own virtual LANs -- but not loopback, and not a TUN
    bridge's point-to-point port, which leads out of the virtual network;
    `iifname @lan` / `oifname @lan` those Ethernet interfaces themselves.
    """

    def __init__(self, stack: HostStack) -> None:
        self.stack = stack
        self._key: tuple[int, ...] = ()
        self._local = AddressSet()
        self._networks = AddressSet()
        self._lan_interfaces: frozenset[str] = frozenset()

    def _refresh(self) -> None:
        ifaces = self.stack.interfaces.values()
        key = tuple(id(a) for i in ifaces for a in (i, *i.ipv4, *i.ipv6))
        if key == self._key:
            return
        self._key = key
        local: list[Any] = []
        networks: list[Any] = []
        self._lan_interfaces = frozenset(i.name for i in ifaces if i.mac is not None)
        for iface in ifaces:
            for a in (*iface.ipv4, *iface.ipv6):
                local.append(a.address)
                if iface.mac is not None:  # an Ethernet NIC: not lo, not a TUN port
                    networks.append(str(ipaddress.ip_network(f"{ipaddress.ip_address(a.address)}"
                                                             f"/{a.prefix_len}", strict=False)))
        self._local = AddressSet(local)
        self._networks = AddressSet(networks)

    def local_addresses(self) -> AddressSet:
        self._refresh()
        return self._local

    def local_networks(self) -> AddressSet:
        self._refresh()
        return self._networks

    def lan_interfaces(self) -> frozenset[str]:
        self._refresh()
        return self._lan_interfaces


class HostFirewall:
    """Filters one host's (or router's) traffic at its stack's hooks."""

    def __init__(self, ruleset: Ruleset, *, conntrack: ConnTrack | None = None,
                 name: str = "", name_ttl_ns: int = DEFAULT_TTL_NS,
                 track_always: bool = False) -> None:
        self.ruleset = ruleset
        self.name = name
        self.name_ttl_ns = name_ttl_ns
        self.track_always = track_always
        self._own_conntrack = conntrack is None
        self.conntrack = conntrack if conntrack is not None else ConnTrack(HOST_CONNTRACK_MAX)
        self.stack: HostStack | None = None
        #: Called with every LogRecord (vnet adds one per capture).
        self.log_sinks: list[Callable[[LogRecord], None]] = []
        #: The last LOG_MEMORY log records.
        self.log: deque[LogRecord] = deque(maxlen=LOG_MEMORY)
        #: Verdicts per hook ("input.accept", "output.reject", ...) and other events.
        self.counters: Counter[str] = Counter()
        self._fragments: OrderedDict[tuple[int, bytes, bytes, int, int], tuple[bool, int]] = (
            OrderedDict())
        self._local_rejects: dict[int, bytes] = {}
        self._sending_reject = False
        self._reject_bucket = TokenBucket(REJECT_RATE_PER_S, REJECT_BURST)
        self._tracking = False
        #: ct state of packets accepted at OUTPUT on lo, until they arrive at INPUT.
        self._looped_states: OrderedDict[bytes, int] = OrderedDict()
        #: The connections its NAT chains translated (`firewall.nat_rules`).
        self.nat = RuleNat(random.Random(f"vnet-nat:{name}"))
        #: Learns names from the DNS answers this host receives or forwards.
        self.dns_learner = DnsAnswerLearner()

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, **kwargs: Any) -> HostFirewall:
        return cls(Ruleset.parse(text), **kwargs)

    @classmethod
    def from_file(cls, path: Any, **kwargs: Any) -> HostFirewall:
        return cls(Ruleset.load(path), **kwargs)

    def attach(self, stack: HostStack) -> HostFirewall:
        """Filter `stack`'s traffic from now on (replacing any hooks it had). ValueError,
        with nothing attached, when the rules have nat chains and something else (a NAT
        router) holds PREROUTING or POSTROUTING."""
        if self.ruleset.uses_nat:
            for hook in NAT_STACK_HOOKS:
                current = stack.hooks.get(hook)
                if current is not None and current != self.nat_hook:
                    raise ValueError(f"{stack.name}: the {hook} hook is taken (a NAT router?): "
                                     "rules with nat chains need it")
        self.stack = stack
        if not self.name:
            self.name = stack.name
        if self._own_conntrack and stack.forwarding and not len(self.conntrack):
            self.conntrack = ConnTrack(ROUTER_CONNTRACK_MAX,
                                       max_per_source=ROUTER_CONNTRACK_PER_SOURCE)
        self.ruleset.env = StackEnvironment(stack)
        self.ruleset.link()
        self._tracking = self.track_always or self.ruleset.uses_conntrack
        for hook in FILTER_HOOKS:
            stack.hooks.register(hook, self.hook)
        self._attach_nat()
        return self

    def _attach_nat(self) -> None:
        stack = self.stack
        if stack is None:
            return
        for hook in NAT_STACK_HOOKS:
            current = stack.hooks.get(hook)
            if not self.ruleset.uses_nat:
                stack.hooks.unregister(hook, self.nat_hook)
            elif current is None or current == self.nat_hook:
                stack.hooks.register(hook, self.nat_hook)
            else:
                raise ValueError(f"{stack.name}: the {hook} hook is taken (a NAT router?): "
                                 "rules with nat chains need it")

    def detach(self) -> None:
        stack = self.stack
        if stack is not None:
            for hook in FILTER_HOOKS:
                stack.hooks.unregister(hook, self.hook)
            for hook in NAT_STACK_HOOKS:
                stack.hooks.unregister(hook, self.nat_hook)
        self.stack = None

    def replace_rules(self, ruleset: Ruleset) -> None:
        """Swap in new rules (the connection and name tables stay)."""
        ruleset.names = self.ruleset.names
        ruleset.env = self.ruleset.env
        ruleset.link()
        self.ruleset = ruleset
        self._tracking = self.track_always or ruleset.uses_conntrack
        self._attach_nat()

    # --- names ----------------------------------------------------------------------------
    def learn(self, name: str, addresses: Any, now_ns: int | None = None,
              ttl_ns: int | None = None) -> None:
        """The host's resolver answered `addresses` for `name`: name rules now cover them."""
        if now_ns is None:
            now_ns = self.stack.driver.now_ns() if self.stack is not None else 0
        self.ruleset.names.learn(name, addresses, now_ns,
                                 self.name_ttl_ns if ttl_ns is None else ttl_ns)

    # --- NAT -------------------------------------------------------------------------------
    def nat_hook(self, hook: Hook, meta: IpMeta, data: Any) -> HookVerdict:
        """PREROUTING and POSTROUTING: the nat chains' translation (`firewall.nat_rules`)."""
        stack = self.stack
        if stack is None or meta.version != 4:
            return ACCEPT_PACKET  # no NAT66
        now = stack.driver.now_ns()
        pre = hook is Hook.PREROUTING
        iface = stack.interfaces.get(meta.ifindex if pre else meta.out_ifindex)
        name = iface.name if iface is not None else ""
        address = iface.ipv4[0].address if iface is not None and iface.ipv4 else None

        def decide() -> NatSpec | None:
            pkt = PacketInfo.parse(data)
            if pkt is None:
                return None
            if pre:
                pkt.iif = name
            else:
                pkt.oif = name
            verdict = self.ruleset.evaluate(hook.value, pkt, now)
            self.counters[f"{hook}.{verdict.action}"] += 1
            if verdict.logs:
                self._log(hook, pkt, verdict, now)
            if verdict.action == DROP:
                return DROP_CONNECTION
            return verdict.rule.nat if verdict.rule is not None else None

        if pre:
            return self.nat.prerouting(data, now, decide, address)
        return self.nat.postrouting(data, now, decide, address)

    # --- the hook ----------------------------------------------------------------------------
    def hook(self, hook: Hook, meta: IpMeta | None, data: Any) -> HookVerdict:
        """The stack's hook function (`stack.hooks`): accept or drop, never rewritten."""
        return ACCEPT_PACKET if self._filter(hook, meta, data) else DROP_PACKET

    def _filter(self, hook: Hook, meta: IpMeta | None, data: Any) -> bool:
        stack = self.stack
        now = stack.driver.now_ns() if stack is not None else 0
        pkt = PacketInfo.parse(data)
        if pkt is None:
            self.counters["malformed"] += 1
            return self.ruleset.evaluate(hook, b"", now).accepted
        iface_name = ""
        loopback = False
        if meta is not None and stack is not None:
            iface = stack.interfaces.get(meta.ifindex)
            if iface is not None:
                iface_name = iface.name
                loopback = iface.is_loopback
        if hook is Hook.OUTPUT:
            pkt.oif = iface_name
        else:
            pkt.iif = iface_name
            if hook is Hook.FORWARD:
                pkt.oif = self._forward_oif(meta, pkt)
        pkt.now = now
        if self._sending_reject or (
                hook is Hook.INPUT and self._local_rejects and self._is_local_reject(data)):
            pkt.ct_state = RELATED  # our own reject answer carries its flow's state
            return self._judge(hook, pkt, now, track=False)
        if pkt.fragment != 0 and hook is Hook.FORWARD:
            remembered = self._fragment_verdict(pkt, now)
            if remembered is not None:
                self.counters[f"{hook}.{'accept' if remembered else 'drop'}.fragment"] += 1
                return remembered
        if self._tracking:
            if loopback and hook is Hook.INPUT:
                state = self._looped_states.pop(bytes(data[:LOOPBACK_KEY_LEN]), None)
                if state is None:
                    self.conntrack.classify(pkt, now)
                else:
                    pkt.ct_state = state
            else:
                self.conntrack.track(pkt, now)
        else:
            pkt.ct_state = UNTRACKED
        accepted = self._judge(hook, pkt, now, track=self._tracking)
        if accepted and loopback and hook is Hook.OUTPUT and self._tracking:
            looped = self._looped_states
            looped[bytes(data[:LOOPBACK_KEY_LEN])] = pkt.ct_state
            if len(looped) > LOOPBACK_MEMORY:
                looped.popitem(last=False)
        if pkt.fragment == FIRST_FRAGMENT and hook is Hook.FORWARD:
            self._remember_fragment(pkt, accepted, now)
        if accepted and DNS_PORT in (pkt.sport, pkt.dport):
            self._snoop_dns(hook, pkt, now)
        return accepted

    def _snoop_dns(self, hook: Hook, pkt: PacketInfo, now: int) -> None:
        """DNS on the wire: learn names from answers to queries seen (`firewall.names`)."""
        if not pkt.l4_ok or pkt.proto not in (PROTO_TCP, PROTO_UDP):
            return
        start = pkt.l4_offset + (pkt.tcp_hlen if pkt.proto == PROTO_TCP else 8)
        payload = memoryview(pkt.data)[start:]
        if not payload:
            return
        if pkt.dport == DNS_PORT and hook in (Hook.OUTPUT, Hook.FORWARD):
            self.dns_learner.saw_query(pkt.proto, pkt.src, pkt.sport, pkt.dst, payload, now)
        elif pkt.sport == DNS_PORT and hook in (Hook.INPUT, Hook.FORWARD):
            self.dns_learner.saw_answer(pkt.proto, pkt.src, pkt.dst, pkt.dport, payload,
                                        self.ruleset.names, now)

    def _judge(self, hook: Hook, pkt: PacketInfo, now: int, track: bool) -> bool:
        verdict = self.ruleset.evaluate(hook, pkt, now)
        if verdict.logs:
            self._log(hook, pkt, verdict, now)
        action = verdict.action
        if action == ACCEPT:
            if track and not self.conntrack.confirm(pkt):
                self.counters[f"{hook}.drop.conntrack_full"] += 1
                return False
            self.counters[f"{hook}.accept"] += 1
            return True
        self.counters[f"{hook}.{action}"] += 1
        if action == REJECT and verdict.reject is not None:
            self._reject(hook, pkt, verdict)
        return False

    # --- helpers ---------------------------------------------------------------------------
    def _forward_oif(self, meta: IpMeta | None, pkt: PacketInfo) -> str:
        stack = self.stack
        if stack is None:
            return ""
        index = getattr(meta, "out_ifindex", 0) if meta is not None else 0
        if not index:
            route = stack.routes.lookup(pkt.dst)
            index = route.ifindex if route is not None else 0
        iface = stack.interfaces.get(index)
        return iface.name if iface is not None else ""

    def _fragment_key(self, pkt: PacketInfo) -> tuple[int, bytes, bytes, int, int]:
        return (pkt.version, pkt.src, pkt.dst, pkt.proto, pkt.frag_ident)

    def _fragment_verdict(self, pkt: PacketInfo, now: int) -> bool | None:
        if pkt.fragment != LATER_FRAGMENT:
            return None
        found = self._fragments.get(self._fragment_key(pkt))
        if found is None or found[1] <= now:
            pkt.ct_state = INVALID
            return None
        return found[0]

    def _remember_fragment(self, pkt: PacketInfo, accepted: bool, now: int) -> None:
        fragments = self._fragments
        fragments[self._fragment_key(pkt)] = (accepted, now + FRAGMENT_TIMEOUT_NS)
        while len(fragments) > FRAGMENT_MEMORY:
            fragments.popitem(last=False)

    def _is_local_reject(self, data: Any) -> bool:
        owner = getattr(data, "obj", data)
        return self._local_rejects.pop(id(owner), None) is owner

    def _reject(self, hook: Hook, pkt: PacketInfo, verdict: Verdict) -> None:
        stack = self.stack
        spec = verdict.reject
        if stack is None or spec is None:
            return
        kind, icmp_type, code = spec.response(pkt)
        if kind == "icmp" and not self._reject_bucket.take(pkt.now):
            self.counters["reject.ratelimited"] += 1
            return
        icmp_src = None
        if hook is Hook.OUTPUT:
            icmp_src = pkt.src  # the host answers itself, through lo
        elif hook is Hook.FORWARD:
            try:
                icmp_src = stack.route_output(pkt.src).src
            except OSError:
                return
        response = build_reject(pkt, kind, icmp_type, code, icmp_src=icmp_src,
                                broadcast=self._is_broadcast(pkt))
        if response is None:
            self.counters["reject.not_answered"] += 1
            return
        self.counters[f"reject.{kind}"] += 1
        if hook is Hook.OUTPUT:
            packet = response.packet()
            self._local_rejects[id(packet)] = packet
            if len(self._local_rejects) > 64:
                self._local_rejects.pop(next(iter(self._local_rejects)))

            def deliver() -> None:
                stack.receive_packet(stack.lo, packet)

            stack.driver.defer(deliver)
            return

        def send() -> None:
            self._sending_reject = True
            try:
                # a forwarded packet's reset comes from its destination, as nf_reject's
                stack.send_ip(response.dst, response.proto, response.payload, src=response.src,
                              any_source=True)
            except OSError:
                self.counters["reject.send_failed"] += 1
            finally:
                self._sending_reject = False

        stack.driver.defer(send)

    def _is_broadcast(self, pkt: PacketInfo) -> bool:
        if pkt.version != 4 or self.stack is None:
            return False
        if pkt.dst == b"\xff\xff\xff\xff":
            return True
        return any(a.broadcast == pkt.dst for i in self.stack.interfaces.values()
                   for a in i.ipv4)

    def _log(self, hook: Hook, pkt: PacketInfo, verdict: Verdict, now: int) -> None:
        for mark in verdict.logs:
            record = LogRecord(now, self.name, hook.value, mark.chain,
                               mark.rule.describe_position(), mark.prefix, mark.level,
                               verdict.action, pkt.iif, pkt.oif, bytes(pkt.data))
            self.counters["log"] += 1
            self.log.append(record)
            for sink in self.log_sinks:
                sink(record)

    # --- showing --------------------------------------------------------------------------
    def show(self) -> str:
        """The rules with their counters, then the connection and name tables."""
        out = [f"# firewall of {self.name or '?'}"
               + (f" (rules from {self.ruleset.source})" if self.ruleset.source else "")]
        out.append(self.ruleset.format(counters=True, locations=True).rstrip())
        table = summarize(self.conntrack)
        states = ", ".join(f"{k}: {v}" for k, v in table.by_state.items()) or "none"
        out.append(f"# conntrack: {table.entries}/{table.max_entries} entries ({states})")
        if table.stats:
            out.append("# conntrack stats: "
                       + ", ".join(f"{k} {v}" for k, v in table.stats.items()))
        if self.ruleset.uses_nat:
            now = self.stack.driver.now_ns() if self.stack is not None else 0
            nat = ", ".join(f"{k.removeprefix('nat.')} {v}"
                            for k, v in sorted(self.nat.counters.items()))
            out.append(f"# nat: {len(self.nat.flows(now))} connections"
                       + (f" ({nat})" if nat else ""))
        names = self.ruleset.names
        if len(names):
            now = self.stack.driver.now_ns() if self.stack is not None else 0
            learned = sorted({(n, ipaddress.ip_address(a).compressed)
                              for a in names.by_address for n in names.names_for(a, now)})
            out.append("# names learned: " + ", ".join(f"{n}={a}" for n, a in learned))
        if self.counters:
            out.append("# verdicts: " + ", ".join(f"{k} {v}"
                                                  for k, v in sorted(self.counters.items())))
        return "\n".join(out) + "\n"
