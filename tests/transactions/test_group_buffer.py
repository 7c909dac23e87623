"""The group commit's write-behind buffer (csms/groupscope.py): the usual TransactionEvents of a group cost a fixed
number of statements, and what they store is what one-by-one application stores."""

from __future__ import annotations

import contextvars
import json
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from csms.ocpp import frames, router
from stations import calls
from stations.services import station_register
from transactions.models import ChargingTransaction, MeterSample, TransactionEventRecord

pytestmark = pytest.mark.django_db(transaction=True)


def _event(event_type: str, seq_no: int, wh: float, tx: str) -> dict[str, Any]:
    stamp = f"2026-01-01T10:00:{seq_no:02d}Z"
    payload: dict[str, Any] = {
        "eventType": event_type, "timestamp": stamp, "seqNo": seq_no,
        "triggerReason": "Authorized" if event_type == "Started" else "MeterValuePeriodic",
        "transactionInfo": {"transactionId": tx, "chargingState": "Charging"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [{"timestamp": stamp, "sampledValue": [
            {"value": wh, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}},
            {"value": 16, "measurand": "Current.Import", "phase": "L1", "unitOfMeasure": {"unit": "A"}},
        ]}],
    }  # fmt: skip
    return payload


def _work(station_id: int, message_id: str, payload: dict[str, Any]) -> calls.CallWork:
    call = frames.parse(json.dumps([2, message_id, "TransactionEvent", payload]))
    assert isinstance(call, frames.Call)
    ctx = router.CallContext(station_id=station_id, identity=f"S{station_id}", unique_id=message_id,
                             action="TransactionEvent")  # fmt: skip
    return calls.CallWork(router.route_for("TransactionEvent"), ctx, call, call.payload, touch_last_seen=False)


def _commit(works: list[calls.CallWork]) -> list[calls.Outcome]:
    # In a context of its own, as the writer runs it: the log fields a group sets must not outlive the test.
    return contextvars.copy_context().run(lambda: calls.calls_commit_group(works=works))


def test_a_group_of_usual_events_costs_the_same_few_statements_whatever_its_size() -> None:
    ids = [station_register(identity=f"GB-{i}")[0].pk for i in range(20)]
    _commit([_work(s, f"s{s}", _event("Started", 0, 1000, f"T{s}")) for s in ids])
    counts = []
    for size in (5, 20):
        works = [_work(s, f"u{size}-{s}", _event("Updated", size // 5, 1000 + size * 10, f"T{s}")) for s in ids[:size]]
        with CaptureQueriesContext(connection) as queries:
            outcomes = _commit(works)
        assert outcomes == [{}] * size
        counts.append(len(queries.captured_queries))
    # BEGIN, the group's SELECT ... FOR UPDATE of its transactions, one executemany per table (events, samples,
    # transactions), COMMIT: not one statement more for 20 events than for 5.
    assert counts[0] == counts[1] == 6
    txn = ChargingTransaction.objects.get(station_id=ids[0])
    assert (txn.event_count, txn.last_seq_no, txn.meter_stop_wh) == (3, 4, Decimal(1200))
    assert TransactionEventRecord.objects.filter(transaction=txn).count() == 3
    assert MeterSample.objects.filter(transaction=txn).count() == 6


def test_two_events_of_one_transaction_in_one_group_are_both_stored_in_order() -> None:
    sid = station_register(identity="GB-X")[0].pk
    _commit([_work(sid, "s", _event("Started", 0, 1000, "TX"))])
    works = [
        _work(sid, "u1", _event("Updated", 1, 1100, "TX")),
        _work(sid, "u1-again", _event("Updated", 1, 1100, "TX")),  # a retry in the same group: recognised
        _work(sid, "u2", _event("Updated", 2, 1300, "TX")),
        _work(sid, "e", _event("Ended", 3, 1400, "TX") | {"triggerReason": "StopAuthorized"}),
    ]
    assert _commit(works) == [{}, {}, {}, {}]
    txn = ChargingTransaction.objects.get(station_id=sid)
    assert (txn.event_count, txn.last_seq_no, txn.is_active, txn.energy_wh) == (4, 3, False, Decimal(400))
    assert list(txn.events.order_by("seq_no").values_list("seq_no", flat=True)) == [0, 1, 2, 3]
    assert MeterSample.objects.filter(transaction=txn).count() == 8
