"""Fuzz target for DNS: the codec (stack.wire.dns) and the server's answering (vnet.dns.zone).

Input: one DNS message. Asserts: parsing never raises and returns a message
or a WireError; what parsed builds back into bytes that parse to the same
message (parse ∘ build ∘ parse is parse), also cut to 512 bytes; and a zone
given the input as a query answers without raising, with None or a reply
that parses as a response with the query's ID.

Touches: only the objects each input builds.
"""

from __future__ import annotations

from collections.abc import Callable

from stack.wire import dns
from stack.wire.errors import WireError
from vnet.dns import records_from
from vnet.dns.zone import Client, DnsZone

_ZONE = DnsZone("ns", host_addresses=lambda name: [bytes([10, 0, 0, 80])] if name == "web"
                else [], address_owner=lambda a: "web" if a == bytes([10, 0, 0, 80]) else None,
                records=records_from([
                    {"name": "api.example.test", "type": "CNAME", "value": "web"},
                    {"name": "example.test", "type": "MX", "value": "10 mail.example.test"},
                    {"name": "t.example.test", "type": "TXT", "value": ["a" * 200] * 4}]))
_CLIENT = Client(bytes([10, 0, 0, 1]))


def dns_target(data: bytes) -> None:
    msg = dns.parse(data)
    assert isinstance(msg, (dns.DnsMessage, WireError))
    if isinstance(msg, dns.DnsMessage):
        try:
            built = msg.build()
        except ValueError:
            built = None  # a name or RDATA the builder refuses to write (e.g. over 255 bytes
            #               once escapes are undone): a programming error, not input
        if built is not None:
            again = dns.parse(built)
            assert again == msg, (msg, again)
            assert isinstance(dns.parse(msg.build(512)), dns.DnsMessage)
    reply = _ZONE.answer(data, _CLIENT)
    if reply is not None:
        answer = dns.parse(reply)
        assert isinstance(answer, dns.DnsMessage) and answer.qr
        assert answer.id == int.from_bytes(data[:2], "big")


def _seeds() -> list[bytes]:
    q = [dns.DnsMessage(i, rd=True, questions=(dns.Question(name, qtype),)).build()
         for i, (name, qtype) in enumerate([("web", dns.TYPE_A), ("api.example.test", 1),
                                            ("example.test", dns.TYPE_MX),
                                            ("t.example.test", dns.TYPE_TXT),
                                            ("80.0.0.10.in-addr.arpa", dns.TYPE_PTR)])]
    answers = [_ZONE.answer(query, _CLIENT) for query in q]
    return q + [a for a in answers if a is not None]


TARGETS: dict[str, Callable[[bytes], None]] = {"dns": dns_target}
SEEDS: dict[str, list[bytes]] = {"dns": _seeds()}
