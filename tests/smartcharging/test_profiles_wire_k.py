"""Conformance cases of block K at the wire (TC_K_34, TC_K_59, TC_K_60): the ASGI app in process, a station
answering the CSMS's commands and sending its smart charging messages."""

from __future__ import annotations

from typing import Any

from smartcharging import profiles
from smartcharging.models import ChargingProfile, ChargingProfileReport, EvChargingNeeds, EvChargingSchedule
from stations.models import ChargingStation
from tests.conftest import in_thread
from tests.ocpp_client import run
from tests.smartcharging.test_profiles_api import absolute
from tests.smartcharging.test_profiles_wire import NOW, answer_next, default_profile, event, until
from tests.stations.helpers import wait_online


def needs(max_current_a: int) -> dict[str, Any]:
    return {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase", "acChargingParameters": {
        "energyAmount": 20000, "evMinCurrent": 6, "evMaxCurrent": max_current_a, "evMaxVoltage": 400}}}  # fmt: skip


def test_get_charging_profiles_by_id_asks_exactly_that_id_and_reconciles_only_that_profile(
    asgi_server, station_factory
):
    station = station_factory("CS-1")

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with asgi_server.station("CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            cs = await in_thread(lambda: ChargingStation.objects.get(pk=station.pk))
            for pid, stack in ((8, 0), (9, 1)):
                body = default_profile(pid, stack=stack)
                await in_thread(lambda b=body: profiles.profile_set(station=cs, evse_id=0, profile=b))
                await answer_next(st, {"status": "Accepted"})
                await until(lambda p=pid: ChargingProfile.objects.filter(profile_id=p, state="installed").exists())
            # By id 8: the station reports 8; 9 is outside the request and stays as it is (not cleared).
            report = await in_thread(lambda: profiles.profiles_report_request(station=cs, profile_ids=[8]))
            out["get_8"] = await answer_next(st, {"status": "Accepted"})
            part = {"requestId": out["get_8"][3]["requestId"], "chargingLimitSource": "CSO", "evseId": 0,
                    "chargingProfile": [default_profile(8)]}  # fmt: skip
            assert (await st.call("ReportChargingProfiles", part))[2] == {}
            out["report_8"] = await in_thread(lambda: ChargingProfileReport.objects.get(pk=report.pk).state)
            out["after_8"] = await in_thread(lambda: dict(ChargingProfile.objects.values_list("profile_id", "state")))
            # By id 9: NoProfiles clears 9 only.
            await in_thread(lambda: profiles.profiles_report_request(station=cs, profile_ids=[9]))
            out["get_9"] = await answer_next(st, {"status": "NoProfiles"})
            await until(lambda: ChargingProfile.objects.filter(profile_id=9, state="cleared").exists())
            out["after_9"] = await in_thread(lambda: dict(ChargingProfile.objects.values_list("profile_id", "state")))
        return out

    out = run(scenario())
    assert out["get_8"][2:] == ["GetChargingProfiles", {"requestId": out["get_8"][3]["requestId"],
                                                        "chargingProfile": {"chargingProfileId": [8]}}]  # fmt: skip
    assert out["get_9"][3]["chargingProfile"] == {"chargingProfileId": [9]}
    assert out["report_8"] == "complete"
    assert out["after_8"] == {8: "installed", 9: "installed"}
    assert out["after_9"] == {8: "installed", 9: "cleared"}
    assert ChargingProfile.objects.get(profile_id=8).reported_at is not None
    assert ChargingProfile.objects.get(profile_id=9).reported_at is None


def test_the_ev_renegotiates_a_second_needs_is_answered_stored_and_replaces_the_session_profile(
    asgi_server, station_factory, settings
):
    settings.CSMS_EV_CHARGING_NEEDS_SEND_PROFILE = True
    station_factory("CS-1")

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with asgi_server.station("CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            assert (await st.call("TransactionEvent", event("Started", 0)))[0] == 3
            out["first_reply"] = await st.call("NotifyEVChargingNeeds", needs(20))
            out["first_call"] = await answer_next(st, {"status": "Accepted"})
            await until(lambda: ChargingProfile.objects.filter(state="installed").exists())
            # The EV renegotiates (K17): a second NotifyEVChargingNeeds during the same transaction.
            out["second_reply"] = await st.call("NotifyEVChargingNeeds", needs(10))
            out["second_call"] = await answer_next(st, {"status": "Accepted"})
            await until(lambda: EvChargingNeeds.objects.filter(profile_command__state="answered").count() == 2)
        return out

    out = run(scenario())
    assert out["first_reply"][2] == out["second_reply"][2] == {"status": "Accepted"}
    first, second = out["first_call"][3]["chargingProfile"], out["second_call"][3]["chargingProfile"]
    assert out["second_call"][2] == "SetChargingProfile"
    assert second["id"] == first["id"] and second["transactionId"] == "TX-1"
    assert second["chargingSchedule"][0]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 10.0}]
    stored = EvChargingNeeds.objects.order_by("received_at").values_list("answered_status", "ac_charging_parameters")
    assert [(status, (ac or {}).get("evMaxCurrent")) for status, ac in stored] == [
        ("Accepted", 20), ("Accepted", 10)
    ]  # fmt: skip
    # The same id: the station replaces the session's profile; the CSMS's record keeps the first as replaced.
    rows = ChargingProfile.objects.order_by("created_at").values_list("profile_id", "state")
    assert list(rows) == [(first["id"], "cleared"), (first["id"], "installed")]


def ev_schedule(periods: list[tuple[int, float]], **extra: Any) -> dict[str, Any]:
    return {"timeBase": NOW, "evseId": 1, "chargingSchedule": {"id": 1, "chargingRateUnit": "A", **extra,
            "chargingSchedulePeriod": [{"startPeriod": s, "limit": v} for s, v in periods]}}  # fmt: skip


def test_an_ev_schedule_above_the_csms_composite_is_rejected_with_status_info_and_stored(
    asgi_server, station_factory, settings
):
    station = station_factory("CS-1")
    # The station's maximum: 16 A for the first hour from NOW, 32 A after.
    profiles.profile_record(station_id=station.pk, evse_id=0, profile=absolute("ChargingStationMaxProfile", id=1),
                            source="csms", state="installed")  # fmt: skip

    async def scenario() -> list[Any]:
        replies = []
        async with asgi_server.station("CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            replies.append(await st.call("NotifyEVChargingSchedule", ev_schedule([(0, 10.0), (1800, 20.0)])))
            # Within the limit of each stretch (30 A only after the first hour): Accepted.
            within = ev_schedule([(0, 16.0), (3600, 30.0)], duration=7200)
            replies.append(await st.call("NotifyEVChargingSchedule", within))
            settings.CSMS_EV_SCHEDULE_CHECK = False
            replies.append(await st.call("NotifyEVChargingSchedule", ev_schedule([(0, 10.0), (1800, 20.0)])))
        return [r[2] for r in replies]

    answers = run(scenario())
    info = {"reasonCode": "LimitExceeded",
            "additionalInfo": "period at 1800 s asks 20.0 A, the CSMS's composite allows 16.0 A"}  # fmt: skip
    assert answers == [{"status": "Rejected", "statusInfo": info}, {"status": "Accepted"}, {"status": "Accepted"}]
    stored = EvChargingSchedule.objects.order_by("received_at").values_list("answered_status", "status_info")
    assert list(stored) == [("Rejected", info), ("Accepted", None), ("Accepted", None)]
