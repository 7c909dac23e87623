"""Schema-valid answers to every CSMS->CS request, built from the official OCPP 2.0.1 schemas.

A generic builder fills the required fields of ``<Action>Response.json`` (enums: ``Accepted`` when allowed, else
the first value); actions whose answer must echo the request (GetVariables, SetVariables, ...) get their own
builder. ``statuses`` overrides the top-level ``status`` per action, e.g. ``{"Reset": "Rejected"}``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

# The 40 requests a CSMS sends to a station (DataTransfer goes both ways).
CSMS_TO_CS_ACTIONS: tuple[str, ...] = (
    "CancelReservation", "CertificateSigned", "ChangeAvailability", "ClearCache", "ClearChargingProfile",
    "ClearDisplayMessage", "ClearVariableMonitoring", "CostUpdated", "CustomerInformation", "DataTransfer",
    "DeleteCertificate", "GetBaseReport", "GetChargingProfiles", "GetCompositeSchedule", "GetDisplayMessages",
    "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "GetMonitoringReport", "GetReport",
    "GetTransactionStatus", "GetVariables", "InstallCertificate", "PublishFirmware", "RequestStartTransaction",
    "RequestStopTransaction", "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "SetDisplayMessage",
    "SetMonitoringBase", "SetMonitoringLevel", "SetNetworkProfile", "SetVariableMonitoring", "SetVariables",
    "TriggerMessage", "UnlockConnector", "UnpublishFirmware", "UpdateFirmware",
)  # fmt: skip


@cache
def schema(action: str, kind: str) -> dict[str, Any]:
    text = (resources.files("ocpp.v201") / "schemas" / f"{action}{kind}.json").read_text(encoding="utf-8")
    return json.loads(text)


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def minimal(node: dict[str, Any], root: dict[str, Any], status: str | None = None) -> Any:
    """The smallest instance of a schema node that validates: required fields only."""
    node = _resolve(node, root)
    if "enum" in node:
        values = node["enum"]
        if status in values:
            return status
        return "Accepted" if "Accepted" in values else values[0]
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        return {name: minimal(props[name], root, status) for name in node.get("required", [])}
    if kind == "array":
        return [minimal(node["items"], root, status) for _ in range(node.get("minItems", 0))]
    if kind == "integer":
        return max(0, int(node.get("minimum", 0)))
    if kind == "number":
        return 0.0
    if kind == "boolean":
        return False
    if node.get("format") == "date-time":
        return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return "x" * max(1, int(node.get("minLength", 1)))


def minimal_message(action: str, kind: str, status: str | None = None) -> dict[str, Any]:
    root = schema(action, kind)
    return minimal(root, root, status)


def _status(action: str, statuses: dict[str, str], default: str) -> str:
    return statuses.get(action, default)


def _echo_variables(items: list[dict[str, Any]], status: str, with_value: bool) -> list[dict[str, Any]]:
    out = []
    for item in items:
        result: dict[str, Any] = {
            "attributeStatus": status,
            "component": item["component"],
            "variable": item["variable"],
        }
        if "attributeType" in item:
            result["attributeType"] = item["attributeType"]
        if with_value and status == "Accepted":
            result["attributeValue"] = "0"
        out.append(result)
    return out


def build_response(action: str, payload: dict[str, Any], statuses: dict[str, str] | None = None) -> dict[str, Any]:
    """A schema-valid ``<action>Response`` for the request ``payload``."""
    statuses = statuses or {}
    if action == "GetVariables":
        status = _status(action, statuses, "Accepted")
        return {"getVariableResult": _echo_variables(payload.get("getVariableData", []), status, True)}
    if action == "SetVariables":
        status = _status(action, statuses, "Accepted")
        return {"setVariableResult": _echo_variables(payload.get("setVariableData", []), status, False)}
    if action == "ClearVariableMonitoring":
        status = _status(action, statuses, "Accepted")
        return {"clearMonitoringResult": [{"status": status, "id": i} for i in payload.get("id", [])] or [
            {"status": status, "id": 0}
        ]}  # fmt: skip
    if action == "SetVariableMonitoring":
        status = _status(action, statuses, "Accepted")
        results = []
        for i, item in enumerate(payload.get("setMonitoringData", [])):
            results.append(
                {
                    "id": item.get("id", i + 1),
                    "status": status,
                    "type": item["type"],
                    "severity": item["severity"],
                    "component": item["component"],
                    "variable": item["variable"],
                }
            )
        return {"setMonitoringResult": results or [minimal_message(action, "Response")["setMonitoringResult"][0]]}
    if action == "GetLocalListVersion":
        return {"versionNumber": 0}
    if action == "GetTransactionStatus":
        return {"messagesInQueue": False}
    if action == "RequestStartTransaction":
        response: dict[str, Any] = {"status": _status(action, statuses, "Accepted")}
        return response
    return minimal_message(action, "Response", statuses.get(action))
