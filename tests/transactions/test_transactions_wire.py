"""TransactionEvent and MeterValues over a live daphne server: sessions, energy, retries, gaps, offline backlog."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.conftest import LiveServer
from tests.ocpp_client import RawStation, run
from transactions import selectors
from transactions.models import ChargingTransaction, IdToken, MeterSample, TransactionEventRecord

from .factories import meter_value, sampled, tx_event

pytestmark = pytest.mark.live

CARD = {"idToken": "CARD-1", "type": "ISO14443"}
EVSE = {"id": 1, "connectorId": 1}
POWER = "Power.Active.Import"


def ts(minute: int, second: int = 0) -> str:
    return f"2026-01-01T10:{minute:02d}:{second:02d}Z"


def at(minute: int, second: int = 0) -> datetime:
    return datetime(2026, 1, 1, 10, minute, second, tzinfo=UTC)


def send(server: LiveServer, identity: str, calls: Sequence[tuple[str, dict] | dict], boot: bool = True) -> list[list]:
    """Send CALLs in order (a bare dict is a TransactionEvent); return the replies."""

    async def scenario() -> list[list]:
        async with RawStation.connect(server.ws_url, identity) as st:
            if boot:
                assert (await st.boot())[0] == 3
            replies = []
            for i, call in enumerate(calls):
                action, payload = call if isinstance(call, tuple) else ("TransactionEvent", call)
                replies.append(await st.call(action, payload, message_id=f"{identity}-{i}"))
            return replies

    return run(scenario())


def session_events(unit: str = "Wh", scale: Decimal = Decimal(1), multiplier: int | None = None) -> list[dict]:
    """A four-event session whose register goes 1000 -> 1500 -> 2300.5 -> 3050.25 Wh (energy 2050.25 Wh)."""

    def energy(wh: str, context: str | None = None) -> dict:
        value = Decimal(wh) / scale
        return sampled(float(value), unit=unit, multiplier=multiplier, context=context)

    return [
        tx_event(
            "Started",
            0,
            ts(0),
            trigger="Authorized",
            id_token=CARD,
            evse=EVSE,
            info={"chargingState": "Charging", "remoteStartId": 77},
            meter=[meter_value(ts(0), energy("1000", "Transaction.Begin"))],
        ),
        tx_event(
            "Updated",
            1,
            ts(15),
            meter=[meter_value(ts(15), energy("1500"), sampled(7000, measurand=POWER, unit="W"))],
        ),
        tx_event(
            "Updated",
            2,
            ts(30),
            info={"chargingState": "SuspendedEV"},
            meter=[meter_value(ts(30), energy("2300.5"), sampled(7.4, measurand=POWER, unit="kW"))],
        ),
        tx_event(
            "Ended",
            3,
            ts(45),
            trigger="StopAuthorized",
            id_token=CARD,
            info={"stoppedReason": "Local", "chargingState": "EVConnected", "timeSpentCharging": 1800},
            meter=[meter_value(ts(45), energy("3050.25", "Transaction.End"), sampled(0, measurand=POWER))],
        ),
    ]


def test_full_session_energy_power_and_answers(live_server_ws, station_factory):
    station = station_factory("CS-1")
    IdToken.objects.create(id_token="CARD-1", type="ISO14443")
    replies = send(live_server_ws, "CS-1", session_events())
    accepted = {"idTokenInfo": {"status": "Accepted"}}
    assert replies == [[3, "CS-1-0", accepted], [3, "CS-1-1", {}], [3, "CS-1-2", {}], [3, "CS-1-3", accepted]]

    txn = ChargingTransaction.objects.get(station=station, transaction_id="TX-1")
    assert txn.energy_wh == Decimal("2050.25")
    assert (txn.meter_start_wh, txn.meter_stop_wh) == (Decimal("1000"), Decimal("3050.25"))
    assert (txn.peak_power_w, txn.last_power_w) == (Decimal("7400"), Decimal("0"))
    assert (txn.started_at, txn.ended_at, txn.is_active) == (at(0), at(45), False)
    assert txn.token is not None
    assert (txn.evse_id, txn.connector_id, txn.id_token, txn.token.id_token) == (1, 1, "CARD-1", "CARD-1")
    assert (txn.stopped_reason, txn.charging_state, txn.time_spent_charging_s) == ("Local", "EVConnected", 1800)
    assert (txn.event_count, txn.last_seq_no, txn.seq_no_gaps, txn.has_started_event) == (4, 3, [], True)
    assert txn.remote_start_id == 77
    assert selectors.transaction_by_remote_start_id(station, 77) == txn
    assert selectors.transaction_by_remote_start_id(station, 78) is None
    assert list(selectors.active_transactions(station_id=station.pk)) == []

    series = list(selectors.transaction_time_series(transaction_pk=txn.pk))
    assert len(series) == 7
    first = series[0]
    assert first["measurand"] == "Energy.Active.Import.Register"  # the spec's default measurand
    assert (first["location"], first["context"], first["unit"], first["phase"]) == (
        "Outlet",
        "Transaction.Begin",
        "Wh",
        "",
    )
    power = [row["value"] for row in series if row["measurand"] == POWER]
    assert power == [Decimal("7000"), Decimal("7400"), Decimal("0")]  # 7.4 kW stored as 7400 W
    [day] = selectors.energy_per_day(station_id=station.pk)
    assert (day["day"].isoformat(), day["energy_wh"], day["sessions"]) == ("2026-01-01", Decimal("2050.25"), 1)


@pytest.mark.parametrize(
    ("unit", "scale", "multiplier"),
    [("kWh", Decimal(1000), None), ("Wh", Decimal(1000), 3), ("kWh", Decimal("0.01"), -5)],
    ids=["kWh", "Wh-multiplier-3", "kWh-multiplier-minus-5"],
)
def test_kwh_station_gives_the_same_energy(live_server_ws, station_factory, unit, scale, multiplier):
    station = station_factory("CS-K")
    send(live_server_ws, "CS-K", session_events(unit=unit, scale=scale, multiplier=multiplier))
    txn = ChargingTransaction.objects.get(station=station)
    assert txn.energy_wh == Decimal("2050.25")
    assert txn.meter_stop_wh == Decimal("3050.25")
    assert set(
        MeterSample.objects.filter(measurand="Energy.Active.Import.Register").values_list("unit", flat=True)
    ) == {"Wh"}


def test_same_event_twice_with_new_message_ids_counts_once(live_server_ws, station_factory):
    station = station_factory("CS-1")
    events = session_events()
    replies = send(
        live_server_ws, "CS-1", [events[0], events[1], events[1], events[2], events[0], events[3], events[3]]
    )
    assert [r[0] for r in replies] == [3] * 7
    assert replies[0][2] == replies[4][2] == {"idTokenInfo": {"status": "Unknown"}}  # retry: the same answer
    txn = ChargingTransaction.objects.get(station=station)
    assert TransactionEventRecord.objects.filter(transaction=txn).count() == 4
    assert MeterSample.objects.filter(transaction=txn).count() == 7
    assert (txn.event_count, txn.energy_wh) == (4, Decimal("2050.25"))


def test_seq_no_gaps_are_recorded_not_rejected(live_server_ws, station_factory):
    station = station_factory("CS-1")
    events = [
        tx_event("Started", 0, ts(0), evse=EVSE),
        tx_event("Updated", 1, ts(1)),
        tx_event("Updated", 4, ts(4)),
        tx_event("Updated", 7, ts(7)),
    ]
    assert [r[2] for r in send(live_server_ws, "CS-1", events)] == [{}] * 4
    txn = ChargingTransaction.objects.get(station=station)
    assert txn.seq_no_gaps == [2, 3, 5, 6]
    assert list(selectors.transactions_with_seq_no_gaps(station_id=station.pk)) == [txn]


def test_offline_backlog_out_of_order(live_server_ws, station_factory):
    """Started online; the rest replayed after a reconnect, the Ended before two Updated events."""
    station = station_factory("CS-1")
    started, update1, update2, ended = session_events()
    send(live_server_ws, "CS-1", [started])
    backlog = [{**e, "offline": True} for e in (ended, update2, update1)]
    send(live_server_ws, "CS-1", backlog)
    txn = ChargingTransaction.objects.get(station=station)
    assert (txn.started_at, txn.ended_at, txn.is_active) == (at(0), at(45), False)
    assert txn.energy_wh == Decimal("2050.25")
    assert (txn.charging_state, txn.stopped_reason, txn.had_offline_events) == ("EVConnected", "Local", True)
    assert txn.peak_power_w == Decimal("7400") and txn.last_power_w == Decimal("0")
    offline = TransactionEventRecord.objects.filter(transaction=txn, offline=True).values_list("seq_no", flat=True)
    assert sorted(offline) == [1, 2, 3]


def test_updated_for_never_started_transaction_creates_it(live_server_ws, station_factory):
    station = station_factory("CS-1")
    started, update1, update2, ended = session_events()
    send(live_server_ws, "CS-1", [update2])
    txn = ChargingTransaction.objects.get(station=station, transaction_id="TX-1")
    assert (txn.has_started_event, txn.is_active, txn.started_at, txn.ended_at) == (False, True, at(30), None)
    assert txn.energy_wh == Decimal("0")  # one register reading so far
    assert list(selectors.active_transactions(station_id=station.pk)) == [txn]
    # An Ended for another never-seen transaction creates it ended.
    send(live_server_ws, "CS-1", [{**ended, "transactionInfo": {"transactionId": "TX-2", "stoppedReason": "Remote"}}])
    other = ChargingTransaction.objects.get(station=station, transaction_id="TX-2")
    assert (other.is_active, other.started_at, other.ended_at, other.stopped_reason) == (
        False,
        at(45),
        at(45),
        "Remote",
    )
    # The Started arriving late sets the real start.
    send(live_server_ws, "CS-1", [started])
    txn.refresh_from_db()
    assert (txn.has_started_event, txn.started_at, txn.energy_wh) == (True, at(0), Decimal("1300.5"))


def test_meter_values_message_stored_with_defaults_and_deduplicated(live_server_ws, station_factory):
    station = station_factory("CS-1")
    payload = {
        "evseId": 0,
        "meterValue": [
            meter_value(
                ts(5),
                sampled(12.5, unit="kWh"),
                sampled(230.1, measurand="Voltage", phase="L1-N"),
                sampled(3, measurand="Current.Import", phase="L1", context="Sample.Clock", location="Inlet"),
            )
        ],
    }
    replies = send(live_server_ws, "CS-1", [("MeterValues", payload), ("MeterValues", payload)])
    assert [r[2] for r in replies] == [{}, {}]
    rows = list(
        MeterSample.objects.filter(station=station)
        .order_by("measurand")
        .values_list("transaction_id", "evse_id", "measurand", "phase", "location", "context", "value", "unit")
    )
    # The plugin types the nullable transaction_id column as int (no None).
    assert rows == [  # type: ignore[comparison-overlap]
        (None, 0, "Current.Import", "L1", "Inlet", "Sample.Clock", Decimal("3"), "A"),
        (None, 0, "Energy.Active.Import.Register", "", "Outlet", "Sample.Periodic", Decimal("12500"), "Wh"),
        (None, 0, "Voltage", "L1-N", "Outlet", "Sample.Periodic", Decimal("230.1"), "V"),
    ]


def test_negative_seq_no_is_property_constraint_violation(live_server_ws, station_factory):
    station_factory("CS-1")
    [reply] = send(live_server_ws, "CS-1", [tx_event("Started", -1, ts(0))])
    assert reply[:3] == [4, "CS-1-0", "PropertyConstraintViolation"]
    assert not ChargingTransaction.objects.exists()


def test_out_of_range_integers_are_property_constraint_violations(live_server_ws, station_factory):
    station_factory("CS-1")
    replies = send(
        live_server_ws,
        "CS-1",
        [
            tx_event("Started", 0, ts(0), info={"remoteStartId": 2**40}),
            tx_event("Started", 0, ts(0), numberOfPhasesUsed=-3),
            ("MeterValues", {"evseId": 2**31, "meterValue": [meter_value(ts(0), sampled(1))]}),
        ],
    )
    assert [r[:3] for r in replies] == [
        [4, "CS-1-0", "PropertyConstraintViolation"],
        [4, "CS-1-1", "PropertyConstraintViolation"],
        [4, "CS-1-2", "PropertyConstraintViolation"],
    ]
    assert replies[0][4] == {"path": "remoteStartId", "keyword": "maximum"}
    assert not ChargingTransaction.objects.exists() and not MeterSample.objects.exists()


def test_unstorable_sampled_values_are_dropped_and_the_event_kept(live_server_ws, station_factory):
    station = station_factory("CS-1")
    event = tx_event(
        "Started",
        0,
        ts(0),
        meter=[
            meter_value(
                ts(0),
                sampled(1e300, measurand="Power.Active.Import"),
                sampled(-1e20, measurand="Voltage"),
                sampled(4321),
            )
        ],
    )
    [reply] = send(live_server_ws, "CS-1", [event])
    assert reply == [3, "CS-1-0", {}]
    txn = ChargingTransaction.objects.get(station=station)
    assert list(MeterSample.objects.values_list("measurand", "value")) == [
        ("Energy.Active.Import.Register", Decimal("4321"))
    ]
    assert (txn.meter_start_wh, txn.peak_power_w) == (Decimal("4321"), None)


def test_lenient_station_timestamps(live_server_ws, station_factory):
    station = station_factory("CS-L")
    station.validation_mode = "lenient"
    station.save()
    replies = send(
        live_server_ws,
        "CS-L",
        [
            tx_event("Started", 0, "2026-01-01 10:00:00", evse=EVSE),  # no offset, space: read as UTC
            tx_event("Updated", 1, "yesterday"),
            ("MeterValues", {"evseId": 1, "meterValue": [meter_value("soon", sampled(1))]}),
        ],
    )
    assert replies[0] == [3, "CS-L-0", {}]
    assert replies[1] == [
        4,
        "CS-L-1",
        "PropertyConstraintViolation",
        "timestamp: 'yesterday' is not a date-time",
        {"path": "timestamp", "keyword": "format"},
    ]
    assert replies[2][2:] == [
        "PropertyConstraintViolation",
        "meterValue/0/timestamp: 'soon' is not a date-time",
        {"path": "meterValue/0/timestamp", "keyword": "format"},
    ]
    txn = ChargingTransaction.objects.get(station=station)
    assert (txn.started_at, txn.event_count) == (at(0), 1)


def test_plug_first_session_answers_id_token_info_and_bills_the_authorising_card(live_server_ws, station_factory):
    station = station_factory("CS-1")
    fleet = IdToken.objects.create(id_token="FLEET", type="Central")
    IdToken.objects.create(id_token="DRIVER", type="ISO14443", group_id_token=fleet)
    IdToken.objects.create(id_token="STOLEN", type="ISO14443", status="Blocked")
    replies = send(
        live_server_ws,
        "CS-1",
        [
            tx_event("Started", 0, ts(0), trigger="CablePluggedIn", evse=EVSE, info={"chargingState": "EVConnected"}),
            tx_event("Updated", 1, ts(1), trigger="Authorized", id_token={"idToken": "STOLEN", "type": "ISO14443"}),
            tx_event("Updated", 2, ts(2), trigger="Authorized", id_token={"idToken": "driver", "type": "ISO14443"}),
            tx_event("Ended", 3, ts(3), trigger="StopAuthorized", id_token={"idToken": "FLEET", "type": "Central"}),
        ],
    )
    fleet_ref = {"idToken": "FLEET", "type": "Central"}
    assert [r[2] for r in replies] == [
        {},
        {"idTokenInfo": {"status": "Blocked"}},
        {"idTokenInfo": {"status": "Accepted", "groupIdToken": fleet_ref}},
        {"idTokenInfo": {"status": "Accepted"}},
    ]
    txn = ChargingTransaction.objects.get(station=station)
    # The session's (billed) token is the first accepted one: neither the refused card nor the group's stop card.
    assert txn.token is not None
    assert (txn.id_token, txn.id_token_status, txn.token.id_token) == ("driver", "Accepted", "DRIVER")
    statuses = list(TransactionEventRecord.objects.filter(transaction=txn).values_list("id_token", "id_token_status"))
    assert statuses == [("", ""), ("STOLEN", "Blocked"), ("driver", "Accepted"), ("FLEET", "Accepted")]
