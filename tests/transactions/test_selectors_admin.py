"""Selectors stay N+1-free; the admin pages of the app render."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from csms.timeutil import format_ocpp
from stations.services import station_register
from transactions import selectors, services
from transactions.models import ChargingTransaction, IdToken, LocalAuthList

from .factories import meter_value, sampled, tx_event

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 2, 1, 22, 0, tzinfo=UTC)


def make_sessions() -> list:
    IdToken.objects.create(id_token="CARD", type="ISO14443")
    stations = [station_register(identity=f"SEL-{i}")[0] for i in range(3)]
    for n, station in enumerate(stations):
        for day in range(2):
            start = T0 + timedelta(days=day)
            for seq, (kind, minutes, wh) in enumerate([("Started", 0, 100), ("Ended", 90, 100 + 1000 * (n + 1))]):
                ts = format_ocpp(start + timedelta(minutes=minutes))
                event = tx_event(
                    kind,
                    seq,
                    ts,
                    transaction_id=f"T{day}",
                    id_token={"idToken": "CARD", "type": "ISO14443"},
                    meter=[meter_value(ts, sampled(wh))],
                )
                if day == 1 and kind == "Ended":
                    continue  # the second day's sessions are still running
                services.transaction_event_apply(station_id=station.pk, event=event)
    return stations


def test_selectors_are_n_plus_one_free_and_correct(django_assert_num_queries):
    stations = make_sessions()
    with django_assert_num_queries(1):
        rows = [
            (t.station.identity, t.token and t.token.id_token, t.energy_wh) for t in selectors.active_transactions()
        ]
    assert sorted(rows) == [(f"SEL-{i}", "CARD", Decimal(0)) for i in range(3)]
    with django_assert_num_queries(1):
        period = [t.station.identity for t in selectors.transactions_in_period(since=T0, until=T0 + timedelta(days=1))]
    assert sorted(period) == ["SEL-0", "SEL-1", "SEL-2"]
    # At 23:45 on the first day the first sessions (22:00-23:30) are over; none of the second day had started.
    late = T0 + timedelta(minutes=105)
    assert not selectors.transactions_in_period(since=late, until=late + timedelta(minutes=1), overlapping=True)
    assert selectors.transactions_in_period(since=T0, until=T0 + timedelta(minutes=1), overlapping=True).count() == 3
    running = selectors.transactions_in_period(since=T0 + timedelta(days=5), overlapping=True)
    assert sorted(t.transaction_id for t in running) == ["T1", "T1", "T1"]  # the second day's are still running
    with django_assert_num_queries(1):
        days = selectors.energy_per_day(station_id=stations[1].pk)
    assert [(d["day"].isoformat(), d["energy_wh"], d["sessions"]) for d in days] == [
        ("2026-02-01", Decimal(2000), 1),
        ("2026-02-02", Decimal(0), 1),
    ]
    txn = ChargingTransaction.objects.get(station=stations[2], transaction_id="T0")
    with django_assert_num_queries(1):
        series = [(r["timestamp"], r["value"]) for r in selectors.transaction_time_series(transaction_pk=txn.pk)]
    assert series == [(T0, Decimal(100)), (T0 + timedelta(minutes=90), Decimal(3100))]


def test_admin_pages_render(admin_client):
    stations = make_sessions()
    services.local_list_get(station=stations[0]).tokens.add(IdToken.objects.get())
    txn = ChargingTransaction.objects.first()
    assert txn is not None
    pages = [
        "/admin/transactions/idtoken/",
        f"/admin/transactions/idtoken/{IdToken.objects.get().pk}/change/",
        "/admin/transactions/chargingtransaction/",
        f"/admin/transactions/chargingtransaction/{txn.pk}/change/",
        "/admin/transactions/metersample/",
        "/admin/transactions/localauthlist/",
        f"/admin/transactions/localauthlist/{LocalAuthList.objects.get().pk}/change/",
    ]
    for url in pages:
        assert admin_client.get(url).status_code == 200, url
