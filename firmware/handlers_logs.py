"""OCPP handler of the log block: LogStatusNotification (thin; the logic is in ``firmware.logs``)."""

from __future__ import annotations

from typing import Any

from csms.ocpp.router import CallContext, handles

from . import logs


@handles("LogStatusNotification")
def log_status_notification(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    logs.log_status_record(
        station_id=ctx.station_id,
        status=payload["status"],
        request_id=payload.get("requestId"),
        status_info=payload.get("statusInfo"),
    )
    return {}
