"""Comparing two captures packet by packet: ``vnet pcap diff A B [--ignore FIELD ...]``.

Two virtual-time runs with the same topology, inputs and seed write
byte-identical captures; this module says whether two captures are the same
and, when they are not, which packet differs first and in which fields. It
pairs packets as diff(1) pairs lines: packets with the same interface and
bytes are matched in order (the longest common subsequence, difflib), so a
packet one capture has and the other lacks is reported alone ("only in A")
instead of shifting every later pair; the packets between matches are paired
by position. For each pair it compares the time stamp, the interface name,
the comments and every field of every scapy layer.

Ignoring fields: each name is ``Layer.field`` (``IP.id``, ``TCP.seq``), a
bare ``field`` (in any layer), a bare ``Layer`` (every field of that layer),
or one of ``time``, ``interface``, ``comment``. Names are case-insensitive.
When an ignored field differs, the checksums of that packet (``chksum``,
``cksum``) necessarily differ too, so they are not reported for that packet.

The result is a ``CaptureDiff``: ``identical``, the ``differences``
(``PacketDifference`` with its ``FieldDifference``s) and a readable
``report()``. ``main(argv)`` is the command-line entry point (exit status 0
identical, 1 different, 2 unreadable input, as diff(1)); ``python -m
vnet.testing.pcap_diff A B`` runs it.

It reads the two files and uses scapy; it writes nothing but its report to
stdout (errors to stderr). Never on the data path.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .pcap import CapturedPacket, PcapFormatError, read_pcapng

if TYPE_CHECKING:
    from scapy.packet import Packet

__all__ = ["CaptureDiff", "FieldDifference", "PacketDifference", "diff_captures", "main"]

CHECKSUM_FIELDS = frozenset(("chksum", "cksum"))
PACKET_ATTRIBUTES = frozenset(("time", "interface", "comment"))


@dataclass(frozen=True)
class FieldDifference:
    """One field that differs: ``IP.id``: ``0x0001`` in A, ``0x0002`` in B."""

    field: str
    a: str
    b: str

    def __str__(self) -> str:
        return f"{self.field}: {self.a} ≠ {self.b}"


@dataclass
class PacketDifference:
    """Two paired packets that differ, or a packet only one capture has (the other is None).

    ``position`` is the packet's number in A (for a packet only in B: the
    number in A of the packet it comes before).
    """

    position: int
    a: CapturedPacket | None
    b: CapturedPacket | None
    fields: list[FieldDifference] = field(default_factory=list)


@dataclass
class CaptureDiff:
    """The outcome of ``diff_captures``."""

    a_source: str
    b_source: str
    a_count: int
    b_count: int
    ignored: tuple[str, ...]
    differences: list[PacketDifference] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """Same number of packets and no difference outside the ignored fields."""
        return not self.differences

    @property
    def first(self) -> PacketDifference | None:
        return self.differences[0] if self.differences else None

    def report(self, limit: int = 10) -> str:
        """A readable account: the verdict, then each differing packet (up to ``limit``)."""
        ignoring = f" (ignoring {', '.join(self.ignored)})" if self.ignored else ""
        head = [f"A: {self.a_source} ({self.a_count} packets)",
                f"B: {self.b_source} ({self.b_count} packets)"]
        if self.identical:
            return "\n".join([*head, f"identical{ignoring}"])
        lines = [*head, f"{len(self.differences)} packet(s) differ{ignoring}; "
                        f"first at packet #{self.differences[0].position}"]
        for difference in self.differences[:limit]:
            if difference.a is None or difference.b is None:
                which = "A" if difference.b is None else "B"
                lines.append(f"packet #{difference.position}: only in {which}")
            else:
                lines.append(f"packet #{difference.position}:")
            lines.append("  A " + (difference.a.summary() if difference.a else "(no packet)"))
            lines.append("  B " + (difference.b.summary() if difference.b else "(no packet)"))
            lines.extend(f"    {f}" for f in difference.fields)
        if len(self.differences) > limit:
            lines.append(f"... and {len(self.differences) - limit} more packet(s)")
        return "\n".join(lines)


class _Ignore:
    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(n.strip() for n in names if n.strip())
        lowered = {n.lower() for n in self.names}
        self.attributes = lowered & PACKET_ATTRIBUTES
        self.qualified = {n for n in lowered if "." in n}
        self.bare = lowered - self.qualified - self.attributes

    def field(self, layer: str, name: str) -> bool:
        layer, name = layer.lower(), name.lower()
        return layer in self.bare or name in self.bare or f"{layer}.{name}" in self.qualified


def _shown(layer: Packet, name: str, value: Any) -> str:
    try:
        text = str(layer.get_field(name).i2repr(layer, value))
    except Exception:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _layers(packet: Packet) -> list[Packet]:
    layers = []
    layer = packet
    while layer is not None and layer.__class__.__name__ != "NoPayload":
        layers.append(layer)
        layer = layer.payload
    return layers


def compare_packets(a: CapturedPacket, b: CapturedPacket,
                    ignore: Iterable[str] | _Ignore = ()) -> list[FieldDifference]:
    """The differences between two packets outside the ignored fields (see the module docstring)."""
    rules = ignore if isinstance(ignore, _Ignore) else _Ignore(ignore)
    found: list[FieldDifference] = []
    if a.timestamp_ns != b.timestamp_ns and "time" not in rules.attributes:
        found.append(FieldDifference("time", f"{a.time_ns / 1e9:.9f} s",
                                     f"{b.time_ns / 1e9:.9f} s"))
    if a.interface != b.interface and "interface" not in rules.attributes:
        found.append(FieldDifference("interface", a.interface, b.interface))
    if a.comments != b.comments and "comment" not in rules.attributes:
        found.append(FieldDifference("comment", "; ".join(a.comments) or "(none)",
                                     "; ".join(b.comments) or "(none)"))
    if a.data == b.data and a.linktype == b.linktype:
        return found
    layers_a, layers_b = _layers(a.packet), _layers(b.packet)
    in_layers: list[FieldDifference] = []
    checksums: list[FieldDifference] = []
    ignored_differs = False
    for layer_a, layer_b in zip(layers_a, layers_b, strict=False):
        if type(layer_a) is not type(layer_b):
            break
        layer_name = type(layer_a).__name__
        for descriptor in layer_a.fields_desc:
            name = descriptor.name
            value_a, value_b = layer_a.getfieldval(name), layer_b.getfieldval(name)
            if value_a == value_b:
                continue
            if rules.field(layer_name, name):
                ignored_differs = True
                continue
            difference = FieldDifference(f"{layer_name}.{name}", _shown(layer_a, name, value_a),
                                         _shown(layer_b, name, value_b))
            (checksums if name in CHECKSUM_FIELDS else in_layers).append(difference)
    names_a = [type(x).__name__ for x in layers_a]
    names_b = [type(x).__name__ for x in layers_b]
    if names_a != names_b:
        in_layers.append(FieldDifference("layers", " / ".join(names_a), " / ".join(names_b)))
    if not ignored_differs:
        in_layers.extend(checksums)
        if not in_layers and a.data != b.data:  # a difference scapy's fields do not show
            offset = next((i for i, (x, y) in enumerate(zip(a.data, b.data, strict=False))
                           if x != y), min(len(a.data), len(b.data)))
            in_layers.append(FieldDifference("bytes", f"{len(a.data)} bytes",
                                             f"{len(b.data)} bytes, first difference at "
                                             f"offset {offset}"))
    return found + in_layers


def diff_captures(a: str | os.PathLike[str] | bytes, b: str | os.PathLike[str] | bytes, *,
                  ignore: Iterable[str] = ()) -> CaptureDiff:
    """Compare two pcapng captures packet by packet; see the module docstring for ``ignore``.

    Raises ``PcapFormatError`` or ``OSError`` if either cannot be read.
    """
    rules = _Ignore(ignore)
    first, second = read_pcapng(a), read_pcapng(b)
    result = CaptureDiff(first.source, second.source, len(first.packets), len(second.packets),
                         rules.names)
    for position, packet_a, packet_b in _pairs(first.packets, second.packets):
        if packet_a is None or packet_b is None:
            result.differences.append(PacketDifference(position, packet_a, packet_b, [
                FieldDifference("packet", "present" if packet_a else "absent",
                                "present" if packet_b else "absent")]))
            continue
        fields = compare_packets(packet_a, packet_b, rules)
        if fields:
            result.differences.append(PacketDifference(position, packet_a, packet_b, fields))
    return result


def _pairs(packets_a: list[CapturedPacket], packets_b: list[CapturedPacket],
           ) -> Iterable[tuple[int, CapturedPacket | None, CapturedPacket | None]]:
    """(position in A, packet of A, packet of B), aligned as diff(1) aligns lines."""
    keys_a = [(p.interface, p.linktype, p.data) for p in packets_a]
    keys_b = [(p.interface, p.linktype, p.data) for p in packets_b]
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for _tag, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        common = min(a_end - a_start, b_end - b_start)  # equal blocks, and replaced ones
        for offset in range(common):
            yield a_start + offset, packets_a[a_start + offset], packets_b[b_start + offset]
        for index in range(a_start + common, a_end):
            yield index, packets_a[index], None
        for index in range(b_start + common, b_end):
            yield a_end, None, packets_b[index]


def main(argv: Sequence[str] | None = None) -> int:
    """``vnet pcap diff A B [--ignore FIELD[,FIELD]] [--max N]``: 0 identical, 1 differ, 2 error."""
    parser = argparse.ArgumentParser(
        prog="vnet pcap diff",
        description="Compare two pcapng captures packet by packet.")
    parser.add_argument("a", help="first capture (pcapng)")
    parser.add_argument("b", help="second capture (pcapng)")
    parser.add_argument("--ignore", action="append", default=[], metavar="FIELD",
                        help="a field to leave out: Layer.field (IP.id, TCP.seq), field, Layer, "
                             "time, interface or comment; repeat or separate with commas")
    parser.add_argument("--max", type=int, default=10, metavar="N",
                        help="differing packets to show (default 10)")
    args = parser.parse_args(argv)
    names = [name for option in args.ignore for name in option.split(",")]
    try:
        result = diff_captures(args.a, args.b, ignore=names)
    except (PcapFormatError, OSError) as error:
        print(f"vnet pcap diff: {error}", file=sys.stderr)
        return 2
    print(result.report(limit=args.max))
    return 0 if result.identical else 1


if __name__ == "__main__":
    sys.exit(main())
