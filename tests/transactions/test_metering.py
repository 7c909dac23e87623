"""Metering rules on single cases (the properties are in test_properties.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from csms.timeutil import parse_ocpp
from transactions import metering

from .factories import meter_value, sampled


@pytest.mark.parametrize(
    ("value", "unit", "multiplier", "measurand", "expected"),
    [
        (12.345, "kWh", None, metering.ENERGY_REGISTER, (Decimal("12345"), "Wh")),
        (12345, None, None, metering.ENERGY_REGISTER, (Decimal("12345"), "Wh")),
        (1.5, "Wh", 3, metering.ENERGY_REGISTER, (Decimal("1500"), "Wh")),
        (7.4, "kW", None, metering.POWER_IMPORT, (Decimal("7400"), "W")),
        (7400, None, None, metering.POWER_IMPORT, (Decimal("7400"), "W")),  # SPEC-SILENT: W for power
        (2.5, "MWh", None, metering.ENERGY_REGISTER, (Decimal("2500000"), "Wh")),
        (2500, "mWh", None, metering.ENERGY_REGISTER, (Decimal("2.5"), "Wh")),
        (16, None, None, "Current.Import", (Decimal("16"), "A")),
        (80, "Percent", None, "SoC", (Decimal("80"), "Percent")),
        (3, "kvarh", -1, "Energy.Reactive.Import.Register", (Decimal("300"), "varh")),
        (21.5, "Celsius", None, "Voltage", (Decimal("21.5"), "Celsius")),  # a unit we do not scale stays as sent
    ],
)
def test_normalise(value, unit, multiplier, measurand, expected):
    assert metering.normalise(value, unit, multiplier, measurand) == expected


def test_non_finite_and_absurd_values_are_dropped():
    samples = metering.samples_from_meter_values(
        [
            meter_value(
                "2026-01-01T00:00:00Z",
                sampled(float("nan"), measurand="Voltage"),
                sampled(float("inf")),
                sampled(1e300),
                sampled(10),
            )
        ],
        parse_ocpp,
    )
    assert [s.value for s in samples] == [Decimal("10")]


def test_register_going_backwards_gives_no_energy():
    samples = metering.samples_from_meter_values(
        [meter_value("2026-01-01T00:00:00Z", sampled(500)), meter_value("2026-01-01T00:15:00Z", sampled(20))],
        parse_ocpp,
    )
    assert metering.energy_summary(samples) == metering.EnergySummary(Decimal(500), Decimal(20), None)


def test_power_summed_over_line_phases_per_instant():
    samples = metering.samples_from_meter_values(
        [
            meter_value(
                "2026-01-01T00:00:00Z",
                *(sampled(2.3, measurand=metering.POWER_IMPORT, unit="kW", phase=p) for p in ("L1", "L2", "L3")),
            ),
            meter_value(
                "2026-01-01T00:01:00Z",
                *(sampled(1000, measurand=metering.POWER_IMPORT, phase=p) for p in ("L1", "L2", "L3")),
            ),
        ],
        parse_ocpp,
    )
    assert metering.power_summary(samples) == metering.PowerSummary(Decimal("6900"), Decimal("3000"))
