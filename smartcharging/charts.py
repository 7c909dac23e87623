"""Server-side SVG of composite schedules (no JavaScript, no CDN): a step line of limit over time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    css_class: str
    periods: list[tuple[int, float | None]]  # (start_s, limit); None: no limit


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    paths: list[tuple[Line, str]]
    top: float
    unit: str
    hours: list[tuple[float, str]]  # x, label


def step_chart(lines: list[Line], *, duration_s: int, unit: str, width: int = 720, height: int = 200) -> Chart:
    """Step paths for ``lines`` over [0, duration_s). No limit is drawn at the top edge (dashed by CSS)."""
    values = [v for line in lines for _, v in line.periods if v is not None]
    top = max(values, default=1.0) * 1.15 or 1.0
    pad = 24

    def x(seconds: float) -> float:
        return round(pad + (width - 2 * pad) * min(seconds, duration_s) / duration_s, 1)

    def y(limit: float | None) -> float:
        value = top if limit is None else limit
        return round(height - pad - (height - 2 * pad) * value / top, 1)

    paths = []
    for line in lines:
        if not line.periods:
            continue
        parts: list[str] = []
        for i, (start, limit) in enumerate(line.periods):
            end = line.periods[i + 1][0] if i + 1 < len(line.periods) else duration_s
            parts.append(f"{'M' if i == 0 else 'L'}{x(start)},{y(limit)} L{x(end)},{y(limit)}")
        paths.append((line, " ".join(parts)))
    step = max(1, duration_s // 3600 // 8) * 3600
    hours = [(x(s), f"+{s // 3600}h") for s in range(0, duration_s + 1, step)]
    return Chart(width=width, height=height, paths=paths, top=round(top, 1), unit=unit, hours=hours)
