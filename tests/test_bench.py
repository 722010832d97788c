"""scripts/bench --quick runs end to end: the JSON has every figure and the machine, a PNG exists.

Benchmarks never assert on speed: this only checks that each figure was
measured (a positive number on vnet's side and, as root, natively) or says
why it was not.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from vnet.bench.figures import FIGURE_IDS

ROOT = Path(__file__).resolve().parent.parent
MACHINE_KEYS = ("date", "cpu_model", "cores", "python", "wasmtime", "gcc", "kernel",
                "loadavg_start", "loadavg_end")
NO_NATIVE_COUNTERPART = {"max_guests"}
MAY_BE_ZERO = {"udp64_loss"}  # nothing lost is a fine answer


def test_quick_bench_reports_every_figure_with_machine_json_and_png(tmp_path: Path) -> None:
    proc = subprocess.run([str(ROOT / "scripts" / "bench"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)
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

    png = (tmp_path / "bench.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
