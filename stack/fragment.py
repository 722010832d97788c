"""IPv4 and IPv6 fragmentation and reassembly (RFC 791, RFC 8200 4.5, RFC 5722, RFC 6946).

A sans-IO engine: it touches nothing but bytes and the ``now_ns`` integers it
is given. It never reads a clock, sleeps, or does I/O, and it imports only
``stack.wire``. The stack (IP output / IP input) calls it and acts on what it
returns: it sends the fragments, delivers reassembled datagrams, sends ICMP
errors for the drop reasons that call for one, and calls ``expire`` at
``next_deadline()``.

Fragmentation is two pure functions. ``fragment_ipv4`` splits a datagram
into packets whose data (except the last) is a multiple of 8 bytes; the first
fragment keeps every option, later ones only options with the "copied" bit
(RFC 791 3.1), so their headers may be shorter and carry more data. It also
re-fragments a datagram that is already a fragment (a router forwarding one):
offsets are added to the original offset and the last piece keeps the
original MF. ``fragment_ipv6`` adds a Fragment header after the
unfragmentable part (RFC 8200 4.5) and never produces atomic fragments
(RFC 8021): a packet that fits is returned whole, without one.

Theory of operation of ``Reassembler``: a datagram being reassembled is a
``_Datagram`` in an insertion-ordered dict keyed by (family, src, dst,
protocol, id) -- RFC 791's key for IPv4, (src, dst, id) for IPv6 (the
protocol slot is 0). Its fragments are kept in offset order as parallel lists
of starts, ends and data, so a new fragment is placed by bisection and
checked only against its two neighbours; overlaps are impossible inside the
lists, so the datagram is complete exactly when the last fragment (MF=0) has
fixed the total length and the received byte count equals it -- an O(1)
test, and O(fragments) work per datagram in all. Every datagram's deadline
is its first fragment's arrival plus ``timeout_ns`` (not extended by later
fragments, so a trickle cannot keep one alive), and since ``now_ns`` never
goes backwards, insertion order is deadline order: ``expire`` pops from the
front and ``next_deadline`` reads the front, both O(1) per datagram.

Rules, in the order they are applied to each fragment:

- A non-last fragment must carry a non-zero multiple of 8 bytes, else the
  fragment is dropped as ``BAD_FRAGMENT``. A fragment that would make the
  datagram longer than 65535 bytes (IPv4 total length / IPv6 payload length)
  is dropped as ``TOO_BIG``. Both drop only the fragment. For IPv6, RFC 8200
  4.5 asks for ICMPv6 Parameter Problem code 0 in both cases (pointing at the
  Payload Length, resp. the Fragment Offset); ``BAD_FRAGMENT`` also names
  other faults, so a stack that sends the former checks ``M and length % 8``
  itself.
- IPv6 atomic fragments (offset 0, M=0) are returned at once, rebuilt
  without the Fragment header, and never touch reassembly state (RFC 6946).
  An IPv4 packet that is not a fragment is returned as it is.
- An exact duplicate of a fragment already held (same range, same bytes) is
  ignored (RFC 8200 4.5 allows this). Any other overlap discards the whole
  datagram and leaves a tombstone that drops its later fragments, also as
  ``OVERLAP``, until the original deadline (RFC 5722 for IPv6; the same for
  IPv4, as Linux does: overlaps are only ever an attack or a bug).
- Fragments that contradict the total length (a second, different last
  fragment; data past the end) discard the datagram as ``BAD_FRAGMENT``.
- ECN (RFC 3168 5.3): CE on any fragment sets CE on the result; mixing
  Not-ECT with ECT/CE fragments discards the datagram as ``BAD_FRAGMENT``
  (counted as ``ecn_mismatch``).
- The reassembled IPv4 datagram has the first fragment's header (options
  included) with MF and offset cleared, total length and checksum
  recomputed. The IPv6 one has the offset-0 fragment's unfragmentable part,
  its last Next Header set to the offset-0 fragment's next header (RFC 8200:
  only that fragment's value is used) and the payload length fixed.

Memory policy. Each fragment is charged its data length plus
``FRAGMENT_OVERHEAD`` bytes (and the first fragment its header), and the sum
is capped at ``max_bytes``; the number of datagrams (tombstones included) at
``max_datagrams``; fragments per datagram at ``max_fragments``. When a new
datagram would exceed the count, or a fragment the bytes, the *oldest* other
datagrams -- those closest to their deadline -- are evicted (counter
``evicted``; no ICMP is sent for them). A fragment that cannot fit even then
(a datagram larger than ``max_bytes``), or a datagram past
``max_fragments``, is discarded whole as ``NO_MEMORY``. An attacker who can
send fragments can thus push legitimate datagrams out -- that is true of
every bounded reassembler -- but can never grow memory or per-fragment work
beyond these bounds.

Use one ``Reassembler`` per IP version: the deadline order relies on a single
timeout. IPv4: ``IPV4_REASSEMBLY_TIMEOUT_NS`` (30 s, Linux's default); IPv6:
``IPV6_REASSEMBLY_TIMEOUT_NS`` (60 s, RFC 8200).
"""

from __future__ import annotations

import enum
import struct
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

from .wire._types import BytesLike
from .wire.checksum import internet_checksum
from .wire.ip import PROTO_DSTOPTS, PROTO_FRAGMENT, PROTO_HOPOPT, PROTO_ROUTING
from .wire.ipv4 import (
    FIELD_CHECKSUM,
    FIELD_FLAGS_FRAG,
    FIELD_TOTAL_LEN,
    FLAG_DONT_FRAG,
    FLAG_MORE_FRAGS,
    FLAG_RESERVED,
    FRAG_OFFSET_MASK,
    Ipv4Packet,
)
from .wire.ipv4 import HEADER_LEN as IPV4_HEADER_LEN
from .wire.ipv6 import FIELD_NEXT_HEADER, FIELD_PAYLOAD_LEN, FRAGMENT_HEADER_LEN
from .wire.ipv6 import HEADER_LEN as IPV6_HEADER_LEN

__all__ = [
    "FRAGMENT_OVERHEAD",
    "IPV4_REASSEMBLY_TIMEOUT_NS",
    "IPV6_MIN_MTU",
    "IPV6_REASSEMBLY_TIMEOUT_NS",
    "Expired",
    "Reassembler",
    "ReassemblyResult",
    "fragment_ipv4",
    "fragment_ipv6",
]

IPV4_REASSEMBLY_TIMEOUT_NS = 30 * 10**9
IPV6_REASSEMBLY_TIMEOUT_NS = 60 * 10**9
IPV6_MIN_MTU = 1280
IPV4_MIN_MTU = 68  # RFC 791: every module must forward 68 bytes unfragmented

#: Bytes charged per held fragment on top of its data: bookkeeping is not free,
#: and charging it makes a flood of tiny fragments hit ``max_bytes`` too.
FRAGMENT_OVERHEAD = 64

_MAX_DATAGRAM = 0xFFFF
_MAX_OFFSET = FRAG_OFFSET_MASK << 3  # 65528: the largest offset 13 bits can say

_U16 = struct.Struct("!H")
_FRAG_HDR = struct.Struct("!BBHI")

# IPv4 option kinds needed to walk the option area.
_OPT_END = 0
_OPT_NOP = 1
_OPT_COPIED = 0x80

# IPv6 extension headers that may precede a Fragment header (the
# unfragmentable part): they all use the (len + 1) * 8 length encoding.
_UNFRAGMENTABLE_HEADERS = frozenset((PROTO_HOPOPT, PROTO_ROUTING, PROTO_DSTOPTS))

# ECN codepoints seen, as a bit set: bit (1 << ecn).
_ECN_NOT_ECT_BIT = 1 << 0
_ECN_CE = 3
_ECN_CE_BIT = 1 << _ECN_CE


# ----------------------------------------------------------------------------
# Fragmentation


def _copied_options(header: BytesLike, hlen: int) -> bytes:
    """The options of an IPv4 header that go into non-first fragments, padded to 4."""
    out = bytearray()
    i = IPV4_HEADER_LEN
    while i < hlen:
        kind = header[i]
        if kind == _OPT_END:
            break
        if kind == _OPT_NOP:
            i += 1
            continue
        if i + 1 >= hlen:
            raise ValueError("IPv4 option runs past the header")
        length = header[i + 1]
        if length < 2 or i + length > hlen:
            raise ValueError(f"bad IPv4 option length {length} at offset {i}")
        if kind & _OPT_COPIED:
            out += header[i : i + length]
        i += length
    out += bytes(-len(out) % 4)
    return bytes(out)


def _ipv4_fragment(
    header: BytesLike, data: BytesLike, total_len_field: int, flags_frag: int
) -> bytes:
    hlen = len(header)
    pkt = bytearray(hlen + len(data))
    pkt[:hlen] = header
    pkt[hlen:] = data
    pkt[0] = 0x40 | (hlen >> 2)
    _U16.pack_into(pkt, FIELD_TOTAL_LEN, total_len_field)
    _U16.pack_into(pkt, FIELD_FLAGS_FRAG, flags_frag)
    _U16.pack_into(pkt, FIELD_CHECKSUM, 0)
    _U16.pack_into(pkt, FIELD_CHECKSUM, internet_checksum(memoryview(pkt)[:hlen]))
    return bytes(pkt)


def fragment_ipv4(header: BytesLike, payload: BytesLike, mtu: int) -> list[bytes]:
    """Split the IPv4 datagram ``header`` + ``payload`` into packets of at most ``mtu`` bytes.

    ``header`` is the datagram's complete header (IHL * 4 bytes, options
    included; its total length and checksum are rewritten in every
    fragment). If the datagram fits, ``[header + payload]`` is returned
    unchanged. Raises ValueError when DF is set and it does not fit (the
    caller sends ICMP fragmentation-needed or fails with EMSGSIZE), when the
    MTU leaves no room for 8 bytes of data, or when the header is malformed.
    """
    hlen = len(header)
    if hlen < IPV4_HEADER_LEN or header[0] >> 4 != 4 or (header[0] & 0xF) << 2 != hlen:
        raise ValueError("header is not a complete IPv4 header (IHL must match its length)")
    plen = len(payload)
    if hlen + plen <= mtu:
        return [bytes(header) + bytes(payload)]
    (flags_frag,) = _U16.unpack_from(header, FIELD_FLAGS_FRAG)
    if flags_frag & FLAG_DONT_FRAG:
        raise ValueError(f"datagram of {hlen + plen} bytes has DF set and exceeds MTU {mtu}")
    base_offset = (flags_frag & FRAG_OFFSET_MASK) << 3
    if base_offset + plen > _MAX_DATAGRAM - IPV4_HEADER_LEN:
        raise ValueError("datagram too long to fragment")
    keep_flags = flags_frag & FLAG_RESERVED
    base_more = flags_frag & FLAG_MORE_FRAGS

    rest_header = bytes(header[:IPV4_HEADER_LEN]) + _copied_options(header, hlen)
    first_size = (mtu - hlen) & ~7
    rest_size = (mtu - len(rest_header)) & ~7
    if first_size < 8:
        raise ValueError(f"MTU {mtu} leaves no room for fragment data")
    data = memoryview(payload)
    out: list[bytes] = []
    pos = 0
    hdr: BytesLike = header
    size = first_size
    while pos < plen:
        chunk = min(size, plen - pos)
        last = pos + chunk >= plen
        ff = keep_flags | ((base_offset + pos) >> 3)
        if not last or base_more:
            ff |= FLAG_MORE_FRAGS
        out.append(_ipv4_fragment(hdr, data[pos : pos + chunk], len(hdr) + chunk, ff))
        pos += chunk
        hdr = rest_header
        size = rest_size
    return out


def _last_next_header_offset(unfragmentable: BytesLike) -> int:
    """Offset of the Next Header field that names what follows ``unfragmentable``.

    ``unfragmentable`` is the IPv6 fixed header plus any hop-by-hop, routing
    and destination-options headers. Raises ValueError if it is not exactly
    that.
    """
    n = len(unfragmentable)
    if n < IPV6_HEADER_LEN or unfragmentable[0] >> 4 != 6:
        raise ValueError("unfragmentable part must start with an IPv6 fixed header")
    nh_offset = FIELD_NEXT_HEADER
    offset = IPV6_HEADER_LEN
    nh = unfragmentable[nh_offset]
    while offset < n:
        if nh not in _UNFRAGMENTABLE_HEADERS or offset + 2 > n:
            raise ValueError(f"unexpected header {nh} in the unfragmentable part")
        nh_offset = offset
        nh = unfragmentable[offset]
        offset += (unfragmentable[offset + 1] + 1) << 3
    if offset != n:
        raise ValueError("extension header runs past the unfragmentable part")
    return nh_offset


def _ipv6_header(unfragmentable: BytesLike, nh_offset: int, next_header: int, plen: int) -> bytes:
    hdr = bytearray(unfragmentable)
    hdr[nh_offset] = next_header
    _U16.pack_into(hdr, FIELD_PAYLOAD_LEN, plen)
    return bytes(hdr)


def fragment_ipv6(
    unfragmentable: BytesLike,
    next_header: int,
    payload: BytesLike,
    mtu: int,
    identification: int,
) -> list[bytes]:
    """Split an IPv6 packet into fragments of at most ``max(mtu, 1280)`` bytes.

    ``unfragmentable`` is the fixed header plus any hop-by-hop / routing
    headers; its payload length and last Next Header field are rewritten
    (the latter to 44 in fragments). ``next_header`` is the protocol of
    ``payload`` (the fragmentable part), and goes into each Fragment header.
    Fragment data is a multiple of 8 bytes except in the last fragment.

    A packet that fits is returned as one packet without a Fragment header
    (with ``next_header`` patched in): atomic fragments are deprecated
    (RFC 8021). Raises ValueError for a malformed unfragmentable part or a
    packet whose payload length would exceed 65535 (no jumbograms).
    """
    if not 0 <= identification <= 0xFFFFFFFF:
        raise ValueError(f"IPv6 fragment identification {identification} is not 32-bit")
    mtu = max(mtu, IPV6_MIN_MTU)
    nh_offset = _last_next_header_offset(unfragmentable)
    ulen = len(unfragmentable)
    plen = len(payload)
    ext_len = ulen - IPV6_HEADER_LEN
    if ext_len + plen > _MAX_DATAGRAM:
        raise ValueError(f"IPv6 payload of {ext_len + plen} bytes exceeds 65535")
    if ulen + plen <= mtu:
        return [_ipv6_header(unfragmentable, nh_offset, next_header, ext_len + plen) + payload]
    size = min(mtu - ulen - FRAGMENT_HEADER_LEN, _MAX_DATAGRAM - ext_len - FRAGMENT_HEADER_LEN)
    size &= ~7
    if size < 8:
        raise ValueError("unfragmentable part leaves no room for fragment data in the MTU")
    data = memoryview(payload)
    out: list[bytes] = []
    full_header: bytes | None = None
    for pos in range(0, plen, size):
        chunk = data[pos : pos + size]
        more = pos + size < plen
        if more and full_header is not None:
            hdr = full_header
        else:
            frag_plen = ext_len + FRAGMENT_HEADER_LEN + len(chunk)
            hdr = _ipv6_header(unfragmentable, nh_offset, PROTO_FRAGMENT, frag_plen)
            if more:
                full_header = hdr
        frag_hdr = _FRAG_HDR.pack(next_header, 0, pos | int(more), identification)
        out.append(b"".join((hdr, frag_hdr, chunk)))
    return out


# ----------------------------------------------------------------------------
# Reassembly


class ReassemblyResult(enum.Enum):
    """Why a fragment (and maybe its datagram) was dropped; ``value`` is a counter key."""

    #: Overlaps data already held: the whole datagram is discarded (RFC 5722).
    OVERLAP = "overlap"
    #: The reassembled datagram would exceed 65535 bytes.
    TOO_BIG = "too_big"
    #: Malformed or inconsistent: non-last fragment empty or not a multiple of
    #: 8 bytes, conflicting total length, bad unfragmentable part, ECN mix.
    BAD_FRAGMENT = "bad_fragment"
    #: A memory bound was hit (bytes, datagrams or fragments per datagram).
    NO_MEMORY = "no_memory"

    def __str__(self) -> str:
        return self.value


AddResult: TypeAlias = bytes | ReassemblyResult | None


@dataclass(frozen=True, slots=True)
class Expired:
    """A datagram whose reassembly timer ran out.

    ``first_fragment`` is the offset-0 fragment as it was received (IPv4:
    the packet; IPv6: unfragmentable part + Fragment header + data), or None
    if it never arrived. Only when it is present does the stack send ICMP
    Time Exceeded, code 1, quoting it (RFC 792, RFC 8200 4.5).
    """

    family: int  # 4 or 6
    src: bytes
    dst: bytes
    ident: int
    first_fragment: bytes | None


_Key: TypeAlias = tuple[int, bytes, bytes, int, int]

COUNTER_KEYS = (
    "reassembled",
    "atomic",
    "duplicate",
    "overlap",
    "timeout",
    "evicted",
    "too_big",
    "bad_fragment",
    "ecn_mismatch",
    "no_memory",
)


class _Datagram:
    """One datagram being reassembled (or, when ``dead``, an RFC 5722 tombstone)."""

    __slots__ = (
        "charged",
        "datas",
        "dead",
        "deadline",
        "ecn_seen",
        "ends",
        "first_data",
        "header",
        "next_header",
        "received",
        "starts",
        "total",
    )

    def __init__(self, deadline: int) -> None:
        self.deadline = deadline
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.datas: list[bytes] = []
        self.received = 0
        self.total: int | None = None
        #: IPv4: the first fragment's header; IPv6: its unfragmentable part.
        self.header: bytes | None = None
        #: IPv6: the offset-0 fragment's next header.
        self.next_header = 0
        self.first_data: bytes | None = None
        self.ecn_seen = 0
        self.charged = 0
        self.dead = False


class Reassembler:
    """Bounded reassembly of IPv4 or IPv6 fragments; see the module docstring.

    ``add_ipv4`` / ``add_ipv6`` return the reassembled packet (bytes) when a
    fragment completes one, None while incomplete (or for an ignored exact
    duplicate), or the ``ReassemblyResult`` the fragment was dropped for.
    """

    def __init__(
        self,
        max_bytes: int = 4 * 2**20,
        max_datagrams: int = 256,
        timeout_ns: int = IPV4_REASSEMBLY_TIMEOUT_NS,
        max_fragments: int = 128,
    ) -> None:
        if max_bytes < 1 or max_datagrams < 1 or timeout_ns < 1 or max_fragments < 1:
            raise ValueError("Reassembler bounds must be positive")
        self.max_bytes = max_bytes
        self.max_datagrams = max_datagrams
        self.timeout_ns = timeout_ns
        self.max_fragments = max_fragments
        self._table: dict[_Key, _Datagram] = {}
        self._bytes = 0
        # Datagrams found past their deadline by ``add_*`` before ``expire`` ran.
        self._late: list[Expired] = []
        self._late_deadline: int | None = None
        #: Reason -> count. Every key of ``COUNTER_KEYS`` is present.
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_KEYS, 0)

    # -- observation --------------------------------------------------------

    @property
    def buffered_bytes(self) -> int:
        """Bytes charged for held fragments; never more than ``max_bytes``."""
        return self._bytes

    def __len__(self) -> int:
        """Datagrams held, tombstones included; never more than ``max_datagrams``."""
        return len(self._table)

    def next_deadline(self) -> int | None:
        """When ``expire`` next has something to do, or None."""
        deadline = self._late_deadline
        for dg in self._table.values():
            if deadline is None or dg.deadline < deadline:
                deadline = dg.deadline
            break
        return deadline

    def expire(self, now_ns: int) -> list[Expired]:
        """Drop every datagram whose timer ran out; report the live ones.

        Tombstones disappear silently. Each live datagram counts as a
        ``timeout``.
        """
        out = self._late
        self._late = []
        self._late_deadline = None
        table = self._table
        while table:
            key, dg = next(iter(table.items()))
            if dg.deadline > now_ns:
                break
            self._drop(key, dg)
            if not dg.dead:
                out.append(self._expired(key, dg))
        self.counters["timeout"] += len(out)
        return out

    # -- input --------------------------------------------------------------

    def add_ipv4(self, now_ns: int, packet: Ipv4Packet) -> AddResult:
        """Add a parsed IPv4 fragment; a non-fragment is returned as it is."""
        offset = packet.frag_offset << 3
        more = packet.more_frags
        if not more and offset == 0:
            return bytes(packet.buf)
        data = packet.payload
        n = len(data)
        if more and (n == 0 or n & 7):
            return self._count(ReassemblyResult.BAD_FRAGMENT)
        end = offset + n
        if end + packet.header_len > _MAX_DATAGRAM:
            return self._count(ReassemblyResult.TOO_BIG)
        key = (4, packet.src, packet.dst, packet.protocol, packet.ident)
        header = bytes(packet.header) if offset == 0 else None
        return self._add(now_ns, key, offset, end, more, data, header, 0, packet.ecn)

    def add_ipv6(
        self,
        now_ns: int,
        src: bytes,
        dst: bytes,
        identification: int,
        offset_bytes: int,
        more: bool,
        next_header: int,
        unfragmentable: BytesLike,
        data: BytesLike,
    ) -> AddResult:
        """Add an IPv6 fragment, given the fields of its Fragment header.

        ``unfragmentable`` is everything before the Fragment header (fixed
        header plus hop-by-hop/routing headers, as received), ``data`` what
        follows it. ``next_header`` is the Fragment header's Next Header.
        """
        n = len(data)
        if len(unfragmentable) < IPV6_HEADER_LEN:
            return self._count(ReassemblyResult.BAD_FRAGMENT)
        ecn = (unfragmentable[1] >> 4) & 3
        if offset_bytes == 0:
            try:
                nh_offset = _last_next_header_offset(unfragmentable)
            except ValueError:
                return self._count(ReassemblyResult.BAD_FRAGMENT)
            if not more:
                ext_len = len(unfragmentable) - IPV6_HEADER_LEN
                if ext_len + n > _MAX_DATAGRAM:
                    return self._count(ReassemblyResult.TOO_BIG)
                self.counters["atomic"] += 1
                return _ipv6_header(unfragmentable, nh_offset, next_header, ext_len + n) + bytes(
                    data
                )
        if more and (n == 0 or n & 7):
            return self._count(ReassemblyResult.BAD_FRAGMENT)
        end = offset_bytes + n
        if len(unfragmentable) - IPV6_HEADER_LEN + end > _MAX_DATAGRAM:
            return self._count(ReassemblyResult.TOO_BIG)
        key = (6, src, dst, 0, identification)
        header = bytes(unfragmentable) if offset_bytes == 0 else None
        return self._add(now_ns, key, offset_bytes, end, more, data, header, next_header, ecn)

    # -- the engine ---------------------------------------------------------

    def _count(self, result: ReassemblyResult) -> ReassemblyResult:
        self.counters[result.value] += 1
        return result

    def _drop(self, key: _Key, dg: _Datagram) -> None:
        del self._table[key]
        self._bytes -= dg.charged

    def _kill(self, key: _Key, dg: _Datagram, result: ReassemblyResult) -> ReassemblyResult:
        """Discard a datagram's data; for OVERLAP keep it as a tombstone until its deadline.

        The tombstone stays in place in the deadline order and is charged
        ``FRAGMENT_OVERHEAD`` bytes (never more than the datagram was).
        """
        if result is ReassemblyResult.OVERLAP:
            self._bytes -= dg.charged - FRAGMENT_OVERHEAD
            dg.charged = FRAGMENT_OVERHEAD
            dg.dead = True
            dg.starts, dg.ends, dg.datas = [], [], []
            dg.header = dg.first_data = None
        else:
            self._drop(key, dg)
        return self._count(result)

    def _make_room(self, need: int, keep: _Datagram | None) -> bool:
        """Evict the oldest datagrams other than ``keep`` until ``need`` more bytes fit."""
        excess = self._bytes + need - self.max_bytes
        if excess <= 0:
            return True
        victims: list[tuple[_Key, _Datagram]] = []
        for key, dg in self._table.items():
            if dg is keep:
                continue
            victims.append((key, dg))
            excess -= dg.charged
            if excess <= 0:
                break
        if excess > 0:
            return False
        for key, dg in victims:
            self._drop(key, dg)
            if not dg.dead:
                self.counters["evicted"] += 1
        return True

    def _lookup(self, now_ns: int, key: _Key) -> _Datagram | None:
        dg = self._table.get(key)
        if dg is not None and dg.deadline <= now_ns:
            # Its timer ran out before ``expire`` was called: report it there.
            self._drop(key, dg)
            if not dg.dead:
                self._late.append(self._expired(key, dg))
                if self._late_deadline is None or dg.deadline < self._late_deadline:
                    self._late_deadline = dg.deadline
            dg = None
        return dg

    def _add(
        self,
        now_ns: int,
        key: _Key,
        start: int,
        end: int,
        more: bool,
        data: BytesLike,
        header: bytes | None,
        next_header: int,
        ecn: int,
    ) -> AddResult:
        dg = self._lookup(now_ns, key)
        if dg is not None and dg.dead:
            return self._count(ReassemblyResult.OVERLAP)

        # Where it goes, and whether it fits with what is already there.
        if dg is not None:
            starts = dg.starts
            i = bisect_right(starts, start)
            prev_end = dg.ends[i - 1] if i else -1
            if i and starts[i - 1] == start and prev_end == end:
                if dg.datas[i - 1] == data:
                    self.counters["duplicate"] += 1
                    return None
                return self._kill(key, dg, ReassemblyResult.OVERLAP)
            if prev_end > start or (i < len(starts) and starts[i] < end):
                return self._kill(key, dg, ReassemblyResult.OVERLAP)
            total = dg.total
            if more:
                if total is not None and end > total:
                    return self._kill(key, dg, ReassemblyResult.BAD_FRAGMENT)
            elif (total is not None and total != end) or (dg.ends and dg.ends[-1] > end):
                return self._kill(key, dg, ReassemblyResult.BAD_FRAGMENT)
            if len(starts) >= self.max_fragments:
                self._drop(key, dg)
                return self._count(ReassemblyResult.NO_MEMORY)
        else:
            i = 0

        # Memory: charge the fragment, evicting the oldest others if needed.
        cost = len(data) + FRAGMENT_OVERHEAD + (len(header) if header is not None else 0)
        if cost + (dg.charged if dg is not None else 0) > self.max_bytes:
            if dg is not None:
                self._drop(key, dg)
            return self._count(ReassemblyResult.NO_MEMORY)
        if dg is None:
            while len(self._table) >= self.max_datagrams:
                old_key, old = next(iter(self._table.items()))
                self._drop(old_key, old)
                if not old.dead:
                    self.counters["evicted"] += 1
        if not self._make_room(cost, dg):
            if dg is not None:
                self._drop(key, dg)
            return self._count(ReassemblyResult.NO_MEMORY)
        if dg is None:
            dg = _Datagram(now_ns + self.timeout_ns)
            self._table[key] = dg

        chunk = bytes(data)
        dg.starts.insert(i, start)
        dg.ends.insert(i, end)
        dg.datas.insert(i, chunk)
        dg.received += end - start
        dg.charged += cost
        self._bytes += cost
        dg.ecn_seen |= 1 << ecn
        if header is not None:
            dg.header = header
            dg.next_header = next_header
            dg.first_data = chunk
        if not more:
            dg.total = end
        if dg.total is None or dg.received != dg.total or dg.header is None:
            return None
        return self._complete(key, dg)

    def _complete(self, key: _Key, dg: _Datagram) -> AddResult:
        self._drop(key, dg)
        seen = dg.ecn_seen
        if seen & _ECN_NOT_ECT_BIT and seen != _ECN_NOT_ECT_BIT:
            self.counters["ecn_mismatch"] += 1
            return self._count(ReassemblyResult.BAD_FRAGMENT)
        header = dg.header
        assert header is not None and dg.total is not None
        hlen = len(header)
        total = dg.total
        family = key[0]
        if family == 4:
            if hlen + total > _MAX_DATAGRAM:
                return self._count(ReassemblyResult.TOO_BIG)
        elif hlen - IPV6_HEADER_LEN + total > _MAX_DATAGRAM:
            return self._count(ReassemblyResult.TOO_BIG)
        out = bytearray(hlen + total)
        out[:hlen] = header
        pos = hlen
        for chunk in dg.datas:
            out[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        if family == 4:
            (flags_frag,) = _U16.unpack_from(out, FIELD_FLAGS_FRAG)
            _U16.pack_into(out, FIELD_TOTAL_LEN, hlen + total)
            _U16.pack_into(out, FIELD_FLAGS_FRAG, flags_frag & (FLAG_RESERVED | FLAG_DONT_FRAG))
            if seen & _ECN_CE_BIT:
                out[1] |= _ECN_CE
            _U16.pack_into(out, FIELD_CHECKSUM, 0)
            _U16.pack_into(out, FIELD_CHECKSUM, internet_checksum(memoryview(out)[:hlen]))
        else:
            out[_last_next_header_offset(header)] = dg.next_header
            _U16.pack_into(out, FIELD_PAYLOAD_LEN, hlen - IPV6_HEADER_LEN + total)
            if seen & _ECN_CE_BIT:
                out[1] |= _ECN_CE << 4
        self.counters["reassembled"] += 1
        return bytes(out)

    def _expired(self, key: _Key, dg: _Datagram) -> Expired:
        family, src, dst, _, ident = key
        first: bytes | None = None
        if dg.header is not None and dg.first_data is not None:
            if family == 4:
                first = dg.header + dg.first_data
            else:
                hdr = dg.header
                plen = len(hdr) - IPV6_HEADER_LEN + FRAGMENT_HEADER_LEN + len(dg.first_data)
                fixed = _ipv6_header(hdr, _last_next_header_offset(hdr), PROTO_FRAGMENT, plen)
                frag = _FRAG_HDR.pack(dg.next_header, 0, 1, ident)
                first = fixed + frag + dg.first_data
        return Expired(family, src, dst, ident, first)

    def pending(self) -> Iterator[tuple[int, bytes, bytes, int]]:
        """(family, src, dst, ident) of each live datagram, oldest first (for debugging)."""
        for (family, src, dst, _, ident), dg in self._table.items():
            if not dg.dead:
                yield family, src, dst, ident
