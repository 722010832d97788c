"""Connection tracking, packet by packet: states, TCP state machine, timeouts, bounds."""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, UDPerror
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NS,
    IPv6,
)
from scapy.packet import Raw

from firewall import ESTABLISHED, INVALID, NEW, RELATED, UNTRACKED, ConnTrack, PacketInfo
from firewall.conntrack import ConntrackTcpState

S = 1_000_000_000
C4, S4 = "10.0.0.2", "10.1.0.2"
C6, S6 = "fd00::2", "fd01::2"


class Dialogue:
    """A client and a server talking through one conntrack table."""

    def __init__(self, table: ConnTrack | None = None, version: int = 4) -> None:
        self.table = table if table is not None else ConnTrack()
        self.now = 0
        self.version = version
        self.client, self.server = (C4, S4) if version == 4 else (C6, S6)

    def ip(self, reply: bool) -> Any:
        src, dst = (self.server, self.client) if reply else (self.client, self.server)
        return IP(src=src, dst=dst) if self.version == 4 else IPv6(src=src, dst=dst)

    def feed(self, packet: Any, confirm: bool = True) -> int:
        pkt = PacketInfo.parse(bytes(packet))
        assert pkt is not None
        pkt.now = self.now
        state = self.table.track(pkt, self.now)
        if confirm:
            self.table.confirm(pkt)
        return state

    def tcp(self, flags: str, seq: int, ack: int = 0, reply: bool = False, data: bytes = b"",
            sport: int = 40000, dport: int = 80, window: int = 65535, confirm: bool = True,
            options: list[Any] | None = None) -> int:
        a, b = (dport, sport) if reply else (sport, dport)
        segment = TCP(sport=a, dport=b, flags=flags, seq=seq, ack=ack, window=window,
                      options=options or [])
        return self.feed(self.ip(reply) / segment / Raw(data) if data else
                         self.ip(reply) / segment, confirm)

    def handshake(self, sport: int = 40000) -> None:
        assert self.tcp("S", 1000, sport=sport) == NEW
        assert self.tcp("SA", 5000, 1001, reply=True, sport=sport) == ESTABLISHED
        assert self.tcp("A", 1001, 5001, sport=sport) == ESTABLISHED

    def conn(self, sport: int = 40000) -> Any:
        key = (6, IP(dst=self.client).dst if False else _raw(self.client), sport,
               _raw(self.server), 80)
        found = self.table.lookup(key)
        return found[0] if found else None


def _raw(text: str) -> bytes:
    import ipaddress

    return ipaddress.ip_address(text).packed


@pytest.mark.parametrize("version", [4, 6])
def test_tcp_handshake_data_and_close_walk_the_state_machine(version: int) -> None:
    d = Dialogue(version=version)
    assert d.tcp("S", 1000) == NEW
    assert d.conn().tcp_state == ConntrackTcpState.SYN_SENT and not d.conn().seen_reply
    assert d.tcp("S", 1000) == NEW  # a retransmitted SYN is still new
    assert d.tcp("SA", 5000, 1001, reply=True) == ESTABLISHED
    assert d.conn().tcp_state == ConntrackTcpState.SYN_RECV
    assert d.tcp("A", 1001, 5001) == ESTABLISHED
    conn = d.conn()
    assert conn.tcp_state == ConntrackTcpState.ESTABLISHED and conn.assured
    assert d.tcp("PA", 1001, 5001, data=b"GET /") == ESTABLISHED
    assert d.tcp("A", 5001, 1006, reply=True) == ESTABLISHED
    assert d.tcp("FA", 1006, 5001) == ESTABLISHED
    assert conn.tcp_state == ConntrackTcpState.FIN_WAIT
    assert d.tcp("A", 5001, 1007, reply=True) == ESTABLISHED
    assert conn.tcp_state == ConntrackTcpState.CLOSE_WAIT
    assert d.tcp("FA", 5001, 1007, reply=True) == ESTABLISHED
    assert conn.tcp_state == ConntrackTcpState.LAST_ACK
    assert d.tcp("A", 1007, 5002) == ESTABLISHED
    assert conn.tcp_state == ConntrackTcpState.TIME_WAIT
    assert conn.expires == d.now + 120 * S


def test_tcp_timeouts_follow_the_state() -> None:
    d = Dialogue()
    d.tcp("S", 1000)
    assert d.conn().expires == 120 * S  # SYN_SENT: 2 minutes
    d.now = 119 * S
    assert d.table.lookup(d.conn().original, d.now) is not None
    d.now = 121 * S
    d.table.expire(d.now)
    assert len(d.table) == 0
    d.handshake(sport=40001)
    conn = d.conn(40001)
    assert conn.expires == d.now + 432000 * S  # ESTABLISHED: 5 days
    d.tcp("PA", 1001, 5001, data=b"x", sport=40001)
    assert conn.expires == d.now + 300 * S  # unacknowledged data: 5 minutes


def test_tcp_segments_that_cannot_start_a_flow_are_invalid() -> None:
    d = Dialogue()
    assert d.tcp("SA", 5000, 1001, reply=True) == INVALID  # an unsolicited SYN-ACK
    assert d.tcp("A", 1001, 5001) == INVALID  # a mid-stream ACK (no pick-up by default)
    assert d.tcp("F", 1001) == INVALID
    assert d.tcp("R", 1001) == INVALID
    assert len(d.table) == 0


def test_tcp_loose_picks_up_a_flow_from_a_mid_stream_ack() -> None:
    d = Dialogue(ConnTrack(tcp_loose=True))
    assert d.tcp("A", 1001, 5001) == NEW
    assert d.tcp("A", 5001, 1001, reply=True) == ESTABLISHED


@pytest.mark.parametrize("flags", ["SF", "", "FPU", "SR", "FSRPAU"])
def test_invalid_flag_combinations_are_invalid(flags: str) -> None:
    assert Dialogue().tcp(flags, 1000) == INVALID


def test_segment_outside_the_window_is_invalid() -> None:
    d = Dialogue()
    d.handshake()
    # data far beyond what the server's window allows
    assert d.tcp("PA", 1001 + 10_000_000, 5001, data=b"x") == INVALID
    assert d.tcp("A", 1001 + 10_000_000, 5001) == ESTABLISHED  # no data: only the ACK counts
    assert d.tcp("R", 5001 + 50_000_000, 0, reply=True) == INVALID  # a blind reset
    assert d.tcp("A", 1001, 5001 + 1_000_000) == INVALID  # ACKs data never sent
    assert d.tcp("A", 1001, 5001) == ESTABLISHED
    assert d.conn().tcp_state == ConntrackTcpState.ESTABLISHED


def test_window_scaling_from_the_syns_is_honoured() -> None:
    d = Dialogue()
    d.tcp("S", 1000, window=64000, options=[("WScale", 7)])
    d.tcp("SA", 5000, 1001, reply=True, window=64000, options=[("WScale", 7)])
    d.tcp("A", 1001, 5001, window=500)  # 500 << 7 = 64000 bytes
    # the server may send up to the client's scaled window
    assert d.tcp("PA", 5001 + 60000, 1001, reply=True, data=b"y" * 100) == ESTABLISHED


def test_reset_answering_a_syn_forgets_the_flow() -> None:
    d = Dialogue()
    d.tcp("S", 1000)
    assert d.tcp("RA", 0, 1001, reply=True) == ESTABLISHED  # the refusal itself is a reply
    assert len(d.table) == 0
    assert d.tcp("S", 1000) == NEW


def test_syn_after_close_reopens_a_new_flow() -> None:
    d = Dialogue()
    d.handshake()
    d.tcp("FA", 1001, 5001)
    d.tcp("FA", 5001, 1002, reply=True)
    d.tcp("A", 1002, 5002)
    assert d.conn().tcp_state == ConntrackTcpState.TIME_WAIT
    old = d.conn()
    assert d.tcp("S", 9000) == NEW
    assert d.conn() is not old and d.conn().tcp_state == ConntrackTcpState.SYN_SENT


def test_simultaneous_open() -> None:
    d = Dialogue()
    d.tcp("S", 1000)
    assert d.tcp("S", 5000, reply=True) == ESTABLISHED
    assert d.conn().tcp_state == ConntrackTcpState.SYN_SENT2


@pytest.mark.parametrize("version", [4, 6])
def test_udp_pseudo_connection(version: int) -> None:
    d = Dialogue(version=version)
    query = d.ip(False) / UDP(sport=5353, dport=53) / Raw(b"q")
    answer = d.ip(True) / UDP(sport=53, dport=5353) / Raw(b"a")
    assert d.feed(query) == NEW
    assert d.feed(query) == NEW  # still unanswered
    assert d.feed(answer) == ESTABLISHED
    assert d.feed(query) == ESTABLISHED
    conn = next(iter(d.table))
    assert conn.expires == 30 * S and not conn.assured
    d.now = 3 * S  # both sides still talking after 2 s: a stream
    assert d.feed(answer) == ESTABLISHED
    assert conn.assured and conn.expires == d.now + 120 * S
    d.now += 121 * S
    assert d.feed(answer) == NEW  # timed out: the "reply" starts a new flow


def test_udp_unanswered_flow_times_out_after_30s() -> None:
    d = Dialogue()
    d.feed(d.ip(False) / UDP(sport=1, dport=2))
    d.now = 31 * S
    d.table.expire(d.now)
    assert len(d.table) == 0


@pytest.mark.parametrize("version", [4, 6])
def test_icmp_echo_tracked_by_identifier(version: int) -> None:
    d = Dialogue(version=version)
    request: Any
    reply: Any
    other_reply: Any
    if version == 4:
        request, reply = ICMP(type=8, id=9, seq=1), ICMP(type=0, id=9, seq=1)
        other_reply = ICMP(type=0, id=10, seq=1)
    else:
        request, reply = ICMPv6EchoRequest(id=9, seq=1), ICMPv6EchoReply(id=9, seq=1)
        other_reply = ICMPv6EchoReply(id=10, seq=1)
    assert d.feed(d.ip(True) / reply) == INVALID  # an echo reply nobody asked for
    assert d.feed(d.ip(False) / request) == NEW
    assert d.feed(d.ip(True) / reply) == ESTABLISHED
    assert d.feed(d.ip(True) / other_reply) == INVALID
    assert next(iter(d.table)).expires == 30 * S


def test_icmp_error_about_a_tracked_flow_is_related() -> None:
    d = Dialogue()
    query = d.ip(False) / UDP(sport=5353, dport=53) / Raw(b"q")
    d.feed(query)
    error = (IP(src="10.1.0.1", dst=C4) / ICMP(type=3, code=3)
             / IPerror(src=C4, dst=S4) / UDPerror(sport=5353, dport=53))
    assert d.feed(error) == RELATED
    unknown = (IP(src="10.1.0.1", dst=C4) / ICMP(type=3, code=3)
               / IPerror(src=C4, dst=S4) / UDPerror(sport=5354, dport=53))
    assert d.feed(unknown) == INVALID
    tcp_error = (IP(src="10.1.0.1", dst=C4) / ICMP(type=11)
                 / IPerror(src=C4, dst=S4) / TCPerror(sport=40000, dport=80))
    assert d.feed(tcp_error) == INVALID
    d.tcp("S", 1000)
    assert d.feed(tcp_error) == RELATED


def test_icmpv6_error_about_a_tracked_flow_is_related() -> None:
    d = Dialogue(version=6)
    d.feed(d.ip(False) / UDP(sport=5353, dport=53))
    error = (IPv6(src="fd01::1", dst=C6) / ICMPv6DestUnreach(code=4)
             / IPv6(src=C6, dst=S6) / UDP(sport=5353, dport=53))
    assert d.feed(error) == RELATED


def test_neighbor_discovery_is_untracked() -> None:
    d = Dialogue(version=6)
    ns = IPv6(src="fe80::2", dst="ff02::1:ff00:1", hlim=255) / ICMPv6ND_NS(tgt="fd00::1")
    assert d.feed(ns) == UNTRACKED
    assert len(d.table) == 0


def test_unconfirmed_flows_never_enter_the_table() -> None:
    d = Dialogue()
    assert d.tcp("S", 1000, confirm=False) == NEW
    assert len(d.table) == 0
    assert d.tcp("SA", 5000, 1001, reply=True) == INVALID  # the SYN was dropped
    assert len(d.table) == 0


def test_full_table_evicts_the_oldest_unassured_flow() -> None:
    table = ConnTrack(max_entries=3)
    d = Dialogue(table)
    d.handshake(sport=1)  # assured
    d.tcp("S", 1000, sport=2)
    d.now = 1
    d.tcp("S", 1000, sport=3)
    d.now = 2
    d.tcp("S", 1000, sport=4)  # full: the half-open flow from port 2 goes
    assert len(table) == 3
    assert d.conn(2) is None and d.conn(3) is not None and d.conn(4) is not None
    assert d.conn(1) is not None and d.conn(1).assured
    assert table.stats["early_drop"] == 1


def test_table_of_assured_flows_refuses_new_ones() -> None:
    table = ConnTrack(max_entries=2)
    d = Dialogue(table)
    d.handshake(sport=1)
    d.handshake(sport=2)
    pkt = PacketInfo.parse(bytes(d.ip(False) / TCP(sport=3, dport=80, flags="S", seq=1)))
    assert pkt is not None
    assert table.track(pkt, 0) == NEW
    assert table.confirm(pkt) is False
    assert table.stats["insert_failed"] == 1
    assert len(table) == 2 and d.conn(1) is not None and d.conn(2) is not None


def test_per_source_cap_refuses_only_that_source() -> None:
    table = ConnTrack(max_entries=100, max_per_source=5)
    hostile = Dialogue(table)
    for port in range(1, 20):
        hostile.tcp("S", 1000, sport=port)
    assert len(table) == 5 and table.stats["insert_failed_source"] == 14
    other = Dialogue(table)
    other.client = "10.0.0.3"
    other.handshake()
    assert len(table) == 6


def test_expiry_sweep_runs_as_time_passes() -> None:
    table = ConnTrack(gc_interval_ns=S)
    d = Dialogue(table)
    for port in range(1, 50):
        d.feed(d.ip(False) / UDP(sport=port, dport=9))
    assert len(table) == 49
    d.now = 40 * S
    d.feed(d.ip(False) / UDP(sport=999, dport=9))  # any packet runs the sweep
    assert len(table) == 1


def test_reply_tuple_can_be_rekeyed_for_nat() -> None:
    d = Dialogue()
    d.tcp("S", 1000)
    conn = d.conn()
    translated = (6, _raw(S4), 80, _raw("192.0.2.1"), 61000)
    d.table.rekey_reply(conn, translated)
    reply = IP(src=S4, dst="192.0.2.1") / TCP(sport=80, dport=61000, flags="SA", seq=5000,
                                                ack=1001)
    assert d.feed(reply) == ESTABLISHED
    assert conn.seen_reply
