"""The station page's command forms: form fields in, an OCPP request (action, payload) out.

No sending here: the view hands the result to ``commands.command_send``, which validates it against the official
schema. Field problems the schema would not name clearly (a non-number, bad JSON) become ``CommandFormError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from csms.ocpp.actions import CSMS_TO_CS
from transactions.models import IdTokenType

from .commands import helpers


class CommandFormError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _int(data: Mapping[str, str], name: str, *, required: bool = False) -> int | None:
    raw = (data.get(name) or "").strip()
    if not raw:
        if required:
            raise CommandFormError(f"{name}: required")
        return None
    try:
        return int(raw)
    except ValueError:
        raise CommandFormError(f"{name}: {raw!r} is not a whole number") from None


def _text(data: Mapping[str, str], name: str) -> str:
    return (data.get(name) or "").strip()


def _evse(data: Mapping[str, str]) -> dict[str, int] | None:
    evse_id = _int(data, "evse_id")
    if evse_id is None:
        return None
    evse: dict[str, int] = {"id": evse_id}
    connector_id = _int(data, "connector_id")
    if connector_id is not None:
        evse["connectorId"] = connector_id
    return evse


def _drop_none(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if v is not None}


def _reset(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    return "Reset", _drop_none({"type": _text(data, "type"), "evseId": _int(data, "evse_id")})


def _change_availability(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    return "ChangeAvailability", _drop_none(
        {"operationalStatus": _text(data, "operational_status"), "evse": _evse(data)}
    )


def _unlock_connector(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    return "UnlockConnector", {
        "evseId": _int(data, "evse_id", required=True),
        "connectorId": _int(data, "connector_id", required=True),
    }


def _request_start(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    # No remoteStartId: the pipeline allocates it (a RemoteStartRequest linked to the session the station reports).
    return "RequestStartTransaction", _drop_none(
        {
            "idToken": {"idToken": _text(data, "id_token"), "type": _text(data, "id_token_type") or "Central"},
            "evseId": _int(data, "evse_id"),
        }
    )


def _request_stop(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    return "RequestStopTransaction", {"transactionId": _text(data, "transaction_id")}


def _trigger_message(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    return "TriggerMessage", _drop_none({"requestedMessage": _text(data, "requested_message"), "evse": _evse(data)})


def _component_variable(data: Mapping[str, str]) -> dict[str, Any]:
    component: dict[str, Any] = {"name": _text(data, "component")}
    if _int(data, "evse_id") is not None:
        component["evse"] = _evse(data)
    return {"component": component, "variable": {"name": _text(data, "variable")}}


def _get_variables(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    return "GetVariables", {"getVariableData": [_component_variable(data)]}


def _set_variables(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    item = _component_variable(data) | {"attributeValue": data.get("value", "")}
    return "SetVariables", {"setVariableData": [item]}


def _clear_cache(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    return "ClearCache", {}


def _data_transfer(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    raw = (data.get("data") or "").strip()
    try:
        value: Any = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        value = raw  # not JSON: sent as a string (DataTransfer's data is "any")
    return "DataTransfer", _drop_none(
        {"vendorId": _text(data, "vendor_id"), "messageId": _text(data, "message_id") or None, "data": value}
    )


def _reserve_now(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    # No id: the pipeline allocates the reservation id (and records the Reservation).
    minutes = _int(data, "expires_in_min") or 30
    expiry = datetime.now(UTC) + timedelta(minutes=minutes)
    return "ReserveNow", _drop_none(
        {
            "expiryDateTime": expiry.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "idToken": {"idToken": _text(data, "id_token"), "type": _text(data, "id_token_type") or "Central"},
            "evseId": _int(data, "evse_id"),
            "connectorType": _text(data, "connector_type") or None,
        }
    )


def _generic(data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    action = _text(data, "action")
    if action not in CSMS_TO_CS:
        raise CommandFormError(f"action: {action[:64]!r} is not a request a CSMS sends to a station")
    raw = (data.get("payload") or "").strip() or "{}"
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CommandFormError(f"payload: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(payload, dict):
        raise CommandFormError("payload: must be a JSON object")
    return action, payload


BUILDERS: dict[str, Callable[[Mapping[str, str]], tuple[str, dict[str, Any]]]] = {
    "reset": _reset,
    "change-availability": _change_availability,
    "unlock-connector": _unlock_connector,
    "request-start": _request_start,
    "request-stop": _request_stop,
    "trigger-message": _trigger_message,
    "get-variables": _get_variables,
    "set-variables": _set_variables,
    "clear-cache": _clear_cache,
    "data-transfer": _data_transfer,
    "reserve-now": _reserve_now,
    "generic": _generic,
}

# The OCPP enumerations, from the types generated from the official schemas (one source of truth).
CONNECTOR_TYPES = get_args(helpers.ConnectorEnumType)
ID_TOKEN_TYPES = tuple(IdTokenType.values)


def build(form: str, data: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """(action, payload) for the named form; CommandFormError for an unknown form or unreadable fields."""
    builder = BUILDERS.get(form)
    if builder is None:
        raise CommandFormError(f"unknown form {form[:40]!r}")
    return builder(data)


def csms_actions() -> list[str]:
    return sorted(CSMS_TO_CS)
