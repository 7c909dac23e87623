"""The per-event database cost of the TransactionEvent path: fixed, small, and the same figures as a full derivation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from csms.timeutil import format_ocpp
from smartcharging import sites
from stations.services import station_register
from transactions import metering, services
from transactions.models import ChargingTransaction
from webhooks.services import active_events

from .factories import meter_value, sampled, tx_event

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _reading(minute: int, wh: float, kw: float, context: str | None = None) -> list[dict]:
    ts = format_ocpp(T0 + timedelta(minutes=minute))
    return [meter_value(ts, sampled(wh, context=context), sampled(kw, measurand="Power.Active.Import", unit="kW"))]


@pytest.mark.django_db(transaction=True)
def test_in_order_event_with_meter_values_costs_six_statements(django_assert_num_queries):
    station, _ = station_register(identity="Q-1")
    services.transaction_event_apply(
        station_id=station.pk,
        event=tx_event("Started", 0, format_ocpp(T0), meter=_reading(0, 1000, 7), evse={"id": 1, "connectorId": 1}),
    )
    for seq in range(1, 4):
        active_events()  # the webhook subscriptions are cached per process: not a cost of each event
        event = tx_event("Updated", seq, format_ocpp(T0 + timedelta(minutes=seq)), meter=_reading(seq, 1000 + seq, 11))
        # BEGIN, lock the transaction, insert the event, insert its samples, update the transaction, COMMIT: no
        # re-reading of the stored events or samples, whatever the length of the session.
        with django_assert_num_queries(6):
            services.transaction_event_apply(station_id=station.pk, event=event)
    txn = ChargingTransaction.objects.get(station=station)
    assert (txn.meter_start_wh, txn.meter_stop_wh, txn.energy_wh) == (Decimal(1000), Decimal(1003), Decimal(3))
    assert (txn.peak_power_w, txn.last_power_w) == (Decimal(11000), Decimal(11000))


@pytest.mark.django_db(transaction=True)
def test_reading_tied_with_the_last_one_falls_back_to_the_stored_samples():
    station, _ = station_register(identity="Q-2")
    apply = services.transaction_event_apply
    apply(station_id=station.pk, event=tx_event("Started", 0, format_ocpp(T0), meter=_reading(0, 1000, 7)))
    apply(station_id=station.pk, event=tx_event("Updated", 1, format_ocpp(T0), meter=_reading(5, 1500, 9)))
    # Transaction.End repeats the last instant with a higher register value: the tie is broken by value.
    ended = tx_event("Ended", 2, format_ocpp(T0), meter=_reading(5, 1600, 3, context="Transaction.End"))
    apply(station_id=station.pk, event=ended)
    txn = ChargingTransaction.objects.get(station=station)
    assert (txn.energy_wh, txn.peak_power_w, txn.last_power_w) == (Decimal(600), Decimal(9000), Decimal(9000))
    incremental = (txn.energy_wh, txn.peak_power_w, txn.last_power_w, txn.metering_state)
    services.transaction_metering_refresh(txn)
    assert (txn.energy_wh, txn.peak_power_w, txn.last_power_w, txn.metering_state) == incremental


@pytest.mark.django_db(transaction=True)
def test_transaction_without_metering_state_is_derived_from_its_samples():
    # A transaction stored before the state existed (or created elsewhere) gets it from its samples once.
    station, _ = station_register(identity="Q-3")
    apply = services.transaction_event_apply
    apply(station_id=station.pk, event=tx_event("Started", 0, format_ocpp(T0), meter=_reading(0, 1000, 7)))
    ChargingTransaction.objects.update(metering_state=None)
    apply(station_id=station.pk, event=tx_event("Updated", 1, format_ocpp(T0), meter=_reading(10, 1250, 5)))
    txn = ChargingTransaction.objects.get(station=station)
    assert (txn.meter_start_wh, txn.energy_wh, txn.peak_power_w, txn.last_power_w) == (
        Decimal(1000), Decimal(250), Decimal(7000), Decimal(5000),
    )  # fmt: skip
    assert txn.metering_state is not None
    assert set(txn.metering_state) == {"Energy.Active.Import.Register||Outlet", "Power.Active.Import||Outlet"}


def test_metering_state_refuses_readings_not_after_the_last_one_and_keeps_itself_unchanged():
    def sample(minute: int, value: str, measurand: str = metering.ENERGY_REGISTER) -> metering.Sample:
        return metering.Sample(T0 + timedelta(minutes=minute), measurand, "", "Outlet", "Sample.Periodic",
                               Decimal(value), "Wh")  # fmt: skip

    state = metering.MeteringState()
    assert state.append([sample(0, "10"), sample(1, "12.0000004")]) is True
    before = state.to_json()
    assert state.append([sample(2, "20"), sample(1, "30")]) is False  # one older reading: nothing applied
    assert state.to_json() == before
    assert state.energy() == metering.EnergySummary(Decimal(10), Decimal("12.000000"), Decimal("2.000000"))
    # Rounded as the database stores it (6 places, half away from zero).
    assert state.append([sample(3, "12.0000005")]) is True
    assert state.series[(metering.ENERGY_REGISTER, "", "Outlet")].last[1] == Decimal("12.000001")
    assert metering.MeteringState.from_json(state.to_json()).to_json() == state.to_json()


def test_per_phase_power_is_left_to_the_stored_samples():
    state = metering.MeteringState()
    state.append([
        metering.Sample(T0, metering.POWER_IMPORT, phase, "Outlet", "Sample.Periodic", Decimal(1000), "W")
        for phase in ("L1", "L2")
    ])  # fmt: skip
    assert state.power() is None


@pytest.mark.django_db(transaction=True)
def test_starting_event_with_a_known_token_costs_nine_statements(django_assert_num_queries):
    from transactions.models import IdToken

    station, _ = station_register(identity="Q-4")
    card = IdToken.objects.create(id_token="CARD-7", type="ISO14443")
    started = tx_event("Started", 0, format_ocpp(T0), meter=_reading(0, 500, 7), evse={"id": 1, "connectorId": 1},
                       id_token={"idToken": "card-7", "type": "ISO14443"})  # fmt: skip
    active_events()  # the webhook subscriptions are cached per process: not a cost of each event
    sites.memberships_changed()
    sites.station_in_a_site(station.pk)  # nor is the site membership of every station (one query every few seconds)
    # BEGIN, look for the transaction, insert it (the row comes back locked: not read again), look the token up
    # (once, for the answer and the session), find the tariff version to pin (block I: once per session), insert
    # the event, insert its samples, update the transaction, COMMIT.
    with django_assert_num_queries(9):
        result = services.transaction_event_apply(station_id=station.pk, event=started)
    assert result.id_token_info == {"status": "Accepted"}
    txn = ChargingTransaction.objects.get(station=station)
    assert (txn.token_id, txn.id_token, txn.id_token_status, txn.event_count) == (card.pk, "card-7", "Accepted", 1)
    assert (txn.has_started_event, txn.started_at, txn.meter_start_wh) == (True, T0, Decimal(500))


@pytest.mark.django_db(transaction=True)
def test_a_huge_seq_no_jump_records_the_first_gaps_without_building_them_all():
    station, _ = station_register(identity="Q-5")
    services.transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, format_ocpp(T0)))
    services.transaction_event_apply(station_id=station.pk, event=tx_event("Updated", 1, format_ocpp(T0)))
    # The handler lets seqNo reach 2**31 - 1: listing every missing number first would take gigabytes.
    services.transaction_event_apply(station_id=station.pk, event=tx_event("Updated", 2**31 - 1, format_ocpp(T0)))
    txn = ChargingTransaction.objects.get(station=station)
    assert txn.seq_no_gaps == list(range(2, 2 + services.MAX_RECORDED_GAPS))
    assert txn.last_seq_no == 2**31 - 1
