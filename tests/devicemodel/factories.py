"""Report data as stations send it (OCPP ReportDataType), and NotifyReport payloads."""

from __future__ import annotations

from typing import Any


def report_entry(
    component: str,
    variable: str,
    value: str | None = "1",
    *,
    mutability: str = "ReadWrite",
    evse: int | None = None,
    connector: int | None = None,
    component_instance: str | None = None,
    variable_instance: str | None = None,
    data_type: str | None = "integer",
    unit: str | None = None,
    monitoring: bool = False,
    extra_attributes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component}
    if component_instance:
        comp["instance"] = component_instance
    if evse is not None:
        comp["evse"] = {"id": evse} | ({"connectorId": connector} if connector is not None else {})
    var: dict[str, Any] = {"name": variable}
    if variable_instance:
        var["instance"] = variable_instance
    attribute: dict[str, Any] = {"type": "Actual", "mutability": mutability, "persistent": True}
    if value is not None:
        attribute["value"] = value
    entry: dict[str, Any] = {
        "component": comp,
        "variable": var,
        "variableAttribute": [attribute, *(extra_attributes or [])],
    }
    if data_type:
        entry["variableCharacteristics"] = {"dataType": data_type, "supportsMonitoring": monitoring} | (
            {"unit": unit} if unit else {}
        )
    return entry


def many_entries(n: int, prefix: str = "V") -> list[dict[str, Any]]:
    return [report_entry(f"Comp{i // 50}", f"{prefix}{i}", str(i), evse=1 if i % 3 == 0 else None) for i in range(n)]


def notify_report(request_id: int, seq_no: int, tbc: bool, data: list[dict[str, Any]]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "requestId": request_id,
        "generatedAt": "2026-12-01T10:00:00Z",
        "seqNo": seq_no,
        "tbc": tbc,
    }
    if data:
        payload["reportData"] = data
    return payload
