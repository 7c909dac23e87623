"""The CSMS's composite schedule against hand-worked examples (pure functions, no database)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from smartcharging.composite import (
    ABSOLUTE,
    DAILY,
    EXTERNAL_CONSTRAINTS,
    RECURRING,
    RELATIVE,
    STATION_MAX_PROFILE,
    TX_DEFAULT_PROFILE,
    TX_PROFILE,
    WEEKLY,
    Composite,
    Electrical,
    Period,
    Profile,
    Schedule,
    composite_schedule,
    convert,
    profile_segments,
)

AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def profile(
    pid: int,
    purpose: str,
    periods: Sequence[tuple[int, float] | tuple[int, float, int | None]],
    *,
    stack: int = 0,
    kind: str = ABSOLUTE,
    start: datetime | None = T0,
    duration_s: int | None = None,
    unit: str = "A",
    evse: int = 1,
    recurrency: str = "",
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> Profile:
    return Profile(
        profile_id=pid,
        purpose=purpose,
        kind=kind,
        stack_level=stack,
        evse_id=evse,
        recurrency_kind=recurrency,
        valid_from=valid_from,
        valid_to=valid_to,
        schedules=(
            Schedule(
                rate_unit=unit,
                periods=tuple(Period(p[0], p[1], p[2] if len(p) > 2 else None) for p in periods),
                start=None if kind == RELATIVE else start,
                duration_s=duration_s,
            ),
        ),
    )


def limits(result: Composite) -> list[tuple[int, float | None]]:
    return [(p.start_s, p.limit) for p in result.periods]


def test_the_highest_stack_level_wins_within_a_purpose_and_a_lower_one_applies_where_it_ends():
    base = profile(1, TX_DEFAULT_PROFILE, [(0, 32)])
    higher = profile(2, TX_DEFAULT_PROFILE, [(0, 16)], stack=1, start=T0 + timedelta(hours=1), duration_s=7200)
    result = composite_schedule([base, higher], start=T0, duration_s=4 * 3600)
    assert limits(result) == [(0, 32.0), (3600, 16.0), (10800, 32.0)]


def test_validity_bounds_a_profile():
    base = profile(1, TX_DEFAULT_PROFILE, [(0, 32)])
    higher = profile(2, TX_DEFAULT_PROFILE, [(0, 10)], stack=3, valid_to=T0 + timedelta(minutes=30))
    later = profile(3, TX_DEFAULT_PROFILE, [(0, 20)], stack=2, valid_from=T0 + timedelta(hours=2))
    result = composite_schedule([base, higher, later], start=T0, duration_s=3 * 3600)
    assert limits(result) == [(0, 10.0), (1800, 32.0), (7200, 20.0)]


def test_tx_profile_overrides_tx_default_and_station_max_and_external_limits_cap():
    tx_default = profile(1, TX_DEFAULT_PROFILE, [(0, 10)], stack=5)
    tx = profile(2, TX_PROFILE, [(0, 25), (3600, 32)])
    station_max = profile(3, STATION_MAX_PROFILE, [(0, 40), (5400, 16)], evse=0)
    # An external limit in W on the whole station: 4140 W = 6 A x 230 V x 3 phases, from 2 h on.
    external = profile(4, EXTERNAL_CONSTRAINTS, [(0, 4140)], unit="W", start=T0 + timedelta(hours=2), evse=0)
    result = composite_schedule([tx_default, tx, station_max, external], start=T0, duration_s=3 * 3600)
    assert limits(result) == [(0, 25.0), (3600, 32.0), (5400, 16.0), (7200, 6.0)]
    # Without the TxProfile, the TxDefaultProfile applies (still under the caps).
    result = composite_schedule([tx_default, station_max, external], start=T0, duration_s=3 * 3600)
    assert limits(result) == [(0, 10.0), (7200, 6.0)]


def test_an_evse_specific_tx_default_overrides_the_one_on_evse_0_and_other_evses_are_ignored():
    everywhere = profile(1, TX_DEFAULT_PROFILE, [(0, 32)], stack=9, evse=0)
    here = profile(2, TX_DEFAULT_PROFILE, [(0, 13)], stack=0, evse=2)
    elsewhere = profile(3, TX_PROFILE, [(0, 6)], evse=1)
    assert limits(composite_schedule([everywhere, here, elsewhere], start=T0, duration_s=60, evse_id=2)) == [(0, 13.0)]
    assert limits(composite_schedule([everywhere, here, elsewhere], start=T0, duration_s=60, evse_id=3)) == [(0, 32.0)]


def test_evse_0_is_the_station_cap_and_nothing_is_no_limit():
    station_max = profile(1, STATION_MAX_PROFILE, [(0, 63)], evse=0)
    tx = profile(2, TX_PROFILE, [(0, 6)], evse=1)
    assert limits(composite_schedule([station_max, tx], start=T0, duration_s=60, evse_id=0)) == [(0, 63.0)]
    assert limits(composite_schedule([], start=T0, duration_s=60)) == [(0, None)]


def test_recurring_daily_across_midnight_in_the_site_time_zone():
    # Every day 22:00-02:00 Amsterdam time (CET in January: 21:00-01:00 UTC) 10 A, then 32 A.
    night = profile(
        1,
        TX_DEFAULT_PROFILE,
        [(0, 10), (4 * 3600, 32)],
        kind=RECURRING,
        recurrency=DAILY,
        start=datetime(2026, 1, 5, 21, 0, tzinfo=UTC),
    )
    start = datetime(2026, 1, 6, 20, 0, tzinfo=UTC)
    result = composite_schedule([night], start=start, duration_s=8 * 3600, tz=AMS)
    assert limits(result) == [(0, 32.0), (3600, 10.0), (5 * 3600, 32.0)]


def test_recurring_daily_across_the_spring_dst_change_keeps_local_wall_clock_times():
    # 17:00-23:00 local 16 A, otherwise 32 A. Amsterdam moves from CET to CEST on 2026-03-29 at 02:00.
    evening = profile(
        1,
        TX_DEFAULT_PROFILE,
        [(0, 16), (6 * 3600, 32)],
        kind=RECURRING,
        recurrency=DAILY,
        start=datetime(2026, 3, 1, 16, 0, tzinfo=UTC),  # 17:00 CET
    )
    start = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    result = composite_schedule([evening], start=start, duration_s=36 * 3600, tz=AMS)
    # 28th (CET): 16:00Z-22:00Z; 29th (CEST): 15:00Z-21:00Z.
    assert limits(result) == [(0, 32.0), (4 * 3600, 16.0), (10 * 3600, 32.0), (27 * 3600, 16.0), (33 * 3600, 32.0)]


def test_recurring_daily_across_the_autumn_dst_change_a_period_over_the_change_lasts_an_hour_longer():
    # 00:00-04:00 local 8 A. On 2026-10-25 clocks go back at 03:00 CEST: that night's period lasts 5 hours.
    night = profile(
        1,
        TX_DEFAULT_PROFILE,
        [(0, 8), (4 * 3600, 32)],
        kind=RECURRING,
        recurrency=DAILY,
        start=datetime(2026, 10, 1, 22, 0, tzinfo=UTC),  # 00:00 CEST on 2 October
    )
    start = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
    result = composite_schedule([night], start=start, duration_s=12 * 3600, tz=AMS)
    assert limits(result) == [(0, 32.0), (2 * 3600, 8.0), (7 * 3600, 32.0)]


def test_recurring_weekly_repeats_every_seven_days_and_duration_ends_each_occurrence():
    monday_morning = profile(
        1,
        TX_DEFAULT_PROFILE,
        [(0, 6)],
        kind=RECURRING,
        recurrency=WEEKLY,
        start=datetime(2026, 6, 1, 6, 0, tzinfo=UTC),  # a Monday
        duration_s=3 * 3600,
    )
    start = datetime(2026, 6, 7, 0, 0, tzinfo=UTC)  # the Sunday after
    result = composite_schedule([monday_morning], start=start, duration_s=2 * 86400)
    assert limits(result) == [(0, None), (30 * 3600, 6.0), (33 * 3600, None)]


def test_relative_profile_starts_with_the_transaction():
    ramp = profile(1, TX_PROFILE, [(0, 32), (1800, 16)], kind=RELATIVE, duration_s=3600)
    fallback = profile(2, TX_DEFAULT_PROFILE, [(0, 20)])
    result = composite_schedule(
        [ramp, fallback], start=T0, duration_s=3600, transaction_start=T0 - timedelta(seconds=600)
    )
    assert limits(result) == [(0, 32.0), (1200, 16.0), (3000, 20.0)]


def test_limits_convert_between_amperes_and_watts_with_voltage_and_phases():
    three_phase_w = profile(1, TX_DEFAULT_PROFILE, [(0, 11000, 3)], unit="W")
    assert limits(composite_schedule([three_phase_w], start=T0, duration_s=60, rate_unit="A")) == [(0, 15.9)]
    one_phase_a = profile(2, TX_PROFILE, [(0, 16, 1)])
    result = composite_schedule([one_phase_a], start=T0, duration_s=60, rate_unit="W")
    assert limits(result) == [(0, 3680.0)]
    assert result.periods[0].number_phases == 1
    us = Electrical(voltage_v=120, phases=1)
    assert convert(40, from_unit="A", to_unit="W", number_phases=None, electrical=us) == 4800
    assert limits(composite_schedule([one_phase_a], start=T0, duration_s=60, rate_unit="W", electrical=us)) == [
        (0, 1920.0)
    ]


def test_reference_example_station_max_caps_a_higher_tx_profile():
    # The reference's worked example: a 3-phase station capped at 32 A; a TxProfile asking 40 A gets 32 A.
    station_max = profile(1, STATION_MAX_PROFILE, [(0, 32)], evse=0)
    tx = profile(2, TX_PROFILE, [(0, 40)])
    assert limits(composite_schedule([station_max, tx], start=T0, duration_s=600)) == [(0, 32.0)]


# --- Property: the composite never exceeds any applicable limit --------------------------------------------------

PURPOSES = [TX_PROFILE, TX_DEFAULT_PROFILE, STATION_MAX_PROFILE, EXTERNAL_CONSTRAINTS]


@st.composite
def profiles_strategy(draw: st.DrawFn) -> Profile:
    purpose = draw(st.sampled_from(PURPOSES))
    kind = draw(st.sampled_from([ABSOLUTE, RECURRING, RELATIVE]))
    unit = draw(st.sampled_from(["A", "W"]))
    count = draw(st.integers(1, 4))
    starts = sorted(draw(st.sets(st.integers(1, 86400), min_size=count - 1, max_size=count - 1)))
    high = 64.0 if unit == "A" else 44000.0
    periods = [
        (s, draw(st.floats(0, high, allow_nan=False).map(lambda v: round(v, 1))), draw(st.sampled_from([None, 1, 3])))
        for s in [0, *starts]
    ]
    offset = timedelta(seconds=draw(st.integers(-86400, 86400)))
    return profile(
        draw(st.integers(1, 1000)),
        purpose,
        periods,
        stack=draw(st.integers(0, 3)),
        kind=kind,
        start=T0 + offset,
        duration_s=draw(st.one_of(st.none(), st.integers(60, 2 * 86400))),
        unit=unit,
        evse=draw(st.sampled_from([0, 1])),
        recurrency=draw(st.sampled_from([DAILY, WEEKLY])) if kind == RECURRING else "",
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(profiles_strategy(), min_size=1, max_size=6),
    st.sampled_from(["A", "W"]),
    st.lists(st.integers(0, 2 * 86400 - 1), min_size=1, max_size=20),
)
def test_the_composite_never_exceeds_any_applicable_limit(profiles, rate_unit, probes):
    start, duration_s, tx_start = T0, 2 * 86400, T0 - timedelta(minutes=5)
    electrical = Electrical()
    result = composite_schedule(
        profiles, start=start, duration_s=duration_s, rate_unit=rate_unit, tz=AMS, transaction_start=tx_start,
        electrical=electrical,
    )  # fmt: skip
    end = start + timedelta(seconds=duration_s)
    for offset in probes:
        t = start + timedelta(seconds=offset)
        got = result.limit_at(offset)
        applicable = []
        for p in profiles:
            if p.purpose in (TX_PROFILE, TX_DEFAULT_PROFILE) and p.evse_id not in (0, 1):
                continue
            for seg in profile_segments(p, window_start=start, window_end=end, tz=AMS, transaction_start=tx_start):
                if seg.start <= t < seg.end:
                    value = convert(seg.limit, from_unit=seg.rate_unit, to_unit=rate_unit,
                                    number_phases=seg.number_phases, electrical=electrical)  # fmt: skip
                    applicable.append((p, value))
        if not applicable:
            assert got is None
            continue
        assert got is not None
        # Per purpose, the winning profiles (highest stack level; EVSE-specific first except for TxProfile)
        # bound the composite: it is at most each bound and not lower than their minimum (rounded down).
        upper, lower = [], []
        for purposes in ([TX_PROFILE], [TX_DEFAULT_PROFILE], [STATION_MAX_PROFILE], [EXTERNAL_CONSTRAINTS]):
            group = [(p, v) for p, v in applicable if p.purpose in purposes]
            if not group:
                continue
            if purposes == [TX_DEFAULT_PROFILE] and any(p.purpose == TX_PROFILE for p, _ in applicable):
                continue  # a TxProfile overrides the TxDefaultProfile
            rank = max(((p.evse_id != 0) * (p.purpose != TX_PROFILE), p.stack_level) for p, _ in group)
            ties = [v for p, v in group if ((p.evse_id != 0) * (p.purpose != TX_PROFILE), p.stack_level) == rank]
            upper.append(max(ties))
            lower.append(min(ties))
        for bound in upper:
            assert got <= bound + 1e-6, (t, got, upper)
        assert got >= min(lower) - 0.1 - 1e-6, (t, got, lower)
