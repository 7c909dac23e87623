"""The charging-profile and composite-schedule API, and every validation rule beyond the schema (400 before
anything is stored or sent)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from devicemodel.models import AttributeType, DeviceVariable, VariableAttribute
from smartcharging import profiles
from smartcharging.models import ChargingProfile, ChargingProfileSource, ChargingProfileState
from stations.models import ChargingStation, Command
from transactions.models import ChargingTransaction

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
URL = "/api/v1/stations/CS-1/charging-profiles/"


def user_with(*perms: str, name: str = "op") -> Client:
    user = User.objects.create_user(name)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def station() -> ChargingStation:
    cs = ChargingStation.objects.create(identity="CS-1")
    ChargingTransaction.objects.create(station=cs, transaction_id="TX-1", evse_id=1, started_at=T0)
    return cs


@pytest.fixture
def operator() -> Client:
    return user_with("stations.add_command", "smartcharging.view_chargingprofile")


def absolute(purpose: str = "TxDefaultProfile", **extra: Any) -> dict[str, Any]:
    return {
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {"id": 1, "chargingRateUnit": "A", "startSchedule": "2026-12-01T10:00:00Z",
             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}, {"startPeriod": 3600, "limit": 32.0}]}
        ],
    } | extra  # fmt: skip


def post(client: Client, evse_id: int, profile: dict[str, Any]) -> Any:
    body = {"evse_id": evse_id, "charging_profile": profile}
    return client.post(URL, json.dumps(body), content_type="application/json")


def test_post_sends_set_charging_profile_through_the_pipeline_and_get_lists_the_record(station, operator):
    response = post(operator, 0, absolute())
    assert response.status_code == 201, response.content
    created = response.json()
    # The station is offline: the command is recorded as such and the profile as failed (never installed).
    assert (created["profile_id"], created["state"], created["source"]) == (1, "failed", "csms")
    command = Command.objects.get(action="SetChargingProfile")
    assert command.state == "offline"
    assert command.request == {"evseId": 0, "chargingProfile": absolute() | {"id": 1}}
    shown = created["charging_profile"]
    assert shown["chargingSchedule"][0].pop("startSchedule") == "2026-12-01T10:00:00.000Z"
    expected = absolute() | {"id": 1}
    del expected["chargingSchedule"][0]["startSchedule"]
    assert shown == expected
    # The default list shows what the station holds (installed, pending); ?state=all shows the rest too.
    assert operator.get(URL).json()["count"] == 0
    listed = operator.get(URL + "?state=all").json()["results"]
    assert [(p["profile_id"], p["state"]) for p in listed] == [(1, "failed")]


def test_delete_sends_clear_charging_profile_with_the_criteria(station, operator):
    response = operator.delete(URL + "?evse_id=1&purpose=TxProfile&stack_level=2")
    assert response.status_code == 202, response.content
    assert Command.objects.get(pk=response.json()["id"]).request == {
        "chargingProfileCriteria": {"evseId": 1, "chargingProfilePurpose": "TxProfile", "stackLevel": 2}
    }
    assert operator.delete(URL + "?profile_id=5").status_code == 202
    last = Command.objects.filter(action="ClearChargingProfile").order_by("pk").last()
    assert last is not None and last.request == {"chargingProfileId": 5}
    refused = operator.delete(URL + "?purpose=ChargingStationExternalConstraints")
    assert refused.status_code == 400
    assert "external systems" in refused.json()["detail"]


def test_reading_needs_the_view_permission_and_sending_the_command_permission(station):
    billing = user_with("smartcharging.view_chargingprofile", name="billing")
    assert billing.get(URL).status_code == 200
    assert post(billing, 0, absolute()).status_code == 403
    assert user_with(name="nobody").get(URL).status_code == 403


@pytest.mark.django_db(transaction=True)  # the async edge reads the database from its own threads
def test_composite_schedule_is_the_csms_computation_and_ask_station_sends_get_composite_schedule(station, operator):
    for profile, evse_id in ((absolute() | {"id": 1}, 0), (absolute("TxProfile", id=2, stackLevel=0,
                             transactionId="TX-1") , 1)):  # fmt: skip
        if profile["chargingProfilePurpose"] == "TxProfile":
            profile["chargingSchedule"][0]["chargingSchedulePeriod"] = [{"startPeriod": 0, "limit": 20.0}]
        profiles.profile_record(station_id=station.pk, evse_id=evse_id, profile=profile,
                                source=ChargingProfileSource.CSMS, state=ChargingProfileState.INSTALLED)  # fmt: skip
    url = "/api/v1/stations/CS-1/composite-schedule/"
    body = operator.get(url + "?evse_id=1&duration_s=3600&rate_unit=W").json()
    assert body["source"] == "csms"
    assert (body["evse_id"], body["duration_s"], body["charging_rate_unit"]) == (1, 3600, "W")
    # The TxProfile of the running transaction (20 A x 230 V x 3) overrides the TxDefaultProfile.
    assert body["periods"] == [{"start_period_s": 0, "limit": 13800.0, "number_phases": None}]
    # EVSE 2 has no transaction: the TxDefaultProfile on EVSE 0 applies (its startSchedule is in the past).
    body = operator.get(url + "?evse_id=2&duration_s=60").json()
    assert [p["limit"] for p in body["periods"]] == [32.0]
    assert operator.get(url + "?rate_unit=kW").status_code == 400
    assert operator.get(url + "?duration_s=0").status_code == 400
    assert operator.get(url + "?evse_id=99999999999").status_code == 400
    asked = operator.get(url + "?evse_id=1&duration_s=600&ask_station=1&wait=1")
    assert asked.status_code == 200, asked.content
    assert (asked.json()["source"], asked.json()["state"]) == ("station", "offline")
    assert Command.objects.get(action="GetCompositeSchedule").request == {
        "evseId": 1, "duration": 600, "chargingRateUnit": "A"
    }  # fmt: skip


RULES: list[tuple[str, int, dict[str, Any], str]] = [
    ("external constraints", 0, absolute("ChargingStationExternalConstraints"), "K01.FR.22"),
    ("tx profile without transaction id", 1, absolute("TxProfile"), "needs the transactionId"),
    ("tx profile on evse 0", 0, absolute("TxProfile", transactionId="TX-1"), "evseId > 0"),
    ("tx profile without active transaction", 1, absolute("TxProfile", transactionId="TX-2"), "no active transaction"),
    ("tx profile on the wrong evse", 2, absolute("TxProfile", transactionId="TX-1"), "is on EVSE 1"),
    ("transaction id on another purpose", 1, absolute(transactionId="TX-1"), "only a TxProfile"),
    ("station max on an evse", 1, absolute("ChargingStationMaxProfile"), "EVSE 0"),
    ("station max relative", 0, absolute("ChargingStationMaxProfile", chargingProfileKind="Relative"), "cannot be"),
    ("recurring without recurrency kind", 0, absolute(chargingProfileKind="Recurring"), "needs recurrencyKind"),
    ("recurrency kind on absolute", 0, absolute(recurrencyKind="Daily"), "only for Recurring"),
    ("valid to before valid from", 0,
     absolute(validFrom="2026-12-02T00:00:00Z", validTo="2026-12-01T00:00:00Z"), "after validFrom"),
]  # fmt: skip


def _schedule_rule(change: str) -> dict[str, Any]:
    profile = absolute()
    schedule = profile["chargingSchedule"][0]
    if change == "absolute without start":
        del schedule["startSchedule"]
    elif change == "relative with start":
        profile["chargingProfileKind"] = "Relative"
    elif change == "first period not at 0":
        schedule["chargingSchedulePeriod"][0]["startPeriod"] = 60
    elif change == "periods not ascending":
        schedule["chargingSchedulePeriod"][1]["startPeriod"] = 0
    elif change == "phase to use with 3 phases":
        schedule["chargingSchedulePeriod"][0] |= {"numberPhases": 3, "phaseToUse": 1}
    return profile


SCHEDULE_RULES = [
    ("absolute without start", "needs startSchedule"),
    ("relative with start", "has no startSchedule"),
    ("first period not at 0", "starts at 0"),
    ("periods not ascending", "ascending"),
    ("phase to use with 3 phases", "numberPhases 1"),
]


@pytest.mark.parametrize(("name", "evse_id", "profile", "message"), RULES, ids=[r[0] for r in RULES])
def test_each_profile_rule_is_a_400_before_anything_is_stored_or_sent(station, operator, name, evse_id, profile,
                                                                      message):  # fmt: skip
    response = post(operator, evse_id, copy.deepcopy(profile))
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert response.json()["violations"][0]["code"] == "PropertyConstraintViolation"
    assert not ChargingProfile.objects.exists()
    assert not Command.objects.exists()


@pytest.mark.parametrize(("change", "message"), SCHEDULE_RULES, ids=[r[0] for r in SCHEDULE_RULES])
def test_each_schedule_rule_is_refused(station, change, message):
    found = profiles.profile_violations(station_id=station.pk, evse_id=0, profile=_schedule_rule(change) | {"id": 1})
    assert [v for v in found if message in v["message"]], found


def test_a_valid_tx_profile_and_a_phase_to_use_with_one_phase_pass(station):
    tx = absolute("TxProfile", id=1, transactionId="TX-1")
    tx["chargingSchedule"][0]["chargingSchedulePeriod"][0] |= {"numberPhases": 1, "phaseToUse": 2}
    assert profiles.profile_violations(station_id=station.pk, evse_id=1, profile=tx) == []
    # Inside RequestStartTransaction: no transactionId yet, and that is right.
    start = absolute("TxProfile", id=2, chargingProfileKind="Relative")
    del start["chargingSchedule"][0]["startSchedule"]
    assert profiles.profile_violations(station_id=station.pk, evse_id=0, profile=start, in_remote_start=True) == []


def test_purpose_stack_level_and_evse_are_unique_only_where_validity_overlaps(station, operator):
    january = absolute(id=1, validFrom="2027-01-01T00:00:00Z", validTo="2027-02-01T00:00:00Z")
    profiles.profile_record(station_id=station.pk, evse_id=0, profile=january, source="csms", state="installed")
    february = absolute(id=2, validFrom="2027-02-01T00:00:00Z", validTo="2027-03-01T00:00:00Z")
    assert profiles.profile_violations(station_id=station.pk, evse_id=0, profile=february) == []
    overlapping = absolute(id=3, validFrom="2027-01-15T00:00:00Z")
    response = post(operator, 0, overlapping)
    assert response.status_code == 400
    assert "profile 1 already has purpose TxDefaultProfile, stack level 0 on EVSE 0" in response.json()["detail"]
    # The same id replaces the profile: no clash with itself; another EVSE or stack level neither.
    assert profiles.profile_violations(station_id=station.pk, evse_id=0, profile=overlapping | {"id": 1}) == []
    assert profiles.profile_violations(station_id=station.pk, evse_id=2, profile=overlapping) == []


def _variable(station: ChargingStation, name: str, value: str, instance: str = "") -> None:
    variable = DeviceVariable.objects.create(
        station=station, component_name="SmartChargingCtrlr", name=name, instance=instance, updated_at=T0
    )
    VariableAttribute.objects.create(variable=variable, type=AttributeType.ACTUAL, value=value, updated_at=T0)


def test_the_stations_limits_from_its_device_model_are_honoured(station):
    _variable(station, "RateUnit", "W")
    _variable(station, "PeriodsPerSchedule", "1")
    _variable(station, "ProfileStackLevel", "2")
    _variable(station, "Entries", "1", instance="ChargingProfiles")
    profiles.profile_record(station_id=station.pk, evse_id=0, profile=absolute(id=9, stackLevel=1), source="csms",
                            state="installed")  # fmt: skip
    found = profiles.profile_violations(station_id=station.pk, evse_id=0, profile=absolute(id=1, stackLevel=3))
    messages = [v["message"] for v in found]
    assert messages == [
        "the station supports stack levels up to 2 (SmartChargingCtrlr.ProfileStackLevel)",
        "the station supports only W (SmartChargingCtrlr.RateUnit)",
        "the station takes at most 1 periods per schedule (SmartChargingCtrlr.PeriodsPerSchedule)",
        "the station holds at most 1 profiles (SmartChargingCtrlr.Entries ChargingProfiles)",
    ]
    _variable(station, "Enabled", "false")
    found = profiles.profile_violations(station_id=station.pk, evse_id=0, profile=absolute(id=9, stackLevel=1))
    assert "smart charging is disabled" in found[0]["message"]


def test_the_station_page_shows_profiles_the_form_and_the_composite_chart(station, operator):
    profiles.profile_record(station_id=station.pk, evse_id=0, profile=absolute(id=4), source="csms",
                            state="installed")  # fmt: skip
    page = operator.get("/stations/CS-1/").content.decode()
    assert 'hx-get="/stations/CS-1/charging-profiles/"' in page
    section = operator.get("/stations/CS-1/charging-profiles/").content.decode()
    assert 'data-testid="profile-state-4"' in section
    assert 'data-testid="form-charging-profile"' in section
    assert 'data-testid="composite-line-csms"' in section
    refused = operator.post("/stations/CS-1/charging-profiles/set/", {
        "evse_id": "1", "purpose": "ChargingStationMaxProfile", "kind": "Absolute", "stack_level": "0",
        "rate_unit": "A", "start_schedule": "2026-12-01T10:00:00Z", "periods": "0:16"})  # fmt: skip
    assert "a ChargingStationMaxProfile is set on EVSE 0" in refused.content.decode()
    operator.post("/stations/CS-1/charging-profiles/set/", {
        "evse_id": "0", "purpose": "ChargingStationMaxProfile", "kind": "Absolute", "stack_level": "0",
        "rate_unit": "A", "start_schedule": "2026-12-01T10:00:00Z", "periods": "0:40, 3600:20"})  # fmt: skip
    sent = Command.objects.get(action="SetChargingProfile").request["chargingProfile"]
    assert sent["id"] == 5
    assert sent["chargingSchedule"][0]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 40.0}, {"startPeriod": 3600, "limit": 20.0}
    ]  # fmt: skip


def test_the_tx_profile_of_a_request_start_transaction_is_validated_and_recorded(station):
    from stations.commands import CommandValidationError, command_send

    start = absolute("TxProfile", id=11, chargingProfileKind="Relative")
    del start["chargingSchedule"][0]["startSchedule"]
    payload = {"idToken": {"idToken": "A", "type": "Central"}, "evseId": 1}
    with pytest.raises(CommandValidationError, match="has no transactionId"):
        command_send(station=station, action="RequestStartTransaction",
                     payload=payload | {"chargingProfile": start | {"transactionId": "TX-1"}})  # fmt: skip
    assert not ChargingProfile.objects.exists()
    command = command_send(
        station=station, action="RequestStartTransaction", payload=payload | {"chargingProfile": start}
    )
    row = ChargingProfile.objects.get()
    assert (row.command_id, row.profile_id, row.in_remote_start, row.state) == (command.pk, 11, True, "failed")


def _answered(command: Command, response: dict[str, Any]) -> None:
    from stations.commands import command_finish

    assert command_finish(command_id=command.pk, state="answered", response=response) is not None


def test_get_charging_profiles_with_criteria_answered_no_profiles_clears_only_the_matching_ones(station):
    from django.db import transaction

    ChargingStation.objects.filter(pk=station.pk).update(is_online=True, channel_name="test.nobody")
    for pid, evse_id in ((1, 1), (2, 2)):
        profiles.profile_record(station_id=station.pk, evse_id=evse_id, profile=absolute(id=pid), source="csms",
                                state="installed")  # fmt: skip
    with transaction.atomic():  # the dispatch on commit goes to a channel nobody reads
        report = profiles.profiles_report_request(station=station, evse_id=1, purpose="TxDefaultProfile")
    assert report.command is not None
    assert report.command.request == {"requestId": 1, "evseId": 1,
                                      "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}}  # fmt: skip
    _answered(report.command, {"status": "NoProfiles"})
    report.refresh_from_db()
    assert report.state == "no_profiles"
    assert dict(ChargingProfile.objects.values_list("profile_id", "state")) == {1: "cleared", 2: "installed"}


def test_a_report_whose_last_part_arrives_first_completes_on_it_and_a_later_part_still_counts(station):
    profiles.profile_record(station_id=station.pk, evse_id=1, profile=absolute(id=1), source="csms", state="installed")
    ChargingProfile.objects.update(installed_at=T0)
    from django.db import transaction

    ChargingStation.objects.filter(pk=station.pk).update(is_online=True, channel_name="test.nobody")
    with transaction.atomic():
        report = profiles.profiles_report_request(station=station)
    assert report.command is not None
    _answered(report.command, {"status": "Accepted"})
    last = {"requestId": 1, "chargingLimitSource": "CSO", "evseId": 2, "chargingProfile": [absolute(id=5)]}
    with transaction.atomic():
        done = profiles.report_part_record(station_id=station.pk, request_id=1, tbc=False, payload=last)
    assert (done.state, done.parts_received) == ("complete", 1)
    # Profile 1 was not in the (so far complete) report: cleared; the part arriving late brings it back as reported.
    assert dict(ChargingProfile.objects.values_list("profile_id", "state")) == {1: "cleared", 5: "installed"}
    late = {"requestId": 1, "chargingLimitSource": "CSO", "tbc": True, "evseId": 1, "chargingProfile": [absolute(id=1)]}
    with transaction.atomic():
        done = profiles.report_part_record(station_id=station.pk, request_id=1, tbc=True, payload=late)
    assert (done.state, done.parts_received, done.profiles_received) == ("complete", 2, 2)
    rows = ChargingProfile.objects.filter(state="installed").values_list("profile_id", "source", "evse_id")
    assert sorted(rows) == [(1, "reported", 1), (5, "reported", 2)]


def test_a_pending_profile_whose_command_got_no_answer_does_not_block_its_place(station):
    command = Command.objects.create(station=station, action="SetChargingProfile", request={}, state="timed_out")
    profiles.profile_record(station_id=station.pk, evse_id=0, profile=absolute(id=1), source="csms", state="pending",
                            command=command)  # fmt: skip
    assert profiles.profile_violations(station_id=station.pk, evse_id=0, profile=absolute(id=2)) == []
    Command.objects.filter(pk=command.pk).update(state="sent")
    found = profiles.profile_violations(station_id=station.pk, evse_id=0, profile=absolute(id=2))
    assert [v["path"] for v in found] == ["stackLevel"]


def test_integers_beyond_32_bits_are_a_400_not_a_server_error(station, operator):
    response = post(operator, 0, absolute(id=2**40))
    assert response.status_code == 400
    assert response.json()["violations"][0]["path"] == "id"
    assert not Command.objects.exists()
