"""setsockopt/getsockopt for TCP sockets, with Linux's numbers and semantics.

Options set before connect/listen are kept on the `TcpSocket` and copied
to its connection when one exists (and to accepted children); options that
matter at once (TCP_NODELAY, keepalive, buffer sizes) are applied to a live
connection too. SO_RCVBUF/SO_SNDBUF are clamped to the layer's
`rmem_max`/`wmem_max` (Linux's 212992) and doubled, as Linux does;
*BUFFORCE and SO_PRIORITY above 6 are EPERM (no CAP_NET_ADMIN here).
TCP_CONGESTION takes and reports Linux's names, `reno` and `cubic`.
IP_TOS and IPV6_TCLASS (AF_INET6: its IPv6 connections; IP_TOS its IPv4 and
v4-mapped ones) keep the ECN bits TCP's own, as Linux does for streams; the
options asking for control messages (SO_TIMESTAMP, IP_PKTINFO …,
stack.ancillary) are kept and reported. Errors are OSError: ENOPROTOOPT for
unknown options, EINVAL for bad values. Touches only the socket and its connection.
"""

from __future__ import annotations

import errno
import socket as s
import struct
from typing import TYPE_CHECKING

from . import ancillary
from .congestion.newreno import INITIAL_SSTHRESH
from .oserror import os_error
from .sockopt import SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF, buffer_size, check_unprivileged
from .tcp_tcb import SYN_SENT

if TYPE_CHECKING:
    from .tcp_socket import TcpSocket

TCP_NODELAY = 1
TCP_MAXSEG = 2
TCP_KEEPIDLE = 4
TCP_KEEPINTVL = 5
TCP_KEEPCNT = 6
TCP_INFO = 11
TCP_CONGESTION = 13
TCP_USER_TIMEOUT = 18
SO_REUSEPORT = getattr(s, "SO_REUSEPORT", 15)
SO_BINDTODEVICE = getattr(s, "SO_BINDTODEVICE", 25)
SO_ACCEPTCONN = getattr(s, "SO_ACCEPTCONN", 30)
IPV6_TCLASS = 67
SEC = 1_000_000_000
TCP_CA_NAME_MAX = 16
# Linux's names for the algorithms an unprivileged socket may pick (the default
# tcp_allowed_congestion_control), and the stack's own name for each
CONGESTION_BY_LINUX_NAME = {"reno": "newreno", "cubic": "cubic"}
LINUX_NAME_OF_CONGESTION = {v: k for k, v in CONGESTION_BY_LINUX_NAME.items()}



# struct tcp_info (linux/tcp.h) as Linux 6.18 copies it out: 280 bytes (the AccECN
# counters and the ECN mode word at the end stay zero: vnet has no AccECN)
TCP_INFO_SIZE = 280
TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE, TCPI_OPT_ECN = 1, 2, 4, 8
TCPI_ECN_MODE_RFC3168 = 1
# Linux's TCP_* state numbers for the socket (include/net/tcp_states.h). A socket whose
# connection reached TIME-WAIT reports TCP_CLOSE, as on Linux, where the TIME-WAIT
# lives on in a separate timewait sock and the socket itself is done.
TCP_CLOSE = 7
TCP_LISTEN = 10
LINUX_STATE = {"ESTABLISHED": 1, "SYN-SENT": 2, "SYN-RECEIVED": 3, "FIN-WAIT-1": 4,
               "FIN-WAIT-2": 5, "TIME-WAIT": TCP_CLOSE, "CLOSED": TCP_CLOSE,
               "CLOSE-WAIT": 8, "LAST-ACK": 9, "CLOSING": 11}
_U32 = 0xFFFFFFFF


def tcp_info(sock: TcpSocket) -> bytes:
    """getsockopt(TCP_INFO): Linux's struct tcp_info, with the fields vnet knows.

    Filled: the state; for a listener its accept queue's length and limit (Linux's
    tcpi_unacked/tcpi_sacked there); for a connection the negotiated options and
    window scales, RTO, MSS, smoothed RTT and variance, ssthresh and cwnd (in
    segments), the advertised MSS, both windows, and the ECN mode. Every other field
    is zero.
    """
    info = bytearray(TCP_INFO_SIZE)
    listener = sock.listener
    conn = sock.conn
    if listener is not None:
        info[0] = TCP_LISTEN
        struct.pack_into("<II", info, 24, len(listener.accept_queue), listener.backlog)
        return bytes(info)
    if conn is None:
        info[0] = TCP_CLOSE
        return bytes(info)
    info[0] = LINUX_STATE[conn.state.value]
    options = 0
    if conn.ts_enabled:
        options |= TCPI_OPT_TIMESTAMPS
    if conn.sack_enabled:
        options |= TCPI_OPT_SACK
    # in SYN-SENT nothing is negotiated yet (the shift we offered is ours alone)
    if (conn.snd_wscale or conn.rcv_wscale) and conn.state is not SYN_SENT:
        options |= TCPI_OPT_WSCALE
        info[6] = (conn.snd_wscale & 0xF) | (conn.rcv_wscale & 0xF) << 4
    if conn.ecn_ok:
        options |= TCPI_OPT_ECN
        info[276] = TCPI_ECN_MODE_RFC3168  # tcpi_ecn_mode, the low bits of the last word
    info[5] = options
    mss = conn._effective_mss()
    cc = conn.cc
    struct.pack_into("<II", info, 8, min(conn.rto_ns // 1000, _U32), 0)
    struct.pack_into("<I", info, 16, mss)
    srtt_ns = conn.srtt_ns or 0  # None before the first sample
    ssthresh = int(cc.ssthresh)  # Linux says 0x7fffffff (TCP_INFINITE_SSTHRESH) until set
    struct.pack_into("<IIII", info, 68, min(srtt_ns // 1000, _U32),
                     min(conn.rttvar_ns // 1000, _U32),
                     0x7FFFFFFF if ssthresh >= INITIAL_SSTHRESH
                     else min(ssthresh // max(mss, 1), 0x7FFFFFFF),
                     min(int(cc.cwnd) // max(mss, 1), _U32))
    struct.pack_into("<I", info, 84, conn.adv_mss)
    struct.pack_into("<II", info, 228, min(conn.snd_wnd, _U32),
                     max(0, min(conn.rcv_adv - conn.rcv_nxt, _U32)))
    return bytes(info)


def _int(value: int | bytes) -> int:
    if isinstance(value, int):
        return value
    if len(value) >= 4:
        return int(struct.unpack_from("<i", value)[0])
    if len(value) == 1:
        return value[0]
    raise os_error(errno.EINVAL)


def _ancillary_option(sock: TcpSocket, level: int, name: int) -> bool:
    return (level, name) in ancillary.OPTION_BITS and not (
        level == s.IPPROTO_IPV6 and sock.family == s.AF_INET)


def _without_ecn(value: int, current: int) -> int:
    """IP_TOS / IPV6_TCLASS on a stream socket: TCP owns the ECN bits (Linux keeps the
    socket's own low two bits, as __ip_sock_set_tos and ip6_setsockopt do)."""
    return (value & 0xFC) | (current & 0x03)


def setsockopt(sock: TcpSocket, level: int, name: int, value: int | bytes) -> None:
    conn = sock.conn
    if _ancillary_option(sock, level, name):
        raw = value.to_bytes(4, "little", signed=True) if isinstance(value, int) else value
        sock.recv_ancillary = ancillary.set_option(sock.recv_ancillary, level, name, raw)
        return
    if level == s.SOL_SOCKET:
        if name not in (s.SO_LINGER, SO_BINDTODEVICE, s.SO_RCVTIMEO, s.SO_SNDTIMEO):
            check_unprivileged(name, _int(value))
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
                raise os_error(errno.EINVAL)
            onoff, seconds = struct.unpack_from("<ii", value)
            sock.linger = (bool(onoff), max(0, seconds))
            if conn is not None:
                conn.linger = sock.linger
        elif name == s.SO_RCVBUF:
            sock.rcvbuf = buffer_size(_int(value), sock.layer.rmem_max, SOCK_MIN_RCVBUF)
            if conn is not None:
                conn.rcvbuf = sock.rcvbuf
        elif name == s.SO_SNDBUF:
            sock.sndbuf = buffer_size(_int(value), sock.layer.wmem_max, SOCK_MIN_SNDBUF)
            if conn is not None:
                conn.sndbuf = sock.sndbuf
        elif name == s.SO_PRIORITY:
            sock.priority = _int(value)
        elif name == SO_BINDTODEVICE:
            raw = value if isinstance(value, bytes) else b""
            devname = raw.split(b"\0", 1)[0].decode(errors="replace")
            if not devname:
                sock.bound_device = None
            else:
                try:
                    sock.bound_device = sock.layer.stack.interface(devname).index
                except KeyError:
                    raise os_error(errno.ENODEV) from None
        elif name in (s.SO_RCVTIMEO, s.SO_SNDTIMEO, s.SO_BROADCAST):
            return  # timeouts live in the blocking layer; SO_BROADCAST has no effect on TCP
        else:
            raise os_error(errno.ENOPROTOOPT)
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
                raise os_error(errno.EINVAL)
            sock.maxseg = mss or None
        elif name in (TCP_KEEPIDLE, TCP_KEEPINTVL):
            seconds = _int(value)
            if not 1 <= seconds <= 32767:
                raise os_error(errno.EINVAL)
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
                raise os_error(errno.EINVAL)
            sock.keepalive_probes = count
            if conn is not None:
                conn.keepalive_probes = count
        elif name == TCP_USER_TIMEOUT:
            ms = _int(value)
            if ms < 0:
                raise os_error(errno.EINVAL)
            sock.user_timeout_ns = ms * 1_000_000
            if conn is not None:
                conn.user_timeout_ns = sock.user_timeout_ns
        elif name == TCP_CONGESTION:
            # Linux reads at most TCP_CA_NAME_MAX - 1 bytes, up to a NUL; unknown → ENOENT
            raw = value if isinstance(value, bytes) else _int(value).to_bytes(4, "little",
                                                                               signed=True)
            if not raw:
                raise os_error(errno.EINVAL)
            algo = raw[:TCP_CA_NAME_MAX - 1].split(b"\0", 1)[0].decode(errors="replace")
            if algo not in CONGESTION_BY_LINUX_NAME:
                raise os_error(errno.ENOENT)
            from .congestion import make

            sock.congestion = CONGESTION_BY_LINUX_NAME[algo]
            if conn is not None:
                conn.cc = make(sock.congestion, conn._effective_mss())
        else:
            raise os_error(errno.ENOPROTOOPT)
        return
    if level == s.IPPROTO_IP:
        if name == s.IP_TTL:
            ttl = _int(value)
            if ttl != -1 and not 1 <= ttl <= 255:
                raise os_error(errno.EINVAL)
            sock.ttl = None if ttl == -1 else ttl
        elif name == s.IP_TOS:
            sock.tos = _without_ecn(_int(value), sock.tos)
        else:
            raise os_error(errno.ENOPROTOOPT)
        if conn is not None:
            conn.ttl = sock.ttl
            if len(conn.local) == 4:
                conn.tos = sock.tos
        return
    if level == s.IPPROTO_IPV6 and sock.family == s.AF_INET6:
        if name == s.IPV6_V6ONLY:
            if sock.local_addr is not None:
                raise os_error(errno.EINVAL)
            sock.v6only = bool(_int(value))
        elif name == s.IPV6_UNICAST_HOPS:
            hops = _int(value)
            if not -1 <= hops <= 255:
                raise os_error(errno.EINVAL)
            sock.ttl = None if hops == -1 else hops
            if conn is not None:
                conn.ttl = sock.ttl
        elif name == IPV6_TCLASS:
            raw = value if isinstance(value, bytes) else value.to_bytes(4, "little", signed=True)
            tclass = _int(value)
            if len(raw) != 4 or not -1 <= tclass <= 255:
                raise os_error(errno.EINVAL)
            sock.tclass = _without_ecn(0 if tclass == -1 else tclass, sock.tclass)
            if conn is not None and len(conn.local) == 16:
                conn.tos = sock.tclass
        else:
            raise os_error(errno.ENOPROTOOPT)
        return
    raise os_error(errno.ENOPROTOOPT)


def getsockopt(sock: TcpSocket, level: int, name: int) -> int | bytes:
    conn = sock.conn
    if _ancillary_option(sock, level, name):
        return ancillary.get_option(sock.recv_ancillary, level, name)
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
                 s.SO_SNDBUF: sock.sndbuf, s.SO_PRIORITY: sock.priority}
        if name in table:
            return int(table[name])
        raise os_error(errno.ENOPROTOOPT)
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
        if name == TCP_INFO:
            return tcp_info(sock)
        if name == TCP_CONGESTION:
            name_ = conn.cc.name if conn is not None else sock.congestion
            # a char[TCP_CA_NAME_MAX], NUL-padded, as Linux copies it out
            return LINUX_NAME_OF_CONGESTION.get(name_, name_).encode().ljust(TCP_CA_NAME_MAX,
                                                                            b"\0")
        raise os_error(errno.ENOPROTOOPT)
    if level == s.IPPROTO_IP:
        if name == s.IP_TTL:
            return sock.ttl if sock.ttl is not None else sock.layer.stack.default_ttl
        if name == s.IP_TOS:
            return sock.tos
        raise os_error(errno.ENOPROTOOPT)
    if level == s.IPPROTO_IPV6 and sock.family == s.AF_INET6:
        if name == s.IPV6_V6ONLY:
            return int(sock.v6only)
        if name == s.IPV6_UNICAST_HOPS:
            return sock.ttl if sock.ttl is not None else sock.layer.stack.default_hop_limit
        if name == IPV6_TCLASS:
            return sock.tclass
    raise os_error(errno.ENOPROTOOPT)
