"""Actions on stations: registration (``manage.py addstation``, the API) and what a station reports about itself
(BootNotification, StatusNotification, NotifyEvent). Connections live in :mod:`.connections`, the CALL pipeline
in :mod:`.calls`, commands in :mod:`.commands`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Model, ProtectedError, Q
from django.utils import timezone

from csms import fastorm
from csms.timeutil import parse_ocpp
from security.hashers import password_policy_check
from webhooks import services as webhooks

from .commands import secrets
from .connections import STATION_FOR_UPDATE
from .models import (
    BootRecord,
    ChargingStation,
    Command,
    Connector,
    ConnectorStatus,
    Evse,
    OperationalStatus,
    RegistrationStatus,
    ResetState,
    SecurityProfile,
    StationEvent,
    StatusNotificationRecord,
)

# --- Registration ---------------------------------------------------------------------------------------------


def station_register(
    *,
    identity: str,
    password: str | None = None,
    security_profile: int | None = None,
    registration_status: str = RegistrationStatus.ACCEPTED,
) -> tuple[ChargingStation, bool]:
    """Create or update a station (``manage.py addstation``). A password implies at least security profile 1."""
    if not identity or len(identity) > 48 or ":" in identity:
        raise ValueError("identity must be 1 to 48 characters without ':'")
    if password:
        password_policy_check(password)
    station, created = ChargingStation.objects.get_or_create(identity=identity)
    if password:
        station.set_password(password)
    if security_profile is None:
        security_profile = SecurityProfile.BASIC if password else station.security_profile
    if security_profile in (SecurityProfile.BASIC, SecurityProfile.BASIC_TLS) and not station.password_hash:
        raise ValueError(f"security profile {security_profile} needs a password")
    station.security_profile = security_profile
    station.registration_status = registration_status
    station.save()
    return station, created


class StationInUse(Exception):
    """The station has an audit trail (commands, transactions) that must outlive it."""


def station_update(*, station: ChargingStation, password: str | None = None, **fields: Any) -> ChargingStation:
    """Change registration fields (``registration_status``, ``security_profile``, ``validation_mode``,
    ``description``); a given ``password`` is stored hashed ("" removes it). Profiles 1 and 2 need a password."""
    for name, value in fields.items():
        setattr(station, name, value)
    if password:
        password_policy_check(password)
    if password is not None:
        station.set_password(password)
    if station.security_profile in (SecurityProfile.BASIC, SecurityProfile.BASIC_TLS) and not station.password_hash:
        raise ValueError(f"security profile {station.security_profile} needs a password")
    station.save()
    return station


def station_delete(*, station: ChargingStation) -> None:
    """Delete a station without history; one with commands or transactions is refused (StationInUse)."""
    from transactions.models import ChargingTransaction  # transactions depends on stations, not the reverse

    if Command.objects.filter(station=station).exists():
        raise StationInUse("the station has commands (audit trail); set its registration_status to Rejected instead")
    if ChargingTransaction.objects.filter(station=station).exists():
        raise StationInUse("the station has transactions (billing records); set its registration_status to Rejected")
    try:
        station.delete()
    except ProtectedError as exc:
        raise StationInUse("the station is referenced by records that must be kept") from exc


# --- What a station reports about itself ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BootDecision:
    status: str  # RegistrationStatus: the answer to the BootNotification
    interval_s: int  # heartbeat interval when Accepted, else when to retry the boot


def boot_record(
    *,
    station_id: int,
    reason: str,
    vendor_name: str,
    model: str,
    serial_number: str = "",
    firmware_version: str = "",
    modem_iccid: str = "",
    modem_imsi: str = "",
) -> BootDecision:
    """Record a BootNotification (a boot record and the station's identification) and decide its answer from the
    station's registration status. On every boot of a boot storm: statements compiled once (csms.fastorm)."""
    station = STATION_FOR_UPDATE.get(station_id)
    if station is None:
        raise ChargingStation.DoesNotExist(f"station {station_id} is gone")
    status = station.registration_status
    now = timezone.now()
    boot = BootRecord(
        station=station,
        reason=reason,
        vendor_name=vendor_name,
        model=model,
        serial_number=serial_number,
        firmware_version=firmware_version,
        modem_iccid=modem_iccid,
        modem_imsi=modem_imsi,
        status=status,
    )
    fastorm.insert([boot])
    station.vendor_name = vendor_name
    station.model = model
    station.serial_number = serial_number
    station.firmware_version = firmware_version
    station.modem_iccid = modem_iccid
    station.modem_imsi = modem_imsi
    station.boot_status = status
    station.last_boot_at = now
    station.last_seen_at = now
    # Riding on the one UPDATE of the station row: a reboot awaited after a Reset is confirmed, and a Scheduled
    # station-level ChangeAvailability takes effect.
    # OCPP SPEC-SILENT: no message reports a whole station's availability; a station keeps its availability
    # across reboots, so a boot is taken as the moment a Scheduled change is applied at the latest.
    if station.reset_state == ResetState.AWAITING_REBOOT:
        station.reset_state = ResetState.CONFIRMED
        station.reset_confirmed_at = now
    if station.availability_scheduled:
        station.intended_operational = station.availability_scheduled
        station.availability_scheduled = ""
        station.availability_changed_at = now
    fastorm.update(station)
    accepted = status == RegistrationStatus.ACCEPTED
    interval_s = settings.CSMS_HEARTBEAT_INTERVAL_S if accepted else settings.CSMS_BOOT_RETRY_INTERVAL_S
    return BootDecision(status=str(status), interval_s=interval_s)


def connector_get_or_create(*, station_id: int, evse_id: int, connector_id: int) -> Connector:
    evse, _ = Evse.objects.get_or_create(station_id=station_id, evse_id=evse_id)
    connector, _ = Connector.objects.get_or_create(evse=evse, connector_id=connector_id)
    connector.evse = evse  # in hand already: the status record reads its Scheduled availability without a query
    return connector


# OCPP SPEC-SILENT: which reported connector status completes a Scheduled change. Unavailable is Inoperative;
# Available, Occupied and Reserved are Operative; Faulted says neither, so the change stays pending.
_STATUS_MEANS = {
    ConnectorStatus.UNAVAILABLE: OperationalStatus.INOPERATIVE,
    ConnectorStatus.AVAILABLE: OperationalStatus.OPERATIVE,
    ConnectorStatus.OCCUPIED: OperationalStatus.OPERATIVE,
    ConnectorStatus.RESERVED: OperationalStatus.OPERATIVE,
}


def availability_scheduled_resolve(*, target: Evse | Connector, status: str) -> None:
    """A connector reported ``status``: a Scheduled change of it (or of its EVSE) that this status completes is
    now applied. Called with the rows already in hand, so no statement unless something is pending."""
    means = _STATUS_MEANS.get(ConnectorStatus(status)) if status in ConnectorStatus.values else None
    if target.availability_scheduled and target.availability_scheduled == means:
        model: type[Model] = type(target)
        model._default_manager.filter(pk=target.pk, availability_scheduled=means).update(
            intended_operational=means, availability_scheduled="", availability_changed_at=timezone.now()
        )


def connector_status_record(
    *, station_id: int, evse_id: int, connector_id: int, status: str, timestamp: datetime
) -> None:
    """Record a connector's reported status: always in its history (once: a retry adds no row), as its current
    status only when it is not older than the one held (a late retry or an offline backlog)."""
    connector = connector_get_or_create(station_id=station_id, evse_id=evse_id, connector_id=connector_id)
    StatusNotificationRecord.objects.get_or_create(connector=connector, status=status, timestamp=timestamp)
    changed = (
        Connector.objects.filter(pk=connector.pk)
        .filter(Q(status_at__isnull=True) | Q(status_at__lte=timestamp))
        .update(status=status, status_at=timestamp)
    )
    if changed:
        availability_scheduled_resolve(target=connector, status=status)
        availability_scheduled_resolve(target=connector.evse, status=status)
    if changed and connector.status != status:
        webhooks.emit(
            "station.status_changed",
            lambda: {
                "station": ChargingStation.objects.values_list("identity", flat=True).get(pk=station_id),
                "evse_id": evse_id,
                "connector_id": connector_id,
                "status": status,
                "previous_status": connector.status,
                "timestamp": timestamp,
            },
        )


EVENT_ALERT_WEBHOOK = "station.event_alert"


def _event_alert_data(event: StationEvent) -> dict[str, Any]:
    return {
        "station": ChargingStation.objects.values_list("identity", flat=True).get(pk=event.station_id),
        "generated_at": event.generated_at,
        "seq_no": event.seq_no,
        "event_id": event.event_id,
        "timestamp": event.timestamp,
        "trigger": event.trigger,
        "actual_value": event.actual_value,
        "severity": event.severity,
        "variable_monitoring_id": event.variable_monitoring_id,
        "event_notification_type": event.event_notification_type,
        "component": event.component,
        "variable": event.variable,
        "tech_code": event.tech_code,
        "tech_info": event.tech_info,
        "cleared": event.cleared,
        "transaction_id": event.transaction_id,
    }


# The WriteOnly variables NotifyEvents named, as this process learnt them while storing those events: the message
# log's copy of a NotifyEvent (``notify_event_for_log``, built after the handler and, in the buffered mode, in the
# event loop where no query may run) is redacted from it. The handler always runs first in the same process, so a
# message's own secrets are always known when its log row is made. Keyed without the station: a variable WriteOnly
# on one station has its value redacted from every station's log rows (over-redacting a log is the safe side).
# Bounded: past the limit it starts again (the next event on each variable relearns it before its log row).
_write_only_seen: set[tuple[str, str, int, int, str, str]] = set()
WRITE_ONLY_SEEN_MAX = 10_000


def _write_only_remember(keys: set[tuple[str, str, int, int, str, str]]) -> None:
    if len(_write_only_seen) + len(keys) > WRITE_ONLY_SEEN_MAX:
        _write_only_seen.clear()
    _write_only_seen.update(keys)


def notify_event_for_log(payload: dict[str, Any]) -> dict[str, Any]:
    """``secrets.log_redactor("NotifyEvent")``: the message log keeps a NotifyEvent with ``[redacted]`` for the
    actualValue of an event on a WriteOnly variable (known secrets, or WriteOnly in the station's model)."""
    from devicemodel.services import SECRET_VARIABLES, variable_key

    events = payload.get("eventData")
    if not isinstance(events, list):
        return payload

    def secret(event: Any) -> bool:
        try:
            component, variable = event["component"], event["variable"]
            return (component["name"], variable["name"]) in SECRET_VARIABLES or variable_key(
                component, variable
            ) in _write_only_seen
        except (KeyError, TypeError, AttributeError):
            return False

    if not any(secret(e) and "actualValue" in e for e in events):
        return payload
    return payload | {
        "eventData": [e | {"actualValue": secrets.REDACTED} if secret(e) and "actualValue" in e else e for e in events]
    }


def station_events_record(
    *, station_id: int, generated_at: datetime, seq_no: int, event_data: list[dict[str, Any]]
) -> None:
    """Record a NotifyEvent's events (OCPP ``EventDataType`` dicts); a retried message adds no second row. Events
    whose monitor's severity is <= ``CSMS_EVENT_ALERT_SEVERITY`` are alerts, sent as ``station.event_alert``."""
    # devicemodel depends on stations, not the reverse
    from devicemodel.monitoring import monitor_severities
    from devicemodel.services import SECRET_VARIABLES, variable_key, write_only_variables

    # One query for the severities of the message's monitors. OCPP SPEC-SILENT: an event without a known monitor
    # (HardWiredNotification, or a monitor no report or SetVariableMonitoring told the CSMS of) has no severity and
    # is never an alert; request a monitoring report to know the station's preconfigured monitors.
    severities = monitor_severities(
        station_id=station_id,
        monitor_ids={e["variableMonitoringId"] for e in event_data if e.get("variableMonitoringId") is not None},
    )
    # A WriteOnly variable's value is a secret: an event on one is stored without it (one query), as reports and
    # Get/SetVariables never store it.
    write_only = write_only_variables(
        station_id=station_id, keys={variable_key(e["component"], e["variable"]) for e in event_data}
    ) | {
        variable_key(e["component"], e["variable"])
        for e in event_data
        if (e["component"]["name"], e["variable"]["name"]) in SECRET_VARIABLES
    }
    _write_only_remember(write_only)
    level = settings.CSMS_EVENT_ALERT_SEVERITY
    events = []
    for event in event_data:
        severity = severities.get(event.get("variableMonitoringId"))  # type: ignore[arg-type]
        events.append(
            StationEvent(
                station_id=station_id,
                generated_at=generated_at,
                seq_no=seq_no,
                event_id=event["eventId"],
                timestamp=parse_ocpp(event["timestamp"]),
                trigger=event["trigger"],
                cause=event.get("cause"),
                actual_value=""
                if variable_key(event["component"], event["variable"]) in write_only
                else event["actualValue"],
                tech_code=event.get("techCode", ""),
                tech_info=event.get("techInfo", ""),
                cleared=event.get("cleared"),
                transaction_id=event.get("transactionId", ""),
                variable_monitoring_id=event.get("variableMonitoringId"),
                event_notification_type=event["eventNotificationType"],
                component=event["component"],
                variable=event["variable"],
                severity=severity,
                alert=severity is not None and severity <= level,
            )
        )
    alerts = [e for e in events if e.alert]
    if alerts:  # a retried message's alerts are not sent again
        held = set(
            StationEvent.objects.filter(
                station_id=station_id,
                generated_at=generated_at,
                seq_no=seq_no,
                event_id__in=[e.event_id for e in alerts],
            ).values_list("event_id", flat=True)
        )
        alerts = [e for e in alerts if e.event_id not in held]
    StationEvent.objects.bulk_create(events, ignore_conflicts=True)
    for alert in alerts:
        webhooks.emit(EVENT_ALERT_WEBHOOK, lambda alert=alert: _event_alert_data(alert))  # type: ignore[misc]
