"""Host-side IGMP / MLD (stack.multicast): dialogues with explicit times.

Each test joins and leaves groups, feeds queries built with stack.wire at
chosen virtual times, and asserts on the exact messages the engine emits and
when. Every emitted message is decoded twice: with stack.wire and with scapy
(the independent codec, which also re-checks the checksum). The rng is seeded,
so every run is the same.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.config import conf as scapy_conf
from scapy.layers.igmp import IGMP, IGMPv3, IGMPv3_MR
from scapy.layers.inet import IP
from scapy.layers.inet6 import (
    ICMPv6MLDMultAddrRec,
    ICMPv6MLDone,
    ICMPv6MLReport,
    ICMPv6MLReport2,
    IPv6,
)
from scapy.packet import Packet, Raw

from stack.multicast import IgmpHost, MldHost, Outgoing
from stack.wire import WireError, igmp, mld
from stack.wire.icmpv6 import Icmpv6Packet, Icmpv6Repr
from stack.wire.ip import PROTO_ICMPV6, addr_str, from_ipaddress
from stack.wire.ipv6 import ALL_MLDV2_ROUTERS, ALL_NODES, ALL_ROUTERS, Ipv6Repr
from stack.wire.ipv6 import solicited_node_multicast as solicited_node

S = 10**9
MS = 10**6

TO_EX = igmp.CHANGE_TO_EXCLUDE
TO_IN = igmp.CHANGE_TO_INCLUDE
IS_EX = igmp.MODE_IS_EXCLUDE
IS_IN = igmp.MODE_IS_INCLUDE

A = from_ipaddress
G1, G2, G3 = A("239.1.1.1"), A("239.1.1.2"), A("239.1.1.3")
S1, S2, S3 = A("10.9.0.1"), A("10.9.0.2"), A("10.9.0.3")
HOST, ROUTER, OTHER_HOST = A("10.0.0.1"), A("10.0.0.254"), A("10.0.0.7")
ALL_SYSTEMS, ALL_V3_ROUTERS, ALL_ROUTERS_V4 = A("224.0.0.1"), A("224.0.0.22"), A("224.0.0.2")
ZERO4 = bytes(4)

M1, M2 = A("ff05::1:3"), A("ff0e::101")
LL, LL_ROUTER, LL_OTHER = A("fe80::a"), A("fe80::1"), A("fe80::7")
ZERO6 = bytes(16)

Record = tuple[int, bytes, tuple[bytes, ...]]
Sent = list[tuple[int, Outgoing]]


def run(
    deadline: Callable[[], int | None], poll: Callable[[int], list[Outgoing]], until: int
) -> Sent:
    """Call ``poll`` at every deadline up to ``until``; return what was sent, with times."""
    sent: Sent = []
    for _ in range(10_000):
        when = deadline()
        if when is None or when > until:
            return sent
        sent += [(when, msg) for msg in poll(when)]
    raise AssertionError("the engine does not make progress")


def run_igmp(host: IgmpHost, until: int) -> Sent:
    return run(host.next_deadline, host.poll, until)


def run_mld(host: MldHost, until: int) -> Sent:
    return run(host.next_deadline, lambda now: host.poll(now, LL), until)


# --- decoding what was sent, twice ---------------------------------------------


def igmp_wire(out: Outgoing) -> igmp.IgmpMessage:
    assert out.ttl == out.hop_limit == 1 and out.router_alert
    msg = igmp.parse(out.payload)
    assert not isinstance(msg, WireError), msg
    return msg


def igmp_scapy(out: Outgoing) -> Packet:
    """scapy's view of the message, after checking that scapy computes the same checksum."""
    pkt = IP(bytes(IP(src="10.0.0.1", dst=addr_str(out.dst), proto=2, ttl=1) / Raw(out.payload)))
    layer = pkt[IGMPv3] if IGMPv3 in pkt else pkt[IGMP]
    copy = layer.copy()
    del copy.chksum
    assert layer.__class__(bytes(copy)).chksum == layer.chksum
    return pkt


def v3_records(out: Outgoing) -> list[Record]:
    """The records of an IGMPv3 report to 224.0.0.22, as stack.wire and scapy both read them."""
    assert out.dst == ALL_V3_ROUTERS
    msg = igmp_wire(out)
    assert isinstance(msg, igmp.IgmpV3Report)
    ours = [(r.record_type, r.group, r.sources) for r in msg.records]
    pkt = igmp_scapy(out)
    theirs = [
        (r.rtype, A(r.maddr), tuple(A(s) for s in r.srcaddrs)) for r in pkt[IGMPv3_MR].records
    ]
    assert theirs == ours
    return ours


def old_igmp(out: Outgoing) -> tuple[str, bytes]:
    """("v1" | "v2" | "leave", group) of an IGMPv1/v2 message; checks its destination."""
    msg = igmp_wire(out)
    scapy_type = igmp_scapy(out)[IGMP].type
    if isinstance(msg, igmp.IgmpLeave):
        assert out.dst == ALL_ROUTERS_V4 and scapy_type == 0x17
        return "leave", msg.group
    assert isinstance(msg, igmp.IgmpV1Report | igmp.IgmpV2Report), msg
    assert out.dst == msg.group  # IGMPv1/v2 reports go to the group itself
    if isinstance(msg, igmp.IgmpV1Report):
        assert scapy_type == 0x12
        return "v1", msg.group
    assert isinstance(msg, igmp.IgmpV2Report) and scapy_type == 0x16
    return "v2", msg.group


def mld_wire(out: Outgoing) -> mld.MldMessage:
    assert out.hop_limit == 1 and out.router_alert
    icmp = Icmpv6Packet.parse(out.payload, LL, out.dst)  # verifies the checksum
    assert not isinstance(icmp, WireError), icmp
    msg = mld.parse(icmp)
    assert not isinstance(msg, WireError), msg
    return msg


def mld_scapy(out: Outgoing, layer: type[Packet]) -> Packet:
    pkt = IPv6(Ipv6Repr(LL, out.dst, PROTO_ICMPV6, hop_limit=1).build(out.payload))
    assert layer in pkt, pkt.summary()
    copy = pkt.copy()
    del copy[layer].cksum
    assert IPv6(bytes(copy))[layer].cksum == pkt[layer].cksum
    return pkt[layer]


def mld_records(out: Outgoing) -> list[Record]:
    assert out.dst == ALL_MLDV2_ROUTERS
    msg = mld_wire(out)
    assert isinstance(msg, mld.MldV2Report)
    ours = [(r.record_type, r.group, r.sources) for r in msg.records]
    theirs: list[Record] = []
    for rec in mld_scapy(out, ICMPv6MLReport2).records:
        while isinstance(rec, ICMPv6MLDMultAddrRec):  # scapy chains records as payloads
            theirs.append((rec.rtype, A(rec.dst), tuple(A(s) for s in rec.sources)))
            rec = rec.payload
    assert theirs == ours
    return ours


# --- queries -------------------------------------------------------------------


def v3_query(
    host: IgmpHost,
    now: int,
    group: bytes = ZERO4,
    max_resp_tenths: int = 100,
    sources: tuple[bytes, ...] = (),
    qrv: int = 2,
    qqic: int = 125,
) -> None:
    msg = igmp.IgmpV3Query(igmp.encode_code8(max_resp_tenths), group, False, qrv, qqic, sources)
    dst = ALL_SYSTEMS if group == ZERO4 else group
    host.receive(now, msg.build(), ROUTER, dst, router_alert=True)


def v2_query(host: IgmpHost, now: int, group: bytes = ZERO4, max_resp_tenths: int = 100) -> None:
    dst = ALL_SYSTEMS if group == ZERO4 else group
    host.receive(now, igmp.IgmpV2Query(max_resp_tenths, group).build(), ROUTER, dst)


def mld_v2_query(
    host: MldHost,
    now: int,
    group: bytes = ZERO6,
    max_resp_ms: int = 10_000,
    sources: tuple[bytes, ...] = (),
    qrv: int = 2,
    qqic: int = 125,
) -> None:
    dst = ALL_NODES if group == ZERO6 else group
    code = mld.encode_code16(max_resp_ms)
    payload = mld.MldV2Query(code, group, False, qrv, qqic, sources).build(LL_ROUTER, dst)
    host.receive(now, payload, LL_ROUTER, dst, hop_limit=1, router_alert=True)


def joined(host: IgmpHost, *groups: bytes, seed_drain: int = 5 * S) -> None:
    """Join ``groups`` at time 0 and let the state-change reports go out."""
    for g in groups:
        host.join(0, g)
    run_igmp(host, seed_drain)
    assert host.next_deadline() is None


# --- IGMPv3: state changes -----------------------------------------------------


@pytest.mark.parametrize("robustness", [1, 2, 3, 4])
def test_join_sends_robustness_reports_at_random_within_one_second(robustness: int) -> None:
    host = IgmpHost(random.Random(robustness), robustness=robustness)
    host.join(0, G1)
    assert host.next_deadline() == 0  # at once
    sent = run_igmp(host, 60 * S)
    assert [v3_records(m) for _, m in sent] == [[(TO_EX, G1, ())]] * robustness
    times = [t for t, _ in sent]
    assert times[0] == 0
    assert all(0 < b - a <= 1 * S for a, b in itertools.pairwise(times))
    assert host.next_deadline() is None and host.groups == {G1}


def test_leave_sends_change_to_include_reports() -> None:
    host = IgmpHost(random.Random(2))
    joined(host, G1)
    host.leave(10 * S, G1)
    assert host.groups == frozenset() and not host.is_member(G1)
    sent = run_igmp(host, 60 * S)
    assert [v3_records(m) for _, m in sent] == [[(TO_IN, G1, ())]] * 2
    assert sent[0][0] == 10 * S and 10 * S < sent[1][0] <= 11 * S
    assert host.counters["reports_sent"] == 4


def test_joins_are_reference_counted() -> None:
    host = IgmpHost(random.Random(3))
    host.join(0, G1)
    host.join(0, G1)
    assert len(run_igmp(host, 5 * S)) == 2
    host.leave(10 * S, G1)
    assert host.next_deadline() is None and host.is_member(G1)  # one socket still in it
    host.leave(11 * S, G1)
    assert [v3_records(m)[0][0] for _, m in run_igmp(host, 20 * S)] == [TO_IN, TO_IN]
    with pytest.raises(ValueError):
        host.leave(30 * S, G1)
    with pytest.raises(ValueError):
        host.join(30 * S, A("10.1.1.1"))  # not a multicast group


def test_join_and_leave_before_the_first_report_say_nothing() -> None:
    host = IgmpHost(random.Random(4))
    host.join(0, G1)
    host.leave(0, G1)
    assert run_igmp(host, 10 * S) == []


def test_change_during_retransmissions_is_merged_into_one_report() -> None:
    host = IgmpHost(random.Random(5))
    host.join(0, G1)
    assert [v3_records(m) for m in host.poll(0)] == [[(TO_EX, G1, ())]]
    retransmit = host.next_deadline()
    assert retransmit is not None and retransmit > 100 * MS
    host.join(100 * MS, G2)
    # At once: G1's pending retransmission and G2's first report, together.
    assert [v3_records(m) for m in host.poll(100 * MS)] == [[(TO_EX, G1, ()), (TO_EX, G2, ())]]
    host.leave(200 * MS, G1)
    assert [v3_records(m) for m in host.poll(200 * MS)] == [[(TO_EX, G2, ()), (TO_IN, G1, ())]]
    later = run_igmp(host, 10 * S)
    assert [v3_records(m) for _, m in later] == [[(TO_IN, G1, ())]]
    assert 200 * MS < later[0][0] <= 1200 * MS


def test_same_seed_same_dialogue() -> None:
    def dialogue(seed: int) -> list[tuple[int, bytes]]:
        host = IgmpHost(random.Random(seed), robustness=3)
        host.join(0, G1)
        host.join(2 * S, G2)
        v3_query(host, 5 * S)
        host.leave(6 * S, G1)
        return [(t, m.payload) for t, m in run_igmp(host, 100 * S)]

    assert dialogue(7) == dialogue(7)
    assert [t for t, _ in dialogue(7)] != [t for t, _ in dialogue(8)]


# --- IGMPv3: queries ------------------------------------------------------------


def test_general_query_gets_one_delayed_report_of_every_group() -> None:
    host = IgmpHost(random.Random(6))
    joined(host, G1, G2, ALL_SYSTEMS, G3)
    v3_query(host, 10 * S, max_resp_tenths=100)
    assert host.poll(10 * S) == []  # never at once (no ack implosion)
    sent = run_igmp(host, 60 * S)
    assert len(sent) == 1
    when, msg = sent[0]
    assert 10 * S < when <= 20 * S
    assert v3_records(msg) == [(IS_EX, G1, ()), (IS_EX, G2, ()), (IS_EX, G3, ())]
    assert host.counters["query_general"] == 1


def test_max_resp_code_uses_the_exponential_form() -> None:
    # Code 0x8A is (0x1A << 3) = 208 tenths = 20.8 s; read linearly it would be 13.8 s.
    delays = []
    for seed in range(40):
        host = IgmpHost(random.Random(seed))
        joined(host, G1)
        msg = igmp.IgmpV3Query(0x8A, ZERO4, qrv=2, qqic=125)
        host.receive(10 * S, msg.build(), ROUTER, ALL_SYSTEMS, router_alert=True)
        ((when, _),) = run_igmp(host, 100 * S)
        delays.append(when - 10 * S)
    assert all(0 < d <= 20_800 * MS for d in delays)
    assert max(delays) > 13_800 * MS  # a delay only the exponential form allows


def test_pending_general_response_that_is_sooner_wins() -> None:
    host = IgmpHost(random.Random(9))
    joined(host, G1)
    v3_query(host, 10 * S, max_resp_tenths=20)
    due = host.next_deadline()
    assert due is not None and due <= 12 * S
    v3_query(host, 10 * S + 1, max_resp_tenths=1000)  # rule 1: nothing new
    v3_query(host, 10 * S + 2, group=G1, max_resp_tenths=1000)
    assert host.next_deadline() == due
    assert [(t, v3_records(m)) for t, m in run_igmp(host, 200 * S)] == [(due, [(IS_EX, G1, ())])]


def test_later_general_query_with_a_sooner_delay_replaces_the_pending_one() -> None:
    host = IgmpHost(random.Random(10))
    joined(host, G1)
    v3_query(host, 10 * S, max_resp_tenths=2000)
    first = host.next_deadline()
    assert first is not None and first > 12 * S
    v3_query(host, 11 * S, max_resp_tenths=10)  # rule 2
    sent = run_igmp(host, 300 * S)
    assert len(sent) == 1 and 11 * S < sent[0][0] <= 12 * S


def test_group_specific_query_is_answered_for_joined_groups_only() -> None:
    host = IgmpHost(random.Random(11))
    joined(host, G1, G2)
    v3_query(host, 10 * S, group=G3, max_resp_tenths=10)
    assert host.next_deadline() is None
    v3_query(host, 10 * S, group=G2, max_resp_tenths=10)
    ((when, msg),) = run_igmp(host, 60 * S)
    assert 10 * S < when <= 11 * S
    assert v3_records(msg) == [(IS_EX, G2, ())]
    assert host.counters["query_group"] == 2


def test_group_left_before_its_response_is_not_reported() -> None:
    host = IgmpHost(random.Random(12))
    joined(host, G1)
    v3_query(host, 10 * S, group=G1, max_resp_tenths=50)
    host.leave(10 * S + 1, G1)
    records = [v3_records(m) for _, m in run_igmp(host, 60 * S)]
    assert records == [[(TO_IN, G1, ())]] * 2


def test_group_and_source_specific_queries_accumulate_sources() -> None:
    host = IgmpHost(random.Random(13))
    joined(host, G1)
    v3_query(host, 10 * S, group=G1, max_resp_tenths=50, sources=(S3, S1))
    v3_query(host, 11 * S, group=G1, max_resp_tenths=50, sources=(S2,))
    ((when, msg),) = run_igmp(host, 60 * S)
    assert when <= 15 * S
    # EXCLUDE({}) per interface, sources B queried: IS_IN(B - {}) = IS_IN(B), sorted.
    assert v3_records(msg) == [(IS_IN, G1, (S1, S2, S3))]
    assert host.counters["query_group_source"] == 2


def test_group_specific_query_clears_a_pending_source_list() -> None:
    host = IgmpHost(random.Random(14))
    joined(host, G1)
    v3_query(host, 10 * S, group=G1, max_resp_tenths=50, sources=(S1,))
    v3_query(host, 11 * S, group=G1, max_resp_tenths=50)
    v3_query(host, 12 * S, group=G1, max_resp_tenths=50, sources=(S2,))  # list stays clear
    assert [v3_records(m) for _, m in run_igmp(host, 60 * S)] == [[(IS_EX, G1, ())]]


def test_querier_robustness_and_interval_are_learned() -> None:
    host = IgmpHost(random.Random(15))
    v3_query(host, 0, qrv=4, qqic=20)
    assert host.robustness == 4 and host.query_interval_ns == 20 * S
    host.join(1 * S, G1)
    assert len(run_igmp(host, 60 * S)) == 4
    # The older-querier timeout uses them: 4 * 20 s + 5 s.
    v2_query(host, 100 * S, max_resp_tenths=50)
    assert host.compatibility_version(185 * S - 1) == 2
    assert host.compatibility_version(185 * S) == 3
    v3_query(host, 200 * S, qrv=0, qqic=0)  # zero: back to the defaults
    assert host.robustness == 2 and host.query_interval_ns == 125 * S


# --- IGMPv1/v2 compatibility ---------------------------------------------------


def test_igmpv2_querier_switches_to_v2_reports_and_leaves_then_times_out() -> None:
    host = IgmpHost(random.Random(16))
    joined(host, G1)
    v2_query(host, 10 * S, max_resp_tenths=100)
    assert host.compatibility_version(10 * S) == 2
    ((when, msg),) = run_igmp(host, 25 * S)
    assert 10 * S < when <= 20 * S and old_igmp(msg) == ("v2", G1)
    # A join is reported robustness times, 10 s apart at most (RFC 2236).
    host.join(30 * S, G2)
    sent = run_igmp(host, 45 * S)
    assert [old_igmp(m) for _, m in sent] == [("v2", G2)] * 2
    assert sent[0][0] == 30 * S and 30 * S < sent[1][0] <= 40 * S
    host.leave(50 * S, G1)
    assert [old_igmp(m) for m in host.poll(50 * S)] == [("leave", G1)]
    # Older Version Querier Present Timeout: 2 * 125 s + 10 s after the query.
    assert host.next_deadline() == 270 * S
    assert run_igmp(host, 270 * S) == []
    assert host.compatibility_version(270 * S) == 3 and host.next_deadline() is None
    host.join(300 * S, G3)
    assert v3_records(host.poll(300 * S)[0]) == [(TO_EX, G3, ())]


def test_igmpv1_querier_gets_v1_reports_and_no_leave() -> None:
    host = IgmpHost(random.Random(17))
    joined(host, G1)
    host.receive(10 * S, igmp.IgmpV2Query(0, ZERO4).build(), ROUTER, ALL_SYSTEMS)
    assert host.compatibility_version(10 * S) == 1
    ((when, msg),) = run_igmp(host, 25 * S)
    assert 10 * S < when <= 20 * S  # IGMPv1 queries mean 10 s
    assert old_igmp(msg) == ("v1", G1)
    host.leave(30 * S, G1)
    assert host.poll(30 * S) == []
    assert host.compatibility_version(270 * S - 1) == 1
    assert host.compatibility_version(270 * S) == 3


def test_v1_querier_wins_over_v2_querier() -> None:
    host = IgmpHost(random.Random(18))
    joined(host, G1)
    host.receive(10 * S, igmp.IgmpV2Query(0, ZERO4).build(), ROUTER, ALL_SYSTEMS)
    v2_query(host, 100 * S)  # heard while the IGMPv1 querier is present
    assert host.compatibility_version(100 * S) == 1
    assert host.compatibility_version(270 * S - 1) == 1
    assert host.compatibility_version(270 * S) == 2  # v1's timer ran out, v2's runs
    assert host.compatibility_version(360 * S) == 3


def test_another_hosts_report_suppresses_ours_and_its_leave() -> None:
    host = IgmpHost(random.Random(19))
    joined(host, G1)
    v2_query(host, 10 * S, max_resp_tenths=100)
    due = host.next_deadline()
    assert due is not None and due > 10 * S + 1
    host.receive(10 * S + 1, igmp.IgmpV2Report(G1).build(), OTHER_HOST, G1)
    assert host.counters["suppressed"] == 1 and host.counters["report_heard"] == 1
    assert run_igmp(host, 60 * S) == []
    host.leave(70 * S, G1)  # another host reported last: it will answer queries
    assert host.poll(70 * S) == []


def test_igmpv3_hosts_do_not_suppress() -> None:
    host = IgmpHost(random.Random(20))
    joined(host, G1)
    v3_query(host, 10 * S)
    host.receive(10 * S + 1, igmp.IgmpV2Report(G1).build(), OTHER_HOST, G1)
    assert len(run_igmp(host, 60 * S)) == 1


def test_switching_to_an_older_mode_cancels_pending_responses() -> None:
    host = IgmpHost(random.Random(21))
    joined(host, G1)
    v3_query(host, 10 * S, max_resp_tenths=1000)
    pending = host.next_deadline()
    assert pending is not None and pending > 12 * S
    v2_query(host, 11 * S, max_resp_tenths=10)
    sent = run_igmp(host, 200 * S)
    assert [(old_igmp(m)) for _, m in sent] == [("v2", G1)]
    assert 11 * S < sent[0][0] <= 12 * S
    assert host.counters["mode_changes"] == 1


def test_v3_query_in_v2_mode_is_answered_as_v2() -> None:
    host = IgmpHost(random.Random(22))
    joined(host, G1)
    v2_query(host, 10 * S)
    run_igmp(host, 30 * S)
    v3_query(host, 40 * S, group=G1, sources=(S1,), max_resp_tenths=10)
    ((when, msg),) = run_igmp(host, 60 * S)
    assert 40 * S < when <= 41 * S and old_igmp(msg) == ("v2", G1)
    assert host.compatibility_version(41 * S) == 2


def test_group_specific_v2_query_does_not_change_the_mode() -> None:
    host = IgmpHost(random.Random(23))
    joined(host, G1)
    v2_query(host, 10 * S, group=G1, max_resp_tenths=10)
    assert host.compatibility_version(10 * S) == 3
    ((_, msg),) = run_igmp(host, 60 * S)
    assert v3_records(msg) == [(IS_EX, G1, ())]


# --- what is never reported, and garbage -------------------------------------


def test_all_systems_group_is_never_reported() -> None:
    host = IgmpHost(random.Random(24))
    host.join(0, ALL_SYSTEMS)
    assert run_igmp(host, 10 * S) == [] and host.groups == {ALL_SYSTEMS}
    v3_query(host, 20 * S)
    v3_query(host, 20 * S, group=ALL_SYSTEMS)
    v2_query(host, 30 * S)
    assert run_igmp(host, 100 * S) == []
    host.leave(200 * S, ALL_SYSTEMS)
    assert run_igmp(host, 300 * S) == []


def test_garbage_and_invalid_queries_are_counted_and_ignored() -> None:
    host = IgmpHost(random.Random(25))
    joined(host, G1)
    good = igmp.IgmpV3Query(100, ZERO4, qrv=2, qqic=125).build()
    host.receive(10 * S, b"", ROUTER, ALL_SYSTEMS)
    host.receive(10 * S, good[:11], ROUTER, ALL_SYSTEMS)
    host.receive(10 * S, good[:2] + b"\0\0" + good[4:], ROUTER, ALL_SYSTEMS)  # checksum
    host.receive(10 * S, bytes((0x42, 0, 0xBD, 0xFF, 0, 0, 0, 0)), ROUTER, ALL_SYSTEMS)
    assert host.counters["malformed"] == 4
    # RFC 3376 9.1: general query to another group; v2/v3 query without Router Alert.
    host.receive(10 * S, good, ROUTER, G1, router_alert=True)
    host.receive(10 * S, good, ROUTER, ALL_SYSTEMS, router_alert=False)
    host.receive(
        10 * S, igmp.IgmpV2Query(100, ZERO4).build(), ROUTER, ALL_SYSTEMS, router_alert=False
    )
    # Messages for routers.
    host.receive(10 * S, igmp.IgmpLeave(G1).build(), OTHER_HOST, ALL_ROUTERS_V4)
    host.receive(10 * S, igmp.IgmpV3Report(()).build(), OTHER_HOST, ALL_V3_ROUTERS)
    assert host.counters["ignored"] == 5
    assert host.next_deadline() is None and host.compatibility_version(10 * S) == 3
    # IGMPv1 queries carry no Router Alert: accepted without.
    host.receive(
        10 * S, igmp.IgmpV2Query(0, ZERO4).build(), ROUTER, ALL_SYSTEMS, router_alert=False
    )
    assert host.compatibility_version(10 * S) == 1


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64), times=st.integers(0, 10**12))
def test_arbitrary_bytes_never_raise(data: bytes, times: int) -> None:
    host = IgmpHost(random.Random(0))
    host.join(0, G1)
    host.receive(times, data, ROUTER, ALL_SYSTEMS, router_alert=True)
    run_igmp(host, times + 4000 * S)
    mld_host = MldHost(random.Random(0))
    mld_host.join(0, M1)
    mld_host.receive(times, data, LL_ROUTER, ALL_NODES)
    mld_host.receive(times, Icmpv6Repr(130).build(data, LL_ROUTER, ALL_NODES), LL_ROUTER, ALL_NODES)
    run_mld(mld_host, times + 4000 * S)


def test_reports_are_split_to_fit_the_mtu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scapy_conf, "max_list_count", 1000)  # scapy stops at 100 records
    host = IgmpHost(random.Random(26))
    groups = [bytes((239, 2, i >> 8, i & 0xFF)) for i in range(300)]
    for g in groups:
        host.join(0, g)
    first = host.poll(0)
    assert [len(v3_records(m)) for m in first] == [183, 117]  # (1500 - 24 - 8) / 8 = 183
    assert all(24 + len(m.payload) <= 1500 for m in first)
    run_igmp(host, 5 * S)
    v3_query(host, 10 * S)
    sent = run_igmp(host, 30 * S)
    assert [len(v3_records(m)) for _, m in sent] == [183, 117]
    assert [r[1] for _, m in sent for r in v3_records(m)] == groups


# --- MLD ----------------------------------------------------------------------


def test_mld_join_reports_to_ff02_16_except_all_nodes_and_small_scopes() -> None:
    host = MldHost(random.Random(30))
    snm = solicited_node(LL)
    for g in (ALL_NODES, A("ff01::1"), A("ff00::5"), M1, snm):
        host.join(0, g)
    sent = run_mld(host, 10 * S)
    assert [mld_records(m) for _, m in sent] == [[(TO_EX, M1, ()), (TO_EX, snm, ())]] * 2
    assert 0 < sent[1][0] <= 1 * S  # MLDv2 Unsolicited Report Interval
    mld_v2_query(host, 20 * S)
    ((when, msg),) = run_mld(host, 40 * S)
    assert 20 * S < when <= 30 * S
    assert mld_records(msg) == [(IS_EX, M1, ()), (IS_EX, snm, ())]
    host.leave(50 * S, M1)
    host.leave(50 * S, ALL_NODES)
    assert [mld_records(m) for _, m in run_mld(host, 60 * S)] == [[(TO_IN, M1, ())]] * 2


def test_mld_checksum_uses_the_given_source_address() -> None:
    host = MldHost(random.Random(31))
    host.join(0, M1)
    (msg,) = host.poll(0, LL_OTHER)
    assert isinstance(Icmpv6Packet.parse(msg.payload, LL_OTHER, ALL_MLDV2_ROUTERS), Icmpv6Packet)
    assert Icmpv6Packet.parse(msg.payload, LL, ALL_MLDV2_ROUTERS) is WireError.BAD_CHECKSUM


def test_mld_maximum_response_code_uses_the_exponential_form() -> None:
    # Code 0x8400 is (0x1400 << 3) = 40960 ms; read linearly it would be 33792 ms.
    payload = mld.MldV2Query(0x8400, ZERO6, False, 2, 125).build(LL_ROUTER, ALL_NODES)
    delays = []
    for seed in range(30):
        host = MldHost(random.Random(seed))
        host.join(0, M1)
        run_mld(host, 5 * S)
        host.receive(10 * S, payload, LL_ROUTER, ALL_NODES, hop_limit=1, router_alert=True)
        ((when, _),) = run_mld(host, 100 * S)
        delays.append(when - 10 * S)
    assert all(0 < d <= 40_960 * MS for d in delays)
    assert max(delays) > 33_792 * MS


def test_mld_query_validation() -> None:
    host = MldHost(random.Random(32))
    host.join(0, M1)
    run_mld(host, 5 * S)
    query = mld.MldV2Query(1000, ZERO6, False, 2, 125)
    gua = A("2001:db8::1")
    host.receive(10 * S, query.build(gua, ALL_NODES), gua, ALL_NODES)  # not link-local
    host.receive(10 * S, query.build(ZERO6, ALL_NODES), ZERO6, ALL_NODES)  # ::
    host.receive(10 * S, query.build(LL_ROUTER, ALL_NODES), LL_ROUTER, ALL_NODES, hop_limit=255)
    host.receive(
        10 * S, query.build(LL_ROUTER, ALL_NODES), LL_ROUTER, ALL_NODES, router_alert=False
    )
    host.receive(10 * S, mld.MldV1Done(M1).build(LL_OTHER, ALL_ROUTERS), LL_OTHER, ALL_ROUTERS)
    host.receive(10 * S, Icmpv6Repr.echo_request(1, 1).build(b"", LL_OTHER, LL), LL_OTHER, LL)
    assert host.counters["ignored"] == 6
    host.receive(10 * S, query.build(LL_ROUTER, ALL_NODES), LL_OTHER, ALL_NODES)  # checksum
    host.receive(10 * S, query.build(LL_ROUTER, ALL_NODES)[:26], LL_ROUTER, ALL_NODES)
    assert host.counters["malformed"] == 2
    assert host.next_deadline() is None


def test_mldv1_querier_switches_to_v1_reports_and_done() -> None:
    host = MldHost(random.Random(33))
    host.join(0, M1)
    run_mld(host, 5 * S)
    v1_query = mld.MldV1Query(10_000, ZERO6).build(LL_ROUTER, ALL_NODES)
    host.receive(10 * S, v1_query, LL_ROUTER, ALL_NODES, hop_limit=1, router_alert=True)
    assert host.compatibility_version(10 * S) == 1
    ((when, msg),) = run_mld(host, 25 * S)
    assert 10 * S < when <= 20 * S
    assert msg.dst == M1 and mld_wire(msg) == mld.MldV1Report(M1)
    assert A(mld_scapy(msg, ICMPv6MLReport).mladdr) == M1
    host.join(30 * S, M2)
    sent = run_mld(host, 45 * S)
    assert [(m.dst, mld_wire(m)) for _, m in sent] == [(M2, mld.MldV1Report(M2))] * 2
    assert 30 * S < sent[1][0] <= 40 * S  # MLDv1's 10 s interval
    host.leave(50 * S, M1)
    (done,) = host.poll(50 * S, LL)
    assert done.dst == ALL_ROUTERS and mld_wire(done) == mld.MldV1Done(M1)
    assert A(mld_scapy(done, ICMPv6MLDone).mladdr) == M1
    # Back to MLDv2 after 2 * 125 s + 10 s.
    assert host.compatibility_version(270 * S - 1) == 1
    assert host.compatibility_version(270 * S) == 2
    host.leave(300 * S, M2)
    assert [mld_records(m) for _, m in run_mld(host, 310 * S)] == [[(TO_IN, M2, ())]] * 2


def test_mldv1_report_from_another_listener_suppresses_ours() -> None:
    host = MldHost(random.Random(34))
    host.join(0, M1)
    run_mld(host, 5 * S)
    v1_query = mld.MldV1Query(10_000, ZERO6).build(LL_ROUTER, ALL_NODES)
    host.receive(10 * S, v1_query, LL_ROUTER, ALL_NODES)
    other = mld.MldV1Report(M1).build(LL_OTHER, M1)
    host.receive(10 * S + 1, other, LL_OTHER, M1, hop_limit=1, router_alert=True)
    assert run_mld(host, 60 * S) == [] and host.counters["suppressed"] == 1
    host.leave(70 * S, M1)
    assert host.poll(70 * S, LL) == []


def test_mld_source_specific_response_too_big_for_one_report_is_split() -> None:
    host = MldHost(random.Random(35))
    host.join(0, M1)
    run_mld(host, 5 * S)
    sources = tuple(A(f"2001:db8::{i:x}") for i in range(1, 151))
    mld_v2_query(host, 10 * S, group=M1, max_resp_ms=1000, sources=sources[::-1])
    sent = run_mld(host, 20 * S)
    assert all(40 + 8 + len(m.payload) <= 1280 for _, m in sent)
    records = [mld_records(m) for _, m in sent]
    assert records == [[(IS_IN, M1, sources[:75])], [(IS_IN, M1, sources[75:])]]


def test_mld_multicast_address_specific_query_leaves_the_mode_alone() -> None:
    host = MldHost(random.Random(36))
    host.join(0, M1)
    run_mld(host, 5 * S)
    v1_specific = mld.MldV1Query(1000, M1).build(LL_ROUTER, M1)
    host.receive(10 * S, v1_specific, LL_ROUTER, M1)
    assert host.compatibility_version(10 * S) == 2  # only general queries switch
    ((_, msg),) = run_mld(host, 20 * S)
    assert mld_records(msg) == [(IS_EX, M1, ())]


def test_announce_all_reports_every_group_again() -> None:
    host = MldHost(random.Random(37))
    host.join(0, M1)
    host.join(0, M2)
    run_mld(host, 5 * S)
    host.announce_all(10 * S)  # e.g. the link-local address became valid
    sent = run_mld(host, 20 * S)
    assert [mld_records(m) for _, m in sent] == [[(TO_EX, M1, ()), (TO_EX, M2, ())]] * 2
