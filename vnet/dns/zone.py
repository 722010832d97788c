"""What a virtual DNS server knows and how it answers a query (sans-IO).

`DnsZone.answer(query, client)` takes one DNS message as bytes and who sent
it and returns the reply as bytes (or None: nothing is sent). It reads no
clock and no socket; `vnet.dns.server` carries the bytes over UDP and TCP.

Theory of operation
-------------------
The server is authoritative for the whole name space it serves (its SOA is
at the root) and recurses for nobody: every answer has AA set (but
REFUSED), RA clear, RD copied from the query. Names it knows:

- **topology names**: a host of the network answers A/AAAA with its
  current non-loopback, non-link-local addresses (`host_addresses`, asked
  at query time, so SLAAC or DHCP addresses count);
- **reverse names**: `d.c.b.a.in-addr.arpa` and the 32-nibble `ip6.arpa`
  names of those addresses answer PTR with the host's name
  (`address_owner`), as do explicit PTR records;
- **static records** (`StaticRecord`, from the topology's `dns.records` or
  `Host.serve_dns(records=...)`): A, AAAA, CNAME, TXT, SRV, MX, PTR, NS.

Lookup follows CNAME chains (at most `MAX_CNAME_HOPS`) inside the zone.
A name that owns no record and is no ancestor of one is NXDOMAIN; a name
that exists without a record of the asked type is NODATA (NOERROR, no
answer); both carry the SOA in the authority section, whose minimum is the
negative-caching TTL (RFC 2308). The rcode of a chain is the last name's
(RFC 6604).

Policy (`PolicyRule`): per client host (by name, or by CIDR of the source
address), a list of names it may not look up (`deny`) or the only names it
may (`allow`), with the answer chosen per rule: `refuse` (REFUSED, nothing
else) or `nxdomain` (NXDOMAIN with the SOA, as if the name did not exist).
The first rule whose clients include the sender and that denies the name
decides. A CNAME chain is checked at every name it passes through.

Forwarding (`forwarders`, optional): a recursive query (RD set) for a name
the zone does not have, and the policy lets the client look up, is passed
to the forwarders by the server (`forward_query` says which queries), whose
answer goes back with RA set and AA clear. Without forwarders, or without
RD, such a name is NXDOMAIN here and RA stays clear.

Bad input: a message that does not parse gets FORMERR when its header at
least is there and it is a query; anything else (a response, less than a
header) is dropped. Opcodes other than QUERY get NOTIMP, more or fewer
than one question FORMERR, a class other than IN/ANY and zone transfers
(AXFR, IXFR) REFUSED, an EDNS version other than 0 BADVERS (RFC 6891).
Every outcome is counted in `counters`.

Touches nothing but its arguments.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from firewall.names import NamePattern
from stack.wire import dns
from stack.wire.dns import (
    CLASS_ANY,
    CLASS_IN,
    OPCODE_QUERY,
    RCODE_FORMERR,
    RCODE_NOERROR,
    RCODE_NOTIMP,
    RCODE_NXDOMAIN,
    RCODE_REFUSED,
    TYPE_A,
    TYPE_AAAA,
    TYPE_ANY,
    TYPE_CNAME,
    TYPE_OPT,
    TYPE_PTR,
    TYPE_SOA,
    DnsMessage,
    Question,
    Record,
    name_key,
)
from stack.wire.errors import WireError

__all__ = ["DEFAULT_TTL", "DnsZone", "PolicyRule", "StaticRecord", "static_record"]

DEFAULT_TTL = 60
NEGATIVE_TTL = 30
MAX_CNAME_HOPS = 8
#: The largest UDP answer given to an EDNS0 client (the DNS flag day 2020 value).
EDNS_UDP_LIMIT = 1232
TYPE_AXFR, TYPE_IXFR = 252, 251
RCODE_BADVERS = 16

STATIC_TYPES = ("A", "AAAA", "CNAME", "TXT", "SRV", "MX", "PTR", "NS")


@dataclass(frozen=True, slots=True)
class StaticRecord:
    """One record given in the configuration, decoded (see `static_record`)."""

    name: str
    rtype: int
    data: dns.RData
    ttl: int = DEFAULT_TTL


def static_record(name: str, rtype: str, value: str | Sequence[str],
                  ttl: int = DEFAULT_TTL) -> StaticRecord:
    """A record from its text form; ValueError says what is wrong.

    A / AAAA: an address; CNAME, PTR, NS: a name; TXT: a string or a list of
    strings (each at most 255 bytes); MX: "PREFERENCE EXCHANGE"; SRV:
    "PRIORITY WEIGHT PORT TARGET".
    """
    kind = rtype.upper()
    if kind not in STATIC_TYPES:
        raise ValueError(f"record type {rtype!r} is not one of {', '.join(STATIC_TYPES)}")
    if not isinstance(ttl, int) or not 0 <= ttl < 2 ** 31:
        raise ValueError(f"ttl {ttl!r} is not a number of seconds 0..2147483647")
    _check_name(name)
    number = dns.TYPE_NUMBERS[kind]
    data: dns.RData
    if kind == "TXT":
        chunks = [value] if isinstance(value, str) else list(value)
        encoded = tuple(str(c).encode() for c in chunks)
        if any(len(c) > 255 for c in encoded):
            raise ValueError("a TXT string is at most 255 bytes (give a list of strings)")
        return StaticRecord(name, number, encoded, ttl)
    if not isinstance(value, str):
        raise ValueError(f"a {kind} record's value is a string, not {value!r}")
    if kind in ("A", "AAAA"):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        if (address.version == 4) != (kind == "A"):
            raise ValueError(f"{value} is not an IPv{4 if kind == 'A' else 6} address "
                             f"(an {kind} record)")
        data = address.packed
    elif kind in ("CNAME", "PTR", "NS"):
        _check_name(value)
        data = value.rstrip(".")
    elif kind == "MX":
        parts = value.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) > 65535:
            raise ValueError(f"an MX value is \"PREFERENCE EXCHANGE\", not {value!r}")
        _check_name(parts[1])
        data = (int(parts[0]), parts[1].rstrip("."))
    else:  # SRV
        parts = value.split()
        if len(parts) != 4 or not all(p.isdigit() and int(p) <= 65535 for p in parts[:3]):
            raise ValueError(f"an SRV value is \"PRIORITY WEIGHT PORT TARGET\", not {value!r}")
        _check_name(parts[3])
        data = (int(parts[0]), int(parts[1]), int(parts[2]), parts[3].rstrip("."))
    return StaticRecord(name.rstrip("."), number, data, ttl)


def _check_name(name: str) -> None:
    try:
        dns._labels(name)
        if sum(len(label) + 1 for label in dns._labels(name)) + 1 > dns.MAX_NAME_LEN:
            raise ValueError
    except ValueError:
        raise ValueError(f"{name!r} is not a domain name") from None
    if not name or name == ".":
        raise ValueError("a record needs a name (the root is not one)")


@dataclass(frozen=True)
class PolicyRule:
    """Which clients may not look up which names, and how they are told."""

    clients: tuple[str, ...] = ("*",)  # host names, CIDRs, or "*"
    deny: NamePattern | None = None  # these names are denied ...
    allow: NamePattern | None = None  # ... or every name but these
    action: str = "refuse"  # or "nxdomain"
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default=(), repr=False)

    @classmethod
    def make(cls, clients: Iterable[str] = ("*",), deny: Iterable[str] | None = None,
             allow: Iterable[str] | None = None, action: str = "refuse") -> PolicyRule:
        """ValueError for a bad action, name pattern or client."""
        if action not in ("refuse", "nxdomain"):
            raise ValueError(f"policy action {action!r} is not \"refuse\" or \"nxdomain\"")
        if (deny is None) == (allow is None):
            raise ValueError("a policy rule has either deny = [names] or allow = [names]")
        names: list[str] = []
        networks = []
        for client in clients:
            if client in ("*", "any"):
                names.append("*")
            elif any(c in client for c in ":/") or client.replace(".", "").isdigit():
                try:
                    networks.append(ipaddress.ip_network(client, strict=False))
                except ValueError:
                    raise ValueError(f"policy client {client!r} is not a host name or CIDR") \
                        from None
            else:
                names.append(client.lower())
        return cls(tuple(names), NamePattern(deny) if deny is not None else None,
                   NamePattern(allow) if allow is not None else None, action, tuple(networks))

    def covers(self, host: str | None, address: bytes) -> bool:
        if "*" in self.clients or (host is not None and host.lower() in self.clients):
            return True
        if self._networks:
            ip = ipaddress.ip_address(address)
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            return any(ip in net for net in self._networks)
        return False

    def denies(self, name: str) -> bool:
        if self.deny is not None:
            return self.deny.matches(name)
        assert self.allow is not None
        return not self.allow.matches(name)


@dataclass(frozen=True, slots=True)
class Client:
    """Who sent a query: source address, the host owning it (if any), transport."""

    address: bytes
    host: str | None = None
    tcp: bool = False


class DnsZone:
    """The server's data and its answering rules (see the module docstring)."""

    def __init__(self, server_name: str, *,
                 host_addresses: Callable[[str], list[bytes]] = lambda name: [],
                 address_owner: Callable[[bytes], str | None] = lambda address: None,
                 records: Iterable[StaticRecord] = (), policy: Iterable[PolicyRule] = (),
                 ttl: int = DEFAULT_TTL, forwarders: Sequence[bytes] = ()) -> None:
        self.server_name = server_name
        #: Upstream servers for names the zone does not have (`forward_query`).
        self.forwarders = list(forwarders)
        self.host_addresses = host_addresses
        self.address_owner = address_owner
        self.ttl = ttl
        self.policy = list(policy)
        self.counters: Counter[str] = Counter()
        self.static: dict[str, list[StaticRecord]] = {}
        self._ancestors: set[str] = {""}
        for record in records:
            key = name_key(record.name)
            self.static.setdefault(key, []).append(record)
            labels = key.split(".")
            for i in range(1, len(labels)):
                self._ancestors.add(".".join(labels[i:]))
        self.soa = Record("", TYPE_SOA, CLASS_IN, NEGATIVE_TTL,
                          (server_name, f"hostmaster.{server_name}", 1, 3600, 600, 86400,
                           NEGATIVE_TTL))

    # --- data ----------------------------------------------------------------------
    def records_at(self, name: str) -> list[Record] | None:
        """Every record owned by `name` (case kept), [] for an empty non-terminal,
        None if the name does not exist."""
        key = name_key(name)
        found: list[Record] = [Record(name, r.rtype, CLASS_IN, r.ttl, r.data)
                               for r in self.static.get(key, ())]
        if key == "":
            found.append(replace(self.soa, name=name))
        if "." not in key and key:
            for address in self.host_addresses(key):
                found.append(Record(name, TYPE_A if len(address) == 4 else TYPE_AAAA,
                                    CLASS_IN, self.ttl, address))
        reverse = _reverse_address(key)
        if reverse is not None:
            owner = self.address_owner(reverse)
            if owner is not None:
                found.append(Record(name, TYPE_PTR, CLASS_IN, self.ttl, owner))
        if found:
            return found
        return [] if key in self._ancestors else None

    def _denied(self, client: Client, name: str) -> PolicyRule | None:
        key = name_key(name)
        for rule in self.policy:
            if rule.covers(client.host, client.address) and rule.denies(key):
                return rule
        return None

    # --- answering -----------------------------------------------------------------
    def forward_query(self, query: bytes | bytearray | memoryview,
                      client: Client) -> DnsMessage | None:
        """The query, if it is one to pass to a forwarder rather than answer here:
        a well-formed recursive (RD) QUERY for a name the zone does not have and
        the policy does not deny, when there are forwarders. Never raises."""
        if not self.forwarders:
            return None
        msg = dns.parse(query)
        if (isinstance(msg, WireError) or msg.qr or msg.opcode != OPCODE_QUERY or not msg.rd
                or len(msg.questions) != 1):
            return None
        question = msg.questions[0]
        if question.qclass not in (CLASS_IN, CLASS_ANY) or question.qtype in (TYPE_AXFR,
                                                                              TYPE_IXFR):
            return None
        opt = msg.opt
        if opt is not None and (opt.ttl >> 16) & 0xFF != 0:
            return None
        if self._denied(client, question.name) is not None:
            return None
        if self.records_at(question.name) is not None:
            return None
        return msg

    def answer(self, query: bytes | bytearray | memoryview, client: Client) -> bytes | None:
        """The reply to `query` (None: send nothing). Never raises on bad input."""
        counters = self.counters
        msg = dns.parse(query)
        if isinstance(msg, WireError):
            header = dns.parse_header(query)
            if header is None or header[1] & 0x8000:
                counters[f"drop.{msg.value}"] += 1
                return None
            counters[f"formerr.{msg.value}"] += 1
            ident, flags = header
            return DnsMessage(ident, qr=True, opcode=(flags >> 11) & 0xF, rd=bool(flags & 0x100),
                              rcode=RCODE_FORMERR).build()
        if msg.qr:
            counters["drop.response"] += 1
            return None
        counters["tcp_queries" if client.tcp else "udp_queries"] += 1
        opt = msg.opt
        limit = 65535 if client.tcp else (
            max(512, min(opt.rclass, EDNS_UDP_LIMIT)) if opt is not None else 512)
        reply_opt = (Record("", TYPE_OPT, EDNS_UDP_LIMIT, 0, b""),) if opt is not None else ()
        base = DnsMessage(msg.id, qr=True, opcode=msg.opcode, rd=msg.rd, cd=msg.cd,
                          questions=msg.questions[:1] if len(msg.questions) == 1 else (),
                          additionals=reply_opt)
        if msg.opcode != OPCODE_QUERY:
            counters["notimp"] += 1
            return replace(base, rcode=RCODE_NOTIMP).build(limit)
        if len(msg.questions) != 1 or sum(r.rtype == TYPE_OPT for r in msg.additionals) > 1:
            counters["formerr.questions"] += 1
            return replace(base, rcode=RCODE_FORMERR).build(limit)
        if opt is not None and (opt.ttl >> 16) & 0xFF != 0:
            counters["badvers"] += 1
            bad = Record("", TYPE_OPT, EDNS_UDP_LIMIT, (RCODE_BADVERS >> 4) << 24, b"")
            return replace(base, additionals=(bad,)).build(limit)
        question = msg.questions[0]
        if question.qclass not in (CLASS_IN, CLASS_ANY) or question.qtype in (TYPE_AXFR,
                                                                              TYPE_IXFR):
            counters["refused.unsupported"] += 1
            return replace(base, rcode=RCODE_REFUSED).build(limit)
        return self._lookup(base, question, client).build(limit)

    def _lookup(self, base: DnsMessage, question: Question, client: Client) -> DnsMessage:
        counters = self.counters
        answers: list[Record] = []
        name = question.name
        qtype = question.qtype
        rcode = RCODE_NOERROR
        matched = False
        for _hop in range(MAX_CNAME_HOPS + 1):
            rule = self._denied(client, name)
            if rule is not None:
                counters[f"policy.{rule.action}"] += 1
                if rule.action == "refuse":
                    return replace(base, rcode=RCODE_REFUSED)
                return replace(base, aa=True, rcode=RCODE_NXDOMAIN, answers=tuple(answers),
                               authorities=(self.soa,))
            records = self.records_at(name)
            if records is None:
                rcode = RCODE_NXDOMAIN
                break
            wanted = [r for r in records if r.rtype == qtype or (
                qtype == TYPE_ANY and r.rtype != TYPE_SOA)]
            if wanted:
                answers += wanted
                matched = True
                break
            cname = next((r for r in records if r.rtype == TYPE_CNAME), None)
            if cname is None or qtype == TYPE_CNAME:
                break
            answers.append(cname)
            assert isinstance(cname.data, str)
            name = cname.data
        else:
            counters["servfail.cname_loop"] += 1
            return replace(base, rcode=dns.RCODE_SERVFAIL)
        authorities: tuple[Record, ...] = ()
        if rcode == RCODE_NXDOMAIN:
            counters["nxdomain"] += 1
            authorities = (self.soa,)
        elif not matched:
            counters["nodata"] += 1
            authorities = (self.soa,)
        else:
            counters["answered"] += 1
        return replace(base, aa=True, rcode=rcode, answers=tuple(answers),
                       authorities=authorities)


def _reverse_address(key: str) -> bytes | None:
    if key.endswith(".in-addr.arpa"):
        parts = key[:-len(".in-addr.arpa")].split(".")
        if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts):
            return bytes(int(p) for p in reversed(parts))
        return None
    if key.endswith(".ip6.arpa"):
        nibbles = key[:-len(".ip6.arpa")].split(".")
        if len(nibbles) == 32 and all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
            return bytes.fromhex("".join(reversed(nibbles)))
    return None

