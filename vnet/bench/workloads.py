"""The workloads: each runs the same C program natively and on vnet, and
fills in its figures.

Every figure comes from the programs' own output, parsed the same way on
both sides (bulk.c's receiver reports bytes over the time from accept to the
end of the stream; udp_rtt.c its nearest-rank percentiles; and so on), so a
ratio compares like with like. A workload repeats `settings.reps` times,
alternating native and vnet runs; the figure is the median.

    figure             native (gcc, netns lo)            vnet (wasm, real time)
    tcp_bulk_mtu*      bulk recv / send 127.0.0.1,       two hosts on one segment,
                       lo MTU set                        NIC MTU set
    udp64_*            bulk udp-recv / udp-send 64 B     same, two hosts
    tcp_connrate       connrate server / client          same, two hosts
    udp_rtt_*          udp_rtt server / client           same, two hosts
    tun_*              (bulk over lo, MTU 1500)          native bulk in the kernel's
                                                         namespace <-> guest bulk via TUN
    hostcall_*         hostcall: getsockname, send 0 B   same, one guest
    guest_idle_memory  PSS of idle tcp_echo_server       vnet.bench.scale, a child process
    max_guests         (none)                            vnet.bench.scale

Touches what the labs touch (see labs.py), plus a child Python process for
the scale search.
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
from .labs import BenchError, NativeLoopback, TunLab, VnetPair, tun_problem
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
    bulk_native, bulk_wasm = ctx.native_bin.get("bulk"), ctx.wasm["bulk"]
    for rep in range(s.reps):
        port = str(5100 + rep)
        native = ctx.native
        if native is not None and bulk_native is not None:

            def run_native(native: NativeLoopback = native, binary: Path = bulk_native,
                           port: str = port) -> list[float]:
                native.set_mtu(mtu)
                try:
                    recv = native.start(binary, "recv", port)
                    recv.wait_for("listening")
                    send = native.start(binary, "send", "127.0.0.1", port,
                                        str(s.bulk_mb_native))
                    return [bulk_rate(recv.wait(), send.wait())]
                finally:
                    native.stop_all()

            _attempt(ctx, [fig], "native", run_native)

        def run_vnet(port: str = port) -> list[float]:
            pair = VnetPair(mtu)
            try:
                recv = pair.start("alpha", bulk_wasm, "recv", port)
                recv.wait_for("listening")
                send = pair.start("bravo", bulk_wasm, "send", VnetPair.ALPHA, port,
                                  str(s.bulk_mb_vnet))
                return [bulk_rate(recv.wait(), send.wait())]
            finally:
                pair.close()

        _attempt(ctx, [fig], "vnet", run_vnet)
    _finish(ctx, [fig])


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


def _bulk(ctx: Context, _out: Path) -> None:
    tcp_bulk(ctx, 1500)
    tcp_bulk(ctx, 65520)


WORKLOADS: dict[str, Callable[[Context, Path], None]] = {
    "bulk": _bulk,
    "udp": lambda ctx, _out: udp_rate(ctx),
    "connrate": lambda ctx, _out: tcp_connrate(ctx),
    "rtt": lambda ctx, _out: udp_rtt(ctx),
    "tun": lambda ctx, _out: tun_bridge(ctx),
    "hostcall": lambda ctx, _out: hostcall(ctx),
    "scale": scale,
}
#: which figures each workload produces (for --only)
WORKLOAD_FIGURES = {
    "bulk": ("tcp_bulk_mtu1500", "tcp_bulk_mtu65520"),
    "udp": ("udp64_rate", "udp64_loss"),
    "connrate": ("tcp_connrate",),
    "rtt": ("udp_rtt_p50", "udp_rtt_p99"),
    "tun": ("tun_kernel_to_guest", "tun_guest_to_kernel"),
    "hostcall": ("hostcall_getsockname", "hostcall_send0"),
    "scale": ("guest_idle_memory", "max_guests"),
}


def run_workloads(ctx: Context, names: list[str], out_dir: Path) -> None:
    for name in names:
        ctx.loads[name] = round(os.getloadavg()[0], 2)
        started = time.monotonic()
        ctx.log(f"  {name} …")
        WORKLOADS[name](ctx, out_dir)
        ctx.log(f"  {name}: {time.monotonic() - started:.1f} s")
