"""Segment-level TCP dialogues, in the spirit of packetdrill and smoltcp's socket tests.

A `Dialogue` is one HostStack (10.0.0.1, fd00::1) on a `ManualDriver` with a
`TcpLayer`, facing a scripted peer (10.0.0.2, fd00::2) that exists only in
the test. The test injects segments built with scapy (an independent codec)
at explicit times and asserts on the segments the stack sent, parsed back by
scapy. Templates keep each line to the fields it is about::

    d = Dialogue()
    sock = d.connect()                                  # the stack sends SYN
    syn = d.expect(flags="S", ack=0)                    # only what matters
    d.send(flags="SA", seq=d.REMOTE, ack=d.local + 1)   # the peer answers
    d.expect(flags="A", seq=d.local + 1, ack=d.REMOTE + 1)

`d.local` is the stack's ISS, learned from its first SYN or SYN-ACK;
`d.REMOTE` is the peer's ISS. `send()` fills in what the test leaves out:
ports, ACK = what the stack has sent so far, a 65535 window, no options.
`expect()` asserts that exactly one segment came out and that the named
fields match; `expect_none()` that nothing did. Times are nanoseconds on the
driver (`d.at(t)` / `d.advance(dt)` fire every timer due in between).
"""

from __future__ import annotations

import ipaddress
import random
import socket
from collections.abc import Sequence
from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, IPerror, TCPerror
from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from stack.build import build_host
from stack.driver import ManualDriver
from stack.host import HostStack
from stack.tcp import TcpLayer
from stack.tcp_connection import TcpConfig, TcpConnection
from stack.tcp_socket import TcpSocket
from stack.wire.checksum import ones_sum, pseudo_header_v4, pseudo_header_v6
from tests.stack.harness import OUR_MAC, OUR_MAC_S, PEER_MAC, PEER_MAC_S

MS = 1_000_000
SEC = 1_000_000_000
LOCAL_IP = "10.0.0.1"
REMOTE_IP = "10.0.0.2"
LOCAL_IP6 = "fd00::1"
REMOTE_IP6 = "fd00::2"
LOCAL_PORT = 80
REMOTE_PORT = 49152
REMOTE_ISS = 0xFFFFF000  # near the wrap, so every dialogue exercises 32-bit wraparound

FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40,
             "C": 0x80}


def flag_value(flags: str | int) -> int:
    if isinstance(flags, int):
        return flags
    value = 0
    for letter in flags:
        value |= FLAG_BITS[letter]
    return value


def flag_text(value: int) -> str:
    return "".join(letter for letter, bit in FLAG_BITS.items() if value & bit) or "-"


def options_of(seg: TCP) -> dict[str, Any]:
    """scapy's option list as a dict: {"MSS": 1460, "WScale": 7, "SAckOK": b"", ...}."""
    out: dict[str, Any] = {}
    for name, value in seg.options:
        if name in ("NOP", "EOL"):
            continue
        out[name] = value
    return out


class Dialogue:
    """One stack under test and a scripted peer; see the module docstring."""

    REMOTE = REMOTE_ISS

    def __init__(self, config: TcpConfig | None = None, *, v6: bool = False, mtu: int = 1500,
                 seed: int = 1) -> None:
        self.driver = ManualDriver()
        built = build_host(self.driver, "dut", rng=random.Random(seed), udp=False, ping=False,
                           tcp_config=config)
        assert built.tcp is not None
        self.stack: HostStack = built.stack
        self.tcp: TcpLayer = built.tcp
        self.frames: list[bytes] = []
        self.iface = self.stack.add_interface("eth0", OUR_MAC, mtu)
        self.iface.transmit = self.frames.append
        self.stack.add_address("eth0", "10.0.0.1/24")
        self.stack.add_address("eth0", "fd00::1/64")
        self.stack.arp[self.iface.index].add_static(ipaddress.ip_address(REMOTE_IP).packed,
                                                    PEER_MAC)
        self.stack.ndp[self.iface.index].add_static(ipaddress.ip_address(REMOTE_IP6).packed,
                                                    PEER_MAC)
        self.frames.clear()
        self.v6 = v6
        self.family = socket.AF_INET6 if v6 else socket.AF_INET
        self.local_ip = LOCAL_IP6 if v6 else LOCAL_IP
        self.remote_ip = REMOTE_IP6 if v6 else REMOTE_IP
        self.local_port = LOCAL_PORT
        self.remote_port = REMOTE_PORT
        self.local = 0  # the stack's ISS, once seen
        self.snd_max = self.REMOTE  # highest peer sequence number sent + 1 (after its SYN)
        self.rcv_max = 0  # highest stack sequence number seen + 1

    # --- time ----------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.driver.now

    def at(self, when_ns: int) -> None:
        self.driver.run_until(when_ns)

    def advance(self, delta_ns: int) -> None:
        self.driver.advance(delta_ns)

    # --- the stack's side ------------------------------------------------------
    def socket(self) -> TcpSocket:
        return self.tcp.socket(self.family)

    def addr(self, text: str) -> bytes:
        return ipaddress.ip_address(text).packed

    def listen(self, backlog: int = 8, port: int = LOCAL_PORT) -> TcpSocket:
        sock = self.socket()
        sock.bind(self.addr(self.local_ip), port)
        sock.listen(backlog)
        self.local_port = port
        return sock

    def connect(self, sock: TcpSocket | None = None, port: int = REMOTE_PORT) -> TcpSocket:
        """Start an active open; the SYN is left for the test to `expect`."""
        sock = sock or self.socket()
        sock.connect(self.addr(self.remote_ip), port)
        self.local_port = sock.local_port
        self.remote_port = port
        return sock

    def conn(self, sock: TcpSocket) -> TcpConnection:
        assert sock.conn is not None
        return sock.conn

    # --- the peer's side ---------------------------------------------------------
    def segment(self, flags: str | int = "A", seq: int | None = None, ack: int | None = None,
                win: int = 65535, data: bytes = b"", options: Sequence[Any] = (),
                sport: int | None = None, dport: int | None = None, **tcp_fields: Any
                ) -> Packet:
        """A frame carrying one peer segment (defaults: see the module docstring)."""
        value = flag_value(flags)
        if seq is None:
            seq = self.snd_max
        if ack is None:
            ack = self.rcv_max if value & 0x10 else 0
        tcp = TCP(sport=self.remote_port if sport is None else sport,
                  dport=self.local_port if dport is None else dport,
                  seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF, flags=value,
                  window=win, options=list(options), **tcp_fields)
        frame = Ether(src=PEER_MAC_S, dst=OUR_MAC_S) / self._ip() / tcp
        if data:
            frame = frame / Raw(data)
        return frame

    def _ip(self) -> Packet:
        if self.v6:
            return IPv6(src=self.remote_ip, dst=self.local_ip)
        return IP(src=self.remote_ip, dst=self.local_ip)

    def send(self, flags: str | int = "A", seq: int | None = None, ack: int | None = None,
             win: int = 65535, data: bytes = b"", options: Sequence[Any] = (),
             at: int | None = None, **fields: Any) -> None:
        """Inject one peer segment (at time `at`, if given)."""
        if at is not None:
            self.at(at)
        frame = self.segment(flags, seq, ack, win, data, options, **fields)
        tcp = frame[TCP]
        end = tcp.seq + len(data) + (1 if tcp.flags & 0x03 else 0)
        if (end - self.snd_max) & 0xFFFFFFFF < 0x80000000:
            self.snd_max = self.snd_max + ((end - self.snd_max) & 0xFFFFFFFF)
        self.stack.receive_frame(self.iface, bytes(frame))

    def inject_frame(self, frame: bytes | Packet) -> None:
        self.stack.receive_frame(self.iface, bytes(frame))

    def inject_raw_tcp(self, header_and_payload: bytes, fix_checksum: bool = True) -> None:
        """A hand-made TCP segment (any bytes) from the peer, checksum fixed up."""
        tcp = bytearray(header_and_payload)
        src, dst = self.addr(self.remote_ip), self.addr(self.local_ip)
        if fix_checksum and len(tcp) >= 18:
            tcp[16:18] = b"\0\0"
            pseudo = (pseudo_header_v6(src, dst, 6, len(tcp)) if self.v6
                      else pseudo_header_v4(src, dst, 6, len(tcp)))
            csum = 0xFFFF - ones_sum(memoryview(bytes(tcp)), pseudo)
            tcp[16:18] = csum.to_bytes(2, "big")
        ip_layer = self._ip()
        if self.v6:
            ip_layer.nh = 6
        else:
            ip_layer.proto = 6
        self.inject_frame(Ether(src=PEER_MAC_S, dst=OUR_MAC_S) / ip_layer / Raw(bytes(tcp)))

    def icmp_error_for(self, sent: TCP, kind: str, mtu: int = 0) -> None:
        """An ICMP error about a segment the stack sent: "frag" (v4 frag-needed / v6 PTB),
        "host"/"net"/"port" unreachable."""
        quoted_ip = sent.underlayer
        assert quoted_ip is not None
        frame: Packet
        if self.v6:
            if kind == "frag":
                icmp: Packet = ICMPv6PacketTooBig(mtu=mtu)
            else:
                from scapy.layers.inet6 import ICMPv6DestUnreach
                icmp = ICMPv6DestUnreach(code={"net": 0, "host": 3, "port": 4}[kind])
            frame = (Ether(src=PEER_MAC_S, dst=OUR_MAC_S) / IPv6(src="fd00::fe", dst=self.local_ip)
                     / icmp / bytes(quoted_ip)[:1232])
        else:
            code = {"frag": 4, "host": 1, "net": 0, "port": 3}[kind]
            frame = (Ether(src=PEER_MAC_S, dst=OUR_MAC_S) / IP(src="10.0.0.254", dst=self.local_ip)
                     / ICMP(type=3, code=code, nexthopmtu=mtu) / IPerror(bytes(quoted_ip)[:20])
                     / TCPerror(bytes(quoted_ip)[20:28]))
        self.inject_frame(frame)

    # --- what the stack sent ---------------------------------------------------------
    def sent(self) -> list[TCP]:
        """TCP segments the stack sent since last asked (other frames are dropped)."""
        out: list[TCP] = []
        for raw in self.frames:
            frame = Ether(raw)
            if TCP in frame and ((IP in frame and frame[IP].proto == 6) or IPv6 in frame):
                if ICMP in frame:
                    continue
                seg = frame[TCP]
                out.append(seg)
                if not self.local and seg.flags & 0x02:
                    self.local = seg.seq
                end = seg.seq + len(seg.payload) + (1 if seg.flags & 0x03 else 0)
                if not self.rcv_max or ((end - self.rcv_max) & 0xFFFFFFFF) < 0x80000000:
                    self.rcv_max = end & 0xFFFFFFFF
        self.frames.clear()
        return out

    def expect(self, flags: str | int | None = None, seq: int | None = None,
               ack: int | None = None, win: int | None = None, data: bytes | None = None,
               **options: Any) -> TCP:
        """Exactly one segment came out; the given fields match (options by scapy name)."""
        segs = self.sent()
        assert len(segs) == 1, f"expected one segment, got {[describe(s) for s in segs]}"
        check(segs[0], flags, seq, ack, win, data, **options)
        return segs[0]

    def next_segments(self, limit_ns: int = 600 * SEC, step_ns: int = MS) -> list[TCP]:
        """Advance in steps until the stack sends TCP segments (at most `limit_ns`)."""
        end = self.now + limit_ns
        while self.now < end:
            self.advance(step_ns)
            segs = self.sent()
            if segs:
                return segs
        return []

    def expect_none(self) -> None:
        segs = self.sent()
        assert segs == [], f"expected silence, got {[describe(s) for s in segs]}"

    # --- scripts that many tests start with ---------------------------------------------
    def establish_passive(self, options: Sequence[Any] = (("MSS", 1460),), win: int = 65535,
                          backlog: int = 8) -> tuple[TcpSocket, TcpSocket]:
        """listen(); the peer connects; accept(). Returns (listener, accepted)."""
        listener = self.listen(backlog)
        self.send("S", seq=self.REMOTE, ack=0, win=win, options=options)
        synack = self.expect(flags="SA", ack=self.REMOTE + 1)
        self.local = synack.seq
        self.send("A", seq=self.REMOTE + 1, ack=self.local + 1, win=win)
        self.expect_none()
        return listener, listener.accept()

    def establish_active(self, options: Sequence[Any] = (("MSS", 1460),), win: int = 65535,
                         sock: TcpSocket | None = None, rtt_ns: int = 0) -> TcpSocket:
        """connect(); the peer answers SYN-ACK `rtt_ns` later; the stack ACKs."""
        sock = self.connect(sock)
        syn = self.expect(flags="S")
        self.local = syn.seq
        self.send("SA", seq=self.REMOTE, ack=self.local + 1, win=win, options=options,
                  at=self.now + rtt_ns)
        self.expect(flags="A", seq=self.local + 1, ack=self.REMOTE + 1)
        assert sock.connect_result() == 0
        return sock


def describe(seg: TCP) -> str:
    opts = options_of(seg)
    return (f"[{flag_text(int(seg.flags))}] seq={seg.seq} ack={seg.ack} win={seg.window}"
            f" len={len(seg.payload)}{' ' + str(opts) if opts else ''}")


def check(seg: TCP, flags: str | int | None = None, seq: int | None = None,
          ack: int | None = None, win: int | None = None, data: bytes | None = None,
          **options: Any) -> None:
    """Assert the given fields of one segment (seq/ack compared mod 2**32)."""
    where = describe(seg)
    if flags is not None:
        assert flag_text(int(seg.flags)) == flag_text(flag_value(flags)), where
    if seq is not None:
        assert seg.seq == seq & 0xFFFFFFFF, f"seq {seg.seq} != {seq & 0xFFFFFFFF}: {where}"
    if ack is not None:
        assert seg.ack == ack & 0xFFFFFFFF, f"ack {seg.ack} != {ack & 0xFFFFFFFF}: {where}"
    if win is not None:
        assert seg.window == win, where
    if data is not None:
        assert bytes(seg.payload) == data, where
    have = options_of(seg)
    for name, value in options.items():
        if value is None:
            assert name not in have, where
        elif value is ...:
            assert name in have, where
        else:
            assert have.get(name) == value, where


__all__ = ["MS", "OUR_MAC", "SEC", "Dialogue", "check", "describe", "options_of"]
