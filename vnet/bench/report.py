"""Benchmark output: the terminal table, the JSON file and the PNG chart.

The chart is drawn with matplotlib when it is importable (scripts/bench
installs it into .venv; it is not a vnet dependency). Without it a plain
PNG is written by hand — bars of vnet's performance relative to native,
no text — and the JSON says so.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from pathlib import Path
from typing import Any

from .figures import LIMIT_KINDS, Figure


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def versus(fig: Figure) -> str:
    rel = fig.relative
    if rel is None or not fig.spec.charted:
        return ""
    if rel >= 1:
        return f"{rel:.2g}x better" if rel >= 1.05 else "≈ native"
    worse = 1 / rel
    return f"{worse:,.0f}x worse" if worse >= 100 else f"{worse:.3g}x worse"


def label(fig: Figure) -> str:
    """The figure's title, with the size it was measured at where that matters."""
    title = fig.spec.title
    if fig.spec.id == "fleet_connect" and fig.size is not None:
        return f"{fig.size:,} guests start + connect, one connection each"
    if fig.spec.id == "virtual_time_speed" and "hosts" in fig.detail:
        minutes = fig.detail.get("simulated_minutes")
        return f"{title} ({fig.detail['hosts']} hosts, {minutes:g} simulated min)"
    return title


def targets_text(fig: Figure) -> str:
    return "; ".join(t.text(fig.spec.unit) for t in fig.spec.targets)


def _rows(figures: list[Figure]) -> list[tuple[str, ...]]:
    """figure, unit, native, vnet, ratio, compute, floor, kernel, target, verdict, note."""
    rows: list[tuple[str, ...]] = []
    for fig in figures:
        s = fig.spec
        if fig.skipped:
            rows.append((label(fig), s.unit, "—", "—", "", "", "", "", targets_text(fig), "",
                         f"skipped: {fig.skipped}"))
            continue
        ratio = fig.ratio
        limits = [fmt(fig.limits.get(kind)) if kind in fig.limits else "—"
                  for kind in LIMIT_KINDS]
        vnet = ("≥ " if fig.lower_bound else "") + fmt(fig.vnet)
        rows.append((label(fig), s.unit, fmt(fig.native), vnet,
                     f"{ratio:.3g}" if ratio is not None else "—", *limits,
                     targets_text(fig), fig.verdict(), fig.note or fig.native_skipped or ""))
    return rows


def table(figures: list[Figure], header: str) -> str:
    head = ("figure", "unit", "native", "vnet", "vnet/native", "compute", "call floor",
            "kernel", "Done-when target", "met", "")
    rows = [head, *_rows(figures)]
    numeric = (2, 3, 4, 5, 6, 7)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = [header, "",
             "limits on this machine, in the figure's unit: compute = the programs' own "
             "per-byte work in wasm (no sockets); call floor = the empty host call times the "
             "host calls per unit; kernel = the kernel's loopback with no per-byte work "
             "(or the empty system call)", ""]
    for n, row in enumerate(rows):
        cells = [row[i].rjust(widths[i]) if i in numeric else row[i].ljust(widths[i])
                 for i in range(len(widths))]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(figures: list[Figure], payload: dict[str, Any]) -> str:
    """The README's "Performance" table: one Markdown row per measured figure."""
    info = payload.get("machine", {})
    lines = [
        f"`{payload.get('command', 'scripts/bench')}` ({payload.get('mode')} run), "
        f"{str(info.get('date', ''))[:16].replace('T', ' ')} UTC: {info.get('cpu_model')}, "
        f"{info.get('cores')} cores, Python {info.get('python')}, wasmtime "
        f"{info.get('wasmtime')}, gcc {info.get('gcc')}, stack {info.get('stack')}, "
        f"VNET_CPUS={info.get('vnet_cpus', 'one')}; load average "
        f"{(info.get('loadavg_start') or ['?'])[0]} at start.",
        "",
        "| figure (unit) | native | vnet | vnet ÷ native | limit: guest compute "
        "| limit: host-call floor | limit: kernel | Done-when target | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in _rows(figures):
        if row[-1].startswith("skipped"):
            continue
        cells = [f"{row[0]} ({row[1]})", *row[2:10]]
        cells[8] = cells[8].replace("NOT met", "**not met**")
        if row[-1] and row[-1] != "no native counterpart":  # e.g. why a value is a lower bound
            cells[8] = f"{cells[8]} ({row[-1]})" if cells[8] else row[-1]
        lines.append("| " + " | ".join(c or "" for c in cells) + " |")
    lines += ["", "Limits are in each figure's unit: guest compute = the programs' own "
              "per-byte work in wasm without sockets; host-call floor = the empty host call "
              "(wasm → Python → wasm) times the host calls the programs make per unit; "
              "kernel = the kernel's loopback with a sender and receiver that do no per-byte "
              "work (static_bulk.c), or the native column where the program already does "
              "none, or the empty system call."]
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


# --- the chart ---------------------------------------------------------------------

def write_chart(path: Path, figures: list[Figure], title: str) -> str:
    """Draw the chart; returns how ("matplotlib" or "fallback")."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _fallback_png(path, figures)
        return "fallback (matplotlib is not installed: bars only, no text)"
    comparable = [f for f in figures if f.relative is not None and f.spec.charted]
    measured = [f for f in figures if f.vnet is not None]
    cols = 4
    grid_rows = max(1, math.ceil(len(measured) / cols))
    height = 1.2 + 0.42 * max(1, len(comparable)) + 2.3 * grid_rows
    fig = plt.figure(figsize=(13, height), layout="constrained")
    top_share = 0.42 * max(1, len(comparable)) + 0.8
    gs = fig.add_gridspec(1 + grid_rows, cols,
                          height_ratios=[top_share] + [2.3] * grid_rows)
    ax = fig.add_subplot(gs[0, :])
    names = [f.spec.title for f in comparable][::-1]
    values = [f.relative or 0.0 for f in comparable][::-1]
    colors = ["#2b7bba" if v < 1 else "#3a9e4f" for v in values]
    ax.barh(names, values, color=colors)
    ax.set_xscale("log")
    ax.axvline(1.0, color="#444", linewidth=1)
    ax.set_xlabel("vnet's performance relative to the same C program natively "
                  "(1 = native; log scale; latency, memory and call cost inverted)")
    lo = min([*values, 0.5]) / 3
    hi = max([*values, 1.0]) * 3
    ax.set_xlim(lo, hi)
    for y, (v, f) in enumerate(zip(values, comparable[::-1], strict=True)):
        ax.text(v * 1.08, y, f" {v:.3g}x  ({versus(f)})", va="center", fontsize=8)
    ax.set_title(title, fontsize=11)
    for i, f in enumerate(measured):
        sub = fig.add_subplot(gs[1 + i // cols, i % cols])
        labels, heights, colours = [], [], []
        if f.native is not None:
            labels.append("native")
            heights.append(f.native)
            colours.append("#999999")
        labels.append("vnet")
        heights.append(f.vnet or 0.0)
        colours.append("#2b7bba")
        bars = sub.bar(labels, heights, color=colours, width=0.6)
        for bar, h in zip(bars, heights, strict=True):
            sub.annotate(fmt(h), (bar.get_x() + bar.get_width() / 2, h), ha="center",
                         va="bottom", fontsize=8)
        sub.set_title(f"{f.spec.title}\n({f.spec.unit}, "
                      f"{'higher' if f.spec.higher_is_better else 'lower'} is better)",
                      fontsize=8)
        sub.tick_params(labelsize=8)
        sub.margins(y=0.18)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "matplotlib"


def _fallback_png(path: Path, figures: list[Figure]) -> None:
    """One horizontal bar per comparable figure, log scale, a grey line at native = 1."""
    rel = [f.relative for f in figures if f.relative is not None and f.spec.charted]
    width, bar_h, gap = 640, 18, 8
    height = max(1, len(rel)) * (bar_h + gap) + gap
    lo, hi = math.log10(1e-4), math.log10(1e2)

    def x_of(v: float) -> int:
        return int((min(max(math.log10(v), lo), hi) - lo) / (hi - lo) * (width - 1))

    pixels = [bytearray(b"\xff\xff\xff" * width) for _ in range(height)]
    for i, v in enumerate(rel):
        top = gap + i * (bar_h + gap)
        colour = b"\x2b\x7b\xba" if v < 1 else b"\x3a\x9e\x4f"
        for y in range(top, top + bar_h):
            pixels[y][0:3 * x_of(v)] = colour * x_of(v)
    one = x_of(1.0)
    for row in pixels:
        row[3 * one:3 * one + 3] = b"\x44\x44\x44"
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    path.write_bytes(png)
