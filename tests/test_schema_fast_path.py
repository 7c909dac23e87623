"""The native (jsonschema-rs) validator on the hot path must accept exactly what the reference validator accepts."""

from __future__ import annotations

import copy
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from csms.ocpp import schemas

VALID: dict[tuple[str, schemas.Kind], dict[str, Any]] = {
    ("BootNotification", "Request"): {
        "reason": "PowerUp",
        "chargingStation": {"vendorName": "ACME", "model": "W1", "modem": {"iccid": "1"}},
    },
    ("StatusNotification", "Request"): {
        "timestamp": "2026-01-01T10:00:00Z", "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1,
    },
    ("TransactionEvent", "Request"): {
        "eventType": "Updated", "timestamp": "2026-01-01T10:00:00.123+01:00", "triggerReason": "MeterValuePeriodic",
        "seqNo": 3, "transactionInfo": {"transactionId": "TX-1", "chargingState": "Charging"},
        "evse": {"id": 1, "connectorId": 1}, "idToken": {"idToken": "CARD", "type": "ISO14443"},
        "meterValue": [{"timestamp": "2026-01-01T10:00:00Z", "sampledValue": [
            {"value": 1234.5, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}},
        ]}],
    },
    ("MeterValues", "Request"): {
        "evseId": 1, "meterValue": [{"timestamp": "2026-01-01T10:00:00Z", "sampledValue": [{"value": 1}]}],
    },
    ("Heartbeat", "Response"): {"currentTime": "2026-01-01T10:00:00Z"},
    ("SetChargingProfile", "Request"): {
        "evseId": 1, "chargingProfile": {
            "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
            "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "startSchedule": "2026-01-01T00:00:00Z",
                                  "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]}],
        },
    },
}  # fmt: skip

ODD_VALUES = [
    None, "", "x" * 60, "x" * 600, 0, -1, 1.0, 1.5, 2**40, True, False, [], {}, [1], {"a": 1},
    "2026-01-01T23:59:60Z", "2026-01-01t10:00:00z", "2026-01-01T10:00:00", "2026-02-30T10:00:00Z",
    "2026-01-01T10:00:00+0100", "Occupied", "Charging", "W", "é" * 20, 1e308,
]  # fmt: skip


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _mutate(payload: dict, path: tuple, how: str, value: Any) -> dict:
    mutated = copy.deepcopy(payload)
    if not path:
        return mutated
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if how == "delete" and isinstance(parent, dict):
        del parent[last]
    elif how == "extra" and isinstance(parent, dict):
        parent["unexpectedKey"] = value
    else:
        parent[last] = value
    return mutated


def _finite(node: Any) -> bool:
    if isinstance(node, float):
        return math.isfinite(node)
    if isinstance(node, dict):
        return all(_finite(v) for v in node.values())
    if isinstance(node, list):
        return all(_finite(v) for v in node)
    return True


@settings(max_examples=400, deadline=None)
@given(
    which=st.sampled_from(sorted(VALID)),
    picks=st.lists(
        st.tuples(
            st.integers(min_value=0), st.sampled_from(["replace", "delete", "extra"]), st.sampled_from(ODD_VALUES)
        ),
        min_size=0,
        max_size=3,
    ),
)
def test_native_and_reference_validators_agree(which, picks):
    action, kind = which
    payload = VALID[which]
    for index, how, value in picks:
        paths = _paths(payload)
        payload = _mutate(payload, paths[index % len(paths)], how, value)
    reference = schemas.validator(action, kind).is_valid(payload)
    native = schemas.fast_validator(action, kind).is_valid(payload)
    assert native == reference or not _finite(payload), (payload, native, reference)


def test_the_valid_corpus_is_valid_for_both():
    for (action, kind), payload in VALID.items():
        assert schemas.validator(action, kind).is_valid(payload), action
        assert schemas.fast_validator(action, kind).is_valid(payload), action


def test_leap_second_is_refused_as_by_the_reference_validator():
    # jsonschema-rs alone accepts 23:59:60; the reference (rfc3339-validator) does not, and neither do we.
    payload = {"currentTime": "2026-01-01T23:59:60Z"}
    assert schemas.fast_validator("Heartbeat", "Response").is_valid(payload) is False
    assert [v.keyword for v, _ in schemas.violations("Heartbeat", "Response", payload)] == ["format"]
