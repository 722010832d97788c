"""vnet.testing.expect on a real virtual-time capture: templates, sequences, absence, only-these."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from vnet.testing import Capture, Template, having, match

from .scenario import CLIENT, LATENCY_NS, SERVER, TCP_PORT, UDP_PORT, Run, run_scenario


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_scenario(tmp_path_factory.mktemp("expect") / "lan.pcapng", extra_udp=True)


@pytest.fixture
def cap(run: Run) -> Capture:
    return Capture.load(run.path)


def test_handshake_data_and_close_in_order(cap: Capture, run: Run) -> None:
    syn = cap.expect(IP(dst=SERVER) / TCP(dport=TCP_PORT, flags="S"), on="a/eth0")
    assert syn.time_ns == run.tcp_connect_ns and syn.interface == "a/eth0"
    talk = cap.on("a/eth0").conversation(syn)
    handshake = talk.expect_sequence([
        IP(src=CLIENT, dst=SERVER) / TCP(flags="S"),
        IP(src=SERVER, dst=CLIENT) / TCP(flags="SA", ack=syn[TCP].seq + 1),
        IP(src=CLIENT, dst=SERVER) / TCP(flags="A", seq=syn[TCP].seq + 1),
    ], strict=True)
    assert handshake[0] is syn
    assert match(TCP() / Raw(load=b""), handshake[2]) == []  # a bare ACK: empty payload
    assert [d.field for d in match(TCP() / Raw(load=b""), talk.expect(TCP(flags="PA")))] == [
        "Raw.load"]
    assert handshake[1].time_ns == syn.time_ns + 2 * LATENCY_NS  # a round trip later
    talk.expect_sequence([TCP(flags="PA") / Raw(b"hello"), TCP(sport=TCP_PORT, flags="A"),
                          TCP(sport=TCP_PORT, flags="FA"), TCP(dport=TCP_PORT, flags="A")],
                         after=handshake[-1])
    talk.expect_sequence([TCP(flags="PA"), TCP(dport=TCP_PORT, flags="FA"),
                          TCP(sport=TCP_PORT, flags="FA"), TCP(dport=TCP_PORT, flags="A")],
                         strict=False, after=handshake[-1])
    talk.expect_only([TCP(flags="S"), TCP(flags="SA"), TCP(flags="A"), TCP(flags="PA"),
                      TCP(flags="FA")])
    cap.expect_none(having(TCP(), flags=lambda flags: flags.R))
    assert cap.expect(having(TCP(), flags=lambda flags: flags.F)).index > syn.index
    talk.expect_sequence([TCP(flags="S"), TCP(flags="A")])  # the SYN-ACK may come between
    with pytest.raises(AssertionError) as failure:  # ... unless strict
        talk.expect_sequence([TCP(flags="S"), TCP(flags="A")], strict=True)
    report = str(failure.value)
    assert "step 2 of 2 of the strict sequence has no match" in report
    assert "the packet that broke the strict sequence" in report
    assert "TCP.flags: expected A, actual SA" in report


def test_partial_templates_predicates_and_layers_anywhere(cap: Capture) -> None:
    request = cap.expect(ICMP(type=8), on="b/eth0")
    assert request[IP].src == CLIENT and Ether in request
    assert cap.expect(Ether(type=0x806) / ARP(op=1, pdst=SERVER)).index == 0
    high_port_syn = cap.expect(TCP(sport=lambda port: port > 1024, dport=TCP_PORT, flags="S"))
    assert cap.expect(IP(dst="10.0.0.0/24") / TCP(flags="S")) is high_port_syn
    assert cap.expect(IP(dst="10.0.0.0/24", proto="tcp")) is high_port_syn
    differences = match(TCP(flags="S"), cap.expect(TCP(flags="SA")))  # flags match exactly
    assert [(d.field, d.expected, d.actual) for d in differences] == [("TCP.flags", "S", "SA")]
    on_b = cap.expect(Template(UDP(dport=UDP_PORT), where=lambda p: p.interface == "b/eth0"))
    assert on_b.interface == "b/eth0" and bytes(on_b[UDP].payload) == b"ping"
    assert len(cap.match(UDP(dport=UDP_PORT), where=lambda p: p.interface == "a/eth0")) == 2
    assert match(IP(dst=SERVER) / UDP(dport=UDP_PORT) / Raw(b"ping"), on_b) == []
    assert [d.field for d in match(IP() / TCP(), on_b)] == ["TCP"]  # UDP in its place


def test_time_windows_and_after(cap: Capture, run: Run) -> None:
    udp_s = run.udp_send_ns / 1e9
    first = cap.expect(UDP(dport=UDP_PORT), within=(udp_s, udp_s))
    assert first.time_ns == run.udp_send_ns
    with pytest.raises(AssertionError) as failure:
        cap.expect(UDP(dport=UDP_PORT), within=(0, udp_s - 1e-9))
    assert f"virtual time 0.000000000 s .. {udp_s - 1e-9:.9f} s" in str(failure.value)
    again = cap.expect(UDP(dport=UDP_PORT), after=first, on="a/eth0")
    assert bytes(again[UDP].payload) == b"extra" and again.time_ns > first.time_ns
    cap.expect_none(TCP(), within=(udp_s, None))
    assert len(cap.between(None, udp_s - 1e-9).match(UDP(dport=UDP_PORT))) == 0


def test_a_wrong_template_reports_the_differing_field(cap: Capture, run: Run) -> None:
    with pytest.raises(AssertionError) as failure:
        cap.expect(IP(dst=SERVER) / TCP(dport=TCP_PORT, flags="R"), on="a/eth0",
                   within=(0, 0.2))
    report = str(failure.value)
    assert report.startswith("expect: no packet matches the template")
    assert "template: IP(dst=10.0.0.2) / TCP(dport=80, flags=R)" in report
    assert f"capture:  {run.path}" in report
    assert "on a/eth0; virtual time 0.000000000 s .. 0.200000000 s" in report
    assert "TCP.flags: expected R, actual S" in report  # the SYN is among the nearest
    nearest = [line for line in report.splitlines() if line.startswith("    #")]
    assert len(nearest) == 5 and all(" a/eth0 10.0.0.1 → 10.0.0.2 TCP " in n for n in nearest)
    assert re.search(r"#\d+ 0\.\d{9} a/eth0 10\.0\.0\.1 → 10\.0\.0\.2 TCP 74 \d+ → 80 \[SYN\]",
                     report)
    with pytest.raises(AssertionError) as failure:
        cap.expect(UDP(dport=UDP_PORT) / Raw(b"pong"), where=lambda p: p.interface == "b/eth0")
    report = str(failure.value)
    assert "Raw.load: expected b'pong', actual b'ping'" in report
    assert "where lambda p: p.interface == \"b/eth0\"" in report


def test_expect_only_catches_an_extra_packet(cap: Capture) -> None:
    udp = cap.on("a/eth0").flow(f"{CLIENT}:5000", f"{SERVER}:{UDP_PORT}", proto="udp")
    assert len(udp) == 3
    request, reply = UDP(dport=UDP_PORT) / Raw(b"ping"), UDP(sport=UDP_PORT) / Raw(b"pong")
    with pytest.raises(AssertionError) as failure:
        udp.expect_only([request, reply])
    report = str(failure.value)
    assert "expect_only: 1 packet(s) match none of the 2 templates" in report
    assert "flow 10.0.0.1:5000 ↔ 10.0.0.2:9 udp" in report
    assert "5000 → 9 len=5" in report and "Raw.load: expected b'ping', actual b'extra'" in report
    udp.expect_only([request, reply, UDP(dport=UDP_PORT) / Raw(b"extra")])
    with pytest.raises(AssertionError) as failure:  # the SYN-ACK is the one left out
        cap.on("b/eth0").flow(CLIENT, SERVER, proto="tcp").expect_only(
            [TCP(flags="S"), TCP(flags="A"), TCP(flags="PA"), TCP(flags="FA")])
    report = str(failure.value)
    assert "expect_only: 1 packet(s) match none of the 4 templates" in report
    assert re.search(r"#\d+ \S+ b/eth0 10.0.0.2 → 10.0.0.1 TCP 74 80 → \d+ \[SYN, ACK\]", report)
    assert "nearest template 1:\n          TCP.flags: expected S, actual SA" in report


def test_expect_none_lists_what_it_found(cap: Capture) -> None:
    with pytest.raises(AssertionError) as failure:
        cap.expect_none(ICMP(type=0), on="a/eth0")
    report = str(failure.value)
    assert "expect_none: 1 packet(s) match the template" in report
    assert "a/eth0 10.0.0.2 → 10.0.0.1 ICMP 98 Echo (ping) reply" in report


def test_sequence_failure_names_the_step(cap: Capture) -> None:
    with pytest.raises(AssertionError) as failure:
        cap.on("a/eth0").expect_sequence([TCP(flags="S"), TCP(flags="FA"), TCP(flags="S")])
    report = str(failure.value)
    assert "step 3 of 3 of the sequence has no match" in report
    assert re.search(r"ok 1\. TCP\(flags=S\)\n\s+matched #\d+ .*\[SYN\]", report)
    assert ">> 3. TCP(flags=S)" in report


def test_capture_of_a_live_vnet_capture(tmp_path: Path) -> None:
    from vnet.network import Network

    net = Network(virtual_time=True, seed=4)
    lan = net.segment("lan")
    a = net.host("a")
    a.connect(lan, "10.0.0.1/24")
    b = net.host("b")
    b.connect(lan, "10.0.0.2/24")
    writer = net.capture()  # in memory, still open
    a.ping("10.0.0.2", count=2)
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.sendto(b"anyone?", ("10.0.0.2", 7))  # closed port: b answers port unreachable
    net.run_for(0.1)
    cap = Capture.of(writer)
    assert cap.source == "<memory>"
    assert len(cap.on("b/eth0").match(ICMP(type=8))) == 2
    # The datagram quoted inside the ICMP error is IPerror/UDPerror, not IP/UDP
    assert len(cap.on("a/eth0").match(IP() / UDP(dport=7))) == 1
    error = cap.expect(ICMP(type=3, code=3) / IPerror(dst="10.0.0.2") / UDPerror(dport=7),
                       on="a/eth0")
    assert error[IP].src == "10.0.0.2"
    net.close()
