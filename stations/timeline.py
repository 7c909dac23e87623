"""The station page's connection timeline as server-rendered SVG: coordinates and labels computed here (on the
shared time axis of ``csms/charts.py``), the template only draws them. Pure: takes the selector's timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from csms.charts import Tick, TimeAxis, duration_text

from .selectors import ConnectionTimeline, OfflineGap, OnlineBar

WIDTH, HEIGHT = 1000, 80
LEFT, RIGHT = 10, 990
BAR_Y, BAR_H = 14, 24
REFUSAL_Y = 42  # refusal markers hang under the bars
AXIS_Y = 56
MIN_BAR_W = 1.0  # a connection of a few seconds in a week's window stays visible
GAP_LABEL_MIN_W = 70.0  # a gap this wide (user units) shows its duration inside


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    css: str
    title: str
    connection_id: int | None = None


@dataclass(frozen=True, slots=True)
class Marker:
    x: float
    title: str
    connection_id: int


@dataclass(slots=True)
class TimelineChart:
    width: int = WIDTH
    height: int = HEIGHT
    bar_y: int = BAR_Y
    bar_h: int = BAR_H
    refusal_y: int = REFUSAL_Y
    axis_y: int = AXIS_Y
    left: int = LEFT
    right: int = RIGHT
    bars: list[Bar] = field(default_factory=list)
    gaps: list[tuple[Bar, str]] = field(default_factory=list)  # (rect, label shown inside or "")
    refusals: list[Marker] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)


def _at(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}"


def _bar_title(bar: OnlineBar, until: datetime) -> str:
    c = bar.connection
    opened = _at(c.connected_at)
    if bar.end is None and c.disconnected_at is None:
        span = f"online since {opened} ({duration_text(until - c.connected_at)}, still open)"
    else:
        closed = c.disconnected_at or bar.end
        assert closed is not None  # a bar without a recorded close ends at the next connection
        span = f"online {opened} to {_at(closed)} ({duration_text(closed - c.connected_at)})"
    details = [d for d in (c.remote_addr and f"from {c.remote_addr}", c.transport_label) if d]
    if c.close_code is not None:
        details.append(f"close code {c.close_code}")
    if c.replaced_by_id:
        details.append("replaced by a new connection")
    return span + (f"; {', '.join(details)}" if details else "") + " (UTC)"


def _gap_title(gap: OfflineGap) -> str:
    span = duration_text(gap.duration)
    if gap.since_window_start and gap.ongoing:
        return f"offline for the whole window ({span})"
    if gap.since_window_start:
        return f"offline at least {span}, until {_at(gap.end)} (UTC)"
    if gap.ongoing:
        return f"offline since {_at(gap.start)} ({span}) (UTC)"
    return f"offline {span}, {_at(gap.start)} to {_at(gap.end)} (UTC)"


def timeline_chart(timeline: ConnectionTimeline) -> TimelineChart:
    axis = TimeAxis(timeline.start, timeline.end, LEFT, RIGHT)
    chart = TimelineChart(ticks=axis.ticks())
    for bar in timeline.bars:
        end = bar.end or timeline.end
        css = "tl-online"
        if bar.end is None:
            css += " tl-open"
        if bar.connection.replaced_by_id:
            css += " tl-replaced"
        chart.bars.append(
            Bar(
                x=round(axis.x(bar.start), 1),
                width=round(max(axis.width(bar.start, end), MIN_BAR_W), 1),
                css=css,
                title=_bar_title(bar, timeline.end),
                connection_id=bar.connection.pk,
            )
        )
    for gap in timeline.gaps:
        width = round(axis.width(gap.start, gap.end), 1)
        rect = Bar(x=round(axis.x(gap.start), 1), width=width, css="tl-gap", title=_gap_title(gap))
        chart.gaps.append((rect, duration_text(gap.duration) if width >= GAP_LABEL_MIN_W else ""))
    for c in timeline.refusals:
        reason = c.reason or "refused"
        where = f" from {c.remote_addr}" if c.remote_addr else ""
        chart.refusals.append(
            Marker(
                x=round(axis.x(c.connected_at), 1),
                title=f"refused at {_at(c.connected_at)}{where}: {reason}",
                connection_id=c.pk,
            )  # fmt: skip
        )
    return chart
