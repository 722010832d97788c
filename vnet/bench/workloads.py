"""The workloads: each runs the same C program natively and on vnet, and
fills in its figures.

Every figure comes from the programs' own output, parsed the same way on
both sides (bulk.c's receiver reports bytes over the time from accept to the
end of the stream; udp_rtt.c its nearest-rank percentiles; and so on), so a
ratio compares like with like. A workload repeats `settings.reps` times,
alternating native and vnet runs; the figure is the median.

    figure             native (gcc, netns lo)            vnet (wasm, real time)
    guest_compute      ceiling compute (no sockets)      same, one guest
    hostcall_empty     ceiling empty: getppid            same: the proc_raise import
    tcp_bulk_mtu*      bulk recv / send 127.0.0.1,       two hosts on one segment,
                       lo MTU set                        NIC MTU set
    tcp_static_mtu*    static_bulk sink / source         same, two hosts
    udp64_*            bulk udp-recv / udp-send 64 B     same, two hosts
    tcp_connrate       connrate server / client          same, two hosts
    udp_rtt_*          udp_rtt server / client           same, two hosts
    tun_*              (bulk over lo, MTU 1500)          native bulk in the kernel's
                                                         namespace <-> guest bulk via TUN
    hostcall_*         hostcall: getsockname, send 0 B   same, one guest
    guest_idle_memory  PSS of idle tcp_echo_server       vnet.bench.scale, a child process
    max_guests         (none)                            vnet.bench.scale
    fleet_connect      (none)                            vnet.bench.scale --fleet N
    virtual_time_speed (none)                            vnet.bench.idle: 50 ticker guests,
                                                         virtual time, a child process

`apply_limits` then gives every figure its limits on this machine (see
vnet.bench.figures) from guest_compute, hostcall_empty and the native
static-sender figures.

Touches what the labs touch (see labs.py), plus child Python processes for
the scale search, the guest fleet and the virtual-time topology.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .figures import SPEC_BY_ID, Figure
from .labs import BenchError, NativeLoopback, NativeProgram, TunLab, VnetPair, tun_problem
from .settings import Settings

Log = Callable[[str], None]


@dataclass
class Context:
    settings: Settings
    wasm: dict[str, Path]
    native_bin: dict[str, Path]
    native: NativeLoopback | None
    native_problem: str | None
    log: Log
    figures: dict[str, Figure] = field(default_factory=dict)
    #: the 1-minute load average as each workload started (the scale search's
    #: own threads raise it sharply: it is the last workload for that reason)
    loads: dict[str, float] = field(default_factory=dict)

    def figure(self, fid: str) -> Figure:
        if fid not in self.figures:
            fig = Figure(SPEC_BY_ID[fid])
            if self.native is None:
                fig.native_skipped = self.native_problem
            self.figures[fid] = fig
        return self.figures[fid]


def _attempt(ctx: Context, figs: list[Figure], side: str,
             measure: Callable[[], list[float]]) -> None:
    """Run one measurement; its values go to figs (one value per figure), errors to detail."""
    try:
        values = measure()
    except BenchError as e:
        message = f"{side}: {e}"
        ctx.log(f"    {figs[0].spec.id}: {message.splitlines()[0]}")
        for fig in figs:
            fig.detail.setdefault("errors", []).append(message[:3000])
        return
    for fig, value in zip(figs, values, strict=True):
        (fig.native_runs if side == "native" else fig.vnet_runs).append(value)
    ctx.log("    " + ", ".join(f"{fig.spec.id} {side} {value:.4g} {fig.spec.unit}"
                               for fig, value in zip(figs, values, strict=True)))


def _finish(ctx: Context, figs: list[Figure]) -> None:
    for fig in figs:
        errors = fig.detail.get("errors", [])
        if not fig.vnet_runs and fig.skipped is None:
            fig.skipped = "failed: " + (errors[0].splitlines()[0] if errors else "no result")
        if (ctx.native is not None and not fig.native_runs and fig.native_override is None
                and fig.native_skipped is None):
            fig.native_skipped = "failed: " + next(
                (e.splitlines()[0] for e in errors if e.startswith("native")), "no result")


def _match(pattern: str, text: str, who: str) -> re.Match[str]:
    found = re.search(pattern, text)
    if found is None:
        raise BenchError(f"{who}: unexpected output:\n{text[-1500:]}")
    return found


# --- TCP bulk ----------------------------------------------------------------------

_BULK_RECEIVED = r"bulk: received (\d+) bytes fnv1a64=([0-9a-f]+) in ([\d.]+) s"
_BULK_SENT = r"bulk: sent (\d+) bytes fnv1a64=([0-9a-f]+)"


def bulk_rate(receiver: str, sender: str) -> float:
    """MB/s (10^6 B/s) from bulk.c's receiver, after checking the stream arrived whole."""
    got = _match(_BULK_RECEIVED, receiver, "bulk recv")
    sent = _match(_BULK_SENT, sender, "bulk send")
    if got.group(1) != sent.group(1) or got.group(2) != sent.group(2):
        raise BenchError(f"bulk: stream damaged: sent {sent.group(0)!r}, got {got.group(0)!r}")
    seconds = float(got.group(3))
    if seconds <= 0:
        raise BenchError("bulk: transfer too short to time; use more megabytes")
    return int(got.group(1)) / seconds / 1e6


def tcp_bulk(ctx: Context, mtu: int) -> None:
    s = ctx.settings
    fig = ctx.figure(f"tcp_bulk_mtu{mtu}")
    fig.detail.update(mtu=mtu, native_megabytes=s.bulk_mb_native, vnet_megabytes=s.bulk_mb_vnet,
                      measured_by="bulk.c receiver: bytes / seconds from accept to end of stream")
    _stream_figure(ctx, fig, mtu, "bulk", ("recv", "send"), (s.bulk_mb_native, s.bulk_mb_vnet),
                   5100, bulk_rate)


def _stream_figure(ctx: Context, fig: Figure, mtu: int, program: str, roles: tuple[str, str],
                   megabytes: tuple[float, float], port_base: int,
                   rate: Callable[[str, str], float]) -> None:
    """One TCP stream figure: `program`'s receiving role on one end, its sending role on
    the other, natively over lo and between two vnet hosts, `ctx.settings.reps` times."""
    receiver, sender = roles
    binary, wasm = ctx.native_bin.get(program), ctx.wasm[program]
    for rep in range(ctx.settings.reps):
        port = str(port_base + rep)
        native = ctx.native
        if native is not None and binary is not None:

            def run_native(native: NativeLoopback = native, binary: Path = binary,
                           port: str = port) -> list[float]:
                native.set_mtu(mtu)
                try:
                    recv = native.start(binary, receiver, port)
                    recv.wait_for("listening")
                    send = native.start(binary, sender, "127.0.0.1", port, str(megabytes[0]))
                    return [rate(recv.wait(), send.wait())]
                finally:
                    native.stop_all()

            _attempt(ctx, [fig], "native", run_native)

        def run_vnet(port: str = port) -> list[float]:
            pair = VnetPair(mtu)
            try:
                recv = pair.start("alpha", wasm, receiver, port)
                recv.wait_for("listening")
                send = pair.start("bravo", wasm, sender, VnetPair.ALPHA, port, str(megabytes[1]))
                return [rate(recv.wait(), send.wait())]
            finally:
                pair.close()

        _attempt(ctx, [fig], "vnet", run_vnet)
    _finish(ctx, [fig])


_STATIC_RECEIVED = (r"static_bulk: received (\d+) bytes in (\d+) reads, (\d+) mismatches "
                    r"in ([\d.]+) s")
_STATIC_SENT = r"static_bulk: sent (\d+) bytes"


def static_rate(receiver: str, sender: str) -> float:
    """MB/s from static_bulk.c's receiver, after checking every byte arrived in order."""
    got = _match(_STATIC_RECEIVED, receiver, "static_bulk sink")
    sent = _match(_STATIC_SENT, sender, "static_bulk source")
    if got.group(1) != sent.group(1) or got.group(3) != "0":
        raise BenchError(f"static_bulk: stream damaged: sent {sent.group(0)!r}, "
                         f"got {got.group(0)!r}")
    seconds = float(got.group(4))
    if seconds <= 0:
        raise BenchError("static_bulk: transfer too short to time; use more megabytes")
    return int(got.group(1)) / seconds / 1e6


def tcp_static(ctx: Context, mtu: int) -> None:
    s = ctx.settings
    fig = ctx.figure(f"tcp_static_mtu{mtu}")
    fig.detail.update(mtu=mtu, native_megabytes=s.static_mb_native,
                      vnet_megabytes=s.static_mb_vnet,
                      measured_by="static_bulk.c sink: bytes / seconds from accept to end of "
                                  "stream; the source writes one static 64 KiB buffer")
    _stream_figure(ctx, fig, mtu, "static_bulk", ("sink", "source"),
                   (s.static_mb_native, s.static_mb_vnet), 5150, static_rate)


# --- UDP datagram rate -------------------------------------------------------------

_UDP_RECEIVED = r"bulk: received (\d+) datagrams, (\d+) bytes in ([\d.]+) s"
_UDP_SENT = r"bulk: sent (\d+) datagrams of (\d+) bytes \((\d+) failed\) in ([\d.]+) s"


def udp_figures(receiver: str, sender: str, count: int) -> tuple[float, float, dict[str, Any]]:
    got = _match(_UDP_RECEIVED, receiver, "bulk udp-recv")
    sent = _match(_UDP_SENT, sender, "bulk udp-send")
    received, seconds = int(got.group(1)), float(got.group(3))
    if received < 2 or seconds <= 0:
        raise BenchError(f"udp: only {received} datagram(s) arrived — nothing to time")
    send_seconds = float(sent.group(4))
    info = {"sent": count, "send_failed": int(sent.group(3)), "received": received,
            "offered_rate": round(count / send_seconds, 1) if send_seconds > 0 else None}
    return received / seconds, 100.0 * (count - received) / count, info


def udp_rate(ctx: Context) -> None:
    s = ctx.settings
    rate, loss = ctx.figure("udp64_rate"), ctx.figure("udp64_loss")
    for fig in (rate, loss):
        fig.detail.update(datagram_bytes=64, native_count=s.udp_count_native,
                          vnet_count=s.udp_count_vnet, paced=False,
                          measured_by="bulk.c udp-recv: datagrams / seconds first to last; "
                                      "loss = 1 - received / sent")
    bulk_native, bulk_wasm = ctx.native_bin.get("bulk"), ctx.wasm["bulk"]
    runs: dict[str, list[dict[str, Any]]] = {"native": [], "vnet": []}
    for rep in range(s.reps):
        port = str(5200 + rep)
        native = ctx.native
        if native is not None and bulk_native is not None:

            def run_native(native: NativeLoopback = native, binary: Path = bulk_native,
                           port: str = port) -> list[float]:
                native.set_mtu(65536)
                count = s.udp_count_native
                try:
                    recv = native.start(binary, "udp-recv", port, str(count), "500")
                    recv.wait_for("listening")
                    send = native.start(binary, "udp-send", "127.0.0.1", port, "64", str(count))
                    send_out = send.wait()
                    per_s, lost, info = udp_figures(recv.wait(), send_out, count)
                finally:
                    native.stop_all()
                runs["native"].append(info)
                return [per_s, lost]

            _attempt(ctx, [rate, loss], "native", run_native)

        def run_vnet(port: str = port) -> list[float]:
            count = s.udp_count_vnet
            pair = VnetPair()
            try:
                recv = pair.start("alpha", bulk_wasm, "udp-recv", port, str(count), "500")
                recv.wait_for("listening")
                send = pair.start("bravo", bulk_wasm, "udp-send", VnetPair.ALPHA, port, "64",
                                  str(count))
                send_out = send.wait(timeout_s=max(60.0, count / 200))
                per_s, lost, info = udp_figures(recv.wait(), send_out, count)
            finally:
                pair.close()
            runs["vnet"].append(info)
            return [per_s, lost]

        _attempt(ctx, [rate, loss], "vnet", run_vnet)
    rate.detail["runs"] = runs
    _finish(ctx, [rate, loss])


# --- TCP connection rate -----------------------------------------------------------

_CONN_OPENED = r"connrate: opened (\d+) connections in ([\d.]+) s"


def conn_rate(out: str, count: int) -> float:
    got = _match(_CONN_OPENED, out, "connrate client")
    done, seconds = int(got.group(1)), float(got.group(2))
    if done != count or seconds <= 0:
        raise BenchError(f"connrate: {done} of {count} connections in {seconds} s")
    return done / seconds


def tcp_connrate(ctx: Context) -> None:
    s = ctx.settings
    fig = ctx.figure("tcp_connrate")
    fig.detail.update(native_count=s.conn_native, vnet_count=s.conn_vnet,
                      measured_by="connrate.c client: connect, read to EOF, close, one after "
                                  "another; connections / seconds")
    native_bin, wasm = ctx.native_bin.get("connrate"), ctx.wasm["connrate"]
    for rep in range(s.reps):
        port = str(5300 + rep)
        native = ctx.native
        if native is not None and native_bin is not None:

            def run_native(native: NativeLoopback = native, binary: Path = native_bin,
                           port: str = port) -> list[float]:
                native.set_mtu(65536)
                count = str(s.conn_native)
                try:
                    server = native.start(binary, "server", port, count)
                    server.wait_for("listening")
                    client = native.start(binary, "client", "127.0.0.1", port, count)
                    rate = conn_rate(client.wait(), s.conn_native)
                    server.wait()
                    return [rate]
                finally:
                    native.stop_all()

            _attempt(ctx, [fig], "native", run_native)

        def run_vnet(port: str = port) -> list[float]:
            count = str(s.conn_vnet)
            pair = VnetPair()
            try:
                server = pair.start("alpha", wasm, "server", port, count)
                server.wait_for("listening")
                client = pair.start("bravo", wasm, "client", VnetPair.ALPHA, port, count)
                rate = conn_rate(client.wait(timeout_s=max(60.0, s.conn_vnet / 20)), s.conn_vnet)
                server.wait()
                return [rate]
            finally:
                pair.close()

        _attempt(ctx, [fig], "vnet", run_vnet)
    _finish(ctx, [fig])


# --- UDP round-trip latency --------------------------------------------------------

_RTT = r"rtt_us min=(\d+) p50=(\d+) p99=(\d+) max=(\d+)"
_RTT_LOSS = r"(\d+) replies, (\d+) lost"


def rtt_figures(out: str) -> tuple[float, float, dict[str, int]]:
    got = _match(_RTT, out, "udp_rtt client")
    loss = _match(_RTT_LOSS, out, "udp_rtt client")
    info = {"min_us": int(got.group(1)), "max_us": int(got.group(4)),
            "replies": int(loss.group(1)), "lost": int(loss.group(2))}
    return float(got.group(2)), float(got.group(3)), info


def udp_rtt(ctx: Context) -> None:
    s = ctx.settings
    p50, p99 = ctx.figure("udp_rtt_p50"), ctx.figure("udp_rtt_p99")
    for fig in (p50, p99):
        fig.detail.update(native_probes=s.rtt_native, vnet_probes=s.rtt_vnet, probe_bytes=64,
                          interval_ms=0, measured_by="udp_rtt.c client: nearest-rank percentile "
                                                     "of per-probe round trips")
    native_bin, wasm = ctx.native_bin.get("udp_rtt"), ctx.wasm["udp_rtt"]
    runs: dict[str, list[dict[str, int]]] = {"native": [], "vnet": []}
    for rep in range(s.reps):
        port = str(5400 + rep)
        native = ctx.native
        if native is not None and native_bin is not None:

            def run_native(native: NativeLoopback = native, binary: Path = native_bin,
                           port: str = port) -> list[float]:
                native.set_mtu(65536)
                try:
                    server = native.start(binary, "server", port)
                    server.wait_for("listening")
                    client = native.start(binary, "client", "127.0.0.1", port,
                                          str(s.rtt_native), "0", "500")
                    a, b, info = rtt_figures(client.wait())
                    server.wait()
                finally:
                    native.stop_all()
                runs["native"].append(info)
                return [a, b]

            _attempt(ctx, [p50, p99], "native", run_native)

        def run_vnet(port: str = port) -> list[float]:
            pair = VnetPair()
            try:
                server = pair.start("alpha", wasm, "server", port)
                server.wait_for("listening")
                client = pair.start("bravo", wasm, "client", VnetPair.ALPHA, port,
                                    str(s.rtt_vnet), "0", "500")
                a, b, info = rtt_figures(client.wait())
                server.wait()
            finally:
                pair.close()
            runs["vnet"].append(info)
            return [a, b]

        _attempt(ctx, [p50, p99], "vnet", run_vnet)
    p50.detail["runs"] = runs
    _finish(ctx, [p50, p99])


# --- the TUN bridge ----------------------------------------------------------------

def tun_bridge(ctx: Context) -> None:
    s = ctx.settings
    to_guest, to_kernel = ctx.figure("tun_kernel_to_guest"), ctx.figure("tun_guest_to_kernel")
    native_ref = ctx.figures.get("tcp_bulk_mtu1500")
    for fig in (to_guest, to_kernel):
        fig.detail.update(megabytes=s.tun_mb, mtu=1500,
                          measured_by="bulk.c receiver (kernel side: gcc build in the "
                                      "bridge's namespace; guest side: wasm)")
        if native_ref is not None and native_ref.native is not None:
            fig.native_override = native_ref.native
            fig.native_skipped = None
        else:
            fig.native_skipped = "needs the native tcp_bulk_mtu1500 figure"
    problem = tun_problem()
    kernel_bulk = ctx.native_bin.get("bulk")
    if problem is None and kernel_bulk is None:
        problem = "needs gcc for the kernel-side program"
    if problem is not None:
        for fig in (to_guest, to_kernel):
            fig.skipped = problem
        return
    assert kernel_bulk is not None
    wasm = ctx.wasm["bulk"]
    mb = str(s.tun_mb)
    for rep in range(s.reps):

        def kernel_to_guest(port: str = str(5500 + rep)) -> list[float]:
            lab = TunLab().open()
            try:
                recv = lab.guest(wasm, "recv", port)
                recv.wait_for("listening")
                send = lab.kernel(kernel_bulk, "send", TunLab.GUEST, port, mb)
                return [bulk_rate(recv.wait(), send.wait())]
            finally:
                lab.close()

        def guest_to_kernel(port: str = str(5600 + rep)) -> list[float]:
            lab = TunLab().open()
            try:
                recv = lab.kernel(kernel_bulk, "recv", port)
                recv.wait_for("listening")
                send = lab.guest(wasm, "send", TunLab.KERNEL, port, mb)
                return [bulk_rate(recv.wait(), send.wait())]
            finally:
                lab.close()

        _attempt(ctx, [to_guest], "vnet", kernel_to_guest)
        _attempt(ctx, [to_kernel], "vnet", guest_to_kernel)
    _finish(ctx, [to_guest, to_kernel])


# --- host-call cost -----------------------------------------------------------------

_HOSTCALL = r"hostcall: {} (\d+) calls in ([\d.]+) s \(([\d.]+) ns/call, (\d+) failed\)"


def hostcall_figures(out: str) -> list[float]:
    values = []
    for kind in ("getsockname", "send0"):
        got = _match(_HOSTCALL.format(kind), out, "hostcall")
        if int(got.group(4)):
            raise BenchError(f"hostcall: {got.group(4)} {kind} calls failed")
        values.append(float(got.group(3)))
    return values


def hostcall(ctx: Context) -> None:
    s = ctx.settings
    figs = [ctx.figure("hostcall_getsockname"), ctx.figure("hostcall_send0")]
    for fig in figs:
        fig.detail.update(native_calls=s.hostcall_native, vnet_calls=s.hostcall_vnet,
                          measured_by="vnet/bench/hostcall.c: wall time of a loop of calls "
                                      "/ calls (native: system calls; vnet: host calls)")
    native_bin, wasm = ctx.native_bin.get("hostcall"), ctx.wasm["hostcall"]
    for _rep in range(s.reps):
        native = ctx.native
        if native is not None and native_bin is not None:

            def run_native(native: NativeLoopback = native,
                           binary: Path = native_bin) -> list[float]:
                try:
                    return hostcall_figures(native.start(binary, str(s.hostcall_native)).wait())
                finally:
                    native.stop_all()

            _attempt(ctx, figs, "native", run_native)

        def run_vnet() -> list[float]:
            pair = VnetPair()
            try:
                return hostcall_figures(pair.start("alpha", wasm, str(s.hostcall_vnet)).wait())
            finally:
                pair.close()

        _attempt(ctx, figs, "vnet", run_vnet)
    _finish(ctx, figs)


# --- the ceilings: guest compute and the empty call ----------------------------------

_COMPUTE = r"ceiling: {} (\d+) bytes in ([\d.]+) s \(([\d.]+) MB/s\)"
_EMPTY = r"ceiling: empty (\d+) calls in ([\d.]+) s \(([\d.]+) ns/call\)"


def compute_rates(out: str) -> tuple[float, float]:
    """(sender fill+FNV MB/s, receiver FNV MB/s) from `ceiling compute`."""
    send = _match(_COMPUTE.format(r"sender fill\+fnv"), out, "ceiling compute")
    recv = _match(_COMPUTE.format("receiver fnv"), out, "ceiling compute")
    return float(send.group(3)), float(recv.group(3))


def ceilings(ctx: Context) -> None:
    """guest_compute and hostcall_empty: the bench's own limits on this machine."""
    s = ctx.settings
    compute, empty = ctx.figure("guest_compute"), ctx.figure("hostcall_empty")
    # no network involved: the native side runs without the namespace (and without root)
    for fig in (compute, empty):
        fig.native_skipped = None if "ceiling" in ctx.native_bin else fig.native_skipped
    compute.detail.update(
        native_megabytes=s.compute_mb_native, vnet_megabytes=s.compute_mb_vnet,
        measured_by="vnet/bench/ceiling.c compute: bulk.c's sender work (xorshift fill + "
                    "FNV-1a of every byte) in memory, no sockets; the receiver's (FNV-1a "
                    "only) in detail.receiver_*")
    empty.detail.update(
        native_calls=s.empty_calls_native, vnet_calls=s.empty_calls_vnet,
        measured_by="vnet/bench/ceiling.c empty: a loop of the cheapest call out of the "
                    "program / calls (native: the getppid system call; vnet: the WASI "
                    "proc_raise import, answered ENOSYS by the bridge, no lock taken)")
    receivers: dict[str, list[float]] = {"native": [], "vnet": []}
    binary, wasm = ctx.native_bin.get("ceiling"), ctx.wasm["ceiling"]
    for _rep in range(s.reps):
        if binary is not None:

            def native_compute(binary: Path = binary) -> list[float]:
                program = NativeProgram("ceiling compute",
                                        [str(binary), "compute", str(s.compute_mb_native)])
                try:
                    send, recv = compute_rates(program.wait())
                finally:
                    program.stop()
                receivers["native"].append(recv)
                return [send]

            def native_empty(binary: Path = binary) -> list[float]:
                program = NativeProgram("ceiling empty",
                                        [str(binary), "empty", str(s.empty_calls_native)])
                try:
                    return [float(_match(_EMPTY, program.wait(), "ceiling empty").group(3))]
                finally:
                    program.stop()

            _attempt(ctx, [compute], "native", native_compute)
            _attempt(ctx, [empty], "native", native_empty)

        def vnet_compute() -> list[float]:
            pair = VnetPair()
            try:
                send, recv = compute_rates(
                    pair.start("alpha", wasm, "compute", str(s.compute_mb_vnet)).wait())
            finally:
                pair.close()
            receivers["vnet"].append(recv)
            return [send]

        def vnet_empty() -> list[float]:
            pair = VnetPair()
            try:
                out = pair.start("alpha", wasm, "empty", str(s.empty_calls_vnet)).wait()
                return [float(_match(_EMPTY, out, "ceiling empty").group(3))]
            finally:
                pair.close()

        _attempt(ctx, [compute], "vnet", vnet_compute)
        _attempt(ctx, [empty], "vnet", vnet_empty)
    compute.detail["receiver_native_runs"] = receivers["native"]
    compute.detail["receiver_vnet_runs"] = receivers["vnet"]
    _finish(ctx, [compute, empty])


#: host calls the figure's programs make per unit of the figure (counted in their sources)
CALLS_PER_64KIB_BULK = 2  # a 64 KiB write by the sender, a read of up to 64 KiB by the receiver
CALLS_PER_DATAGRAM = 4  # udp-send: send; udp-recv: poll, recv, clock_time_get
CALLS_PER_CONNECTION = 8  # client socket, connect, read, close; server accept, write, read, close
CALLS_PER_ROUND_TRIP = 8  # client 3 clock reads, send, poll, recv; server recvfrom, sendto


def apply_limits(ctx: Context) -> None:
    """Fill in each figure's limits on this machine (see vnet.bench.figures)."""
    figs = ctx.figures
    compute, empty = figs.get("guest_compute"), figs.get("hostcall_empty")
    floor_ns = empty.vnet if empty is not None else None
    syscall_ns = empty.native if empty is not None else None

    def median_of(runs: list[float]) -> float | None:
        return sorted(runs)[len(runs) // 2] if runs else None

    wasm_send = compute.vnet if compute is not None else None
    wasm_recv = median_of(compute.detail.get("receiver_vnet_runs", [])) if compute else None
    native_send = compute.native if compute is not None else None
    native_recv = median_of(compute.detail.get("receiver_native_runs", [])) if compute else None

    def lowest(*values: float | None) -> float | None:
        known = [v for v in values if v is not None]
        return min(known) if known else None

    def put(fid: str, kind: str, value: float | None, note: str) -> None:
        fig = figs.get(fid)
        if fig is None or value is None or fig.skipped:
            return
        fig.limits[kind] = value
        fig.limit_notes[kind] = note

    bulk_floor = 65536 / (CALLS_PER_64KIB_BULK * floor_ns) * 1e3 if floor_ns else None
    for mtu in (1500, 65520):
        static = figs.get(f"tcp_static_mtu{mtu}")
        loopback = static.native if static is not None else None
        for fid in (f"tcp_bulk_mtu{mtu}", f"tcp_static_mtu{mtu}"):
            put(fid, "host_call_floor", bulk_floor,
                f"{CALLS_PER_64KIB_BULK} empty host calls per 64 KiB")
            put(fid, "kernel", loopback,
                f"static_bulk.c natively over lo at MTU {mtu} (no per-byte work)")
        put(f"tcp_bulk_mtu{mtu}", "guest_compute", lowest(wasm_send, wasm_recv),
            "bulk.c's sender (fill+FNV) or receiver (FNV) work in wasm, whichever is slower")
    put("udp64_rate", "host_call_floor",
        1e9 / (CALLS_PER_DATAGRAM * floor_ns) if floor_ns else None,
        f"{CALLS_PER_DATAGRAM} empty host calls per datagram")
    for fid in ("udp64_rate", "tcp_connrate", "udp_rtt_p50", "udp_rtt_p99"):
        fig = figs.get(fid)
        put(fid, "kernel", fig.native if fig is not None else None,
            "the native column: the same C over lo")
    put("tcp_connrate", "host_call_floor",
        1e9 / (CALLS_PER_CONNECTION * floor_ns) if floor_ns else None,
        f"{CALLS_PER_CONNECTION} empty host calls per connection")
    for fid in ("udp_rtt_p50", "udp_rtt_p99"):
        put(fid, "host_call_floor", CALLS_PER_ROUND_TRIP * floor_ns / 1e3 if floor_ns else None,
            f"{CALLS_PER_ROUND_TRIP} empty host calls per round trip")
    static1500 = figs.get("tcp_static_mtu1500")
    tun_floor = 65536 / floor_ns * 1e3 if floor_ns else None
    for fid, compute_limit, note in (
            ("tun_kernel_to_guest", lowest(native_send, wasm_recv),
             "native bulk.c sender (fill+FNV) or wasm receiver (FNV), whichever is slower"),
            ("tun_guest_to_kernel", lowest(wasm_send, native_recv),
             "wasm bulk.c sender (fill+FNV) or native receiver (FNV), whichever is slower")):
        put(fid, "guest_compute", compute_limit, note)
        put(fid, "host_call_floor", tun_floor, "1 empty host call per 64 KiB (one guest)")
        put(fid, "kernel", static1500.native if static1500 is not None else None,
            "static_bulk.c natively over lo at MTU 1500")
    for fid in ("hostcall_getsockname", "hostcall_send0"):
        put(fid, "host_call_floor", floor_ns, "one empty host call")
        put(fid, "kernel", syscall_ns, "one empty system call (getppid)")
    put("hostcall_empty", "kernel", syscall_ns, "one empty system call (getppid)")


# --- scale --------------------------------------------------------------------------

def _pss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no Pss for pid {pid}")


def scale(ctx: Context, out_dir: Path) -> None:
    s = ctx.settings
    memory, most = ctx.figure("guest_idle_memory"), ctx.figure("max_guests")
    most.native_skipped = "no native counterpart"
    native, server = ctx.native, ctx.native_bin.get("tcp_echo_server")
    if native is not None and server is not None:

        def run_native(native: NativeLoopback = native, binary: Path = server) -> list[float]:
            try:
                programs = [native.start(binary, str(7100 + i))
                            for i in range(s.idle_native_procs)]
                for program in programs:
                    program.wait_for("listening")
                total = sum(_pss_bytes(p.pid) for p in programs)
            finally:
                native.stop_all()
            return [total / len(programs) / 2**20]

        _attempt(ctx, [memory], "native", run_native)
        memory.detail["native_processes"] = s.idle_native_procs

    def run_vnet() -> list[float]:
        argv = [sys.executable, "-m", "vnet.bench.scale", "--module",
                str(ctx.wasm["tcp_echo_server"]), "--cap", str(s.scale_cap),
                "--time-budget", str(s.scale_time_s), "--memory-budget",
                str(s.scale_memory_bytes), "--idle-sample", str(s.scale_idle_sample),
                "--batch", str(s.scale_batch)]
        timeout = s.scale_time_s + 180
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"the scale search did not end in {timeout:.0f} s") from None
        (out_dir / "scale.log").write_text(proc.stderr)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise BenchError(f"the scale search failed (exit {proc.returncode}): "
                             f"{proc.stderr[-1500:]}")
        result = json.loads(lines[-1])
        most.detail.update(result)
        memory.detail["vnet_idle_sample"] = result["idle_sample"]
        return [result["idle_bytes_per_guest"] / 2**20, float(result["max_guests"])]

    _attempt(ctx, [memory, most], "vnet", run_vnet)
    memory.detail["measured_by"] = (
        "vnet: growth of the vnet process's RSS per idle guest (tcp_echo_server blocked in "
        "accept, each on its own virtual host); native: mean PSS of idle tcp_echo_server "
        "processes")
    most.detail["measured_by"] = (
        "guests started in batches, each tcp_echo_server on its own host with one echoed "
        "loopback connection kept open, until the cap, the time or memory budget, or a failure")
    _finish(ctx, [memory, most])


def _child_json(argv: list[str], timeout: float, log_path: Path, what: str) -> dict[str, Any]:
    """Run a bench child process; its last JSON line of stdout."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not end in {timeout:.0f} s") from None
    log_path.write_text(proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{what} failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def guest_fleet(ctx: Context, out_dir: Path) -> None:
    s = ctx.settings
    fig = ctx.figure("fleet_connect")
    fig.native_skipped = "no native counterpart"
    fig.size = s.fleet_guests
    fig.detail.update(guests=s.fleet_guests, time_budget_s=s.fleet_budget_s, measured_by=(
        "vnet.bench.scale --fleet: N tcp_echo_server guests, each on its own host, started "
        "at once; seconds from the first start until every one listens and has echoed one "
        "connection from its host"))

    def run_vnet() -> list[float]:
        result = _child_json(
            [sys.executable, "-m", "vnet.bench.scale", "--module",
             str(ctx.wasm["tcp_echo_server"]), "--fleet", str(s.fleet_guests),
             "--time-budget", str(s.fleet_budget_s)],
            s.fleet_budget_s + 120, out_dir / "fleet.log", "the guest fleet")
        fig.detail.update(result)
        if result["connected"] != s.fleet_guests:
            if result["listening"] == 0:
                raise BenchError(f"no guest started: {result['problem']}")
            # stopped early (the time budget, or a guest that failed): the time spent is a
            # lower bound of the figure
            fig.lower_bound = True
            fig.note = (f"only {result['connected']} of {s.fleet_guests} connected, then: "
                        f"{result['problem']}")
        return [float(result["seconds"])]

    _attempt(ctx, [fig], "vnet", run_vnet)
    _finish(ctx, [fig])


def virtual_time(ctx: Context, out_dir: Path) -> None:
    s = ctx.settings
    fig = ctx.figure("virtual_time_speed")
    fig.native_skipped = "no native counterpart"
    fig.detail.update(hosts=s.idle_hosts, simulated_minutes=s.idle_minutes, measured_by=(
        "vnet.bench.idle: ticker.c guests on one segment, one 32-byte UDP datagram to the "
        "next host every simulated second; simulated seconds / wall seconds"))

    def run_vnet() -> list[float]:
        result = _child_json(
            [sys.executable, "-m", "vnet.bench.idle", "--module", str(ctx.wasm["ticker"]),
             "--hosts", str(s.idle_hosts), "--minutes", str(s.idle_minutes)],
            max(120.0, s.idle_minutes * 60 * 2), out_dir / "idle.log",
            "the virtual-time topology")
        fig.detail.setdefault("runs", []).append(result)
        return [float(result["speed"])]

    for _rep in range(s.reps):
        _attempt(ctx, [fig], "vnet", run_vnet)
    _finish(ctx, [fig])


def _bulk(ctx: Context, _out: Path) -> None:
    tcp_bulk(ctx, 1500)
    tcp_bulk(ctx, 65520)
    tcp_static(ctx, 1500)
    tcp_static(ctx, 65520)


WORKLOADS: dict[str, Callable[[Context, Path], None]] = {
    "limits": lambda ctx, _out: ceilings(ctx),
    "bulk": _bulk,
    "udp": lambda ctx, _out: udp_rate(ctx),
    "connrate": lambda ctx, _out: tcp_connrate(ctx),
    "rtt": lambda ctx, _out: udp_rtt(ctx),
    "tun": lambda ctx, _out: tun_bridge(ctx),
    "hostcall": lambda ctx, _out: hostcall(ctx),
    "vtime": virtual_time,
    "fleet": guest_fleet,
    "scale": scale,
}
#: which figures each workload produces (for --only)
WORKLOAD_FIGURES = {
    "limits": ("guest_compute", "hostcall_empty"),
    "bulk": ("tcp_bulk_mtu1500", "tcp_bulk_mtu65520", "tcp_static_mtu1500",
             "tcp_static_mtu65520"),
    "udp": ("udp64_rate", "udp64_loss"),
    "connrate": ("tcp_connrate",),
    "rtt": ("udp_rtt_p50", "udp_rtt_p99"),
    "tun": ("tun_kernel_to_guest", "tun_guest_to_kernel"),
    "hostcall": ("hostcall_getsockname", "hostcall_send0"),
    "vtime": ("virtual_time_speed",),
    "fleet": ("fleet_connect",),
    "scale": ("guest_idle_memory", "max_guests"),
}


def run_workloads(ctx: Context, names: list[str], out_dir: Path) -> None:
    for name in names:
        ctx.loads[name] = round(os.getloadavg()[0], 2)
        started = time.monotonic()
        ctx.log(f"  {name} …")
        WORKLOADS[name](ctx, out_dir)
        ctx.log(f"  {name}: {time.monotonic() - started:.1f} s")
    apply_limits(ctx)
