"""Raising (or lowering) a station's security profile without losing it (OCPP 2.0.1 A05, B09).

0. For profiles 2 and 3 the station must first trust the CSMS's server certificate: install the CSMSRootCertificate
   (InstallCertificate; the certificates block), and for profile 3 give it a station certificate (SignCertificate).
   Given ``csms_root_pem``, the flow sends that InstallCertificate itself and step 1 once it is Accepted (the
   connection data waits on the slot's ``NetworkProfile``, status ``awaiting_root``; a refused root drops it).
1. ``security_profile_upgrade_start`` sets ``pending_security_profile`` and sends SetNetworkProfile with the new
   connection data (``securityProfile``, the ``wss://`` URL) in a configuration slot.
2. SetNetworkProfile answered Accepted (answer hook) -> SetVariables ``OCPPCommCtrlr.NetworkConfigurationPriority``
   with that slot first (the old slots after it, as the station falls back to them).
3. That SetVariables answered Accepted/RebootRequired -> Reset (OnIdle): the station reconnects with the new profile.

From step 1 the handshake accepts both the old and the pending profile (stations/connections.py); the first
connection that meets the pending one makes it the station's profile, and from then on the old one is refused. A
station that rejects a step keeps its old profile (the pending one stays until an operator clears it or it is met).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from security.certificates import certificate_install
from stations.commands import command_send, on_command_answered
from stations.commands.pipeline import Sender
from stations.models import ChargingStation, Command, NetworkProfile, NetworkProfileStatus, SecurityProfile

logger = logging.getLogger(__name__)

PRIORITY = ("OCPPCommCtrlr", "NetworkConfigurationPriority")
ACCEPTED = frozenset({"Accepted", "RebootRequired"})


def security_profile_upgrade_start(
    *,
    station: ChargingStation,
    profile: int,
    csms_url: str,
    configuration_slot: int,
    ocpp_interface: str = "Wired0",
    message_timeout_s: int = 30,
    user: Sender = None,
    csms_root_pem: str | None = None,
) -> Command:
    """Step 1 (module doc), or step 0 first when ``csms_root_pem`` is given; step 2 sets
    NetworkConfigurationPriority to the new slot. Raises ValueError for an unknown profile, a URL that does not fit
    it or a root that is not a PEM certificate."""
    if profile not in SecurityProfile.values:
        raise ValueError(f"unknown security profile {profile}")
    if profile >= SecurityProfile.BASIC_TLS and not csms_url.startswith("wss://"):
        raise ValueError(f"security profile {profile} needs a wss:// URL")
    if profile == SecurityProfile.BASIC_TLS and not station.password_hash:
        raise ValueError("security profile 2 needs a password (set one first)")
    payload: dict[str, Any] = {
        "configurationSlot": configuration_slot,
        "connectionData": {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": csms_url,
            "messageTimeout": message_timeout_s,
            "securityProfile": profile,
            "ocppInterface": ocpp_interface,
        },
    }
    with transaction.atomic():
        ChargingStation.objects.filter(pk=station.pk).update(pending_security_profile=profile)
        station.pending_security_profile = profile
        if csms_root_pem is not None:
            NetworkProfile.objects.update_or_create(
                station=station,
                configuration_slot=configuration_slot,
                defaults={
                    "connection_data": payload["connectionData"],
                    "status": NetworkProfileStatus.AWAITING_ROOT,
                    "status_reason": "",
                    "migrating": False,
                    "command": None,
                },
            )
            root = certificate_install(
                station=station, certificate_type="CSMSRootCertificate", pem=csms_root_pem, user=user
            )
            logger.info("station %s: security profile upgrade to %s: root certificate first", station.identity, profile)
            return root
        command = command_send(station=station, action="SetNetworkProfile", payload=payload, user=user)
    # Step 2's value travels with the command's request: nothing else to remember.
    logger.info("station %s: security profile upgrade to %s started", station.identity, profile)
    return command


@on_command_answered("InstallCertificate")
def upgrade_on_root_installed(command: Command) -> None:
    """Step 0 -> 1: the CSMSRootCertificate Accepted during an upgrade sends the waiting SetNetworkProfile."""
    if command.request.get("certificateType") != "CSMSRootCertificate":
        return
    waiting = NetworkProfile.objects.filter(station_id=command.station_id, status=NetworkProfileStatus.AWAITING_ROOT)
    row = waiting.first()
    if row is None:
        return
    if (command.response or {}).get("status") != "Accepted":
        waiting.delete()  # nothing reached the slot; the pending profile stays until an operator clears it
        return
    if _pending(command) != row.connection_data.get("securityProfile"):
        return
    payload = {"configurationSlot": row.configuration_slot, "connectionData": row.connection_data}
    command_send(station=command.station, action="SetNetworkProfile", payload=payload)


def _pending(command: Command) -> int | None:
    return (
        ChargingStation.objects.filter(pk=command.station_id).values_list("pending_security_profile", flat=True).get()
    )


# OCPP SPEC-SILENT: the priority becomes the new slot alone; the station falls back to its previous valid
# configuration by itself when the new one fails (B09).
@on_command_answered("SetNetworkProfile")
def upgrade_on_network_profile(command: Command) -> None:
    """Step 2: the new slot first in NetworkConfigurationPriority."""
    data = command.request.get("connectionData", {})
    if (command.response or {}).get("status") != "Accepted" or _pending(command) != data.get("securityProfile"):
        return
    slot = str(command.request["configurationSlot"])
    payload = {
        "setVariableData": [
            {"attributeValue": slot, "component": {"name": PRIORITY[0]}, "variable": {"name": PRIORITY[1]}}
        ]
    }
    command_send(station=command.station, action="SetVariables", payload=payload)


@on_command_answered("SetVariables")
def upgrade_on_priority(command: Command) -> None:
    """Step 3: the priority accepted during an upgrade -> Reset OnIdle."""
    results = (command.response or {}).get("setVariableResult", [])
    accepted = any(
        (r["component"].get("name"), r["variable"].get("name")) == PRIORITY and r["attributeStatus"] in ACCEPTED
        for r in results
    )
    if accepted and _pending(command) is not None:
        command_send(station=command.station, action="Reset", payload={"type": "OnIdle"})
