"""The site allocation function (pure): strategies, minimum or paused, under-drawing, per-phase capacity, limits."""

from __future__ import annotations

from collections.abc import Hashable

from hypothesis import given, settings
from hypothesis import strategies as st

from smartcharging.allocation import Demand, SiteLimits, Strategy, allocate, totals

THREE = (0, 1, 2)


def limits(capacity: float = 100.0, phases: int = 3, **kwargs: object) -> SiteLimits:
    return SiteLimits(capacity_a=tuple([capacity] * phases), **kwargs)  # type: ignore[arg-type]


def ev(key: str, order: float = 0, phases: tuple[int, ...] = THREE, **kwargs: object) -> Demand:
    return Demand(key=key, phases=phases, order=order, **kwargs)  # type: ignore[arg-type]


def amps(result: dict) -> dict:
    return {k: a.limit_a for k, a in result.items()}


def test_equal_share_splits_the_capacity_and_floors_to_a_tenth():
    result = allocate(limits(100), [ev("a", 1), ev("b", 2), ev("c", 3)])
    assert amps(result) == {"a": 33.3, "b": 33.3, "c": 33.3}
    assert result["a"].reason == "equal share, L1 full"


def test_equal_share_gives_what_a_capped_ev_leaves_to_the_others():
    result = allocate(limits(100), [ev("a", 1, max_a=16), ev("b", 2), ev("c", 3)])
    assert amps(result) == {"a": 16.0, "b": 42.0, "c": 42.0}
    assert result["a"].reason == "equal share, capped: its EVSE limit"


def test_minimum_or_paused_in_arrival_order():
    # 20 A: three EVs of minimum 6 A fit, the fourth (last to arrive) is paused.
    result = allocate(limits(20), [ev("d", 4), ev("a", 1), ev("b", 2), ev("c", 3)])
    assert amps(result) == {"a": 6.6, "b": 6.6, "c": 6.6, "d": 0.0}
    assert result["d"].reason == "paused: no room for the minimum 6.0 A (L1 full)"


def test_an_evse_limit_below_the_minimum_pauses_it():
    result = allocate(limits(100), [ev("a", 1, max_a=5), ev("b", 2)])
    assert amps(result) == {"a": 0.0, "b": 100.0}
    assert result["a"].reason.startswith("paused: its EVSE limit (5.0 A) is below the minimum")


def test_priority_serves_the_higher_group_first_then_shares_the_rest():
    demands = [ev("low1", 1, priority=0), ev("high", 2, priority=10, max_a=32), ev("low2", 3, priority=0)]
    result = allocate(limits(50, strategy=Strategy.PRIORITY), demands)
    # Everyone first gets 6 A; high then rises to its 32 A; the low ones share what is left.
    assert amps(result) == {"high": 32.0, "low1": 9.0, "low2": 9.0}
    assert result["high"].reason == "priority 10, capped: its EVSE limit"


def test_priority_admits_the_higher_group_first_when_the_minimum_is_short():
    demands = [ev("low", 1, priority=0), ev("high1", 2, priority=5), ev("high2", 3, priority=5)]
    assert amps(allocate(limits(13, strategy=Strategy.PRIORITY), demands)) == {
        "high1": 6.5,
        "high2": 6.5,
        "low": 0.0,
    }


def test_first_come_fills_in_arrival_order():
    demands = [ev("b", 2, max_a=32), ev("a", 1, max_a=32), ev("c", 3, max_a=32)]
    assert amps(allocate(limits(60, strategy=Strategy.FIRST_COME), demands)) == {"a": 32.0, "b": 22.0, "c": 6.0}


def test_an_ev_drawing_less_is_reduced_to_its_draw_plus_headroom_and_the_rest_goes_to_others():
    demands = [ev("a", 1, measured_a=8.0, previous_a=33.3), ev("b", 2, previous_a=33.3), ev("c", 3, previous_a=33.3)]
    result = allocate(limits(100), demands)
    assert amps(result) == {"a": 10.0, "b": 45.0, "c": 45.0}
    assert result["a"].underdraw_capped is True
    assert result["a"].reason == "equal share, capped: it draws 8.0 A of 33.3 A"


def test_an_ev_drawing_its_allocation_is_not_reduced():
    result = allocate(limits(100), [ev("a", 1, measured_a=49.5, previous_a=50.0), ev("b", 2, previous_a=50.0)])
    assert amps(result) == {"a": 50.0, "b": 50.0}
    assert result["a"].underdraw_capped is False


def test_capacity_is_per_phase_single_phase_evs_on_different_phases_do_not_share():
    # L1 carries a and the three-phase c; L2 only c; L3 b and c.
    demands = [ev("a", 1, phases=(0,)), ev("b", 2, phases=(2,)), ev("c", 3)]
    result = allocate(limits(32), demands)
    assert amps(result) == {"a": 16.0, "b": 16.0, "c": 16.0}
    assert totals(limits(32), demands, result) == [32.0, 16.0, 32.0]


def test_a_full_phase_pauses_only_the_evs_on_it():
    demands = [ev("a", 1, phases=(0,)), ev("b", 2, phases=(0,)), ev("c", 3, phases=(1,))]
    result = allocate(limits(10), demands)
    assert amps(result) == {"a": 10.0, "b": 0.0, "c": 10.0}
    assert result["b"].reason == "paused: no room for the minimum 6.0 A (L1 full)"


def test_station_limit_is_shared_by_its_evses():
    demands = [ev("a", 1, station="S1"), ev("b", 2, station="S1"), ev("c", 3, station="S2")]
    result = allocate(limits(100, station_max_a={"S1": 32.0}), demands)
    assert amps(result) == {"a": 16.0, "b": 16.0, "c": 68.0}


def test_fixed_loads_are_reserved_first():
    demands = [ev("offline", 0, fixed_a=40.0), ev("a", 1), ev("b", 2)]
    result = allocate(limits(100), demands)
    assert amps(result) == {"offline": 40.0, "a": 30.0, "b": 30.0}
    assert result["offline"].reason == "fixed: not steerable now"


def test_single_phase_site():
    result = allocate(limits(40, phases=1), [ev("a", 1, phases=(0,)), ev("b", 2, phases=(0,))])
    assert amps(result) == {"a": 20.0, "b": 20.0}


# --- Property: never above capacity per phase; everyone who can get the minimum gets it ---------------------

phase_sets = st.sampled_from([(0,), (1,), (2,), (0, 1), (0, 1, 2), (0, 1, 2), (1, 2)])


@st.composite
def sites(draw: st.DrawFn) -> tuple[SiteLimits, list[Demand]]:
    capacity = tuple(draw(st.lists(st.integers(0, 200).map(float), min_size=3, max_size=3)))
    strategy = draw(st.sampled_from([Strategy.EQUAL_SHARE, Strategy.PRIORITY, Strategy.FIRST_COME]))
    min_a = draw(st.sampled_from([6.0, 8.0, 10.0]))
    n = draw(st.integers(0, 25))
    stations = [f"S{i}" for i in range(draw(st.integers(1, 6)))]
    station_max: dict[Hashable, float] = {s: float(draw(st.integers(0, 64))) for s in stations if draw(st.booleans())}
    demands = []
    for i in range(n):
        demands.append(
            Demand(
                key=i,
                phases=draw(phase_sets),
                max_a=float(draw(st.sampled_from([6, 10, 16, 32, 63, 1000]))),
                station=draw(st.sampled_from(stations)),
                priority=draw(st.integers(0, 3)),
                order=draw(st.floats(0, 100)),
                measured_a=draw(st.none() | st.floats(0, 40)),
                previous_a=draw(st.none() | st.floats(0, 40)),
                fixed_a=draw(st.none() | st.floats(0, 20)) if draw(st.integers(0, 9)) == 0 else None,
            )
        )
    return SiteLimits(capacity, min_a, strategy, station_max), demands


def _load(demands: list[Demand], limits_: SiteLimits, result: dict, exclude: object = None) -> dict:
    load: dict = {}
    for d in demands:
        if d.key == exclude:
            continue
        for p in d.phases:
            load[("site", p)] = load.get(("site", p), 0.0) + result[d.key].limit_a
            if d.station in limits_.station_max_a:
                load[(d.station, p)] = load.get((d.station, p), 0.0) + result[d.key].limit_a
    return load


def _cap(limits_: SiteLimits, key: tuple) -> float:
    return limits_.capacity_a[key[1]] if key[0] == "site" else limits_.station_max_a[key[0]]


@settings(max_examples=300, deadline=None)
@given(sites())
def test_property_within_capacity_and_minimum_for_everyone_who_fits(site: tuple[SiteLimits, list[Demand]]) -> None:
    limits_, demands = site
    result = allocate(limits_, demands)
    assert set(result) == {d.key for d in demands}
    fixed_load = _load([d for d in demands if d.fixed_a is not None], limits_, result)
    load = _load(demands, limits_, result)
    for key, value in load.items():
        # Steerable allocations never push a phase (or a station) over: only fixed loads can exceed by themselves.
        assert value <= max(_cap(limits_, key), fixed_load.get(key, 0.0)) + 1e-6, (key, value)
    for d in demands:
        limit = result[d.key].limit_a
        if d.fixed_a is not None:
            continue
        assert limit == 0.0 or limit >= limits_.min_a - 1e-9
        assert limit <= d.max_a + 1e-9
        station_max = limits_.station_max_a.get(d.station, float("inf"))
        if limit == 0.0 and min(d.max_a, station_max) >= limits_.min_a:
            # Paused: giving it the minimum would overload one of its phases or its station, even with every other
            # running EV lowered to the minimum (nobody else could be lowered further without being paused).
            floor_load: dict = {}
            for other in demands:
                if other.key == d.key:
                    continue
                share = result[other.key].limit_a
                share = other.fixed_a if other.fixed_a is not None else min(share, limits_.min_a)
                for p in other.phases:
                    floor_load[("site", p)] = floor_load.get(("site", p), 0.0) + share
                    if other.station == d.station:
                        floor_load[(d.station, p)] = floor_load.get((d.station, p), 0.0) + share
            over: list[tuple[Hashable, int]] = [("site", p) for p in d.phases]
            if d.station in limits_.station_max_a:
                over += [(d.station, p) for p in d.phases]
            assert any(floor_load.get(k, 0.0) + limits_.min_a > _cap(limits_, k) + 1e-9 for k in over), d
