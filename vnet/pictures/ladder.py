"""A capture as a ladder diagram (Wireshark's flow graph), drawn to SVG.

    vnet pcap ladder run.pcapng -o flow.svg [--filter 'tcp dport 7000 or tcp sport 7000']

One vertical lane per host (named from the capture's name-resolution block,
so ``alice`` rather than ``fd00::11``; an address nobody named keeps its
address, e.g. a multicast group), one horizontal arrow per packet from the
sender's lane to the receiver's, in file order, time going down, labelled
with a one-line summary (TCP: ports, flags, *relative* sequence and
acknowledgement numbers and length, as Wireshark shows them; UDP: ports and
length; ICMP/ICMPv6: the message). Only IP packets are drawn; ``filter`` (a
`vnet.link.capture.CaptureFilter`, the firewall's match language) narrows
them to a flow.

Each frame must be drawn once: a per-segment capture (``vnet sim
--pcap-segment``) holds each frame once. A capture of several NICs
(``net.capture()``, or per-NIC files merged) holds a frame leaving one NIC
and again reaching another; packets marked inbound (epb_flags) are skipped,
so each is drawn from its outbound copy (a single NIC's capture therefore
shows only what that NIC sent). Firewall-log interfaces (``HOST/firewall``)
are skipped too.

The SVG is plain and greppable: each lane is ``<g class="lane"
data-name=...>``, each arrow ``<g class="packet" data-src=... data-dst=...
data-index=...>`` with its summary as text and as ``<title>`` (a tooltip).
Reads the capture with `vnet.testing.pcap` and decodes with scapy; writes
only the SVG file it is given.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnet.link.capture import CaptureFilter
from vnet.pictures.svg import document, element, open_group, text

__all__ = ["Arrow", "Ladder", "LadderError", "build_ladder", "read_names", "write_ladder_svg"]

LANE_WIDTH = 230
ROW_HEIGHT = 30
TOP = 80
LEFT = 120


class LadderError(ValueError):
    """The capture cannot be drawn (unreadable, or nothing to draw)."""


@dataclass
class Arrow:
    index: int  # the packet's position in the capture (from 0)
    time_ns: int
    src: str  # lane names
    dst: str
    label: str


@dataclass
class Ladder:
    lanes: list[str] = field(default_factory=list)
    #: The address(es) behind each lane, for its header.
    lane_addresses: dict[str, list[str]] = field(default_factory=dict)
    arrows: list[Arrow] = field(default_factory=list)
    #: IP packets the filter or the cap left out, and non-IP frames skipped.
    skipped: int = 0

    @property
    def packets(self) -> int:
        return len(self.arrows)


def _blocks(data: bytes) -> Iterator[tuple[int, bytes, str]]:
    """(block type, body, byte order) of each pcapng block; stops at a truncated tail."""
    offset = 0
    order = "<"
    while offset + 12 <= len(data):
        if data[offset:offset + 4] == b"\x0a\x0d\x0d\x0a":
            magic = data[offset + 8:offset + 12]
            order = "<" if magic == b"\x4d\x3c\x2b\x1a" else ">"
        block_type, length = struct.unpack_from(order + "II", data, offset)
        if length < 12 or offset + length > len(data):
            return
        yield block_type, data[offset + 8:offset + length - 4], order
        offset += length


def read_names(data: bytes) -> dict[bytes, str]:
    """Address -> first name, from every Name Resolution Block of a pcapng capture."""
    names: dict[bytes, str] = {}
    for block_type, body, order in _blocks(data):
        if block_type != 4:
            continue
        pos = 0
        while pos + 4 <= len(body):
            kind, length = struct.unpack_from(order + "HH", body, pos)
            pos += 4
            if kind == 0:
                break
            value = body[pos:pos + length]
            pos += length + (-length % 4)
            size = 4 if kind == 1 else 16 if kind == 2 else 0
            if not size or len(value) <= size:
                continue
            first = value[size:].split(b"\0", 1)[0].decode(errors="replace")
            if first:
                names.setdefault(value[:size], first)
    return names


def _flags(bits: int) -> str:
    # As tshark lists them: from the lowest bit up ([SYN, ACK], [FIN, PSH, ACK]).
    order = ((0x01, "FIN"), (0x02, "SYN"), (0x04, "RST"), (0x08, "PSH"), (0x10, "ACK"),
             (0x20, "URG"), (0x40, "ECE"), (0x80, "CWR"))
    return ", ".join(name for bit, name in order if bits & bit)


class _Summaries:
    """One-line summaries, with TCP sequence numbers relative to each direction's first."""

    def __init__(self) -> None:
        self._isn: dict[tuple[str, int, str, int], int] = {}

    def tcp(self, src: str, dst: str, tcp: Any) -> str:
        key = (src, tcp.sport, dst, tcp.dport)
        back = (dst, tcp.dport, src, tcp.sport)
        flags = int(tcp.flags)
        isn = self._isn.setdefault(key, tcp.seq)
        seq = (tcp.seq - isn) % 2**32
        text = f"{tcp.sport} → {tcp.dport} [{_flags(flags)}] Seq={seq}"
        if flags & 0x10:
            peer = self._isn.get(back)
            ack = (tcp.ack - peer) % 2**32 if peer is not None else tcp.ack
            text += f" Ack={ack}"
        return text + f" Len={len(tcp.payload)}"

    def summary(self, pkt: Any, src: str, dst: str) -> str:
        from scapy.layers.inet import ICMP, TCP, UDP

        if TCP in pkt:
            return "TCP " + self.tcp(src, dst, pkt[TCP])
        if UDP in pkt:
            udp = pkt[UDP]
            return f"UDP {udp.sport} → {udp.dport} Len={max(udp.len - 8, 0)}"
        if ICMP in pkt:
            icmp = pkt[ICMP]
            kinds = {0: "Echo reply", 8: "Echo request", 3: "Destination unreachable",
                     11: "Time exceeded"}
            return f"ICMP {kinds.get(icmp.type, f'type {icmp.type}')} code {icmp.code}"
        for layer in pkt.layers():
            if layer.__name__.startswith("ICMPv6"):
                return f"ICMPv6 {pkt[layer].name}"
        if pkt.haslayer("IGMP") or any("IGMP" in layer.__name__ for layer in pkt.layers()):
            return "IGMP " + pkt.lastlayer().name
        return str(pkt.lastlayer().name)


def build_ladder(source: str | os.PathLike[str] | bytes, *,
                 filter: CaptureFilter | str | None = None, max_packets: int = 500) -> Ladder:
    """The lanes and arrows of a capture (see the module docstring)."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    from vnet.testing.pcap import PcapFormatError, read_pcapng

    keep = CaptureFilter(filter) if isinstance(filter, str) else filter
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        capture = read_pcapng(data, allow_truncated=True)
    except PcapFormatError as e:
        raise LadderError(str(e)) from None
    names = read_names(data)
    ladder = Ladder()
    summaries = _Summaries()

    def lane(address: str) -> str:
        packed = ipaddress.ip_address(address).packed
        name = names.get(packed, address)
        if name not in ladder.lane_addresses:
            ladder.lanes.append(name)
            ladder.lane_addresses[name] = []
        if address not in ladder.lane_addresses[name] and name != address:
            ladder.lane_addresses[name].append(address)
        return name

    for captured in capture.packets:
        if captured.interface.endswith("/firewall") or captured.direction == 1:
            continue
        if keep is not None and not keep.matches_frame(captured.data, captured.linktype):
            ladder.skipped += 1
            continue
        pkt = captured.packet
        network = pkt[IP] if IP in pkt else pkt[IPv6] if IPv6 in pkt else None
        if network is None:
            ladder.skipped += 1
            continue
        if len(ladder.arrows) >= max_packets:
            ladder.skipped += 1
            continue
        src, dst = str(network.src), str(network.dst)
        ladder.arrows.append(Arrow(captured.index, captured.time_ns, lane(src), lane(dst),
                                   summaries.summary(pkt, src, dst)))
    if not ladder.arrows:
        raise LadderError("no IP packets to draw" + (f" match {keep}" if keep else ""))
    return ladder


def render_svg(ladder: Ladder, title: str = "vnet flow") -> str:
    """The ladder as an SVG document."""
    longest = max((len(a.label) for a in ladder.arrows), default=0)
    lane_width = max(LANE_WIDTH, int(longest * 6.3) + 40)  # a label fits between two lanes
    x_of = {name: LEFT + lane_width * (i + 0.5) for i, name in enumerate(ladder.lanes)}
    width = LEFT + lane_width * len(ladder.lanes) + 20
    bottom = TOP + ROW_HEIGHT * (len(ladder.arrows) + 1)
    body = [
        "<defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
        "markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\">"
        "<path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#1f4e9c\"/></marker></defs>",
        text(10, 24, title, size=14, anchor="start", weight="bold"),
        text(10, TOP - 8, "time (s)", size=11, anchor="start", fill="#666"),
    ]
    for name in ladder.lanes:
        x = x_of[name]
        addresses = ladder.lane_addresses.get(name, [])
        body.append(open_group(class_="lane", data_name=name,
                               data_addresses=" ".join(addresses)))
        body.append(element("rect", x=f"{x - 100:.1f}", y=34, width=200, height=32, rx=5,
                            fill="#e8eef8", stroke="#1f4e9c"))
        body.append(text(x, 48, name, size=13, weight="bold", class_="lane-name"))
        if addresses:
            body.append(text(x, 61, " ".join(addresses)[:34], size=9, fill="#555"))
        body.append(element("line", x1=f"{x:.1f}", y1=66, x2=f"{x:.1f}", y2=bottom,
                            stroke="#999", stroke_dasharray="4 3"))
        body.append("</g>")
    for row, arrow in enumerate(ladder.arrows):
        y = TOP + ROW_HEIGHT * (row + 1)
        x1, x2 = x_of[arrow.src], x_of[arrow.dst]
        body.append(open_group(class_="packet", data_index=arrow.index, data_src=arrow.src,
                               data_dst=arrow.dst, data_time_ns=arrow.time_ns))
        body.append(f"<title>{_escape(arrow.label)}</title>")
        body.append(text(10, y + 4, f"{arrow.time_ns / 1e9:.6f}", size=10, anchor="start",
                         fill="#666"))
        if x1 == x2:  # a host to itself: a small loop on its lane
            body.append(element("path", d=f"M {x1:.1f} {y - 6} h 40 v 12 h -40", fill="none",
                                stroke="#1f4e9c", marker_end="url(#head)"))
            body.append(text(x1 + 46, y + 4, arrow.label, size=10, anchor="start",
                             class_="label"))
        else:
            body.append(element("line", x1=f"{x1:.1f}", y1=y, x2=f"{x2:.1f}", y2=y,
                                stroke="#1f4e9c", stroke_width=1.4, marker_end="url(#head)"))
            body.append(text((x1 + x2) / 2, y - 5, arrow.label, size=10, class_="label"))
        body.append("</g>")
    return document(width, bottom + 20, body, title)


def _escape(value: str) -> str:
    from xml.sax.saxutils import escape

    return escape(value)


def write_ladder_svg(source: str | os.PathLike[str], output: str | os.PathLike[str], *,
                     filter: CaptureFilter | str | None = None,
                     max_packets: int = 500) -> Ladder:
    """Draw `source` (a pcapng file) to `output` (SVG); return what was drawn."""
    ladder = build_ladder(source, filter=filter, max_packets=max_packets)
    Path(output).write_text(render_svg(ladder, f"vnet flow: {Path(source).name}"))
    return ladder
