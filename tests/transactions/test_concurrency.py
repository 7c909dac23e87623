"""Races on the real database: the same new transaction's events applied at once from several threads."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from stations.services import station_register
from transactions import services
from transactions.models import ChargingTransaction, MeterSample, TransactionEventRecord

from .factories import meter_value, sampled, tx_event


def run_concurrently(station_id: int, events: list[dict]) -> list[BaseException]:
    barrier = threading.Barrier(len(events))
    failures: list[BaseException] = []

    def work(event: dict) -> None:
        try:
            barrier.wait()
            services.transaction_event_apply(station_id=station_id, event=event)
        except BaseException as exc:  # collected for the assertion
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return failures


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_and_events_of_a_new_transaction():
    station, _ = station_register(identity="RACE")
    ts = [f"2026-01-01T10:0{i}:00Z" for i in range(4)]
    events = [
        tx_event(kind, i, ts[i], meter=[meter_value(ts[i], sampled(1000 + 100 * i))])
        for i, kind in enumerate(["Started", "Updated", "Updated", "Ended"])
    ]
    # Every event twice (a retry racing the original), all at once, for a transaction nobody has seen yet.
    assert run_concurrently(station.pk, events + events) == []
    txn = ChargingTransaction.objects.get(station=station)
    assert TransactionEventRecord.objects.filter(transaction=txn).count() == 4
    assert MeterSample.objects.filter(transaction=txn).count() == 4
    assert (txn.event_count, txn.seq_no_gaps, txn.is_active, txn.energy_wh) == (4, [], False, Decimal(300))
