"""What a reject sends: TCP resets and ICMP/ICMPv6 unreachables, as Linux's REJECT does."""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.packet import Raw

from tests.firewall.helpers import HostBench, RouterBench


def rejecting(bench: HostBench | RouterBench, hook: str, rule: str,
              output_rules: str = "") -> None:
    bench.use(f"chain {hook} {{\n    {rule}\n}}\n{output_rules}")


@pytest.mark.parametrize("version", [4, 6])
def test_syn_gets_reset_with_ack_of_its_sequence(version: int) -> None:
    bench = HostBench()
    rejecting(bench, "input", "tcp dport 22 reject")
    l3 = IP(src="10.0.0.2", dst="10.0.0.1") if version == 4 else IPv6(src="fd00::2",
                                                                      dst="fd00::1")
    bench.inject(l3 / TCP(sport=40000, dport=22, flags="S", seq=1000))
    [frame] = bench.sent()
    rst = frame[TCP]
    assert rst.flags == "RA" and rst.seq == 0 and rst.ack == 1001
    assert (rst.sport, rst.dport) == (22, 40000) and rst.window == 0
    assert frame.src == "02:00:00:00:00:01"
    assert frame[IP if version == 4 else IPv6].src == ("10.0.0.1" if version == 4 else "fd00::1")


def test_segment_with_ack_gets_reset_with_that_sequence() -> None:
    bench = HostBench()
    rejecting(bench, "input", "tcp dport 22 reject with tcp reset")
    bench.inject(IP(src="10.0.0.2", dst="10.0.0.1")
                 / TCP(sport=40000, dport=22, flags="PA", seq=1000, ack=777) / Raw(b"data"))
    [frame] = bench.sent()
    assert frame[TCP].flags == "R" and frame[TCP].seq == 777


def test_reset_is_never_answered_with_a_reset() -> None:
    bench = HostBench()
    rejecting(bench, "input", "reject")
    bench.inject(IP(src="10.0.0.2", dst="10.0.0.1") / TCP(dport=22, flags="R", seq=1))
    assert bench.sent() == []
    assert bench.firewall.counters["reject.not_answered"] == 1


@pytest.mark.parametrize(("rule", "version", "icmp_type", "code"), [
    ("reject", 4, 3, 3),
    ("reject", 6, 1, 4),
    ("reject with icmp host-unreachable", 4, 3, 1),
    ("reject with icmp admin-prohibited", 4, 3, 13),
    ("reject with icmp net-prohibited", 4, 3, 9),
    ("reject with icmp type prot-unreachable", 4, 3, 2),
    ("reject with icmpv6 admin-prohibited", 6, 1, 1),
    ("reject with icmpv6 addr-unreachable", 6, 1, 3),
    ("reject with icmpx admin-prohibited", 4, 3, 13),
    ("reject with icmpx admin-prohibited", 6, 1, 1),
    ("reject with icmpx no-route", 6, 1, 0),
    ("reject with icmpx host-unreachable", 4, 3, 1),
])
def test_udp_gets_the_icmp_unreachable_asked_for(rule: str, version: int, icmp_type: int,
                                                 code: int) -> None:
    bench = HostBench()
    rejecting(bench, "input", f"udp dport 53 {rule}")
    sent: Any
    if version == 4:
        sent = IP(src="10.0.0.2", dst="10.0.0.1", id=4242) / UDP(sport=5353, dport=53) / Raw(
            b"query")
    else:
        sent = IPv6(src="fd00::2", dst="fd00::1") / UDP(sport=5353, dport=53) / Raw(b"query")
    bench.inject(sent)
    [frame] = bench.sent()
    if version == 4:
        icmp = frame[ICMP]
        assert (icmp.type, icmp.code) == (icmp_type, code)
        assert frame[IP].src == "10.0.0.1" and frame[IP].dst == "10.0.0.2"
        assert frame[IPerror].id == 4242 and frame[UDPerror].dport == 53
        assert bytes(frame[IPerror]) == bytes(sent)  # the whole small packet is quoted
    else:
        icmp6 = frame[ICMPv6DestUnreach]
        assert (icmp6.type, icmp6.code) == (icmp_type, code)
        assert frame[IPv6].src == "fd00::1"
        assert bytes(icmp6.payload) == bytes(sent)


def test_icmp_reject_of_icmp_family_only_rules_apply_to_their_family() -> None:
    bench = HostBench()
    rejecting(bench, "input", "reject with icmp host-unreachable\n    reject with icmpv6 "
              "admin-prohibited")
    bench.inject(IPv6(src="fd00::2", dst="fd00::1") / UDP(dport=9))
    [frame] = bench.sent()
    assert frame[ICMPv6DestUnreach].code == 1  # the icmp (v4) rule did not apply to IPv6


def test_big_packet_quote_is_cut_to_576_bytes() -> None:
    bench = HostBench()
    rejecting(bench, "input", "reject")
    bench.inject(IP(src="10.0.0.2", dst="10.0.0.1") / UDP(dport=9) / Raw(b"z" * 1400))
    [frame] = bench.sent()
    assert len(frame[IP]) == 576


def test_echo_request_gets_port_unreachable_from_plain_reject() -> None:
    bench = HostBench()
    rejecting(bench, "input", "icmp type echo-request reject")
    bench.inject(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=8, id=1))
    [frame] = bench.sent()
    assert (frame[ICMP].type, frame[ICMP].code) == (3, 3)


@pytest.mark.parametrize("packet", [
    IP(src="10.0.0.2", dst="10.0.0.255") / UDP(dport=9),
    IP(src="10.0.0.2", dst="255.255.255.255") / UDP(dport=9),
    IP(src="10.0.0.2", dst="224.0.0.1") / UDP(dport=9),
    IPv6(src="fd00::2", dst="ff02::1") / UDP(dport=9),
    IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=3, code=3) / IPerror(dst="10.0.0.2")
    / UDPerror(),
    IPv6(src="fd00::2", dst="fd00::1") / ICMPv6DestUnreach() / IPv6(dst="fd00::2") / UDP(),
], ids=["subnet-broadcast", "broadcast", "multicast-v4", "multicast-v6", "icmp-error",
        "icmpv6-error"])
def test_no_answer_to_broadcasts_multicasts_and_errors(packet: object) -> None:
    bench = HostBench()
    rejecting(bench, "input", "reject")
    bench.inject(packet)
    assert bench.sent() == []


def test_forward_reset_comes_from_the_destination_and_icmp_from_the_router() -> None:
    bench = RouterBench()
    rejecting(bench, "forward", "tcp dport 22 reject\n    udp dport 53 reject")
    bench.inject(IP(src="10.0.0.2", dst="10.1.0.2") / TCP(sport=1, dport=22, flags="S", seq=5))
    [rst] = bench.sent("eth0")
    assert rst[IP].src == "10.1.0.2" and rst[IP].dst == "10.0.0.2"
    assert rst[TCP].flags == "RA" and rst[TCP].ack == 6
    bench.inject(IPv6(src="fd00::2", dst="fd01::2") / UDP(dport=53))
    [unreach] = bench.sent("eth0")
    assert unreach[IPv6].src == "fd00::1" and unreach[ICMPv6DestUnreach].code == 4
    assert bench.sent("eth1") == []


def test_reject_answer_passes_output_as_related() -> None:
    bench = HostBench()
    related_ok = "chain output {\n    policy drop\n    ct state related accept\n}\n"
    rejecting(bench, "input", "udp dport 53 reject", related_ok)
    bench.inject(IP(src="10.0.0.2", dst="10.0.0.1") / UDP(dport=53))
    assert len(bench.sent()) == 1
    strict = "chain output {\n    policy drop\n}\n"
    rejecting(bench, "input", "udp dport 53 reject", strict)
    bench.inject(IP(src="10.0.0.2", dst="10.0.0.1") / UDP(dport=53))
    assert bench.sent() == []  # as on Linux: the OUTPUT policy drops the answer too


def test_icmp_rejects_are_rate_limited_resets_are_not() -> None:
    bench = HostBench()
    rejecting(bench, "input", "reject")
    for port in range(60):
        bench.inject(IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=port, dport=9))
    assert len(bench.sent()) == 50
    assert bench.firewall.counters["reject.ratelimited"] == 10
    for port in range(60):
        bench.inject(IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=port, dport=9, flags="S"))
    assert len(bench.sent()) == 60
    bench.advance(1.0)
    bench.inject(IP(src="10.0.0.2", dst="10.0.0.1") / UDP(dport=9))
    assert len(bench.sent()) == 1


def test_output_reject_is_delivered_back_to_the_host_as_related() -> None:
    bench = HostBench()
    bench.use("chain output {\n    udp dport 9 reject\n}\n"
              "chain input {\n    policy drop\n    ct state related accept\n}\n")
    sock = bench.udp.socket(2)
    sock.connect(bytes((10, 0, 0, 2)), 9)
    with pytest.raises(PermissionError):  # EPERM, as Linux's sendto
        sock.sendto(memoryview(b"x"))
    assert bench.sent() == []  # nothing left the host
    with pytest.raises(ConnectionRefusedError):  # the ICMP came back through lo
        sock.sendto(memoryview(b"x"))
    assert bench.firewall.counters["input.accept"] == 1


def test_echo_request_from_ping_layer_is_refused_locally() -> None:
    bench = HostBench()
    bench.use("chain output {\n    icmp type echo-request drop\n}\n")
    sock = bench.icmp.socket(2)
    with pytest.raises(PermissionError):  # IPv4 ping reports the OUTPUT drop, as Linux
        sock.sendto(bytes(ICMP(type=8, id=1, seq=1)), bytes((10, 0, 0, 2)))
    assert bench.sent() == []
