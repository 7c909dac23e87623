"""Property-based tests: energy does not depend on sample order or units; state does not depend on event order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csms.timeutil import format_ocpp, parse_ocpp
from stations.services import station_register
from transactions import metering, services
from transactions.models import ChargingTransaction, MeterSample

from .factories import meter_value, sampled, tx_event

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

# Register readings in Wh with up to three decimals (what real meters report), strictly increasing.
readings = st.lists(
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=12,
    unique=True,
).map(sorted)

# How a station may write a Wh value: (unit, multiplier) -> the number it sends is wh / 10**(prefix + multiplier).
representations = st.sampled_from(
    [("Wh", None, 0), ("Wh", 0, 0), ("kWh", None, 3), ("Wh", 3, 3), ("Wh", -2, -2), ("kWh", -3, 0), ("KWH", 1, 4)]
)


def as_sent(wh: Decimal, exponent: int) -> float | int:
    value = wh.scaleb(-exponent)
    return int(value) if value == value.to_integral_value() else float(value)


@settings(max_examples=300, deadline=None)
@given(readings=readings, data=st.data())
def test_energy_is_independent_of_order_units_and_noise(readings, data):
    meter_values = []
    for i, wh in enumerate(readings):
        unit, multiplier, exponent = data.draw(representations)
        ts = format_ocpp(T0 + timedelta(minutes=i))
        values = [sampled(as_sent(wh, exponent), unit=unit, multiplier=multiplier)]
        # Noise that must not count: power, per-phase energy, an inlet meter, a repeated reading with another context.
        if data.draw(st.booleans()):
            values.append(sampled(7.2, measurand="Power.Active.Import", unit="kW"))
        if data.draw(st.booleans()):
            values.append(sampled(float(wh) / 3, measurand="Energy.Active.Import.Register", phase="L1"))
        if data.draw(st.booleans()):
            values.append(sampled(float(wh) * 2 + 5, location="Inlet"))
        if data.draw(st.booleans()):
            values.append(sampled(as_sent(wh, exponent), unit=unit, multiplier=multiplier, context="Sample.Clock"))
        meter_values.append(meter_value(ts, *values))
    order = data.draw(st.permutations(range(len(meter_values))))
    samples = metering.samples_from_meter_values([meter_values[i] for i in order], parse_ocpp)
    summary = metering.energy_summary(samples)
    assert summary.energy_wh == readings[-1] - readings[0]
    assert (summary.meter_start_wh, summary.meter_stop_wh) == (readings[0], readings[-1])


@settings(max_examples=200, deadline=None)
@given(
    phases=st.lists(
        st.lists(st.integers(min_value=0, max_value=10**7), min_size=2, max_size=6, unique=True).map(sorted),
        min_size=1,
        max_size=3,
    ),
    seed=st.randoms(use_true_random=False),
)
def test_energy_from_line_phases_when_no_overall_reading(phases, seed):
    samples = [
        metering.Sample(
            T0 + timedelta(minutes=i), metering.ENERGY_REGISTER, f"L{p + 1}", "Outlet", "", Decimal(v), "Wh"
        )
        for p, series in enumerate(phases)
        for i, v in enumerate(series)
    ]
    seed.shuffle(samples)
    assert metering.energy_wh(samples) == sum(s[-1] - s[0] for s in phases)


# --- Event ordering against the real database ---------------------------------------------------------------

_counter = itertools.count()


def session(updates: int, ended: bool) -> list[dict]:
    """Started, ``updates`` Updated events, maybe Ended; register grows 1234.5 Wh per step, power varies."""
    events = []

    def mv(i: int, context: str | None = None) -> list[dict]:
        ts = format_ocpp(T0 + timedelta(minutes=15 * i))
        return [
            meter_value(
                ts,
                sampled(1000 + 1234.5 * i, context=context),
                sampled((i * 37) % 11, measurand="Power.Active.Import", unit="kW"),
            )
        ]

    events.append(
        tx_event(
            "Started",
            0,
            format_ocpp(T0),
            trigger="Authorized",
            id_token={"idToken": "CARD", "type": "ISO14443"},
            evse={"id": 2, "connectorId": 1},
            info={"chargingState": "Charging", "remoteStartId": 5},
            meter=mv(0, "Transaction.Begin"),
        )
    )
    for i in range(1, updates + 1):
        state = {"chargingState": "SuspendedEV" if i % 2 else "Charging"}
        events.append(tx_event("Updated", i, format_ocpp(T0 + timedelta(minutes=15 * i)), info=state, meter=mv(i)))
    if ended:
        n = updates + 1
        events.append(
            tx_event(
                "Ended",
                n,
                format_ocpp(T0 + timedelta(minutes=15 * n)),
                trigger="StopAuthorized",
                id_token={"idToken": "FLEET-MEMBER", "type": "ISO14443"},
                # An omitted stoppedReason means "Local" (the spec lets only that one be left out).
                info={"chargingState": "Idle"} | ({"stoppedReason": "EVDisconnected"} if updates % 2 else {}),
                meter=mv(n, "Transaction.End"),
                offline=True,
            )
        )
    return events


STATE_FIELDS = [
    f.name
    for f in ChargingTransaction._meta.concrete_fields
    if f.name not in {"id", "station", "transaction_id", "created_at", "updated_at"}
]


def apply_all(events: list[dict]) -> tuple[dict, int]:
    station, _ = station_register(identity=f"PROP-{next(_counter)}")
    for event in events:
        services.transaction_event_apply(station_id=station.pk, event=event)
    txn = ChargingTransaction.objects.get(station=station)
    state = {name: getattr(txn, name) for name in STATE_FIELDS}
    # The incremental (in-order) path and the full derivation agree.
    services.transaction_state_refresh(txn)
    services.transaction_metering_refresh(txn)
    assert {name: getattr(txn, name) for name in STATE_FIELDS} == state
    return state, MeterSample.objects.filter(transaction=txn).count()


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    updates=st.integers(min_value=0, max_value=4),
    ended=st.booleans(),
    seed=st.randoms(use_true_random=False),
    duplicates=st.integers(min_value=0, max_value=4),
    lost=st.sets(st.integers(min_value=1, max_value=4), max_size=2),
)
def test_final_state_is_independent_of_event_order_and_duplicates(updates, ended, seed, duplicates, lost):
    events = session(updates, ended)
    if lost:  # events lost for good (seqNo gaps) must give the same state in any order too
        events = [e for e in events if e["seqNo"] not in lost or e["eventType"] != "Updated"]
    expected = apply_all(events)
    shuffled = events + [seed.choice(events) for _ in range(duplicates)]
    seed.shuffle(shuffled)
    assert apply_all(shuffled) == expected
    state = expected[0]
    assert state["started_at"] == T0
    assert state["is_active"] is not ended
    assert (state["id_token"], state["id_token_type"]) == ("CARD", "ISO14443")  # the starting card, not the stopping
    assert state["stopped_reason"] == (("EVDisconnected" if updates % 2 else "Local") if ended else "")
    last = max(e["seqNo"] for e in events)
    assert state["energy_wh"] == Decimal("1234.5") * last
    assert state["seq_no_gaps"] == sorted(n for n in lost if n < last)


def test_helpers_cover_each_event_type():
    # Guards the generator above: a session really holds Started/Updated/Ended events.
    types = [e["eventType"] for e in session(2, True)]
    assert types == ["Started", "Updated", "Updated", "Ended"]


@pytest.mark.django_db
def test_per_phase_energy_and_power_from_the_database():
    station, _ = station_register(identity="PHASES")
    for seq, minute in enumerate((0, 1, 2)):
        ts = format_ocpp(T0 + timedelta(minutes=minute))
        values = [sampled(100 * (minute + 1), phase=p) for p in ("L1", "L2", "L3")]
        values += [
            sampled(2 + minute + i, measurand="Power.Active.Import", unit="kW", phase=p)
            for i, p in enumerate(("L1", "L2", "L3"))
        ]
        services.transaction_event_apply(
            station_id=station.pk,
            event=tx_event("Started" if seq == 0 else "Updated", seq, ts, meter=[meter_value(ts, *values)]),
        )
    txn = ChargingTransaction.objects.get(station=station)
    assert (txn.meter_start_wh, txn.meter_stop_wh, txn.energy_wh) == (Decimal(300), Decimal(900), Decimal(600))
    # Per instant: 2+3+4, 3+4+5, 4+5+6 kW.
    assert (txn.peak_power_w, txn.last_power_w) == (Decimal(15000), Decimal(15000))
