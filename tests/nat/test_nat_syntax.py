"""The NAT statements of rule files: what parses, how it prints back, and the errors."""

from __future__ import annotations

import pytest

from firewall import RuleFileError, Ruleset
from firewall.nat_rules import NatSpec

GOOD = """
table inet nat {
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "wan0" tcp dport 80 dnat to 10.0.0.2:8080
        iifname wan0 udp dport 27015-27030 dnat ip to 10.0.0.3
        iifname lan0 tcp dport 53 redirect to :5353
        iifname lan0 udp dport 53 redirect to 5353
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname wan0 ip saddr 10.0.0.0/24 counter masquerade
        oifname wan1 snat to 203.0.113.1-203.0.113.4
        oifname wan2 snat ip to 198.51.100.1:20000-20999 random,persistent
        oifname wan3 masquerade to :1024-2047 fully-random
    }
}
"""


def test_nat_chains_and_statements_parse_and_print_back() -> None:
    rules = Ruleset.parse(GOOD)
    assert rules.uses_nat
    assert rules.chains["pre"].hook == "prerouting"
    assert rules.chains["post"].hook == "postrouting"
    printed = rules.format()
    for text in ("dnat to 10.0.0.2:8080", "dnat to 10.0.0.3", "redirect to :5353",
                 "masquerade", "snat to 203.0.113.1-203.0.113.4",
                 "snat to 198.51.100.1:20000-20999 random,persistent",
                 "masquerade to :1024-2047 fully-random", "type nat hook prerouting"):
        assert text in printed, printed
    again = Ruleset.parse(printed)
    assert again.format() == printed
    spec = rules.chains["post"].rules[2].nat
    assert spec == NatSpec("snat", bytes((198, 51, 100, 1)), bytes((198, 51, 100, 1)), 20000,
                           20999, ("random", "persistent"))


def test_chains_named_for_the_nat_hooks_are_nat_chains() -> None:
    rules = Ruleset.parse("chain postrouting {\n    masquerade\n}\n")
    assert rules.chains["postrouting"].hook == "postrouting"


def errors_of(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as info:
        Ruleset.parse(text, file="nat.nft")
    return [str(p) for p in info.value.errors]


@pytest.mark.parametrize(("text", "expected"), [
    ("chain prerouting {\n    snat to 1.2.3.4\n}\n",
     "nat.nft:2:5: error: snat belongs in a chain of type nat hook postrouting"),
    ("chain forward {\n    masquerade\n}\n",
     "nat.nft:2:5: error: masquerade belongs in a chain of type nat hook postrouting"),
    ("chain postrouting {\n    dnat to 10.0.0.2\n}\n",
     "nat.nft:2:5: error: dnat belongs in a chain of type nat hook prerouting"),
    ("chain postrouting {\n    snat\n}\n", "nat.nft:2:5: error: snat needs an address"),
    ("chain postrouting {\n    snat to 1.2.3\n}\n",
     "nat.nft:2:13: error: '1.2.3' is not an IPv4 address or range"),
    ("chain postrouting {\n    snat to 1.2.3.9-1.2.3.1\n}\n", "runs backwards"),
    ("chain postrouting {\n    snat to 1.2.3.4:0\n}\n", "port range '0': 1-65535"),
    ("chain postrouting {\n    snat to 1.2.3.4:9-8\n}\n", "port range '9-8'"),
    ("chain prerouting {\n    dnat ip6 to fd00::2\n}\n",
     "nat.nft:2:10: error: dnat ip6: IPv6 NAT (NAT66) is not supported"),
    ("chain postrouting {\n    masquerade to 1.2.3.4\n}\n",
     "masquerade takes a port only"),
    ("chain c {\n    type nat hook input priority 0\n}\n",
     "nat.nft:2:19: error: a nat chain's hook is prerouting or postrouting, not 'input'"),
    ("chain c {\n    type filter hook postrouting priority 0\n}\n",
     "a filter chain's hook is input or output or forward, not 'postrouting'"),
    ("chain c {\n    type route hook output\n}\n", "chains are 'type filter' or 'type nat'"),
    ("chain postrouting {\n    masquerade accept\n}\n",
     "nothing but a comment may follow the verdict 'masquerade'"),
])
def test_bad_nat_statements_name_file_line_and_reason(text: str, expected: str) -> None:
    errors = errors_of(text)
    assert any(e.startswith(expected) or expected in e for e in errors), errors


def test_a_nat_rule_logs_and_the_firewall_shows_its_connections() -> None:
    from vnet.network import AF_INET, SOCK_DGRAM, Network

    net = Network(virtual_time=True, seed=1)
    lan, wan = net.segment("lan"), net.segment("wan")
    r = net.router("r")
    r.connect(lan, "10.0.0.1/24")
    r.connect(wan, "203.0.113.1/24")
    a = net.host("a")
    a.connect(lan, "10.0.0.2/24")
    a.add_route("0.0.0.0/0", "10.0.0.1")
    s = net.host("s")
    s.connect(wan, "203.0.113.10/24")
    firewall = r.set_firewall('chain postrouting {\n'
                              '    oifname eth1 log prefix "nat: " masquerade\n}\n')
    assert firewall is not None
    with s.socket(AF_INET, SOCK_DGRAM) as server, a.socket(AF_INET, SOCK_DGRAM) as client:
        server.bind(("203.0.113.10", 9))
        server.settimeout(1)
        for _ in range(3):
            client.sendto(b"x", ("203.0.113.10", 9))
            assert server.recvfrom(10)[1][0] == "203.0.113.1"
    [record] = firewall.log  # the nat chain sees a connection's first packet only
    assert record.hook == "postrouting" and record.prefix == "nat: "
    assert record.action == "masquerade" and record.oif == "eth1"
    assert "# nat: 1 connections (masquerade 1)" in firewall.show()
    net.close()
