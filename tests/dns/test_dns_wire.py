"""The DNS codec (stack/wire/dns.py) and the server's answering rules (vnet/dns/zone.py).

Codec: build → parse gives the same message, names are compressed, and every
malformed input is a WireError (never an exception): pointer loops, forward
pointers, over-long names and labels, reserved label types, counts the
buffer cannot hold. Zone: NXDOMAIN vs NODATA with the SOA, CNAME chains, EDNS0
sizes and truncation, FORMERR/NOTIMP/REFUSED, policy per client.
"""

from __future__ import annotations

import random

import pytest

from stack.wire import dns
from stack.wire.errors import WireError
from vnet.dns import policy_from, records_from
from vnet.dns.zone import Client, DnsZone

A = dns.TYPE_A


def message() -> dns.DnsMessage:
    return dns.DnsMessage(
        id=0x1234, qr=True, aa=True, rd=True, questions=(dns.Question("www.example.test", A),),
        answers=(dns.Record("www.example.test", dns.TYPE_CNAME, 1, 60, "web.example.test"),
                 dns.Record("web.example.test", A, 1, 60, bytes([10, 0, 0, 80])),
                 dns.Record("web.example.test", dns.TYPE_AAAA, 1, 60, bytes(15) + b"\x01"),
                 dns.Record("example.test", dns.TYPE_TXT, 1, 5, (b"v=1", b"a b\x00")),
                 dns.Record("_s._udp.example.test", dns.TYPE_SRV, 1, 5, (1, 2, 53, "ns.test")),
                 dns.Record("example.test", dns.TYPE_MX, 1, 5, (10, "mail.example.test")),
                 dns.Record("1.0.0.10.in-addr.arpa", dns.TYPE_PTR, 1, 5, "a\\.b.test")),
        authorities=(dns.Record("", dns.TYPE_SOA, 1, 30,
                                ("ns", "hostmaster.ns", 1, 2, 3, 4, 5)),),
        additionals=(dns.Record("", dns.TYPE_OPT, 1232, 0, b"\x00\x0a\x00\x02ab"),))


def test_build_then_parse_gives_the_same_message_with_names_compressed() -> None:
    m = message()
    wire = m.build()
    assert dns.parse(wire) == m
    assert wire.count(b"\x07example\x04test") == 1  # every later mention is a pointer
    assert m.build(limit=len(wire)) == wire


def test_an_answer_over_the_limit_is_cut_to_the_question_with_tc() -> None:
    cut = dns.parse(message().build(limit=100))
    assert isinstance(cut, dns.DnsMessage)
    assert cut.tc and cut.answers == () and cut.questions == message().questions
    assert cut.opt is not None  # EDNS0 stays, so the client learns the server's size


@pytest.mark.parametrize(("wire", "reason"), [
    (b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
     WireError.BAD_OPTION),  # a pointer to itself: the loop
    (b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\xc0\x0c\x00\x01\x00\x01",
     WireError.BAD_OPTION),  # to the start of its own name
    (b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x20\x00\x01\x00\x01" + bytes(20),
     WireError.BAD_OPTION),  # forward
    (b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x41a\x00\x00\x01\x00\x01",
     WireError.BAD_OPTION),  # label type 0x40
    (b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x3f" + b"a" * 63 + b"\x00",
     WireError.TRUNCATED),  # question without type and class
    (b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + (b"\x3f" + b"a" * 63) * 4
     + b"\x00\x00\x01\x00\x01", WireError.BAD_LENGTH),  # 257 bytes of name
    (b"\x00\x01\x01\x00\xff\xff\xff\xff\x00\x00\x00\x00\x00", WireError.TRUNCATED),
    (b"\x00\x01\x81\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00"
     b"\x00\x05\x01\x02\x03\x04\x05", WireError.BAD_LENGTH),  # an A record of 5 bytes
    (b"\x00\x01", WireError.TRUNCATED),
])
def test_malformed_messages_are_errors_not_exceptions(wire: bytes, reason: WireError) -> None:
    assert dns.parse(wire) is reason


def test_random_mutations_never_raise() -> None:
    wire = message().build()
    rng = random.Random(7)
    for _ in range(3000):
        data = bytearray(wire)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[:rng.randint(0, len(data))]
        parsed = dns.parse(bytes(data))
        assert isinstance(parsed, (dns.DnsMessage, WireError))


def test_reverse_names() -> None:
    assert dns.reverse_name(bytes([192, 0, 2, 1])) == "1.2.0.192.in-addr.arpa"
    assert dns.reverse_name(bytes.fromhex("20010db8" + "0" * 23 + "1")) == (
        "1." + "0." * 23 + "8.b.d.0.1.0.0.2.ip6.arpa")


def zone() -> DnsZone:
    hosts = {"web": [bytes([10, 0, 0, 80]), bytes(15) + b"\x80"]}
    return DnsZone("ns", host_addresses=lambda n: hosts.get(n, []),
                   address_owner=lambda a: "web" if a in hosts["web"] else None,
                   records=records_from([
                       {"name": "api.example.test", "type": "CNAME", "value": "web"},
                       {"name": "loop1.test", "type": "CNAME", "value": "loop2.test"},
                       {"name": "loop2.test", "type": "CNAME", "value": "loop1.test"},
                       {"name": "_sip._udp.example.test", "type": "SRV",
                        "value": "1 1 5060 web"}]),
                   policy=policy_from([{"clients": ["10.9.0.0/16"], "allow": ["web"],
                                        "action": "nxdomain"}]))


def ask(z: DnsZone, name: str, qtype: int = A, client: bytes = b"\x0a\x00\x00\x01",
        **flags: object) -> dns.DnsMessage:
    query = dns.DnsMessage(99, rd=True, questions=(dns.Question(name, qtype),), **flags)
    reply = dns.parse(z.answer(query.build(), Client(client)) or b"")
    assert isinstance(reply, dns.DnsMessage)
    return reply


def test_nxdomain_nodata_and_empty_non_terminals_carry_the_soa() -> None:
    z = zone()
    nx = ask(z, "nope.test")
    assert nx.rcode == dns.RCODE_NXDOMAIN and nx.authorities[0].rtype == dns.TYPE_SOA
    nodata = ask(z, "web", dns.TYPE_TXT)
    assert nodata.rcode == 0 and nodata.answers == () and nodata.authorities[0].rtype == 6
    ent = ask(z, "_udp.example.test")  # exists as a parent of _sip._udp...
    assert ent.rcode == 0 and ent.answers == () and ent.authorities
    assert nx.aa and not nx.ra and nx.rd


def test_cname_chain_and_loop() -> None:
    z = zone()
    reply = ask(z, "API.example.test")  # case-insensitive, the question's case kept
    assert [r.rtype for r in reply.answers] == [dns.TYPE_CNAME, A]
    assert reply.questions[0].name == "API.example.test"
    assert ask(z, "loop1.test").rcode == dns.RCODE_SERVFAIL


def test_ptr_for_topology_addresses() -> None:
    reply = ask(zone(), dns.reverse_name(bytes(15) + b"\x80"), dns.TYPE_PTR)
    assert reply.answers[0].data == "web"


def test_bad_queries_get_formerr_notimp_refused_and_responses_nothing() -> None:
    z = zone()
    client = Client(b"\x0a\x00\x00\x01")
    two = dns.DnsMessage(1, questions=(dns.Question("a", A), dns.Question("b", A))).build()
    assert dns.parse(z.answer(two, client) or b"").rcode == dns.RCODE_FORMERR  # type: ignore[union-attr]
    loop = b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"
    formerr = dns.parse(z.answer(loop, client) or b"")
    assert isinstance(formerr, dns.DnsMessage) and formerr.id == 7 and formerr.rcode == 1
    notify = dns.DnsMessage(1, opcode=4, questions=(dns.Question("a", A),)).build()
    assert dns.parse(z.answer(notify, client) or b"").rcode == dns.RCODE_NOTIMP  # type: ignore[union-attr]
    assert ask(z, "web", 252).rcode == dns.RCODE_REFUSED  # AXFR
    assert z.answer(dns.DnsMessage(1, qr=True).build(), client) is None
    assert z.answer(b"\x00\x01\x00", client) is None
    assert z.counters["drop.response"] == 1 and z.counters["drop.truncated"] == 1


def test_edns0_size_is_honoured_up_to_1232() -> None:
    z = DnsZone("ns", records=records_from(
        [{"name": "t.test", "type": "TXT", "value": ["y" * 250] * 3}]))
    plain = ask(z, "t.test", dns.TYPE_TXT)
    assert plain.tc and plain.answers == ()
    opt = dns.Record("", dns.TYPE_OPT, 4096, 0, b"")
    edns = ask(z, "t.test", dns.TYPE_TXT, additionals=(opt,))
    assert not edns.tc and edns.answers and edns.opt is not None and edns.opt.rclass == 1232
    badvers = ask(z, "t.test", dns.TYPE_TXT,
                  additionals=(dns.Record("", dns.TYPE_OPT, 4096, 1 << 16, b""),))
    assert badvers.opt is not None and badvers.opt.ttl >> 24 == 1  # extended rcode 16


def test_policy_by_cidr_allow_list() -> None:
    z = zone()
    inside = b"\x0a\x09\x00\x05"
    assert ask(z, "web", client=inside).answers
    denied = ask(z, "api.example.test", client=inside)
    assert denied.rcode == dns.RCODE_NXDOMAIN and denied.answers == ()


@pytest.mark.parametrize(("spec", "message_part"), [
    ({"name": "x.test", "type": "A", "value": "::1"}, "not an IPv4 address"),
    ({"name": "x.test", "type": "MX", "value": "mail"}, "PREFERENCE EXCHANGE"),
    ({"name": "x.test", "type": "HINFO", "value": "x"}, "is not one of"),
    ({"name": "x.test", "type": "A"}, "needs value"),
    ({"name": "x..test", "type": "A", "value": "10.0.0.1"}, "not a domain name"),
    ({"name": "x.test", "type": "A", "value": "10.0.0.1", "tll": 5}, "unknown key 'tll'"),
])
def test_bad_records_say_what_is_wrong(spec: dict[str, object], message_part: str) -> None:
    with pytest.raises(ValueError, match=message_part):
        records_from([spec])
