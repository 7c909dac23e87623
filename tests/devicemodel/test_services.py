"""Device model services in process: report parts, replacement, Get/SetVariables hooks, WriteOnly, expiry, scale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devicemodel import selectors, services
from devicemodel.models import DeviceVariable, ReportJob, ReportState, VariableAttribute
from stations.commands import command_finish
from stations.models import Command, CommandState
from tests.devicemodel.factories import many_entries, report_entry

pytestmark = pytest.mark.django_db(transaction=True)

GENERATED = datetime(2026, 12, 1, 10, tzinfo=UTC)


def part(station_id: int, request_id: int, seq_no: int, tbc: bool, data: list[dict[str, Any]]) -> Any:
    with transaction.atomic():
        return services.report_part_record(
            station_id=station_id,
            request_id=request_id,
            seq_no=seq_no,
            tbc=tbc,
            generated_at=GENERATED,
            report_data=data,
        )


def job(station: Any, kind: str = "FullInventory", request_id: int = 1) -> ReportJob:
    return ReportJob.objects.create(station=station, request_id=request_id, kind=kind)


def model(station: Any) -> dict[tuple[str, str], str | None]:
    return {
        (v.component_label, v.variable_label): v.attributes.get(type="Actual").value
        for v in DeviceVariable.objects.filter(station=station, gone_at__isnull=True)
    }


def answered(station: Any, action: str, request: dict[str, Any], response: dict[str, Any]) -> Command:
    command = Command.objects.create(station=station, action=action, request=request, state=CommandState.SENT)
    finished = command_finish(command_id=command.pk, state=CommandState.ANSWERED, response=response)
    assert finished is not None and finished.state == CommandState.ANSWERED, finished and finished.error_description
    return finished


def test_a_part_for_an_unknown_request_id_is_stored_as_an_unsolicited_merge(station_factory):
    station = station_factory("CS-1")
    part(station.pk, 99, 0, False, [report_entry("OCPPCommCtrlr", "HeartbeatInterval", "300")])
    unsolicited = ReportJob.objects.get()
    assert (unsolicited.request_id, unsolicited.kind, unsolicited.state) == (99, "Unsolicited", ReportState.COMPLETE)
    assert model(station) == {("OCPPCommCtrlr", "HeartbeatInterval"): "300"}
    # The next requested report gets a requestId above it.
    assert services._request_id_allocate(station.pk) == 100


def test_full_inventory_replaces_configuration_inventory_only_writable_and_criteria_merges(station_factory):
    station = station_factory("CS-1")
    full = job(station, "FullInventory", 1)
    part(
        station.pk,
        1,
        0,
        False,
        [
            report_entry("A", "x", "1"),
            report_entry("A", "ro", "9", mutability="ReadOnly"),
            report_entry("B", "y", "2", evse=1, connector=1),
        ],
    )
    assert full.__class__.objects.get(pk=full.pk).state == ReportState.COMPLETE
    job(station, "ConfigurationInventory", 2)
    part(station.pk, 2, 0, False, [report_entry("A", "x", "5")])
    # B.y (writable) is no longer listed: gone; A.ro is read-only: a configuration report does not speak of it.
    assert model(station) == {("A", "x"): "5", ("A", "ro"): "9"}
    assert DeviceVariable.objects.get(name="y").gone_at is not None
    job(station, "Criteria", 3)
    part(station.pk, 3, 0, False, [report_entry("C", "z", "3")])
    assert model(station) == {("A", "x"): "5", ("A", "ro"): "9", ("C", "z"): "3"}
    job(station, "FullInventory", 4)
    part(station.pk, 4, 0, True, [report_entry("B", "y", "7", evse=1, connector=1)])
    # Listed again: no longer gone; C.z is not listed but the report is not complete yet: nothing marked gone.
    assert model(station) == {("A", "x"): "5", ("A", "ro"): "9", ("C", "z"): "3", ("B@1/1", "y"): "7"}
    part(station.pk, 4, 1, False, [report_entry("A", "x", "5")])
    assert model(station) == {("A", "x"): "5", ("B@1/1", "y"): "7"}


def test_write_only_values_are_never_stored_not_even_in_the_raw_parts(station_factory):
    from csms.models import MessagePart

    station = station_factory("CS-1")
    job(station, "FullInventory", 1)
    part(
        station.pk,
        1,
        0,
        False,
        [report_entry("SecurityCtrlr", "BasicAuthPassword", "s3cret", mutability="WriteOnly", data_type="string")],
    )
    attribute = VariableAttribute.objects.get()
    assert (attribute.value, attribute.mutability) == (None, "WriteOnly")
    assert "s3cret" not in str(list(MessagePart.objects.values_list("payload", flat=True)))
    component = {"name": "SecurityCtrlr"}
    answered(
        station,
        "SetVariables",
        {
            "setVariableData": [
                {"component": component, "variable": {"name": "BasicAuthPassword"}, "attributeValue": "n3w"}
            ]
        },
        {
            "setVariableResult": [
                {"component": component, "variable": {"name": "BasicAuthPassword"}, "attributeStatus": "Accepted"}
            ]
        },
    )
    attribute.refresh_from_db()
    assert (attribute.value, attribute.last_status) == (None, "Accepted")


def test_get_and_set_variables_answers_update_the_model_and_show_each_status(station_factory):
    station = station_factory("CS-1")
    job(station, "FullInventory", 1)
    part(
        station.pk,
        1,
        0,
        False,
        [report_entry("C", "a", "1"), report_entry("C", "b", "2"), report_entry("C", "c", "3", evse=2)],
    )
    c = {"name": "C"}
    set_data = [
        {"component": c, "variable": {"name": "a"}, "attributeValue": "10"},
        {"component": c, "variable": {"name": "b"}, "attributeValue": "20"},
        {"component": c | {"evse": {"id": 2}}, "variable": {"name": "c"}, "attributeValue": "30"},
        {"component": c, "variable": {"name": "a"}, "attributeValue": "11", "attributeType": "Target"},
        {"component": {"name": "Nope"}, "variable": {"name": "n"}, "attributeValue": "0"},
    ]
    results = [
        {"component": c, "variable": {"name": "a"}, "attributeStatus": "Accepted"},
        {
            "component": c,
            "variable": {"name": "b"},
            "attributeStatus": "Rejected",
            "attributeStatusInfo": {"reasonCode": "OutOfRange"},
        },
        {"component": c | {"evse": {"id": 2}}, "variable": {"name": "c"}, "attributeStatus": "RebootRequired"},
        {
            "component": c,
            "variable": {"name": "a"},
            "attributeStatus": "NotSupportedAttributeType",
            "attributeType": "Target",
        },
        {"component": {"name": "Nope"}, "variable": {"name": "n"}, "attributeStatus": "UnknownComponent"},
    ]
    assert not selectors.reboot_required(station_id=station.pk)
    answered(station, "SetVariables", {"setVariableData": set_data}, {"setVariableResult": results})
    attributes = {(a.variable.name, a.type): a for a in VariableAttribute.objects.select_related("variable")}
    assert (attributes["a", "Actual"].value, attributes["a", "Actual"].last_status) == ("10", "Accepted")
    assert (attributes["b", "Actual"].value, attributes["b", "Actual"].last_status) == ("2", "Rejected")
    assert attributes["b", "Actual"].last_status_info == {"reasonCode": "OutOfRange"}
    assert (attributes["c", "Actual"].value, attributes["c", "Actual"].last_status) == ("30", "RebootRequired")
    assert attributes["a", "Target"].last_status == "NotSupportedAttributeType"
    assert not DeviceVariable.objects.filter(component_name="Nope").exists()  # unknown: nothing invented
    assert selectors.reboot_required(station_id=station.pk)
    # GetVariables: a value read; a variable not in the model yet (the station has it) is added.
    answered(
        station,
        "GetVariables",
        {
            "getVariableData": [
                {"component": c, "variable": {"name": "b"}},
                {"component": c, "variable": {"name": "new"}},
            ]
        },
        {
            "getVariableResult": [
                {"component": c, "variable": {"name": "b"}, "attributeStatus": "Accepted", "attributeValue": "4"},
                {"component": c, "variable": {"name": "new"}, "attributeStatus": "Accepted", "attributeValue": "x"},
            ]
        },
    )
    assert model(station)[("C", "b")] == "4" and model(station)[("C", "new")] == "x"
    # A boot after the RebootRequired answer clears the flag.
    station.last_boot_at = timezone.now() + timedelta(seconds=1)
    station.save(update_fields=["last_boot_at"])
    assert not selectors.reboot_required(station_id=station.pk)


def test_empty_result_set_and_not_supported_end_the_job_at_once(station_factory):
    station = station_factory("CS-1")
    for request_id, status, state in ((1, "EmptyResultSet", "empty"), (2, "NotSupported", "failed")):
        request = {"requestId": request_id, "componentCriteria": ["Problem"]}
        job(station, "Criteria", request_id)
        answered(station, "GetReport", request, {"status": status})
        found = ReportJob.objects.get(request_id=request_id)
        assert (found.state, found.station_status) == (state, status) and found.finished_at is not None


def test_a_report_requested_through_another_door_gets_its_job_from_the_answer_hook(station_factory):
    station = station_factory("CS-1")
    command = answered(
        station, "GetBaseReport", {"requestId": 42, "reportBase": "SummaryInventory"}, {"status": "Accepted"}
    )
    found = ReportJob.objects.get()
    assert (found.request_id, found.kind, found.state, found.command_id) == (
        42,
        "SummaryInventory",
        "requested",
        command.pk,
    )


def test_reports_expire_fails_unanswered_requests_and_times_out_silent_ones(station_factory):
    station = station_factory("CS-1")
    failed_command = Command.objects.create(
        station=station,
        action="GetBaseReport",
        state=CommandState.FAILED,
        request={"requestId": 1, "reportBase": "FullInventory"},
        error_description="CALLERROR",
    )
    failed = ReportJob.objects.create(station=station, request_id=1, kind="FullInventory", command=failed_command)
    silent = job(station, "FullInventory", 2)
    part(station.pk, 2, 0, True, [report_entry("A", "x")])
    fresh = job(station, "FullInventory", 3)
    ReportJob.objects.filter(pk=silent.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert services.reports_expire(timeout_s=600) == 2
    states = dict(ReportJob.objects.values_list("pk", "state"))
    assert states == {failed.pk: "failed", silent.pk: "timed_out", fresh.pk: "requested"}
    # A late part still counts: the data wins over the timeout.
    part(station.pk, 2, 1, False, [report_entry("A", "y")])
    assert ReportJob.objects.get(pk=silent.pk).state == "complete"


def test_5000_variables_in_10_parts_take_the_same_statements_per_part_whatever_its_size(station_factory):
    station = station_factory("CS-1")
    job(station, "FullInventory", 1)
    entries = many_entries(5000)
    counts = []
    order = [3, 0, 9, 1, 2, 8, 4, 5, 7, 6]  # out of order
    for seq_no in order:
        with CaptureQueriesContext(connection) as queries:
            part(station.pk, 1, seq_no, seq_no != 9, entries[seq_no * 500 : (seq_no + 1) * 500])
        counts.append(len(queries))
    small = job(station, "Criteria", 2)
    with CaptureQueriesContext(connection) as queries:
        part(station.pk, small.request_id, 0, False, entries[:5])
    assert max(counts[:-1]) <= len(queries) + 1, (counts, len(queries))  # the last adds the "mark gone" statement
    assert max(counts) <= 16, counts
    assert DeviceVariable.objects.filter(station=station, gone_at__isnull=True).count() == 5000
    assert VariableAttribute.objects.count() == 5000
    final = ReportJob.objects.get(request_id=1)
    assert (final.state, final.parts_received, final.variables_received) == ("complete", 10, 5000)
    # Retrying every part again changes nothing.
    for seq_no in order:
        part(station.pk, 1, seq_no, seq_no != 9, entries[seq_no * 500 : (seq_no + 1) * 500])
    final.refresh_from_db()
    assert (final.parts_received, final.variables_received) == (10, 5000)


def test_parts_racing_on_two_connections_complete_the_report_exactly_once(station_factory):
    import threading

    station = station_factory("CS-1")
    job(station, "FullInventory", 1)
    barrier = threading.Barrier(3)
    results: list[Any] = []

    def send(seq_no: int) -> None:
        try:
            barrier.wait(5)
            results.append(part(station.pk, 1, seq_no, seq_no != 2, [report_entry("C", f"v{seq_no}")]))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(r.complete for r in results) == [False, False, True]
    final = ReportJob.objects.get()
    assert (final.state, final.parts_received, final.variables_received) == ("complete", 3, 3)


def test_the_beat_job_is_scheduled_and_uses_the_timeout_setting(station_factory, settings):
    from devicemodel.tasks import reports_expire_task

    assert settings.CELERY_BEAT_SCHEDULE["devicemodel-reports-expire"]["task"] == "devicemodel.reports_expire"
    station = station_factory("CS-1")
    silent = job(station, "FullInventory", 1)
    settings.CSMS_REPORT_TIMEOUT_S = 0
    assert reports_expire_task() == 1
    assert ReportJob.objects.get(pk=silent.pk).state == "timed_out"
