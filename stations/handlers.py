"""Handlers for the station-level CS->CSMS messages (provisioning block B, NotifyEvent, DataTransfer,
NotifyDisplayMessages). Thin: parse, one service call, answer."""

from __future__ import annotations

from typing import Any

from csms.ocpp.checks import require_range
from csms.ocpp.router import CallContext, handles
from csms.timeutil import parse_ocpp, utc_now_iso

from . import datatransfer, display_messages, services


@handles("BootNotification")
def boot_notification(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    info = payload["chargingStation"]
    modem = info.get("modem") or {}
    decision = services.boot_record(
        station_id=ctx.station_id,
        reason=payload["reason"],
        vendor_name=info["vendorName"],
        model=info["model"],
        serial_number=info.get("serialNumber", ""),
        firmware_version=info.get("firmwareVersion", ""),
        modem_iccid=modem.get("iccid", ""),
        modem_imsi=modem.get("imsi", ""),
    )
    return {"currentTime": utc_now_iso(), "interval": decision.interval_s, "status": decision.status}


@handles("Heartbeat", uses_db=False)
def heartbeat(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    # last_seen_at is written by calls.call_commit for every message (at most every CSMS_LAST_SEEN_RESOLUTION_S);
    # in between, a heartbeat is answered in the event loop without touching the database.
    return {"currentTime": utc_now_iso()}


@handles("StatusNotification")
def status_notification(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    require_range(0, evseId=payload["evseId"], connectorId=payload["connectorId"])
    services.connector_status_record(
        station_id=ctx.station_id,
        evse_id=payload["evseId"],
        connector_id=payload["connectorId"],
        status=payload["connectorStatus"],
        timestamp=parse_ocpp(payload["timestamp"]),
    )
    return {}


@handles("NotifyEvent")
def notify_event(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    services.station_events_record(
        station_id=ctx.station_id,
        generated_at=parse_ocpp(payload["generatedAt"]),
        seq_no=payload["seqNo"],
        event_data=payload["eventData"],
    )
    return {}


@handles("DataTransfer")
def data_transfer(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    return datatransfer.data_transfer_receive(
        station_id=ctx.station_id,
        vendor_id=payload["vendorId"],
        message_id=payload.get("messageId"),
        data=payload.get("data"),
    )


@handles("NotifyDisplayMessages")
def notify_display_messages(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    display_messages.display_messages_part_record(
        station_id=ctx.station_id,
        request_id=payload["requestId"],
        tbc=payload.get("tbc", False),
        message_info=payload.get("messageInfo", []),
        payload=payload,
    )
    return {}
