"""The sender's side of the TCP header shortcut: `build_ts_segment` writes what
`build_segment` writes with the timestamp-only option area, and `built_header` (with
`options_of_area`) is what `TcpPacket.parse` reads back from a segment `build_segment`
wrote without its checksum, for every kind of option area the engine sends."""

from __future__ import annotations

import pytest

from stack.wire import tcp as wire_tcp
from stack.wire.tcp import TcpOptions

SRC = bytes((10, 0, 0, 1))
DST = bytes((10, 0, 0, 2))

AREAS = [
    TcpOptions(),
    TcpOptions(timestamp=(1, 0xFFFFFFFF)),
    TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamp=(5, 0)),
    TcpOptions(mss=536, sack_permitted=True),
    TcpOptions(mss=1460, wscale=0),
    TcpOptions(timestamp=(9, 8), sack_blocks=((1, 2), (3, 4), (5, 6), (7, 8))),  # 3 fit
    TcpOptions(sack_blocks=((0xFFFFFFF0, 0x10),)),
]


@pytest.mark.parametrize("options", AREAS, ids=repr)
@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(256)) * 6])
def test_built_header_is_what_parse_reads(options: TcpOptions, payload: bytes) -> None:
    area = b"" if options is wire_tcp.NO_OPTIONS else options.encode()
    seq, ack = (1 << 32) + 7, 0x1_0000_0005  # unwrapped: both masked
    flags = wire_tcp.ACK | wire_tcp.PSH | wire_tcp.ECE
    segment = wire_tcp.build_segment(443, 50000, seq, ack, flags, 1234, area, payload,
                                     SRC, DST, checksum=False)
    parsed = wire_tcp.TcpPacket.parse(segment, SRC, DST, verify_checksum=False)
    assert isinstance(parsed, wire_tcp.TcpPacket)
    header = wire_tcp.built_header(443, 50000, seq, ack, flags, 1234,
                                   wire_tcp.options_of_area(area), len(area))
    assert len(header.buf) == 0
    for name in ("src_port", "dst_port", "seq", "ack", "data_offset", "flags", "window",
                 "checksum", "urgent", "options"):
        assert getattr(header, name) == getattr(parsed, name), name
    assert (header.options is wire_tcp.NO_OPTIONS) == (parsed.options is wire_tcp.NO_OPTIONS)


def test_options_of_area_refuses_what_does_not_decode() -> None:
    with pytest.raises(ValueError):
        wire_tcp.options_of_area(b"\x02\x05\x05\xb4")


@pytest.mark.parametrize("checksum", [True, False])
@pytest.mark.parametrize("payload", [b"", b"!", bytes(1448), memoryview(bytes(range(200)))[3:]])
def test_build_ts_segment_is_build_segment_with_the_timestamp_area(
        checksum: bool, payload: bytes | memoryview) -> None:
    args = (5000, 80, 0x1_2345_6789, 42, wire_tcp.ACK | wire_tcp.FIN, 0xFFFF)
    ts = (0xDEADBEEF, 7)
    assert wire_tcp.build_ts_segment(*args, *ts, payload, SRC, DST, checksum=checksum) == (
        wire_tcp.build_segment(*args, wire_tcp.timestamp_option_area(*ts), payload, SRC,
                               DST, checksum=checksum))
