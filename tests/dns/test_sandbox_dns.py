"""`vnet run`'s default firewall and DNS: queries go to the host's resolvers and nowhere
else on port 53 (firewall.grants.sandbox_dns_rules), and `--resolver` is what the guest
finds in its /etc/resolv.conf.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from firewall import parse_grant, sandbox_ruleset
from stack.wire import dns
from tests.dns.support import NS, RECORDS, WEB, lan


def query(name: str) -> bytes:
    return dns.DnsMessage(5, questions=(dns.Question(name, dns.TYPE_A),)).build()


def test_sandbox_lets_dns_reach_the_resolver_and_nothing_else_on_port_53() -> None:
    net, a, ns, web = lan()
    net.dns(ns, records=RECORDS, clients=[a])
    web.serve_dns(records=RECORDS)  # a second server on a's own network
    a.set_firewall(sandbox_ruleset(resolvers=a.resolvers))
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(query("web"), (NS, 53))
        reply = dns.parse(sock.recvfrom(2000)[0])
        assert isinstance(reply, dns.DnsMessage) and reply.answers
        with pytest.raises(OSError) as refused:  # rejected at once (admin-prohibited)
            sock.sendto(query("web"), (WEB, 53))
        assert refused.value.errno == errno.EPERM
    with a.socket() as tcp, pytest.raises(OSError) as unreachable:
        tcp.settimeout(2)
        tcp.connect((WEB, 53))
    assert unreachable.value.errno == errno.EHOSTUNREACH
    with a.socket() as tcp:  # DNS over TCP to the resolver is fine
        tcp.settimeout(2)
        tcp.connect((NS, 53))
    # ... and other ports on the network stay open, as before
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", (WEB, 5353))
    net.close()


def test_a_grant_still_opens_port_53() -> None:
    net, a, _ns, web = lan()
    web.serve_dns(records=RECORDS)
    a.set_firewall(sandbox_ruleset([parse_grant(f"udp:{WEB}:53", "out")]))
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(query("web"), (WEB, 53))
        assert isinstance(dns.parse(sock.recvfrom(2000)[0]), dns.DnsMessage)
    net.close()


def test_vnet_run_resolver_flag_reaches_the_guests_resolv_conf(
        vnet_build: Callable[..., Path]) -> None:
    wasm = vnet_build("tests/dns/c/own_resolver.c")
    proc = subprocess.run([sys.executable, "-m", "vnet", "run", "--virtual-time",
                           "--addr", "10.0.0.2/24", "--resolver", "10.0.0.53", str(wasm)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["resolver 10.0.0.53"]
    bad = subprocess.run([sys.executable, "-m", "vnet", "run", "--resolver", "ns.example",
                          str(wasm)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--resolver 'ns.example' is not an IP address" in bad.stderr
