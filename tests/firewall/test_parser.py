"""The rule-file format: what it accepts, and the errors and warnings it gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from firewall import Rule, RuleFileError, Ruleset
from firewall.parser import parse_file


def errors_of(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as info:
        Ruleset.parse(text, file="rules.nft")
    return [str(p) for p in info.value.errors]


def warnings_of(text: str) -> list[str]:
    return [str(w) for w in Ruleset.parse(text, file="rules.nft").warnings]


def test_a_full_file_with_comments_defines_and_nft_trappings() -> None:
    rs = Ruleset.parse("""
flush ruleset
# services we offer
define services = { ssh, http, 443 }
define lan = 10.0.0.0/8
table inet filter {
    chain in {
        type filter hook input priority 0; policy drop;
        ct state established,related accept   # replies
        ip saddr $lan tcp dport $services counter packets 12 bytes 3400 accept
        udp dport { 27015-27030,
                    27040 } accept
    }
    chain output { policy accept; }
}
""")
    chain = rs.chains["in"]
    assert chain.hook == "input" and chain.policy == "drop" and len(chain.rules) == 3
    assert str(chain.rules[1]) == "ip saddr 10.0.0.0/8 tcp dport { ssh, http, 443 } accept"
    assert rs.warnings == []


def test_statements_separated_by_semicolons_and_backslash_continuation() -> None:
    rs = Ruleset.parse("chain input { policy drop; tcp dport 22 accept; udp \\\n dport 53 "
                       "accept }")
    assert [str(r) for r in rs.chains["input"].rules] == ["tcp dport 22 accept",
                                                          "udp dport 53 accept"]


def test_include_is_relative_to_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "a.rules").write_text("chain input {\n    tcp dport 22 accept\n}\n")
    (tmp_path / "parts" / "b.rules").write_text("chain input {\n    tcp dport 80 accept\n}\n")
    (tmp_path / "main.nft").write_text('include "parts/*.rules"\nchain input {\n'
                                       "    policy drop\n}\n")
    rs = parse_file(tmp_path / "main.nft")
    assert [str(r) for r in rs.chains["input"].rules] == ["tcp dport 22 accept",
                                                          "tcp dport 80 accept"]
    location = rs.chains["input"].rules[1].location
    assert location is not None and location.file.endswith("b.rules")
    assert rs.chains["input"].policy == "drop"


def test_include_errors(tmp_path: Path) -> None:
    (tmp_path / "loop.nft").write_text('include "loop.nft"\n')
    with pytest.raises(RuleFileError, match="include loop"):
        parse_file(tmp_path / "loop.nft")
    (tmp_path / "missing.nft").write_text('\n  include "nope.rules"\n')
    with pytest.raises(RuleFileError) as info:
        parse_file(tmp_path / "missing.nft")
    assert str(info.value).startswith(f"{tmp_path / 'missing.nft'}:2:11: error: cannot include")
    with pytest.raises(RuleFileError, match="no such file"):
        parse_file(tmp_path / "absent.nft")


def test_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "bad.rules").write_text("chain input {\n    tcp dprt 22 accept\n}\n")
    (tmp_path / "main.nft").write_text('include "bad.rules"\n')
    with pytest.raises(RuleFileError) as info:
        parse_file(tmp_path / "main.nft")
    assert str(info.value.errors[0]).startswith(f"{tmp_path / 'bad.rules'}:2:9: error: unknown "
                                                "tcp field 'dprt' (fields: sport, dport, flags) "
                                                "(did you mean 'dport'?)")


@pytest.mark.parametrize(("text", "expected"), [
    # syntax errors
    ("chain input {\n    tcp dport 22 accept\n", "rules.nft:1:7: error: chain input is not "
     "closed: missing '}'"),
    ("chain input {\n    tcp dport { 22, 80 accept\n}\n", "rules.nft:2:24: error: expected ',' "
     "or '}' between set elements, found 'accept'"),
    ('chain input {\n    log prefix "oops drop\n}\n', "rules.nft:2:16: error: unterminated "
     "string"),
    ("chain input {\n    tcp dport 22 accept drop\n}\n", "rules.nft:2:25: error: nothing but "
     "a comment may follow the verdict 'accept'"),
    ("tcp dport 22 accept\n", "rules.nft:1:1: error: a rule must be inside a chain"),
    ("chain input {\n    tcp dport 22 accept\n}\n}\n", "rules.nft:4:1: error: unexpected '}'"),
    ("chain input {\n    tcp dport 22 % accept\n}\n", "rules.nft:2:18: error: unexpected "
     "character '%'"),
    # unknown keywords
    ("chian input {\n}\n", "rules.nft:1:1: error: unknown keyword 'chian' (did you mean "
     "'chain'?)"),
    ("chain input {\n    tcpp dport 22 accept\n}\n", "rules.nft:2:5: error: unknown keyword "
     "'tcpp' (did you mean 'tcp'?)"),
    ("chain input {\n    ct stat new accept\n}\n", "rules.nft:2:8: error: unknown ct field "
     "'stat' (fields: state) (did you mean 'state'?)"),
    ("chain input {\n    ct state neww accept\n}\n", "rules.nft:2:14: error: unknown "
     "connection state 'neww'"),
    ("chain input {\n    icmp type echo-requets accept\n}\n", "rules.nft:2:15: error: unknown "
     "icmp type 'echo-requets' (did you mean 'echo-request'?)"),
    ("chain input {\n    tcp flags syn,akc drop\n}\n", "rules.nft:2:19: error: unknown tcp flag "
     "'akc'"),
    ("chain input {\n    reject with icmp port-unreach\n}\n", "rules.nft:2:22: error: unknown "
     "icmp reject code 'port-unreach'"),
    ("chain input {\n    policy reject\n}\n", "rules.nft:2:12: error: a policy is accept or "
     "drop, not 'reject' (end the chain with a 'reject' rule to reject the rest)"),
    ("chain mine {\n    policy drop\n}\n", "rules.nft:2:5: error: chain 'mine' has no hook"),
    ("chain input {\n    jump nowhere\n}\n", "rules.nft:2:5: error: jump to unknown chain "
     "'nowhere'"),
    ("chain input {\n    tcp dport $web accept\n}\n", "rules.nft:2:15: error: undefined "
     "variable $web"),
    ("chain input {\n    limit rate 10/fortnight accept\n}\n", "rules.nft:2:16: error: unknown "
     "rate unit 'fortnight'"),
    # impossible values
    ("chain input {\n    ip saddr 10.0.0.0/33 accept\n}\n", "rules.nft:2:14: error: bad "
     "address '10.0.0.0/33': prefix length /33 is impossible for IPv4 (at most /32)"),
    ("chain input {\n    ip6 daddr fd00::/129 accept\n}\n", "rules.nft:2:15: error: bad address "
     "'fd00::/129': prefix length /129 is impossible for IPv6 (at most /128)"),
    ("chain input {\n    ip saddr 10.0.0.300 accept\n}\n", "rules.nft:2:14: error: bad address "
     "'10.0.0.300': '10.0.0.300' is not an IPv4 or IPv6 address"),
    ("chain input {\n    ip saddr fd00::1 accept\n}\n", "rules.nft:2:5: error: ip saddr matches "
     "IPv4, but the value holds IPv6 addresses"),
    ("chain input {\n    tcp dport 443-80 accept\n}\n", "rules.nft:2:15: error: bad port "
     "'443-80': port range '443-80' is out of order (443 > 80)"),
    ("chain input {\n    udp dport 70000 accept\n}\n", "rules.nft:2:15: error: bad port '70000'"
     ": port 70000 is out of range (0-65535)"),
    ("chain input {\n    ip saddr 10.0.0.9-10.0.0.1 accept\n}\n", "rules.nft:2:14: error: bad "
     "address '10.0.0.9-10.0.0.1': range '10.0.0.9-10.0.0.1' is backwards"),
    ("chain input {\n    limit rate 0/second accept\n}\n", "rules.nft:2:16: error: a rate of 0"),
    # structure
    ("chain a {\n    jump b\n}\nchain b {\n    jump a\n}\nchain input {\n    jump a\n}\n",
     "error: jump loop: a -> b -> a"),
    ("chain input {\n    jump forward\n}\nchain forward {\n}\n", "rules.nft:2:5: error: cannot "
     "jump to base chain 'forward'"),
])
def test_bad_rule_files_give_file_line_column_and_reason(text: str, expected: str) -> None:
    errors = errors_of(text)
    assert any(e.startswith(expected) or expected in e for e in errors), errors


def test_every_error_is_reported_not_only_the_first() -> None:
    errors = errors_of("chain input {\n    tcpp accept\n    udp dport 99999 accept\n"
                       "    tcp dport 22 accept\n    bogus\n}\n")
    assert [e.split(": error")[0] for e in errors] == ["rules.nft:2:5", "rules.nft:3:15",
                                                        "rules.nft:5:5"]


def test_error_renders_with_the_source_line_and_a_caret() -> None:
    with pytest.raises(RuleFileError) as info:
        Ruleset.parse("chain input {\n    tcp dport 443-80 accept\n}\n", file="r.nft")
    assert info.value.render() == (
        "r.nft:2:15: error: bad port '443-80': port range '443-80' is out of order (443 > 80)\n"
        "        tcp dport 443-80 accept\n"
        "                  ^^^^^^")


@pytest.mark.parametrize(("text", "expected"), [
    ("chain input {\n    ip saddr 10.0.0.0/8 ip6 daddr ::1 accept\n}\n",
     "rules.nft:2:5: warning: this rule can never match: it asks for both IPv4 and IPv6"),
    ("chain input {\n    tcp dport 80 udp sport 53 accept\n}\n",
     "rules.nft:2:18: warning: this rule can never match: 'udp' contradicts the protocol"),
    ("chain input {\n    meta l4proto udp icmp type echo-request accept\n}\n",
     "rules.nft:2:22: warning: this rule can never match: 'icmp' contradicts"),
    ("chain input {\n    tcp dport 22 tcp dport 80 accept\n}\n",
     "rules.nft:2:18: warning: this rule can never match: 'tcp dport 80' and 'tcp dport 22'"),
    ("chain input {\n    ip saddr 10.0.0.0/8 ip saddr 192.168.0.0/16 accept\n}\n",
     "warning: this rule can never match: 'ip saddr 192.168.0.0/16' and 'ip saddr 10.0.0.0/8'"),
    ("chain input {\n    ct state new ct state established accept\n}\n",
     "warning: this rule can never match"),
    ("chain input {\n    oifname eth0 accept\n}\n",
     "rules.nft:2:5: warning: this rule can never match: 'oifname eth0' never holds in the "
     "input hook"),
    ("chain output {\n    iifname eth0 accept\n}\n", "never holds in the output hook"),
    ("chain input {\n    drop\n    tcp dport 22 accept\n}\n",
     "rules.nft:3:5: warning: this rule can never match: the rule at line 2 decides every "
     "packet first"),
    ("chain input {\n    tcp flags & syn == syn,ack drop\n}\n",
     "warning: this rule can never match: the flag value has bits outside its mask"),
    ("chain input {\n    tcp dport 22 accept\n    tcp dport 22 accept\n}\n",
     "rules.nft:3:5: warning: duplicate rule (same as line 2)"),
    ("chain input {\n    ip saddr 10.0.0.1/8 accept\n}\n",
     "rules.nft:2:14: warning: 10.0.0.1/8 has host bits set; it means 10.0.0.0/8"),
    ("chain input {\n}\nchain orphan {\n    accept\n}\n",
     "rules.nft:3:7: warning: chain 'orphan' is never used"),
    ("chain input {\n    icmp type echo-request reject with icmpv6 admin-prohibited\n}\n",
     "warning: this rule can never match: it asks for both IPv4 and IPv6"),
])
def test_rules_that_can_never_match_give_warnings(text: str, expected: str) -> None:
    warnings = warnings_of(text)
    assert any(w.startswith(expected) or expected in w for w in warnings), warnings


def test_a_clean_file_has_no_warnings() -> None:
    assert warnings_of("chain input {\n    policy drop\n    ct state established accept\n"
                       "    tcp dport { 22, 80 } accept\n    jump mine\n}\n"
                       "chain mine {\n    udp dport 53 accept\n}\n") == []


def test_single_rules_from_text_and_from_python_agree() -> None:
    texts = {
        "udp dport 27015-27030 accept": Rule.build(proto="udp", dport="27015-27030"),
        "daddr api.example.test tcp dport 443 accept": Rule.build(
            proto="tcp", daddr="api.example.test", dport=443),
        "ip saddr 10.0.0.0/8 drop": Rule.build(family=4, saddr="10.0.0.0/8", action="drop"),
        "icmpv6 type echo-request limit rate 5/second accept": Rule.build(
            proto="icmpv6", icmp_type="echo-request", limit="5/second"),
        "ct state established,related accept": Rule.build(ct_state="established,related"),
        'tcp dport 22 log prefix "ssh: " reject with tcp reset': Rule.build(
            proto="tcp", dport=22, log="ssh: ", action="reject", reject_with="tcp reset"),
        "iifname eth0 jump mine": Rule.build(iif="eth0", action="jump mine"),
    }
    for text, built in texts.items():
        assert built.text() == Rule.parse(text).text() == text


def test_addresses_from_netaddr_and_ipaddress() -> None:
    import ipaddress

    import netaddr

    ipset = netaddr.IPSet(["10.0.0.0/24", "10.0.2.0/24"])
    rule = Rule.build(saddr=ipset, action="drop")
    rs = Ruleset()
    rs.chain("input").append(rule)
    from scapy.layers.inet import IP, UDP

    assert rs.evaluate("input", bytes(IP(src="10.0.2.7", dst="1.1.1.1") / UDP())).action == "drop"
    assert rs.evaluate("input", bytes(IP(src="10.0.1.7", dst="1.1.1.1") / UDP())).action == (
        "accept")
    rule2 = Rule.build(daddr=[ipaddress.ip_network("fd00::/8")], action="drop")
    assert str(rule2) == "daddr fd00::/8 drop"
    expr = rule.exprs[0]
    assert expr.value.addresses.to_ipset() == ipset  # type: ignore[attr-defined]


def test_rules_built_in_python_are_checked() -> None:
    from firewall import RuleBuildError

    with pytest.raises(RuleBuildError, match="out of order"):
        Rule.build(proto="tcp", dport="90-80")
    with pytest.raises(RuleBuildError, match="unknown protocol"):
        Rule.build(proto="tcpp")
    rs = Ruleset()
    rs.chain("input", policy="drop").append("jump missing")
    with pytest.raises(RuleBuildError, match="unknown chain 'missing'"):
        rs.link()
    with pytest.raises(RuleBuildError, match="accept or drop"):
        rs.chain("output", policy="reject")
