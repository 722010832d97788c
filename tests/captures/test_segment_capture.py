"""Per-segment captures: each frame on the wire once, so tshark's TCP analysis is right.

A capture of every NIC holds each frame that crosses a segment twice (leaving
the sender, reaching the receiver) and tshark calls the second copy a
retransmission; a segment's capture (`segment.capture(cap)`, `vnet sim
--pcap-segment NAME`) records each frame once, where the switch forwards it.
Also here: the name-resolution block and interface descriptions, the capture
filter in the firewall's match language, and the loopback capture.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.captures.support import TCP_TROUBLE, routed_topology, run_vnet, tshark
from vnet.link.capture import LINKTYPE_ETHERNET, Capture, CaptureFilter
from vnet.link.loopback_tap import capture_loopback
from vnet.network import AF_INET, SOCK_DGRAM, SOCK_STREAM, Network
from vnet.sim.runner import CapturePlan, run
from vnet.sim.topology import load
from vnet.testing.pcap import read_pcapng


def _tcp_transfer(net: Network, size: int) -> None:
    """`a` sends `size` bytes to `b` over TCP on the virtual network."""
    a, b = net.hosts["a"], net.hosts["b"]
    with b.socket(AF_INET, SOCK_STREAM) as listener:
        listener.bind(("10.0.0.2", 7000))
        listener.listen()
        with a.socket(AF_INET, SOCK_STREAM) as client:
            client.connect(("10.0.0.2", 7000))
            server, _ = listener.accept()
            client.sendall(b"x" * size)
            client.close()
            received = 0
            while chunk := server.recv(65536):
                received += len(chunk)
            server.close()
    assert received == size


def test_python_segment_capture_has_each_frame_once_and_no_false_tcp_trouble(
        tmp_path: Path) -> None:
    net = Network(virtual_time=True, seed=5)
    lan = net.segment("lan", latency_ns=1_000_000)
    net.capture(tmp_path / "every-nic.pcapng")  # the old way: twice per frame
    on_the_wire = Capture.to_file(tmp_path / "lan.pcapng", clock=net.scheduler.realtime_ns)
    lan.capture(on_the_wire)
    net.host("a").connect(lan, "10.0.0.1/24")
    net.host("b").connect(lan, "10.0.0.2/24")
    _tcp_transfer(net, 200_000)
    net.close()
    on_the_wire.close()
    sent = sum(nic.counters.tx_frames for h in net.hosts.values() for nic in h.nics.values())
    wire = read_pcapng(tmp_path / "lan.pcapng")
    assert len(wire) == sent > 100  # one copy of each frame the NICs put on the segment
    every = read_pcapng(tmp_path / "every-nic.pcapng")
    assert sum(1 for p in every if p.direction == 2) == sent  # and most frames again, inbound
    assert sum(1 for p in every if p.direction == 1) > sent - 10
    # tshark's TCP analysis: nothing went wrong on this link, and it says so ...
    assert tshark("-r", str(tmp_path / "lan.pcapng"), "-Y", TCP_TROUBLE) == []
    assert len(tshark("-r", str(tmp_path / "lan.pcapng"), "-Y", "tcp")) > 100
    # ... while the every-NIC capture shows the phantom retransmissions it is known for.
    assert len(tshark("-r", str(tmp_path / "every-nic.pcapng"), "-Y", TCP_TROUBLE)) > 50


@pytest.fixture(scope="module")
def routed_run(tmp_path_factory: pytest.TempPathFactory,
               example_wasm: Callable[[str], Path]) -> Path:
    """`vnet sim routed.toml --pcap-dir pcaps --pcap-segment lan --pcap-segment dmz`."""
    directory = tmp_path_factory.mktemp("routed")
    topology = routed_topology(directory, example_wasm, page_bytes=300_000)
    proc = run_vnet("sim", str(topology), "--pcap-dir", str(directory / "pcaps"),
                    "--pcap-segment", "lan", "--pcap-segment", "dmz")
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()
    assert b"HTTP/1.1 200 OK, 300000 body bytes" in proc.stdout
    (directory / "pcaps" / "summary.txt").write_bytes(proc.stdout)
    return directory / "pcaps"


def test_vnet_sim_pcap_segment_is_clean_in_tsharks_tcp_analysis(routed_run: Path) -> None:
    for segment in ("lan", "dmz"):
        path = routed_run / f"segment-{segment}.pcapng"
        assert len(tshark("-r", str(path), "-Y", "tcp.len > 0")) > 200, segment
        assert tshark("-r", str(path), "-Y", TCP_TROUBLE) == [], segment
    # The lan segment carries exactly the frames web/eth0 and gw/eth0 sent (the summary's
    # "tx frames" column), each once.
    summary = (routed_run / "summary.txt").read_text().splitlines()
    sent = sum(int(line.split()[1]) for line in summary
               if line.startswith(("web/eth0 ", "gw/eth0 ")))
    # 300 kB: at least 209 data segments, plus the ACKs (one per super-segment received)
    assert len(read_pcapng(routed_run / "segment-lan.pcapng")) == sent > 250


def test_captures_name_hosts_and_describe_interfaces(routed_run: Path) -> None:
    rows = tshark("-r", str(routed_run / "segment-lan.pcapng"), "-N", "n", "-Y",
                  "tcp.flags.syn == 1", "-T", "fields", "-e", "ipv6.src_host",
                  "-e", "ipv6.dst_host")
    assert rows == ["web\tserver", "server\tweb"]  # not fd00::20 / fd00:1::10
    descriptions = tshark("-r", str(routed_run / "segment-lan.pcapng"), "-c", "1", "-T",
                          "fields", "-e", "frame.interface_description")
    assert descriptions == ["segment lan: web 10.0.0.20/24 fd00::20/64, "
                            "gw (router) 10.0.0.1/24 fd00::1/64"]
    nic = tshark("-r", str(routed_run / "gw-eth1.pcapng"), "-c", "1", "-T", "fields",
                 "-e", "frame.interface_description")
    assert nic == ["gw eth1 02:00:00:00:00:03 10.0.1.1/24 fd00:1::1/64 on segment dmz"]


def test_pcap_filter_keeps_exactly_the_matching_packets(
        tmp_path: Path, example_wasm: Callable[[str], Path]) -> None:
    topology = routed_topology(tmp_path, example_wasm, page_bytes=20_000)
    everything = tmp_path / "all.pcapng"
    to_server = tmp_path / "to-server.pcapng"
    for target, extra in ((everything, ()), (to_server, ("--pcap-filter", "tcp dport 8080"))):
        proc = run_vnet("sim", str(topology), "--pcap", str(target), "--pcap-segment", "dmz",
                        *extra)
        assert proc.returncode == 0, proc.stderr
    expected = tshark("-r", str(everything), "-Y", "tcp.dstport == 8080", "-T", "fields",
                      "-e", "tcp.seq_raw", "-e", "tcp.ack_raw")
    kept = tshark("-r", str(to_server), "-T", "fields", "-e", "tcp.seq_raw", "-e", "tcp.ack_raw")
    assert len(expected) > 5  # the request and the ACKs of a 20 kB page (one per super-segment)
    assert kept == expected
    bad = run_vnet("sim", str(topology), "--pcap", str(tmp_path / "x.pcapng"),
                   "--pcap-filter", "tcp dportx 80")
    assert bad.returncode == 2
    assert bad.stderr.decode().count("\n") == 1 and "dportx" in bad.stderr.decode()


def test_capture_filter_speaks_the_firewall_language() -> None:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

    web = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=80, flags="S"))
    dns = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=53))
    arp = bytes(Ether() / ARP())
    assert CaptureFilter("tcp dport 80").matches_frame(web, LINKTYPE_ETHERNET)
    assert not CaptureFilter("tcp dport 80").matches_frame(dns, LINKTYPE_ETHERNET)
    assert CaptureFilter("udp dport { 53, 5353 }").matches_frame(dns, LINKTYPE_ETHERNET)
    assert CaptureFilter("ip saddr 10.0.0.0/24 tcp flags syn").matches_frame(web)
    assert not CaptureFilter("ip daddr 10.9.0.0/16").matches_frame(web)
    assert not CaptureFilter("tcp").matches_frame(arp)
    assert CaptureFilter("").matches_frame(arp)  # no filter: everything
    either = CaptureFilter("tcp sport 80 or udp dport { 53, 5353 } or ip daddr 10.9.0.1")
    assert not either.matches_frame(web) and either.matches_frame(dns)
    reply = bytes(Ether() / IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=80, flags="SA"))
    assert either.matches_frame(reply)
    for bad, why in (("tcp dport 80 accept", "verdict"), ("ct state new", "not known"),
                     ("oifname eth0", "not known"), ("tcp dport", "capture filter"),
                     ("tcp or", "nothing on one side")):
        with pytest.raises(ValueError, match=why):
            CaptureFilter(bad)


def test_loopback_capture_records_what_a_host_sends_itself(tmp_path: Path) -> None:
    net = Network(virtual_time=True, seed=1)
    host = net.host("a")
    host.connect(net.segment("lan"), "10.0.0.1/24")
    cap = Capture.in_memory(clock=net.scheduler.realtime_ns)
    capture_loopback(host.stack, cap, net.scheduler.realtime_ns)
    with host.socket(AF_INET, SOCK_DGRAM) as rx, host.socket(AF_INET, SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 9999))
        tx.sendto(b"to myself", ("127.0.0.1", 9999))
        assert rx.recvfrom(100)[0] == b"to myself"
    cap.close()
    (path := tmp_path / "lo.pcapng").write_bytes(cap.getvalue())
    rows = tshark("-r", str(path), "-T", "fields", "-e", "frame.interface_name",
                  "-e", "ip.src", "-e", "udp.dstport", "-e", "data.data")
    assert rows == [f"a/lo\t127.0.0.1\t9999\t{b'to myself'.hex()}"]


def test_sim_pcap_loopback_and_one_file_for_every_segment(
        tmp_path: Path, example_wasm: Callable[[str], Path]) -> None:
    topology = routed_topology(tmp_path, example_wasm, page_bytes=1000)
    out = io.BytesIO()
    result = run(load(topology), out=out, plan=CapturePlan(pcap=tmp_path / "all.pcapng",
                                                           loopback=True))
    assert result.ok, out.getvalue()
    names = {i.name for i in read_pcapng(tmp_path / "all.pcapng").interfaces}
    assert names == {"segment/lan", "segment/dmz", "web/lo", "gw/lo", "server/lo"}


def test_same_seed_gives_byte_identical_segment_captures(
        tmp_path: Path, example_wasm: Callable[[str], Path]) -> None:
    topology = routed_topology(tmp_path, example_wasm, page_bytes=20_000)
    for run_dir in ("a", "b"):
        result = run(load(topology), out=io.BytesIO(),
                     plan=CapturePlan(pcap_dir=tmp_path / run_dir, segments=["lan", "dmz"]))
        assert result.ok
    for name in ("segment-lan.pcapng", "segment-dmz.pcapng"):
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes(), name
        assert len(first) > 20_000
