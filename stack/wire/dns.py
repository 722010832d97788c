"""DNS messages (RFC 1035 §4): parse and build, with name compression both ways.

Layout of a message::

    0               16              32
    +---------------+---------------+
    |      ID       |QR|OP|AA|TC|RD|RA|Z|AD|CD| RCODE |
    +---------------+---------------+
    |   QDCOUNT     |   ANCOUNT     |
    |   NSCOUNT     |   ARCOUNT     |
    +---------------+---------------+
    questions:  NAME TYPE(16) CLASS(16)
    records:    NAME TYPE(16) CLASS(16) TTL(32) RDLENGTH(16) RDATA

Names are text: labels joined by dots, no trailing dot, the root is ``""``.
A label byte that is not a printable ASCII character other than ``.`` and
``\\`` is written ``\\DDD`` (decimal), ``.`` and ``\\`` as ``\\.`` and
``\\\\`` (RFC 4343's presentation format), so every name on the wire has one
text form and `build` turns it back into the same bytes. Case is kept
(compare with `name_key`).

Parsing (`parse`) never raises: it returns a `DnsMessage` or a `WireError`
member — ``TRUNCATED`` (the buffer ends inside the header, a question, a
record or a name), ``BAD_LENGTH`` (a name longer than 255 bytes, a label
longer than 63, an RDATA whose length disagrees with its type),
``BAD_OPTION`` (a compression pointer that does not point strictly before
the name it is in — which is what rules out every loop —, a reserved label
type). Record counts are bounded by the buffer: each record takes at least
11 bytes, so a header promising more than the buffer can hold is
``TRUNCATED`` before anything is allocated. Bytes after the last record
are ignored, as resolvers do.

Record data is decoded for A, AAAA (the address bytes), NS, CNAME, PTR (a
name), MX (preference, exchange), TXT (a tuple of byte strings), SRV
(priority, weight, port, target) and SOA (mname, rname, serial, refresh,
retry, expire, minimum); every other type, and EDNS0's OPT pseudo-record
(`OPT`, whose class is the sender's UDP payload size and whose TTL holds
the extended RCODE, version and DO bit), keeps its RDATA as bytes.
Compressed names inside RDATA (NS, CNAME, PTR, MX, SRV, SOA) are followed.

`DnsMessage.build(limit)` writes the message with every name compressed
against the names written before it. With a `limit` (512 for plain UDP, or
the EDNS0 payload size) a message that does not fit is cut to its header,
questions and OPT record with TC set, which tells the client to ask again
over TCP (RFC 2181 §9). Building takes sane values: a name with a label
over 63 bytes or a total over 255 raises ValueError (a programming error).

Touches nothing but bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import WireError

__all__ = [
    "CLASS_ANY", "CLASS_IN", "OPCODE_QUERY", "RCODE_FORMERR", "RCODE_NOERROR",
    "RCODE_NOTIMP", "RCODE_NXDOMAIN", "RCODE_REFUSED", "RCODE_SERVFAIL", "TYPE_A",
    "TYPE_AAAA", "TYPE_ANY", "TYPE_CNAME", "TYPE_MX", "TYPE_NS", "TYPE_OPT", "TYPE_PTR",
    "TYPE_SOA", "TYPE_SRV", "TYPE_TXT", "DnsMessage", "Question", "Record", "name_key",
    "parse", "reverse_name",
]

HEADER = struct.Struct("!HHHHHH")
_QTAIL = struct.Struct("!HH")
_RTAIL = struct.Struct("!HHIH")
_U16 = struct.Struct("!H")
_MX = struct.Struct("!H")
_SRV = struct.Struct("!HHH")
_SOA_TAIL = struct.Struct("!IIIII")

HEADER_LEN = 12
MAX_NAME_LEN = 255  # on the wire, with the length bytes and the root's 0
MAX_LABEL_LEN = 63
#: A record is at least a 1-byte name, type, class, TTL and RDLENGTH.
MIN_RECORD_LEN = 11
MIN_QUESTION_LEN = 5
UDP_PLAIN_LIMIT = 512

TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_PTR, TYPE_MX, TYPE_TXT = 1, 2, 5, 6, 12, 15, 16
TYPE_AAAA, TYPE_SRV, TYPE_OPT, TYPE_ANY = 28, 33, 41, 255
CLASS_IN, CLASS_ANY = 1, 255
OPCODE_QUERY = 0
RCODE_NOERROR, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN = 0, 1, 2, 3
RCODE_NOTIMP, RCODE_REFUSED = 4, 5

TYPE_NAMES = {TYPE_A: "A", TYPE_NS: "NS", TYPE_CNAME: "CNAME", TYPE_SOA: "SOA",
              TYPE_PTR: "PTR", TYPE_MX: "MX", TYPE_TXT: "TXT", TYPE_AAAA: "AAAA",
              TYPE_SRV: "SRV", TYPE_OPT: "OPT", TYPE_ANY: "ANY"}
TYPE_NUMBERS = {v: k for k, v in TYPE_NAMES.items()}

_NAME_TYPES = frozenset((TYPE_NS, TYPE_CNAME, TYPE_PTR))

#: Decoded RDATA: address bytes, a name, or a tuple (MX, SRV, SOA, TXT); raw bytes otherwise.
RData = (bytes | str | tuple[int, str] | tuple[int, int, int, str]
         | tuple[str, str, int, int, int, int, int] | tuple[bytes, ...])


def name_key(name: str) -> str:
    """The form two names compare in: ASCII lower case, no trailing dot."""
    return name.rstrip(".").lower() if name != "." else ""


@dataclass(frozen=True, slots=True)
class Question:
    name: str
    qtype: int
    qclass: int = CLASS_IN


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    rtype: int
    rclass: int
    ttl: int
    data: RData


@dataclass(frozen=True, slots=True)
class DnsMessage:
    """A whole message as plain values; `flags` fields are decoded."""

    id: int
    qr: bool = False
    opcode: int = OPCODE_QUERY
    aa: bool = False
    tc: bool = False
    rd: bool = False
    ra: bool = False
    ad: bool = False
    cd: bool = False
    rcode: int = RCODE_NOERROR
    questions: tuple[Question, ...] = ()
    answers: tuple[Record, ...] = ()
    authorities: tuple[Record, ...] = ()
    additionals: tuple[Record, ...] = field(default=())

    @property
    def flags(self) -> int:
        return ((self.qr << 15) | ((self.opcode & 0xF) << 11) | (self.aa << 10)
                | (self.tc << 9) | (self.rd << 8) | (self.ra << 7) | (self.ad << 5)
                | (self.cd << 4) | (self.rcode & 0xF))

    @property
    def opt(self) -> Record | None:
        """The EDNS0 OPT pseudo-record, if the message has one."""
        for record in self.additionals:
            if record.rtype == TYPE_OPT:
                return record
        return None

    def build(self, limit: int | None = None) -> bytes:
        """The wire form; over `limit` bytes: header, questions and OPT only, with TC."""
        out = _Writer()
        out.header(self)
        for q in self.questions:
            out.name(q.name)
            out.buf += _QTAIL.pack(q.qtype, q.qclass)
        for r in self.answers + self.authorities + self.additionals:
            out.record(r)
        if limit is None or len(out.buf) <= limit:
            return bytes(out.buf)
        opt = self.opt
        cut = replace(self, tc=True, answers=(), authorities=(),
                      additionals=(opt,) if opt is not None else ())
        return cut.build()


class _Writer:
    __slots__ = ("buf", "offsets")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.offsets: dict[str, int] = {}  # name_key of a suffix -> where it was written

    def header(self, m: DnsMessage) -> None:
        self.buf += HEADER.pack(m.id, m.flags, len(m.questions), len(m.answers),
                                len(m.authorities), len(m.additionals))

    def name(self, name: str, compress: bool = True) -> None:
        labels = _labels(name)
        if sum(len(label) + 1 for label in labels) + 1 > MAX_NAME_LEN:
            raise ValueError(f"name too long: {name!r}")
        buf = self.buf
        for i in range(len(labels)):
            suffix = b".".join(labels[i:]).lower().decode("latin-1")
            if compress:
                at = self.offsets.get(suffix)
                if at is not None:
                    buf += _U16.pack(0xC000 | at)
                    return
            if len(buf) < 0x4000:
                self.offsets.setdefault(suffix, len(buf))
            buf.append(len(labels[i]))
            buf += labels[i]
        buf.append(0)

    def record(self, r: Record) -> None:
        self.name(r.name)
        buf = self.buf
        at = len(buf)
        buf += _RTAIL.pack(r.rtype, r.rclass, r.ttl, 0)
        start = len(buf)
        data = r.data
        t = r.rtype
        if t in _NAME_TYPES:
            self.name(_as(str, data))
        elif t == TYPE_MX:
            pref, exchange = _as(tuple, data)
            buf += _MX.pack(pref)
            self.name(exchange)
        elif t == TYPE_SRV:
            prio, weight, port, target = _as(tuple, data)
            buf += _SRV.pack(prio, weight, port)
            self.name(target, compress=False)  # RFC 2782: no compression in SRV
        elif t == TYPE_SOA:
            mname, rname, *numbers = _as(tuple, data)
            self.name(mname)
            self.name(rname)
            buf += _SOA_TAIL.pack(*numbers)
        elif t == TYPE_TXT and isinstance(data, tuple):
            for chunk in data:
                if not isinstance(chunk, bytes):
                    raise ValueError("TXT strings are bytes")
                if len(chunk) > 255:
                    raise ValueError("TXT string over 255 bytes")
                buf.append(len(chunk))
                buf += chunk
        else:
            buf += _as(bytes, data)
        length = len(buf) - start
        if length > 0xFFFF:
            raise ValueError("RDATA over 65535 bytes")
        _U16.pack_into(buf, at + 8, length)


def _as(kind: type, value: object) -> Any:
    if not isinstance(value, kind):
        raise ValueError(f"record data {value!r} is not a {kind.__name__}")
    return value


# --- names as text -------------------------------------------------------------------
_PLAIN = frozenset(range(0x21, 0x7F)) - {ord("."), ord("\\")}


def _label_text(label: bytes | memoryview) -> str:
    parts = []
    for byte in bytes(label):
        if byte in _PLAIN:
            parts.append(chr(byte))
        elif byte in (0x2E, 0x5C):
            parts.append("\\" + chr(byte))
        else:
            parts.append(f"\\{byte:03d}")
    return "".join(parts)


def _labels(name: str) -> list[bytes]:
    """The labels of a name in text form (escapes undone); ValueError if impossible."""
    if name in ("", "."):
        return []
    if name.endswith(".") and not name.endswith("\\."):
        name = name[:-1]
    labels: list[bytes] = []
    current = bytearray()
    i = 0
    while i < len(name):
        c = name[i]
        if c == "\\":
            nxt = name[i + 1:i + 4]
            if len(nxt) == 3 and nxt.isdigit():
                value = int(nxt)
                if value > 255:
                    raise ValueError(f"bad escape in {name!r}")
                current.append(value)
                i += 4
                continue
            if len(nxt) >= 1:
                current += nxt[0].encode("latin-1")
                i += 2
                continue
            raise ValueError(f"trailing backslash in {name!r}")
        if c == ".":
            labels.append(bytes(current))
            current = bytearray()
        else:
            current += c.encode("latin-1")
        i += 1
    labels.append(bytes(current))
    for label in labels:
        if not 0 < len(label) <= MAX_LABEL_LEN:
            raise ValueError(f"bad label length in {name!r}")
    return labels


def reverse_name(address: bytes) -> str:
    """The in-addr.arpa / ip6.arpa name PTR queries ask for `address` (4 or 16 bytes)."""
    if len(address) == 4:
        return ".".join(str(b) for b in reversed(address)) + ".in-addr.arpa"
    return ".".join(reversed(address.hex())) + ".ip6.arpa"


# --- parsing -----------------------------------------------------------------------
class _Malformed(Exception):
    def __init__(self, reason: WireError) -> None:
        self.reason = reason


def _read_name(buf: memoryview, offset: int) -> tuple[str, int]:
    """The name at `offset` and the offset after it (in the original, uncompressed flow)."""
    labels: list[str] = []
    total = 1
    end = -1
    pos = offset
    floor = offset  # a pointer must go strictly before the label sequence it is in
    size = len(buf)
    while True:
        if pos >= size:
            raise _Malformed(WireError.TRUNCATED)
        length = buf[pos]
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= size:
                raise _Malformed(WireError.TRUNCATED)
            target = ((length & 0x3F) << 8) | buf[pos + 1]
            if end < 0:
                end = pos + 2
            if target >= floor:
                raise _Malformed(WireError.BAD_OPTION)
            pos = floor = target
            continue
        if kind:
            raise _Malformed(WireError.BAD_OPTION)  # 0x40 / 0x80: reserved label types
        if length == 0:
            return ".".join(labels), (end if end >= 0 else pos + 1)
        total += length + 1
        if total > MAX_NAME_LEN:
            raise _Malformed(WireError.BAD_LENGTH)
        if pos + 1 + length > size:
            raise _Malformed(WireError.TRUNCATED)
        labels.append(_label_text(buf[pos + 1:pos + 1 + length]))
        pos += 1 + length


def _rdata(buf: memoryview, rtype: int, start: int, length: int) -> RData:
    end = start + length
    if rtype == TYPE_A or rtype == TYPE_AAAA:
        if length != (4 if rtype == TYPE_A else 16):
            raise _Malformed(WireError.BAD_LENGTH)
        return bytes(buf[start:end])
    if rtype in _NAME_TYPES:
        name, after = _read_name(buf, start)
        if after != end:
            raise _Malformed(WireError.BAD_LENGTH)
        return name
    if rtype == TYPE_MX:
        if length < 3:
            raise _Malformed(WireError.BAD_LENGTH)
        exchange, after = _read_name(buf, start + 2)
        if after != end:
            raise _Malformed(WireError.BAD_LENGTH)
        return (_MX.unpack_from(buf, start)[0], exchange)
    if rtype == TYPE_SRV:
        if length < 7:
            raise _Malformed(WireError.BAD_LENGTH)
        prio, weight, port = _SRV.unpack_from(buf, start)
        target, after = _read_name(buf, start + 6)
        if after != end:
            raise _Malformed(WireError.BAD_LENGTH)
        return (prio, weight, port, target)
    if rtype == TYPE_SOA:
        mname, after = _read_name(buf, start)
        rname, after = _read_name(buf, after)
        if after + _SOA_TAIL.size != end:
            raise _Malformed(WireError.BAD_LENGTH)
        return (mname, rname, *_SOA_TAIL.unpack_from(buf, after))
    if rtype == TYPE_TXT:
        chunks = []
        pos = start
        while pos < end:
            n = buf[pos]
            if pos + 1 + n > end:
                raise _Malformed(WireError.BAD_LENGTH)
            chunks.append(bytes(buf[pos + 1:pos + 1 + n]))
            pos += 1 + n
        return tuple(chunks)
    return bytes(buf[start:end])


def parse(data: bytes | bytearray | memoryview) -> DnsMessage | WireError:
    """A whole DNS message, or why it is not one (see the module docstring)."""
    buf = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    size = len(buf)
    if size < HEADER_LEN:
        return WireError.TRUNCATED
    ident, flags, qd, an, ns, ar = HEADER.unpack_from(buf, 0)
    if qd * MIN_QUESTION_LEN + (an + ns + ar) * MIN_RECORD_LEN > size - HEADER_LEN:
        return WireError.TRUNCATED
    try:
        pos = HEADER_LEN
        questions = []
        for _ in range(qd):
            name, pos = _read_name(buf, pos)
            if pos + 4 > size:
                return WireError.TRUNCATED
            qtype, qclass = _QTAIL.unpack_from(buf, pos)
            pos += 4
            questions.append(Question(name, qtype, qclass))
        sections: list[list[Record]] = [[], [], []]
        for section, count in zip(sections, (an, ns, ar), strict=True):
            for _ in range(count):
                name, pos = _read_name(buf, pos)
                if pos + _RTAIL.size > size:
                    return WireError.TRUNCATED
                rtype, rclass, ttl, rdlength = _RTAIL.unpack_from(buf, pos)
                pos += _RTAIL.size
                if pos + rdlength > size:
                    return WireError.TRUNCATED
                section.append(Record(name, rtype, rclass, ttl,
                                      _rdata(buf, rtype, pos, rdlength)))
                pos += rdlength
    except _Malformed as e:
        return e.reason
    return DnsMessage(
        id=ident, qr=bool(flags & 0x8000), opcode=(flags >> 11) & 0xF,
        aa=bool(flags & 0x400), tc=bool(flags & 0x200), rd=bool(flags & 0x100),
        ra=bool(flags & 0x80), ad=bool(flags & 0x20), cd=bool(flags & 0x10),
        rcode=flags & 0xF, questions=tuple(questions), answers=tuple(sections[0]),
        authorities=tuple(sections[1]), additionals=tuple(sections[2]))


def parse_header(data: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """(id, flags) of whatever starts with a DNS header (for a FORMERR answer), else None."""
    if len(data) < HEADER_LEN:
        return None
    ident, flags = struct.unpack_from("!HH", data, 0)
    return ident, flags
