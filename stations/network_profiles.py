"""SetNetworkProfile as the CSMS's own state (B09, B10): what the CSMS sent to each configuration slot of a station
and the station's answer (``NetworkProfile``: Accepted, Rejected, Failed, or no answer), shown on the station page
and in the admin; and the migration to another CSMS (B10) as one flow:

1. ``csms_migration_start`` sends SetNetworkProfile with the new CSMS's URL in a slot, marking the slot ``migrating``.
2. Accepted -> SetVariables ``OCPPCommCtrlr.NetworkConfigurationPriority`` with that slot.
3. That answered Accepted/RebootRequired -> Reset (OnIdle): the station connects to the new CSMS.

A rejected step ends the migration (``migrating`` cleared, the answer shown). The security-profile upgrade
(security/upgrade.py) chains the same steps for its own SetNetworkProfile; a migration is refused while an upgrade is
pending, so the two never both answer one step. Hooks registered in ``StationsConfig.ready``.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from .commands import command_send, secrets
from .commands.pipeline import Sender
from .models import ChargingStation, Command, NetworkProfile, NetworkProfileStatus

logger = logging.getLogger(__name__)

PRIORITY = ("OCPPCommCtrlr", "NetworkConfigurationPriority")
PRIORITY_ACCEPTED = frozenset({"Accepted", "RebootRequired"})
_migrating: contextvars.ContextVar[bool] = contextvars.ContextVar("network_profile_migrating", default=False)


def network_profile_on_sending(command: Command) -> None:
    """Send hook: record the slot's new connection data (as the command stores it: secrets redacted; send hooks run
    before the pipeline redacts the request)."""
    stored, _ = secrets.request_split(station_id=command.station_id, action=command.action, payload=command.request)
    NetworkProfile.objects.update_or_create(
        station_id=command.station_id,
        configuration_slot=command.request["configurationSlot"],
        defaults={
            "connection_data": stored["connectionData"],
            "status": NetworkProfileStatus.SENT,
            "status_reason": "",
            "migrating": _migrating.get(),
            "command": command,
        },
    )


def _slot(command: Command) -> Any:
    return NetworkProfile.objects.filter(command=command)


def network_profile_on_answered(command: Command) -> None:
    """Answer hook: Accepted, Rejected or Failed recorded on the slot; during a migration Accepted sends step 2."""
    response = command.response or {}
    status = response.get("status", "")
    if status not in NetworkProfileStatus.values:
        return
    reason = (response.get("statusInfo") or {}).get("reasonCode", "")[:20]
    migrating = _slot(command).filter(migrating=True).exists()
    _slot(command).update(status=status, status_reason=reason, migrating=migrating and status == "Accepted")
    if migrating and status == "Accepted":
        slot = str(command.request["configurationSlot"])
        data = [{"attributeValue": slot, "component": {"name": PRIORITY[0]}, "variable": {"name": PRIORITY[1]}}]
        command_send(station=command.station, action="SetVariables", payload={"setVariableData": data})


def network_profile_on_failed(command: Command) -> None:
    _slot(command).update(status=NetworkProfileStatus.NO_ANSWER, migrating=False)


def migration_on_priority(command: Command) -> None:
    """SetVariables answer hook, step 3: the priority accepted with a migrating slot -> Reset OnIdle."""
    for result in (command.response or {}).get("setVariableResult", []):
        if (result["component"].get("name"), result["variable"].get("name")) != PRIORITY:
            continue
        wanted = next(
            (
                d.get("attributeValue")
                for d in command.request.get("setVariableData", [])
                if (d["component"].get("name"), d["variable"].get("name")) == PRIORITY
            ),
            None,
        )
        first = str(wanted).split(",")[0].strip()
        slots = NetworkProfile.objects.filter(station_id=command.station_id, migrating=True)
        if not first.isdigit() or not slots.filter(configuration_slot=int(first)).exists():
            return
        slots.update(migrating=False)
        if result["attributeStatus"] in PRIORITY_ACCEPTED:
            command_send(station=command.station, action="Reset", payload={"type": "OnIdle"})
        return


def csms_migration_start(
    *,
    station: ChargingStation,
    csms_url: str,
    configuration_slot: int,
    ocpp_interface: str = "Wired0",
    message_timeout_s: int = 30,
    user: Sender = None,
) -> Command:
    """Step 1 (module doc): the new CSMS's URL in ``configuration_slot``, with the station's current security
    profile. Raises ValueError while a security-profile upgrade is pending or for a URL that does not fit."""
    if station.pending_security_profile is not None:
        raise ValueError("a security profile upgrade is pending: finish or clear it first")
    if not csms_url.startswith(("ws://", "wss://")):
        raise ValueError("the new CSMS's URL must be ws:// or wss://")
    if station.security_profile >= 2 and not csms_url.startswith("wss://"):
        raise ValueError(f"security profile {station.security_profile} needs a wss:// URL")
    payload: dict[str, Any] = {
        "configurationSlot": configuration_slot,
        "connectionData": {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": csms_url,
            "messageTimeout": message_timeout_s,
            "securityProfile": station.security_profile,
            "ocppInterface": ocpp_interface,
        },
    }
    token = _migrating.set(True)
    try:
        command = command_send(station=station, action="SetNetworkProfile", payload=payload, user=user)
    finally:
        _migrating.reset(token)
    logger.info("station %s: migration to %s started", station.identity, csms_url)
    return command
