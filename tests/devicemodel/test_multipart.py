"""The generic multi-part assembler: any order, idempotent retries, completion exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from csms import multipart
from csms.models import MessageAssembly, MessagePart

pytestmark = pytest.mark.django_db


def receive(
    station_id: int,
    seq_no: int | None,
    tbc: bool,
    payload: dict[str, Any],
    kind: str = "NotifyReport",
    request_id: int = 7,
) -> multipart.PartOutcome:
    with transaction.atomic():
        return multipart.part_receive(
            station_id=station_id, kind=kind, request_id=request_id, seq_no=seq_no, tbc=tbc, payload=payload
        )


def test_parts_out_of_order_complete_once_all_seq_nos_are_held(station_factory):
    station = station_factory("CS-1")
    last = receive(station.pk, 2, False, {"p": 2})
    assert (last.complete, last.completed_now) == (False, False)
    assert multipart.missing_seq_nos(assembly=last.assembly) == [0, 1]
    assert not receive(station.pk, 0, True, {"p": 0}).complete
    done = receive(station.pk, 1, True, {"p": 1})
    assert (done.complete, done.completed_now, done.duplicate) == (True, True, False)
    assert multipart.parts_payloads(station_id=station.pk, kind="NotifyReport", request_ids=[7]) == {
        7: [{"p": 0}, {"p": 1}, {"p": 2}]
    }
    assembly = MessageAssembly.objects.get()
    assert (assembly.last_seq_no, assembly.parts_received) == (2, 3) and assembly.completed_at is not None


def test_a_retried_part_is_a_duplicate_and_changes_nothing(station_factory):
    station = station_factory("CS-1")
    receive(station.pk, 0, True, {"p": 0})
    retry = receive(station.pk, 0, True, {"p": 0})
    assert (retry.duplicate, retry.conflicting) == (True, False)
    conflicting = receive(station.pk, 0, True, {"p": "other"})
    assert (conflicting.duplicate, conflicting.conflicting) == (True, True)
    assert list(MessagePart.objects.values_list("payload", flat=True)) == [{"p": 0}]  # the first one wins
    receive(station.pk, 1, False, {"p": 1})
    again = receive(station.pk, 1, False, {"p": 1})  # a retry after completion: complete, not completed again
    assert (again.duplicate, again.complete, again.completed_now) == (True, True, False)
    assert MessageAssembly.objects.get().parts_received == 2


def test_single_part_message_and_keys_per_station_kind_and_request_id(station_factory):
    one, two = station_factory("CS-1"), station_factory("CS-2")
    assert receive(one.pk, 0, False, {"a": 1}).completed_now
    assert receive(two.pk, 0, False, {"a": 1}).completed_now  # another station: its own message
    assert receive(one.pk, 0, False, {"a": 1}, kind="NotifyMonitoringReport").completed_now
    assert receive(one.pk, 0, False, {"a": 1}, request_id=8).completed_now
    assert MessageAssembly.objects.count() == 4


def test_kinds_without_seq_no_end_with_the_final_part_and_tell_retries_by_content(station_factory):
    station = station_factory("CS-1")
    first = receive(station.pk, None, True, {"profiles": [1]}, kind="ReportChargingProfiles")
    assert (first.seq_no, first.complete) == (0, False)
    assert receive(station.pk, None, True, {"profiles": [1]}, kind="ReportChargingProfiles").duplicate
    final = receive(station.pk, None, False, {"profiles": [2]}, kind="ReportChargingProfiles")
    assert (final.seq_no, final.completed_now) == (1, True)


def test_bad_use_is_refused(station_factory):
    station = station_factory("CS-1")
    with pytest.raises(ValueError, match="not a multi-part"):
        receive(station.pk, 0, False, {}, kind="Heartbeat")
    with pytest.raises(ValueError, match="carry a seqNo"):
        receive(station.pk, None, False, {})
