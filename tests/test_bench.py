"""scripts/bench --quick runs end to end: the JSON has every figure and the machine, a PNG exists.

Benchmarks never assert on speed: this only checks that each figure was
measured (a positive number on vnet's side and, as root, natively) or says
why it was not, carries its limits and Done-when targets, and that the
bench's own arithmetic (limits, met / not met, the README rows) and its
virtual-time topology do what they say.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from vnet.bench import idle
from vnet.bench.figures import FIGURE_IDS, SPEC_BY_ID, Figure
from vnet.bench.report import markdown, table
from vnet.bench.settings import QUICK
from vnet.bench.workloads import Context, apply_limits

ROOT = Path(__file__).resolve().parent.parent
MACHINE_KEYS = ("date", "cpu_model", "cores", "python", "wasmtime", "gcc", "kernel",
                "loadavg_start", "loadavg_end")
NO_NATIVE_COUNTERPART = {"max_guests", "fleet_connect", "virtual_time_speed"}
BENCH_C = ROOT / "vnet" / "bench"
MAY_BE_ZERO = {"udp64_loss"}  # nothing lost is a fine answer


def test_quick_bench_reports_every_figure_with_machine_json_and_png(tmp_path: Path) -> None:
    proc = subprocess.run([str(ROOT / "scripts" / "bench"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "vnet/native" in proc.stdout  # the table

    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["mode"] == "quick"
    for key in MACHINE_KEYS:
        assert data["machine"].get(key) not in (None, ""), key
    figures = {f["id"]: f for f in data["figures"]}
    assert list(figures) == list(FIGURE_IDS)

    privileged = os.geteuid() == 0
    for fid, fig in figures.items():
        context = json.dumps(fig, ensure_ascii=False)[:2000]
        if fig["skipped"]:
            # only the TUN bridge may be out of reach, and only without privileges
            assert fid.startswith("tun_") and not privileged, context
            continue
        value = fig["vnet"]
        assert isinstance(value, (int, float)), context
        assert value >= 0 if fid in MAY_BE_ZERO else value > 0, context
        assert fig["vnet_runs"], context
        if fid in NO_NATIVE_COUNTERPART:
            assert fig["native"] is None and fig["native_skipped"], context
        elif privileged:
            assert isinstance(fig["native"], (int, float)), context
            if fig["native"] > 0:
                assert fig["ratio_vnet_to_native"] is not None, context
        else:
            assert fig["native"] is not None or fig["native_skipped"], context

        # the limits: every network figure has a host-call floor; bulk.c's a compute limit
        if fid.startswith(("tcp_", "udp64_rate", "udp_rtt", "hostcall_get", "tun_")):
            assert fig["limits"].get("host_call_floor", 0) > 0, context
        if fid.startswith("tcp_bulk"):
            assert fig["limits"].get("guest_compute", 0) > 0, context
        if privileged and fid.startswith("tcp_"):
            assert fig["limits"].get("kernel", 0) > 0, context
        for target in fig["targets"]:
            assert target["text"] and target["met"] in (True, False, None), context
    assert figures["fleet_connect"]["size"] == QUICK.fleet_guests
    assert figures["fleet_connect"]["targets"][0]["met"] is None  # 30 s is for 1,000 guests
    assert figures["virtual_time_speed"]["targets"][0]["met"] in (True, False)
    assert "Done-when target" in proc.stdout and "call floor" in proc.stdout

    png = (tmp_path / "bench.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    readme_rows = (tmp_path / "bench.md").read_text()
    assert "| TCP bulk static sender, MTU 1500 (MB/s) |" in readme_rows


def _figure(fid: str, vnet: float, native: float | None = None) -> Figure:
    fig = Figure(SPEC_BY_ID[fid], vnet_runs=[vnet])
    if native is not None:
        fig.native_runs = [native]
    return fig


def test_limits_and_targets_follow_from_the_measured_ceilings() -> None:
    figs = {f.spec.id: f for f in (
        _figure("hostcall_empty", 1000.0, 200.0),
        _figure("guest_compute", 150.0, 400.0),
        _figure("tcp_bulk_mtu1500", 30.0, 100.0),
        _figure("tcp_static_mtu1500", 90.0, 2000.0),
        _figure("udp64_rate", 40_000.0, 500_000.0),
        _figure("udp_rtt_p50", 120.0, 6.0),
        _figure("hostcall_getsockname", 1100.0, 200.0),
        _figure("fleet_connect", 12.0),
    )}
    figs["guest_compute"].detail["receiver_vnet_runs"] = [500.0]
    figs["fleet_connect"].size = 50
    ctx = Context(QUICK, {}, {}, None, "test", lambda _m: None, figures=figs)
    apply_limits(ctx)

    bulk = figs["tcp_bulk_mtu1500"]
    # 2 host calls of 1 µs per 64 KiB (32.768 B/ns = 32,768 MB/s); compute: the slower
    # of sender (150) and receiver (500)
    assert bulk.limits == {"host_call_floor": 32_768.0, "kernel": 2000.0, "guest_compute": 150.0}
    assert "guest_compute" not in figs["tcp_static_mtu1500"].limits  # no per-byte work
    assert figs["udp64_rate"].limits["host_call_floor"] == 250_000  # 4 calls per datagram
    assert figs["udp_rtt_p50"].limits["host_call_floor"] == 8.0  # 8 calls per round trip, µs
    assert figs["hostcall_getsockname"].limits == {"host_call_floor": 1000.0, "kernel": 200.0}

    assert bulk.verdict() == "met"  # 0.3 of native >= 0.25
    assert figs["tcp_static_mtu1500"].verdict() == "goal met"  # 90 MB/s >= 80
    assert figs["udp64_rate"].verdict() == "met; goal NOT met"  # 0.08 of native, 40,000/s
    assert figs["udp_rtt_p50"].verdict() == "NOT met"
    assert figs["hostcall_getsockname"].verdict() == "met; goal NOT met"  # 5.5x, 1,100 ns
    assert figs["fleet_connect"].verdict() == "not judged at 50"

    ordered = [figs[fid] for fid in FIGURE_IDS if fid in figs]
    text = table(ordered, "header")
    assert "not judged at 50" in text and "32,768" in text
    rows = markdown(ordered, {"command": "scripts/bench", "mode": "full", "machine": {}})
    assert "| 50 guests start + connect, one connection each (s) | — | 12.0 |" in rows
    assert "| TCP bulk, MTU 1500 (MB/s) | 100 | 30.0 | 0.3 | 150 | 32,768 | 2,000 |" in rows


def test_idle_topology_runs_its_simulated_minutes_exactly(
        build_guest: Callable[..., Path]) -> None:
    ticker = build_guest(BENCH_C / "ticker.c")
    result = idle.run(str(ticker), hosts=4, minutes=0.1, seed=3)
    # one simulated second of listening, then 6 ticks of one second each
    assert result["datagrams"] == 4 * 6
    assert 7.0 <= result["simulated_s"] < 7.1
    assert result["speed"] > 0


def test_a_fleet_that_ran_out_of_time_is_a_lower_bound_never_met() -> None:
    fig = _figure("fleet_connect", 300.0)
    fig.size, fig.lower_bound = 1000, True
    fig.note = "only 929 of 1000 connected, then: time budget of 300 s spent"
    assert fig.verdict() == "NOT met"
    early = _figure("fleet_connect", 5.0)
    early.size, early.lower_bound = 1000, True  # a guest failed after 5 s: not a pass
    assert early.verdict() == "—"
    text = table([fig], "header")
    assert "≥ 300" in text and "only 929 of 1000 connected" in text


def test_the_limits_workload_always_runs_first() -> None:
    from vnet.bench.cli import parse_args

    assert parse_args(["--only", "udp,rtt"]).workloads == ["limits", "udp", "rtt"]
    assert parse_args([]).workloads[0] == "limits"
