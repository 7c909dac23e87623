"""Secrets in CSMS->CS requests (and in what stations report) are never stored or shown.

A SetVariables of a WriteOnly variable (``SecurityCtrlr.BasicAuthPassword``, or any variable the station's device
model reports WriteOnly) and a SetNetworkProfile's VPN/APN passwords go to the station, but what is stored — the
``Command.request`` (admin, API, dashboard), the ``BulkCommand.request``, the message-log row of the frame as sent —
has ``[redacted]`` in their place. The secret values travel only in the channel-layer message that hands the command
to the station's consumer (in memory, or Redis with the layer's expiry) and in the frame on the wire.

Domains register what is secret per action: ``@secret_fields("SetVariables")`` on ``func(station_id, payload)``
returning the paths (lists of keys and indexes) of the secret values; ``@log_redactor("NotifyReport")`` on
``func(payload) -> payload`` for what a station sends (its message-log row).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

REDACTED = "[redacted]"
Path = list[str | int]
SecretFields = Callable[[int | None, dict[str, Any]], list[Path]]
LogRedactor = Callable[[dict[str, Any]], dict[str, Any]]

_secret_fields: dict[str, list[SecretFields]] = {}
_log_redactors: dict[str, LogRedactor] = {}


def secret_fields(action: str) -> Callable[[SecretFields], SecretFields]:
    def register(func: SecretFields) -> SecretFields:
        _secret_fields.setdefault(action, []).append(func)
        return func

    return register


def log_redactor(action: str) -> Callable[[LogRedactor], LogRedactor]:
    def register(func: LogRedactor) -> LogRedactor:
        _log_redactors[action] = func
        return func

    return register


def _get(payload: Any, path: Path) -> Any:
    for step in path:
        payload = payload[step]
    return payload


def _set(payload: Any, path: Path, value: Any) -> None:
    for step in path[:-1]:
        payload = payload[step]
    payload[path[-1]] = value


def request_split(
    *, station_id: int | None, action: str, payload: dict[str, Any]
) -> tuple[dict[str, Any], list[tuple[Path, Any]]]:
    """(the request as stored, with ``[redacted]`` for each secret string and without each other secret; the
    secrets as (path, value)). A request without secrets is returned as it is, with no secrets."""
    paths = [p for func in _secret_fields.get(action, []) for p in func(station_id, payload)]
    found = []
    for path in paths:
        try:
            value = _get(payload, path)
        except (KeyError, IndexError, TypeError):
            continue
        if value != REDACTED:
            found.append((path, value))
    if not found:
        return payload, []
    stored = copy.deepcopy(payload)
    for path, value in found:
        if isinstance(value, str):
            _set(stored, path, REDACTED)
        else:  # e.g. the integer simPin: left out (it is optional), so the stored request stays schema-valid
            del _get(stored, path[:-1])[path[-1]]
    return stored, found


def request_merge(stored: dict[str, Any], secrets: list[Any]) -> dict[str, Any]:
    """The request to put on the wire: the stored one with its secrets put back."""
    if not secrets:
        return stored
    wire = copy.deepcopy(stored)
    for path, value in secrets:
        _set(wire, list(path), value)
    return wire


def incoming_for_log(action: str, payload: Any) -> Any:
    """A station's CALL payload as the message log keeps it (secrets it reported removed). A payload of an action
    that may carry secrets which its redactor cannot read (schema-invalid, e.g. answered FormatViolation) is not
    kept: the safe side for a log."""
    redact = _log_redactors.get(action)
    if redact is None:
        return payload
    if isinstance(payload, dict):
        try:
            return redact(payload)
        except (KeyError, TypeError, AttributeError, ValueError):
            pass
    return {"unlogged": f"a malformed {action}: its secrets could not be removed, so its payload is not kept"}


# --- SetNetworkProfile (stations) ------------------------------------------------------------------------------
NETWORK_PROFILE_SECRETS: tuple[Path, ...] = (
    ["connectionData", "vpn", "password"],
    ["connectionData", "vpn", "key"],
    ["connectionData", "apn", "apnPassword"],
    ["connectionData", "apn", "simPin"],
)


@secret_fields("SetNetworkProfile")
def _network_profile_secrets(station_id: int | None, payload: dict[str, Any]) -> list[Path]:
    return [list(p) for p in NETWORK_PROFILE_SECRETS]
