"""Ethernet II frames, with 802.1Q VLAN tags and 802.1ad (QinQ) service tags.

Touches nothing but bytes. A frame here has no preamble and no FCS (as in a
pcap with LINKTYPE_ETHERNET). Parsing is permissive: only a frame too short
for its header (and tags) or with more tags than ``MAX_TAGS`` is an error, so
a switch can forward frames whose payload it does not understand. An
EtherType below 0x0600 is an 802.3 length field and is reported as is.

Wire layout::

    0       6       12          14 (untagged)
    | dst   | src   | ethertype | payload ...
                    | TPID | TCI | ethertype | payload ...   (one tag, 18)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._types import BytesLike, WritableBuffer
from .errors import WireError

# Field offsets.
FIELD_DST = 0
FIELD_SRC = 6
FIELD_ETHERTYPE = 12
HEADER_LEN = 14
TAG_LEN = 4
MAX_TAGS = 2
MIN_FRAME_LEN = 60  # without FCS; shorter frames are padded by real NICs

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100  # 802.1Q customer tag
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_QINQ = 0x88A8  # 802.1ad service tag
ETHERTYPE_MIN = 0x0600  # smaller values are 802.3 lengths, not EtherTypes

BROADCAST = b"\xff" * 6

_HEADER = struct.Struct("!6s6sH")
_TAG = struct.Struct("!HH")  # TCI, next ethertype (TPID already read)
_U16 = struct.Struct("!H")
_TPIDS = (ETHERTYPE_VLAN, ETHERTYPE_QINQ)


@dataclass(frozen=True, slots=True)
class VlanTag:
    """One 802.1Q/802.1ad tag: VLAN id, priority code point, drop-eligible bit."""

    vid: int
    pcp: int = 0
    dei: bool = False
    tpid: int = ETHERTYPE_VLAN

    @property
    def tci(self) -> int:
        return (self.pcp & 7) << 13 | (0x1000 if self.dei else 0) | (self.vid & 0xFFF)

    @classmethod
    def from_tci(cls, tpid: int, tci: int) -> VlanTag:
        return cls(vid=tci & 0xFFF, pcp=tci >> 13, dei=bool(tci & 0x1000), tpid=tpid)


_NO_TAGS: tuple[VlanTag, ...] = ()


class EthernetFrame:
    """Zero-copy view of an Ethernet II frame. Build one with ``EthernetFrame.parse``.

    ``ethertype`` is the EtherType of the payload (after any tags); ``tags``
    lists the VLAN tags outermost first.
    """

    __slots__ = ("buf", "dst", "ethertype", "header_len", "src", "tags")

    buf: memoryview
    dst: bytes
    src: bytes
    ethertype: int
    tags: tuple[VlanTag, ...]
    header_len: int

    def __init__(
        self,
        buf: memoryview,
        dst: bytes,
        src: bytes,
        ethertype: int,
        tags: tuple[VlanTag, ...],
        header_len: int,
    ) -> None:
        self.buf = buf
        self.dst = dst
        self.src = src
        self.ethertype = ethertype
        self.tags = tags
        self.header_len = header_len

    @classmethod
    def parse(cls, buf: BytesLike) -> EthernetFrame | WireError:
        n = len(buf)
        if n < HEADER_LEN:
            return WireError.TRUNCATED
        dst, src, ethertype = _HEADER.unpack_from(buf)
        if ethertype != ETHERTYPE_VLAN and ethertype != ETHERTYPE_QINQ:
            return cls(memoryview(buf), dst, src, ethertype, _NO_TAGS, HEADER_LEN)
        tags: list[VlanTag] = []
        offset = FIELD_ETHERTYPE
        while ethertype in _TPIDS:
            if len(tags) == MAX_TAGS:
                return WireError.TOO_MANY_HEADERS
            if n < offset + 2 + TAG_LEN:
                return WireError.TRUNCATED
            tci, next_type = _TAG.unpack_from(buf, offset + 2)
            tags.append(VlanTag.from_tci(ethertype, tci))
            ethertype = next_type
            offset += TAG_LEN
        return cls(memoryview(buf), dst, src, ethertype, tuple(tags), offset + 2)

    @property
    def payload(self) -> memoryview:
        """Everything after the header, Ethernet padding included."""
        return self.buf[self.header_len :]

    @property
    def vlan_id(self) -> int | None:
        """VID of the outermost tag (the one a switch port acts on), None if untagged."""
        return self.tags[0].vid if self.tags else None

    def to_repr(self) -> EthernetRepr:
        return EthernetRepr(dst=self.dst, src=self.src, ethertype=self.ethertype, tags=self.tags)

    def __repr__(self) -> str:
        tags = "".join(f" vlan={t.vid}" for t in self.tags)
        return (
            f"<EthernetFrame {mac_to_str(self.src)} > {mac_to_str(self.dst)}"
            f" type=0x{self.ethertype:04x}{tags} len={len(self.buf)}>"
        )


@dataclass(frozen=True, slots=True)
class EthernetRepr:
    """An Ethernet II header as plain values; ``tags`` outermost first."""

    dst: bytes
    src: bytes
    ethertype: int
    tags: tuple[VlanTag, ...] = ()

    @property
    def header_len(self) -> int:
        return HEADER_LEN + TAG_LEN * len(self.tags)

    def emit_into(self, buf: WritableBuffer, offset: int) -> int:
        """Write the header at ``offset``; return the offset of the payload."""
        if not self.tags:
            _HEADER.pack_into(buf, offset, self.dst, self.src, self.ethertype)
            return offset + HEADER_LEN
        buf[offset : offset + 6] = self.dst
        buf[offset + 6 : offset + 12] = self.src
        pos = offset + FIELD_ETHERTYPE
        for tag in self.tags:
            _U16.pack_into(buf, pos, tag.tpid)
            _U16.pack_into(buf, pos + 2, tag.tci)
            pos += TAG_LEN
        _U16.pack_into(buf, pos, self.ethertype)
        return pos + 2

    def build(self, payload: BytesLike = b"", *, pad: bool = False) -> bytes:
        """Header + payload; with ``pad``, zero-pad to the 60-byte minimum frame."""
        hlen = self.header_len
        size = hlen + len(payload)
        if pad and size < MIN_FRAME_LEN:
            size = MIN_FRAME_LEN
        out = bytearray(size)
        self.emit_into(out, 0)
        out[hlen : hlen + len(payload)] = payload
        return bytes(out)


def mac_to_str(mac: BytesLike) -> str:
    """``b"\\x02\\0\\0\\0\\0\\1"`` -> ``"02:00:00:00:00:01"``."""
    return bytes(mac).hex(":")


def mac_from_str(text: str) -> bytes:
    """``"02:00:00:00:00:01"`` (or with ``-``) -> 6 raw bytes."""
    mac = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(mac) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return mac


def is_multicast_mac(mac: bytes) -> bool:
    """Group bit set (broadcast included)."""
    return bool(mac[0] & 1)


def multicast_mac_v4(group: bytes) -> bytes:
    """RFC 1112 mapping: 01:00:5e + low 23 bits of the IPv4 group."""
    return b"\x01\x00\x5e" + bytes((group[1] & 0x7F, group[2], group[3]))


def multicast_mac_v6(group: bytes) -> bytes:
    """RFC 2464 mapping: 33:33 + low 32 bits of the IPv6 group."""
    return b"\x33\x33" + group[12:16]
