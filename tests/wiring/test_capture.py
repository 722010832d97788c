"""pcapng capture: our writer's files read back by scapy and by tshark."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from tests.wiring.helpers import frame, mac, read_pcapng, tshark_fields
from vnet.link.capture import LINKTYPE_RAW, Capture, Direction, PcapngWriter

T0 = 1_700_000_000_123_456_789


class Clock:
    def __init__(self, start: int = T0) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now


def sample_capture(clock: Clock) -> Capture:
    cap = Capture.in_memory(clock=clock)
    eth0 = cap.interface("alice/eth0")
    lan = cap.interface("segment/lan")
    eth0.record(frame(mac(2), mac(1), b"first"), Direction.OUTBOUND, comment="logged: accept")
    clock.now += 1
    lan.record(frame(mac(2), mac(1), b"first"))
    clock.now += 999
    eth0.record(frame(mac(1), mac(2), b"reply"), Direction.INBOUND)
    return cap


def test_scapy_reads_interface_names_timestamps_comments_and_order() -> None:
    clock = Clock()
    cap = sample_capture(clock)
    cap.close()
    packets, interfaces = read_pcapng(cap.getvalue())
    assert [(linktype, opts["name"]) for linktype, _, opts in interfaces] == [
        (1, b"alice/eth0"), (1, b"segment/lan")]
    assert all(opts["tsresol"] == 1_000_000_000 for _, _, opts in interfaces)
    assert [p.sniffed_on for p in packets] == ["alice/eth0", "segment/lan", "alice/eth0"]
    # Nanosecond timestamps survive exactly (scapy keeps them as Decimal).
    assert [int(p.time * 1_000_000_000) for p in packets] == [T0, T0 + 1, T0 + 1000]
    assert [p.comment for p in packets] == [b"logged: accept", None, None]
    assert [p.direction for p in packets] == [Direction.OUTBOUND, None, Direction.INBOUND]
    assert isinstance(packets[0], Ether)
    assert bytes(packets[2]) == frame(mac(1), mac(2), b"reply")


def test_tshark_reads_the_same_capture(tmp_path: Path) -> None:
    clock = Clock()
    cap = sample_capture(clock)
    path = tmp_path / "sample.pcapng"
    path.write_bytes(cap.getvalue())
    rows = tshark_fields(path, "frame.interface_name", "frame.time_epoch", "frame.comment",
                         "frame.packet_flags_direction", "eth.src", "frame.len")
    assert rows == [
        ["alice/eth0", "1700000000.123456789", "logged: accept", "0x00000002",
         "02:00:00:00:00:01", "60"],
        ["segment/lan", "1700000000.123456790", "", "", "02:00:00:00:00:01", "60"],
        ["alice/eth0", "1700000000.123457789", "", "0x00000001", "02:00:00:00:00:02", "60"],
    ]


def test_file_capture_equals_memory_capture_and_tshark_decodes_raw_ip(tmp_path: Path) -> None:
    path = tmp_path / "tun.pcapng"
    packet = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / b"payload")
    captures = [Capture.to_file(path, clock=Clock()), Capture.in_memory(clock=Clock())]
    for cap in captures:
        with cap:
            tun = cap.interface("host/tun0", linktype=LINKTYPE_RAW)
            tun.record(packet, Direction.INBOUND)
    assert path.read_bytes() == captures[1].getvalue()
    assert tshark_fields(path, "frame.interface_name", "ip.src", "ip.dst") == [
        ["host/tun0", "10.0.0.1", "10.0.0.2"]]
    packets, interfaces = read_pcapng(path.read_bytes())
    assert interfaces[0][0] == LINKTYPE_RAW
    assert bytes(packets[0]) == packet


def test_interface_registered_after_packets_gets_its_own_idb() -> None:
    clock = Clock()
    cap = Capture.in_memory(clock=clock)
    a = cap.interface("a/eth0")
    a.record(frame(mac(2), mac(1)))
    b = cap.interface("b/eth0")
    b.record(frame(mac(1), mac(2)))
    a.record(frame(mac(2), mac(1)))
    packets, _ = read_pcapng(cap.getvalue())
    assert [p.sniffed_on for p in packets] == ["a/eth0", "b/eth0", "a/eth0"]
    assert cap.interfaces == ["a/eth0", "b/eth0"]


def test_same_interface_name_returns_same_tap_and_linktype_conflict_is_an_error() -> None:
    cap = Capture.in_memory(clock=Clock())
    assert cap.interface("x") is cap.interface("x")
    with pytest.raises(ValueError):
        cap.interface("x", linktype=LINKTYPE_RAW)


def test_interface_without_any_clock_is_refused() -> None:
    cap = Capture.in_memory()
    with pytest.raises(ValueError, match="clock"):
        cap.interface("x")
    tap = cap.interface("y", clock=lambda: 5)
    tap.record(b"\x00" * 14)
    packets, _ = read_pcapng(cap.getvalue())
    assert int(packets[0].time * 1_000_000_000) == 5


def test_snaplen_cuts_data_but_keeps_original_length(tmp_path: Path) -> None:
    cap = Capture.in_memory(clock=Clock())
    tap = cap.interface("short", snaplen=20)
    tap.record(frame(mac(2), mac(1), bytes(range(100))))
    path = tmp_path / "snap.pcapng"
    path.write_bytes(cap.getvalue())
    assert tshark_fields(path, "frame.len", "frame.cap_len") == [["114", "20"]]
    packets, _ = read_pcapng(cap.getvalue())
    assert len(bytes(packets[0])) == 20
    assert packets[0].wirelen == 114


def test_counters_and_block_sizes() -> None:
    clock = Clock()
    cap = sample_capture(clock)
    assert cap.packets == 3
    assert cap.packet_bytes == 180
    assert cap.bytes_written == len(cap.getvalue())
    taps = [cap.interface("alice/eth0"), cap.interface("segment/lan")]
    assert [(t.packets, t.bytes) for t in taps] == [(2, 120), (1, 60)]
    data = cap.getvalue()
    # Walk the blocks by their lengths: every length is a multiple of 4 and
    # the trailing copy matches the leading one.
    offset, types = 0, []
    while offset < len(data):
        btype, blen = struct.unpack_from("<II", data, offset)
        assert blen % 4 == 0
        assert struct.unpack_from("<I", data, offset + blen - 4)[0] == blen
        types.append(btype)
        offset += blen
    assert offset == len(data)
    assert types == [0x0A0D0D0A, 1, 1, 6, 6, 6]


def test_closed_capture_ignores_and_counts_late_frames() -> None:
    cap = Capture.in_memory(clock=Clock())
    tap = cap.interface("late")
    cap.close()
    before = cap.getvalue()
    tap.record(frame(mac(2), mac(1)))
    assert cap.getvalue() == before
    assert cap.dropped_after_close == 1
    assert cap.packets == 0
    cap.close()  # idempotent


def test_writer_rejects_bad_arguments() -> None:
    writer = PcapngWriter(io.BytesIO())
    iface = writer.add_interface("eth0")
    with pytest.raises(ValueError):
        writer.write_packet(iface + 1, 0, b"x" * 14)
    with pytest.raises(ValueError):
        writer.write_packet(iface, -1, b"x" * 14)
    with pytest.raises(ValueError):
        writer.write_packet(iface, 0, b"x" * 14, direction=3)
    writer.write_packet(iface, 0, b"x" * 14, comment="ü", direction=Direction.OUTBOUND)
    assert writer.packets == 1


def test_unicode_comment_is_utf8_and_padded() -> None:
    cap = Capture.in_memory(clock=Clock())
    tap = cap.interface("c")
    for comment in ("", "a", "ab", "abc", "abcd", "dröp"):
        tap.record(frame(mac(2), mac(1)), comment=comment)
    packets, _ = read_pcapng(cap.getvalue())
    assert [p.comment for p in packets] == [
        b"", b"a", b"ab", b"abc", b"abcd", "dröp".encode()]
