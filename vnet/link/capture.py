"""pcapng capture: a small struct-based writer and the ``Capture`` that NICs and segments tap.

This module touches only the stream it writes to (a file it opens, a stream
it is given such as stdout, or an in-memory buffer). It knows nothing of
packets beyond their bytes -- except that a capture given a ``filter`` (a
match in the firewall's rule language, ``CaptureFilter``) parses each frame's
IP header with ``firewall.packet.PacketInfo`` to judge it. It never reads a
clock itself: every timestamp comes from the clock a tap was registered with
(``Scheduler.realtime_ns``: in virtual time a fixed epoch plus virtual time,
so two identical virtual-time runs produce byte-identical files).

File layout (pcapng, little-endian, one section)::

    Section Header Block      shb_userappl "vnet"
    Interface Description     one per tap, if_name + if_tsresol = 9 (ns), and
                              if_description / if_MACaddr when ``describe()``
                              gave them; written when the tap registers (so
                              IDBs may follow packets)
    Name Resolution Block     one per ``add_names()`` call: address -> host name,
                              so Wireshark shows ``alice``, not ``fd00::11``
    Enhanced Packet Block...  in the order frames were recorded; nanosecond
                              timestamps; optional opt_comment and epb_flags
                              (direction: 1 inbound, 2 outbound)

Using it::

    cap = Capture.to_file("run.pcapng")       # or Capture.in_memory(), Capture.to_stream(out)
    nic.capture(cap); segment.capture(cap)    # each registers one interface
    ...                                       # run the network
    cap.close()                               # in memory: cap.getvalue() -> bytes

Which tap to use: a NIC's tap records a frame where that NIC sends or
receives it, so a capture of every NIC holds each frame that crosses a
segment twice (once leaving A, once reaching B), and Wireshark flags the
second copy as a retransmission. A segment's tap (``segment.capture(cap)``)
records each frame once, where the switch forwards it: the view of a
monitor port, the one to open in Wireshark.

A live capture (``Capture.to_stream(sys.stdout.buffer, flush_each=True)``)
flushes after every block, so a reader such as ``wireshark -k -i -`` sees
each packet as it is recorded; if the reader goes away (a broken pipe),
the capture closes itself and counts what it could not write in
``dropped_after_close``, and the network goes on.

Thread-safety: none of its own. NICs and segments record frames only while
the scheduler's ``lock`` is held (real time: host calls and timer callbacks
hold it) or from the single running thread (virtual time), so records never
interleave. Code calling a tap or writer from anywhere else must hold
``scheduler.lock`` too.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import TYPE_CHECKING, BinaryIO, TypeAlias

if TYPE_CHECKING:
    from firewall.rules import Rule

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_RAW",
    "Capture",
    "CaptureFilter",
    "CaptureTap",
    "Direction",
    "PcapngWriter",
]

#: LINKTYPE_ETHERNET: Ethernet II frames without preamble or FCS.
LINKTYPE_ETHERNET = 1
#: LINKTYPE_RAW: raw IPv4/IPv6 packets (a TUN device).
LINKTYPE_RAW = 101
DEFAULT_SNAPLEN = 262144

BLOCK_SHB = 0x0A0D0D0A
BLOCK_IDB = 0x00000001
BLOCK_NRB = 0x00000004
BLOCK_EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
OPT_SHB_USERAPPL = 4
OPT_IF_NAME = 2
OPT_IF_DESCRIPTION = 3
OPT_IF_MACADDR = 6
OPT_IF_TSRESOL = 9
OPT_EPB_FLAGS = 2

TSRESOL_NS = 9  # 10**-9 seconds per tick

NRB_RECORD_END = 0
NRB_RECORD_IPV4 = 1
NRB_RECORD_IPV6 = 2

#: What a frame may be: bytes, or a buffer that stays unchanged while it is written.
BytesLike: TypeAlias = bytes | bytearray | memoryview


class Direction(IntEnum):
    """The direction bits (0-1) of ``epb_flags``."""

    INBOUND = 1
    OUTBOUND = 2


_U32 = struct.Struct("<I")
_BLOCK_HEAD = struct.Struct("<II")
_SHB_BODY = struct.Struct("<IHHq")
_IDB_BODY = struct.Struct("<HHI")
_EPB_HEAD = struct.Struct("<IIIIIII")  # type, total length, if id, ts high, ts low, caplen, len
_OPT_HEAD = struct.Struct("<HH")
_OPT_U32 = struct.Struct("<HHI")

_PADS = (b"", b"\0\0\0", b"\0\0", b"\0")  # indexed by length & 3
_END_OF_OPTIONS = _OPT_HEAD.pack(OPT_ENDOFOPT, 0)
_EPB_FIXED_LEN = _EPB_HEAD.size + 4  # header plus trailing total length
# Option areas for the common cases: no option, or only a direction.
_DIRECTION_OPTIONS = (
    b"",
    _OPT_U32.pack(OPT_EPB_FLAGS, 4, Direction.INBOUND) + _END_OF_OPTIONS,
    _OPT_U32.pack(OPT_EPB_FLAGS, 4, Direction.OUTBOUND) + _END_OF_OPTIONS,
)


def _option(code: int, value: bytes) -> bytes:
    return _OPT_HEAD.pack(code, len(value)) + value + _PADS[len(value) & 3]


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return _BLOCK_HEAD.pack(block_type, total) + body + _U32.pack(total)


class PcapngWriter:
    """Writes one pcapng section to a binary stream. Use ``Capture`` unless you need blocks.

    The Section Header Block is written at once. ``close()`` flushes and
    closes the stream.
    """

    def __init__(self, stream: BinaryIO, *, application: str | None = "vnet",
                 flush_each: bool = False, close_stream: bool = True) -> None:
        self._stream = stream
        self._flush_each = flush_each
        self._close_stream = close_stream
        self._snaplens: list[int] = []
        self.closed = False
        #: Enhanced Packet Blocks written.
        self.packets = 0
        #: Sum of the original lengths of the packets written.
        self.packet_bytes = 0
        #: Bytes of pcapng written so far (every block).
        self.bytes_written = 0
        options = b""
        if application:
            options = _option(OPT_SHB_USERAPPL, application.encode()) + _END_OF_OPTIONS
        self._emit(_block(BLOCK_SHB, _SHB_BODY.pack(BYTE_ORDER_MAGIC, 1, 0, -1) + options))

    def _emit(self, data: bytes) -> None:
        self._stream.write(data)
        self.bytes_written += len(data)
        if self._flush_each:
            self._stream.flush()

    @property
    def interface_count(self) -> int:
        return len(self._snaplens)

    def add_interface(
        self,
        name: str,
        linktype: int = LINKTYPE_ETHERNET,
        snaplen: int = DEFAULT_SNAPLEN,
        *,
        description: str | None = None,
        mac: bytes | None = None,
    ) -> int:
        """Write an Interface Description Block; return its interface id (0, 1, ...).

        ``description`` becomes ``if_description`` (Wireshark shows it in the
        capture's properties), ``mac`` (6 bytes) ``if_MACaddr``.
        """
        if self.closed:
            raise ValueError("pcapng writer is closed")
        if not 0 <= linktype <= 0xFFFF:
            raise ValueError(f"linktype must fit in 16 bits, not {linktype!r}")
        if not 0 <= snaplen <= 0xFFFFFFFF:
            raise ValueError(f"snaplen must fit in 32 bits, not {snaplen!r}")
        if mac is not None and len(mac) != 6:
            raise ValueError(f"a MAC address is 6 bytes, not {len(mac)}")
        options = _option(OPT_IF_NAME, name.encode())
        if description:
            options += _option(OPT_IF_DESCRIPTION, description.encode())
        if mac is not None:
            options += _option(OPT_IF_MACADDR, bytes(mac))
        options += _option(OPT_IF_TSRESOL, bytes((TSRESOL_NS,))) + _END_OF_OPTIONS
        self._emit(_block(BLOCK_IDB, _IDB_BODY.pack(linktype, 0, snaplen) + options))
        # snaplen 0 means "no limit" in pcapng.
        self._snaplens.append(snaplen or 0xFFFFFFFF)
        return len(self._snaplens) - 1

    def add_names(self, entries: Iterable[tuple[bytes, str]]) -> None:
        """Write a Name Resolution Block: (4- or 16-byte address, name) pairs.

        Several names for one address become one record; nothing to write
        (no entries) writes no block.
        """
        if self.closed:
            raise ValueError("pcapng writer is closed")
        names: dict[bytes, list[str]] = {}
        for address, name in entries:
            if len(address) not in (4, 16):
                raise ValueError(f"an address is 4 or 16 bytes, not {len(address)}")
            if not name or "\0" in name:
                raise ValueError(f"bad host name {name!r}")
            listed = names.setdefault(bytes(address), [])
            if name not in listed:
                listed.append(name)
        if not names:
            return
        records = []
        for address, listed in names.items():
            value = address + b"".join(n.encode() + b"\0" for n in listed)
            kind = NRB_RECORD_IPV4 if len(address) == 4 else NRB_RECORD_IPV6
            records.append(_OPT_HEAD.pack(kind, len(value)) + value + _PADS[len(value) & 3])
        records.append(_OPT_HEAD.pack(NRB_RECORD_END, 0))
        self._emit(_block(BLOCK_NRB, b"".join(records)))

    def write_packet(
        self,
        interface_id: int,
        timestamp_ns: int,
        data: BytesLike,
        comment: str | None = None,
        direction: int | None = None,
    ) -> None:
        """Write one Enhanced Packet Block (data cut to the interface's snaplen).

        ``direction`` is ``Direction.INBOUND``, ``Direction.OUTBOUND`` or None
        (no ``epb_flags``); ``comment`` becomes an ``opt_comment``.
        """
        if self.closed:
            raise ValueError("pcapng writer is closed")
        if not 0 <= interface_id < len(self._snaplens):
            raise ValueError(f"no interface {interface_id} in this capture")
        if not 0 <= timestamp_ns <= 0xFFFFFFFFFFFFFFFF:
            raise ValueError(f"timestamp out of range: {timestamp_ns!r}")
        length = len(data)
        snaplen = self._snaplens[interface_id]
        if length > snaplen:
            data = data[:snaplen]
            caplen = snaplen
        else:
            caplen = length
        if comment is None:
            if not direction:
                options = b""
            elif direction == 1 or direction == 2:
                options = _DIRECTION_OPTIONS[direction]
            else:
                raise ValueError(f"direction must be INBOUND, OUTBOUND or None, not {direction!r}")
        else:
            options = _option(OPT_COMMENT, comment.encode())
            if direction:
                options += _DIRECTION_OPTIONS[direction]
            else:
                options += _END_OF_OPTIONS
        pad = _PADS[caplen & 3]
        total = _EPB_FIXED_LEN + caplen + len(pad) + len(options)
        block = b"".join(
            (
                _EPB_HEAD.pack(
                    BLOCK_EPB,
                    total,
                    interface_id,
                    timestamp_ns >> 32,
                    timestamp_ns & 0xFFFFFFFF,
                    caplen,
                    length,
                ),
                data,
                pad,
                options,
                _U32.pack(total),
            )
        )
        self._stream.write(block)
        self.bytes_written += total
        self.packets += 1
        self.packet_bytes += length
        if self._flush_each:
            self._stream.flush()

    def flush(self) -> None:
        if not self.closed:
            self._stream.flush()

    def close(self) -> None:
        """Flush and close the stream (only flush it if told not to close it). Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reader of a live capture went away, or the stream was closed
        if self._close_stream:
            self._stream.close()

    def abandon(self) -> None:
        """Stop writing without flushing (the stream is broken); close it if ours."""
        self.closed = True
        if self._close_stream:
            try:
                self._stream.close()
            except OSError:
                pass


class CaptureTap:
    """One interface of a ``Capture``: what a NIC or segment calls for each frame."""

    __slots__ = ("_clock", "_writer", "bytes", "capture", "interface_id", "linktype", "name",
                 "packets")

    def __init__(
        self,
        capture: Capture,
        writer: PcapngWriter,
        name: str,
        interface_id: int,
        linktype: int,
        clock: Callable[[], int],
    ) -> None:
        self.capture = capture
        self.name = name
        self.interface_id = interface_id
        self.linktype = linktype
        self._writer = writer
        self._clock = clock
        #: Frames recorded through this tap, and their original bytes.
        self.packets = 0
        self.bytes = 0

    def record(
        self,
        frame: BytesLike,
        direction: int | None = None,
        comment: str | None = None,
        timestamp_ns: int | None = None,
    ) -> None:
        """Append ``frame`` to the capture, stamped with the tap's clock unless given.

        Once the capture is closed, frames are counted in
        ``Capture.dropped_after_close`` and otherwise ignored.
        """
        writer = self._writer
        capture = self.capture
        if writer.closed:
            capture.dropped_after_close += 1
            return
        keep = capture.filter
        if keep is not None and not keep.matches_frame(frame, self.linktype):
            capture.filtered_out += 1
            return
        self.packets += 1
        self.bytes += len(frame)
        try:
            writer.write_packet(
                self.interface_id,
                self._clock() if timestamp_ns is None else timestamp_ns,
                frame,
                comment,
                direction,
            )
        except (BrokenPipeError, ConnectionResetError):
            capture._reader_gone()
            capture.dropped_after_close += 1

    def __repr__(self) -> str:
        return f"<CaptureTap {self.name!r} id={self.interface_id} packets={self.packets}>"


class Capture:
    """A pcapng capture that any number of NICs and segments record into.

    Each ``interface(name)`` is one Interface Description Block; registering
    the same name twice returns the same tap. Frames land in the file in the
    order they were recorded.

    ``clock`` (nanoseconds since the Unix epoch, normally
    ``scheduler.realtime_ns``) stamps frames of taps registered without a
    clock of their own; NICs and segments always pass their scheduler's.
    """

    def __init__(self, stream: BinaryIO, *, clock: Callable[[], int] | None = None,
                 flush_each: bool = False, close_stream: bool = True,
                 filter: CaptureFilter | str | None = None) -> None:
        self._writer = PcapngWriter(stream, flush_each=flush_each, close_stream=close_stream)
        self._clock = clock
        self._taps: dict[str, CaptureTap] = {}
        self._descriptions: dict[str, tuple[str | None, bytes | None]] = {}
        self._pending_names: list[tuple[bytes, str]] = []
        self._memory: io.BytesIO | None = None
        self._final: bytes | None = None
        self.path: str | None = None
        #: Only frames this filter matches are written (None: every frame).
        self.filter = CaptureFilter(filter) if isinstance(filter, str) else filter
        #: Frames recorded through a tap after ``close()`` (ignored), or lost to a broken pipe.
        self.dropped_after_close = 0
        #: Frames the filter left out.
        self.filtered_out = 0
        #: True once a write failed because the reader of a live capture went away.
        self.broken = False

    @classmethod
    def to_file(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], int] | None = None,
        filter: CaptureFilter | str | None = None,
    ) -> Capture:
        """Capture into a new file at ``path`` (truncated if it exists)."""
        stream = open(path, "wb")  # owned by the Capture: close() closes it
        capture = cls(stream, clock=clock, filter=filter)
        capture.path = os.fspath(path)
        return capture

    @classmethod
    def to_stream(
        cls,
        stream: BinaryIO,
        *,
        clock: Callable[[], int] | None = None,
        flush_each: bool = True,
        filter: CaptureFilter | str | None = None,
    ) -> Capture:
        """Capture into a stream it does not own (stdout): flushed per block, never closed."""
        return cls(stream, clock=clock, flush_each=flush_each, close_stream=False,
                   filter=filter)

    @classmethod
    def in_memory(cls, *, clock: Callable[[], int] | None = None) -> Capture:
        """Capture into memory; read it with ``getvalue()`` (before or after ``close()``)."""
        buffer = io.BytesIO()
        capture = cls(buffer, clock=clock)
        capture._memory = buffer
        return capture

    def interface(
        self,
        name: str,
        linktype: int = LINKTYPE_ETHERNET,
        snaplen: int = DEFAULT_SNAPLEN,
        *,
        clock: Callable[[], int] | None = None,
    ) -> CaptureTap:
        """The tap for interface ``name``, writing its IDB on first registration."""
        tap = self._taps.get(name)
        if tap is not None:
            if tap.linktype != linktype:
                raise ValueError(
                    f"capture interface {name!r} already registered with linktype {tap.linktype}"
                )
            return tap
        clock = clock or self._clock
        if clock is None:
            raise ValueError(
                f"capture interface {name!r} needs a clock (pass clock=scheduler.realtime_ns)"
            )
        description, mac = self._descriptions.get(name, (None, None))
        interface_id = -1  # a closed or broken capture: the tap records nothing
        writer = self._writer
        if not writer.closed:
            try:
                interface_id = writer.add_interface(name, linktype, snaplen,
                                                    description=description, mac=mac)
                if self._pending_names:
                    writer.add_names(self._pending_names)
            except (BrokenPipeError, ConnectionResetError):
                self._reader_gone()
        self._pending_names = []
        tap = CaptureTap(self, writer, name, interface_id, linktype, clock)
        self._taps[name] = tap
        return tap

    def _reader_gone(self) -> None:
        """A live capture's reader closed the pipe: stop writing, keep the network going."""
        self._writer.abandon()
        self.broken = True

    def describe(self, name: str, description: str | None, mac: bytes | None = None) -> None:
        """Give interface ``name`` an ``if_description`` (and ``if_MACaddr``).

        Call it before the interface registers: the description is written
        in its Interface Description Block.
        """
        self._descriptions[name] = (description, mac)

    def add_names(self, entries: Iterable[tuple[bytes, str]]) -> None:
        """Name addresses for Wireshark: (4- or 16-byte address, host name) pairs.

        Written as one Name Resolution Block -- at once, or, before any
        interface exists, right after the first Interface Description Block
        (editcap and mergecap refuse a file that names addresses before it
        describes an interface). Wireshark with network name resolution on
        (View > Name Resolution > Resolve Network Addresses) and ``tshark -N
        n`` then show the name instead of the address.
        """
        if self._writer.closed:
            return
        if not self._taps:
            # Wireshark's editcap/mergecap refuse a name block before the first interface:
            # keep it until one registers.
            self._pending_names.extend(entries)
            return
        try:
            self._writer.add_names(entries)
        except (BrokenPipeError, ConnectionResetError):
            self._reader_gone()

    @property
    def interfaces(self) -> list[str]:
        """Interface names in IDB order (index = interface id)."""
        return list(self._taps)

    @property
    def packets(self) -> int:
        """Packets written so far."""
        return self._writer.packets

    @property
    def packet_bytes(self) -> int:
        """Sum of the original lengths of the packets written."""
        return self._writer.packet_bytes

    @property
    def bytes_written(self) -> int:
        """Size of the pcapng data written so far."""
        return self._writer.bytes_written

    @property
    def closed(self) -> bool:
        return self._writer.closed

    def getvalue(self) -> bytes:
        """The pcapng bytes of an in-memory capture."""
        if self._memory is None:
            raise TypeError("getvalue() is only for Capture.in_memory()")
        if self._final is not None:
            return self._final
        return self._memory.getvalue()

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        """Flush and close; taps recording afterwards are ignored. Idempotent."""
        if self._memory is not None and self._final is None:
            self._final = self._memory.getvalue()
        self._writer.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.path or "memory"
        return f"<Capture {where} interfaces={len(self._taps)} packets={self.packets}>"


class CaptureFilter:
    """Which frames a capture keeps: matches in the firewall's rule language.

    ``CaptureFilter("tcp dport 80")``, ``"ip saddr 10.0.0.0/24 udp"``,
    ``"icmpv6 type echo-request"``: the text is parsed by
    ``firewall.parser`` as one rule without a verdict and judged with that
    rule's compiled matches (``firewall.matches``) against the frame's IP
    packet -- the same words and meaning as in a rule file. A flow in both
    directions needs two rules; ``or`` between them keeps a frame either
    matches: ``"tcp dport 8080 or tcp sport 8080"``. Frames that are not IP
    (ARP) or whose IP header does not parse never match a non-empty filter.
    Connection state (``ct state``) and interface names are not known to a
    capture, so a filter using them is refused (``ValueError``).
    """

    def __init__(self, text: str) -> None:
        from firewall.rules import Ruleset

        self.text = text.strip()
        self._rules: list[Rule] = []
        if not self.text:
            return
        ruleset = Ruleset()
        chain = ruleset.chain("capture")
        for alternative in _alternatives(self.text):
            chain.append(self._parse(alternative))
        ruleset.link()
        self._rules = list(chain.rules)

    def _parse(self, text: str) -> Rule:
        from firewall import RuleFileError
        from firewall.matches import CtStateExpr, IfaceExpr
        from firewall.rules import CONTINUE

        if not text:
            raise ValueError(f"capture filter {self.text!r}: nothing on one side of 'or'")
        try:
            rule = _parse_rule(text)
        except RuleFileError as e:
            problem = e.errors[0] if e.errors else e
            raise ValueError(f"capture filter {self.text!r}: "
                             f"{getattr(problem, 'message', problem)}") from None
        if rule.verdict != CONTINUE or rule.log is not None:
            raise ValueError(f"capture filter {self.text!r}: a filter is matches only, "
                             "without a verdict or log")
        for expr in rule.exprs:
            if isinstance(expr, CtStateExpr | IfaceExpr):
                raise ValueError(f"capture filter {self.text!r}: {expr} is not known to a "
                                 "capture (no connection tracking, no interface names)")
        return rule

    def matches_packet(self, packet: BytesLike) -> bool:
        """Does the filter keep this IP packet?"""
        rules = self._rules
        if not rules:
            return True
        from firewall.packet import PacketInfo

        info = PacketInfo.parse(packet)
        if info is None:
            return False
        return any(rule.matches(info) for rule in rules)

    def matches_frame(self, frame: BytesLike, linktype: int = LINKTYPE_ETHERNET) -> bool:
        """Does the filter keep this frame (Ethernet, 802.1Q-tagged or not, or raw IP)?"""
        if not self._rules:
            return True
        if linktype == LINKTYPE_RAW:
            return self.matches_packet(frame)
        offset = 12
        while len(frame) >= offset + 2 and frame[offset:offset + 2] in (b"\x81\x00",
                                                                         b"\x88\xa8"):
            offset += 4  # VLAN tag
        if frame[offset:offset + 2] not in (b"\x08\x00", b"\x86\xdd"):
            return False
        return self.matches_packet(memoryview(frame)[offset + 2:])

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<CaptureFilter {self.text!r}>"


def _alternatives(text: str) -> list[str]:
    """Split at the word ``or`` outside ``{ ... }`` sets and quotes."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    words = text.split(" ")
    position = 0
    for word in words:
        if not quoted and depth == 0 and word == "or":
            parts.append(text[start:position].strip())
            start = position + len(word)
        depth += word.count("{") - word.count("}")
        quoted ^= word.count('"') % 2 == 1
        position += len(word) + 1
    parts.append(text[start:].strip())
    return parts


def _parse_rule(text: str) -> Rule:
    from firewall.parser import parse_rule

    return parse_rule(text, file="<capture filter>")
