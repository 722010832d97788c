"""Our verdicts against the kernel's: the same rules, the same packet trace, the same output.

Each case is a rule set written twice, in vnet's syntax and by hand in
nftables' (`table inet t { chain forward { type filter hook forward ... } }`).
The kernel side is a router in a network namespace of its own (`eth0`
10.0.0.1/24 + fd00::1/64, `eth1` 10.1.0.1/24 + fd01::1/64), wired by two veth
pairs to a tester namespace whose ends (`t0`, `t1`) have no addresses at
all. A fixed trace of frames -- TCP handshakes and teardowns, invalid
segments, UDP exchanges, ICMP echo, ICMP errors about tracked and unknown
flows, IPv4 and IPv6 -- is replayed through `t0`/`t1` with raw sockets, and
everything the router sends back out of either side is recorded per step.
The vnet side is a forwarding HostStack with the same MACs, addresses and
neighbours, fed the same frames at the same (virtual) times. For every step,
what came out -- forwarded packets, resets, ICMP errors -- must be the same,
and so must each rule's packet counter.

Both namespaces are created and deleted by the test, through the audited
guard in `vnet.testing.netns` (which checks, before the trace runs, that
neither has a route out nor a link to the host's namespace); the router's
conntrack is switched to `nf_conntrack_tcp_loose=0` (vnet's default) and its
ICMP rate limits off.
The test needs root, iproute2 and nftables (Debian: iproute2, nftables); it
fails, rather than skips, when they are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, UDPerror
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    IPv6,
)
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from tests.firewall.helpers import OUR_MAC, OUR_MAC1, PEER_MAC, PEER_MAC1, RouterBench
from vnet.testing import netns
from vnet.testing.netns import Namespace

REPLAY = Path(__file__).with_name("kernel_replay.py")
WINDOW_S = 0.03

C4, X4, S4 = "10.0.0.2", "10.0.0.3", "10.1.0.2"
C6, X6, S6 = "fd00::2", "fd00::3", "fd01::2"


# --- the trace ------------------------------------------------------------------------------
@dataclass
class Step:
    note: str
    iface: str  # t0 (the 10.0.0.0/24 side) or t1 (the server side)
    packet: Any

    def frame(self) -> bytes:
        if self.iface == "t0":
            return bytes(Ether(src=PEER_MAC, dst=OUR_MAC) / self.packet)
        return bytes(Ether(src=PEER_MAC1, dst=OUR_MAC1) / self.packet)


def tcp4(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int = 0,
         data: bytes = b"") -> Any:
    packet = IP(src=src, dst=dst, id=seq & 0xFFFF) / TCP(sport=sport, dport=dport,
                                                        flags=flags, seq=seq, ack=ack)
    return packet / Raw(data) if data else packet


def tcp6(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int = 0) -> Any:
    return IPv6(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)


def trace() -> list[Step]:
    steps = [
        Step("v4 SYN c:40001 > s:80", "t0", tcp4(C4, S4, 40001, 80, "S", 1000)),
        Step("v4 SYN-ACK", "t1", tcp4(S4, C4, 80, 40001, "SA", 5000, 1001)),
        Step("v4 ACK", "t0", tcp4(C4, S4, 40001, 80, "A", 1001, 5001)),
        Step("v4 data", "t0", tcp4(C4, S4, 40001, 80, "PA", 1001, 5001, b"GET")),
        Step("v4 data ACK", "t1", tcp4(S4, C4, 80, 40001, "A", 5001, 1004)),
        Step("v4 FIN from client", "t0", tcp4(C4, S4, 40001, 80, "FA", 1004, 5001)),
        Step("v4 FIN from server", "t1", tcp4(S4, C4, 80, 40001, "FA", 5001, 1005)),
        Step("v4 last ACK", "t0", tcp4(C4, S4, 40001, 80, "A", 1005, 5002)),
        Step("v4 SYN to 22", "t0", tcp4(C4, S4, 40002, 22, "S", 2000)),
        Step("v4 SYN to 443", "t0", tcp4(C4, S4, 40003, 443, "S", 3000)),
        Step("v4 SYN to 8080", "t0", tcp4(C4, S4, 40004, 8080, "S", 4000)),
        Step("v4 SYN from x to 80", "t0", tcp4(X4, S4, 40005, 80, "S", 4500)),
        Step("v4 unsolicited SYN-ACK", "t1", tcp4(S4, C4, 80, 40099, "SA", 6000, 7000)),
        Step("v4 unsolicited ACK", "t0", tcp4(C4, S4, 40098, 80, "A", 7000, 6000)),
        Step("v4 SYN+FIN", "t0", tcp4(C4, S4, 40097, 80, "SF", 8000)),
        Step("v4 server-initiated SYN", "t1", tcp4(S4, C4, 50000, 22, "S", 9000)),
        Step("v4 DNS query", "t0", IP(src=C4, dst=S4) / UDP(sport=5353, dport=53) / Raw(b"q")),
        Step("v4 DNS answer", "t1", IP(src=S4, dst=C4) / UDP(sport=53, dport=5353) / Raw(b"a")),
        Step("v4 UDP 27020", "t0", IP(src=C4, dst=S4) / UDP(sport=5354, dport=27020)),
        Step("v4 UDP 27031", "t0", IP(src=C4, dst=S4) / UDP(sport=5355, dport=27031)),
        Step("v4 UDP 5000", "t0", IP(src=C4, dst=S4) / UDP(sport=5356, dport=5000) / Raw(b"x")),
        Step("v4 port unreachable about UDP 5000", "t1",
             IP(src=S4, dst=C4) / ICMP(type=3, code=3) / IPerror(src=C4, dst=S4)
             / UDPerror(sport=5356, dport=5000) / Raw(b"x")),
        Step("v4 port unreachable about nothing", "t1",
             IP(src=S4, dst=C4) / ICMP(type=3, code=3) / IPerror(src=C4, dst=S4)
             / UDPerror(sport=5999, dport=6000)),
        Step("v4 echo request 77", "t0", IP(src=C4, dst=S4) / ICMP(type=8, id=77, seq=1)),
        Step("v4 echo reply 77", "t1", IP(src=S4, dst=C4) / ICMP(type=0, id=77, seq=1)),
        Step("v4 echo reply 78 (unasked)", "t1", IP(src=S4, dst=C4) / ICMP(type=0, id=78, seq=1)),
        *[Step(f"v4 echo request 79 seq {seq}", "t0",
               IP(src=C4, dst=S4) / ICMP(type=8, id=79, seq=seq)) for seq in range(1, 6)],
        Step("v4 unsolicited UDP to client", "t1", IP(src=S4, dst=C4) / UDP(sport=9, dport=7000)),
        Step("v4 RST for nothing", "t0", tcp4(C4, S4, 40010, 80, "R", 11000)),
        Step("v4 time exceeded about the SYN to 22", "t1",
             IP(src=S4, dst=C4) / ICMP(type=11, code=0) / IPerror(src=C4, dst=S4)
             / TCPerror(sport=40002, dport=22, seq=2000)),
        Step("v6 SYN c:41001 > s:80", "t0", tcp6(C6, S6, 41001, 80, "S", 1000)),
        Step("v6 SYN-ACK", "t1", tcp6(S6, C6, 80, 41001, "SA", 5000, 1001)),
        Step("v6 ACK", "t0", tcp6(C6, S6, 41001, 80, "A", 1001, 5001)),
        Step("v6 SYN to 22", "t0", tcp6(C6, S6, 41002, 22, "S", 2000)),
        Step("v6 SYN to 443", "t0", tcp6(C6, S6, 41003, 443, "S", 3000)),
        Step("v6 DNS query", "t0", IPv6(src=C6, dst=S6) / UDP(sport=6353, dport=53) / Raw(b"q")),
        Step("v6 DNS answer", "t1", IPv6(src=S6, dst=C6) / UDP(sport=53, dport=6353) / Raw(b"a")),
        Step("v6 UDP 27020", "t0", IPv6(src=C6, dst=S6) / UDP(sport=6354, dport=27020)),
        Step("v6 port unreachable about the DNS flow", "t1",
             IPv6(src=S6, dst=C6) / ICMPv6DestUnreach(code=4) / IPv6(src=C6, dst=S6)
             / UDP(sport=6353, dport=53) / Raw(b"q")),
        Step("v6 echo request 90", "t0", IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(id=90, seq=1)),
        Step("v6 echo reply 90", "t1", IPv6(src=S6, dst=C6) / ICMPv6EchoReply(id=90, seq=1)),
        Step("v6 SYN from x to 80", "t0", tcp6(X6, S6, 41005, 80, "S", 4500)),
        Step("v6 server-initiated SYN", "t1", tcp6(S6, C6, 51000, 22, "S", 9000)),
        Step("v6 unsolicited SYN-ACK", "t1", tcp6(S6, C6, 80, 41099, "SA", 6000, 7000)),
    ]
    return steps


# --- the rule sets, in both syntaxes ----------------------------------------------------------
CASES: dict[str, tuple[str, str]] = {
    "stateful-router": ("""
chain forward {
    policy drop
    ct state established,related accept
    ct state invalid drop
    ip saddr 10.0.0.3 reject with icmp admin-prohibited
    ip6 saddr fd00::3 reject with icmpv6 admin-prohibited
    iifname eth0 tcp dport { 22, 80 } accept
    iifname eth0 udp dport { 53, 5000, 27015-27030 } accept
    iifname eth0 icmp type echo-request accept
    iifname eth0 icmpv6 type echo-request accept
    iifname eth0 tcp dport 443 reject with tcp reset
    iifname eth0 tcp dport 8080 reject
}
""", """
table inet t {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related counter accept
        ct state invalid counter drop
        ip saddr 10.0.0.3 counter reject with icmp type admin-prohibited
        ip6 saddr fd00::3 counter reject with icmpv6 type admin-prohibited
        iifname "eth0" tcp dport { 22, 80 } counter accept
        iifname "eth0" udp dport { 53, 5000, 27015-27030 } counter accept
        iifname "eth0" icmp type echo-request counter accept
        iifname "eth0" icmpv6 type echo-request counter accept
        iifname "eth0" tcp dport 443 counter reject with tcp reset
        iifname "eth0" tcp dport 8080 counter reject with tcp reset
    }
}
"""),
    "stateless-chains-and-limits": ("""
chain forward {
    policy accept
    tcp flags syn / syn,ack jump syns
    tcp flags == syn|fin drop
    udp dport 27015-27030 goto games
    icmp type echo-request limit rate 1/minute burst 2 packets accept
    icmp type echo-request drop
    ip6 saddr fd00::3 drop
    iifname eth1 udp sport 53 reject with icmpx admin-prohibited
    oifname eth0 icmp type echo-reply drop
}
chain syns {
    ip saddr 10.0.0.3 drop
    tcp dport 443 reject with tcp reset
    tcp dport != { 22, 80 } return
    oifname eth1 accept
    drop
}
chain games {
    udp dport 27020 accept
    reject with icmpx port-unreachable
}
""", """
table inet t {
    chain forward {
        type filter hook forward priority 0; policy accept;
        tcp flags syn / syn,ack counter jump syns
        tcp flags == fin|syn counter drop
        udp dport 27015-27030 counter goto games
        icmp type echo-request limit rate 1/minute burst 2 packets counter accept
        icmp type echo-request counter drop
        ip6 saddr fd00::3 counter drop
        iifname "eth1" udp sport 53 counter reject with icmpx type admin-prohibited
        oifname "eth0" icmp type echo-reply counter drop
    }
    chain syns {
        ip saddr 10.0.0.3 counter drop
        tcp dport 443 counter reject with tcp reset
        tcp dport != { 22, 80 } counter return
        oifname "eth1" counter accept
        counter drop
    }
    chain games {
        udp dport 27020 counter accept
        counter reject with icmpx type port-unreachable
    }
}
"""),
    "reject-kinds": ("""
chain forward {
    tcp dport 22 reject with icmp host-unreachable
    tcp dport 22 reject with icmpv6 admin-prohibited
    udp dport 53 reject
    udp dport 27020 reject with icmpx no-route
    tcp dport 443 reject
    icmp type echo-request reject with icmpx host-unreachable
    icmpv6 type echo-request reject
    tcp dport 8080 drop
    ip saddr 10.0.0.3 reject with icmp net-prohibited
}
""", """
table inet t {
    chain forward {
        type filter hook forward priority 0; policy accept;
        tcp dport 22 counter reject with icmp type host-unreachable
        tcp dport 22 counter reject with icmpv6 type admin-prohibited
        udp dport 53 counter reject
        udp dport 27020 counter reject with icmpx type no-route
        tcp dport 443 counter reject with tcp reset
        icmp type echo-request counter reject with icmpx type host-unreachable
        icmpv6 type echo-request counter reject
        tcp dport 8080 counter drop
        ip saddr 10.0.0.3 counter reject with icmp type net-prohibited
    }
}
"""),
    "matches-galore": ("""
chain forward {
    policy accept
    ip saddr 10.0.0.2-10.0.0.2 udp dport 27031 drop
    ip6 nexthdr udp th dport 27020 drop
    tcp flags { syn|ack, fin|ack } oifname eth0 jump from_server
    tcp flags & (syn|ack) == ack tcp sport 80 drop
    icmpv6 type != { echo-request, echo-reply } drop
    udp sport 53 limit rate over 1/minute burst 1 packets drop
    meta nfproto ipv6 tcp dport 443 drop
    ip saddr { 10.0.0.2, 10.0.0.3 } tcp dport 8080 reject with icmp port-unreachable
    icmp type echo-request icmp code 0 ip daddr != 10.1.0.0/24 drop
    iifname "eth*" ip protocol icmp icmp type echo-reply counter
    meta l4proto != { tcp, udp, icmp, icmpv6 } drop
    th sport 5353-5356 ip daddr 10.1.0.2 accept
}
chain from_server {
    tcp sport != 80 drop
    tcp flags fin accept
}
""", """
table inet t {
    chain forward {
        type filter hook forward priority 0; policy accept;
        ip saddr 10.0.0.2-10.0.0.2 udp dport 27031 counter drop
        ip6 nexthdr udp th dport 27020 counter drop
        tcp flags { syn|ack, fin|ack } oifname "eth0" counter jump from_server
        tcp flags & (syn|ack) == ack tcp sport 80 counter drop
        icmpv6 type != { echo-request, echo-reply } counter drop
        udp sport 53 limit rate over 1/minute burst 1 packets counter drop
        meta nfproto ipv6 tcp dport 443 counter drop
        ip saddr { 10.0.0.2, 10.0.0.3 } tcp dport 8080 counter reject with icmp port-unreachable
        icmp type echo-request icmp code 0 ip daddr != 10.1.0.0/24 counter drop
        iifname "eth*" ip protocol icmp icmp type echo-reply counter
        meta l4proto != { tcp, udp, icmp, icmpv6 } counter drop
        th sport 5353-5356 ip daddr 10.1.0.2 counter accept
    }
    chain from_server {
        tcp sport != 80 counter drop
        tcp flags fin counter accept
    }
}
"""),
}


# --- comparing what comes out -------------------------------------------------------------
ND_MLD = {130, 131, 132, 133, 134, 135, 136, 137, 143}


def summarize(iface: str, frame: bytes) -> tuple[Any, ...] | None:
    """What matters of one frame the router sent (None: noise such as ARP, ND, MLD)."""
    eth = Ether(frame)
    if IP in eth:
        ip = eth[IP]
        if ip.proto == 2:
            return None
        head: tuple[Any, ...] = (iface, 4, ip.src, ip.dst, ip.ttl, ip.proto)
        if ICMP in eth:
            icmp = eth[ICMP]
            if IPerror in eth:
                inner = eth[IPerror]
                ports = (inner.payload.sport, inner.payload.dport) if inner.proto in (6, 17) \
                    else ()
                return (*head, "icmp", icmp.type, icmp.code, inner.src, inner.dst, inner.proto,
                        *ports)
            return (*head, "icmp", icmp.type, icmp.code, icmp.id, icmp.seq)
    elif IPv6 in eth:
        ip = eth[IPv6]
        if ip.nh == 0:
            return None
        head = (iface, 6, ip.src, ip.dst, ip.hlim, ip.nh)
        if ip.nh == 58:
            body = bytes(ip.payload)
            if body[0] in ND_MLD:
                return None
            if body[0] < 128:
                inner6 = IPv6(body[8:])
                ports = (inner6.payload.sport, inner6.payload.dport) if inner6.nh in (6, 17) \
                    else ()
                return (*head, "icmpv6", body[0], body[1], inner6.src, inner6.dst, inner6.nh,
                        *ports)
            return (*head, "icmpv6", body[0], body[1], body[4:8].hex())
    else:
        return None
    layer = ip.payload
    if isinstance(layer, TCP):
        return (*head, "tcp", layer.sport, layer.dport, str(layer.flags), layer.seq, layer.ack,
                bytes(layer.payload))
    if isinstance(layer, UDP):
        return (*head, "udp", layer.sport, layer.dport, bytes(layer.payload))
    return (*head, bytes(layer))


def outcome(frames: list[tuple[str, bytes]]) -> list[tuple[Any, ...]]:
    return sorted(s for s in (summarize(i, f) for i, f in frames) if s is not None)


# --- the kernel side ------------------------------------------------------------------------
def _run(*argv: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def require_kernel_tools() -> None:
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    netns.require_root("the nftables comparison needs root (network namespaces and nft)")
    if missing:
        netns.refuse(f"the nftables comparison needs {', '.join(missing)}: install the Debian "
                     "packages iproute2 and nftables (scripts/install-test-tools)")


class KernelRouter:
    """A router namespace and a tester namespace, joined by two veth pairs; no way out."""

    def __init__(self, tag: str) -> None:
        pid = os.getpid()
        self.fw = f"vnfw-r-{tag}-{pid}"
        self.tx = f"vnfw-t-{tag}-{pid}"
        self.router = Namespace(self.fw, sysctls=(
            "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
            "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
            "net.ipv4.icmp_msgs_burst=10000", "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0", "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            "net.ipv6.conf.default.router_solicitations=0"))
        self.tester = Namespace(self.tx, sysctls=("net.ipv6.conf.all.disable_ipv6=1",
                                                  "net.ipv6.conf.default.disable_ipv6=1"))

    def ns(self, name: str, *argv: str, stdin: str | None = None, check: bool = True) -> str:
        return _run(*netns.in_namespace(name, *argv), stdin=stdin, check=check)

    def create(self) -> None:
        fw, tx = self.router, self.tester
        tx.create()
        fw.create()
        for index, (ours, peer, our_mac, peer_mac, cidrs) in enumerate((
                ("eth0", "t0", OUR_MAC, PEER_MAC, ("10.0.0.1/24", "fd00::1/64")),
                ("eth1", "t1", OUR_MAC1, PEER_MAC1, ("10.1.0.1/24", "fd01::1/64")))):
            fw.add_veth(ours, peer, address=our_mac, peer_netns=tx, peer_address=peer_mac)
            for cidr in cidrs:
                fw.add_address(ours, cidr)
            fw.set_up(ours)
            tx.set_up(peer)
            neighbours = ((C4, X4, C6, X6) if index == 0 else (S4, S6))
            for address in neighbours:
                fw.ip("neigh", "replace", address, "lladdr", peer_mac, "dev", ours, "nud",
                      "permanent")
        self.check_isolated()

    def check_isolated(self) -> None:
        self.router.check_isolated(["eth0", "eth1"], prefixes=(
            "10.0.0.0/24", "fd00::/64", "10.1.0.0/24", "fd01::/64"))
        self.tester.check_isolated(["t0", "t1"], prefixes=())

    def load(self, rules: str) -> None:
        self.ns(self.fw, "nft", "-f", "-", stdin=rules)
        # conntrack exists in the namespace once a rule uses it: make it as strict as ours
        self.ns(self.fw, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0",
                check=False)

    def replay(self, steps: list[Step]) -> list[dict[str, Any]]:
        spec = {"settle": 0.3, "window": WINDOW_S,
                "steps": [{"iface": s.iface, "frame": s.frame().hex()} for s in steps]}
        out = self.ns(self.tx, sys.executable, "-I", str(REPLAY), stdin=json.dumps(spec))
        result: list[dict[str, Any]] = json.loads(out)
        return result

    def counters(self) -> dict[str, list[int]]:
        data = json.loads(self.ns(self.fw, "nft", "-j", "list", "ruleset"))
        counts: dict[str, list[int]] = {}
        for item in data["nftables"]:
            rule = item.get("rule")
            if rule is None:
                continue
            packets = next(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
            counts.setdefault(rule["chain"], []).append(packets)
        return counts

    def delete(self) -> None:
        self.router.delete()
        self.tester.delete()


@contextmanager
def kernel_router(tag: str) -> Iterator[KernelRouter]:
    router = KernelRouter(tag)
    try:
        router.create()
        yield router
    finally:
        router.delete()


# --- the vnet side --------------------------------------------------------------------------
def replay_on_vnet(rules: str, steps: list[Step],
                   times: list[int]) -> tuple[list[list[tuple[Any, ...]]], dict[str, list[int]]]:
    bench = RouterBench()
    fw = bench.use(rules)
    outcomes = []
    for step, at in zip(steps, times, strict=True):
        bench.driver.run_until(at)
        bench.stack.receive_frame(bench.stack.interface("eth0" if step.iface == "t0"
                                                        else "eth1"), step.frame())
        frames = [("t0", f) for f in bench.frames["eth0"]] + [
            ("t1", f) for f in bench.frames["eth1"]]
        bench.frames["eth0"].clear()
        bench.frames["eth1"].clear()
        outcomes.append(outcome(frames))
    counts = {name: [r.packets for r in chain.rules]
              for name, chain in fw.ruleset.chains.items()}
    return outcomes, counts


@pytest.mark.parametrize("case", list(CASES))
def test_verdicts_match_nftables_on_the_same_trace(case: str) -> None:
    require_kernel_tools()
    ours, theirs = CASES[case]
    steps = trace()
    with kernel_router(case[:6]) as router:
        router.load(theirs)
        results = router.replay(steps)
        kernel_counts = router.counters()
    kernel = [outcome([(i, bytes.fromhex(h)) for i, h in r["frames"]]) for r in results]
    vnet, vnet_counts = replay_on_vnet(ours, steps, [r["t"] for r in results])
    differences = [
        f"step {n} ({step.note}):\n    kernel: {k}\n    vnet:   {v}"
        for n, (step, k, v) in enumerate(zip(steps, kernel, vnet, strict=True), 1) if k != v]
    assert not differences, "\n".join(differences)
    assert vnet_counts == kernel_counts
    assert any(kernel), "the kernel router forwarded nothing: the bench is broken"
