"""Connection tracking: which flow a packet belongs to and what state that flow is in.

Sans-IO. `ConnTrack.track(pkt, now_ns)` classifies one parsed packet
(`firewall.packet.PacketInfo`) and returns its state, one of the bits
`NEW`, `ESTABLISHED`, `RELATED`, `INVALID`, `UNTRACKED` (what `ct state`
matches). After the rules have decided, the caller calls `confirm(pkt)`
for an accepted packet: only then does a new flow enter the table, as in
Linux, so packets the rules drop never use an entry. Time comes in as an
argument; nothing here reads a clock, arms a timer or touches a socket.

Theory of operation
-------------------
A connection (`Connection`) has two tuples, `original` (as its first
packet saw it) and `reply` (what answers look like). A tuple is the plain
Python tuple ``(proto, src, sport, dst, dport)`` with raw address bytes;
for ICMP echo it is ``(proto, src, ident, dst, type)``, the reply tuple
carrying the reply type. The table maps both tuples to the connection, so
NAT (a later issue) can rewrite `reply` through `rekey_reply` and every
later lookup follows.

State of a packet, as Linux's conntrack gives it:

- a packet of a known flow is ESTABLISHED once the flow has seen a reply
  (the first reply packet included), else NEW;
- the first packet of a flow is NEW if it may start one: a TCP SYN (or any
  valid segment with ``tcp_loose``, which is off by default: stricter than
  Linux's default, and the kernel comparison tests switch Linux to match),
  any UDP datagram, an ICMP/ICMPv6 echo/timestamp/info request, any other
  protocol; anything else (an unsolicited SYN-ACK, an echo reply) is INVALID;
- an ICMP/ICMPv6 error quoting a packet of a tracked flow is RELATED; one
  quoting nothing we know is INVALID;
- NDP, MLD and router solicitations/advertisements are UNTRACKED (Linux's
  `noct_valid_new`), so `ct state invalid drop` never breaks IPv6;
- a TCP segment the state machine or the window check refuses is INVALID.

TCP follows Linux's table-driven tracker (`TCP_TRANSITIONS` below, the
states of `nf_conntrack_proto_tcp`) with van Rooij's window checks (a
segment must overlap what the receiver could accept, and its ACK must lie
within what the other side sent), timeouts per state (`Timeouts`), SYNs
reopening a closed or TIME-WAIT flow, and a RST answering a SYN before any
reply removing the flow. Invalid flag combinations (SYN+FIN, no flags) are
INVALID. UDP flows time out after 30 s until both sides have spoken for two
seconds, then after 120 s; ICMP flows after 30 s; others after 600 s.

Bounds and the full-table policy
--------------------------------
The table holds at most `max_entries` connections (and, when
`max_per_source` is set, at most that many started by one source address).
When it is full, confirming a new flow first expires what has timed out,
then evicts the least recently seen *unassured* flow (half-open TCP,
unanswered UDP/ICMP: what a flood creates); assured flows (TCP that
completed its handshake, UDP streams) are never evicted. If every entry is
assured, the new flow's packet is refused: `confirm` returns False and the
caller drops it (counted as `insert_failed`). A source at its own cap gets
its new flows refused the same way (`insert_failed_source`) until some of
its flows end or time out, so one hostile guest cannot crowd out the others
behind a router. Expiry is kept cheap by grouping connections in one LRU
list per timeout value, so the oldest of each list is the next to expire.
"""

from __future__ import annotations

import struct
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from .packet import (
    ACK,
    CWR,
    ECE,
    FIN,
    LATER_FRAGMENT,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    PSH,
    RST,
    SYN,
    URG,
    PacketInfo,
)

__all__ = [
    "ESTABLISHED",
    "INVALID",
    "NEW",
    "ORIGINAL",
    "RELATED",
    "REPLY",
    "STATE_NAMES",
    "UNTRACKED",
    "ConnTrack",
    "Connection",
    "ConntrackTcpState",
    "Timeouts",
]

# Packet states (bits, so a rule's `ct state` set is one mask).
NEW = 1
ESTABLISHED = 2
RELATED = 4
INVALID = 8
UNTRACKED = 16
STATE_NAMES = {"new": NEW, "established": ESTABLISHED, "related": RELATED,
               "invalid": INVALID, "untracked": UNTRACKED}

# Directions.
ORIGINAL = 0
REPLY = 1

SECOND = 1_000_000_000
MASK32 = 0xFFFFFFFF
HALF = 0x80000000
MAX_ACK_WINDOW = 66000


class ConntrackTcpState:
    """Linux's TCP conntrack states (`cat /proc/net/nf_conntrack` shows these names)."""

    NONE = 0
    SYN_SENT = 1
    SYN_RECV = 2
    ESTABLISHED = 3
    FIN_WAIT = 4
    CLOSE_WAIT = 5
    LAST_ACK = 6
    TIME_WAIT = 7
    CLOSE = 8
    SYN_SENT2 = 9
    INVALID = 10  # not a state: the segment is refused
    IGNORE = 11  # not a state: let it through, keep the state

    NAMES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
             "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2")


def _row(text: str) -> tuple[int, ...]:
    codes = {"NO": 0, "SS": 1, "SR": 2, "ES": 3, "FW": 4, "CW": 5, "LA": 6, "TW": 7,
             "CL": 8, "S2": 9, "IV": 10, "IG": 11}
    return tuple(codes[c] for c in text.split())


# Segment kinds, from the flags (RST first, then SYN/SYN-ACK, FIN, ACK, nothing).
K_SYN, K_SYNACK, K_FIN, K_ACK, K_RST, K_NONE = range(6)

#: TCP_TRANSITIONS[direction][segment kind][old state] -> new state. Columns:
#: NONE SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE SYN_SENT2
TCP_TRANSITIONS = (
    (  # ORIGINAL (the side that sent the first SYN)
        _row("SS SS IG IG IG IG IG SS SS S2"),  # SYN: start; a SYN reopens TIME_WAIT/CLOSE
        _row("IV IV IG IG IG IG IG IG IG SR"),  # SYN-ACK: only in a simultaneous open
        _row("IV IV FW FW LA LA LA TW CL IV"),  # FIN
        _row("ES IV ES ES CW CW TW TW CL IV"),  # ACK (NONE -> ES only when picking up)
        _row("IV CL CL CL CL CL CL CL CL CL"),  # RST
        _row("IV IV IV IV IV IV IV IV IV IV"),  # none of these flags
    ),
    (  # REPLY
        _row("IV S2 IV IV IV IV IV IV IV S2"),  # SYN: simultaneous open
        _row("IV SR IG IG IG IG IG IG IG SR"),  # SYN-ACK
        _row("IV IV FW FW LA LA LA TW CL IV"),  # FIN
        _row("IV IG SR ES CW CW TW TW CL IG"),  # ACK
        _row("IV CL CL CL CL CL CL CL CL CL"),  # RST
        _row("IV IV IV IV IV IV IV IV IV IV"),  # none
    ),
)

# Flag combinations conntrack accepts (PSH, ECE and CWR never matter).
_VALID_FLAGS = frozenset((SYN, SYN | URG, SYN | ACK, RST, RST | ACK, FIN | ACK,
                          FIN | ACK | URG, ACK, ACK | URG))

# ICMP request type -> reply type (what may start a flow).
ICMP_REQUESTS = {8: 0, 13: 14, 15: 16, 17: 18}
ICMPV6_REQUESTS = {128: 129, 139: 140}
# ICMPv6 that conntrack leaves alone (MLD, RS, RA, NS, NA, redirect, MLDv2 report).
ICMPV6_UNTRACKED = frozenset((130, 131, 132, 133, 134, 135, 136, 137, 143))


@dataclass
class Timeouts:
    """Timeouts in nanoseconds; the defaults are Linux's."""

    tcp: tuple[int, ...] = (
        0,  # NONE (never used)
        120 * SECOND,  # SYN_SENT
        60 * SECOND,  # SYN_RECV
        432000 * SECOND,  # ESTABLISHED: 5 days
        120 * SECOND,  # FIN_WAIT
        60 * SECOND,  # CLOSE_WAIT
        30 * SECOND,  # LAST_ACK
        120 * SECOND,  # TIME_WAIT
        10 * SECOND,  # CLOSE
        120 * SECOND,  # SYN_SENT2
    )
    tcp_unacknowledged: int = 300 * SECOND
    udp: int = 30 * SECOND
    udp_stream: int = 120 * SECOND
    udp_stream_after: int = 2 * SECOND
    icmp: int = 30 * SECOND
    generic: int = 600 * SECOND


# TCP per-direction flags.
F_WSCALE = 1
F_SACK_PERM = 2
F_CLOSE_INIT = 4
F_LIBERAL = 8
F_DATA_UNACK = 16
F_MAXACK_SET = 32


class TcpSide:
    """What the tracker knows of one direction of a TCP flow (Linux's ip_ct_tcp_state)."""

    __slots__ = ("end", "flags", "maxack", "maxend", "maxwin", "scale")

    def __init__(self) -> None:
        self.end = 0
        self.maxend = 0
        self.maxwin = 0
        self.scale = 0
        self.flags = 0
        self.maxack = 0

    def __repr__(self) -> str:
        return (f"<TcpSide end={self.end} maxend={self.maxend} maxwin={self.maxwin} "
                f"scale={self.scale} flags={self.flags:#x}>")


Tuple = tuple[int, bytes, int, bytes, int]


class Connection:
    """One tracked flow. `original`/`reply` are its two tuples (see the module docstring)."""

    __slots__ = ("assured", "bucket", "bytes", "confirmed", "created", "expires", "killed",
                 "last_dir",
                 "last_end", "last_flags", "last_index", "last_seq", "last_win",
                 "last_wscale", "nat", "original", "packets", "proto", "reply", "seen_reply",
                 "sides", "source", "tcp_state", "timeout", "version")

    def __init__(self, original: Tuple, reply: Tuple, version: int, now_ns: int) -> None:
        self.original = original
        self.reply = reply
        self.proto = original[0]
        self.version = version
        self.source = original[1]
        self.created = now_ns
        self.expires = now_ns
        self.timeout = 0
        self.bucket: OrderedDict[Connection, None] | None = None
        self.seen_reply = False
        self.assured = False
        self.confirmed = False
        self.killed = False  # removed from the table: never (re-)confirm
        self.packets = [0, 0]
        self.bytes = [0, 0]
        self.tcp_state = ConntrackTcpState.NONE
        self.sides = (TcpSide(), TcpSide()) if self.proto == PROTO_TCP else None
        self.last_index = K_NONE
        self.last_dir = ORIGINAL
        self.last_seq = 0
        self.last_end = 0
        self.last_win = 0
        self.last_flags = 0
        self.last_wscale = 0
        #: For NAT: whatever it needs to remember about this flow.
        self.nat: object = None

    def describe(self) -> str:
        from stack.wire.ip import addr_str

        proto, src, sport, dst, dport = self.original
        state = ConntrackTcpState.NAMES[self.tcp_state] + " " if self.proto == PROTO_TCP else ""
        flags = ("" if self.seen_reply else "[UNREPLIED] ") + ("[ASSURED] " if self.assured
                                                               else "")
        return (f"proto={proto} {state}src={addr_str(src)} dst={addr_str(dst)} "
                f"sport={sport} dport={dport} {flags}".rstrip())

    def __repr__(self) -> str:
        return f"<Connection {self.describe()}>"


def _before(a: int, b: int) -> bool:
    """a < b in sequence space."""
    return ((a - b) & MASK32) >= 0x80000000


def _after(a: int, b: int) -> bool:
    return ((b - a) & MASK32) >= 0x80000000


def _segment_kind(flags: int) -> int:
    if flags & RST:
        return K_RST
    if flags & SYN:
        return K_SYNACK if flags & ACK else K_SYN
    if flags & FIN:
        return K_FIN
    if flags & ACK:
        return K_ACK
    return K_NONE


_SACK_BLOCK = struct.Struct("!II")


def _syn_options(pkt: PacketInfo, side: TcpSide) -> None:
    """Window scale and SACK-permitted from a SYN's options (lenient, like Linux)."""
    side.scale = 0
    side.flags &= ~(F_WSCALE | F_SACK_PERM)
    opts = pkt.tcp_options()
    i, n = 0, len(opts)
    while i < n:
        kind = opts[i]
        if kind == 0:
            return
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n:
            return
        size = opts[i + 1]
        if size < 2 or i + size > n:
            return
        if kind == 4 and size == 2:
            side.flags |= F_SACK_PERM
        elif kind == 3 and size == 3:
            side.scale = min(opts[i + 2], 14)
            side.flags |= F_WSCALE
        i += size


def _highest_sack(pkt: PacketInfo, ack: int) -> int:
    opts = pkt.tcp_options()
    n = len(opts)
    if n == 12 and opts[0] == 1 and opts[1] == 1 and opts[2] == 8:
        return ack  # timestamps only: the common case
    i = 0
    while i < n:
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n:
            break
        size = opts[i + 1]
        if size < 2 or i + size > n:
            break
        if kind == 5 and size >= 10 and (size - 2) % 8 == 0:
            for j in range(i + 2, i + size, 8):
                right = _SACK_BLOCK.unpack_from(opts, j)[1]
                if _after(right, ack):
                    ack = right
            break
        i += size
    return ack


class ConnTrack:
    """The connection table of one host or router (see the module docstring)."""

    def __init__(self, max_entries: int = 16384, *, max_per_source: int | None = None,
                 tcp_loose: bool = False, timeouts: Timeouts | None = None,
                 gc_interval_ns: int = SECOND) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.max_per_source = max_per_source
        self.tcp_loose = tcp_loose
        self.timeouts = timeouts or Timeouts()
        self.gc_interval_ns = gc_interval_ns
        self.stats: Counter[str] = Counter()
        self._table: dict[Tuple, tuple[Connection, int]] = {}
        self._count = 0
        self._per_source: Counter[bytes] = Counter()
        self._buckets: dict[int, OrderedDict[Connection, None]] = {}
        self._unassured: OrderedDict[Connection, None] = OrderedDict()
        self._last_gc = 0

    # --- public ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Connection]:
        seen = set()
        for conn, _ in self._table.values():
            if id(conn) not in seen:
                seen.add(id(conn))
                yield conn

    def lookup(self, tuple_: Tuple, now_ns: int | None = None) -> tuple[Connection, int] | None:
        """The connection a tuple belongs to and its direction (None if unknown/expired)."""
        found = self._table.get(tuple_)
        if found is None:
            return None
        if now_ns is not None and found[0].expires <= now_ns:
            self._destroy(found[0])
            self.stats["expired"] += 1
            return None
        return found

    def track(self, pkt: PacketInfo, now_ns: int) -> int:
        """Classify `pkt` (setting pkt.ct_state, pkt.conn, pkt.ct_dir) and return the state."""
        if now_ns - self._last_gc >= self.gc_interval_ns:
            self._last_gc = now_ns
            self.expire(now_ns)
        pkt.conn = None
        pkt.ct_dir = ORIGINAL
        state = self._track(pkt, now_ns)
        pkt.ct_state = state
        if state == INVALID:
            self.stats["invalid"] += 1
        return state

    def classify(self, pkt: PacketInfo, now_ns: int) -> int:
        """The state of a packet already tracked once on this host (looped back), no update."""
        if not pkt.l4_ok or pkt.fragment == LATER_FRAGMENT:
            return self.track(pkt, now_ns)
        key = self._packet_tuple(pkt)
        found = self.lookup(key, now_ns) if key is not None else None
        if found is None:
            return self.track(pkt, now_ns)
        conn, direction = found
        pkt.conn = conn
        pkt.ct_dir = direction
        state = ESTABLISHED if direction == REPLY or conn.seen_reply else NEW
        pkt.ct_state = state
        return state

    def confirm(self, pkt: PacketInfo) -> bool:
        """The rules accepted `pkt`: enter its new flow in the table. False: table full."""
        conn = pkt.conn
        if conn is None or conn.confirmed or conn.killed:
            return True
        now = pkt.now
        if self.max_per_source is not None and (
                self._per_source[conn.source] >= self.max_per_source):
            self.stats["insert_failed_source"] += 1
            pkt.conn = None
            return False
        if self._count >= self.max_entries:
            self.expire(now)
            if self._count >= self.max_entries and not self._evict():
                self.stats["insert_failed"] += 1
                pkt.conn = None
                return False
        if conn.original in self._table or conn.reply in self._table:
            self.stats["insert_clash"] += 1
            pkt.conn = None
            return False
        conn.confirmed = True
        self._table[conn.original] = (conn, ORIGINAL)
        self._table[conn.reply] = (conn, REPLY)
        self._count += 1
        self._per_source[conn.source] += 1
        if not conn.assured:
            self._unassured[conn] = None
        self._place(conn, conn.timeout)
        self.stats["insert"] += 1
        return True

    def expire(self, now_ns: int) -> int:
        """Remove every connection whose timeout has passed; returns how many."""
        gone = 0
        for bucket in list(self._buckets.values()):
            while bucket:
                conn = next(iter(bucket))
                if conn.expires > now_ns:
                    break
                self._destroy(conn)
                gone += 1
        self.stats["expired"] += gone
        return gone

    def remove(self, conn: Connection) -> None:
        if conn.confirmed:
            self._destroy(conn)

    def rekey_reply(self, conn: Connection, reply: Tuple) -> None:
        """Change what replies of `conn` look like (for NAT)."""
        if conn.confirmed:
            if self._table.get(conn.reply, (None,))[0] is conn:
                del self._table[conn.reply]
            self._table[reply] = (conn, REPLY)
        conn.reply = reply

    def clear(self) -> None:
        self._table.clear()
        self._buckets.clear()
        self._unassured.clear()
        self._per_source.clear()
        self._count = 0

    # --- bookkeeping ------------------------------------------------------------------------
    def _place(self, conn: Connection, timeout: int) -> None:
        """Put a confirmed conn at the young end of its timeout's LRU list."""
        old = conn.bucket
        bucket = self._buckets.get(timeout)
        if bucket is None:
            bucket = self._buckets[timeout] = OrderedDict()
        if old is bucket:
            bucket.move_to_end(conn)
        else:
            if old is not None:
                old.pop(conn, None)
            bucket[conn] = None
            conn.bucket = bucket
        if not conn.assured:
            unassured = self._unassured
            if conn in unassured:
                unassured.move_to_end(conn)

    def _refresh(self, conn: Connection, timeout: int, now_ns: int) -> None:
        conn.timeout = timeout
        conn.expires = now_ns + timeout
        if conn.confirmed:
            self._place(conn, timeout)

    def _assure(self, conn: Connection) -> None:
        if not conn.assured:
            conn.assured = True
            self._unassured.pop(conn, None)

    def _destroy(self, conn: Connection) -> None:
        conn.killed = True
        if not conn.confirmed:
            return
        conn.confirmed = False
        for key in (conn.original, conn.reply):
            found = self._table.get(key)
            if found is not None and found[0] is conn:
                del self._table[key]
        if conn.bucket is not None:
            conn.bucket.pop(conn, None)
            conn.bucket = None
        self._unassured.pop(conn, None)
        self._count -= 1
        left = self._per_source[conn.source] - 1
        if left > 0:
            self._per_source[conn.source] = left
        else:
            del self._per_source[conn.source]

    def _evict(self) -> bool:
        """Drop the least recently seen unassured flow."""
        for conn in self._unassured:
            self._destroy(conn)
            self.stats["early_drop"] += 1
            return True
        return False

    # --- classification -----------------------------------------------------------------------
    def _packet_tuple(self, pkt: PacketInfo) -> Tuple | None:
        proto = pkt.proto
        if proto == PROTO_TCP or proto == PROTO_UDP:
            return (proto, pkt.src, pkt.sport, pkt.dst, pkt.dport)
        if proto == PROTO_ICMP or proto == PROTO_ICMPV6:
            return (proto, pkt.src, pkt.icmp_id, pkt.dst, pkt.icmp_type)
        return (proto, pkt.src, 0, pkt.dst, 0)

    def _track(self, pkt: PacketInfo, now: int) -> int:
        if not pkt.l4_ok or pkt.fragment == LATER_FRAGMENT:
            return INVALID
        proto = pkt.proto
        if proto == PROTO_ICMP or proto == PROTO_ICMPV6:
            if pkt.is_icmp_error:
                return self._related(pkt, now)
            if proto == PROTO_ICMPV6 and pkt.icmp_type in ICMPV6_UNTRACKED:
                return UNTRACKED
        elif proto == PROTO_TCP and (pkt.tcp_flags & ~(ECE | CWR | PSH)) not in _VALID_FLAGS:
            return INVALID
        key = self._packet_tuple(pkt)
        assert key is not None
        for _attempt in range(2):
            found = self.lookup(key, now)
            if found is None:
                return self._new(pkt, key, now)
            conn, direction = found
            pkt.conn = conn
            pkt.ct_dir = direction
            if proto == PROTO_TCP:
                verdict = self._tcp_packet(conn, direction, pkt, now)
                if verdict == _REOPEN:
                    self._destroy(conn)
                    pkt.conn = None
                    continue
                if verdict == INVALID:
                    pkt.conn = None
                    return INVALID
            elif proto == PROTO_UDP:
                self._udp_packet(conn, direction, now)
            else:
                self._refresh(conn, self.timeouts.icmp if proto in (PROTO_ICMP, PROTO_ICMPV6)
                              else self.timeouts.generic, now)
            conn.packets[direction] += 1
            conn.bytes[direction] += pkt.length
            state = ESTABLISHED if direction == REPLY or conn.seen_reply else NEW
            if direction == REPLY:
                conn.seen_reply = True
            if conn.confirmed and conn.expires <= now:  # a RST closed a flow with no reply
                self._destroy(conn)
            return state
        return INVALID

    def _new(self, pkt: PacketInfo, key: Tuple, now: int) -> int:
        proto = pkt.proto
        t = self.timeouts
        if proto == PROTO_ICMP or proto == PROTO_ICMPV6:
            requests = ICMP_REQUESTS if proto == PROTO_ICMP else ICMPV6_REQUESTS
            reply_type = requests.get(pkt.icmp_type)
            if reply_type is None:
                return INVALID
            conn = Connection(key, (proto, pkt.dst, pkt.icmp_id, pkt.src, reply_type),
                              pkt.version, now)
            self._refresh(conn, t.icmp, now)
        else:
            conn = Connection(key, (proto, pkt.dst, key[4], pkt.src, key[2]), pkt.version, now)
            if proto == PROTO_TCP:
                if not self._tcp_new(conn, pkt, now):
                    return INVALID
            elif proto == PROTO_UDP:
                self._refresh(conn, t.udp, now)
            else:
                self._refresh(conn, t.generic, now)
        conn.packets[ORIGINAL] = 1
        conn.bytes[ORIGINAL] = pkt.length
        pkt.conn = conn
        pkt.ct_dir = ORIGINAL
        self.stats["new"] += 1
        return NEW

    def _related(self, pkt: PacketInfo, now: int) -> int:
        inner = pkt.inner()
        if inner is None or not inner.l4_ok:
            return INVALID
        key = self._packet_tuple(inner)
        found = self.lookup(key, now) if key is not None else None
        if found is None:
            return INVALID
        conn, direction = found
        pkt.conn = conn
        # the error travels against the quoted packet
        pkt.ct_dir = REPLY if direction == ORIGINAL else ORIGINAL
        self.stats["related"] += 1
        return RELATED

    def _udp_packet(self, conn: Connection, direction: int, now: int) -> None:
        t = self.timeouts
        if conn.seen_reply:
            if now - conn.created >= t.udp_stream_after:
                self._refresh(conn, t.udp_stream, now)
                self._assure(conn)
            else:
                self._refresh(conn, t.udp, now)
        else:
            self._refresh(conn, t.udp, now)

    # --- TCP ---------------------------------------------------------------------------------
    def _tcp_new(self, conn: Connection, pkt: PacketInfo, now: int) -> bool:
        kind = _segment_kind(pkt.tcp_flags)
        new_state = TCP_TRANSITIONS[ORIGINAL][kind][ConntrackTcpState.NONE]
        assert conn.sides is not None
        sender, receiver = conn.sides
        end = self._seg_end(pkt)
        if new_state == ConntrackTcpState.SYN_SENT:
            sender.end = sender.maxend = end
            sender.maxwin = pkt.window or 1
            _syn_options(pkt, sender)
        elif new_state == ConntrackTcpState.ESTABLISHED and self.tcp_loose:
            sender.end = end
            sender.maxwin = pkt.window or 1
            sender.maxend = (end + sender.maxwin) & MASK32
            sender.flags = receiver.flags = F_SACK_PERM | F_LIBERAL
        else:
            return False
        conn.last_index = K_NONE
        verdict = self._tcp_packet(conn, ORIGINAL, pkt, now)
        return verdict != INVALID and verdict != _REOPEN

    @staticmethod
    def _seg_end(pkt: PacketInfo) -> int:
        flags = pkt.tcp_flags
        return (pkt.seq + pkt.payload_len + (1 if flags & SYN else 0)
                + (1 if flags & FIN else 0)) & MASK32

    def _tcp_packet(self, conn: Connection, direction: int, pkt: PacketInfo, now: int) -> int:
        flags = pkt.tcp_flags
        kind = _segment_kind(flags)
        old = conn.tcp_state
        new = TCP_TRANSITIONS[direction][kind][old]
        sides = conn.sides
        assert sides is not None
        skip_window = False
        if new == ConntrackTcpState.SYN_SENT and old >= ConntrackTcpState.TIME_WAIT:
            if ((sides[0].flags | sides[1].flags) & F_CLOSE_INIT) or (
                    conn.last_dir == direction and conn.last_index == K_RST):
                self.stats["tcp_reopen"] += 1
                return _REOPEN
            new = ConntrackTcpState.IGNORE
        if new == ConntrackTcpState.IGNORE:
            if (kind == K_SYNACK and conn.last_index == K_SYN and conn.last_dir != direction
                    and pkt.ack == conn.last_end):
                # This SYN-ACK answers a SYN we ignored: both ends are in sync, we were not.
                old, new = ConntrackTcpState.SYN_SENT, ConntrackTcpState.SYN_RECV
                last = sides[conn.last_dir]
                last.end = last.maxend = conn.last_end
                last.maxwin = conn.last_win or 1
                last.scale = conn.last_wscale
                last.flags = conn.last_flags
                here = sides[direction]
                here.end = here.maxend = here.maxwin = here.scale = here.flags = here.maxack = 0
            else:
                conn.last_index = kind
                conn.last_dir = direction
                conn.last_seq = pkt.seq
                conn.last_end = self._seg_end(pkt)
                conn.last_win = pkt.window
                if kind == K_SYN and direction == ORIGINAL:
                    probe = TcpSide()
                    _syn_options(pkt, probe)
                    conn.last_flags = probe.flags & (F_WSCALE | F_SACK_PERM)
                    conn.last_wscale = probe.scale
                self.stats["tcp_ignored"] += 1
                return _OK  # state unchanged; the packet passes
        elif new == ConntrackTcpState.INVALID:
            return INVALID
        elif new == ConntrackTcpState.CLOSE and kind == K_RST:
            other = sides[1 - direction]
            if other.flags & F_MAXACK_SET and _before(pkt.seq, other.maxack):
                return INVALID
            if ((conn.seen_reply and conn.last_index == K_SYN)
                    or (not conn.assured and conn.last_index == K_ACK)) and (
                    pkt.ack == conn.last_end):
                skip_window = True
        if not skip_window and not self._in_window(conn, direction, kind, pkt):
            return INVALID
        conn.last_index = kind
        conn.last_dir = direction
        conn.tcp_state = new
        if old != new and new == ConntrackTcpState.FIN_WAIT:
            sides[direction].flags |= F_CLOSE_INIT
        t = self.timeouts
        timeout = t.tcp[new]
        if ((sides[0].flags | sides[1].flags) & F_DATA_UNACK) and (
                timeout > t.tcp_unacknowledged):
            timeout = t.tcp_unacknowledged
        if not conn.seen_reply:
            if flags & RST:
                # Only a RST answered: nothing was established; forget the flow now.
                self._refresh(conn, 0, now)
                return _OK
        elif (not conn.assured
              and old in (ConntrackTcpState.SYN_RECV, ConntrackTcpState.ESTABLISHED)
              and new == ConntrackTcpState.ESTABLISHED):
            self._assure(conn)
        self._refresh(conn, timeout, now)
        return _OK

    def _in_window(self, conn: Connection, direction: int, kind: int, pkt: PacketInfo) -> bool:
        assert conn.sides is not None
        sender = conn.sides[direction]
        receiver = conn.sides[1 - direction]
        flags = pkt.tcp_flags
        seq = pkt.seq
        ack = sack = pkt.ack
        win = pkt.window
        end = self._seg_end(pkt)
        if receiver.flags & F_SACK_PERM and flags & ACK and pkt.tcp_hlen > 20:
            sack = _highest_sack(pkt, ack)
        state = conn.tcp_state
        if sender.maxwin == 0:
            if flags & SYN:
                # SYN-ACK answering the SYN, or a SYN from the reply side (simultaneous open)
                sender.end = sender.maxend = end
                sender.maxwin = win or 1
                _syn_options(pkt, sender)
                if not (sender.flags & F_WSCALE and receiver.flags & F_WSCALE):
                    sender.scale = receiver.scale = 0
                if not flags & ACK:
                    return True
            else:
                # picking up the middle of a flow whose history we lost
                sender.end = end
                scaled = win << sender.scale
                sender.maxwin = scaled or 1
                sender.maxend = (end + sender.maxwin) & MASK32
                if receiver.maxwin == 0:
                    receiver.end = receiver.maxend = sack
        elif ((state == ConntrackTcpState.SYN_SENT and direction == ORIGINAL)
              or (state == ConntrackTcpState.SYN_RECV and direction == REPLY)) and _after(
                  end, sender.end):
            # a retransmitted SYN (or SYN-ACK) with a new ISN
            sender.end = sender.maxend = end
            sender.maxwin = win or 1
            _syn_options(pkt, sender)
        if not flags & ACK:
            ack = sack = receiver.end
        elif flags & (ACK | RST) == ACK | RST and ack == 0:
            ack = sack = receiver.end  # broken stacks: RST+ACK with a zero ACK
        if seq == end and (not flags & RST or (seq == 0 and state == ConntrackTcpState.SYN_SENT)):
            seq = end = sender.end  # no data: only the ACK is checked
        max_ack_window = sender.maxwin if sender.maxwin > MAX_ACK_WINDOW else MAX_ACK_WINDOW
        s_end = sender.end
        r_end = receiver.end
        # van Rooij's four bounds, in sequence space (x "before" y: (x - y) mod 2^32 >= 2^31):
        # seq <= sender.maxend, end >= sender.end - receiver.maxwin,
        # sack <= receiver.end, sack >= receiver.end - max_ack_window
        if (((seq - sender.maxend - 1) & MASK32) >= HALF
                and ((s_end - receiver.maxwin - 1 - end) & MASK32) >= HALF
                and ((sack - r_end - 1) & MASK32) >= HALF
                and ((r_end - max_ack_window - 1 - sack) & MASK32) >= HALF):
            if not flags & SYN:
                win <<= sender.scale
            swin = win + ((sack - ack) & MASK32)
            if sender.maxwin < swin:
                sender.maxwin = swin
            if ((s_end - end) & MASK32) >= HALF:  # end after sender.end
                sender.end = end
                sender.flags |= F_DATA_UNACK
            if flags & ACK:
                if not sender.flags & F_MAXACK_SET:
                    sender.maxack = ack
                    sender.flags |= F_MAXACK_SET
                elif ((sender.maxack - ack) & MASK32) >= HALF:
                    sender.maxack = ack
            if receiver.maxwin != 0 and ((sender.maxend - end) & MASK32) >= HALF:
                receiver.maxwin += (end - sender.maxend) & MASK32
            if ((receiver.maxend - 1 - sack - win) & MASK32) >= HALF:
                receiver.maxend = (sack + win + (1 if win == 0 else 0)) & MASK32
            if ack == r_end:
                receiver.flags &= ~F_DATA_UNACK
            return True
        self.stats["tcp_out_of_window"] += 1
        return bool(sender.flags & F_LIBERAL)


_OK = 0
_REOPEN = -1


@dataclass
class ConntrackSummary:
    """Counts for `show`: entries by protocol/state and the table's statistics."""

    entries: int
    max_entries: int
    by_state: dict[str, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)


def summarize(table: ConnTrack) -> ConntrackSummary:
    by_state: Counter[str] = Counter()
    for conn in table:
        if conn.proto == PROTO_TCP:
            by_state[f"tcp {ConntrackTcpState.NAMES[conn.tcp_state]}"] += 1
        else:
            name = {PROTO_UDP: "udp", PROTO_ICMP: "icmp", PROTO_ICMPV6: "icmpv6"}.get(
                conn.proto, f"proto {conn.proto}")
            by_state[f"{name} {'replied' if conn.seen_reply else 'unreplied'}"] += 1
    return ConntrackSummary(len(table), table.max_entries, dict(sorted(by_state.items())),
                            dict(sorted(table.stats.items())))
