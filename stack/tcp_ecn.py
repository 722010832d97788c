"""ECN for TCP (RFC 3168): the part of `TcpConnection` that negotiates and echoes it.

RFC 3168 as Linux does it (net.ipv4.tcp_ecn, tcp_ecn_* in tcp_input/tcp_output.c).
Handshake: an ECN-setup SYN carries ECE|CWR (only with tcp_ecn = 1, and not on a
retransmitted SYN: tcp_ecn_fallback); its SYN-ACK carries ECE alone (tcp_ecn = 1
or 2); anything else leaves the connection without ECN. On an ECN connection new
data segments leave ECT(0), retransmissions and pure ACKs not-ECT. A data segment
that arrives CE-marked makes every segment we send carry ECE (ACKed at once) until
a data segment with CWR arrives. ECE on an ACK reduces cwnd once per window of
data (the congestion module's multiplicative decrease, as for a loss, without a
retransmission), not during loss recovery; the next new data segment after any
reduction (ECE, fast recovery or a timeout) carries CWR.

Written as a part of the connection class (it inherits
`TransmissionControlBlock`; the chain is in stack/tcp_tcb.py), not as a helper
object holding a reference to the connection: `_ecn_mark` runs on every
segment sent, and as a method of the connection it reads the connection's
variables with one attribute lookup each, exactly as before the split.

Touches only its connection's variables and congestion control, and the stack's
counters.
"""

from __future__ import annotations

from .tcp_tcb import (
    ACK,
    CWR,
    ECE,
    ECN_CE,
    ECT0,
    SYN_RECEIVED,
    SYN_SENT,
    TransmissionControlBlock,
)


class TcpEcn(TransmissionControlBlock):
    """The ECN negotiation and signals of one connection."""

    def _ecn_syn_flags(self) -> int:
        if self.state is SYN_RECEIVED:
            return ECE if self.ecn_ok else 0
        if self.state is SYN_SENT and self.config.ecn == 1 and self.retries == 0:
            self.ecn_requested = True
            return ECE | CWR
        return 0

    def _ecn_negotiate_active(self, flags: int) -> None:
        """Our SYN asked for ECN: the SYN-ACK grants it with ECE alone (RFC 3168 §6.1.1);
        a simultaneous-open SYN with ECE|CWR."""
        if not self.ecn_requested:
            self.ecn_ok = False
        elif flags & ACK:
            self.ecn_ok = bool(flags & ECE) and not flags & CWR
        else:
            self.ecn_ok = flags & (ECE | CWR) == ECE | CWR
        self.ecn_episode = (self.recover, self.stats["timeouts"])

    def ecn_setup_syn_accepted(self, syn_flags: int, ip_ecn: int) -> bool:
        """Whether a passive open grants ECN to this SYN (Linux tcp_ecn_create_request):
        the SYN asks with ECE|CWR, its IP header is not ECT, and tcp_ecn is not 0."""
        return (self.config.ecn != 0 and syn_flags & (ECE | CWR) == ECE | CWR
                and ip_ecn == 0)

    def _ecn_mark(self, seq: int, flags: int, length: int) -> tuple[int, int]:
        """ECE/CWR flags and the IP ECN field for a segment of an ECN connection."""
        ecn = 0
        if length and seq >= self.snd_max:  # new data: ECN-capable
            ecn = ECT0
            episode = (self.recover, self.stats["timeouts"])
            if episode != self.ecn_episode:  # a loss reduction since the last CWR
                self.ecn_episode = episode
                self.ecn_queue_cwr = True
            if self.ecn_queue_cwr:
                self.ecn_queue_cwr = False
                flags |= CWR
        if self.ecn_demand_cwr:
            flags |= ECE
        return flags, ecn

    def _ecn_data_arrives(self, flags: int) -> None:
        """The ECN signals of an arriving data segment: CWR ends our echo, CE starts it."""
        if flags & CWR and self.ecn_demand_cwr:
            self.ecn_demand_cwr = False
            self.quickack = max(self.quickack, 1)  # ICSK_ACK_NOW
        if self.ip_ecn_in == ECN_CE:
            self.layer.stack.counters["tcp.ecn_ce_in"] += 1
            if not self.ecn_demand_cwr:
                self.ecn_demand_cwr = True
                self.quickack = max(self.quickack, 2)  # the sender may have a tiny cwnd

    def _ecn_echo_arrives(self) -> None:
        """ECE on an ACK: congestion, once per window of data, unless already reducing."""
        if self.in_recovery or self.snd_una < self.ecn_cwr_high:
            return
        now = self.now()
        self.layer.stack.counters["tcp.ecn_reductions"] += 1
        self.cc.on_congestion(now, self.snd_max - self.snd_una)
        self.cc.on_recovery_exit(now)  # no retransmission to wait for: cwnd = ssthresh now
        self.ecn_cwr_high = self.snd_max
        self.ecn_queue_cwr = True
