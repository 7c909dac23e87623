"""Builders for OCPP transaction payloads used across the transaction tests."""

from __future__ import annotations

from typing import Any


def sampled(
    value: float | int,
    *,
    measurand: str | None = None,
    unit: str | None = None,
    multiplier: int | None = None,
    context: str | None = None,
    phase: str | None = None,
    location: str | None = None,
) -> dict[str, Any]:
    sv: dict[str, Any] = {"value": value}
    if measurand:
        sv["measurand"] = measurand
    if context:
        sv["context"] = context
    if phase:
        sv["phase"] = phase
    if location:
        sv["location"] = location
    uom = {k: v for k, v in (("unit", unit), ("multiplier", multiplier)) if v is not None}
    if uom:
        sv["unitOfMeasure"] = uom
    return sv


def meter_value(timestamp: str, *sampled_values: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": timestamp, "sampledValue": list(sampled_values)}


def tx_event(
    event_type: str,
    seq_no: int,
    timestamp: str,
    transaction_id: str = "TX-1",
    trigger: str = "MeterValuePeriodic",
    *,
    meter: list[dict[str, Any]] | None = None,
    id_token: dict[str, str] | None = None,
    evse: dict[str, int] | None = None,
    info: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "eventType": event_type,
        "seqNo": seq_no,
        "timestamp": timestamp,
        "triggerReason": trigger,
        "transactionInfo": {"transactionId": transaction_id, **(info or {})},
        **extra,
    }
    if meter:
        payload["meterValue"] = meter
    if id_token:
        payload["idToken"] = id_token
    if evse:
        payload["evse"] = evse
    return payload
