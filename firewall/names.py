"""Domain-name rules: which addresses a host has learned for a name, and for how long.

A rule may name hosts instead of addresses (`daddr api.example.test`,
`daddr *.game.test`). Names are never resolved by the firewall. Instead the
host's resolver tells its firewall what it answered (`NameTable.learn(name,
addresses, now_ns, ttl_ns)`), and a name pattern matches an address only
while some name it covers resolved to that address *for this host* and the
answer's TTL has not run out. A guest that connects to an address it never
looked up therefore does not get through a name-based allow; connections
opened while the name was valid keep going after the TTL through connection
tracking (`ct state established`), as with a DNS-learning firewall.

Patterns: `example.test` matches that name only; `*.game.test` matches every
name below `game.test` (`eu.game.test`, `a.b.game.test`) but not
`game.test` itself. Names compare case-insensitively, without a trailing dot.

The table is bounded (`max_entries` name/address pairs); when full, the
entry closest to expiry is forgotten first.

DNS on the wire (`DnsAnswerLearner`): the host firewall also learns from
the DNS answers its host receives (INPUT) or forwards (FORWARD), so a guest
that brings its own resolver is governed by the same rules. It remembers
each query it lets out (OUTPUT, FORWARD; UDP or TCP port 53: the client
address and port, the server address and the query ID and question) and
learns from an answer only when it matches one of those exactly — an
unsolicited or forged answer teaches nothing (`dns.unsolicited`). From a
matching answer it follows the CNAME chain from the question's name and
learns every name of the chain (the question's and each alias) for the A
and AAAA addresses at its end, valid for the smallest TTL along the chain
but at least `MIN_LEARNED_TTL_NS` (a connection follows its lookup
closely). Over TCP only a segment that holds whole length-prefixed
messages is read (a server's answer normally does). At most
`MAX_PENDING_QUERIES` queries are remembered, each for `QUERY_MEMORY_NS`.
Touches nothing: the caller passes the time.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, OrderedDict
from collections.abc import Iterable

from stack.wire import dns as dns_wire

__all__ = ["DEFAULT_TTL_NS", "DnsAnswerLearner", "NamePattern", "NameTable", "normalize_name"]

#: TTL given to answers of the virtual resolver, which has none of its own.
DEFAULT_TTL_NS = 300 * 1_000_000_000

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME_RE = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$")


def normalize_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def is_name_pattern(text: str) -> bool:
    """Does `text` look like a host name or a `*.` wildcard (and not like an address)?"""
    t = normalize_name(text)
    if not _NAME_RE.match(t) or len(t) > 253:
        return False
    # text without a letter (10.0.0.300, 10.0.0.1-10.0.0.9) is an address, never a name
    return any(c.isalpha() for c in t)


class NamePattern:
    """A set of exact names and `*.suffix` wildcards."""

    __slots__ = ("exact", "items", "suffixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[str] = set()
        suffixes: list[str] = []
        self.items: list[str] = []
        for pattern in patterns:
            p = normalize_name(pattern)
            if not is_name_pattern(p):
                raise ValueError(f"{pattern!r} is not a host name or *.domain wildcard")
            self.items.append(p)
            if p.startswith("*."):
                suffixes.append(p[1:])  # ".game.test"
            else:
                exact.add(p)
        self.exact = frozenset(exact)
        self.suffixes = tuple(suffixes)

    def matches(self, name: str) -> bool:
        return name in self.exact or (bool(self.suffixes) and name.endswith(self.suffixes))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __repr__(self) -> str:
        return f"NamePattern({self.items!r})"


class NameTable:
    """Addresses learned per name, with expiry; the reverse map is what rules consult."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        #: address -> {name: expiry_ns}
        self.by_address: dict[bytes, dict[str, int]] = {}
        self.entries = 0
        self.evicted = 0
        # (expiry, address, name), possibly stale: an entry counts only while it
        # still equals the expiry in by_address.
        self._heap: list[tuple[int, bytes, str]] = []

    def learn(self, name: str, addresses: Iterable[bytes], now_ns: int,
              ttl_ns: int = DEFAULT_TTL_NS) -> None:
        """The resolver answered `addresses` for `name` at `now_ns`, valid for `ttl_ns`."""
        if ttl_ns <= 0:
            return
        key = normalize_name(name)
        expiry = now_ns + ttl_ns
        for addr in addresses:
            addr = bytes(addr)
            names = self.by_address.get(addr)
            if names is None or key not in names:
                if self.entries >= self.max_entries:
                    self._evict(now_ns)
                names = self.by_address.setdefault(addr, {})
                names[key] = 0
                self.entries += 1
            if expiry > names.get(key, 0):
                names[key] = expiry
                heapq.heappush(self._heap, (expiry, addr, key))
        if len(self._heap) > 4 * max(self.max_entries, 16):
            self._heap = [(exp, a, n) for a, names in self.by_address.items()
                          for n, exp in names.items()]
            heapq.heapify(self._heap)

    def _pop_oldest(self) -> tuple[int, bytes, str] | None:
        heap = self._heap
        while heap:
            expiry, addr, name = heapq.heappop(heap)
            if self.by_address.get(addr, {}).get(name) == expiry:
                return expiry, addr, name
        return None

    def _evict(self, now_ns: int) -> None:
        self.expire(now_ns)
        while self.entries >= self.max_entries:
            oldest = self._pop_oldest()
            if oldest is None:
                return
            self._remove(oldest[1], oldest[2])
            self.evicted += 1

    def _remove(self, addr: bytes, name: str) -> None:
        names = self.by_address[addr]
        del names[name]
        self.entries -= 1
        if not names:
            del self.by_address[addr]

    def expire(self, now_ns: int) -> int:
        """Forget every answer whose TTL ran out; returns how many were forgotten."""
        count = 0
        heap = self._heap
        while heap and heap[0][0] <= now_ns:
            expiry, addr, name = heapq.heappop(heap)
            if self.by_address.get(addr, {}).get(name) == expiry:
                self._remove(addr, name)
                count += 1
        return count

    def matches(self, pattern: NamePattern, addr: bytes, now_ns: int) -> bool:
        """Did a name covered by `pattern` resolve to `addr` for this host, still valid?"""
        names = self.by_address.get(addr)
        if not names:
            return False
        for name, expiry in names.items():
            if expiry > now_ns and pattern.matches(name):
                return True
        return False

    def names_for(self, addr: bytes, now_ns: int) -> list[str]:
        return sorted(n for n, exp in self.by_address.get(addr, {}).items() if exp > now_ns)

    def __len__(self) -> int:
        return self.entries


MIN_LEARNED_TTL_NS = 5 * 1_000_000_000
MAX_PENDING_QUERIES = 1024
QUERY_MEMORY_NS = 30 * 1_000_000_000
DNS_PORT = 53
_PROTO_TCP, _PROTO_UDP = 6, 17

_QueryKey = tuple[bytes, int, bytes, int, int]  # client, client port, server, proto, id


class DnsAnswerLearner:
    """Learns names for a `NameTable` from the DNS answers a firewall sees (see above)."""

    def __init__(self) -> None:
        self.pending: OrderedDict[_QueryKey, tuple[str, int, int]] = OrderedDict()
        self.counters: Counter[str] = Counter()

    @staticmethod
    def _messages(proto: int, payload: memoryview) -> list[memoryview]:
        if proto == _PROTO_UDP:
            return [payload]
        found = []
        while len(payload) >= 2:
            length = int.from_bytes(payload[:2], "big")
            if length == 0 or len(payload) < 2 + length:
                break
            found.append(payload[2:2 + length])
            payload = payload[2 + length:]
        return found

    def saw_query(self, proto: int, src: bytes, sport: int, dst: bytes, payload: memoryview,
                  now_ns: int) -> None:
        """A query leaving (or passing through) the host: remember it."""
        for data in self._messages(proto, payload):
            msg = dns_wire.parse(data)
            if isinstance(msg, dns_wire.WireError) or msg.qr or len(msg.questions) != 1:
                continue
            q = msg.questions[0]
            key = (bytes(src), sport, bytes(dst), proto, msg.id)
            self.pending[key] = (normalize_name(q.name), q.qtype, now_ns + QUERY_MEMORY_NS)
            self.pending.move_to_end(key)
            while len(self.pending) > MAX_PENDING_QUERIES:
                self.pending.popitem(last=False)
                self.counters["dns.queries_forgotten"] += 1

    def saw_answer(self, proto: int, src: bytes, dst: bytes, dport: int, payload: memoryview,
                   table: NameTable, now_ns: int) -> None:
        """An answer arriving (or passing through): learn from it if it answers a query."""
        for data in self._messages(proto, payload):
            msg = dns_wire.parse(data)
            if isinstance(msg, dns_wire.WireError) or not msg.qr:
                self.counters["dns.malformed"] += 1
                continue
            asked = self.pending.pop((bytes(dst), dport, bytes(src), proto, msg.id), None)
            if asked is None or asked[2] <= now_ns or len(msg.questions) != 1 or (
                    normalize_name(msg.questions[0].name), msg.questions[0].qtype) != asked[:2]:
                self.counters["dns.unsolicited"] += 1
                continue
            if msg.tc:
                self.pending[(bytes(dst), dport, bytes(src), proto, msg.id)] = asked
            self._learn(msg, asked[0], table, now_ns)

    def _learn(self, msg: dns_wire.DnsMessage, qname: str, table: NameTable,
               now_ns: int) -> None:
        chain = [qname]
        ttl = None
        addresses: list[bytes] = []
        for record in msg.answers:
            owner = normalize_name(record.name)
            if owner != chain[-1] and owner not in chain:
                continue
            if record.rtype == dns_wire.TYPE_CNAME and isinstance(record.data, str):
                target = normalize_name(record.data)
                if target not in chain and len(chain) < 16:
                    chain.append(target)
                    ttl = record.ttl if ttl is None else min(ttl, record.ttl)
            elif record.rtype in (dns_wire.TYPE_A, dns_wire.TYPE_AAAA) and isinstance(
                    record.data, bytes) and owner == chain[-1]:
                addresses.append(record.data)
                ttl = record.ttl if ttl is None else min(ttl, record.ttl)
        if not addresses or ttl is None:
            return
        ttl_ns = max(ttl * 1_000_000_000, MIN_LEARNED_TTL_NS)
        for name in chain:
            table.learn(name, addresses, now_ns, ttl_ns)
        self.counters["dns.learned"] += 1
