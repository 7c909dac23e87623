"""Handlers for the station-level CS->CSMS messages (provisioning block B, NotifyEvent)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from csms import fastorm
from csms.ocpp import errors
from csms.ocpp.router import CallContext, handles
from csms.timeutil import parse_ocpp, utc_now_iso
from webhooks import services as webhooks

from .models import (
    BootRecord,
    ChargingStation,
    Connector,
    Evse,
    RegistrationStatus,
    StationEvent,
    StatusNotificationRecord,
)
from .services import STATION_FOR_UPDATE


@handles("BootNotification")
def boot_notification(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    station = STATION_FOR_UPDATE.get(ctx.station_id)
    info = payload["chargingStation"]
    modem = info.get("modem") or {}
    status = station.registration_status
    now = timezone.now()
    boot = BootRecord(
        station=station,
        reason=payload["reason"],
        vendor_name=info["vendorName"],
        model=info["model"],
        serial_number=info.get("serialNumber", ""),
        firmware_version=info.get("firmwareVersion", ""),
        modem_iccid=modem.get("iccid", ""),
        modem_imsi=modem.get("imsi", ""),
        status=status,
    )
    fastorm.insert([boot])
    station.vendor_name = info["vendorName"]
    station.model = info["model"]
    station.serial_number = info.get("serialNumber", "")
    station.firmware_version = info.get("firmwareVersion", "")
    station.modem_iccid = modem.get("iccid", "")
    station.modem_imsi = modem.get("imsi", "")
    station.boot_status = status
    station.last_boot_at = now
    station.last_seen_at = now
    fastorm.update(station)
    interval = (
        settings.CSMS_HEARTBEAT_INTERVAL_S
        if status == RegistrationStatus.ACCEPTED
        else settings.CSMS_BOOT_RETRY_INTERVAL_S
    )
    return {"currentTime": utc_now_iso(), "interval": interval, "status": str(status)}


@handles("Heartbeat", uses_db=False)
def heartbeat(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    # last_seen_at is written by call_process for every message (at most every CSMS_LAST_SEEN_RESOLUTION_S); in
    # between, a heartbeat is answered in the event loop without touching the database.
    return {"currentTime": utc_now_iso()}


def connector_get_or_create(*, station_id: int, evse_id: int, connector_id: int) -> Connector:
    # The schemas type these as plain integers; the spec's ids are never negative.
    for name, value in (("evseId", evse_id), ("connectorId", connector_id)):
        if value < 0:
            raise errors.PropertyConstraintViolation(
                f"{name} must be 0 or more, got {value}", {"path": name, "keyword": "minimum"}
            )
    evse, _ = Evse.objects.get_or_create(station_id=station_id, evse_id=evse_id)
    connector, _ = Connector.objects.get_or_create(evse=evse, connector_id=connector_id)
    return connector


@handles("StatusNotification")
def status_notification(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    connector = connector_get_or_create(
        station_id=ctx.station_id, evse_id=payload["evseId"], connector_id=payload["connectorId"]
    )
    timestamp = parse_ocpp(payload["timestamp"])
    status = payload["connectorStatus"]
    StatusNotificationRecord.objects.get_or_create(connector=connector, status=status, timestamp=timestamp)
    # A status older than the one we hold (a late retry or an offline backlog) goes to history only.
    changed = Connector.objects.filter(pk=connector.pk).filter(
        Q(status_at__isnull=True) | Q(status_at__lte=timestamp)
    ).update(status=status, status_at=timestamp)
    if changed and connector.status != status:
        webhooks.emit(
            "station.status_changed",
            lambda: {
                "station": ChargingStation.objects.values_list("identity", flat=True).get(pk=ctx.station_id),
                "evse_id": payload["evseId"],
                "connector_id": payload["connectorId"],
                "status": status,
                "previous_status": connector.status,
                "timestamp": timestamp,
            },
        )
    return {}


@handles("NotifyEvent")
def notify_event(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    generated_at = parse_ocpp(payload["generatedAt"])
    StationEvent.objects.bulk_create(
        (
            StationEvent(
                station_id=ctx.station_id,
                generated_at=generated_at,
                seq_no=payload["seqNo"],
                event_id=event["eventId"],
                timestamp=parse_ocpp(event["timestamp"]),
                trigger=event["trigger"],
                cause=event.get("cause"),
                actual_value=event["actualValue"],
                tech_code=event.get("techCode", ""),
                tech_info=event.get("techInfo", ""),
                cleared=event.get("cleared"),
                transaction_id=event.get("transactionId", ""),
                variable_monitoring_id=event.get("variableMonitoringId"),
                event_notification_type=event["eventNotificationType"],
                component=event["component"],
                variable=event["variable"],
            )
            for event in payload["eventData"]
        ),
        ignore_conflicts=True,
    )
    return {}
