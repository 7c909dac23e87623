"""The CSMS's own composite schedule: pure functions, no database.

``composite_schedule(profiles, start=, duration_s=, rate_unit=, ...)`` merges charging profiles the way a station
does (OCPP 2.0.1 K08):

- within a purpose, at each instant the valid profile with the highest ``stackLevel`` whose schedule covers that
  instant wins (a lower one applies where the higher one's schedule has ended or is not yet valid);
- a TxProfile overrides the TxDefaultProfile (an EVSE-specific TxDefaultProfile overrides one on EVSE 0);
- the ChargingStationMaxProfile and the external constraints (ChargingStationExternalConstraints profiles and the
  limits of NotifyChargingLimit, passed as ``limits``) cap the result: the composite is the minimum of the
  applicable limits;
- Recurring profiles repeat in the site's time zone ``tz`` (OCPP times are UTC; a Daily profile that starts at
  17:00 local time starts at 17:00 local time every day, whatever the UTC offset that day);
- Relative profiles start at ``transaction_start`` (the window's start when there is no transaction);
- limits in A and W are converted with ``Electrical`` (voltage and the period's numberPhases, default phases).

The result is a list of periods (seconds from ``start``) with ``limit`` None where no profile limits charging.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

TX_PROFILE = "TxProfile"
TX_DEFAULT_PROFILE = "TxDefaultProfile"
STATION_MAX_PROFILE = "ChargingStationMaxProfile"
EXTERNAL_CONSTRAINTS = "ChargingStationExternalConstraints"
ABSOLUTE, RECURRING, RELATIVE = "Absolute", "Recurring", "Relative"
DAILY, WEEKLY = "Daily", "Weekly"


@dataclass(frozen=True, slots=True)
class Period:
    start_s: int
    limit: float
    number_phases: int | None = None
    phase_to_use: int | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    rate_unit: str  # "A" or "W"
    periods: tuple[Period, ...]
    start: datetime | None = None  # startSchedule
    duration_s: int | None = None
    min_charging_rate: float | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    profile_id: int
    purpose: str
    kind: str
    stack_level: int
    schedules: tuple[Schedule, ...]
    evse_id: int = 0
    recurrency_kind: str = ""
    valid_from: datetime | None = None
    valid_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class Electrical:
    """How A and W convert: W = A x voltage x phases (phases: the period's numberPhases, else ``phases``)."""

    voltage_v: float = 230.0
    phases: int = 3


@dataclass(frozen=True, slots=True)
class CompositePeriod:
    start_s: int
    limit: float | None  # None: no profile limits charging
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class Composite:
    start: datetime
    duration_s: int
    rate_unit: str
    periods: tuple[CompositePeriod, ...] = field(default_factory=tuple)

    def limit_at(self, seconds: float) -> float | None:
        """The composite's limit ``seconds`` after its start."""
        current: float | None = None
        for period in self.periods:
            if period.start_s <= seconds:
                current = period.limit
            else:
                break
        return current


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of one profile in which its limit is constant: [start, end)."""

    start: datetime
    end: datetime
    limit: float
    rate_unit: str
    number_phases: int | None


FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def convert(limit: float, *, from_unit: str, to_unit: str, number_phases: int | None, electrical: Electrical) -> float:
    """A limit in ``to_unit`` (A <-> W with the voltage and the number of phases)."""
    if from_unit == to_unit:
        return limit
    factor = electrical.voltage_v * (number_phases or electrical.phases)
    return limit * factor if to_unit == "W" else limit / factor


def _anchors(
    profile: Profile, schedule: Schedule, *, window_start: datetime, window_end: datetime, tz: tzinfo,
    transaction_start: datetime | None,
) -> list[tuple[datetime, datetime | None, datetime | None]]:  # fmt: skip
    """The schedule's occurrences touching the window: (start, wall-clock start or None, hard end or None)."""
    if profile.kind == RELATIVE:
        # OCPP SPEC-SILENT: a Relative profile with no transaction (yet) is shown as if one started now.
        return [(transaction_start or window_start, None, None)]
    if schedule.start is None:
        return []
    if profile.kind != RECURRING:
        return [(schedule.start, None, None)]
    step_days = 7 if profile.recurrency_kind == WEEKLY else 1
    first_local = schedule.start.astimezone(tz)
    wall = first_local.replace(tzinfo=None)
    # Occurrences start at the first one's local wall-clock time, every day (or week), in ``tz``.
    window_local = window_start.astimezone(tz).replace(tzinfo=None)
    skip = max(0, (window_local - wall).days // step_days - 1)
    occurrence = wall + timedelta(days=skip * step_days)
    out: list[tuple[datetime, datetime | None, datetime | None]] = []
    while True:
        start = occurrence.replace(tzinfo=tz).astimezone(UTC)
        if start >= window_end:
            break
        nxt = (occurrence + timedelta(days=step_days)).replace(tzinfo=tz).astimezone(UTC)
        if nxt > window_start and start >= schedule.start:
            out.append((start, occurrence, nxt))
        occurrence += timedelta(days=step_days)
    return out


def profile_segments(
    profile: Profile,
    *,
    window_start: datetime,
    window_end: datetime,
    tz: tzinfo = UTC,
    transaction_start: datetime | None = None,
) -> list[Segment]:
    """The stretches of constant limit of ``profile`` within [window_start, window_end), clipped to its validity.

    # OCPP SPEC-SILENT: with several schedules in one profile (ISO 15118 offers), the first one is used.
    # OCPP SPEC-SILENT: a Recurring profile's startPeriods are wall-clock offsets from each occurrence's start in
    # ``tz``, so a "from 17:00 to 23:00" period keeps to 17:00-23:00 local time on the days the clocks change;
    # an occurrence lasts until the next one (23 or 25 hours on those days) unless its duration ends it earlier.
    """
    if not profile.schedules:
        return []
    schedule = profile.schedules[0]
    lower = max(window_start, profile.valid_from or window_start)
    upper = min(window_end, profile.valid_to or window_end)
    if lower >= upper:
        return []
    out: list[Segment] = []
    anchors = _anchors(
        profile, schedule, window_start=lower, window_end=upper, tz=tz, transaction_start=transaction_start
    )
    periods = sorted(schedule.periods, key=lambda p: p.start_s)
    for anchor, wall, hard_end in anchors:
        end = hard_end or FAR_FUTURE
        if schedule.duration_s is not None:
            end = min(end, anchor + timedelta(seconds=schedule.duration_s))
        for i, period in enumerate(periods):
            if wall is not None:
                assert tz is not None
                p_start = (wall + timedelta(seconds=period.start_s)).replace(tzinfo=tz).astimezone(UTC)
                p_end = (
                    (wall + timedelta(seconds=periods[i + 1].start_s)).replace(tzinfo=tz).astimezone(UTC)
                    if i + 1 < len(periods)
                    else end
                )
            else:
                p_start = anchor + timedelta(seconds=period.start_s)
                p_end = anchor + timedelta(seconds=periods[i + 1].start_s) if i + 1 < len(periods) else end
            p_start, p_end = max(p_start, lower), min(p_end, end, upper)
            if p_start < p_end:
                out.append(Segment(p_start, p_end, period.limit, schedule.rate_unit, period.number_phases))
    return out


@dataclass(slots=True)
class _Prepared:
    profile: Profile
    segments: list[Segment]

    def at(self, t: datetime) -> Segment | None:
        for segment in self.segments:
            if segment.start <= t < segment.end:
                return segment
        return None


def _winner(candidates: Iterable[_Prepared], t: datetime, *, prefer_evse: bool) -> Segment | None:
    """The segment at ``t`` of the highest-stack-level profile that covers ``t`` (EVSE-specific first)."""
    best: tuple[int, int, Segment] | None = None
    for prepared in candidates:
        segment = prepared.at(t)
        if segment is None:
            continue
        rank = (1 if prefer_evse and prepared.profile.evse_id != 0 else 0, prepared.profile.stack_level)
        if best is None or rank > best[:2]:
            best = (*rank, segment)
    return best[2] if best else None


def applies_to(profile: Profile, evse_id: int) -> bool:
    """Whether ``profile`` counts for a composite of ``evse_id`` (0: the whole station's grid connection)."""
    if evse_id == 0:
        # OCPP SPEC-SILENT: the CSMS's composite for EVSE 0 is the station's cap (station maximum and external
        # constraints on EVSE 0), not a sum of the EVSEs' transactions.
        return profile.evse_id == 0 and profile.purpose in (STATION_MAX_PROFILE, EXTERNAL_CONSTRAINTS)
    return profile.evse_id in (0, evse_id)


def composite_schedule(
    profiles: Sequence[Profile],
    *,
    start: datetime,
    duration_s: int,
    rate_unit: str = "A",
    evse_id: int = 1,
    limits: Sequence[Profile] = (),
    tz: tzinfo = UTC,
    transaction_start: datetime | None = None,
    electrical: Electrical = Electrical(),  # noqa: B008 - frozen
) -> Composite:
    """The composite schedule of ``evse_id`` for [start, start + duration_s), in ``rate_unit``.

    ``profiles``: the profiles installed on the station (any EVSE; those that do not apply are ignored);
    ``limits``: further caps that each apply on their own (NotifyChargingLimit schedules, as profiles).
    """
    end = start + timedelta(seconds=duration_s)

    def segments(profile: Profile) -> list[Segment]:
        return profile_segments(profile, window_start=start, window_end=end, tz=tz, transaction_start=transaction_start)

    by_purpose: dict[str, list[_Prepared]] = {}
    for profile in profiles:
        if applies_to(profile, evse_id):
            by_purpose.setdefault(profile.purpose, []).append(_Prepared(profile, segments(profile)))
    caps = [_Prepared(limit, segments(limit)) for limit in limits if applies_to(limit, evse_id)]
    points = {start}
    for prepared in [*caps, *(p for group in by_purpose.values() for p in group)]:
        for segment in prepared.segments:
            points.add(segment.start)
            points.add(segment.end)
    times = sorted(t for t in points if start <= t < end)
    periods: list[CompositePeriod] = []
    for t in times:
        chosen = _winner(by_purpose.get(TX_PROFILE, []), t, prefer_evse=False) or _winner(
            by_purpose.get(TX_DEFAULT_PROFILE, []), t, prefer_evse=True
        )
        bounding: list[Segment | None] = [
            _winner(by_purpose.get(STATION_MAX_PROFILE, []), t, prefer_evse=True),
            _winner(by_purpose.get(EXTERNAL_CONSTRAINTS, []), t, prefer_evse=True),
            *(cap.at(t) for cap in caps),
        ]
        limit: float | None = None
        phases: int | None = None
        for found in [chosen, *bounding]:
            if found is None:
                continue
            value = convert(
                found.limit,
                from_unit=found.rate_unit,
                to_unit=rate_unit,
                number_phases=found.number_phases,
                electrical=electrical,
            )
            if limit is None or value < limit:
                limit = value
            if phases is None:
                phases = found.number_phases
        if limit is not None:
            # One decimal (OCPP limits have at most one fraction digit), rounded down: never above a limit.
            limit = math.floor(limit * 10 + 1e-6) / 10
        offset = int((t - start).total_seconds())
        if periods and periods[-1].limit == limit and periods[-1].number_phases == phases:
            continue
        periods.append(CompositePeriod(offset, limit, phases))
    return Composite(start=start, duration_s=duration_s, rate_unit=rate_unit, periods=tuple(periods))
