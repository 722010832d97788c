"""Rule-file NAT (`masquerade`, `snat`, `dnat`, `redirect`) against nftables in a kernel namespace.

The method of tests/firewall/test_vs_nftables.py, whose kernel router (two
veth pairs to a tester namespace, no way out) and vnet bench this reuses: a
fixed trace of frames is replayed through the kernel router loaded with nft
NAT chains and through a vnet router loaded with the same chains in vnet's
syntax; for every step, the packets that come out of either side (addresses,
ports, TTL, flags, payload, the embedded packet of ICMP errors) must be the
same, and so must each rule's packet counter. Where the kernel picks a port
at random (a second connection whose source port is taken), both sides must
pick *another* port of the same range, which the comparison normalises.

Needs root, iproute2 and nftables; fails, rather than skips, without them.
"""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPerror, UDPerror
from scapy.packet import Raw

from firewall.nat_router import PRESETS, NatRouter
from tests.firewall.helpers import RouterBench
from tests.firewall.test_vs_nftables import (
    C4,
    S4,
    X4,
    Step,
    kernel_router,
    outcome,
    replay_on_vnet,
    require_kernel_tools,
    tcp4,
)

OUT4 = "10.1.0.1"  # the router's address on the server side
CLASH = "another port"


def masquerade_trace() -> list[Step]:
    return [
        Step("SYN c:40001 > s:80", "t0", tcp4(C4, S4, 40001, 80, "S", 1000)),
        Step("SYN-ACK to the masqueraded address", "t1",
             tcp4(S4, OUT4, 80, 40001, "SA", 5000, 1001)),
        Step("ACK", "t0", tcp4(C4, S4, 40001, 80, "A", 1001, 5001)),
        Step("data", "t0", tcp4(C4, S4, 40001, 80, "PA", 1001, 5001, b"GET")),
        Step("SYN x:40001 > s:80 (source port taken)", "t0", tcp4(X4, S4, 40001, 80, "S", 2000)),
        Step("SYN x:40002 > s:80", "t0", tcp4(X4, S4, 40002, 80, "S", 2100)),
        Step("UDP c:5353 > s:53", "t0", IP(src=C4, dst=S4) / UDP(sport=5353, dport=53)
             / Raw(b"q")),
        Step("UDP answer", "t1", IP(src=S4, dst=OUT4) / UDP(sport=53, dport=5353) / Raw(b"a")),
        Step("UDP from a privileged port", "t0", IP(src=C4, dst=S4) / UDP(sport=700, dport=53)),
        Step("UDP c:5356 > s:5000", "t0", IP(src=C4, dst=S4) / UDP(sport=5356, dport=5000)
             / Raw(b"x")),
        Step("port unreachable about it", "t1",
             IP(src=S4, dst=OUT4) / ICMP(type=3, code=3) / IPerror(src=OUT4, dst=S4)
             / UDPerror(sport=5356, dport=5000) / Raw(b"x")),
        Step("echo request 77", "t0", IP(src=C4, dst=S4) / ICMP(type=8, id=77, seq=1)),
        Step("echo reply 77", "t1", IP(src=S4, dst=OUT4) / ICMP(type=0, id=77, seq=1)),
        Step("unsolicited UDP to the router", "t1", IP(src=S4, dst=OUT4)
             / UDP(sport=9, dport=7000)),
    ]


def forwarding_trace() -> list[Step]:
    return [
        Step("SYN s:50000 > router:8080 (forwarded to c:80)", "t1",
             tcp4(S4, OUT4, 50000, 8080, "S", 1000)),
        Step("SYN-ACK from c:80", "t0", tcp4(C4, S4, 80, 50000, "SA", 5000, 1001)),
        Step("ACK", "t1", tcp4(S4, OUT4, 50000, 8080, "A", 1001, 5001)),
        Step("UDP s:6000 > router:5000 (forwarded to x, same port)", "t1",
             IP(src=S4, dst=OUT4) / UDP(sport=6000, dport=5000) / Raw(b"u")),
        Step("UDP answer from x", "t0", IP(src=X4, dst=S4) / UDP(sport=5000, dport=6000)
             / Raw(b"v")),
        Step("UDP c:5353 > s:53 (snat to one port)", "t0",
             IP(src=C4, dst=S4) / UDP(sport=5353, dport=53) / Raw(b"q")),
        Step("its answer", "t1", IP(src=S4, dst=OUT4) / UDP(sport=53, dport=20000) / Raw(b"a")),
        Step("TCP c:41000 > s:53 (redirected to the router's 5353: reset)", "t0",
             tcp4(C4, S4, 41000, 53, "S", 3000)),
        Step("SYN s:50001 > router:8081 (no rule: the router resets)", "t1",
             tcp4(S4, OUT4, 50001, 8081, "S", 4000)),
    ]


CASES: dict[str, tuple[str, str, Any]] = {
    "masquerade": ("""
chain post {
    type nat hook postrouting priority srcnat
    oifname eth1 counter masquerade
}
""", """
table ip n {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "eth1" counter masquerade
    }
}
""", masquerade_trace),
    "dnat-snat-redirect": ("""
chain pre {
    type nat hook prerouting priority dstnat
    iifname eth1 tcp dport 8080 counter dnat to 10.0.0.2:80
    iifname eth1 udp dport 5000 counter dnat to 10.0.0.3
    iifname eth0 tcp dport 53 counter redirect to :5353
}
chain post {
    type nat hook postrouting priority srcnat
    oifname eth1 udp dport 53 counter snat to 10.1.0.1:20000-20000
}
""", """
table ip n {
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "eth1" tcp dport 8080 counter dnat to 10.0.0.2:80
        iifname "eth1" udp dport 5000 counter dnat to 10.0.0.3
        iifname "eth0" tcp dport 53 counter redirect to :5353
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "eth1" udp dport 53 counter snat to 10.1.0.1:20000-20000
    }
}
""", forwarding_trace),
}


def normalise(step: Step, summaries: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A second connection from a taken source port: any other port of 1024-65535 will do."""
    if "source port taken" not in step.note:
        return summaries
    out = []
    for s in summaries:
        if s[2] == OUT4 and s[6] == "tcp" and s[7] != 40001 and 1024 <= s[7] <= 65535:
            s = (*s[:7], CLASH, *s[8:])
        out.append(s)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_nat_matches_nftables_on_the_same_trace(case: str) -> None:
    require_kernel_tools()
    ours, theirs, make_trace = CASES[case]
    steps = make_trace()
    with kernel_router("nat" + case[:3]) as router:
        router.load(theirs)
        results = router.replay(steps)
        kernel_counts = router.counters()
    kernel = [normalise(step, outcome([(i, bytes.fromhex(h)) for i, h in r["frames"]]))
              for step, r in zip(steps, results, strict=True)]
    vnet_raw, vnet_counts = replay_on_vnet(ours, steps, [r["t"] for r in results])
    vnet = [normalise(step, v) for step, v in zip(steps, vnet_raw, strict=True)]
    differences = [
        f"step {n} ({step.note}):\n    kernel: {k}\n    vnet:   {v}"
        for n, (step, k, v) in enumerate(zip(steps, kernel, vnet, strict=True), 1) if k != v]
    assert not differences, "\n".join(differences)
    assert vnet_counts == kernel_counts
    translated = [s for step in kernel for s in step if OUT4 in (s[2], s[3])]
    assert translated, "the kernel translated nothing: the bench is broken"


def replay_through_preset(preset: str, steps: list[Step],
                          times: list[int]) -> list[list[tuple[Any, ...]]]:
    """The trace through a vnet router NATing eth1 with a preset (no rule file)."""
    bench = RouterBench()
    nat = NatRouter(PRESETS[preset], [bytes(map(int, OUT4.split(".")))])
    nat.attach(bench.stack, "eth1")
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
    return outcomes


def test_port_restricted_cone_translates_like_masquerade() -> None:
    """Issue 14: the preset that behaves as Linux does translates the trace exactly as
    nftables `masquerade` does (mapping, port preservation, ICMP, replies, the router's own)."""
    require_kernel_tools()
    _ours, theirs, make_trace = CASES["masquerade"]
    steps = make_trace()
    with kernel_router("natprc") as router:
        router.load(theirs)
        results = router.replay(steps)
    kernel = [normalise(step, outcome([(i, bytes.fromhex(h)) for i, h in r["frames"]]))
              for step, r in zip(steps, results, strict=True)]
    vnet = [normalise(step, v) for step, v in zip(
        steps, replay_through_preset("port-restricted-cone", steps, [r["t"] for r in results]),
        strict=True)]
    differences = [
        f"step {n} ({step.note}):\n    kernel: {k}\n    vnet:   {v}"
        for n, (step, k, v) in enumerate(zip(steps, kernel, vnet, strict=True), 1) if k != v]
    assert not differences, "\n".join(differences)
