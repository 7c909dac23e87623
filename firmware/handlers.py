"""Handlers for the firmware CS->CSMS messages (block L): FirmwareStatusNotification and
PublishFirmwareStatusNotification. Thin: parse, one service call, answer."""

from __future__ import annotations

from typing import Any

from csms.ocpp.router import CallContext, handles

from . import publications, rollouts


@handles("FirmwareStatusNotification")
def firmware_status_notification(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    rollouts.firmware_status_record(
        station_id=ctx.station_id, status=payload["status"], request_id=payload.get("requestId")
    )
    return {}


@handles("PublishFirmwareStatusNotification")
def publish_firmware_status_notification(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    publications.publish_status_record(
        station_id=ctx.station_id,
        status=payload["status"],
        request_id=payload.get("requestId"),
        locations=list(payload.get("location") or []),
    )
    return {}
