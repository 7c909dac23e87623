"""What the server-rendered SVG charts share (no chart library): a time axis mapping instants to x coordinates,
with its tick marks. The session chart (``transactions/charts.py``) and the connection timeline
(``stations/timeline.py``) draw on it; the templates only draw what is computed here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Tick spacings a time axis chooses from (the smallest that gives at most ``max_ticks`` ticks).
TICK_STEPS = (
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=2),
    timedelta(days=7),
)


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    at: datetime
    label: str


@dataclass(frozen=True, slots=True)
class TimeAxis:
    """[start, end] drawn over [left, right] (SVG user units)."""

    start: datetime
    end: datetime
    left: float
    right: float

    @property
    def span_s(self) -> float:
        return (self.end - self.start).total_seconds() or 1.0

    def x(self, at: datetime) -> float:
        """The x of ``at``, clamped to the axis (an instant outside the window is drawn at its edge)."""
        at = min(max(at, self.start), self.end)
        return self.left + (self.right - self.left) * (at - self.start).total_seconds() / self.span_s

    def width(self, start: datetime, end: datetime) -> float:
        return self.x(end) - self.x(start)

    def ticks(self, *, max_ticks: int = 8) -> list[Tick]:
        """Ticks on round UTC instants (whole steps since midnight), labelled HH:MM, or the day for day steps."""
        span = self.end - self.start
        step = next((s for s in TICK_STEPS if span / s <= max_ticks), TICK_STEPS[-1])
        midnight = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        first = midnight + step * -(-(self.start - midnight) // step)  # the first whole step at or after start
        ticks = []
        at = first
        while at <= self.end:
            label = f"{at:%m-%d}" if step >= timedelta(days=1) else f"{at:%H:%M}"
            if step < timedelta(days=1) and at.hour == 0 and at.minute == 0:
                label = f"{at:%m-%d}"  # midnight names the day
            ticks.append(Tick(x=round(self.x(at), 1), at=at, label=label))
            at += step
        return ticks


def duration_text(delta: timedelta) -> str:
    """A duration as operators read it: "3 d 4 h", "2 h 5 min", "12 min", "40 s"."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"
