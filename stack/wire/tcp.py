"""TCP header and options (RFC 9293 3.1; RFC 7323; RFC 2018): parsed view and builder.

Touches nothing but bytes. TCP has no length field: the segment is the
whole buffer the IP layer hands over (already trimmed to the IP payload).
The checksum covers a pseudo-header, so parse and build take the IP source
and destination addresses; their length (4 or 16) selects IPv4 or IPv6.

``TcpPacket.parse`` checks, in this order: 20 bytes present (TRUNCATED),
data offset >= 20 (BAD_LENGTH), data offset <= segment length (TRUNCATED),
the checksum (BAD_CHECKSUM), then the option area (BAD_OPTION). In the
option area End-of-List ends the walk (the rest is padding), NOP is one
byte, and every other option carries a length byte that must be >= 2 and
must not run past the area. Known options must have their fixed length:
MSS 4, window scale 3, SACK-permitted 2, timestamps 10, SACK 2 + 8n with n
from 1 to 4. Unknown options are skipped; a repeated option replaces the
earlier one. A bad option makes the whole segment BAD_OPTION: RFC 9293
3.1 (MUST-7) requires coping with an illegal option length and suggests a
reset; dropping and counting is the quieter choice (Linux instead stops
reading options there and keeps the segment). Options are decoded once, at
parse, into a ``TcpOptions`` of plain values. Nothing is judged beyond the
format: SYN+FIN, a window scale above 14 or an MSS of 0 parse fine; the
connection engine decides what they mean. The four reserved bits next to
the data offset are ignored.

``TcpOptions.encode`` packs options the way Linux does, so our segments
look like a kernel's in captures::

    SYN:   02 04 <mss>  04 02 08 0a <TSval> <TSecr>  01 03 03 <ws>
           (without timestamps SACK-permitted is "01 01 04 02";
            timestamps without SACK-permitted are "01 01 08 0a ...")
    data:  01 01 08 0a <TSval> <TSecr>  01 01 05 <len> <left right>...

Every piece is a multiple of 4 bytes, so no padding is ever needed. The
option area holds at most 40 bytes; SACK blocks that do not fit are left
out (3 fit beside timestamps, 4 without; the first blocks are kept, so
list the most important first, as RFC 2018 4 asks).

Sequence numbers are u32: the builder masks ``seq`` and ``ack`` with
0xFFFFFFFF, so the engine may pass unwrapped integers.

Cost, measured with ``python -m timeit`` (CPython 3.11.7, this project's
2-core machine, best of 7), a 1460-byte payload over IPv4 with the
timestamp option of a data segment: ``TcpPacket.parse`` 6.3 us (2.0 us with
``verify_checksum=False``), ``TcpRepr.build`` 6.0 us, ``TcpRepr.emit_into``
into a preallocated frame 5.2 us. The checksum over 1492 bytes is about
4 us of each; building the frozen ``TcpOptions`` about 0.7 us of a parse.

Wire layout::

    0 source port  2 destination port  4 sequence number  8 acknowledgment number
    12 data offset (high 4 bits, 32-bit words) / reserved  13 flags  14 window
    16 checksum  18 urgent pointer  20 options...  data offset: payload
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ._types import BytesLike, WritableBuffer
from .checksum import ones_sum, pseudo_header_v4, pseudo_header_v6
from .errors import WireError
from .ip import PROTO_TCP

__all__ = [
    "ACK",
    "CWR",
    "ECE",
    "FIN",
    "HEADER_LEN",
    "MAX_HEADER_LEN",
    "MAX_OPTIONS_LEN",
    "MAX_SACK_BLOCKS",
    "NO_OPTIONS",
    "OPT_EOL",
    "OPT_MSS",
    "OPT_NOP",
    "OPT_SACK",
    "OPT_SACK_PERM",
    "OPT_TIMESTAMP",
    "OPT_WSCALE",
    "PSH",
    "RST",
    "SYN",
    "URG",
    "TcpOptions",
    "TcpPacket",
    "TcpRepr",
    "flags_str",
]

FIELD_SRC_PORT: Final = 0
FIELD_DST_PORT: Final = 2
FIELD_SEQ: Final = 4
FIELD_ACK: Final = 8
FIELD_DATA_OFFSET: Final = 12
FIELD_FLAGS: Final = 13
FIELD_WINDOW: Final = 14
FIELD_CHECKSUM: Final = 16
FIELD_URGENT: Final = 18
HEADER_LEN: Final = 20  # without options
MAX_HEADER_LEN: Final = 60
MAX_OPTIONS_LEN: Final = MAX_HEADER_LEN - HEADER_LEN

# Control bits (byte 13).
FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10
URG: Final = 0x20
ECE: Final = 0x40
CWR: Final = 0x80

# Option kinds (IANA "TCP Option Kind Numbers").
OPT_EOL: Final = 0
OPT_NOP: Final = 1
OPT_MSS: Final = 2
OPT_WSCALE: Final = 3
OPT_SACK_PERM: Final = 4
OPT_SACK: Final = 5
OPT_TIMESTAMP: Final = 8

MAX_SACK_BLOCKS: Final = 4  # 2 + 8 * 4 = 34 bytes, the most a 40-byte area can hold

# Final: compiled (mypyc), each is a C constant or static, not a lookup in the module's dict
_HEADER: Final = struct.Struct("!HHIIBBHHH")
_U16: Final = struct.Struct("!H")
_U32: Final = struct.Struct("!I")
_U32X2: Final = struct.Struct("!II")
# the header of a segment whose only option is the timestamp: NOP NOP TS, TSval, TSecr
_HEADER_TS: Final = struct.Struct("!HHIIBBHHHIII")
# bound once: compiled, ``_HEADER.pack(...)`` looks the method up at every call
_pack_header: Final[Callable[..., bytes]] = _HEADER.pack
_pack_header_ts: Final[Callable[..., bytes]] = _HEADER_TS.pack
_unpack_header: Final[Callable[..., tuple[int, int, int, int, int, int, int, int, int]]] = (
    _HEADER.unpack_from)
# Whole pieces, in Linux's packing.
_MSS: Final = struct.Struct("!BBH")  # 02 04 mss
_TS: Final = struct.Struct("!III")  # (01 01 | 04 02) 08 0a, TSval, TSecr
_WS: Final = struct.Struct("!I")  # 01 03 03 ws
_SACK_HEAD: Final = struct.Struct("!BBBB")  # 01 01 05 len
_SACK_BLOCKS: Final = tuple(struct.Struct("!" + "I" * (2 * n)) for n in range(MAX_SACK_BLOCKS + 1))

_NOP_NOP_TS: Final = 0x0101080A
_SACKOK_TS: Final = 0x0402080A
_NOP_NOP_SACKOK: Final = b"\x01\x01\x04\x02"
_WS_HEAD: Final = 0x01030300
_TS_ONLY_HEAD: Final = b"\x01\x01\x08\x0a"  # the option area of nearly every data segment
_MSS_HEAD: Final = b"\x02\x04"
_SACKOK_TS_HEAD: Final = b"\x04\x02\x08\x0a"
_WS_3: Final = b"\x01\x03\x03"
_SYN_OPTIONS_OUT: Final = struct.Struct("!BBHIIII")  # the same 20 bytes, as `encode` packs them
# 02 04 mss, 04 02 08 0a TSval TSecr, 01 03 03 ws
_SYN_OPTIONS: Final = struct.Struct("!2xH4xII3xB")

_FLAG_LETTERS = ((FIN, "F"), (SYN, "S"), (RST, "R"), (PSH, "P"), (ACK, "."), (URG, "U"))
_FLAG_LETTERS_ECN = ((ECE, "E"), (CWR, "W"))


def flags_str(flags: int) -> str:
    """tcpdump-style flag letters: ``SYN|ACK`` -> ``"S."``, none -> ``"none"``."""
    s = "".join(c for bit, c in _FLAG_LETTERS + _FLAG_LETTERS_ECN if flags & bit)
    return s or "none"


def _pseudo(src: bytes, dst: bytes, length: int) -> int:
    if len(src) == 4:
        return pseudo_header_v4(src, dst, PROTO_TCP, length)
    return pseudo_header_v6(src, dst, PROTO_TCP, length)


class TcpOptions:
    """The options TCP uses, as plain values; ``None`` / empty means absent.

    ``wscale`` is the raw shift count as sent (the engine clamps values above
    14 to 14, RFC 7323 2.3). ``sack_blocks`` are ``(left, right)`` edges,
    u32 as on the wire. ``timestamp`` is ``(TSval, TSecr)``.

    A value: never changed once built; equal (and hashing alike) when every field
    is. Written out rather than a frozen dataclass: one is built for nearly every
    segment parsed, and a dataclass's ``__init__`` is generated Python that the
    compiled build (vnet/compile_stack.py) calls as such, about 0.8 us each (a
    frozen one sets each field through ``object.__setattr__``); this one is
    compiled with the rest.
    """

    __slots__ = ("mss", "sack_blocks", "sack_permitted", "timestamp", "wscale")

    def __init__(self, mss: int | None = None, wscale: int | None = None,
                 sack_permitted: bool = False, sack_blocks: tuple[tuple[int, int], ...] = (),
                 timestamp: tuple[int, int] | None = None) -> None:
        self.mss = mss
        self.wscale = wscale
        self.sack_permitted = sack_permitted
        self.sack_blocks = sack_blocks
        self.timestamp = timestamp

    def _fields(self) -> tuple[int | None, int | None, bool, tuple[tuple[int, int], ...],
                               tuple[int, int] | None]:
        return (self.mss, self.wscale, self.sack_permitted, self.sack_blocks, self.timestamp)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TcpOptions):
            return NotImplemented
        return self._fields() == other._fields()

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, TcpOptions):
            return NotImplemented
        return self._fields() != other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (f"TcpOptions(mss={self.mss!r}, wscale={self.wscale!r}, "
                f"sack_permitted={self.sack_permitted!r}, sack_blocks={self.sack_blocks!r}, "
                f"timestamp={self.timestamp!r})")

    def _fixed_len(self) -> int:
        """Bytes used by everything but the SACK blocks."""
        n = 0
        if self.mss is not None:
            n += 4
        if self.timestamp is not None:
            n += 12
        elif self.sack_permitted:
            n += 4
        if self.wscale is not None:
            n += 4
        return n

    def _sack_count(self, used: int) -> int:
        """How many SACK blocks fit in the room ``used`` bytes leave."""
        if not self.sack_blocks:
            return 0
        fit = (MAX_OPTIONS_LEN - used - 4) // 8
        return max(0, min(len(self.sack_blocks), fit, MAX_SACK_BLOCKS))

    @property
    def encoded_len(self) -> int:
        """``len(self.encode())``, without encoding: always a multiple of 4, at most 40."""
        used = self._fixed_len()
        n = self._sack_count(used)
        return used + (4 + 8 * n if n else 0)

    def encode(self) -> bytes:
        """The option area in Linux's packing (see the module docstring)."""
        ts = self.timestamp
        if ts is not None and self.mss is None and self.wscale is None:
            if not self.sack_blocks and not self.sack_permitted:
                return _TS.pack(_NOP_NOP_TS, ts[0], ts[1])  # the data-segment fast path
        wscale = self.wscale
        if (ts is not None and self.mss is not None and self.sack_permitted
                and wscale is not None and 0 <= wscale <= 0xFF and not self.sack_blocks):
            # a SYN's options in Linux's packing, in one piece (what the general case builds)
            return _SYN_OPTIONS_OUT.pack(OPT_MSS, 4, self.mss, _SACKOK_TS, ts[0], ts[1],
                                         _WS_HEAD | wscale)
        out = bytearray()
        if self.mss is not None:
            out += _MSS.pack(OPT_MSS, 4, self.mss)
        if ts is not None:
            head = _SACKOK_TS if self.sack_permitted else _NOP_NOP_TS
            out += _TS.pack(head, ts[0], ts[1])
        elif self.sack_permitted:
            out += _NOP_NOP_SACKOK
        if self.wscale is not None:
            if not 0 <= self.wscale <= 0xFF:
                raise ValueError(f"window scale {self.wscale} does not fit in a byte")
            out += _WS.pack(_WS_HEAD | self.wscale)
        n = self._sack_count(len(out))
        if n:
            out += _SACK_HEAD.pack(OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * n)
            edges: list[int] = []
            for left, right in self.sack_blocks[:n]:
                edges.append(left & 0xFFFFFFFF)
                edges.append(right & 0xFFFFFFFF)
            out += _SACK_BLOCKS[n].pack(*edges)
        return bytes(out)


#: The options of a segment that carries none (shared; compare with ``is``).
NO_OPTIONS: Final = TcpOptions()


def _decode_options(o: bytes) -> TcpOptions | WireError:
    """Decode a whole option area (``o`` is its bytes, 1..40 long)."""
    n = len(o)
    if n == 12 and o.startswith(_TS_ONLY_HEAD):
        return TcpOptions(None, None, False, (), _U32X2.unpack_from(o, 4))
    if n == 20 and o[0:2] == _MSS_HEAD and o[4:8] == _SACKOK_TS_HEAD and o[16:19] == _WS_3:
        # a SYN in Linux's packing (MSS, SACK-permitted + timestamp, NOP + window scale)
        syn_mss, tsval, tsecr, syn_wscale = _SYN_OPTIONS.unpack(o)
        return TcpOptions(syn_mss, syn_wscale, True, (), (tsval, tsecr))
    mss: int | None = None
    wscale: int | None = None
    sack_permitted = False
    blocks: tuple[tuple[int, int], ...] = ()
    ts: tuple[int, int] | None = None
    i = 0
    while i < n:
        kind = o[i]
        if kind == OPT_NOP:
            i += 1
            continue
        if kind == OPT_EOL:
            break
        if i + 1 >= n:
            return WireError.BAD_OPTION
        length = o[i + 1]
        if length < 2 or i + length > n:
            return WireError.BAD_OPTION
        if kind == OPT_TIMESTAMP:
            if length != 10:
                return WireError.BAD_OPTION
            ts = _U32X2.unpack_from(o, i + 2)
        elif kind == OPT_MSS:
            if length != 4:
                return WireError.BAD_OPTION
            mss = (o[i + 2] << 8) | o[i + 3]
        elif kind == OPT_WSCALE:
            if length != 3:
                return WireError.BAD_OPTION
            wscale = o[i + 2]
        elif kind == OPT_SACK_PERM:
            if length != 2:
                return WireError.BAD_OPTION
            sack_permitted = True
        elif kind == OPT_SACK:
            count, rest = divmod(length - 2, 8)
            if rest or not 1 <= count <= MAX_SACK_BLOCKS:
                return WireError.BAD_OPTION
            edges = _SACK_BLOCKS[count].unpack_from(o, i + 2)
            blocks = tuple(zip(edges[::2], edges[1::2], strict=True))
        i += length
    return TcpOptions(mss, wscale, sack_permitted, blocks, ts)


class TcpPacket:
    """Zero-copy view of a TCP segment; fixed fields and options decoded once at ``parse``.

    ``buf`` is the whole segment; ``payload`` and ``options_area`` are
    memoryview slices of it. ``data_offset`` is in bytes (20..60).
    """

    __slots__ = (
        "ack",
        "buf",
        "checksum",
        "data_offset",
        "dst_port",
        "flags",
        "options",
        "seq",
        "src_port",
        "urgent",
        "window",
    )

    buf: memoryview
    src_port: int
    dst_port: int
    seq: int
    ack: int
    data_offset: int
    flags: int
    window: int
    checksum: int
    urgent: int
    options: TcpOptions

    def __init__(
        self,
        buf: memoryview,
        src_port: int,
        dst_port: int,
        seq: int,
        ack: int,
        data_offset: int,
        flags: int,
        window: int,
        checksum: int,
        urgent: int,
        options: TcpOptions,
    ) -> None:
        self.buf = buf
        self.src_port = src_port
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.data_offset = data_offset
        self.flags = flags
        self.window = window
        self.checksum = checksum
        self.urgent = urgent
        self.options = options

    @classmethod
    def parse(
        cls, buf: BytesLike, src: bytes, dst: bytes, *, verify_checksum: bool = True
    ) -> TcpPacket | WireError:
        n = len(buf)
        if n < HEADER_LEN:
            return WireError.TRUNCATED
        sport, dport, seq, ack, off, flags, window, csum, urgent = _unpack_header(buf)
        doff = (off >> 4) << 2
        if doff < HEADER_LEN:
            return WireError.BAD_LENGTH
        if doff > n:
            return WireError.TRUNCATED
        mv = buf if type(buf) is memoryview else memoryview(buf)
        if verify_checksum and ones_sum(mv, _pseudo(src, dst, n)) != 0xFFFF:
            return WireError.BAD_CHECKSUM
        if doff == HEADER_LEN:
            options = NO_OPTIONS
        elif doff == 32 and _U32.unpack_from(mv, HEADER_LEN)[0] == _NOP_NOP_TS:
            # the option area of nearly every segment after the SYNs: `_decode_options`'s
            # first case, without copying the area out
            options = TcpOptions(None, None, False, (), _U32X2.unpack_from(mv, 24))
        else:
            decoded = _decode_options(bytes(mv[HEADER_LEN:doff]))
            if isinstance(decoded, WireError):
                return decoded
            options = decoded
        # the class by name, not `cls`: compiled, a direct call of the native constructor
        # (through `cls` it goes by the type's Python entry point, arguments parsed)
        return TcpPacket(mv, sport, dport, seq, ack, doff, flags, window, csum, urgent, options)

    @property
    def payload(self) -> memoryview:
        return self.buf[self.data_offset :]

    @property
    def header(self) -> memoryview:
        return self.buf[: self.data_offset]

    @property
    def options_area(self) -> memoryview:
        """The raw option bytes (padding included)."""
        return self.buf[HEADER_LEN : self.data_offset]

    @property
    def seg_len(self) -> int:
        """RFC 9293 SEG.LEN: payload octets plus one each for SYN and FIN."""
        flags = self.flags
        return len(self.buf) - self.data_offset + ((flags >> 1) & 1) + (flags & FIN)

    def to_repr(self) -> TcpRepr:
        return TcpRepr(
            self.src_port,
            self.dst_port,
            self.seq,
            self.ack,
            self.flags,
            self.window,
            self.urgent,
            self.options,
        )

    def __repr__(self) -> str:
        return (
            f"<TcpPacket {self.src_port} > {self.dst_port} [{flags_str(self.flags)}]"
            f" seq={self.seq} ack={self.ack} win={self.window}"
            f" len={len(self.buf) - self.data_offset} {self.options}>"
        )


@dataclass(frozen=True, slots=True)
class TcpRepr:
    """A TCP header as plain values; the builder computes data offset and checksum.

    ``seq`` and ``ack`` are masked to 32 bits. ``window`` is the 16-bit field
    as sent (already scaled down by the engine).
    """

    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int
    urgent: int = 0
    options: TcpOptions = NO_OPTIONS

    @property
    def header_len(self) -> int:
        return HEADER_LEN + self.options.encoded_len

    def emit_into(
        self, buf: WritableBuffer, offset: int, payload_len: int, src: bytes, dst: bytes,
        *, checksum: bool = True,
    ) -> int:
        """Write the header; the payload must already follow it. Returns the payload offset.

        The payload's position depends on the options' length: allocate
        ``header_len + payload_len`` and put the payload at ``header_len``.
        ``checksum=False`` leaves the checksum field 0, for a checksum-partial
        super-frame (`stack.wire.gso`) that computes it only when materialised.
        """
        opts = b"" if self.options is NO_OPTIONS else self.options.encode()
        hlen = HEADER_LEN + len(opts)
        _HEADER.pack_into(
            buf,
            offset,
            self.src_port,
            self.dst_port,
            self.seq & 0xFFFFFFFF,
            self.ack & 0xFFFFFFFF,
            hlen << 2,  # (hlen // 4) << 4
            self.flags,
            self.window,
            0,
            self.urgent,
        )
        if opts:
            buf[offset + HEADER_LEN : offset + hlen] = opts
        if checksum:
            end = offset + hlen + payload_len
            csum = 0xFFFF - ones_sum(memoryview(buf)[offset:end],
                                     _pseudo(src, dst, end - offset))
            _U16.pack_into(buf, offset + FIELD_CHECKSUM, csum)
        return offset + hlen

    def build(self, payload: BytesLike, src: bytes, dst: bytes, *,
              checksum: bool = True) -> bytes:
        hlen = self.header_len
        if not checksum:  # the header alone, then one copy of the payload behind it
            head = bytearray(hlen)
            self.emit_into(head, 0, len(payload), src, dst, checksum=False)
            return bytes(head) + payload
        out = bytearray(hlen + len(payload))
        out[hlen:] = payload
        self.emit_into(out, 0, len(payload), src, dst, checksum=checksum)
        return bytes(out)


# --- the engine's segment builder ------------------------------------------------

def timestamp_option_area(tsval: int, tsecr: int) -> bytes:
    """The option area of a segment whose only option is the timestamp (NOP NOP TS):
    what ``TcpOptions(timestamp=(tsval, tsecr)).encode()`` gives, without the object."""
    return _TS.pack(_NOP_NOP_TS, tsval, tsecr)


def build_segment(src_port: int, dst_port: int, seq: int, ack: int, flags: int, window: int,
                  option_area: bytes, payload: BytesLike, src: bytes, dst: bytes, *,
                  checksum: bool = True) -> bytes:
    """The bytes ``TcpRepr(src_port, dst_port, seq, ack, flags, window, 0, options)
    .build(payload, src, dst, checksum=checksum)`` gives, where ``option_area`` is
    ``options.encode()`` (a multiple of 4 bytes, at most 40): the TCP engine's hot path,
    which builds neither the `TcpRepr` nor the `TcpOptions`."""
    hlen = HEADER_LEN + len(option_area)
    head = _pack_header(src_port, dst_port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, hlen << 2,
                        flags, window, 0, 0)
    if not checksum:
        return head + option_area + payload
    out = bytearray(head)
    out += option_area
    out += payload
    csum = 0xFFFF - ones_sum(memoryview(out), _pseudo(src, dst, len(out)))
    _U16.pack_into(out, FIELD_CHECKSUM, csum)
    return bytes(out)


def build_ts_segment(src_port: int, dst_port: int, seq: int, ack: int, flags: int,
                     window: int, tsval: int, tsecr: int, payload: BytesLike, src: bytes,
                     dst: bytes, *, checksum: bool = True) -> bytes:
    """`build_segment` with the option area ``timestamp_option_area(tsval, tsecr)`` (that
    of nearly every segment after the SYNs), header and option packed in one piece."""
    head = _pack_header_ts(src_port, dst_port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                           0x80, flags, window, 0, 0, _NOP_NOP_TS, tsval, tsecr)
    if not checksum:
        return head + payload
    out = bytearray(head)
    out += payload
    csum = 0xFFFF - ones_sum(memoryview(out), _pseudo(src, dst, len(out)))
    _U16.pack_into(out, FIELD_CHECKSUM, csum)
    return bytes(out)


#: The `TcpPacket.buf` of a `built_header` until its receiver gives it the segment.
_NO_SEGMENT: Final = memoryview(b"")


def options_of_area(option_area: bytes) -> TcpOptions:
    """The options `TcpPacket.parse` decodes from ``option_area``, an area
    `build_segment` takes (``options.encode()``: empty, or what `TcpOptions.encode`
    packs). ValueError for an area that does not decode."""
    if not option_area:
        return NO_OPTIONS
    if len(option_area) == 12 and _U32.unpack_from(option_area)[0] == _NOP_NOP_TS:
        return TcpOptions(None, None, False, (), _U32X2.unpack_from(option_area, 4))
    decoded = _decode_options(option_area)
    if isinstance(decoded, WireError):
        raise ValueError(f"option area {option_area.hex()}: {decoded.value}")
    return decoded


def built_header(src_port: int, dst_port: int, seq: int, ack: int, flags: int, window: int,
                 options: TcpOptions, option_len: int) -> TcpPacket:
    """The header `build_segment(src_port, dst_port, seq, ack, flags, window, area,
    payload, src, dst, checksum=False)` writes, as `TcpPacket.parse` (not verifying the
    checksum) reads it back, where ``options`` is ``options_of_area(area)`` and
    ``option_len`` is ``len(area)``: the checksum field 0, no urgent pointer, and no
    segment yet (``buf`` empty) -- whoever receives the frame whole sets ``buf`` to its
    view of the segment (`stack.wire.gso.GsoFrame.tcp_header`)."""
    return TcpPacket(_NO_SEGMENT, src_port, dst_port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                     HEADER_LEN + option_len, flags, window, 0, 0, options)
