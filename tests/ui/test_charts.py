"""The session chart's coordinates (pure function, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from transactions import charts

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(minute: int, measurand: str, value: int, phase: str = "") -> dict:
    return {
        "timestamp": T0 + timedelta(minutes=minute),
        "measurand": measurand,
        "phase": phase,
        "location": "Outlet",
        "value": Decimal(value),
    }


def test_energy_is_relative_to_the_first_reading_and_scaled_to_the_plot():
    chart = charts.session_chart(
        [
            row(0, charts.ENERGY, 5000),
            row(10, charts.ENERGY, 6000),
            row(20, charts.ENERGY, 7000),
            row(0, charts.POWER, 6000),
        ]
    )
    values = [p.value for p in chart.energy.points]
    assert values == [0, 1, 2] and chart.energy.max_value == 2
    assert chart.energy.points[0].x == chart.left and chart.energy.points[-1].x == chart.right_x
    assert chart.energy.points[0].y == chart.bottom_y and chart.energy.points[-1].y == chart.top
    assert chart.power.points[0].value == 6


def test_phases_are_summed_when_there_is_no_overall_reading():
    chart = charts.session_chart(
        [row(0, charts.POWER, 1000, "L1"), row(0, charts.POWER, 2000, "L2"), row(0, charts.POWER, 3000, "L3")]
    )
    assert [p.value for p in chart.power.points] == [6]


def test_long_sessions_are_thinned_and_lose_their_markers():
    chart = charts.session_chart([row(m, charts.ENERGY, 1000 + m) for m in range(5000)])
    assert len(chart.energy.points) == charts.MAX_POINTS
    assert chart.energy.points[-1].value == Decimal("4.999")
    assert chart.energy.markers == []


def test_no_readings_no_chart():
    assert charts.session_chart([]).empty
