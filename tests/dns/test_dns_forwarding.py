"""A DNS server that forwards: a home router answers its own names and passes the rest on.

    a (10.0.1.2, resolver gw) -- home -- gw (DNS: local records, forward to ns) -- wan -- ns

a's own DNS client asks gw. A name gw has is answered by gw (AA, RA clear); a
name it has not is asked of ns from gw's own address on the wan (a fresh ID
in the capture) and comes back with a's ID, RA set, AA clear; a name gw's policy
refuses is never forwarded; a silent forwarder means SERVFAIL after the timeout,
and a query without RD is not forwarded (NXDOMAIN).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from scapy.layers.dns import DNS
from scapy.layers.inet import IP

from stack.wire import dns
from tests.dns.support import RECORDS
from vnet.link.capture import Capture
from vnet.network import Host, Network
from vnet.testing.pcap import read_pcapng

NS = "203.0.113.53"


def home(forward: list[str]) -> tuple[Network, Host, Host, Capture]:
    net = Network(virtual_time=True, seed=12)
    lan, wan = net.segment("home"), net.segment("wan")
    gw = net.router("gw")
    gw.connect(lan, "10.0.1.1/24")
    gw.connect(wan, "203.0.113.1/24", ifname="wan0")
    a = net.host("a")
    a.connect(lan, "10.0.1.2/24")
    a.add_route("0.0.0.0/0", "10.0.1.1")
    ns = net.host("ns")
    ns.connect(wan, f"{NS}/24")
    ns.serve_dns(records=RECORDS)
    cap = Capture.in_memory(clock=net.scheduler.realtime_ns)
    gw.nics["wan0"].capture(cap)
    net.dns(gw, records=[{"name": "printer.home.test", "type": "A", "value": "10.0.1.9"}],
            policy=[{"clients": ["a"], "deny": ["*.blocked.test"]}], clients=[a],
            forward=forward)
    return net, a, gw, cap


def ask(a: Host, name: str, rd: bool = True, ident: int = 0x1111) -> dns.DnsMessage:
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(dns.DnsMessage(ident, rd=rd, questions=(dns.Question(name, 1),)).build(),
                    ("10.0.1.1", 53))
        reply = dns.parse(sock.recvfrom(2000)[0])
    assert isinstance(reply, dns.DnsMessage) and reply.id == ident
    return reply


def test_local_names_here_others_forwarded(vnet_build: Callable[..., Path]) -> None:
    net, a, _gw, cap = home([NS])
    local = ask(a, "printer.home.test")
    assert local.aa and not local.ra and local.answers[0].data == bytes([10, 0, 1, 9])
    forwarded = ask(a, "mail.example.test")  # a record only ns has
    assert forwarded.ra and not forwarded.aa and forwarded.rcode == 0
    assert forwarded.answers[0].data == bytes([192, 0, 2, 25])
    assert ask(a, "x.blocked.test").rcode == dns.RCODE_REFUSED  # refused, not forwarded
    assert ask(a, "nothere.test", rd=False).rcode == dns.RCODE_NXDOMAIN  # no RD: no forwarding
    nx = ask(a, "nothere.test")  # forwarded; ns says NXDOMAIN
    assert nx.rcode == dns.RCODE_NXDOMAIN and nx.ra

    wan = [p for p in read_pcapng(cap.getvalue()) if DNS in p]
    asked = [p for p in wan if p[DNS].qr == 0]
    assert [p[DNS].qd[0].qname for p in asked] == [b"mail.example.test.", b"nothere.test."]
    assert all(p[IP].src == "203.0.113.1" and p[IP].dst == NS for p in asked)
    assert all(p[DNS].id != 0x1111 for p in asked)  # gw's own IDs upstream
    cap.close()

    wasm = vnet_build("tests/dns/c/own_resolver.c")  # a guest's own client, the same way
    proc = a.run(wasm, "mail.example.test:a", "api.example.test:a")
    assert proc.wait(60) == 0, proc.stdout + proc.stderr
    assert "mail.example.test A 192.0.2.25 ttl=120" in proc.stdout_lines
    assert "api.example.test CNAME web" in proc.stdout_lines  # ns's record, through gw
    net.close()


def test_a_silent_forwarder_gives_servfail_after_the_timeout() -> None:
    net, a, _gw, _cap = home(["203.0.113.99", "203.0.113.98"])  # nobody there
    start = net.scheduler.monotonic_ns()
    reply = ask(a, "mail.example.test")
    assert reply.rcode == dns.RCODE_SERVFAIL and reply.ra
    waited = (net.scheduler.monotonic_ns() - start) / 1e9
    assert 4.0 <= waited < 4.5  # 2 s per forwarder, both tried
    net.close()
