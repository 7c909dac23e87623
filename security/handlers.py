"""Handlers of the security block's CS->CSMS messages. Thin: parse, one service call, answer."""

from __future__ import annotations

from typing import Any

from csms.ocpp.router import CallContext, handles
from csms.timeutil import parse_ocpp

from . import services


@handles("SecurityEventNotification")
def security_event_notification(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    services.security_event_record(
        station_id=ctx.station_id,
        event_type=payload["type"],
        timestamp=parse_ocpp(payload["timestamp"]),
        tech_info=payload.get("techInfo", ""),
    )
    return {}
