"""Host-side multicast group membership: IGMPv3 (RFC 3376) and MLDv2 (RFC 3810).

A sans-IO engine, one object per interface: ``IgmpHost`` for IPv4,
``MldHost`` for IPv6. It touches nothing but bytes, the ``now_ns`` integers
it is given and the ``random.Random`` it was built with (its only source of
randomness, so runs are reproducible in virtual time). It never reads a
clock, sleeps, or does I/O, and it imports only ``stack.wire``. It does not
build IP headers: every ``Outgoing`` message goes out with TTL / hop limit 1
and a Router Alert (IPv4 option, RFC 2113; IPv6 hop-by-hop option, RFC 2711),
which the stack adds.

How the stack drives it:

- ``join(now, group)`` once per socket membership and ``leave(now, group)``
  once per drop: the engine keeps the reference count, and only the first
  join and the last leave change the interface state (and send reports).
  ``leave`` of a group not joined raises ValueError: the stack answers
  EADDRNOTAVAIL itself before calling. ``groups`` / ``is_member`` are the
  delivery filter. The all-systems / all-nodes group may be joined like any
  other; it is simply never reported.
- ``receive(now, message, src, dst, ...)`` for every IGMP message (IPv4
  payload) / MLD message (the whole ICMPv6 message) addressed to the
  interface. Garbage is counted (``counters["malformed"]``), never raised.
- ``poll(now)`` (MLD: ``poll(now, src_link_local)``) at or after
  ``next_deadline()`` returns the messages due; the MLD engine computes the
  ICMPv6 checksum with the source address it is given (the interface's
  link-local address, or :: before it has one, RFC 3810 5.2.13). Call
  ``announce_all`` when that address becomes valid (RFC 3810 5.2.14) or the
  link comes up.

Scope: any-source multicast. A member is in EXCLUDE mode with no sources;
a non-member in INCLUDE mode with none. So a join is reported as
CHANGE_TO_EXCLUDE({}) and a leave as CHANGE_TO_INCLUDE({}) (RFC 3376 5.1,
RFC 3810 6.1), and the current state as MODE_IS_EXCLUDE({}). Queries of
every kind are answered as the RFCs say.

Theory of operation. The engine keeps, per interface:

- the *compatibility mode* (RFC 3376 7.2.1, RFC 3810 8.2.1): the newest
  version unless an older querier was heard -- an IGMPv1 query, or an
  IGMPv2 / MLDv1 *general* query -- within the Older Version Querier Present
  Timeout, [Robustness Variable] x [Query Interval] + that query's response
  time (RFC 3376 8.12, RFC 3810 9.12). The timeouts are deadlines; whenever
  the mode changes (either way) every pending response and retransmission is
  cancelled, as both RFCs require.
- *state-change reports*: a per-group retransmission count, set to the
  Robustness Variable on a join or leave. A change makes a report go out at
  once; it carries a record for every group with a count left (TO_EX if
  the group is joined now, TO_IN if not), each count is decremented, and a
  single retransmission timer fires again after a random delay in
  (0, [Unsolicited Report Interval]] while any count is left. That is the
  RFC's "merge the new change into the pending report" rule for ASM.
  Unsolicited Report Interval: 1 s for IGMPv3/MLDv2 (RFC 3376 8.11,
  RFC 3810 9.11), 10 s in the older modes (RFC 2236 8.10, RFC 2710 7.10).
- *query responses* in the newest version (RFC 3376 5.2, RFC 3810 6.2): an
  interface timer for general queries and a timer plus recorded source list
  per group for group(-and-source)-specific ones, following the five rules
  (an earlier pending general response covers everything; a new general
  response replaces a later one; a group query with no source list or over
  a pending one without sources clears the list; source lists accumulate).
  Delays are random in (0, Max Resp Time]. When the interface timer fires,
  one MODE_IS_EXCLUDE record per joined group is packed into as few reports
  as fit the MTU; a group timer gives MODE_IS_EXCLUDE({}) or, for recorded
  sources B, MODE_IS_INCLUDE(B) (Table "EXCLUDE(A) -> IS_IN(B-A)" with A
  empty); nothing if the group was left meanwhile.
- in the *older modes* (RFC 2236, RFC 2710, as RFC 3376 7.2.1 and
  RFC 3810 8.2.1 ask): one timer per group; a query (re)starts it only if
  it is not running or the query's Max Resp Time is shorter than what is
  left; on expiry an IGMPv1/v2 / MLDv1 report goes to the group itself.
  Hearing another host's report for a group whose timer runs stops it
  (report suppression). A leave sends one IGMPv2 Leave to 224.0.0.2 / one
  MLDv1 Done to ff02::2 unless another host was the last to report the
  group (the RFCs' "flag"); IGMPv1 has no leave.

What is never reported: 224.0.0.1 (RFC 3376 5), ff02::1 and multicast
addresses of scope 0 or 1 (RFC 3810 6). Solicited-node groups are reported.
A group joined and left again before its first report went out is never
reported at all. Validation of queries: MLD queries must come from a
link-local source (RFC 3810 5.1.14) and, when the stack says so, with hop
limit 1 and a Router Alert (RFC 3810 6.2); IGMPv2/v3 queries without Router
Alert, and general queries sent to a multicast address other than
224.0.0.1, are ignored (RFC 3376 9.1). Ignored messages are counted.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from .wire import igmp, mld
from .wire._multicast import (
    CHANGE_TO_EXCLUDE,
    CHANGE_TO_INCLUDE,
    MODE_IS_EXCLUDE,
    MODE_IS_INCLUDE,
    GroupRecord,
)
from .wire._types import BytesLike
from .wire.errors import WireError
from .wire.icmpv6 import Icmpv6Packet
from .wire.ipv6 import ALL_MLDV2_ROUTERS, ALL_NODES, ALL_ROUTERS

__all__ = [
    "DEFAULT_QUERY_INTERVAL_NS",
    "MAX_RECORDED_SOURCES",
    "IgmpHost",
    "MldHost",
    "Outgoing",
]

_SECOND = 10**9

#: [Query Interval] until a query says otherwise (RFC 3376 8.2, RFC 3810 9.2).
DEFAULT_QUERY_INTERVAL_NS = 125 * _SECOND
#: A group-and-source-specific query response records at most this many
#: sources; past it the engine answers as for a group-specific query
#: (MODE_IS_EXCLUDE({}) -- true, and a superset of the answer), so a hostile
#: querier cannot grow the state without bound.
MAX_RECORDED_SOURCES = 256

# Compatibility modes, oldest first. IGMP uses all three (v1, v2, v3); MLD
# uses _OLD (MLDv1) and _CURRENT (MLDv2).
_OLDEST = 1
_OLD = 2
_CURRENT = 3

_COUNTER_KEYS = (
    "malformed",  # did not parse (truncated, bad checksum, bad length, ...)
    "ignored",  # parsed, but failed validation or is not for a host
    "query_general",
    "query_group",
    "query_group_source",
    "query_older",  # of those, sent by an older-version querier
    "report_heard",  # another host's report (older modes act on it)
    "suppressed",  # our pending older-version report cancelled by one
    "mode_changes",
    "reports_sent",
    "leaves_sent",
)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: the stack wraps it in an IP header.

    ``payload`` is the complete IGMP message (IPv4 payload) or ICMPv6 MLD
    message, checksum included. Send it to ``dst`` with TTL / hop limit
    ``ttl`` and, when ``router_alert``, the Router Alert option.
    """

    dst: bytes
    payload: bytes
    ttl: int = 1
    router_alert: bool = True

    @property
    def hop_limit(self) -> int:
        return self.ttl


# Protocol-independent messages the engine decides to send; the subclasses
# encode them.


@dataclass(frozen=True, slots=True)
class _Report:
    """An IGMPv3 / MLDv2 report."""

    records: tuple[GroupRecord, ...]


@dataclass(frozen=True, slots=True)
class _OldReport:
    """An IGMPv1 (``oldest``) or IGMPv2 / MLDv1 report for one group."""

    group: bytes
    oldest: bool


@dataclass(frozen=True, slots=True)
class _Leave:
    """An IGMPv2 leave / MLDv1 done."""

    group: bytes


_Message = _Report | _OldReport | _Leave


@dataclass(frozen=True, slots=True)
class _Query:
    """A received query, decoded to what the engine needs."""

    version: int  # _OLDEST / _OLD / _CURRENT: which querier sent it
    max_resp_ns: int
    group: bytes | None  # None: general query
    sources: tuple[bytes, ...] = ()
    qrv: int = 0
    qqi_s: int = 0


class _MembershipHost:
    """The state machine shared by IGMP and MLD; subclasses parse and encode."""

    # Protocol tables, set by the subclasses.
    _ADDR_LEN: int
    _CURRENT_UNSOLICITED_NS = 1 * _SECOND
    _OLD_UNSOLICITED_NS = 10 * _SECOND
    #: IP header + Router Alert + report header, subtracted from the MTU.
    _REPORT_OVERHEAD: int

    def __init__(self, rng: random.Random, robustness: int, mtu: int) -> None:
        if robustness < 1:
            raise ValueError("the robustness variable must be at least 1")
        self._rng = rng
        self._default_robustness = robustness
        self._robustness = robustness
        self._query_interval_ns = DEFAULT_QUERY_INTERVAL_NS
        self._record_budget = mtu - self._REPORT_OVERHEAD
        if self._record_budget < 4 + 2 * self._ADDR_LEN:
            raise ValueError(f"MTU {mtu} is too small for a membership report")
        # Membership: group -> reference count; frozen copy for ``groups``.
        self._members: dict[bytes, int] = {}
        self._groups: frozenset[bytes] = frozenset()
        # Compatibility mode and the Older Version Querier Present deadlines.
        self._mode = _CURRENT
        self._oldest_until: int | None = None
        self._old_until: int | None = None
        # State-change reports: group -> transmissions left; one timer.
        self._changes: dict[bytes, int] = {}
        self._leaves: dict[bytes, None] = {}  # older modes: leave/done to send
        self._change_due: int | None = None
        # Newest-version query responses.
        self._iface_due: int | None = None
        self._group_due: dict[bytes, tuple[int, frozenset[bytes]]] = {}
        # Older-version query responses: group -> due.
        self._old_due: dict[bytes, int] = {}
        # Groups we have reported since joining them, and groups whose latest
        # older-version report on the link was another host's.
        self._announced: set[bytes] = set()
        self._others_reported: set[bytes] = set()
        #: Event -> count; every key is always present.
        self.counters: dict[str, int] = dict.fromkeys(_COUNTER_KEYS, 0)

    # -- protocol hooks -----------------------------------------------------

    def _check_group(self, group: bytes) -> None:
        raise NotImplementedError

    def _reportable(self, group: bytes) -> bool:
        raise NotImplementedError

    # -- observation --------------------------------------------------------

    @property
    def groups(self) -> frozenset[bytes]:
        """The groups joined on this interface (what the stack delivers)."""
        return self._groups

    def is_member(self, group: bytes) -> bool:
        return group in self._members

    @property
    def robustness(self) -> int:
        """The Robustness Variable in use: the last query's QRV, else the default."""
        return self._robustness

    @property
    def query_interval_ns(self) -> int:
        """The Query Interval in use: the last query's QQIC, else 125 s."""
        return self._query_interval_ns

    def next_deadline(self) -> int | None:
        """When ``poll`` next has something to do (or the mode may change), or None."""
        best: int | None = None
        for t in (self._change_due, self._iface_due, self._oldest_until, self._old_until):
            if t is not None and (best is None or t < best):
                best = t
        for t, _ in self._group_due.values():
            if best is None or t < best:
                best = t
        for t in self._old_due.values():
            if best is None or t < best:
                best = t
        return best

    # -- membership ---------------------------------------------------------

    def join(self, now_ns: int, group: bytes) -> None:
        """One more socket membership of ``group``; the first one is reported."""
        self._check_group(group)
        count = self._members.get(group, 0)
        self._members[group] = count + 1
        if count:
            return
        self._groups = frozenset(self._members)
        self._update_mode(now_ns)
        if not self._reportable(group):
            return
        self._announced.discard(group)
        self._others_reported.discard(group)
        self._leaves.pop(group, None)
        self._changes[group] = self._robustness
        self._change_due = now_ns

    def leave(self, now_ns: int, group: bytes) -> None:
        """One socket membership fewer; the last one is reported as a leave."""
        count = self._members.get(group, 0)
        if not count:
            raise ValueError(f"leave of a group not joined: {group.hex()}")
        if count > 1:
            self._members[group] = count - 1
            return
        del self._members[group]
        self._groups = frozenset(self._members)
        self._update_mode(now_ns)
        self._old_due.pop(group, None)
        if not self._reportable(group):
            return
        if group not in self._announced:
            # Nobody was told about it: say nothing now either.
            self._changes.pop(group, None)
            return
        self._announced.discard(group)
        if self._mode == _CURRENT:
            self._changes[group] = self._robustness
            self._change_due = now_ns
            return
        self._changes.pop(group, None)
        if self._mode == _OLD and group not in self._others_reported:
            self._leaves[group] = None
            self._change_due = now_ns
        self._others_reported.discard(group)

    def announce_all(self, now_ns: int) -> None:
        """Report every joined group afresh, as if just joined (link up, new source address)."""
        self._update_mode(now_ns)
        for group in self._members:
            if self._reportable(group):
                self._changes[group] = self._robustness
                self._change_due = now_ns

    # -- input --------------------------------------------------------------

    def _update_mode(self, now_ns: int) -> None:
        if self._oldest_until is not None and now_ns >= self._oldest_until:
            self._oldest_until = None
        if self._old_until is not None and now_ns >= self._old_until:
            self._old_until = None
        if self._oldest_until is not None:
            mode = _OLDEST
        elif self._old_until is not None:
            mode = _OLD
        else:
            mode = _CURRENT
        if mode != self._mode:
            self._mode = mode
            self.counters["mode_changes"] += 1
            self._changes.clear()
            self._leaves.clear()
            self._change_due = None
            self._iface_due = None
            self._group_due.clear()
            self._old_due.clear()

    def _delay(self, max_ns: int) -> int:
        """A random delay in (0, max_ns]; never zero, so never "at once"."""
        return self._rng.randint(1, max(max_ns, 1))

    def _handle_query(self, now_ns: int, query: _Query) -> None:
        if query.group is None:
            self.counters["query_general"] += 1
        elif query.sources:
            self.counters["query_group_source"] += 1
        else:
            self.counters["query_group"] += 1
        if query.version == _CURRENT:
            self._robustness = query.qrv or self._default_robustness
            self._query_interval_ns = query.qqi_s * _SECOND or DEFAULT_QUERY_INTERVAL_NS
        else:
            self.counters["query_older"] += 1
            if query.group is None:
                timeout = self._robustness * self._query_interval_ns + query.max_resp_ns
                if query.version == _OLDEST:
                    self._oldest_until = now_ns + timeout
                else:
                    self._old_until = now_ns + timeout
        self._update_mode(now_ns)
        if self._mode == _CURRENT:
            self._schedule_current(now_ns, query)
        else:
            self._schedule_old(now_ns, query)

    def _schedule_current(self, now_ns: int, query: _Query) -> None:
        """RFC 3376 5.2 / RFC 3810 6.2, rules 1-5."""
        group = query.group
        if group is None:
            if not any(self._reportable(g) for g in self._members):
                return
        elif group not in self._members or not self._reportable(group):
            return
        due = now_ns + self._delay(query.max_resp_ns)
        if self._iface_due is not None and self._iface_due <= due:
            return  # rule 1: the pending general response covers this one
        if group is None:
            self._iface_due = due  # rule 2
            return
        sources = frozenset(query.sources)
        if len(sources) > MAX_RECORDED_SOURCES:
            sources = frozenset()
        pending = self._group_due.get(group)
        if pending is None:
            self._group_due[group] = (due, sources)  # rule 3
            return
        pending_due, recorded = pending
        due = min(due, pending_due)
        if not sources or not recorded:
            self._group_due[group] = (due, frozenset())  # rule 4
            return
        merged = recorded | sources  # rule 5
        if len(merged) > MAX_RECORDED_SOURCES:
            merged = frozenset()
        self._group_due[group] = (due, merged)

    def _schedule_old(self, now_ns: int, query: _Query) -> None:
        """RFC 2236 3 / RFC 2710 4: (re)start a group's timer unless it ends sooner."""
        if query.group is None:
            targets: Iterable[bytes] = [g for g in self._members if self._reportable(g)]
        elif query.group in self._members and self._reportable(query.group):
            targets = (query.group,)
        else:
            return
        max_ns = query.max_resp_ns
        for group in targets:
            running = self._old_due.get(group)
            if running is not None and running - now_ns <= max_ns:
                continue
            self._old_due[group] = now_ns + self._delay(max_ns)

    def _heard_report(self, now_ns: int, group: bytes) -> None:
        """Another host's older-version report: suppress ours (older modes only)."""
        self.counters["report_heard"] += 1
        self._update_mode(now_ns)
        if self._mode == _CURRENT or group not in self._members:
            return
        stopped = self._old_due.pop(group, None) is not None
        stopped |= self._changes.pop(group, None) is not None
        if stopped:
            self._others_reported.add(group)
            self.counters["suppressed"] += 1

    # -- output -------------------------------------------------------------

    def _poll(self, now_ns: int) -> list[_Message]:
        self._update_mode(now_ns)
        out: list[_Message] = []
        if self._change_due is not None and self._change_due <= now_ns:
            self._change_due = None
            out += self._state_change(now_ns)
        if self._iface_due is not None and self._iface_due <= now_ns:
            self._iface_due = None
            records = [
                GroupRecord(MODE_IS_EXCLUDE, g) for g in self._members if self._reportable(g)
            ]
            out += self._pack(records)
        if self._group_due:
            records = []
            for group, (due, sources) in list(self._group_due.items()):
                if due > now_ns:
                    continue
                del self._group_due[group]
                if group not in self._members:
                    continue
                if sources:
                    records.append(GroupRecord(MODE_IS_INCLUDE, group, tuple(sorted(sources))))
                else:
                    records.append(GroupRecord(MODE_IS_EXCLUDE, group))
            out += self._pack(records)
        if self._old_due:
            for group, due in list(self._old_due.items()):
                if due > now_ns:
                    continue
                del self._old_due[group]
                out.append(self._old_report(group))
        for msg in out:
            if isinstance(msg, _Leave):
                self.counters["leaves_sent"] += 1
            else:
                self.counters["reports_sent"] += 1
        return out

    def _old_report(self, group: bytes) -> _OldReport:
        self._announced.add(group)
        self._others_reported.discard(group)
        return _OldReport(group, self._mode == _OLDEST)

    def _state_change(self, now_ns: int) -> list[_Message]:
        out: list[_Message] = []
        if self._mode == _CURRENT:
            records = []
            for group, left in list(self._changes.items()):
                if group in self._members:
                    records.append(GroupRecord(CHANGE_TO_EXCLUDE, group))
                    self._announced.add(group)
                else:
                    records.append(GroupRecord(CHANGE_TO_INCLUDE, group))
                self._step_change(group, left)
            out += self._pack(records)
        else:
            out += [_Leave(g) for g in self._leaves]
            self._leaves.clear()
            for group, left in list(self._changes.items()):
                out.append(self._old_report(group))
                self._step_change(group, left)
        if self._changes:
            interval = (
                self._CURRENT_UNSOLICITED_NS if self._mode == _CURRENT else self._OLD_UNSOLICITED_NS
            )
            self._change_due = now_ns + self._delay(interval)
        return out

    def _step_change(self, group: bytes, left: int) -> None:
        if left > 1:
            self._changes[group] = left - 1
        else:
            del self._changes[group]

    def _pack(self, records: list[GroupRecord]) -> list[_Message]:
        """Records into as few reports as fit the MTU (RFC 3376 4.2.16, RFC 3810 5.2.15).

        A record too big on its own (an IS_IN with many sources) is split
        into records with parts of its source list, one report each.
        """
        budget = self._record_budget
        out: list[_Message] = []
        current: list[GroupRecord] = []
        size = 0
        for record in records:
            length = record.encoded_len()
            if length > budget:
                if current:
                    out.append(_Report(tuple(current)))
                    current, size = [], 0
                per = (budget - 4 - self._ADDR_LEN) // self._ADDR_LEN
                sources = record.sources
                if record.record_type in (MODE_IS_EXCLUDE, CHANGE_TO_EXCLUDE):
                    sources = sources[:per]  # the rest is not reported
                for i in range(0, len(sources), per):
                    part = GroupRecord(record.record_type, record.group, sources[i : i + per])
                    out.append(_Report((part,)))
                continue
            if size + length > budget:
                out.append(_Report(tuple(current)))
                current, size = [], 0
            current.append(record)
            size += length
        if current:
            out.append(_Report(tuple(current)))
        return out


# ----------------------------------------------------------------------------
# IGMP

ALL_SYSTEMS = igmp.ALL_SYSTEMS
_UNSPECIFIED_V4 = bytes(4)
_IGMP_V1_MAX_RESP_NS = 10 * _SECOND  # RFC 2236 4: an IGMPv1 query means 10 s
_TENTH = _SECOND // 10
_IGMP_MODES = {_OLDEST: 1, _OLD: 2, _CURRENT: 3}


def _is_ipv4_multicast(addr: bytes) -> bool:
    return len(addr) == 4 and 224 <= addr[0] <= 239


class IgmpHost(_MembershipHost):
    """IGMPv3 host with IGMPv1/v2 compatibility, for one IPv4 interface.

    ``mtu`` bounds the size of the reports (24 bytes go to the IPv4 header
    with its Router Alert option).
    """

    _ADDR_LEN = 4
    _REPORT_OVERHEAD = 24 + 8

    def __init__(self, rng: random.Random, robustness: int = 2, *, mtu: int = 1500) -> None:
        super().__init__(rng, robustness, mtu)

    def _check_group(self, group: bytes) -> None:
        if not _is_ipv4_multicast(group):
            raise ValueError(f"not an IPv4 multicast group: {group.hex()}")

    def _reportable(self, group: bytes) -> bool:
        return group != ALL_SYSTEMS

    def compatibility_version(self, now_ns: int) -> int:
        """The IGMP version spoken on this interface now: 1, 2 or 3."""
        self._update_mode(now_ns)
        return _IGMP_MODES[self._mode]

    def receive(
        self,
        now_ns: int,
        igmp_payload: BytesLike,
        src: bytes,
        dst: bytes,
        *,
        router_alert: bool | None = None,
    ) -> None:
        """Process an IGMP message (the whole IPv4 payload) received on this interface.

        ``router_alert`` says whether the IPv4 header carried the option;
        None means the stack did not check, and nothing is enforced.
        """
        msg = igmp.parse(igmp_payload)
        if isinstance(msg, WireError):
            self.counters["malformed"] += 1
            return
        if isinstance(msg, igmp.IgmpV1Report | igmp.IgmpV2Report):
            self._heard_report(now_ns, msg.group)
            return
        if isinstance(msg, igmp.IgmpV2Query):
            if msg.is_v1:
                # RFC 1112: the group field of a query is ignored; v1 has only general.
                query = _Query(_OLDEST, _IGMP_V1_MAX_RESP_NS, None)
            else:
                group = None if msg.group == _UNSPECIFIED_V4 else msg.group
                query = _Query(_OLD, msg.max_resp_time * _TENTH, group)
        elif isinstance(msg, igmp.IgmpV3Query):
            group = None if msg.group == _UNSPECIFIED_V4 else msg.group
            query = _Query(
                _CURRENT,
                msg.max_resp_time * _TENTH,
                group,
                msg.sources,
                msg.qrv,
                msg.query_interval,
            )
        else:  # leaves and v3 reports are for routers
            self.counters["ignored"] += 1
            return
        if not self._valid_query(query, dst, router_alert):
            self.counters["ignored"] += 1
            return
        self._handle_query(now_ns, query)

    def _valid_query(self, query: _Query, dst: bytes, router_alert: bool | None) -> bool:
        if query.group is None:
            if query.sources:
                return False
            # RFC 3376 9.1: general queries go to 224.0.0.1 (or a unicast address).
            if _is_ipv4_multicast(dst) and dst != ALL_SYSTEMS:
                return False
        elif not _is_ipv4_multicast(query.group):
            return False
        # RFC 3376 9.1: ignore v2 and v3 queries without Router Alert.
        return not (query.version != _OLDEST and router_alert is False)

    def poll(self, now_ns: int) -> list[Outgoing]:
        """The IGMP messages due at ``now_ns``."""
        return [self._encode(m) for m in self._poll(now_ns)]

    @staticmethod
    def _encode(msg: _Message) -> Outgoing:
        if isinstance(msg, _Report):
            return Outgoing(igmp.ALL_V3_ROUTERS, igmp.IgmpV3Report(msg.records).build())
        if isinstance(msg, _OldReport):
            old: igmp.IgmpV1Report | igmp.IgmpV2Report
            old = igmp.IgmpV1Report(msg.group) if msg.oldest else igmp.IgmpV2Report(msg.group)
            return Outgoing(msg.group, old.build())
        return Outgoing(igmp.ALL_ROUTERS, igmp.IgmpLeave(msg.group).build())


# ----------------------------------------------------------------------------
# MLD

_UNSPECIFIED_V6 = bytes(16)
_MILLISECOND = 10**6
_MLD_MODES = {_OLD: 1, _CURRENT: 2}


def _is_ipv6_multicast(addr: bytes) -> bool:
    return len(addr) == 16 and addr[0] == 0xFF


def _is_link_local(addr: bytes) -> bool:
    return addr[0] == 0xFE and addr[1] & 0xC0 == 0x80


class MldHost(_MembershipHost):
    """MLDv2 host with MLDv1 compatibility, for one IPv6 interface.

    ``mtu`` bounds the size of the reports (48 bytes go to the IPv6 header
    and the hop-by-hop header with its Router Alert).
    """

    _ADDR_LEN = 16
    _REPORT_OVERHEAD = 40 + 8 + 8

    def __init__(self, rng: random.Random, robustness: int = 2, *, mtu: int = 1280) -> None:
        super().__init__(rng, robustness, mtu)

    def _check_group(self, group: bytes) -> None:
        if not _is_ipv6_multicast(group):
            raise ValueError(f"not an IPv6 multicast group: {group.hex()}")

    def _reportable(self, group: bytes) -> bool:
        # RFC 3810 6: never the link-scope all-nodes group, nor scopes 0 and 1.
        return group[1] & 0x0F >= 2 and group != ALL_NODES

    def compatibility_version(self, now_ns: int) -> int:
        """The MLD version spoken on this interface now: 1 or 2."""
        self._update_mode(now_ns)
        return _MLD_MODES[self._mode]

    def receive(
        self,
        now_ns: int,
        icmpv6_message: BytesLike,
        src: bytes,
        dst: bytes,
        *,
        hop_limit: int | None = None,
        router_alert: bool | None = None,
    ) -> None:
        """Process an MLD message (the whole ICMPv6 message) received on this interface.

        ``src``/``dst`` are the IPv6 addresses (for the checksum and the
        checks). ``hop_limit`` and ``router_alert`` (hop-by-hop Router Alert
        present) are checked for queries when given; None skips the check.
        """
        icmp = Icmpv6Packet.parse(icmpv6_message, src, dst)
        if isinstance(icmp, WireError):
            self.counters["malformed"] += 1
            return
        msg = mld.parse(icmp)
        if msg is WireError.UNSUPPORTED:
            self.counters["ignored"] += 1  # RFC 3810 5: unknown types are ignored
            return
        if isinstance(msg, WireError):
            self.counters["malformed"] += 1
            return
        if isinstance(msg, mld.MldV1Report):
            self._heard_report(now_ns, msg.group)
            return
        if isinstance(msg, mld.MldV1Query):
            group = None if msg.group == _UNSPECIFIED_V6 else msg.group
            query = _Query(_OLD, msg.max_resp_delay * _MILLISECOND, group)
        elif isinstance(msg, mld.MldV2Query):
            group = None if msg.group == _UNSPECIFIED_V6 else msg.group
            query = _Query(
                _CURRENT,
                msg.max_resp_delay * _MILLISECOND,
                group,
                msg.sources,
                msg.qrv,
                msg.query_interval,
            )
        else:  # done messages and v2 reports are for routers
            self.counters["ignored"] += 1
            return
        valid = (
            _is_link_local(src)  # RFC 3810 5.1.14
            and hop_limit in (None, 1)  # RFC 3810 6.2
            and router_alert is not False
            and (query.group is None or _is_ipv6_multicast(query.group))
            and not (query.group is None and query.sources)
        )
        if not valid:
            self.counters["ignored"] += 1
            return
        self._handle_query(now_ns, query)

    def poll(self, now_ns: int, src_link_local: bytes) -> list[Outgoing]:
        """The MLD messages due at ``now_ns``, checksummed for source ``src_link_local``."""
        return [self._encode(m, src_link_local) for m in self._poll(now_ns)]

    @staticmethod
    def _encode(msg: _Message, src: bytes) -> Outgoing:
        if isinstance(msg, _Report):
            payload = mld.MldV2Report(msg.records).build(src, ALL_MLDV2_ROUTERS)
            return Outgoing(ALL_MLDV2_ROUTERS, payload)
        if isinstance(msg, _OldReport):
            return Outgoing(msg.group, mld.MldV1Report(msg.group).build(src, msg.group))
        return Outgoing(ALL_ROUTERS, mld.MldV1Done(msg.group).build(src, ALL_ROUTERS))
