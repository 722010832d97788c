"""Command-line grants, the `vnet run` sandbox rules, and `vnet firewall check|show`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP

from firewall import GrantError, Ruleset, parse_grant, sandbox_ruleset
from firewall.commands import FirewallConfigError, check, run_ruleset, show
from tests.firewall.helpers import HostBench, judge, raw


@pytest.mark.parametrize(("text", "direction", "action", "rule"), [
    ("tcp:10.0.0.0/8:443", "in", "allow", "saddr 10.0.0.0/8 tcp dport 443 accept"),
    ("udp:*.game.test:27015", "out", "allow", "daddr *.game.test udp dport 27015 accept"),
    ("udp:*:27015-27030", "in", "allow", "udp dport 27015-27030 accept"),
    ("tcp:[fd00::/8]:80,443", "in", "allow", "saddr fd00::/8 tcp dport { 80, 443 } accept"),
    ("any:@lan:*", "out", "allow", "daddr @lan accept"),
    ("icmp:any:echo-request", "in", "allow", "icmp type echo-request accept"),
    ("tcp:API.Example.Test:https", "out", "deny",
     "daddr api.example.test tcp dport https reject with icmpx admin-prohibited"),
    ("udp:10.1.2.3:53", "in", "deny", "saddr 10.1.2.3 udp dport 53 drop"),
    ("any:*:*", "out", "deny", "reject with icmpx admin-prohibited"),
])
def test_grant_grammar(text: str, direction: str, action: str, rule: str) -> None:
    grant = parse_grant(text, direction, action)
    assert grant.rule_text().split(' comment "')[0] == rule
    assert str(grant.rule()).startswith(rule)


@pytest.mark.parametrize(("text", "message"), [
    ("tcp:443", "expected PROTO:HOST:PORTS"),
    ("tcp:fd00::1:443", "put an IPv6 address in brackets"),
    ("sctp:*:9", "protocol 'sctp' is not one of tcp, udp, icmp, icmpv6, any"),
    ("tcp:*:443-80", "out of order"),
    ("tcp:*:99999", "out of range"),
    ("tcp:10.0.0.0/33:1", "is not an IPv4 address or prefix"),
    ("tcp:[10.0.0.1]:1", "brackets are for IPv6"),
    ("any:*:80", "protocol 'any' takes no ports"),
    ("icmp:*:echo", "is not an icmp type"),
    ("tcp:bad_host!:1", "is not an address, prefix, host name"),
])
def test_bad_grants_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(GrantError, match=message.replace("(", r"\(")):
        parse_grant(text)


def test_sandbox_reaches_its_own_network_and_nothing_else() -> None:
    bench = HostBench()
    bench.stack.add_route("0.0.0.0/0", gateway="10.0.0.2")
    bench.use(sandbox_ruleset())
    lan = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=80, flags="S")
    beyond = IP(src="10.0.0.1", dst="192.0.2.1") / TCP(dport=80, flags="S")
    assert judge(bench, "output", lan) == "accept"
    assert judge(bench, "output", beyond) == "reject"
    assert judge(bench, "input", IP(src="10.0.0.2", dst="10.0.0.1") / UDP(dport=9)) == "accept"
    assert judge(bench, "input", IP(src="192.0.2.1", dst="10.0.0.1") / UDP(dport=9)) == "drop"


def test_sandbox_grants_open_exactly_what_they_name() -> None:
    bench = HostBench()
    bench.stack.add_route("0.0.0.0/0", gateway="10.0.0.2")
    grants = [parse_grant("udp:*.game.test:27015", "out"),
              parse_grant("tcp:192.0.2.0/24:443", "in"),
              parse_grant("any:10.0.0.3:*", "out", "deny")]
    fw = bench.use(sandbox_ruleset(grants))
    fw.learn("eu.game.test", [raw("198.51.100.7")])
    game = IP(src="10.0.0.1", dst="198.51.100.7") / UDP(sport=5000, dport=27015)
    assert judge(bench, "output", game) == "accept"
    assert judge(bench, "output", IP(src="10.0.0.1", dst="198.51.100.8")
                 / UDP(sport=5000, dport=27015)) == "reject"
    assert judge(bench, "input", IP(src="192.0.2.9", dst="10.0.0.1")
                 / TCP(dport=443, flags="S")) == "accept"
    assert judge(bench, "input", IP(src="192.0.2.9", dst="10.0.0.1")
                 / TCP(dport=444, flags="S")) == "drop"
    # a deny grant wins over the LAN allowance that follows it
    assert judge(bench, "output", IP(src="10.0.0.1", dst="10.0.0.3") / UDP(dport=1)) == "reject"


def test_run_ruleset_puts_grants_first_in_a_rule_file(tmp_path: Path) -> None:
    rules = tmp_path / "fw.nft"
    rules.write_text("chain input {\n    policy drop\n    tcp dport 22 accept\n}\n")
    rs = run_ruleset(str(rules), allow=["udp:*:53"], allow_out=["tcp:*:443"])
    assert [r.text().split(" comment")[0] for r in rs.chains["input"].rules] == [
        "udp dport 53 accept", "tcp dport 22 accept"]
    assert rs.chains["output"].rules[0].text().startswith("tcp dport 443 accept")
    assert rs.chains["output"].policy == "accept"  # the file had no output chain


def test_run_ruleset_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(FirewallConfigError, match=r"^--allow-out 'tcp:443': expected"):
        run_ruleset(None, allow_out=["tcp:443"])
    bad = tmp_path / "bad.nft"
    bad.write_text("chain input {\n    tcpp accept\n    udpp accept\n}\n")
    with pytest.raises(FirewallConfigError, match=r"bad.nft:2:5: error: unknown keyword 'tcpp'.*"
                                                  r"\(and 1 more errors\)$"):
        run_ruleset(str(bad))


def test_check_reports_errors_with_carets_and_exit_status(tmp_path: Path) -> None:
    good = tmp_path / "good.nft"
    good.write_text("chain input {\n    policy drop\n    tcp dport 22 accept\n}\n")
    warn = tmp_path / "warn.nft"
    warn.write_text("chain input {\n    drop\n    tcp dport 22 accept\n}\n")
    bad = tmp_path / "bad.nft"
    bad.write_text("chain input {\n    tcp dport 80-22 accept\n}\n")
    out, err = io.StringIO(), io.StringIO()
    assert check([str(good)], out, err) == 0
    assert out.getvalue() == f"{good}: ok (1 chains, 1 rules)\n" and err.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    assert check([str(warn)], out, err) == 0
    assert check([str(warn)], out, err, strict=True) == 1
    assert "warning: this rule can never match" in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert check([str(good), str(bad)], out, err) == 2
    assert err.getvalue() == (
        f"{bad}:2:15: error: bad port '80-22': port range '80-22' is out of order (80 > 22)\n"
        "        tcp dport 80-22 accept\n"
        "                  ^^^^^\n"
        f"{bad}: 1 error\n")


def test_show_prints_what_vnet_run_would_enforce() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert show(out, err, allow_out=["udp:*.game.test:27015"]) == 0
    text = out.getvalue()
    assert text.startswith("# rules vnet run enforces (from the vnet run sandbox defaults)\n")
    assert ('    daddr *.game.test udp dport 27015 accept comment "--allow-out '
            'udp:*.game.test:27015"  # packets 0 bytes 0') in text
    assert "    policy drop  # policy counter packets 0 bytes 0" in text
    again = Ruleset.parse(text)  # what show prints is a valid rule file
    assert again.format() == run_ruleset(None, allow_out=["udp:*.game.test:27015"]).format()
    out, err = io.StringIO(), io.StringIO()
    assert show(out, err, deny=["bogus"]) == 2
    assert err.getvalue().startswith("vnet firewall show: --deny 'bogus': expected")
