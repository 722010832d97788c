"""DNS on the wire, end to end: a wasm guest with its OWN DNS client (tests/dns/c/
own_resolver.c, never getaddrinfo) asks the virtual DNS server on another host.

It finds the server in its /etc/resolv.conf (the synthetic /etc), resolves a
topology name and static records, gets REFUSED or NXDOMAIN where the server's
policy says so, falls back to TCP on a truncated answer, and its host's
firewall name rule learns from the answer it received. The captures are read
back with scapy and, as an independent decoder, tshark's DNS dissector.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from tests.dns.support import NS, POLICY, RECORDS, WEB, lan, listen_web
from vnet.link.capture import Capture
from vnet.testing.pcap import read_pcapng


@pytest.fixture(scope="module")
def resolver_wasm(vnet_build: Callable[..., Path]) -> Path:
    return vnet_build("tests/dns/c/own_resolver.c")


def run_resolver(wasm: Path, *args: str, seed: int = 3, firewall: str | None = None,
                 ) -> tuple[str, bytes, object]:
    net, a, ns, web = lan(seed)
    cap = Capture.in_memory(clock=net.scheduler.realtime_ns)  # a's NIC: each frame once
    a.nics["eth0"].capture(cap)
    server = net.dns(ns, records=RECORDS, policy=POLICY, clients=[a])
    if firewall is not None:
        a.set_firewall(firewall)
    with listen_web(web):
        proc = a.run(wasm, *args)
        assert proc.wait(60) == 0, proc.stdout + proc.stderr
    out = proc.stdout
    data = cap.getvalue()
    net.close()
    cap.close()
    return out, data, server


def dns_packets(pcap: bytes, iface: str) -> list[Packet]:
    """The DNS packets one NIC recorded, decoded by scapy, in order."""
    return [p.packet for p in read_pcapng(pcap)
            if p.interface == iface and p.packet.haslayer(DNS)]


def test_own_resolver_resolves_topology_name_and_static_records_on_the_wire(
        resolver_wasm: Path, tmp_path: Path) -> None:
    out, pcap, server = run_resolver(resolver_wasm, "web:a", "web:aaaa", "mail.example.test:a",
                                     "api.example.test:a", "_game._udp.example.test:srv",
                                     "example.test:mx", f"{'.'.join(reversed(WEB.split('.')))}"
                                     ".in-addr.arpa:ptr", "nothere.test:a")
    lines = out.splitlines()
    assert lines[0] == f"resolver {NS}"  # from /etc/resolv.conf
    assert f"web A {WEB} ttl=60" in lines
    assert "web AAAA fd00::80 ttl=60" in lines
    assert "mail.example.test A 192.0.2.25 ttl=120" in lines
    assert "api.example.test CNAME web" in lines  # the chain, then web's address
    assert lines[lines.index("api.example.test CNAME web") + 1] == f"web A {WEB} ttl=60"
    assert "_game._udp.example.test SRV 5 10 27015 web" in lines
    assert "example.test MX 10 mail.example.test" in lines
    assert "80.0.0.10.in-addr.arpa PTR web" in lines
    assert "nothere.test a: rcode 3" in lines  # NXDOMAIN

    # the queries and answers are on a's wire: scapy reads them back
    seen = dns_packets(pcap, "a/eth0")
    queries = [p for p in seen if p[DNS].qr == 0]
    answers = [p for p in seen if p[DNS].qr == 1]
    assert len(queries) == len(answers) == 8
    assert all(p.haslayer(UDP) and p[UDP].dport == 53 for p in queries)
    by_id = {p[DNS].id: p for p in answers}
    for query in queries:
        answer = by_id[query[DNS].id]
        assert answer[DNS].qd[0].qname == query[DNS].qd[0].qname
        assert answer[DNS].ra == 0 and answer[DNS].rd == 1  # no recursion, RD echoed
    web_answer = next(p for p in answers
                      if p[DNS].qd[0].qname == b"web." and p[DNS].qd[0].qtype == 1)
    assert web_answer[DNS].an[0].rdata == WEB and web_answer[DNS].aa == 1
    nx = next(p for p in answers if p[DNS].qd[0].qname == b"nothere.test.")
    assert nx[DNS].rcode == 3 and nx[DNS].ancount == 0 and nx[DNS].ns[0].type == 6  # SOA

    # tshark, an independent DNS decoder, agrees and finds nothing malformed
    tshark = shutil.which("tshark")
    assert tshark, "tshark is missing: run scripts/install-test-tools (scripts/test does)"
    path = tmp_path / "dns.pcapng"
    path.write_bytes(pcap)
    problems = subprocess.run([tshark, "-r", str(path), "-Y",
                               'frame.interface_name == "a/eth0" && dns && '
                               "(_ws.malformed || _ws.expert.severity >= warning)"],
                              capture_output=True, text=True, timeout=60)
    assert problems.returncode == 0 and problems.stdout.strip() == "", problems.stdout
    fields = subprocess.run([tshark, "-n", "-r", str(path), "-Y",
                             'frame.interface_name == "a/eth0" && dns.flags.response == 1',
                             "-T", "fields", "-e", "dns.qry.name", "-e", "dns.flags.rcode",
                             "-e", "dns.a", "-e", "dns.cname", "-e", "dns.srv.port",
                             "-e", "dns.mx.mail_exchange", "-e", "dns.ptr.domain_name"],
                            capture_output=True, text=True, timeout=60).stdout.splitlines()
    rows = {line.split("\t")[0]: line.split("\t") for line in fields}
    assert rows["mail.example.test"][2] == "192.0.2.25"
    assert rows["api.example.test"][2:4] == [WEB, "web"]
    assert rows["_game._udp.example.test"][4] == "27015"
    assert rows["example.test"][5] == "mail.example.test"
    assert rows["80.0.0.10.in-addr.arpa"][6] == "web"
    assert rows["nothere.test"][1] == "3"
    assert server.zone.counters["nxdomain"] == 1  # type: ignore[attr-defined]


def test_policy_refuses_or_answers_nxdomain_as_configured(resolver_wasm: Path) -> None:
    """a may not look up *.blocked.test (REFUSED) nor secret.example.test (NXDOMAIN,
    though the record exists); web, which no rule covers, gets the record."""
    out, pcap, _server = run_resolver(resolver_wasm, "x.blocked.test:a",
                                      "secret.example.test:a")
    assert "x.blocked.test a: rcode 5" in out.splitlines()
    assert "secret.example.test a: rcode 3" in out.splitlines()
    assert "192.0.2.99" not in out
    refused = [p for p in dns_packets(pcap, "a/eth0")
               if p[DNS].qr == 1 and p[DNS].qd[0].qname == b"x.blocked.test."]
    assert refused and refused[0][DNS].rcode == 5 and refused[0][DNS].ancount == 0

    net, a, ns, web = lan()
    net.dns(ns, records=RECORDS, policy=POLICY, clients=[a, web])
    proc = web.run(resolver_wasm, "secret.example.test:a", "x.blocked.test:a")
    assert proc.wait(60) == 0
    assert "secret.example.test A 192.0.2.99 ttl=60" in proc.stdout_lines
    assert "x.blocked.test a: rcode 3" in proc.stdout_lines  # no rule for web: no such name
    net.close()


def test_truncated_udp_answer_is_asked_again_over_tcp(resolver_wasm: Path) -> None:
    """1000 bytes of TXT do not fit 512: the UDP answer comes with TC and no records,
    the guest asks again over TCP (length-prefixed) and gets all five strings."""
    out, pcap, server = run_resolver(resolver_wasm, "big.example.test:txt")
    lines = out.splitlines()
    assert "big.example.test txt: truncated, asking over tcp" in lines
    assert lines.count('big.example.test TXT "' + "x" * 200 + '"') == 5
    seen = dns_packets(pcap, "a/eth0")
    udp_answer = next(p for p in seen if p.haslayer(UDP) and p[DNS].qr == 1)
    assert udp_answer[DNS].tc == 1 and udp_answer[DNS].ancount == 0
    assert len(bytes(udp_answer[UDP].payload)) <= 512
    tcp_answers = [p for p in seen if p.haslayer(TCP) and p[TCP].sport == 53]
    assert tcp_answers and tcp_answers[0][DNS].ancount == 1  # one TXT record of 5 strings
    assert tcp_answers[0][DNS].length > 1000  # the 2-byte prefix: over 512, so TCP
    assert server.zone.counters["tcp_queries"] == 1  # type: ignore[attr-defined]


def test_firewall_name_rule_learns_from_the_guests_own_dns_answer(resolver_wasm: Path) -> None:
    """a's firewall lets TCP 80 out only to `api.example.test`. The guest's own lookup of
    `web` teaches the firewall nothing about that name (its connect is rejected); its
    lookup of api.example.test (a CNAME to web) does, and the same connect goes through."""
    rules = ("chain output { policy accept; tcp dport 80 ip daddr api.example.test accept; "
             "tcp dport 80 reject }")
    out, _pcap, _server = run_resolver(resolver_wasm, "-c", "80", "web:a",
                                       "api.example.test:a", firewall=rules)
    lines = out.splitlines()
    first = lines.index(f"web A {WEB} ttl=60")
    assert lines[first + 1] == f"connect {WEB}:80 failed: Connection refused"
    second = lines.index("api.example.test CNAME web")
    assert lines[second + 1:second + 3] == [f"web A {WEB} ttl=60", f"connect {WEB}:80 ok"]


def test_same_seed_gives_the_same_capture(resolver_wasm: Path) -> None:
    first = run_resolver(resolver_wasm, "web:a", "big.example.test:txt")
    second = run_resolver(resolver_wasm, "web:a", "big.example.test:txt")
    assert first[0] == second[0] and first[1] == second[1]


def test_sdk_getaddrinfo_and_getnameinfo_ask_on_the_wire(vnet_build: Callable[..., Path],
                                                        tmp_path: Path) -> None:
    """A plain getaddrinfo/getnameinfo program: with a resolver configured its lookups
    are DNS queries in the capture (AAAA then A, PTR), /etc/hosts answers localhost and
    the host's own name without a query, NXDOMAIN is EAI_NONAME and REFUSED EAI_AGAIN;
    on a host without resolvers the same program still resolves through the host call."""
    wasm = vnet_build("tests/dns/c/sdk_lookup.c")
    net, a, ns, web = lan()
    cap = Capture.in_memory(clock=net.scheduler.realtime_ns)
    a.nics["eth0"].capture(cap)
    net.dns(ns, records=RECORDS, policy=POLICY, clients=[a])
    proc = a.run(wasm, "api.example.test", "localhost", "a", "nothere.test", "x.blocked.test",
                 "-r", WEB, "fd00::53", "10.9.9.9")
    assert proc.wait(60) == 0, proc.stderr
    assert proc.stdout_lines == [
        "api.example.test fd00::80", f"api.example.test {WEB}",
        "localhost ::1", "localhost 127.0.0.1", "a fd00::1", "a 10.0.0.1",
        "nothere.test error -2: Name or service not known",
        "x.blocked.test error -3: Temporary failure in name resolution",
        f"{WEB} getnameinfo web", f"{WEB} gethostbyaddr web",
        "fd00::53 getnameinfo ns", "fd00::53 gethostbyaddr ns",
        "10.9.9.9 getnameinfo error -2: Name or service not known",
        "10.9.9.9 gethostbyaddr Unknown host"]
    questions = [(p[DNS].qd[0].qname.decode(), p[DNS].qd[0].qtype)
                 for p in dns_packets(cap.getvalue(), "a/eth0") if p[DNS].qr == 0]
    assert questions[:2] == [("api.example.test.", 28), ("api.example.test.", 1)]
    assert ("80.0.0.10.in-addr.arpa.", 12) in questions
    assert not any(name.startswith(("localhost", "a.")) for name, _ in questions)
    # REFUSED: each type asked once (the only server refused it: no second round)
    assert [q for q in questions if q[0] == "x.blocked.test."] == [("x.blocked.test.", 28),
                                                                  ("x.blocked.test.", 1)]
    cap.close()

    other = web.run(wasm, "ns", "nothere.test")  # web has no resolver: the host call
    assert other.wait(60) == 0
    assert other.stdout_lines == ["ns fd00::53", f"ns {NS}",
                                  "nothere.test error -2: Name or service not known"]
    net.close()


def test_a_resolver_on_ipv6_is_asked_over_ipv6(resolver_wasm: Path) -> None:
    net, a, ns, _web = lan()
    cap = Capture.in_memory(clock=net.scheduler.realtime_ns)
    a.nics["eth0"].capture(cap)
    net.dns(ns, records=RECORDS)
    a.set_resolvers(["fd00::53"])
    proc = a.run(resolver_wasm, "web:a", "big.example.test:txt")  # UDP, then TCP after TC
    assert proc.wait(60) == 0, proc.stdout + proc.stderr
    assert proc.stdout_lines[:2] == ["resolver fd00::53", f"web A {WEB} ttl=60"]
    assert "big.example.test txt: truncated, asking over tcp" in proc.stdout_lines
    seen = dns_packets(cap.getvalue(), "a/eth0")
    assert seen and all(IPv6 in p and IP not in p for p in seen)
    assert any(TCP in p for p in seen) and any(UDP in p for p in seen)
    cap.close()
    net.close()
