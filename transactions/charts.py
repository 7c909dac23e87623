"""Server-rendered SVG chart of a session's power and energy (no chart library): coordinates computed here,
the template only draws them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from csms.charts import TimeAxis

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"

WIDTH, HEIGHT = 800, 280
MAX_POINTS = 400  # a plot 800 px wide gains nothing from more; long sessions are thinned evenly
MAX_MARKERS = 60  # point markers (with tooltips) only for short series
LEFT, RIGHT, TOP, BOTTOM = 60, 60, 24, 40


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    at: datetime
    value: Decimal


@dataclass(slots=True)
class Series:
    name: str
    unit: str
    points: list[Point] = field(default_factory=list)
    max_value: Decimal = Decimal(0)

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def markers(self) -> list[Point]:
        return self.points if len(self.points) <= MAX_MARKERS else []


@dataclass(slots=True)
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_x: int = WIDTH - RIGHT
    top: int = TOP
    bottom_y: int = HEIGHT - BOTTOM
    power: Series = field(default_factory=lambda: Series("Power", "kW"))
    energy: Series = field(default_factory=lambda: Series("Energy", "kWh"))
    start: datetime | None = None
    end: datetime | None = None
    y_ticks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.power.points and not self.energy.points


def _overall(rows: Iterable[Mapping[str, Any]], measurand: str) -> list[tuple[datetime, Decimal]]:
    """One value per instant: the phase-less reading, else the sum of the phases (Outlet preferred)."""
    by_time: dict[datetime, dict[str, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        if row["measurand"] == measurand:
            by_time[row["timestamp"]][row["location"]][row["phase"]] = row["value"]
    out: list[tuple[datetime, Decimal]] = []
    for at in sorted(by_time):
        locations = by_time[at]
        phases = locations.get("Outlet") or next(iter(locations.values()))
        if "" in phases:
            out.append((at, phases[""]))
        else:
            out.append(
                (at, sum((v for p, v in phases.items() if p in ("L1", "L2", "L3", "L1-N", "L2-N", "L3-N")), Decimal(0)))
            )
    return out


def _thin(values: list[tuple[datetime, Decimal]]) -> list[tuple[datetime, Decimal]]:
    """At most MAX_POINTS values, evenly spaced, first and last kept."""
    if len(values) <= MAX_POINTS:
        return values
    step = (len(values) - 1) / (MAX_POINTS - 1)
    return [values[round(i * step)] for i in range(MAX_POINTS)]


def session_chart(rows: Iterable[Mapping[str, Any]]) -> Chart:
    """Power (kW, left axis) and energy delivered since the first reading (kWh, right axis) over time."""
    rows = list(rows)
    chart = Chart()
    power = _thin(_overall(rows, POWER))
    energy = _thin(_overall(rows, ENERGY))
    instants = [at for at, _ in power] + [at for at, _ in energy]
    if not instants:
        return chart
    chart.start, chart.end = min(instants), max(instants)
    x = TimeAxis(chart.start, chart.end, chart.left, chart.right_x).x
    plot_h = chart.bottom_y - chart.top

    def scale(series: Series, values: list[tuple[datetime, Decimal]]) -> None:
        top = max((v for _, v in values), default=Decimal(0))
        series.max_value = top
        for at, v in values:
            y = chart.bottom_y - (float(v / top) * plot_h if top > 0 else 0.0)
            series.points.append(Point(x=x(at), y=y, at=at, value=v))

    scale(chart.power, [(at, v / 1000) for at, v in power])
    if energy:
        first = energy[0][1]
        scale(chart.energy, [(at, (v - first) / 1000) for at, v in energy])
    for i in range(5):
        frac = Decimal(i) / 4
        chart.y_ticks.append(
            {
                "y": chart.bottom_y - float(frac) * plot_h,
                "power": chart.power.max_value * frac,
                "energy": chart.energy.max_value * frac,
            }
        )
    return chart
