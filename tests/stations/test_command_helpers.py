"""The typed helpers of all 40 CSMS->CS actions build schema-valid payloads and parse answers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from csms.ocpp import naming, schemas
from csms.ocpp.actions import CSMS_TO_CS
from stations.commands import CommandValidationError, hooks, secrets
from stations.commands import helpers as commands
from stations.models import Command, CommandState
from stations.services import station_register

ROOT = Path(__file__).resolve().parents[2]


def schema_of(action: str, kind: str) -> dict[str, Any]:
    return json.loads((schemas._schema_dir() / f"{action}{kind}.json").read_text())


def instance(node: dict[str, Any], defs: dict[str, Any], full: bool) -> Any:
    """A value valid for ``node``: only required properties, or (``full``) every property."""
    if "$ref" in node:
        return instance(defs[node["$ref"].rsplit("/", 1)[1]], defs, full)
    if "enum" in node:
        return node["enum"][-1] if full else node["enum"][0]
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        keys = list(props) if full else node.get("required", [])
        return {k: instance(props[k], defs, full) for k in keys}
    if kind == "array":
        return [instance(node["items"], defs, full) for _ in range(max(1, node.get("minItems", 1)))]
    if kind == "string":
        if node.get("format") == "date-time":
            return "2026-01-01T10:00:00Z"
        return "x" * min(3, node.get("maxLength", 3))
    if kind == "integer":
        return max(1, node.get("minimum", 1))
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind is None:  # DataTransfer's free-form data
        return "free-form"
    raise AssertionError(f"no sample for {node}")


def sample(action: str, kind: schemas.Kind, full: bool) -> dict[str, Any]:
    schema = schema_of(action, kind)
    value = instance(schema, schema.get("definitions", {}), full)
    assert schemas.violations(action, kind, value) == [], (action, kind, value)
    return value


def test_there_is_one_helper_and_one_answer_type_per_csms_to_cs_action():
    assert len(CSMS_TO_CS) == 40
    assert set(commands.HELPERS) == CSMS_TO_CS
    assert set(commands.ANSWERS) == CSMS_TO_CS
    assert commands.HELPERS["Reset"] is commands.reset
    assert commands.HELPERS["GetCompositeSchedule"] is commands.get_composite_schedule


# A TxDefaultProfile on EVSE 0 (SetChargingProfile) and the TxProfile of a remote start (no transactionId yet).
_PERIODS = [{"startPeriod": 0, "limit": 16.0}]
VALID_PROFILE: dict[str, dict[str, Any]] = {
    "SetChargingProfile": {"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                           "chargingProfileKind": "Relative",
                           "chargingSchedule": [{"id": 1, "chargingRateUnit": "A",
                                                 "chargingSchedulePeriod": _PERIODS}]},
    "RequestStartTransaction": {"id": 2, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
                                "chargingProfileKind": "Relative",
                                "chargingSchedule": [{"id": 1, "chargingRateUnit": "A",
                                                      "chargingSchedulePeriod": _PERIODS}]},
}  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("full", [False, True], ids=["required-only", "every-field"])
@pytest.mark.parametrize("action", sorted(CSMS_TO_CS))
def test_helper_builds_the_schema_valid_payload_from_snake_case_keywords(action, full):
    station, _ = station_register(identity="CS-1")
    expected = sample(action, "Request", full)
    if action == "TriggerMessage":  # the pipeline refuses to trigger a message the CSMS does not handle
        expected["requestedMessage"] = "Heartbeat"
    if action in VALID_PROFILE:  # the smart charging send hooks refuse profiles that break OCPP's rules
        expected["chargingProfile"] = VALID_PROFILE[action]
        if action == "SetChargingProfile":
            expected["evseId"] = 0
    # HELPERS is a dict of 40 different signatures, inferred as plain functions (redundant once it is annotated).
    helper = cast(Callable[..., Command], commands.HELPERS[action])
    command = helper(station, **naming.to_snake(expected))
    assert isinstance(command, Command)
    assert command.action == action
    if allocated := hooks.allocated_field(action):  # remoteStartId, the reservation id: the CSMS allocates them
        expected[allocated] = command.request[allocated]
    if action == "GetLog":  # the station always uploads to the CSMS's own file server (firmware/logs.py)
        expected["log"]["remoteLocation"] = command.request["log"]["remoteLocation"]
        assert "/files/upload/" in expected["log"]["remoteLocation"]
    # Secrets (SetNetworkProfile's passwords, SetVariables of WriteOnly values) are stored redacted.
    assert command.request == secrets.request_split(station_id=station.pk, action=action, payload=expected)[0]
    assert schemas.violations(action, "Request", command.request) == []
    assert command.state == CommandState.OFFLINE  # not connected: recorded, not sent


@pytest.mark.parametrize("action", sorted(CSMS_TO_CS))
def test_answer_parses_the_response_to_its_typed_dict_in_snake_case(action):
    response = sample(action, "Response", full=True)
    command = Command(action=action, state=CommandState.ANSWERED, response=response)
    kind = commands.ANSWERS[action]
    parsed: dict[str, Any] = commands.answer(command, kind)
    assert parsed == naming.to_snake(response)
    assert set(parsed) == set(kind.__annotations__)
    assert naming.to_camel(parsed) == response


@pytest.mark.django_db
def test_examples_of_typed_helpers():
    station, _ = station_register(identity="CS-1")
    assert commands.reset(station, type="OnIdle", evse_id=2).request == {"type": "OnIdle", "evseId": 2}
    assert commands.trigger_message(
        station, requested_message="StatusNotification", evse={"id": 1, "connector_id": 2}
    ).request == {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 2}}
    assert commands.get_variables(
        station, get_variable_data=[{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]
    ).request == {
        "getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]
    }
    assert (
        commands.set_network_profile(
            station,
            configuration_slot=1,
            connection_data={
                "ocpp_version": "OCPP20",
                "ocpp_transport": "JSON",
                "ocpp_csms_url": "wss://csms.example/ocpp",
                "message_timeout": 30,
                "security_profile": 2,
                "ocpp_interface": "Wired0",
            },
        ).request["connectionData"]["ocppCsmsUrl"]
        == "wss://csms.example/ocpp"
    )


@pytest.mark.django_db
def test_helper_with_an_invalid_value_raises_and_stores_nothing():
    station, _ = station_register(identity="CS-1")
    with pytest.raises(CommandValidationError) as info:
        commands.reset(station, type="Sometimes")  # type: ignore[arg-type]
    assert info.value.violations[0]["path"] == "type"
    assert Command.objects.count() == 0


def test_answer_refuses_another_actions_type_and_unanswered_commands():
    answered = Command(action="Reset", state=CommandState.ANSWERED, response={"status": "Accepted"})
    assert commands.answer(answered, commands.ResetAnswer) == {"status": "Accepted"}
    with pytest.raises(ValueError, match="Reset is answered by ResetAnswer, not ClearCacheAnswer"):
        commands.answer(answered, commands.ClearCacheAnswer)
    with pytest.raises(ValueError, match="is failed, not answered"):
        commands.answer(Command(action="Reset", state=CommandState.FAILED), commands.ResetAnswer)


def test_generated_module_is_up_to_date(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import generate_command_helpers as gen
    finally:
        sys.path.pop(0)
    out = tmp_path / "commands.py"
    gen.write(out)
    assert out.read_text() == (ROOT / "stations" / "commands" / "helpers.py").read_text(), (
        "run: python scripts/generate_command_helpers.py"
    )
