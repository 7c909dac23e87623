"""Pure metering arithmetic: normalising sampledValues and deriving session energy and power.

No database here, so the rules can be tested exhaustively (tests/transactions/test_metering_properties.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

logger = logging.getLogger(__name__)

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_IMPORT = "Power.Active.Import"
DEFAULT_MEASURAND = ENERGY_REGISTER
DEFAULT_LOCATION = "Outlet"
DEFAULT_CONTEXT = "Sample.Periodic"

# Prefixed units -> (base unit, power of ten). Matched case-insensitively: stations write "kWh", "KWH", "kwh".
_PREFIXED = {
    "kwh": ("Wh", 3),
    "kw": ("W", 3),
    "kvarh": ("varh", 3),
    "kvar": ("var", 3),
    "kvah": ("VAh", 3),
    "kva": ("VA", 3),
}
# Where case carries meaning (milli vs mega), only the exact spelling counts.
_EXACT = {"MWh": ("Wh", 6), "mWh": ("Wh", -3), "MW": ("W", 6), "mW": ("W", -3), "mA": ("A", -3), "kA": ("A", 3)}
_BASE = {u.lower(): u for u in ("Wh", "W", "varh", "var", "VAh", "VA", "A", "V", "Hz", "Percent", "K", "Celsius")}

# OCPP SPEC-SILENT: the spec gives a default unit ("Wh") only for energy measurands. A non-energy value without a
# unit is taken to be in the SI unit of its measurand.
_DEFAULT_UNIT_PREFIXES = (
    ("Energy.Active", "Wh"),
    ("Energy.Reactive", "varh"),
    ("Energy.Apparent", "VAh"),
    ("Power.Active", "W"),
    ("Power.Offered", "W"),
    ("Power.Reactive", "var"),
    ("Power.Factor", ""),
    ("Current", "A"),
    ("Voltage", "V"),
    ("Frequency", "Hz"),
    ("SoC", "Percent"),
)

# OCPP SPEC-SILENT: which reading is "the" session meter. Overall (phase-less) readings first; among them the
# location closest to the EV's billing point first. Without an overall reading, the line phases are summed.
LOCATION_PREFERENCE = ("Outlet", "Cable", "EV", "Inlet", "Body")
LINE_PHASES = ("L1", "L2", "L3")


# Largest magnitude stored (in the base unit): far beyond any real meter, well inside the DB column.
MAX_ABS_VALUE = Decimal(10) ** 15


def storable(value: Decimal) -> bool:
    """Whether a normalised value can be stored (JSON parsers accept NaN/Infinity; firmware bugs send 1e300)."""
    return value.is_finite() and abs(value) < MAX_ABS_VALUE


def default_unit(measurand: str) -> str:
    for prefix, unit in _DEFAULT_UNIT_PREFIXES:
        if measurand.startswith(prefix):
            return unit
    return "Wh"


def to_decimal(value: Any) -> Decimal:
    # str() of a float is its shortest round-trip form: 12.345 stays 12.345, not 12.3449999...
    return value if isinstance(value, Decimal) else Decimal(str(value))


def normalise(value: Any, unit: str | None, multiplier: int | None, measurand: str) -> tuple[Decimal, str]:
    """The value in its base unit with the multiplier applied: (12.345, "kWh", 0) -> (12345.000, "Wh")."""
    unit = unit or default_unit(measurand)
    exponent = multiplier or 0
    key = unit.lower()
    if unit in _EXACT:
        unit, extra = _EXACT[unit]
        exponent += extra
    elif key in _PREFIXED:
        unit, extra = _PREFIXED[key]
        exponent += extra
    elif key in _BASE:
        unit = _BASE[key]
    return to_decimal(value).scaleb(exponent), unit


@dataclass(frozen=True, slots=True)
class Sample:
    timestamp: datetime
    measurand: str
    phase: str
    location: str
    context: str
    value: Decimal
    unit: str
    signed_meter_value: dict[str, Any] | None = None


def samples_from_meter_values(
    meter_values: Iterable[dict[str, Any]], parse_ts: Callable[[str], datetime]
) -> list[Sample]:
    """Flatten OCPP MeterValueType[] into normalised samples, applying the spec's defaults.

    # OCPP SPEC-SILENT: a sampled value that cannot be a reading (NaN, infinite, absurdly large) is dropped and
    # logged; the rest of the message (and its transaction event) is kept rather than refused.
    """
    out: list[Sample] = []
    for meter_value in meter_values:
        timestamp = parse_ts(meter_value["timestamp"])
        for sv in meter_value["sampledValue"]:
            measurand = sv.get("measurand") or DEFAULT_MEASURAND
            uom = sv.get("unitOfMeasure") or {}
            value, unit = normalise(sv["value"], uom.get("unit"), uom.get("multiplier"), measurand)
            if not storable(value):
                logger.warning("dropped unstorable sampled value %r (%s)", sv["value"], measurand)
                continue
            out.append(
                Sample(
                    timestamp=timestamp,
                    measurand=measurand,
                    phase=sv.get("phase") or "",
                    location=sv.get("location") or DEFAULT_LOCATION,
                    context=sv.get("context") or DEFAULT_CONTEXT,
                    value=value,
                    unit=unit,
                    signed_meter_value=sv.get("signedMeterValue"),
                )
            )
    return out


def _by_series(samples: Iterable[Sample], measurand: str) -> dict[tuple[str, str], list[Sample]]:
    groups: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for s in samples:
        if s.measurand == measurand:
            groups[(s.phase, s.location)].append(s)
    return groups


SeriesKey = tuple[str, str]  # (phase, location)


def preferred_series(keys: Iterable[SeriesKey]) -> list[SeriesKey]:
    """One overall series, or the line-phase series to be summed, or nothing."""
    present = set(keys)
    for location in LOCATION_PREFERENCE:
        if ("", location) in present:
            return [("", location)]
    for location in LOCATION_PREFERENCE:
        phases = [(p, location) for p in LINE_PHASES if (p, location) in present]
        if phases:
            return phases
    return []


# Ties on the timestamp (a Transaction.End repeating the last periodic reading) are broken by value.
def _first(series: list[Sample]) -> Sample:
    return min(series, key=lambda s: (s.timestamp, s.value))


def _last(series: list[Sample]) -> Sample:
    return max(series, key=lambda s: (s.timestamp, s.value))


@dataclass(frozen=True, slots=True)
class EnergySummary:
    meter_start_wh: Decimal | None
    meter_stop_wh: Decimal | None
    energy_wh: Decimal | None


def energy_from_endpoints(endpoints: list[tuple[Decimal, Decimal]]) -> EnergySummary:
    """From the (first, last) register reading of each preferred series (one, or one per line phase)."""
    if not endpoints:
        return EnergySummary(None, None, None)
    start = sum((first for first, _ in endpoints), Decimal(0))
    stop = sum((last for _, last in endpoints), Decimal(0))
    energy = stop - start
    # OCPP SPEC-SILENT: a register that went backwards (meter replaced or reset mid-session) gives no energy
    # figure rather than a negative one; the raw samples stay for an operator to decide.
    return EnergySummary(start, stop, energy if energy >= 0 else None)


def energy_summary(samples: Iterable[Sample]) -> EnergySummary:
    """Session energy: last minus first Energy.Active.Import.Register reading, whatever the arrival order."""
    groups = _by_series(samples, ENERGY_REGISTER)
    return energy_from_endpoints([(_first(groups[k]).value, _last(groups[k]).value) for k in preferred_series(groups)])


def energy_wh(samples: Iterable[Sample]) -> Decimal | None:
    return energy_summary(samples).energy_wh


@dataclass(frozen=True, slots=True)
class PowerSummary:
    peak_power_w: Decimal | None
    last_power_w: Decimal | None


def power_summary(samples: Iterable[Sample]) -> PowerSummary:
    """Peak and latest Power.Active.Import (overall reading, or the line phases summed per instant)."""
    groups = _by_series(samples, POWER_IMPORT)
    series_list = [groups[k] for k in preferred_series(groups)]
    if not series_list:
        return PowerSummary(None, None)
    per_instant: dict[datetime, Decimal] = defaultdict(Decimal)
    for series in series_list:
        # One value per series and instant: the highest if a station repeats an instant with another context.
        best: dict[datetime, Decimal] = {}
        for s in series:
            best[s.timestamp] = max(best.get(s.timestamp, s.value), s.value)
        for ts, value in best.items():
            per_instant[ts] += value
    return PowerSummary(max(per_instant.values()), per_instant[max(per_instant)])


# --- Incremental metering state ---------------------------------------------------------------------------------
# The session figures depend only on the first/last reading of each energy and power series and the power peak.
# Kept on the transaction, they let an in-order event update the figures from its own samples, without reading the
# stored ones again. Values are rounded as the database stores them, so both ways give the same figures.

STORED_PLACES = Decimal("0.000001")  # MeterSample.value has 6 decimal places
TRACKED = (ENERGY_REGISTER, POWER_IMPORT)


def stored(value: Decimal) -> Decimal:
    return value.quantize(STORED_PLACES, rounding=ROUND_HALF_UP)  # PostgreSQL numeric rounds half away from 0


@dataclass(slots=True)
class SeriesEnds:
    first: tuple[datetime, Decimal]
    last: tuple[datetime, Decimal]
    peak: Decimal


def _series_id(measurand: str, phase: str, location: str) -> str:
    return f"{measurand}|{phase}|{location}"


class MeteringState:
    """First and last reading (ties broken by value, as the full derivation does) and peak of each tracked series."""

    def __init__(self, series: dict[tuple[str, str, str], SeriesEnds] | None = None) -> None:
        self.series = series or {}

    # JSON on the transaction: {"measurand|phase|location": [first_ts, first, last_ts, last, peak]}
    @classmethod
    def from_json(cls, data: dict[str, list[str]]) -> MeteringState:
        series = {}
        for key, (first_ts, first, last_ts, last, peak) in data.items():
            measurand, phase, location = key.split("|")
            series[(measurand, phase, location)] = SeriesEnds(
                (datetime.fromisoformat(first_ts), Decimal(first)),
                (datetime.fromisoformat(last_ts), Decimal(last)),
                Decimal(peak),
            )
        return cls(series)

    def to_json(self) -> dict[str, list[str]]:
        return {
            _series_id(*key): [
                ends.first[0].isoformat(),
                str(ends.first[1]),
                ends.last[0].isoformat(),
                str(ends.last[1]),
                str(ends.peak),
            ]  # fmt: skip
            for key, ends in sorted(self.series.items())
        }

    def append(self, samples: Iterable[Sample]) -> bool:
        """Fold in new readings when each is later than every stored one of its series; otherwise change nothing
        and return False (the caller derives the state from the stored samples instead)."""
        new = sorted(
            ((s.measurand, s.phase, s.location), s.timestamp, stored(s.value))
            for s in samples
            if s.measurand in TRACKED
        )
        last_seen: dict[tuple[str, str, str], datetime] = {k: ends.last[0] for k, ends in self.series.items()}
        for key, timestamp, _ in new:
            if key in last_seen and timestamp <= last_seen[key]:
                return False  # a tie or an older reading: the order-independent rules need the stored samples
            last_seen[key] = timestamp
        for key, timestamp, value in new:
            ends = self.series.get(key)
            if ends is None:
                self.series[key] = SeriesEnds((timestamp, value), (timestamp, value), value)
            else:
                ends.last = (timestamp, value)
                ends.peak = max(ends.peak, value)
        return True

    def preferred(self, measurand: str) -> list[tuple[str, str, str]]:
        keys = [(phase, location) for m, phase, location in self.series if m == measurand]
        return [(measurand, phase, location) for phase, location in preferred_series(keys)]

    def energy(self) -> EnergySummary:
        ends = [self.series[key] for key in self.preferred(ENERGY_REGISTER)]
        return energy_from_endpoints([(e.first[1], e.last[1]) for e in ends])

    def power(self) -> PowerSummary | None:
        """Peak and latest power of one overall series; None when line phases must be summed per instant (that
        needs every reading)."""
        keys = self.preferred(POWER_IMPORT)
        if not keys:
            return PowerSummary(None, None)
        if len(keys) > 1:
            return None
        ends = self.series[keys[0]]
        return PowerSummary(ends.peak, ends.last[1])
