"""Domain-name rules: a name matches only the addresses the host's resolver gave it."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, TCP, UDP

from firewall import HostFirewall, NamePattern, NameTable, Ruleset
from tests.firewall.helpers import HostBench, judge, raw
from vnet.network import Network

S = 1_000_000_000


def test_exact_name_and_wildcard_patterns() -> None:
    pattern = NamePattern(["api.example.test", "*.game.test"])
    assert pattern.matches("api.example.test")
    assert pattern.matches("eu.game.test") and pattern.matches("a.b.game.test")
    assert not pattern.matches("game.test")  # the wildcard covers names below it only
    assert not pattern.matches("evilgame.test")
    assert not pattern.matches("www.example.test")


@pytest.mark.parametrize("bad", ["*", "a..b", "-a.test", "*.*.test", "a*.test", "10.0.0.1",
                                 "ex ample.test"])
def test_bad_name_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        NamePattern([bad])


def test_learned_addresses_expire_with_their_ttl() -> None:
    table = NameTable()
    pattern = NamePattern(["API.Example.Test."])
    table.learn("api.example.test", [raw("192.0.2.10"), raw("2001:db8::10")], now_ns=0,
                ttl_ns=60 * S)
    assert table.matches(pattern, raw("192.0.2.10"), 59 * S)
    assert table.matches(pattern, raw("2001:db8::10"), 59 * S)
    assert not table.matches(pattern, raw("192.0.2.11"), 59 * S)
    assert not table.matches(pattern, raw("192.0.2.10"), 60 * S)
    table.learn("api.example.test", [raw("192.0.2.10")], now_ns=100 * S, ttl_ns=60 * S)
    assert table.matches(pattern, raw("192.0.2.10"), 150 * S)
    assert table.expire(1000 * S) == 2 and len(table) == 0


def test_one_address_for_several_names() -> None:
    table = NameTable()
    table.learn("cdn.example.test", [raw("192.0.2.1")], 0)
    table.learn("www.other.test", [raw("192.0.2.1")], 0)
    assert table.matches(NamePattern(["*.other.test"]), raw("192.0.2.1"), 1)
    assert table.names_for(raw("192.0.2.1"), 1) == ["cdn.example.test", "www.other.test"]


def test_name_table_is_bounded() -> None:
    table = NameTable(max_entries=100)
    for i in range(1000):
        table.learn(f"h{i}.flood.test", [i.to_bytes(4, "big")], now_ns=i, ttl_ns=10 * S)
    assert len(table) == 100 and table.evicted == 900
    # the most recent answers are the ones kept
    assert table.matches(NamePattern(["*.flood.test"]), (999).to_bytes(4, "big"), 1000)
    assert not table.matches(NamePattern(["*.flood.test"]), (1).to_bytes(4, "big"), 1000)


RULES = """
chain output {
    policy drop
    ct state established,related accept
    daddr api.example.test tcp dport 443 accept
    daddr *.game.test udp dport 27015 accept
}
"""


def test_name_rule_applies_only_to_resolved_addresses() -> None:
    bench = HostBench()
    fw = bench.use(RULES)
    syn = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=443, flags="S")
    assert judge(bench, "output", syn) == "drop"  # never resolved: no way through
    fw.learn("api.example.test", [raw("10.0.0.2")])
    assert judge(bench, "output", syn) == "accept"
    other = IP(src="10.0.0.1", dst="10.0.0.3") / TCP(dport=443, flags="S")
    assert judge(bench, "output", other) == "drop"  # a different address of no resolved name
    udp_pkt = IP(src="10.0.0.1", dst="10.0.0.3") / UDP(sport=5, dport=27015)
    assert judge(bench, "output", udp_pkt) == "drop"
    fw.learn("eu.game.test", [raw("10.0.0.3")])
    assert judge(bench, "output", udp_pkt) == "accept"


def test_name_rule_stops_matching_after_ttl_but_flows_continue() -> None:
    bench = HostBench()
    fw = bench.use(RULES)
    fw.learn("api.example.test", [raw("10.0.0.2")], ttl_ns=30 * S)
    sock = bench.tcp.socket(socket.AF_INET)
    sock.connect(raw("10.0.0.2"), 443)
    [syn] = bench.sent()
    bench.inject(IP(src="10.0.0.2", dst="10.0.0.1")
                 / TCP(sport=443, dport=syn[TCP].sport, flags="SA", seq=7000,
                       ack=syn[TCP].seq + 1))
    assert sock.connect_result() == 0
    bench.sent()
    bench.advance(31)  # the answer has expired; the established flow goes on
    sock.send(memoryview(b"request"))
    [data] = bench.sent()
    assert bytes(data[TCP].payload) == b"request"
    new = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=50000, dport=443, flags="S")
    assert judge(bench, "output", new) == "drop"  # a new flow needs a fresh answer


def test_names_learned_are_per_host() -> None:
    one, two = HostBench(), HostBench()
    fw1, fw2 = one.use(RULES), two.use(RULES)
    fw1.learn("api.example.test", [raw("10.0.0.2")])
    syn = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=443, flags="S")
    assert judge(one, "output", syn) == "accept"
    assert judge(two, "output", syn) == "drop"
    assert len(fw2.ruleset.names) == 0


def test_show_lists_learned_names() -> None:
    bench = HostBench()
    fw = bench.use(RULES)
    fw.learn("api.example.test", [raw("10.0.0.2"), raw("fd00::2")])
    assert "# names learned: api.example.test=10.0.0.2, api.example.test=fd00::2" in fw.show()


@pytest.fixture
def named_net() -> Iterator[Network]:
    net = Network(virtual_time=True, seed=3)
    lan = net.segment("lan")
    net.host("guest").connect(lan, "10.0.0.1/24")
    net.host("api.example.test").connect(lan, "10.0.0.2/24")
    net.host("backdoor").connect(lan, "10.0.0.3/24")
    for name in ("api.example.test", "backdoor"):
        with net.hosts[name].socket() as probe:
            del probe
    yield net
    net.close()


def test_a_guest_reaches_the_api_it_resolved_and_nothing_else(named_net: Network) -> None:
    """The resolver integration, done by hand here: resolve, then tell the firewall."""
    guest = named_net.hosts["guest"]
    fw = HostFirewall(Ruleset.parse(RULES)).attach(guest.stack)
    servers = []
    for name in ("api.example.test", "backdoor"):
        server = named_net.hosts[name].socket()
        server.bind(("0.0.0.0", 443))
        server.listen()
        servers.append(server)

    def connect(address: str) -> str:
        with guest.socket() as sock:
            sock.settimeout(2)
            try:
                sock.connect((address, 443))
            except TimeoutError:
                return "timeout"
            except OSError as e:
                return errno.errorcode[e.errno or 0]
            return "ok"

    assert connect("10.0.0.2") == "timeout"  # not resolved yet
    addresses = named_net.resolve("api.example.test", guest)
    fw.learn("api.example.test", addresses)
    assert connect("10.0.0.2") == "ok"
    assert connect("10.0.0.3") == "timeout"  # an address it never resolved
    for server in servers:
        server.close()
