"""vnet.testing.pcap reads vnet's captures back exactly (times, interfaces, comments), as tshark."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from vnet.link.capture import Capture as CaptureWriter
from vnet.link.capture import Direction
from vnet.scheduler import VIRTUAL_EPOCH_NS
from vnet.testing.pcap import PcapFormatError, endpoints, read_pcapng

from .scenario import CLIENT, LATENCY_NS, SERVER, Run, run_scenario


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_scenario(tmp_path_factory.mktemp("reader") / "lan.pcapng")


def test_interfaces_and_exact_virtual_times(run: Run) -> None:
    pcap = read_pcapng(run.path)
    assert [i.name for i in pcap.interfaces] == ["a/eth0", "b/eth0"]
    assert pcap.origin_ns == VIRTUAL_EPOCH_NS and not pcap.truncated
    assert [p.index for p in pcap.packets] == list(range(len(pcap.packets)))
    syns = [p for p in pcap.packets if TCP in p and p[TCP].flags == "S"]
    assert [s.interface for s in syns] == ["a/eth0", "b/eth0"]
    # a's NIC records the SYN the instant connect() sends it; b's one segment latency later
    assert syns[0].time_ns == run.tcp_connect_ns
    assert syns[1].time_ns == run.tcp_connect_ns + LATENCY_NS
    assert syns[0].timestamp_ns == VIRTUAL_EPOCH_NS + run.tcp_connect_ns
    request = next(p for p in pcap.packets if UDP in p and p[UDP].dport == 9)
    assert (request.interface, request.time_ns) == ("a/eth0", run.udp_send_ns)
    assert request.direction == Direction.OUTBOUND
    assert bytes(request[UDP].payload) == b"ping"
    assert request[IP].src == CLIENT and request[IP].dst == SERVER
    assert all(p.wire_length == len(p.data) for p in pcap.packets)


def test_summaries_agree_with_tshark(run: Run) -> None:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is missing: run scripts/install-test-tools (scripts/test does)"
    fields = ["frame.number", "frame.interface_name", "frame.time_epoch", "_ws.col.Source",
              "_ws.col.Destination", "_ws.col.Protocol"]
    out = subprocess.run([tshark, "-r", str(run.path), "-n", "-T", "fields", "-E", "separator=\t",
                          *[arg for f in fields for arg in ("-e", f)]],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    pcap = read_pcapng(run.path)
    assert len(rows) == len(pcap.packets) > 30
    protocols = set()
    for row, packet in zip(rows, pcap.packets, strict=True):
        number, interface, epoch, src, dst, protocol = row
        seconds, _, fraction = epoch.partition(".")
        assert int(number) == packet.index + 1
        assert interface == packet.interface
        assert int(seconds) * 10**9 + int(fraction.ljust(9, "0")) == packet.timestamp_ns
        assert endpoints(packet.packet) == (src, dst, protocol), packet.summary()
        protocols.add(protocol)
        line = packet.summary()
        assert f" {src} → {dst} {protocol} {packet.wire_length} " in line
    assert {"ARP", "ICMP", "ICMPv6", "TCP", "UDP"} <= protocols


def test_comments_direction_and_raw_interfaces_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "written.pcapng"
    clock = iter([VIRTUAL_EPOCH_NS + 5, VIRTUAL_EPOCH_NS + 7_000_000_001]).__next__
    writer = CaptureWriter.to_file(path, clock=clock)
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(
        src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / b"x")
    writer.interface("h/eth0").record(frame, Direction.INBOUND, comment="dropped: rule 3")
    writer.interface("h/firewall", 101).record(frame[14:], Direction.OUTBOUND)
    writer.close()
    first, second = read_pcapng(path).packets
    assert (first.interface, first.time_ns, first.comments, first.direction) == (
        "h/eth0", 5, ("dropped: rule 3",), Direction.INBOUND)
    assert (second.interface, second.time_ns, second.comments) == ("h/firewall", 7_000_000_001, ())
    assert second[UDP].dport == 2 and Ether not in second.packet  # raw IP link type
    assert "// dropped: rule 3" in first.summary()


def test_truncated_and_foreign_files_fail_clearly(run: Run, tmp_path: Path) -> None:
    whole = run.path.read_bytes()
    complete = len(read_pcapng(whole).packets)
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(whole[:len(whole) - 30])  # inside the last packet's block
    with pytest.raises(PcapFormatError) as error:
        read_pcapng(cut)
    message = str(error.value)
    assert str(cut) in message and "truncated" in message and "at byte" in message
    kept = read_pcapng(cut, allow_truncated=True)
    assert kept.truncated and len(kept.packets) == complete - 1
    assert [p.data for p in kept.packets] == [p.data for p in read_pcapng(whole).packets[:-1]]
    corrupt = bytearray(whole)
    corrupt[len(corrupt) - 4] ^= 0xFF  # the last block's trailing length
    with pytest.raises(PcapFormatError, match="trailing length"):
        read_pcapng(bytes(corrupt))
    with pytest.raises(PcapFormatError, match="classic pcap"):
        read_pcapng(b"\xd4\xc3\xb2\xa1" + bytes(20))
    with pytest.raises(PcapFormatError, match="empty"):
        read_pcapng(b"")
    with pytest.raises(PcapFormatError, match="not a pcapng"):
        read_pcapng(b"GET / HTTP/1.1\r\n\r\n")


def test_igmp_summaries_read_as_tshark_shows_them() -> None:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is missing: run scripts/install-test-tools (scripts/test does)"
    golden = Path(__file__).resolve().parents[2] / "pcaps" / "multicast-join-leave.pcapng"
    out = subprocess.run([tshark, "-r", str(golden), "-n", "-Y", "igmp", "-T", "fields",
                          "-e", "frame.number", "-e", "_ws.col.Info"],
                         capture_output=True, text=True, check=True).stdout
    infos = {int(number) - 1: info for number, info in
             (line.split("\t") for line in out.splitlines())}
    pcap = read_pcapng(golden)
    assert len(infos) >= 2 and {"Join", "Leave"} <= {i.split()[3] for i in infos.values()}
    for index, info in infos.items():
        assert pcap.packets[index].summary().endswith(f" IGMPv3 54 {info}")
