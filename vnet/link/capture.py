"""pcapng capture: a small struct-based writer and the ``Capture`` that NICs and segments tap.

This module touches only the stream it writes to (a file it opens, or an
in-memory buffer). It knows nothing of packets beyond their bytes: it never
parses a frame, and it never reads a clock itself -- every timestamp comes
from the clock a tap was registered with (``Scheduler.realtime_ns``: in
virtual time a fixed epoch plus virtual time, so two identical virtual-time
runs produce byte-identical files).

File layout (pcapng, little-endian, one section)::

    Section Header Block      shb_userappl "vnet"
    Interface Description     one per tap, if_name + if_tsresol = 9 (ns), written
                              when the tap registers (so IDBs may follow packets)
    Enhanced Packet Block...  in the order frames were recorded; nanosecond
                              timestamps; optional opt_comment and epb_flags
                              (direction: 1 inbound, 2 outbound)

Using it::

    cap = Capture.to_file("run.pcapng")       # or Capture.in_memory()
    nic.capture(cap); segment.capture(cap)    # each registers one interface
    ...                                       # run the network
    cap.close()                               # in memory: cap.getvalue() -> bytes

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
from collections.abc import Callable
from enum import IntEnum
from typing import BinaryIO, TypeAlias

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_RAW",
    "Capture",
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
BLOCK_EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
OPT_SHB_USERAPPL = 4
OPT_IF_NAME = 2
OPT_IF_TSRESOL = 9
OPT_EPB_FLAGS = 2

TSRESOL_NS = 9  # 10**-9 seconds per tick

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

    def __init__(self, stream: BinaryIO, *, application: str | None = "vnet") -> None:
        self._stream = stream
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

    @property
    def interface_count(self) -> int:
        return len(self._snaplens)

    def add_interface(
        self, name: str, linktype: int = LINKTYPE_ETHERNET, snaplen: int = DEFAULT_SNAPLEN
    ) -> int:
        """Write an Interface Description Block; return its interface id (0, 1, ...)."""
        if self.closed:
            raise ValueError("pcapng writer is closed")
        if not 0 <= linktype <= 0xFFFF:
            raise ValueError(f"linktype must fit in 16 bits, not {linktype!r}")
        if not 0 <= snaplen <= 0xFFFFFFFF:
            raise ValueError(f"snaplen must fit in 32 bits, not {snaplen!r}")
        options = (
            _option(OPT_IF_NAME, name.encode())
            + _option(OPT_IF_TSRESOL, bytes((TSRESOL_NS,)))
            + _END_OF_OPTIONS
        )
        self._emit(_block(BLOCK_IDB, _IDB_BODY.pack(linktype, 0, snaplen) + options))
        # snaplen 0 means "no limit" in pcapng.
        self._snaplens.append(snaplen or 0xFFFFFFFF)
        return len(self._snaplens) - 1

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

    def flush(self) -> None:
        if not self.closed:
            self._stream.flush()

    def close(self) -> None:
        if self.closed:
            return
        self._stream.flush()
        self.closed = True
        self._stream.close()


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
        if writer.closed:
            self.capture.dropped_after_close += 1
            return
        self.packets += 1
        self.bytes += len(frame)
        writer.write_packet(
            self.interface_id,
            self._clock() if timestamp_ns is None else timestamp_ns,
            frame,
            comment,
            direction,
        )

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

    def __init__(self, stream: BinaryIO, *, clock: Callable[[], int] | None = None) -> None:
        self._writer = PcapngWriter(stream)
        self._clock = clock
        self._taps: dict[str, CaptureTap] = {}
        self._memory: io.BytesIO | None = None
        self._final: bytes | None = None
        self.path: str | None = None
        #: Frames recorded through a tap after ``close()`` (ignored).
        self.dropped_after_close = 0

    @classmethod
    def to_file(
        cls, path: str | os.PathLike[str], *, clock: Callable[[], int] | None = None
    ) -> Capture:
        """Capture into a new file at ``path`` (truncated if it exists)."""
        stream = open(path, "wb")  # owned by the Capture: close() closes it
        capture = cls(stream, clock=clock)
        capture.path = os.fspath(path)
        return capture

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
        interface_id = self._writer.add_interface(name, linktype, snaplen)
        tap = CaptureTap(self, self._writer, name, interface_id, linktype, clock)
        self._taps[name] = tap
        return tap

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
