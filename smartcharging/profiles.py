"""Charging profiles (block K): validation, the CSMS's record of what each station has installed, and the hooks
that keep it in step with the station's answers, whichever door sent the command (API, page, admin, the raw
commands endpoint, bulk, Celery jobs, the site load manager).

- SetChargingProfile: the send hook validates the profile beyond the schema (:func:`profile_validate`; a refused
  profile is neither stored nor sent) and records it ``pending``; the answer makes it ``installed`` (replacing an
  installed profile with the same id) or ``rejected``.
- ClearChargingProfile: Accepted clears the matching profiles of the record.
- GetChargingProfiles: the send hook allocates the requestId and records a :class:`ChargingProfileReport`; its
  ReportChargingProfiles parts (``csms.multipart``) reconcile the record.
- RequestStartTransaction with a chargingProfile: validated (a TxProfile without transactionId) and recorded.
- A session's TxProfiles leave the record when it ends (a session observer, ``transactions/observers.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Max, Q
from django.utils import timezone

from csms import multipart
from csms.timeutil import format_ocpp, parse_ocpp
from devicemodel.selectors import component_values
from stations.commands import CommandValidationError, command_send
from stations.commands.pipeline import Sender
from stations.models import ChargingStation, Command, CommandState
from transactions.observers import SessionChange
from transactions.selectors import active_transactions

from . import composite
from .models import (
    ChargingProfile,
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingProfileReport,
    ChargingProfileSource,
    ChargingProfileState,
    ChargingSchedule,
    ChargingSchedulePeriod,
    ProfileReportState,
)

logger = logging.getLogger(__name__)

KIND = "ReportChargingProfiles"
# The profiles the station holds, as far as the CSMS knows (a pending one is sent, not yet answered).
LIVE = (ChargingProfileState.INSTALLED, ChargingProfileState.PENDING)
UNANSWERED = (CommandState.FAILED, CommandState.TIMED_OUT, CommandState.OFFLINE)


class ProfileValidationError(CommandValidationError):
    """A charging profile refused before anything is stored or sent (400 from the API, refused by the send hook)."""


def _violation(path: str, message: str, keyword: str = "profile") -> dict[str, str]:
    return {"code": "PropertyConstraintViolation", "path": path, "message": message, "keyword": keyword}


def _parse(value: str | None) -> datetime | None:
    return parse_ocpp(value) if value else None


# --- Validation beyond the schema ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StationLimits:
    """The station's smart charging limits from its device model (SmartChargingCtrlr); None: not reported."""

    enabled: bool | None = None
    rate_units: frozenset[str] | None = None
    periods_per_schedule: int | None = None
    max_stack_level: int | None = None
    max_profiles: int | None = None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def station_limits(*, station_id: int) -> StationLimits:
    """SmartChargingCtrlr.Enabled, RateUnit, PeriodsPerSchedule, ProfileStackLevel and Entries (instance
    ChargingProfiles) as the station reported them (one query)."""
    values = component_values(station_id=station_id, component_name="SmartChargingCtrlr")
    enabled = values.get(("Enabled", ""))
    units = values.get(("RateUnit", ""))
    return StationLimits(
        enabled=None if enabled is None else enabled.strip().lower() == "true",
        rate_units=frozenset(u.strip() for u in units.split(",") if u.strip()) if units else None,
        periods_per_schedule=_int(values.get(("PeriodsPerSchedule", ""))),
        max_stack_level=_int(values.get(("ProfileStackLevel", ""))),
        max_profiles=_int(values.get(("Entries", "ChargingProfiles"))),
    )


def _overlaps(a_from: datetime | None, a_to: datetime | None, b_from: datetime | None, b_to: datetime | None) -> bool:
    lo = max(a_from or _MIN, b_from or _MIN)
    hi = min(a_to or _MAX, b_to or _MAX)
    return lo < hi


_MIN, _MAX = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


INT_MAX = 2**31 - 1  # OCPP integers are 32-bit (the schemas give no maximum)


def _large_ints(value: Any, path: str) -> list[tuple[str, int]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [(path.lstrip("/"), value)] if not -INT_MAX <= value <= INT_MAX else []
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _large_ints(v, f"{path}/{k}")]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in _large_ints(v, f"{path}/{i}")]
    return []


def profile_violations(
    *, station_id: int, evse_id: int, profile: dict[str, Any], in_remote_start: bool = False
) -> list[dict[str, str]]:
    """Every rule a schema-valid ChargingProfileType must also meet before this CSMS sends it (empty: valid).

    ``in_remote_start``: the profile inside a RequestStartTransaction, sent before the transaction exists (a
    TxProfile then has no transactionId, and its EVSE is the request's, possibly none).
    """
    found: list[dict[str, str]] = [
        _violation(path, f"{value} is out of range (at most {INT_MAX})", "maximum")
        for path, value in _large_ints(profile, "")
    ]
    if not -INT_MAX <= evse_id <= INT_MAX:
        found.append(_violation("evseId", f"{evse_id} is out of range (at most {INT_MAX})", "maximum"))
    if found:
        return found
    purpose = profile["chargingProfilePurpose"]
    kind = profile["chargingProfileKind"]
    stack_level = profile["stackLevel"]
    tx_id = profile.get("transactionId")
    if purpose == ChargingProfilePurpose.CHARGING_STATION_EXTERNAL_CONSTRAINTS:
        # K01.FR.22: a station rejects ChargingStationExternalConstraints from the CSMS; they come from outside.
        found.append(_violation("chargingProfilePurpose", "the CSMS does not send ChargingStationExternalConstraints "
                                "profiles (K01.FR.22): they are set by external systems"))  # fmt: skip
    if purpose == ChargingProfilePurpose.TX_PROFILE:
        if in_remote_start:
            if tx_id:
                found.append(_violation("transactionId", "the TxProfile of a RequestStartTransaction has no "
                                        "transactionId: the transaction does not exist yet"))  # fmt: skip
        else:
            if not tx_id:
                found.append(_violation("transactionId", "a TxProfile needs the transactionId of its transaction"))
            if evse_id <= 0:
                found.append(_violation("evseId", "a TxProfile is set on the EVSE of its transaction (evseId > 0)"))
            if tx_id and evse_id > 0:
                txn = active_transactions(station_id=station_id).filter(transaction_id=tx_id).first()
                if txn is None:
                    found.append(_violation("transactionId", f"no active transaction {tx_id!r} on this station"))
                elif txn.evse_id is not None and txn.evse_id != evse_id:
                    found.append(_violation("evseId", f"transaction {tx_id!r} is on EVSE {txn.evse_id}, "
                                            f"not on EVSE {evse_id}"))  # fmt: skip
    elif tx_id:
        found.append(_violation("transactionId", "only a TxProfile carries a transactionId"))
    if purpose == ChargingProfilePurpose.CHARGING_STATION_MAX_PROFILE:
        if evse_id != 0:
            found.append(_violation("evseId", "a ChargingStationMaxProfile is set on EVSE 0 (the whole station)"))
        if kind == ChargingProfileKind.RELATIVE:
            found.append(_violation("chargingProfileKind", "a ChargingStationMaxProfile cannot be Relative"))
    if kind == ChargingProfileKind.RECURRING and not profile.get("recurrencyKind"):
        found.append(_violation("recurrencyKind", "a Recurring profile needs recurrencyKind (Daily or Weekly)"))
    if kind != ChargingProfileKind.RECURRING and profile.get("recurrencyKind"):
        found.append(_violation("recurrencyKind", "recurrencyKind is only for Recurring profiles"))
    valid_from, valid_to = _parse(profile.get("validFrom")), _parse(profile.get("validTo"))
    if valid_from and valid_to and valid_from >= valid_to:
        found.append(_violation("validTo", "validTo must be after validFrom"))
    limits = station_limits(station_id=station_id)
    if limits.enabled is False:
        found.append(_violation("chargingProfile", "smart charging is disabled on this station "
                                "(SmartChargingCtrlr.Enabled is false)", "deviceModel"))  # fmt: skip
    if limits.max_stack_level is not None and stack_level > limits.max_stack_level:
        found.append(_violation("stackLevel", f"the station supports stack levels up to {limits.max_stack_level} "
                                "(SmartChargingCtrlr.ProfileStackLevel)", "deviceModel"))  # fmt: skip
    for i, schedule in enumerate(profile["chargingSchedule"]):
        path = f"chargingSchedule/{i}"
        has_start = "startSchedule" in schedule
        if kind in (ChargingProfileKind.ABSOLUTE, ChargingProfileKind.RECURRING) and not has_start:
            found.append(_violation(f"{path}/startSchedule", f"an {kind} profile needs startSchedule"))
        if kind == ChargingProfileKind.RELATIVE and has_start:
            found.append(_violation(f"{path}/startSchedule", "a Relative profile has no startSchedule: it starts "
                                    "with the transaction"))  # fmt: skip
        periods = schedule["chargingSchedulePeriod"]
        starts = [p["startPeriod"] for p in periods]
        if starts[0] != 0:
            found.append(_violation(f"{path}/chargingSchedulePeriod/0/startPeriod", "the first period starts at 0"))
        if any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
            found.append(_violation(f"{path}/chargingSchedulePeriod", "periods must be in strictly ascending "
                                    "startPeriod order"))  # fmt: skip
        for j, period in enumerate(periods):
            if "phaseToUse" in period and period.get("numberPhases") != 1:
                found.append(_violation(f"{path}/chargingSchedulePeriod/{j}/phaseToUse",
                                        "phaseToUse is only allowed with numberPhases 1"))  # fmt: skip
        if limits.rate_units is not None and schedule["chargingRateUnit"] not in limits.rate_units:
            found.append(_violation(f"{path}/chargingRateUnit", f"the station supports only "
                                    f"{','.join(sorted(limits.rate_units))} (SmartChargingCtrlr.RateUnit)",
                                    "deviceModel"))  # fmt: skip
        if limits.periods_per_schedule is not None and len(periods) > limits.periods_per_schedule:
            found.append(_violation(f"{path}/chargingSchedulePeriod", f"the station takes at most "
                                    f"{limits.periods_per_schedule} periods per schedule "
                                    "(SmartChargingCtrlr.PeriodsPerSchedule)", "deviceModel"))  # fmt: skip
    live = (
        ChargingProfile.objects.filter(station_id=station_id, state__in=LIVE)
        .exclude(profile_id=profile["id"])
        # A pending profile whose command ended without an answer (CALLERROR, timeout) holds no place.
        .exclude(state=ChargingProfileState.PENDING, command__state__in=UNANSWERED)
    )
    clashing = [
        other.profile_id
        for other in live.filter(purpose=purpose, stack_level=stack_level, evse_id=evse_id)
        if _overlaps(valid_from, valid_to, other.valid_from, other.valid_to)
    ]
    if clashing and not in_remote_start:
        found.append(_violation("stackLevel", f"profile {clashing[0]} already has purpose {purpose}, stack level "
                                f"{stack_level} on EVSE {evse_id} for an overlapping validity period"))  # fmt: skip
    if limits.max_profiles is not None:
        held = live.values("profile_id").distinct().count()
        if held + 1 > limits.max_profiles:
            found.append(_violation("chargingProfile", f"the station holds at most {limits.max_profiles} profiles "
                                    "(SmartChargingCtrlr.Entries ChargingProfiles)", "deviceModel"))  # fmt: skip
    return found


def profile_validate(*, station_id: int, evse_id: int, profile: dict[str, Any], in_remote_start: bool = False) -> None:
    """Raise ProfileValidationError (with every violation) unless ``profile`` may be sent to the station."""
    found = profile_violations(station_id=station_id, evse_id=evse_id, profile=profile, in_remote_start=in_remote_start)
    if found:
        raise ProfileValidationError(f"chargingProfile: {found[0]['path']}: {found[0]['message']}", found)


# --- The record: OCPP dicts <-> rows ---------------------------------------------------------------------------


def profile_record(
    *,
    station_id: int,
    evse_id: int,
    profile: dict[str, Any],
    source: str,
    state: str,
    command: Command | None = None,
    charging_limit_source: str = "",
    report_request_id: int | None = None,
    in_remote_start: bool = False,
) -> ChargingProfile:
    """Store one ChargingProfileType with its schedules and periods (three bulk inserts)."""
    now = timezone.now()
    row = ChargingProfile.objects.create(
        station_id=station_id,
        evse_id=evse_id,
        profile_id=profile["id"],
        stack_level=profile["stackLevel"],
        purpose=profile["chargingProfilePurpose"],
        kind=profile["chargingProfileKind"],
        recurrency_kind=profile.get("recurrencyKind", ""),
        valid_from=_parse(profile.get("validFrom")),
        valid_to=_parse(profile.get("validTo")),
        transaction_id=profile.get("transactionId", ""),
        custom_data=profile.get("customData"),
        source=source,
        state=state,
        command=command,
        charging_limit_source=charging_limit_source,
        report_request_id=report_request_id,
        in_remote_start=in_remote_start,
        installed_at=now if state == ChargingProfileState.INSTALLED else None,
        reported_at=now if source == ChargingProfileSource.REPORTED else None,
    )
    schedules = ChargingSchedule.objects.bulk_create(
        [
            ChargingSchedule(
                profile=row,
                position=i,
                schedule_id=s["id"],
                charging_rate_unit=s["chargingRateUnit"],
                start_schedule=_parse(s.get("startSchedule")),
                duration_s=s.get("duration"),
                min_charging_rate=s.get("minChargingRate"),
                sales_tariff=s.get("salesTariff"),
            )
            for i, s in enumerate(profile["chargingSchedule"])
        ]
    )
    ChargingSchedulePeriod.objects.bulk_create(
        [
            ChargingSchedulePeriod(
                schedule=schedule,
                start_period_s=p["startPeriod"],
                limit=p["limit"],
                number_phases=p.get("numberPhases"),
                phase_to_use=p.get("phaseToUse"),
            )
            for schedule, s in zip(schedules, profile["chargingSchedule"], strict=True)
            for p in s["chargingSchedulePeriod"]
        ],
        ignore_conflicts=True,  # a station's report with two periods at one start: the first is kept
    )
    return row


def profile_payload(profile: ChargingProfile) -> dict[str, Any]:
    """The row as an OCPP ChargingProfileType (schedules and periods prefetched or loaded)."""
    out: dict[str, Any] = {
        "id": profile.profile_id,
        "stackLevel": profile.stack_level,
        "chargingProfilePurpose": profile.purpose,
        "chargingProfileKind": profile.kind,
    }
    if profile.recurrency_kind:
        out["recurrencyKind"] = profile.recurrency_kind
    if profile.valid_from:
        out["validFrom"] = format_ocpp(profile.valid_from)
    if profile.valid_to:
        out["validTo"] = format_ocpp(profile.valid_to)
    if profile.transaction_id:
        out["transactionId"] = profile.transaction_id
    schedules = []
    for s in profile.schedules.all():
        schedule: dict[str, Any] = {"id": s.schedule_id, "chargingRateUnit": s.charging_rate_unit}
        if s.start_schedule:
            schedule["startSchedule"] = format_ocpp(s.start_schedule)
        if s.duration_s is not None:
            schedule["duration"] = s.duration_s
        if s.min_charging_rate is not None:
            schedule["minChargingRate"] = s.min_charging_rate
        periods = []
        for p in s.periods.all():
            period: dict[str, Any] = {"startPeriod": p.start_period_s, "limit": p.limit}
            if p.number_phases is not None:
                period["numberPhases"] = p.number_phases
            if p.phase_to_use is not None:
                period["phaseToUse"] = p.phase_to_use
            periods.append(period)
        schedule["chargingSchedulePeriod"] = periods
        if s.sales_tariff:
            schedule["salesTariff"] = s.sales_tariff
        schedules.append(schedule)
    out["chargingSchedule"] = schedules
    return out


def schedule_for_composite(schedule: dict[str, Any]) -> composite.Schedule:
    """An OCPP ChargingScheduleType as the composite computation's Schedule."""
    return composite.Schedule(
        rate_unit=schedule["chargingRateUnit"],
        periods=tuple(
            composite.Period(p["startPeriod"], float(p["limit"]), p.get("numberPhases"), p.get("phaseToUse"))
            for p in schedule["chargingSchedulePeriod"]
        ),
        start=_parse(schedule.get("startSchedule")),
        duration_s=schedule.get("duration"),
        min_charging_rate=schedule.get("minChargingRate"),
    )


def profile_for_composite(profile: ChargingProfile) -> composite.Profile:
    """A stored profile (schedules and periods prefetched) as the composite computation's Profile."""
    return composite.Profile(
        profile_id=profile.profile_id,
        purpose=profile.purpose,
        kind=profile.kind,
        stack_level=profile.stack_level,
        evse_id=profile.evse_id,
        recurrency_kind=profile.recurrency_kind,
        valid_from=profile.valid_from,
        valid_to=profile.valid_to,
        schedules=tuple(
            composite.Schedule(
                rate_unit=s.charging_rate_unit,
                periods=tuple(
                    composite.Period(p.start_period_s, p.limit, p.number_phases, p.phase_to_use)
                    for p in s.periods.all()
                ),
                start=s.start_schedule,
                duration_s=s.duration_s,
                min_charging_rate=s.min_charging_rate,
            )
            for s in profile.schedules.all()
        ),
    )


def profile_id_allocate(*, station_id: int, purpose: str, transaction_id: str = "", stack_level: int = 0) -> int:
    """The profile id to use: a TxProfile for a transaction that already has one at that stack level reuses its id
    (so the station replaces it: one profile id per transaction), any other gets the station's next free id.

    # OCPP SPEC-SILENT: the CSMS chooses profile ids; it allocates them per station.
    """
    if purpose == ChargingProfilePurpose.TX_PROFILE and transaction_id:
        same = (
            ChargingProfile.objects.filter(
                station_id=station_id, purpose=purpose, transaction_id=transaction_id, stack_level=stack_level
            )
            .order_by("-created_at")
            .values_list("profile_id", flat=True)
            .first()
        )
        if same is not None:
            return same
    last = ChargingProfile.objects.filter(station_id=station_id).aggregate(m=Max("profile_id"))["m"]
    return max(last or 0, 0) + 1


# --- Commands: set, clear, get (any door) ----------------------------------------------------------------------


def profile_set(
    *, station: ChargingStation, evse_id: int, profile: dict[str, Any], user: Sender = None
) -> ChargingProfile:
    """Send SetChargingProfile (the id allocated when ``profile`` has none); the record says ``pending`` until the
    station answers. Raises CommandValidationError / ProfileValidationError (nothing stored or sent)."""
    if "id" not in profile:
        profile = {
            **profile,
            "id": profile_id_allocate(
                station_id=station.pk,
                purpose=profile.get("chargingProfilePurpose", ""),
                transaction_id=profile.get("transactionId", ""),
                stack_level=profile.get("stackLevel", 0),
            ),
        }
    command = command_send(
        station=station, action="SetChargingProfile", payload={"evseId": evse_id, "chargingProfile": profile}, user=user
    )
    return ChargingProfile.objects.get(command=command, in_remote_start=False)


def profile_on_set_sending(command: Command) -> None:
    """Send hook of every SetChargingProfile: validate beyond the schema (refused: nothing stored or sent) and
    record the profile as ``pending`` (``failed`` when the station is offline)."""
    evse_id = command.request["evseId"]
    profile = command.request["chargingProfile"]
    profile_validate(station_id=command.station_id, evse_id=evse_id, profile=profile)
    offline = command.state == CommandState.OFFLINE
    profile_record(
        station_id=command.station_id,
        evse_id=evse_id,
        profile=profile,
        source=ChargingProfileSource.CSMS,
        state=ChargingProfileState.FAILED if offline else ChargingProfileState.PENDING,
        command=command,
    )


def _install(row_filter: Q, *, station_id: int, profile_ids: list[int], reason: str) -> None:
    now = timezone.now()
    # The station replaces a profile with the same id (K01.FR.05): the older record is cleared first.
    ChargingProfile.objects.filter(
        station_id=station_id, profile_id__in=profile_ids, state=ChargingProfileState.INSTALLED
    ).exclude(row_filter).update(state=ChargingProfileState.CLEARED, cleared_at=now, cleared_reason=reason)
    ChargingProfile.objects.filter(row_filter).update(state=ChargingProfileState.INSTALLED, installed_at=now)


def profile_on_set_answered(command: Command) -> None:
    """SetChargingProfile answered: Accepted installs it (replacing an installed one with the same id); Rejected
    records the refusal (not installed)."""
    response = command.response or {}
    status = response.get("status", "")
    rows = ChargingProfile.objects.filter(command=command, state=ChargingProfileState.PENDING)
    if status == "Accepted":
        ids = list(rows.values_list("profile_id", flat=True))
        rows.update(station_status=status, status_info=response.get("statusInfo"))
        _install(Q(command=command, in_remote_start=False), station_id=command.station_id, profile_ids=ids,
                 reason="replaced (same id)")  # fmt: skip
    else:
        rows.update(state=ChargingProfileState.REJECTED, station_status=status, status_info=response.get("statusInfo"))


def profile_on_remote_start_sending(command: Command) -> None:
    """Send hook of every RequestStartTransaction: its chargingProfile (a TxProfile) is validated and recorded;
    it is installed when the station accepts the request and dropped when the transaction ends."""
    profile = command.request.get("chargingProfile")
    if not profile:
        return
    evse_id = command.request.get("evseId", 0)
    profile_validate(station_id=command.station_id, evse_id=evse_id, profile=profile, in_remote_start=True)
    if profile["chargingProfilePurpose"] != ChargingProfilePurpose.TX_PROFILE:
        raise ProfileValidationError(
            "chargingProfile: a RequestStartTransaction carries a TxProfile",
            [_violation("chargingProfile/chargingProfilePurpose", "a RequestStartTransaction carries a TxProfile")],
        )
    offline = command.state == CommandState.OFFLINE
    profile_record(
        station_id=command.station_id,
        evse_id=evse_id,
        profile=profile,
        source=ChargingProfileSource.CSMS,
        state=ChargingProfileState.FAILED if offline else ChargingProfileState.PENDING,
        command=command,
        in_remote_start=True,
    )


def profile_on_remote_start_answered(command: Command) -> None:
    """RequestStartTransaction answered: its TxProfile is installed with the transaction (Accepted; bound to the
    transactionId the answer may give) or not at all (Rejected)."""
    response = command.response or {}
    rows = ChargingProfile.objects.filter(command=command, state=ChargingProfileState.PENDING, in_remote_start=True)
    if response.get("status") == "Accepted":
        if response.get("transactionId"):
            rows.update(transaction_id=response["transactionId"][:36])
        ids = list(rows.values_list("profile_id", flat=True))
        _install(Q(command=command, in_remote_start=True), station_id=command.station_id, profile_ids=ids,
                 reason="replaced (same id)")  # fmt: skip
    else:
        rows.update(state=ChargingProfileState.REJECTED, station_status=response.get("status", ""))


def profiles_clear(
    *,
    station: ChargingStation,
    profile_id: int | None = None,
    evse_id: int | None = None,
    purpose: str = "",
    stack_level: int | None = None,
    user: Sender = None,
) -> Command:
    """Send ClearChargingProfile (by id, or by criteria; nothing given: every profile); Accepted clears the
    matching profiles of the record."""
    payload: dict[str, Any] = {}
    if profile_id is not None:
        payload["chargingProfileId"] = profile_id
    criteria: dict[str, Any] = {}
    if evse_id is not None:
        criteria["evseId"] = evse_id
    if purpose:
        criteria["chargingProfilePurpose"] = purpose
    if stack_level is not None:
        criteria["stackLevel"] = stack_level
    if criteria:
        payload["chargingProfileCriteria"] = criteria
    return command_send(station=station, action="ClearChargingProfile", payload=payload, user=user)


def profile_on_clear_sending(command: Command) -> None:
    """Send hook of every ClearChargingProfile: the CSMS does not clear ChargingStationExternalConstraints."""
    purpose = (command.request.get("chargingProfileCriteria") or {}).get("chargingProfilePurpose")
    if purpose == ChargingProfilePurpose.CHARGING_STATION_EXTERNAL_CONSTRAINTS:
        message = "ClearChargingProfile: ChargingStationExternalConstraints are set and cleared by external systems"
        raise ProfileValidationError(message, [_violation("chargingProfileCriteria/chargingProfilePurpose", message)])


def _clear_filter(request: dict[str, Any]) -> Q:
    if "chargingProfileId" in request:
        return Q(profile_id=request["chargingProfileId"])
    q = ~Q(purpose=ChargingProfilePurpose.CHARGING_STATION_EXTERNAL_CONSTRAINTS)
    criteria = request.get("chargingProfileCriteria") or {}
    if "evseId" in criteria:
        q &= Q(evse_id=criteria["evseId"])
    if "chargingProfilePurpose" in criteria:
        q &= Q(purpose=criteria["chargingProfilePurpose"])
    if "stackLevel" in criteria:
        q &= Q(stack_level=criteria["stackLevel"])
    return q


def profile_on_clear_answered(command: Command) -> None:
    """ClearChargingProfile answered: Accepted clears the matching profiles; Unknown for one id means the station
    does not hold it (the record says so: cleared); Unknown for criteria changes nothing.

    # OCPP SPEC-SILENT: the CSMS trusts the station's Unknown for an id and drops the profile from its record.
    """
    status = (command.response or {}).get("status")
    if status != "Accepted" and not (status == "Unknown" and "chargingProfileId" in command.request):
        return
    ChargingProfile.objects.filter(
        _clear_filter(command.request), station_id=command.station_id, state__in=LIVE
    ).update(
        state=ChargingProfileState.CLEARED,
        cleared_at=timezone.now(),
        clear_command=command,
        cleared_reason="ClearChargingProfile" if status == "Accepted" else "station: Unknown",
    )


def profiles_drop_for_transaction(change: SessionChange) -> None:
    """Session observer (transactions/observers.py): once the session's Ended event is applied, its TxProfiles
    leave the record, as the station drops them (and the TxProfile of the RequestStartTransaction that started
    it)."""
    if not change.ended_now:
        return
    bound = Q(transaction_id=change.transaction_id)
    if change.remote_start_command_id is not None:
        bound |= Q(command_id=change.remote_start_command_id, in_remote_start=True)
    ChargingProfile.objects.filter(
        bound, station_id=change.station_id, purpose=ChargingProfilePurpose.TX_PROFILE, state__in=LIVE
    ).update(state=ChargingProfileState.CLEARED, cleared_at=timezone.now(), cleared_reason="transaction ended")


def profiles_report_request(
    *,
    station: ChargingStation,
    evse_id: int | None = None,
    purpose: str = "",
    stack_level: int | None = None,
    profile_ids: list[int] | None = None,
    limit_sources: list[str] | None = None,
    user: Sender = None,
) -> ChargingProfileReport:
    """Send GetChargingProfiles (requestId allocated by the send hook); the report reconciles the record."""
    criteria: dict[str, Any] = {}
    if purpose:
        criteria["chargingProfilePurpose"] = purpose
    if stack_level is not None:
        criteria["stackLevel"] = stack_level
    if profile_ids:
        criteria["chargingProfileId"] = profile_ids
    if limit_sources:
        criteria["chargingLimitSource"] = limit_sources
    payload: dict[str, Any] = {"chargingProfile": criteria}
    if evse_id is not None:
        payload["evseId"] = evse_id
    command = command_send(station=station, action="GetChargingProfiles", payload=payload, user=user)
    return ChargingProfileReport.objects.get(command=command)


def profiles_on_get_sending(command: Command) -> None:
    """Send hook of every GetChargingProfiles: allocate the requestId (per station) and record the report."""
    last = ChargingProfileReport.objects.filter(station_id=command.station_id).aggregate(m=Max("request_id"))["m"]
    request_id = max(last or 0, 0) + 1
    offline = command.state == CommandState.OFFLINE
    ChargingProfileReport.objects.create(
        station_id=command.station_id,
        request_id=request_id,
        command=command,
        evse_id=command.request.get("evseId"),
        criteria=command.request.get("chargingProfile") or {},
        state=ProfileReportState.FAILED if offline else ProfileReportState.REQUESTED,
    )
    command.request = {**command.request, "requestId": request_id}


def _criteria_filter(*, evse_id: int | None, criteria: dict[str, Any]) -> Q:
    q = Q()
    if evse_id is not None:
        q &= Q(evse_id=evse_id)
    if "chargingProfilePurpose" in criteria:
        q &= Q(purpose=criteria["chargingProfilePurpose"])
    if "stackLevel" in criteria:
        q &= Q(stack_level=criteria["stackLevel"])
    if criteria.get("chargingProfileId"):
        q &= Q(profile_id__in=criteria["chargingProfileId"])
    if criteria.get("chargingLimitSource"):
        sources = criteria["chargingLimitSource"]
        by_source = Q(charging_limit_source__in=sources)
        # The CSMS's own profiles (no reported source) have the source CSO.
        q &= by_source | Q(charging_limit_source="") if "CSO" in sources else by_source
    return q


def profiles_on_get_answered(command: Command) -> None:
    """GetChargingProfiles answered: Accepted (ReportChargingProfiles follow) or NoProfiles: the station holds
    none matching the criteria, so none stays in the record."""
    status = (command.response or {}).get("status", "")
    report = ChargingProfileReport.objects.filter(command=command).first()
    if report is None or report.state != ProfileReportState.REQUESTED:
        return
    if status == "Accepted":
        report.state = ProfileReportState.ACCEPTED
    else:
        report.state = ProfileReportState.NO_PROFILES
        report.completed_at = timezone.now()
        _unreported_clear(report=report, reported_ids=set())
    report.save(update_fields=["state", "completed_at", "updated_at"])


def _unreported_clear(*, report: ChargingProfileReport, reported_ids: set[int]) -> None:
    ChargingProfile.objects.filter(
        _criteria_filter(evse_id=report.evse_id, criteria=report.criteria),
        station_id=report.station_id,
        state=ChargingProfileState.INSTALLED,
        installed_at__lt=report.created_at,
    ).exclude(profile_id__in=reported_ids).update(
        state=ChargingProfileState.CLEARED, cleared_at=timezone.now(), cleared_reason="not reported by the station"
    )


def _report_locked(station_id: int, request_id: int) -> ChargingProfileReport:
    ChargingProfileReport.objects.bulk_create(
        [ChargingProfileReport(station_id=station_id, request_id=request_id, state=ProfileReportState.RECEIVING)],
        ignore_conflicts=True,
    )
    return ChargingProfileReport.objects.select_for_update().get(station_id=station_id, request_id=request_id)


def _reported_apply(*, station_id: int, request_id: int, part: dict[str, Any]) -> set[int]:
    """One part's profiles into the record: a profile the record holds (same id, same content) is confirmed, any
    other is stored as reported (and installed), replacing what the record held under that id."""
    evse_id = part["evseId"]
    limit_source = part["chargingLimitSource"]
    now = timezone.now()
    ids: set[int] = set()
    for profile in part["chargingProfile"]:
        ids.add(profile["id"])
        held = (
            ChargingProfile.objects.filter(
                station_id=station_id, profile_id=profile["id"], state=ChargingProfileState.INSTALLED
            )
            .prefetch_related("schedules__periods")
            .first()
        )
        if held is not None and held.evse_id == evse_id and profile_payload(held) == _comparable(profile):
            held.reported_at, held.report_request_id = now, request_id
            held.save(update_fields=["reported_at", "report_request_id", "updated_at"])
            continue
        if held is not None:
            held.state, held.cleared_at, held.cleared_reason = (
                ChargingProfileState.CLEARED,
                now,
                "station reported other",
            )
            held.save(update_fields=["state", "cleared_at", "cleared_reason", "updated_at"])
        profile_record(
            station_id=station_id,
            evse_id=evse_id,
            profile=profile,
            source=ChargingProfileSource.REPORTED,
            state=ChargingProfileState.INSTALLED,
            charging_limit_source=limit_source,
            report_request_id=request_id,
        )
    return ids


def _without_custom_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_custom_data(v) for k, v in value.items() if k != "customData"}
    if isinstance(value, list):
        return [_without_custom_data(v) for v in value]
    return value


def _comparable(profile: dict[str, Any]) -> dict[str, Any]:
    """A reported ChargingProfileType normalised as :func:`profile_payload` writes it (timestamps, numbers)."""
    out = _without_custom_data(profile)
    for key in ("validFrom", "validTo"):
        if key in out:
            out[key] = format_ocpp(parse_ocpp(out[key]))
    for s in out["chargingSchedule"]:
        if "startSchedule" in s:
            s["startSchedule"] = format_ocpp(parse_ocpp(s["startSchedule"]))
        if "minChargingRate" in s:
            s["minChargingRate"] = float(s["minChargingRate"])
        s["chargingSchedulePeriod"] = [{**p, "limit": float(p["limit"])} for p in s["chargingSchedulePeriod"]]
    return out


def report_part_record(
    *, station_id: int, request_id: int, tbc: bool, payload: dict[str, Any]
) -> ChargingProfileReport:
    """One ReportChargingProfiles part (requestId + tbc, no seqNo; any order, retries change nothing). Its profiles
    enter the record at once; once the report is complete, the record's installed profiles matching the request's
    criteria that no part listed are cleared (the station no longer holds them)."""
    ChargingStation.objects.select_for_update(no_key=True).filter(pk=station_id).values_list("pk").first()
    # OCPP SPEC-SILENT: a report for a requestId the CSMS never sent is stored all the same (a report without a
    # command, no criteria): the station's word on what it holds.
    report = _report_locked(station_id, request_id)
    outcome = multipart.part_receive(
        station_id=station_id, kind=KIND, request_id=request_id, seq_no=None, tbc=tbc, payload=payload
    )
    if outcome.duplicate:
        return report
    _reported_apply(station_id=station_id, request_id=request_id, part=payload)
    report.parts_received = outcome.assembly.parts_received
    parts = multipart.parts_payloads(station_id=station_id, kind=KIND, request_ids=[request_id])[request_id]
    reported = {p["id"] for part in parts for p in part.get("chargingProfile", [])}
    report.profiles_received = len(reported)
    if outcome.complete:
        report.state = ProfileReportState.COMPLETE
        report.completed_at = report.completed_at or timezone.now()
        if report.command_id is not None:
            _unreported_clear(report=report, reported_ids=reported)
    else:
        report.state = ProfileReportState.RECEIVING
    report.save()
    return report
