"""Figures -> percentiles, the stdout table and the SVG plot of latency vs load (no plotting dependency)."""

from __future__ import annotations

import math
from typing import Any

NA = "n/a"


def percentiles(latencies_s: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 in ms of a sorted list of seconds (nearest rank)."""
    if not latencies_s:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    n = len(latencies_s)

    def rank(q: float) -> float:
        return round(latencies_s[min(n - 1, max(0, math.ceil(q * n) - 1))] * 1000, 2)

    return {"p50_ms": rank(0.50), "p95_ms": rank(0.95), "p99_ms": rank(0.99)}


def fmt(value: Any, unit: str = "") -> str:
    if value is None or value == NA:
        return NA
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
        return text + unit
    return f"{value}{unit}"


def ratio(value: Any, base: Any, times: bool = False) -> str:
    """Throughput as a percentage of the baseline; latency, time and memory as a multiple of it ("2.5x")."""
    if not isinstance(value, (int, float)) or not isinstance(base, (int, float)) or not base or not value:
        return NA
    return f"{value / base:.1f}x" if times else f"{value / base * 100:.0f} %"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for j, row in enumerate(rows):
        lines.append(
            "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        )
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


SVG_NS = "http://www.w3.org/2000/svg"
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def svg_latency_plot(series: dict[str, list[tuple[int, float, float]]], title: str) -> str:
    """One line per server: x = stations (log), y = latency ms (log); solid p99, dashed p50."""
    width, height, left, right, top, bottom = 760, 420, 70, 170, 40, 50
    points = [(x, y) for values in series.values() for x, p50, p99 in values for y in (p50, p99) if y]
    if not points:
        return f'<svg xmlns="{SVG_NS}" width="{width}" height="80"><text x="10" y="40">{title}: no data</text></svg>'
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_lo, x_hi = math.log10(min(xs)) - 0.1, math.log10(max(xs)) + 0.1
    y_lo, y_hi = math.floor(math.log10(max(min(ys), 0.1))), math.ceil(math.log10(max(ys) * 1.01))
    y_hi = max(y_hi, y_lo + 1)

    def px(x: float) -> float:
        return left + (math.log10(x) - x_lo) / (x_hi - x_lo) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (math.log10(max(y, 0.1)) - y_lo) / (y_hi - y_lo) * (height - top - bottom)

    out = [
        f'<svg xmlns="{SVG_NS}" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14">{title}</text>',
    ]
    for e in range(y_lo, y_hi + 1):
        y = py(10**e)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{10**e:g} ms</text>')
    for x in sorted(set(xs)):
        out.append(f'<line x1="{px(x):.1f}" y1="{top}" x2="{px(x):.1f}" y2="{height - bottom}" stroke="#eee"/>')
        out.append(f'<text x="{px(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{x:,}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">stations</text>')
    for i, (name, values) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        for idx, dash in ((2, ""), (1, ' stroke-dasharray="5,4"')):
            pts = [(px(v[0]), py(v[idx])) for v in values if v[idx]]
            if pts:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
                out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
                out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in pts)
        ly = top + 18 * i + 10
        out.append(
            f'<line x1="{width - right + 10}" y1="{ly}" x2="{width - right + 35}" y2="{ly}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        out.append(f'<text x="{width - right + 40}" y="{ly + 4}">{name}</text>')
    ly = top + 18 * len(series) + 16
    out.append(f'<text x="{width - right + 10}" y="{ly}">solid p99, dashed p50</text>')
    out.append("</svg>")
    return "\n".join(out)
