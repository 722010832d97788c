"""The README's serverless rule set, with DNS on the wire (tests/dns/serverless_dns.nft).

With a resolver configured, a guest's lookups are DNS packets, so a rule file
must let them reach the resolver; the name rule then learns from its answers.
A guest with its own DNS client looks up api.example.test (a CNAME to web) and
connects to port 443: allowed. The same address looked up under another name
(`web`) is not, nor is DNS to any other server.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from firewall import Ruleset
from stack.wire import dns
from tests.dns.support import RECORDS, WEB, lan

RULES = Path(__file__).with_name("serverless_dns.nft")


def test_serverless_rules_allow_dns_to_the_resolver_and_the_api_by_name(
        vnet_build: Callable[..., Path]) -> None:
    wasm = vnet_build("tests/dns/c/own_resolver.c")
    rules = Ruleset.load(RULES)
    assert rules.warnings == []
    net, a, ns, web = lan()
    net.dns(ns, records=RECORDS, clients=[a])
    web.serve_dns(records=RECORDS)
    a.set_firewall(rules)
    with web.socket() as listener:
        listener.bind(("0.0.0.0", 443))
        listener.listen()
        proc = a.run(wasm, "-c", "443", "web:a", "api.example.test:a")
        assert proc.wait(60) == 0, proc.stdout + proc.stderr
    lines = proc.stdout_lines
    first = lines.index(f"web A {WEB} ttl=60")
    assert lines[first + 1] == f"connect {WEB}:443 failed: Host is unreachable"
    second = lines.index("api.example.test CNAME web")
    assert lines[second + 1:second + 3] == [f"web A {WEB} ttl=60", f"connect {WEB}:443 ok"]
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(OSError) as e:
        sock.sendto(dns.DnsMessage(1, questions=(dns.Question("web", 1),)).build(), (WEB, 53))
    assert e.value.errno == errno.EPERM
    net.close()
