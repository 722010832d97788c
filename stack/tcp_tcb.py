"""The transmission control block: what one TCP connection knows (RFC 9293 §3.3.1).

`TransmissionControlBlock` holds every variable of a connection (sequence
spaces, buffers, options, ECN, congestion control, loss recovery, RTT,
timers, statistics) and the few helpers all parts of the engine use (the
clock, the effective MSS, state changes). `TcpConnection`
(stack/tcp_connection.py) is this block plus its behaviour, written in parts that
form one chain of single inheritance: `TcpEcn` (stack/tcp_ecn.py) inherits this
class, `TcpRecovery` (tcp_recovery.py) `TcpEcn`, `TcpTimers` (tcp_timers.py)
`TcpRecovery`, `TcpOutput` (tcp_output.py) `TcpTimers`, and `TcpConnection`
`TcpOutput` -- the method resolution order of the former four mixins, and one
native class for mypyc (scripts/compile-stack), which compiles a class with one
base. Every variable is declared here, in one place.

Also here, because every part needs them: the TCP states and the state sets the
engine tests against, `unwrap` for unbounded sequence numbers, the flag and
unit constants, and `TcpConfig`. stack/tcp_connection.py re-exports them.

Touches nothing: state and arithmetic only (the clock is read through the
stack's driver).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

from .congestion import make as make_congestion
from .congestion.cubic import Cubic
from .congestion.newreno import NewReno
from .tcp_sack import ReceiveQueue, SackScoreboard
from .tcp_timer_queue import QueuedTimer
from .wire import tcp as wire_tcp

if TYPE_CHECKING:
    import weakref

    from .host import OutputRoute
    from .tcp import TcpLayer, TcpSocket
    from .weak_handle import WeakHandle

# Final, with literal values: compiled (mypyc) code uses each as a C constant, where a
# plain global is a dictionary lookup and an unboxing at every use. The flags are
# stack/wire/tcp.py's (checked below).
MASK: Final = 0xFFFFFFFF
FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10
ECE: Final = 0x40
CWR: Final = 0x80
ECT0: Final = 2  # the IP header's ECN field (RFC 3168 §5): ECN-Capable Transport(0)
ECN_CE: Final = 3  # Congestion Experienced
if (FIN, SYN, RST, PSH, ACK, ECE, CWR) != (wire_tcp.FIN, wire_tcp.SYN, wire_tcp.RST,
                                           wire_tcp.PSH, wire_tcp.ACK, wire_tcp.ECE,
                                           wire_tcp.CWR):
    raise ImportError("stack/tcp_tcb.py: the TCP flags differ from stack/wire/tcp.py's")

MS: Final = 1_000_000
SEC: Final = 1_000_000_000
COOKIE_WSCALE: Final = 7  # the window scale a SYN-cookie SYN-ACK announces


def unwrap(seq32: int, reference: int) -> int:
    """The unbounded sequence number closest to `reference` whose low 32 bits are seq32."""
    delta = (seq32 - reference) & MASK
    if delta >= 0x80000000:
        delta -= 0x100000000
    return reference + delta


class TcpState(Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"

    # Identity hashing, in C: the engine tests state sets (`state in SENDS_DATA`) on
    # every output, and Enum's own __hash__ is a Python call (hash of the name). Each
    # member is a singleton compared by identity, so this is the same equality.
    __hash__ = object.__hash__


# The states as module constants, which the engine compares against: reading an Enum
# member through its class costs ~70 ns in CPython 3.11, a global ~10 ns, and a
# segment's path makes a dozen such comparisons.
CLOSED: Final = TcpState.CLOSED
LISTEN: Final = TcpState.LISTEN
SYN_SENT: Final = TcpState.SYN_SENT
SYN_RECEIVED: Final = TcpState.SYN_RECEIVED
ESTABLISHED: Final = TcpState.ESTABLISHED
FIN_WAIT_1: Final = TcpState.FIN_WAIT_1
FIN_WAIT_2: Final = TcpState.FIN_WAIT_2
CLOSE_WAIT: Final = TcpState.CLOSE_WAIT
CLOSING: Final = TcpState.CLOSING
LAST_ACK: Final = TcpState.LAST_ACK
TIME_WAIT: Final = TcpState.TIME_WAIT

SYNCHRONIZED: Final = frozenset({
    ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT,
    CLOSING, LAST_ACK, TIME_WAIT,
})
CAN_SEND: Final = frozenset({ESTABLISHED, CLOSE_WAIT})
SENDS_DATA: Final = frozenset({ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1,
                        CLOSING, LAST_ACK})
RECEIVES_DATA: Final = frozenset({ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2})


@dataclass
class TcpConfig:
    """Per-stack TCP settings (Linux sysctl names in comments)."""

    msl_ns: int = 30 * SEC  # TIME_WAIT lasts 2*MSL = 60 s, as Linux
    rto_initial_ns: int = 1 * SEC  # RFC 6298 (2.1)
    rto_min_ns: int = 200 * MS  # Linux TCP_RTO_MIN (RFC 6298 says 1 s; Linux and we use 200 ms)
    rto_max_ns: int = 120 * SEC  # TCP_RTO_MAX
    syn_retries: int = 6  # tcp_syn_retries
    synack_retries: int = 5  # tcp_synack_retries
    retries2: int = 15  # tcp_retries2
    orphan_fin_timeout_ns: int = 60 * SEC  # tcp_fin_timeout
    delayed_ack_ns: int = 40 * MS  # Linux's minimum delayed-ACK time
    # before any data arrived Linux's ato is 0: a delayed ACK goes at the next tick
    delayed_ack_no_data_ns: int = 1 * MS
    quickack_segments: int = 16
    timestamps: bool = True  # tcp_timestamps
    sack: bool = True  # tcp_sack
    window_scaling: bool = True  # tcp_window_scaling
    rmem_default: int = 131072  # tcp_rmem[1]
    wmem_default: int = 16384 * 8  # tcp_wmem[1] (Linux 16 KiB, auto-tuned up; we start larger)
    buffer_max: int = 16 * 1024 * 1024
    keepalive_time_ns: int = 7200 * SEC  # tcp_keepalive_time
    keepalive_intvl_ns: int = 75 * SEC
    keepalive_probes: int = 9
    congestion: str = "cubic"  # tcp_congestion_control
    syncookies: bool = True  # tcp_syncookies = 1: only when the SYN queue overflows
    max_syn_backlog: int = 256
    challenge_ack_limit: int = 1000  # per second, per stack
    rfc1337: bool = False  # tcp_rfc1337: True ignores RSTs in TIME-WAIT (Linux default: no)
    ecn: int = 2  # tcp_ecn: 0 off, 1 request ECN on outgoing SYNs and accept, 2 accept only



_STATS_AT_START: dict[str, int] = {
    "segments_in": 0, "segments_out": 0, "retransmits": 0, "fast_retransmits": 0,
    "timeouts": 0, "dupacks_in": 0, "bytes_acked": 0, "bytes_received": 0,
    "challenge_acks": 0, "ooo_segments": 0, "lost_retransmits": 0, "dsacks_sent": 0,
    "dsacks_in": 0, "undos": 0, "tlp_probes": 0, "rack_recoveries": 0, "reordering": 3,
}
"""A new connection's `stats` (copied: one C call instead of building 17 entries)."""


def effective_mss(peer_mss: int, adv_mss: int, pmtu_mss: int | None, ts_enabled: bool) -> int:
    """Payload bytes per segment: the smaller MSS (and path MTU's) less the timestamp
    option, never under 64 (a connection's, and its TIME-WAIT record's)."""
    mss = min(peer_mss, adv_mss)
    if pmtu_mss is not None:
        mss = min(mss, pmtu_mss)
    if ts_enabled:
        mss -= 12
    return max(mss, 64)


class TransmissionControlBlock:
    """The variables of one connection (RFC 9293 §3.3.1) and the small helpers every part
    of the engine uses; `TcpConnection` is this plus its behaviour (see the module
    docstring for how the parts are chained)."""

    # Every variable of the block is a slot: a connection is made for each SYN and its
    # variables are read and written on every segment; slots make both cheaper than an
    # instance dict of 120-odd keys (4 us instead of 14 us to create one). The parts
    # declare no slots, so what they or a test add lands in an ordinary __dict__ (pure
    # Python only: a compiled class has no __dict__).
    __slots__ = (
        "_timers", "accepted", "ack_pending", "adv_mss",
        "backoff", "cc", "config", "dsack_block", "dupacks", "ecn_cwr_high",
        "ecn_demand_cwr", "ecn_episode", "ecn_ok", "ecn_queue_cwr", "ecn_requested",
        "error", "family", "fin_queued", "fin_received", "fin_seq", "first_unacked_sent_ns",
        "handle", "high_rxt", "in_recovery", "ip_ecn_in", "irs", "iss", "keepalive",
        "keepalive_intvl_ns", "keepalive_probes", "keepalive_sent", "keepalive_time_ns",
        "last_ack_sent", "last_heard_ns", "layer", "limited_transmit", "linger", "listener",
        "local", "loss_recover", "lost_again", "lport", "max_snd_wnd", "min_rtt_ns", "mss",
        "nodelay", "ooo", "orphaned", "peer_mss", "pmtu_mss", "prr_cwnd", "prr_delivered",
        "prr_entry_len", "prr_out", "quickack", "rack_dsack_round", "rack_end",
        "rack_recoveries", "rack_reo_mult", "rack_reordering_seen", "rack_rexmit",
        "rack_rtt_ns", "rack_scan", "rack_xmit_ns", "rcv_adv", "rcv_buf", "rcv_nxt",
        "rcv_wscale", "rcvbuf", "recover", "recover_fs", "recovery_inflation", "remote",
        "reset_received", "retries", "rexmits", "round_end", "rport", "rt", "rto_ns",
        "rtt_sample_ns", "rtt_sent_ns", "rtt_seq", "rttvar_ns", "sack_enabled",
        "scoreboard", "sendq", "sendq_seq", "shut_rd", "snd_max", "snd_nxt", "snd_una",
        "snd_wl1", "snd_wl2", "snd_wnd", "snd_wscale", "sndbuf", "socket", "soft_error",
        "srtt_ns", "stack", "state", "stats", "syn_sent_ns", "tlp_armed", "tlp_due",
        "tlp_high_seq", "tlp_retrans", "tos", "ts_enabled", "ts_offset", "ts_recent", "ttl",
        "tx_ends", "tx_head", "tx_times", "undo_cc", "undo_fack", "undo_high",
        "undo_marker", "undo_retrans", "undo_ts", "user_timeout_ns",
    )

    def __init__(self, layer: TcpLayer, family: int, local: bytes, lport: int, remote: bytes,
                 rport: int, rt: OutputRoute, iss: int) -> None:
        self.layer = layer
        self.stack = layer.stack
        self.config: TcpConfig = layer.config
        self.family = family
        self.local = local
        self.lport = lport
        self.remote = remote
        self.rport = rport
        self.rt = rt
        self.state = CLOSED
        self.socket: TcpSocket | None = None  # None while queued in a listener or orphaned
        self.listener: Any = None  # the TcpListener that made us (SYN_RECEIVED children)
        self.accepted = False
        # send sequence space
        self.iss = iss
        self.snd_una = iss
        self.snd_nxt = iss
        self.snd_max = iss
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self.sendq = bytearray()
        self.sendq_seq = iss + 1
        self.sndbuf = self.config.wmem_default
        self.fin_queued = False
        self.fin_seq: int | None = None
        # receive sequence space
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0
        self.rcv_buf = bytearray()
        self.rcvbuf = self.config.rmem_default
        self.ooo = ReceiveQueue()
        self.fin_received = False
        self.shut_rd = False
        # options
        self.ts_enabled = False
        self.ts_recent = 0
        self.ts_offset = layer.rng.getrandbits(32)
        self.last_ack_sent = 0
        self.sack_enabled = False
        self.snd_wscale = 0
        self.rcv_wscale = 0
        self.peer_mss = 536 if family == 2 else 1220
        self.adv_mss = self._mss_for_mtu(rt.iface.mtu)
        self.pmtu_mss: int | None = None
        self.mss = min(self.peer_mss, self.adv_mss)
        self.nodelay = False
        self.keepalive = False
        self.keepalive_time_ns = self.config.keepalive_time_ns
        self.keepalive_intvl_ns = self.config.keepalive_intvl_ns
        self.keepalive_probes = self.config.keepalive_probes
        self.linger: tuple[bool, int] = (False, 0)
        self.user_timeout_ns = 0
        self.ttl: int | None = None
        self.tos = 0
        # ECN (RFC 3168): see stack/tcp_ecn.py
        self.ecn_ok = False  # negotiated on the handshake
        self.ecn_requested = False  # our SYN asked for it (ECE|CWR)
        self.ecn_demand_cwr = False  # a CE arrived: ECE on every segment until the peer's CWR
        self.ecn_queue_cwr = False  # cwnd was reduced: CWR on the next new data segment
        self.ecn_cwr_high = iss  # no second reduction for ECE before SND.UNA passes this
        self.ecn_episode = (iss, 0)  # the last loss episode (recover, timeouts) CWR announced
        self.ip_ecn_in = 0  # the ECN field of the IP packet that carried the segment arriving
        # congestion control and loss recovery
        # the default built here, in compiled code; any other name through the registry
        # (stack/congestion/__init__.py stays uncompiled: a Python call per connection)
        congestion = self.config.congestion
        self.cc: NewReno = (Cubic(self.mss) if congestion == "cubic"
                            else make_congestion(congestion, self.mss))
        self.scoreboard = SackScoreboard()
        self.in_recovery = False
        self.recover = iss
        self.high_rxt = iss
        self.dupacks = 0
        self.recovery_inflation = 0
        self.limited_transmit = 0  # RFC 3042: new data allowed past cwnd on dupACKs 1 and 2
        # SACK recovery: retransmitted ranges -> SND.MAX when sent, to notice them lost again
        self.rexmits: dict[int, tuple[int, int]] = {}
        self.lost_again: list[tuple[int, int]] = []
        self._init_recovery_extensions()  # D-SACK, undo, RACK-TLP, PRR: tcp_recovery.py
        # RTT and retransmission
        self.srtt_ns: int | None = None
        self.rttvar_ns = 0
        self.rto_ns = self.config.rto_initial_ns
        self.backoff = 0
        self.retries = 0
        self.rtt_seq: int | None = None
        self.rtt_sent_ns = 0
        self.first_unacked_sent_ns = 0
        self.syn_sent_ns = 0
        # delayed ACK
        self.ack_pending = 0
        self.quickack = self.config.quickack_segments
        # keepalive
        self.last_heard_ns = 0
        self.keepalive_sent = 0
        # errors
        self.error = 0  # pending SO_ERROR / returned once by recv/send
        self.soft_error = 0
        self.reset_received = False
        self.orphaned = False
        # timers (stack/tcp_timers.py): kind -> its armed entry (due time included)
        self._timers: dict[str, QueuedTimer] = {}
        # statistics
        self.stats: dict[str, int] = _STATS_AT_START.copy()
        # a weak reference to the closed socket's handle on it (stack/weak_handle.py)
        self.handle: weakref.ref[WeakHandle] | None = None

    # the state of the loss recovery extensions (stack/tcp_recovery.py)
    dsack_block: tuple[int, int] | None
    undo_marker: int | None
    undo_cc: tuple[Any, ...] | None
    loss_recover: int | None
    min_rtt_ns: int | None
    tlp_high_seq: int | None
    round_end: int

    def _init_recovery_extensions(self) -> None:
        iss = self.iss
        self.dsack_block = None  # to report first in the next ACK
        self.undo_marker = None  # SND.UNA when the loss episode began
        self.undo_retrans: list[tuple[int, int]] = []  # its retransmissions not yet D-SACKed
        self.undo_cc = None  # the congestion state before it
        self.undo_ts = 0  # our TSval at its first retransmission (0: none yet)
        self.undo_fack = iss  # the highest SACKed sequence when it began
        self.undo_high = iss  # the end of its highest retransmission
        self.loss_recover = None  # SND.MAX at the RTO, until acknowledged
        # RACK: the send times of original transmissions, in order (ends ascending)
        self.tx_ends: list[int] = []
        self.tx_times: list[int] = []
        self.tx_head = 0  # entries before this index are acknowledged
        self.rack_scan = 0  # entries before this index were judged lost
        self.rack_rexmit: dict[int, tuple[int, int]] = {}  # retransmitted start -> (end, time)
        self.rack_xmit_ns = -1  # send time of the most recently sent segment delivered
        self.rack_end = iss
        self.rack_rtt_ns = 0
        self.rack_reordering_seen = False
        self.rack_reo_mult = 1
        self.rack_dsack_round = iss
        self.rack_recoveries = 0
        self.min_rtt_ns = None
        self.rtt_sample_ns = 0  # the RTT sample this ACK gave (0: none)
        # TLP
        self.tlp_high_seq = None  # SND.MAX after the probe, until resolved
        self.tlp_retrans = False
        self.tlp_due = 0
        self.tlp_armed = (-1, 0, 0)  # (now, SND.UNA, SND.MAX) when last armed
        # PRR
        self.prr_delivered = 0
        self.prr_out = 0
        self.recover_fs = 0
        self.prr_cwnd = 0
        self.prr_entry_len = 0
        # slow-start rounds (HyStart++)
        self.round_end = iss

    _peer_syn_options: wire_tcp.TcpOptions | None = None
    _persist_force = False  # the persist timer fired: send into a small window once

    # What the parts of TcpConnection call in one another, declared here (each part is
    # a class of one chain: TransmissionControlBlock <- TcpEcn <- TcpRecovery <- TcpTimers
    # <- TcpOutput <- TcpConnection) so that a part may call what a later one defines;
    # the module named overrides each. Real methods, not type-checking stubs: mypyc
    # compiles the chain as native classes and calls these through the vtable.
    # tcp_output.py
    def _transmit(self, seq: int, flags: int,
                  payload: bytes | bytearray | memoryview = b"",
                  option_area: bytes | None = None) -> None:
        raise NotImplementedError

    def _output(self) -> None:
        raise NotImplementedError

    def _send_data(self, seq: int, length: int, retransmit: bool,
                   fin: bool = False) -> int:
        raise NotImplementedError

    def _send_ack(self) -> None:
        raise NotImplementedError

    def _send_syn(self) -> None:
        raise NotImplementedError

    def _send_fin(self, data_end: int) -> None:
        raise NotImplementedError

    def _pipe(self) -> int:
        raise NotImplementedError

    # tcp_timers.py
    def _arm(self, kind: str, delay_ns: int) -> None:
        raise NotImplementedError

    def _cancel(self, kind: str) -> None:
        raise NotImplementedError

    def _arm_persist(self) -> None:
        raise NotImplementedError

    # tcp_recovery.py
    def _note_sent(self, seq: int, length: int, retransmit: bool, now: int) -> None:
        raise NotImplementedError

    def _sack_blocks_to_send(self, count: int) -> list[tuple[int, int]]:
        raise NotImplementedError

    def _begin_loss_episode(self, timeout: bool) -> None:
        raise NotImplementedError

    def _arm_tlp(self) -> None:
        raise NotImplementedError

    def _on_tlp_timer(self) -> None:
        raise NotImplementedError

    def _on_rack_timer(self) -> None:
        raise NotImplementedError

    # tcp_ecn.py
    def _ecn_mark(self, seq: int, flags: int, length: int) -> tuple[int, int]:
        raise NotImplementedError

    def _ecn_syn_flags(self) -> int:
        raise NotImplementedError

    # tcp_connection.py
    def _abort(self, err: int, send_rst: bool) -> None:
        raise NotImplementedError

    def _set_closed(self) -> None:
        raise NotImplementedError

    def _set_state(self, state: TcpState) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _timer_due(self, kind: str) -> int:
        """When the timer of `kind` is due (-1: not armed); see stack/tcp_timers.py."""
        timer = self._timers.get(kind)
        return -1 if timer is None else timer.due

    @property
    def key(self) -> tuple[bytes, int, bytes, int]:
        return (self.local, self.lport, self.remote, self.rport)

    def _mss_for_mtu(self, mtu: int) -> int:
        overhead = 40 if len(self.remote) == 4 else 60
        return max(536 if len(self.remote) == 4 else 1220, min(mtu - overhead, 65495))

    def now(self) -> int:
        """The time: the one read for the layer's call in progress (`TcpLayer.turn_now`),
        else the driver's clock."""
        now = self.layer.turn_now
        return now if now >= 0 else self.stack.driver.now_ns()

    def _ts_now(self) -> int:
        return (self.now() // MS + self.ts_offset) & MASK

    def _effective_mss(self) -> int:
        """Payload bytes per segment: the smaller MSS less the timestamp option."""
        return effective_mss(self.peer_mss, self.adv_mss, self.pmtu_mss, self.ts_enabled)


    def _wake(self) -> None:
        self.stack.driver.wake()
