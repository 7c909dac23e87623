"""Pure cost arithmetic (block I): a session's cost from its tariff terms, charging-state timeline and energy readings.

No database here. Money is ``Decimal`` throughout; intermediate figures keep full precision (a 40-digit context) and
only the final total (with taxes) is rounded, ROUND_HALF_UP, to the currency's minor unit (ISO 4217 exponent: 2
for most currencies, 0 for e.g. JPY, 3 for e.g. KWD). Net and tax are then derived from the rounded total so that
net + tax == total.

The session is cut into segments at every charging-state change, every energy reading and every band boundary; each
segment is priced with the prices of the band it lies in:

- energy: the register's increase over the segment (linear between two readings, so a reading interval that crosses
  a band boundary is split in proportion to time; a register going backwards adds nothing) × price per kWh;
- charging time: segments in state ``Charging`` × price per hour;
- idle time: segments in ``SuspendedEV``, or ``EVConnected`` after the EV has charged (charging stopped, the car
  still occupies the EVSE) × idle price per hour. ``SuspendedEVSE`` (the CSMS's own load management pausing the
  EV) and ``Idle`` (no EV) are never billed as time;
- the session fee once; then tax.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any

PRICE_FIELDS = ("price_per_kwh", "price_per_hour", "idle_price_per_hour")
TERM_FIELDS = (*PRICE_FIELDS, "session_fee", "tax_rate_percent")

# ISO 4217 minor units that are not 2 (every other currency code has 2).
_MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
                     "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4, "UYW": 4,
}  # fmt: skip

CHARGING = "charging"
IDLE = "idle"
FREE = "free"

_PRECISION = Context(prec=40)
_SECONDS_PER_HOUR = Decimal(3600)
_WH_PER_KWH = Decimal(1000)


def minor_unit(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def money_round(value: Decimal, currency: str) -> Decimal:
    """ROUND_HALF_UP to the currency's minor unit: 8.1515 EUR -> 8.15, 8.155 EUR -> 8.16."""
    return value.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP)


def money_text(value: Decimal | None, currency: str) -> str | None:
    """A stored amount as a decimal string in the currency's minor unit ("8.15"); None stays None."""
    return None if value is None else str(money_round(value, currency))


def parse_hhmm(value: str) -> time:
    """``"HH:MM"`` (00:00-23:59, or 24:00 for the end of the day as a band end) -> time; ValueError otherwise."""
    hours, sep, minutes = value.partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit()) or len(minutes) != 2 or len(hours) > 2:
        raise ValueError(f"{value!r} is not HH:MM")
    h, m = int(hours), int(minutes)
    if (h, m) == (24, 0):
        return time(0, 0)
    if h > 23 or m > 59:
        raise ValueError(f"{value!r} is not a time of day")
    return time(h, m)


@dataclass(frozen=True, slots=True)
class Band:
    start: time
    end: time
    prices: dict[str, Decimal]  # the prices it overrides

    def contains(self, at: time) -> bool:
        if self.start < self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end  # across midnight (end == start: the whole day)


@dataclass(frozen=True, slots=True)
class Terms:
    """A tariff version's terms, from its ``prices`` snapshot."""

    currency: str
    price_per_kwh: Decimal
    price_per_hour: Decimal
    idle_price_per_hour: Decimal
    session_fee: Decimal
    tax_rate_percent: Decimal
    prices_include_tax: bool
    bands: tuple[Band, ...] = ()

    @classmethod
    def from_snapshot(cls, prices: dict[str, Any]) -> Terms:
        bands = tuple(
            Band(
                parse_hhmm(b["start"]),
                parse_hhmm(b["end"]),
                {k: Decimal(str(b[k])) for k in PRICE_FIELDS if b.get(k) is not None},
            )
            for b in prices.get("bands") or []
        )
        return cls(
            currency=prices["currency"],
            **{k: Decimal(str(prices.get(k) or 0)) for k in TERM_FIELDS},
            prices_include_tax=bool(prices.get("prices_include_tax", True)),
            bands=bands,
        )

    def prices_at(self, local: time) -> dict[str, Decimal]:
        """The three prices in force at a local time of day: the base ones, overridden by the first band there."""
        prices = {k: getattr(self, k) for k in PRICE_FIELDS}
        for band in self.bands:
            if band.contains(local):
                prices.update(band.prices)
                break
        return prices


@dataclass(frozen=True, slots=True)
class Cost:
    """A session's cost. Components are unrounded; ``total`` (with taxes) is rounded, ``net + tax == total``."""

    currency: str
    energy_wh: Decimal
    charging_s: Decimal
    idle_s: Decimal
    energy_cost: Decimal
    charging_cost: Decimal
    idle_cost: Decimal
    session_fee: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal
    segments: list[dict[str, Any]] = field(default_factory=list, compare=False)


def _seconds(delta: timedelta) -> Decimal:
    return Decimal(delta // timedelta(microseconds=1)).scaleb(-6)


def time_kind(state: str | None, charged_before: bool) -> str:
    """How a stretch of time in a charging state is billed.

    # OCPP SPEC-SILENT: before the station reports any chargingState the time counts as charging (the session is
    # under way and nothing says otherwise); EVConnected counts as idle only once the EV has charged.
    """
    if state is None or state == "Charging":
        return CHARGING
    if state == "SuspendedEV" or (state == "EVConnected" and charged_before):
        return IDLE
    return FREE  # SuspendedEVSE (our own load management), Idle, EVConnected before charging


class _Register:
    """An energy register series as a non-decreasing cumulative function of time (linear between readings)."""

    def __init__(self, readings: Iterable[tuple[datetime, Decimal]]) -> None:
        best: dict[datetime, Decimal] = {}
        for ts, value in readings:
            best[ts] = max(best.get(ts, value), value)
        self.times = sorted(best)
        self.cumulative: list[Decimal] = []
        total, previous = Decimal(0), None
        for ts in self.times:
            value = best[ts]
            if previous is not None and value > previous:
                total += value - previous
            previous = value
            self.cumulative.append(total)

    def at(self, ts: datetime) -> Decimal:
        times, cumulative = self.times, self.cumulative
        if not times or ts <= times[0]:
            return Decimal(0)
        if ts >= times[-1]:
            return cumulative[-1]
        # Few readings per segment search: bisect by hand on datetimes.
        lo, hi = 0, len(times) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if times[mid] <= ts:
                lo = mid
            else:
                hi = mid
        span = _seconds(times[hi] - times[lo])
        return cumulative[lo] + (cumulative[hi] - cumulative[lo]) * _seconds(ts - times[lo]) / span


def band_boundaries(terms: Terms, start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
    """The instants in (start, end) where a band starts or ends, in UTC."""
    if not terms.bands:
        return []
    out: set[datetime] = set()
    first: date = start.astimezone(tz).date() - timedelta(days=1)
    last: date = end.astimezone(tz).date() + timedelta(days=1)
    day = first
    while day <= last:
        for band in terms.bands:
            for t in (band.start, band.end):
                instant = datetime.combine(day, t, tzinfo=tz).astimezone(UTC)
                if start < instant < end:
                    out.add(instant)
        day += timedelta(days=1)
    return sorted(out)


def session_cost(
    terms: Terms,
    *,
    started_at: datetime,
    until: datetime,
    states: Sequence[tuple[datetime, str]],
    energy_series: Sequence[Iterable[tuple[datetime, Decimal]]],
    tz: tzinfo = UTC,
) -> Cost:
    """The cost of a session from ``started_at`` to ``until`` (its end, or now for a running cost).

    ``states``: (timestamp, chargingState) in event order; ``energy_series``: the register readings (Wh) of each
    series to bill (one overall series, or one per line phase: their energies add up).
    """
    with localcontext(_PRECISION):
        until = max(until, started_at)
        registers = [_Register(series) for series in energy_series]
        timeline = sorted(states, key=lambda s: s[0])
        cuts = {started_at, until}
        cuts.update(ts for ts, _ in timeline if started_at < ts < until)
        for register in registers:
            cuts.update(ts for ts in register.times if started_at < ts < until)
        cuts.update(band_boundaries(terms, started_at, until, tz))
        points = sorted(cuts)
        energy_wh = charging_s = idle_s = Decimal(0)
        energy_cost = charging_cost = idle_cost = Decimal(0)
        segments: list[dict[str, Any]] = []
        state_index, state, charged = 0, None, False
        for a, b in zip(points, points[1:], strict=False):
            while state_index < len(timeline) and timeline[state_index][0] <= a:
                state = timeline[state_index][1]
                state_index += 1
            kind = time_kind(state, charged)
            charged = charged or state == "Charging"
            prices = terms.prices_at((a + (b - a) / 2).astimezone(tz).time())
            seconds = _seconds(b - a)
            energy = sum((r.at(b) - r.at(a) for r in registers), Decimal(0))
            # Multiplied before divided: exact whenever the result has a finite decimal expansion.
            e_cost = energy * prices["price_per_kwh"] / _WH_PER_KWH
            t_cost = Decimal(0)
            if kind == CHARGING:
                t_cost = seconds * prices["price_per_hour"] / _SECONDS_PER_HOUR
                charging_s += seconds
                charging_cost += t_cost
            elif kind == IDLE:
                t_cost = seconds * prices["idle_price_per_hour"] / _SECONDS_PER_HOUR
                idle_s += seconds
                idle_cost += t_cost
            energy_wh += energy
            energy_cost += e_cost
            segments.append({"from": a, "to": b, "kind": kind, "energy_wh": energy, "cost": e_cost + t_cost})
        subtotal = energy_cost + charging_cost + idle_cost + terms.session_fee
        rate = terms.tax_rate_percent / Decimal(100)
        gross = subtotal if terms.prices_include_tax else subtotal * (1 + rate)
        total = money_round(gross, terms.currency)
        net = money_round(total / (1 + rate), terms.currency)
        return Cost(
            currency=terms.currency,
            energy_wh=energy_wh,
            charging_s=charging_s,
            idle_s=idle_s,
            energy_cost=energy_cost,
            charging_cost=charging_cost,
            idle_cost=idle_cost,
            session_fee=terms.session_fee,
            net=net,
            tax=total - net,
            total=total,
            segments=segments,
        )
