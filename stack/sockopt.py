"""setsockopt/getsockopt for UDP sockets, with Linux's option numbers and semantics.

One implementation serves the scripted-host API and the guest ABI. Levels and
names are Linux's (Python's `socket` constants on Linux); values are ints or
the raw option bytes (`struct ip_mreq(n)`, `struct ipv6_mreq`, `struct
in_addr`, an interface name …); an int stands for the 4 native-endian bytes
of a C int, as Python's socket module passes it. Errors are OSError with
Linux errno, each where Linux raises it: EINVAL for a bad value or length,
ENOPROTOOPT for an option this socket does not have (EOPNOTSUPP when
getsockopt asks an AF_INET socket about a level other than SOL_SOCKET and
IPPROTO_IP). As on Linux, IPPROTO_IP options work on AF_INET6 sockets too
and govern their IPv4(-mapped) traffic, separately from the IPPROTO_IPV6
ones. getsockopt returns ints, except IP_MULTICAST_IF (the 4-byte address)
and SO_BINDTODEVICE (the name). Buffer sizes follow Linux: the value is
capped at the host's `rmem_max`/`wmem_max`, doubled, and raised to
SOCK_MIN_RCVBUF/SOCK_MIN_SNDBUF (`rmem_max`/`wmem_max` default to Linux's
212992). A vnet socket has no CAP_NET_ADMIN: SO_RCVBUFFORCE/SO_SNDBUFFORCE
and SO_PRIORITY above 6 are EPERM, as for an unprivileged Linux process.
The options that ask for control messages (IP_PKTINFO, SO_TIMESTAMP …) are
stack.ancillary's. Touches only the socket and its stack.
"""

from __future__ import annotations

import errno
import socket as s
import struct
from typing import TYPE_CHECKING

from . import ancillary
from .ip import ANY_V4
from .oserror import os_error

if TYPE_CHECKING:
    from .udp import UdpSocket

AF_INET = s.AF_INET

SO_REUSEPORT = getattr(s, "SO_REUSEPORT", 15)
SO_BINDTODEVICE = getattr(s, "SO_BINDTODEVICE", 25)
SO_PROTOCOL = getattr(s, "SO_PROTOCOL", 38)
SO_DOMAIN = getattr(s, "SO_DOMAIN", 39)
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SO_BINDTOIFINDEX = 62
IP_MULTICAST_ALL = getattr(s, "IP_MULTICAST_ALL", 49)
IPV6_JOIN_GROUP = getattr(s, "IPV6_JOIN_GROUP", 20)
IPV6_LEAVE_GROUP = getattr(s, "IPV6_LEAVE_GROUP", 21)
IPV6_MULTICAST_ALL = 29
IPV6_TCLASS = getattr(s, "IPV6_TCLASS", 67)
SOCK_MIN_RCVBUF = 2304  # Linux: 2048 + the aligned struct sk_buff
SOCK_MIN_SNDBUF = 2 * SOCK_MIN_RCVBUF
INT_MAX = 0x7FFFFFFF
PRIORITY_MAX_UNPRIVILEGED = 6  # Linux TC_PRIO_INTERACTIVE: higher needs CAP_NET_ADMIN/RAW

# Options a UDP socket keeps and reports but that change nothing here, with defaults.
_STORED = {s.SO_KEEPALIVE: 0, s.SO_PRIORITY: 0, s.SO_RCVLOWAT: 1, s.SO_SNDLOWAT: 1,
           s.SO_OOBINLINE: 0, s.SO_DONTROUTE: 0}
_IGNORED = {s.SO_LINGER, s.SO_RCVTIMEO, s.SO_SNDTIMEO}  # structs; the blocking layer's business



def _raw(value: int | bytes) -> bytes:
    """The option buffer: Python passes an int as a native (little-endian) C int."""
    if isinstance(value, int):
        return (value & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(value)


def _int(raw: bytes, minimum: int = 4) -> int:
    """An int option: Linux reads a C int, or (IPv4 options) a single byte."""
    if len(raw) >= 4:
        return int(struct.unpack_from("<i", raw)[0])
    if minimum <= 1 and len(raw) >= 1:
        return raw[0]
    raise os_error(errno.EINVAL)


def buffer_size(value: int, limit: int, minimum: int) -> int:
    """SO_RCVBUF/SO_SNDBUF as Linux sets them: min(value as u32, max), doubled, floored."""
    val = min(value & 0xFFFFFFFF, limit, INT_MAX // 2)
    return max(val * 2, minimum)


def check_unprivileged(name: int, value: int) -> None:
    """The SOL_SOCKET options Linux refuses (EPERM) without CAP_NET_ADMIN/CAP_NET_RAW.

    A vnet socket never has those capabilities: SO_RCVBUFFORCE/SO_SNDBUFFORCE
    are always refused, SO_PRIORITY outside 0..6 too.
    """
    if name in (SO_RCVBUFFORCE, SO_SNDBUFFORCE):
        raise os_error(errno.EPERM)
    if name == s.SO_PRIORITY and not 0 <= value <= PRIORITY_MAX_UNPRIVILEGED:
        raise os_error(errno.EPERM)


def _ancillary_option(sock: UdpSocket, level: int, name: int) -> bool:
    """One of the options that ask for control messages (stack.ancillary)?"""
    return (level, name) in ancillary.OPTION_BITS and not (
        level == s.IPPROTO_IPV6 and sock.family == AF_INET)


def setsockopt(sock: UdpSocket, level: int, name: int, value: int | bytes) -> None:
    raw = _raw(value)
    if _ancillary_option(sock, level, name):
        sock.recv_ancillary = ancillary.set_option(sock.recv_ancillary, level, name, raw)
    elif level == s.SOL_SOCKET:
        _set_socket(sock, name, raw)
    elif level == s.IPPROTO_IP:
        _set_ip(sock, name, raw)
    elif level == s.IPPROTO_IPV6 and sock.family != AF_INET:
        _set_ipv6(sock, name, raw)
    else:
        raise os_error(errno.ENOPROTOOPT)


def _set_socket(sock: UdpSocket, name: int, raw: bytes) -> None:
    layer = sock.layer
    if name == SO_BINDTODEVICE:
        devname = raw.split(b"\0", 1)[0].decode(errors="replace")
        if not devname:
            sock.bound_device, sock.device_locked = None, False
            return
        try:
            sock.bound_device = layer.stack.interface(devname).index
        except KeyError:
            raise os_error(errno.ENODEV) from None
        sock.device_locked = True
        return
    if name in _IGNORED:
        return
    val = _int(raw)
    check_unprivileged(name, val)
    if name == s.SO_REUSEADDR:
        sock.reuseaddr = bool(val)
    elif name == SO_REUSEPORT:
        sock.reuseport = bool(val)
    elif name == s.SO_BROADCAST:
        sock.broadcast = bool(val)
    elif name == s.SO_RCVBUF:
        sock.rcvbuf = buffer_size(val, layer.rmem_max, SOCK_MIN_RCVBUF)
    elif name == s.SO_SNDBUF:
        sock.sndbuf = buffer_size(val, layer.wmem_max, SOCK_MIN_SNDBUF)
    elif name == SO_BINDTOIFINDEX:
        if val and val not in layer.stack.interfaces:
            raise os_error(errno.ENODEV)
        sock.bound_device, sock.device_locked = (val or None), bool(val)
    elif name in _STORED:
        if name == s.SO_RCVLOWAT:
            val = val or 1
        sock.stored_options[(s.SOL_SOCKET, name)] = val
    else:
        raise os_error(errno.ENOPROTOOPT)


def _mreq(raw: bytes) -> tuple[bytes, bytes, int]:
    """struct ip_mreq (group, interface address) or ip_mreqn (… and ifindex)."""
    if len(raw) < 8:
        raise os_error(errno.EINVAL)
    ifindex = int(struct.unpack_from("<i", raw, 8)[0]) if len(raw) >= 12 else 0
    return raw[:4], raw[4:8], ifindex


def _set_ip(sock: UdpSocket, name: int, raw: bytes) -> None:
    if name in (s.IP_ADD_MEMBERSHIP, s.IP_DROP_MEMBERSHIP):
        group, ifaddr, ifindex = _mreq(raw)
        if name == s.IP_ADD_MEMBERSHIP:
            sock.join_group_v4(group, ifaddr, ifindex)
        else:
            sock.leave_group_v4(group, ifaddr, ifindex)
        return
    if name == s.IP_MULTICAST_IF:
        _set_multicast_if_v4(sock, raw)
        return
    if not raw:
        raise os_error(errno.EINVAL)
    val = _int(raw, minimum=1)
    if name == s.IP_TTL:
        if val != -1 and not 1 <= val <= 255:
            raise os_error(errno.EINVAL)
        sock.ttl = None if val == -1 else val
    elif name == s.IP_TOS:
        sock.tos = val & 0xFF
    elif name == s.IP_MULTICAST_TTL:
        if val == -1:
            val = 1
        if not 0 <= val <= 255:
            raise os_error(errno.EINVAL)
        sock.multicast_ttl = val
    elif name == s.IP_MULTICAST_LOOP:
        sock.multicast_loop = bool(val)
    elif name == IP_MULTICAST_ALL:
        if val not in (0, 1):
            raise os_error(errno.EINVAL)
        sock.multicast_all = bool(val)
    else:
        raise os_error(errno.ENOPROTOOPT)


def _set_multicast_if_v4(sock: UdpSocket, raw: bytes) -> None:
    """IP_MULTICAST_IF with struct in_addr, ip_mreq or ip_mreqn, as Linux reads them."""
    if len(raw) < 4:
        raise os_error(errno.EINVAL)
    if len(raw) >= 8:
        _, address, ifindex = _mreq(raw)
    else:
        address, ifindex = raw[:4], 0
    stack = sock.layer.stack
    if not ifindex:
        if address == ANY_V4:
            sock.multicast_if = sock.multicast_if_addr = None
            return
        ifindex = next((i.index for i in stack.interfaces.values() if i.has_address(address)),
                       0)
    if ifindex not in stack.interfaces:
        raise os_error(errno.EADDRNOTAVAIL)
    if sock.bound_device and ifindex != sock.bound_device:
        raise os_error(errno.EINVAL)
    sock.multicast_if = ifindex
    sock.multicast_if_addr = None if address == ANY_V4 else address


def _set_ipv6(sock: UdpSocket, name: int, raw: bytes) -> None:
    if name in (IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP):
        if len(raw) < 20:
            raise os_error(errno.EINVAL)
        group, ifindex = raw[:16], int(struct.unpack_from("<I", raw, 16)[0])
        if name == IPV6_JOIN_GROUP:
            sock.join_group_v6(group, ifindex)
        else:
            sock.leave_group_v6(group, ifindex)
        return
    val = _int(raw)
    if name == s.IPV6_V6ONLY:
        if sock.local_port:  # Linux: once inet_num is set
            raise os_error(errno.EINVAL)
        sock.v6only = bool(val)
    elif name == s.IPV6_UNICAST_HOPS:
        if not -1 <= val <= 255:
            raise os_error(errno.EINVAL)
        sock.hop_limit = None if val == -1 else val
    elif name == s.IPV6_MULTICAST_HOPS:
        if len(raw) != 4 or not -1 <= val <= 255:
            raise os_error(errno.EINVAL)
        sock.multicast_hops = 1 if val == -1 else val
    elif name == s.IPV6_MULTICAST_LOOP:
        if val not in (0, 1):
            raise os_error(errno.EINVAL)
        sock.multicast_loop6 = bool(val)
    elif name == s.IPV6_MULTICAST_IF:
        if val and val not in sock.layer.stack.interfaces:
            raise os_error(errno.ENODEV)
        if val and sock.bound_device and val != sock.bound_device:
            raise os_error(errno.EINVAL)
        sock.multicast_if6 = val or None
    elif name == IPV6_MULTICAST_ALL:
        sock.multicast_all6 = bool(val)
    elif name == IPV6_TCLASS:
        if len(raw) != 4 or not -1 <= val <= 255:
            raise os_error(errno.EINVAL)
        sock.tclass = 0 if val == -1 else val
    else:
        raise os_error(errno.ENOPROTOOPT)


def getsockopt(sock: UdpSocket, level: int, name: int) -> int | bytes:
    if _ancillary_option(sock, level, name):
        return ancillary.get_option(sock.recv_ancillary, level, name)
    if level == s.SOL_SOCKET:
        return _get_socket(sock, name)
    if level == s.IPPROTO_IP:
        return _get_ip(sock, name)
    if sock.family == AF_INET:
        raise os_error(errno.EOPNOTSUPP)  # do_ip_getsockopt: level != SOL_IP
    if level == s.IPPROTO_IPV6:
        return _get_ipv6(sock, name)
    raise os_error(errno.ENOPROTOOPT)


def _get_socket(sock: UdpSocket, name: int) -> int | bytes:
    if name == s.SO_ERROR:
        err, sock.pending_error = sock.pending_error, 0
        return err
    if name == SO_BINDTODEVICE:
        if sock.bound_device is None:
            return b""
        return str(sock.layer.stack.interfaces[sock.bound_device].name).encode() + b"\0"
    table = {
        s.SO_TYPE: s.SOCK_DGRAM,
        SO_PROTOCOL: s.IPPROTO_UDP,
        SO_DOMAIN: sock.family,
        s.SO_ACCEPTCONN: 0,
        s.SO_REUSEADDR: int(sock.reuseaddr),
        SO_REUSEPORT: int(sock.reuseport),
        s.SO_BROADCAST: int(sock.broadcast),
        s.SO_RCVBUF: sock.rcvbuf,
        s.SO_SNDBUF: sock.sndbuf,
        SO_BINDTOIFINDEX: sock.bound_device or 0,
    }
    if name in table:
        return int(table[name])
    if name in _STORED:
        return sock.stored_options.get((s.SOL_SOCKET, name), _STORED[name])
    raise os_error(errno.ENOPROTOOPT)


def _get_ip(sock: UdpSocket, name: int) -> int | bytes:
    if name == s.IP_TTL:
        return sock.ttl if sock.ttl is not None else int(sock.layer.stack.default_ttl)
    if name == s.IP_TOS:
        return sock.tos
    if name == s.IP_MULTICAST_TTL:
        return sock.multicast_ttl
    if name == s.IP_MULTICAST_LOOP:
        return int(sock.multicast_loop)
    if name == IP_MULTICAST_ALL:
        return int(sock.multicast_all)
    if name == s.IP_MULTICAST_IF:
        return sock.multicast_if_addr or ANY_V4
    raise os_error(errno.ENOPROTOOPT)


def _get_ipv6(sock: UdpSocket, name: int) -> int:
    if name == s.IPV6_V6ONLY:
        return int(sock.v6only)
    if name == s.IPV6_UNICAST_HOPS:
        return sock.hop_limit if sock.hop_limit is not None else int(
            sock.layer.stack.default_hop_limit)
    if name == s.IPV6_MULTICAST_HOPS:
        return sock.multicast_hops
    if name == s.IPV6_MULTICAST_LOOP:
        return int(sock.multicast_loop6)
    if name == s.IPV6_MULTICAST_IF:
        return sock.multicast_if6 or 0
    if name == IPV6_MULTICAST_ALL:
        return int(sock.multicast_all6)
    if name == IPV6_TCLASS:
        return sock.tclass
    raise os_error(errno.ENOPROTOOPT)
