"""Every match expression and every action, table-driven, at every hook.

Each case is a rule, a scapy-built packet, and whether the rule matches it.
The rule goes into the base chain of the hook under test (`policy accept`,
the rule's verdict `drop`), and the packet is pushed through that hook of a
real stack the way traffic reaches it: received on eth0 (INPUT, FORWARD) or
sent by the host (OUTPUT). Addresses in rules are written as `{src}`,
`{dst}`, `{other}` and filled in per hook and family.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.packet import Raw

from firewall import Ruleset
from tests.firewall.helpers import ADDRS, HostBench, RouterBench, bench_for, endpoints, judge

HOOKS = ("input", "output", "forward")


def ip_layer(version: int, src: str, dst: str) -> Any:
    return IP(src=src, dst=dst) if version == 4 else IPv6(src=src, dst=dst)


def tcp(flags: str = "S", dport: int = 80, sport: int = 40000) -> Callable[[Any], Any]:
    return lambda l3: l3 / TCP(sport=sport, dport=dport, flags=flags, seq=1000,
                               ack=5000 if "A" in flags else 0)


def udp(dport: int = 53, sport: int = 40000) -> Callable[[Any], Any]:
    return lambda l3: l3 / UDP(sport=sport, dport=dport) / Raw(b"hello")


def echo(version_hint: int | None = None) -> Callable[[Any], Any]:
    def build(l3: Any) -> Any:
        if isinstance(l3, IP):
            return l3 / ICMP(type=8, id=7, seq=1) / Raw(b"ping")
        return l3 / ICMPv6EchoRequest(id=7, seq=1, data=b"ping")
    return build


def echo_reply() -> Callable[[Any], Any]:
    def build(l3: Any) -> Any:
        if isinstance(l3, IP):
            return l3 / ICMP(type=0, id=7, seq=1)
        return l3 / ICMPv6EchoReply(id=7, seq=1)
    return build


def igmp() -> Callable[[Any], Any]:
    def build(l3: Any) -> Any:
        l3.proto = 2
        return l3 / Raw(bytes((0x11, 0, 0xEE, 0xFF, 0, 0, 0, 0)))
    return build


# (id, rule with placeholders, families, packet builder, matches?)
CASES: list[tuple[str, str, tuple[int, ...], Callable[[Any], Any], bool]] = [
    # family
    ("nfproto-v4", "meta nfproto ipv4", (4,), udp(), True),
    ("nfproto-v4-on-v6", "meta nfproto ipv4", (6,), udp(), False),
    ("nfproto-v6", "meta nfproto ipv6", (6,), udp(), True),
    # protocols
    ("l4proto-tcp", "meta l4proto tcp", (4, 6), tcp(), True),
    ("l4proto-tcp-on-udp", "meta l4proto tcp", (4, 6), udp(), False),
    ("l4proto-set", "meta l4proto { tcp, udp }", (4, 6), udp(), True),
    ("l4proto-not", "meta l4proto != tcp", (4, 6), udp(), True),
    ("l4proto-icmp", "meta l4proto icmp", (4,), echo(), True),
    ("l4proto-icmpv6", "meta l4proto icmpv6", (6,), echo(), True),
    ("bare-udp", "udp", (4, 6), udp(), True),
    ("bare-icmp-on-v6", "icmp", (6,), echo(), False),
    ("ip-protocol", "ip protocol udp", (4,), udp(), True),
    ("ip-protocol-on-v6", "ip protocol udp", (6,), udp(), False),
    ("ip6-nexthdr", "ip6 nexthdr tcp", (6,), tcp(), True),
    ("protocol-number", "meta l4proto 17", (4, 6), udp(), True),
    # addresses
    ("saddr-exact", "saddr {src}", (4, 6), udp(), True),
    ("saddr-other", "saddr {other}", (4, 6), udp(), False),
    ("ip-saddr-prefix", "ip saddr {src4net}", (4,), udp(), True),
    ("ip6-saddr-prefix", "ip6 saddr {src6net}", (6,), udp(), True),
    ("daddr-exact", "daddr {dst}", (4, 6), udp(), True),
    ("daddr-set", "daddr { {other}, {dst} }", (4, 6), udp(), True),
    ("daddr-not", "daddr != {dst}", (4, 6), udp(), False),
    ("saddr-not-other", "saddr != {other}", (4, 6), udp(), True),
    ("ip-daddr-range", "ip daddr 10.0.0.0-10.9.255.255", (4,), udp(), True),
    ("ip-daddr-on-v6", "ip daddr 10.0.0.0/8", (6,), udp(), False),
    ("mixed-family-set", "saddr { 10.0.0.0/8, fd00::/8 }", (4, 6), udp(), True),
    # ports
    ("tcp-dport", "tcp dport 80", (4, 6), tcp(dport=80), True),
    ("tcp-dport-other", "tcp dport 81", (4, 6), tcp(dport=80), False),
    ("tcp-dport-range", "tcp dport 70-90", (4, 6), tcp(dport=80), True),
    ("tcp-dport-range-edge", "tcp dport 80-80", (4, 6), tcp(dport=80), True),
    ("tcp-dport-set", "tcp dport { 22, http, 443 }", (4, 6), tcp(dport=80), True),
    ("tcp-dport-not", "tcp dport != 80", (4, 6), tcp(dport=80), False),
    ("tcp-sport", "tcp sport 40000", (4, 6), tcp(), True),
    ("tcp-dport-on-udp", "tcp dport 53", (4, 6), udp(dport=53), False),
    ("udp-dport", "udp dport 27015-27030", (4, 6), udp(dport=27020), True),
    ("udp-dport-out", "udp dport 27015-27030", (4, 6), udp(dport=27031), False),
    ("th-dport-tcp", "th dport 80", (4, 6), tcp(dport=80), True),
    ("th-dport-udp", "th dport 53", (4, 6), udp(dport=53), True),
    # ICMP
    ("icmp-type", "icmp type echo-request", (4,), echo(), True),
    ("icmp-type-reply", "icmp type echo-reply", (4,), echo(), False),
    ("icmp-type-set", "icmp type { echo-reply, echo-request }", (4,), echo(), True),
    ("icmp-code", "icmp code 0", (4,), echo(), True),
    ("icmp-type-on-v6", "icmp type echo-request", (6,), echo(), False),
    ("icmpv6-type", "icmpv6 type echo-request", (6,), echo(), True),
    ("icmpv6-type-number", "icmpv6 type 128", (6,), echo(), True),
    ("icmpv6-type-not", "icmpv6 type != echo-request", (6,), echo(), False),
    ("igmp", "igmp", (4,), igmp(), True),
    # TCP flags
    ("flags-any-syn", "tcp flags syn", (4, 6), tcp("S"), True),
    ("flags-any-syn-on-ack", "tcp flags syn", (4, 6), tcp("A"), False),
    ("flags-any-list", "tcp flags fin,syn", (4, 6), tcp("SA"), True),
    ("flags-exact", "tcp flags == syn", (4, 6), tcp("SA"), False),
    ("flags-exact-yes", "tcp flags == syn", (4, 6), tcp("S"), True),
    ("flags-mask", "tcp flags syn / syn,ack", (4, 6), tcp("S"), True),
    ("flags-mask-synack", "tcp flags syn / syn,ack", (4, 6), tcp("SA"), False),
    ("flags-and", "tcp flags & (syn|ack) == syn|ack", (4, 6), tcp("SA"), True),
    ("flags-set", "tcp flags { syn, syn|ack }", (4, 6), tcp("SA"), True),
    ("flags-not", "tcp flags != syn", (4, 6), tcp("A"), True),
    # combinations
    ("and-all", "saddr {src} tcp dport 80 tcp flags syn", (4, 6), tcp(), True),
    ("and-one-fails", "saddr {src} tcp dport 81 tcp flags syn", (4, 6), tcp(), False),
]

IFACE_CASES: list[tuple[str, str, str, bool]] = [
    # hook, rule, matches?
    ("input", "iifname eth0", "", True),
    ("input", 'iifname "eth*"', "", True),
    ("input", "iifname != eth0", "", False),
    ("input", "iif { lo, eth1 }", "", False),
    ("forward", "iifname eth0 oifname eth1", "", True),
    ("forward", 'oifname "eth*"', "", True),
    ("forward", "oifname eth0", "", False),
    ("output", "oifname eth0", "", True),
    ("output", "meta oifname lo", "", False),
]


def fill(rule: str, hook: str, version: int) -> str:
    src, dst = endpoints(hook, version)
    return (rule.replace("{src}", src).replace("{dst}", dst)
            .replace("{other}", ADDRS[version]["other"])
            .replace("{src4net}", src.rsplit(".", 1)[0] + ".0/24" if version == 4 else "")
            .replace("{src6net}", "fd00::/16"))


def chains(hook: str, body: str, policy: str = "accept") -> str:
    return f"chain {hook} {{\n    policy {policy}\n{body}\n}}\n"


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize(("case_id", "rule", "families", "build", "matches"), CASES,
                         ids=[c[0] for c in CASES])
def test_match_expression_at_hook(hook: str, case_id: str, rule: str,
                                  families: tuple[int, ...], build: Callable[[Any], Any],
                                  matches: bool) -> None:
    for version in families:
        bench = bench_for(hook)
        text = fill(rule, hook, version)
        bench.use(chains(hook, f"    {text} drop"))
        src, dst = endpoints(hook, version)
        packet = build(ip_layer(version, src, dst))
        verdict = judge(bench, hook, packet)
        assert verdict == ("drop" if matches else "accept"), (
            f"{text!r} on IPv{version} {packet.summary()} at {hook}")
        rule_obj = next(iter(bench.firewall.ruleset.chains[hook].rules))
        assert rule_obj.packets == (1 if matches else 0)


@pytest.mark.parametrize(("hook", "rule", "_", "matches"), IFACE_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in IFACE_CASES])
def test_interface_match(hook: str, rule: str, _: str, matches: bool) -> None:
    bench = bench_for(hook)
    bench.use(chains(hook, f"    {rule} drop"))
    src, dst = endpoints(hook, 4)
    assert judge(bench, hook, udp()(IP(src=src, dst=dst))) == ("drop" if matches else "accept")


@pytest.mark.parametrize("hook", HOOKS)
def test_ct_state_new_then_established(hook: str) -> None:
    bench = bench_for(hook)
    bench.use(chains(hook, "    ct state new counter\n    ct state established drop"))
    src, dst = endpoints(hook, 4)
    first = udp(dport=5000)(IP(src=src, dst=dst))
    assert judge(bench, hook, first) == "accept"
    assert bench.firewall.ruleset.chains[hook].rules[0].packets == 1
    # the reply direction arrives at a different hook on a host; on a router it is forwarded
    if hook == "forward":
        reply = IP(src=dst, dst=src) / UDP(sport=5000, dport=40000) / Raw(b"r")
        before = bench.firewall.counters["forward.drop"]
        bench.inject(reply, "eth1")
        assert bench.firewall.counters["forward.drop"] == before + 1


@pytest.mark.parametrize("hook", HOOKS)
def test_limit_rate_matches_until_the_bucket_is_empty(hook: str) -> None:
    bench = bench_for(hook)
    bench.use(chains(hook, "    limit rate 2/second burst 1 packets accept\n    drop"))
    src, dst = endpoints(hook, 4)
    verdicts = [judge(bench, hook, udp()(IP(src=src, dst=dst))) for _ in range(5)]
    # as nft: a bucket of `burst` packets, refilled at 2/s
    assert verdicts == ["accept"] + ["drop"] * 4
    bench.advance(0.5)
    assert judge(bench, hook, udp()(IP(src=src, dst=dst))) == "accept"
    assert judge(bench, hook, udp()(IP(src=src, dst=dst))) == "drop"


def test_limit_rate_over_matches_what_exceeds() -> None:
    bench = HostBench()
    bench.use(chains("input", "    limit rate over 1/second drop"))
    src, dst = endpoints("input", 4)
    verdicts = [judge(bench, "input", udp()(IP(src=src, dst=dst))) for _ in range(7)]
    assert verdicts == ["accept"] * 5 + ["drop"] * 2  # the default burst is 5 packets


def test_limit_rate_in_bytes() -> None:
    bench = HostBench()
    bench.use(chains("input", "    limit rate 100 bytes/second accept\n    drop"))
    src, dst = endpoints("input", 4)
    packet = IP(src=src, dst=dst) / UDP(sport=1, dport=2) / Raw(b"x" * 32)  # 60 bytes
    assert [judge(bench, "input", packet) for _ in range(3)] == ["accept", "drop", "drop"]
    bench.advance(0.6)
    assert judge(bench, "input", packet) == "accept"


@pytest.mark.parametrize("hook", ("input", "output"))
def test_dynamic_sets_lan_and_local(hook: str) -> None:
    bench = bench_for(hook)
    field = "saddr" if hook == "input" else "daddr"
    bench.use(chains(hook, f"    {field} @lan drop"))
    src, dst = endpoints(hook, 4)
    assert judge(bench, hook, udp()(IP(src=src, dst=dst))) == "drop"
    outside = "192.0.2.9"
    packet = udp()(IP(src=outside, dst=dst) if hook == "input" else IP(src=src, dst=outside))
    if hook == "output":
        bench.stack.add_route("0.0.0.0/0", gateway="10.0.0.2")
    assert judge(bench, hook, packet) == "accept"
    other = "daddr" if hook == "input" else "saddr"
    bench.use(chains(hook, f"    {other} @local drop"))
    assert judge(bench, hook, udp()(IP(src=src, dst=dst))) == "drop"


def test_lan_follows_addresses_added_later() -> None:
    bench = HostBench()
    bench.use(chains("input", "    saddr @lan drop"))
    packet = udp()(IP(src="192.168.7.5", dst="10.0.0.1"))
    assert judge(bench, "input", packet) == "accept"
    bench.stack.add_address("eth0", "192.168.7.1/24")
    assert judge(bench, "input", packet) == "drop"


# --- actions -----------------------------------------------------------------------------------
@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize(("verdict", "expected"), [("accept", "accept"), ("drop", "drop"),
                                                    ("reject", "reject")])
def test_terminal_verdicts(hook: str, verdict: str, expected: str) -> None:
    bench = bench_for(hook)
    bench.use(chains(hook, f"    udp dport 53 {verdict}", policy="drop" if verdict ==
                     "accept" else "accept"))
    src, dst = endpoints(hook, 4)
    assert judge(bench, hook, udp()(IP(src=src, dst=dst))) == expected


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("policy", ["accept", "drop"])
def test_policy_decides_what_no_rule_matched(hook: str, policy: str) -> None:
    bench = bench_for(hook)
    bench.use(chains(hook, "    tcp dport 1 accept", policy=policy))
    src, dst = endpoints(hook, 6)
    assert judge(bench, hook, udp()(IPv6(src=src, dst=dst))) == policy
    chain = bench.firewall.ruleset.chains[hook]
    assert chain.policy_packets == 1 and chain.policy_bytes > 40


def test_first_match_wins_in_file_order() -> None:
    bench = HostBench()
    bench.use(chains("input", "    udp dport 53 accept\n    udp drop\n    udp dport 53 drop"))
    src, dst = endpoints("input", 4)
    assert judge(bench, "input", udp()(IP(src=src, dst=dst))) == "accept"
    rules = bench.firewall.ruleset.chains["input"].rules
    assert [r.packets for r in rules] == [1, 0, 0]


@pytest.mark.parametrize("hook", HOOKS)
def test_jump_returns_and_goto_does_not(hook: str) -> None:
    bench = bench_for(hook)
    bench.use(f"""
chain {hook} {{
    policy accept
    udp jump filter_udp
    udp dport 53 drop
    tcp goto filter_tcp
    tcp drop
}}
chain filter_udp {{
    udp dport 54 reject
    return
    udp drop
}}
chain filter_tcp {{
    tcp dport 22 drop
}}
""")
    src, dst = endpoints(hook, 4)
    assert judge(bench, hook, udp(dport=54)(IP(src=src, dst=dst))) == "reject"
    assert judge(bench, hook, udp(dport=53)(IP(src=src, dst=dst))) == "drop"  # after return
    assert judge(bench, hook, udp(dport=99)(IP(src=src, dst=dst))) == "accept"
    assert judge(bench, hook, tcp(dport=22)(IP(src=src, dst=dst))) == "drop"
    # goto: falling off filter_tcp returns from the base chain: its policy decides
    assert judge(bench, hook, tcp(dport=23)(IP(src=src, dst=dst))) == "accept"


def test_log_is_counted_marked_and_does_not_decide() -> None:
    bench = HostBench()
    fw = bench.use(chains("input", '    udp log prefix "udp in: "\n    udp dport 53 drop'))
    seen: list[Any] = []
    fw.log_sinks.append(seen.append)
    src, dst = endpoints("input", 4)
    assert judge(bench, "input", udp()(IP(src=src, dst=dst))) == "drop"
    assert judge(bench, "input", udp(dport=54)(IP(src=src, dst=dst))) == "accept"
    assert fw.counters["log"] == 2 and len(fw.log) == 2
    first = seen[0]
    assert first.prefix == "udp in: " and first.hook == "input" and first.action == "drop"
    assert "udp in: drop" in first.comment() and "<string>:3" in first.comment()
    assert first.line().startswith("udp in: IN=eth0 OUT= SRC=10.0.0.2 DST=10.0.0.1")
    assert IP(first.packet)[UDP].dport == 53
    assert seen[1].action == "accept"


def test_log_with_verdict_in_one_rule() -> None:
    bench = HostBench()
    fw = bench.use(chains("input", '    tcp dport 22 log prefix "ssh: " drop'))
    src, dst = endpoints("input", 6)
    assert judge(bench, "input", tcp(dport=22)(IPv6(src=src, dst=dst))) == "drop"
    [record] = fw.log
    assert record.action == "drop" and "SRC=fd00::2" in record.line()


def test_evaluate_from_python_without_a_stack() -> None:
    rs = Ruleset.parse(chains("input", "    tcp dport 22 drop", policy="accept"))
    syn = bytes(IP(src="10.0.0.2", dst="10.0.0.1") / TCP(dport=22, flags="S"))
    other = bytes(IP(src="10.0.0.2", dst="10.0.0.1") / TCP(dport=23, flags="S"))
    assert rs.evaluate("input", syn).action == "drop"
    assert rs.evaluate("input", other).action == "accept"
    assert rs.evaluate("output", syn).action == "accept"  # no output chain: nothing filtered
    verdict = rs.evaluate("input", syn)
    assert verdict.rule is rs.chains["input"].rules[0]
    assert "input#1" in verdict.describe()


def test_later_fragments_have_no_ports_but_follow_their_first_fragment() -> None:
    from scapy.layers.inet import fragment

    bench = RouterBench()
    fw = bench.use(chains("forward", "    udp dport 53 accept\n    udp dport 54 accept",
                          policy="drop"))
    for dport, expected in ((53, True), (99, False)):
        big = IP(src="10.0.0.2", dst="10.1.0.2", id=dport) / UDP(sport=1, dport=dport) / Raw(
            b"x" * 3000)
        for frag in fragment(big, fragsize=1400):
            bench.inject(frag)
        out = bench.sent("eth1")
        assert (len(out) == 3) == expected, dport
    assert fw.counters["forward.accept.fragment"] == 2
    assert fw.counters["forward.drop.fragment"] == 2
    # a later fragment whose first fragment never came is judged without ports
    lone = fragment(IP(src="10.0.0.2", dst="10.1.0.2", id=77) / UDP(dport=53) / Raw(
        b"y" * 3000), fragsize=1400)[1]
    bench.inject(lone)
    assert bench.sent("eth1") == []


@pytest.mark.parametrize("rule", [
    "tcp dport 22 accept", "ip saddr { 10.0.0.0/8, 192.168.0.0/16 } udp dport 53 accept",
    "icmpv6 type { echo-request, nd-neighbor-solicit } accept",
    "ct state established,related accept",
    'iifname "eth*" oifname lo drop', "tcp flags syn / syn,ack limit rate 10/second accept",
    "limit rate over 1 mbytes/second drop", 'log prefix "x: " level info drop',
    "reject with tcp reset", "reject with icmpx admin-prohibited", "jump other",
    "daddr { example.test, *.game.test, 10.0.0.1 } accept", "saddr @lan accept",
    'udp dport 53 counter accept comment "dns"', "meta l4proto != { tcp, udp } drop",
    "tcp flags == syn drop", "tcp flags & (fin|syn) == fin|syn drop", "ip6 nexthdr udp accept",
])
def test_rules_print_back_in_the_syntax_they_were_read_in(rule: str) -> None:
    text = f"chain input {{\n    {rule}\n}}\nchain other {{\n}}\n"
    rs = Ruleset.parse(text)
    printed = rs.format()
    again = Ruleset.parse(printed)
    assert again.format() == printed
    assert [r.text() for r in again.rules()] == [r.text() for r in rs.rules()]
