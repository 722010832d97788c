"""TCP for one host: ports, listeners, demultiplexing, SYN cookies, resets.

Theory of operation
-------------------
`TcpLayer` is the stack's transport for protocol 6. Each arriving segment is
matched, in order, to a connection by its 4-tuple (`conns`), to a listener on
its port, or to nothing, in which case the layer answers with a RST as RFC
9293 §3.10.7.1 says (no ICMP port unreachable for TCP).

A listener keeps two queues sized by the `listen` backlog: the SYN queue of
half-open children (SYN-RECEIVED connections, which retransmit their
SYN-ACK) and the accept queue of established children the application has
not accepted yet. When the SYN queue is full, new SYNs are answered
statelessly with SYN cookies (the ISN encodes the MSS and a keyed hash of the
4-tuple and a 64-second counter; window scale and SACK ride in the low bits
of the timestamp, as Linux does), so a flood of half-open connections cannot
lock legitimate clients out. A cookie connection keeps the timestamp clock
offset its SYN-ACK used (a keyed hash of the 4-tuple), so its TSvals never
run backwards for the peer's PAWS. The accept queue holds backlog + 1
connections (Linux's sk_acceptq_is_full compares with >; listen(0) takes
one). When it is full, SYNs are dropped (the client retries), and a
handshake that completes into a full accept queue stays half-open and
retransmits its SYN-ACK, as on Linux; a valid SYN-cookie ACK that finds
it full is dropped, not reset (Linux's tcp_v4_syn_recv_sock), and the
client's next segment is admitted later.

ECN (RFC 3168) is negotiated as Linux's net.ipv4.tcp_ecn says
(`TcpConfig.ecn`: 2, the default, grants it to SYNs that ask; 1 also asks
on our SYNs; 0 never): a SYN-cookie carries the grant in its timestamp, as
Linux's TS_OPT_ECN. The IP header's ECN field of each arriving segment is
handed to its connection (`ip_ecn_in`); on output the connection chooses it.

A SYN for a 4-tuple in TIME-WAIT reopens it when it cannot be an old
duplicate (RFC 6191: a newer timestamp, or without timestamps a sequence
number above RCV.NXT): the TIME-WAIT connection ends and the listener, if
any, takes the SYN; otherwise the TIME-WAIT connection answers it.

Binding follows Linux: addresses overlap as for UDP; two sockets may share a
port when both set SO_REUSEADDR and the existing one is not listening, or
when both set SO_REUSEPORT; connections in TIME-WAIT hold their port against
sockets without SO_REUSEADDR. connect() picks an ephemeral port whose
4-tuple is unused, so a busy client can reuse ports across destinations.

ISNs follow RFC 6528: a keyed hash of the 4-tuple plus a 4 µs clock. The key
comes from the stack's seeded RNG, so virtual-time runs are reproducible.

The sockets themselves (`TcpSocket`, `TcpListener`) live in stack/tcp_socket.py.
Errors are OSError with Linux errno values. Touches only its stack.
"""

from __future__ import annotations

import errno
import hashlib
import random
import socket as _socket
import struct
from typing import TYPE_CHECKING

from .ip import ANY_V4, UNSPECIFIED_V6, V4_MAPPED_PREFIX, unmap_v4
from .oserror import os_error
from .socket_memory import SocketMemory
from .tcp_connection import (
    ACK,
    COOKIE_WSCALE,
    CWR,
    ECE,
    FIN,
    MASK,
    RST,
    SYN,
    TcpConfig,
    TcpConnection,
    unwrap,
)
from .tcp_socket import TcpListener, TcpSocket
from .tcp_tcb import CLOSED, TIME_WAIT
from .tcp_time_wait import TimeWaitRecord
from .tcp_timer_queue import TcpTimerQueue
from .wire import tcp as wire_tcp
from .wire.errors import WireError

if TYPE_CHECKING:
    from .host import HostStack, IpMeta

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
EPHEMERAL_RANGE = (32768, 60999)
COOKIE_MSS_V4 = (536, 1300, 1440, 1460)
COOKIE_MSS_V6 = (1220, 1400, 1440, 8940)
COOKIE_PERIOD_NS = 64 * 1_000_000_000
COOKIE_TS_ECN = 0x20  # the cookie's TSval bit saying the SYN asked for ECN (Linux TS_OPT_ECN)
PORT = struct.Struct(">H")
U32 = struct.Struct(">L")
RMEM_MAX = 212992  # Linux net.core.rmem_max (default): SO_RCVBUF's cap before doubling
WMEM_MAX = 212992  # Linux net.core.wmem_max


def _seg_len(seg: wire_tcp.TcpPacket) -> int:
    return len(seg.payload) + (1 if seg.flags & SYN else 0) + (1 if seg.flags & FIN else 0)


class TcpLayer:
    """Protocol 6 for one HostStack."""

    def __init__(self, stack: HostStack, config: TcpConfig | None = None) -> None:
        self.stack = stack
        self.config = config or TcpConfig()
        self.rng = stack.rng
        self.secret = stack.rng.getrandbits(128).to_bytes(16, "big")
        self._isn_hash = hashlib.blake2s(self.secret, digest_size=4)  # see `_isn`
        # every connection's timers, behind one driver timer (stack/tcp_timer_queue.py)
        self.timer_queue = TcpTimerQueue(stack.driver)
        # a connection, or the slim record of one in TIME-WAIT (stack/tcp_time_wait.py)
        self.conns: dict[tuple[bytes, int, bytes, int], TcpConnection | TimeWaitRecord] = {}
        self.conns_by_port: dict[int, set[TcpConnection | TimeWaitRecord]] = {}
        self.listeners: dict[int, list[TcpListener]] = {}
        self.port_users: dict[int, list[TcpSocket]] = {}
        self.ephemeral_range = EPHEMERAL_RANGE
        self.rmem_max = RMEM_MAX
        self.wmem_max = WMEM_MAX
        # what each connection's queues are charged to, and how much is charged now
        self.memory_charged: dict[TcpConnection, tuple[SocketMemory, int]] = {}
        self._challenge_tokens = float(self.config.challenge_ack_limit)
        self._challenge_stamp = 0
        #: the clock, read once for the call into the layer in progress (-1: none); see
        #: `begin_turn`
        self.turn_now = -1

    # --- the clock ---------------------------------------------------------
    def begin_turn(self) -> bool:
        """Read the clock once for the call into the layer that begins (a segment, a
        socket call): what it does reads `now()`, not the driver's clock, about forty
        times per connection otherwise (each a call into the driver). The caller that
        gets True ends the turn (`end_turn`, in a ``finally``); nested calls see
        the outer one's time. In virtual time nothing changes (the clock stands still
        while the stack runs); in real time the call's events share one instant."""
        if self.turn_now >= 0:
            return False
        self.turn_now = self.stack.driver.now_ns()
        return True

    def end_turn(self, outer: bool) -> None:
        """End the turn `begin_turn` began, if it returned True (`outer`)."""
        if outer:
            self.turn_now = -1

    def now(self) -> int:
        now = self.turn_now
        return now if now >= 0 else self.stack.driver.now_ns()

    def socket(self, family: int) -> TcpSocket:
        return TcpSocket(self, family)

    # --- ports -------------------------------------------------------------
    @staticmethod
    def _overlap(a_family: int, a_v6only: bool, a_addr: bytes,
                 b_family: int, b_v6only: bool, b_addr: bytes) -> bool:
        def covers_v4(family: int, v6only: bool, addr: bytes, v4: bytes) -> bool:
            if family == AF_INET:
                return addr == ANY_V4 or v4 == ANY_V4 or addr == v4
            if v6only:
                return False
            if addr == UNSPECIFIED_V6:
                return True
            return addr[:12] == V4_MAPPED_PREFIX and (addr[12:] == v4 or v4 == ANY_V4)

        if a_family == b_family:
            any_addr = ANY_V4 if a_family == AF_INET else UNSPECIFIED_V6
            return a_addr == b_addr or a_addr == any_addr or b_addr == any_addr
        if a_family == AF_INET:
            return covers_v4(b_family, b_v6only, b_addr, a_addr)
        return covers_v4(a_family, a_v6only, a_addr, b_addr)

    def _conflicts(self, sock: TcpSocket, addr: bytes, port: int, for_listen: bool) -> bool:
        for other in self.port_users.get(port, ()):
            if other is sock or other.local_addr is None or other.closed:
                continue
            if not self._overlap(sock.family, sock.v6only, addr, other.family, other.v6only,
                                 other.local_addr):
                continue
            if sock.reuseport and other.reuseport:
                continue
            if sock.reuseaddr and other.reuseaddr and not other.listening and not for_listen:
                continue
            if sock.reuseaddr and other.reuseaddr and for_listen and not other.listening:
                continue
            return True
        for conn in self.conns_by_port.get(port, ()):
            if conn.socket is not None or conn.state == CLOSED:
                continue  # live sockets are in port_users
            local = conn.local
            fam = AF_INET if len(local) == 4 else AF_INET6
            if self._overlap(sock.family, sock.v6only, addr, fam, False, local):
                if sock.reuseaddr and conn.state == TIME_WAIT:
                    continue
                return True
        return False

    def bind(self, sock: TcpSocket, addr: bytes, port: int) -> None:
        wire = unmap_v4(addr) if sock.family == AF_INET6 else addr
        if wire not in (ANY_V4, UNSPECIFIED_V6):
            if not self.stack.is_local_address(wire):
                raise os_error(errno.EADDRNOTAVAIL)
            if sock.family == AF_INET6 and len(wire) == 4 and sock.v6only:
                raise os_error(errno.EADDRNOTAVAIL)
        if port == 0:
            low, high = self.ephemeral_range
            span = high - low + 1
            start = self.rng.randrange(span)
            for i in range(span):
                candidate = low + (start + i) % span
                if not self._conflicts(sock, addr, candidate, False):
                    port = candidate
                    break
            else:
                raise os_error(errno.EADDRINUSE)
        elif self._conflicts(sock, addr, port, False):
            raise os_error(errno.EADDRINUSE)
        sock.local_addr = addr
        sock.local_port = port
        self.port_users.setdefault(port, []).append(sock)

    def check_listen_conflict(self, sock: TcpSocket) -> None:
        assert sock.local_addr is not None
        for other in self.port_users.get(sock.local_port, ()):
            if other is sock or other.closed or other.local_addr is None:
                continue
            if not other.listening:
                continue
            if not self._overlap(sock.family, sock.v6only, sock.local_addr, other.family,
                                 other.v6only, other.local_addr):
                continue
            if sock.reuseport and other.reuseport:
                continue
            raise os_error(errno.EADDRINUSE)

    def release(self, sock: TcpSocket) -> None:
        users = self.port_users.get(sock.local_port)
        if users and sock in users:
            users.remove(sock)
            if not users:
                del self.port_users[sock.local_port]

    def add_listener(self, listener: TcpListener) -> None:
        self.listeners.setdefault(listener.socket.local_port, []).append(listener)

    def close_listener(self, listener: TcpListener) -> None:
        port = listener.socket.local_port
        group = self.listeners.get(port)
        if group and listener in group:
            group.remove(listener)
            if not group:
                del self.listeners[port]
        for conn in list(listener.syn_queue.values()):
            conn.abort()
        listener.syn_queue.clear()
        while listener.accept_queue:
            conn = listener.accept_queue.popleft()
            if conn.state != CLOSED:
                conn.abort()  # unaccepted: reset, as Linux does
            else:
                self.settle_memory(conn, release=True)  # reset while it waited

    # --- connect -----------------------------------------------------------
    def _isn(self, key: tuple[bytes, int, bytes, int]) -> int:
        """RFC 6528: BLAKE2s-32 of the secret and the 4-tuple (local address and port,
        remote address and port, ports big-endian), plus a 4 µs clock. The hash state
        after the secret is kept (`_isn_hash`) and copied: the same digest for less."""
        hasher = self._isn_hash.copy()
        hasher.update(key[0] + PORT.pack(key[1]) + key[2] + PORT.pack(key[3]))
        digest: int = U32.unpack(hasher.digest())[0]
        return (digest + self.now() // 4000) & MASK

    def connect(self, sock: TcpSocket, remote: bytes, rport: int) -> None:
        stack = self.stack
        local_pref = None
        isn: int | None = None  # the 4-tuple's TIME-WAIT says where to start, if reused
        if sock.local_addr is not None:
            local_pref = unmap_v4(sock.local_addr)
            if local_pref in (ANY_V4, UNSPECIFIED_V6) or len(local_pref) != len(remote):
                local_pref = None
        rt = stack.route_output(remote, local_pref, sock.bound_device)
        if rt.is_broadcast or rt.is_multicast:
            raise os_error(errno.ENETUNREACH)
        local = rt.src
        if len(local) == 4 and local[0] == 127 and not rt.iface.is_loopback:
            raise os_error(errno.EINVAL)  # Linux __mkroute_output: 127/8 never leaves the host
        if sock.local_addr is None:
            port = self._pick_port(sock, local, remote, rport)
            sock.local_addr = local if sock.family == AF_INET or len(local) == 16 else (
                V4_MAPPED_PREFIX + local)
            sock.local_port = port
            self.port_users.setdefault(port, []).append(sock)
        else:
            previous = self.conns.get((local, sock.local_port, remote, rport))
            if previous is not None:
                isn = self._reuse_time_wait(previous)
            if unmap_v4(sock.local_addr) in (ANY_V4, UNSPECIFIED_V6):
                sock.local_addr = local if sock.family == AF_INET or len(local) == 16 else (
                    V4_MAPPED_PREFIX + local)
        key = (local, sock.local_port, remote, rport)
        conn = TcpConnection(self, sock.family, local, sock.local_port, remote, rport, rt,
                             self._isn(key) if isn is None else isn)
        conn.socket = sock
        sock.conn = conn
        sock.apply_options(conn)
        self._register(conn, key)
        conn.open_active()

    def _reuse_time_wait(self, previous: TcpConnection | TimeWaitRecord) -> int:
        """connect() from an explicitly bound port to a 4-tuple already in the table.

        As Linux's tcp_twsk_unique when the port was bound (no ephemeral search, so
        net.ipv4.tcp_tw_reuse does not apply): a TIME-WAIT that recorded the peer's
        timestamps gives way, since PAWS keeps its old duplicates out of the new
        connection, which starts its sequence space 65537 past the old one's end.
        Anything else holding the 4-tuple is EADDRNOTAVAIL. Returns the new ISN.
        """
        if isinstance(previous, TimeWaitRecord):
            if not previous.ts_enabled:
                raise os_error(errno.EADDRNOTAVAIL)
            end = previous.snd_max
            previous.end()
        else:
            if previous.state != TIME_WAIT or not previous.ts_enabled:
                raise os_error(errno.EADDRNOTAVAIL)
            end = previous.snd_max
            previous._set_closed()  # what its TIME-WAIT timer would have done
        self.stack.counters["tcp.time_wait_reused"] += 1
        return (end + 65537) & MASK or 1

    def _pick_port(self, sock: TcpSocket, local: bytes, remote: bytes, rport: int) -> int:
        low, high = self.ephemeral_range
        span = high - low + 1
        rng = self.rng
        if span > 0 and type(rng) is random.Random:
            # `rng.randrange(span)` without its Python frames, drawing the same bits: what
            # CPython's Random._randbelow_with_getrandbits does for a plain Random
            bits = span.bit_length()
            start = rng.getrandbits(bits)
            while start >= span:
                start = rng.getrandbits(bits)
        else:
            start = rng.randrange(span)
        conns = self.conns
        port_users = self.port_users
        for i in range(span):
            port = low + (start + i) % span
            if (local, port, remote, rport) in conns:
                continue
            users = port_users.get(port)
            if users and self._port_taken(users):
                continue
            return port
        raise os_error(errno.EADDRNOTAVAIL)

    @staticmethod
    def _port_taken(users: list[TcpSocket]) -> bool:
        """Whether a socket on the port keeps connect() off it (bound or listening)."""
        for user in users:
            if not user.closed and (user.explicit_bind or user.listening):
                return True
        return False

    def slim_time_wait(self, conn: TcpConnection) -> None:
        """An orphaned connection in TIME-WAIT becomes a `TimeWaitRecord` (as Linux's
        inet_timewait_sock) when nothing but the 4-tuple's protection is left of it; the
        record takes over its table entries and its TIME-WAIT timer."""
        if not TimeWaitRecord.eligible(conn):
            return
        window = conn._advertise_window()
        if conn.rcv_adv < conn.rcv_nxt + window:
            return  # its next ACK would still move the window's edge: stay whole
        timer = conn._timers.pop("timewait")
        due = timer.due
        timer_at = timer.when
        timer.kind = None  # the record is called, not a connection's `_fire`
        entry = self.memory_charged.pop(conn, None)
        memory = entry[0] if entry is not None else self._memory_of(conn)
        record = TimeWaitRecord(conn, memory, window >> conn.rcv_wscale, timer, due, timer_at)
        timer.callback = record
        key = conn.key
        self.conns[key] = record
        group = self.conns_by_port.setdefault(conn.lport, set())
        group.discard(conn)
        group.add(record)

    def _register(self, conn: TcpConnection,
                  key: tuple[bytes, int, bytes, int] | None = None) -> None:
        """Enter `conn` in the tables (`key`: its 4-tuple, if the caller has it built)."""
        self.conns[conn.key if key is None else key] = conn
        group = self.conns_by_port.get(conn.lport)
        if group is None:
            self.conns_by_port[conn.lport] = {conn}
        else:
            group.add(conn)

    def on_state_change(self, conn: TcpConnection) -> None:
        if conn.state != CLOSED:
            return
        listener = conn.listener
        # one that stays in the accept queue (below) keeps what it holds charged until
        # it is accepted and closed, or its listener closes
        self.settle_memory(conn, release=conn.socket is None and (
            listener is None or conn not in listener.accept_queue))
        key = conn.key
        if self.conns.get(key) is conn:
            del self.conns[key]
        group = self.conns_by_port.get(conn.lport)
        if group is not None:
            group.discard(conn)
            if not group:
                del self.conns_by_port[conn.lport]
        if listener is not None:
            # a half-open one just goes; an established one that ends while it waits in
            # the accept queue stays there, as on Linux: accept() still returns it and
            # its first recv() reports why it ended (ECONNRESET)
            listener.syn_queue.pop(conn.key, None)

    # --- output ------------------------------------------------------------
    def output(self, conn: TcpConnection | TimeWaitRecord, segment: bytes, ecn: int = 0, *,
               offload: bool = False, gso_size: int = 0) -> None:
        """Send one of conn's segments. The IP header's ECN field is TCP's (`ecn`), never
        the IP_TOS option's low bits (as Linux masks them for stream sockets).
        `offload`: a checksum-partial (super-)segment of `gso_size`-byte pieces."""
        stack = self.stack
        tos = (conn.tos & ~3) | ecn
        try:
            if len(conn.remote) == 4:
                if offload:  # what `HostStack.send_ipv4` does with it, without the hop
                    stack.ipv4.send_offloaded(conn.rt, 6, segment, conn.ttl, tos, True,
                                              gso_size)
                else:
                    stack.send_ipv4(conn.rt, 6, segment, ttl=conn.ttl, tos=tos,
                                    dont_frag=True, gso_size=gso_size)
            else:
                stack.send_ipv6(conn.rt, 6, segment, hop_limit=conn.ttl, traffic_class=tos,
                                offload=offload, gso_size=gso_size)
        except OSError:
            stack.counters.drop("tcp", "output_refused")
            return
        stack.counters["tcp.out"] += 1

    def _reply(self, meta: IpMeta, seg: wire_tcp.TcpPacket, seq: int, ack: int, flags: int,
               options: wire_tcp.TcpOptions | None = None, window: int = 0) -> None:
        """Send a segment answering `seg` (RST, SYN-cookie SYN-ACK) without a connection."""
        stack = self.stack
        try:
            rt = stack.route_output(meta.src, meta.dst)
        except OSError:
            return
        header = wire_tcp.TcpRepr(seg.dst_port, seg.src_port, seq & MASK, ack & MASK, flags,
                                  window, 0, options or wire_tcp.TcpOptions())
        segment = header.build(b"", meta.dst, meta.src)
        try:
            if meta.version == 4:
                stack.send_ipv4(rt, 6, segment, dont_frag=True)
            else:
                stack.send_ipv6(rt, 6, segment)
        except OSError:
            stack.counters.drop("tcp", "output_refused")
            return
        stack.counters["tcp.out"] += 1

    def _send_reset(self, meta: IpMeta, seg: wire_tcp.TcpPacket) -> None:
        """RFC 9293 §3.10.7.1: the reset that answers a segment for no connection."""
        if seg.flags & RST:
            return
        self.stack.counters["tcp.rst_out"] += 1
        if seg.flags & ACK:
            self._reply(meta, seg, seg.ack, 0, RST)
        else:
            self._reply(meta, seg, 0, seg.seq + _seg_len(seg), RST | ACK)

    def send_reset_for(self, conn: TcpConnection, seg: wire_tcp.TcpPacket) -> None:
        """A reset for an unacceptable segment on a connection (SYN-SENT, SYN-RECEIVED)."""
        if seg.flags & RST:
            return
        self.stack.counters["tcp.rst_out"] += 1
        if seg.flags & ACK:
            header = wire_tcp.TcpRepr(conn.lport, conn.rport, seg.ack, 0, RST, 0)
        else:
            header = wire_tcp.TcpRepr(conn.lport, conn.rport, 0,
                                      (seg.seq + _seg_len(seg)) & MASK, RST | ACK, 0)
        self.output(conn, header.build(b"", conn.rt.src, conn.remote))

    def allow_challenge_ack(self) -> bool:
        now = self.now()
        limit = self.config.challenge_ack_limit
        elapsed = now - self._challenge_stamp
        self._challenge_stamp = now
        self._challenge_tokens = min(limit, self._challenge_tokens + elapsed / 1e9 * limit)
        if self._challenge_tokens >= 1:
            self._challenge_tokens -= 1
            return True
        self.stack.counters["tcp.challenge_ack_limited"] += 1
        return False

    # --- input -------------------------------------------------------------
    def receive(self, meta: IpMeta, payload: memoryview,
                header: wire_tcp.TcpPacket | None = None) -> bool:
        """One segment (`payload`) for this host. `header`: its header as parsing would
        read it, built by the vnet stack that sent it (`GsoFrame.tcp_header`, whose
        checksum a super-frame's receiver trusts), instead of parsing."""
        outer = self.begin_turn()
        try:
            return self._receive(meta, payload, header)
        finally:
            self.end_turn(outer)

    def _receive(self, meta: IpMeta, payload: memoryview,
                 header: wire_tcp.TcpPacket | None = None) -> bool:
        stack = self.stack
        if header is None:
            parsed = wire_tcp.TcpPacket.parse(payload, meta.src, meta.dst,
                                              verify_checksum=not meta.csum_trusted)
            if isinstance(parsed, WireError):
                stack.counters.drop("tcp", parsed)
                return True
            seg = parsed
        else:
            header.buf = payload
            seg = header
        stack.counters["tcp.in"] += 1
        if meta.is_broadcast or meta.is_multicast:
            stack.counters.drop("tcp", "broadcast")
            return True
        flags = seg.flags
        if flags & SYN and flags & FIN:
            stack.counters.drop("tcp", "syn_fin")
            return True
        conn = self.conns.get((meta.dst, seg.dst_port, meta.src, seg.src_port))
        if conn is not None:
            if isinstance(conn, TimeWaitRecord):
                if not (flags & (SYN | ACK | RST) == SYN and conn.reusable(seg)):
                    if len(seg.buf) > seg.data_offset and not self._memory_for_payload(
                            conn, seg):
                        stack.counters.drop("tcp", "memory")
                    conn.segment_arrives(seg)
                    return True
                conn.end()  # a new incarnation: the listener (if any) takes the SYN
                stack.counters["tcp.time_wait_reused"] += 1
            elif not (conn.state == TIME_WAIT and flags & (SYN | ACK | RST) == SYN
                      and self._time_wait_reusable(conn, seg)):
                conn.ip_ecn_in = meta.tos & 3
                if len(seg.buf) > seg.data_offset and not self._memory_for_payload(conn, seg):
                    stack.counters.drop("tcp", "memory")
                conn.segment_arrives(seg)
                # settle_memory's "nothing moved" test first (most segments): no call
                entry = self.memory_charged.get(conn)
                footprint = len(conn.sendq) + len(conn.rcv_buf) + conn.ooo.bytes
                state = conn.state
                if (footprint != entry[1] or state == CLOSED) if entry is not None else (
                        footprint):
                    self.settle_memory(conn)
                if state == TIME_WAIT and conn.socket is None:
                    self.slim_time_wait(conn)
                return True
            else:
                conn._set_closed()  # a new incarnation: the listener (if any) takes the SYN
                stack.counters["tcp.time_wait_reused"] += 1
        listener = self._find_listener(meta, seg.dst_port)
        if listener is not None:
            self._listen_input(listener, meta, seg)
            return True
        stack.counters.drop("tcp", "no_socket")
        self._send_reset(meta, seg)
        return True

    # --- socket memory -----------------------------------------------------
    def _memory_of(self, conn: TcpConnection | TimeWaitRecord) -> SocketMemory:
        if isinstance(conn, TimeWaitRecord):
            return conn.memory  # what its connection was charged to
        sock = conn.socket
        if sock is None and conn.listener is not None:
            sock = conn.listener.socket
        return sock.memory if sock is not None else self.stack.socket_memory

    def _memory_for_payload(self, conn: TcpConnection | TimeWaitRecord,
                            seg: wire_tcp.TcpPacket) -> bool:
        """True if the owner's budget holds the segment's payload; else strip it.

        The header (ACK, window, SACK, RST) is still processed; the payload and a
        FIN riding on it are dropped, and the peer retransmits them. A super-segment
        taken whole (GRO, `stack.wire.gso`) keeps the whole segments that fit, as the
        wire frames it stands for would have been taken one by one until the budget
        ran out.
        """
        entry = None if isinstance(conn, TimeWaitRecord) else self.memory_charged.get(conn)
        memory = entry[0] if entry is not None else self._memory_of(conn)
        payload_len = len(seg.buf) - seg.data_offset
        available = memory.available()
        if payload_len <= available:
            return True
        memory.refused += 1
        keep = 0
        if payload_len > conn.adv_mss and available > 0:
            mss = conn._effective_mss()
            keep = available - available % mss
        seg.buf = seg.buf[:seg.data_offset + keep]
        seg.flags &= ~(FIN | wire_tcp.PSH)
        return False

    def settle_memory(self, conn: TcpConnection, release: bool = False) -> None:
        """Charge the owner for what conn's queues hold now (release: give it all back)."""
        footprint = 0 if release else len(conn.sendq) + len(conn.rcv_buf) + conn.ooo.bytes
        entry = self.memory_charged.get(conn)
        if entry is None:
            if not footprint:
                return
            memory, charged = self._memory_of(conn), 0
        else:
            memory, charged = entry
            if footprint == charged and not release and (footprint or conn.state != CLOSED):
                return  # nothing moved (most segments): the entry stays as it is
        if footprint != charged:
            memory.charge(footprint - charged)
        if footprint or (not release and conn.state != CLOSED):
            self.memory_charged[conn] = (memory, footprint)
        else:
            self.memory_charged.pop(conn, None)

    def reclaim(self, memory: SocketMemory) -> int:
        """Empty the out-of-order queues charged to `memory`; bytes given back.

        Only on connections without SACK: what was never acknowledged in any
        way the peer sends again after its retransmission timeout (as Linux's
        tcp_prune_ofo_queue, counted `tcp.drop.ofo_pruned` per connection). A
        SACKed block is left alone, because a sender (vnet's own included)
        may skip SACKed data when it retransmits, so reneging could stall it.
        """
        freed = 0
        for conn, (charged_to, _footprint) in list(self.memory_charged.items()):
            if charged_to is not memory or not conn.ooo.bytes or conn.sack_enabled:
                continue
            freed += conn.ooo.bytes
            conn.ooo.clear()
            self.stack.counters.drop("tcp", "ofo_pruned")
            self.settle_memory(conn)
        return freed

    def _find_listener(self, meta: IpMeta, port: int) -> TcpListener | None:
        best: TcpListener | None = None
        best_score = -1
        for listener in self.listeners.get(port, ()):
            sock = listener.socket
            local = sock.local_addr
            assert local is not None
            if meta.version == 4:
                if sock.family == AF_INET:
                    addr, score = local, 1
                elif sock.v6only:
                    continue
                elif local == UNSPECIFIED_V6:
                    addr, score = ANY_V4, 0
                elif local[:12] == V4_MAPPED_PREFIX:
                    addr, score = local[12:], 0
                else:
                    continue
                any_addr = ANY_V4
            else:
                if sock.family != AF_INET6:
                    continue
                addr, score, any_addr = local, 1, UNSPECIFIED_V6
            if addr != any_addr:
                if addr != meta.dst:
                    continue
                score += 4
            if sock.bound_device is not None:
                if sock.bound_device != meta.ifindex:
                    continue
                score += 2
            if score > best_score:
                best, best_score = listener, score
        return best

    def _listen_input(self, listener: TcpListener, meta: IpMeta,
                      seg: wire_tcp.TcpPacket) -> None:
        stack = self.stack
        flags = seg.flags
        if flags & RST:
            return
        key = (meta.dst, seg.dst_port, meta.src, seg.src_port)
        if flags & ACK:
            if not flags & SYN and self.config.syncookies and self._accept_cookie(
                    listener, meta, seg, key):
                return
            self._send_reset(meta, seg)
            return
        if not flags & SYN:
            return
        if len(listener.accept_queue) > listener.backlog:
            listener.overflows += 1
            stack.counters.drop("tcp", "listen_overflow")
            return
        if len(listener.syn_queue) >= listener.syn_queue_limit:
            if self.config.syncookies:
                self._send_cookie(listener, meta, seg)
            else:
                stack.counters.drop("tcp", "syn_queue_full")
            return
        try:
            rt = stack.route_output(meta.src, meta.dst)
        except OSError:
            return
        conn = TcpConnection(self, listener.socket.family, meta.dst, seg.dst_port, meta.src,
                             seg.src_port, rt, self._isn(key))
        conn.listener = listener
        listener.socket.apply_options(conn)
        conn.ecn_ok = conn.ecn_setup_syn_accepted(flags, meta.tos & 3)
        listener.syn_queue[key] = conn
        self._register(conn, key)
        conn.open_passive(seg, seg.seq)

    def established_from_syn_received(self, conn: TcpConnection) -> bool:
        listener = conn.listener
        if listener is None:
            return True  # simultaneous open
        if len(listener.accept_queue) > listener.backlog:
            listener.overflows += 1
            self.stack.counters.drop("tcp", "accept_queue_full")
            return False
        listener.syn_queue.pop(conn.key, None)
        listener.accept_queue.append(conn)
        self.stack.driver.wake()
        return True

    @staticmethod
    def _time_wait_reusable(conn: TcpConnection, seg: wire_tcp.TcpPacket) -> bool:
        """A SYN may reopen a 4-tuple in TIME-WAIT when it cannot be an old duplicate
        (RFC 6191, as Linux): its timestamp is newer than the last one seen, or, without
        timestamps, its sequence number is above RCV.NXT."""
        ts = seg.options.timestamp
        if conn.ts_enabled and ts is not None:
            return ((ts[0] - conn.ts_recent) & MASK) - 1 < 0x7FFFFFFF
        return unwrap(seg.seq, conn.rcv_nxt) > conn.rcv_nxt

    # --- SYN cookies ---------------------------------------------------------
    def _cookie_hash(self, key: tuple[bytes, int, bytes, int], count: int, which: int) -> int:
        material = (self.secret + bytes((which,)) + key[0] + key[1].to_bytes(2, "big") + key[2]
                    + key[3].to_bytes(2, "big") + count.to_bytes(4, "big"))
        return int.from_bytes(hashlib.blake2s(material, digest_size=4).digest(), "big")

    def _cookie_isn(self, key: tuple[bytes, int, bytes, int], peer_isn: int, count: int,
                    mss_index: int) -> int:
        return (self._cookie_hash(key, 0, 1) + peer_isn + ((count & 0xFF) << 24)
                + ((self._cookie_hash(key, count, 2) + mss_index) & 0xFFFFFF)) & MASK

    def _send_cookie(self, listener: TcpListener, meta: IpMeta, seg: wire_tcp.TcpPacket) -> None:
        table = COOKIE_MSS_V4 if meta.version == 4 else COOKIE_MSS_V6
        peer_mss = seg.options.mss or table[0]
        mss_index = max(i for i, m in enumerate(table) if m <= max(peer_mss, table[0]))
        count = self.now() // COOKIE_PERIOD_NS
        key = (meta.dst, seg.dst_port, meta.src, seg.src_port)
        isn = self._cookie_isn(key, seg.seq, count, mss_index)
        options = wire_tcp.TcpOptions(mss=table[mss_index])
        flags = SYN | ACK
        ts = seg.options.timestamp
        if ts is not None and self.config.timestamps:
            wscale = seg.options.wscale if seg.options.wscale is not None else 0xF
            sack = 1 if seg.options.sack_permitted else 0
            ecn = (self.config.ecn != 0 and seg.flags & (ECE | CWR) == ECE | CWR
                   and meta.tos & 3 == 0)
            flags |= ECE if ecn else 0
            # the connection keeps this clock offset, so its TSvals never run backwards
            ts_clock = self.now() // 1_000_000 + self._cookie_ts_offset(key)
            tsval = ((ts_clock & ~0x3F) | (min(wscale, 0xF) << 1) | sack
                     | (COOKIE_TS_ECN if ecn else 0))
            options = wire_tcp.TcpOptions(mss=table[mss_index], timestamp=(tsval & MASK, ts[0]),
                                          sack_permitted=bool(sack),
                                          wscale=COOKIE_WSCALE if seg.options.wscale is not None
                                          else None)
        listener.cookies_sent += 1
        self.stack.counters["tcp.syncookies_sent"] += 1
        self._reply(meta, seg, isn, seg.seq + 1, flags, options, 0xFFFF)

    def _cookie_ts_offset(self, key: tuple[bytes, int, bytes, int]) -> int:
        return self._cookie_hash(key, 0, 3)

    def _accept_cookie(self, listener: TcpListener, meta: IpMeta, seg: wire_tcp.TcpPacket,
                       key: tuple[bytes, int, bytes, int]) -> bool:
        """Check a cookie ACK: False when it is no valid cookie (the caller resets).

        A valid cookie whose connection finds the accept queue full is dropped,
        as Linux's tcp_v4_syn_recv_sock/cookie_v4_check do (ListenOverflows):
        the client believes it is connected, retransmits its data (or its
        next segment carries the same cookie), and that segment is admitted
        once the application has accepted.
        """
        isn = (seg.ack - 1) & MASK
        peer_isn = (seg.seq - 1) & MASK
        table = COOKIE_MSS_V4 if meta.version == 4 else COOKIE_MSS_V6
        value = (isn - self._cookie_hash(key, 0, 1) - peer_isn) & MASK
        now_count = self.now() // COOKIE_PERIOD_NS
        cookie_count = value >> 24
        age = (now_count - cookie_count) & 0xFF
        if age > 2 or age > now_count:
            return False  # too old, or minted before the clock started: not one of ours
        count = now_count - age
        mss_index = (value - self._cookie_hash(key, count, 2)) & 0xFFFFFF
        if mss_index >= len(table):
            self.stack.counters["tcp.syncookies_failed"] += 1
            return False
        wscale: int | None = None
        sack = False
        ecn = False
        ts = seg.options.timestamp
        if ts is not None:
            echoed = ts[1]
            ws = (echoed >> 1) & 0xF
            wscale = None if ws == 0xF else ws
            sack = bool(echoed & 1)
            ecn = bool(echoed & COOKIE_TS_ECN) and self.config.ecn != 0
        if len(listener.accept_queue) > listener.backlog:
            listener.overflows += 1
            self.stack.counters.drop("tcp", "accept_queue_full")
            return True  # dropped, not reset: the client's retransmission gets in later
        try:
            rt = self.stack.route_output(meta.src, meta.dst)
        except OSError:
            return False
        conn = TcpConnection(self, listener.socket.family, meta.dst, seg.dst_port, meta.src,
                             seg.src_port, rt, isn)
        conn.ts_offset = self._cookie_ts_offset(key)
        listener.socket.apply_options(conn)
        conn.listener = listener
        self._register(conn)
        conn.open_from_cookie(seg, unwrap(seg.seq, peer_isn), table[mss_index], wscale, sack)
        conn.ecn_ok = ecn
        listener.accept_queue.append(conn)
        listener.cookies_accepted += 1
        self.stack.counters["tcp.syncookies_accepted"] += 1
        if seg.payload:
            conn.ip_ecn_in = meta.tos & 3
            conn.segment_arrives(seg)
        self.stack.driver.wake()
        return True

    # --- ICMP ----------------------------------------------------------------
    def icmp_error(self, version: int, err: int, invoking: memoryview, icmp_type: int,
                   icmp_code: int, info: int) -> None:
        from .wire import ipv4, ipv6

        if version == 4:
            q4 = ipv4.Ipv4Packet.parse(invoking, verify_checksum=False, partial=True)
            if isinstance(q4, WireError):
                return
            src, dst, upper = q4.src, q4.dst, q4.payload
            frag_needed = icmp_type == 3 and icmp_code == 4
        else:
            q6 = ipv6.Ipv6Packet.parse(invoking, partial=True)
            if isinstance(q6, WireError):
                return
            src, dst, upper = q6.src, q6.dst, q6.upper_payload
            frag_needed = icmp_type == 2
        if len(upper) < 8:
            return
        sport = int.from_bytes(upper[0:2], "big")
        dport = int.from_bytes(upper[2:4], "big")
        seq32 = int.from_bytes(upper[4:8], "big")
        conn = self.conns.get((src, sport, dst, dport))
        if conn is None:
            return
        seq = unwrap(seq32, conn.snd_una)
        if not conn.snd_una - 1 <= seq <= conn.snd_max:  # RFC 5927 §4.1: must be in flight
            self.stack.counters.drop("tcp", "icmp_out_of_window")
            return
        conn.icmp_error(err, icmp_type, icmp_code, info, frag_needed)
        self.stack.driver.wake()
