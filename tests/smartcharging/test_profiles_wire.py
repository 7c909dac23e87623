"""Charging profiles at the wire (block K): the ASGI app in process, a station answering the CSMS's commands and
sending its smart charging messages; the CSMS's record follows the answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from smartcharging import profiles, services
from smartcharging.models import (
    ChargingProfile,
    ChargingProfileReport,
    EvChargingNeeds,
    EvChargingSchedule,
    ExternalChargingLimit,
    StationCompositeSchedule,
)
from stations.commands import command_send
from stations.models import ChargingStation, Command
from tests.conftest import in_thread
from tests.ocpp_client import AsgiStation, run
from tests.stations.helpers import wait_online

NOW = "2026-12-01T10:00:00Z"


def tx_profile(pid: int, tx_id: str, limit: float = 16.0, stack: int = 0) -> dict[str, Any]:
    return {
        "id": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": tx_id,
        "chargingSchedule": [
            {"id": 1, "chargingRateUnit": "A", "startSchedule": NOW,
             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
        ],
    }  # fmt: skip


def default_profile(pid: int, limit: float = 32.0, stack: int = 0) -> dict[str, Any]:
    return {
        "id": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": [
            {"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
        ],
    }


def event(event_type: str, seq_no: int, tx_id: str = "TX-1", **info: Any) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "timestamp": NOW,
        "triggerReason": "Authorized" if event_type == "Started" else "StopAuthorized",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": tx_id} | info,
        "evse": {"id": 1, "connectorId": 1},
    }


async def answer_next(st: AsgiStation, payload: dict[str, Any]) -> list[Any]:
    frame = await st.recv(10)
    assert frame[0] == 2, frame
    await st.send_raw(json.dumps([3, frame[1], payload]))
    return frame


async def until(predicate: Any, timeout_s: float = 10) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if value := await in_thread(predicate):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def states() -> dict[int, str]:
    return {p.profile_id: p.state for p in ChargingProfile.objects.order_by("created_at")}


def test_set_get_report_clear_and_the_transaction_end_keep_the_record_in_step(asgi_server, station_factory):
    station = station_factory("CS-1")

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with asgi_server.station("CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            assert (await st.call("TransactionEvent", event("Started", 0)))[0] == 3
            cs = await in_thread(lambda: ChargingStation.objects.get(pk=station.pk))
            # The raw command door: a TxProfile for the running transaction, Accepted -> installed.
            payload = {"evseId": 1, "chargingProfile": tx_profile(7, "TX-1")}
            await in_thread(lambda: command_send(station=cs, action="SetChargingProfile", payload=payload))
            out["set_call"] = await answer_next(st, {"status": "Accepted"})
            await until(lambda: ChargingProfile.objects.filter(profile_id=7, state="installed").exists())
            # The service door: a TxDefaultProfile the station rejects is not installed.
            await in_thread(lambda: profiles.profile_set(station=cs, evse_id=0, profile=default_profile(8)))
            await answer_next(st, {"status": "Rejected", "statusInfo": {"reasonCode": "NoSpace"}})
            await until(lambda: ChargingProfile.objects.filter(profile_id=8, state="rejected").exists())
            # A third one accepted, that the station will not report (it lost it).
            await in_thread(lambda: profiles.profile_set(station=cs, evse_id=0, profile=default_profile(9)))
            await answer_next(st, {"status": "Accepted"})
            await until(lambda: ChargingProfile.objects.filter(profile_id=9, state="installed").exists())
            out["before_report"] = await in_thread(states)
            # GetChargingProfiles: requestId allocated; two parts (tbc), one retried.
            report = await in_thread(lambda: profiles.profiles_report_request(station=cs))
            call = await answer_next(st, {"status": "Accepted"})
            out["get_call"] = call
            request_id = call[3]["requestId"]
            external = {
                "id": 900, "stackLevel": 0, "chargingProfilePurpose": "ChargingStationExternalConstraints",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "startSchedule": NOW,
                                      "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6900}]}],
            }  # fmt: skip
            first = {"requestId": request_id, "chargingLimitSource": "CSO", "tbc": True, "evseId": 1,
                     "chargingProfile": [tx_profile(7, "TX-1")]}  # fmt: skip
            last = {"requestId": request_id, "chargingLimitSource": "EMS", "evseId": 0, "chargingProfile": [external]}
            assert (await st.call("ReportChargingProfiles", first))[2] == {}
            assert (await st.call("ReportChargingProfiles", first))[2] == {}  # a retry changes nothing
            out["mid_report"] = await in_thread(lambda: ChargingProfileReport.objects.get(pk=report.pk).state)
            assert (await st.call("ReportChargingProfiles", last))[2] == {}
            out["report"] = await in_thread(lambda: ChargingProfileReport.objects.get(pk=report.pk))
            out["after_report"] = await in_thread(states)
            out["external"] = await in_thread(
                lambda: ChargingProfile.objects.values("source", "charging_limit_source", "evse_id").get(profile_id=900)
            )
            # The station's composite, stored beside the CSMS's own.
            await in_thread(lambda: services.composite_request(station=cs, evse_id=1, duration_s=3600, rate_unit="A"))
            composite = {"evseId": 1, "duration": 3600, "scheduleStart": NOW, "chargingRateUnit": "A",
                         "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}]}  # fmt: skip
            await answer_next(st, {"status": "Accepted", "schedule": composite})
            out["station_composite"] = await until(lambda: StationCompositeSchedule.objects.first())
            # ClearChargingProfile by criteria (TxDefaultProfile on EVSE 0): Accepted clears profile 9 (none left).
            await in_thread(lambda: profiles.profiles_clear(station=cs, evse_id=0, purpose="TxDefaultProfile"))
            out["clear_call"] = await answer_next(st, {"status": "Accepted"})
            await until(lambda: not ChargingProfile.objects.filter(profile_id=9, state="installed").exists())
            # The transaction ends: its TxProfile leaves the record.
            assert (await st.call("TransactionEvent", event("Ended", 1, stoppedReason="Local")))[0] == 3
            out["after_end"] = await in_thread(states)
        return out

    out = run(scenario())
    assert out["set_call"][2:] == ["SetChargingProfile", {"evseId": 1, "chargingProfile": tx_profile(7, "TX-1")}]
    assert out["before_report"] == {7: "installed", 8: "rejected", 9: "installed"}
    assert out["get_call"][2] == "GetChargingProfiles"
    assert out["get_call"][3] == {"requestId": out["report"].request_id, "chargingProfile": {}}
    assert out["mid_report"] == "receiving"
    report = out["report"]
    assert (report.state, report.parts_received, report.profiles_received) == ("complete", 2, 2)
    # 7 confirmed as the CSMS sent it; 9 not reported: cleared; the external constraint stored as reported.
    assert out["after_report"] == {7: "installed", 8: "rejected", 9: "cleared", 900: "installed"}
    assert out["external"] == {"source": "reported", "charging_limit_source": "EMS", "evse_id": 0}
    assert ChargingProfile.objects.get(profile_id=7).reported_at is not None
    assert ChargingProfile.objects.get(profile_id=9).cleared_reason == "not reported by the station"
    assert out["clear_call"][3] == {
        "chargingProfileCriteria": {"evseId": 0, "chargingProfilePurpose": "TxDefaultProfile"}
    }
    answer = out["station_composite"]
    assert (answer.status, answer.evse_id, answer.schedule["chargingSchedulePeriod"]) == (
        "Accepted", 1, [{"startPeriod": 0, "limit": 10.0}]
    )  # fmt: skip
    assert out["after_end"] == {7: "cleared", 8: "rejected", 9: "cleared", 900: "installed"}
    assert ChargingProfile.objects.get(profile_id=7).cleared_reason == "transaction ended"


def test_a_profile_that_breaks_a_rule_is_refused_before_sending(asgi_server, station_factory):
    station = station_factory("CS-1")

    async def scenario() -> list[Any]:
        async with asgi_server.station("CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            cs = await in_thread(lambda: ChargingStation.objects.get(pk=station.pk))
            with pytest.raises(profiles.ProfileValidationError, match="no active transaction 'TX-9'"):
                payload = {"evseId": 1, "chargingProfile": tx_profile(3, "TX-9")}
                await in_thread(lambda: command_send(station=cs, action="SetChargingProfile", payload=payload))
            # Nothing was sent: the next frame the station gets is its Heartbeat's answer, not a profile.
            reply = await st.call("Heartbeat", {})
            return reply

    assert run(scenario())[0] == 3
    assert not ChargingProfile.objects.exists()
    assert not Command.objects.filter(action="SetChargingProfile").exists()


def test_external_limits_and_the_evs_needs_and_schedule_are_stored(asgi_server, station_factory, settings):
    settings.CSMS_EV_CHARGING_NEEDS_SEND_PROFILE = True
    station = station_factory("CS-1")
    needs_ac = {"energyAmount": 20000, "evMinCurrent": 6, "evMaxCurrent": 20, "evMaxVoltage": 400}
    limit_schedule = {"id": 1, "chargingRateUnit": "A", "startSchedule": "2026-01-01T00:00:00Z",
                      "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 12.0}]}  # fmt: skip

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with asgi_server.station("CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            assert (await st.call("TransactionEvent", event("Started", 0)))[0] == 3
            reply = await st.call("NotifyChargingLimit", {
                "chargingLimit": {"chargingLimitSource": "SO", "isGridCritical": True},
                "evseId": 1, "chargingSchedule": [limit_schedule],
            })  # fmt: skip
            assert reply[:1] == [3] and reply[2] == {}
            cs = await in_thread(lambda: ChargingStation.objects.get(pk=station.pk))
            out["with_limit"] = await in_thread(
                lambda: services.composite_compute(station=cs, evse_id=1, duration_s=60).periods
            )
            # The EV's needs: answered Accepted; the policy on: a TxProfile with the EV's maximum under the caps.
            needs = {"evseId": 1, "maxScheduleTuples": 3, "chargingNeeds": {
                "requestedEnergyTransfer": "AC_three_phase", "departureTime": "2026-12-01T18:00:00Z",
                "acChargingParameters": needs_ac}}  # fmt: skip
            out["needs_reply"] = await st.call("NotifyEVChargingNeeds", needs)
            out["needs_profile_call"] = await answer_next(st, {"status": "Accepted"})
            schedule = {
                "id": 2,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8000}],  # within the 12 A (8280 W) limit
            }
            out["schedule_reply"] = await st.call(
                "NotifyEVChargingSchedule", {"timeBase": NOW, "evseId": 1, "chargingSchedule": schedule}
            )
            reply = await st.call("ClearedChargingLimit", {"chargingLimitSource": "SO", "evseId": 1})
            assert reply[0] == 3 and reply[2] == {}
            out["after_clear"] = await in_thread(
                lambda: services.composite_compute(station=cs, evse_id=1, duration_s=60).periods
            )
        return out

    out = run(scenario())
    limit = ExternalChargingLimit.objects.get()
    assert (limit.source, limit.is_grid_critical, limit.evse_id, limit.charging_schedules) == (
        "SO", True, 1, [limit_schedule]
    )  # fmt: skip
    assert limit.cleared_at is not None
    assert [(p.start_s, p.limit) for p in out["with_limit"]] == [(0, 12.0)]
    assert out["needs_reply"][2] == {"status": "Accepted"}
    call = out["needs_profile_call"]
    assert call[2] == "SetChargingProfile"
    sent = call[3]["chargingProfile"]
    # The EV asked 20 A; the grid operator's limit of 12 A on EVSE 1 is not a station-wide cap (EVSE 0).
    assert (call[3]["evseId"], sent["transactionId"], sent["chargingSchedule"][0]["chargingSchedulePeriod"]) == (
        1, "TX-1", [{"startPeriod": 0, "limit": 20.0}]
    )  # fmt: skip
    record = EvChargingNeeds.objects.get()
    assert (record.requested_energy_transfer, record.max_schedule_tuples, record.answered_status) == (
        "AC_three_phase", 3, "Accepted"
    )  # fmt: skip
    assert record.ac_charging_parameters == needs_ac
    assert record.profile_command is not None and record.profile_command.action == "SetChargingProfile"
    assert out["schedule_reply"][2] == {"status": "Accepted"}
    assert EvChargingSchedule.objects.get().charging_schedule["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 8000}
    ]
    # Cleared: the grid operator's 12 A no longer caps the EV's TxProfile of 20 A (installed meanwhile).
    assert [(p.start_s, p.limit) for p in out["after_clear"]] == [(0, 20.0)]
