"""Handlers of the smart charging CS->CSMS messages (block K). Thin: parse, one service call, answer."""

from __future__ import annotations

from typing import Any

from csms.ocpp.router import CallContext, handles
from csms.timeutil import parse_ocpp

from . import profiles, services


@handles("ReportChargingProfiles")
def report_charging_profiles(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    profiles.report_part_record(
        station_id=ctx.station_id, request_id=payload["requestId"], tbc=payload.get("tbc", False), payload=payload
    )
    return {}


@handles("NotifyChargingLimit")
def notify_charging_limit(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    services.charging_limit_record(
        station_id=ctx.station_id,
        evse_id=payload.get("evseId"),
        charging_limit=payload["chargingLimit"],
        schedules=payload.get("chargingSchedule", []),
    )
    return {}


@handles("ClearedChargingLimit")
def cleared_charging_limit(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    services.charging_limit_clear(
        station_id=ctx.station_id, source=payload["chargingLimitSource"], evse_id=payload.get("evseId")
    )
    return {}


@handles("NotifyEVChargingNeeds")
def notify_ev_charging_needs(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    record = services.ev_charging_needs_record(station_id=ctx.station_id, evse_id=payload["evseId"], payload=payload)
    return {"status": record.answered_status}


@handles("NotifyEVChargingSchedule")
def notify_ev_charging_schedule(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    record = services.ev_charging_schedule_record(
        station_id=ctx.station_id,
        evse_id=payload["evseId"],
        time_base=parse_ocpp(payload["timeBase"]),
        schedule=payload["chargingSchedule"],
    )
    answer: dict[str, Any] = {"status": record.answered_status}
    if record.status_info:
        answer["statusInfo"] = record.status_info
    return answer
