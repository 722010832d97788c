"""Hostile input to the virtual DNS server and to a firewall that learns from DNS.

Garbage datagrams, compression loops, half-sent and oversized TCP frames and a
flood of idle TCP connections: the server counts and drops (or answers
FORMERR), keeps its connection table bounded, and still answers the next
real query. A forged "answer" nobody asked for teaches a firewall nothing.
"""

from __future__ import annotations

import random
import socket

from stack.wire import dns
from tests.dns.support import NS, RECORDS, WEB, lan
from vnet.dns.server import MAX_TCP_CONNECTIONS


def query(name: str, ident: int = 1) -> bytes:
    return dns.DnsMessage(ident, rd=True, questions=(dns.Question(name, dns.TYPE_A),)).build()


def test_garbage_over_udp_is_counted_and_the_server_keeps_answering() -> None:
    net, a, ns, _web = lan()
    server = net.dns(ns, records=RECORDS)
    rng = random.Random(5)
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        for _ in range(200):
            sock.sendto(bytes(rng.randrange(256) for _ in range(rng.randint(0, 80))), (NS, 53))
        loop = b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"
        sock.sendto(loop, (NS, 53))
        net.run_for(1)
        replies = []
        while True:
            try:
                replies.append(dns.parse(sock.recvfrom(2000)[0]))
            except TimeoutError:
                break
        assert replies and all(isinstance(r, dns.DnsMessage) and r.qr for r in replies)
        sock.sendto(query("web", 77), (NS, 53))
        answer = dns.parse(sock.recvfrom(2000)[0])
    assert isinstance(answer, dns.DnsMessage) and answer.id == 77
    assert answer.answers[0].data == bytes(map(int, WEB.split(".")))
    counters = server.zone.counters
    assert sum(v for k, v in counters.items() if k.startswith(("drop.", "formerr."))) > 100
    assert counters["formerr.bad_option"] >= 1  # the loop
    net.close()


def test_tcp_flood_half_frames_and_zero_length_are_bounded() -> None:
    net, a, ns, _web = lan()
    server = net.dns(ns, records=RECORDS)
    idle = []
    for _ in range(MAX_TCP_CONNECTIONS + 10):  # every one sends half a length prefix
        s = a.socket()
        s.connect((NS, 53))
        s.sendall(b"\x00")
        idle.append(s)
    net.run_for(0.5)
    assert len(server._clients) <= MAX_TCP_CONNECTIONS
    assert server.counters["tcp.closed_for_room"] >= 10
    zero = a.socket()
    zero.connect((NS, 53))
    zero.sendall(b"\x00\x00")
    zero.settimeout(2)
    assert zero.recv(10) == b""  # closed on a zero-length message
    good = a.socket()
    good.connect((NS, 53))
    q = query("web", 9)
    good.sendall(len(q).to_bytes(2, "big") + q + len(q).to_bytes(2, "big") + q)
    good.settimeout(5)
    data = b""
    while len(data) < 4 or len(data) < 2 + int.from_bytes(data[:2], "big") + 2:
        data += good.recv(4096)
    first = dns.parse(data[2:2 + int.from_bytes(data[:2], "big")])
    assert isinstance(first, dns.DnsMessage) and first.id == 9 and first.answers
    net.run_for(15)  # the idle ones time out
    assert server.counters["tcp.closed_idle"] >= 1
    for s in [*idle, zero, good]:
        s.close()
    net.close()


def test_a_forged_answer_nobody_asked_for_teaches_the_firewall_nothing() -> None:
    """web sends a's host a DNS "answer" from port 53 claiming api.example.test is
    web's address; a never asked, so its firewall's name rule still rejects."""
    net, a, ns, web = lan()
    net.dns(ns, records=RECORDS, clients=[a])
    fw = a.set_firewall("chain input { policy accept }\n"
                        "chain output { policy accept; tcp dport 80 ip daddr api.example.test "
                        "accept; tcp dport 80 reject }")
    assert fw is not None
    forged = dns.DnsMessage(1, qr=True, aa=True,
                            questions=(dns.Question("api.example.test", dns.TYPE_A),),
                            answers=(dns.Record("api.example.test", dns.TYPE_A, 1, 600,
                                                bytes(map(int, WEB.split(".")))),)).build()
    with web.socket(socket.AF_INET, socket.SOCK_DGRAM) as liar:
        liar.bind(("0.0.0.0", 53))
        for port in range(32768, 32768 + 50):
            liar.sendto(forged, ("10.0.0.1", port))
    net.run_for(0.1)
    assert fw.dns_learner.counters["dns.unsolicited"] == 50
    assert fw.ruleset.names.names_for(bytes(map(int, WEB.split("."))),
                                      net.scheduler.monotonic_ns()) == []
    net.close()
