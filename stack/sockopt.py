"""setsockopt/getsockopt for stack sockets, with Linux's option numbers and semantics.

One implementation serves the scripted-host API and the guest ABI. Levels and
names are Linux's (Python's `socket` constants on Linux); values are ints or
the raw option bytes (`struct ip_mreq`, `struct ipv6_mreq`, an interface name
…). Errors are OSError with Linux errno: ENOPROTOOPT for an option this socket
type does not have, EINVAL for a bad value. Touches only the socket and its
stack.
"""

from __future__ import annotations

import errno
import os
import socket as s
import struct
from typing import Any

from .udp import AF_INET, UdpSocket

SO_REUSEPORT = getattr(s, "SO_REUSEPORT", 15)
SO_BINDTODEVICE = getattr(s, "SO_BINDTODEVICE", 25)
IP_MULTICAST_ALL = getattr(s, "IP_MULTICAST_ALL", 49)
IPV6_JOIN_GROUP = getattr(s, "IPV6_JOIN_GROUP", 20)
IPV6_LEAVE_GROUP = getattr(s, "IPV6_LEAVE_GROUP", 21)
SOCK_MIN_RCVBUF = 2304
SOCK_MIN_SNDBUF = 4608
BUF_MAX = 16 * 1024 * 1024  # like a raised net.core.rmem_max


def _err(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _int(value: int | bytes) -> int:
    if isinstance(value, int):
        return value
    if len(value) >= 4:
        return int(struct.unpack_from("<i", value)[0])
    if len(value) == 1:
        return value[0]
    raise _err(errno.EINVAL)


def _ifindex_for_address(sock: Any, addr: bytes) -> int | None:
    if addr == bytes(4):
        return None
    for iface in sock.layer.stack.interfaces.values():
        if iface.has_address(addr):
            return int(iface.index)
    raise _err(errno.EADDRNOTAVAIL)


def setsockopt(sock: UdpSocket, level: int, name: int, value: int | bytes) -> None:
    if level == s.SOL_SOCKET:
        if name == s.SO_REUSEADDR:
            sock.reuseaddr = bool(_int(value))
        elif name == SO_REUSEPORT:
            sock.reuseport = bool(_int(value))
        elif name == s.SO_BROADCAST:
            sock.broadcast = bool(_int(value))
        elif name == s.SO_RCVBUF:
            sock.rcvbuf = max(SOCK_MIN_RCVBUF, min(BUF_MAX, 2 * max(0, _int(value))))
        elif name == s.SO_SNDBUF:
            sock.sndbuf = max(SOCK_MIN_SNDBUF, min(BUF_MAX, 2 * max(0, _int(value))))
        elif name == SO_BINDTODEVICE:
            raw = value if isinstance(value, bytes) else b""
            devname = raw.split(b"\0", 1)[0].decode(errors="replace")
            if not devname:
                sock.bound_device = None
            else:
                try:
                    sock.bound_device = sock.layer.stack.interface(devname).index
                except KeyError:
                    raise _err(errno.ENODEV) from None
        elif name in (s.SO_KEEPALIVE, s.SO_LINGER, s.SO_RCVTIMEO, s.SO_SNDTIMEO):
            return  # meaningful for stream sockets / handled by the blocking layer
        else:
            raise _err(errno.ENOPROTOOPT)
        return
    if level == s.IPPROTO_IP:
        if sock.family != AF_INET and name not in (s.IP_TTL, s.IP_TOS, s.IP_MULTICAST_TTL,
                                                   s.IP_MULTICAST_LOOP):
            raise _err(errno.ENOPROTOOPT)
        if name == s.IP_TTL:
            ttl = _int(value)
            if ttl == -1:
                sock.ttl = None
            elif not 1 <= ttl <= 255:
                raise _err(errno.EINVAL)
            else:
                sock.ttl = ttl
        elif name == s.IP_TOS:
            sock.tos = _int(value) & 0xFF
        elif name == s.IP_MULTICAST_TTL:
            ttl = _int(value)
            if ttl == -1:
                ttl = 1
            if not 0 <= ttl <= 255:
                raise _err(errno.EINVAL)
            sock.multicast_ttl = ttl
        elif name == s.IP_MULTICAST_LOOP:
            sock.multicast_loop = bool(_int(value))
        elif name == IP_MULTICAST_ALL:
            sock.multicast_all = bool(_int(value))
        elif name == s.IP_MULTICAST_IF:
            if isinstance(value, int) or len(value) < 4:
                raise _err(errno.EINVAL)
            if len(value) >= 12:  # struct ip_mreqn: group, address, ifindex
                ifindex = struct.unpack_from("<i", value, 8)[0]
                sock.multicast_if = ifindex or _ifindex_for_address(sock, value[4:8])
                sock.multicast_if_addr = None
            else:
                sock.multicast_if = _ifindex_for_address(sock, value[:4])
                sock.multicast_if_addr = value[:4] if value[:4] != bytes(4) else None
        elif name in (s.IP_ADD_MEMBERSHIP, s.IP_DROP_MEMBERSHIP):
            if isinstance(value, int) or len(value) < 8:
                raise _err(errno.EINVAL)
            group = value[:4]
            if len(value) >= 12:
                ifindex = struct.unpack_from("<i", value, 8)[0] or _ifindex_for_address(
                    sock, value[4:8])
            else:
                ifindex = _ifindex_for_address(sock, value[4:8])
            if name == s.IP_ADD_MEMBERSHIP:
                sock.join_group(group, ifindex)
            else:
                sock.leave_group(group, ifindex)
        else:
            raise _err(errno.ENOPROTOOPT)
        return
    if level == s.IPPROTO_IPV6:
        if sock.family == AF_INET:
            raise _err(errno.ENOPROTOOPT)
        if name == s.IPV6_V6ONLY:
            if sock.local_addr is not None:
                raise _err(errno.EINVAL)
            sock.v6only = bool(_int(value))
        elif name == s.IPV6_UNICAST_HOPS:
            hops = _int(value)
            if not -1 <= hops <= 255:
                raise _err(errno.EINVAL)
            sock.ttl = None if hops == -1 else hops
        elif name == s.IPV6_MULTICAST_HOPS:
            hops = _int(value)
            if not -1 <= hops <= 255:
                raise _err(errno.EINVAL)
            sock.multicast_ttl = 1 if hops == -1 else hops
        elif name == s.IPV6_MULTICAST_LOOP:
            loop = _int(value)
            if loop not in (0, 1):
                raise _err(errno.EINVAL)
            sock.multicast_loop = bool(loop)
        elif name == s.IPV6_MULTICAST_IF:
            ifindex = _int(value)
            if ifindex and ifindex not in sock.layer.stack.interfaces:
                raise _err(errno.ENODEV)
            sock.multicast_if = ifindex or None
        elif name in (IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP):
            if isinstance(value, int) or len(value) < 20:
                raise _err(errno.EINVAL)
            group = value[:16]
            ifindex = struct.unpack_from("<I", value, 16)[0]
            if name == IPV6_JOIN_GROUP:
                sock.join_group(group, ifindex or None)
            else:
                sock.leave_group(group, ifindex or None)
        else:
            raise _err(errno.ENOPROTOOPT)
        return
    raise _err(errno.ENOPROTOOPT)


def getsockopt(sock: UdpSocket, level: int, name: int) -> int | bytes:
    if level == s.SOL_SOCKET:
        table: dict[int, Any] = {
            s.SO_REUSEADDR: int(sock.reuseaddr),
            SO_REUSEPORT: int(sock.reuseport),
            s.SO_BROADCAST: int(sock.broadcast),
            s.SO_RCVBUF: sock.rcvbuf,
            s.SO_SNDBUF: sock.sndbuf,
            s.SO_TYPE: s.SOCK_DGRAM,
            s.SO_KEEPALIVE: 0,
        }
        if name == s.SO_ERROR:
            err, sock.pending_error = sock.pending_error, 0
            return err
        if name == SO_BINDTODEVICE:
            if sock.bound_device is None:
                return b""
            return sock.layer.stack.interfaces[sock.bound_device].name.encode() + b"\0"
        if name in table:
            return int(table[name])
        raise _err(errno.ENOPROTOOPT)
    if level == s.IPPROTO_IP:
        if name == s.IP_TTL:
            return sock.ttl if sock.ttl is not None else sock.layer.stack.default_ttl
        if name == s.IP_TOS:
            return sock.tos
        if name == s.IP_MULTICAST_TTL:
            return sock.multicast_ttl
        if name == s.IP_MULTICAST_LOOP:
            return int(sock.multicast_loop)
        if name == IP_MULTICAST_ALL:
            return int(sock.multicast_all)
        if name == s.IP_MULTICAST_IF:
            return sock.multicast_if_addr or bytes(4)
        raise _err(errno.ENOPROTOOPT)
    if level == s.IPPROTO_IPV6 and sock.family != AF_INET:
        if name == s.IPV6_V6ONLY:
            return int(sock.v6only)
        if name == s.IPV6_UNICAST_HOPS:
            return sock.ttl if sock.ttl is not None else sock.layer.stack.default_hop_limit
        if name == s.IPV6_MULTICAST_HOPS:
            return sock.multicast_ttl
        if name == s.IPV6_MULTICAST_LOOP:
            return int(sock.multicast_loop)
        if name == s.IPV6_MULTICAST_IF:
            return sock.multicast_if or 0
    raise _err(errno.ENOPROTOOPT)
