"""Netlink messages as bytes: the codec of vnet's rtnetlink sockets (sans-IO).

Layouts are Linux's (little-endian, as on wasm32 and x86-64): a message is a
16-byte `struct nlmsghdr` (length, type, flags, sequence number, port id)
and a payload padded to 4 bytes; rtnetlink payloads start with a fixed
struct (`ifinfomsg`, `ifaddrmsg`, `rtmsg`) followed by attributes, each a
4-byte `struct rtattr` (length, type) and its data padded to 4 bytes.

Parsing follows the kernel's rules for what it receives: `split_messages`
stops at the first header whose length is shorter than a header or longer
than what is left (the kernel ignores the rest of the buffer silently), and
`parse_attributes` stops at the first attribute that does not fit (the
request then lacks it, and its handler answers EINVAL where it needs it).
Nothing here raises on bad input. Building: `message`, `attribute`,
`error_message` (NLMSG_ERROR, with the request echoed as Linux does) and
`done_message`. Touches nothing but the bytes it is given.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NLMSG_HEADER = struct.Struct("<IHHII")
NLMSG_HDRLEN = 16
RTATTR = struct.Struct("<HH")
IFINFOMSG = struct.Struct("<BxHiII")
IFADDRMSG = struct.Struct("<BBBBI")
RTMSG = struct.Struct("<BBBBBBBBI")
U32 = struct.Struct("<I")
I32 = struct.Struct("<i")

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLMSG_MIN_TYPE = 0x10

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLM_F_CAPPED = 0x100

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26
RTM_MAX = 115  # Linux 6.x: the last type of the last family (RTM_GETVLAN's group)

IFLA_ADDRESS = 1
IFLA_BROADCAST = 2
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_TXQLEN = 13
IFLA_OPERSTATE = 16
IFLA_LINKMODE = 17
IFLA_STATS64 = 23
IFLA_CARRIER = 33
IFLA_MIN_MTU = 50
IFLA_MAX_MTU = 51
IFLA_ALT_IFNAME = 53

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_CACHEINFO = 6
IFA_FLAGS = 8

RTA_DST = 1
RTA_SRC = 2
RTA_IIF = 3
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_PREFSRC = 7
RTA_TABLE = 15

IF_OPER_UNKNOWN = 0
IF_OPER_DOWN = 2
IF_OPER_UP = 6

IFA_F_PERMANENT = 0x80

RTN_UNSPEC = 0
RTN_UNICAST = 1
RTN_LOCAL = 2
RTN_BROADCAST = 3
RTPROT_UNSPEC = 0
RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_RA = 9
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255
RT_TABLE_UNSPEC = 0
RT_TABLE_COMPAT = 252
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255

ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 0xFFFE

#: rtnetlink multicast groups (RTNLGRP_*) and the bind() mask bit of each
RTNLGRP_LINK = 1
RTNLGRP_IPV4_IFADDR = 5
RTNLGRP_IPV4_ROUTE = 7
RTNLGRP_IPV6_IFADDR = 9
RTNLGRP_IPV6_ROUTE = 11


def group_bit(group: int) -> int:
    return 1 << (group - 1)


def align4(length: int) -> int:
    return (length + 3) & ~3


@dataclass(frozen=True, slots=True)
class NetlinkMessage:
    """One message of a request buffer: its header fields and payload (a view)."""

    msg_type: int
    flags: int
    seq: int
    port_id: int
    payload: memoryview
    raw: memoryview  # header and payload, as the request carried them


def split_messages(data: bytes | memoryview) -> tuple[list[NetlinkMessage], int]:
    """The messages of one datagram, as the kernel walks them (a bad length ends the
    walk), and how many bytes after them were ignored."""
    view = memoryview(data)
    out: list[NetlinkMessage] = []
    offset = 0
    while len(view) - offset >= NLMSG_HDRLEN:
        length, msg_type, flags, seq, port_id = NLMSG_HEADER.unpack_from(view, offset)
        if length < NLMSG_HDRLEN or length > len(view) - offset:
            break
        out.append(NetlinkMessage(msg_type, flags, seq, port_id,
                                  view[offset + NLMSG_HDRLEN:offset + length],
                                  view[offset:offset + length]))
        offset += align4(length)
    return out, max(0, len(view) - offset)


def parse_attributes(data: bytes | memoryview) -> dict[int, bytes]:
    """type (NLA_F_* bits cleared) → data of each attribute that fits; the last one wins."""
    view = memoryview(data)
    attrs: dict[int, bytes] = {}
    offset = 0
    while len(view) - offset >= RTATTR.size:
        length, attr_type = RTATTR.unpack_from(view, offset)
        if length < RTATTR.size or length > len(view) - offset:
            break
        attrs[attr_type & 0x3FFF] = bytes(view[offset + RTATTR.size:offset + length])
        offset += align4(length)
    return attrs


def attribute(attr_type: int, data: bytes) -> bytes:
    length = RTATTR.size + len(data)
    return RTATTR.pack(length, attr_type) + data + bytes(align4(length) - length)


def attribute_u32(attr_type: int, value: int) -> bytes:
    return attribute(attr_type, U32.pack(value & 0xFFFFFFFF))


def attribute_str(attr_type: int, text: str) -> bytes:
    return attribute(attr_type, text.encode() + b"\0")


def message(msg_type: int, flags: int, seq: int, port_id: int, body: bytes) -> bytes:
    length = NLMSG_HDRLEN + len(body)
    return (NLMSG_HEADER.pack(length, msg_type, flags, seq, port_id) + body
            + bytes(align4(length) - length))


def error_message(error: int, request: NetlinkMessage, port_id: int,
                  capped: bool = False) -> bytes:
    """NLMSG_ERROR for `request`: `error` is the negated errno (0: an ack).

    As Linux: an ack echoes the request's header only (NLM_F_CAPPED), an error the
    whole request, unless `capped` (NETLINK_CAP_ACK).
    """
    capped = capped or not error
    echoed = bytes(request.raw[:NLMSG_HDRLEN]) if capped else bytes(request.raw)
    flags = NLM_F_CAPPED if capped else 0
    return message(NLMSG_ERROR, flags, request.seq, port_id, I32.pack(error) + echoed)


def done_message(seq: int, port_id: int) -> bytes:
    return message(NLMSG_DONE, NLM_F_MULTI, seq, port_id, I32.pack(0))


def u32_of(value: bytes | None) -> int | None:
    """A u32 attribute's value, or None if absent or too short."""
    if value is None or len(value) < 4:
        return None
    return int(U32.unpack_from(value)[0])


def string_of(value: bytes | None) -> str | None:
    """A string attribute (NUL-terminated or not), or None if absent or not UTF-8."""
    if value is None:
        return None
    try:
        return value.split(b"\0", 1)[0].decode()
    except UnicodeDecodeError:
        return None
