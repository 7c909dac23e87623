"""Remote control and availability (blocks F and G) as the CSMS's own state: answer hooks of ChangeAvailability
(the availability the CSMS intends, per station, EVSE or connector) and Reset (awaiting the reboot the next
BootNotification confirms). Registered in ``StationsConfig.ready``, so they run whichever door sent the command;
the Command row itself shows every outcome where it was sent.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.utils import timezone

from .models import ChargingStation, Command, Connector, Evse, ResetState
from .services import connector_get_or_create

# The answers shown as the last outcome on the station page, one per action.
OUTCOME_ACTIONS = (
    "Reset",
    "ChangeAvailability",
    "UnlockConnector",
    "ClearCache",
    "RequestStopTransaction",
    "TriggerMessage",
)


def _availability_target(command: Command) -> ChargingStation | Evse | Connector:
    evse: dict[str, Any] = command.request.get("evse") or {}
    # OCPP SPEC-SILENT: an EVSE id 0 is taken as the whole station (ids start at 1; 0 is the station elsewhere).
    if not evse.get("id"):
        return ChargingStation.objects.get(pk=command.station_id)
    if evse.get("connectorId") is None:
        return Evse.objects.get_or_create(station_id=command.station_id, evse_id=evse["id"])[0]
    return connector_get_or_create(station_id=command.station_id, evse_id=evse["id"], connector_id=evse["connectorId"])


def availability_on_answered(command: Command) -> None:
    """ChangeAvailability answer hook: Accepted applies the intended status, Scheduled keeps it pending until the
    station reports the change (a connector status, or for the whole station its next boot), Rejected changes
    nothing."""
    status = (command.response or {}).get("status")
    wanted = command.request["operationalStatus"]
    if status == "Accepted":
        fields: dict[str, Any] = {"intended_operational": wanted, "availability_scheduled": ""}
    elif status == "Scheduled":
        fields = {"availability_scheduled": wanted}
    else:
        return
    target = _availability_target(command)
    type(target).objects.filter(pk=target.pk).update(**fields, availability_changed_at=timezone.now())


def reset_on_answered(command: Command) -> None:
    """Reset answer hook: Accepted or Scheduled awaits the reboot (confirmed by the next BootNotification),
    Rejected is recorded as such.

    # OCPP SPEC-SILENT: a Reset of one EVSE reboots no station and brings no BootNotification; its outcome is
    # the command's answer only.
    """
    if command.request.get("evseId") is not None:
        return
    status = (command.response or {}).get("status")
    state = ResetState.REJECTED if status == "Rejected" else ResetState.AWAITING_REBOOT
    ChargingStation.objects.filter(pk=command.station_id).update(
        reset_state=state, reset_requested_at=command.created_at, reset_confirmed_at=None
    )


def station_last_outcomes(*, station: ChargingStation) -> list[Command]:
    """The station's latest command of each remote-control action: one query (a union of one indexed row per
    action), so the station page's query count stays fixed."""
    latest = [
        Command.objects.filter(station=station, action=action).order_by("-created_at", "-id")[:1]
        for action in OUTCOME_ACTIONS
    ]
    if connection.features.supports_slicing_ordering_in_compound:
        rows: list[Command] = list(latest[0].union(*latest[1:], all=True))
    else:  # SQLite (the embedded default) cannot order inside a UNION: one small query per action
        rows = [command for query in latest for command in query]
    found = {command.action: command for command in rows}
    return [found[action] for action in OUTCOME_ACTIONS if action in found]
