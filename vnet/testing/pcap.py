"""Reading vnet's pcapng captures: each packet's time, interface, comments and scapy view.

This is the one pcapng reader tests, the assertion library (``expect``) and
``vnet pcap diff`` share. It may read files and bytes and decode frames with
scapy; it is never on the data path (scapy is far too slow for that) and it
never writes anything.

What it reads: pcapng sections as ``vnet.link.capture`` writes them (and as other
tools write them: either byte order, several sections, any ``if_tsresol``).
Interface Description Blocks give each interface its ``if_name`` (vnet writes
``host/ifname``, e.g. ``a/eth0``, or ``host/firewall`` for firewall logs) and
link type; Enhanced Packet Blocks and Simple Packet Blocks give the packets;
``opt_comment`` options become ``comments`` and ``epb_flags`` the direction.
Other blocks (name resolution, statistics, custom) are skipped.

Times: ``timestamp_ns`` is the stamp exactly as stored, in nanoseconds since
the Unix epoch. ``time_ns`` is relative to the file's ``origin_ns``: a
virtual-time vnet run stamps frames with ``VIRTUAL_EPOCH_NS`` (2000-01-01)
plus virtual time, so when the first stamp falls within a year of that epoch
the origin is that epoch and ``time_ns`` is *exactly* the virtual time the
frame was recorded at (``net.scheduler.monotonic_ns()`` then). Otherwise (a
real-time run, a foreign file) the origin is the first packet's stamp. Pass
``origin_ns=`` to choose.

A truncated or corrupt file raises ``PcapFormatError`` naming the file, the
byte offset and what is wrong; ``read_pcapng(..., allow_truncated=True)``
returns the complete packets before a truncated tail instead (what a capture
cut short by a crash holds).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, BinaryIO

from vnet.scheduler import VIRTUAL_EPOCH_NS

if TYPE_CHECKING:
    from scapy.packet import Packet

__all__ = [
    "CapturedPacket",
    "Interface",
    "PcapFile",
    "PcapFormatError",
    "read_pcapng",
    "summarize",
]

BLOCK_SHB = 0x0A0D0D0A
BLOCK_IDB = 0x00000001
BLOCK_SPB = 0x00000003
BLOCK_EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9
EPB_FLAGS = 2

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229

_YEAR_NS = 366 * 86400 * 1_000_000_000


class PcapFormatError(ValueError):
    """The file is not a readable pcapng capture: truncated, corrupt or another format."""


@dataclass(frozen=True)
class Interface:
    """One Interface Description Block."""

    id: int
    name: str
    linktype: int
    description: str = ""
    #: Nanoseconds per timestamp tick is not always whole: ticks per second instead.
    ticks_per_second: int = 1_000_000


@dataclass(eq=False)
class CapturedPacket:
    """One packet of a capture: where and when it was recorded, and its bytes.

    ``packet`` decodes the bytes with scapy (Ether for Ethernet interfaces,
    IP/IPv6 for raw ones) on first use. ``pkt[TCP]`` and ``TCP in pkt`` reach
    into it directly.
    """

    #: Position in the file, from 0, counting every packet of every interface.
    index: int
    #: Stamp as stored, in nanoseconds since the Unix epoch.
    timestamp_ns: int
    #: ``timestamp_ns`` minus the file's origin (virtual time, in a virtual-time run).
    time_ns: int
    interface: str
    linktype: int
    data: bytes
    #: The frame's length on the wire (``data`` may be cut to the snap length).
    wire_length: int
    comments: tuple[str, ...] = ()
    #: 1 inbound, 2 outbound, None when the block does not say.
    direction: int | None = None
    #: The capture file (path or "<memory>"), for reports.
    source: str = "<memory>"

    @property
    def time(self) -> float:
        """``time_ns`` in seconds."""
        return self.time_ns / 1e9

    @cached_property
    def packet(self) -> Packet:
        return decode(self.data, self.linktype)

    def __getitem__(self, layer: Any) -> Any:
        return self.packet[layer]

    def __contains__(self, layer: Any) -> bool:
        return layer in self.packet

    def haslayer(self, layer: Any) -> bool:
        return bool(self.packet.haslayer(layer))

    def summary(self) -> str:
        """One line, as tshark summarises a packet: number, time, interface, src → dst, info."""
        return summarize(self)

    def __repr__(self) -> str:
        return f"<CapturedPacket {self.summary()}>"


@dataclass
class PcapFile:
    """A whole capture: its interfaces and its packets in file order."""

    source: str
    interfaces: list[Interface] = field(default_factory=list)
    packets: list[CapturedPacket] = field(default_factory=list)
    origin_ns: int = 0
    #: True when the file ended inside a block and ``allow_truncated`` kept what came before.
    truncated: bool = False

    def __iter__(self) -> Iterator[CapturedPacket]:
        return iter(self.packets)

    def __len__(self) -> int:
        return len(self.packets)


def decode(data: bytes, linktype: int) -> Packet:
    """Decode one frame with scapy according to its interface's link type."""
    import scapy.layers.igmp  # noqa: F401  (binds IGMP to IP protocol 2: IGMPv3_MR, IGMPv3_MQ)
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    if linktype == LINKTYPE_ETHERNET:
        return Ether(data)
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) and data:
        version = data[0] >> 4
        if version == 4:
            return IP(data)
        if version == 6:
            return IPv6(data)
    return Raw(data)


class _Reader:
    def __init__(self, data: bytes, source: str, allow_truncated: bool) -> None:
        self.data = data
        self.source = source
        self.allow_truncated = allow_truncated
        self.endian = "<"
        self.result = PcapFile(source)
        self.section_interfaces: list[tuple[Interface, int]] = []  # (interface, snaplen)

    def fail(self, offset: int, what: str) -> PcapFormatError:
        return PcapFormatError(f"{self.source}: at byte {offset}: {what}")

    def read(self) -> PcapFile:
        data = self.data
        if len(data) < 12:
            if not data:
                raise self.fail(0, "empty file, not a pcapng capture")
            raise self.fail(0, f"truncated: {len(data)} bytes, shorter than a pcapng header")
        (first,) = struct.unpack_from("<I", data, 0)
        if first != BLOCK_SHB:
            if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                            b"\xa1\xb2\x3c\x4d"):
                raise self.fail(0, "classic pcap, not pcapng (vnet writes pcapng)")
            raise self.fail(0, f"not a pcapng file (first block type 0x{first:08x})")
        offset = 0
        raw_packets: list[tuple[int, int, Interface, bytes, int, tuple[str, ...], int | None]] = []
        while offset < len(data):
            if len(data) - offset < 12:
                self._truncated(offset, f"{len(data) - offset} trailing bytes, not a whole block")
                break
            if struct.unpack_from("<I", data, offset)[0] == BLOCK_SHB:
                magic = data[offset + 8:offset + 12]
                if magic == b"\x4d\x3c\x2b\x1a":
                    self.endian = "<"
                elif magic == b"\x1a\x2b\x3c\x4d":
                    self.endian = ">"
                else:
                    raise self.fail(offset, "section header with a bad byte-order magic")
                self.section_interfaces = []
            block_type, total = struct.unpack_from(self.endian + "II", data, offset)
            if total < 12 or total % 4:
                raise self.fail(offset, f"block length {total} is not a multiple of 4 "
                                        f"of at least 12")
            if offset + total > len(data):
                self._truncated(offset, f"block of {total} bytes but only "
                                        f"{len(data) - offset} remain")
                break
            (trailer,) = struct.unpack_from(self.endian + "I", data, offset + total - 4)
            if trailer != total:
                raise self.fail(offset, f"block length {total} and trailing length "
                                        f"{trailer} differ")
            body = data[offset + 8:offset + total - 4]
            if block_type == BLOCK_IDB:
                self._interface(offset, body)
            elif block_type == BLOCK_EPB:
                raw_packets.append(self._enhanced(offset, body))
            elif block_type == BLOCK_SPB:
                raw_packets.append(self._simple(offset, body))
            offset += total
        result = self.result
        for index, (stamp, _tick, iface, payload, length, comments, direction) in enumerate(
                raw_packets):
            result.packets.append(CapturedPacket(
                index=index, timestamp_ns=stamp, time_ns=stamp, interface=iface.name,
                linktype=iface.linktype, data=payload, wire_length=length, comments=comments,
                direction=direction, source=self.source))
        return result

    def _truncated(self, offset: int, what: str) -> None:
        if not self.allow_truncated:
            raise self.fail(offset, f"truncated capture: {what}")
        self.result.truncated = True

    def _options(self, offset: int, body: bytes, start: int) -> list[tuple[int, bytes]]:
        options = []
        position = start
        while position + 4 <= len(body):
            code, length = struct.unpack_from(self.endian + "HH", body, position)
            position += 4
            if code == OPT_ENDOFOPT:
                break
            if position + length > len(body):
                raise self.fail(offset, f"option {code} of {length} bytes runs past its block")
            options.append((code, body[position:position + length]))
            position += (length + 3) & ~3
        return options

    def _interface(self, offset: int, body: bytes) -> None:
        if len(body) < 8:
            raise self.fail(offset, "interface description block too short")
        linktype, _reserved, snaplen = struct.unpack_from(self.endian + "HHI", body, 0)
        name = ""
        description = ""
        ticks = 1_000_000
        for code, value in self._options(offset, body, 8):
            if code == IF_NAME:
                name = value.decode("utf-8", "replace")
            elif code == IF_DESCRIPTION:
                description = value.decode("utf-8", "replace")
            elif code == IF_TSRESOL and value:
                resolution = value[0]
                ticks = 2 ** (resolution & 0x7F) if resolution & 0x80 else 10 ** resolution
        iface = Interface(len(self.result.interfaces), name or f"if{len(self.section_interfaces)}",
                          linktype, description, ticks)
        self.result.interfaces.append(iface)
        self.section_interfaces.append((iface, snaplen))

    def _lookup(self, offset: int, interface_id: int) -> Interface:
        if not 0 <= interface_id < len(self.section_interfaces):
            raise self.fail(offset, f"packet on interface {interface_id}, which has no "
                                    f"description block before it")
        return self.section_interfaces[interface_id][0]

    def _enhanced(self, offset: int, body: bytes,
                  ) -> tuple[int, int, Interface, bytes, int, tuple[str, ...], int | None]:
        if len(body) < 20:
            raise self.fail(offset, "enhanced packet block too short")
        interface_id, high, low, caplen, length = struct.unpack_from(self.endian + "IIIII", body, 0)
        if 20 + caplen > len(body):
            raise self.fail(offset, f"captured length {caplen} runs past its block")
        iface = self._lookup(offset, interface_id)
        ticks = (high << 32) | low
        stamp = ticks * 1_000_000_000 // iface.ticks_per_second
        comments = []
        direction = None
        for code, value in self._options(offset, body, 20 + ((caplen + 3) & ~3)):
            if code == OPT_COMMENT:
                comments.append(value.decode("utf-8", "replace"))
            elif code == EPB_FLAGS and len(value) == 4:
                direction = struct.unpack(self.endian + "I", value)[0] & 3 or None
        return (stamp, ticks, iface, bytes(body[20:20 + caplen]), length, tuple(comments),
                direction)

    def _simple(self, offset: int, body: bytes,
                ) -> tuple[int, int, Interface, bytes, int, tuple[str, ...], int | None]:
        if len(body) < 4:
            raise self.fail(offset, "simple packet block too short")
        iface = self._lookup(offset, 0)
        (length,) = struct.unpack_from(self.endian + "I", body, 0)
        caplen = min(length, self.section_interfaces[0][1] or length, len(body) - 4)
        return (0, 0, iface, bytes(body[4:4 + caplen]), length, (), None)


def read_pcapng(source: str | os.PathLike[str] | bytes | BinaryIO, *,
                origin_ns: int | None = None, allow_truncated: bool = False) -> PcapFile:
    """Read a whole pcapng capture from a path, bytes or a binary stream.

    Raises ``PcapFormatError`` (naming the file and byte offset) for a
    truncated, corrupt or non-pcapng input, ``OSError`` when the file cannot
    be read. See the module docstring for ``origin_ns`` and ``allow_truncated``.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "<memory>"
    elif isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        with open(name, "rb") as stream:
            data = stream.read()
    else:
        name = str(getattr(source, "name", "<stream>"))
        data = source.read()
    result = _Reader(data, name, allow_truncated).read()
    if origin_ns is None:
        first = result.packets[0].timestamp_ns if result.packets else VIRTUAL_EPOCH_NS
        origin_ns = (VIRTUAL_EPOCH_NS if VIRTUAL_EPOCH_NS <= first < VIRTUAL_EPOCH_NS + _YEAR_NS
                     else first)
    result.origin_ns = origin_ns
    for packet in result.packets:
        packet.time_ns = packet.timestamp_ns - origin_ns
    return result


# --- one-line summaries, as tshark prints them --------------------------------

_TCP_FLAG_NAMES = (("F", "FIN"), ("S", "SYN"), ("R", "RST"), ("P", "PSH"), ("A", "ACK"),
                   ("U", "URG"), ("E", "ECE"), ("C", "CWR"))


def _tcp_flags(flags: Any) -> str:
    text = str(flags)  # tshark lists the flags from the lowest bit up: [FIN, PSH, ACK]
    return ", ".join(name for letter, name in _TCP_FLAG_NAMES if letter in text)


def endpoints(pkt: Packet) -> tuple[str, str, str]:
    """(source, destination, protocol) as tshark's Source, Destination and Protocol columns."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, Ether

    if ARP in pkt:
        if Ether in pkt:  # tshark's columns show the Ethernet addresses for ARP
            return str(pkt[Ether].src), str(pkt[Ether].dst), "ARP"
        return str(pkt[ARP].hwsrc), str(pkt[ARP].hwdst), "ARP"
    network = pkt[IP] if IP in pkt else pkt[IPv6] if IPv6 in pkt else None
    if network is None:
        if Ether in pkt:
            return str(pkt[Ether].src), str(pkt[Ether].dst), f"0x{pkt[Ether].type:04x}"
        return "", "", str(pkt.lastlayer().name)
    src, dst = str(network.src), str(network.dst)
    if TCP in pkt:
        protocol = "TCP"
    elif UDP in pkt:
        protocol = "UDP"
    elif ICMP in pkt:
        protocol = "ICMP"
    elif IPv6 in pkt and any(layer.__name__.startswith("ICMPv6") for layer in pkt.layers()):
        protocol = "ICMPv6"
    elif IP in pkt and pkt[IP].proto == 2:
        protocol = "IGMPv3" if any(layer.__name__.startswith("IGMPv3") for layer in pkt.layers()) \
            else "IGMP"
    else:
        protocol = network.payload.name if network.payload else ("IPv4" if IP in pkt else "IPv6")
    return src, dst, protocol


def _info(pkt: Packet) -> str:
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import ARP

    if ARP in pkt:
        arp = pkt[ARP]
        if arp.op == 1:
            return f"Who has {arp.pdst}? Tell {arp.psrc}"
        return f"{arp.psrc} is at {arp.hwsrc}"
    if TCP in pkt:
        tcp = pkt[TCP]
        payload = len(tcp.payload)
        return (f"{tcp.sport} → {tcp.dport} [{_tcp_flags(tcp.flags)}] seq={tcp.seq} "
                f"ack={tcp.ack} win={tcp.window} len={payload}")
    if UDP in pkt:
        udp = pkt[UDP]
        length = max(udp.len - 8, 0) if udp.len else len(udp.payload)
        return f"{udp.sport} → {udp.dport} len={length}"
    if ICMP in pkt:
        icmp = pkt[ICMP]
        kinds = {0: "Echo (ping) reply", 8: "Echo (ping) request", 3: "Destination unreachable",
                 11: "Time-to-live exceeded"}
        text = kinds.get(icmp.type, f"type={icmp.type}")
        if icmp.type in (0, 8):
            text += f" id=0x{icmp.id:04x} seq={icmp.seq}"
        else:
            text += f" code={icmp.code}"
        return text
    for layer in pkt.layers():
        if layer.__name__.startswith("ICMPv6"):
            return str(pkt[layer].name)
    igmp = _igmp_info(pkt)
    if igmp:
        return igmp
    if IP in pkt and (pkt[IP].flags.MF or pkt[IP].frag):
        return f"fragment offset={pkt[IP].frag * 8} id=0x{pkt[IP].id:04x}"
    return str(pkt.lastlayer().name)


#: IGMPv3 group record types (RFC 3376 4.2.12) as tshark names them.
_IGMP_RECORDS = {1: "Mode Is Include", 2: "Mode Is Exclude", 3: "Change To Include Mode",
                 4: "Change To Exclude Mode", 5: "Allow New Sources", 6: "Block Old Sources"}


def _igmp_info(pkt: Packet) -> str:
    """tshark's Info for IGMPv3: ``Membership Report / Join group 239.1.2.3 for any sources``."""
    from scapy.layers.igmp import IGMPv3_MQ, IGMPv3_MR

    if IGMPv3_MQ in pkt:
        group = pkt[IGMPv3_MQ].gaddr
        return "Membership Query, general" if group == "0.0.0.0" else (
            f"Membership Query, specific for group {group}")
    if IGMPv3_MR not in pkt:
        return ""
    parts = []
    for record in pkt[IGMPv3_MR].records:
        if record.rtype == 4 and not record.numsrc:
            parts.append(f"Join group {record.maddr} for any sources")
        elif record.rtype == 3 and not record.numsrc:
            parts.append(f"Leave group {record.maddr}")
        else:
            parts.append(f"{_IGMP_RECORDS.get(record.rtype, record.rtype)} {record.maddr}")
    return " / ".join(["Membership Report", *parts])


def summarize(captured: CapturedPacket) -> str:
    """``#index time interface src → dst PROTO len info``, as one line."""
    try:
        src, dst, protocol = endpoints(captured.packet)
        info = _info(captured.packet)
    except Exception as error:  # a frame scapy cannot dissect still gets a line
        src, dst, protocol, info = "?", "?", "?", f"undecodable: {error}"
    line = (f"#{captured.index} {captured.time_ns / 1e9:.9f} {captured.interface} "
            f"{src} → {dst} {protocol} {captured.wire_length} {info}")
    if captured.comments:
        line += " // " + "; ".join(captured.comments)
    return line


def packets_from(source: str | os.PathLike[str] | bytes) -> list[CapturedPacket]:
    """Shorthand: the packets of a capture file or bytes."""
    return read_pcapng(source).packets
