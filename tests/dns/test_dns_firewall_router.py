"""A router's firewall learns names from the DNS answers it forwards, over UDP and TCP.

    a (10.0.1.2) -- home -- gw (NAT out of wan0; forward rule by name) -- wan -- ns (DNS)
                                                                              web (:80)

gw lets TCP 80 through only to `api.example.test`. The guest on a (its own DNS
client, tests/dns/c/own_resolver.c) asks ns, through gw, for `web` first (its
connect is rejected: gw learned no name the rule covers), then for
api.example.test, a CNAME to web, after which the same connect goes through:
gw learned the name from the answer it forwarded back in through its NAT.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.dns.support import RECORDS
from vnet.network import Network

NS, WEB = "203.0.113.53", "203.0.113.80"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_router_learns_from_forwarded_answers(vnet_build: Callable[..., Path],
                                              transport: str) -> None:
    wasm = vnet_build("tests/dns/c/own_resolver.c")
    net = Network(virtual_time=True, seed=8)
    home, wan = net.segment("home"), net.segment("wan")
    gw = net.router("gw")
    gw.connect(home, "10.0.1.1/24")
    gw.connect(wan, "203.0.113.1/24", ifname="wan0")
    gw.nat("wan0", "port-restricted-cone")
    fw = gw.set_firewall("chain forward { policy accept; tcp dport 80 ip daddr "
                         "api.example.test accept; tcp dport 80 reject }")
    assert fw is not None
    a = net.host("a")
    a.connect(home, "10.0.1.2/24")
    a.add_route("0.0.0.0/0", "10.0.1.1")
    ns = net.host("ns")
    ns.connect(wan, f"{NS}/24")
    web = net.host("web")
    web.connect(wan, f"{WEB}/24")
    net.dns(ns, records=RECORDS)
    a.set_resolvers([NS])
    with web.socket() as listener:
        listener.bind(("0.0.0.0", 80))
        listener.listen()
        args = ["-t"] if transport == "tcp" else []
        proc = a.run(wasm, *args, "-c", "80", "web:a", "api.example.test:a")
        assert proc.wait(60) == 0, proc.stdout + proc.stderr
    lines = proc.stdout_lines
    first = lines.index(f"web A {WEB} ttl=60")
    assert lines[first + 1] == f"connect {WEB}:80 failed: Connection refused"
    second = lines.index("api.example.test CNAME web")
    assert lines[second + 1:second + 3] == [f"web A {WEB} ttl=60", f"connect {WEB}:80 ok"]
    now = net.scheduler.monotonic_ns()
    assert fw.ruleset.names.names_for(bytes(map(int, WEB.split("."))), now) == [
        "api.example.test", "web"]
    assert fw.dns_learner.counters["dns.learned"] == 2
    net.close()
