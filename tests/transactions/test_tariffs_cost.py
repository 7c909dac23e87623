"""The pure cost arithmetic (transactions/cost.py): exact Decimal, per band segment, idle rules, tax and rounding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from transactions import cost

D = Decimal


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, 15, hour, minute, tzinfo=UTC)


EVENING = {
    "currency": "EUR",
    "price_per_kwh": "0.30",
    "price_per_hour": "2.00",
    "idle_price_per_hour": "6.00",
    "session_fee": "1.00",
    "tax_rate_percent": "19",
    "prices_include_tax": False,
    # 18:00-22:00 energy and charging time cost more; idle time keeps the base price
    "bands": [{"start": "18:00", "end": "22:00", "price_per_kwh": "0.50", "price_per_hour": "3.00"}],
}

STATES = [
    (at(17, 30), "Charging"),
    (at(17, 45), "SuspendedEVSE"),  # our own load management pauses the EV: never billed as time
    (at(18, 0), "Charging"),
    (at(18, 15), "SuspendedEV"),  # the EV pauses: idle
    (at(18, 20), "Charging"),
    (at(18, 30), "EVConnected"),  # charging over, the car still there: idle
]
# The 17:45 -> 18:15 reading interval crosses the band change at 18:00: its 3000 Wh are split by time.
READINGS = [(at(17, 30), D(1000)), (at(17, 45), D(4000)), (at(18, 15), D(7000)), (at(18, 30), D(7000)),
            (at(18, 45), D(7000))]  # fmt: skip


def test_energy_time_idle_and_fee_across_a_band_change_are_exact():
    result = cost.session_cost(
        cost.Terms.from_snapshot(EVENING),
        started_at=at(17, 30),
        until=at(18, 45),
        states=STATES,
        energy_series=[READINGS],
    )
    # energy: 3000 Wh + 1500 Wh before 18:00 at 0.30, 1500 Wh after at 0.50
    assert (result.energy_wh, result.energy_cost) == (D(6000), D("2.10"))
    # charging: 17:30-17:45 at 2.00/h (0.50), 18:00-18:15 at 3.00/h (0.75), 18:20-18:30 at 3.00/h (0.50)
    assert (result.charging_s, result.charging_cost) == (D(2400), D("1.75"))
    # idle: SuspendedEV 18:15-18:20 + EVConnected 18:30-18:45 = 20 min at 6.00/h; SuspendedEVSE not counted
    assert (result.idle_s, result.idle_cost) == (D(1200), D("2.00"))
    # net 6.85, + 19 % = 8.1515 -> 8.15 (ROUND_HALF_UP to cents); net and tax add up to the total
    assert (result.session_fee, result.total, result.net, result.tax) == (D("1.00"), D("8.15"), D("6.85"), D("1.30"))
    assert all(isinstance(v, Decimal) for v in (result.total, result.net, result.tax, result.energy_cost))


def test_idle_time_never_includes_suspended_evse_nor_waiting_before_charging():
    terms = cost.Terms.from_snapshot({**EVENING, "bands": [], "tax_rate_percent": "0"})

    def idle_s(states: list[tuple[datetime, str]]) -> Decimal:
        return cost.session_cost(terms, started_at=at(10), until=at(11), states=states, energy_series=[]).idle_s

    assert idle_s([(at(10), "Charging"), (at(10, 30), "SuspendedEVSE")]) == D(0)
    assert idle_s([(at(10), "Charging"), (at(10, 30), "SuspendedEV")]) == D(1800)
    assert idle_s([(at(10), "EVConnected"), (at(10, 30), "Charging")]) == D(0)  # waiting to start: free
    assert idle_s([(at(10), "Charging"), (at(10, 30), "EVConnected")]) == D(1800)


def test_prices_including_tax_and_rounding_to_the_minor_unit():
    gross = {**EVENING, "bands": [], "price_per_hour": "0", "idle_price_per_hour": "0", "session_fee": "0.005",
             "price_per_kwh": "0.30", "prices_include_tax": True}  # fmt: skip
    result = cost.session_cost(
        cost.Terms.from_snapshot(gross),
        started_at=at(10),
        until=at(11),
        states=[],
        energy_series=[[(at(10), D(0)), (at(11), D(10000))]],
    )
    assert (result.total, result.net, result.tax) == (D("3.01"), D("2.53"), D("0.48"))  # 3.005 rounds half up
    assert cost.money_round(D("8.155"), "EUR") == D("8.16")
    assert cost.money_round(D("1234.5"), "JPY") == D("1235")
    assert cost.money_round(D("1.2345"), "KWD") == D("1.235")


def test_a_band_across_midnight_in_the_configured_time_zone():
    berlin = ZoneInfo("Europe/Berlin")  # UTC+1 in January: the 22:00 local band starts at 21:00 UTC
    free_time = {"price_per_hour": "0", "idle_price_per_hour": "0", "session_fee": "0", "tax_rate_percent": "0"}
    night = {**EVENING, "bands": [{"start": "22:00", "end": "06:00", "price_per_kwh": "0.10"}], **free_time}
    terms = cost.Terms.from_snapshot(night)
    readings = [(at(20, 30), D(0)), (at(21, 30), D(2000))]  # 1000 Wh before 21:00 UTC, 1000 Wh after
    result = cost.session_cost(terms, started_at=at(20, 30), until=at(21, 30), states=[], energy_series=[readings],
                               tz=berlin)  # fmt: skip
    assert result.energy_cost == D("0.30") + D("0.10")
    assert cost.band_boundaries(terms, at(20), at(20) + timedelta(days=1), berlin) == [
        at(21),
        at(20) + timedelta(hours=9),
    ]


def test_line_phases_add_up_and_a_register_going_back_adds_nothing():
    terms = cost.Terms.from_snapshot({**EVENING, "bands": [], "tax_rate_percent": "0", "session_fee": "0",
                                      "price_per_hour": "0", "idle_price_per_hour": "0"})  # fmt: skip
    l1 = [(at(10), D(100)), (at(10, 30), D(600)), (at(11), D(50))]  # reset at 11:00: no negative energy
    l2 = [(at(10), D(0)), (at(11), D(500))]
    result = cost.session_cost(terms, started_at=at(10), until=at(11), states=[], energy_series=[l1, l2])
    assert (result.energy_wh, result.total) == (D(1000), D("0.30"))
