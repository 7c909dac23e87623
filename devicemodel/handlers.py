"""Handlers for the device-model CS->CSMS messages (block B reports). Thin: parse, one service call, answer."""

from __future__ import annotations

from typing import Any

from csms.ocpp.checks import INT32_MAX, require_range
from csms.ocpp.router import CallContext, handles
from csms.timeutil import parse_ocpp

from . import monitoring, services


def _require_part_ranges(payload: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    # The ids a report part carries, beyond its schema (see csms.ocpp.checks).
    require_range(0, seqNo=payload["seqNo"])
    require_range(-INT32_MAX, requestId=payload["requestId"])
    for entry in entries:
        evse = entry["component"].get("evse") or {}
        require_range(0, evseId=evse.get("id"), connectorId=evse.get("connectorId"))


@handles("NotifyReport")
def notify_report(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    report_data = payload.get("reportData", [])
    _require_part_ranges(payload, report_data)
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
    _require_part_ranges(payload, monitor)
    monitoring.monitoring_report_part_record(
        station_id=ctx.station_id,
        request_id=payload["requestId"],
        seq_no=payload["seqNo"],
        tbc=payload.get("tbc", False),
        generated_at=parse_ocpp(payload["generatedAt"]),
        monitor=monitor,
    )
    return {}
