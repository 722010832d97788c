"""The three example rule sets of the README: they parse cleanly and do what they say."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP

from firewall import Ruleset
from tests.firewall.helpers import HostBench, judge, raw

EXAMPLES = Path(__file__).with_name("examples")
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("name", ["serverless.nft", "game_server.nft", "p2p_lan.nft"])
def test_example_is_clean_and_quoted_verbatim_in_the_readme(name: str) -> None:
    text = (EXAMPLES / name).read_text()
    assert Ruleset.load(EXAMPLES / name).warnings == []
    assert f"```\n{text}```" in README.read_text()


def test_serverless_guest_calls_exactly_one_api_by_name() -> None:
    bench = HostBench()
    bench.stack.add_route("0.0.0.0/0", gateway="10.0.0.2")
    fw = bench.use(Ruleset.load(EXAMPLES / "serverless.nft"))
    api = IP(src="10.0.0.1", dst="192.0.2.10") / TCP(dport=443, flags="S")
    assert judge(bench, "output", api) == "reject"  # not resolved yet
    fw.learn("api.example.test", [raw("192.0.2.10")])
    assert judge(bench, "output", api) == "accept"
    assert judge(bench, "output", IP(src="10.0.0.1", dst="192.0.2.10")
                 / TCP(dport=80, flags="S")) == "reject"
    assert judge(bench, "output", IP(src="10.0.0.1", dst="10.0.0.2")
                 / TCP(dport=443, flags="S")) == "reject"  # not even its own LAN
    assert judge(bench, "input", IP(src="10.0.0.2", dst="10.0.0.1")
                 / TCP(dport=8080, flags="S")) == "drop"


def test_game_server_takes_udp_on_its_port_range() -> None:
    bench = HostBench()
    fw = bench.use(Ruleset.load(EXAMPLES / "game_server.nft"))
    for port, expected in ((27015, "accept"), (27030, "accept"), (27031, "drop"),
                           (27014, "drop")):
        packet = IP(src="198.51.100.9", dst="10.0.0.1") / UDP(sport=5000, dport=port)
        assert judge(bench, "input", packet) == expected, port
    assert [r.prefix for r in fw.log] == ["game-in: ", "game-in: "]
    pings = [judge(bench, "input", IP(src="10.0.0.2", dst="10.0.0.1")
                   / ICMP(type=8, id=100 + n))  # each ping a new flow
             for n in range(8)]
    assert pings == ["accept"] * 5 + ["drop"] * 3
    assert judge(bench, "input", IP(src="10.0.0.2", dst="10.0.0.1")
                 / TCP(dport=27015, flags="S")) == "drop"


def test_p2p_node_talks_inside_its_lan_and_nowhere_else() -> None:
    bench = HostBench()
    bench.stack.add_route("0.0.0.0/0", gateway="10.0.0.2")
    bench.use(Ruleset.load(EXAMPLES / "p2p_lan.nft"))
    assert judge(bench, "output", IP(src="10.0.0.1", dst="10.0.0.7")
                 / UDP(sport=4000, dport=4001)) == "accept"
    assert judge(bench, "output", IP(src="10.0.0.1", dst="224.0.0.251")
                 / UDP(sport=5353, dport=5353)) == "accept"
    assert judge(bench, "output", IP(src="10.0.0.1", dst="203.0.113.1")
                 / UDP(sport=4000, dport=4001)) == "reject"
    assert judge(bench, "input", IP(src="10.0.0.9", dst="10.0.0.1")
                 / TCP(dport=6881, flags="S")) == "accept"
    assert judge(bench, "input", IP(src="203.0.113.1", dst="10.0.0.1")
                 / TCP(dport=6881, flags="S")) == "drop"
