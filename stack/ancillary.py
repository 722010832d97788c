"""Ancillary data of received datagrams (recvmsg's control messages), as Linux gives it.

What it is
----------
The socket options that ask for per-datagram information — IP_PKTINFO,
IP_RECVTTL, IP_RECVTOS, IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT,
IPV6_RECVTCLASS, SO_TIMESTAMP, SO_TIMESTAMPNS — and the control messages
they produce. A socket keeps them as one bit mask (`recv_ancillary`, 0 when
none is set); only then does the UDP layer record an `Arrival` with each
queued datagram, so sockets that never ask pay nothing on the receive path.

`control_messages` turns an Arrival into `(level, type, data)` records in
Linux's order and layouts: the timestamp first (sock_recv_cmsgs), then for
an AF_INET6 socket IPV6_PKTINFO (ip6_datagram_recv_common_ctl, IPv4 traffic
shown v4-mapped), then for IPv4 traffic IP_PKTINFO, IP_TTL, IP_TOS
(ip_cmsg_recv_offset), for IPv6 traffic IPV6_HOPLIMIT, IPV6_TCLASS
(ip6_datagram_recv_specific_ctl). Data layouts are the C structs both
wasm32 and x86-64 share: `struct in_pktinfo` (12 bytes), `struct
in6_pktinfo` (20), int, one byte (IP_TOS), `struct timeval`/`timespec` as
two 64-bit fields. Times are the stack's clock (`driver.now_ns()`); the
caller gives the offset to the wall clock. Sans-IO; touches nothing.
"""

from __future__ import annotations

import errno
import socket as s
import struct
from dataclasses import dataclass

from .oserror import os_error

SOL_SOCKET = s.SOL_SOCKET
IPPROTO_IP = s.IPPROTO_IP
IPPROTO_IPV6 = s.IPPROTO_IPV6

# Linux's option numbers (the same on every architecture vnet guests see)
SO_TIMESTAMP = 29  # = SCM_TIMESTAMP
SO_TIMESTAMPNS = 35  # = SCM_TIMESTAMPNS
IP_TOS = 1
IP_TTL = 2
IP_PKTINFO = 8
IP_RECVTTL = 12
IP_RECVTOS = 13
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
IPV6_RECVHOPLIMIT = 51
IPV6_HOPLIMIT = 52
IPV6_RECVTCLASS = 66
IPV6_TCLASS = 67

# bits of UdpSocket.recv_ancillary
PKTINFO_V4 = 1 << 0
TTL_V4 = 1 << 1
TOS_V4 = 1 << 2
PKTINFO_V6 = 1 << 3
HOPLIMIT_V6 = 1 << 4
TCLASS_V6 = 1 << 5
TIMESTAMP = 1 << 6
TIMESTAMPNS = 1 << 7

#: (level, option) -> its bit, for the boolean options
OPTION_BITS: dict[tuple[int, int], int] = {
    (IPPROTO_IP, IP_PKTINFO): PKTINFO_V4,
    (IPPROTO_IP, IP_RECVTTL): TTL_V4,
    (IPPROTO_IP, IP_RECVTOS): TOS_V4,
    (IPPROTO_IPV6, IPV6_RECVPKTINFO): PKTINFO_V6,
    (IPPROTO_IPV6, IPV6_RECVHOPLIMIT): HOPLIMIT_V6,
    (IPPROTO_IPV6, IPV6_RECVTCLASS): TCLASS_V6,
    (SOL_SOCKET, SO_TIMESTAMP): TIMESTAMP,
    (SOL_SOCKET, SO_TIMESTAMPNS): TIMESTAMPNS,
}

_IN_PKTINFO = struct.Struct("<i4s4s")  # ipi_ifindex, ipi_spec_dst, ipi_addr
_IN6_PKTINFO = struct.Struct("<16sI")  # ipi6_addr, ipi6_ifindex
_INT = struct.Struct("<i")
_TIME = struct.Struct("<qq")  # tv_sec, tv_usec / tv_nsec: 64-bit on wasm32-wasi and x86-64


@dataclass(slots=True)
class Arrival:
    """What recvmsg may report about one datagram, recorded when it was queued."""

    version: int  # 4 or 6
    dst: bytes  # the destination address in its header (4 or 16 bytes)
    spec_dst: bytes  # IPv4: the local address a reply would come from (ipi_spec_dst)
    ifindex: int
    ttl: int  # TTL or hop limit
    tos: int  # TOS byte or traffic class
    time_ns: int  # the stack's clock when it was queued


def set_option(flags: int, level: int, name: int, raw: bytes) -> int:
    """The new flag mask after setsockopt(level, name) with the option's bytes.

    IPv4 options take an int or a single byte (ip_setsockopt); the others
    need an int (EINVAL for less). Any non-zero value sets the option.
    SO_TIMESTAMP clears SO_TIMESTAMPNS; SO_TIMESTAMPNS sets both; turning
    either off turns both off (Linux's sock_set_timestamp).
    """
    if len(raw) >= 4:
        on = _INT.unpack_from(raw)[0] != 0
    elif level == IPPROTO_IP and len(raw) >= 1:
        on = raw[0] != 0
    else:
        raise os_error(errno.EINVAL)
    bit = OPTION_BITS[(level, name)]
    if bit in (TIMESTAMP, TIMESTAMPNS):
        flags &= ~(TIMESTAMP | TIMESTAMPNS)
        if on:
            flags |= TIMESTAMP | (TIMESTAMPNS if bit == TIMESTAMPNS else 0)
        return flags
    return flags | bit if on else flags & ~bit


def get_option(flags: int, level: int, name: int) -> int:
    bit = OPTION_BITS[(level, name)]
    if bit == TIMESTAMP:
        return int(bool(flags & TIMESTAMP) and not flags & TIMESTAMPNS)
    return int(bool(flags & bit))


def _mapped(addr: bytes) -> bytes:
    return addr if len(addr) == 16 else b"\0" * 10 + b"\xff\xff" + addr


def control_messages(flags: int, family_v6: bool, arrival: Arrival,
                     realtime_offset_ns: int) -> list[tuple[int, int, bytes]]:
    """The control messages Linux gives for this datagram, in Linux's order."""
    out: list[tuple[int, int, bytes]] = []
    if flags & TIMESTAMP:
        wall = arrival.time_ns + realtime_offset_ns
        if flags & TIMESTAMPNS:
            out.append((SOL_SOCKET, SO_TIMESTAMPNS, _TIME.pack(*divmod(wall, 1_000_000_000))))
        else:
            sec, nsec = divmod(wall, 1_000_000_000)
            out.append((SOL_SOCKET, SO_TIMESTAMP, _TIME.pack(sec, nsec // 1000)))
    if family_v6 and flags & PKTINFO_V6:
        out.append((IPPROTO_IPV6, IPV6_PKTINFO,
                    _IN6_PKTINFO.pack(_mapped(arrival.dst), arrival.ifindex)))
    if arrival.version == 4:
        if flags & PKTINFO_V4:
            out.append((IPPROTO_IP, IP_PKTINFO,
                        _IN_PKTINFO.pack(arrival.ifindex, arrival.spec_dst, arrival.dst)))
        if flags & TTL_V4:
            out.append((IPPROTO_IP, IP_TTL, _INT.pack(arrival.ttl)))
        if flags & TOS_V4:
            out.append((IPPROTO_IP, IP_TOS, bytes([arrival.tos & 0xFF])))
    elif family_v6:
        if flags & HOPLIMIT_V6:
            out.append((IPPROTO_IPV6, IPV6_HOPLIMIT, _INT.pack(arrival.ttl)))
        if flags & TCLASS_V6:
            out.append((IPPROTO_IPV6, IPV6_TCLASS, _INT.pack(arrival.tos & 0xFF)))
    return out
