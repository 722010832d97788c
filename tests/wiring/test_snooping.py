"""IGMP/MLD snooping, with membership reports and queries built by scapy."""

from __future__ import annotations

import pytest
from scapy.layers.igmp import IGMP, IGMPv3_MR, IGMPv3_MR_Group
from scapy.layers.inet import IP
from scapy.layers.inet6 import (
    ICMPv6MLDMultAddrRec,
    ICMPv6MLReport2,
    IPv6,
    IPv6ExtHdrHopByHop,
    RouterAlert,
)
from scapy.layers.l2 import Ether
from scapy.packet import raw

from tests.wiring import helpers as h
from tests.wiring.helpers import Sink
from vnet.link.segment import DROP_NO_RECEIVERS, Segment, SegmentPort
from vnet.scheduler import Scheduler

IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6


def lan(snooping: bool = True, n: int = 4, **kwargs: int) -> tuple[
    Scheduler, Segment, list[Sink], list[SegmentPort]
]:
    sched = Scheduler(virtual=True)
    seg = Segment(sched, "lan", snooping=snooping, **kwargs)
    sinks = [Sink(f"h{i}", sched) for i in range(1, n + 1)]
    return sched, seg, sinks, [seg.attach(s) for s in sinks]


def receivers(sinks: list[Sink], send: SegmentPort, f: bytes) -> list[int]:
    """Index of every sink that got ``f`` when ``send`` sent it."""
    for s in sinks:
        s.frames.clear()
    send.send(f)
    return [i for i, s in enumerate(sinks) if s.frames == [f]]


def test_without_snooping_group_traffic_floods() -> None:
    _, _, sinks, ports = lan(snooping=False)
    ports[1].send(h.igmpv3_report(2, (TO_EX, "239.1.2.3", [])))
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == [1, 2, 3]
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.9.9.9")) == [1, 2, 3]


def test_igmpv3_report_limits_group_traffic_to_members() -> None:
    _, seg, sinks, ports = lan()
    ports[2].send(h.igmpv3_report(3, (TO_EX, "239.1.2.3", [])))
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == [2]
    assert seg.multicast_ports(bytes.fromhex("01005e010203")) == [ports[2]]
    assert seg.counters["igmp_report"] == 1


def test_unregistered_group_reaches_nobody_without_a_router() -> None:
    _, _, sinks, ports = lan()
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == []
    assert ports[0].counters.drops == {DROP_NO_RECEIVERS: 1}


def test_query_marks_router_port_which_gets_all_group_traffic_and_reports() -> None:
    _, seg, sinks, ports = lan()
    assert receivers(sinks, ports[3], h.igmpv3_query(4)) == [0, 1, 2]  # queries flood
    assert seg.router_ports() == [ports[3]]
    # Reports go to the router only, so hosts never suppress theirs.
    assert receivers(sinks, ports[1], h.igmpv2_report(2, "239.1.2.3")) == [3]
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == [1, 3]
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.7.7.7")) == [3]
    assert receivers(sinks, ports[3], h.udp_v4(4, "239.1.2.3")) == [1]


def test_group_specific_query_to_the_group_address_still_floods() -> None:
    _, _, sinks, ports = lan()
    assert receivers(sinks, ports[3], h.igmpv3_query(4, "239.1.2.3")) == [0, 1, 2]


def test_igmpv2_query_marks_router_too() -> None:
    _, seg, sinks, ports = lan()
    assert receivers(sinks, ports[0], h.igmpv2_query(1)) == [1, 2, 3]
    assert seg.router_ports() == [ports[0]]


def test_igmpv2_leave_and_v3_to_include_empty_remove_membership() -> None:
    _, _, sinks, ports = lan()
    ports[1].send(h.igmpv2_report(2, "239.1.2.3"))
    ports[2].send(h.igmpv3_report(3, (IS_EX, "239.1.2.3", [])))
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == [1, 2]
    ports[1].send(h.igmpv2_leave(2, "239.1.2.3"))
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == [2]
    ports[2].send(h.igmpv3_report(3, (TO_IN, "239.1.2.3", [])))
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == []


def test_igmpv3_include_with_sources_joins_and_block_is_ignored() -> None:
    _, _, sinks, ports = lan()
    ports[1].send(h.igmpv3_report(2, (ALLOW, "239.1.1.1", ["10.0.0.1"]),
                                  (IS_IN, "239.2.2.2", ["10.0.0.1"])))
    ports[1].send(h.igmpv3_report(2, (BLOCK, "239.1.1.1", ["10.0.0.1"])))
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.1.1")) == [1]
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.2.2.2")) == [1]


def test_groups_sharing_a_mac_do_not_cancel_each_other() -> None:
    _, _, sinks, ports = lan()
    # 239.1.2.3 and 239.129.2.3 map to the same MAC 01:00:5e:01:02:03.
    ports[1].send(h.igmpv2_report(2, "239.1.2.3"))
    ports[1].send(h.igmpv2_report(2, "239.129.2.3"))
    ports[1].send(h.igmpv2_leave(2, "239.129.2.3"))
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == [1]


def test_membership_expires_after_the_snooping_timeout() -> None:
    sched, _, sinks, ports = lan(snooping_timeout_ns=1_000)
    ports[1].send(h.igmpv2_report(2, "239.1.2.3"))
    ports[3].send(h.igmpv3_query(4))
    sched.run_for(999)
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == [1, 3]
    sched.run_for(1)
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == []


def test_ipv4_link_local_control_groups_always_flood() -> None:
    _, _, sinks, ports = lan()
    for group in ("224.0.0.1", "224.0.0.251", "224.0.0.18"):
        assert receivers(sinks, ports[0], h.udp_v4(1, group)) == [1, 2, 3], group


def test_non_ip_group_macs_and_broadcast_flood() -> None:
    _, _, sinks, ports = lan()
    lldp = h.frame(bytes.fromhex("0180c200000e"), h.mac(1), ethertype=0x88CC)
    assert receivers(sinks, ports[0], lldp) == [1, 2, 3]
    assert receivers(sinks, ports[0], h.frame(h.BROADCAST, h.mac(1))) == [1, 2, 3]
    # 01:00:5e with the top bit of byte 3 set is not an IPv4 multicast mapping.
    odd = h.frame(bytes.fromhex("01005e800001"), h.mac(1))
    assert receivers(sinks, ports[0], odd) == [1, 2, 3]


def test_mldv2_report_limits_ipv6_group_traffic() -> None:
    _, seg, sinks, ports = lan()
    ports[2].send(h.mldv2_report(3, (TO_EX, "ff05::1:3", [])))
    assert receivers(sinks, ports[0], h.udp_v6(1, "ff05::1:3")) == [2]
    assert receivers(sinks, ports[0], h.udp_v6(1, "ff05::1:4")) == []
    ports[2].send(h.mldv2_report(3, (TO_IN, "ff05::1:3", [])))
    assert receivers(sinks, ports[0], h.udp_v6(1, "ff05::1:3")) == []
    assert seg.counters["mld_report"] == 2


def test_mldv1_report_and_done() -> None:
    _, seg, sinks, ports = lan()
    ports[1].send(h.mldv1_report(2, "ff0e::1234"))
    assert receivers(sinks, ports[0], h.udp_v6(1, "ff0e::1234")) == [1]
    ports[1].send(h.mldv1_done(2, "ff0e::1234"))
    assert receivers(sinks, ports[0], h.udp_v6(1, "ff0e::1234")) == []
    assert (seg.counters["mld_report"], seg.counters["mld_done"]) == (1, 1)


@pytest.mark.parametrize("version", [1, 2])
def test_mld_query_marks_router_and_reports_reach_it_only(version: int) -> None:
    _, seg, sinks, ports = lan()
    assert receivers(sinks, ports[3], h.mld_query(4, version)) == [0, 1, 2]
    assert seg.router_ports() == [ports[3]]
    assert receivers(sinks, ports[0], h.mldv2_report(1, (TO_EX, "ff05::1:9", []))) == [3]
    assert receivers(sinks, ports[1], h.udp_v6(2, "ff05::1:9")) == [0, 3]


def test_ipv6_groups_with_well_known_low_bits_always_flood() -> None:
    """ff05::9 shares MAC 33:33:00:00:00:09 with ff02::9: forwarding is by MAC, so it floods."""
    _, _, sinks, ports = lan()
    ports[1].send(h.mldv2_report(2, (TO_EX, "ff05::9", [])))
    assert receivers(sinks, ports[0], h.udp_v6(1, "ff05::9")) == [1, 2, 3]


def test_ndp_to_solicited_node_groups_and_all_nodes_keep_flooding() -> None:
    _, _, sinks, ports = lan()
    # Nobody reported ff02::1:ff00:2, yet neighbour solicitation must get through.
    ns = h.neighbor_solicitation(1, "fe80::2")
    assert ns[:3] == bytes.fromhex("3333ff")
    assert receivers(sinks, ports[0], ns) == [1, 2, 3]
    for group in ("ff02::1", "ff02::2", "ff02::fb"):
        assert receivers(sinks, ports[0], h.udp_v6(1, group)) == [1, 2, 3], group
    # Reports for them do not restrict them either.
    ports[1].send(h.mldv2_report(2, (TO_EX, "ff02::1:ff00:2", []), (TO_EX, "ff02::fb", [])))
    assert receivers(sinks, ports[0], ns) == [1, 2, 3]


def _igmp_bad_records() -> bytes:
    """An IGMPv3 report claiming 3 records but carrying 1, with a correct checksum."""
    return raw(Ether(src=h.mac_str(2)) / IP(src="10.0.0.2", dst="224.0.0.22", ttl=1)
               / IGMPv3_MR(numgrp=3, records=[IGMPv3_MR_Group(rtype=TO_EX, maddr="239.1.2.3")]))


def _mld_bad_records() -> bytes:
    return raw(Ether(src=h.mac_str(2)) / IPv6(src="fe80::2", dst="ff02::16", hlim=1)
               / IPv6ExtHdrHopByHop(options=[RouterAlert()])
               / ICMPv6MLReport2(records_number=3,
                                 records=[ICMPv6MLDMultAddrRec(rtype=TO_EX, dst="ff05::1:3")]))


def _flip_last(f: bytes) -> bytes:
    return f[:-1] + bytes([f[-1] ^ 0xFF])


V4_REPORT = h.igmpv3_report(2, (TO_EX, "239.1.2.3", []))
V6_REPORT = h.mldv2_report(2, (TO_EX, "ff05::1:3", []))


@pytest.mark.parametrize(
    ("bad", "counter"),
    [
        pytest.param(_flip_last(V4_REPORT), "snoop_malformed_igmp_bad_checksum",
                     id="igmp-checksum"),
        pytest.param(_igmp_bad_records(), "snoop_malformed_igmp_truncated", id="igmp-records"),
        pytest.param(V4_REPORT[:38], "snoop_malformed_ipv4_truncated", id="ipv4-truncated"),
        pytest.param(V4_REPORT[:24] + b"\xff\xff" + V4_REPORT[26:],
                     "snoop_malformed_ipv4_bad_checksum", id="ipv4-checksum"),
        pytest.param(V4_REPORT[:14] + b"\x46\x00\x00\x10" + V4_REPORT[18:],
                     "snoop_malformed_ipv4_bad_length", id="ipv4-length"),
        pytest.param(_flip_last(V6_REPORT), "snoop_malformed_icmpv6_bad_checksum",
                     id="mld-checksum"),
        pytest.param(_mld_bad_records(), "snoop_malformed_mld_truncated", id="mld-records"),
        pytest.param(V6_REPORT[:70], "snoop_malformed_ipv6_truncated", id="ipv6-truncated"),
        pytest.param(V6_REPORT[:54] + b"\x3a\x00\x01\x09" + V6_REPORT[58:],
                     "snoop_malformed_ipv6_bad_option", id="ipv6-hop-by-hop"),
        pytest.param(V4_REPORT[:12] + b"\x81\x00\x00", "snoop_malformed_ethernet_truncated",
                     id="vlan-truncated"),
    ],
)
def test_garbage_igmp_and_mld_is_counted_and_forwarded_as_data(bad: bytes, counter: str) -> None:
    _, seg, sinks, ports = lan()
    assert receivers(sinks, ports[1], bad) == [0, 2, 3]  # to 224.0.0.22 / ff02::16: floods
    malformed = {k: v for k, v in seg.counters.items() if k.startswith("snoop_malformed")}
    assert malformed == {counter: 1}
    assert "igmp_report" not in seg.counters and "mld_report" not in seg.counters
    assert seg.multicast_ports(bytes.fromhex("01005e010203")) == []
    assert seg.multicast_ports(bytes.fromhex("333300010003")) == []


def test_igmp_fragments_and_plain_multicast_are_not_snooped() -> None:
    _, seg, sinks, ports = lan()
    frag = raw(Ether(src=h.mac_str(2)) / IP(src="10.0.0.2", dst="224.0.0.22", ttl=1, flags="MF")
               / IGMPv3_MR(records=[IGMPv3_MR_Group(rtype=TO_EX, maddr="239.1.2.3")]))
    assert receivers(sinks, ports[1], frag) == [0, 2, 3]
    assert seg.counters == {}


def test_vlan_tagged_reports_are_snooped() -> None:
    _, _, sinks, ports = lan()
    report = h.igmpv3_report(2, (TO_EX, "239.1.2.3", []))
    tagged = report[:12] + b"\x81\x00\x00\x05" + report[12:]
    ports[1].send(tagged)
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == [1]


def test_reports_for_non_multicast_groups_are_ignored() -> None:
    _, seg, sinks, ports = lan()
    bogus = (Ether(src=h.mac_str(2)) / IP(src="10.0.0.2", dst="224.0.0.2", ttl=1)
             / IGMP(type=0x16, gaddr="10.1.2.3"))
    ports[1].send(raw(bogus))
    assert seg.counters["snoop_ignored_group"] == 1
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.2.3")) == []


def test_group_table_is_bounded() -> None:
    _, seg, sinks, ports = lan(max_groups=3)
    for i in range(5):
        ports[1].send(h.igmpv2_report(2, f"239.1.1.{i}"))
    assert seg.counters["snoop_group_table_full"] == 2
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.1.2")) == [1]
    assert receivers(sinks, ports[0], h.udp_v4(1, "239.1.1.4")) == []


def test_detached_port_loses_memberships() -> None:
    _, seg, _, ports = lan()
    ports[1].send(h.igmpv2_report(2, "239.1.2.3"))
    ports[2].send(h.igmpv2_report(3, "239.1.2.3"))
    ports[1].detach()
    assert seg.multicast_ports(bytes.fromhex("01005e010203")) == [ports[2]]
