"""Fuzz target for the TCP engine: one connection driven by fuzzer-chosen events.

An input is a program. Its first bytes choose the stack's TCP settings
(SACK, timestamps, window scaling, NewReno or CUBIC, buffer sizes) and how
the connection opens (passive or active, the peer's SYN options, whether the
handshake completes); every following op is one event:

    segment   a peer segment with fuzzed flags, SEQ and ACK (exact, near the
              peer's or the stack's sequence numbers, or any 32-bit value),
              window, options (timestamps, SACK blocks, MSS, WS) and length
    raw       20-60 fuzzed header bytes (ports fixed) and a payload
    data/fin  the peer sends in-order data or its FIN
    ack       a cooperative peer acknowledges everything the stack sent
    send/recv the application sends or receives n bytes
    shutdown, close
    time      the clock moves 2**k ms (timers fire)

Every payload the peer sends is its stream's bytes at the segment's sequence
number, and every payload the application sends is its stream's bytes, so
the target can check, after each event, that:

- nothing raises (socket calls may raise OSError, as documented);
- data is never lost, reordered or invented: what `recv` returns is the
  peer's stream from where the last `recv` ended, and what the stack sends
  is the application's stream at the segment's SEQ, never beyond what was
  handed to `send`;
- the stack never acknowledges what the peer did not send;
- sequence space: SND.UNA <= SND.NXT <= SND.MAX <= end of the send queue
  (+1 for a FIN); SND.UNA, RCV.NXT and the advertised right edge RCV.ADV never
  move back; the send queue starts at SND.UNA (or one before, at the SYN);
- it never wedges: at the end a cooperative peer acknowledges everything and
  answers with its FIN; a connection that can still send gets one more byte
  out, and after close() the connection leaves the table with no timer
  left, within 20 minutes of virtual time.

Where the cooperative peer needs what only the connection knows (the newest
timestamp it took, SND.WL1 after a forged window: see
tests/stack/test_tcp_fuzz_regressions.py) it reads it from the connection.

Touches: only the objects each input builds.
"""

from __future__ import annotations

import errno
import heapq
import random
import socket
import struct
from collections.abc import Callable

from stack.driver import ManualDriver
from stack.host import HostStack
from stack.tcp import TcpLayer, TcpSocket
from stack.tcp_connection import TcpConfig, TcpConnection, TcpState
from stack.wire import ethernet, ipv4
from stack.wire import tcp as wire_tcp
from stack.wire.checksum import ones_sum, pseudo_header_v4
from stack.wire.errors import WireError

MASK = 0xFFFFFFFF
MS = 1_000_000
SEC = 1_000_000_000
LOCAL, PEER = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
OUR_MAC, PEER_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
LPORT, PPORT = 80, 49152  # the stack's port when it listens; the peer's
PEER_ISS = 0xFFFFF000  # near the wrap, as tcp_harness
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_ETH = ethernet.EthernetRepr(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4).build()
_PATTERN_LEN = 65521  # prime: a stream shifted by any amount < 64 KiB does not match itself
_PEER_BYTES = random.Random(1).randbytes(_PATTERN_LEN)
_APP_BYTES = random.Random(2).randbytes(_PATTERN_LEN)


def _stream(table: bytes, offset: int, length: int) -> bytes:
    start = offset % _PATTERN_LEN
    out = table[start:start + length]
    while len(out) < length:
        out += table[:length - len(out)]
    return out


def _signed(value: int) -> int:
    """A 32-bit sequence-number difference as a signed number."""
    value &= MASK
    return value - (1 << 32) if value >= 0x80000000 else value


class Reader:
    """The input, consumed front to back; reads past the end give zeros."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def more(self) -> bool:
        return self.pos < len(self.data)

    def byte(self) -> int:
        pos = self.pos
        self.pos += 1
        return self.data[pos] if pos < len(self.data) else 0

    def u16(self) -> int:
        return (self.byte() << 8) | self.byte()

    def u32(self) -> int:
        return (self.u16() << 16) | self.u16()

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk + bytes(n - len(chunk))


class EngineRun:
    """One stack, one connection, a scripted peer, and the checks."""

    def __init__(self, reader: Reader) -> None:
        self.r = reader
        cfg_bits = reader.byte()
        config = TcpConfig(sack=not cfg_bits & 1, timestamps=not cfg_bits & 2,
                           window_scaling=not cfg_bits & 4,
                           congestion="newreno" if cfg_bits & 8 else "cubic")
        if cfg_bits & 16:
            config.rmem_default = 4096  # small buffers: full windows, zero windows, SWS
            config.wmem_default = 8192
        self.driver = ManualDriver()
        self.stack = HostStack(self.driver, "fuzz", rng=random.Random(cfg_bits))
        self.tcp = TcpLayer(self.stack, config)
        self.stack.transports[6] = self.tcp
        self.out: list[bytes] = []
        iface = self.stack.add_interface("eth0", OUR_MAC)
        iface.transmit = self.out.append
        self.iface = iface
        self.stack.add_address("eth0", "10.0.0.1/24")
        self.stack.arp[iface.index].add_static(PEER, PEER_MAC)
        self.out.clear()
        self.lport = LPORT
        # the peer's view
        self.peer_nxt = 0  # offset in the peer's stream of its next byte (SYN is -1)
        self.peer_max = -1  # highest offset + 1 the peer ever sent (forged or not), FIN counted
        self.peer_fin_at: int | None = None
        self.peer_ts = 1000
        self.stack_iss: int | None = None
        self.stack_max = -1  # offset + 1 of the highest byte (or FIN) the stack sent
        self.stack_acked_us = -1  # the highest peer offset the stack acknowledged
        # the application's view
        self.sock: TcpSocket | None = None
        self.listener: TcpSocket | None = None
        self.app_sent = 0
        self.app_received = 0
        self.closed = False
        self.watermarks: dict[int, tuple[int, int, int]] = {}

    # --- frames ---------------------------------------------------------------------------
    def inject(self, header: wire_tcp.TcpRepr, payload: bytes = b"") -> None:
        segment = header.build(payload, PEER, LOCAL)
        self._inject_segment(segment)

    def _inject_segment(self, segment: bytes) -> None:
        packet = ipv4.Ipv4Repr(PEER, LOCAL, 6).build(segment)
        self.stack.receive_frame(self.iface, _ETH + packet)
        self.drain()

    def drain(self) -> None:
        """Check every segment the stack sent and learn from it."""
        for frame in self.out:
            eth = ethernet.EthernetFrame.parse(frame)
            assert not isinstance(eth, WireError), eth
            if eth.ethertype != ethernet.ETHERTYPE_IPV4:
                continue
            packet = ipv4.Ipv4Packet.parse(eth.payload)
            assert not isinstance(packet, WireError), f"bad IPv4 from the stack: {packet}"
            if packet.protocol != 6:
                continue
            seg = wire_tcp.TcpPacket.parse(packet.payload, packet.src, packet.dst)
            assert not isinstance(seg, WireError), f"bad TCP from the stack: {seg}"
            self._learn(seg)
        self.out.clear()

    def _learn(self, seg: wire_tcp.TcpPacket) -> None:
        flags = seg.flags
        if flags & SYN and self.stack_iss is None:
            self.stack_iss = seg.seq
        if self.stack_iss is None or seg.dst_port != PPORT:
            return
        offset = _signed(seg.seq - self.stack_iss - 1)
        payload = bytes(seg.payload)
        if payload and not flags & RST:
            assert offset >= 0 and offset + len(payload) <= self.app_sent, (
                f"the stack sent [{offset}, {offset + len(payload)}) of an application "
                f"stream {self.app_sent} bytes long")
            assert payload == _stream(_APP_BYTES, offset, len(payload)), (
                f"the stack sent wrong bytes at offset {offset}")
        if not flags & RST:
            end = offset + len(payload) + (1 if flags & FIN else 0)
            self.stack_max = max(self.stack_max, end)
        if flags & ACK and not flags & RST:
            acked = _signed(seg.ack - PEER_ISS - 1)
            assert acked <= self.peer_max, (
                f"the stack acknowledged peer offset {acked}; the peer sent up to "
                f"{self.peer_max}")
            self.stack_acked_us = max(self.stack_acked_us, acked)

    # --- the peer -------------------------------------------------------------------------
    def _peer_seq(self, offset: int) -> int:
        return (PEER_ISS + 1 + offset) & MASK

    def _ack_value(self) -> int:
        if self.stack_iss is None:
            return 0
        return (self.stack_iss + 1 + max(self.stack_max, 0)) & MASK

    def _options(self, bits: int, syn: bool) -> wire_tcp.TcpOptions:
        r = self.r
        timestamp = None
        if bits & 1:
            self.peer_ts = (self.peer_ts + 1) & MASK
            timestamp = (r.u32() if bits & 0x20 else self.peer_ts, r.u32() if bits & 0x40 else 0)
        blocks: tuple[tuple[int, int], ...] = ()
        if bits & 2 and self.stack_iss is not None:
            base = self.stack_iss + 1
            blocks = tuple(
                ((base + r.u16() * 8) & MASK, (base + r.u16() * 8) & MASK)
                for _ in range(1 + (bits >> 2 & 3)))
        mss = 64 + r.u16() % 9000 if bits & 0x80 and syn else None
        wscale = r.byte() % 16 if syn and bits & 0x10 else None
        return wire_tcp.TcpOptions(mss=mss, wscale=wscale, sack_permitted=syn and bool(bits & 8),
                                   sack_blocks=blocks, timestamp=timestamp)

    def _sent_by_peer(self, offset: int, length: int, flags: int) -> None:
        end = offset + (1 if flags & SYN else 0) + length + (1 if flags & FIN else 0)
        if -(1 << 30) < offset < (1 << 30):
            self.peer_max = max(self.peer_max, end)

    def op_segment(self) -> None:
        r = self.r
        flags = r.byte()
        seq_mode, ack_mode = r.byte(), r.byte()
        window = r.u16()
        opt_bits = r.byte()
        length = r.u16() % 3000 if seq_mode & 0x80 else 0
        delta = (r.byte() - 128) * (1 if seq_mode & 0x40 else 97)
        kind = seq_mode & 3
        offset = (self.peer_nxt if kind == 0 else self.peer_nxt + delta if kind == 1
                  else self.stack_acked_us + delta if kind == 2 else r.u32())
        ack_delta = (r.byte() - 128) * (1 if ack_mode & 0x40 else 211)
        ack = self._ack_value() if ack_mode & 3 == 0 else (
            (self._ack_value() + ack_delta) & MASK if ack_mode & 3 == 1 else r.u32())
        seq = self._peer_seq(offset) if kind != 3 else offset
        if kind == 3:
            offset = _signed(seq - PEER_ISS - 1)
        if flags & SYN:  # the peer's ISN never changes: the stream checks rely on it
            seq, offset, length = PEER_ISS, -1, 0
        payload = _stream(_PEER_BYTES, offset, length)
        self._sent_by_peer(offset, length, flags)
        if offset == self.peer_nxt and not flags & RST:
            self.peer_nxt += length
        self.inject(wire_tcp.TcpRepr(PPORT, self.lport, seq, ack, flags, window, r.u16(),
                                     self._options(opt_bits, bool(flags & SYN))), payload)

    def op_raw(self) -> None:
        r = self.r
        words = 5 + r.byte() % 11
        header = bytearray(r.take(4 * words))
        struct.pack_into("!HH", header, 0, PPORT, self.lport)
        header[12] = (header[12] & 0x0F) | (words << 4) if r.byte() & 1 else header[12]
        if header[13] & SYN:
            struct.pack_into("!I", header, 4, PEER_ISS)
        seq = struct.unpack_from("!I", header, 4)[0]
        offset = _signed(seq - PEER_ISS - 1)
        length = r.byte() * 8
        self._sent_by_peer(offset, length, header[13])
        segment = bytearray(bytes(header) + _stream(_PEER_BYTES, offset, length))
        segment[16:18] = b"\0\0"
        csum = 0xFFFF - ones_sum(memoryview(segment), pseudo_header_v4(PEER, LOCAL, 6,
                                                                        len(segment)))
        struct.pack_into("!H", segment, 16, csum)
        self._inject_segment(bytes(segment))

    def peer_segment(self, flags: int, length: int = 0, seq_offset: int | None = None) -> None:
        """A well-behaved peer segment at the peer's SEQ, acknowledging all it saw."""
        conn = self._conn()
        offset = self.peer_nxt if seq_offset is None else seq_offset
        ts = None
        if conn is not None and conn.ts_enabled:
            ts_value = (conn.ts_recent + 1) & MASK  # newer than anything the stack took
            ts = (ts_value, 0)
        payload = _stream(_PEER_BYTES, offset, length)
        self._sent_by_peer(offset, length, flags)
        self.inject(wire_tcp.TcpRepr(PPORT, self.lport, self._peer_seq(offset), self._ack_value(),
                                     flags | ACK, 65535, 0, wire_tcp.TcpOptions(timestamp=ts)),
                    payload)

    def op_data(self) -> None:
        length = 1 + self.r.u16() % 4000
        offset = self.peer_nxt
        self.peer_nxt += length
        self.peer_segment(PSH, length, offset)

    def op_fin(self) -> None:
        if self.peer_fin_at is None:
            self.peer_fin_at = max(self.peer_nxt, self.stack_acked_us)
        self.peer_segment(FIN, 0, self.peer_fin_at)

    def op_ack(self) -> None:
        conn = self._conn()
        offset = self.peer_nxt if self.peer_fin_at is None else self.peer_fin_at + 1
        if self.stack_acked_us >= 0:
            offset = self.stack_acked_us  # from where the stack says it is (RCV.NXT)
        if conn is not None and conn.state != TcpState.CLOSED:
            # a forged segment may have moved SND.WL1 past the peer's SEQ (as on Linux)
            wl1 = (conn.snd_wl1 - PEER_ISS - 1)
            offset = max(offset, min(wl1, conn.rcv_adv - PEER_ISS - 2))
        self.peer_segment(0, 0, offset)

    # --- the application --------------------------------------------------------------------
    def _conn(self) -> TcpConnection | None:
        return self.sock.conn if self.sock is not None else None

    def op_send(self) -> None:
        if self.sock is None or self.closed:
            return
        length = 1 + self.r.u16() % 20000
        try:
            taken = self.sock.send(_stream(_APP_BYTES, self.app_sent, length))
        except OSError:
            return
        assert 0 <= taken <= length
        self.app_sent += taken
        self.drain()

    def op_recv(self) -> None:
        if self.sock is None or self.closed:
            return
        size = 1 + self.r.u16()
        try:
            got = self.sock.recv(size)
        except OSError:
            return
        assert len(got) <= size
        assert got == _stream(_PEER_BYTES, self.app_received, len(got)), (
            f"recv returned wrong bytes at peer stream offset {self.app_received}")
        self.app_received += len(got)
        self.drain()

    def op_shutdown(self) -> None:
        if self.sock is None or self.closed:
            return
        how = (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR)[self.r.byte() % 3]
        try:
            self.sock.shutdown(how)
        except OSError as exc:
            assert exc.errno in (errno.ENOTCONN, errno.EINVAL), exc
        self.drain()

    def op_close(self) -> None:
        if self.sock is None or self.closed:
            return
        if self.r.byte() & 1:
            self.sock.linger = (True, 0)
            if self.sock.conn is not None:
                self.sock.conn.linger = (True, 0)
        self.sock.close()
        self.closed = True
        self.drain()

    def op_time(self) -> None:
        self.driver.advance((1 << (self.r.byte() % 22)) * MS)
        self.drain()

    def op_accept(self) -> None:
        if self.listener is None or self.sock is not None:
            return
        try:
            self.sock = self.listener.accept()
        except OSError:
            return

    # --- opening --------------------------------------------------------------------------
    def open(self) -> None:
        r = self.r
        mode = r.byte()
        opt_bits = r.byte() | 1 if mode & 2 else r.byte()
        options = self._options(opt_bits, True)
        window = r.u16() or 1
        if mode & 1:
            sock = self.tcp.socket(socket.AF_INET)
            sock.connect(PEER, PPORT)
            self.sock = sock
            self.lport = sock.local_port
            self.drain()
            if mode & 4:
                return  # the fuzz answers the SYN (or does not)
            self.peer_max = 0
            self.inject(wire_tcp.TcpRepr(PPORT, self.lport, PEER_ISS, self._ack_value(),
                                         SYN | ACK, window, 0, options))
            return
        listener = self.tcp.socket(socket.AF_INET)
        listener.bind(LOCAL, LPORT)
        listener.listen(4)
        self.listener = listener
        self.peer_max = 0
        self.inject(wire_tcp.TcpRepr(PPORT, self.lport, PEER_ISS, 0, SYN, window, 0, options))
        if mode & 4:
            return
        ts = (self.peer_ts + 1, 0) if options.timestamp is not None else None
        self.inject(wire_tcp.TcpRepr(PPORT, self.lport, self._peer_seq(0), self._ack_value(), ACK,
                                     window, 0, wire_tcp.TcpOptions(timestamp=ts)))
        self.op_accept()

    def ops(self) -> tuple[Callable[[], None], ...]:
        """The events an op byte chooses from (byte % 16), the common ones twice or more."""
        return (self.op_segment, self.op_segment, self.op_segment, self.op_raw, self.op_data,
                self.op_fin, self.op_ack, self.op_ack, self.op_send, self.op_send, self.op_recv,
                self.op_shutdown, self.op_close, self.op_time, self.op_time, self.op_accept)

    # --- the checks -------------------------------------------------------------------------
    def check_connections(self) -> None:
        for conn in list(self.tcp.conns.values()) + ([c] if (c := self._conn()) else []):
            if conn.state == TcpState.CLOSED:
                continue
            assert conn.snd_una <= conn.snd_max, (conn.snd_una, conn.snd_max)
            assert conn.snd_nxt <= conn.snd_max, (conn.snd_nxt, conn.snd_max)
            data_end = conn.sendq_seq + len(conn.sendq)
            assert conn.snd_max <= data_end + (1 if conn.fin_seq is not None else 0), (
                "sent beyond the send queue", conn.snd_max, data_end)
            assert conn.sendq_seq - 1 <= conn.snd_una <= data_end + 1, (
                "the send queue does not start at SND.UNA", conn.sendq_seq, conn.snd_una)
            before = self.watermarks.get(id(conn))
            now = (conn.snd_una, conn.rcv_nxt, conn.rcv_adv)
            if before is not None and conn.state != TcpState.SYN_SENT:
                assert now[0] >= before[0], f"SND.UNA moved back: {before[0]} -> {now[0]}"
                assert now[1] >= before[1], f"RCV.NXT moved back: {before[1]} -> {now[1]}"
                assert now[2] >= before[2], f"the window shrank: {before[2]} -> {now[2]}"
            self.watermarks[id(conn)] = now

    def finish(self) -> None:
        """The peer turns cooperative: the connection must finish without help."""
        conn = self._conn()
        if conn is None or self.sock is None:
            return
        if not self.closed and conn.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT) \
                and not self.sock.shut_wr and not conn.fin_queued:
            self.op_ack()
            try:
                taken = self.sock.send(_stream(_APP_BYTES, self.app_sent, 1))
            except BlockingIOError:
                taken = 0  # the send buffer is full: what is in it must drain first
            self.app_sent += taken
            self._cooperate(lambda: self.stack_max >= self.app_sent or
                            conn.state == TcpState.CLOSED, 20 * 60 * SEC)
            assert self.stack_max >= self.app_sent or conn.state == TcpState.CLOSED, (
                f"wedged in {conn.state}: the stack sent {self.stack_max} of {self.app_sent}")
        if not self.closed:
            self.sock.close()
            self.closed = True
            self.drain()
        self._cooperate(lambda: conn.state == TcpState.CLOSED, 20 * 60 * SEC)
        assert conn.state == TcpState.CLOSED, f"still {conn.state} 20 minutes after close()"
        assert self.tcp.conns.get(conn.key) is not conn, "a closed connection is in the table"
        assert not conn._timers, f"timers left: {sorted(conn._timers)}"

    def _next_timer(self) -> int | None:
        timers = self.driver._timers  # the heap of (when, serial, timer)
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def _cooperate(self, done: Callable[[], bool], limit_ns: int) -> None:
        """Answer everything, then jump to the next timer; until done or the limit."""
        conn = self._conn()
        end = self.driver.now + limit_ns
        for _ in range(200):
            # answer until the stack has nothing more to say, then let time pass
            for _ in range(10_000):
                if done():
                    return
                if conn is None or conn.state in (TcpState.CLOSED, TcpState.SYN_SENT):
                    break
                before = self.stack_max
                self.op_ack()
                if 0 <= self.stack_acked_us < self.peer_nxt:  # retransmit what did not get in
                    self.peer_segment(PSH, min(self.peer_nxt - self.stack_acked_us, 1000),
                                      self.stack_acked_us)
                fin_unacked = self.peer_fin_at is None or self.stack_acked_us <= self.peer_fin_at
                # A state past the peer's FIN means the stack took one (perhaps from a
                # fuzzed segment, which sets no peer_fin_at): another FIN one octet on
                # would restart TIME-WAIT for ever, as on Linux.
                if fin_unacked and conn.state not in _PEER_FIN_TAKEN:
                    self.op_fin()
                if self.stack_max == before:
                    break  # nothing new went out: the rest is up to the timers
            if done():
                return
            due = self._next_timer()
            if due is None or due > end:
                return
            self.driver.run_until(max(due, self.driver.now))
            self.drain()


#: States in which the stack has taken the peer's FIN (and SYN-RECEIVED, where a FIN
#: would not be taken yet).
_PEER_FIN_TAKEN = frozenset({TcpState.SYN_RECEIVED, TcpState.CLOSE_WAIT, TcpState.LAST_ACK,
                             TcpState.CLOSING, TcpState.TIME_WAIT})


def tcp_engine_target(data: bytes) -> None:
    run = EngineRun(Reader(data))
    run.open()
    run.check_connections()
    ops = run.ops()
    steps = 0
    while run.r.more() and steps < 64:
        ops[run.r.byte() % len(ops)]()
        run.check_connections()
        steps += 1
    run.finish()


TARGETS: dict[str, Callable[[bytes], None]] = {"tcp_engine": tcp_engine_target}


def _seeds() -> list[bytes]:
    """Programs that reach the main states: a transfer each way, a close each way."""
    # cfg, mode, options (TS, SACKOK, WS, MSS), MSS 1460, WS 7, window 65535
    passive = bytes([0, 0, 0x99, 0x05, 0xB4, 7, 0xFF, 0xFF])
    active = bytes([0, 1, 0x99, 0x05, 0xB4, 7, 0xFF, 0xFF])
    send = bytes([8, 0x10, 0x00])
    data = bytes([4, 0x08, 0x00])
    recv = bytes([10, 0xFF, 0xFF])
    ack, time, fin, close = bytes([6]), bytes([13, 8]), bytes([5]), bytes([12, 0])
    # out-of-order data 1552 bytes ahead (ACK, 1500 bytes, TS and one SACK block)
    lossy = bytes([0, 0x10, 0x81, 0x00, 0xFF, 0xFF, 0x03, 0x05, 0xDC, 0x90, 0x80, 0, 0,
                   0x00, 0x10, 0x00, 0x20])
    return [
        passive + send + ack + data + recv + fin + close + ack,
        active + data + recv + send + time + ack + close + fin,
        passive + send + send + time + time + lossy + ack + data + close,
        bytes([0x1F]) + passive[1:] + send * 3 + time + ack + recv + fin,
        passive + bytes([3]) + bytes(range(64)),
    ]


SEEDS: dict[str, list[bytes]] = {"tcp_engine": _seeds()}
