"""Handlers for the device-model CS->CSMS messages (block B reports). Thin: parse, one service call, answer."""

from __future__ import annotations

from typing import Any

from csms.ocpp.checks import INT32_MAX, require_range
from csms.ocpp.router import CallContext, handles
from csms.timeutil import parse_ocpp

from . import monitoring, services


@handles("NotifyReport")
def notify_report(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    report_data = payload.get("reportData", [])
    require_range(0, seqNo=payload["seqNo"])
    require_range(-INT32_MAX, requestId=payload["requestId"])
    for entry in report_data:
        evse = entry["component"].get("evse") or {}
        require_range(0, evseId=evse.get("id"), connectorId=evse.get("connectorId"))
    services.report_part_record(
        station_id=ctx.station_id,
        request_id=payload["requestId"],
        seq_no=payload["seqNo"],
        tbc=payload.get("tbc", False),
        generated_at=parse_ocpp(payload["generatedAt"]),
        report_data=report_data,
    )
    return {}


@handles("NotifyMonitoringReport")
def notify_monitoring_report(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    monitor = payload.get("monitor", [])
    require_range(0, seqNo=payload["seqNo"])
    require_range(-INT32_MAX, requestId=payload["requestId"])
    for entry in monitor:
        evse = entry["component"].get("evse") or {}
        require_range(0, evseId=evse.get("id"), connectorId=evse.get("connectorId"))
    monitoring.monitoring_report_part_record(
        station_id=ctx.station_id,
        request_id=payload["requestId"],
        seq_no=payload["seqNo"],
        tbc=payload.get("tbc", False),
        generated_at=parse_ocpp(payload["generatedAt"]),
        monitor=monitor,
    )
    return {}
