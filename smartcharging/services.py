"""Smart charging services of the K-block: the CSMS's composite schedule from its record, external limits
(NotifyChargingLimit / ClearedChargingLimit), the EV's needs and schedules, and the station's GetCompositeSchedule
answers. (Sites and load management live in their own modules.)"""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Prefetch
from django.utils import timezone

from csms.timeutil import format_ocpp, parse_ocpp
from stations.commands import CommandValidationError, command_send
from stations.commands.pipeline import Sender
from stations.models import ChargingStation, Command
from transactions.selectors import active_transactions

from . import composite, profiles
from .models import (
    ChargingProfile,
    ChargingProfilePurpose,
    ChargingProfileState,
    ChargingSchedulePeriod,
    EvChargingNeeds,
    EvChargingSchedule,
    ExternalChargingLimit,
    StationCompositeSchedule,
)

logger = logging.getLogger(__name__)


def site_time_zone() -> tzinfo:
    """The time zone Recurring profiles follow (CSMS_SMART_CHARGING_TIME_ZONE)."""
    return ZoneInfo(settings.CSMS_SMART_CHARGING_TIME_ZONE)


def electrical() -> composite.Electrical:
    return composite.Electrical(
        voltage_v=settings.CSMS_SMART_CHARGING_VOLTAGE_V, phases=settings.CSMS_SMART_CHARGING_PHASES
    )


def installed_profiles(*, station_id: int) -> list[ChargingProfile]:
    """The profiles the station holds as far as the CSMS knows (installed), schedules and periods prefetched."""
    return list(
        ChargingProfile.objects.filter(station_id=station_id, state=ChargingProfileState.INSTALLED).prefetch_related(
            "schedules",
            Prefetch("schedules__periods", queryset=ChargingSchedulePeriod.objects.order_by("start_period_s")),
        )
    )


def _limit_profiles(*, station_id: int, evse_id: int) -> list[composite.Profile]:
    """The open NotifyChargingLimit schedules that apply to ``evse_id``, as caps."""
    out: list[composite.Profile] = []
    for limit in ExternalChargingLimit.objects.filter(station_id=station_id, cleared_at__isnull=True):
        limit_evse = limit.evse_id or 0
        for i, schedule in enumerate(limit.charging_schedules):
            parsed = profiles.schedule_for_composite(schedule)
            if parsed.start is None:  # no startSchedule: from the notification on
                parsed = composite.Schedule(
                    parsed.rate_unit, parsed.periods, limit.received_at, parsed.duration_s, parsed.min_charging_rate
                )
            out.append(
                composite.Profile(
                    profile_id=-(limit.pk * 10 + i),
                    purpose=composite.EXTERNAL_CONSTRAINTS,
                    kind=composite.ABSOLUTE,
                    stack_level=0,
                    evse_id=limit_evse,
                    schedules=(parsed,),
                )
            )
    return [p for p in out if composite.applies_to(p, evse_id)]


def composite_compute(
    *,
    station: ChargingStation,
    evse_id: int,
    duration_s: int,
    rate_unit: str = "A",
    start: datetime | None = None,
) -> composite.Composite:
    """The CSMS's own composite schedule of the station's EVSE from its record: installed profiles (TxProfiles
    only of the EVSE's active transaction, Relative ones from its start) and open external limits."""
    start = (start or timezone.now()).replace(microsecond=0)
    txn = (
        active_transactions(station_id=station.pk).filter(evse_id=evse_id).order_by("-started_at").first()
        if evse_id
        else None
    )
    chosen = []
    for row in installed_profiles(station_id=station.pk):
        if row.purpose == ChargingProfilePurpose.TX_PROFILE and (
            txn is None or row.transaction_id != txn.transaction_id
        ):
            continue
        chosen.append(profiles.profile_for_composite(row))
    return composite.composite_schedule(
        chosen,
        start=start,
        duration_s=duration_s,
        rate_unit=rate_unit,
        evse_id=evse_id,
        limits=_limit_profiles(station_id=station.pk, evse_id=evse_id),
        tz=site_time_zone(),
        transaction_start=txn.started_at if txn else None,
        electrical=electrical(),
    )


def composite_as_dict(result: composite.Composite, *, evse_id: int) -> dict[str, Any]:
    """The API's shape of a composite: OCPP-like names in snake_case, ``limit`` null where nothing limits."""
    return {
        "evse_id": evse_id,
        "duration_s": result.duration_s,
        "schedule_start": format_ocpp(result.start),
        "charging_rate_unit": result.rate_unit,
        "periods": [
            {"start_period_s": p.start_s, "limit": p.limit, "number_phases": p.number_phases} for p in result.periods
        ],
    }


def composite_request(
    *, station: ChargingStation, evse_id: int, duration_s: int, rate_unit: str = "", user: Sender = None
) -> Command:
    """Send GetCompositeSchedule; the answer is stored (StationCompositeSchedule) by the answer hook."""
    payload: dict[str, Any] = {"evseId": evse_id, "duration": duration_s}
    if rate_unit:
        payload["chargingRateUnit"] = rate_unit
    return command_send(station=station, action="GetCompositeSchedule", payload=payload, user=user)


def composite_on_answered(command: Command) -> None:
    """GetCompositeSchedule answered (from any door): the station's composite is stored beside the CSMS's own."""
    response = command.response or {}
    StationCompositeSchedule.objects.update_or_create(
        command=command,
        defaults={
            "station_id": command.station_id,
            "evse_id": command.request["evseId"],
            "duration_s": command.request["duration"],
            "rate_unit": command.request.get("chargingRateUnit", ""),
            "status": response.get("status", ""),
            "status_info": response.get("statusInfo"),
            "schedule": response.get("schedule"),
        },
    )


def station_composite_as_dict(answer: StationCompositeSchedule) -> dict[str, Any]:
    schedule = answer.schedule or {}
    return {
        "evse_id": answer.evse_id,
        "duration_s": schedule.get("duration", answer.duration_s),
        "schedule_start": schedule.get("scheduleStart"),
        "charging_rate_unit": schedule.get("chargingRateUnit", answer.rate_unit),
        "status": answer.status,
        "periods": [
            {"start_period_s": p["startPeriod"], "limit": p["limit"], "number_phases": p.get("numberPhases")}
            for p in schedule.get("chargingSchedulePeriod", [])
        ],
        "received_at": format_ocpp(answer.received_at),
    }


# --- What stations tell: external limits, the EV's needs and schedule ------------------------------------------


def charging_limit_record(
    *, station_id: int, evse_id: int | None, charging_limit: dict[str, Any], schedules: list[dict[str, Any]]
) -> ExternalChargingLimit:
    """A NotifyChargingLimit: stored and included in the composite until a ClearedChargingLimit of its source."""
    return ExternalChargingLimit.objects.create(
        station_id=station_id,
        evse_id=evse_id,
        source=charging_limit["chargingLimitSource"],
        is_grid_critical=charging_limit.get("isGridCritical"),
        charging_schedules=schedules,
    )


def charging_limit_clear(*, station_id: int, source: str, evse_id: int | None) -> int:
    """A ClearedChargingLimit: the source's open limits (on that EVSE, or all of them without one) are cleared,
    and so are the station-reported ChargingStationExternalConstraints profiles of that source."""
    limits = ExternalChargingLimit.objects.filter(station_id=station_id, source=source, cleared_at__isnull=True)
    reported = ChargingProfile.objects.filter(
        station_id=station_id,
        purpose=ChargingProfilePurpose.CHARGING_STATION_EXTERNAL_CONSTRAINTS,
        charging_limit_source=source,
        state=ChargingProfileState.INSTALLED,
    )
    if evse_id is not None:
        limits = limits.filter(evse_id=evse_id)
        reported = reported.filter(evse_id=evse_id)
    now = timezone.now()
    reported.update(state=ChargingProfileState.CLEARED, cleared_at=now, cleared_reason="ClearedChargingLimit")
    return limits.update(cleared_at=now)


def ev_charging_needs_record(*, station_id: int, evse_id: int, payload: dict[str, Any]) -> EvChargingNeeds:
    """A NotifyEVChargingNeeds, answered ``Accepted`` (documented policy). With
    CSMS_EV_CHARGING_NEEDS_SEND_PROFILE on and an active transaction on the EVSE, the CSMS also sends a TxProfile
    giving the EV its maximum (evMaxCurrent in A for AC, evMaxPower in W for DC), capped by the CSMS's composite of
    the station's maximum and external limits.

    # OCPP SPEC-SILENT: what a CSMS does with the EV's needs is its policy; this one accepts them and, when asked
    # to, offers the EV's maximum within the station's caps.
    """
    needs = payload["chargingNeeds"]
    record = EvChargingNeeds.objects.create(
        station_id=station_id,
        evse_id=evse_id,
        requested_energy_transfer=needs["requestedEnergyTransfer"],
        departure_time=parse_ocpp(needs["departureTime"]) if needs.get("departureTime") else None,
        max_schedule_tuples=payload.get("maxScheduleTuples"),
        ac_charging_parameters=needs.get("acChargingParameters"),
        dc_charging_parameters=needs.get("dcChargingParameters"),
        answered_status="Accepted",
    )
    if settings.CSMS_EV_CHARGING_NEEDS_SEND_PROFILE:
        command = _needs_profile_send(station_id=station_id, evse_id=evse_id, needs=needs)
        if command is not None:
            record.profile_command = command
            record.save(update_fields=["profile_command"])
    return record


def _needs_profile_send(*, station_id: int, evse_id: int, needs: dict[str, Any]) -> Command | None:
    txn = active_transactions(station_id=station_id).filter(evse_id=evse_id).order_by("-started_at").first()
    ac: dict[str, Any] = needs.get("acChargingParameters") or {}
    dc: dict[str, Any] = needs.get("dcChargingParameters") or {}
    if txn is None or not (ac or dc):
        return None
    unit, wanted = ("A", float(ac["evMaxCurrent"])) if ac else ("W", float(dc["evMaxPower"]))
    station = ChargingStation.objects.get(pk=station_id)
    now = timezone.now().replace(microsecond=0)
    caps = composite_compute(station=station, evse_id=0, duration_s=60, rate_unit=unit, start=now)
    cap = caps.limit_at(0)
    limit = wanted if cap is None else min(wanted, cap)
    profile = {
        "id": profiles.profile_id_allocate(
            station_id=station_id, purpose="TxProfile", transaction_id=txn.transaction_id, stack_level=0
        ),
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": txn.transaction_id,
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": unit,
                "startSchedule": format_ocpp(now),
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(limit, 1)}],
            }
        ],
    }
    try:
        return command_send(
            station=station, action="SetChargingProfile", payload={"evseId": evse_id, "chargingProfile": profile}
        )
    except CommandValidationError as exc:
        logger.warning("EV charging needs of %s EVSE %s: profile not sent: %s", station.identity, evse_id, exc)
        return None


def ev_charging_schedule_record(
    *, station_id: int, evse_id: int, time_base: datetime, schedule: dict[str, Any]
) -> EvChargingSchedule:
    """A NotifyEVChargingSchedule, stored with the CSMS's answer. With CSMS_EV_SCHEDULE_CHECK on (default), a
    schedule any period of which asks more than the CSMS's composite for the EVSE over that period (from
    ``timeBase``, in the schedule's rate unit) is answered ``Rejected`` with statusInfo ``LimitExceeded``.

    # OCPP SPEC-SILENT: K17 leaves the check of the EV's schedule to the CSMS; this one compares it with its own
    # composite schedule (installed profiles and external limits) and rejects a schedule above it.
    """
    status_info = ev_schedule_excess(station_id=station_id, evse_id=evse_id, time_base=time_base, schedule=schedule)
    return EvChargingSchedule.objects.create(
        station_id=station_id,
        evse_id=evse_id,
        time_base=time_base,
        charging_schedule=schedule,
        answered_status="Rejected" if status_info else "Accepted",
        status_info=status_info,
    )


def ev_schedule_excess(
    *, station_id: int, evse_id: int, time_base: datetime, schedule: dict[str, Any]
) -> dict[str, Any] | None:
    """The statusInfo of a Rejected answer when a period of the EV's schedule exceeds the composite, else None."""
    if not settings.CSMS_EV_SCHEDULE_CHECK:
        return None
    periods = sorted(schedule["chargingSchedulePeriod"], key=lambda p: p["startPeriod"])
    last_start = periods[-1]["startPeriod"]
    duration_s = max(int(schedule.get("duration") or 0), last_start + 1)
    station = ChargingStation.objects.get(pk=station_id)
    cap = composite_compute(
        station=station,
        evse_id=evse_id,
        duration_s=duration_s,
        rate_unit=schedule["chargingRateUnit"],
        start=time_base,
    )
    bounds = [p.start_s for p in cap.periods] + [cap.duration_s]
    for i, period in enumerate(periods):
        start = period["startPeriod"]
        end = periods[i + 1]["startPeriod"] if i + 1 < len(periods) else duration_s
        for j, cp in enumerate(cap.periods):
            if cp.limit is None or bounds[j + 1] <= start or cp.start_s >= max(end, start + 1):
                continue
            if float(period["limit"]) > cp.limit + 1e-6:
                return {
                    "reasonCode": "LimitExceeded",
                    "additionalInfo": (
                        f"period at {start} s asks {period['limit']} {cap.rate_unit}, "
                        f"the CSMS's composite allows {round(cp.limit, 1)} {cap.rate_unit}"
                    ),
                }
    return None
