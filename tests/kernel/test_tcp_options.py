"""TCP option negotiation with the kernel: timestamps, SACK and window scaling.

Inside the namespace the kernel's `net.ipv4.tcp_timestamps`, `tcp_sack` and
`tcp_window_scaling` are switched on and off in every combination. Then:

* the kernel connects to a guest echo server: its SYN carries exactly the
  options switched on, and our SYN-ACK must answer each option the SYN
  offered and no other (RFC 7323 §2.2/§3.2, RFC 2018 §2);
* a guest connects to a kernel echo server: our SYN offers all three, and
  our later segments must follow what the kernel's SYN-ACK accepted.

In both, our later segments carry timestamps exactly when they were
negotiated, SACK blocks only when SACK was, and an unscaled window when
scaling was not agreed; 1 MB goes through and comes back intact with 2 % of
the packets lost in both directions (so SACK and retransmission have work
to do). The kernel's view is tcpdump inside the namespace.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from vnet.link.impairment import Impairment
from vnet.network import SOCK_STREAM

from . import scripted
from .conftest import GUEST4, GUEST6, KERNEL6, KernelLab, Payload, tshark_fields, wait_until

MSS, SACK_PERM, WSCALE, SACK, TIMESTAMP = 2, 4, 3, 5, 8
COMBINATIONS = list(itertools.product((1, 0), repeat=3))
IDS = [f"ts{ts}-sack{sack}-ws{ws}" for ts, sack, ws in COMBINATIONS]
SIZE = 1_000_000


@dataclass(frozen=True)
class Segment:
    src: str
    syn: bool
    ack: bool
    rst: bool
    options: tuple[int, ...]
    wscale: int | None
    mss: int | None
    window: int
    length: int


def _flag(value: str) -> bool:
    return value in ("1", "True")


def _segments(pcap: Path) -> list[Segment]:
    rows = tshark_fields(pcap, "tcp", (
        "ip.src", "ipv6.src", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.reset",
        "tcp.option_kind", "tcp.options.wscale.shift", "tcp.options.mss_val",
        "tcp.window_size_value", "tcp.len"))
    return [Segment(src=r[0] or r[1], syn=_flag(r[2]), ack=_flag(r[3]), rst=_flag(r[4]),
                    options=tuple(int(k) for k in r[5].split(",") if k),
                    wscale=int(r[6]) if r[6] else None, mss=int(r[7]) if r[7] else None,
                    window=int(r[8]), length=int(r[9])) for r in rows]


def _set_kernel_options(lab: KernelLab, ts: int, sack: int, ws: int) -> None:
    lab.sysctl("net.ipv4.tcp_timestamps", ts)
    lab.sysctl("net.ipv4.tcp_sack", sack)
    lab.sysctl("net.ipv4.tcp_window_scaling", ws)


def _lossy() -> dict[str, Impairment]:
    return {"to_kernel_impairment": Impairment(loss=0.02, seed=101),
            "from_kernel_impairment": Impairment(loss=0.02, seed=202)}


def _offers(segment: Segment) -> tuple[bool, bool, bool]:
    return (TIMESTAMP in segment.options, SACK_PERM in segment.options,
            WSCALE in segment.options)


def _check_after_handshake(segments: list[Segment], ours: str, ts: bool, sack: bool,
                           ws: bool) -> None:
    """What our segments after the handshake must look like, given what was agreed."""
    mine = [s for s in segments if s.src == ours and not s.syn and not s.rst]
    assert len(mine) > 50, f"only {len(mine)} segments from vnet"
    with_ts = sum(TIMESTAMP in s.options for s in mine)
    assert with_ts == (len(mine) if ts else 0), (
        f"timestamps {'agreed' if ts else 'not agreed'}, yet {with_ts} of {len(mine)} of our "
        "segments carry one")
    sack_blocks = [s for s in mine if SACK in s.options]
    if not sack:
        assert sack_blocks == [], f"{len(sack_blocks)} SACK blocks although SACK was not agreed"
    if not ws:
        # Unscaled: a receive window of tens of kilobytes shows as such in the raw field
        # (a stack that scaled it anyway would advertise a few hundred bytes).
        assert max(s.window for s in mine) >= 16384, "window looks scaled without scaling"
    for s in mine:
        assert not ({SACK_PERM, WSCALE, MSS} & set(s.options)), f"SYN-only option in {s}"


@pytest.mark.parametrize(("ts", "sack", "ws"), COMBINATIONS, ids=IDS)
def test_kernel_syn_options_are_negotiated_by_our_syn_ack(
        kernel_lab: Callable[..., KernelLab], payloads: Callable[[int], Payload],
        ts: int, sack: int, ws: int) -> None:
    payload = payloads(SIZE)
    lab = kernel_lab(**_lossy())
    _set_kernel_options(lab, ts, sack, ws)
    ready: list[bool] = []
    job = lab.start_guest(lambda: scripted.tcp_echo_server(lab.guest, socket.AF_INET, 6200,
                                                           ready))
    wait_until(lambda: bool(ready) or job.done, what="the guest echo server")
    pcap = lab.tmp / "options.pcap"
    with lab.tcpdump(pcap, "tcp port 6200"):
        proc = lab.run("nc", "-n", "-N", GUEST4, "6200", input=payload.data, timeout_s=120)
    assert proc.stdout == payload.data
    assert job.result() == payload.data

    segments = _segments(pcap)
    syn = next(s for s in segments if s.syn and not s.ack)
    syn_ack = next(s for s in segments if s.syn and s.ack)
    assert syn.src != GUEST4 and syn_ack.src == GUEST4
    assert _offers(syn) == (bool(ts), bool(sack), bool(ws)), f"the sysctls did not apply: {syn}"
    assert _offers(syn_ack) == (bool(ts), bool(sack), bool(ws)), (
        f"kernel SYN offered ts={ts} sack={sack} ws={ws}; our SYN-ACK: {syn_ack}")
    assert syn_ack.mss is not None and 536 <= syn_ack.mss <= 1460, syn_ack
    if ws:
        assert syn_ack.wscale is not None and 0 <= syn_ack.wscale <= 14, syn_ack
    _check_after_handshake(segments, GUEST4, bool(ts), bool(sack), bool(ws))
    if sack:
        assert any(SACK in s.options for s in segments if s.src == GUEST4), (
            "SACK was agreed and packets were lost, yet vnet never sent a SACK block")


@pytest.mark.parametrize(("ts", "sack", "ws"), COMBINATIONS, ids=IDS)
def test_our_syn_is_answered_per_kernel_options_and_we_follow_its_syn_ack(
        kernel_lab: Callable[..., KernelLab], payloads: Callable[[int], Payload],
        ts: int, sack: int, ws: int) -> None:
    payload = payloads(SIZE)
    lab = kernel_lab(**_lossy())
    _set_kernel_options(lab, ts, sack, ws)
    peer = lab.echo_peer("tcp-echo", KERNEL6, 6300)
    pcap = lab.tmp / "options.pcap"

    def echo() -> bytes:
        with lab.guest.socket(socket.AF_INET6, SOCK_STREAM) as sock:
            sock.settimeout(60)
            sock.connect((KERNEL6, 6300))
            got = bytearray()
            for offset in range(0, SIZE, 100_000):  # stay well inside both buffers
                sock.sendall(payload.data[offset:offset + 100_000])
                while len(got) < min(offset + 100_000, SIZE):
                    data = sock.recv(65536)
                    if not data:
                        break
                    got += data
            sock.shutdown(socket.SHUT_WR)
            while data := sock.recv(65536):
                got += data
            return bytes(got)

    with lab.tcpdump(pcap, "tcp port 6300"):
        echoed = lab.in_guest(echo, timeout_s=120)
        assert peer.wait() == 0, peer.describe()
        time.sleep(0.1)
    assert echoed == payload.data

    segments = _segments(pcap)
    syn = next(s for s in segments if s.syn and not s.ack)
    syn_ack = next(s for s in segments if s.syn and s.ack)
    assert syn.src == GUEST6 and syn_ack.src == KERNEL6
    assert _offers(syn) == (True, True, True), f"our SYN should offer all three: {syn}"
    assert syn.mss == 1440, syn
    assert _offers(syn_ack) == (bool(ts), bool(sack), bool(ws)), f"kernel SYN-ACK: {syn_ack}"
    _check_after_handshake(segments, GUEST6, bool(ts), bool(sack), bool(ws))
