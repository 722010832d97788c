"""TCP output: the part of `TcpConnection` that decides what to send and builds it.

`_output` sends whatever the windows (cwnd, or PRR's during SACK recovery, and
the peer's), Nagle, sender silly-window avoidance and the state allow: holes
first in SACK recovery, then new data, then a FIN. `_transmit` builds every
segment (options, advertised window, ECN marks) and hands it to the TCP layer's
IP output; it is the only place sequence numbers are masked back to 32 bits.

Written as a part of the connection class (it inherits `TcpTimers`; the chain
is in stack/tcp_tcb.py), not as a helper object holding a reference to the
connection: this is the per-segment path, and as methods of the connection
these read its variables with one attribute lookup each, exactly as before the
split.

Touches only its connection's variables and the TCP layer's output.
"""

from __future__ import annotations

from .tcp_tcb import (
    ACK,
    CLOSE_WAIT,
    ESTABLISHED,
    FIN,
    FIN_WAIT_1,
    LAST_ACK,
    MASK,
    PSH,
    RST,
    SENDS_DATA,
    SYN,
    SYN_RECEIVED,
)
from .tcp_timers import TcpTimers
from .wire import tcp as wire_tcp
from .wire.gso import GSO_MAX_SIZE


class TcpOutput(TcpTimers):
    """Segment output of one connection."""

    def _advertise_window(self) -> int:
        """The window to advertise now (bytes, before scaling); never shrinks the right edge."""
        rcvbuf = self.rcvbuf
        free = rcvbuf - len(self.rcv_buf) - self.ooo.bytes
        if free < 0:
            free = 0
        if self.shut_rd and free < rcvbuf:
            free = rcvbuf
        rcv_nxt = self.rcv_nxt
        rcv_adv = self.rcv_adv
        right = rcv_nxt + free
        if right < rcv_adv:
            right = rcv_adv  # never shrink
        elif rcv_adv > rcv_nxt:
            half = rcvbuf // 2
            adv_mss = self.adv_mss
            if right - rcv_adv < (half if half < adv_mss else adv_mss):
                right = rcv_adv  # receiver SWS avoidance: hold the old edge
        window = right - rcv_nxt
        # the scaled field cannot say every byte count: round up (as Linux), since rounding
        # down would pull the right edge back below RCV.ADV, i.e. shrink the window
        shift = self.rcv_wscale
        if shift:
            step = (1 << shift) - 1
            window = (window + step) & ~step
        most = 0xFFFF << shift
        return window if window < most else most

    def _syn_options(self, peer: wire_tcp.TcpOptions | None) -> wire_tcp.TcpOptions:
        cfg = self.config
        want_ts = cfg.timestamps and (peer is None or peer.timestamp is not None)
        want_sack = cfg.sack and (peer is None or peer.sack_permitted)
        want_ws = cfg.window_scaling and (peer is None or peer.wscale is not None)
        return wire_tcp.TcpOptions(
            mss=self.adv_mss,
            wscale=self.rcv_wscale if want_ws else None,
            sack_permitted=want_sack,
            timestamp=(self._ts_now(), self.ts_recent if peer is not None else 0)
            if want_ts else None,
        )

    def _data_options(self) -> wire_tcp.TcpOptions:
        """Options of a non-SYN segment now: timestamps, and SACK blocks while data is queued
        out of order (most recent first, RFC 2018 §4)."""
        if self.sack_enabled and (len(self.ooo) or self.dsack_block is not None):
            count = 3 if self.ts_enabled else 4
            blocks = tuple((s & MASK, e & MASK)
                           for s, e in self._sack_blocks_to_send(count))
            return wire_tcp.TcpOptions(
                timestamp=(self._ts_now(), self.ts_recent) if self.ts_enabled else None,
                sack_blocks=blocks)
        if self.ts_enabled:
            return wire_tcp.TcpOptions(timestamp=(self._ts_now(), self.ts_recent))
        return wire_tcp.NO_OPTIONS

    def _data_option_values(self) -> tuple[bytes | None, wire_tcp.TcpOptions | None]:
        """The options of a non-SYN segment now, as `_transmit` takes them: (area,
        options). The area of nearly every segment, the timestamp alone, is None and
        the options hold it (`_transmit` packs it with the header); with SACK blocks the
        area is `_data_options()` encoded and the options None (`encode` may leave
        blocks out: whoever needs them decodes the area); without options (b"",
        `NO_OPTIONS`)."""
        if self.sack_enabled and (self.ooo.starts or self.dsack_block is not None):
            return self._data_options().encode(), None
        if self.ts_enabled:
            return None, wire_tcp.TcpOptions(None, None, False, (),
                                             (self._ts_now(), self.ts_recent))
        return b"", wire_tcp.NO_OPTIONS

    def _transmit(self, seq: int, flags: int, payload: bytes | bytearray | memoryview = b"",
                  option_area: bytes | None = None, gso_size: int = 0,
                  sendq_view: memoryview | None = None,
                  options: wire_tcp.TcpOptions | None = None) -> None:
        """Build and send one segment; a super-segment of `gso_size`-byte pieces when
        `gso_size` is set (its link offloads: see `_gso_limit`). `option_area` and
        `options` as `_data_option_values` gives them (an area, None when the options are
        the timestamp alone; the options parsing the area gives, None when only the area
        says); both None: the data options now.

        `payload` may be a slice of `sendq_view`, a view of the send queue: both are
        released once the segment is built, before it is sent (sending may deliver an
        ACK at once, which trims the queue, and a bytearray with a live view cannot
        shrink).

        A segment that leaves as a super-frame over IPv4 carries its header as the
        receiver's parse would read it (`stack.wire.tcp.built_header`, on
        `GsoFrame.tcp_header`), so a vnet stack receiving it whole does not parse it."""
        rcv_nxt = self.rcv_nxt
        ack = rcv_nxt if flags & ACK else 0
        if option_area is None and options is None:
            option_area, options = self._data_option_values()
        window = self._advertise_window()
        if flags & SYN:
            if window > 0xFFFF:
                window = 0xFFFF
            if rcv_nxt + window > self.rcv_adv:
                self.rcv_adv = rcv_nxt + window
        else:
            if rcv_nxt + window > self.rcv_adv:
                self.rcv_adv = rcv_nxt + window
            window >>= self.rcv_wscale
        ecn = 0
        if self.ecn_ok and not flags & (SYN | RST):
            flags, ecn = self._ecn_mark(seq, flags, len(payload))
        stack = self.stack
        rt = self.rt
        offload = stack.offload_output(rt.iface)
        payload_len = len(payload)
        try:
            if option_area is None:  # the timestamp alone
                assert options is not None and options.timestamp is not None
                tsval, tsecr = options.timestamp
                segment = wire_tcp.build_ts_segment(self.lport, self.rport, seq, ack, flags,
                                                    window, tsval, tsecr, payload, rt.src,
                                                    self.remote, checksum=not offload)
                option_len = 12
            else:
                segment = wire_tcp.build_segment(self.lport, self.rport, seq, ack, flags,
                                                 window, option_area, payload, rt.src,
                                                 self.remote, checksum=not offload)
                option_len = len(option_area)
                if options is None and offload:  # for `built_header` below
                    options = wire_tcp.options_of_area(option_area)
        finally:
            if sendq_view is not None:
                if isinstance(payload, memoryview):
                    payload.release()
                sendq_view.release()
        if flags & ACK:
            self.last_ack_sent = rcv_nxt
            self.ack_pending = 0
            if "dack" in self._timers:
                self._cancel("dack")
        if gso_size and offload:
            self.stats["segments_out"] += -(-payload_len // gso_size)
        else:
            self.stats["segments_out"] += 1
            gso_size = 0
        # `TcpLayer.output`, inline (every segment of every connection passes here)
        tos = (self.tos & ~3) | ecn
        try:
            if len(self.remote) == 4:
                if offload:
                    assert options is not None
                    # `HostStack.send_ipv4`'s offload case, the header as the receiver
                    # would parse it riding along (`GsoFrame.tcp_header`)
                    stack.ipv4.send_offloaded(
                        rt, 6, segment, self.ttl, tos, True, gso_size,
                        wire_tcp.built_header(self.lport, self.rport, seq, ack, flags, window,
                                              options, option_len))
                else:
                    stack.send_ipv4(rt, 6, segment, ttl=self.ttl, tos=tos, dont_frag=True)
            else:
                stack.send_ipv6(rt, 6, segment, hop_limit=self.ttl, traffic_class=tos,
                                offload=offload, gso_size=gso_size)
        except OSError:
            stack.counters.drop("tcp", "output_refused")
            return
        stack.counters["tcp.out"] += 1

    def _send_ack(self) -> None:
        # SND.MAX, not SND.NXT: after a timeout SND.NXT falls back to SND.UNA, and the
        # peer, which may hold more than we know, would find that sequence number below
        # its RCV.NXT and drop the ACK unread; with both ends retransmitting that deadlocks
        self._transmit(self.snd_max, ACK)

    def _send_challenge_ack(self) -> None:
        if self.layer.allow_challenge_ack():
            self.stats["challenge_acks"] += 1
            self._send_ack()

    def _send_syn(self) -> None:
        if self.retries == 0:
            self.syn_sent_ns = self.now()  # for the handshake's RTT sample (Karn: first only)
        flags = SYN | (ACK if self.state is SYN_RECEIVED else 0)
        flags |= self._ecn_syn_flags()
        peer = self._peer_syn_options if self.state is SYN_RECEIVED else None
        options = self._syn_options(peer)
        # a SYN's options encode whole, so parsing the area gives them back as they are
        self._transmit(self.iss, flags, b"", options.encode(), 0, None, options)
        self.snd_nxt = max(self.snd_nxt, self.iss + 1)
        self.snd_max = max(self.snd_max, self.snd_nxt)

    def _pipe(self) -> int:
        if self.sack_enabled and self.in_recovery:
            return self.scoreboard.pipe(self.snd_una, self.snd_max, self.high_rxt,
                                        self._effective_mss())
        return self.snd_max - self.snd_una if self.snd_nxt >= self.snd_max else (
            self.snd_nxt - self.snd_una)

    def _gso_limit(self, mss: int) -> int:
        """Payload bytes one (super-)segment may carry: `mss`, or on a link that offloads
        a multiple of it sized as Linux's tcp_tso_autosize does -- about 1 ms of the
        pacing rate (2x cwnd/srtt in slow start, 1.2x after), at least two segments,
        at most a 64 KiB IP packet."""
        if not self.stack.offload_output(self.rt.iface):
            return mss
        most = (GSO_MAX_SIZE - 60 - 60) // mss  # IP header and TCP header with options
        srtt = self.srtt_ns
        if srtt:
            cc = self.cc
            ratio = 2.0 if cc.cwnd < cc.ssthresh else 1.2
            per_ms = int(ratio * cc.cwnd * 1_000_000 / srtt)
            most = min(most, max(2, per_ms // mss))
        return max(1, most) * mss

    def _output(self) -> None:
        """Send whatever the windows, Nagle and the state allow."""
        if self.state not in SENDS_DATA:
            return
        if not self.in_recovery and self.snd_nxt >= self.sendq_seq + len(self.sendq) and (
                self.snd_nxt >= self.snd_max or not self.scoreboard.ranges):
            # nothing to send (pure ACKs, the handshake, the teardown), unless a FIN is due:
            # only the persist timer's fate to settle, as at the end of the loop below
            fin_seq = self.fin_seq
            if not ((self.fin_queued and fin_seq is None)
                    or (fin_seq is not None and self.snd_nxt <= fin_seq)):
                if self.snd_una != self.snd_max:
                    self._cancel("persist")
                return
        mss = self._effective_mss()
        # `_gso_limit(mss)` as things stand before anything is sent: now if SACK recovery
        # may send first, else once there is something to send
        gso_limit = self._gso_limit(mss) if self.sack_enabled and self.in_recovery else 0
        cwnd = (self.prr_cwnd if self.in_recovery and self.sack_enabled else self.cc.cwnd) + (
            self.recovery_inflation + self.limited_transmit)
        sent_any = False
        # RFC 6675 loss recovery: retransmit holes first (those whose retransmission was
        # lost too before the rest)
        if self.sack_enabled and self.in_recovery:
            while True:
                pipe = self._pipe()
                if cwnd - pipe < mss and pipe > 0:
                    break
                if self.lost_again:
                    start, end = self.lost_again.pop(0)
                    start = max(start, self.snd_una)
                    if end <= start:
                        continue
                    sent = self._send_data(start, end - start, retransmit=True)
                    self.rexmits[start] = (start + sent, self.snd_max)
                    if start + sent < end:  # cut short by SACK blocks: the rest is next
                        self.lost_again.insert(0, (start + sent, end))
                    sent_any = True
                    continue
                hole = self.scoreboard.next_hole(max(self.high_rxt, self.snd_una),
                                                 self.snd_max, mss)
                if hole is None:
                    break
                start, end = hole
                sent = self._send_data(start, end - start, retransmit=True)
                self.rexmits[start] = (start + sent, self.snd_max)
                self.high_rxt = start + sent
                sent_any = True
        while True:
            data_end = self.sendq_seq + len(self.sendq)
            if self.snd_nxt < self.snd_max and self.scoreboard.ranges:
                # after an RTO: skip what the peer already holds
                for s, e in self.scoreboard.ranges:
                    if s <= self.snd_nxt < e:
                        self.snd_nxt = e
            available = data_end - self.snd_nxt
            in_flight = self._pipe() if self.in_recovery and self.sack_enabled else (
                self.snd_nxt - self.snd_una)
            cwnd_room = cwnd - in_flight
            wnd_room = self.snd_una + self.snd_wnd - self.snd_nxt
            room = min(cwnd_room, wnd_room)
            fin_now = (self.fin_queued and self.fin_seq is None) or (
                self.fin_seq is not None and self.snd_nxt <= self.fin_seq
                and self.snd_nxt >= data_end)
            if available <= 0:
                if fin_now and (self.snd_nxt >= data_end) and cwnd_room > 0:
                    self._send_fin(data_end)
                    sent_any = True
                break
            if room <= 0:
                if self.snd_wnd == 0 or wnd_room <= 0:
                    if self.snd_una == self.snd_max:
                        self._arm_persist()
                break
            if not gso_limit:
                gso_limit = self._gso_limit(mss)
            length = min(gso_limit, available, room)
            if length > mss:  # a super-segment of whole segments; a short tail goes alone
                length -= length % mss
            retransmitting = self.snd_nxt < self.snd_max
            if length < mss and not retransmitting and not self._persist_force:
                more_coming = available > length
                if more_coming and length < self.max_snd_wnd // 2:
                    if self.snd_una == self.snd_max:
                        self._arm_persist()  # the window update that would free us may be lost
                    break  # sender SWS avoidance: wait for a usable window
                if (not self.nodelay and self.snd_nxt > self.snd_una and not
                        (self.fin_queued and not more_coming)):
                    break  # Nagle: one small segment in flight at a time
            with_fin = self.fin_queued and self.snd_nxt + length == data_end and (
                self.fin_seq is None or self.fin_seq == data_end)
            self._persist_force = False
            sent = self._send_data(self.snd_nxt, length, retransmit=retransmitting, fin=with_fin)
            if sent < length:
                with_fin = False
            self.snd_nxt += sent + (1 if with_fin else 0)
            if with_fin:
                self._fin_sent(data_end)
            self.snd_max = max(self.snd_max, self.snd_nxt)
            sent_any = True
        if sent_any and "rtx" not in self._timers:
            self._arm("rtx", self.rto_ns)
        if sent_any:
            self._arm_tlp()
        if self.snd_una != self.snd_max:
            self._cancel("persist")

    def _send_data(self, seq: int, length: int, retransmit: bool, fin: bool = False) -> int:
        """Send [seq, seq+length) from the send queue; returns the bytes actually sent.

        SACK blocks in the options take room from the payload (as Linux's
        tcp_current_mss), so a segment never outgrows the MSS the peer and
        the path allow: the payload is shortened (and a FIN then waits).
        """
        option_area, options = self._data_option_values()
        mss = self._effective_mss()
        room = mss
        # SACK blocks (4 + 8 bytes each) take the room they use beyond the timestamp
        if option_area is not None:
            room -= len(option_area) - (12 if self.ts_enabled else 0)
        gso_size = 0
        if length > room:
            if length > mss and self.stack.offload_output(self.rt.iface):
                gso_size = room  # a super-segment of whole segments (see `_gso_limit`)
                whole = length - length % room
            else:
                whole = room
            if whole != length:
                length = whole
                fin = False
        offset = seq - self.sendq_seq
        sendq_view = memoryview(self.sendq)  # released by `_transmit` (no copy here)
        payload = sendq_view[offset: offset + length]
        flags = ACK | (PSH if seq + length >= self.sendq_seq + len(self.sendq) else 0)
        if fin:
            flags |= FIN
        now = self.now()
        if retransmit:
            self.stats["retransmits"] += 1
            if self.rtt_seq is not None and seq <= self.rtt_seq:
                self.rtt_seq = None  # Karn: no sample from a retransmitted range
        elif self.rtt_seq is None and not self.ts_enabled:
            self.rtt_seq = seq + length
            self.rtt_sent_ns = now
        if self.snd_una == self.snd_max or self.first_unacked_sent_ns == 0:
            self.first_unacked_sent_ns = now
        self._note_sent(seq, length, retransmit, now)
        self._transmit(seq, flags, payload, option_area, gso_size, sendq_view, options)
        return length

    def _send_fin(self, data_end: int) -> None:
        self._transmit(data_end, FIN | ACK)
        if self.fin_seq is None or self.snd_nxt <= data_end:
            self.snd_nxt = data_end + 1
        self._fin_sent(data_end)
        self.snd_max = max(self.snd_max, self.snd_nxt)

    def _fin_sent(self, data_end: int) -> None:
        if self.fin_seq is None:
            self.fin_seq = data_end
            if self.state is ESTABLISHED:
                self._set_state(FIN_WAIT_1)
            elif self.state is CLOSE_WAIT:
                self._set_state(LAST_ACK)
