"""setsockopt/getsockopt for TCP sockets, with Linux's numbers and semantics.

Options set before connect/listen are kept on the `TcpSocket` and copied
to its connection when one exists (and to accepted children); options that
matter at once (TCP_NODELAY, keepalive, buffer sizes) are applied to a live
connection too. SO_RCVBUF/SO_SNDBUF are doubled and clamped as Linux does.
Errors are OSError: ENOPROTOOPT for unknown options, EINVAL for bad values.
Touches only the socket and its connection.
"""

from __future__ import annotations

import errno
import os
import socket as s
import struct

from .tcp import TcpSocket

TCP_NODELAY = 1
TCP_MAXSEG = 2
TCP_KEEPIDLE = 4
TCP_KEEPINTVL = 5
TCP_KEEPCNT = 6
TCP_CONGESTION = 13
TCP_USER_TIMEOUT = 18
SO_REUSEPORT = getattr(s, "SO_REUSEPORT", 15)
SO_BINDTODEVICE = getattr(s, "SO_BINDTODEVICE", 25)
SO_ACCEPTCONN = getattr(s, "SO_ACCEPTCONN", 30)
SEC = 1_000_000_000
SOCK_MIN_RCVBUF = 2304
SOCK_MIN_SNDBUF = 4608
BUF_MAX = 16 * 1024 * 1024


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


def setsockopt(sock: TcpSocket, level: int, name: int, value: int | bytes) -> None:
    conn = sock.conn
    if level == s.SOL_SOCKET:
        if name == s.SO_REUSEADDR:
            sock.reuseaddr = bool(_int(value))
        elif name == SO_REUSEPORT:
            sock.reuseport = bool(_int(value))
        elif name == s.SO_KEEPALIVE:
            sock.keepalive = bool(_int(value))
            if conn is not None:
                conn.keepalive = sock.keepalive
                conn.start_keepalive()
        elif name == s.SO_LINGER:
            if isinstance(value, int) or len(value) < 8:
                raise _err(errno.EINVAL)
            onoff, seconds = struct.unpack_from("<ii", value)
            sock.linger = (bool(onoff), max(0, seconds))
            if conn is not None:
                conn.linger = sock.linger
        elif name == s.SO_RCVBUF:
            sock.rcvbuf = max(SOCK_MIN_RCVBUF, min(BUF_MAX, 2 * max(0, _int(value))))
            if conn is not None:
                conn.rcvbuf = sock.rcvbuf
        elif name == s.SO_SNDBUF:
            sock.sndbuf = max(SOCK_MIN_SNDBUF, min(BUF_MAX, 2 * max(0, _int(value))))
            if conn is not None:
                conn.sndbuf = sock.sndbuf
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
        elif name in (s.SO_RCVTIMEO, s.SO_SNDTIMEO, s.SO_BROADCAST):
            return  # timeouts live in the blocking layer; SO_BROADCAST has no effect on TCP
        else:
            raise _err(errno.ENOPROTOOPT)
        return
    if level == s.IPPROTO_TCP:
        if name == TCP_NODELAY:
            sock.nodelay = bool(_int(value))
            if conn is not None:
                conn.nodelay = sock.nodelay
                conn._output()
        elif name == TCP_MAXSEG:
            mss = _int(value)
            if mss and not 88 <= mss <= 32767:
                raise _err(errno.EINVAL)
            sock.maxseg = mss or None
        elif name in (TCP_KEEPIDLE, TCP_KEEPINTVL):
            seconds = _int(value)
            if not 1 <= seconds <= 32767:
                raise _err(errno.EINVAL)
            if name == TCP_KEEPIDLE:
                sock.keepalive_time_ns = seconds * SEC
            else:
                sock.keepalive_intvl_ns = seconds * SEC
            if conn is not None:
                sock.apply_options(conn)
                conn.start_keepalive()
        elif name == TCP_KEEPCNT:
            count = _int(value)
            if not 1 <= count <= 127:
                raise _err(errno.EINVAL)
            sock.keepalive_probes = count
            if conn is not None:
                conn.keepalive_probes = count
        elif name == TCP_USER_TIMEOUT:
            ms = _int(value)
            if ms < 0:
                raise _err(errno.EINVAL)
            sock.user_timeout_ns = ms * 1_000_000
            if conn is not None:
                conn.user_timeout_ns = sock.user_timeout_ns
        elif name == TCP_CONGESTION:
            algo = (value if isinstance(value, bytes) else b"").split(b"\0", 1)[0].decode(
                errors="replace")
            from .congestion import make

            try:
                make(algo, 1460)
            except ValueError:
                raise _err(errno.ENOENT) from None
            sock.congestion = "newreno" if algo == "reno" else algo
            if conn is not None:
                conn.cc = make(sock.congestion, conn._effective_mss())
        else:
            raise _err(errno.ENOPROTOOPT)
        return
    if level == s.IPPROTO_IP:
        if name == s.IP_TTL:
            ttl = _int(value)
            if ttl != -1 and not 1 <= ttl <= 255:
                raise _err(errno.EINVAL)
            sock.ttl = None if ttl == -1 else ttl
        elif name == s.IP_TOS:
            sock.tos = _int(value) & 0xFF
        else:
            raise _err(errno.ENOPROTOOPT)
        if conn is not None:
            conn.ttl, conn.tos = sock.ttl, sock.tos
        return
    if level == s.IPPROTO_IPV6 and sock.family == s.AF_INET6:
        if name == s.IPV6_V6ONLY:
            if sock.local_addr is not None:
                raise _err(errno.EINVAL)
            sock.v6only = bool(_int(value))
        elif name == s.IPV6_UNICAST_HOPS:
            hops = _int(value)
            if not -1 <= hops <= 255:
                raise _err(errno.EINVAL)
            sock.ttl = None if hops == -1 else hops
            if conn is not None:
                conn.ttl = sock.ttl
        else:
            raise _err(errno.ENOPROTOOPT)
        return
    raise _err(errno.ENOPROTOOPT)


def getsockopt(sock: TcpSocket, level: int, name: int) -> int | bytes:
    conn = sock.conn
    if level == s.SOL_SOCKET:
        if name == s.SO_ERROR:
            return sock.take_error()
        if name == s.SO_TYPE:
            return s.SOCK_STREAM
        if name == SO_ACCEPTCONN:
            return int(sock.listening)
        if name == s.SO_LINGER:
            return struct.pack("<ii", int(sock.linger[0]), sock.linger[1])
        table = {s.SO_REUSEADDR: sock.reuseaddr, SO_REUSEPORT: sock.reuseport,
                 s.SO_KEEPALIVE: sock.keepalive, s.SO_RCVBUF: sock.rcvbuf,
                 s.SO_SNDBUF: sock.sndbuf}
        if name in table:
            return int(table[name])
        raise _err(errno.ENOPROTOOPT)
    if level == s.IPPROTO_TCP:
        cfg = sock.layer.config
        if name == TCP_NODELAY:
            return int(sock.nodelay)
        if name == TCP_MAXSEG:
            if conn is not None:
                return conn._effective_mss()
            return sock.maxseg or 536
        if name == TCP_KEEPIDLE:
            return (sock.keepalive_time_ns or cfg.keepalive_time_ns) // SEC
        if name == TCP_KEEPINTVL:
            return (sock.keepalive_intvl_ns or cfg.keepalive_intvl_ns) // SEC
        if name == TCP_KEEPCNT:
            return sock.keepalive_probes or cfg.keepalive_probes
        if name == TCP_USER_TIMEOUT:
            return sock.user_timeout_ns // 1_000_000
        if name == TCP_CONGESTION:
            name_ = conn.cc.name if conn is not None else sock.congestion
            return name_.encode() + b"\0"
        raise _err(errno.ENOPROTOOPT)
    if level == s.IPPROTO_IP:
        if name == s.IP_TTL:
            return sock.ttl if sock.ttl is not None else sock.layer.stack.default_ttl
        if name == s.IP_TOS:
            return sock.tos
        raise _err(errno.ENOPROTOOPT)
    if level == s.IPPROTO_IPV6 and sock.family == s.AF_INET6:
        if name == s.IPV6_V6ONLY:
            return int(sock.v6only)
        if name == s.IPV6_UNICAST_HOPS:
            return sock.ttl if sock.ttl is not None else sock.layer.stack.default_hop_limit
    raise _err(errno.ENOPROTOOPT)
